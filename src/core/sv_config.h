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
    int   shutdown_timeout;
    int   keepalive_idle;
    long  body_limit;
    char *pid_file;
    char *log_file;
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

void sv_config_free(sv_config *cfg);

#endif
