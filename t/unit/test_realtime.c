/* The pure parts of streamvibe-realtime: the upgrade request, the
 * accept key, Phoenix messages in both serializers, binding filters. */
#include <stdlib.h>
#include <string.h>

#include "core/sv_arena.h"
#include "realtime/sv_rt_filter.h"
#include "realtime/sv_rt_http.h"
#include "realtime/sv_rt_phx.h"
#include "tap.h"

static int parse(const char *text, sv_rt_http_req *req, char *buf, size_t cap)
{
    size_t len = strlen(text);
    if (len + 1 > cap)
        return -2;
    memcpy(buf, text, len + 1);
    return sv_rt_http_parse(buf, len, req);
}

static void test_http(void)
{
    char buf[2048];
    sv_rt_http_req req;
    const char *good = "GET /realtime/v1/websocket?apikey=a%2Eb&vsn=2.0.0 HTTP/1.1\r\n"
                       "Host: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    is_int(sv_rt_http_head_len(good, strlen(good)), strlen(good), "head length includes the blank line");
    is_int(sv_rt_http_head_len(good, strlen(good) - 1), 0, "an incomplete head has no length yet");
    is_int(parse(good, &req, buf, sizeof(buf)), 0, "an upgrade request parses");
    is_str(req.method, "GET", "method");
    is_str(req.path, "/realtime/v1/websocket", "path without the query");
    is_str(req.query, "apikey=a%2Eb&vsn=2.0.0", "query");
    ok(req.http11 && req.upgrade_websocket && req.connection_upgrade, "upgrade headers seen (case, token lists)");
    is_str(req.ws_key, "dGhlIHNhbXBsZSBub25jZQ==", "key");
    is_str(req.ws_version, "13", "version");

    char v[64];
    is_int(sv_rt_http_query_param(req.query, "apikey", v, sizeof(v)), 3, "apikey found");
    is_str(v, "a.b", "percent-decoded");
    is_int(sv_rt_http_query_param(req.query, "vsn", v, sizeof(v)), 5, "vsn found");
    is_int(sv_rt_http_query_param(req.query, "nope", v, sizeof(v)), -1, "absent parameter");
    is_int(sv_rt_http_query_param("a=%zz", "a", v, sizeof(v)), -2, "bad percent escape");
    is_int(sv_rt_http_query_param("a=%00", "a", v, sizeof(v)), -2, "an encoded NUL is refused");
    is_int(sv_rt_http_query_param("a=xxxxxxxx", "a", v, 4), -2, "too long for the buffer");

    char accept[SV_RT_ACCEPT_LEN + 1];
    is_int(sv_rt_http_accept("dGhlIHNhbXBsZSBub25jZQ==", accept), 0, "accept key");
    is_str(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "RFC 6455's own example");
    is_int(sv_rt_http_accept("c2hvcnQ=", accept), -1, "a key that is not 16 bytes is refused");
    is_int(sv_rt_http_accept("!!!!!!!!!!!!!!!!!!!!!!==", accept), -1, "a key that is not base64 is refused");

    ok(parse("GET / HTTP/1.1\nHost: x\n\n", &req, buf, sizeof(buf)) == -1, "bare LF line ends are refused");
    ok(parse("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", &req, buf, sizeof(buf)) == -1, "obsolete folding is refused");
    ok(parse("GET / HTTP/1.1\r\nNo colon\r\n\r\n", &req, buf, sizeof(buf)) == -1, "a header without a colon is refused");
    ok(parse("GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n", &req, buf, sizeof(buf)) == -1, "control characters are refused");
    ok(parse("get / HTTP/1.1\r\n\r\n", &req, buf, sizeof(buf)) == -1, "a lower-case method is refused");
    ok(parse("GET x HTTP/1.1\r\n\r\n", &req, buf, sizeof(buf)) == -1, "a target that is not a path is refused");
    ok(parse("GET / HTTP/2.0\r\n\r\n", &req, buf, sizeof(buf)) == -1, "not HTTP/1.x");
    ok(parse("GET / HTTP/1.0\r\n\r\n", &req, buf, sizeof(buf)) == 0 && !req.http11, "HTTP/1.0 parses, not 1.1");
    ok(sv_rt_http_has_token("keep-alive ,  UPGRADE", "upgrade"), "token lists are case-insensitive");
    ok(!sv_rt_http_has_token("upgraded", "upgrade"), "tokens are whole");
}

static void test_filter(void)
{
    sv_rt_filter f;
    char err[256];
    is_int(sv_rt_filter_parse("user_id=eq.11111111-1111-1111-1111-111111111111", &f, err, sizeof(err)), 0, "eq parses");
    ok(f.op == SV_RT_OP_EQ, "op eq");
    is_str(f.column, "user_id", "column");
    is_str(f.value, "11111111-1111-1111-1111-111111111111", "value");
    is_str(sv_rt_filter_sql_op(f.op), "=", "SQL operator");
    sv_rt_filter_free(&f);

    const char *ops[][2] = { { "neq", "<>" }, { "lt", "<" }, { "lte", "<=" }, { "gt", ">" }, { "gte", ">=" } };
    for (size_t i = 0; i < 5; i++) {
        char s[64];
        snprintf(s, sizeof(s), "n=%s.5", ops[i][0]);
        ok(sv_rt_filter_parse(s, &f, err, sizeof(err)) == 0 && strcmp(sv_rt_filter_sql_op(f.op), ops[i][1]) == 0 &&
               strcmp(f.value, "5") == 0,
           ops[i][0]);
        sv_rt_filter_free(&f);
    }
    is_int(sv_rt_filter_parse("title=eq.a.b.c", &f, err, sizeof(err)), 0, "dots after the operator are the value's");
    is_str(f.value, "a.b.c", "value a.b.c");
    sv_rt_filter_free(&f);
    is_int(sv_rt_filter_parse("title=eq.\"a,\\\"b\"", &f, err, sizeof(err)), 0, "a quoted value");
    is_str(f.value, "a,\"b", "unquoted with escapes");
    sv_rt_filter_free(&f);
    is_int(sv_rt_filter_parse("id=in.(1, 2,\"x,y\",\"q\\\"\")", &f, err, sizeof(err)), 0, "in list");
    is_str(f.value, "{\"1\",\"2\",\"x,y\",\"q\\\"\"}", "an array literal, every element quoted");
    sv_rt_filter_free(&f);
    is_int(sv_rt_filter_parse("id=in.()", &f, err, sizeof(err)), 0, "an empty in list");
    is_str(f.value, "{}", "empty array");
    sv_rt_filter_free(&f);
    is_int(sv_rt_filter_parse("", &f, err, sizeof(err)), 0, "empty: no filter");
    ok(f.op == SV_RT_OP_NONE, "op none");
    is_int(sv_rt_filter_parse("   ", &f, err, sizeof(err)), 0, "blank: no filter");

    is_int(sv_rt_filter_parse("id=like.x%", &f, err, sizeof(err)), -1, "like is not served");
    ok(strstr(err, "Error parsing `filter` params") != NULL, "... with Supabase's message");
    is_int(sv_rt_filter_parse("id=in.1,2", &f, err, sizeof(err)), -1, "in without parentheses");
    is_int(sv_rt_filter_parse("id=in.(1,,2)", &f, err, sizeof(err)), -1, "in with an empty element");
    is_int(sv_rt_filter_parse("id=in.(1,2,)", &f, err, sizeof(err)), -1, "in with a trailing comma");
    is_int(sv_rt_filter_parse("id=in.(\"1)", &f, err, sizeof(err)), -1, "in with an open quote");
    is_int(sv_rt_filter_parse("=eq.1", &f, err, sizeof(err)), -1, "no column");
    is_int(sv_rt_filter_parse("ideq1", &f, err, sizeof(err)), -1, "no =");
    is_int(sv_rt_filter_parse("id=eq", &f, err, sizeof(err)), -1, "no value");
    is_int(sv_rt_filter_parse("id=eq.\"a\"b\"", &f, err, sizeof(err)), -1, "a stray quote");
    char big[SV_RT_FILTER_MAX + 16];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "id=eq.", 6);
    is_int(sv_rt_filter_parse(big, &f, err, sizeof(err)), -1, "too long");
}

static void test_phx(void)
{
    sv_arena arena;
    sv_arena_init(&arena, 4096);
    sv_rt_msg m;
    const char *why;
    const char *v2 = "[\"6\",\"6\",\"realtime:job-updates\",\"phx_join\",{\"config\":{}}]";
    is_int(sv_rt_phx_decode(&arena, 2, v2, strlen(v2), &m, &why), 0, "vsn 2 join decodes");
    is_str(m.topic, "realtime:job-updates", "topic");
    is_str(m.event, "phx_join", "event");
    is_str(m.ref, "6", "ref");
    is_str(m.ref_json, "\"6\"", "ref as JSON to echo");
    is_str(m.join_ref_json, "\"6\"", "join_ref as JSON");
    ok(m.payload != NULL, "payload");
    sv_rt_phx_msg_free(&m);

    const char *hb = "[null,\"8\",\"phoenix\",\"heartbeat\",{}]";
    is_int(sv_rt_phx_decode(&arena, 2, hb, strlen(hb), &m, &why), 0, "heartbeat decodes");
    is_str(m.join_ref_json, "null", "null join_ref");
    ok(m.join_ref == NULL, "no plain join_ref");
    sv_rt_phx_msg_free(&m);

    const char *v1 = "{\"topic\":\"phoenix\",\"event\":\"heartbeat\",\"payload\":{},\"ref\":\"9\"}";
    is_int(sv_rt_phx_decode(&arena, 1, v1, strlen(v1), &m, &why), 0, "vsn 1 decodes");
    is_str(m.ref_json, "\"9\"", "ref");
    is_str(m.join_ref_json, "null", "absent join_ref is null");
    sv_rt_phx_msg_free(&m);

    const char *bad[] = {
        "{\"topic\":\"x\"}",                                  /* vsn 2 wants an array */
        "[null,null,\"t\",\"e\"]",                            /* too short */
        "[null,null,1,\"e\",{}]",                             /* topic not a string */
        "[null,null,\"t\",\"e\",[]]",                         /* payload not an object */
        "[{},null,\"t\",\"e\",{}]",                           /* ref not a string */
        "[null,\"01234567890123456789012345678901234567890123456789012345678901234\",\"t\",\"e\",{}]",
        "[null,null,\"t\",\"e\",{}] trailing",
        "not json",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ok(sv_rt_phx_decode(&arena, 2, bad[i], strlen(bad[i]), &m, &why) == -1 && why != NULL, bad[i]);
    }
    ok(sv_rt_phx_decode(&arena, 1, "[null,null,\"t\",\"e\",{}]", 22, &m, &why) == -1, "vsn 1 wants an object");

    sv_buf out;
    sv_buf_init(&out, &arena, 64);
    sv_rt_phx_encode(&out, 2, "\"6\"", NULL, "\"realtime:x\"", "system", "{}");
    is_str(out.data, "[\"6\",null,\"realtime:x\",\"system\",{}]", "vsn 2 encoding");
    sv_buf_init(&out, &arena, 64);
    sv_rt_phx_encode(&out, 1, "\"6\"", "\"7\"", "\"realtime:x\"", "phx_reply", "{\"status\":\"ok\"}");
    is_str(out.data, "{\"topic\":\"realtime:x\",\"event\":\"phx_reply\",\"payload\":{\"status\":\"ok\"},\"ref\":\"7\"}",
           "vsn 1 encoding leaves join_ref out");
    sv_arena_free(&arena);
}

int main(void)
{
    test_http();
    test_filter();
    test_phx();
    return tap_done();
}
