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

struct sv_ctx;

/* A request whose answer waits on an event (a job's ?wait=N). The
 * handler fills ctx->park and returns SV_PARK; the transport keeps the
 * request without holding the worker, and calls resume with a fresh
 * context once the event may have happened (a notification naming key)
 * or at deadline. resume answers, or returns SV_PARK to wait on. */
typedef struct sv_park {
    int           (*resume)(struct sv_ctx *ctx);
    const sv_route *route;
    char            key[40];         /* what to wait for: a job id */
    char            user_id[40];     /* whose it is */
    int64_t         deadline_ms;     /* monotonic */
    int64_t         started_ms;      /* the request's start, for its access line */
    int             mode;            /* the handler's own */
} sv_park;

/* Caches a worker keeps from one request to the next (their owners'
 * modules define them; the worker holds them). */
struct sv_caller_cache;
struct sv_rest_cache;

typedef struct sv_ctx {
    const sv_config     *cfg;
    sv_db               *db;
    /* A second connection, opened on first use, for a statement that
     * runs alongside one on db (a text search racing two plans); NULL:
     * none. */
    sv_db               *race_db;
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
    sv_park park;                     /* SV_PARK: what the transport keeps */
    int     resuming;                 /* 1 when run from a park */
} sv_ctx;

/* Sheds the worker's other connections when the transport can. */
void sv_ctx_shed(sv_ctx *ctx);

/* 1 when the caller runs as role anon. */
int sv_ctx_is_anon(const sv_ctx *ctx);

/* Parses the request body as one JSON object; an empty body is {}.
 * SV_OK with *obj (caller puts it; sv_json_put_wiped when it may hold a
 * secret), or SV_ERROR with *obj NULL and, when why is not NULL, *why:
 * sv_json_parse's phrase, or NULL (also when the JSON is not an object).
 * A parsed value that is not an object is wiped before it is freed: a
 * body may carry a password or a secret. Fills no error: each API
 * answers a bad body in its own dialect. */
int sv_ctx_body_object(sv_ctx *ctx, json_object **obj, const char **why);

#endif
