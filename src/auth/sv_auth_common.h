/* What the GoTrue endpoints (sv_auth_token.c, sv_auth_user.c) share.
 * Internal to auth/. */
#ifndef SV_AUTH_COMMON_H
#define SV_AUTH_COMMON_H

#include <stddef.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "http/sv_ctx.h"

/* The service_role claims every account statement runs with. */
extern const char sv_auth_service_claims[];

/* SV_OK when jwt_secret is set, else a 500 (GoTrue's unexpected_failure). */
int sv_auth_require_secret(sv_ctx *ctx);

/* Parses the body as one JSON object; an empty body is {}. SV_OK with
 * *body (caller puts), or SV_ERROR (400 bad_json). */
int sv_auth_body(sv_ctx *ctx, json_object **body);

/* Runs one statement of sql/008_auth_api.sql as service_role. Returns
 * the result (caller PQclears) when it produced one row, or NULL with
 * ctx->err filled (503 when the database is unreachable, 400 for data
 * it refused, 500 otherwise, logged as step). */
PGresult *sv_auth_db(sv_ctx *ctx, const char *step, const char *sql, int n,
                     const char *const *values);

/* Column c of row 0, NULL when SQL NULL. Lives as long as the result. */
const char *sv_auth_col(PGresult *r, int c);

/* Lower-cases and checks an email address. Returns it in the arena, or
 * NULL when it is not a plausible address. */
char *sv_auth_email(sv_arena *arena, const char *in, size_t len);

/* REMOTE_ADDR when it is an IP address (the inet columns, the
 * per-address throttles), else NULL. */
const char *sv_auth_ip(const sv_ctx *ctx);

/* The key the client's address is throttled by (sv_addr_key: the
 * address, or its /64 for IPv6), in the arena; NULL without an address.
 * Login and signup use this same key. */
const char *sv_auth_addr_key(const sv_ctx *ctx);

/* The User-Agent header, cut to 512 bytes; NULL when absent. */
const char *sv_auth_user_agent(sv_ctx *ctx);

/* A new refresh token (256 random bits as base64url) and the hex
 * BLAKE2b-256 of it, the only form the database ever stores. */
void sv_auth_new_refresh(sv_arena *arena, const char **token, const char **hash);
/* How many generations of descendants sv_auth_refresh_chain derives:
 * a token reused within the reuse interval gets its session's live
 * token back when that is at most this many rotations further on. */
#define SV_AUTH_REFRESH_CHAIN 16

/* The refresh tokens that descend from token[0..len): tokens[i] is the
 * (i+1)th generation, HMAC-SHA-256 of its parent under the jwt_secret,
 * so the child of a token is always the same one and only the server
 * can compute it (sql/016_refresh_one_chain.sql says why). *chain_sql
 * is the PostgreSQL text[] literal of their hashes. tokens has
 * SV_AUTH_REFRESH_CHAIN entries; everything is in the arena. */
void sv_auth_refresh_chain(sv_ctx *ctx, const char *token, size_t len, const char **tokens,
                           const char **chain_sql);

/* The stored form of a refresh token the client presents. */
const char *sv_auth_hash_token(sv_arena *arena, const char *token, size_t len);

/* GoTrue's session response (200): access_token, token_type, expires_in,
 * expires_at, refresh_token and user. user_json is auth.sv_user_json()'s
 * text; amr_ts the session's start (epoch s). SV_OK or SV_ERROR. */
int sv_auth_session(sv_ctx *ctx, const char *user_json, const char *session_id,
                    const char *amr_ts, const char *refresh_token);

/* Checks a new password against the policy: SV_OK, or SV_ERROR (422). */
int sv_auth_password_policy(sv_ctx *ctx, const char *pw, size_t len);

/* argon2id hash of pw into the arena (*out), after shedding the
 * worker's other connections. SV_OK or SV_ERROR (500). */
int sv_auth_hash_password(sv_ctx *ctx, const char *pw, size_t len, char **out);

/* Member key of body when it is an object: 1 with *text its JSON in the
 * arena; absent or null: 0 with *text NULL; another type: -1. */
int sv_auth_object_member(sv_ctx *ctx, json_object *body, const char *key, const char **text);

/* The user metadata ("data") member, which must be an object when
 * given: SV_OK with *text (NULL when absent, else in the arena), or
 * SV_ERROR (400). */
int sv_auth_meta(sv_ctx *ctx, json_object *body, const char **text);

/* A 200 whose body is column c of r's first row (a user object). */
int sv_auth_answer(sv_ctx *ctx, PGresult *r, int c);

#endif
