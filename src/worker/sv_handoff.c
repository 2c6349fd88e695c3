#include "worker/sv_handoff.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/sv_clock.h"

/* A request waiting on a busy worker's connection goes to the pool's
 * queue at once when another worker is idle, else after the busy one's
 * request has run this long: short requests under full load finish
 * sooner than passing on would help, and slow ones delay nobody for
 * longer. */
#define SV_PASS_ON_AFTER_MS 10

/* Under full load every worker is idle for a moment between two
 * requests, and passing a connection to one that is about to serve its
 * own costs more than it saves: it must have been idle this long. */
#define SV_IDLE_FOR_MS 2

int sv_handoff_can_pass(const sv_worker *w)
{
    return w->handoff_fds[0] >= 0 && !sv_scoreboard_stopping(w->sb);
}

/* The datagram carries when the connection was last used, so
 * keepalive_idle still applies. */
int sv_handoff_pass(sv_worker *w, sv_fcgi_conn *c)
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
    /* Counted before it leaves: the worker that takes it may answer its
     * request, and a status request after it, before this one runs
     * again (on a loaded machine, long before), and the status page must
     * then show it passed and no longer held here. */
    sv_slot_add_connections(w->slot, -1);
    sv_scoreboard_count(w->sb, SV_COUNT_FASTCGI_PASSED);
    if (sendmsg(w->handoff_fds[0], &msg, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(last_used_ms)) {
        sv_slot_add_connections(w->slot, 1);
        sv_scoreboard_uncount(w->sb, SV_COUNT_FASTCGI_PASSED);
        return -1;
    }
    sv_fcgi_conn_close(c);
    return 0;
}

void sv_handoff_take(sv_worker *w, sv_fcgi_conn *c)
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
    sv_fcgi_conn_adopt(c, fd);
    c->last_used_ms = last_used_ms;
    sv_slot_add_connections(w->slot, 1);
}

int sv_handoff_pending(const sv_worker *w)
{
    struct pollfd pfd = { .fd = w->handoff_fds[1], .events = POLLIN };
    return w->handoff_fds[1] >= 0 && poll(&pfd, 1, 0) == 1;
}

void sv_handoff_pass_all(sv_fcgi_server *s)
{
    for (int i = 0; i < SV_WORKER_MAX_CONNS; i++)
        if (s->conns[i].req.ipcFd >= 0 && &s->conns[i] != s->current && s->conns[i].park == NULL &&
            sv_handoff_pass(s->w, &s->conns[i]) != 0)
            return;
}

static int sv_handoff_someone_idle(const sv_worker *w)
{
    return sv_scoreboard_someone_idle(w->sb, w->slot, sv_clock_mono_ms() - SV_IDLE_FOR_MS);
}

static int64_t sv_handoff_request_ran_ms(const sv_worker *w)
{
    return sv_clock_mono_ms() - sv_slot_request_start(w->slot);
}

/* The pool is stopping and this worker is busy: nothing can be passed on
 * any more, and a request nginx sent on one of its other connections
 * would wait for the current one, however long it runs (until
 * shutdown_timeout). Idle connections are closed at once, so nginx stops
 * choosing them and a new request meets the refused socket (a 502) like
 * any other; a request already sent is answered after the current one.
 * An idle worker instead answers on its connections for a moment
 * (sv_fcgi_check_leaving): it can answer at once. */
static void sv_handoff_close_idle(sv_fcgi_server *s)
{
    for (int i = 0; i < SV_WORKER_MAX_CONNS; i++) {
        sv_fcgi_conn *c = &s->conns[i];
        if (c->req.ipcFd < 0 || c == s->current || c->park != NULL || c->waiting)
            continue;
        char byte;
        ssize_t n = recv(c->req.ipcFd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n > 0)
            c->waiting = 1;
        else if (n == 0 || errno != EINTR)
            sv_fcgi_conn_close(c);
    }
}

/* Wait hook, while the current request waits on PostgreSQL: watch the
 * other connections, except those already known to have a request. Not
 * before it can matter (someone idle, or SV_PASS_ON_AFTER_MS): under
 * full load most waits are short, and libpq waiting on its socket alone
 * is cheaper than a poll over every connection. */
static int sv_handoff_watch(void *ctx, struct pollfd *fds, int max, int *timeout_ms)
{
    sv_fcgi_server *s = ctx;
    if (sv_scoreboard_stopping(s->w->sb)) {
        sv_handoff_close_idle(s);
        return 0;
    }
    if (!sv_handoff_can_pass(s->w))
        return 0;
    int64_t ran = sv_handoff_request_ran_ms(s->w);
    if (ran < SV_PASS_ON_AFTER_MS && !sv_handoff_someone_idle(s->w)) {
        *timeout_ms = (int)(SV_PASS_ON_AFTER_MS - ran);
        return 0;
    }
    int n = 0, waiting = 0;
    for (int i = 0; i < SV_WORKER_MAX_CONNS; i++) {
        sv_fcgi_conn *c = &s->conns[i];
        if (c->req.ipcFd < 0 || c == s->current || c->park != NULL)
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

static void sv_handoff_ready(void *ctx, const struct pollfd *fds, int n)
{
    sv_fcgi_server *s = ctx;
    int waiting = 0;
    for (int i = 0; i < n; i++)
        if (fds[i].revents != 0)
            waiting = s->watched[i]->waiting = 1;
    for (int i = 0; i < SV_WORKER_MAX_CONNS && !waiting; i++)
        waiting = s->conns[i].waiting;
    if (!waiting || !sv_handoff_can_pass(s->w) ||
        (sv_handoff_request_ran_ms(s->w) < SV_PASS_ON_AFTER_MS && !sv_handoff_someone_idle(s->w)))
        return;
    for (int i = 0; i < SV_WORKER_MAX_CONNS; i++)
        if (s->conns[i].waiting && sv_handoff_pass(s->w, &s->conns[i]) != 0)
            break;
}

/* The request context's shed hook: long work ahead without a PostgreSQL
 * wait to pass requests on from. */
static void sv_handoff_shed(void *arg)
{
    sv_fcgi_server *s = arg;
    if (s->current != NULL && sv_handoff_can_pass(s->w))
        sv_handoff_pass_all(s);
}

void sv_handoff_install(sv_fcgi_server *s, sv_db_wait_hook *hook, const sigset_t *waiting_mask)
{
    if (s->w->handoff_fds[0] < 0)
        return;
    *hook = (sv_db_wait_hook){ sv_handoff_watch, sv_handoff_ready, s, waiting_mask };
    sv_db_set_wait_hook(&s->w->db, hook);
    s->w->shed_connections = sv_handoff_shed;
    s->w->shed_arg = s;
}

void sv_handoff_uninstall(sv_fcgi_server *s)
{
    sv_db_set_wait_hook(&s->w->db, NULL);
    s->w->shed_connections = NULL;
    s->w->shed_arg = NULL;
}
