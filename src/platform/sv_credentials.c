#include "platform/sv_credentials.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "core/sv_log.h"
#include "core/sv_uuid.h"
#include "platform/sv_oauth.h"

static const char sv_cred_claims[] = "{\"role\":\"service_role\"}";

const char *sv_token_source_name(sv_token_source s)
{
    switch (s) {
    case SV_TOKEN_VALID: return "valid";
    case SV_TOKEN_REFRESHED: return "refreshed";
    case SV_TOKEN_REFRESHED_ELSEWHERE: return "refreshed_elsewhere";
    case SV_TOKEN_STILL_VALID: return "still_valid";
    }
    return "?";
}

/* --- database -------------------------------------------------------------- */

/* A failed statement as an error: invalid input (class 22) is the
 * caller's 400, a lost connection 503, the rest 500 (logged). */
static int sv_cred_db_error(sv_platform_env *env, PGresult *r, const char *step, sv_error *err)
{
    if (r == NULL)
        return sv_db_unavailable(env->db, env->cfg->retry_after, err);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    char msg[200];
    snprintf(msg, sizeof(msg), "%s", PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : "");
    for (char *p = msg; *p; p++)
        if (*p == '"' || *p == '\n')
            *p = '\'';
    if (state != NULL && strncmp(state, "22", 2) == 0)
        return sv_fail(err, 400, "invalid_value", sv_arena_printf(env->arena, "invalid value: %s", msg));
    if (state != NULL && (strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0))
        return sv_fail(err, 503, "busy", "the credential is busy; try again");
    sv_log_error("credentials_db", "step=%s sqlstate=%s msg=\"%s\" request_id=%s", step, state ? state : "-",
                 msg, env->request_id);
    return sv_fail(err, 500, "unexpected_failure", "unexpected database error");
}

/* A statement's result r: returned when the statement succeeded, else
 * cleared, and NULL with err. */
static PGresult *sv_cred_result(sv_platform_env *env, const char *step, PGresult *r, sv_error *err)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return r;
    sv_cred_db_error(env, r, step, err);
    PQclear(r);
    return NULL;
}

/* One statement as service_role, in its own transaction. Returns the
 * result (caller PQclears) when it succeeded, else NULL with err. */
static PGresult *sv_cred_query(sv_platform_env *env, const char *step, const char *sql, int n,
                               const char *const *values, sv_error *err)
{
    PGresult *r = NULL;
    if (sv_db_query_as(env->db, "service_role", sv_cred_claims, sql, n, values, &r) != SV_OK) {
        sv_db_unavailable(env->db, env->cfg->retry_after, err);
        return NULL;
    }
    return sv_cred_result(env, step, r, err);
}

/* One statement inside the explicit transaction the caller opened. */
static PGresult *sv_cred_in_tx(sv_platform_env *env, const char *step, const char *sql, int n,
                               const char *const *values, sv_error *err)
{
    PGresult *r = NULL;
    if (sv_db_query(env->db, sql, n, values, &r) != SV_OK) {
        sv_db_unavailable(env->db, env->cfg->retry_after, err);
        return NULL;
    }
    return sv_cred_result(env, step, r, err);
}

/* BEGIN, as service_role, with the request's statement timeout and a
 * lock timeout a little longer than a provider call may take (a refresh
 * holds the row lock across its call). */
static int sv_cred_begin(sv_platform_env *env, sv_error *err)
{
    static const char set_sql[] =
        "SELECT set_config('role', 'service_role', true), set_config('request.jwt.claims', $1, true), "
        "set_config('statement_timeout', $2, true), set_config('lock_timeout', $3, true)";
    char lock_ms[24];
    snprintf(lock_ms, sizeof(lock_ms), "%d", (env->cfg->oauth_http_timeout + 5) * 1000);
    PGresult *r = sv_cred_in_tx(env, "begin", "BEGIN", 0, NULL, err);
    if (r == NULL)
        return SV_ERROR;
    PQclear(r);
    const char *v[3] = { sv_cred_claims, env->db->statement_timeout, lock_ms };
    if ((r = sv_cred_in_tx(env, "begin", set_sql, 3, v, err)) == NULL) {
        PGresult *rb = NULL;
        sv_db_query(env->db, "ROLLBACK", 0, NULL, &rb);
        PQclear(rb);
        return SV_ERROR;
    }
    PQclear(r);
    return SV_OK;
}

static int sv_cred_end(sv_platform_env *env, const char *how, sv_error *err)
{
    sv_error ignored;
    sv_error_init(&ignored);
    PGresult *r = sv_cred_in_tx(env, how, how, 0, NULL, err ? err : &ignored);
    if (r == NULL)
        return SV_ERROR;
    PQclear(r);
    return SV_OK;
}

/* Opens a token column's value: a sealed value (the row's associated
 * data) or the id of a Vault secret. in_tx: inside the caller's
 * transaction. Returns SV_OK with *plain (secret) or SV_ERROR. */
static int sv_cred_open(sv_platform_env *env, int in_tx, const char *value, const char *user_id,
                        const char *platform_id, const char *field, char **plain, size_t *len,
                        sv_error *err)
{
    static const char secret_sql[] = "SELECT secret FROM vault.secrets WHERE id = $1::uuid";
    size_t adlen;
    const char *ad;
    const char *sealed = value;
    PGresult *r = NULL;
    sv_vault_status st;

    if (sv_uuid_valid(value)) {
        const char *v[1] = { value };
        r = in_tx ? sv_cred_in_tx(env, "vault_secret", secret_sql, 1, v, err)
                  : sv_cred_query(env, "vault_secret", secret_sql, 1, v, err);
        if (r == NULL)
            return SV_ERROR;
        if (PQntuples(r) != 1) {
            PQclear(r);
            return sv_fail(err, 500, "credential_unreadable", "the credential's Vault secret is gone");
        }
        sealed = PQgetvalue(r, 0, 0);
        ad = sv_vault_ad_secret(env->arena, value, &adlen);
    } else {
        ad = sv_vault_ad_credential(env->arena, user_id, platform_id, field, &adlen);
    }
    st = sv_vault_open(env->vault, env->arena, sealed, ad, adlen, plain, len, NULL);
    PQclear(r);
    if (st == SV_VAULT_OK)
        return SV_OK;
    sv_log_error("credential_unreadable", "user_id=%s platform_id=%s field=%s reason=\"%s\" request_id=%s",
                 user_id, platform_id, field, sv_vault_strerror(st), env->request_id);
    return sv_fail(err, 500, "credential_unreadable",
                   st == SV_VAULT_UNKNOWN_KEY ? "the credential was sealed with a key that is not configured"
                                              : "the credential cannot be opened");
}

static const char *sv_cred_seal(sv_platform_env *env, const char *user_id, const char *platform_id,
                                const char *field, const char *plain, size_t len)
{
    size_t adlen;
    const char *ad = sv_vault_ad_credential(env->arena, user_id, platform_id, field, &adlen);
    return sv_vault_seal(env->vault, env->arena, plain, len, ad, adlen);
}

static int sv_cred_need_vault(sv_platform_env *env, sv_error *err)
{
    if (sv_vault_can_seal(env->vault))
        return SV_OK;
    return sv_fail(err, 503, "vault_not_configured",
                   "credential storage is not configured on this server (vault_key_file)");
}

/* --- store, list -------------------------------------------------------------- */

int sv_credentials_platform_id(sv_platform_env *env, const char *platform, const char **id,
                               sv_error *err)
{
    static const char sql[] = "SELECT id FROM public.platforms WHERE name = $1";
    const char *v[1] = { platform };
    PGresult *r = sv_cred_query(env, "platform_id", sql, 1, v, err);
    if (r == NULL)
        return SV_ERROR;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return sv_fail(err, 404, "unknown_platform",
                       sv_arena_printf(env->arena, "unknown platform: %.40s", platform));
    }
    *id = sv_arena_strdup(env->arena, PQgetvalue(r, 0, 0));
    PQclear(r);
    return SV_OK;
}

/* The metadata of a credential row as JSON, selected from c with the
 * platform's name as $name. */
#define SV_CRED_META(name)                                                                          \
    "json_build_object('platform', " name ", 'scopes', c.scopes, 'token_expires_at', "              \
    "c.token_expires_at, 'is_active', c.is_active, 'last_verified_at', c.last_verified_at, "        \
    "'platform_user_id', c.platform_user_id, 'has_refresh_token', c.encrypted_refresh_token IS NOT NULL, " \
    "'created_at', c.created_at, 'updated_at', c.updated_at)"

int sv_credentials_store(sv_platform_env *env, const sv_credential_input *in,
                         const char **meta_json, int *inserted, sv_error *err)
{
    static const char sql[] =
        "INSERT INTO public.platform_credentials AS c (user_id, platform_id, encrypted_access_token, "
        "       encrypted_refresh_token, token_expires_at, scopes, platform_user_id, is_active, last_verified_at) "
        "VALUES ($1::uuid, $2::uuid, $3, $4, "
        "        coalesce($5::timestamptz, now() + make_interval(secs => $6::double precision)), "
        "        ARRAY(SELECT json_array_elements_text(coalesce($7::json, '[]'))), $8, true, "
        "        CASE WHEN $9::boolean THEN now() END) "
        "ON CONFLICT (user_id, platform_id) DO UPDATE SET "
        "       encrypted_access_token = EXCLUDED.encrypted_access_token, "
        "       encrypted_refresh_token = EXCLUDED.encrypted_refresh_token, "
        "       token_expires_at = EXCLUDED.token_expires_at, scopes = EXCLUDED.scopes, "
        "       platform_user_id = coalesce(EXCLUDED.platform_user_id, c.platform_user_id), "
        "       is_active = true, last_verified_at = EXCLUDED.last_verified_at "
        "RETURNING " SV_CRED_META("$10::text") "::text, (xmax = 0)";

    if (sv_cred_need_vault(env, err) != SV_OK)
        return SV_ERROR;
    const char *acc = sv_cred_seal(env, in->user_id, in->platform_id, "access_token", in->access_token,
                                   in->access_len);
    const char *ref = in->refresh_token == NULL ? NULL
                      : sv_cred_seal(env, in->user_id, in->platform_id, "refresh_token",
                                     in->refresh_token, in->refresh_len);
    if (acc == NULL || (in->refresh_token != NULL && ref == NULL))
        return sv_fail(err, 400, "invalid_value", "token too long");
    const char *expires_in = in->expires_in >= 0 ? sv_arena_printf(env->arena, "%ld", in->expires_in) : NULL;
    const char *v[10] = { in->user_id, in->platform_id, acc, ref, in->expires_at, expires_in,
                          in->scopes_json, in->platform_user_id, in->verified ? "true" : "false",
                          in->platform };
    PGresult *r = sv_cred_query(env, "store", sql, 10, v, err);
    if (r == NULL)
        return SV_ERROR;
    *meta_json = sv_arena_strdup(env->arena, PQgetvalue(r, 0, 0));
    *inserted = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    PQclear(r);
    sv_log_info("credential_stored", "user_id=%s platform=%s new=%d key_id=%d request_id=%s", in->user_id,
                in->platform, *inserted, (int)sv_vault_current_id(env->vault), env->request_id);
    return SV_OK;
}

int sv_credentials_list(sv_platform_env *env, const char *user_id, const char **json,
                        sv_error *err)
{
    static const char sql[] =
        "SELECT coalesce(json_agg(" SV_CRED_META("p.name") " ORDER BY p.name), '[]')::text "
        "  FROM public.platform_credentials c JOIN public.platforms p ON p.id = c.platform_id "
        " WHERE c.user_id = $1::uuid";
    const char *v[1] = { user_id };
    PGresult *r = sv_cred_query(env, "list", sql, 1, v, err);
    if (r == NULL)
        return SV_ERROR;
    *json = sv_arena_strdup(env->arena, PQgetvalue(r, 0, 0));
    PQclear(r);
    return SV_OK;
}

/* --- one row ---------------------------------------------------------------- */

typedef struct sv_cred_row {
    const char *id, *platform_id, *access, *refresh;   /* refresh NULL when none */
    long long   expires_at;                            /* 0 when NULL */
    int         active;
} sv_cred_row;

/* Loads (user, platform)'s row; lock: FOR UPDATE inside the caller's
 * transaction. Returns SV_OK, or SV_ERROR with err filled: a 404
 * credential_not_found when the user has no such credential. */
static int sv_cred_load(sv_platform_env *env, const char *user_id, const char *platform, int lock,
                        sv_cred_row *row, sv_error *err)
{
    static const char sql[] =
        "SELECT c.id, c.platform_id, c.encrypted_access_token, c.encrypted_refresh_token, "
        "       coalesce(extract(epoch FROM c.token_expires_at)::bigint, 0), c.is_active "
        "  FROM public.platform_credentials c JOIN public.platforms p ON p.id = c.platform_id "
        " WHERE c.user_id = $1::uuid AND p.name = $2";
    static const char sql_lock[] =
        "SELECT c.id, c.platform_id, c.encrypted_access_token, c.encrypted_refresh_token, "
        "       coalesce(extract(epoch FROM c.token_expires_at)::bigint, 0), c.is_active "
        "  FROM public.platform_credentials c JOIN public.platforms p ON p.id = c.platform_id "
        " WHERE c.user_id = $1::uuid AND p.name = $2 FOR UPDATE OF c";
    const char *v[2] = { user_id, platform };
    PGresult *r = lock ? sv_cred_in_tx(env, "load_locked", sql_lock, 2, v, err)
                       : sv_cred_query(env, "load", sql, 2, v, err);
    if (r == NULL)
        return SV_ERROR;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return sv_fail(err, 404, "credential_not_found",
                       sv_arena_printf(env->arena, "no %.40s credential for this user", platform));
    }
    row->id = sv_arena_strdup(env->arena, PQgetvalue(r, 0, 0));
    row->platform_id = sv_arena_strdup(env->arena, PQgetvalue(r, 0, 1));
    row->access = sv_arena_strdup(env->arena, PQgetvalue(r, 0, 2));
    row->refresh = PQgetisnull(r, 0, 3) ? NULL : sv_arena_strdup(env->arena, PQgetvalue(r, 0, 3));
    row->expires_at = atoll(PQgetvalue(r, 0, 4));
    row->active = strcmp(PQgetvalue(r, 0, 5), "t") == 0;
    PQclear(r);
    return SV_OK;
}

/* Writes value's new plaintext where the old one lived: into the row
 * (a sealed value: returned for the UPDATE) or into the Vault secret it
 * references (updated here, and the reference returned unchanged). */
static int sv_cred_reseal(sv_platform_env *env, const sv_cred_row *row, const char *user_id,
                          const char *field, const char *old, const char *plain, size_t len,
                          const char **out, sv_error *err)
{
    if (old != NULL && sv_uuid_valid(old)) {
        static const char sql[] = "UPDATE vault.secrets SET secret = $2 WHERE id = $1::uuid";
        size_t adlen;
        const char *ad = sv_vault_ad_secret(env->arena, old, &adlen);
        const char *sealed = sv_vault_seal(env->vault, env->arena, plain, len, ad, adlen);
        const char *v[2] = { old, sealed };
        PGresult *r = sealed ? sv_cred_in_tx(env, "vault_update", sql, 2, v, err) : NULL;
        if (r == NULL)
            return sealed ? SV_ERROR : sv_fail(err, 500, "unexpected_failure", "cannot seal");
        PQclear(r);
        *out = old;
        return SV_OK;
    }
    *out = sv_cred_seal(env, user_id, row->platform_id, field, plain, len);
    return *out != NULL ? SV_OK : sv_fail(err, 500, "unexpected_failure", "cannot seal");
}

/* The refresh itself, inside the transaction that holds the row lock. */
static int sv_cred_refresh_locked(sv_platform_env *env, const sv_oauth_provider *prov,
                                  const sv_cred_row *row, const char *user_id, const char *refresh,
                                  size_t refresh_len, sv_platform_token *out, int *refused,
                                  sv_oauth_tokens *t, sv_error *err)
{
    static const char upd[] =
        "UPDATE public.platform_credentials SET encrypted_access_token = $2, encrypted_refresh_token = $3, "
        "       token_expires_at = CASE WHEN $4::bigint IS NULL THEN NULL "
        "                               ELSE now() + make_interval(secs => $4::bigint) END, "
        "       scopes = coalesce((SELECT array_agg(x) FROM json_array_elements_text($5::json) x), scopes), "
        "       platform_user_id = coalesce($6, platform_user_id), "
        "       last_verified_at = now(), is_active = true "
        " WHERE id = $1::uuid RETURNING coalesce(extract(epoch FROM token_expires_at)::bigint, 0)";
    static const char deactivate[] =
        "UPDATE public.platform_credentials SET is_active = false WHERE id = $1::uuid";

    if (env->before_call != NULL)
        env->before_call(env->before_call_arg);
    sv_oauth_refresh(env->arena, prov, refresh, (long)env->cfg->oauth_http_timeout * 1000,
                     env->request_id, t);
    *refused = t->outcome == SV_OAUTH_REFUSED;
    if (t->outcome == SV_OAUTH_REFUSED) {
        const char *v[1] = { row->id };
        PGresult *r = sv_cred_in_tx(env, "deactivate", deactivate, 1, v, err);
        if (r == NULL)
            return SV_ERROR;
        PQclear(r);
        sv_log_warn("credential_deactivated", "user_id=%s platform=%s reason=refresh_refused request_id=%s",
                    user_id, prov->platform, env->request_id);
        return SV_OK;   /* committed by the caller */
    }
    if (t->outcome != SV_OAUTH_OK)
        return SV_ERROR;

    const char *acc, *ref = row->refresh;
    if (sv_cred_reseal(env, row, user_id, "access_token", row->access, t->access_token, t->access_len,
                       &acc, err) != SV_OK)
        return SV_ERROR;
    /* A new refresh token replaces the old one (TikTok rotates them);
     * without one the old one stays, sealed again with the current key
     * so the row's two values name one key. */
    const char *rplain = t->refresh_token ? t->refresh_token : refresh;
    size_t rlen = t->refresh_token ? t->refresh_len : refresh_len;
    if (sv_cred_reseal(env, row, user_id, "refresh_token", row->refresh, rplain, rlen, &ref, err) != SV_OK)
        return SV_ERROR;
    const char *exp = t->expires_in >= 0 ? sv_arena_printf(env->arena, "%ld", t->expires_in) : NULL;
    const char *v[6] = { row->id, acc, ref, exp, t->scopes_json, t->platform_user_id };
    PGresult *r = sv_cred_in_tx(env, "refresh_update", upd, 6, v, err);
    if (r == NULL)
        return SV_ERROR;
    out->expires_at = PQntuples(r) == 1 ? atoll(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    out->access_token = t->access_token;
    out->len = t->access_len;
    out->source = SV_TOKEN_REFRESHED;
    return SV_OK;
}

int sv_platform_token_get(sv_platform_env *env, const char *user_id, const char *platform,
                          const char *rejected, sv_platform_token *out, sv_error *err)
{
    sv_cred_row row, locked;
    char *access;
    size_t len;
    long long now = (long long)time(NULL), margin = env->cfg->oauth_refresh_margin;

    memset(out, 0, sizeof(*out));
    if (sv_cred_load(env, user_id, platform, 0, &row, err) != SV_OK)
        return SV_ERROR;
    if (!row.active)
        return sv_fail(err, 409, "credential_inactive",
                       "the credential was refused by the platform: connect the account again");
    if (sv_cred_open(env, 0, row.access, user_id, row.platform_id, "access_token", &access, &len, err) != SV_OK)
        return SV_ERROR;
    int expired = row.expires_at > 0 && row.expires_at <= now;
    int due = rejected != NULL || (row.expires_at > 0 && row.expires_at - now <= margin);
    if (!due) {
        *out = (sv_platform_token){ access, len, row.expires_at, SV_TOKEN_VALID };
        return SV_OK;
    }
    sv_oauth_provider prov;
    int can_refresh = row.refresh != NULL && sv_oauth_provider_get(env->cfg, platform, &prov) &&
                      sv_oauth_ready(&prov);
    if (!can_refresh) {
        if (!expired && rejected == NULL) {
            *out = (sv_platform_token){ access, len, row.expires_at, SV_TOKEN_STILL_VALID };
            return SV_OK;
        }
        if (row.refresh == NULL)
            return sv_fail(err, 409, "credential_expired",
                           "the token has expired and there is no refresh token: connect the account again");
        return sv_fail(err, 503, "oauth_not_configured",
                       sv_arena_printf(env->arena, "no OAuth client is configured for %.40s", platform));
    }
    if (sv_cred_need_vault(env, err) != SV_OK)
        return SV_ERROR;

    /* Serialise on the row: whoever comes second finds the work done. */
    if (sv_cred_begin(env, err) != SV_OK)
        return SV_ERROR;
    if (sv_cred_load(env, user_id, platform, 1, &locked, err) != SV_OK) {
        sv_cred_end(env, "ROLLBACK", NULL);
        return SV_ERROR;
    }
    if (!locked.active) {
        sv_cred_end(env, "ROLLBACK", NULL);
        return sv_fail(err, 409, "credential_inactive",
                       "the credential was refused by the platform: connect the account again");
    }
    if (strcmp(locked.access, row.access) != 0 || sv_uuid_valid(locked.access)) {
        if (sv_cred_open(env, 1, locked.access, user_id, locked.platform_id, "access_token", &access, &len,
                         err) != SV_OK) {
            sv_cred_end(env, "ROLLBACK", NULL);
            return SV_ERROR;
        }
    }
    int still_due = rejected != NULL
                        ? strlen(rejected) == len && sodium_memcmp(rejected, access, len) == 0
                        : locked.expires_at > 0 && locked.expires_at - now <= margin;
    if (!still_due) {
        sv_cred_end(env, "COMMIT", NULL);
        *out = (sv_platform_token){ access, len, locked.expires_at, SV_TOKEN_REFRESHED_ELSEWHERE };
        return SV_OK;
    }
    char *refresh;
    size_t refresh_len;
    if (locked.refresh == NULL ||
        sv_cred_open(env, 1, locked.refresh, user_id, locked.platform_id, "refresh_token", &refresh,
                     &refresh_len, err) != SV_OK) {
        sv_cred_end(env, "ROLLBACK", NULL);
        return locked.refresh == NULL ? sv_fail(err, 409, "credential_expired", "no refresh token") : SV_ERROR;
    }
    int refused = 0;
    sv_oauth_tokens t;
    memset(&t, 0, sizeof(t));
    int rc = sv_cred_refresh_locked(env, &prov, &locked, user_id, refresh, refresh_len, out, &refused, &t, err);
    if (rc == SV_OK) {
        if (sv_cred_end(env, "COMMIT", err) != SV_OK)
            return SV_ERROR;
        if (refused)
            return sv_fail(err, 409, "credential_inactive",
                           "the platform refused to refresh the token: connect the account again");
        return SV_OK;
    }
    sv_cred_end(env, "ROLLBACK", NULL);
    if (t.outcome == SV_OAUTH_OK || t.outcome == SV_OAUTH_REFUSED)
        return SV_ERROR;   /* the database failed after the provider answered */
    expired = locked.expires_at > 0 && locked.expires_at <= now;
    if (!expired && rejected == NULL) {
        *out = (sv_platform_token){ access, len, locked.expires_at, SV_TOKEN_STILL_VALID };
        sv_error_clear(err);
        return SV_OK;
    }
    return t.outcome == SV_OAUTH_UNREACHABLE
               ? sv_fail(err, 503, "provider_unavailable",
                         sv_arena_printf(env->arena, "%s did not answer the refresh: %s", platform,
                                         t.error ? t.error : "error"))
               : sv_fail(err, 502, "provider_error",
                         sv_arena_printf(env->arena, "%s refused the refresh: %s", platform,
                                         t.error ? t.error : "error"));
}

/* --- delete -------------------------------------------------------------------- */

int sv_credentials_delete(sv_platform_env *env, const char *user_id, const char *platform,
                          int *revoked, const char **why, sv_error *err)
{
    static const char del[] =
        "WITH d AS (DELETE FROM public.platform_credentials WHERE id = $1::uuid "
        "           RETURNING encrypted_access_token, encrypted_refresh_token) "
        "DELETE FROM vault.secrets s USING d "
        " WHERE s.id::text IN (lower(d.encrypted_access_token), lower(d.encrypted_refresh_token))";
    sv_cred_row row;
    sv_oauth_provider prov;

    *revoked = 0;
    *why = NULL;
    if (sv_cred_load(env, user_id, platform, 0, &row, err) != SV_OK)
        return SV_ERROR;
    if (!sv_oauth_provider_get(env->cfg, platform, &prov) || !sv_oauth_ready(&prov)) {
        *why = "no OAuth client is configured for this platform";
    } else if (prov.revoke_url == NULL || prov.revoke_url[0] == '\0') {
        *why = "the platform has no revoke endpoint";
    } else {
        /* Google revokes the whole grant through the refresh token. */
        const char *value = prov.revoke_refresh && row.refresh ? row.refresh : row.access;
        const char *field = value == row.refresh ? "refresh_token" : "access_token";
        char *token;
        size_t len;
        sv_error oerr;
        sv_error_init(&oerr);
        if (sv_cred_open(env, 0, value, user_id, row.platform_id, field, &token, &len, &oerr) != SV_OK) {
            *why = "the stored token cannot be opened";
            sv_error_clear(&oerr);
        } else {
            if (env->before_call != NULL)
                env->before_call(env->before_call_arg);
            *revoked = sv_oauth_revoke(env->arena, &prov, token, (long)env->cfg->oauth_http_timeout * 1000,
                                       env->request_id, why);
            sodium_memzero(token, len);
        }
    }
    const char *v[1] = { row.id };
    PGresult *r = sv_cred_query(env, "delete", del, 1, v, err);
    if (r == NULL)
        return SV_ERROR;
    PQclear(r);
    sv_log_info("credential_deleted", "user_id=%s platform=%s revoked=%d request_id=%s", user_id, platform,
                *revoked, env->request_id);
    return SV_OK;
}
