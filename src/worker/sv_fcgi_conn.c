#include "worker/sv_fcgi_conn.h"

#include <stdlib.h>
#include <unistd.h>

#include "core/sv_clock.h"
#include "worker/sv_fcgi.h"

static int sv_fcgi_read(void *ctx, char *buf, int len)
{
    return FCGX_GetStr(buf, len, ((sv_fcgi_conn *)ctx)->req.in);
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

static int sv_fcgi_send(void *ctx, const char *head, size_t head_len, const char *body,
                        size_t body_len)
{
    sv_fcgi_conn *c = ctx;
    /* The rest of the body before the answer: a web server that reads
     * the answer while it is still sending the body (Apache's
     * mod_proxy_fcgi) stops sending once it has the answer, and would
     * then reuse the connection with the end of FCGI_STDIN missing, or
     * get a reset when the connection closes with the body unread.
     * Failing, the answer still goes out; the connection then closes. */
    (void)sv_fcgi_drain_stdin(&c->req);
    if (sv_fcgi_send_response(c->req.ipcFd, c->req.requestId, head, head_len, body, body_len) != 0)
        return -1;
    c->answered = 1;
    return 0;
}

void sv_fcgi_conn_close(sv_fcgi_conn *c)
{
    if (c->park != NULL) {
        FCGX_Free(&c->req, 0);
        free(c->park);
        c->park = NULL;
    }
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
        sv_fcgi_conn_close(c);
}

void sv_fcgi_conn_adopt(sv_fcgi_conn *c, int fd)
{
    c->req.ipcFd = fd;
    c->req.keepConnection = 1;
    /* When libfcgi drops a connection (garbage, EOF, timeout) it closes
     * it plainly instead of lingering up to 2 s per read for the peer. */
    FCGX_Detach(&c->req);
    c->last_used_ms = sv_clock_mono_ms();
    c->waiting = 0;
}

/* After the answer: the connection is kept for nginx's next request
 * (its stdin read to the end) or closed. */
static void sv_fcgi_conn_done(sv_fcgi_conn *c, int last)
{
    int keep = c->req.keepConnection && c->answered && !last;
    if (keep && !sv_fcgi_drain_stdin(&c->req))
        keep = 0;
    sv_fcgi_end(c, keep);
    c->last_used_ms = sv_clock_mono_ms();
}

int sv_fcgi_conn_serve(sv_fcgi_server *s, sv_fcgi_conn *c, int last)
{
    /* The request's listen_sock is -1, so when the connection has ended
     * libfcgi cannot fall back to accepting one itself: it fails. */
    if (FCGX_Accept_r(&c->req) < 0) {
        sv_fcgi_conn_close(c);
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
    sv_park park;
    s->current = c;
    int rc = sv_worker_handle(s->w, &io, &park);
    s->current = NULL;
    if (rc == SV_PARK && (c->park = malloc(sizeof(*c->park))) != NULL) {
        *c->park = park;
        return 1;
    }
    if (rc == SV_PARK) {
        /* No memory to keep it: answer now with what there is. */
        park.deadline_ms = 0;
        while (sv_worker_resume(s->w, &io, &park) == SV_PARK)
            ;
    }
    sv_fcgi_conn_done(c, last);
    return 1;
}

void sv_fcgi_conn_resume(sv_fcgi_server *s, sv_fcgi_conn *c, int last)
{
    sv_io io = { c->req.envp, sv_fcgi_read, sv_fcgi_send, c };
    s->current = c;
    int rc = sv_worker_resume(s->w, &io, c->park);
    s->current = NULL;
    if (rc == SV_PARK)
        return;
    free(c->park);
    c->park = NULL;
    sv_fcgi_conn_done(c, last);
}
