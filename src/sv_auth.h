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

/* Resolves the caller from the request headers. No token: anon. Returns
 * SV_OK with *ctx filled, or SV_ERROR after writing a 401 into res (bad
 * signature, expired, alg other than HS256, malformed). */
int sv_auth_request(struct sv_worker *w, sv_request *req, sv_response *res, sv_auth_ctx *ctx);

void sv_auth_signup(struct sv_worker *w, sv_request *req, sv_response *res);
void sv_auth_token(struct sv_worker *w, sv_request *req, sv_response *res);
void sv_auth_user_get(struct sv_worker *w, sv_request *req, sv_response *res);
void sv_auth_user_put(struct sv_worker *w, sv_request *req, sv_response *res);
void sv_auth_logout(struct sv_worker *w, sv_request *req, sv_response *res);

#endif
