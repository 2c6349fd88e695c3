#include <stdlib.h>
#include <unistd.h>

#include "core/sv_config.h"
#include "tap.h"

static char *write_tmp(const char *text)
{
    static char path[64];
    strcpy(path, "/tmp/sv-test-config-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        return NULL;
    close(fd);
    return path;
}

int main(void)
{
    sv_config cfg;
    char err[512];

    unsetenv("STREAMVIBE_CONFIG");
    unsetenv("STREAMVIBE_WORKERS");
    ok(sv_config_load(&cfg, NULL, err, sizeof(err)) == 0, "defaults load without a file");
    is_int(cfg.workers, 4, "default workers");
    is_int(cfg.listen_mode, 0660, "default listen_mode is octal 0660");
    is_str(cfg.status_path, "/status", "default status path");
    sv_config_free(&cfg);

    char *path = write_tmp("# comment\n"
                           "workers = 7   # trailing comment\n"
                           "database_url = host=/tmp password=a#b\n"
                           "listen_mode=0600\n"
                           "\n"
                           "body_limit = 2048\n");
    ok(path != NULL, "wrote a config file");
    ok(sv_config_load(&cfg, path, err, sizeof(err)) == 0, "file loads");
    is_int(cfg.workers, 7, "file sets workers");
    is_str(cfg.database_url, "host=/tmp password=a#b", "'#' inside a value is kept");
    is_int(cfg.listen_mode, 0600, "octal mode parsed");
    is_int(cfg.body_limit, 2048, "body_limit parsed");
    sv_config_free(&cfg);

    setenv("STREAMVIBE_WORKERS", "3", 1);
    ok(sv_config_load(&cfg, path, err, sizeof(err)) == 0, "env override loads");
    is_int(cfg.workers, 3, "environment overrides the file");
    sv_config_free(&cfg);

    setenv("STREAMVIBE_WORKERS", "zero", 1);
    ok(sv_config_load(&cfg, path, err, sizeof(err)) != 0, "non-numeric env value is rejected");
    ok(strstr(err, "STREAMVIBE_WORKERS") != NULL, "error names the variable");
    sv_config_free(&cfg);
    unsetenv("STREAMVIBE_WORKERS");
    unlink(path);

    path = write_tmp("workers = 0\n");
    ok(sv_config_load(&cfg, path, err, sizeof(err)) != 0, "out of range value is rejected");
    ok(strstr(err, ":1:") != NULL && strstr(err, "workers") != NULL,
       "error names line and key");
    sv_config_free(&cfg);
    unlink(path);

    path = write_tmp("no_such_key = 1\n");
    ok(sv_config_load(&cfg, path, err, sizeof(err)) != 0, "unknown key is rejected");
    ok(strstr(err, "no_such_key") != NULL, "error names the unknown key");
    sv_config_free(&cfg);
    unlink(path);

    path = write_tmp("workers 4\n");
    ok(sv_config_load(&cfg, path, err, sizeof(err)) != 0, "line without '=' is rejected");
    sv_config_free(&cfg);
    unlink(path);

    ok(sv_config_load(&cfg, "/nonexistent/streamvibe.conf", err, sizeof(err)) != 0,
       "missing file is an error");
    sv_config_free(&cfg);

    /* rates (nginx's syntax) and on/off */
    sv_config_defaults(&cfg);
    ok(sv_config_set(&cfg, "rate_limit_reads", "10r/s", err, sizeof(err)) == 0, "10r/s accepted");
    is_int(cfg.rate_limit_reads, 100000, "10r/s is one request every 100000 us");
    ok(sv_config_set(&cfg, "rate_limit_reads", "30r/m", err, sizeof(err)) == 0, "30r/m accepted");
    is_int(cfg.rate_limit_reads, 2000000, "30r/m is one every 2 s");
    ok(sv_config_set(&cfg, "rate_limit_reads", "off", err, sizeof(err)) == 0, "off accepted");
    is_int(cfg.rate_limit_reads, 0, "off is 0");
    ok(sv_config_set(&cfg, "rate_limit_reads", "10/s", err, sizeof(err)) != 0, "10/s refused");
    ok(strstr(err, "10r/s") != NULL, "the error shows the syntax");
    ok(sv_config_set(&cfg, "rate_limit_reads", "-1r/s", err, sizeof(err)) != 0, "negative refused");
    ok(sv_config_set(&cfg, "rate_limit_reads", "5r/h", err, sizeof(err)) != 0, "per hour refused");
    ok(sv_config_set(&cfg, "oauth_youtube_pkce", "off", err, sizeof(err)) == 0 && cfg.oauth_youtube_pkce == 0,
       "pkce off");
    ok(sv_config_set(&cfg, "oauth_youtube_pkce", "YES", err, sizeof(err)) == 0 && cfg.oauth_youtube_pkce == 1,
       "pkce YES");
    ok(sv_config_set(&cfg, "oauth_youtube_pkce", "maybe", err, sizeof(err)) != 0, "pkce maybe refused");
    is_str(cfg.base_path, "", "no base path by default");
    ok(sv_config_set(&cfg, "base_path", "/api", err, sizeof(err)) == 0 && strcmp(cfg.base_path, "/api") == 0,
       "base_path /api accepted");
    ok(sv_config_set(&cfg, "base_path", "/my-site/api.v2/~x_y", err, sizeof(err)) == 0,
       "base_path of several unreserved segments accepted");
    ok(sv_config_set(&cfg, "base_path", "", err, sizeof(err)) == 0 && cfg.base_path[0] == '\0',
       "empty base_path accepted");
    {
        static const char *const bad[] = { "api", "/api/", "/", "//api", "/a//b", "/./api", "/api/..",
                                           "/a b", "/a%20b", "/a?b", "/a#b", "/é" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            char name[64];
            snprintf(name, sizeof(name), "base_path \"%s\" refused", bad[i]);
            ok(sv_config_set(&cfg, "base_path", bad[i], err, sizeof(err)) != 0 && strstr(err, "base_path") != NULL,
               name);
        }
        is_str(cfg.base_path, "", "a refused value leaves the setting as it was");
    }
    is_str(cfg.oauth_youtube_token_url, "https://oauth2.googleapis.com/token", "Google's token endpoint by default");
    is_str(cfg.oauth_tiktok_authorize_url, "https://www.tiktok.com/v2/auth/authorize/", "TikTok's authorize URL by default");

    /* --config-fd: a worker's configuration through a pipe, as a job
     * reads it; an empty pipe is an error, never the defaults. */
    ok(sv_config_set(&cfg, "database_url", "postgresql:///from_the_worker", err, sizeof(err)) == 0 &&
           sv_config_set(&cfg, "text_filter_budget", "7", err, sizeof(err)) == 0,
       "worker settings");
    size_t len = 0;
    char *text = sv_config_serialize(&cfg, &len);
    int fds[2];
    ok(text != NULL && pipe(fds) == 0 && write(fds[1], text, len) == (ssize_t)len, "serialized into a pipe");
    close(fds[1]);
    free(text);
    sv_config_free(&cfg);
    ok(sv_config_load_fd(&cfg, fds[0], err, sizeof(err)) == 0, "loaded from the pipe");
    is_str(cfg.database_url, "postgresql:///from_the_worker", "database_url came through");
    ok(cfg.text_filter_budget == 7, "text_filter_budget came through");
    sv_config_free(&cfg);
    ok(pipe(fds) == 0, "an empty pipe");
    close(fds[1]);
    ok(sv_config_load_fd(&cfg, fds[0], err, sizeof(err)) != 0, "nothing in it: refused");
    ok(strstr(err, "empty") != NULL, "the error says so");
    sv_config_free(&cfg);
    return tap_done();
}
