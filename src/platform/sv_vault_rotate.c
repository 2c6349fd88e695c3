#include "platform/sv_vault_rotate.h"

#include <stdlib.h>
#include <string.h>

#include "core/sv_arena.h"
#include "core/sv_err.h"

#define SV_ROTATE_NIL_UUID "00000000-0000-0000-0000-000000000000"

static int sv_rotate_exec(PGconn *conn, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return ok ? SV_OK : SV_ERROR;
}

static void sv_rotate_strip(char *err)
{
    size_t n = strlen(err);
    while (n > 0 && err[n - 1] == '\n')
        err[--n] = '\0';
}

/* Re-seals one value of a row: *out is the new sealed text, or value
 * itself when it is a vault reference (not sealed here). Returns 0, or -1
 * when it does not open (reason in *why). */
static int sv_rotate_value(const sv_vault *v, sv_arena *arena, const char *value, const char *ad,
                           size_t adlen, const char **out, const char **why)
{
    char *plain;
    size_t len;

    *out = value;
    if (value == NULL || sv_vault_sealed_key_id(value) == 0)
        return 0;
    sv_vault_status st = sv_vault_open(v, arena, value, ad, adlen, &plain, &len, NULL);
    if (st != SV_VAULT_OK) {
        *why = sv_vault_strerror(st);
        return -1;
    }
    *out = sv_vault_seal(v, arena, plain, len, ad, adlen);
    if (*out == NULL) {
        *why = "cannot seal";
        return -1;
    }
    return 0;
}

/* One batch of one table. Returns the rows it looked at (0: done), or -1
 * with err. *last is the id to continue after. */
static long sv_rotate_batch(PGconn *conn, const sv_vault *v, int secrets, int batch, char *last,
                            FILE *out, sv_vault_rotation *r, char *err, size_t errlen)
{
    static const char cred_sql[] =
        "SELECT id, user_id, platform_id, encrypted_access_token, encrypted_refresh_token "
        "  FROM public.platform_credentials "
        " WHERE key_id <> $1::int AND id > $2::uuid ORDER BY id LIMIT $3::int FOR UPDATE";
    static const char cred_upd[] =
        "UPDATE public.platform_credentials "
        "   SET encrypted_access_token = $2, encrypted_refresh_token = $3 WHERE id = $1::uuid";
    static const char sec_sql[] =
        "SELECT id, secret FROM vault.secrets "
        " WHERE key_id <> $1::int AND id > $2::uuid ORDER BY id LIMIT $3::int FOR UPDATE";
    static const char sec_upd[] = "UPDATE vault.secrets SET secret = $2 WHERE id = $1::uuid";
    char cur[16], lim[16];
    sv_arena arena;
    long seen = 0;

    snprintf(cur, sizeof(cur), "%d", (int)sv_vault_current_id(v));
    snprintf(lim, sizeof(lim), "%d", batch);
    if (sv_rotate_exec(conn, "BEGIN", err, errlen) != SV_OK)
        return -1;
    const char *params[3] = { cur, last, lim };
    PGresult *rows = PQexecParams(conn, secrets ? sec_sql : cred_sql, 3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(rows) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQresultErrorMessage(rows));
        PQclear(rows);
        char ignored[8];
        sv_rotate_exec(conn, "ROLLBACK", ignored, sizeof(ignored));
        return -1;
    }
    sv_arena_init(&arena, 16384);
    seen = PQntuples(rows);
    for (int i = 0; i < PQntuples(rows); i++) {
        const char *id = PQgetvalue(rows, i, 0);
        const char *why = NULL;
        int bad = 0;
        PGresult *u = NULL;
        snprintf(last, 37, "%s", id);
        if (secrets) {
            size_t adlen;
            const char *ad = sv_vault_ad_secret(&arena, id, &adlen);
            const char *sealed;
            bad = sv_rotate_value(v, &arena, PQgetvalue(rows, i, 1), ad, adlen, &sealed, &why);
            if (!bad) {
                const char *up[2] = { id, sealed };
                u = PQexecParams(conn, sec_upd, 2, NULL, up, NULL, NULL, 0);
            }
        } else {
            const char *uid = PQgetvalue(rows, i, 1), *pid = PQgetvalue(rows, i, 2);
            const char *acc = PQgetvalue(rows, i, 3);
            const char *ref = PQgetisnull(rows, i, 4) ? NULL : PQgetvalue(rows, i, 4);
            size_t alen, rlen;
            const char *aad = sv_vault_ad_credential(&arena, uid, pid, "access_token", &alen);
            const char *rad = sv_vault_ad_credential(&arena, uid, pid, "refresh_token", &rlen);
            const char *nacc, *nref;
            bad = sv_rotate_value(v, &arena, acc, aad, alen, &nacc, &why) ||
                  sv_rotate_value(v, &arena, ref, rad, rlen, &nref, &why);
            if (!bad) {
                const char *up[3] = { id, nacc, nref };
                u = PQexecParams(conn, cred_upd, 3, NULL, up, NULL, NULL, 0);
            }
        }
        if (bad) {
            r->failed++;
            fprintf(out, "failed table=%s id=%s reason=\"%s\"\n",
                    secrets ? "vault.secrets" : "platform_credentials", id, why);
            continue;
        }
        if (PQresultStatus(u) != PGRES_COMMAND_OK) {
            snprintf(err, errlen, "%s", PQresultErrorMessage(u));
            PQclear(u);
            PQclear(rows);
            sv_arena_free(&arena);
            char ignored[8];
            sv_rotate_exec(conn, "ROLLBACK", ignored, sizeof(ignored));
            return -1;
        }
        PQclear(u);
        if (secrets)
            r->secrets++;
        else
            r->credentials++;
    }
    PQclear(rows);
    sv_arena_free(&arena);   /* wipes the plaintext of this batch */
    if (sv_rotate_exec(conn, "COMMIT", err, errlen) != SV_OK)
        return -1;
    return seen;
}

int sv_vault_rotate(PGconn *conn, const sv_vault *v, int batch, FILE *out,
                    sv_vault_rotation *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    if (!sv_vault_can_seal(v)) {
        snprintf(err, errlen, "no vault_key_file configured: nothing to rotate to");
        return SV_ERROR;
    }
    if (sv_rotate_exec(conn, "SET ROLE service_role", err, errlen) != SV_OK) {
        sv_rotate_strip(err);
        return SV_ERROR;
    }
    for (int secrets = 0; secrets <= 1; secrets++) {
        char last[37] = SV_ROTATE_NIL_UUID;
        long n;
        while ((n = sv_rotate_batch(conn, v, secrets, batch, last, out, r, err, errlen)) > 0) {
            fprintf(out, "rotated credentials=%ld secrets=%ld failed=%ld\n", r->credentials,
                    r->secrets, r->failed);
            fflush(out);
        }
        if (n < 0) {
            sv_rotate_strip(err);
            return SV_ERROR;
        }
    }
    return SV_OK;
}

typedef struct sv_status_row {
    int  key_id;
    long credentials, secrets;
} sv_status_row;

static int sv_status_cmp(const void *a, const void *b)
{
    const sv_status_row *x = a, *y = b;
    return (x->key_id > y->key_id) - (x->key_id < y->key_id);
}

static sv_status_row *sv_status_find(sv_status_row *rows, int *n, int key_id)
{
    for (int i = 0; i < *n; i++)
        if (rows[i].key_id == key_id)
            return &rows[i];
    rows[*n] = (sv_status_row){ key_id, 0, 0 };
    return &rows[(*n)++];
}

int sv_vault_rotate_status(PGconn *conn, const sv_vault *v, FILE *out, long *not_current, char *err,
                    size_t errlen)
{
    static const char sql[] =
        "SELECT 0, key_id, count(*) FROM public.platform_credentials WHERE key_id IS NOT NULL GROUP BY 2 "
        "UNION ALL SELECT 1, key_id, count(*) FROM vault.secrets GROUP BY 2 "
        "UNION ALL SELECT 2, 0, count(*) FROM public.platform_credentials WHERE key_id IS NULL";
    *not_current = 0;
    if (sv_rotate_exec(conn, "SET ROLE service_role", err, errlen) != SV_OK) {
        sv_rotate_strip(err);
        return SV_ERROR;
    }
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQresultErrorMessage(res));
        sv_rotate_strip(err);
        PQclear(res);
        return SV_ERROR;
    }
    int nrows = PQntuples(res), n = 0;
    sv_status_row *rows = calloc((size_t)nrows + SV_VAULT_MAX_KEYS + 1, sizeof(*rows));
    long refs = 0;
    if (rows == NULL) {
        PQclear(res);
        snprintf(err, errlen, "out of memory");
        return SV_ERROR;
    }
    for (int i = 0; v != NULL && i < v->n; i++)
        sv_status_find(rows, &n, v->keys[i].id);
    for (int i = 0; i < nrows; i++) {
        int kind = atoi(PQgetvalue(res, i, 0));
        long count = atol(PQgetvalue(res, i, 2));
        if (kind == 2) {
            refs = count;
            continue;
        }
        sv_status_row *row = sv_status_find(rows, &n, atoi(PQgetvalue(res, i, 1)));
        if (kind == 0)
            row->credentials += count;
        else
            row->secrets += count;
    }
    PQclear(res);
    qsort(rows, (size_t)n, sizeof(*rows), sv_status_cmp);
    int32_t current = sv_vault_current_id(v);
    for (int i = 0; i < n; i++) {
        const char *state = rows[i].key_id == current          ? "current"
                            : sv_vault_has_key(v, rows[i].key_id) ? "old"
                                                                  : "missing";
        fprintf(out, "key_id=%d credentials=%ld secrets=%ld key=%s\n", rows[i].key_id,
                rows[i].credentials, rows[i].secrets, state);
        if (rows[i].key_id != current)
            *not_current += rows[i].credentials + rows[i].secrets;
    }
    fprintf(out, "credentials_referencing_vault_secrets=%ld not_under_current_key=%ld\n", refs,
            *not_current);
    free(rows);
    return SV_OK;
}
