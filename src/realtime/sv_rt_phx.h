/* Phoenix channel messages in the two serializers realtime-js
 * negotiates with the vsn query parameter:
 *   1.0.0  {"topic":..,"event":..,"payload":..,"ref":..,"join_ref":..}
 *   2.0.0  [join_ref, ref, topic, event, payload]
 * Pure code (text in, fields out; fields in, text out). */
#ifndef SV_RT_PHX_H
#define SV_RT_PHX_H

#include <stddef.h>

#include <json-c/json.h>

#include "core/sv_arena.h"

/* refs longer than this are refused (they are echoed and stored). */
#define SV_RT_MAX_REF 64
/* topics longer than this are refused. */
#define SV_RT_MAX_TOPIC 255

typedef struct sv_rt_msg {
    json_object *root;          /* owns everything below */
    const char  *topic;
    const char  *event;
    json_object *payload;       /* an object */
    /* The refs as JSON text to echo ("\"6\"", "7" or "null"), in the
     * arena given to sv_rt_phx_decode; and as plain strings (NULL when
     * absent or null). */
    const char  *ref_json;
    const char  *join_ref_json;
    const char  *ref;
    const char  *join_ref;
} sv_rt_msg;

/* Decodes one text message of serializer vsn (1 or 2). Returns 0, or -1
 * with *why (static text). Free with sv_rt_phx_msg_free. */
int sv_rt_phx_decode(sv_arena *arena, int vsn, const char *text, size_t len, sv_rt_msg *m,
                     const char **why);
void sv_rt_phx_msg_free(sv_rt_msg *m);

/* Appends one server message to out. join_ref_json and ref_json are JSON
 * values (NULL means null), topic_json a JSON string, event a plain
 * event name, payload JSON text. vsn 1 leaves join_ref out, as Phoenix's
 * V1 serializer does. */
void sv_rt_phx_encode(sv_buf *out, int vsn, const char *join_ref_json, const char *ref_json,
                      const char *topic_json, const char *event, const char *payload);

/* The same in two halves, for a payload the caller appends in between:
 * everything up to the payload, then everything after it. */
void sv_rt_phx_encode_head(sv_buf *out, int vsn, const char *join_ref_json, const char *ref_json,
                           const char *topic_json, const char *event);
void sv_rt_phx_encode_tail(sv_buf *out, int vsn, const char *ref_json);

#endif
