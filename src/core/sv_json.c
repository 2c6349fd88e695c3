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

/* 1 when text[0..len) holds the escape \u0000 (a NUL once decoded). A
 * backslash can only start an escape inside a string, and one escape is
 * skipped whole, so "\\u0000" (an escaped backslash, then "u0000") is
 * not one. */
static int sv_json_has_nul_escape(const char *text, size_t len)
{
    const char *p = text, *end = text + len;

    while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
        if (end - p >= 6 && p[1] == 'u' && memcmp(p + 2, "0000", 4) == 0)
            return 1;
        p += 2;
        if (p >= end)
            break;
    }
    return 0;
}

/* The length of the well-formed UTF-8 sequence at s[0..len) (Unicode's
 * table 3-7: no overlong forms such as C0 80 for NUL, no UTF-16
 * surrogates, nothing above U+10FFFF), or 0 when s does not start one.
 * json-c's own check only counts continuation bytes. */
static size_t sv_json_utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 2;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 3;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (len <= n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k <= n; k++)
        if (s[k] < 0x80 || s[k] > 0xbf)
            return 0;
    return n + 1;
}

static int sv_json_utf8_ok(const unsigned char *s, size_t len)
{
    for (size_t i = 0, n; i < len; i += n)
        if ((n = sv_json_utf8_seq(s + i, len - i)) == 0)
            return 0;
    return 1;
}

void sv_json_buf_utf8(sv_buf *buf, const char *text, size_t len, size_t max)
{
    static const char replacement[] = "\xef\xbf\xbd";    /* U+FFFD */
    const unsigned char *s = (const unsigned char *)text;
    size_t used = 0;
    for (size_t i = 0; i < len;) {
        size_t n = sv_json_utf8_seq(s + i, len - i);
        const char *out = n > 0 ? text + i : replacement;
        size_t out_len = n > 0 ? n : sizeof(replacement) - 1;
        if (used + out_len > max)
            break;
        sv_buf_append(buf, out, out_len);
        used += out_len;
        i += n > 0 ? n : 1;
    }
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
    if (!sv_json_utf8_ok((const unsigned char *)text, len)) {
        *why = "invalid UTF-8";
        return SV_ERROR;
    }
    if (sv_json_has_nul_escape(text, len)) {
        *why = "\\u0000 in a string";
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

void sv_json_add_words(json_object *arr, const char *s, const char *seps, size_t max_len, size_t max_items)
{
    while (*s) {
        s += strspn(s, seps);
        size_t n = strcspn(s, seps);
        if (n == 0)
            break;
        if ((max_len == 0 || n <= max_len) && (max_items == 0 || json_object_array_length(arr) < max_items))
            json_object_array_add(arr, json_object_new_string_len(s, (int)n));
        s += n;
    }
}
