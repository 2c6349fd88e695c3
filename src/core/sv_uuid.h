/* Textual UUIDs, as PostgreSQL writes them. */
#ifndef SV_UUID_H
#define SV_UUID_H

/* 1 when s is a canonical textual UUID (8-4-4-4-12 hex digits, either
 * case), else 0 (also for NULL). Checked before a value reaches a uuid
 * parameter, so bad input is the caller's 400, not PostgreSQL's 22P02. */
int sv_uuid_valid(const char *s);

#endif
