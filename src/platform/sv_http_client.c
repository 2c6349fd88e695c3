#include "platform/sv_http_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "config.h"
#include "core/sv_clock.h"
#include "core/sv_err.h"

#define SV_HTTP_USER_AGENT "streamvibe/" PACKAGE_VERSION

int sv_http_client_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? SV_OK : SV_ERROR;
}

void sv_http_form_init(sv_http_form *f, sv_arena *arena)
{
    f->arena = arena;
    f->cap = 512;
    f->data = sv_arena_secret_alloc(arena, f->cap);
    f->len = 0;
}

/* Makes room for need bytes in the secret buffer *buf of *cap bytes, of
 * which len are used: a fresh secret allocation, doubled until it fits,
 * and the outgrown one wiped at once rather than with the arena. */
static void sv_http_secret_grow(sv_arena *arena, char **buf, size_t *cap, size_t len, size_t need)
{
    if (need <= *cap)
        return;
    size_t ncap = *cap * 2;
    while (ncap < need)
        ncap *= 2;
    char *data = sv_arena_secret_alloc(arena, ncap);
    memcpy(data, *buf, len);
    sodium_memzero(*buf, *cap);
    *buf = data;
    *cap = ncap;
}

static void sv_http_form_reserve(sv_http_form *f, size_t extra)
{
    sv_http_secret_grow(f->arena, &f->data, &f->cap, f->len, f->len + extra + 1);
}

static int sv_http_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Percent-encodes s (all but RFC 3986's unreserved characters) into out,
 * which has room for 3 * strlen(s) + 1 bytes. Returns the length written
 * (out is NUL-terminated). */
static size_t sv_http_percent_encode(char *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (sv_http_unreserved(*p)) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return (size_t)(o - out);
}

static void sv_http_form_escape(sv_http_form *f, const char *s)
{
    sv_http_form_reserve(f, 3 * strlen(s));
    f->len += sv_http_percent_encode(f->data + f->len, s);
}

void sv_http_form_add(sv_http_form *f, const char *name, const char *value)
{
    if (value == NULL)
        return;
    if (f->len > 0) {
        sv_http_form_reserve(f, 1);
        f->data[f->len++] = '&';
    }
    sv_http_form_escape(f, name);
    sv_http_form_reserve(f, 1);
    f->data[f->len++] = '=';
    sv_http_form_escape(f, value);
}

char *sv_http_client_escape(sv_arena *arena, const char *s)
{
    char *out = sv_arena_alloc(arena, 3 * strlen(s) + 1);
    sv_http_percent_encode(out, s);
    return out;
}

/* The answer, in secret arena allocations that grow by doubling (the
 * outgrown one is wiped at once). */
typedef struct sv_http_sink {
    sv_arena *arena;
    char     *buf;
    size_t    len, cap, max;
    int       too_large;
} sv_http_sink;

static size_t sv_http_write(char *data, size_t size, size_t n, void *arg)
{
    sv_http_sink *sink = arg;
    size_t bytes = size * n;
    if (sink->len + bytes > sink->max) {
        sink->too_large = 1;
        return 0;   /* aborts the transfer */
    }
    sv_http_secret_grow(sink->arena, &sink->buf, &sink->cap, sink->len, sink->len + bytes + 1);
    memcpy(sink->buf + sink->len, data, bytes);
    sink->len += bytes;
    return bytes;
}

/* Retry-After (delta seconds or an HTTP-date) and OpenAI's retry-after-ms. */
static size_t sv_http_header(char *line, size_t size, size_t n, void *arg)
{
    sv_http_result *res = arg;
    size_t len = size * n;
    char value[128];

    if (len > 15 && strncasecmp(line, "retry-after-ms:", 15) == 0) {
        snprintf(value, sizeof(value), "%.*s", (int)(len - 15), line + 15);
        res->retry_after_ms = (long)strtod(value, NULL);
    } else if (len > 12 && strncasecmp(line, "retry-after:", 12) == 0 && res->retry_after_ms < 0) {
        snprintf(value, sizeof(value), "%.*s", (int)(len - 12), line + 12);
        char *end;
        double secs = strtod(value, &end);
        if (end != value) {
            res->retry_after_ms = (long)(secs * 1000);
        } else {
            time_t when = curl_getdate(value, NULL);
            if (when > 0)
                res->retry_after_ms = (long)(when - time(NULL)) * 1000;
        }
        if (res->retry_after_ms < 0)
            res->retry_after_ms = 0;
    }
    return len;
}

int sv_http_client_send(sv_arena *arena, const sv_http_request *req, sv_http_result *res)
{
    sv_http_sink sink = { .arena = arena, .cap = 16384,
                          .max = req->max_bytes ? req->max_bytes : SV_HTTP_CLIENT_MAX_BODY };
    int64_t started = sv_clock_mono_ms();
    const char *method = req->method ? req->method : "GET";

    memset(res, 0, sizeof(*res));
    res->retry_after_ms = -1;
    sink.buf = sv_arena_secret_alloc(arena, sink.cap);
    sink.buf[0] = '\0';
    res->body = sink.buf;
    CURL *curl = curl_easy_init();
    if (curl == NULL) {
        res->error = "cannot start an HTTP client";
        return SV_ERROR;
    }
    struct curl_slist *headers = NULL;
    for (const char *const *h = req->headers; h != NULL && *h != NULL; h++)
        headers = curl_slist_append(headers, *h);
    curl_easy_setopt(curl, CURLOPT_URL, req->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, req->timeout_ms < 5000 ? req->timeout_ms : 5000L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, SV_HTTP_USER_AGENT);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (strcmp(method, "GET") != 0)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (req->body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)sink.max);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sv_http_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, sv_http_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, res);
    /* No proxy from the environment: the worker's environment is not the
     * operator's shell (httpoxy). */
    curl_easy_setopt(curl, CURLOPT_PROXY, "");

    CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res->status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    res->duration_ms = (long)(sv_clock_mono_ms() - started);
    res->body = sink.buf;
    sink.buf[sink.len] = '\0';
    res->len = sink.len;
    if (rc == CURLE_OK)
        return SV_OK;
    res->status = 0;
    res->len = 0;
    sink.buf[0] = '\0';
    res->error = sink.too_large || rc == CURLE_FILESIZE_EXCEEDED ? "answer too large"
                 : rc == CURLE_OPERATION_TIMEDOUT                ? "timed out"
                 : rc == CURLE_COULDNT_CONNECT                   ? "connection refused"
                 : rc == CURLE_COULDNT_RESOLVE_HOST              ? "cannot resolve host"
                 : rc == CURLE_PEER_FAILED_VERIFICATION          ? "TLS certificate not trusted"
                 : rc == CURLE_UNSUPPORTED_PROTOCOL              ? "URL scheme not allowed"
                                                                 : curl_easy_strerror(rc);
    return SV_ERROR;
}

int sv_http_client_post_form(sv_arena *arena, const char *url, const sv_http_form *form,
                             long timeout_ms, sv_http_result *res)
{
    static const char *const headers[] = { "Accept: application/json",
                                           "Content-Type: application/x-www-form-urlencoded", NULL };
    sv_http_request req = { .method = "POST", .url = url, .headers = headers, .body = form->data,
                            .body_len = form->len, .timeout_ms = timeout_ms };
    return sv_http_client_send(arena, &req, res);
}

int sv_http_client_transient(const sv_http_result *res, void *arg)
{
    (void)arg;
    return res->status == 0 || res->status == 408 || res->status == 429 || res->status >= 500;
}

int sv_http_client_send_retry(sv_arena *arena, const sv_http_request *req,
                              const sv_http_retry *policy, sv_http_result *res)
{
    long backoff = 500;
    for (int attempt = 1;; attempt++) {
        int rc = sv_http_client_send(arena, req, res);
        if (attempt >= policy->attempts || !policy->retry(res, policy->arg) ||
            res->retry_after_ms > policy->max_wait_ms)
            return rc;
        long wait = res->retry_after_ms >= 0 ? res->retry_after_ms : backoff;
        if (sv_clock_mono_ms() + wait >= policy->deadline_ms)
            return rc;
        struct timespec ts = { wait / 1000, (wait % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        backoff *= 2;
    }
}
