/* The OAuth 2.0 providers of the platforms (authorization code grant
 * with PKCE where the provider takes it, refresh_token grant, token
 * revocation), configured per platform (oauth_<platform>_* settings,
 * whose defaults are the real endpoints: Google OAuth 2.0 for YouTube,
 * the Instagram API with Instagram Login, TikTok Login Kit v2), and the
 * few ways they differ from RFC 6749 (TikTok's client_key, comma
 * separated scopes, Google's offline access). Calls go through
 * sv_http_client; tokens come back in secret arena allocations and are
 * never logged: a log line names the platform, grant, status and the
 * provider's error code only. */
#ifndef SV_OAUTH_H
#define SV_OAUTH_H

#include <stddef.h>

#include "core/sv_arena.h"
#include "core/sv_config.h"

typedef struct sv_oauth_provider {
    const char *platform;          /* "youtube", "instagram", "tiktok" */
    const char *client_id;
    const char *client_secret;
    const char *authorize_url;
    const char *token_url;
    const char *revoke_url;        /* "" when the provider has none */
    const char *scopes;            /* as configured, separated by spaces or commas */
    int         pkce;              /* send an S256 code challenge */
    const char *client_id_param;   /* "client_id", TikTok's "client_key" */
    char        scope_sep;         /* how the authorize URL joins scopes */
    const char *authorize_extra;   /* extra query parameters, already encoded, or "" */
    int         revoke_refresh;    /* revoke the refresh token when there is one */
} sv_oauth_provider;

/* Fills p for platform from cfg. Returns 1, or 0 when no provider is
 * known for that platform. */
int sv_oauth_provider_get(const sv_config *cfg, const char *platform, sv_oauth_provider *p);

/* 1 when client id, client secret and token URL are configured. */
int sv_oauth_ready(const sv_oauth_provider *p);

typedef enum {
    SV_OAUTH_OK,            /* tokens in hand */
    SV_OAUTH_REFUSED,       /* invalid_grant: the code or refresh token is no good any more */
    SV_OAUTH_FAILED,        /* any other answer (our configuration, the provider's bug) */
    SV_OAUTH_UNREACHABLE,   /* no answer: timeout, connection, 5xx */
} sv_oauth_outcome;

typedef struct sv_oauth_tokens {
    sv_oauth_outcome outcome;
    char       *access_token;      /* secret arena allocation */
    size_t      access_len;
    char       *refresh_token;     /* secret arena allocation, NULL when none came */
    size_t      refresh_len;
    long        expires_in;        /* seconds, -1 when not said */
    const char *scopes_json;       /* JSON array of the granted scopes, or NULL */
    const char *platform_user_id;  /* TikTok's open_id, Instagram's user_id, or NULL */
    long        status;            /* the provider's HTTP status, 0 without an answer */
    const char *error;             /* the provider's error code, or why there is no answer */
} sv_oauth_tokens;

/* The authorization URL the browser is sent to. challenge may be NULL
 * (no PKCE). Result in the arena. */
char *sv_oauth_authorize_url(sv_arena *arena, const sv_oauth_provider *p, const char *redirect_uri,
                             const char *state, const char *challenge);

/* A PKCE verifier (43 characters of base64url) and its S256 challenge.
 * The verifier is a secret arena allocation. */
void sv_oauth_pkce(sv_arena *arena, char **verifier, char **challenge);

/* grant_type=authorization_code. verifier may be NULL. Fills *t; the
 * return value is t->outcome. */
sv_oauth_outcome sv_oauth_exchange_code(sv_arena *arena, const sv_oauth_provider *p, const char *code,
                                        const char *redirect_uri, const char *verifier,
                                        long timeout_ms, const char *request_id, sv_oauth_tokens *t);

/* grant_type=refresh_token. */
sv_oauth_outcome sv_oauth_refresh(sv_arena *arena, const sv_oauth_provider *p,
                                  const char *refresh_token, long timeout_ms,
                                  const char *request_id, sv_oauth_tokens *t);

/* Revokes token at the provider's revoke URL (RFC 7009 style, client
 * credentials in the body). Returns 1 when the provider confirmed, 0
 * otherwise with *why (arena or static). */
int sv_oauth_revoke(sv_arena *arena, const sv_oauth_provider *p, const char *token,
                    long timeout_ms, const char *request_id, const char **why);

#endif
