/* streamvibe.conf: "key = value" lines, each key overridable from the
 * environment as STREAMVIBE_<KEY>. CGI mode has only the environment. */
#ifndef SV_CONFIG_H
#define SV_CONFIG_H

#include <stddef.h>

typedef struct sv_config {
    char *database_url;
    char *listen;
    int   listen_mode;
    char *listen_owner;
    char *listen_group;
    char *user;                 /* pool workers run as this user (master started as root) */
    char *group;                /* and group (default: the user's primary group) */
    int   listen_backlog;
    int   workers;
    int   max_requests;
    int   request_timeout;
    int   slow_request_time;
    int   text_filter_budget;   /* ms a REST text-search read runs on the planner's plan
                                   before it is re-run on index bitmaps (0 = never) */
    int   text_filter_race;     /* past the budget, both plans at once on two connections */
    int   shutdown_timeout;
    int   keepalive_idle;
    long  body_limit;
    char *pid_file;
    char *log_file;
    char *base_path;            /* "" or "/api": the API's URL path prefix */
    char *status_path;
    char *status_allow;
    int   retry_after;
    char *pool_name;
    char *jwt_secret;           /* HS256 key for access tokens and API keys */
    int   jwt_exp;              /* access token lifetime, seconds */
    int   password_min_length;
    int   login_max_failures;   /* failures per window before slowing down */
    int   login_window;         /* seconds */
    int   signup_max_per_window; /* signups per address per login_window (0 = unlimited) */
    int   refresh_token_reuse_interval; /* seconds a rotated refresh token still refreshes (0 = strict) */

    /* Rate limits (core/sv_ratelimit.c): per class, the interval between
     * requests in microseconds (0: no limit) and the burst. */
    long  rate_limit_auth;
    int   rate_limit_auth_burst;
    long  rate_limit_reads;
    int   rate_limit_reads_burst;
    long  rate_limit_writes;
    int   rate_limit_writes_burst;
    long  rate_limit_functions;
    int   rate_limit_functions_burst;
    int   rate_limit_zone_entries;  /* buckets in the shared zone (fixed at start) */
    char *trusted_proxies;          /* addresses/CIDRs whose real_ip_header is believed */
    char *real_ip_header;

    /* Platform credentials: the vault's key files (crypto/sv_vault.c) and
     * the OAuth flow (platform/sv_oauth.c). */
    char *vault_key_file;
    char *vault_old_key_files;
    char *api_external_url;         /* this server as providers redirect to it */
    char *site_url;                 /* the app, where a flow ends without redirect_to */
    char *redirect_allow_list;      /* app URLs redirect_to may name */
    int   oauth_state_ttl;          /* seconds a flow may take */
    int   oauth_http_timeout;       /* seconds for a call to a provider */
    int   oauth_refresh_margin;     /* refresh a token this many seconds before it expires */
    char *oauth_youtube_client_id;
    char *oauth_youtube_client_secret;
    char *oauth_youtube_authorize_url;
    char *oauth_youtube_token_url;
    char *oauth_youtube_revoke_url;
    char *oauth_youtube_scopes;
    int   oauth_youtube_pkce;
    char *oauth_instagram_client_id;
    char *oauth_instagram_client_secret;
    char *oauth_instagram_authorize_url;
    char *oauth_instagram_token_url;
    char *oauth_instagram_revoke_url;
    char *oauth_instagram_scopes;
    int   oauth_instagram_pkce;
    char *oauth_tiktok_client_id;
    char *oauth_tiktok_client_secret;
    char *oauth_tiktok_authorize_url;
    char *oauth_tiktok_token_url;
    char *oauth_tiktok_revoke_url;
    char *oauth_tiktok_scopes;
    int   oauth_tiktok_pkce;
    /* jobs (sync, ai, seo): src/job/, sql/040_jobs.sql */
    char *job_spool_dir;        /* one descriptor per running job of this host */
    char *job_program;          /* streamvibe-job; empty: next to streamvibe-fcgi */
    int   job_max_running_per_user;
    int   job_max_running_per_host;
    int   job_time_limit_sync;  /* seconds */
    int   job_time_limit_ai;
    int   job_time_limit_seo;
    int   job_reconcile_interval; /* seconds between spool reconciliations (pool) */
    int   job_launcher;         /* the pool runs streamvibe-job --launcher (job/sv_job_launcher.c) */
    int   job_launcher_processes; /* the launcher's serving processes, each with its own connection */
    char *job_launcher_test_hook; /* tests only: a file that stops the launcher once (doc/jobs.md) */
    int   job_wait_max;         /* longest ?wait=N, seconds */
    int   http_timeout;         /* outbound HTTP, seconds per exchange */
    char *ai_base_url;          /* OpenAI-compatible, including /v1 */
    char *ai_api_key;
    char *ai_model;
    char *indexnow_url;         /* the engine's endpoint */
    char *indexnow_key;         /* served at /<key>.txt */
    char *indexnow_key_location;  /* empty: https://<host>/<key>.txt */
    char *indexnow_url_template;  /* public URL of a content item, "{id}" replaced */
    char *youtube_api_url;      /* YouTube Data API v3, including /youtube/v3 */
    char *instagram_api_url;    /* Instagram Graph API, including the version */
    char *tiktok_api_url;       /* TikTok API, including /v2 */
    int   sync_max_pages;       /* listing pages a sync reads before it stops (and deletes nothing) */
    char *config_path;          /* the file this configuration was read from, or NULL */
    /* streamvibe-realtime (the pool starts it when realtime_listen is set) */
    char *realtime_listen;      /* host:port or unix socket path; empty = not started */
    int   realtime_max_sockets;
    int   realtime_max_channels; /* per socket */
    long  realtime_max_message; /* largest message a client may send, bytes */
    long  realtime_send_buffer; /* per socket: queued output beyond this drops a slow reader */
    int   realtime_handshake_timeout; /* seconds to complete the HTTP upgrade */
    int   realtime_idle_timeout; /* seconds without a byte from the client (0 = never) */
} sv_config;

/* Fills every field with its built-in default (strings are malloc'd). */
void sv_config_defaults(sv_config *cfg);

/* Defaults, then the file at path (NULL: STREAMVIBE_CONFIG if set, else
 * none), then STREAMVIBE_* environment overrides. Returns SV_OK, or SV_ERROR with a
 * message naming the file, line and key in err. On failure cfg still holds
 * valid (default) values and must be freed. */
int sv_config_load(sv_config *cfg, const char *path, char *err, size_t errlen);

/* Sets one key from its text form, validating type and range. */
int sv_config_set(sv_config *cfg, const char *key, const char *value,
                  char *err, size_t errlen);

/* Every setting as "key" NUL "value" NUL pairs (malloc'd, *len bytes;
 * NULL when out of memory): how the pool master hands its configuration,
 * file and environment already applied, to streamvibe-realtime, which
 * runs as `user` and may not be able to read the file. */
char *sv_config_serialize(const sv_config *cfg, size_t *len);
/* Defaults, then the pairs of sv_config_serialize. */
int sv_config_load_serialized(sv_config *cfg, const char *data, size_t len, char *err, size_t errlen);
/* sv_config_load_serialized of what can be read from fd (a pipe the
 * parent filled, at most 64 KB); closes fd. */
int sv_config_load_fd(sv_config *cfg, int fd, char *err, size_t errlen);

void sv_config_free(sv_config *cfg);

#endif
