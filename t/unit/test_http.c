#include <stdlib.h>

#include "http/sv_http.h"
#include "core/sv_log.h"
#include "core/sv_addr.h"
#include "tap.h"

typedef struct { const char *data; size_t len, pos; } mem_in;
typedef struct { char data[4096]; size_t len; } mem_out;

static int mem_read(void *ctx, char *buf, int len)
{
    mem_in *in = ctx;
    size_t n = in->len - in->pos < (size_t)len ? in->len - in->pos : (size_t)len;
    memcpy(buf, in->data + in->pos, n);
    in->pos += n;
    return (int)n;
}

static int mem_append(mem_out *out, const char *buf, size_t len)
{
    if (out->len + len >= sizeof(out->data))
        return -1;
    memcpy(out->data + out->len, buf, len);
    out->len += len;
    out->data[out->len] = '\0';
    return 0;
}

static int mem_send(void *ctx, const char *head, size_t head_len, const char *body, size_t body_len)
{
    mem_out *out = ctx;
    return mem_append(out, head, head_len) == 0 && mem_append(out, body, body_len) == 0 ? 0 : -1;
}

static int released;
static void count_release(void *owner)
{
    released += *(int *)owner;
}

int main(void)
{
    sv_arena arena;
    sv_arena_init(&arena, 1024);

    char *env[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/rest/v1/x?select=a%2Cb&flag&q=a+b",
                    "QUERY_STRING=select=a%2Cb&flag&q=a+b", "CONTENT_LENGTH=5",
                    "CONTENT_TYPE=application/json", "HTTP_X_REQUEST_ID=abc-123",
                    "HTTP_ACCEPT_PROFILE=public", "REMOTE_ADDR=127.0.0.1", NULL };
    sv_request req;
    sv_request_init(&req, &arena, env);
    is_int(req.method, SV_HTTP_POST, "method parsed");
    is_str(req.path, "/rest/v1/x", "path excludes the query");
    is_str(sv_request_query_param(&req, "select"), "a,b", "query value is percent-decoded");
    is_str(sv_request_query_param(&req, "flag"), "", "key without value yields empty string");
    is_str(sv_request_query_param(&req, "q"), "a b", "'+' decodes to space");
    ok(sv_request_query_param(&req, "missing") == NULL, "absent key yields NULL");
    is_str(sv_request_header(&req, "Content-Type"), "application/json", "Content-Type header");
    is_str(sv_request_header(&req, "accept-profile"), "public", "headers are case-insensitive");
    is_str(req.request_id, "abc-123", "request id from X-Request-Id");

    mem_in in = { "hello world", 11, 0 };
    sv_io io = { env, mem_read, NULL, &in };
    sv_error err;
    sv_error_init(&err);
    is_int(sv_request_read_body(&req, &io, 100, &err), SV_OK, "body within limit is read");
    is_str(req.body, "hello", "body is exactly Content-Length bytes");

    in.pos = 0;
    is_int(sv_request_read_body(&req, &io, 4, &err), SV_ERROR, "over-limit body refused");
    is_int(err.status, 413, "as 413");
    is_int(in.pos, 0, "refused before reading a byte");

    char *env_bad[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/", "CONTENT_LENGTH=12x", NULL };
    sv_request_init(&req, &arena, env_bad);
    is_int(sv_request_read_body(&req, &io, 100, &err), SV_ERROR, "malformed length refused");
    is_int(err.status, 400, "as 400");

    char *env_short[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/", "CONTENT_LENGTH=50", NULL };
    sv_request_init(&req, &arena, env_short);
    in.pos = 0;
    err.status = 0;
    is_int(sv_request_read_body(&req, &io, 100, &err), SV_ERROR, "truncated body refused");
    is_int(err.status, 400, "as 400");

    char *env_cgi[] = { "REQUEST_METHOD=GET", "PATH_INFO=/healthz", NULL };
    sv_request_init(&req, &arena, env_cgi);
    is_str(req.path, "/healthz", "PATH_INFO used without REQUEST_URI");
    is_str(req.request_id, "-", "missing request id is '-'");
    ok(sv_http_path_under("", "*") != NULL && strcmp(sv_http_path_under("", "*"), "*") == 0,
       "no base path: any path as sent");
    is_str(sv_http_path_under("/api", "/api/rest/v1/x"), "/rest/v1/x", "base path removed");
    is_str(sv_http_path_under("/api", "/api"), "/", "the base itself is /");
    is_str(sv_http_path_under("/api", "/api/"), "/", "and so is the base with a slash");
    ok(sv_http_path_under("/api", "/apix/rest/v1/x") == NULL, "a longer first segment is not under the base");
    ok(sv_http_path_under("/api", "/rest/v1/x") == NULL, "a path without the base is not under it");
    ok(sv_http_path_under("/a/b", "/a") == NULL, "nor is a part of the base");
    char *env_base[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/api/healthz?x=1", NULL };
    sv_request_init(&req, &arena, env_base);
    sv_request_strip_base(&req, "/api");
    ok(!req.outside_base && strcmp(req.path, "/healthz") == 0, "request path below the base");
    sv_request_init(&req, &arena, env_base);
    sv_request_strip_base(&req, "/other");
    ok(req.outside_base && strcmp(req.path, "/api/healthz") == 0, "outside another base, the path kept as sent");
    char *env_info[] = { "REQUEST_METHOD=GET", "SCRIPT_NAME=/api/streamvibe.cgi", "PATH_INFO=/healthz", NULL };
    sv_request_init(&req, &arena, env_info);
    sv_request_strip_base(&req, "/api");
    ok(!req.outside_base && strcmp(req.path, "/healthz") == 0,
       "PATH_INFO is already below the program: base_path is not taken off it");
    char *env_rid[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/", "HTTP_X_REQUEST_ID=a b<script>", NULL };
    sv_request_init(&req, &arena, env_rid);
    is_str(req.request_id, "-", "request id with foreign characters is dropped");

    mem_out out = { "", 0 };
    sv_io wio = { env, NULL, mem_send, &out };
    sv_response res;
    sv_response_init(&res, &arena);
    sv_response_header(&res, "X-Evil", "a\r\nSet-Cookie: x=1");
    sv_response_header_long(&res, "X-Num", -1234567890L);
    sv_response_header_long(&res, "X-Zero", 0);
    sv_response_json(&res, 404, json_object_new_string("no"));
    is_int(sv_response_send(&res, &wio), SV_OK, "response sent");
    ok(strncmp(out.data, "Status: 404 Not Found\r\n", 23) == 0, "CGI status line");
    ok(strstr(out.data, "\r\nSet-Cookie") == NULL, "header values cannot inject lines");
    ok(strstr(out.data, "X-Evil: aSet-Cookie: x=1\r\n") != NULL, "line breaks are dropped, the rest kept");
    ok(strstr(out.data, "X-Num: -1234567890\r\n") != NULL, "a numeric header");
    ok(strstr(out.data, "X-Zero: 0\r\n") != NULL, "zero");
    ok(strstr(out.data, "\r\n\r\n\"no\"") != NULL, "the JSON body follows the head");

    out.len = 0;
    sv_response_init(&res, &arena);
    sv_response_header(&res, "X-Request-Id", "Content-Type:x");
    sv_response_json(&res, 400, json_object_new_object());
    is_int(sv_response_send(&res, &wio), SV_OK, "response with a look-alike header sent");
    ok(strstr(out.data, "\r\nContent-Type: application/json") != NULL,
       "a header value mentioning Content-Type does not suppress the real one");

    /* A body handed over without a copy: sent, counted, released once. */
    out.len = 0;
    int one = 1;
    static const char page[] = "[{\"id\":1}]";
    sv_response_init(&res, &arena);
    sv_response_body_ext(&res, page, strlen(page), count_release, &one);
    is_int(sv_response_body_len(&res), strlen(page), "external body length");
    is_int(sv_response_send(&res, &wio), SV_OK, "external body sent");
    ok(strstr(out.data, "Content-Length: 10\r\n") != NULL, "Content-Length of the external body");
    ok(strstr(out.data, "\r\n\r\n[{\"id\":1}]") != NULL, "the external body follows the head");
    is_int(released, 0, "not released before the response is done");
    sv_response_release(&res);
    sv_response_release(&res);
    is_int(released, 1, "released exactly once");
    sv_response_body_ext(&res, page, strlen(page), count_release, &one);
    sv_response_json(&res, 500, json_object_new_object());
    is_int(released, 2, "an error body replacing it releases it");
    ok(sv_response_body_len(&res) == res.body.len && res.body_ext == NULL, "and the error is what is sent");

    is_str(sv_http_allow_header(&arena, SV_HTTP_GET | SV_HTTP_HEAD | SV_HTTP_POST), "GET, HEAD, POST",
           "Allow header lists methods in order");

    char q[64];
    is_str(sv_log_quote("/a b\n\"x\"", q, sizeof(q)), "\"/a b\\x0a\\\"x\\\"\"",
           "log values are quoted and escaped");
    is_str(sv_log_quote("/plain", q, sizeof(q)), "/plain", "plain values stay bare");

    ok(sv_addr_allowed("127.0.0.1, ::1", "127.0.0.1"), "exact IPv4 allowed");
    ok(sv_addr_allowed("127.0.0.1, ::1", "::1"), "exact IPv6 allowed");
    ok(!sv_addr_allowed("127.0.0.1", "127.0.0.2"), "other address refused");
    ok(sv_addr_allowed("10.0.0.0/8", "10.20.30.40"), "CIDR match");
    ok(!sv_addr_allowed("10.0.0.0/8", "11.0.0.1"), "CIDR mismatch");
    ok(sv_addr_allowed("192.168.1.0/23", "192.168.0.7"), "non-octet CIDR");
    ok(!sv_addr_allowed("127.0.0.1", ""), "empty address refused");

    sv_arena_free(&arena);
    return tap_done();
}
