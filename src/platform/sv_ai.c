#include "platform/sv_ai.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/sv_clock.h"
#include "core/sv_err.h"
#include "core/sv_json.h"
#include "platform/sv_http_client.h"

static const char sv_ai_system_prompt[] =
    "You improve the metadata of a creator's video or post for search and discovery. "
    "Answer with one JSON object and nothing else: "
    "{\"title\": string of at most 100 characters, "
    "\"description\": string of at most 5000 characters, "
    "\"tags\": array of at most 15 strings of at most 100 characters each}. "
    "Keep the creator's language and meaning; do not invent facts.";

/* Characters (not bytes) of a UTF-8 string. */
static size_t sv_ai_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static int sv_ai_fail(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int sv_ai_fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return SV_ERROR;
}

int sv_ai_validate(const char *content, json_object **suggestion, char *why, size_t whylen)
{
    json_object *o, *v;
    const char *parse_why;

    *suggestion = NULL;
    if (content == NULL || sv_json_parse(content, strlen(content), &o, &parse_why) != SV_OK)
        return sv_ai_fail(why, whylen, "the model's answer is not JSON");
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return sv_ai_fail(why, whylen, "the model's answer is not a JSON object");
    }
    json_object_object_foreach(o, key, val) {
        (void)val;
        if (strcmp(key, "title") != 0 && strcmp(key, "description") != 0 && strcmp(key, "tags") != 0) {
            json_object_put(o);
            return sv_ai_fail(why, whylen, "the model's answer has an unexpected member \"%.40s\"", key);
        }
    }
    static const struct { const char *key; size_t max; } strings[] = {
        { "title", SV_AI_TITLE_MAX }, { "description", SV_AI_DESCRIPTION_MAX } };
    for (size_t i = 0; i < 2; i++) {
        if (!json_object_object_get_ex(o, strings[i].key, &v) || !json_object_is_type(v, json_type_string) ||
            json_object_get_string_len(v) == 0 || sv_ai_chars(json_object_get_string(v)) > strings[i].max) {
            json_object_put(o);
            return sv_ai_fail(why, whylen, "the model's %s is missing, not a string, empty or too long",
                              strings[i].key);
        }
    }
    if (!json_object_object_get_ex(o, "tags", &v) || !json_object_is_type(v, json_type_array) ||
        json_object_array_length(v) > SV_AI_TAGS_MAX) {
        json_object_put(o);
        return sv_ai_fail(why, whylen, "the model's tags are missing, not an array or too many");
    }
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        json_object *t = json_object_array_get_idx(v, i);
        if (!json_object_is_type(t, json_type_string) || json_object_get_string_len(t) == 0 ||
            sv_ai_chars(json_object_get_string(t)) > SV_AI_TAG_MAX) {
            json_object_put(o);
            return sv_ai_fail(why, whylen, "a tag of the model's answer is not a short non-empty string");
        }
    }
    *suggestion = o;
    return SV_OK;
}

/* A chat API answer worth another try: none, 408, 409, 5xx, or a 429
 * that is not the account being out of credit. */
static int sv_ai_retry(const sv_http_result *res, void *arg)
{
    (void)arg;
    if (res->status == 429)
        return res->body == NULL || strstr(res->body, "insufficient_quota") == NULL;
    return res->status == 0 || res->status == 408 || res->status == 409 || res->status >= 500;
}

/* The error message of an error answer ({"error":{"message"}}), or the status. */
static void sv_ai_error(const sv_http_result *res, char *why, size_t whylen)
{
    json_object *o = NULL, *e, *m;
    const char *parse_why;
    if (res->status == 0) {
        snprintf(why, whylen, "the AI endpoint did not answer: %s", res->error ? res->error : "-");
        return;
    }
    if (sv_json_parse(res->body, res->len, &o, &parse_why) == SV_OK &&
        json_object_object_get_ex(o, "error", &e) && json_object_object_get_ex(e, "message", &m) &&
        json_object_is_type(m, json_type_string))
        snprintf(why, whylen, "the AI endpoint answered %ld: %.200s", res->status, json_object_get_string(m));
    else
        snprintf(why, whylen, "the AI endpoint answered %ld", res->status);
    json_object_put(o);
}

/* The suggestion's text from a 200 answer: choices[0].message.content,
 * when the model finished normally and did not refuse. */
static const char *sv_ai_content(json_object *answer, char *why, size_t whylen)
{
    json_object *choices, *c0, *msg, *content, *v;
    if (!json_object_object_get_ex(answer, "choices", &choices) ||
        !json_object_is_type(choices, json_type_array) || json_object_array_length(choices) == 0 ||
        (c0 = json_object_array_get_idx(choices, 0)) == NULL ||
        !json_object_object_get_ex(c0, "message", &msg)) {
        snprintf(why, whylen, "the AI endpoint's answer has no choices[0].message");
        return NULL;
    }
    if (json_object_object_get_ex(c0, "finish_reason", &v) && json_object_is_type(v, json_type_string) &&
        strcmp(json_object_get_string(v), "stop") != 0) {
        snprintf(why, whylen, "the model stopped early (finish_reason %.40s)", json_object_get_string(v));
        return NULL;
    }
    if (json_object_object_get_ex(msg, "refusal", &v) && json_object_is_type(v, json_type_string)) {
        snprintf(why, whylen, "the model refused: %.200s", json_object_get_string(v));
        return NULL;
    }
    if (!json_object_object_get_ex(msg, "content", &content) ||
        !json_object_is_type(content, json_type_string)) {
        snprintf(why, whylen, "the model's answer has no content");
        return NULL;
    }
    return json_object_get_string(content);
}

int sv_ai_suggest(const sv_config *cfg, sv_arena *arena, const char *title, const char *description,
                  json_object *tags, json_object **suggestion, char *why, size_t whylen)
{
    *suggestion = NULL;
    json_object *input = json_object_new_object();
    json_object_object_add(input, "title", title ? json_object_new_string(title) : NULL);
    json_object_object_add(input, "description", description ? json_object_new_string(description) : NULL);
    json_object_object_add(input, "tags", tags ? json_object_get(tags) : json_object_new_array());

    json_object *req = json_object_new_object();
    json_object *messages = json_object_new_array();
    json_object *sys = json_object_new_object(), *user = json_object_new_object();
    json_object_object_add(sys, "role", json_object_new_string("system"));
    json_object_object_add(sys, "content", json_object_new_string(sv_ai_system_prompt));
    json_object_object_add(user, "role", json_object_new_string("user"));
    json_object_object_add(user, "content", json_object_new_string(
        json_object_to_json_string_ext(input, JSON_C_TO_STRING_PLAIN)));
    json_object_array_add(messages, sys);
    json_object_array_add(messages, user);
    json_object_object_add(req, "model", json_object_new_string(cfg->ai_model));
    json_object_object_add(req, "messages", messages);
    json_object *format = json_object_new_object();
    json_object_object_add(format, "type", json_object_new_string("json_object"));
    json_object_object_add(req, "response_format", format);
    json_object_object_add(req, "temperature", json_object_new_double(0.4));
    json_object_put(input);

    char url[1024], auth[600];
    snprintf(url, sizeof(url), "%s/chat/completions", cfg->ai_base_url);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cfg->ai_api_key);
    const char *headers[] = { "Content-Type: application/json", "Accept: application/json",
                              cfg->ai_api_key[0] ? auth : NULL, NULL };
    const char *body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
    sv_http_request fr = { .method = "POST", .url = url, .headers = headers, .body = body,
                           .body_len = strlen(body), .timeout_ms = (long)cfg->http_timeout * 1000,
                           .max_bytes = 1L << 20 };
    sv_http_retry policy = { .attempts = 3, .max_wait_ms = 30000,
                               .deadline_ms = sv_clock_mono_ms() + (long long)cfg->job_time_limit_ai * 1000,
                               .retry = sv_ai_retry };
    sv_http_result res;
    sv_http_client_send_retry(arena, &fr, &policy, &res);
    json_object_put(req);
    /* The key is configuration, not request data, but a copy need not
     * linger on the stack. */
    sodium_memzero(auth, sizeof(auth));

    int rc = SV_ERROR;
    json_object *answer = NULL;
    const char *parse_why;
    if (res.status != 200) {
        sv_ai_error(&res, why, whylen);
    } else if (sv_json_parse(res.body, res.len, &answer, &parse_why) != SV_OK) {
        snprintf(why, whylen, "the AI endpoint's answer is not JSON");
    } else {
        const char *content = sv_ai_content(answer, why, whylen);
        if (content != NULL)
            rc = sv_ai_validate(content, suggestion, why, whylen);
    }
    json_object_put(answer);
    return rc;
}
