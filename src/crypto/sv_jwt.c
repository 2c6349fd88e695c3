#include "crypto/sv_jwt.h"

#include <math.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include "core/sv_err.h"
#include "core/sv_json.h"

char *sv_jwt_b64url_encode(sv_arena *arena, const unsigned char *data, size_t len)
{
    size_t size = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = sv_arena_alloc(arena, size);

    return sodium_bin2base64(out, size, data, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int sv_jwt_b64url_decode(sv_arena *arena, const char *s, size_t len, unsigned char **out,
                         size_t *outlen)
{
    size_t max = len / 4 * 3 + 3;
    unsigned char *bin = sv_arena_alloc(arena, max + 1);
    size_t n = 0;

    *out = NULL;
    *outlen = 0;
    if (len == 0)
        return -1;
    /* b64_end NULL: any character outside the alphabet (including '=' and
     * whitespace) fails instead of ending the input early; libsodium also
     * refuses non-zero trailing bits, so each value has one encoding. */
    if (sodium_base642bin(bin, max, s, len, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return -1;
    bin[n] = '\0';
    *out = bin;
    *outlen = n;
    return 0;
}

/* HMAC-SHA-256 of data under a key of any length. */
static void sv_jwt_hmac(const char *secret, const char *data, size_t len,
                        unsigned char mac[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)data, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof(st));
}

char *sv_jwt_sign(sv_arena *arena, const char *secret, const char *payload_json)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    unsigned char mac[crypto_auth_hmacsha256_BYTES];

    if (secret == NULL || secret[0] == '\0')
        return NULL;
    char *h = sv_jwt_b64url_encode(arena, (const unsigned char *)header, sizeof(header) - 1);
    char *p = sv_jwt_b64url_encode(arena, (const unsigned char *)payload_json,
                                   strlen(payload_json));
    char *signing_input = sv_arena_printf(arena, "%s.%s", h, p);
    sv_jwt_hmac(secret, signing_input, strlen(signing_input), mac);
    char *s = sv_jwt_b64url_encode(arena, mac, sizeof(mac));
    return sv_arena_printf(arena, "%s.%s", signing_input, s);
}

/* Parses text[0..len) as one strict JSON object with nothing after it.
 * Returns the object (caller puts) or NULL. */
static json_object *sv_jwt_parse_object(const unsigned char *text, size_t len)
{
    json_object *obj;
    const char *why;

    if (len > SV_JWT_MAX_TOKEN_LEN || sv_json_parse((const char *)text, len, &obj, &why) != SV_OK)
        return NULL;
    if (!json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        return NULL;
    }
    return obj;
}

/* Reads a NumericDate claim. Returns 1 and *out when present and numeric,
 * 0 when absent, -1 when present but not a finite number. */
static int sv_jwt_numeric_claim(json_object *payload, const char *name, double *out)
{
    json_object *v;

    if (!json_object_object_get_ex(payload, name, &v))
        return 0;
    if (json_object_is_type(v, json_type_int)) {
        *out = (double)json_object_get_int64(v);
        return 1;
    }
    if (json_object_is_type(v, json_type_double)) {
        *out = json_object_get_double(v);
        return isfinite(*out) ? 1 : -1;
    }
    return -1;
}

sv_jwt_status sv_jwt_verify(sv_arena *arena, const char *secret, const char *token, time_t now,
                            char **claims_json)
{
    return sv_jwt_verify_obj(arena, secret, token, now, claims_json, NULL);
}

sv_jwt_status sv_jwt_verify_obj(sv_arena *arena, const char *secret, const char *token,
                                time_t now, char **claims_json, json_object **payload_out)
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    unsigned char *header_bin, *payload_bin, *sig_bin;
    size_t header_len, payload_len, sig_len;
    json_object *header = NULL, *payload = NULL, *alg;
    sv_jwt_status status = SV_JWT_MALFORMED;

    *claims_json = NULL;
    if (payload_out != NULL)
        *payload_out = NULL;
    if (secret == NULL || secret[0] == '\0')
        return SV_JWT_NO_SECRET;
    size_t len = token ? strnlen(token, SV_JWT_MAX_TOKEN_LEN + 1) : 0;
    if (len == 0 || len > SV_JWT_MAX_TOKEN_LEN)
        return SV_JWT_MALFORMED;

    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (dot1 == NULL || dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return SV_JWT_MALFORMED;

    if (sv_jwt_b64url_decode(arena, token, (size_t)(dot1 - token), &header_bin, &header_len) != 0 ||
        (header = sv_jwt_parse_object(header_bin, header_len)) == NULL)
        goto done;

    /* The algorithm is ours to decide, not the token's: only the exact
     * string HS256 goes on to the HMAC, so "none", "HS512", "RS256" (the
     * key-confusion attack) all stop here. */
    if (!json_object_object_get_ex(header, "alg", &alg) ||
        !json_object_is_type(alg, json_type_string) ||
        strcmp(json_object_get_string(alg), "HS256") != 0) {
        status = SV_JWT_BAD_ALG;
        goto done;
    }
    /* RFC 7515 4.1.11: critical extensions we do not implement must be
     * refused; we implement none. */
    if (json_object_object_get_ex(header, "crit", NULL))
        goto done;

    if (sv_jwt_b64url_decode(arena, dot2 + 1, len - (size_t)(dot2 + 1 - token), &sig_bin,
                             &sig_len) != 0 ||
        sig_len != sizeof(mac)) {
        status = sig_len == 0 && dot2 + 1 == token + len ? SV_JWT_BAD_SIGNATURE : SV_JWT_MALFORMED;
        goto done;
    }
    sv_jwt_hmac(secret, token, (size_t)(dot2 - token), mac);
    if (crypto_verify_32(mac, sig_bin) != 0) {
        status = SV_JWT_BAD_SIGNATURE;
        goto done;
    }

    /* Only a correctly signed payload is parsed. */
    if (sv_jwt_b64url_decode(arena, dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload_bin,
                             &payload_len) != 0 ||
        (payload = sv_jwt_parse_object(payload_bin, payload_len)) == NULL)
        goto done;

    double t;
    int has = sv_jwt_numeric_claim(payload, "exp", &t);
    if (has < 0)
        goto done;
    if (has == 0) {
        status = SV_JWT_NO_EXP;
        goto done;
    }
    if ((double)now >= t) {
        status = SV_JWT_EXPIRED;
        goto done;
    }
    has = sv_jwt_numeric_claim(payload, "nbf", &t);
    if (has < 0)
        goto done;
    if (has > 0 && (double)now < t) {
        status = SV_JWT_NOT_YET_VALID;
        goto done;
    }

    *claims_json = sv_arena_strdup(arena, json_object_to_json_string_ext(
                                              payload, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
    status = SV_JWT_OK;
    if (payload_out != NULL) {
        *payload_out = payload;
        payload = NULL;
    }
done:
    if (header != NULL)
        json_object_put(header);
    if (payload != NULL)
        json_object_put(payload);
    return status;
}

char *sv_jwt_api_key(sv_arena *arena, const char *secret, const char *role, time_t iat)
{
    json_object *claims = json_object_new_object();

    json_object_object_add(claims, "role", json_object_new_string(role));
    json_object_object_add(claims, "iss", json_object_new_string("streamvibe"));
    json_object_object_add(claims, "iat", json_object_new_int64((int64_t)iat));
    json_object_object_add(claims, "exp", json_object_new_int64((int64_t)iat + SV_JWT_API_KEY_LIFETIME));
    char *token = sv_jwt_sign(arena, secret, json_object_to_json_string_ext(claims, JSON_C_TO_STRING_PLAIN));
    json_object_put(claims);
    return token;
}

const char *sv_jwt_strerror(sv_jwt_status status)
{
    switch (status) {
    case SV_JWT_OK:            return "ok";
    case SV_JWT_MALFORMED:     return "JWT is malformed";
    case SV_JWT_BAD_ALG:       return "JWT algorithm is not allowed (only HS256)";
    case SV_JWT_BAD_SIGNATURE: return "JWT signature is invalid";
    case SV_JWT_EXPIRED:       return "JWT expired";
    case SV_JWT_NOT_YET_VALID: return "JWT is not yet valid";
    case SV_JWT_NO_SECRET:     return "JWT secret is not configured";
    case SV_JWT_NO_EXP:        return "JWT has no exp claim";
    }
    return "JWT is invalid";
}

const char *sv_jwt_strerror_gotrue(sv_jwt_status status)
{
    switch (status) {
    case SV_JWT_OK:            return "ok";
    case SV_JWT_MALFORMED:     return "token is malformed";
    case SV_JWT_BAD_ALG:       return "token signature is invalid: signing method is invalid";
    case SV_JWT_BAD_SIGNATURE: return "token signature is invalid: signature is invalid";
    case SV_JWT_EXPIRED:       return "token has invalid claims: token is expired";
    case SV_JWT_NOT_YET_VALID: return "token has invalid claims: token is not valid yet";
    case SV_JWT_NO_SECRET:     return "token is unverifiable: no secret";
    case SV_JWT_NO_EXP:
        return "token has invalid claims: token is missing required claim: exp claim is required";
    }
    return "token is invalid";
}
