/* Schema migrations: applies the numbered sql/NNN_name.sql files in name
 * order, each in its own transaction together with its row in
 * public.schema_migrations (version = the file name, applied_at,
 * checksum = hex BLAKE2b-256 of the file), so a failing file leaves
 * nothing behind and re-running is a no-op. Files are UTF-8 and must not
 * contain BEGIN/COMMIT. Used by `streamvibe-admin migrate`. */
#ifndef SV_MIGRATE_H
#define SV_MIGRATE_H

#include <stdio.h>
#include <libpq-fe.h>

/* Applies every *.sql file in sql_dir that schema_migrations does not list
 * yet, in strcmp() order of the file names. Progress lines ("applied
 * 002_core.sql (41 ms)" or "nothing to apply ...") go to out (may be
 * NULL). Refuses to run, applying nothing, when an already applied file
 * has changed since. conn must be idle (no open transaction); it is left
 * idle. Concurrent runs serialise on an advisory lock, and each file is
 * re-checked under the lock, so a file is never applied twice.
 * Returns SV_OK, or SV_ERROR with a message in err naming the failing file and
 * PostgreSQL's error. */
int sv_migrate_apply(PGconn *conn, const char *sql_dir, FILE *out, char *err, size_t errlen);

/* Writes one line per migration to out (may be NULL):
 *   applied  001_roles_auth.sql  2026-01-31T12:00:00Z
 *   changed  002_core.sql  2026-01-31T12:00:00Z  (file differs from the applied version)
 *   pending  003_quota.sql
 *   missing  009_old.sql  2026-01-31T12:00:00Z  (applied, but no such file in sql_dir)
 * Read-only: does not create schema_migrations. Returns SV_OK, or SV_ERROR with a
 * message in err. */
int sv_migrate_status(PGconn *conn, const char *sql_dir, FILE *out, char *err, size_t errlen);

#endif
