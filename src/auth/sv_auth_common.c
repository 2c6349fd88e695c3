/* The GoTrue-compatible /auth/v1 endpoints keep account state in the
 * auth schema (sql/001_roles_auth.sql) and change it only through the
 * functions of sql/008_auth_api.sql, each called as one statement run as
 * service_role, so every endpoint is one atomic transaction. This module
 * does what must not happen in SQL: password hashing and verification,
 * token generation, JWT signing, and the HTTP shapes GoTrue (and
 * @supabase/auth-js) use. A password never travels to PostgreSQL, where
 * statement logging would write it down. */
#include "auth/sv_auth_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "core/sv_addr.h"
#include "core/sv_json.h"
#include "core/sv_log.h"
#include "crypto/sv_jwt.h"
#include "crypto/sv_password.h"
#include "db/sv_sqlstate.h"

#define SV_AUTH_EMAIL_MAX 254
#define SV_AUTH_REFRESH_BYTES 32

const char sv_auth_service_claims[] = "{\"role\":\"service_role\"}";

int sv_auth_require_secret(sv_ctx *ctx)
{
    if (ctx->cfg->jwt_secret != NULL && ctx->cfg->jwt_secret[0] != '\0')
        return SV_OK;
    return sv_fail(&ctx->err, 500, "unexpected_failure",
                   "Server misconfiguration: jwt_secret is not configured");
}

int sv_auth_body(sv_ctx *ctx, json_object **body)
{
    if (sv_ctx_body_object(ctx, body, NULL) != SV_OK)
        return sv_fail(&ctx->err, 400, "bad_json", "Could not parse request body as JSON");
    return SV_OK;
}

PGresult *sv_auth_db(sv_ctx *ctx, const char *step, const char *sql, int n,
                     const char *const *values)
{
    PGresult *result = NULL;

    if (sv_db_query_as(ctx->db, "service_role", sv_auth_service_claims, sql, n, values, &result) !=
        SV_OK) {
        sv_db_unavailable(ctx->db, ctx->cfg->retry_after, &ctx->err);
        return NULL;
    }
    if (PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1)
        return result;
    sv_sqlstate_gotrue(result, step, ctx->req->request_id, &ctx->err);
    PQclear(result);
    return NULL;
}

const char *sv_auth_col(PGresult *r, int c)
{
    return PQgetisnull(r, 0, c) ? NULL : PQgetvalue(r, 0, c);
}

char *sv_auth_email(sv_arena *arena, const char *in, size_t len)
{
    while (len > 0 && (*in == ' ' || *in == '\t')) {
        in++;
        len--;
    }
    while (len > 0 && (in[len - 1] == ' ' || in[len - 1] == '\t'))
        len--;
    if (len < 3 || len > SV_AUTH_EMAIL_MAX)
        return NULL;

    char *out = sv_arena_strndup(arena, in, len);
    const char *at = NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c <= 0x20 || c >= 0x7f || strchr("\"(),:;<>[\\]", c) != NULL)
            return NULL;
        if (c == '@') {
            if (at != NULL)
                return NULL;
            at = out + i;
        }
        if (c >= 'A' && c <= 'Z')
            out[i] = (char)(c - 'A' + 'a');
    }
    if (at == NULL || at == out || at - out > 64)
        return NULL;
    const char *domain = at + 1;
    size_t dlen = strlen(domain);
    if (dlen < 3 || strchr(domain, '.') == NULL || domain[0] == '.' || domain[dlen - 1] == '.' ||
        strstr(domain, "..") != NULL)
        return NULL;
    return out;
}

const char *sv_auth_ip(const sv_ctx *ctx)
{
    return sv_addr_is_ip(ctx->req->remote_addr) ? ctx->req->remote_addr : NULL;
}

const char *sv_auth_addr_key(const sv_ctx *ctx)
{
    char key[SV_ADDR_KEY_MAX];

    if (!sv_addr_key(ctx->req->remote_addr, key, sizeof(key)))
        return NULL;
    return sv_arena_strdup(ctx->arena, key);
}

const char *sv_auth_user_agent(sv_ctx *ctx)
{
    const char *ua = sv_request_header(ctx->req, "User-Agent");

    if (ua == NULL)
        return NULL;
    return strlen(ua) > 512 ? sv_arena_strndup(ctx->arena, ua, 512) : ua;
}

/* --- tokens ------------------------------------------------------------ */

const char *sv_auth_hash_token(sv_arena *arena, const char *token, size_t len)
{
    unsigned char h[crypto_generichash_BYTES];
    char *hex = sv_arena_alloc(arena, 2 * sizeof(h) + 1);

    crypto_generichash(h, sizeof(h), (const unsigned char *)token, len, NULL, 0);
    return sodium_bin2hex(hex, 2 * sizeof(h) + 1, h, sizeof(h));
}

void sv_auth_new_refresh(sv_arena *arena, const char **token, const char **hash)
{
    unsigned char raw[SV_AUTH_REFRESH_BYTES];

    randombytes_buf(raw, sizeof(raw));
    *token = sv_jwt_b64url_encode(arena, raw, sizeof(raw));
    sodium_memzero(raw, sizeof(raw));
    *hash = sv_auth_hash_token(arena, *token, strlen(*token));
}

void sv_auth_refresh_chain(sv_ctx *ctx, const char *token, size_t len, const char **tokens,
                           const char **chain_sql)
{
    static const char domain[] = "streamvibe refresh token child\n";
    const char *secret = ctx->cfg->jwt_secret;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    sv_buf sql;

    sv_buf_init(&sql, ctx->arena, SV_AUTH_REFRESH_CHAIN * 68);
    sv_buf_puts(&sql, "{");
    for (int i = 0; i < SV_AUTH_REFRESH_CHAIN; i++) {
        crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)domain, sizeof(domain) - 1);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)token, len);
        crypto_auth_hmacsha256_final(&st, mac);
        tokens[i] = sv_jwt_b64url_encode(ctx->arena, mac, sizeof(mac));
        token = tokens[i];
        len = strlen(token);
        sv_buf_printf(&sql, "%s%s", i ? "," : "", sv_auth_hash_token(ctx->arena, token, len));
    }
    sodium_memzero(&st, sizeof(st));
    sodium_memzero(mac, sizeof(mac));
    sv_buf_puts(&sql, "}");
    *chain_sql = sql.data;
}

/* Copies member key of src into dst (a new reference), or def. */
static void sv_auth_copy(json_object *dst, json_object *src, const char *key, json_object *def)
{
    json_object *v;

    if (json_object_object_get_ex(src, key, &v) && v != NULL) {
        json_object_object_add(dst, key, json_object_get(v));
        json_object_put(def);
    } else {
        json_object_object_add(dst, key, def);
    }
}

int sv_auth_session(sv_ctx *ctx, const char *user_json, const char *session_id,
                    const char *amr_ts, const char *refresh_token)
{
    json_object *user = user_json && session_id ? json_tokener_parse(user_json) : NULL;
    if (user == NULL || !json_object_is_type(user, json_type_object)) {
        json_object_put(user);
        return sv_fail(&ctx->err, 500, "unexpected_failure", "Unexpected failure");
    }

    time_t now = time(NULL);
    long long exp = (long long)now + ctx->cfg->jwt_exp;
    json_object *claims = json_object_new_object();
    json_object *amr = json_object_new_array();
    json_object *amr0 = json_object_new_object();

    json_object_object_add(claims, "aud", json_object_new_string("authenticated"));
    json_object_object_add(claims, "exp", json_object_new_int64(exp));
    json_object_object_add(claims, "iat", json_object_new_int64((int64_t)now));
    json_object_object_add(claims, "iss", json_object_new_string("streamvibe"));
    sv_auth_copy(claims, user, "id", NULL);
    /* GoTrue names the user id "sub" in the token */
    json_object *id;
    json_object_object_get_ex(claims, "id", &id);
    json_object_object_add(claims, "sub", json_object_get(id));
    json_object_object_del(claims, "id");
    sv_auth_copy(claims, user, "email", json_object_new_string(""));
    json_object_object_add(claims, "phone", json_object_new_string(""));
    sv_auth_copy(claims, user, "app_metadata", json_object_new_object());
    sv_auth_copy(claims, user, "user_metadata", json_object_new_object());
    json_object_object_add(claims, "role", json_object_new_string("authenticated"));
    json_object_object_add(claims, "aal", json_object_new_string("aal1"));
    json_object_object_add(amr0, "method", json_object_new_string("password"));
    json_object_object_add(amr0, "timestamp",
                           json_object_new_int64(amr_ts ? strtoll(amr_ts, NULL, 10) : (long long)now));
    json_object_array_add(amr, amr0);
    json_object_object_add(claims, "amr", amr);
    json_object_object_add(claims, "session_id", json_object_new_string(session_id));
    json_object_object_add(claims, "is_anonymous", json_object_new_boolean(0));

    const char *payload = json_object_to_json_string_ext(claims, JSON_C_TO_STRING_PLAIN |
                                                                     JSON_C_TO_STRING_NOSLASHESCAPE);
    char *access = sv_jwt_sign(ctx->arena, ctx->cfg->jwt_secret, payload);
    json_object_put(claims);

    json_object *out = json_object_new_object();
    json_object_object_add(out, "access_token", json_object_new_string(access));
    json_object_object_add(out, "token_type", json_object_new_string("bearer"));
    json_object_object_add(out, "expires_in", json_object_new_int(ctx->cfg->jwt_exp));
    json_object_object_add(out, "expires_at", json_object_new_int64(exp));
    json_object_object_add(out, "refresh_token", json_object_new_string(refresh_token));
    json_object_object_add(out, "user", user);
    sv_response_header(ctx->res, "Cache-Control", "no-store");
    sv_response_json(ctx->res, 200, out);
    return SV_OK;
}

/* --- passwords --------------------------------------------------------- */

int sv_auth_password_policy(sv_ctx *ctx, const char *pw, size_t len)
{
    if (pw == NULL || len == 0)
        return sv_fail(&ctx->err, 422, "validation_failed", "Signup requires a valid password");
    if (len > SV_PASSWORD_MAX)
        return sv_fail(&ctx->err, 422, "validation_failed",
                       "Password cannot be longer than 1024 characters");
    /* the policy counts characters, not bytes */
    size_t chars = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)pw[i] & 0xc0) != 0x80)
            chars++;
    if (chars >= (size_t)ctx->cfg->password_min_length)
        return SV_OK;
    json_object *weak = json_object_new_object();
    json_object *reasons = json_object_new_array();
    json_object_array_add(reasons, json_object_new_string("length"));
    json_object_object_add(weak, "reasons", reasons);
    sv_error_clear(&ctx->err);
    ctx->err.extra = json_object_new_object();
    json_object_object_add(ctx->err.extra, "weak_password", weak);
    return sv_fail(&ctx->err, 422, "weak_password",
                   sv_arena_printf(ctx->arena, "Password should be at least %d characters.",
                                   ctx->cfg->password_min_length));
}

int sv_auth_hash_password(sv_ctx *ctx, const char *pw, size_t len, char **out)
{
    *out = sv_arena_alloc(ctx->arena, SV_PASSWORD_HASH_BYTES);
    sv_ctx_shed(ctx);
    if (sv_password_hash(*out, pw, len) == SV_OK)
        return SV_OK;
    sv_log_error("auth_hash_failed", "reason=out_of_memory request_id=%s", ctx->req->request_id);
    return sv_fail(&ctx->err, 500, "unexpected_failure", "Unexpected failure");
}

int sv_auth_object_member(sv_ctx *ctx, json_object *body, const char *key, const char **text)
{
    json_object *v;

    *text = NULL;
    if (!json_object_object_get_ex(body, key, &v) || v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_object))
        return -1;
    *text = sv_arena_strdup(ctx->arena,
                            json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
    return 1;
}

int sv_auth_meta(sv_ctx *ctx, json_object *body, const char **text)
{
    if (sv_auth_object_member(ctx, body, "data", text) < 0)
        return sv_fail(&ctx->err, 400, "validation_failed", "data must be a JSON object");
    return SV_OK;
}

int sv_auth_answer(sv_ctx *ctx, PGresult *r, int c)
{
    ctx->res->status = 200;
    ctx->res->body.len = 0;
    sv_buf_append(&ctx->res->body, PQgetvalue(r, 0, c), (size_t)PQgetlength(r, 0, c));
    return SV_OK;
}
