/* The GoTrue-compatible /auth/v1 endpoints. Success bodies are GoTrue's:
 * a session {access_token, token_type "bearer", expires_in, expires_at,
 * refresh_token, user} for signup and /token, the user object for GET/PUT
 * /user, 204 for /logout. Errors (ctx->err) carry GoTrue's error_code.
 * The routes that act on the signed-in user run with policy
 * SV_AUTH_USER, so ctx->caller holds a verified user and session. */
#ifndef SV_AUTH_H
#define SV_AUTH_H

#include "http/sv_ctx.h"

int sv_auth_signup(sv_ctx *ctx);
int sv_auth_token(sv_ctx *ctx);
int sv_auth_user_get(sv_ctx *ctx);
int sv_auth_user_put(sv_ctx *ctx);
int sv_auth_logout(sv_ctx *ctx);

/* GoTrue's /admin/users (internal/api/admin.go), for the service role
 * (policy SV_AUTH_ADMIN): list (paged, X-Total-Count and Link), create,
 * get, update and delete any account. sv_auth_admin_users.c. */
int sv_auth_admin_users_list(sv_ctx *ctx);
int sv_auth_admin_user_create(sv_ctx *ctx);
int sv_auth_admin_user_get(sv_ctx *ctx);
int sv_auth_admin_user_update(sv_ctx *ctx);
int sv_auth_admin_user_delete(sv_ctx *ctx);

#endif
