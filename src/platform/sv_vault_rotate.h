/* Key rotation for the sealed values in the database (the tokens of
 * platform_credentials and the Vault's secrets): `streamvibe-admin keys
 * rotate` re-seals every value that names another key than the current
 * one, in small batches, each its own transaction that locks its rows
 * (FOR UPDATE, in id order). So it runs while the pool serves (a refresh
 * in flight holds the same row lock; whoever comes second sees the
 * other's result), two rotations at once never write a row twice (the
 * second re-reads a row it waited for and finds it done), and an
 * interrupted rotation is simply run again. Plaintext exists only in
 * this process's memory, wiped after each batch; PostgreSQL only ever
 * sees sealed values. */
#ifndef SV_VAULT_ROTATE_H
#define SV_VAULT_ROTATE_H

#include <stddef.h>
#include <stdio.h>

#include <libpq-fe.h>

#include "crypto/sv_vault.h"

typedef struct sv_vault_rotation {
    long credentials;    /* rows re-sealed */
    long secrets;
    long failed;         /* values that did not open (unknown key, altered) */
} sv_vault_rotation;

/* Re-seals under v's current key, batch rows per transaction, printing
 * progress to out and each value that does not open (by table and id,
 * never its content). conn must be allowed to SET ROLE service_role.
 * Returns SV_OK (r->failed may still be > 0) or SV_ERROR with err. */
int sv_vault_rotate(PGconn *conn, const sv_vault *v, int batch, FILE *out,
                    sv_vault_rotation *r, char *err, size_t errlen);

/* Prints, per key id, how many credentials and secrets it seals and
 * whether it is the current key, an old one, or missing from the
 * configuration. Returns SV_OK or SV_ERROR with err. *not_current is
 * the number of rows under another key than the current one. */
int sv_vault_rotate_status(PGconn *conn, const sv_vault *v, FILE *out, long *not_current, char *err,
                    size_t errlen);

#endif
