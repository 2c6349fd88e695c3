#include "functions/sv_fn_common.h"

#include <string.h>

#include <sodium.h>

#include "core/sv_json.h"

static void sv_fn_shed(void *arg)
{
    sv_ctx_shed(arg);
}

void sv_fn_env(sv_ctx *ctx, sv_platform_env *env)
{
    memset(env, 0, sizeof(*env));
    env->cfg = ctx->cfg;
    env->vault = ctx->vault;
    env->db = ctx->db;
    env->arena = ctx->arena;
    env->request_id = ctx->req->request_id;
    env->before_call = sv_fn_shed;
    env->before_call_arg = ctx;
}

int sv_fn_body(sv_ctx *ctx, json_object **obj)
{
    const char *why = NULL;

    *obj = NULL;
    /* Unlike GoTrue and PostgREST, an empty body is not {} here. */
    if (ctx->req->body == NULL || ctx->req->body_len == 0)
        return sv_fail(&ctx->err, 400, "invalid_json", "the request body must be a JSON object");
    if (sv_ctx_body_object(ctx, obj, &why) != SV_OK) {
        return sv_fail(&ctx->err, 400, "invalid_json",
                       why ? sv_arena_printf(ctx->arena, "the request body is not a JSON object: %s", why)
                           : "the request body is not a JSON object");
    }
    return SV_OK;
}

void sv_fn_wipe_body(sv_ctx *ctx)
{
    if (ctx->req->body != NULL)
        sodium_memzero(ctx->req->body, ctx->req->body_len);
}

int sv_fn_platform_segment(sv_ctx *ctx, const char *prefix, const char **name)
{
    const char *p = ctx->req->path + strlen(prefix);
    size_t n = strcspn(p, "/");
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
            n = 0;
    if (n == 0 || n > 32)
        return sv_fail(&ctx->err, 404, "unknown_platform", "unknown platform");
    *name = sv_arena_strndup(ctx->arena, p, n);
    return SV_OK;
}

int sv_fn_json(sv_ctx *ctx, int status, const char *json_text)
{
    ctx->res->status = status;
    ctx->res->body.len = 0;
    sv_buf_puts(&ctx->res->body, json_text);
    sv_response_header(ctx->res, "Cache-Control", "no-store");
    return SV_OK;
}
