/* /rest/v1: the PostgREST-compatible data API. Routes run with policy
 * SV_AUTH_OPTIONAL, so ctx->caller is who the statement runs as. */
#ifndef SV_REST_H
#define SV_REST_H

#include "db/sv_stmt_cache.h"
#include "http/sv_ctx.h"
#include "rest/sv_rest_schema.h"

/* What a worker keeps for /rest/v1 from one request to the next. */
struct sv_rest_cache {
    sv_rest_schema schema;
    sv_stmt_cache  stmts;
};
typedef struct sv_rest_cache sv_rest_cache;

void sv_rest_cache_init(sv_rest_cache *cache);
void sv_rest_cache_free(sv_rest_cache *cache);

/* GET /rest/v1/ : the OpenAPI description of the exposed tables and rpcs. */
int sv_rest_openapi(sv_ctx *ctx);
/* /rest/v1/rpc/<fn> */
int sv_rest_rpc(sv_ctx *ctx);
/* /rest/v1/<table> with PostgREST's query language. */
int sv_rest_table(sv_ctx *ctx);

/* The V2 document's Vault calls, service role only (sv_rest_vault.c):
 * POST /rest/v1/rpc/vault.create_secret, GET|POST .../vault.get_secret. */
int sv_rest_vault_create_secret(sv_ctx *ctx);
int sv_rest_vault_get_secret(sv_ctx *ctx);

/* PostgREST's schema negotiation: GET and HEAD name a schema in
 * Accept-Profile, POST, PATCH, PUT and DELETE in Content-Profile
 * (supabase-js's .schema('x')). Only public is exposed, so any other
 * schema is 406 PGRST106, rather than silently serving public's table of
 * the same name; vault != 0 (the Vault calls) also accepts "vault". No
 * header: public. SV_OK, or SV_ERROR with ctx->err filled. */
int sv_rest_profile(sv_ctx *ctx, int vault);

/* Loads (or checks) the schema cache for this request. SV_OK or SV_ERROR. */
int sv_rest_schema_ready(sv_ctx *ctx);

#endif
