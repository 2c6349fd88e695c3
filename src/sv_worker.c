#include "sv_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "sv_log.h"
#include "sv_auth.h"
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
    sv_arena_init(&w->arena, 32768);
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
    snprintf(dst, size, "%s", src ? src : "");
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

    uint32_t active = 0;
    for (int i = 0; i < SV_SCOREBOARD_SLOTS; i++)
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

static void sv_worker_route(sv_worker *w, sv_request *req, sv_response *res, const sv_io *io,
                            int *body_consumed)
{
    const sv_route *route;
    int allowed;

    *body_consumed = 0;
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
        *body_consumed = 1;
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

int sv_worker_handle(sv_worker *w, const sv_io *io)
{
    sv_request req;
    sv_response res;
    int body_consumed;
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
    sv_worker_route(w, &req, &res, io, &body_consumed);
    res.head_only = (req.method == SV_HTTP_HEAD);
    int sent = sv_response_send(&res, io);

    int64_t duration = sv_now_monotonic_ms() - start;
    char qpath[256], qid[160];
    sv_log_info("access", "method=%s path=%s status=%d duration_ms=%lld bytes=%zu request_id=%s remote_addr=%s%s",
                req.method_name[0] ? req.method_name : "-",
                sv_log_quote(req.path, qpath, sizeof(qpath)), res.status,
                (long long)duration, res.head_only ? (size_t)0 : res.body.len,
                sv_log_quote(req.request_id, qid, sizeof(qid)),
                req.remote_addr[0] ? req.remote_addr : "-",
                sent == SV_OK ? "" : " client_gone=1");
    if (w->cfg->slow_request_time > 0 && duration >= (int64_t)w->cfg->slow_request_time * 1000) {
        __atomic_add_fetch(&w->sb->slow_requests, 1, __ATOMIC_RELAXED);
        sv_log_warn("slow_request", "method=%s path=%s duration_ms=%lld request_id=%s",
                    req.method_name, qpath, (long long)duration, qid);
    }
    sv_worker_mark_idle(w, duration);
    return body_consumed || req.content_length <= 0;
}

/* --- FastCGI ---------------------------------------------------------- */

static int sv_fcgi_read(void *ctx, char *buf, int len)
{
    return FCGX_GetStr(buf, len, ((FCGX_Request *)ctx)->in);
}

static int sv_fcgi_write(void *ctx, const char *buf, int len)
{
    return FCGX_PutStr(buf, len, ((FCGX_Request *)ctx)->out);
}

/* A request answered without reading its body (413, 404, 405) leaves
 * the body on the connection. Closing the connection instead would race
 * with nginx reusing it for the next request, which fails a POST with
 * 502, so the body is read and dropped; nginx has already capped its
 * size at client_max_body_size. Returns 1 when the connection is clean. */
static int sv_worker_drain_body(FCGX_Request *req)
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

/* Waits for the kept-alive connection (when there is one) or else the
 * listening socket to become readable, a stop request, or the timeout.
 * Returns 1 when the awaited descriptor is readable. */
static int sv_worker_wait(int fd, int timeout_ms)
{
    struct pollfd fds[2] = {
        { .fd = sv_worker_wake_pipe[0], .events = POLLIN },
        { .fd = fd, .events = POLLIN },
    };
    if (poll(fds, 2, timeout_ms) <= 0)
        return 0;
    return (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

/* One connection at a time, as php-fpm does: a worker never holds an
 * idle connection while it is busy with another, so a slow request
 * delays nobody else. While nginx keeps a connection alive the worker
 * waits on it; the nginx template sizes upstream keepalive below the
 * worker count so idle cached connections can never pin every worker,
 * and nginx closes them (55 s) before keepalive_idle here runs out. */
int sv_worker_serve_fcgi(sv_worker *w, int listen_fd)
{
    FCGX_Request req;
    int64_t last_used = sv_now_monotonic_ms();
    unsigned long served = 0;

    if (pipe2(sv_worker_wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        sv_log_error("worker_start", "error=\"pipe: %s\"", strerror(errno));
        return 1;
    }
    sv_worker_signals();
    /* Non-blocking accept: several workers wake for one connection and
     * the losers must go back to waiting, not block inside libfcgi where
     * a stop request could not reach them. */
    int flags = fcntl(listen_fd, F_GETFL);
    if (flags >= 0)
        fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK);
    if (FCGX_Init() != 0 || FCGX_InitRequest(&req, listen_fd, 0) != 0) {
        sv_log_error("worker_start", "error=\"libfcgi initialisation failed\"");
        return 1;
    }

    while (!sv_worker_stop) {
        if (w->master_pid != 0 && getppid() != w->master_pid)
            break; /* master died: never serve unsupervised */
        int kept = req.ipcFd >= 0;
        if (!sv_worker_wait(kept ? req.ipcFd : listen_fd, 1000)) {
            if (kept && sv_now_monotonic_ms() - last_used >= (int64_t)w->cfg->keepalive_idle * 1000)
                FCGX_Free(&req, 1);
            continue;
        }
        if (sv_worker_stop)
            break;

        int rc = FCGX_Accept_r(&req);
        if (rc < 0) {
            /* EAGAIN: another worker took the connection; on a kept
             * connection: nginx closed it and libfcgi freed it. */
            if (!kept && rc != -EAGAIN && rc != -EWOULDBLOCK && rc != -EINTR && rc != -ECONNABORTED)
                sv_log_warn("accept", "error=\"%s\"", strerror(-rc));
            continue;
        }
        sv_io io = { req.envp, sv_fcgi_read, sv_fcgi_write, &req };
        if (!sv_worker_handle(w, &io) && !sv_worker_drain_body(&req))
            req.keepConnection = 0;
        int last = w->cfg->max_requests > 0 && ++served >= (unsigned long)w->cfg->max_requests;
        /* Leaving: close together with this response rather than later
         * on an idle connection nginx may be reusing at that moment. */
        if (last || sv_worker_stop)
            req.keepConnection = 0;
        FCGX_Finish_r(&req);
        last_used = sv_now_monotonic_ms();
        if (last) {
            sv_log_info("worker_recycle", "requests=%lu", served);
            break;
        }
    }

    __atomic_store_n(&w->slot->state, SV_SLOT_EXITING, __ATOMIC_RELEASE);
    if (req.ipcFd >= 0)
        FCGX_Free(&req, 1);
    return 0;
}

/* --- CGI -------------------------------------------------------------- */

static int sv_cgi_read(void *ctx, char *buf, int len)
{
    (void)ctx;
    size_t n = fread(buf, 1, (size_t)len, stdin);
    return ferror(stdin) ? -1 : (int)n;
}

static int sv_cgi_write(void *ctx, const char *buf, int len)
{
    (void)ctx;
    size_t n = fwrite(buf, 1, (size_t)len, stdout);
    return n == (size_t)len ? len : -1;
}

int sv_worker_serve_cgi(sv_worker *w)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    sv_io io = { environ, sv_cgi_read, sv_cgi_write, NULL };
    sv_worker_handle(w, &io);
    return fflush(stdout) == 0 ? 0 : 1;
}
