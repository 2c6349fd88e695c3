/* Authentication of every request (sv_auth_request) and the
 * GoTrue-compatible /auth/v1 account endpoints.
 *
 * Account state lives in the auth schema (sql/001_roles_auth.sql) and is
 * changed only through the functions of sql/008_auth_api.sql, each called
 * as one statement run as service_role, so every endpoint is one atomic
 * transaction. This file does what must not happen in SQL: argon2id
 * hashing and verification, token generation, JWT signing, and the HTTP
 * shapes GoTrue (and @supabase/auth-js) use. bcrypt hashes imported from
 * V1 are checked here too (libcrypt), then replaced by argon2id: a
 * password never travels to PostgreSQL, where statement logging would
 * write it down. */
#include "sv_auth.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <sodium.h>

#include "sv_jwt.h"
#include "sv_log.h"
#include "sv_worker.h"

/* Longest password accepted anywhere; longer ones are refused at signup
 * and simply fail at login (after the same work as any failure). */
#define SV_AUTH_PASSWORD_MAX 1024
#define SV_AUTH_EMAIL_MAX 254
#define SV_AUTH_REFRESH_BYTES 32

static const char sv_auth_service_claims[] = "{\"role\":\"service_role\"}";

/* A valid argon2id string with the same parameters as real hashes (of a
 * random password nobody knows): verifying against it costs what a real
 * verification costs, so an unknown email answers as slowly as a known
 * one with a wrong password. */
static const char sv_auth_dummy_hash[crypto_pwhash_STRBYTES] =
    "$argon2id$v=19$m=65536,t=2,p=1$Y/I//AM51mJFmehvkKNvOA$"
    "CXvQU0xC8A1d/X9foUpUXmVEqsQV9/+q210QU5wdB3U";

/* argon2id with the interactive limits is tens of milliseconds of CPU
 * with no PostgreSQL wait to pass requests on from: the worker first
 * gives its idle connections to the others (sv_worker_long_work). */
static int sv_auth_pwhash(char *out, const char *pw, size_t len)
{
    sv_worker_long_work();
    return crypto_pwhash_str(out, pw, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                             crypto_pwhash_MEMLIMIT_INTERACTIVE);
}

static int sv_auth_pwverify(const char *hash, const char *pw, size_t len)
{
    sv_worker_long_work();
    return crypto_pwhash_str_verify(hash, pw, len);
}

/* Verifies pw against the dummy hash: the cost of a failed login. */
static void sv_auth_dummy_verify(const char *pw, size_t len)
{
    volatile int r = sv_auth_pwverify(sv_auth_dummy_hash, pw, len);
    (void)r;
}

/* libsodium must be initialised once per process before randombytes and
 * the pwhash functions; cheap after the first call. Returns 0 or -1. */
static int sv_auth_sodium(void)
{
    static int ready;

    if (!ready) {
        if (sodium_init() < 0)
            return -1;
        ready = 1;
    }
    return 0;
}

/* --- responses --------------------------------------------------------- */

/* GoTrue's error body: {"code":<status>,"error_code":"…","msg":"…"}. */
static void sv_auth_error(sv_response *res, int status, const char *error_code, const char *msg)
{
    json_object *obj = json_object_new_object();

    json_object_object_add(obj, "code", json_object_new_int(status));
    json_object_object_add(obj, "error_code", json_object_new_string(error_code));
    json_object_object_add(obj, "msg", json_object_new_string(msg));
    sv_response_json(res, status, obj);
}

static void sv_auth_weak_password(sv_response *res, int min)
{
    char msg[96];
    json_object *obj = json_object_new_object();
    json_object *weak = json_object_new_object();
    json_object *reasons = json_object_new_array();

    snprintf(msg, sizeof(msg), "Password should be at least %d characters.", min);
    json_object_array_add(reasons, json_object_new_string("length"));
    json_object_object_add(weak, "reasons", reasons);
    json_object_object_add(obj, "code", json_object_new_int(422));
    json_object_object_add(obj, "error_code", json_object_new_string("weak_password"));
    json_object_object_add(obj, "msg", json_object_new_string(msg));
    json_object_object_add(obj, "weak_password", weak);
    sv_response_json(res, 422, obj);
}

static int sv_auth_secret_ok(sv_worker *w, sv_response *res)
{
    if (w->cfg->jwt_secret != NULL && w->cfg->jwt_secret[0] != '\0')
        return 1;
    sv_auth_error(res, 500, "unexpected_failure",
                  "Server misconfiguration: jwt_secret is not configured");
    return 0;
}

/* --- request bodies ---------------------------------------------------- */

/* Parses the body as one JSON object (strict, valid UTF-8). Returns the
 * object (caller puts) or NULL after writing a 400. An empty body is {}. */
static json_object *sv_auth_body(sv_request *req, sv_response *res)
{
    if (req->body == NULL || req->body_len == 0)
        return json_object_new_object();

    json_tokener *tok = json_tokener_new();
    json_object *obj = NULL;
    if (tok != NULL) {
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        obj = json_tokener_parse_ex(tok, req->body, (int)req->body_len);
        if (obj != NULL && (json_tokener_get_error(tok) != json_tokener_success ||
                            json_tokener_get_parse_end(tok) != req->body_len ||
                            !json_object_is_type(obj, json_type_object))) {
            json_object_put(obj);
            obj = NULL;
        }
        json_tokener_free(tok);
    }
    if (obj == NULL)
        sv_auth_error(res, 400, "bad_json", "Could not parse request body as JSON");
    return obj;
}

/* A string member of body: 1 with *out and *len when it is a string, 0 when
 * absent or null, -1 when present with another type. */
static int sv_auth_str(json_object *body, const char *key, const char **out, size_t *len)
{
    json_object *v;

    *out = NULL;
    if (len)
        *len = 0;
    if (!json_object_object_get_ex(body, key, &v) || v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return -1;
    *out = json_object_get_string(v);
    if (len)
        *len = (size_t)json_object_get_string_len(v);
    return 1;
}

/* Lower-cases and checks an email address. Returns it in the arena, or
 * NULL when it is not a plausible address (ASCII, one '@', no spaces or
 * control characters, a dot in the domain, at most 254 bytes). */
static char *sv_auth_email(sv_arena *arena, const char *in, size_t len)
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

/* REMOTE_ADDR when it is an IP address (for the inet column and the
 * per-address throttle), else NULL. */
static const char *sv_auth_ip(const sv_request *req)
{
    unsigned char buf[sizeof(struct in6_addr)];
    const char *ip = req->remote_addr;

    if (ip == NULL || ip[0] == '\0')
        return NULL;
    if (inet_pton(AF_INET, ip, buf) == 1 || inet_pton(AF_INET6, ip, buf) == 1)
        return ip;
    return NULL;
}

static const char *sv_auth_user_agent(sv_request *req)
{
    const char *ua = sv_request_header(req, "User-Agent");

    if (ua == NULL)
        return NULL;
    return strlen(ua) > 512 ? sv_arena_strndup(req->arena, ua, 512) : ua;
}

/* 1 when s is a canonical textual UUID (8-4-4-4-12 hex). */
static int sv_auth_is_uuid(const char *s)
{
    if (s == NULL || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

/* --- database ---------------------------------------------------------- */

/* Runs one statement as service_role. Returns the result (caller PQclears)
 * when it produced rows, or NULL after writing the error: 503 with
 * Retry-After when the database is unreachable, 400 for data the
 * database refused (bad UTF-8, NUL in JSON, …), 500 otherwise (logged). */
static PGresult *sv_auth_db(sv_worker *w, sv_request *req, sv_response *res, const char *what,
                            const char *sql, int n, const char *const *values)
{
    PGresult *result = NULL;
    int rc = sv_db_query_as(&w->db, "service_role", sv_auth_service_claims, sql, n, values,
                            &result);

    if (rc != SV_DB_OK || result == NULL) {
        sv_response_header(res, "Retry-After", sv_arena_printf(req->arena, "%d", w->cfg->retry_after));
        sv_auth_error(res, 503, "unexpected_failure", "Database connection unavailable");
        return NULL;
    }
    if (PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1)
        return result;

    const char *state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    char qmsg[256];
    sv_log_error("auth_db_error", "step=%s sqlstate=%s message=%s request_id=%s", what,
                 state ? state : "-",
                 sv_log_quote(PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY), qmsg,
                              sizeof(qmsg)),
                 req->request_id);
    if (state != NULL && strncmp(state, "22", 2) == 0)
        sv_auth_error(res, 400, "validation_failed", "Invalid input");
    else if (state != NULL && (strncmp(state, "08", 2) == 0 || strncmp(state, "57", 2) == 0 ||
                               strncmp(state, "53", 2) == 0))
        sv_auth_error(res, 503, "unexpected_failure", "Database unavailable");
    else
        sv_auth_error(res, 500, "unexpected_failure", "Unexpected failure");
    PQclear(result);
    return NULL;
}

/* Column c of row 0, NULL when SQL NULL. Lives as long as the result. */
static const char *sv_auth_col(PGresult *r, int c)
{
    return PQgetisnull(r, 0, c) ? NULL : PQgetvalue(r, 0, c);
}

/* --- tokens ------------------------------------------------------------ */

/* A new refresh token (256 random bits as base64url) and the hex
 * BLAKE2b-256 of it, the only form the database ever stores. */
static void sv_auth_new_refresh(sv_arena *arena, const char **token, const char **hash)
{
    unsigned char raw[SV_AUTH_REFRESH_BYTES];

    randombytes_buf(raw, sizeof(raw));
    *token = sv_jwt_b64url_encode(arena, raw, sizeof(raw));
    sodium_memzero(raw, sizeof(raw));

    unsigned char h[crypto_generichash_BYTES];
    char *hex = sv_arena_alloc(arena, 2 * sizeof(h) + 1);
    crypto_generichash(h, sizeof(h), (const unsigned char *)*token, strlen(*token), NULL, 0);
    *hash = sodium_bin2hex(hex, 2 * sizeof(h) + 1, h, sizeof(h));
}

static const char *sv_auth_hash_token(sv_arena *arena, const char *token, size_t len)
{
    unsigned char h[crypto_generichash_BYTES];
    char *hex = sv_arena_alloc(arena, 2 * sizeof(h) + 1);

    crypto_generichash(h, sizeof(h), (const unsigned char *)token, len, NULL, 0);
    return sodium_bin2hex(hex, 2 * sizeof(h) + 1, h, sizeof(h));
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

/* Writes GoTrue's session response (200): access_token, token_type,
 * expires_in, expires_at, refresh_token and user. user_json is the
 * auth.sv_user_json() text; amr_ts the session's start (epoch s). */
static void sv_auth_session_response(sv_worker *w, sv_request *req, sv_response *res,
                                     const char *user_json, const char *session_id,
                                     const char *amr_ts, const char *refresh_token)
{
    json_object *user = user_json && session_id ? json_tokener_parse(user_json) : NULL;
    if (user == NULL || !json_object_is_type(user, json_type_object)) {
        json_object_put(user);
        sv_auth_error(res, 500, "unexpected_failure", "Unexpected failure");
        return;
    }

    time_t now = time(NULL);
    long long exp = (long long)now + w->cfg->jwt_exp;
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
    char *access = sv_jwt_sign(req->arena, w->cfg->jwt_secret, payload);
    json_object_put(claims);

    json_object *out = json_object_new_object();
    json_object_object_add(out, "access_token", json_object_new_string(access));
    json_object_object_add(out, "token_type", json_object_new_string("bearer"));
    json_object_object_add(out, "expires_in", json_object_new_int(w->cfg->jwt_exp));
    json_object_object_add(out, "expires_at", json_object_new_int64(exp));
    json_object_object_add(out, "refresh_token", json_object_new_string(refresh_token));
    json_object_object_add(out, "user", user);
    sv_response_header(res, "Cache-Control", "no-store");
    sv_response_json(res, 200, out);
}

/* --- verifying a caller's token ---------------------------------------- */

/* The token a request carries: "Authorization: Bearer <t>", else an
 * apikey header that looks like a JWT. *bad is set when an Authorization
 * header is present but is not a usable Bearer credential. */
static const char *sv_auth_token_of(sv_request *req, int use_apikey, int *bad)
{
    const char *h = sv_request_header(req, "Authorization");

    *bad = 0;
    if (h != NULL) {
        while (*h == ' ')
            h++;
        if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t')) {
            *bad = 1;
            return NULL;
        }
        h += 6;
        while (*h == ' ' || *h == '\t')
            h++;
        size_t n = strlen(h);
        while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
            n--;
        if (n == 0) {
            *bad = 1;
            return NULL;
        }
        return sv_arena_strndup(req->arena, h, n);
    }
    if (use_apikey) {
        const char *k = sv_request_header(req, "apikey");
        if (k != NULL) {
            const char *d = strchr(k, '.');
            if (d != NULL && strchr(d + 1, '.') != NULL)
                return k;
        }
    }
    return NULL;
}

/* A string claim of obj copied into the arena, or NULL. */
static const char *sv_auth_claim(sv_arena *arena, json_object *obj, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return sv_arena_strdup(arena, json_object_get_string(v));
}

/* The last token this worker verified, with what it yielded. Clients
 * send the same token request after request, and verifying it (HMAC,
 * base64, two JSON parses) is most of a small request's CPU; a hit costs
 * one constant-time comparison and an expiry check. Lives in malloc'd
 * memory for the life of the process (one entry, replaced on a miss). */
static struct {
    char  *token;
    size_t len;
    const char *secret;     /* the cfg string it was verified with */
    char  *claims, *role, *user_id, *email, *session_id;
    int    has_exp;
    double exp;
} sv_auth_cache;

static char *sv_auth_xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void sv_auth_cache_clear(void)
{
    free(sv_auth_cache.token);
    free(sv_auth_cache.claims);
    free(sv_auth_cache.role);
    free(sv_auth_cache.user_id);
    free(sv_auth_cache.email);
    free(sv_auth_cache.session_id);
    memset(&sv_auth_cache, 0, sizeof(sv_auth_cache));
}

/* Fills ctx from the cache when token is the cached one, from the same
 * secret, and not expired at now. Returns 1 on a hit. */
static int sv_auth_cache_get(sv_worker *w, sv_request *req, const char *token, time_t now,
                             sv_auth_ctx *ctx)
{
    size_t len = strlen(token);

    if (sv_auth_cache.token == NULL || sv_auth_cache.len != len ||
        sv_auth_cache.secret != w->cfg->jwt_secret ||
        sodium_memcmp(sv_auth_cache.token, token, len) != 0)
        return 0;
    if (sv_auth_cache.has_exp && (double)now >= sv_auth_cache.exp) {
        sv_auth_cache_clear();
        return 0;
    }
    ctx->role = sv_arena_strdup(req->arena, sv_auth_cache.role);
    ctx->claims = sv_arena_strdup(req->arena, sv_auth_cache.claims);
    ctx->user_id = sv_auth_cache.user_id ? sv_arena_strdup(req->arena, sv_auth_cache.user_id) : NULL;
    ctx->email = sv_auth_cache.email ? sv_arena_strdup(req->arena, sv_auth_cache.email) : NULL;
    ctx->session_id = sv_auth_cache.session_id ? sv_arena_strdup(req->arena, sv_auth_cache.session_id)
                                               : NULL;
    return 1;
}

/* Remembers a verified token (not one with nbf: its validity can begin
 * later, and such tokens are rare). */
static void sv_auth_cache_put(sv_worker *w, const char *token, const sv_auth_ctx *ctx,
                              json_object *payload)
{
    json_object *v;

    if (json_object_object_get_ex(payload, "nbf", NULL))
        return;
    sv_auth_cache_clear();
    sv_auth_cache.token = strdup(token);
    sv_auth_cache.claims = sv_auth_xstrdup(ctx->claims);
    sv_auth_cache.role = sv_auth_xstrdup(ctx->role);
    sv_auth_cache.user_id = sv_auth_xstrdup(ctx->user_id);
    sv_auth_cache.email = sv_auth_xstrdup(ctx->email);
    sv_auth_cache.session_id = sv_auth_xstrdup(ctx->session_id);
    if (sv_auth_cache.token == NULL || sv_auth_cache.claims == NULL || sv_auth_cache.role == NULL ||
        (ctx->user_id && !sv_auth_cache.user_id) || (ctx->email && !sv_auth_cache.email) ||
        (ctx->session_id && !sv_auth_cache.session_id)) {
        sv_auth_cache_clear();
        return;
    }
    sv_auth_cache.len = strlen(token);
    sv_auth_cache.secret = w->cfg->jwt_secret;
    if (json_object_object_get_ex(payload, "exp", &v)) {
        sv_auth_cache.has_exp = 1;
        sv_auth_cache.exp = json_object_get_double(v);
    }
}

/* Verifies token and fills ctx. Returns SV_JWT_OK, a verification status,
 * or -1 when the signature is fine but the role claim is not one of
 * anon/authenticated/service_role. */
static int sv_auth_verify(sv_worker *w, sv_request *req, const char *token, sv_auth_ctx *ctx)
{
    char *claims = NULL;
    json_object *obj = NULL;
    time_t now = time(NULL);

    if (sv_auth_cache_get(w, req, token, now, ctx))
        return SV_JWT_OK;
    sv_jwt_status st = sv_jwt_verify_obj(req->arena, w->cfg->jwt_secret, token, now, &claims, &obj);
    if (st != SV_JWT_OK)
        return (int)st;
    const char *role = sv_auth_claim(req->arena, obj, "role");
    if (role == NULL || (strcmp(role, "anon") != 0 && strcmp(role, "authenticated") != 0 &&
                         strcmp(role, "service_role") != 0)) {
        json_object_put(obj);
        return -1;
    }
    ctx->role = role;
    ctx->claims = claims;
    ctx->user_id = sv_auth_claim(req->arena, obj, "sub");
    ctx->email = sv_auth_claim(req->arena, obj, "email");
    ctx->session_id = sv_auth_claim(req->arena, obj, "session_id");
    sv_auth_cache_put(w, token, ctx, obj);
    json_object_put(obj);
    return SV_JWT_OK;
}

static void sv_auth_log_no_secret(void)
{
    static int logged;

    if (!logged) {
        sv_log_error("auth_misconfigured", "reason=%s",
                     "jwt_secret_not_configured_token_bearing_requests_are_refused");
        logged = 1;
    }
}

int sv_auth_request(sv_worker *w, sv_request *req, sv_response *res, sv_auth_ctx *ctx)
{
    int bad;
    const char *token = sv_auth_token_of(req, 1, &bad);

    ctx->role = "anon";
    ctx->claims = "{\"role\":\"anon\"}";
    ctx->user_id = ctx->email = ctx->session_id = NULL;
    if (token == NULL && !bad)
        return SV_OK;

    const char *msg;
    int st = SV_JWT_MALFORMED;
    if (bad) {
        msg = "Authorization header is not a Bearer token";
    } else if (w->cfg->jwt_secret == NULL || w->cfg->jwt_secret[0] == '\0') {
        sv_auth_log_no_secret();
        msg = "Server lacks JWT secret";
    } else if ((st = sv_auth_verify(w, req, token, ctx)) == SV_JWT_OK) {
        return SV_OK;
    } else if (st == -1) {
        msg = "JWT role claim is missing or not allowed";
    } else {
        msg = sv_jwt_strerror((sv_jwt_status)st);
    }
    ctx->role = "anon";
    ctx->claims = "{\"role\":\"anon\"}";
    ctx->user_id = ctx->email = ctx->session_id = NULL;
    sv_response_header(res, "WWW-Authenticate",
                       sv_arena_printf(req->arena,
                                       "Bearer error=\"invalid_token\", error_description=\"%s\"",
                                       msg));
    sv_response_error(res, 401, "PGRST301", msg, NULL, NULL);
    return SV_ERROR;
}

/* For the /auth/v1 endpoints that act on the signed-in user: requires
 * "Authorization: Bearer <user access token>" with a sub and a
 * session_id. Returns SV_OK with ctx, or SV_ERROR with a GoTrue error. */
static int sv_auth_user_token(sv_worker *w, sv_request *req, sv_response *res, sv_auth_ctx *ctx)
{
    int bad;

    if (!sv_auth_secret_ok(w, res))
        return SV_ERROR;
    const char *token = sv_auth_token_of(req, 0, &bad);
    if (token == NULL) {
        sv_auth_error(res, 401, "no_authorization", "This endpoint requires a valid Bearer token");
        return SV_ERROR;
    }
    int st = sv_auth_verify(w, req, token, ctx);
    if (st == -1) {
        sv_auth_error(res, 401, "bad_jwt", "invalid JWT: role claim is missing or not allowed");
        return SV_ERROR;
    }
    if (st != SV_JWT_OK) {
        sv_auth_error(res, 401, "bad_jwt",
                      sv_arena_printf(req->arena, "invalid JWT: unable to parse or verify signature, %s",
                                      sv_jwt_strerror((sv_jwt_status)st)));
        return SV_ERROR;
    }
    if (strcmp(ctx->role, "authenticated") != 0 || !sv_auth_is_uuid(ctx->user_id)) {
        sv_auth_error(res, 403, "bad_jwt", "invalid claim: missing sub claim");
        return SV_ERROR;
    }
    if (!sv_auth_is_uuid(ctx->session_id)) {
        sv_auth_error(res, 403, "session_not_found",
                      "Session from session_id claim in JWT does not exist");
        return SV_ERROR;
    }
    return SV_OK;
}

/* --- endpoints --------------------------------------------------------- */

/* Checks a new password against the policy. Returns 1, or 0 after writing
 * the 4xx. */
static int sv_auth_password_ok(sv_worker *w, sv_response *res, const char *pw, size_t len)
{
    if (pw == NULL || len == 0) {
        sv_auth_error(res, 422, "validation_failed", "Signup requires a valid password");
        return 0;
    }
    if (len > SV_AUTH_PASSWORD_MAX) {
        sv_auth_error(res, 422, "validation_failed",
                      "Password cannot be longer than 1024 characters");
        return 0;
    }
    /* the policy counts characters, not bytes */
    size_t chars = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)pw[i] & 0xc0) != 0x80)
            chars++;
    if (chars < (size_t)w->cfg->password_min_length) {
        sv_auth_weak_password(res, w->cfg->password_min_length);
        return 0;
    }
    return 1;
}

/* argon2id hash of pw into the arena, or NULL after writing a 500. */
static char *sv_auth_hash_password(sv_request *req, sv_response *res, const char *pw, size_t len)
{
    char *out = sv_arena_alloc(req->arena, crypto_pwhash_STRBYTES);

    if (sv_auth_pwhash(out, pw, len) != 0) {
        sv_log_error("auth_hash_failed", "reason=out_of_memory request_id=%s", req->request_id);
        sv_auth_error(res, 500, "unexpected_failure", "Unexpected failure");
        return NULL;
    }
    return out;
}

/* Reads the user metadata ("data") member: must be an object when given.
 * Returns 1 with *text (NULL when absent), or 0 after writing a 400. */
static int sv_auth_meta(json_object *body, sv_response *res, const char **text)
{
    json_object *v;

    *text = NULL;
    if (!json_object_object_get_ex(body, "data", &v) || v == NULL)
        return 1;
    if (!json_object_is_type(v, json_type_object)) {
        sv_auth_error(res, 400, "validation_failed", "data must be a JSON object");
        return 0;
    }
    *text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    return 1;
}

/* Signup throttle, checked before the argon2id hash a signup costs:
 * signups per address (auth.sv_signup_begin, shared by all workers) within
 * login_window. Returns 1 when this signup may go ahead (it is counted),
 * 0 after writing the answer: 429 with Retry-After over the limit, or the
 * database error. */
static int sv_auth_signup_allowed(sv_worker *w, sv_request *req, sv_response *res)
{
    static const char sql[] =
        "SELECT o_retry_after FROM auth.sv_signup_begin($1::inet, $2::int, $3::int)";
    const char *ip = sv_auth_ip(req);

    if (w->cfg->signup_max_per_window <= 0 || ip == NULL)
        return 1;
    const char *values[3] = { ip, sv_arena_printf(req->arena, "%d", w->cfg->signup_max_per_window),
                              sv_arena_printf(req->arena, "%d", w->cfg->login_window) };
    PGresult *r = sv_auth_db(w, req, res, "signup_begin", sql, 3, values);
    if (r == NULL)
        return 0;
    long retry = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (retry <= 0)
        return 1;
    sv_log_warn("auth_signup_throttled", "retry_after=%ld remote_addr=%s request_id=%s", retry, ip,
                req->request_id);
    sv_response_header(res, "Retry-After", sv_arena_printf(req->arena, "%ld", retry));
    sv_auth_error(res, 429, "over_request_rate_limit", "Request rate limit reached");
    return 0;
}

void sv_auth_signup(sv_worker *w, sv_request *req, sv_response *res)
{
    static const char sql[] =
        "SELECT o_error, o_user::text, o_session, o_created "
        "FROM auth.sv_signup($1, $2, $3::jsonb, $4, $5::inet, $6)";
    const char *email_in, *pw, *meta;
    size_t email_len, pw_len;

    if (!sv_auth_secret_ok(w, res))
        return;
    if (sv_auth_sodium() != 0) {
        sv_auth_error(res, 500, "unexpected_failure", "Unexpected failure");
        return;
    }
    json_object *body = sv_auth_body(req, res);
    if (body == NULL)
        return;
    if (sv_auth_str(body, "email", &email_in, &email_len) <= 0 || email_len == 0) {
        if (sv_auth_str(body, "phone", &email_in, NULL) > 0)
            sv_auth_error(res, 400, "phone_provider_disabled", "Phone signups are disabled");
        else
            sv_auth_error(res, 400, "validation_failed", "To signup, please provide your email");
        goto out;
    }
    char *email = sv_auth_email(req->arena, email_in, email_len);
    if (email == NULL) {
        sv_auth_error(res, 400, "email_address_invalid",
                      "Unable to validate email address: invalid format");
        goto out;
    }
    if (sv_auth_str(body, "password", &pw, &pw_len) < 0) {
        sv_auth_error(res, 400, "validation_failed", "password must be a string");
        goto out;
    }
    if (!sv_auth_password_ok(w, res, pw, pw_len) || !sv_auth_meta(body, res, &meta))
        goto out;
    if (meta != NULL)
        meta = sv_arena_strdup(req->arena, meta);
    if (!sv_auth_signup_allowed(w, req, res))
        goto out;
    char *hash = sv_auth_hash_password(req, res, pw, pw_len);
    if (hash == NULL)
        goto out;

    const char *refresh, *refresh_hash;
    sv_auth_new_refresh(req->arena, &refresh, &refresh_hash);
    const char *values[6] = { email, hash, meta, refresh_hash, sv_auth_ip(req),
                              sv_auth_user_agent(req) };
    PGresult *r = sv_auth_db(w, req, res, "signup", sql, 6, values);
    if (r == NULL)
        goto out;
    const char *err = sv_auth_col(r, 0);
    if (err != NULL && strcmp(err, "user_already_exists") == 0)
        sv_auth_error(res, 422, "user_already_exists", "User already registered");
    else if (err != NULL)
        sv_auth_error(res, 400, "email_address_invalid",
                      "Unable to validate email address: invalid format");
    else
        sv_auth_session_response(w, req, res, sv_auth_col(r, 1), sv_auth_col(r, 2),
                                 sv_auth_col(r, 3), refresh);
    if (err == NULL)
        sv_log_info("auth_signup", "session_id=%s request_id=%s", sv_auth_col(r, 2),
                    req->request_id);
    PQclear(r);
out:
    json_object_put(body);
}

/* 1 when hash is a bcrypt string (GoTrue's, kept for users imported from
 * V1 by sql/007_v1_import.sql) rather than an argon2id one. */
static int sv_auth_is_bcrypt(const char *hash)
{
    return hash[0] == '$' && hash[1] == '2' && hash[2] != '\0' && strchr("abxy", hash[2]) != NULL &&
           hash[3] == '$';
}

/* Above this cost a stored hash is not checked: each step doubles the
 * work (~85 ms at GoTrue's 10 here, ~5 s at 16), and a worker inside
 * crypt() cannot be interrupted, where PostgreSQL's statement_timeout
 * used to bound it. */
#define SV_AUTH_BCRYPT_MAX_COST 16
/* bcrypt reads no further (pgcrypto truncated there too); libxcrypt
 * refuses 512 bytes and more outright, at once. */
#define SV_AUTH_BCRYPT_PW_BYTES 72

int sv_auth_bcrypt_check(const char *hash, const char *pw, size_t pw_len)
{
    static const char b64[] = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    /* What is hashed when the stored hash cannot be checked, so that no
     * answer comes sooner than a real check's: GoTrue's cost. */
    static const char stand_in[] = "$2b$10$CCCCCCCCCCCCCCCCCCCCC.";

    /* $2?$NN$ and 53 characters of salt and digest */
    int well_formed = strlen(hash) == 60 && hash[0] == '$' && hash[1] == '2' && hash[2] != '\0' &&
                      strchr("abxy", hash[2]) != NULL && hash[3] == '$' &&
                      isdigit((unsigned char)hash[4]) && isdigit((unsigned char)hash[5]) &&
                      hash[6] == '$' && strspn(hash + 7, b64) == 53;
    int cost = well_formed ? (hash[4] - '0') * 10 + (hash[5] - '0') : 0;
    int too_costly = cost > SV_AUTH_BCRYPT_MAX_COST && cost <= 31;
    /* bcrypt reads a C string: no password with a NUL was ever hashed */
    int usable = well_formed && cost >= 4 && cost <= SV_AUTH_BCRYPT_MAX_COST &&
                 memchr(pw, '\0', pw_len) == NULL;
    size_t n = pw_len < SV_AUTH_BCRYPT_PW_BYTES ? pw_len : SV_AUTH_BCRYPT_PW_BYTES;

    /* ~32 kB of state, which ends up holding what the password became */
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    char *pwz = malloc(n + 1);
    int good = 0;
    if (cd != NULL && pwz != NULL) {
        memcpy(pwz, pw, n);
        pwz[usable ? n : 0] = '\0';
        sv_worker_long_work();
        const char *out = crypt_rn(pwz, usable ? hash : stand_in, cd, (int)sizeof(*cd));
        good = usable && out != NULL && strlen(out) == 60 && sodium_memcmp(out, hash, 60) == 0;
    }
    if (pwz != NULL) {
        sodium_memzero(pwz, n);
        free(pwz);
    }
    if (cd != NULL) {
        sodium_memzero(cd, sizeof(*cd));
        free(cd);
    }
    return good ? 1 : too_costly ? -1 : 0;
}

/* Checks pw against a bcrypt hash and, when it matches, replaces the
 * stored hash with an argon2id one so the bcrypt hash is gone after the
 * first login. Returns 1 (right password), 0 (wrong), or -1 after writing
 * a database error. Neither the password nor a hash is ever logged. */
static int sv_auth_bcrypt_verify(sv_worker *w, sv_request *req, sv_response *res,
                                 const char *user_id, const char *hash, const char *pw,
                                 size_t pw_len)
{
    static const char rehash_sql[] = "SELECT auth.sv_password_rehash($1::uuid, $2, $3)";

    int checked = sv_auth_bcrypt_check(hash, pw, pw_len);
    if (checked < 0)
        sv_log_warn("auth_bcrypt_cost", "user_id=%s max_cost=%d msg=\"stored bcrypt hash too costly to "
                    "check; set a new password for this user\" request_id=%s",
                    user_id, SV_AUTH_BCRYPT_MAX_COST, req->request_id);
    if (checked != 1)
        return 0;

    char *argon = sv_arena_alloc(req->arena, crypto_pwhash_STRBYTES);
    if (sv_auth_pwhash(argon, pw, pw_len) != 0) {
        /* the login still succeeds; the next one tries again */
        sv_log_error("auth_hash_failed", "reason=out_of_memory step=rehash request_id=%s",
                     req->request_id);
        return 1;
    }
    const char *rvalues[3] = { user_id, hash, argon };
    PGresult *r = sv_auth_db(w, req, res, "password_rehash", rehash_sql, 3, rvalues);
    if (r == NULL)
        return -1;
    if (strcmp(PQgetvalue(r, 0, 0), "t") == 0)
        sv_log_info("auth_password_rehashed", "user_id=%s from=bcrypt to=argon2id request_id=%s",
                    user_id, req->request_id);
    PQclear(r);
    return 1;
}

/* grant_type=password. Throttling first (counted per account and per
 * address, failures recorded before the password is checked so parallel
 * guesses see each other), then one argon2id verification whether or not
 * the email exists, then the same answer for every kind of failure. */
static void sv_auth_password_grant(sv_worker *w, sv_request *req, sv_response *res,
                                   json_object *body)
{
    static const char begin_sql[] =
        "SELECT o_retry_after, o_user_id, o_hash, o_attempts::text "
        "FROM auth.sv_login_begin($1, $2, $3::int, $4::int)";
    static const char ok_sql[] =
        "SELECT o_user::text, o_session, o_created "
        "FROM auth.sv_login_succeed($1::uuid, $2::bigint[], $3, $4, $5::inet, $6)";
    const char *email_in, *pw;
    size_t email_len, pw_len;

    if (sv_auth_str(body, "email", &email_in, &email_len) <= 0 || email_len == 0) {
        if (sv_auth_str(body, "phone", &email_in, NULL) > 0)
            sv_auth_error(res, 400, "phone_provider_disabled", "Phone logins are disabled");
        else
            sv_auth_error(res, 400, "validation_failed", "missing email or phone");
        return;
    }
    if (sv_auth_str(body, "password", &pw, &pw_len) < 0) {
        pw = NULL;
        pw_len = 0;
    }
    char *email = sv_auth_email(req->arena, email_in, email_len);
    if (email == NULL) {
        /* cannot be anyone's address: same answer as a wrong password */
        sv_auth_error(res, 400, "invalid_credentials", "Invalid login credentials");
        return;
    }

    const char *ip = sv_auth_ip(req);
    const char *max = sv_arena_printf(req->arena, "%d", w->cfg->login_max_failures);
    const char *window = sv_arena_printf(req->arena, "%d", w->cfg->login_window);
    const char *bvalues[4] = { email, ip, max, window };
    PGresult *r = sv_auth_db(w, req, res, "login_begin", begin_sql, 4, bvalues);
    if (r == NULL)
        return;
    long retry = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    if (retry > 0) {
        PQclear(r);
        sv_log_warn("auth_login_throttled", "retry_after=%ld remote_addr=%s request_id=%s", retry,
                    ip ? ip : "-", req->request_id);
        sv_response_header(res, "Retry-After", sv_arena_printf(req->arena, "%ld", retry));
        sv_auth_error(res, 429, "over_request_rate_limit", "Request rate limit reached");
        return;
    }
    const char *user_id = sv_arena_strdup(req->arena, PQgetvalue(r, 0, 1));
    const char *hash = sv_auth_col(r, 2);
    const char *attempts = sv_arena_strdup(req->arena, PQgetvalue(r, 0, 3));
    int known = !PQgetisnull(r, 0, 1) && hash != NULL;
    int bcrypt = known && sv_auth_is_bcrypt(hash);
    int good = 0;
    if (bcrypt)
        hash = sv_arena_strdup(req->arena, hash);
    if (pw == NULL || pw_len > SV_AUTH_PASSWORD_MAX) {
        /* same work as a real check, result ignored */
        sv_auth_dummy_verify("", 0);
    } else if (!known) {
        sv_auth_dummy_verify(pw, pw_len);
    } else if (!bcrypt) {
        good = sv_auth_pwverify(hash, pw, pw_len) == 0;
    }
    PQclear(r);
    if (bcrypt && pw != NULL && pw_len <= SV_AUTH_PASSWORD_MAX) {
        int rc = sv_auth_bcrypt_verify(w, req, res, user_id, hash, pw, pw_len);
        if (rc < 0)
            return;
        good = rc;
    }
    if (!good) {
        sv_auth_error(res, 400, "invalid_credentials", "Invalid login credentials");
        return;
    }

    const char *refresh, *refresh_hash;
    sv_auth_new_refresh(req->arena, &refresh, &refresh_hash);
    const char *svalues[6] = { user_id, attempts, sv_arena_printf(req->arena, "email:%s", email),
                               refresh_hash, ip, sv_auth_user_agent(req) };
    r = sv_auth_db(w, req, res, "login_succeed", ok_sql, 6, svalues);
    if (r == NULL)
        return;
    if (PQgetisnull(r, 0, 0))
        sv_auth_error(res, 400, "invalid_credentials", "Invalid login credentials");
    else
        sv_auth_session_response(w, req, res, sv_auth_col(r, 0), sv_auth_col(r, 1),
                                 sv_auth_col(r, 2), refresh);
    PQclear(r);
}

/* grant_type=refresh_token: rotated on each use. A spent token still
 * refreshes (a new token of the same session) for refresh_token_reuse_interval
 * seconds after it was rotated, as GoTrue's reuse interval: two tabs or an
 * SSR server refreshing at once. Later, it revokes its whole session
 * (someone else may hold a copy). */
static void sv_auth_refresh_grant(sv_worker *w, sv_request *req, sv_response *res,
                                  json_object *body)
{
    static const char sql[] =
        "SELECT o_error, o_user::text, o_session, o_created "
        "FROM auth.sv_refresh($1, $2, $3::int)";
    const char *old;
    size_t old_len;

    if (sv_auth_str(body, "refresh_token", &old, &old_len) <= 0 || old_len == 0) {
        sv_auth_error(res, 400, "validation_failed", "refresh_token required");
        return;
    }
    const char *refresh, *refresh_hash;
    sv_auth_new_refresh(req->arena, &refresh, &refresh_hash);
    const char *values[3] = { sv_auth_hash_token(req->arena, old, old_len), refresh_hash,
                              sv_arena_printf(req->arena, "%d", w->cfg->refresh_token_reuse_interval) };
    PGresult *r = sv_auth_db(w, req, res, "refresh", sql, 3, values);
    if (r == NULL)
        return;
    const char *err = sv_auth_col(r, 0);
    if (err == NULL) {
        sv_auth_session_response(w, req, res, sv_auth_col(r, 1), sv_auth_col(r, 2),
                                 sv_auth_col(r, 3), refresh);
    } else if (strcmp(err, "refresh_token_already_used") == 0) {
        sv_log_warn("auth_refresh_reuse", "session_id=%s action=session_revoked request_id=%s",
                    sv_auth_col(r, 2) ? sv_auth_col(r, 2) : "-", req->request_id);
        sv_auth_error(res, 400, "refresh_token_already_used",
                      "Invalid Refresh Token: Already Used");
    } else if (strcmp(err, "session_expired") == 0) {
        sv_auth_error(res, 400, "session_expired", "Invalid Refresh Token: Session Expired");
    } else if (strcmp(err, "user_banned") == 0) {
        sv_auth_error(res, 400, "user_banned", "User is banned");
    } else {
        sv_auth_error(res, 400, "refresh_token_not_found",
                      "Invalid Refresh Token: Refresh Token Not Found");
    }
    PQclear(r);
}

void sv_auth_token(sv_worker *w, sv_request *req, sv_response *res)
{
    if (!sv_auth_secret_ok(w, res))
        return;
    if (sv_auth_sodium() != 0) {
        sv_auth_error(res, 500, "unexpected_failure", "Unexpected failure");
        return;
    }
    const char *grant = sv_request_query_param(req, "grant_type");
    int password = grant != NULL && strcmp(grant, "password") == 0;
    int refresh = grant != NULL && strcmp(grant, "refresh_token") == 0;
    if (!password && !refresh) {
        sv_auth_error(res, 400, "validation_failed", "unsupported_grant_type");
        return;
    }
    json_object *body = sv_auth_body(req, res);
    if (body == NULL)
        return;
    if (password)
        sv_auth_password_grant(w, req, res, body);
    else
        sv_auth_refresh_grant(w, req, res, body);
    json_object_put(body);
}

/* Answers a user lookup error code from auth.sv_user_get/sv_user_update. */
static void sv_auth_user_error(sv_response *res, const char *err)
{
    if (strcmp(err, "user_not_found") == 0)
        sv_auth_error(res, 403, "user_not_found", "User from sub claim in JWT does not exist");
    else if (strcmp(err, "email_exists") == 0)
        sv_auth_error(res, 422, "email_exists",
                      "A user with this email address has already been registered");
    else
        sv_auth_error(res, 403, "session_not_found",
                      "Session from session_id claim in JWT does not exist");
}

void sv_auth_user_get(sv_worker *w, sv_request *req, sv_response *res)
{
    static const char sql[] = "SELECT o_error, o_user::text FROM auth.sv_user_get($1::uuid, $2::uuid)";
    sv_auth_ctx ctx;

    if (sv_auth_user_token(w, req, res, &ctx) != SV_OK)
        return;
    const char *values[2] = { ctx.user_id, ctx.session_id };
    PGresult *r = sv_auth_db(w, req, res, "user_get", sql, 2, values);
    if (r == NULL)
        return;
    if (!PQgetisnull(r, 0, 0)) {
        sv_auth_user_error(res, PQgetvalue(r, 0, 0));
    } else {
        res->status = 200;
        sv_response_header(res, "Cache-Control", "no-store");
        sv_buf_append(&res->body, PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1));
    }
    PQclear(r);
}

void sv_auth_user_put(sv_worker *w, sv_request *req, sv_response *res)
{
    static const char get_sql[] =
        "SELECT o_error, o_hash FROM auth.sv_user_get($1::uuid, $2::uuid)";
    static const char sql[] =
        "SELECT o_error, o_user::text "
        "FROM auth.sv_user_update($1::uuid, $2::uuid, $3, $4, $5::jsonb)";
    sv_auth_ctx ctx;
    const char *email_in = NULL, *pw = NULL, *meta = NULL, *email = NULL, *hash = NULL;
    size_t email_len = 0, pw_len = 0;

    if (sv_auth_user_token(w, req, res, &ctx) != SV_OK)
        return;
    if (sv_auth_sodium() != 0) {
        sv_auth_error(res, 500, "unexpected_failure", "Unexpected failure");
        return;
    }
    json_object *body = sv_auth_body(req, res);
    if (body == NULL)
        return;
    int has_email = sv_auth_str(body, "email", &email_in, &email_len);
    int has_pw = sv_auth_str(body, "password", &pw, &pw_len);
    if (has_email < 0 || has_pw < 0) {
        sv_auth_error(res, 400, "validation_failed", "email and password must be strings");
        goto out;
    }
    if (has_email > 0) {
        email = sv_auth_email(req->arena, email_in, email_len);
        if (email == NULL) {
            sv_auth_error(res, 400, "email_address_invalid",
                          "Unable to validate email address: invalid format");
            goto out;
        }
    }
    if (!sv_auth_meta(body, res, &meta))
        goto out;
    if (meta != NULL)
        meta = sv_arena_strdup(req->arena, meta);
    if (has_pw > 0) {
        if (!sv_auth_password_ok(w, res, pw, pw_len))
            goto out;
        const char *gvalues[2] = { ctx.user_id, ctx.session_id };
        PGresult *g = sv_auth_db(w, req, res, "user_get", get_sql, 2, gvalues);
        if (g == NULL)
            goto out;
        if (!PQgetisnull(g, 0, 0)) {
            sv_auth_user_error(res, PQgetvalue(g, 0, 0));
            PQclear(g);
            goto out;
        }
        int same = !PQgetisnull(g, 0, 1) &&
                   sv_auth_pwverify(PQgetvalue(g, 0, 1), pw, pw_len) == 0;
        PQclear(g);
        if (same) {
            sv_auth_error(res, 422, "same_password",
                          "New password should be different from the old password.");
            goto out;
        }
        hash = sv_auth_hash_password(req, res, pw, pw_len);
        if (hash == NULL)
            goto out;
    }

    const char *values[5] = { ctx.user_id, ctx.session_id, email, hash, meta };
    PGresult *r = sv_auth_db(w, req, res, "user_update", sql, 5, values);
    if (r == NULL)
        goto out;
    if (!PQgetisnull(r, 0, 0)) {
        sv_auth_user_error(res, PQgetvalue(r, 0, 0));
    } else {
        res->status = 200;
        sv_buf_append(&res->body, PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1));
        if (hash != NULL)
            sv_log_info("auth_password_changed", "user_id=%s other_sessions=revoked request_id=%s",
                        ctx.user_id, req->request_id);
    }
    PQclear(r);
out:
    json_object_put(body);
}

void sv_auth_logout(sv_worker *w, sv_request *req, sv_response *res)
{
    static const char sql[] = "SELECT auth.sv_logout($1::uuid, $2::uuid, $3)";
    sv_auth_ctx ctx;

    const char *scope = sv_request_query_param(req, "scope");
    if (scope == NULL || scope[0] == '\0')
        scope = "local";
    if (strcmp(scope, "local") != 0 && strcmp(scope, "global") != 0 &&
        strcmp(scope, "others") != 0) {
        sv_auth_error(res, 400, "validation_failed",
                      "Unsupported logout scope (use local, global or others)");
        return;
    }
    if (sv_auth_user_token(w, req, res, &ctx) != SV_OK)
        return;
    const char *values[3] = { ctx.user_id, ctx.session_id, scope };
    PGresult *r = sv_auth_db(w, req, res, "logout", sql, 3, values);
    if (r == NULL)
        return;
    PQclear(r);
    res->status = 204;
    res->body.len = 0;
}
