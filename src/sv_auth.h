/* Authentication: the apikey / Authorization: Bearer headers of every
 * request, and the GoTrue-compatible /auth/v1 endpoints. */
#ifndef SV_AUTH_H
#define SV_AUTH_H

#include "sv_http.h"

struct sv_worker;

/* Who the request runs as. Strings live in the request arena. */
typedef struct sv_auth_ctx {
    const char *role;        /* "anon", "authenticated" or "service_role" */
    const char *claims;      /* JSON text for request.jwt.claims */
    const char *user_id;     /* the "sub" claim, NULL for anon/service keys */
    const char *email;
    const char *session_id;
} sv_auth_ctx;

/* Resolves the caller from the request headers: "Authorization: Bearer
 * <jwt>", else an apikey header that is a JWT. No token: anon with claims
 * {"role":"anon"}. A token must be an HS256 JWT signed with jwt_secret,
 * unexpired, whose role claim is anon, authenticated or service_role;
 * ctx->claims is its verified payload (compact JSON). Only the signature
 * and expiry are checked, not the session (as in Supabase). Returns SV_OK
 * with *ctx filled, or SV_ERROR after writing PostgREST's 401
 * {"code":"PGRST301",...} with WWW-Authenticate into res (bad signature,
 * expired, alg other than HS256, malformed, role not allowed, or any
 * token while jwt_secret is empty). */
int sv_auth_request(struct sv_worker *w, sv_request *req, sv_response *res, sv_auth_ctx *ctx);

/* The GoTrue-compatible endpoints (sql/008_auth_api.sql holds their SQL).
 * Success bodies are GoTrue's: a session {access_token, token_type
 * "bearer", expires_in, expires_at, refresh_token, user} for signup and
 * /token, the user object for GET/PUT /user, 204 for /logout. Errors are
 * GoTrue's {"code":<status>,"error_code":"...","msg":"..."}. */
void sv_auth_signup(struct sv_worker *w, sv_request *req, sv_response *res);
void sv_auth_token(struct sv_worker *w, sv_request *req, sv_response *res);
void sv_auth_user_get(struct sv_worker *w, sv_request *req, sv_response *res);
void sv_auth_user_put(struct sv_worker *w, sv_request *req, sv_response *res);
void sv_auth_logout(struct sv_worker *w, sv_request *req, sv_response *res);

/* 1 when the password (pw_len bytes, of which bcrypt reads 72) matches a
 * bcrypt hash as GoTrue stored them ($2a$, also $2b$, $2x$, $2y$), 0 when
 * not or for any malformed hash, -1 for a hash whose cost is 17 to 31
 * (not checked: it could outlast request_timeout). A hash or password
 * that cannot be checked (malformed, too costly, a NUL in the password,
 * 512 bytes or more) still costs a cost-10 bcrypt, so such an account
 * answers no sooner than one with a real check. Constant-time
 * comparison; the password's copies are wiped. */
int sv_auth_bcrypt_check(const char *hash, const char *pw, size_t pw_len);

#endif
