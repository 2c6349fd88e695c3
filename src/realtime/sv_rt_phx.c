#include "realtime/sv_rt_phx.h"

#include <string.h>

#include "core/sv_err.h"
#include "core/sv_json.h"

void sv_rt_phx_msg_free(sv_rt_msg *m)
{
    if (m->root != NULL)
        json_object_put(m->root);
    memset(m, 0, sizeof(*m));
}

/* A ref: a string, a number or null. Fills *json (arena) and *plain. */
static int sv_rt_phx_ref(sv_arena *arena, json_object *v, const char **json, const char **plain)
{
    *json = "null";
    *plain = NULL;
    if (v == NULL || json_object_is_type(v, json_type_null))
        return 0;
    if (!json_object_is_type(v, json_type_string) && !json_object_is_type(v, json_type_int))
        return -1;
    const char *s = json_object_get_string(v);
    if (strlen(s) > SV_RT_MAX_REF)
        return -1;
    *plain = s;
    *json = sv_arena_strdup(arena, json_object_to_json_string_ext(
                                       v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    return 0;
}

int sv_rt_phx_decode(sv_arena *arena, int vsn, const char *text, size_t len, sv_rt_msg *m,
                     const char **why)
{
    json_object *join_ref = NULL, *ref = NULL, *topic = NULL, *event = NULL, *payload = NULL;
    const char *jwhy = NULL;

    memset(m, 0, sizeof(*m));
    if (sv_json_parse(text, len, &m->root, &jwhy) != SV_OK) {
        *why = "not JSON";
        return -1;
    }
    if (vsn == 2) {
        if (!json_object_is_type(m->root, json_type_array) || json_object_array_length(m->root) < 5) {
            *why = "expected [join_ref, ref, topic, event, payload]";
            goto fail;
        }
        join_ref = json_object_array_get_idx(m->root, 0);
        ref = json_object_array_get_idx(m->root, 1);
        topic = json_object_array_get_idx(m->root, 2);
        event = json_object_array_get_idx(m->root, 3);
        payload = json_object_array_get_idx(m->root, 4);
    } else {
        if (!json_object_is_type(m->root, json_type_object)) {
            *why = "expected {topic, event, payload, ref}";
            goto fail;
        }
        json_object_object_get_ex(m->root, "join_ref", &join_ref);
        json_object_object_get_ex(m->root, "ref", &ref);
        json_object_object_get_ex(m->root, "topic", &topic);
        json_object_object_get_ex(m->root, "event", &event);
        json_object_object_get_ex(m->root, "payload", &payload);
    }
    if (topic == NULL || !json_object_is_type(topic, json_type_string) ||
        json_object_get_string_len(topic) > SV_RT_MAX_TOPIC) {
        *why = "topic must be a string";
        goto fail;
    }
    if (event == NULL || !json_object_is_type(event, json_type_string) ||
        json_object_get_string_len(event) == 0 || json_object_get_string_len(event) > 64) {
        *why = "event must be a string";
        goto fail;
    }
    if (payload != NULL && json_object_is_type(payload, json_type_null))
        payload = NULL;
    if (payload != NULL && !json_object_is_type(payload, json_type_object)) {
        *why = "payload must be an object";
        goto fail;
    }
    if (sv_rt_phx_ref(arena, ref, &m->ref_json, &m->ref) != 0 ||
        sv_rt_phx_ref(arena, join_ref, &m->join_ref_json, &m->join_ref) != 0) {
        *why = "ref and join_ref must be short strings";
        goto fail;
    }
    m->topic = json_object_get_string(topic);
    m->event = json_object_get_string(event);
    m->payload = payload;
    return 0;
fail:
    sv_rt_phx_msg_free(m);
    return -1;
}

void sv_rt_phx_encode_head(sv_buf *out, int vsn, const char *join_ref_json, const char *ref_json,
                           const char *topic_json, const char *event)
{
    if (vsn == 2) {
        sv_buf_puts(out, "[");
        sv_buf_puts(out, join_ref_json ? join_ref_json : "null");
        sv_buf_puts(out, ",");
        sv_buf_puts(out, ref_json ? ref_json : "null");
        sv_buf_puts(out, ",");
        sv_buf_puts(out, topic_json);
        sv_buf_puts(out, ",\"");
        sv_buf_puts(out, event);
        sv_buf_puts(out, "\",");
    } else {
        sv_buf_puts(out, "{\"topic\":");
        sv_buf_puts(out, topic_json);
        sv_buf_puts(out, ",\"event\":\"");
        sv_buf_puts(out, event);
        sv_buf_puts(out, "\",\"payload\":");
    }
}

void sv_rt_phx_encode_tail(sv_buf *out, int vsn, const char *ref_json)
{
    if (vsn == 2) {
        sv_buf_puts(out, "]");
    } else {
        sv_buf_puts(out, ",\"ref\":");
        sv_buf_puts(out, ref_json ? ref_json : "null");
        sv_buf_puts(out, "}");
    }
}

void sv_rt_phx_encode(sv_buf *out, int vsn, const char *join_ref_json, const char *ref_json,
                      const char *topic_json, const char *event, const char *payload)
{
    sv_rt_phx_encode_head(out, vsn, join_ref_json, ref_json, topic_json, event);
    sv_buf_puts(out, payload);
    sv_rt_phx_encode_tail(out, vsn, ref_json);
}
