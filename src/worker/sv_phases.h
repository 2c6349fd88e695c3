/* The request path inside a worker, as named phases run by one function
 * (nginx's phase engine is the model):
 *
 *   size -> route -> cors -> authenticate -> rate -> body -> handler
 *        -> [error] -> send -> log
 *
 * Each phase returns SV_OK to go on, SV_DONE when the response is
 * complete (a CORS preflight), or SV_ERROR with ctx->err filled; the
 * runner alone turns an error into a response, in the dialect of the
 * route (PostgREST's, GoTrue's or the Edge Functions'; the transport
 * phases size, route and body always speak PostgREST's). A handler may
 * also park its request (SV_PARK) until an event; the transport then
 * resumes it through sv_phases_resume. */
#ifndef SV_PHASES_H
#define SV_PHASES_H

#include "http/sv_ctx.h"

/* Serves the request in ctx (built by the worker) from io: every phase,
 * the answer sent, the access line logged: SV_OK. Or SV_PARK when the
 * handler parked the request: nothing sent yet, ctx->park says what it
 * waits for. */
int sv_phases_run(sv_ctx *ctx, const sv_io *io);

/* Resumes a parked request (ctx->park as kept by the transport): SV_OK
 * once answered, or SV_PARK when it waits on. */
int sv_phases_resume(sv_ctx *ctx, const sv_io *io);

#endif
