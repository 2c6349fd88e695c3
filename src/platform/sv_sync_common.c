#include "platform/sv_sync_common.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/sv_clock.h"
#include "core/sv_err.h"
#include "core/sv_json.h"

/* Attempts of one call (the first and its retries), and the longest
 * Retry-After a call waits for: a platform asking for more is refused
 * for now, and the job fails (and is refunded) rather than sleep. */
#define SV_SYNC_ATTEMPTS 4
#define SV_SYNC_MAX_WAIT_MS 60000

json_object *sv_sync_get(json_object *o, const char *key)
{
    json_object *v;
    return o != NULL && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v)
               ? v
               : NULL;
}

const char *sv_sync_str(json_object *o, const char *key)
{
    json_object *v = sv_sync_get(o, key);
    return v != NULL && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

long long sv_sync_count(json_object *o, const char *key)
{
    json_object *v = sv_sync_get(o, key);
    if (v == NULL)
        return -1;
    if (json_object_is_type(v, json_type_int)) {
        long long n = (long long)json_object_get_int64(v);
        return n >= 0 ? n : -1;
    }
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        char *end;
        if (*s < '0' || *s > '9')
            return -1;
        long long n = strtoll(s, &end, 10);
        return *end == '\0' && n >= 0 ? n : -1;
    }
    return -1;
}

json_object *sv_sync_item(const char *id, const char *content_type)
{
    json_object *item = json_object_new_object();
    json_object_object_add(item, "platform_content_id", json_object_new_string(id));
    json_object_object_add(item, "content_type", content_type ? json_object_new_string(content_type) : NULL);
    static const char *const keys[] = { "title", "description", "content_url", "thumbnail_url",
                                        "published_at", "tags", "duration_seconds", "view_count",
                                        "like_count", "comment_count" };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        json_object_object_add(item, keys[i], NULL);
    return item;
}

void sv_sync_set_str(json_object *item, const char *key, const char *value)
{
    json_object_object_add(item, key, value ? json_object_new_string(value) : NULL);
}

void sv_sync_set_int(json_object *item, const char *key, long long value)
{
    json_object_object_add(item, key, value >= 0 ? json_object_new_int64(value) : NULL);
}

json_object *sv_sync_hashtags(const char *text)
{
    json_object *tags = json_object_new_array();
    for (const char *p = text ? text : ""; *p && json_object_array_length(tags) < 30; p++) {
        if (*p != '#')
            continue;
        const char *start = p + 1, *end = start;
        /* letters, digits, _ and any non-ASCII byte (UTF-8 letters) */
        while (*end && (isalnum((unsigned char)*end) || *end == '_' || (unsigned char)*end >= 0x80))
            end++;
        if (end > start && end - start <= 100) {
            char tag[101];
            size_t n = (size_t)(end - start);
            for (size_t i = 0; i < n; i++)
                tag[i] = (char)tolower((unsigned char)start[i]);
            tag[n] = '\0';
            int dup = 0;
            for (size_t i = 0; i < json_object_array_length(tags) && !dup; i++)
                dup = strcmp(json_object_get_string(json_object_array_get_idx(tags, i)), tag) == 0;
            if (!dup)
                json_object_array_add(tags, json_object_new_string(tag));
        }
        p = end - 1;
    }
    return tags;
}

char *sv_sync_first_line(sv_arena *arena, const char *text, size_t max)
{
    if (text == NULL)
        return NULL;
    text += strspn(text, " \t\r\n");
    size_t len = strcspn(text, "\r\n"), chars = 0, i = 0;
    for (; i < len; i++) {
        if (((unsigned char)text[i] & 0xc0) != 0x80 && ++chars > max)
            break;
    }
    while (i > 0 && (text[i - 1] == ' ' || text[i - 1] == '\t'))
        i--;
    return i == 0 ? NULL : sv_arena_strndup(arena, text, i);
}

int sv_sync_deliver(sv_sync_run *run, json_object *page, int last, char *why, size_t whylen)
{
    int rc = run->page(run->arg, page, why, whylen);
    json_object_put(page);
    if (rc != SV_OK)
        return SV_ERROR;
    if (last)
        run->complete = 1;
    return SV_OK;
}

int sv_sync_may_continue(sv_sync_run *run)
{
    if (run->pages >= run->max_pages) {
        run->stopped = "page_limit";
        return 0;
    }
    if (sv_clock_mono_ms() >= run->deadline_ms) {
        run->stopped = "deadline";
        return 0;
    }
    return 1;
}

typedef struct sv_sync_retry_arg {
    const sv_sync_api *api;
} sv_sync_retry_arg;

static int sv_sync_retry(const sv_http_result *res, void *arg)
{
    const sv_sync_api *api = ((sv_sync_retry_arg *)arg)->api;
    if (res->status == 0 || res->status == 408 || res->status == 429 || res->status >= 500)
        return 1;
    if (res->status == 200)
        return 0;
    json_object *body = NULL;
    const char *why;
    sv_json_parse(res->body, res->len, &body, &why);
    int again = api->transient != NULL && api->transient(res, body);
    json_object_put(body);
    return again;
}

/* "YouTube answered 403 (quotaExceeded): The request cannot …" from the
 * error body the three APIs share the outline of:
 * {"error":{"message","code","errors":[{"reason"}]}}. */
static void sv_sync_error_text(const sv_sync_api *api, const sv_http_result *res, json_object *body,
                               char *why, size_t whylen)
{
    if (res->status == 0) {
        snprintf(why, whylen, "%s did not answer: %s", api->name, res->error ? res->error : "no answer");
        return;
    }
    json_object *err = sv_sync_get(body, "error");
    const char *msg = sv_sync_str(err, "message");
    json_object *errors = sv_sync_get(err, "errors");
    const char *reason = errors && json_object_is_type(errors, json_type_array) &&
                                 json_object_array_length(errors) > 0
                             ? sv_sync_str(json_object_array_get_idx(errors, 0), "reason")
                             : NULL;
    json_object *code = sv_sync_get(err, "code");
    char codebuf[64] = "";
    if (reason != NULL)
        snprintf(codebuf, sizeof(codebuf), " (%.50s)", reason);
    else if (code != NULL && (json_object_is_type(code, json_type_string) || json_object_is_type(code, json_type_int)))
        snprintf(codebuf, sizeof(codebuf), " (%.50s)", json_object_get_string(code));
    if (body == NULL)
        snprintf(why, whylen, "%s answered %ld with something that is not JSON", api->name, res->status);
    else
        snprintf(why, whylen, "%s answered %ld%s%s%.200s", api->name, res->status, codebuf, msg ? ": " : "",
                 msg ? msg : "");
}

int sv_sync_call(sv_sync_run *run, const sv_sync_api *api, sv_arena *arena, const char *method,
                 const char *url, const char *body, json_object **answer, char *why, size_t whylen)
{
    *answer = NULL;
    const char *token = run->token(run->arg, NULL, why, whylen);
    if (token == NULL)
        return SV_ERROR;
    for (int round = 0;; round++) {
        long long left = run->deadline_ms - sv_clock_mono_ms();
        if (left <= 0) {
            snprintf(why, whylen, "the sync ran out of time waiting for %s", api->name);
            return SV_ERROR;
        }
        size_t alen = strlen(token) + sizeof("Authorization: Bearer ");
        char *auth = sv_arena_secret_alloc(arena, alen);
        snprintf(auth, alen, "Authorization: Bearer %s", token);
        const char *headers[] = { auth, "Accept: application/json",
                                  body ? "Content-Type: application/json" : NULL, NULL };
        long timeout = (long)run->cfg->http_timeout * 1000;
        sv_http_request req = { .method = method, .url = url, .headers = headers, .body = body,
                                .body_len = body ? strlen(body) : 0,
                                .timeout_ms = timeout < left ? timeout : (long)left,
                                .max_bytes = SV_SYNC_MAX_ANSWER };
        sv_sync_retry_arg ra = { api };
        sv_http_retry policy = { .attempts = SV_SYNC_ATTEMPTS, .max_wait_ms = SV_SYNC_MAX_WAIT_MS,
                                 .deadline_ms = run->deadline_ms, .retry = sv_sync_retry, .arg = &ra };
        sv_http_result res;
        sv_http_client_send_retry(arena, &req, &policy, &res);
        sodium_memzero(auth, alen);
        run->calls++;   /* counts exchanges that ended the retries; enough for the result */

        json_object *parsed = NULL;
        const char *pwhy;
        if (res.status != 0 && res.len > 0)
            sv_json_parse(res.body, res.len, &parsed, &pwhy);
        if (res.status == 200) {
            if (parsed == NULL || !json_object_is_type(parsed, json_type_object)) {
                json_object_put(parsed);
                snprintf(why, whylen, "%s answered 200 with something that is not a JSON object", api->name);
                return SV_ERROR;
            }
            *answer = parsed;
            return SV_OK;
        }
        if (round == 0 && !run->refreshed && api->token_rejected(&res, parsed)) {
            json_object_put(parsed);
            /* Once per run: a platform that refuses a token just issued
             * will refuse the next one too. */
            run->refreshed = 1;
            token = run->token(run->arg, token, why, whylen);
            if (token == NULL)
                return SV_ERROR;
            continue;
        }
        sv_sync_error_text(api, &res, parsed, why, whylen);
        if (res.status == 429 && res.retry_after_ms > SV_SYNC_MAX_WAIT_MS) {
            size_t n = strlen(why);
            snprintf(why + n, whylen - n, " (it asks to wait %ld s)", res.retry_after_ms / 1000);
        }
        json_object_put(parsed);
        return SV_ERROR;
    }
}
