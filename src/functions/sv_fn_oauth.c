/* /functions/v1/oauth/<platform>/start and /callback: not built yet. */
#include "functions/sv_functions.h"

int sv_fn_oauth_start(sv_ctx *ctx)
{
    return sv_fail(&ctx->err, 501, "not_implemented", "the OAuth flow is not built yet");
}

int sv_fn_oauth_callback(sv_ctx *ctx)
{
    return sv_fail(&ctx->err, 501, "not_implemented", "the OAuth flow is not built yet");
}
