/* streamvibe-realtime: Supabase Realtime (postgres_changes) for the
 * server's supabase-js clients, one event-loop process per host, behind
 * nginx at /realtime/v1/. `streamvibe-fcgi --pool` starts, respawns and
 * stops it when realtime_listen is set; it also runs on its own (a
 * systemd unit) with the same configuration file. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/sv_config.h"
#include "core/sv_err.h"
#include "crypto/sv_crypto.h"
#include "realtime/sv_rt.h"

static void sv_usage(FILE *out)
{
    fputs("usage: streamvibe-realtime [--config FILE] [--check-config]\n"
          "  --config FILE   configuration file (default: $STREAMVIBE_CONFIG);\n"
          "                  realtime_listen, database_url and jwt_secret are needed\n"
          "  --check-config  validate the configuration and exit\n"
          "  --help          show this text\n"
          "  --version       print the version\n",
          out);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "check-config", no_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = NULL;
    int check_only = 0, opt;

    while ((opt = getopt_long(argc, argv, "c:thV", options, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 't': check_only = 1; break;
        case 'h': sv_usage(stdout); return 0;
        case 'V': puts(PACKAGE_STRING); return 0;
        default: sv_usage(stderr); return 2;
        }
    }

    sv_config cfg;
    char err[512];
    int rc;
    /* Under the pool the configuration arrives on a descriptor, already
     * resolved: the file may be readable by root only. */
    const char *cfd = getenv("STREAMVIBE_CONFIG_FD");
    if (cfd != NULL && atoi(cfd) > 2) {
        int fd = atoi(cfd);
        unsetenv("STREAMVIBE_CONFIG_FD");
        rc = sv_config_load_fd(&cfg, fd, err, sizeof(err));
        config_path = SV_RT_CONFIG_FROM_POOL;
    } else {
        rc = sv_config_load(&cfg, config_path, err, sizeof(err));
    }
    if (rc != SV_OK) {
        fprintf(stderr, "streamvibe-realtime: %s\n", err);
        sv_config_free(&cfg);
        return 78;
    }
    if (check_only) {
        int ok = cfg.realtime_listen[0] != '\0' && cfg.jwt_secret[0] != '\0';
        printf(ok ? "configuration ok\n" : "realtime_listen and jwt_secret must be set\n");
        sv_config_free(&cfg);
        return ok ? 0 : 78;
    }
    if (sv_crypto_init() != SV_OK) {
        fprintf(stderr, "streamvibe-realtime: libsodium initialisation failed\n");
        sv_config_free(&cfg);
        return 1;
    }
    return sv_rt_run(&cfg, config_path);
}
