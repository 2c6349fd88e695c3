/* JSON Web Tokens, HS256 only: signing and constant-time verification with
 * libsodium's HMAC-SHA-256, and the base64url helpers they need. Pure code:
 * no database, no request, so it is unit-tested on its own. */
#ifndef SV_JWT_H
#define SV_JWT_H

#include <stddef.h>
#include <time.h>

#include "core/sv_arena.h"

struct json_object;

/* Why a token was refused. SV_JWT_OK is 0. */
typedef enum {
    SV_JWT_OK = 0,
    SV_JWT_MALFORMED,       /* not three base64url segments of JSON objects */
    SV_JWT_BAD_ALG,         /* header alg is not exactly "HS256" (incl. none) */
    SV_JWT_BAD_SIGNATURE,
    SV_JWT_EXPIRED,         /* exp <= now */
    SV_JWT_NOT_YET_VALID,   /* nbf > now */
    SV_JWT_NO_SECRET,       /* the server has no jwt_secret */
    SV_JWT_NO_EXP,          /* no exp claim: every token we accept must expire */
} sv_jwt_status;

/* Shortest secret the server accepts for signing API keys. */
#define SV_JWT_MIN_SECRET_LEN 32

/* Longest token we look at; anything longer is malformed. */
#define SV_JWT_MAX_TOKEN_LEN 16384

/* base64url without padding of data[0..len). Result in the arena. */
char *sv_jwt_b64url_encode(sv_arena *arena, const unsigned char *data, size_t len);

/* Decodes the base64url text s[0..len) (no padding, canonical). Returns 0
 * with *out (arena, NUL-terminated for convenience) and *outlen, or -1. */
int sv_jwt_b64url_decode(sv_arena *arena, const char *s, size_t len, unsigned char **out,
                         size_t *outlen);

/* Signs payload_json (a JSON object's text, used verbatim) with HS256.
 * Returns the compact token in the arena, or NULL when secret is empty. */
char *sv_jwt_sign(sv_arena *arena, const char *secret, const char *payload_json);

/* Verifies token against secret at time now: exactly three segments, a
 * header whose alg is "HS256", a valid signature (compared in constant
 * time), a JSON object payload with no NUL character in any string
 * (sv_json_parse), an exp claim in the future, and nbf if present. exp
 * is required, unlike PostgREST and GoTrue: every token this server
 * issues (and every API key) has one, so a token without one was made by
 * someone holding the secret for a purpose we do not serve, and would
 * never expire. On SV_JWT_OK
 * *claims_json (arena) is the payload re-serialised as compact JSON, safe
 * to hand to PostgreSQL as jsonb. On failure *claims_json is NULL. */
sv_jwt_status sv_jwt_verify(sv_arena *arena, const char *secret, const char *token, time_t now,
                            char **claims_json);

/* Lifetime of the API keys streamvibe-admin prints: ten years. */
#define SV_JWT_API_KEY_LIFETIME (10L * 365 * 24 * 3600)

/* The API key for role ("anon" or "service_role"), as Supabase issues
 * them: claims {"role","iss":"streamvibe","iat","exp":iat+10 years},
 * signed with secret. Returns the token in the arena, or NULL when the
 * secret is empty. */
char *sv_jwt_api_key(sv_arena *arena, const char *secret, const char *role, time_t iat);

/* Same as sv_jwt_verify, and on SV_JWT_OK also hands back the parsed
 * payload in *payload (caller json_object_put()s it) so the caller need
 * not parse the claims again. *payload is NULL on failure. */
sv_jwt_status sv_jwt_verify_obj(sv_arena *arena, const char *secret, const char *token,
                                time_t now, char **claims_json, struct json_object **payload);

/* A short English reason for a status, for error messages and logs
 * (PostgREST's wording where it has one: "JWT expired"). */
const char *sv_jwt_strerror(sv_jwt_status status);

/* The same reason as GoTrue words it (golang-jwt's error strings, e.g.
 * "token has invalid claims: token is expired"), to follow GoTrue's
 * "invalid JWT: unable to parse or verify signature, " prefix. */
const char *sv_jwt_strerror_gotrue(sv_jwt_status status);

#endif
