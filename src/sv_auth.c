#include "sv_auth.h"

#include "sv_worker.h"

/* Placeholder until accounts land: every caller is anon, and the account
 * endpoints say so instead of pretending to work. */
int sv_auth_request(sv_worker *w, sv_request *req, sv_response *res, sv_auth_ctx *ctx)
{
    (void)w; (void)req; (void)res;
    ctx->role = "anon";
    ctx->claims = "{\"role\":\"anon\"}";
    ctx->user_id = ctx->email = ctx->session_id = NULL;
    return SV_OK;
}

static void sv_auth_not_built(sv_response *res)
{
    sv_response_error(res, 501, "SV501", "Accounts are not implemented yet", NULL, NULL);
}

void sv_auth_signup(sv_worker *w, sv_request *req, sv_response *res) { (void)w; (void)req; sv_auth_not_built(res); }
void sv_auth_token(sv_worker *w, sv_request *req, sv_response *res) { (void)w; (void)req; sv_auth_not_built(res); }
void sv_auth_user_get(sv_worker *w, sv_request *req, sv_response *res) { (void)w; (void)req; sv_auth_not_built(res); }
void sv_auth_user_put(sv_worker *w, sv_request *req, sv_response *res) { (void)w; (void)req; sv_auth_not_built(res); }
void sv_auth_logout(sv_worker *w, sv_request *req, sv_response *res) { (void)w; (void)req; sv_auth_not_built(res); }
