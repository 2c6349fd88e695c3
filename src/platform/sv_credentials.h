/* Platform credentials: each user's OAuth tokens per platform, stored
 * sealed in platform_credentials (crypto/sv_vault.c), and the one
 * function everything that calls a platform's API uses to get a usable
 * access token, sv_platform_token_get. It works inside a request (the
 * /functions/v1 handlers) and outside one (streamvibe-admin credentials
 * token, and the job runner): it needs only an sv_platform_env.
 *
 * All SQL runs as service_role with the user id given by the caller
 * (the handlers pass the JWT's sub, never one from a body). Only sealed
 * values travel to PostgreSQL. Plaintexts live in secret arena
 * allocations, wiped when the arena resets. */
#ifndef SV_CREDENTIALS_H
#define SV_CREDENTIALS_H

#include <stddef.h>

#include "core/sv_arena.h"
#include "core/sv_config.h"
#include "core/sv_err.h"
#include "crypto/sv_vault.h"
#include "db/sv_db.h"

/* What the credential code needs of its caller. */
typedef struct sv_platform_env {
    const sv_config *cfg;
    const sv_vault  *vault;
    sv_db           *db;
    sv_arena        *arena;
    const char      *request_id;            /* for log lines; "-" outside a request */
    /* Runs before a call to a provider, which waits on nothing the
     * worker watches (a worker sheds its other connections); or NULL. */
    void           (*before_call)(void *arg);
    void            *before_call_arg;
} sv_platform_env;

/* How sv_platform_token_get came by the token it hands out. */
typedef enum {
    SV_TOKEN_VALID,                 /* the stored token, not near its expiry */
    SV_TOKEN_REFRESHED,             /* this call refreshed it at the provider */
    SV_TOKEN_REFRESHED_ELSEWHERE,   /* another process refreshed it while this one waited */
    SV_TOKEN_STILL_VALID,           /* a refresh failed for now; the stored token has not expired */
} sv_token_source;

typedef struct sv_platform_token {
    char           *access_token;   /* secret arena allocation */
    size_t          len;
    long long       expires_at;     /* epoch seconds, 0 when unknown */
    sv_token_source source;
} sv_platform_token;

/* The name of a source, for logs and the admin command. */
const char *sv_token_source_name(sv_token_source s);

/* A valid access token for (user_id, platform). It refreshes with the
 * refresh token when the stored one has expired or expires within
 * oauth_refresh_margin seconds, or when rejected (the token the caller
 * just had refused with a 401) is still the stored one. Refreshes are
 * serialised on the credential's row lock, so when several processes
 * find the same credential expired, exactly one calls the provider and
 * the others use its result. A refresh the provider refuses
 * (invalid_grant) marks the credential inactive.
 * Returns SV_OK with *out, or SV_ERROR with err (status and code):
 *   404 credential_not_found, 409 credential_inactive (refused earlier or
 *   now: the user must connect again), 409 credential_expired (expired,
 *   and no refresh token), 500 credential_unreadable (a key is missing),
 *   502 provider_error, 503 provider_unavailable / vault_not_configured /
 *   oauth_not_configured, or the database's 503. */
int sv_platform_token_get(sv_platform_env *env, const char *user_id, const char *platform,
                          const char *rejected, sv_platform_token *out, sv_error *err);

/* The id of platform (by name): SV_OK with *id (arena), or SV_ERROR
 * (404 unknown_platform, or the database's 503). */
int sv_credentials_platform_id(sv_platform_env *env, const char *platform, const char **id,
                               sv_error *err);

/* What a new credential holds; strings NUL-terminated. */
typedef struct sv_credential_input {
    const char *user_id;
    const char *platform;           /* name */
    const char *platform_id;
    const char *access_token;
    size_t      access_len;
    const char *refresh_token;      /* or NULL */
    size_t      refresh_len;
    const char *expires_at;         /* timestamptz text, or NULL */
    long        expires_in;         /* seconds, or -1 */
    const char *scopes_json;        /* JSON array of strings, or NULL for none */
    const char *platform_user_id;   /* or NULL */
    int         verified;           /* just issued by the provider: last_verified_at = now() */
} sv_credential_input;

/* Seals and upserts (one credential per user and platform). On SV_OK
 * *meta_json (arena) is the credential's metadata as a JSON object and
 * *inserted says whether it is new. SV_ERROR: 503 vault_not_configured,
 * 400 for values PostgreSQL refuses (a bad expires_at), the database's
 * 503. */
int sv_credentials_store(sv_platform_env *env, const sv_credential_input *in,
                         const char **meta_json, int *inserted, sv_error *err);

/* The metadata of user_id's credentials as a JSON array (arena). */
int sv_credentials_list(sv_platform_env *env, const char *user_id, const char **json,
                        sv_error *err);

/* Deletes user_id's credential for platform (and the Vault secrets it
 * references), after asking the provider to revoke its token where the
 * provider has a revoke endpoint. A failed revoke still deletes: *revoked
 * is then 0 and *why says what happened. SV_ERROR: 404
 * credential_not_found, the database's 503. */
int sv_credentials_delete(sv_platform_env *env, const char *user_id, const char *platform,
                          int *revoked, const char **why, sv_error *err);

#endif
