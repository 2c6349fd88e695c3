#include "platform/sv_fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "config.h"
#include "core/sv_clock.h"

#define SV_FETCH_DEFAULT_TIMEOUT_MS 30000L
#define SV_FETCH_DEFAULT_MAX (4UL << 20)

int sv_fetch_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? SV_OK : SV_ERROR;
}

typedef struct sv_fetch_sink {
    sv_fetch_response *res;
    size_t             cap;
    size_t             max;
    int                over;
} sv_fetch_sink;

static size_t sv_fetch_body(char *data, size_t size, size_t n, void *arg)
{
    sv_fetch_sink *sink = arg;
    size_t len = size * n;
    sv_fetch_response *res = sink->res;

    if (res->body_len + len > sink->max) {
        sink->over = 1;
        return 0; /* makes libcurl fail the transfer */
    }
    if (res->body_len + len + 1 > sink->cap) {
        size_t cap = sink->cap ? sink->cap : 4096;
        while (cap < res->body_len + len + 1)
            cap *= 2;
        char *grown = realloc(res->body, cap);
        if (grown == NULL)
            return 0;
        res->body = grown;
        sink->cap = cap;
    }
    memcpy(res->body + res->body_len, data, len);
    res->body_len += len;
    res->body[res->body_len] = '\0';
    return len;
}

/* Retry-After (delta seconds or an HTTP-date) and OpenAI's retry-after-ms. */
static size_t sv_fetch_header(char *line, size_t size, size_t n, void *arg)
{
    sv_fetch_response *res = arg;
    size_t len = size * n;
    char value[128];

    if (len > 15 && strncasecmp(line, "retry-after-ms:", 15) == 0) {
        snprintf(value, sizeof(value), "%.*s", (int)(len - 15), line + 15);
        res->retry_after_ms = (long)(strtod(value, NULL));
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

int sv_fetch(const sv_fetch_request *req, sv_fetch_response *res)
{
    memset(res, 0, sizeof(*res));
    res->retry_after_ms = -1;
    CURL *curl = curl_easy_init();
    if (curl == NULL) {
        snprintf(res->error, sizeof(res->error), "out of memory");
        return SV_ERROR;
    }
    sv_fetch_sink sink = { res, 0, req->max_bytes ? req->max_bytes : SV_FETCH_DEFAULT_MAX, 0 };
    struct curl_slist *headers = NULL;
    for (const char *const *h = req->headers; h != NULL && *h != NULL; h++)
        headers = curl_slist_append(headers, *h);
    const char *method = req->method ? req->method : "GET";
    long timeout = req->timeout_ms > 0 ? req->timeout_ms : SV_FETCH_DEFAULT_TIMEOUT_MS;

    curl_easy_setopt(curl, CURLOPT_URL, req->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout < 10000 ? timeout : 10000L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sv_fetch_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, sv_fetch_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, res);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    if (strcmp(method, "GET") != 0)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (req->body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res->status);
    } else {
        res->status = 0;
        snprintf(res->error, sizeof(res->error), "%s",
                 sink.over ? "answer larger than the limit" : curl_easy_strerror(rc));
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (res->body == NULL && (res->body = calloc(1, 1)) == NULL)
        res->status = 0;
    return res->status != 0 ? SV_OK : SV_ERROR;
}

void sv_fetch_free(sv_fetch_response *res)
{
    free(res->body);
    res->body = NULL;
    res->body_len = 0;
}

int sv_fetch_transient(const sv_fetch_response *res, void *arg)
{
    (void)arg;
    return res->status == 0 || res->status == 408 || res->status == 429 || res->status >= 500;
}

int sv_fetch_retry(const sv_fetch_request *req, const sv_fetch_policy *policy,
                   sv_fetch_response *res)
{
    long backoff = 500;
    for (int attempt = 1;; attempt++) {
        int rc = sv_fetch(req, res);
        if (attempt >= policy->attempts || !policy->retry(res, policy->arg))
            return rc;
        /* A server asking for longer than we may wait will not take
         * the next attempt either. */
        if (res->retry_after_ms > policy->max_wait_ms)
            return rc;
        long wait = res->retry_after_ms >= 0 ? res->retry_after_ms : backoff;
        if (sv_clock_mono_ms() + wait >= policy->deadline_ms)
            return rc;
        struct timespec ts = { wait / 1000, (wait % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        backoff *= 2;
        sv_fetch_free(res);
    }
}
