/* A worker serves requests one at a time, from the FastCGI connections of
 * a listening socket (the pool's, or one inherited from spawn-fcgi /
 * mod_fcgid) or, run as a CGI program, the single request in its
 * environment. Both transports end
 * in sv_worker_handle, so every mode runs the same request code. */
#ifndef SV_WORKER_H
#define SV_WORKER_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "sv_arena.h"
#include "sv_config.h"
#include "sv_db.h"
#include "sv_http.h"
#include "sv_router.h"
#include "sv_scoreboard.h"

typedef struct sv_worker {
    const sv_config *cfg;
    sv_db            db;
    sv_scoreboard   *sb;
    sv_slot         *slot;
    sv_route         routes[16];
    size_t           nroutes;
    sv_arena         arena;
    pid_t            master_pid;   /* 0 when not part of a --pool */
    int64_t          started_ms;
    /* The pool's queue of passed-on connections: send on [0], receive
     * on [1]; -1 outside a pool. */
    int              handoff_fds[2];
} sv_worker;

/* Prepares a worker using slot slot_index of sb (sb may be private to
 * this process outside --pool). */
void sv_worker_init(sv_worker *w, const sv_config *cfg, sv_scoreboard *sb,
                    int slot_index, pid_t master_pid);
void sv_worker_cleanup(sv_worker *w);

/* Serves one request read from io. The body may be left unread (a
 * request refused before it is needed); the transport drains it. */
void sv_worker_handle(sv_worker *w, const sv_io *io);

/* Serves the FastCGI connections accepted on listen_fd, kept ones
 * included, until SIGTERM/SIGQUIT/SIGINT, max_requests, or the master
 * going away. Returns an exit status. */
int sv_worker_serve_fcgi(sv_worker *w, int listen_fd);

/* The current request is about to keep this worker busy for a long time
 * without waiting on PostgreSQL (password hashing): in a pool, its idle
 * kept connections go to the other workers first, so the requests nginx
 * sends on them meanwhile do not wait for it. */
void sv_worker_long_work(void);

/* Serves the CGI request in environ/stdin/stdout. Returns an exit status. */
int sv_worker_serve_cgi(sv_worker *w);

#endif
