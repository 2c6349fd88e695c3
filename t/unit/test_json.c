/* Unit tests of core/sv_json.c's text helpers: client text quoted in an
 * error message stays well-formed UTF-8, cut only between characters. */
#include <string.h>

#include "core/sv_err.h"
#include "core/sv_json.h"
#include "tap.h"

static sv_arena arena;

/* text[0..len) through sv_json_buf_utf8 with at most max bytes. */
static const char *clean(const char *text, size_t len, size_t max)
{
    sv_buf buf;
    sv_buf_init(&buf, &arena, 16);
    sv_json_buf_utf8(&buf, text, len, max);
    return buf.data;
}

int main(void)
{
    sv_arena_init(&arena, 4096);

    is_str(clean("text/csv", 8, 200), "text/csv", "ASCII as it is");
    is_str(clean("caf\xc3\xa9", 5, 200), "caf\xc3\xa9", "a two-byte character kept");
    is_str(clean("caf\xc3\xa9", 5, 4), "caf", "cut before a character that would pass the limit");
    is_str(clean("caf\xc3\xa9", 5, 5), "caf\xc3\xa9", "a character that ends at the limit kept");
    is_str(clean("\xf0\x9f\x98\x80x", 5, 3), "", "a four-byte character is not halved");
    is_str(clean("a\xffz", 3, 200), "a\xef\xbf\xbdz", "an invalid byte becomes U+FFFD");
    is_str(clean("a\xc3", 2, 200), "a\xef\xbf\xbd", "half a character at the end becomes U+FFFD");
    is_str(clean("\xc0\x80", 2, 200), "\xef\xbf\xbd\xef\xbf\xbd", "an overlong NUL: two bad bytes");
    is_str(clean("\xed\xa0\x80", 3, 200), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "a surrogate is not UTF-8");
    is_str(clean("ab\xff", 3, 4), "ab", "no room for the replacement: cut before it");

    /* Why the helper exists: json-c copies a string's bytes into its text
     * as they are, so a bad byte in client text made the answer invalid
     * JSON. Its text of the helper's result must parse. */
    json_object *parsed = NULL;
    const char *why;
    const char *msg = clean("x\xff\xc3\xa9\xe2\x82", 6, 200);
    json_object *s = json_object_new_string(msg);
    const char *text = json_object_to_json_string_ext(s, JSON_C_TO_STRING_PLAIN);
    is_int(sv_json_parse(text, strlen(text), &parsed, &why), SV_OK, "json-c's text of the result is valid UTF-8 JSON");
    json_object_put(parsed);
    json_object_put(s);

    sv_arena_free(&arena);
    return tap_done();
}
