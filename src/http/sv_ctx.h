/* What a handler gets: the request, its response, and the few things of
 * the worker it may use (configuration, database connection, arena,
 * scoreboard slot, a hook to shed connections). Handlers never see the
 * worker process or the transport; only worker/ knows those. */
#ifndef SV_CTX_H
#define SV_CTX_H

#include <stdint.h>

#include "core/sv_arena.h"
#include "core/sv_config.h"
#include "core/sv_err.h"
#include "core/sv_ratelimit.h"
#include "core/sv_scoreboard.h"
#include "crypto/sv_vault.h"
#include "db/sv_db.h"
#include "http/sv_http.h"
#include "http/sv_route.h"

/* Who the request runs as, from the authenticate phase. Strings live in
 * the request arena. */
typedef struct sv_caller {
    const char *role;        /* "anon", "authenticated" or "service_role" */
    const char *claims;      /* JSON text for request.jwt.claims */
    const char *user_id;     /* the "sub" claim, NULL for anon and the API keys */
    const char *email;
    const char *session_id;
} sv_caller;

/* Caches a worker keeps from one request to the next (their owners'
 * modules define them; the worker holds them). */
struct sv_caller_cache;
struct sv_rest_cache;

typedef struct sv_ctx {
    const sv_config     *cfg;
    sv_db               *db;
    sv_arena            *arena;
    sv_request          *req;
    sv_response         *res;
    const sv_route      *route;
    sv_caller            caller;
    sv_error             err;
    sv_slot             *slot;        /* this worker's */
    sv_scoreboard       *sb;          /* the pool's: counters, the status page */
    const sv_vault      *vault;       /* the keys that seal secrets (never NULL) */
    sv_ratelimit        *ratelimit;   /* the pool's zone; NULL: no limits (CGI) */
    int64_t              worker_started_ms;   /* wall clock */
    int64_t              started_ms;  /* the request's start, monotonic */
    struct sv_caller_cache *caller_cache;
    struct sv_rest_cache   *rest_cache;
    /* Before long work that waits on nothing the worker watches (password
     * hashing, an outbound HTTP call), the transport hands its other
     * connections to workers that are free; NULL where there is nobody
     * to hand them to (CGI, spawn-fcgi). */
    void (*shed_connections)(void *arg);
    void  *shed_arg;
} sv_ctx;

/* Sheds the worker's other connections when the transport can. */
void sv_ctx_shed(sv_ctx *ctx);

/* 1 when the caller runs as role anon. */
int sv_ctx_is_anon(const sv_ctx *ctx);

#endif
