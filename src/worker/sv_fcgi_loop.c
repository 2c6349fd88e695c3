/* The worker's FastCGI loop. Requests are served one at a time, but a
 * worker is not tied to one connection: it waits on every connection
 * nginx keeps open to it, on the listening socket and on the pool's
 * queue of passed-on connections, and serves whichever is ready. An idle
 * kept connection therefore never blocks a worker (php-fpm's pinning,
 * which starves new connections once nginx caches as many as there are
 * workers), every request can use a kept connection, and one that
 * arrives while this worker is busy is passed on to a free one
 * (sv_handoff.c). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/sv_clock.h"
#include "core/sv_log.h"
#include "worker/sv_fcgi_conn.h"
#include "worker/sv_handoff.h"
#include "worker/sv_worker.h"

static volatile sig_atomic_t sv_fcgi_stop;
static volatile sig_atomic_t sv_fcgi_reopen_log;
static int sv_fcgi_wake_pipe[2] = { -1, -1 };

static void sv_fcgi_on_signal(int signo)
{
    int saved = errno;
    if (signo == SIGUSR1)
        sv_fcgi_reopen_log = 1;
    else
        sv_fcgi_stop = 1;
    if (sv_fcgi_wake_pipe[1] >= 0) {
        ssize_t n = write(sv_fcgi_wake_pipe[1], "x", 1);
        (void)n;
    }
    errno = saved;
}

static void sv_fcgi_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);

    /* A client that hangs up mid-response must cost an EPIPE, not the
     * worker. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    /* Reload is the master's business; a worker keeps serving (and must
     * not run the master's handler it inherited for SIGUSR2). */
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    /* Jobs this worker spawns are not waited for: the kernel reaps them,
     * so none is ever a zombie. */
    sigaction(SIGCHLD, &sa, NULL);

    sa.sa_handler = sv_fcgi_on_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* Reopen log_file (the master's SIGUSR1, after a rotation). */
    sigaction(SIGUSR1, &sa, NULL);

    /* The pool master forks with every signal blocked; unblock only now
     * that this process's handlers are in place. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* One turn of the loop: what is polled, and who owns each entry. */
typedef struct sv_fcgi_loop {
    sv_fcgi_server server;
    sv_db_wait_hook hook;
    int            listen_fd;
    unsigned long  served;
    int            leaving, passing, orphaned;
    int64_t        leave_by_ms, last_sweep_ms, parent_checked_ms;
    sigset_t       waiting_mask;         /* what ppoll lets through: stop, reopen */
    struct pollfd  fds[SV_WORKER_MAX_CONNS + 4];
    sv_fcgi_conn  *owner[SV_WORKER_MAX_CONNS + 4];
    int            nfds, nopen, listen_at, queue_at, db_at;
    sv_fcgi_conn  *free_slot;
} sv_fcgi_loop;

static void sv_fcgi_resume_parked(sv_fcgi_loop *l);

/* Accepts a connection into the free slot c. The worker accepts, not
 * libfcgi: libfcgi's accept then waits (up to 2 s) for the connection's
 * first bytes, and a worker blocked there leaves the requests on its other
 * connections waiting; here a new connection joins the poll set like a
 * kept one and is served once its request has arrived. */
static void sv_fcgi_accept(sv_worker *w, int listen_fd, sv_fcgi_conn *c)
{
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        /* EAGAIN: another worker took it. */
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            sv_log_warn("accept", "error=\"%s\"", strerror(errno));
        return;
    }
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    if (getsockname(fd, (struct sockaddr *)&addr, &len) == 0 &&
        (addr.ss_family == AF_INET || addr.ss_family == AF_INET6)) {
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    }
    /* libfcgi reads a request with blocking reads: a peer that stops
     * mid-request must fail that read, not hold the worker for good. */
    struct timeval tv = { .tv_sec = 2, .tv_usec = 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sv_scoreboard_count(w->sb, SV_COUNT_FASTCGI_CONNS);
    sv_fcgi_conn_adopt(c, fd);
}

/* Every slot holds a connection and another is waiting to be accepted:
 * more than nginx should ever keep (keepalive x worker_processes well
 * under 64 x workers), or clients that connect and stay silent. Closes
 * the longest-idle connection with nothing to read, so new connections
 * are never starved; a kept one closed while nginx reuses it costs that
 * request (retried by nginx for a GET). Returns the freed slot or NULL. */
static sv_fcgi_conn *sv_fcgi_make_room(const sv_fcgi_loop *l)
{
    static int64_t last_warned;
    sv_fcgi_conn *oldest = NULL;
    for (int i = 1; i < l->nfds; i++)
        if (l->owner[i] != NULL && l->owner[i]->req.ipcFd < 0)
            return l->owner[i]; /* closed since the poll (idle sweep, ended) */
    for (int i = 1; i < l->nfds; i++)
        if (l->owner[i] != NULL && l->owner[i]->req.ipcFd >= 0 && l->owner[i]->park == NULL &&
            l->fds[i].revents == 0 &&
            (oldest == NULL || l->owner[i]->last_used_ms < oldest->last_used_ms))
            oldest = l->owner[i];
    if (oldest == NULL)
        return NULL;
    int64_t now = sv_clock_mono_ms();
    if (now - last_warned >= 60000) {
        last_warned = now;
        sv_log_warn("connections_full",
                    "msg=\"every connection slot is taken; closing the longest-idle one\" slots=%d",
                    SV_WORKER_MAX_CONNS);
    }
    sv_fcgi_conn_close(oldest);
    return oldest;
}

static int sv_fcgi_start(sv_fcgi_loop *l, sv_worker *w, int listen_fd)
{
    memset(l, 0, sizeof(*l));
    l->server.w = w;
    l->listen_fd = listen_fd;
    l->server.conns = calloc(SV_WORKER_MAX_CONNS, sizeof(*l->server.conns));
    if (l->server.conns == NULL || pipe2(sv_fcgi_wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        sv_log_error("worker_start", "error=\"%s\"", strerror(errno));
        return SV_ERROR;
    }
    sv_fcgi_signals();
    /* Non-blocking accept: several workers wake for one connection and
     * the losers must go back to waiting, not block inside libfcgi where
     * a stop request could not reach them. */
    int flags = fcntl(listen_fd, F_GETFL);
    if (flags >= 0)
        fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK);
    if (FCGX_Init() != 0) {
        sv_log_error("worker_start", "error=\"libfcgi initialisation failed\"");
        return SV_ERROR;
    }
    for (int i = 0; i < SV_WORKER_MAX_CONNS; i++) {
        FCGX_InitRequest(&l->server.conns[i].req, -1, 0);
        l->server.conns[i].req.keepConnection = 1;
    }
    /* Migrations announce themselves (NOTIFY pgrst): the schema cache
     * reloads without a pool reload. */
    sv_db_listen(&w->db, "pgrst");
    sv_handoff_install(&l->server, &l->hook, &l->waiting_mask);
    char *buf;
    size_t cap;
    uint32_t *len;
    sv_slot_log_buffer(w->slot, &buf, &cap, &len);
    sv_log_set_buffer(buf, cap, len);
    /* Stop and reopen signals arrive only while the worker waits
     * (ppoll), here or on PostgreSQL (the hook): the connections' reads
     * have a timeout, and a socket with one lets a signal interrupt a
     * read despite SA_RESTART, which libfcgi would take for the end of
     * the request's parameters. */
    sigset_t handled;
    sigemptyset(&handled);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGQUIT);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGUSR1);
    sigprocmask(SIG_BLOCK, &handled, &l->waiting_mask);
    l->parent_checked_ms = sv_clock_mono_ms() - 1000;   /* check on the first pass */
    return SV_OK;
}

static void sv_fcgi_finish(sv_fcgi_loop *l)
{
    sv_worker *w = l->server.w;
    sv_slot_exiting(w->slot);
    sv_handoff_uninstall(&l->server);
    if (l->server.conns != NULL)
        for (int i = 0; i < SV_WORKER_MAX_CONNS; i++)
            sv_fcgi_conn_close(&l->server.conns[i]);
    free(l->server.conns);
    l->server.conns = NULL;
    sv_log_set_buffer(NULL, 0, NULL);
    sigprocmask(SIG_SETMASK, &l->waiting_mask, NULL);
}

static int sv_fcgi_used_up(const sv_fcgi_loop *l, unsigned long served)
{
    int max = l->server.w->cfg->max_requests;
    return max > 0 && served >= (unsigned long)max;
}

/* Decides whether the worker leaves: stopped, recycled after
 * max_requests, or orphaned (its master gone). Leaving, the kept
 * connections go to the workers that stay; when the pool stops, the
 * worker answers what nginx sends on them for a moment, each answer
 * closing its connection, rather than closing them idle while nginx may
 * be reusing one. */
static void sv_fcgi_check_leaving(sv_fcgi_loop *l, int64_t now)
{
    sv_worker *w = l->server.w;
    int used_up = sv_fcgi_used_up(l, l->served);

    /* A system call: under load this loop turns over thousands of times
     * a second, and a second's delay in noticing changes nothing
     * (passing on checks for itself). */
    if (!l->orphaned && w->master_pid != 0 && now - l->parent_checked_ms >= 1000) {
        l->parent_checked_ms = now;
        l->orphaned = getppid() != w->master_pid;
    }
    if (!l->leaving && (sv_fcgi_stop || used_up || l->orphaned)) {
        l->leaving = 1;
        l->leave_by_ms = now + 1000;
        if (used_up)
            sv_log_info("worker_recycle", "requests=%lu", l->served);
    }
    if (l->leaving)
        sv_fcgi_resume_parked(l);
    l->passing = l->leaving && !l->orphaned && sv_handoff_can_pass(w);
    if (l->passing)
        sv_handoff_pass_all(&l->server);
}

static void sv_fcgi_watch(sv_fcgi_loop *l, int fd, sv_fcgi_conn *owner)
{
    l->fds[l->nfds] = (struct pollfd){ .fd = fd, .events = POLLIN };
    l->owner[l->nfds++] = owner;
}

/* Builds the poll set. Returns 0 when the worker has left for good. */
static int sv_fcgi_poll_set(sv_fcgi_loop *l, int64_t now)
{
    sv_worker *w = l->server.w;
    sv_fcgi_conn *conns = l->server.conns;

    int parked = 0;
    l->nfds = l->nopen = 0;
    l->listen_at = l->queue_at = l->db_at = -1;
    l->free_slot = NULL;
    sv_fcgi_watch(l, sv_fcgi_wake_pipe[0], NULL);
    for (int i = 0; i < SV_WORKER_MAX_CONNS; i++) {
        conns[i].waiting = 0;
        if (conns[i].req.ipcFd < 0) {
            if (l->free_slot == NULL)
                l->free_slot = &conns[i];
            continue;
        }
        l->nopen++;
        parked += conns[i].park != NULL;
        sv_fcgi_watch(l, conns[i].req.ipcFd, &conns[i]);
    }
    sv_slot_set_connections(w->slot, (uint32_t)l->nopen);
    sv_slot_set_parked(w->slot, (uint32_t)parked);
    /* A stopping pool's last workers serve what is still queued. */
    if (l->leaving && (now >= l->leave_by_ms ||
                       (l->nopen == 0 && (l->passing || l->orphaned || !sv_handoff_pending(w)))))
        return 0;
    /* Polled even with every slot taken: a new connection then replaces
     * the longest-idle one (see sv_fcgi_make_room). */
    if (!l->leaving) {
        l->listen_at = l->nfds;
        sv_fcgi_watch(l, l->listen_fd, NULL);
    }
    /* A stopping pool's workers still empty the queue: what is in it was
     * passed on before the stop and has a request waiting. */
    if (w->handoff_fds[1] >= 0 && (!l->leaving || !l->passing)) {
        l->queue_at = l->nfds;
        sv_fcgi_watch(l, w->handoff_fds[1], NULL);
    }
    /* PostgreSQL's connection, for notifications and for noticing a
     * server that went away while the worker was idle. */
    if (sv_db_socket(&w->db) >= 0) {
        l->db_at = l->nfds;
        sv_fcgi_watch(l, sv_db_socket(&w->db), NULL);
    }
    return 1;
}

/* Waits for something to do. Buffered log lines go out when there is
 * nothing to do. Returns poll's count. */
static int sv_fcgi_wait(sv_fcgi_loop *l, int64_t now)
{
    static const struct timespec no_wait = { 0, 0 };
    int ready = sv_log_pending() ? ppoll(l->fds, (nfds_t)l->nfds, &no_wait, &l->waiting_mask) : 0;
    if (ready <= 0) {
        sv_log_flush();
        int64_t wait_ms = l->leaving ? l->leave_by_ms - now : 1000;
        for (int i = 0; i < SV_WORKER_MAX_CONNS; i++) {
            const sv_park *p = l->server.conns[i].park;
            if (p != NULL && p->deadline_ms - now < wait_ms)
                wait_ms = p->deadline_ms - now > 0 ? p->deadline_ms - now : 0;
        }
        struct timespec wait = { (time_t)(wait_ms / 1000), (long)(wait_ms % 1000) * 1000000L };
        ready = ppoll(l->fds, (nfds_t)l->nfds, &wait, &l->waiting_mask);
    }
    return ready;
}

/* After the master's SIGUSR1: log_file by name again. The lines held
 * until now go to the old file (sv_log_open flushes first); on failure
 * the worker keeps writing there and says so. */
static void sv_fcgi_reopen(sv_fcgi_loop *l)
{
    sv_fcgi_reopen_log = 0;
    if (sv_log_open(l->server.w->cfg->log_file) != 0)
        sv_log_error("log_reopen", "msg=\"cannot open log_file, keeping the old one\" error=\"%s\"",
                     strerror(errno));
}

/* Once a second, busy or not: drop connections nginx has not used for a
 * long time (nginx itself closes them after 55 s), never one that has
 * just become readable; and the second database connection a text
 * search races on (rest/sv_rest.c) once it has been unused as long, so
 * that only workers that raced lately hold two. Runs between requests
 * only, never while a statement is out. */
static void sv_fcgi_sweep_idle(sv_fcgi_loop *l, int ready)
{
    int64_t now = sv_clock_mono_ms();
    sv_worker *w = l->server.w;
    int idle = w->cfg->keepalive_idle;
    if (now - l->last_sweep_ms < 1000)
        return;
    l->last_sweep_ms = now;
    if (idle > 0 && w->race_db.conn != NULL && now - w->race_db.last_sent_ms >= (int64_t)idle * 1000)
        sv_db_disconnect(&w->race_db);
    for (int i = 1; i < l->nfds; i++)
        if (l->owner[i] != NULL && l->owner[i]->park == NULL &&
            (ready <= 0 || l->fds[i].revents == 0) && idle > 0 &&
            now - l->owner[i]->last_used_ms >= (int64_t)idle * 1000)
            sv_fcgi_conn_close(l->owner[i]);
}

/* Serves what poll found ready: requests on the connections, a new
 * connection, one from the pool's queue. */
static void sv_fcgi_dispatch(sv_fcgi_loop *l)
{
    sv_worker *w = l->server.w;

    /* Before any request: a schema change announced now applies to it. */
    if (l->db_at >= 0 && l->fds[l->db_at].revents != 0)
        sv_db_read_idle(&w->db);
    if (l->fds[0].revents & POLLIN) {
        char drain[16];
        while (read(sv_fcgi_wake_pipe[0], drain, sizeof(drain)) > 0)
            ;
    }
    for (int i = 1; i < l->nfds; i++) {
        sv_fcgi_conn *c = l->owner[i];
        /* Passed on while an earlier request here waited, or closed. */
        if (c == NULL || c->req.ipcFd < 0 ||
            !(l->fds[i].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)))
            continue;
        /* nginx sends nothing more on a connection whose request it still
         * waits for: a parked one that stirs has been closed (the client
         * went away). */
        if (c->park != NULL) {
            sv_fcgi_conn_close(c);
            continue;
        }
        int last = (l->leaving || sv_fcgi_stop || sv_fcgi_used_up(l, l->served + 1)) &&
                   (l->orphaned || !sv_handoff_can_pass(w));
        l->served += (unsigned long)sv_fcgi_conn_serve(&l->server, c, last);
    }
    /* Nothing new for a worker about to leave: a connection taken now
     * would only be passed back, unserved (with one worker, the same
     * connections every time). */
    int done = sv_fcgi_stop || sv_fcgi_used_up(l, l->served);
    if (l->listen_at >= 0 && (l->fds[l->listen_at].revents & POLLIN) && !done) {
        sv_fcgi_conn *slot = l->free_slot;
        if (slot == NULL || slot->req.ipcFd >= 0)
            slot = sv_fcgi_make_room(l);
        if (slot != NULL)
            sv_fcgi_accept(w, l->listen_fd, slot);
    }
    if (l->queue_at >= 0 && (l->fds[l->queue_at].revents & POLLIN) && (!done || l->leaving)) {
        sv_fcgi_conn *slot = NULL;
        for (int i = 0; i < SV_WORKER_MAX_CONNS && slot == NULL; i++)
            if (l->server.conns[i].req.ipcFd < 0)
                slot = &l->server.conns[i];
        if (slot == NULL)
            slot = sv_fcgi_make_room(l);
        if (slot != NULL)
            sv_handoff_take(w, slot);
    }
}

/* Resumes the parked requests whose job ended or whose wait is over
 * (all of them when the worker leaves: they get the job's status as it
 * is). */
static void sv_fcgi_resume_parked(sv_fcgi_loop *l)
{
    sv_worker *w = l->server.w;
    int64_t now = sv_clock_mono_ms();
    for (int i = 0; i < SV_WORKER_MAX_CONNS; i++) {
        sv_fcgi_conn *c = &l->server.conns[i];
        if (c->park == NULL || c->req.ipcFd < 0 || !sv_worker_park_ready(w, c->park, now, l->leaving))
            continue;
        if (l->leaving)
            c->park->deadline_ms = 0;
        sv_fcgi_conn_resume(&l->server, c, l->leaving && (l->orphaned || !sv_handoff_can_pass(w)));
    }
}

int sv_worker_serve_fcgi(sv_worker *w, int listen_fd)
{
    sv_fcgi_loop *l = malloc(sizeof(*l));
    if (l == NULL || sv_fcgi_start(l, w, listen_fd) != SV_OK) {
        if (l != NULL)
            free(l->server.conns);
        free(l);
        return 1;
    }
    for (;;) {
        int64_t now = sv_clock_mono_ms();
        sv_fcgi_check_leaving(l, now);
        if (!sv_fcgi_poll_set(l, now))
            break;
        int ready = sv_fcgi_wait(l, now);
        if (sv_fcgi_reopen_log)
            sv_fcgi_reopen(l);
        sv_fcgi_sweep_idle(l, ready);
        if (ready > 0)
            sv_fcgi_dispatch(l);
        sv_fcgi_resume_parked(l);
    }
    sv_fcgi_finish(l);
    free(l);
    return 0;
}
