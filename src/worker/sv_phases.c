#include "worker/sv_phases.h"

#include <stdio.h>
#include <string.h>

#include "auth/sv_caller.h"
#include "core/sv_addr.h"
#include "core/sv_clock.h"
#include "core/sv_log.h"
#include "worker/sv_routes.h"

/* --- phases ----------------------------------------------------------- */

/* Too large is too large whatever the route: refused before routing, so
 * no handler ever sees the request and nothing is read. */
static int sv_phase_size(sv_ctx *ctx)
{
    return sv_request_check_size(ctx->req, ctx->cfg->body_limit, &ctx->err);
}

/* Browsers calling the API from a web app's origin send a CORS preflight;
 * answer it for any known path (authorisation happens on the real request,
 * and no cookies are used, so any origin may ask). */
static int sv_phase_preflight(sv_ctx *ctx, int allowed)
{
    const char *asked = sv_request_header(ctx->req, "Access-Control-Request-Headers");
    const char *allow = sv_http_allow_header(ctx->arena, allowed);
    sv_response_header(ctx->res, "Allow", allow);
    sv_response_header(ctx->res, "Access-Control-Allow-Methods", allow);
    sv_response_header(ctx->res, "Access-Control-Allow-Headers",
                       asked && *asked ? asked
                                       : "authorization, apikey, content-type, prefer, range, x-client-info, accept-profile, content-profile");
    sv_response_header(ctx->res, "Access-Control-Max-Age", "86400");
    ctx->res->status = 204;
    return SV_DONE;
}

static int sv_phase_route(sv_ctx *ctx)
{
    sv_request *req = ctx->req;
    sv_route_match m;

    if (req->outside_base)
        return sv_fail(&ctx->err, 404, "PGRST125", "Invalid path specified in request URL");
    switch (sv_route_find(sv_routes, sv_routes_count, ctx->cfg, req->method, req->path,
                          &m)) {
    case SV_ROUTE_FOUND:
        ctx->route = m.route;
        return SV_OK;
    case SV_ROUTE_NOT_FOUND:
        return sv_fail(&ctx->err, 404, "PGRST125", "Invalid path specified in request URL");
    case SV_ROUTE_METHOD_NOT_ALLOWED:
        break;
    }
    if (req->method == SV_HTTP_OPTIONS)
        return sv_phase_preflight(ctx, m.allowed);
    ctx->err.allow = sv_http_allow_header(ctx->arena, m.allowed);
    if (m.best->bad_method_code != NULL)
        return sv_fail(&ctx->err, 405, m.best->bad_method_code, m.best->bad_method_message);
    return sv_fail(&ctx->err, 405, "PGRST117",
                   sv_arena_printf(ctx->arena, "Unsupported HTTP method: %s", req->method_name));
}

/* Runs for every answer, whatever stopped the request: a browser can
 * only read an error it is allowed to see. */
static void sv_phase_cors(sv_ctx *ctx)
{
    if (sv_request_header(ctx->req, "Origin") == NULL)
        return;
    sv_response_header(ctx->res, "Access-Control-Allow-Origin", "*");
    sv_response_header(ctx->res, "Access-Control-Expose-Headers",
                       "Content-Range, Content-Location, Location, X-Request-Id, Retry-After, "
                       "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, X-Total-Count, Link");
}

/* The route's rate class, per caller: the JWT's sub for a signed-in
 * user, else the client's address (an IPv6 address by its /64). The
 * service role (the app's own server) is not limited. Every answer of a
 * limited route says where the caller stands (RateLimit-Limit,
 * -Remaining, -Reset); over the limit it is a 429 with Retry-After. */
static int sv_phase_rate(sv_ctx *ctx)
{
    const sv_config *cfg = ctx->cfg;
    long interval;
    int burst;
    char cls;

    if (ctx->ratelimit == NULL)
        return SV_OK;
    switch (ctx->route->rate) {
    case SV_RATE_NONE:
        return SV_OK;
    case SV_RATE_AUTH:
        interval = cfg->rate_limit_auth, burst = cfg->rate_limit_auth_burst, cls = 'a';
        break;
    case SV_RATE_DATA:
        if (ctx->req->method & (SV_HTTP_GET | SV_HTTP_HEAD))
            interval = cfg->rate_limit_reads, burst = cfg->rate_limit_reads_burst, cls = 'r';
        else
            interval = cfg->rate_limit_writes, burst = cfg->rate_limit_writes_burst, cls = 'w';
        break;
    case SV_RATE_FUNCTIONS:
    default:
        interval = cfg->rate_limit_functions, burst = cfg->rate_limit_functions_burst, cls = 'f';
        break;
    }
    if (interval <= 0 || strcmp(ctx->caller.role, "service_role") == 0)
        return SV_OK;

    char key[128];
    int n;
    if (ctx->caller.user_id != NULL) {
        n = snprintf(key, sizeof(key), "%c u %s", cls, ctx->caller.user_id);
    } else {
        char buf[64], addr[48];
        const char *fwd = cfg->trusted_proxies[0] ? sv_request_header(ctx->req, cfg->real_ip_header) : NULL;
        const char *client = sv_addr_client(ctx->req->remote_addr, fwd, cfg->trusted_proxies, buf,
                                            sizeof(buf));
        n = snprintf(key, sizeof(key), "%c a %s", cls, sv_addr_rate_key(client, addr, sizeof(addr)));
    }
    if (n < 0 || (size_t)n >= sizeof(key))
        n = (int)sizeof(key) - 1;

    sv_rate_verdict v;
    sv_ratelimit_take(ctx->ratelimit, key, (size_t)n, interval, burst, sv_clock_mono_us(), &v);
    sv_response_header_long(ctx->res, "RateLimit-Limit", v.limit);
    sv_response_header_long(ctx->res, "RateLimit-Remaining", v.remaining);
    sv_response_header_long(ctx->res, "RateLimit-Reset", v.reset_s);
    if (v.allowed)
        return SV_OK;
    ctx->err.retry_after = (int)v.retry_after_s;
    return sv_fail(&ctx->err, 429, NULL,
                   sv_arena_printf(ctx->arena, "Too many requests: at most %d at once and one every %ld ms; retry after %ld s",
                                   burst, interval / 1000, v.retry_after_s));
}

static int sv_phase_body(sv_ctx *ctx, const sv_io *io)
{
    return sv_request_read_body(ctx->req, io, ctx->cfg->body_limit, &ctx->err);
}

/* --- errors ----------------------------------------------------------- */

/* The code an error without one carries in dialect. */
static const char *sv_phase_default_code(sv_dialect dialect, int status)
{
    if (dialect == SV_DIALECT_GOTRUE)
        return status >= 500 ? "unexpected_failure"
               : status == 429 ? "over_request_rate_limit" : "validation_failed";
    if (dialect == SV_DIALECT_FUNCTIONS)
        return status == 429 ? "rate_limited" : status >= 500 ? "unexpected_failure" : "bad_request";
    return status == 503 ? "PGRST000" : status == 429 ? "SV429" : NULL;
}

static json_object *sv_phase_string(const char *s)
{
    return s != NULL ? json_object_new_string(s) : NULL;
}

/* Writes ctx->err as the response: PostgREST's {"code","message",
 * "details","hint"}, GoTrue's {"code":status,"error_code","msg"} or, for
 * /functions/v1, {"error":message,"code"[,"details"]} (what Supabase Edge Functions
 * conventionally answer, and supabase-js hands to the app as the error's
 * context), then any extra members, with the headers the error asks
 * for. */
static void sv_phase_error(sv_ctx *ctx, sv_dialect dialect)
{
    sv_error *err = &ctx->err;
    const char *code = err->code ? err->code : sv_phase_default_code(dialect, err->status);
    json_object *obj = json_object_new_object();

    if (dialect == SV_DIALECT_GOTRUE) {
        json_object_object_add(obj, "code", json_object_new_int(err->status));
        json_object_object_add(obj, "error_code", sv_phase_string(code));
        json_object_object_add(obj, "msg", json_object_new_string(err->message ? err->message : ""));
    } else if (dialect == SV_DIALECT_FUNCTIONS) {
        json_object_object_add(obj, "error", json_object_new_string(err->message ? err->message : ""));
        json_object_object_add(obj, "code", sv_phase_string(code));
        if (err->details != NULL)
            json_object_object_add(obj, "details", json_object_new_string(err->details));
    } else {
        json_object_object_add(obj, "code", sv_phase_string(code));
        json_object_object_add(obj, "message", json_object_new_string(err->message ? err->message : ""));
        json_object_object_add(obj, "details", sv_phase_string(err->details));
        json_object_object_add(obj, "hint", sv_phase_string(err->hint));
    }
    if (err->extra != NULL) {
        json_object_object_foreach(err->extra, key, val)
            json_object_object_add(obj, key, json_object_get(val));
    }
    if (err->retry_after > 0)
        sv_response_header(ctx->res, "Retry-After",
                           sv_arena_printf(ctx->arena, "%d", err->retry_after));
    if (err->www_authenticate != NULL)
        sv_response_header(ctx->res, "WWW-Authenticate", err->www_authenticate);
    if (err->allow != NULL)
        sv_response_header(ctx->res, "Allow", err->allow);
    sv_response_json(ctx->res, err->status, obj);
}

/* --- the runner ------------------------------------------------------- */

static void sv_phase_log(sv_ctx *ctx, size_t body_bytes, int sent)
{
    sv_request *req = ctx->req;
    int64_t duration = sv_clock_mono_ms() - ctx->started_ms;
    char qpath[256], qid[160];

    sv_log_info("access", "method=%s path=%s status=%d duration_ms=%lld bytes=%zu request_id=%s remote_addr=%s%s",
                req->method_name[0] ? req->method_name : "-",
                sv_log_quote(req->sent_path ? req->sent_path : req->path, qpath, sizeof(qpath)), ctx->res->status,
                (long long)duration, body_bytes,
                sv_log_quote(req->request_id, qid, sizeof(qid)),
                req->remote_addr[0] ? req->remote_addr : "-",
                sent == SV_OK ? "" : " client_gone=1");
    if (ctx->cfg->slow_request_time > 0 && duration >= (int64_t)ctx->cfg->slow_request_time * 1000) {
        sv_scoreboard_count(ctx->sb, SV_COUNT_SLOW);
        sv_log_warn("slow_request", "method=%s path=%s duration_ms=%lld request_id=%s",
                    req->method_name, qpath, (long long)duration, qid);
    }
}

/* The end of every request: the error written, the answer sent, the
 * access line logged. */
static void sv_phases_finish(sv_ctx *ctx, const sv_io *io, int rc, sv_dialect dialect)
{
    sv_response *res = ctx->res;

    if (rc == SV_ERROR)
        sv_phase_error(ctx, dialect);
    sv_error_clear(&ctx->err);
    res->head_only = ctx->req->method == SV_HTTP_HEAD;
    int sent = sv_response_send(res, io);
    size_t body_bytes = res->head_only ? 0 : sv_response_body_len(res);
    sv_response_release(res);
    sv_phase_log(ctx, body_bytes, sent);
}

int sv_phases_run(sv_ctx *ctx, const sv_io *io)
{
    /* Until authenticate has run, errors are the transport's. */
    sv_dialect dialect = SV_DIALECT_POSTGREST;

    if (strcmp(ctx->req->request_id, "-") != 0)
        sv_response_header(ctx->res, "X-Request-Id", ctx->req->request_id);
    int rc = sv_phase_size(ctx);
    if (rc == SV_OK)
        rc = sv_phase_route(ctx);
    sv_phase_cors(ctx);
    if (rc == SV_OK) {
        dialect = ctx->route->dialect;
        rc = sv_caller_authenticate(ctx);
    }
    if (rc == SV_OK)
        rc = sv_phase_rate(ctx);
    if (rc == SV_OK && (rc = sv_phase_body(ctx, io)) == SV_ERROR)
        dialect = SV_DIALECT_POSTGREST;
    if (rc == SV_OK)
        rc = ctx->route->handler(ctx);
    if (rc == SV_PARK) {
        ctx->park.route = ctx->route;
        ctx->park.started_ms = ctx->started_ms;
        sv_error_clear(&ctx->err);
        return SV_PARK;
    }
    sv_phases_finish(ctx, io, rc, dialect);
    return SV_OK;
}

int sv_phases_resume(sv_ctx *ctx, const sv_io *io)
{
    ctx->route = ctx->park.route;
    ctx->started_ms = ctx->park.started_ms;
    ctx->resuming = 1;
    if (strcmp(ctx->req->request_id, "-") != 0)
        sv_response_header(ctx->res, "X-Request-Id", ctx->req->request_id);
    sv_phase_cors(ctx);
    int rc = ctx->park.resume(ctx);
    if (rc == SV_PARK) {
        sv_error_clear(&ctx->err);
        return SV_PARK;
    }
    sv_phases_finish(ctx, io, rc, ctx->route->dialect);
    return SV_OK;
}
