#include "core/sv_config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sv_err.h"

typedef enum { SV_CONF_STRING, SV_CONF_INT, SV_CONF_LONG, SV_CONF_OCTAL } sv_conf_type;

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
    SV_KEY(shutdown_timeout,  SV_CONF_INT,    0, 3600, "30"),
    SV_KEY(keepalive_idle,    SV_CONF_INT,    0, 3600, "60"),
    SV_KEY(body_limit,        SV_CONF_LONG,   0, 1L << 30, "1048576"),
    SV_KEY(pid_file,          SV_CONF_STRING, 0, 0, ""),
    SV_KEY(log_file,          SV_CONF_STRING, 0, 0, "-"),
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
    SV_KEY(realtime_listen,   SV_CONF_STRING, 0, 0, ""),
    SV_KEY(realtime_max_sockets, SV_CONF_INT, 1, 1000000, "10000"),
    SV_KEY(realtime_max_channels, SV_CONF_INT, 1, 10000, "100"),
    SV_KEY(realtime_max_message, SV_CONF_LONG, 1024, 1L << 26, "1048576"),
    SV_KEY(realtime_send_buffer, SV_CONF_LONG, 4096, 1L << 30, "1048576"),
    SV_KEY(realtime_handshake_timeout, SV_CONF_INT, 1, 3600, "10"),
    SV_KEY(realtime_idle_timeout, SV_CONF_INT, 0, 86400, "60"),
};

#define SV_NKEYS (sizeof(sv_conf_keys) / sizeof(sv_conf_keys[0]))

static const sv_conf_key *sv_conf_find(const char *name)
{
    for (size_t i = 0; i < SV_NKEYS; i++)
        if (strcmp(sv_conf_keys[i].name, name) == 0)
            return &sv_conf_keys[i];
    return NULL;
}

static int sv_conf_assign(sv_config *cfg, const sv_conf_key *key, const char *value,
                          char *err, size_t errlen)
{
    char *field = (char *)cfg + key->offset;
    char *end;
    long n;

    switch (key->type) {
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
    if (path != NULL && *path != '\0' && sv_config_read_file(cfg, path, err, errlen) != 0)
        return SV_ERROR;
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
        case SV_CONF_STRING: value = *(char *const *)field ? *(char *const *)field : ""; break;
        case SV_CONF_INT: snprintf(num, sizeof(num), "%d", *(const int *)field); break;
        case SV_CONF_LONG: snprintf(num, sizeof(num), "%ld", *(const long *)field); break;
        case SV_CONF_OCTAL: snprintf(num, sizeof(num), "%o", (unsigned)*(const int *)field); break;
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
        if (sv_conf_keys[i].type == SV_CONF_STRING) {
            char **field = (char **)((char *)cfg + sv_conf_keys[i].offset);
            free(*field);
            *field = NULL;
        }
    }
}
