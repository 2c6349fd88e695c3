#include "core/sv_json.h"

#include <string.h>

#include <sodium.h>

#include "core/sv_err.h"

/* The value json-c makes of text[0..len) in strict mode, or NULL. */
static json_object *sv_json_strict(const char *text, size_t len, enum json_tokener_error *jerr,
                                   size_t *used)
{
    json_tokener *tok = json_tokener_new_ex(SV_JSON_MAX_DEPTH);
    if (tok == NULL) {
        *jerr = json_tokener_error_size;
        *used = 0;
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
    /* A bare number is complete only once the tokener sees the end. */
    if (obj == NULL && json_tokener_get_error(tok) == json_tokener_continue)
        obj = json_tokener_parse_ex(tok, "", 1);
    *jerr = json_tokener_get_error(tok);
    *used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (obj != NULL && *jerr != json_tokener_success) {
        json_object_put(obj);
        obj = NULL;
    }
    return obj;
}

int sv_json_parse(const char *text, size_t len, json_object **out, const char **why)
{
    *out = NULL;
    *why = NULL;
    if (len == 0 || len > (size_t)0x7fffffff)
        return SV_ERROR;
    if (memchr(text, '\0', len) != NULL) {
        *why = "NUL byte in body";
        return SV_ERROR;
    }
    enum json_tokener_error jerr;
    size_t used;
    json_object *obj = sv_json_strict(text, len, &jerr, &used);
    if (obj == NULL) {
        /* Strict mode stops at the first byte after a complete value:
         * say so when what came before it parses alone. */
        json_object *head = NULL;
        size_t head_used;
        if (jerr == json_tokener_error_parse_unexpected && used > 0 && used < len &&
            (head = sv_json_strict(text, used, &jerr, &head_used)) != NULL)
            *why = "trailing data";
        json_object_put(head);
        return SV_ERROR;
    }
    *out = obj;
    return SV_OK;
}

int sv_json_string(json_object *obj, const char *key, const char **s, size_t *len)
{
    json_object *v;

    *s = NULL;
    if (len != NULL)
        *len = 0;
    if (!json_object_object_get_ex(obj, key, &v) || v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return -1;
    *s = json_object_get_string(v);
    if (len != NULL)
        *len = (size_t)json_object_get_string_len(v);
    return 1;
}

static void sv_json_wipe(json_object *obj, int depth)
{
    if (obj == NULL || depth > SV_JSON_MAX_DEPTH + 1)
        return;
    switch (json_object_get_type(obj)) {
    case json_type_string:
        sodium_memzero((char *)json_object_get_string(obj), (size_t)json_object_get_string_len(obj));
        break;
    case json_type_object: {
        json_object_object_foreach(obj, key, val) {
            (void)key;
            sv_json_wipe(val, depth + 1);
        }
        break;
    }
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(obj); i++)
            sv_json_wipe(json_object_array_get_idx(obj, i), depth + 1);
        break;
    default:
        break;
    }
}

void sv_json_put_wiped(json_object *obj)
{
    sv_json_wipe(obj, 0);
    json_object_put(obj);
}
