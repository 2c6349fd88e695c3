#include "http/sv_ctx.h"

#include <string.h>

#include "core/sv_json.h"

void sv_ctx_shed(sv_ctx *ctx)
{
    if (ctx->shed_connections != NULL)
        ctx->shed_connections(ctx->shed_arg);
}

int sv_ctx_is_anon(const sv_ctx *ctx)
{
    return ctx->caller.role == NULL || strcmp(ctx->caller.role, "anon") == 0;
}

int sv_ctx_body_object(sv_ctx *ctx, json_object **obj, const char **why)
{
    const char *parse_why = NULL;

    *obj = NULL;
    if (why != NULL)
        *why = NULL;
    if (ctx->req->body == NULL || ctx->req->body_len == 0) {
        *obj = json_object_new_object();
        return SV_OK;
    }
    if (sv_json_parse(ctx->req->body, ctx->req->body_len, obj, &parse_why) == SV_OK &&
        json_object_is_type(*obj, json_type_object))
        return SV_OK;
    sv_json_put_wiped(*obj);
    *obj = NULL;
    if (why != NULL)
        *why = parse_why;
    return SV_ERROR;
}
