#include <stdlib.h>

#include <json-c/json.h>
#include <sodium.h>

#include "crypto/sv_jwt.h"
#include "tap.h"

static const char secret[] = "0123456789abcdef0123456789abcdef-test";

/* Builds header.payload.signature from raw JSON texts, signing with key
 * (NULL: signature segment sig_text verbatim). */
static char *forge(sv_arena *a, const char *header, const char *payload, const char *key,
                   const char *sig_text)
{
    char *h = sv_jwt_b64url_encode(a, (const unsigned char *)header, strlen(header));
    char *p = sv_jwt_b64url_encode(a, (const unsigned char *)payload, strlen(payload));
    char *input = sv_arena_printf(a, "%s.%s", h, p);
    if (key == NULL)
        return sv_arena_printf(a, "%s.%s", input, sig_text);
    unsigned char mac[32];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)input, strlen(input));
    crypto_auth_hmacsha256_final(&st, mac);
    return sv_arena_printf(a, "%s.%s", input, sv_jwt_b64url_encode(a, mac, sizeof(mac)));
}

/* 1 when every string in v (keys too) is as long as its C string. */
static int no_nul_inside(json_object *v)
{
    if (json_object_is_type(v, json_type_string))
        return (size_t)json_object_get_string_len(v) == strlen(json_object_get_string(v));
    if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            if (!no_nul_inside(json_object_array_get_idx(v, i)))
                return 0;
        return 1;
    }
    if (json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, key, val) {
            (void)key;
            if (!no_nul_inside(val))
                return 0;
        }
    }
    return 1;
}

/* Payloads assembled at random from claim names, hostile values (NUL
 * escapes, overlong and broken UTF-8, surrogates, huge numbers) and
 * stray JSON tokens, signed with the right secret so they reach the
 * payload checks: each is refused, or verifies to claims that hold no
 * NUL anywhere and parse back. Deterministic (fixed seed); valgrind
 * runs it too. */
static void fuzz_payloads(sv_arena *a, time_t now)
{
    static const char *const keys[] = {
        "\"role\"", "\"sub\"", "\"email\"", "\"session_id\"", "\"exp\"", "\"nbf\"", "\"x\"",
        "\"role\\u0000\"", "\"\\u0000\"", "\"r\\u0000le\"", "\"\xc0\x80\"",
    };
    static const char *const values[] = {
        "\"service_role\"", "\"anon\"", "\"authenticated\"", "\"a\\u0000\"", "\"\\u0000\"",
        "\"service_role\\u0000\"", "\"\\\\u0000\"", "\"\\u00\"", "\"\\ud800\"", "\"\\ud800\\udc00\"",
        "\"\xc0\x80\"", "\"\xe0\x80\x80\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xff\"",
        "\"\xe2\x82\xac\"", "1800000000", "1e400", "-1", "null", "true", "[\"\\u0000\"]",
        "{\"k\\u0000\":1}", "{\"k\":\"v\"}", "[]",
    };
    static const char *const junk[] = { "{", "}", "[", "]", ",", ":", "\"", "\\", " ", "\\u0000" };
    unsigned seed = 4242;
    int bad = 0, accepted = 0;
    for (int i = 0; i < 20000; i++) {
        char p[1024];
        size_t len = 0;
        int n = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 3;
#define PUT(s) do { const char *s_ = (s); size_t l_ = strlen(s_); \
                    if (len + l_ + 40 < sizeof(p)) { memcpy(p + len, s_, l_); len += l_; } } while (0)
#define PICK(arr) arr[((seed = seed * 1103515245u + 12345u) >> 16) % (sizeof(arr) / sizeof(arr[0]))]
        PUT("{\"exp\":1800000000");
        for (int k = 0; k < n; k++) {
            PUT(",");
            PUT(PICK(keys));
            PUT(":");
            PUT(PICK(values));
            if (((seed = seed * 1103515245u + 12345u) >> 16) % 8 == 0)
                PUT(PICK(junk));
        }
        PUT("}");
#undef PUT
#undef PICK
        p[len] = '\0';
        char *claims;
        json_object *obj;
        char *t = sv_jwt_sign(a, secret, p);
        sv_jwt_status st = sv_jwt_verify_obj(a, secret, t, now, &claims, &obj);
        if (st == SV_JWT_OK) {
            accepted++;
            json_object *back = json_tokener_parse(claims);
            if (obj == NULL || !no_nul_inside(obj) || back == NULL || !no_nul_inside(back))
                if (bad++ < 5)
                    printf("# fuzz: accepted with a NUL: %s\n", p);
            json_object_put(back);
            json_object_put(obj);
        } else if (claims != NULL || obj != NULL) {
            if (bad++ < 5)
                printf("# fuzz: refused but claims set: %s\n", p);
        }
        if ((i & 1023) == 0)
            sv_arena_reset(a);
    }
    is_int(bad, 0, "20000 random signed payloads: refused, or claims without a NUL");
    printf("# %d of 20000 verified\n", accepted);
    ok(accepted > 500, "and many of them verified (the fuzz reaches the claims)");
}

int main(void)
{
    sv_arena a;
    char *claims;
    time_t now = 1700000000;

    if (sodium_init() < 0)
        return 1;
    sv_arena_init(&a, 4096);

    /* base64url */
    is_str(sv_jwt_b64url_encode(&a, (const unsigned char *)"\xfb\xff", 2), "-_8",
           "base64url uses - and _ and no padding");
    unsigned char *bin;
    size_t n;
    ok(sv_jwt_b64url_decode(&a, "-_8", 3, &bin, &n) == 0 && n == 2 && bin[0] == 0xfb &&
           bin[1] == 0xff, "base64url decodes");
    ok(sv_jwt_b64url_decode(&a, "-_8=", 4, &bin, &n) != 0, "padding refused");
    ok(sv_jwt_b64url_decode(&a, "+/8", 3, &bin, &n) != 0, "standard alphabet refused");
    ok(sv_jwt_b64url_decode(&a, "-_9", 3, &bin, &n) != 0, "non-canonical trailing bits refused");
    ok(sv_jwt_b64url_decode(&a, "", 0, &bin, &n) != 0, "empty refused");

    /* round trip */
    const char *payload = "{\"sub\":\"u1\",\"role\":\"authenticated\",\"exp\":1700003600}";
    char *tok = sv_jwt_sign(&a, secret, payload);
    ok(tok != NULL, "signs");
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_OK, "round trip verifies");
    is_str(claims, payload, "claims are the payload");
    ok(sv_jwt_sign(&a, "", payload) == NULL, "no signing without a secret");
    is_int(sv_jwt_verify(&a, "", tok, now, &claims), SV_JWT_NO_SECRET, "no secret: refused");
    ok(claims == NULL, "no claims on failure");

    /* a fixed vector computed independently (Python hmac/base64) */
    static const char vector[] =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoiYW5vbiIsImlzcyI6InN0cmVhbXZpYmUiLCJleHAiOjIwMDAwMDAwMDB9."
        "F_0iKLCZKCAoqB78DKoOHd9LjpjqArqSYUm7Ex6K2pk";
    is_int(sv_jwt_verify(&a, secret, vector, now, &claims), SV_JWT_OK, "independent vector verifies");
    is_str(sv_jwt_sign(&a, secret, "{\"role\":\"anon\",\"iss\":\"streamvibe\",\"exp\":2000000000}"), vector,
           "signing reproduces the independent vector");

    tok = forge(&a, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"role\":\"anon\",\"exp\":1800000000}", secret, NULL);
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_OK, "independently built token verifies");
    is_str(claims, "{\"role\":\"anon\",\"exp\":1800000000}", "claims");

    /* exp is required: a token without one would never expire */
    tok = sv_jwt_sign(&a, secret, "{\"role\":\"service_role\",\"iss\":\"streamvibe\",\"iat\":1700000000}");
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_NO_EXP, "no exp: refused");
    ok(claims == NULL, "no claims without exp");
    tok = sv_jwt_sign(&a, secret, "{\"role\":\"anon\",\"exp\":null}");
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_MALFORMED, "exp null: refused");
    is_str(sv_jwt_strerror_gotrue(SV_JWT_NO_EXP),
           "token has invalid claims: token is missing required claim: exp claim is required",
           "GoTrue (golang-jwt) wording for a missing exp");
    is_str(sv_jwt_strerror_gotrue(SV_JWT_BAD_SIGNATURE), "token signature is invalid: signature is invalid",
           "GoTrue wording for a bad signature");
    is_str(sv_jwt_strerror_gotrue(SV_JWT_EXPIRED), "token has invalid claims: token is expired",
           "GoTrue wording for an expired token");

    /* A NUL inside a claim: as a C string "service_role\u0000" is
     * "service_role" to a whitelist, while PostgreSQL would see the whole
     * string. Refused anywhere in the payload, keys included (json-c cuts
     * a key at the NUL, so "role\u0000" would replace "role"). */
    static const char *const nul_payloads[] = {
        "{\"role\":\"service_role\\u0000\",\"exp\":1800000000}",
        "{\"role\":\"\\u0000service_role\",\"exp\":1800000000}",
        "{\"role\":\"authenticated\",\"sub\":\"00000000-0000-4000-8000-000000000000\\u0000x\",\"exp\":1800000000}",
        "{\"role\":\"authenticated\",\"session_id\":\"s\\u0000\",\"exp\":1800000000}",
        "{\"role\":\"authenticated\",\"email\":\"a@example.com\\u0000b\",\"exp\":1800000000}",
        "{\"role\":\"anon\",\"role\\u0000\":\"service_role\",\"exp\":1800000000}",
        "{\"role\":\"anon\",\"app_metadata\":{\"x\":[\"\\u0000\"]},\"exp\":1800000000}",
        NULL,
    };
    for (int i = 0; nul_payloads[i]; i++) {
        tok = sv_jwt_sign(&a, secret, nul_payloads[i]);
        is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_MALFORMED, nul_payloads[i]);
    }
    /* an escaped backslash followed by "u0000" is no NUL */
    tok = sv_jwt_sign(&a, secret, "{\"role\":\"anon\",\"note\":\"\\\\u0000\",\"exp\":1800000000}");
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_OK, "escaped backslash then u0000: fine");
    is_str(claims, "{\"role\":\"anon\",\"note\":\"\\\\u0000\",\"exp\":1800000000}", "and kept as sent");
    /* UTF-8 that is not well-formed (json-c's check lets these pass):
     * an overlong NUL, an overlong "/", a UTF-16 surrogate, beyond U+10FFFF */
    static const char *const bad_utf8[] = { "\xc0\x80", "\xe0\x80\xaf", "\xed\xa0\x80",
                                            "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80", NULL };
    for (int i = 0; bad_utf8[i]; i++) {
        tok = sv_jwt_sign(&a, secret, sv_arena_printf(&a, "{\"role\":\"anon\",\"x\":\"%s\",\"exp\":1800000000}",
                                                     bad_utf8[i]));
        is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_MALFORMED, "ill-formed UTF-8 refused");
    }
    tok = sv_jwt_sign(&a, secret, "{\"role\":\"anon\",\"x\":\"\xe2\x82\xac \xf0\x9f\x8e\xac \xef\xbf\xbf\",\"exp\":1800000000}");
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_OK, "well-formed UTF-8 (3 and 4 bytes) accepted");

    /* another secret */
    is_int(sv_jwt_verify(&a, "another-secret-another-secret-xxxxx", tok, now, &claims),
           SV_JWT_BAD_SIGNATURE, "token from another secret refused");

    /* tampered payload: same signature, role changed */
    char *good = sv_jwt_sign(&a, secret, "{\"role\":\"anon\",\"exp\":1700003600}");
    char *evil_p = sv_jwt_b64url_encode(&a, (const unsigned char *)"{\"role\":\"service_role\",\"exp\":1700003600}",
                                        strlen("{\"role\":\"service_role\",\"exp\":1700003600}"));
    char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
    char *tampered = sv_arena_printf(&a, "%.*s.%s%s", (int)(d1 - good), good, evil_p, d2);
    is_int(sv_jwt_verify(&a, secret, tampered, now, &claims), SV_JWT_BAD_SIGNATURE,
           "tampered payload refused");

    /* tampered signature: flip one character */
    char *flipped = sv_arena_strdup(&a, good);
    char *last = flipped + strlen(flipped) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    is_int(sv_jwt_verify(&a, secret, flipped, now, &claims), SV_JWT_BAD_SIGNATURE,
           "tampered signature refused");
    char *shortsig = sv_arena_strndup(&a, good, strlen(good) - 4);
    ok(sv_jwt_verify(&a, secret, shortsig, now, &claims) != SV_JWT_OK, "truncated signature refused");

    /* alg none, with and without a signature */
    tok = forge(&a, "{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"role\":\"service_role\"}", NULL, "");
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_BAD_ALG, "alg none refused");
    tok = forge(&a, "{\"alg\":\"none\"}", "{\"role\":\"service_role\"}", secret, NULL);
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_BAD_ALG, "alg none with a valid HMAC refused");
    tok = forge(&a, "{\"alg\":\"NONE\"}", "{\"role\":\"service_role\"}", NULL, "");
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_BAD_ALG, "alg NONE refused");
    tok = forge(&a, "{\"typ\":\"JWT\"}", "{\"role\":\"service_role\"}", secret, NULL);
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_BAD_ALG, "missing alg refused");
    tok = forge(&a, "{\"alg\":\"hs256\"}", "{\"role\":\"anon\"}", secret, NULL);
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_BAD_ALG, "alg is case-sensitive");

    tok = forge(&a, "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{\"role\":\"anon\"}", secret, NULL);
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_MALFORMED, "unknown crit header refused");

    /* other algorithms, even when HMAC'd with our key (key confusion) */
    tok = forge(&a, "{\"alg\":\"HS512\"}", "{\"role\":\"anon\"}", secret, NULL);
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_BAD_ALG, "HS512 refused");
    tok = forge(&a, "{\"alg\":\"RS256\"}", "{\"role\":\"anon\"}", secret, NULL);
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_BAD_ALG, "RS256 refused");
    tok = forge(&a, "{\"alg\":[\"HS256\"]}", "{\"role\":\"anon\"}", secret, NULL);
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_BAD_ALG, "non-string alg refused");

    /* expiry */
    tok = sv_jwt_sign(&a, secret, "{\"role\":\"anon\",\"exp\":1700000000}");
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_EXPIRED, "exp == now is expired");
    is_int(sv_jwt_verify(&a, secret, tok, now - 1, &claims), SV_JWT_OK, "valid one second earlier");
    tok = sv_jwt_sign(&a, secret, "{\"role\":\"anon\",\"exp\":1.5e9}");
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_EXPIRED, "fractional exp in the past expired");
    tok = sv_jwt_sign(&a, secret, "{\"role\":\"anon\",\"exp\":\"9999999999\"}");
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_MALFORMED, "string exp refused");
    tok = sv_jwt_sign(&a, secret, "{\"role\":\"anon\",\"nbf\":1800000000,\"exp\":1900000000}");
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_NOT_YET_VALID, "nbf in the future refused");

    /* malformed */
    const char *bad[] = { "", "abc", "a.b", "a.b.c.d", "..", "a..c", ".b.c",
                          "eyJhbGciOiJIUzI1NiJ9.e30.", "e30.e30.e30", "!!!.e30.xxx",
                          "eyJhbGciOiJIUzI1NiJ9 .e30.abc", NULL };
    for (int i = 0; bad[i]; i++)
        ok(sv_jwt_verify(&a, secret, bad[i], now, &claims) != SV_JWT_OK,
           "malformed token refused");
    ok(sv_jwt_verify(&a, secret, NULL, now, &claims) == SV_JWT_MALFORMED, "NULL refused");

    /* non-JSON and non-object payloads/headers, correctly signed */
    tok = forge(&a, "{\"alg\":\"HS256\"}", "not json", secret, NULL);
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_MALFORMED, "non-JSON payload refused");
    tok = forge(&a, "{\"alg\":\"HS256\"}", "[1,2]", secret, NULL);
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_MALFORMED, "array payload refused");
    tok = forge(&a, "{\"alg\":\"HS256\"}", "{\"role\":\"anon\"} trailing", secret, NULL);
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_MALFORMED, "trailing garbage refused");
    tok = forge(&a, "{\"alg\":\"HS256\"}", "{'role':'anon'}", secret, NULL);
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_MALFORMED, "single-quoted JSON refused");
    tok = forge(&a, "{\"alg\":\"HS256\"}", "{\"role\":\"\xff\xfe\"}", secret, NULL);
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_MALFORMED, "invalid UTF-8 refused");
    tok = forge(&a, "not json", "{\"role\":\"anon\"}", secret, NULL);
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_MALFORMED, "non-JSON header refused");

    /* huge token */
    char *huge = malloc(SV_JWT_MAX_TOKEN_LEN + 100);
    memset(huge, 'a', SV_JWT_MAX_TOKEN_LEN + 99);
    huge[10] = '.';
    huge[20] = '.';
    huge[SV_JWT_MAX_TOKEN_LEN + 99] = '\0';
    is_int(sv_jwt_verify(&a, secret, huge, now, &claims), SV_JWT_MALFORMED, "oversized token refused");
    free(huge);

    /* claims are re-serialised compactly (what PostgreSQL gets) */
    tok = sv_jwt_sign(&a, secret, "{ \"role\" : \"anon\" ,\n \"x\": [1, 2], \"exp\": 1800000000 }");
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_OK, "spaced payload verifies");
    is_str(claims, "{\"role\":\"anon\",\"x\":[1,2],\"exp\":1800000000}", "claims compacted");

    ok(strcmp(sv_jwt_strerror(SV_JWT_EXPIRED), "JWT expired") == 0, "expired message");

    fuzz_payloads(&a, now);

    sv_arena_free(&a);
    return tap_done();
}
