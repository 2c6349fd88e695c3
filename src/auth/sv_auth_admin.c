#include "auth/sv_auth_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/sv_err.h"
#include "crypto/sv_password.h"

/* Runs sql with params, expecting status want; on anything else fills err
 * (prefixed with what) and returns NULL. The caller PQclears. */
static PGresult *sv_auth_admin_exec(PGconn *conn, const char *what, const char *sql, int nparams,
                                    const char *const *params, ExecStatusType want, char *err,
                                    size_t errlen)
{
    PGresult *r = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (r != NULL && PQresultStatus(r) == want)
        return r;
    const char *msg = r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(conn);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        n--;
    snprintf(err, errlen, "%s: %.*s", what, (int)n, msg);
    PQclear(r);
    return NULL;
}

/* Abandons the open transaction; the error that led here is already in
 * the caller's err. */
static void sv_auth_admin_rollback(PGconn *conn)
{
    PQclear(PQexec(conn, "ROLLBACK"));
}

int sv_auth_admin_list(PGconn *conn, FILE *out, char *err, size_t errlen)
{
    PGresult *r = sv_auth_admin_exec(conn, "list",
        "SELECT id, email, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
        "coalesce(to_char(last_sign_in_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-') "
        "FROM auth.users ORDER BY created_at, id",
        0, NULL, PGRES_TUPLES_OK, err, errlen);
    if (r == NULL)
        return SV_ERROR;
    for (int i = 0; i < PQntuples(r); i++)
        fprintf(out, "id=%s email=%s created_at=%s last_sign_in_at=%s\n", PQgetvalue(r, i, 0),
                PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
    PQclear(r);
    return SV_OK;
}

int sv_auth_admin_set_password(PGconn *conn, const char *email, const char *pw, size_t len,
                               int min_chars, char user_id[SV_AUTH_ADMIN_ID_BYTES], long *revoked,
                               int *found, char *err, size_t errlen)
{
    *found = 0;
    *revoked = 0;
    size_t chars = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)pw[i] & 0xc0) != 0x80)
            chars++;
    if (memchr(pw, '\0', len) != NULL || len > SV_PASSWORD_MAX || chars < (size_t)min_chars) {
        snprintf(err, errlen, "the password must be at least %d characters and at most %d bytes, "
                 "without NUL", min_chars, SV_PASSWORD_MAX);
        return SV_ERROR;
    }
    char hash[SV_PASSWORD_HASH_BYTES];
    if (sv_password_hash(hash, pw, len) != SV_OK) {
        snprintf(err, errlen, "cannot hash the password: out of memory");
        return SV_ERROR;
    }

    PGresult *r = sv_auth_admin_exec(conn, "begin", "BEGIN", 0, NULL, PGRES_COMMAND_OK, err, errlen);
    if (r == NULL)
        return SV_ERROR;
    PQclear(r);
    const char *who[2] = { hash, email };
    r = sv_auth_admin_exec(conn, "set the password",
        "UPDATE auth.users SET encrypted_password = $1 WHERE lower(email) = lower($2) RETURNING id",
        2, who, PGRES_TUPLES_OK, err, errlen);
    sodium_memzero(hash, sizeof(hash));
    if (r == NULL || PQntuples(r) == 0) {
        int failed = r == NULL;         /* else no account has that email */
        PQclear(r);
        sv_auth_admin_rollback(conn);
        return failed ? SV_ERROR : SV_OK;
    }
    snprintf(user_id, SV_AUTH_ADMIN_ID_BYTES, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);

    /* One statement: the sessions, their refresh tokens, and the failed
     * logins counted against the account (from any address). */
    const char *params[2] = { user_id, email };
    r = sv_auth_admin_exec(conn, "revoke the sessions",
        "WITH s AS (UPDATE auth.sessions SET revoked_at = now() "
        "            WHERE user_id = $1 AND revoked_at IS NULL RETURNING id), "
        "     t AS (UPDATE auth.refresh_tokens SET revoked = true "
        "            WHERE user_id = $1 AND NOT revoked RETURNING id), "
        "     f AS (DELETE FROM auth.login_attempts "
        "            WHERE NOT succeeded AND (key = 'email:' || lower($2) "
        "                  OR starts_with(key, 'email:' || lower($2) || ' ip:')) RETURNING id) "
        "SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM t), (SELECT count(*) FROM f)",
        2, params, PGRES_TUPLES_OK, err, errlen);
    if (r == NULL) {
        sv_auth_admin_rollback(conn);
        return SV_ERROR;
    }
    *revoked = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    r = sv_auth_admin_exec(conn, "commit", "COMMIT", 0, NULL, PGRES_COMMAND_OK, err, errlen);
    if (r == NULL)
        return SV_ERROR;
    PQclear(r);
    *found = 1;
    return SV_OK;
}

int sv_auth_admin_delete(PGconn *conn, const char *email, char user_id[SV_AUTH_ADMIN_ID_BYTES],
                         int *found, char *err, size_t errlen)
{
    *found = 0;
    const char *params[1] = { email };
    PGresult *r = sv_auth_admin_exec(conn, "delete",
        "SELECT u.id, auth.delete_user(u.id) FROM auth.users u WHERE lower(u.email) = lower($1)",
        1, params, PGRES_TUPLES_OK, err, errlen);
    if (r == NULL)
        return SV_ERROR;
    if (PQntuples(r) > 0 && strcmp(PQgetvalue(r, 0, 1), "t") == 0) {
        snprintf(user_id, SV_AUTH_ADMIN_ID_BYTES, "%s", PQgetvalue(r, 0, 0));
        *found = 1;
    }
    PQclear(r);
    return SV_OK;
}
