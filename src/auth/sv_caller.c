#include "auth/sv_caller.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>
#include <sodium.h>

#include "core/sv_log.h"
#include "core/sv_uuid.h"
#include "crypto/sv_jwt.h"

static const char sv_caller_anon_claims[] = "{\"role\":\"anon\"}";

static void sv_caller_anon(sv_caller *caller)
{
    caller->role = "anon";
    caller->claims = sv_caller_anon_claims;
    caller->user_id = caller->email = caller->session_id = NULL;
}

/* The token a request carries: "Authorization: Bearer <t>", else (with
 * use_apikey) an apikey header that looks like a JWT. *bad is set when an
 * Authorization header is present but is not a usable Bearer credential. */
static const char *sv_caller_token_of(sv_request *req, int use_apikey, int *bad)
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

/* A string claim of obj copied into the arena, or NULL when absent or
 * not a string. A string whose JSON length is not its C length (a NUL
 * inside, which sv_json_parse already refuses) sets *bad: as a C string
 * "service_role\u0000" would pass the role whitelist as "service_role"
 * while PostgreSQL saw the whole claim. */
static const char *sv_caller_claim(sv_arena *arena, json_object *obj, const char *key, int *bad)
{
    json_object *v;

    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    const char *s = json_object_get_string(v);
    if ((size_t)json_object_get_string_len(v) != strlen(s)) {
        *bad = 1;
        return NULL;
    }
    return sv_arena_strdup(arena, s);
}

/* --- the cache -------------------------------------------------------------- */

void sv_caller_cache_init(sv_caller_cache *cache)
{
    memset(cache, 0, sizeof(*cache));
}

void sv_caller_cache_free(sv_caller_cache *cache)
{
    free(cache->token);
    free(cache->claims);
    free(cache->role);
    free(cache->user_id);
    free(cache->email);
    free(cache->session_id);
    sv_caller_cache_init(cache);
}

static char *sv_caller_xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static char *sv_caller_arena_dup(sv_arena *arena, const char *s)
{
    return s ? sv_arena_strdup(arena, s) : NULL;
}

/* Fills caller from the cache when token is the cached one, from the
 * same secret, and not expired at now. Returns 1 on a hit. */
static int sv_caller_cache_get(sv_caller_cache *cache, const char *secret, sv_arena *arena,
                               const char *token, time_t now, sv_caller *caller)
{
    size_t len = strlen(token);

    if (cache->token == NULL || cache->len != len || cache->secret != secret ||
        sodium_memcmp(cache->token, token, len) != 0)
        return 0;
    if (cache->has_exp && (double)now >= cache->exp) {
        sv_caller_cache_free(cache);
        return 0;
    }
    caller->role = sv_arena_strdup(arena, cache->role);
    caller->claims = sv_arena_strdup(arena, cache->claims);
    caller->user_id = sv_caller_arena_dup(arena, cache->user_id);
    caller->email = sv_caller_arena_dup(arena, cache->email);
    caller->session_id = sv_caller_arena_dup(arena, cache->session_id);
    return 1;
}

/* Remembers a verified token (not one with nbf: its validity can begin
 * later, and such tokens are rare). */
static void sv_caller_cache_put(sv_caller_cache *cache, const char *secret, const char *token,
                                const sv_caller *caller, json_object *payload)
{
    json_object *v;

    if (json_object_object_get_ex(payload, "nbf", NULL))
        return;
    sv_caller_cache_free(cache);
    cache->token = strdup(token);
    cache->claims = sv_caller_xstrdup(caller->claims);
    cache->role = sv_caller_xstrdup(caller->role);
    cache->user_id = sv_caller_xstrdup(caller->user_id);
    cache->email = sv_caller_xstrdup(caller->email);
    cache->session_id = sv_caller_xstrdup(caller->session_id);
    if (cache->token == NULL || cache->claims == NULL || cache->role == NULL ||
        (caller->user_id && !cache->user_id) || (caller->email && !cache->email) ||
        (caller->session_id && !cache->session_id)) {
        sv_caller_cache_free(cache);
        return;
    }
    cache->len = strlen(token);
    cache->secret = secret;
    if (json_object_object_get_ex(payload, "exp", &v)) {
        cache->has_exp = 1;
        cache->exp = json_object_get_double(v);
    }
}

/* --- verifying ------------------------------------------------------------- */

/* Verifies token and fills caller. Returns SV_JWT_OK, a verification
 * status, or -1 when the signature is fine but the role claim is not one
 * of anon/authenticated/service_role. */
static int sv_caller_verify(sv_ctx *ctx, const char *token, sv_caller *caller)
{
    const char *secret = ctx->cfg->jwt_secret;
    char *claims = NULL;
    json_object *obj = NULL;
    time_t now = time(NULL);

    if (ctx->caller_cache != NULL &&
        sv_caller_cache_get(ctx->caller_cache, secret, ctx->arena, token, now, caller))
        return SV_JWT_OK;
    sv_jwt_status st = sv_jwt_verify_obj(ctx->arena, secret, token, now, &claims, &obj);
    if (st != SV_JWT_OK)
        return (int)st;
    int bad = 0;
    const char *role = sv_caller_claim(ctx->arena, obj, "role", &bad);
    const char *sub = sv_caller_claim(ctx->arena, obj, "sub", &bad);
    const char *email = sv_caller_claim(ctx->arena, obj, "email", &bad);
    const char *session_id = sv_caller_claim(ctx->arena, obj, "session_id", &bad);
    if (bad) {
        json_object_put(obj);
        return SV_JWT_MALFORMED;
    }
    if (role == NULL || (strcmp(role, "anon") != 0 && strcmp(role, "authenticated") != 0 &&
                         strcmp(role, "service_role") != 0)) {
        json_object_put(obj);
        return -1;
    }
    caller->role = role;
    caller->claims = claims;
    caller->user_id = sub;
    caller->email = email;
    caller->session_id = session_id;
    if (ctx->caller_cache != NULL)
        sv_caller_cache_put(ctx->caller_cache, secret, token, caller, obj);
    json_object_put(obj);
    return SV_JWT_OK;
}

static int sv_caller_has_secret(const sv_ctx *ctx)
{
    return ctx->cfg->jwt_secret != NULL && ctx->cfg->jwt_secret[0] != '\0';
}

static void sv_caller_log_no_secret(void)
{
    static int logged;

    if (!logged) {
        sv_log_error("auth_misconfigured", "reason=%s",
                     "jwt_secret_not_configured_token_bearing_requests_are_refused");
        logged = 1;
    }
}

/* PostgREST's way: no token is anon, a bad one a 401 PGRST301. */
static int sv_caller_optional(sv_ctx *ctx)
{
    int bad;
    const char *token = sv_caller_token_of(ctx->req, 1, &bad);

    sv_caller_anon(&ctx->caller);
    if (token == NULL && !bad)
        return SV_OK;

    const char *msg;
    int st = SV_JWT_MALFORMED;
    if (bad) {
        msg = "Authorization header is not a Bearer token";
    } else if (!sv_caller_has_secret(ctx)) {
        sv_caller_log_no_secret();
        msg = "Server lacks JWT secret";
    } else if ((st = sv_caller_verify(ctx, token, &ctx->caller)) == SV_JWT_OK) {
        return SV_OK;
    } else if (st == -1) {
        msg = "JWT role claim is missing or not allowed";
    } else {
        msg = sv_jwt_strerror((sv_jwt_status)st);
    }
    sv_caller_anon(&ctx->caller);
    ctx->err.www_authenticate =
        sv_arena_printf(ctx->arena, "Bearer error=\"invalid_token\", error_description=\"%s\"", msg);
    return sv_fail(&ctx->err, 401, "PGRST301", msg);
}

/* What GoTrue's requireAuthentication and requireAdminCredentials share
 * (internal/api/auth.go): a Bearer token, else 401 no_authorization; one
 * that verifies, else 403 bad_jwt "invalid JWT: unable to parse or
 * verify signature, <golang-jwt's reason>". *st is the verification's
 * status, SV_JWT_OK or -1 (signed, but a role this server does not
 * know), which each caller answers in its own words. */
static int sv_caller_bearer(sv_ctx *ctx, int *st)
{
    int bad;

    sv_caller_anon(&ctx->caller);
    if (!sv_caller_has_secret(ctx))
        return sv_fail(&ctx->err, 500, "unexpected_failure",
                       "Server misconfiguration: jwt_secret is not configured");
    const char *token = sv_caller_token_of(ctx->req, 0, &bad);
    if (token == NULL)
        return sv_fail(&ctx->err, 401, "no_authorization",
                       "This endpoint requires a valid Bearer token");
    *st = sv_caller_verify(ctx, token, &ctx->caller);
    if (*st != SV_JWT_OK && *st != -1)
        return sv_fail(&ctx->err, 403, "bad_jwt",
                       sv_arena_printf(ctx->arena, "invalid JWT: unable to parse or verify signature, %s",
                                       sv_jwt_strerror_gotrue((sv_jwt_status)*st)));
    return SV_OK;
}

/* GoTrue's requireAuthentication: a user's own access token. The
 * answers are GoTrue's (internal/api/auth.go): sv_caller_bearer's, then
 * no sub 403, a sub that is not a UUID 400, a session_id that is not
 * one 403, all bad_jwt. Whether the user and the session still
 * exist is the handler's question (403 user_not_found, then
 * session_not_found). Stricter than GoTrue, and answered as bad claims:
 * the role must be authenticated and a session_id present (every token
 * this server issues has both). */
static int sv_caller_user(sv_ctx *ctx)
{
    sv_caller *caller = &ctx->caller;
    int st;

    if (sv_caller_bearer(ctx, &st) != SV_OK)
        return SV_ERROR;
    if (st == -1)
        return sv_fail(&ctx->err, 403, "bad_jwt", "invalid claim: role claim is missing or not allowed");
    if (caller->user_id == NULL || caller->user_id[0] == '\0')
        return sv_fail(&ctx->err, 403, "bad_jwt", "invalid claim: missing sub claim");
    if (!sv_uuid_valid(caller->user_id))
        return sv_fail(&ctx->err, 400, "bad_jwt", "invalid claim: sub claim must be a UUID");
    if (strcmp(caller->role, "authenticated") != 0)
        return sv_fail(&ctx->err, 403, "bad_jwt", "invalid claim: role must be authenticated");
    if (caller->session_id == NULL || caller->session_id[0] == '\0')
        return sv_fail(&ctx->err, 403, "session_not_found",
                       "Session from session_id claim in JWT does not exist");
    if (!sv_uuid_valid(caller->session_id))
        return sv_fail(&ctx->err, 403, "bad_jwt", "invalid claim: session_id claim must be a UUID");
    return SV_OK;
}

/* GoTrue's requireAdminCredentials then requireAdmin (internal/api/
 * middleware.go, auth.go): no Bearer token 401 no_authorization, a token
 * that does not verify 403 bad_jwt as for /user, a verified token whose
 * role is not an admin role 403 not_admin "User not allowed". GoTrue's
 * admin roles default to service_role and supabase_admin; this server
 * knows no supabase_admin, so a role it does not know is not an admin. */
static int sv_caller_admin(sv_ctx *ctx)
{
    sv_caller *caller = &ctx->caller;
    int st;

    if (sv_caller_bearer(ctx, &st) != SV_OK)
        return SV_ERROR;
    if (st == -1 || strcmp(caller->role, "service_role") != 0) {
        sv_caller_anon(caller);
        return sv_fail(&ctx->err, 403, "not_admin", "User not allowed");
    }
    return SV_OK;
}

static int sv_caller_service(sv_ctx *ctx)
{
    if (sv_caller_optional(ctx) != SV_OK)
        return SV_ERROR;
    if (strcmp(ctx->caller.role, "service_role") == 0)
        return SV_OK;
    return sv_fail(&ctx->err, sv_ctx_is_anon(ctx) ? 401 : 403, "42501",
                   "permission denied: this endpoint is for the service role");
}

/* A token is required: a user's, or the service role's (which then names
 * the user it acts for). */
static int sv_caller_required(sv_ctx *ctx)
{
    if (sv_caller_optional(ctx) != SV_OK)
        return SV_ERROR;
    if (!sv_ctx_is_anon(ctx) && (strcmp(ctx->caller.role, "service_role") == 0 ||
                                 sv_uuid_valid(ctx->caller.user_id)))
        return SV_OK;
    ctx->err.www_authenticate = "Bearer";
    return sv_fail(&ctx->err, 401, "unauthorized",
                   "A signed-in user's access token (or the service role key) is required");
}

int sv_caller_authenticate(sv_ctx *ctx)
{
    switch (ctx->route->auth) {
    case SV_AUTH_OPTIONAL:
        return sv_caller_optional(ctx);
    case SV_AUTH_REQUIRED:
        return sv_caller_required(ctx);
    case SV_AUTH_USER:
        return sv_caller_user(ctx);
    case SV_AUTH_SERVICE:
        return sv_caller_service(ctx);
    case SV_AUTH_ADMIN:
        return sv_caller_admin(ctx);
    case SV_AUTH_NONE:
        break;
    }
    sv_caller_anon(&ctx->caller);
    return SV_OK;
}
