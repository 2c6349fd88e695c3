#include "http/sv_http.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct { int bit; const char *name; } sv_methods[] = {
    { SV_HTTP_GET, "GET" },     { SV_HTTP_HEAD, "HEAD" },     { SV_HTTP_POST, "POST" },
    { SV_HTTP_PUT, "PUT" },     { SV_HTTP_PATCH, "PATCH" },   { SV_HTTP_DELETE, "DELETE" },
    { SV_HTTP_OPTIONS, "OPTIONS" },
};

int sv_http_method_from_name(const char *name)
{
    if (name == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(sv_methods) / sizeof(sv_methods[0]); i++)
        if (strcmp(sv_methods[i].name, name) == 0)
            return sv_methods[i].bit;
    return 0;
}

const char *sv_http_allow_header(sv_arena *arena, int methods)
{
    sv_buf buf;
    sv_buf_init(&buf, arena, 64);
    for (size_t i = 0; i < sizeof(sv_methods) / sizeof(sv_methods[0]); i++) {
        if (methods & sv_methods[i].bit) {
            if (buf.len)
                sv_buf_puts(&buf, ", ");
            sv_buf_puts(&buf, sv_methods[i].name);
        }
    }
    return buf.data;
}

const char *sv_http_param(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (; envp != NULL && *envp != NULL; envp++)
        if ((*envp)[0] == name[0] && strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    return NULL;
}

int sv_http_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

char *sv_http_url_decode(sv_arena *arena, const char *s, size_t len, int plus_is_space)
{
    char *out = sv_arena_alloc(arena, len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = sv_http_hex_digit((unsigned char)s[i + 1])) >= 0 &&
            (lo = sv_http_hex_digit((unsigned char)s[i + 2])) >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (s[i] == '+' && plus_is_space) {
            out[o++] = ' ';
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

void sv_request_init(sv_request *req, sv_arena *arena, char **envp)
{
    memset(req, 0, sizeof(*req));
    req->arena = arena;
    req->envp = envp;
    req->method_name = sv_http_param(envp, "REQUEST_METHOD");
    if (req->method_name == NULL)
        req->method_name = "GET";
    req->method = sv_http_method_from_name(req->method_name);

    /* REQUEST_URI is what the client sent (nginx, Apache, fcgiwrap all pass
     * it); plain CGI servers may only give SCRIPT_NAME + PATH_INFO. */
    const char *uri = sv_http_param(envp, "REQUEST_URI");
    if (uri != NULL && *uri != '\0') {
        const char *q = strchr(uri, '?');
        req->path = q ? sv_arena_strndup(arena, uri, (size_t)(q - uri)) : uri;
    } else {
        const char *info = sv_http_param(envp, "PATH_INFO");
        req->path = (info && *info) ? info : "/";
        req->path_info = 1;
    }
    req->sent_path = req->path;
    req->query = sv_http_param(envp, "QUERY_STRING");
    if (req->query == NULL)
        req->query = "";

    /* The id is echoed in a header and written to logs: accept only what
     * request ids are made of, so it cannot smuggle anything. */
    req->request_id = sv_http_param(envp, "HTTP_X_REQUEST_ID");
    if (req->request_id == NULL || *req->request_id == '\0' || strlen(req->request_id) > 128 ||
        req->request_id[strspn(req->request_id,
                               "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")] != '\0')
        req->request_id = "-";
    req->remote_addr = sv_http_param(envp, "REMOTE_ADDR");
    if (req->remote_addr == NULL)
        req->remote_addr = "";

    const char *cl = sv_http_param(envp, "CONTENT_LENGTH");
    req->content_length = -1;
    if (cl != NULL && *cl != '\0') {
        char *end;
        errno = 0;
        long n = strtol(cl, &end, 10);
        if (errno == 0 && *end == '\0' && n >= 0)
            req->content_length = n;
        else
            req->content_length = -2; /* malformed: reject as 400 */
    }
}

const char *sv_http_path_under(const char *base, const char *path)
{
    size_t len = strlen(base);

    if (len == 0)
        return path;
    if (strncmp(path, base, len) != 0 || (path[len] != '\0' && path[len] != '/'))
        return NULL;
    return path[len] != '\0' && path[len + 1] != '\0' ? path + len : "/";
}

void sv_request_strip_base(sv_request *req, const char *base)
{
    const char *below = base != NULL && !req->path_info ? sv_http_path_under(base, req->path) : req->path;

    if (below == NULL)
        req->outside_base = 1;
    else
        req->path = below;
}

const char *sv_request_header(const sv_request *req, const char *name)
{
    char key[128];
    size_t n = 0;

    /* CGI passes Content-Type/Length without the HTTP_ prefix. */
    if (strcasecmp(name, "Content-Type") == 0)
        return sv_http_param(req->envp, "CONTENT_TYPE");
    if (strcasecmp(name, "Content-Length") == 0)
        return sv_http_param(req->envp, "CONTENT_LENGTH");
    memcpy(key, "HTTP_", 5);
    n = 5;
    for (const char *p = name; *p && n + 1 < sizeof(key); p++)
        key[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    key[n] = '\0';
    return sv_http_param(req->envp, key);
}

const char *sv_request_query_param(const sv_request *req, const char *key)
{
    size_t klen = strlen(key);
    const char *p = req->query;
    while (p != NULL && *p != '\0') {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t namelen = eq ? (size_t)(eq - p) : len;
        char *name = sv_http_url_decode(req->arena, p, namelen, 1);
        if (strlen(name) == klen && memcmp(name, key, klen) == 0) {
            if (eq == NULL)
                return "";
            return sv_http_url_decode(req->arena, eq + 1, len - namelen - 1, 1);
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* The 413 both the size phase and the body reader answer. */
static int sv_request_too_large(sv_request *req, long limit, sv_error *err)
{
    return sv_fail_details(err, 413, "SV413", "Request body too large",
                           sv_arena_printf(req->arena, "The limit is %ld bytes", limit), NULL);
}

int sv_request_check_size(sv_request *req, long limit, sv_error *err)
{
    return req->content_length > limit ? sv_request_too_large(req, limit, err) : SV_OK;
}

int sv_request_read_body(sv_request *req, const sv_io *io, long limit, sv_error *err)
{
    static const char bad[] = "Malformed or truncated request body";

    if (req->content_length == -2)
        return sv_fail(err, 400, "SV400", bad);
    if (req->content_length > limit)
        return sv_request_too_large(req, limit, err);

    /* RFC 3875: no CONTENT_LENGTH means no body; FastCGI servers always
     * send one (nginx buffers chunked uploads to learn it). */
    if (req->content_length <= 0) {
        req->body = sv_arena_strdup(req->arena, "");
        req->body_len = 0;
        return SV_OK;
    }

    size_t want = (size_t)req->content_length;
    char *body = sv_arena_alloc(req->arena, want + 1);
    size_t got = 0;
    while (got < want) {
        size_t chunk = want - got > 65536 ? 65536 : want - got;
        int n = io->read(io->ctx, body + got, (int)chunk);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < want)
        return sv_fail(err, 400, "SV400", bad); /* truncated: the client went away */
    body[got] = '\0';
    req->body = body;
    req->body_len = got;
    return SV_OK;
}

void sv_response_init(sv_response *res, sv_arena *arena)
{
    res->arena = arena;
    res->status = 200;
    res->head_only = 0;
    res->has_content_type = 0;
    res->body_ext = NULL;
    res->body_ext_len = 0;
    res->body_ext_release = NULL;
    res->body_ext_owner = NULL;
    sv_buf_init(&res->headers, arena, 256);
    sv_buf_init(&res->body, arena, 1024);
}

void sv_response_release(sv_response *res)
{
    if (res->body_ext_release != NULL)
        res->body_ext_release(res->body_ext_owner);
    res->body_ext = NULL;
    res->body_ext_len = 0;
    res->body_ext_release = NULL;
    res->body_ext_owner = NULL;
}

void sv_response_body_ext(sv_response *res, const char *data, size_t len,
                          void (*release)(void *owner), void *owner)
{
    sv_response_release(res);
    res->body.len = 0;
    res->body_ext = data;
    res->body_ext_len = len;
    res->body_ext_release = release;
    res->body_ext_owner = owner;
}

size_t sv_response_body_len(const sv_response *res)
{
    return res->body_ext != NULL ? res->body_ext_len : res->body.len;
}

void sv_response_header_long(sv_response *res, const char *name, long n)
{
    char buf[24], *p = buf + sizeof(buf) - 1;
    unsigned long u = n < 0 ? 0UL - (unsigned long)n : (unsigned long)n;
    *p = '\0';
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (n < 0)
        *--p = '-';
    sv_response_header(res, name, p);
}

void sv_response_header(sv_response *res, const char *name, const char *value)
{
    if (strcasecmp(name, "Content-Type") == 0)
        res->has_content_type = 1;
    sv_buf_puts(&res->headers, name);
    sv_buf_puts(&res->headers, ": ");
    /* A header value can never carry a line break into the response:
     * copied in runs between them, which are dropped. */
    for (const char *p = value; *p;) {
        size_t run = strcspn(p, "\r\n");
        sv_buf_append(&res->headers, p, run);
        p += run;
        if (*p)
            p++;
    }
    sv_buf_puts(&res->headers, "\r\n");
}

void sv_response_json(sv_response *res, int status, json_object *obj)
{
    size_t len = 0;
    const char *text = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    res->status = status;
    sv_response_release(res);
    res->body.len = 0;
    sv_buf_append(&res->body, text, len);
    json_object_put(obj);
}

const char *sv_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default:  return "Unknown";
    }
}

/* Decimal digits of v into out (at least 21 bytes); returns the length.
 * Every answer formats two numbers: not worth a printf each. */
static size_t sv_http_format_uint(char *out, unsigned long long v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

int sv_response_send(sv_response *res, const sv_io *io)
{
    sv_buf head;
    sv_buf_init(&head, res->arena, 256 + res->headers.len);
    char num[24];
    sv_buf_puts(&head, "Status: ");
    sv_buf_append(&head, num, sv_http_format_uint(num, (unsigned long long)res->status));
    sv_buf_puts(&head, " ");
    sv_buf_puts(&head, sv_http_reason(res->status));
    sv_buf_puts(&head, "\r\n");
    size_t full_len = sv_response_body_len(res);
    const char *body = res->body_ext != NULL ? res->body_ext : res->body.data;
    if (full_len > 0 || res->status != 204) {
        if (!res->has_content_type)
            sv_buf_puts(&head, "Content-Type: application/json; charset=utf-8\r\n");
        sv_buf_puts(&head, "Content-Length: ");
        sv_buf_append(&head, num, sv_http_format_uint(num, full_len));
        sv_buf_puts(&head, "\r\n");
    }
    sv_buf_append(&head, res->headers.data, res->headers.len);
    sv_buf_puts(&head, "\r\n");
    size_t body_len = res->head_only ? 0 : full_len;
    return io->send(io->ctx, head.data, head.len, body, body_len) == 0 ? SV_OK : SV_ERROR;
}
