#include "core/sv_config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>

#include "core/sv_err.h"

/* SV_CONF_RATE: nginx's limit_req rate, "10r/s" or "30r/m" ("off" or
 * "0": no limit), stored as the interval between requests in
 * microseconds. SV_CONF_BOOL: on/off, yes/no, true/false, 1/0.
 * SV_CONF_URL_PATH: a string that is empty or a URL path prefix such as
 * "/api/v2": segments of unreserved characters, no trailing slash, so
 * that a request path can be compared with it byte for byte. */
typedef enum {
    SV_CONF_STRING, SV_CONF_INT, SV_CONF_LONG, SV_CONF_OCTAL, SV_CONF_RATE, SV_CONF_BOOL,
    SV_CONF_URL_PATH
} sv_conf_type;

typedef struct sv_conf_key {
    const char  *name;
    sv_conf_type type;
    size_t       offset;
    long         min;
    long         max;
    const char  *fallback;
} sv_conf_key;

#define SV_KEY(name, type, min, max, fallback) \
    { #name, type, offsetof(sv_config, name), min, max, fallback }

/* The single list of settings: defaults, types and ranges in one place so
 * the file parser, the environment and the tests agree. */
static const sv_conf_key sv_conf_keys[] = {
    SV_KEY(database_url,      SV_CONF_STRING, 0, 0, "postgresql:///streamvibe"),
    SV_KEY(listen,            SV_CONF_STRING, 0, 0, "/run/streamvibe/streamvibe.sock"),
    SV_KEY(listen_mode,       SV_CONF_OCTAL,  0, 0777, "0660"),
    SV_KEY(listen_owner,      SV_CONF_STRING, 0, 0, ""),
    SV_KEY(listen_group,      SV_CONF_STRING, 0, 0, ""),
    SV_KEY(user,              SV_CONF_STRING, 0, 0, ""),
    SV_KEY(group,             SV_CONF_STRING, 0, 0, ""),
    SV_KEY(listen_backlog,    SV_CONF_INT,    1, 65535, "511"),
    SV_KEY(workers,           SV_CONF_INT,    1, 128, "4"),
    SV_KEY(max_requests,      SV_CONF_INT,    0, INT_MAX, "10000"),
    SV_KEY(request_timeout,   SV_CONF_INT,    0, 86400, "30"),
    SV_KEY(slow_request_time, SV_CONF_INT,    0, 86400, "5"),
    SV_KEY(text_filter_budget, SV_CONF_INT,   0, 3600000, "50"),
    SV_KEY(text_filter_race,  SV_CONF_BOOL,   0, 1, "on"),
    SV_KEY(shutdown_timeout,  SV_CONF_INT,    0, 3600, "30"),
    SV_KEY(keepalive_idle,    SV_CONF_INT,    0, 3600, "60"),
    SV_KEY(body_limit,        SV_CONF_LONG,   0, 1L << 30, "1048576"),
    SV_KEY(pid_file,          SV_CONF_STRING, 0, 0, ""),
    SV_KEY(log_file,          SV_CONF_STRING, 0, 0, "-"),
    SV_KEY(base_path,         SV_CONF_URL_PATH, 0, 0, ""),
    SV_KEY(status_path,       SV_CONF_STRING, 0, 0, "/status"),
    SV_KEY(status_allow,      SV_CONF_STRING, 0, 0, "127.0.0.1, ::1"),
    SV_KEY(retry_after,       SV_CONF_INT,    0, 3600, "1"),
    SV_KEY(pool_name,         SV_CONF_STRING, 0, 0, "streamvibe"),
    SV_KEY(jwt_secret,        SV_CONF_STRING, 0, 0, ""),
    SV_KEY(jwt_exp,           SV_CONF_INT,    30, 604800, "3600"),
    SV_KEY(password_min_length, SV_CONF_INT,  6, 1024, "8"),
    SV_KEY(login_max_failures, SV_CONF_INT,   1, 1000, "5"),
    SV_KEY(login_window,      SV_CONF_INT,    1, 86400, "900"),
    SV_KEY(signup_max_per_window, SV_CONF_INT, 0, 1000000, "10"),
    SV_KEY(refresh_token_reuse_interval, SV_CONF_INT, 0, 3600, "10"),

    SV_KEY(rate_limit_auth,            SV_CONF_RATE, 0, 0, "10r/s"),
    SV_KEY(rate_limit_auth_burst,      SV_CONF_INT,  1, 100000, "30"),
    SV_KEY(rate_limit_reads,           SV_CONF_RATE, 0, 0, "100r/s"),
    SV_KEY(rate_limit_reads_burst,     SV_CONF_INT,  1, 100000, "200"),
    SV_KEY(rate_limit_writes,          SV_CONF_RATE, 0, 0, "30r/s"),
    SV_KEY(rate_limit_writes_burst,    SV_CONF_INT,  1, 100000, "60"),
    SV_KEY(rate_limit_functions,       SV_CONF_RATE, 0, 0, "10r/s"),
    SV_KEY(rate_limit_functions_burst, SV_CONF_INT,  1, 100000, "30"),
    SV_KEY(rate_limit_zone_entries,    SV_CONF_INT,  64, 16777216, "65536"),
    SV_KEY(trusted_proxies,            SV_CONF_STRING, 0, 0, ""),
    SV_KEY(real_ip_header,             SV_CONF_STRING, 0, 0, "X-Forwarded-For"),

    SV_KEY(vault_key_file,      SV_CONF_STRING, 0, 0, ""),
    SV_KEY(vault_old_key_files, SV_CONF_STRING, 0, 0, ""),
    SV_KEY(api_external_url,    SV_CONF_STRING, 0, 0, ""),
    SV_KEY(site_url,            SV_CONF_STRING, 0, 0, ""),
    SV_KEY(redirect_allow_list, SV_CONF_STRING, 0, 0, ""),
    SV_KEY(oauth_state_ttl,     SV_CONF_INT, 30, 86400, "600"),
    SV_KEY(oauth_http_timeout,  SV_CONF_INT, 1, 300, "10"),
    SV_KEY(oauth_refresh_margin, SV_CONF_INT, 0, 86400, "300"),
    /* The real providers: Google OAuth 2.0 for YouTube, Instagram API
     * with Instagram Login, TikTok Login Kit v2 (platform/sv_oauth.c). */
    SV_KEY(oauth_youtube_client_id,     SV_CONF_STRING, 0, 0, ""),
    SV_KEY(oauth_youtube_client_secret, SV_CONF_STRING, 0, 0, ""),
    SV_KEY(oauth_youtube_authorize_url, SV_CONF_STRING, 0, 0, "https://accounts.google.com/o/oauth2/v2/auth"),
    SV_KEY(oauth_youtube_token_url,     SV_CONF_STRING, 0, 0, "https://oauth2.googleapis.com/token"),
    SV_KEY(oauth_youtube_revoke_url,    SV_CONF_STRING, 0, 0, "https://oauth2.googleapis.com/revoke"),
    SV_KEY(oauth_youtube_scopes,        SV_CONF_STRING, 0, 0, "https://www.googleapis.com/auth/youtube.readonly"),
    SV_KEY(oauth_youtube_pkce,          SV_CONF_BOOL, 0, 1, "on"),
    SV_KEY(oauth_instagram_client_id,     SV_CONF_STRING, 0, 0, ""),
    SV_KEY(oauth_instagram_client_secret, SV_CONF_STRING, 0, 0, ""),
    SV_KEY(oauth_instagram_authorize_url, SV_CONF_STRING, 0, 0, "https://www.instagram.com/oauth/authorize"),
    SV_KEY(oauth_instagram_token_url,     SV_CONF_STRING, 0, 0, "https://api.instagram.com/oauth/access_token"),
    SV_KEY(oauth_instagram_revoke_url,    SV_CONF_STRING, 0, 0, ""),
    SV_KEY(oauth_instagram_scopes,        SV_CONF_STRING, 0, 0, "instagram_business_basic"),
    SV_KEY(oauth_instagram_pkce,          SV_CONF_BOOL, 0, 1, "off"),
    SV_KEY(oauth_tiktok_client_id,     SV_CONF_STRING, 0, 0, ""),
    SV_KEY(oauth_tiktok_client_secret, SV_CONF_STRING, 0, 0, ""),
    SV_KEY(oauth_tiktok_authorize_url, SV_CONF_STRING, 0, 0, "https://www.tiktok.com/v2/auth/authorize/"),
    SV_KEY(oauth_tiktok_token_url,     SV_CONF_STRING, 0, 0, "https://open.tiktokapis.com/v2/oauth/token/"),
    SV_KEY(oauth_tiktok_revoke_url,    SV_CONF_STRING, 0, 0, "https://open.tiktokapis.com/v2/oauth/revoke/"),
    SV_KEY(oauth_tiktok_scopes,        SV_CONF_STRING, 0, 0, "user.info.basic,video.list"),
    SV_KEY(oauth_tiktok_pkce,          SV_CONF_BOOL, 0, 1, "off"),
    SV_KEY(job_spool_dir,     SV_CONF_STRING, 0, 0, "/var/spool/streamvibe"),
    SV_KEY(job_program,       SV_CONF_STRING, 0, 0, ""),
    SV_KEY(job_max_running_per_user, SV_CONF_INT, 1, 1000, "3"),
    SV_KEY(job_max_running_per_host, SV_CONF_INT, 1, 100000, "100"),
    SV_KEY(job_time_limit_sync, SV_CONF_INT,  1, 86400, "600"),
    SV_KEY(job_time_limit_ai, SV_CONF_INT,    1, 86400, "120"),
    SV_KEY(job_time_limit_seo, SV_CONF_INT,   1, 86400, "120"),
    SV_KEY(job_reconcile_interval, SV_CONF_INT, 1, 86400, "30"),
    SV_KEY(job_launcher,      SV_CONF_BOOL,   0, 1, "on"),
    SV_KEY(job_launcher_processes, SV_CONF_INT, 1, 64, "4"),
    SV_KEY(job_launcher_test_hook, SV_CONF_STRING, 0, 0, ""),
    SV_KEY(job_wait_max,      SV_CONF_INT,    0, 3600, "60"),
    SV_KEY(http_timeout,      SV_CONF_INT,    1, 3600, "30"),
    SV_KEY(ai_base_url,       SV_CONF_STRING, 0, 0, "https://api.openai.com/v1"),
    SV_KEY(ai_api_key,        SV_CONF_STRING, 0, 0, ""),
    SV_KEY(ai_model,          SV_CONF_STRING, 0, 0, "gpt-4o-mini"),
    SV_KEY(indexnow_url,      SV_CONF_STRING, 0, 0, "https://api.indexnow.org/indexnow"),
    SV_KEY(indexnow_key,      SV_CONF_STRING, 0, 0, ""),
    SV_KEY(indexnow_key_location, SV_CONF_STRING, 0, 0, ""),
    SV_KEY(indexnow_url_template, SV_CONF_STRING, 0, 0, ""),
    SV_KEY(realtime_listen,   SV_CONF_STRING, 0, 0, ""),
    SV_KEY(realtime_max_sockets, SV_CONF_INT, 1, 1000000, "10000"),
    SV_KEY(realtime_max_channels, SV_CONF_INT, 1, 10000, "100"),
    SV_KEY(realtime_max_message, SV_CONF_LONG, 1024, 1L << 26, "1048576"),
    SV_KEY(realtime_send_buffer, SV_CONF_LONG, 4096, 1L << 30, "1048576"),
    SV_KEY(realtime_handshake_timeout, SV_CONF_INT, 1, 3600, "10"),
    SV_KEY(realtime_idle_timeout, SV_CONF_INT, 0, 86400, "60"),
    SV_KEY(youtube_api_url,   SV_CONF_STRING, 0, 0, "https://www.googleapis.com/youtube/v3"),
    SV_KEY(instagram_api_url, SV_CONF_STRING, 0, 0, "https://graph.instagram.com/v21.0"),
    SV_KEY(tiktok_api_url,    SV_CONF_STRING, 0, 0, "https://open.tiktokapis.com/v2"),
    SV_KEY(sync_max_pages,    SV_CONF_INT,    1, 100000, "200"),
};

#define SV_NKEYS (sizeof(sv_conf_keys) / sizeof(sv_conf_keys[0]))

static const sv_conf_key *sv_conf_find(const char *name)
{
    for (size_t i = 0; i < SV_NKEYS; i++)
        if (strcmp(sv_conf_keys[i].name, name) == 0)
            return &sv_conf_keys[i];
    return NULL;
}

/* "10r/s" / "30r/m" as microseconds between requests; "off" or "0" is
 * 0. Returns -1 when value is neither. */
static long sv_conf_rate(const char *value)
{
    char *end;

    if (strcmp(value, "off") == 0 || strcmp(value, "0") == 0)
        return 0;
    errno = 0;
    long n = strtol(value, &end, 10);
    if (errno != 0 || end == value || n <= 0 || n > 1000000 || end[0] != 'r' || end[1] != '/' ||
        (end[2] != 's' && end[2] != 'm') || end[3] != '\0')
        return -1;
    return (end[2] == 's' ? 1000000L : 60000000L) / n;
}

static int sv_conf_bool(const char *value)
{
    static const char *const yes[] = { "on", "yes", "true", "1" }, *const no[] = { "off", "no", "false", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(value, yes[i]) == 0)
            return 1;
        if (strcasecmp(value, no[i]) == 0)
            return 0;
    }
    return -1;
}

/* Whether value is "" or "/seg[/seg...]" with each segment made of
 * RFC 3986 unreserved characters and not "." or "..". */
static int sv_conf_url_path_ok(const char *value)
{
    const char *p = value;

    while (*p == '/') {
        size_t len = strspn(++p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~");
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        p += len;
    }
    return *p == '\0';
}

static int sv_conf_assign(sv_config *cfg, const sv_conf_key *key, const char *value,
                          char *err, size_t errlen)
{
    char *field = (char *)cfg + key->offset;
    char *end;
    long n;

    switch (key->type) {
    case SV_CONF_URL_PATH:
        if (!sv_conf_url_path_ok(value)) {
            snprintf(err, errlen, "%s: \"%s\" is not empty or a path such as /api "
                     "(letters, digits, - . _ ~ between slashes, no slash at the end)", key->name, value);
            return SV_ERROR;
        }
        /* fall through */
    case SV_CONF_STRING: {
        char *copy = strdup(value);
        if (copy == NULL) {
            snprintf(err, errlen, "%s: out of memory", key->name);
            return SV_ERROR;
        }
        free(*(char **)field);
        *(char **)field = copy;
        return SV_OK;
    }
    case SV_CONF_RATE:
        if ((n = sv_conf_rate(value)) < 0) {
            snprintf(err, errlen, "%s: \"%s\" is not a rate such as 10r/s or 30r/m (or off)",
                     key->name, value);
            return SV_ERROR;
        }
        *(long *)field = n;
        return SV_OK;
    case SV_CONF_BOOL:
        if ((n = sv_conf_bool(value)) < 0) {
            snprintf(err, errlen, "%s: \"%s\" is not on or off", key->name, value);
            return SV_ERROR;
        }
        *(int *)field = (int)n;
        return SV_OK;
    case SV_CONF_INT:
    case SV_CONF_LONG:
    case SV_CONF_OCTAL:
        errno = 0;
        n = strtol(value, &end, key->type == SV_CONF_OCTAL ? 8 : 10);
        while (*end != '\0' && isspace((unsigned char)*end))
            end++;
        if (errno != 0 || end == value || *end != '\0') {
            snprintf(err, errlen, "%s: \"%s\" is not a%s number", key->name, value,
                     key->type == SV_CONF_OCTAL ? "n octal" : "");
            return SV_ERROR;
        }
        if (n < key->min || n > key->max) {
            snprintf(err, errlen, "%s: %ld is outside %ld..%ld", key->name, n,
                     key->min, key->max);
            return SV_ERROR;
        }
        if (key->type == SV_CONF_LONG)
            *(long *)field = n;
        else
            *(int *)field = (int)n;
        return SV_OK;
    }
    return SV_ERROR;
}

int sv_config_set(sv_config *cfg, const char *name, const char *value,
                  char *err, size_t errlen)
{
    const sv_conf_key *key = sv_conf_find(name);
    if (key == NULL) {
        snprintf(err, errlen, "unknown setting \"%s\"", name);
        return SV_ERROR;
    }
    return sv_conf_assign(cfg, key, value, err, errlen);
}

void sv_config_defaults(sv_config *cfg)
{
    char err[256];
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < SV_NKEYS; i++)
        if (sv_conf_assign(cfg, &sv_conf_keys[i], sv_conf_keys[i].fallback, err, sizeof(err)) != 0)
            abort(); /* a bad built-in default is a programming error */
}

static char *sv_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static int sv_config_read_file(sv_config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return SV_ERROR;
    }

    char line[4096];
    char msg[512];
    int lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof(line), fp) != NULL) {
        lineno++;
        /* '#' starts a comment at the line start or after blank space,
         * so a password containing '#' in database_url still works. */
        for (char *p = line; *p; p++) {
            if (*p == '#' && (p == line || isspace((unsigned char)p[-1]))) {
                *p = '\0';
                break;
            }
        }
        char *text = sv_trim(line);
        if (*text == '\0')
            continue;
        char *eq = strchr(text, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "%s:%d: expected \"key = value\"", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = sv_trim(text);
        char *value = sv_trim(eq + 1);
        if (sv_config_set(cfg, key, value, msg, sizeof(msg)) != 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
            rc = -1;
            break;
        }
    }
    fclose(fp);
    return rc;
}

static int sv_config_read_env(sv_config *cfg, char *err, size_t errlen)
{
    char envname[128];
    char msg[512];
    for (size_t i = 0; i < SV_NKEYS; i++) {
        const char *name = sv_conf_keys[i].name;
        size_t n = 0;
        n += (size_t)snprintf(envname, sizeof(envname), "STREAMVIBE_");
        for (const char *p = name; *p && n + 1 < sizeof(envname); p++)
            envname[n++] = (char)toupper((unsigned char)*p);
        envname[n] = '\0';
        const char *value = getenv(envname);
        if (value == NULL)
            continue;
        if (sv_conf_assign(cfg, &sv_conf_keys[i], value, msg, sizeof(msg)) != 0) {
            snprintf(err, errlen, "environment %s: %s", envname, msg);
            return SV_ERROR;
        }
    }
    return SV_OK;
}

int sv_config_load(sv_config *cfg, const char *path, char *err, size_t errlen)
{
    sv_config_defaults(cfg);
    if (path == NULL)
        path = getenv("STREAMVIBE_CONFIG");
    if (path != NULL && *path != '\0') {
        if (sv_config_read_file(cfg, path, err, errlen) != 0)
            return SV_ERROR;
        /* streamvibe-job reads the same file: absolute, whatever its cwd */
        cfg->config_path = realpath(path, NULL);
    }
    return sv_config_read_env(cfg, err, errlen);
}

char *sv_config_serialize(const sv_config *cfg, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *out = malloc(cap);
    for (size_t i = 0; out != NULL && i < SV_NKEYS; i++) {
        const sv_conf_key *key = &sv_conf_keys[i];
        const char *field = (const char *)cfg + key->offset;
        char num[32];
        const char *value = num;
        switch (key->type) {
        case SV_CONF_STRING:
        case SV_CONF_URL_PATH: value = *(char *const *)field ? *(char *const *)field : ""; break;
        case SV_CONF_INT: snprintf(num, sizeof(num), "%d", *(const int *)field); break;
        case SV_CONF_LONG: snprintf(num, sizeof(num), "%ld", *(const long *)field); break;
        case SV_CONF_OCTAL: snprintf(num, sizeof(num), "%o", (unsigned)*(const int *)field); break;
        case SV_CONF_BOOL: value = *(const int *)field ? "on" : "off"; break;
        /* Only the interval is kept, which no rate text may give back
         * exactly; the realtime daemon, the one reader, limits no rate. */
        case SV_CONF_RATE: continue;
        }
        size_t need = strlen(key->name) + strlen(value) + 2;
        if (n + need > cap) {
            char *grown = realloc(out, cap = 2 * (n + need));
            if (grown == NULL) {
                free(out);
                return NULL;
            }
            out = grown;
        }
        memcpy(out + n, key->name, strlen(key->name) + 1);
        n += strlen(key->name) + 1;
        memcpy(out + n, value, strlen(value) + 1);
        n += strlen(value) + 1;
    }
    *len = n;
    return out;
}

int sv_config_load_fd(sv_config *cfg, int fd, char *err, size_t errlen)
{
    enum { SV_CONFIG_FD_MAX = 65536 };
    char *data = malloc(SV_CONFIG_FD_MAX);
    size_t len = 0;
    ssize_t got;
    while (data != NULL && len < SV_CONFIG_FD_MAX &&
           (got = read(fd, data + len, SV_CONFIG_FD_MAX - len)) > 0)
        len += (size_t)got;
    close(fd);
    int rc;
    if (data == NULL || len == 0) {
        /* Nothing at all is an error, not the defaults: those would name
         * another database. */
        sv_config_defaults(cfg);
        snprintf(err, errlen, "serialized configuration: %s", data == NULL ? "out of memory" : "empty");
        rc = SV_ERROR;
    } else {
        rc = sv_config_load_serialized(cfg, data, len, err, errlen);
    }
    free(data);
    return rc;
}

int sv_config_load_serialized(sv_config *cfg, const char *data, size_t len, char *err, size_t errlen)
{
    sv_config_defaults(cfg);
    size_t pos = 0;
    while (pos < len) {
        const char *key = data + pos;
        const char *kend = memchr(key, '\0', len - pos);
        if (kend == NULL || (size_t)(kend + 1 - data) >= len) {
            snprintf(err, errlen, "serialized configuration: truncated");
            return SV_ERROR;
        }
        const char *value = kend + 1;
        const char *vend = memchr(value, '\0', len - (size_t)(value - data));
        if (vend == NULL) {
            snprintf(err, errlen, "serialized configuration: truncated");
            return SV_ERROR;
        }
        if (sv_config_set(cfg, key, value, err, errlen) != SV_OK)
            return SV_ERROR;
        pos = (size_t)(vend + 1 - data);
    }
    return SV_OK;
}

void sv_config_free(sv_config *cfg)
{
    for (size_t i = 0; i < SV_NKEYS; i++) {
        if (sv_conf_keys[i].type == SV_CONF_STRING || sv_conf_keys[i].type == SV_CONF_URL_PATH) {
            char **field = (char **)((char *)cfg + sv_conf_keys[i].offset);
            free(*field);
            *field = NULL;
        }
    }
    free(cfg->config_path);
    cfg->config_path = NULL;
}
