#include "platform/sv_indexnow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core/sv_clock.h"
#include "core/sv_err.h"
#include "platform/sv_http_client.h"

int sv_indexnow_key_valid(const char *key)
{
    size_t n = key ? strlen(key) : 0;
    if (n < 8 || n > 128)
        return 0;
    return strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") == n;
}

char *sv_indexnow_url(const sv_config *cfg, const char *content_id)
{
    const char *tpl = cfg->indexnow_url_template;
    const char *at = strstr(tpl, "{id}");
    if (at == NULL)
        return NULL;
    size_t len = strlen(tpl) - 4 + strlen(content_id) + 1;
    char *url = malloc(len);
    if (url != NULL)
        snprintf(url, len, "%.*s%s%s", (int)(at - tpl), tpl, content_id, at + 4);
    return url;
}

/* The host of url, for the request's "host" member (malloc'd), or NULL. */
static char *sv_indexnow_host(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL, *copy = NULL;
    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        copy = strdup(host);
        curl_free(host);
    }
    curl_url_cleanup(u);
    return copy;
}

static const char *sv_indexnow_outcome(long status)
{
    switch (status) {
    case 200: return "submitted";
    case 202: return "accepted";
    case 400: return "failed: bad request";
    case 403: return "failed: key not valid (the engine could not read the key file)";
    case 422: return "failed: URLs not on the key's host";
    case 429: return "failed: rate limited";
    case 0: return "failed: no answer";
    default: return status >= 500 ? "failed: engine error" : "failed: unexpected answer";
    }
}

int sv_indexnow_submit(const sv_config *cfg, sv_arena *arena, char *const *urls, size_t n,
                       json_object **results, char *why, size_t whylen)
{
    *results = json_object_new_array();
    char *host = n > 0 ? sv_indexnow_host(urls[0]) : NULL;
    if (host == NULL) {
        snprintf(why, whylen, "no URL to submit, or indexnow_url_template has no host");
        return SV_ERROR;
    }
    char location[1200];
    if (cfg->indexnow_key_location[0] != '\0')
        snprintf(location, sizeof(location), "%s", cfg->indexnow_key_location);
    else
        snprintf(location, sizeof(location), "https://%s/%s.txt", host, cfg->indexnow_key);

    int rc = SV_OK;
    for (size_t first = 0; first < n; first += SV_INDEXNOW_BATCH) {
        size_t count = n - first < SV_INDEXNOW_BATCH ? n - first : SV_INDEXNOW_BATCH;
        json_object *req = json_object_new_object(), *list = json_object_new_array();
        json_object_object_add(req, "host", json_object_new_string(host));
        json_object_object_add(req, "key", json_object_new_string(cfg->indexnow_key));
        json_object_object_add(req, "keyLocation", json_object_new_string(location));
        for (size_t i = 0; i < count; i++)
            json_object_array_add(list, json_object_new_string(urls[first + i]));
        json_object_object_add(req, "urlList", list);
        const char *body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN |
                                                                   JSON_C_TO_STRING_NOSLASHESCAPE);
        const char *headers[] = { "Content-Type: application/json; charset=utf-8", NULL };
        sv_http_request fr = { .method = "POST", .url = cfg->indexnow_url, .headers = headers,
                                .body = body, .body_len = strlen(body),
                                .timeout_ms = (long)cfg->http_timeout * 1000 };
        sv_http_retry policy = { .attempts = 3, .max_wait_ms = 30000,
                                   .deadline_ms = sv_clock_mono_ms() + (long long)cfg->job_time_limit_seo * 1000,
                                   .retry = sv_http_client_transient };
        sv_http_result res;
        sv_http_client_send_retry(arena, &fr, &policy, &res);
        const char *outcome = sv_indexnow_outcome(res.status);
        for (size_t i = 0; i < count; i++) {
            json_object *r = json_object_new_object();
            json_object_object_add(r, "url", json_object_new_string(urls[first + i]));
            json_object_object_add(r, "status", json_object_new_int((int)res.status));
            json_object_object_add(r, "outcome", json_object_new_string(outcome));
            json_object_array_add(*results, r);
        }
        if (res.status != 200 && res.status != 202) {
            rc = SV_ERROR;
            snprintf(why, whylen, "IndexNow answered %ld: %s", res.status, outcome);
        }
        json_object_put(req);
    }
    free(host);
    return rc;
}
