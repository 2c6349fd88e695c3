/* streamvibe-fcgi: the request-serving binary. Under --pool it is the
 * process manager; started by spawn-fcgi or mod_fcgid it serves the
 * FastCGI socket it inherited on fd 0; run by a web server as a CGI
 * program it serves the one request in its environment and exits. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "core/sv_config.h"
#include "core/sv_log.h"
#include "core/sv_ratelimit.h"
#include "core/sv_scoreboard.h"
#include "crypto/sv_crypto.h"
#include "crypto/sv_vault.h"
#include "master/sv_identity.h"
#include "platform/sv_http_client.h"
#include "master/sv_pool.h"
#include "worker/sv_worker.h"

static void sv_usage(FILE *out)
{
    fputs("usage: streamvibe-fcgi [--pool] [--config FILE] [--check-config]\n"
          "  --pool          run the prefork pool master (listens on `listen`)\n"
          "  --config FILE   configuration file (default: $STREAMVIBE_CONFIG)\n"
          "  --check-config  validate the configuration and exit\n"
          "  --help          show this text\n"
          "  --version       print the version\n"
          "Without --pool: serve FastCGI on an inherited socket (fd 0), or act\n"
          "as a CGI program when fd 0 is not a listening socket.\n",
          out);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "pool", no_argument, NULL, 'p' },
        { "config", required_argument, NULL, 'c' },
        { "check-config", no_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = NULL;
    int pool_mode = 0, check_only = 0, opt;

    while ((opt = getopt_long(argc, argv, "pc:thV", options, NULL)) != -1) {
        switch (opt) {
        case 'p': pool_mode = 1; break;
        case 'c': config_path = optarg; break;
        case 't': check_only = 1; break;
        case 'h': sv_usage(stdout); return 0;
        case 'V': puts(PACKAGE_STRING); return 0;
        default: sv_usage(stderr); return 2;
        }
    }

    sv_config cfg;
    char err[512];
    if (sv_config_load(&cfg, config_path, err, sizeof(err)) != SV_OK) {
        fprintf(stderr, "streamvibe-fcgi: %s\n", err);
        sv_config_free(&cfg);
        return 1;
    }
    if (sv_crypto_init() != SV_OK || sv_http_client_global_init() != SV_OK) {
        fprintf(stderr, "streamvibe-fcgi: libsodium or libcurl initialisation failed\n");
        sv_config_free(&cfg);
        return 1;
    }
    if (check_only) {
        /* The key files too: a typo there would stop the next start. */
        sv_vault vault;
        int ok = sv_vault_load(&vault, cfg.vault_key_file, cfg.vault_old_key_files, err,
                               sizeof(err)) == SV_OK;
        sv_vault_free(&vault);
        if (!ok)
            fprintf(stderr, "streamvibe-fcgi: %s\n", err);
        else
            printf("configuration ok\n");
        sv_config_free(&cfg);
        return ok ? 0 : 1;
    }
    if (pool_mode)
        return sv_pool_run(&cfg, config_path);

    sv_scoreboard *sb = sv_scoreboard_create();
    if (sb == NULL) {
        perror("streamvibe-fcgi: mmap");
        sv_config_free(&cfg);
        return 1;
    }
    sv_scoreboard_open(sb, 0, 1);
    if (sv_log_open(cfg.log_file) != 0)
        perror("streamvibe-fcgi: log_file");

    /* spawn-fcgi and mod_fcgid can start us as root too: the same drop
     * as a pool worker, before any request is read. */
    sv_identity identity;
    sv_vault vault;
    err[0] = '\0';
    if (sv_vault_load(&vault, cfg.vault_key_file, cfg.vault_old_key_files, err, sizeof(err)) !=
        SV_OK) {
        fprintf(stderr, "streamvibe-fcgi: %s\n", err);
        sv_scoreboard_destroy(sb);
        sv_config_free(&cfg);
        return 1;
    }
    if (sv_identity_resolve(&cfg, &identity, err, sizeof(err)) != SV_OK ||
        (identity.drop && sv_log_give_to(identity.uid) != 0) ||
        sv_identity_drop(&identity) != SV_OK) {
        fprintf(stderr, "streamvibe-fcgi: %s\n", err[0] ? err : strerror(errno));
        sv_vault_free(&vault);
        sv_scoreboard_destroy(sb);
        sv_config_free(&cfg);
        return 1;
    }

    /* Under spawn-fcgi or mod_fcgid each process counts in a zone of its
     * own (so N processes allow N times the rate); a CGI process serves
     * one request and forgets it, so CGI is not rate limited at all. */
    int cgi = FCGX_IsCGI();
    sv_ratelimit *limits = cgi ? NULL : sv_ratelimit_create((uint32_t)cfg.rate_limit_zone_entries);
    sv_worker w;
    sv_worker_init(&w, &cfg, sb, 0, 0);
    w.vault = &vault;
    w.ratelimit = limits;
    int rc = cgi ? sv_worker_serve_cgi(&w) : sv_worker_serve_fcgi(&w, 0);
    sv_worker_cleanup(&w);
    sv_ratelimit_destroy(limits);
    sv_vault_free(&vault);
    sv_scoreboard_destroy(sb);
    sv_config_free(&cfg);
    return rc;
}
