/* A worker serves requests one at a time, from the FastCGI connections of
 * a listening socket (the pool's, or one inherited from spawn-fcgi /
 * mod_fcgid: sv_fcgi_loop.c) or, run as a CGI program, the single
 * request in its environment (sv_cgi.c). Both transports end in
 * sv_worker_handle, so every mode runs the same request code. Only this
 * directory knows the worker; handlers get an sv_ctx. */
#ifndef SV_WORKER_H
#define SV_WORKER_H

#include <stdint.h>
#include <sys/types.h>

#include "auth/sv_caller.h"
#include "core/sv_arena.h"
#include "core/sv_config.h"
#include "core/sv_ratelimit.h"
#include "core/sv_scoreboard.h"
#include "crypto/sv_vault.h"
#include "db/sv_db.h"
#include "http/sv_http.h"
#include "http/sv_ctx.h"
#include "rest/sv_rest.h"

/* How many recent job ends a worker remembers for its parked requests. */
#define SV_WORKER_DONE_RING 256

typedef struct sv_worker {
    const sv_config *cfg;
    sv_db            db;
    sv_db            race_db;      /* sv_ctx's race_db */
    sv_scoreboard   *sb;
    sv_slot         *slot;
    sv_arena         arena;
    pid_t            master_pid;   /* 0 when not part of a --pool */
    int64_t          started_ms;   /* wall clock */
    /* The pool's queue of passed-on connections: send on [0], receive
     * on [1]; -1 outside a pool. */
    int              handoff_fds[2];
    /* The vault keys, read before fork by whoever started the worker;
     * an empty vault when none is configured. */
    const sv_vault  *vault;
    /* The rate limiter's zone (the pool's, shared by its workers; a
     * process's own outside a pool); NULL: requests are not limited. */
    sv_ratelimit    *ratelimit;
    sv_caller_cache  callers;
    sv_rest_cache    rest;
    /* Set by the transport that can shed connections (sv_ctx). */
    void           (*shed_connections)(void *arg);
    void            *shed_arg;
    /* The jobs whose end was announced (NOTIFY sv_job_done) most
     * recently: a parked request whose job is here resumes. */
    char             done[SV_WORKER_DONE_RING][40];
    unsigned         done_next;
    unsigned long    done_count;      /* announcements received, ever */
} sv_worker;

/* Prepares a worker using slot slot_index of sb (sb may be private to
 * this process outside --pool). */
void sv_worker_init(sv_worker *w, const sv_config *cfg, sv_scoreboard *sb,
                    int slot_index, pid_t master_pid);
void sv_worker_cleanup(sv_worker *w);

/* Serves one request read from io. The body may be left unread (a
 * request refused before it is needed); the transport drains it.
 * Returns SV_OK once answered, or SV_PARK with *park filled: the answer
 * waits (a job's ?wait=N) and the transport keeps the request, without
 * holding the worker, until sv_worker_park_ready says to resume it. */
int sv_worker_handle(sv_worker *w, const sv_io *io, sv_park *park);

/* Resumes a parked request read from io: SV_OK once answered, SV_PARK
 * when it waits on (*park updated). */
int sv_worker_resume(sv_worker *w, const sv_io *io, sv_park *park);

/* 1 when a parked request should resume now: its job's end was
 * announced, its deadline has passed, or force (the worker leaves). */
int sv_worker_park_ready(const sv_worker *w, const sv_park *park, int64_t now_ms, int force);

/* Waits (blocking, for transports with nothing else to serve: CGI) until
 * park is ready, then resumes it; repeats while it parks again. */
void sv_worker_wait_parked(sv_worker *w, const sv_io *io, sv_park *park);

/* Serves the FastCGI connections accepted on listen_fd, kept ones
 * included, until SIGTERM/SIGQUIT/SIGINT, max_requests, or the master
 * going away. Returns an exit status. (sv_fcgi_loop.c) */
int sv_worker_serve_fcgi(sv_worker *w, int listen_fd);

/* Serves the CGI request in environ/stdin/stdout. Returns an exit
 * status. (sv_cgi.c) */
int sv_worker_serve_cgi(sv_worker *w);

#endif
