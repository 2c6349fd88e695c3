/* The one JSON parser for what clients send (request bodies) and for
 * what must be checked before it is trusted (token payloads). */
#ifndef SV_JSON_H
#define SV_JSON_H

#include <stddef.h>

#include <json-c/json.h>

#include "core/sv_arena.h"

/* Deepest nesting accepted; deeper input is refused, not recursed into. */
#define SV_JSON_MAX_DEPTH 64

/* Parses text[0..len) as exactly one JSON value: json-c's strict mode,
 * well-formed UTF-8 only (no overlong forms or surrogates), at most SV_JSON_MAX_DEPTH deep, nothing but
 * white space after it, and no NUL character anywhere, neither a raw
 * byte nor the escape \u0000 (PostgreSQL could not store one, and C
 * strings would stop at it: json-c keeps "service_role\u0000" whole as
 * a value, which strcmp would then take for "service_role", and cuts an
 * object key at it). Returns SV_OK with *out
 * (the caller puts it), or SV_ERROR with *why: NULL, or a short phrase
 * saying what was wrong, for an error's details. */
int sv_json_parse(const char *text, size_t len, json_object **out, const char **why);

/* The text of a string member: 1 with *s and *len when key is a string,
 * 0 when absent or null, -1 when present with another type. */
int sv_json_string(json_object *obj, const char *key, const char **s, size_t *len);

/* Overwrites every string value in obj (objects and arrays, recursively)
 * with zero bytes, then releases obj: for parsed bodies that carried a
 * secret (a token, a Vault secret). Keys are left alone. NULL is fine. */
void sv_json_put_wiped(json_object *obj);

/* Appends the words of s (runs of characters not in seps) to the array
 * arr as strings, in order; a word longer than max_len is left out, and
 * words stop once arr holds max_items (0: no limit for either). For
 * scope lists, which OAuth writes separated by spaces and some
 * providers by commas. */
void sv_json_add_words(json_object *arr, const char *s, const char *seps, size_t max_len, size_t max_items);

/* Appends text[0..len) to buf as well-formed UTF-8 of at most max bytes:
 * a byte that starts no well-formed sequence becomes U+FFFD (as
 * Haskell's decodeUtf8 makes it in PostgREST's messages), and the text
 * ends before the first character that would pass max, never inside
 * one. For client text quoted in an error message: json-c writes a
 * string's bytes as they are, so a bad byte or half a character there
 * would make the whole answer invalid JSON text. */
void sv_json_buf_utf8(sv_buf *buf, const char *text, size_t len, size_t max);

#endif
