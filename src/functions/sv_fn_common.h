/* What the /functions/v1 handlers share. Internal to functions/. */
#ifndef SV_FN_COMMON_H
#define SV_FN_COMMON_H

#include <json-c/json.h>

#include "http/sv_ctx.h"
#include "platform/sv_credentials.h"

/* The platform code's view of the request: configuration, vault,
 * database, arena, request id, and shedding before a provider call. */
void sv_fn_env(sv_ctx *ctx, sv_platform_env *env);

/* The body as one JSON object: SV_OK with *obj (caller releases it with
 * sv_json_put_wiped), or SV_ERROR (400 invalid_json). */
int sv_fn_body(sv_ctx *ctx, json_object **obj);

/* Overwrites the request body: it may have carried a token. */
void sv_fn_wipe_body(sv_ctx *ctx);

/* The path segment after prefix (up to the next '/'), checked as a
 * platform name ([a-z0-9_], 1-32): SV_OK with *name (arena), or SV_ERROR
 * (404 unknown_platform). */
int sv_fn_platform_segment(sv_ctx *ctx, const char *prefix, const char **name);

/* Sets a 2xx status with json_text as the body. Returns SV_OK. */
int sv_fn_json(sv_ctx *ctx, int status, const char *json_text);

#endif
