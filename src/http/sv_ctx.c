#include "http/sv_ctx.h"

#include <string.h>

void sv_ctx_shed(sv_ctx *ctx)
{
    if (ctx->shed_connections != NULL)
        ctx->shed_connections(ctx->shed_arg);
}

int sv_ctx_is_anon(const sv_ctx *ctx)
{
    return ctx->caller.role == NULL || strcmp(ctx->caller.role, "anon") == 0;
}
