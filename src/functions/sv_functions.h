/* /functions/v1: the endpoints the V2 design ran as Supabase Edge
 * Functions, answered in their shape (JSON in, JSON out, errors as
 * {"error","code"}: SV_DIALECT_FUNCTIONS). supabase-js calls them with
 * functions.invoke(name, {method, body}) and its Authorization and
 * apikey headers. */
#ifndef SV_FUNCTIONS_H
#define SV_FUNCTIONS_H

#include "http/sv_ctx.h"

/* GET /functions/v1/credentials: the caller's credentials, metadata
 * only. POST: stores tokens obtained elsewhere (sv_fn_credentials.c). */
int sv_fn_credentials(sv_ctx *ctx);
/* DELETE /functions/v1/credentials/<platform>: revoke, then delete. */
int sv_fn_credentials_delete(sv_ctx *ctx);

/* GET /functions/v1/oauth/<platform>/start?redirect_to=...: 302 to the
 * provider (or {"url"} with skip_http_redirect=true). GET .../callback:
 * the provider's redirect back (sv_fn_oauth.c). */
int sv_fn_oauth_start(sv_ctx *ctx);
int sv_fn_oauth_callback(sv_ctx *ctx);

#endif
