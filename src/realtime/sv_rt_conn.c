/* Client sockets: accepting, the HTTP upgrade (or a plain answer:
 * /healthz, errors), then wslay's event API for the WebSocket. wslay
 * does the framing and its rules: unmasked client frames, fragmented or
 * oversized control frames, reserved bits and unknown opcodes close with
 * 1002, a message over realtime_max_message with 1009, a text message
 * that is not UTF-8 with 1007; pings are answered and close frames
 * echoed. This file owns the descriptor, the deadlines and the send
 * buffer limit.
 *
 * A wslay context costs 8.8 KB (two 4 KB buffers, zeroed), most of an
 * idle socket's memory. A socket holds one only while something is in
 * flight: it is freed once every byte handed to wslay belonged to a
 * complete frame, no fragmented message is open and nothing is queued,
 * and made again when bytes arrive or a message must go out. Idle
 * sockets (the common case: a heartbeat every 25 s) then cost about
 * 1 KB. */
#include "realtime/sv_rt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/sv_clock.h"
#include "core/sv_log.h"
#include "crypto/sv_jwt.h"
#include "http/sv_http.h"
#include "realtime/sv_rt_http.h"

sv_rt_conn *sv_rt_conn_find(sv_rt *rt, int fd, uint32_t serial)
{
    if (fd < 0 || fd >= rt->nconns_max)
        return NULL;
    sv_rt_conn *c = rt->conns[fd];
    if (c == NULL || c->dead || c->serial != serial)
        return NULL;
    return c;
}

static void sv_rt_conn_watch(sv_rt *rt, sv_rt_conn *c, int out)
{
    if (c->dead || (out != 0) == (c->want_out != 0))
        return;
    struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c };
    epoll_ctl(rt->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = (uint8_t)(out != 0);
}

void sv_rt_conn_drop(sv_rt *rt, sv_rt_conn *c, const char *why)
{
    if (c->dead)
        return;
    c->dead = 1;
    if (c->state == SV_RT_CONN_WS) {
        char qwhy[96];
        sv_log_info("rt_close", "peer=%s vsn=%d lived_ms=%lld channels=%d code_sent=%u code_received=%u reason=%s",
                    c->peer, c->vsn == SV_RT_VSN2 ? 2 : 1, (long long)(rt->now_ms - c->opened_ms),
                    c->nchans, c->ws ? (unsigned)wslay_event_get_status_code_sent(c->ws) : c->code_sent,
                    c->ws ? (unsigned)wslay_event_get_status_code_received(c->ws) : 0u,
                    sv_log_quote(why, qwhy, sizeof(qwhy)));
    }
    sv_rt_chan_free_all(rt, c);
    epoll_ctl(rt->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    rt->conns[c->fd] = NULL;
    rt->nsockets--;
    c->dead_next = rt->dead;
    rt->dead = c;
}

void sv_rt_conn_free_dead(sv_rt *rt)
{
    while (rt->dead != NULL) {
        sv_rt_conn *c = rt->dead;
        rt->dead = c->dead_next;
        if (c->ws != NULL)
            wslay_event_context_free(c->ws);
        if (c->api_ident != NULL)
            sv_rt_ident_put(rt, c->api_ident);
        free(c->buf);
        free(c->chans);
        free(c);
    }
}

void sv_rt_conn_accept(sv_rt *rt)
{
    for (int i = 0; i < 256; i++) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof(ss);
        int fd = accept4(rt->listen_fd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                sv_log_warn("rt_accept", "error=\"%s\" sockets=%d", strerror(errno), rt->nsockets);
            return;
        }
        rt->stats.accepted++;
        if (rt->nsockets >= rt->cfg.realtime_max_sockets || fd >= rt->nconns_max) {
            static const char busy[] =
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                "Retry-After: 5\r\nConnection: close\r\nContent-Length: 56\r\n\r\n"
                "{\"message\":\"ConnectionRateLimitReached: Too many sockets\"}";
            ssize_t w = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL);
            (void)w;
            close(fd);
            rt->stats.refused++;
            continue;
        }
        sv_rt_conn *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->kind = SV_RT_EP_CONN;
        c->rt = rt;
        c->fd = fd;
        c->serial = ++rt->next_serial;
        c->state = SV_RT_CONN_HANDSHAKE;
        c->opened_ms = rt->now_ms;
        c->last_rx_ms = rt->now_ms;
        c->deadline_ms = rt->now_ms + (int64_t)rt->cfg.realtime_handshake_timeout * 1000;
        if (ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, c->peer, sizeof(c->peer));
        else if (ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, c->peer, sizeof(c->peer));
        else
            strcpy(c->peer, "unix");
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(rt->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(c);
            continue;
        }
        rt->conns[fd] = c;
        if (fd > rt->max_fd)
            rt->max_fd = fd;
        rt->nsockets++;
    }
}

/* --- plain HTTP answers ------------------------------------------------ */

static void sv_rt_conn_flush_http(sv_rt *rt, sv_rt_conn *c)
{
    while (c->buf_off < c->buf_len) {
        ssize_t w = send(c->fd, c->buf + c->buf_off, c->buf_len - c->buf_off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            sv_rt_conn_watch(rt, c, 1);
            return;
        }
        if (w <= 0) {
            sv_rt_conn_drop(rt, c, "write error");
            return;
        }
        c->buf_off += (uint32_t)w;
    }
    /* Answered: half-close, then read and discard what the client still
     * sends until it closes (or 2 s pass): closing with unread input
     * would send a reset that can destroy the answer in flight. */
    shutdown(c->fd, SHUT_WR);
    sv_rt_conn_watch(rt, c, 0);
    c->buf_off = c->buf_len = 0;
    c->deadline_ms = rt->now_ms + 2000;
}

static void sv_rt_conn_linger(sv_rt *rt, sv_rt_conn *c)
{
    char sink[4096];
    for (;;) {
        ssize_t r = recv(c->fd, sink, sizeof(sink), 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            sv_rt_conn_drop(rt, c, "answered");
            return;
        }
    }
}

/* Answers the request with status and a JSON body, then closes. */
static void sv_rt_conn_http(sv_rt *rt, sv_rt_conn *c, int status, const char *reason,
                            const char *extra_headers, const char *body, int head_only)
{
    free(c->buf);
    size_t blen = strlen(body);
    size_t cap = blen + strlen(reason) + (extra_headers ? strlen(extra_headers) : 0) + 256;
    c->buf = malloc(cap);
    if (c->buf == NULL) {
        sv_rt_conn_drop(rt, c, "out of memory");
        return;
    }
    int n = snprintf(c->buf, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n%s",
                     status, reason, blen, extra_headers ? extra_headers : "", head_only ? "" : body);
    c->buf_len = (uint32_t)n;
    c->buf_cap = (uint32_t)cap;
    c->buf_off = 0;
    c->state = SV_RT_CONN_HTTP;
    c->deadline_ms = rt->now_ms + (int64_t)rt->cfg.realtime_handshake_timeout * 1000;
    sv_rt_conn_flush_http(rt, c);
}

static void sv_rt_conn_http_error(sv_rt *rt, sv_rt_conn *c, int status, const char *reason,
                                  const char *extra_headers, const char *message)
{
    char *body = sv_arena_printf(&rt->arena, "{\"message\":%s}", sv_rt_json_string(rt, message));
    sv_rt_conn_http(rt, c, status, reason, extra_headers, body, 0);
}

/* --- WebSocket (wslay callbacks) ---------------------------------------- */

static ssize_t sv_rt_ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                             void *user_data)
{
    (void)flags;
    sv_rt_conn *c = user_data;
    /* Bytes that came with the request head, before the frames. */
    if (c->buf != NULL && c->buf_off < c->buf_len) {
        size_t n = c->buf_len - c->buf_off;
        if (n > len)
            n = len;
        memcpy(buf, c->buf + c->buf_off, n);
        c->buf_off += (uint32_t)n;
        c->fed += n;
        if (c->buf_off == c->buf_len) {
            free(c->buf);
            c->buf = NULL;
            c->buf_len = c->buf_off = c->buf_cap = 0;
        }
        return (ssize_t)n;
    }
    ssize_t r;
    do {
        r = recv(c->fd, buf, len, 0);
    } while (r < 0 && errno == EINTR);
    if (r > 0) {
        c->fed += (uint64_t)r;
        return r;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    } else {
        c->io_error = 1;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    }
    return -1;
}

static ssize_t sv_rt_frame_send(const uint8_t *data, size_t len, int flags, void *user_data)
{
    (void)flags;
    sv_rt_conn *c = user_data;
    return send(c->fd, data, len, MSG_NOSIGNAL);
}

/* wslay_event_recv failed. When the socket itself failed (EOF, reset)
 * there is nobody to tell. Otherwise wslay's frame parser refused a
 * frame (a fragmented control frame, one over 125 bytes): the event API
 * then gives up with an empty close frame, so the 1002 it deserves is
 * sent here through wslay's frame API before the socket is dropped. */
static void sv_rt_ws_recv_failed(sv_rt *rt, sv_rt_conn *c)
{
    if (!c->io_error && c->ws != NULL && !wslay_event_get_close_sent(c->ws)) {
        static const struct wslay_frame_callbacks cb = { sv_rt_frame_send, NULL, NULL };
        wslay_frame_context_ptr fc;
        if (wslay_frame_context_init(&fc, &cb, c) == 0) {
            static const uint8_t payload[2] = { 1002 >> 8, 1002 & 0xff };
            struct wslay_frame_iocb iocb = { .fin = 1, .opcode = WSLAY_CONNECTION_CLOSE, .mask = 0,
                                             .payload_length = 2, .data = payload, .data_length = 2 };
            wslay_frame_send(fc, &iocb);
            wslay_frame_context_free(fc);
        }
        sv_rt_conn_drop(rt, c, "protocol error");
        return;
    }
    sv_rt_conn_drop(rt, c, "read error");
}

static ssize_t sv_rt_ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                             void *user_data)
{
    sv_rt_conn *c = user_data;
    ssize_t r;
    do {
        r = send(c->fd, data, len, MSG_NOSIGNAL | ((flags & WSLAY_MSG_MORE) ? MSG_MORE : 0));
    } while (r < 0 && errno == EINTR);
    if (r >= 0)
        return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    else
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static void sv_rt_ws_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                         void *user_data)
{
    (void)ctx;
    sv_rt_conn *c = user_data;
    if (c->dead || c->closing)
        return;
    if (arg->opcode == WSLAY_TEXT_FRAME)
        sv_rt_chan_message(c->rt, c, (const char *)arg->msg, arg->msg_length);
    /* Binary frames carry realtime-js's user broadcasts, which this
     * server does not relay; control frames are wslay's. */
}

/* Frame accounting for releasing the context (see the top of the file):
 * the bytes of each frame wslay starts, header included (the server
 * requires masked frames, so 4 mask bytes). A client that encodes a
 * length in more bytes than needed only keeps its context. */
static void sv_rt_ws_frame_start(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_start_arg *arg,
                                 void *user_data)
{
    (void)ctx;
    sv_rt_conn *c = user_data;
    uint64_t len = arg->payload_length;
    c->framed += 2 + 4 + len + (len >= 65536 ? 8 : len >= 126 ? 2 : 0);
    c->in_frame = 1;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
        c->in_message = !arg->fin;
    else if (arg->opcode == WSLAY_CONTINUATION_FRAME && arg->fin)
        c->in_message = 0;
}

static void sv_rt_ws_frame_end(wslay_event_context_ptr ctx, void *user_data)
{
    (void)ctx;
    ((sv_rt_conn *)user_data)->in_frame = 0;
}

/* The socket's wslay context, made when it has none. 0, or -1. */
static int sv_rt_ws_ensure(sv_rt *rt, sv_rt_conn *c)
{
    static const struct wslay_event_callbacks callbacks = {
        sv_rt_ws_recv, sv_rt_ws_send, NULL, sv_rt_ws_frame_start, NULL, sv_rt_ws_frame_end, sv_rt_ws_msg,
    };
    if (c->ws != NULL)
        return 0;
    if (wslay_event_context_server_init(&c->ws, &callbacks, c) != 0) {
        c->ws = NULL;
        return -1;
    }
    wslay_event_config_set_max_recv_msg_length(c->ws, (uint64_t)rt->cfg.realtime_max_message);
    c->fed = c->framed = 0;
    c->in_frame = c->in_message = 0;
    return 0;
}

/* Frees the context when nothing is in flight (never from inside one of
 * its own callbacks). */
static void sv_rt_ws_release(sv_rt_conn *c)
{
    if (c->ws == NULL || c->in_recv || c->closing || c->in_frame || c->in_message || c->fed != c->framed ||
        (c->buf != NULL && c->buf_off < c->buf_len) || wslay_event_want_write(c->ws) ||
        !wslay_event_want_read(c->ws) || wslay_event_get_queued_msg_count(c->ws) != 0)
        return;
    wslay_event_context_free(c->ws);
    c->ws = NULL;
}

/* Sends what wslay has queued and decides whether the socket is done. */
static void sv_rt_ws_flush(sv_rt *rt, sv_rt_conn *c)
{
    if (c->dead || c->ws == NULL)
        return;
    if (wslay_event_want_write(c->ws) && wslay_event_send(c->ws) != 0) {
        sv_rt_conn_drop(rt, c, "write error");
        return;
    }
    if (!wslay_event_want_read(c->ws) && !wslay_event_want_write(c->ws)) {
        sv_rt_conn_drop(rt, c, c->closing ? "closed" : "closed by client");
        return;
    }
    sv_rt_conn_watch(rt, c, wslay_event_want_write(c->ws));
    sv_rt_ws_release(c);
}

int sv_rt_conn_send(sv_rt *rt, sv_rt_conn *c, const char *text, size_t len)
{
    if (c->dead || c->state != SV_RT_CONN_WS || c->closing)
        return -1;
    if (sv_rt_ws_ensure(rt, c) != 0) {
        sv_rt_conn_drop(rt, c, "out of memory");
        return -1;
    }
    /* What the socket has not taken yet, plus this message, must fit in
     * realtime_send_buffer; a message alone may be larger (a big row goes
     * to a reader that keeps up). */
    size_t queued = wslay_event_get_queued_msg_length(c->ws);
    if (queued > 0 && queued + len > (size_t)rt->cfg.realtime_send_buffer) {
        rt->stats.slow_readers++;
        sv_log_warn("rt_slow_reader", "peer=%s queued=%zu limit=%ld msg=\"send buffer full, dropping the socket\"",
                    c->peer, wslay_event_get_queued_msg_length(c->ws), rt->cfg.realtime_send_buffer);
        sv_rt_conn_drop(rt, c, "slow reader");
        return -1;
    }
    struct wslay_event_msg msg = { WSLAY_TEXT_FRAME, (const uint8_t *)text, len };
    if (wslay_event_queue_msg(c->ws, &msg) != 0) {
        sv_rt_conn_drop(rt, c, "queue error");
        return -1;
    }
    sv_rt_ws_flush(rt, c);
    return c->dead ? -1 : 0;
}

void sv_rt_conn_close_ws(sv_rt *rt, sv_rt_conn *c, uint16_t code, const char *reason)
{
    if (c->dead || c->closing)
        return;
    if (sv_rt_ws_ensure(rt, c) != 0) {
        sv_rt_conn_drop(rt, c, "out of memory");
        return;
    }
    c->closing = 1;
    c->code_sent = code;
    c->deadline_ms = rt->now_ms + 2000;
    size_t rlen = strlen(reason);
    if (rlen > 123)
        rlen = 123;
    wslay_event_queue_close(c->ws, code, (const uint8_t *)reason, rlen);
    sv_rt_ws_flush(rt, c);
}

/* --- the upgrade --------------------------------------------------------- */

static int sv_rt_path_is(const char *path, const char *suffix)
{
    return strcmp(path, suffix) == 0;
}

/* The request head is complete in c->buf[0..head): answer it. */
static void sv_rt_conn_request(sv_rt *rt, sv_rt_conn *c, size_t head)
{
    sv_rt_http_req req;
    char saved = c->buf[head];
    c->buf[head] = '\0';
    if (sv_rt_http_parse(c->buf, head, &req) != 0) {
        sv_rt_conn_http_error(rt, c, 400, "Bad Request", NULL, "malformed HTTP request");
        return;
    }
    c->buf[head] = saved;

    int head_only = strcmp(req.method, "HEAD") == 0;
    /* The same base_path as the API's, so one nginx location prefix
     * serves both. */
    const char *below = sv_http_path_under(rt->cfg.base_path, req.path);
    if (below == NULL) {
        sv_rt_conn_http_error(rt, c, 404, "Not Found", NULL, "not found: outside base_path");
        return;
    }
    req.path = below;
    if (sv_rt_path_is(req.path, "/healthz") || sv_rt_path_is(req.path, "/realtime/v1/healthz")) {
        if (strcmp(req.method, "GET") != 0 && !head_only) {
            sv_rt_conn_http_error(rt, c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", "method not allowed");
            return;
        }
        int ok;
        char *body = sv_rt_health_json(rt, &ok);
        sv_rt_conn_http(rt, c, ok ? 200 : 503, ok ? "OK" : "Service Unavailable",
                        ok ? NULL : "Retry-After: 1\r\n", body, head_only);
        return;
    }
    if (!sv_rt_path_is(req.path, "/realtime/v1/websocket") && !sv_rt_path_is(req.path, "/socket/websocket") &&
        !sv_rt_path_is(req.path, "/websocket")) {
        sv_rt_conn_http_error(rt, c, 404, "Not Found", NULL, "not found: the WebSocket is /realtime/v1/websocket");
        return;
    }
    if (strcmp(req.method, "GET") != 0) {
        sv_rt_conn_http_error(rt, c, 405, "Method Not Allowed", "Allow: GET\r\n", "method not allowed");
        return;
    }
    if (!req.http11 || !req.upgrade_websocket || !req.connection_upgrade || req.ws_key == NULL) {
        sv_rt_conn_http_error(rt, c, 400, "Bad Request", NULL,
                              "expected a WebSocket upgrade (Upgrade: websocket, Connection: Upgrade, Sec-WebSocket-Key)");
        return;
    }
    if (req.ws_version == NULL || strcmp(req.ws_version, "13") != 0) {
        sv_rt_conn_http_error(rt, c, 426, "Upgrade Required", "Sec-WebSocket-Version: 13\r\n",
                              "unsupported Sec-WebSocket-Version (13 is)");
        return;
    }
    char accept[SV_RT_ACCEPT_LEN + 1];
    if (sv_rt_http_accept(req.ws_key, accept) != 0) {
        sv_rt_conn_http_error(rt, c, 400, "Bad Request", NULL, "Sec-WebSocket-Key is not the base64 of 16 bytes");
        return;
    }

    /* The serializer: Phoenix's default is 1.0.0. */
    char vsn[32];
    int vl = sv_rt_http_query_param(req.query, "vsn", vsn, sizeof(vsn));
    if (vl == -1 || (vl > 0 && strncmp(vsn, "1.0.", 4) == 0))
        c->vsn = SV_RT_VSN1;
    else if (vl > 0 && strncmp(vsn, "2.0.", 4) == 0)
        c->vsn = SV_RT_VSN2;
    else {
        sv_rt_conn_http_error(rt, c, 400, "Bad Request", NULL, "unsupported vsn: 1.0.0 and 2.0.0 are served");
        return;
    }

    /* The apikey (supabase-js puts it in the URL): a token signed with
     * the server's secret, e.g. the anon key. Channels joined without an
     * access_token run with it. */
    char *apikey = sv_arena_alloc(&rt->arena, SV_JWT_MAX_TOKEN_LEN + 1);
    int al = sv_rt_http_query_param(req.query, "apikey", apikey, SV_JWT_MAX_TOKEN_LEN + 1);
    if (al <= 0 && req.apikey != NULL && strlen(req.apikey) <= SV_JWT_MAX_TOKEN_LEN) {
        strcpy(apikey, req.apikey);
        al = (int)strlen(apikey);
    }
    if (al <= 0) {
        sv_rt_conn_http_error(rt, c, 403, "Forbidden", NULL, "apikey is required (the anon key)");
        return;
    }
    char *claims = NULL;
    json_object *payload = NULL, *role = NULL, *exp = NULL;
    sv_jwt_status st = sv_jwt_verify_obj(&rt->arena, rt->cfg.jwt_secret, apikey,
                                         (time_t)(sv_clock_wall_ms() / 1000), &claims, &payload);
    if (st != SV_JWT_OK || !json_object_object_get_ex(payload, "role", &role) ||
        !json_object_is_type(role, json_type_string)) {
        if (payload != NULL)
            json_object_put(payload);
        sv_rt_conn_http_error(rt, c, 403, "Forbidden", NULL,
                              st != SV_JWT_OK ? sv_arena_printf(&rt->arena, "invalid apikey: %s", sv_jwt_strerror(st))
                                              : "invalid apikey: no role claim");
        return;
    }
    c->api_ident = sv_rt_ident_get(rt, json_object_get_string(role), claims);
    if (json_object_object_get_ex(payload, "exp", &exp))
        c->api_exp = (int64_t)json_object_get_double(exp);
    json_object_put(payload);
    if (c->api_ident == NULL) {
        sv_rt_conn_drop(rt, c, "out of memory");
        return;
    }

    char resp[256];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    /* A fresh socket's buffer is empty: the answer goes out whole. */
    if (send(c->fd, resp, (size_t)n, MSG_NOSIGNAL) != n) {
        sv_rt_conn_drop(rt, c, "write error");
        return;
    }
    rt->stats.upgrades++;
    c->state = SV_RT_CONN_WS;
    c->deadline_ms = 0;
    c->last_rx_ms = rt->now_ms;
    /* Keep any bytes after the head for wslay; drop the rest. */
    if (c->buf_len > head) {
        memmove(c->buf, c->buf + head, c->buf_len - head);
        c->buf_len -= (uint32_t)head;
        c->buf_off = 0;
    } else {
        free(c->buf);
        c->buf = NULL;
        c->buf_len = c->buf_cap = c->buf_off = 0;
    }
}

/* Hands wslay what the socket holds (and what arrived with the
 * handshake). Returns 0, or -1 when the connection was dropped or is
 * closing and the caller must leave it alone. */
static int sv_rt_ws_read(sv_rt *rt, sv_rt_conn *c)
{
    if (sv_rt_ws_ensure(rt, c) != 0) {
        sv_rt_conn_drop(rt, c, "out of memory");
        return -1;
    }
    c->in_recv = 1;
    int rr = wslay_event_recv(c->ws);
    c->in_recv = 0;
    if (rr != 0) {
        sv_rt_ws_recv_failed(rt, c);
        return -1;
    }
    return 0;
}

static void sv_rt_conn_read_head(sv_rt *rt, sv_rt_conn *c)
{
    for (;;) {
        if (c->buf_len == c->buf_cap) {
            if (c->buf_cap >= SV_RT_MAX_HEAD) {
                sv_rt_conn_http_error(rt, c, 431, "Request Header Fields Too Large", NULL,
                                      "request head too large");
                return;
            }
            uint32_t cap = c->buf_cap ? c->buf_cap * 2 : 1024;
            if (cap > SV_RT_MAX_HEAD)
                cap = SV_RT_MAX_HEAD;
            char *nb = realloc(c->buf, (size_t)cap + 1);
            if (nb == NULL) {
                sv_rt_conn_drop(rt, c, "out of memory");
                return;
            }
            c->buf = nb;
            c->buf_cap = cap;
        }
        ssize_t r = recv(c->fd, c->buf + c->buf_len, c->buf_cap - c->buf_len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            sv_rt_conn_drop(rt, c, "closed during handshake");
            return;
        }
        size_t scan_from = c->buf_len > 3 ? c->buf_len - 3 : 0;
        c->buf_len += (uint32_t)r;
        size_t head = sv_rt_http_head_len(c->buf + scan_from, c->buf_len - scan_from);
        if (head > 0) {
            sv_rt_conn_request(rt, c, scan_from + head);
            if (!c->dead && c->state == SV_RT_CONN_WS && c->buf != NULL) {
                /* Frames sent together with the request. */
                if (sv_rt_ws_read(rt, c) == 0)
                    sv_rt_ws_flush(rt, c);
            }
            return;
        }
    }
}

void sv_rt_conn_event(sv_rt *rt, sv_rt_conn *c, uint32_t events)
{
    switch (c->state) {
    case SV_RT_CONN_HANDSHAKE:
        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            sv_rt_conn_read_head(rt, c);
        return;
    case SV_RT_CONN_HTTP:
        if (c->buf_off < c->buf_len) {
            if (events & (EPOLLHUP | EPOLLERR))
                sv_rt_conn_drop(rt, c, "closed");
            else if (events & EPOLLOUT)
                sv_rt_conn_flush_http(rt, c);
        } else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            sv_rt_conn_linger(rt, c);
        }
        return;
    case SV_RT_CONN_WS:
        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            c->last_rx_ms = rt->now_ms;
            if (sv_rt_ws_read(rt, c) != 0)
                return;
        }
        sv_rt_ws_flush(rt, c);
        return;
    }
}

void sv_rt_conn_tick(sv_rt *rt, sv_rt_conn *c)
{
    if (c->state != SV_RT_CONN_WS) {
        if (rt->now_ms >= c->deadline_ms)
            sv_rt_conn_drop(rt, c, c->state == SV_RT_CONN_HTTP ? "answered" : "handshake timeout");
        return;
    }
    if (c->closing) {
        if (rt->now_ms >= c->deadline_ms)
            sv_rt_conn_drop(rt, c, "close timeout");
        return;
    }
    if (rt->cfg.realtime_idle_timeout > 0 &&
        rt->now_ms - c->last_rx_ms >= (int64_t)rt->cfg.realtime_idle_timeout * 1000)
        sv_rt_conn_close_ws(rt, c, 1000, "idle timeout: no heartbeat");
}
