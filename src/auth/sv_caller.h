/* The authenticate phase: who a request runs as, from its apikey and
 * "Authorization: Bearer" headers and the route's policy. */
#ifndef SV_CALLER_H
#define SV_CALLER_H

#include <stddef.h>

#include "http/sv_ctx.h"

/* The last token a worker verified, with what it yielded. Clients send
 * the same token request after request, and verifying it (HMAC, base64,
 * two JSON parses) is most of a small request's CPU; a hit costs one
 * constant-time comparison and an expiry check. One entry, replaced on a
 * miss; its strings are malloc'd. */
typedef struct sv_caller_cache {
    char       *token;
    size_t      len;
    const char *secret;     /* the cfg string it was verified with */
    char       *claims, *role, *user_id, *email, *session_id;
    int         has_exp;
    double      exp;
} sv_caller_cache;

void sv_caller_cache_init(sv_caller_cache *cache);
void sv_caller_cache_free(sv_caller_cache *cache);

/* Fills ctx->caller as ctx->route's policy asks:
 *   SV_AUTH_NONE      anon, nothing looked at;
 *   SV_AUTH_OPTIONAL  "Authorization: Bearer <jwt>", else an apikey header
 *                     that is a JWT, else anon. A token must be an HS256
 *                     JWT signed with jwt_secret, with an exp still in
 *                     the future, no NUL in any claim, and role
 *                     anon, authenticated or service_role (only the
 *                     signature and expiry count, not the session, as in
 *                     Supabase);
 *   SV_AUTH_REQUIRED  as OPTIONAL, and anon is refused (401): a token
 *                     with a uuid sub, or the service role's;
 *   SV_AUTH_USER      a signed-in user's access token in Authorization
 *                     (GoTrue's requireAuthentication and its error
 *                     codes): role authenticated, a uuid sub and
 *                     session_id;
 *   SV_AUTH_SERVICE   as OPTIONAL, and the role must be service_role;
 *   SV_AUTH_ADMIN     GoTrue's requireAdminCredentials, for /auth/v1/admin:
 *                     "Authorization: Bearer <jwt>" whose role is
 *                     service_role (no sub or session needed).
 * Returns SV_OK, or SV_ERROR with ctx->err in the route's dialect
 * (PostgREST: 401 PGRST301 with WWW-Authenticate; GoTrue: its codes). */
int sv_caller_authenticate(sv_ctx *ctx);

#endif
