#include <stdlib.h>

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
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoiYW5vbiIsImlzcyI6InN0cmVhbXZpYmUifQ."
        "v-_TPm9WE5Nc69WLRFiFe7aVzHz4b9KWW3LNftHcBXs";
    is_int(sv_jwt_verify(&a, secret, vector, now, &claims), SV_JWT_OK, "independent vector verifies");
    is_str(sv_jwt_sign(&a, secret, "{\"role\":\"anon\",\"iss\":\"streamvibe\"}"), vector,
           "signing reproduces the independent vector");

    tok = forge(&a, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"role\":\"anon\"}", secret, NULL);
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_OK, "independently built token verifies");
    is_str(claims, "{\"role\":\"anon\"}", "claims");

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
    tok = sv_jwt_sign(&a, secret, "{\"role\":\"anon\",\"nbf\":1800000000}");
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
    tok = sv_jwt_sign(&a, secret, "{ \"role\" : \"anon\" ,\n \"x\": [1, 2] }");
    is_int(sv_jwt_verify(&a, secret, tok, now, &claims), SV_JWT_OK, "spaced payload verifies");
    is_str(claims, "{\"role\":\"anon\",\"x\":[1,2]}", "claims compacted");

    ok(strcmp(sv_jwt_strerror(SV_JWT_EXPIRED), "JWT expired") == 0, "expired message");

    sv_arena_free(&a);
    return tap_done();
}
