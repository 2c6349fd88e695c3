#include "sv_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "sv_auth.h"
#include "sv_fcgi.h"
#include "sv_log.h"
#include "sv_ops.h"
#include "sv_rest.h"

extern char **environ;

static volatile sig_atomic_t sv_worker_stop;
static int sv_worker_wake_pipe[2] = { -1, -1 };

static void sv_worker_on_stop(int signo)
{
    (void)signo;
    int saved = errno;
    sv_worker_stop = 1;
    if (sv_worker_wake_pipe[1] >= 0) {
        ssize_t n = write(sv_worker_wake_pipe[1], "x", 1);
        (void)n;
    }
    errno = saved;
}

static void sv_worker_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);

    /* A client that hangs up mid-response must cost an EPIPE, not the
     * worker. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    /* Reload is the master's business; a worker keeps serving. */
    sigaction(SIGHUP, &sa, NULL);

    sa.sa_handler = sv_worker_on_stop;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    /* The pool master forks with every signal blocked; unblock only now
     * that this process's handlers are in place. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

void sv_worker_init(sv_worker *w, const sv_config *cfg, sv_scoreboard *sb,
                    int slot_index, pid_t master_pid)
{
    memset(w, 0, sizeof(*w));
    w->cfg = cfg;
    w->sb = sb;
    w->slot = &sb->slots[slot_index];
    w->master_pid = master_pid;
    w->started_ms = sv_now_wall_ms();
    w->handoff_fds[0] = w->handoff_fds[1] = -1;
    /* The first chunk is kept across requests: big enough for a typical
     * answer (a 20-row page is ~20 kB) so a request does no malloc. */
    sv_arena_init(&w->arena, 96 * 1024);
    sv_db_init(&w->db, cfg->database_url);
    /* Half a second before the master's kill, so the client gets a clean
     * 504 and the query stops rather than running on orphaned. */
    if (cfg->request_timeout > 1)
        sv_db_set_statement_timeout(&w->db, cfg->request_timeout * 1000L - 500);

    static const sv_route api_routes[] = {
        { "/healthz", SV_HTTP_GET, sv_ops_healthz },
        { "/auth/v1/signup", SV_HTTP_POST, sv_auth_signup },
        { "/auth/v1/token", SV_HTTP_POST, sv_auth_token },
        { "/auth/v1/user", SV_HTTP_GET, sv_auth_user_get },
        { "/auth/v1/user", SV_HTTP_PUT, sv_auth_user_put },
        { "/auth/v1/logout", SV_HTTP_POST, sv_auth_logout },
        { "/rest/v1/", SV_HTTP_GET, sv_rest_openapi },
        { "/rest/v1/rpc/*", SV_HTTP_GET | SV_HTTP_POST, sv_rest_rpc },
        { "/rest/v1/*", SV_HTTP_GET | SV_HTTP_POST | SV_HTTP_PATCH | SV_HTTP_DELETE, sv_rest_table },
    };
    for (size_t i = 0; i < sizeof(api_routes) / sizeof(api_routes[0]); i++)
        w->routes[w->nroutes++] = api_routes[i];
    if (cfg->status_path != NULL && cfg->status_path[0] == '/')
        w->routes[w->nroutes++] = (sv_route){ cfg->status_path, SV_HTTP_GET, sv_ops_status };

    sv_slot *slot = w->slot;
    slot->pid = getpid();
    sv_log_set_pid(slot->pid);
    slot->started_ms = w->started_ms;
    __atomic_store_n(&slot->state, SV_SLOT_IDLE, __ATOMIC_RELEASE);
}

void sv_worker_cleanup(sv_worker *w)
{
    sv_db_close(&w->db);
    sv_arena_free(&w->arena);
}

static void sv_slot_copy(char *dst, size_t size, const char *src)
{
    size_t n = src ? strnlen(src, size - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

static void sv_worker_mark_busy(sv_worker *w, const sv_request *req, int64_t start)
{
    sv_slot *slot = w->slot;
    sv_slot_copy(slot->method, sizeof(slot->method), req->method_name);
    sv_slot_copy(slot->path, sizeof(slot->path), req->path);
    sv_slot_copy(slot->request_id, sizeof(slot->request_id), req->request_id);
    __atomic_store_n(&slot->request_start_ms, start, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->state, SV_SLOT_BUSY, __ATOMIC_RELEASE);
    __atomic_add_fetch(&w->sb->accepted_conn, 1, __ATOMIC_RELAXED);

    /* Only the slots ever handed out: the rest of the 256 are cache
     * lines nobody writes, and reading them costs on every request. */
    uint32_t active = 0, used = __atomic_load_n(&w->sb->slots_used, __ATOMIC_ACQUIRE);
    if (used == 0 || used > SV_SCOREBOARD_SLOTS)
        used = SV_SCOREBOARD_SLOTS;
    for (uint32_t i = 0; i < used; i++)
        if (__atomic_load_n(&w->sb->slots[i].state, __ATOMIC_RELAXED) == SV_SLOT_BUSY)
            active++;
    uint32_t seen = __atomic_load_n(&w->sb->max_active, __ATOMIC_RELAXED);
    while (active > seen &&
           !__atomic_compare_exchange_n(&w->sb->max_active, &seen, active, 0,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    if (w->sb->workers_configured > 0 && active >= w->sb->workers_configured)
        __atomic_add_fetch(&w->sb->max_children_reached, 1, __ATOMIC_RELAXED);
}

static void sv_worker_mark_idle(sv_worker *w, int64_t duration_ms)
{
    sv_slot *slot = w->slot;
    slot->last_duration_ms = duration_ms;
    __atomic_store_n(&slot->idle_since_ms, sv_now_monotonic_ms(), __ATOMIC_RELAXED);
    __atomic_add_fetch(&slot->requests, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->state, SV_SLOT_IDLE, __ATOMIC_RELEASE);
}

/* Browsers calling the API from a web app's origin send a CORS preflight;
 * answer it for any known path (authorisation happens on the real request,
 * and no cookies are used, so any origin may ask). */
static void sv_worker_preflight(sv_request *req, sv_response *res, int allowed)
{
    const char *asked = sv_request_header(req, "Access-Control-Request-Headers");
    sv_response_header(res, "Allow", sv_http_allow_header(req->arena, allowed));
    sv_response_header(res, "Access-Control-Allow-Methods", sv_http_allow_header(req->arena, allowed));
    sv_response_header(res, "Access-Control-Allow-Headers",
                       asked && *asked ? asked
                                       : "authorization, apikey, content-type, prefer, range, x-client-info, accept-profile, content-profile");
    sv_response_header(res, "Access-Control-Max-Age", "86400");
    res->status = 204;
}

static void sv_worker_route(sv_worker *w, sv_request *req, sv_response *res, const sv_io *io)
{
    const sv_route *route;
    int allowed;

    /* Too large is too large whatever the route: refuse before routing
     * so no handler ever sees the request and nothing is read. */
    if (req->content_length > w->cfg->body_limit) {
        sv_response_error(res, 413, "SV413", "Request body too large",
                          sv_arena_printf(req->arena, "The limit is %ld bytes", w->cfg->body_limit),
                          NULL);
        return;
    }
    switch (sv_router_match(w->routes, w->nroutes, req->method, req->path, &route, &allowed)) {
    case SV_ROUTE_NOT_FOUND:
        sv_response_error(res, 404, "PGRST125", "Invalid path specified in request URL",
                          NULL, NULL);
        return;
    case SV_ROUTE_METHOD_NOT_ALLOWED:
        if (req->method == SV_HTTP_OPTIONS) {
            sv_worker_preflight(req, res, allowed);
            return;
        }
        sv_response_header(res, "Allow", sv_http_allow_header(req->arena, allowed));
        sv_response_error(res, 405, "PGRST117",
                          sv_arena_printf(req->arena, "Unsupported HTTP method: %s",
                                          req->method_name),
                          NULL, NULL);
        return;
    case SV_ROUTE_FOUND:
        break;
    }

    switch (sv_request_read_body(req, io, w->cfg->body_limit)) {
    case SV_OK:
        break;
    case SV_BODY_TOO_LARGE:
        sv_response_error(res, 413, "SV413", "Request body too large",
                          sv_arena_printf(req->arena, "The limit is %ld bytes",
                                          w->cfg->body_limit),
                          NULL);
        return;
    default:
        sv_response_error(res, 400, "SV400", "Malformed or truncated request body", NULL,
                          NULL);
        return;
    }
    route->handler(w, req, res);
}

void sv_worker_handle(sv_worker *w, const sv_io *io)
{
    sv_request req;
    sv_response res;
    int64_t start = sv_now_monotonic_ms();

    sv_arena_reset(&w->arena);
    sv_request_init(&req, &w->arena, io->envp);
    sv_response_init(&res, &w->arena);
    sv_worker_mark_busy(w, &req, start);

    if (strcmp(req.request_id, "-") != 0)
        sv_response_header(&res, "X-Request-Id", req.request_id);
    if (sv_request_header(&req, "Origin") != NULL) {
        sv_response_header(&res, "Access-Control-Allow-Origin", "*");
        sv_response_header(&res, "Access-Control-Expose-Headers",
                           "Content-Range, Content-Location, Location, X-Request-Id, Retry-After");
    }
    sv_worker_route(w, &req, &res, io);
    res.head_only = (req.method == SV_HTTP_HEAD);
    int sent = sv_response_send(&res, io);
    size_t body_bytes = res.head_only ? 0 : sv_response_body_len(&res);
    sv_response_release(&res);

    int64_t duration = sv_now_monotonic_ms() - start;
    char qpath[256], qid[160];
    sv_log_info("access", "method=%s path=%s status=%d duration_ms=%lld bytes=%zu request_id=%s remote_addr=%s%s",
                req.method_name[0] ? req.method_name : "-",
                sv_log_quote(req.path, qpath, sizeof(qpath)), res.status,
                (long long)duration, body_bytes,
                sv_log_quote(req.request_id, qid, sizeof(qid)),
                req.remote_addr[0] ? req.remote_addr : "-",
                sent == SV_OK ? "" : " client_gone=1");
    if (w->cfg->slow_request_time > 0 && duration >= (int64_t)w->cfg->slow_request_time * 1000) {
        __atomic_add_fetch(&w->sb->slow_requests, 1, __ATOMIC_RELAXED);
        sv_log_warn("slow_request", "method=%s path=%s duration_ms=%lld request_id=%s",
                    req.method_name, qpath, (long long)duration, qid);
    }
    sv_worker_mark_idle(w, duration);
}

/* --- FastCGI ---------------------------------------------------------- */

/* One FastCGI connection from nginx. With fastcgi_keep_conn nginx keeps
 * it open between requests. */
typedef struct sv_fcgi_conn {
    FCGX_Request req;
    int64_t      last_used_ms;
    int          answered;   /* the response has been written */
    int          waiting;    /* a request arrived while the worker was busy */
} sv_fcgi_conn;

/* A worker holds at most this many connections; nginx caches far fewer
 * (the template's keepalive per nginx process). */
#define SV_WORKER_MAX_CONNS SV_DB_WAIT_MAX_FDS

/* A request waiting on a busy worker's connection goes to the pool's
 * queue at once when another worker is idle, else after the busy one's
 * request has run this long: short requests under full load finish
 * sooner than passing on would help, and slow ones delay nobody for
 * longer. */
#define SV_PASS_ON_AFTER_MS 10

/* The worker's FastCGI state, shared with its wait hook. */
typedef struct sv_fcgi_server {
    sv_worker    *w;
    sv_fcgi_conn *conns;                 /* SV_WORKER_MAX_CONNS slots */
    sv_fcgi_conn *current;               /* serving a request on it */
    sv_fcgi_conn *watched[SV_DB_WAIT_MAX_FDS];
} sv_fcgi_server;

static int sv_fcgi_read(void *ctx, char *buf, int len)
{
    return FCGX_GetStr(buf, len, ((sv_fcgi_conn *)ctx)->req.in);
}

static int sv_fcgi_send(void *ctx, const char *head, size_t head_len, const char *body,
                        size_t body_len)
{
    sv_fcgi_conn *c = ctx;
    if (sv_fcgi_send_response(c->req.ipcFd, c->req.requestId, head, head_len, body, body_len) != 0)
        return -1;
    c->answered = 1;
    return 0;
}

/* Reads the rest of FCGI_STDIN, up to and including its empty end
 * record. A request answered without reading its body (413, 404, 405)
 * leaves the body on the connection, and even a fully read body can
 * leave the end record behind; either would be taken for the start of
 * the next request, which fails it. nginx has already capped the body at
 * client_max_body_size. Returns 1 when the connection is clean. */
static int sv_fcgi_drain_stdin(FCGX_Request *req)
{
    char buf[16384];
    long long total = 0;
    int n;
    while ((n = FCGX_GetStr(buf, sizeof(buf), req->in)) > 0) {
        total += n;
        if (total > (64LL << 20))
            return 0;
    }
    return FCGX_GetError(req->in) == 0;
}

/* Closes c's connection; keepConnection = 1 leaves libfcgi nothing to
 * close at the next FCGX_Accept_r. */
static void sv_fcgi_close(sv_fcgi_conn *c)
{
    if (c->req.ipcFd >= 0)
        close(c->req.ipcFd);
    c->req.ipcFd = -1;
    c->req.keepConnection = 1;
    c->waiting = 0;
}

/* Ends the request: libfcgi frees what it allocated (it writes nothing:
 * the answer, if any, went out in sv_fcgi_send), and the connection is
 * kept for nginx's next request or closed. A plain close is safe: an
 * answered request has been read to its end and, without keep_conn,
 * nginx sends nothing more (libfcgi's own close would wait for nginx to
 * hang up first, idling the worker); an unanswered one means nginx has
 * gone. */
static void sv_fcgi_end(sv_fcgi_conn *c, int keep)
{
    FCGX_Free(&c->req, 0);
    if (!keep)
        sv_fcgi_close(c);
}

/* Makes the connection fd the one of free slot c. */
static void sv_fcgi_adopt(sv_fcgi_conn *c, int fd)
{
    c->req.ipcFd = fd;
    c->req.keepConnection = 1;
    /* When libfcgi drops a connection (garbage, EOF, timeout) it closes
     * it plainly instead of lingering up to 2 s per read for the peer. */
    FCGX_Detach(&c->req);
    c->last_used_ms = sv_now_monotonic_ms();
    c->waiting = 0;
}

/* Accepts a connection into the free slot c. The worker accepts, not
 * libfcgi: libfcgi's accept then waits (up to 2 s) for the connection's
 * first bytes, and a worker blocked there leaves the requests on its other
 * connections waiting; here a new connection joins the poll set like a
 * kept one and is served once its request has arrived. */
static void sv_worker_accept(sv_worker *w, int listen_fd, sv_fcgi_conn *c)
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
    __atomic_add_fetch(&w->sb->fastcgi_connections, 1, __ATOMIC_RELAXED);
    sv_fcgi_adopt(c, fd);
}

/* --- passing connections on ----------------------------------------------
 *
 * A request nginx sends on a kept connection of a busy worker would wait
 * for that worker's current request, however long, while other workers
 * idle. So the pool shares one datagram socket pair between all its
 * workers: a busy worker sends such a connection (SCM_RIGHTS) into it,
 * and whichever worker is free first receives it, like a connection
 * from the listening socket, and serves the request waiting on it. A
 * worker leaving on reload or recycle passes its idle connections on the
 * same way, so nginx never sees them closed under it. Only between
 * requests: a connection moves with nothing of a request read from it. */

/* Passing on is for live pools: when the pool stops, connections close.
 * (Nor does a worker whose master has gone: sv_worker_pass_conn checks
 * that, as it costs a system call.) */
static int sv_worker_can_pass(const sv_worker *w)
{
    return w->handoff_fds[0] >= 0 && !__atomic_load_n(&w->sb->stopping, __ATOMIC_ACQUIRE);
}

/* Sends c's connection to the pool's queue and closes this worker's copy.
 * Returns 0, or -1 (queue full, or no master: the queue would die with
 * the last worker) with c left as it was. The datagram carries when the
 * connection was last used, so keepalive_idle still applies. */
static int sv_worker_pass_conn(sv_worker *w, sv_fcgi_conn *c)
{
    if (w->master_pid != 0 && getppid() != w->master_pid)
        return -1;
    int64_t last_used_ms = c->last_used_ms;
    struct iovec iov = { .iov_base = &last_used_ms, .iov_len = sizeof(last_used_ms) };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof(control));
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                          .msg_controllen = sizeof(control.buf) };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &c->req.ipcFd, sizeof(int));
    if (sendmsg(w->handoff_fds[0], &msg, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(last_used_ms))
        return -1;
    sv_fcgi_close(c);
    __atomic_sub_fetch(&w->slot->connections, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&w->sb->fastcgi_passed, 1, __ATOMIC_RELAXED);
    return 0;
}

/* Receives one connection from the pool's queue into the free slot c. */
static void sv_worker_take_conn(sv_worker *w, sv_fcgi_conn *c)
{
    int64_t last_used_ms;
    struct iovec iov = { .iov_base = &last_used_ms, .iov_len = sizeof(last_used_ms) };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                          .msg_controllen = sizeof(control.buf) };
    /* EAGAIN: another worker took it. */
    ssize_t n = recvmsg(w->handoff_fds[1], &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0)
        return;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    if (cm == NULL || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
        cm->cmsg_len != CMSG_LEN(sizeof(int)))
        return;
    int fd;
    memcpy(&fd, CMSG_DATA(cm), sizeof(int));
    /* Only the pool's workers write here, but a descriptor received is
     * this process's to close, whatever came with it. */
    if (n != (ssize_t)sizeof(last_used_ms)) {
        close(fd);
        return;
    }
    sv_fcgi_adopt(c, fd);
    c->last_used_ms = last_used_ms;
    __atomic_add_fetch(&w->slot->connections, 1, __ATOMIC_RELAXED);
}

/* Are connections waiting in the pool's queue? */
static int sv_worker_queue_pending(const sv_worker *w)
{
    struct pollfd pfd = { .fd = w->handoff_fds[1], .events = POLLIN };
    return w->handoff_fds[1] >= 0 && poll(&pfd, 1, 0) == 1;
}

/* Is another worker of the current generation waiting for work? Under
 * full load every worker is idle for a moment between two requests, and
 * passing a connection to one that is about to serve its own costs more
 * than it saves: it must have been idle for SV_IDLE_FOR_MS. */
#define SV_IDLE_FOR_MS 2
static int sv_worker_someone_idle(const sv_worker *w)
{
    int64_t idle_before = sv_now_monotonic_ms() - SV_IDLE_FOR_MS;
    uint32_t used = __atomic_load_n(&w->sb->slots_used, __ATOMIC_ACQUIRE);
    uint32_t generation = __atomic_load_n(&w->sb->generation, __ATOMIC_RELAXED);
    if (used > SV_SCOREBOARD_SLOTS)
        used = SV_SCOREBOARD_SLOTS;
    for (uint32_t i = 0; i < used; i++) {
        const sv_slot *slot = &w->sb->slots[i];
        if (slot != w->slot && __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE) == SV_SLOT_IDLE &&
            slot->generation == generation &&
            __atomic_load_n(&slot->idle_since_ms, __ATOMIC_RELAXED) <= idle_before)
            return 1;
    }
    return 0;
}

static int64_t sv_worker_request_ran_ms(const sv_worker *w)
{
    return sv_now_monotonic_ms() - __atomic_load_n(&w->slot->request_start_ms, __ATOMIC_RELAXED);
}

/* Wait hook, while the current request waits on PostgreSQL: watch the
 * other connections, except those already known to have a request. Not
 * before it can matter (someone idle, or SV_PASS_ON_AFTER_MS): under
 * full load most waits are short, and libpq waiting on its socket alone
 * is cheaper than a poll over every connection. */
static int sv_worker_wait_watch(void *ctx, struct pollfd *fds, int max, int *timeout_ms)
{
    sv_fcgi_server *s = ctx;
    if (!sv_worker_can_pass(s->w))
        return 0;
    int64_t ran = sv_worker_request_ran_ms(s->w);
    if (ran < SV_PASS_ON_AFTER_MS && !sv_worker_someone_idle(s->w)) {
        *timeout_ms = (int)(SV_PASS_ON_AFTER_MS - ran);
        return 0;
    }
    int n = 0, waiting = 0;
    for (int i = 0; i < SV_WORKER_MAX_CONNS; i++) {
        sv_fcgi_conn *c = &s->conns[i];
        if (c->req.ipcFd < 0 || c == s->current)
            continue;
        if (c->waiting) {
            waiting = 1;
            continue;
        }
        if (n == max)
            break;
        fds[n] = (struct pollfd){ .fd = c->req.ipcFd, .events = POLLIN };
        s->watched[n++] = c;
    }
    /* With the queue full, try again later. */
    if (waiting)
        *timeout_ms = SV_PASS_ON_AFTER_MS;
    return n;
}

static void sv_worker_wait_ready(void *ctx, const struct pollfd *fds, int n)
{
    sv_fcgi_server *s = ctx;
    int waiting = 0;
    for (int i = 0; i < n; i++)
        if (fds[i].revents != 0)
            waiting = s->watched[i]->waiting = 1;
    for (int i = 0; i < SV_WORKER_MAX_CONNS && !waiting; i++)
        waiting = s->conns[i].waiting;
    if (!waiting || !sv_worker_can_pass(s->w) ||
        (sv_worker_request_ran_ms(s->w) < SV_PASS_ON_AFTER_MS && !sv_worker_someone_idle(s->w)))
        return;
    for (int i = 0; i < SV_WORKER_MAX_CONNS; i++)
        if (s->conns[i].waiting && sv_worker_pass_conn(s->w, &s->conns[i]) != 0)
            break;
}

/* Leaving on reload or recycle, or long work ahead: every connection
 * but the current request's goes to the other workers. Those the queue
 * has no room for stay. */
static void sv_worker_pass_all(sv_fcgi_server *s)
{
    for (int i = 0; i < SV_WORKER_MAX_CONNS; i++)
        if (s->conns[i].req.ipcFd >= 0 && &s->conns[i] != s->current &&
            sv_worker_pass_conn(s->w, &s->conns[i]) != 0)
            return;
}

/* This process's FastCGI loop when it can pass connections on. */
static sv_fcgi_server *sv_worker_fcgi_server;

void sv_worker_long_work(void)
{
    sv_fcgi_server *s = sv_worker_fcgi_server;
    if (s != NULL && s->current != NULL && sv_worker_can_pass(s->w))
        sv_worker_pass_all(s);
}

/* Reads the next request on c's connection and answers it; with last
 * set, the connection closes with the answer. Returns 1 when a request
 * was served, 0 when the connection ended instead. */
static int sv_worker_serve_conn(sv_fcgi_server *s, sv_fcgi_conn *c, int last)
{
    /* The request's listen_sock is -1, so when the connection has ended
     * libfcgi cannot fall back to accepting one itself: it fails. */
    if (FCGX_Accept_r(&c->req) < 0) {
        sv_fcgi_close(c);
        return 0;
    }
    /* A read that failed between two parameters (timeout, reset) ends
     * libfcgi's parameter list early and still counts as a request:
     * never serve a request with part of its parameters. */
    if (FCGX_GetError(c->req.in) != 0) {
        sv_fcgi_end(c, 0);
        return 0;
    }
    c->answered = 0;
    c->waiting = 0;
    sv_io io = { c->req.envp, sv_fcgi_read, sv_fcgi_send, c };
    s->current = c;
    sv_worker_handle(s->w, &io);
    s->current = NULL;
    int keep = c->req.keepConnection && c->answered && !last;
    if (keep && !sv_fcgi_drain_stdin(&c->req))
        keep = 0;
    sv_fcgi_end(c, keep);
    c->last_used_ms = sv_now_monotonic_ms();
    return 1;
}

/* Every slot holds a connection and another is waiting to be accepted:
 * more than nginx should ever keep (keepalive x worker_processes well
 * under 64 x workers), or clients that connect and stay silent. Closes
 * the longest-idle connection with nothing to read, so new connections
 * are never starved; a kept one closed while nginx reuses it costs that
 * request (retried by nginx for a GET). Returns the freed slot or NULL. */
static sv_fcgi_conn *sv_worker_make_room(const struct pollfd *fds, sv_fcgi_conn *const *owner,
                                         int nfds)
{
    static int64_t last_warned;
    sv_fcgi_conn *oldest = NULL;
    for (int i = 1; i < nfds; i++)
        if (owner[i] != NULL && owner[i]->req.ipcFd < 0)
            return owner[i]; /* closed since the poll (idle sweep, ended) */
    for (int i = 1; i < nfds; i++)
        if (owner[i] != NULL && owner[i]->req.ipcFd >= 0 && fds[i].revents == 0 &&
            (oldest == NULL || owner[i]->last_used_ms < oldest->last_used_ms))
            oldest = owner[i];
    if (oldest == NULL)
        return NULL;
    int64_t now = sv_now_monotonic_ms();
    if (now - last_warned >= 60000) {
        last_warned = now;
        sv_log_warn("connections_full",
                    "msg=\"every connection slot is taken; closing the longest-idle one\" slots=%d",
                    SV_WORKER_MAX_CONNS);
    }
    sv_fcgi_close(oldest);
    return oldest;
}

/* Requests are served one at a time, but a worker is not tied to one
 * connection: it waits on every connection nginx keeps open to it, on
 * the listening socket and on the pool's queue of passed-on connections,
 * and serves whichever is ready. An idle kept connection therefore never
 * blocks a worker (php-fpm's pinning, which starves new connections once
 * nginx caches as many as there are workers), every request can use a
 * kept connection, and one that arrives while this worker is busy is
 * passed on to a free one. */
int sv_worker_serve_fcgi(sv_worker *w, int listen_fd)
{
    sv_fcgi_server server = { .w = w };
    sv_fcgi_conn *conns = calloc(SV_WORKER_MAX_CONNS, sizeof(*conns));
    unsigned long served = 0;
    int leaving = 0;
    int64_t leave_by = 0, last_sweep_ms = 0;

    if (conns == NULL || pipe2(sv_worker_wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        sv_log_error("worker_start", "error=\"%s\"", strerror(errno));
        free(conns);
        return 1;
    }
    server.conns = conns;
    sv_worker_signals();
    /* Non-blocking accept: several workers wake for one connection and
     * the losers must go back to waiting, not block inside libfcgi where
     * a stop request could not reach them. */
    int flags = fcntl(listen_fd, F_GETFL);
    if (flags >= 0)
        fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK);
    if (FCGX_Init() != 0) {
        sv_log_error("worker_start", "error=\"libfcgi initialisation failed\"");
        free(conns);
        return 1;
    }
    for (int i = 0; i < SV_WORKER_MAX_CONNS; i++) {
        FCGX_InitRequest(&conns[i].req, -1, 0);
        conns[i].req.keepConnection = 1;
    }
    /* Migrations announce themselves (NOTIFY pgrst): the schema cache
     * reloads without a pool reload. */
    sv_db_listen(&w->db, "pgrst");
    const sv_db_wait_hook wait_hook = { sv_worker_wait_watch, sv_worker_wait_ready, &server };
    if (w->handoff_fds[0] >= 0) {
        sv_db_set_wait_hook(&w->db, &wait_hook);
        sv_worker_fcgi_server = &server;
    }
    sv_log_set_buffer(w->slot->log_buf, sizeof(w->slot->log_buf), &w->slot->log_len);
    /* Stop signals arrive only while the worker waits (ppoll): the
     * connections' reads have a timeout, and a socket with one lets a
     * signal interrupt a read despite SA_RESTART, which libfcgi would
     * take for the end of the request's parameters. */
    sigset_t stop_signals, waiting_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGQUIT);
    sigaddset(&stop_signals, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_signals, &waiting_mask);

    int orphaned = 0;
    int64_t parent_checked_ms = sv_now_monotonic_ms() - 1000;   /* check on the first pass */
    for (;;) {
        int64_t now = sv_now_monotonic_ms();
        int used_up = w->cfg->max_requests > 0 && served >= (unsigned long)w->cfg->max_requests;
        /* A system call: under load this loop turns over thousands of
         * times a second, and a second's delay in noticing changes
         * nothing (passing on checks for itself). */
        if (!orphaned && w->master_pid != 0 && now - parent_checked_ms >= 1000) {
            parent_checked_ms = now;
            orphaned = getppid() != w->master_pid;
        }
        if (!leaving && (sv_worker_stop || used_up || orphaned)) {
            /* Leaving: the kept connections go to the workers that stay;
             * when the pool stops, answer what nginx sends on them for a
             * moment, each closing with its answer, rather than closing
             * them idle while nginx may be reusing one. */
            leaving = 1;
            leave_by = now + 1000;
            if (used_up)
                sv_log_info("worker_recycle", "requests=%lu", served);
        }
        int passing = leaving && !orphaned && sv_worker_can_pass(w);
        if (passing)
            sv_worker_pass_all(&server);

        struct pollfd fds[SV_WORKER_MAX_CONNS + 4];
        sv_fcgi_conn *owner[SV_WORKER_MAX_CONNS + 4];
        int nfds = 0, nopen = 0;
        sv_fcgi_conn *free_slot = NULL;
        fds[nfds] = (struct pollfd){ .fd = sv_worker_wake_pipe[0], .events = POLLIN };
        owner[nfds++] = NULL;
        for (int i = 0; i < SV_WORKER_MAX_CONNS; i++) {
            conns[i].waiting = 0;
            if (conns[i].req.ipcFd < 0) {
                if (free_slot == NULL)
                    free_slot = &conns[i];
                continue;
            }
            nopen++;
            fds[nfds] = (struct pollfd){ .fd = conns[i].req.ipcFd, .events = POLLIN };
            owner[nfds++] = &conns[i];
        }
        __atomic_store_n(&w->slot->connections, (uint32_t)nopen, __ATOMIC_RELAXED);
        /* A stopping pool's last workers serve what is still queued. */
        if (leaving && (now >= leave_by || (nopen == 0 && (passing || orphaned ||
                                                            !sv_worker_queue_pending(w)))))
            break;
        /* Polled even with every slot taken: a new connection then
         * replaces the longest-idle one (see sv_worker_make_room). */
        int listen_at = -1, queue_at = -1;
        if (!leaving) {
            listen_at = nfds;
            fds[nfds] = (struct pollfd){ .fd = listen_fd, .events = POLLIN };
            owner[nfds++] = NULL;
        }
        /* A stopping pool's workers still empty the queue: what is in it
         * was passed on before the stop and has a request waiting. */
        if (w->handoff_fds[1] >= 0 && (!leaving || !passing)) {
            queue_at = nfds;
            fds[nfds] = (struct pollfd){ .fd = w->handoff_fds[1], .events = POLLIN };
            owner[nfds++] = NULL;
        }

        /* PostgreSQL's connection, for notifications and for noticing a
         * server that went away while the worker was idle. */
        int db_at = -1;
        if (sv_db_socket(&w->db) >= 0) {
            db_at = nfds;
            fds[nfds] = (struct pollfd){ .fd = sv_db_socket(&w->db), .events = POLLIN };
            owner[nfds++] = NULL;
        }

        /* Buffered log lines go out when there is nothing to do. */
        static const struct timespec no_wait = { 0, 0 };
        int ready = sv_log_pending() ? ppoll(fds, (nfds_t)nfds, &no_wait, &waiting_mask) : 0;
        if (ready <= 0) {
            sv_log_flush();
            int64_t wait_ms = leaving ? leave_by - now : 1000;
            struct timespec wait = { (time_t)(wait_ms / 1000), (long)(wait_ms % 1000) * 1000000L };
            ready = ppoll(fds, (nfds_t)nfds, &wait, &waiting_mask);
        }
        /* Once a second, busy or not: drop connections nginx has not used
         * for a long time (nginx itself closes them after 55 s), never one
         * that has just become readable. */
        now = sv_now_monotonic_ms();
        if (now - last_sweep_ms >= 1000) {
            last_sweep_ms = now;
            for (int i = 1; i < nfds; i++)
                if (owner[i] != NULL && (ready <= 0 || fds[i].revents == 0) &&
                    w->cfg->keepalive_idle > 0 &&
                    now - owner[i]->last_used_ms >= (int64_t)w->cfg->keepalive_idle * 1000)
                    sv_fcgi_close(owner[i]);
        }
        if (ready <= 0)
            continue;
        /* Before any request: a schema change announced now applies to it. */
        if (db_at >= 0 && fds[db_at].revents != 0)
            sv_db_read_idle(&w->db);
        if (fds[0].revents & POLLIN) {
            char drain[16];
            while (read(sv_worker_wake_pipe[0], drain, sizeof(drain)) > 0)
                ;
        }
        for (int i = 1; i < nfds; i++) {
            /* Passed on while an earlier request here waited (waiting),
             * or closed. */
            if (owner[i] == NULL || owner[i]->req.ipcFd < 0 ||
                !(fds[i].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)))
                continue;
            int last = (leaving || sv_worker_stop ||
                        (w->cfg->max_requests > 0 &&
                         served + 1 >= (unsigned long)w->cfg->max_requests)) &&
                       (orphaned || !sv_worker_can_pass(w));
            served += (unsigned long)sv_worker_serve_conn(&server, owner[i], last);
        }
        /* Nothing new for a worker about to leave: a connection taken now
         * would only be passed back, unserved (with one worker, the same
         * connections every time). */
        int done = sv_worker_stop ||
                   (w->cfg->max_requests > 0 && served >= (unsigned long)w->cfg->max_requests);
        if (listen_at >= 0 && (fds[listen_at].revents & POLLIN) && !done) {
            if (free_slot == NULL || free_slot->req.ipcFd >= 0)
                free_slot = sv_worker_make_room(fds, owner, nfds);
            if (free_slot != NULL)
                sv_worker_accept(w, listen_fd, free_slot);
        }
        if (queue_at >= 0 && (fds[queue_at].revents & POLLIN) && (!done || leaving)) {
            sv_fcgi_conn *slot = NULL;
            for (int i = 0; i < SV_WORKER_MAX_CONNS && slot == NULL; i++)
                if (conns[i].req.ipcFd < 0)
                    slot = &conns[i];
            if (slot == NULL)
                slot = sv_worker_make_room(fds, owner, nfds);
            if (slot != NULL)
                sv_worker_take_conn(w, slot);
        }
    }

    __atomic_store_n(&w->slot->state, SV_SLOT_EXITING, __ATOMIC_RELEASE);
    sv_db_set_wait_hook(&w->db, NULL);
    sv_worker_fcgi_server = NULL;
    for (int i = 0; i < SV_WORKER_MAX_CONNS; i++)
        sv_fcgi_close(&conns[i]);
    free(conns);
    sv_log_set_buffer(NULL, 0, NULL);
    sigprocmask(SIG_SETMASK, &waiting_mask, NULL);
    return 0;
}

/* --- CGI -------------------------------------------------------------- */

static int sv_cgi_read(void *ctx, char *buf, int len)
{
    (void)ctx;
    size_t n = fread(buf, 1, (size_t)len, stdin);
    return ferror(stdin) ? -1 : (int)n;
}

static int sv_cgi_send(void *ctx, const char *head, size_t head_len, const char *body,
                       size_t body_len)
{
    (void)ctx;
    if (fwrite(head, 1, head_len, stdout) != head_len)
        return -1;
    return body_len == 0 || fwrite(body, 1, body_len, stdout) == body_len ? 0 : -1;
}

int sv_worker_serve_cgi(sv_worker *w)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    sv_io io = { environ, sv_cgi_read, sv_cgi_send, NULL };
    sv_worker_handle(w, &io);
    return fflush(stdout) == 0 ? 0 : 1;
}
