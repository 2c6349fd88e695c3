/* streamvibe-job: the process a worker spawns for each accepted job (it
 * supervises the work and writes the job's audit_log row), and, with
 * --reconcile, the spool reconciler the pool master runs at start and
 * every job_reconcile_interval seconds. */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sv_config.h"
#include "core/sv_err.h"
#include "core/sv_log.h"
#include "core/sv_proctitle.h"
#include "crypto/sv_crypto.h"
#include "crypto/sv_vault.h"
#include "job/sv_job_launcher.h"
#include "job/sv_job_relay.h"
#include "job/sv_job_run.h"
#include "master/sv_identity.h"
#include "platform/sv_http_client.h"

static volatile sig_atomic_t sv_job_launcher_stop, sv_job_launcher_reopen;

static void sv_job_on_stop(int signo)
{
    (void)signo;
    sv_job_launcher_stop = 1;
}

static void sv_job_on_reopen(int signo)
{
    (void)signo;
    sv_job_launcher_reopen = 1;
}

static void sv_job_usage(FILE *out)
{
    fputs("usage: streamvibe-job [--config FILE | --config-fd N] --lock-fd N [--vault-fd N] DESCRIPTOR\n"
          "       streamvibe-job [--config FILE] --reconcile\n"
          "       streamvibe-job [--config FILE] --launcher\n"
          "  --config FILE   configuration file (default: $STREAMVIBE_CONFIG)\n"
          "  --config-fd N   read the configuration from this pipe (a worker passes\n"
          "                  its own: the file may be root's alone)\n"
          "  --lock-fd N     the descriptor's lock, held for the job's life\n"
          "  --vault-fd N    read the vault's keys from this pipe (the worker passes\n"
          "                  them) instead of the key files\n"
          "  --reconcile     finish the spool's jobs whose process is gone, and exit\n"
          "  --launcher      fork the jobs workers hand over and run their statements\n"
          "                  on one database connection, until SIGTERM\n"
          "  --help          show this text\n"
          "  --version       print the version\n"
          "Started by streamvibe-fcgi (the pool master runs the launcher); an operator\n"
          "runs --reconcile by hand or from cron where no pool master does it (CGI,\n"
          "spawn-fcgi).\n",
          out);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "config-fd", required_argument, NULL, 'C' },
        { "lock-fd", required_argument, NULL, 'l' },
        { "vault-fd", required_argument, NULL, 'k' },
        { "reconcile", no_argument, NULL, 'r' },
        { "launcher", no_argument, NULL, 'L' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = NULL;
    int lock_fd = -1, vault_fd = -1, config_fd = -1, reconcile = 0, launcher = 0, opt;

    /* First thing, in every mode: a reload of the pool must not end a job. */
    sv_job_ignore_reload_signals();
    while ((opt = getopt_long(argc, argv, "c:C:l:k:rLhV", options, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'C': config_fd = atoi(optarg); break;
        case 'l': lock_fd = atoi(optarg); break;
        case 'k': vault_fd = atoi(optarg); break;
        case 'r': reconcile = 1; break;
        case 'L': launcher = 1; break;
        case 'h': sv_job_usage(stdout); return 0;
        case 'V': puts(PACKAGE_STRING); return 0;
        default: sv_job_usage(stderr); return 2;
        }
    }
    if (reconcile && launcher) {
        sv_job_usage(stderr);
        return 2;
    }
    if (launcher) {
        /* The master sends SIGUSR1 after a log rotation: installed first
         * thing, since its default would end the launcher. */
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = sv_job_on_reopen;
        sigaction(SIGUSR1, &sa, NULL);
        sigset_t reopen;
        sigemptyset(&reopen);
        sigaddset(&reopen, SIGUSR1);
        sigprocmask(SIG_UNBLOCK, &reopen, NULL);   /* the master started it blocked */
        reconcile = 1;   /* it runs no job itself: it is the reconciler's case */
    }
    if (!reconcile && (optind != argc - 1 || lock_fd < 0)) {
        sv_job_usage(stderr);
        return 2;
    }

    /* The keys a worker passed: read and closed before anything else, so
     * the pipe is gone from the job by the time it does any work. */
    sv_vault vault;
    char err[512];
    char vault_err[256] = "";
    sv_vault_init(&vault);
    if (vault_fd >= 0) {
        if (sv_crypto_init() != SV_OK ||
            sv_vault_receive(&vault, vault_fd, vault_err, sizeof(vault_err)) != SV_OK) {
            if (vault_err[0] == '\0')
                snprintf(vault_err, sizeof(vault_err), "libsodium initialisation failed");
        }
        close(vault_fd);
    }

    sv_config cfg;
    int loaded;
    if (config_fd >= 0)   /* a worker's configuration (the file may be root's alone) */
        loaded = sv_config_load_fd(&cfg, config_fd, err, sizeof(err));
    else
        loaded = sv_config_load(&cfg, config_path, err, sizeof(err));
    if (loaded != SV_OK) {
        fprintf(stderr, "streamvibe-job: %s\n", err);
        sv_config_free(&cfg);
        return 1;
    }
    if (sv_log_open(cfg.log_file) != 0)
        perror("streamvibe-job: log_file");
    sv_log_set_pid(getpid());
    err[0] = '\0';
    /* Run by hand (no worker passed the keys), a sync reads the key files
     * itself, before it drops privileges, as streamvibe-fcgi does. The
     * other jobs and the reconciler open no secrets. */
    if (!reconcile && vault_fd < 0 && sv_job_needs_vault(argv[optind]) && sv_crypto_init() == SV_OK &&
        sv_vault_load(&vault, cfg.vault_key_file, cfg.vault_old_key_files, vault_err, sizeof(vault_err)) !=
            SV_OK)
        sv_vault_init(&vault);
    if (vault_err[0] != '\0')   /* the job goes on: only a sync needs the keys, and says so */
        sv_log_warn("job_vault", "error=\"%s\"", vault_err);
    /* Started by the pool master (root), the reconciler runs as the
     * workers do; a job is spawned by a worker and already is that user. */
    sv_identity identity;
    if (sv_identity_resolve(&cfg, &identity, err, sizeof(err)) != SV_OK ||
        sv_identity_drop(&identity) != SV_OK || sv_crypto_init() != SV_OK || sv_http_client_global_init() != SV_OK) {
        sv_log_error("job_start", "error=\"%s\"", err[0] ? err : "initialisation failed");
        sv_vault_free(&vault);
        sv_config_free(&cfg);
        return 1;
    }
    int rc;
    if (launcher) {
        /* The jobs it forks take over its argument space for their title. */
        sv_proctitle_init(argc, argv);
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = sv_job_on_stop;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        rc = sv_job_launcher_run(&cfg, &sv_job_launcher_stop, &sv_job_launcher_reopen);
    } else if (reconcile) {
        int n = sv_job_reconcile(&cfg);
        if (n > 0)
            sv_log_info("job_reconcile", "finished=%d", n);
        rc = n < 0 ? 1 : 0;
    } else {
        sv_job_relay_enable(cfg.job_spool_dir);
        rc = sv_job_supervise(&cfg, &vault, argv[optind], lock_fd);
    }
    sv_vault_free(&vault);
    sv_config_free(&cfg);
    return rc;
}
