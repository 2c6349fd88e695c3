#include "master/sv_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/sv_clock.h"
#include "core/sv_log.h"
#include "core/sv_ratelimit.h"
#include "core/sv_scoreboard.h"
#include "crypto/sv_vault.h"
#include "job/sv_job_relay.h"
#include "job/sv_job_spawn.h"
#include "job/sv_spool.h"
#include "master/sv_identity.h"
#include "master/sv_listen.h"
#include "master/sv_notify.h"
#include "master/sv_pidfile.h"
#include "realtime/sv_rt_listen.h"
#include "worker/sv_worker.h"

/* streamvibe-realtime under the pool (realtime_listen set): one process,
 * started with the workers, respawned when it dies (with a growing delay
 * when it dies young), reloaded with the pool, stopped with it. The
 * master owns its listening socket (see realtime/sv_rt_listen.h) and
 * relays its log lines, so it can run as `user`. */
typedef struct sv_pool_realtime {
    char    program[4096];   /* next to this binary */
    int     listen_fd;       /* -1: not configured */
    char   *listen;          /* what listen_fd was opened for */
    pid_t   pid;
    int64_t started_ms;      /* monotonic */
    int64_t next_spawn_ms;
    int     quick_deaths;
    int     config_error;    /* exited with 78: wait for a reload */
    char   *settings;        /* what it was started with (see sv_pool_realtime_settings) */
    int     log_fd;          /* read end of its log pipe, or -1 */
    char    log_buf[8192];
    size_t  log_len;
} sv_pool_realtime;

typedef struct sv_pool {
    sv_config      cfg;
    sv_identity identity;
    const char    *config_path;
    int            listen_fd;
    int            handoff_fds[2];       /* the workers' queue (sv_worker.c) */
    sv_scoreboard *sb;
    /* Read as the master's user before any fork, so key files need not
     * be readable by the workers' user; workers inherit a copy. */
    sv_vault       vault;
    /* The rate-limit zone: made once, before the first fork, and kept
     * across reloads (rate_limit_zone_entries takes a restart). */
    sv_ratelimit  *ratelimit;
    uint32_t       generation;
    int            stopping;
    int64_t        stop_deadline_ms;     /* monotonic; SIGKILL what is left */
    int64_t        retire_deadline_ms;   /* monotonic; old generation's limit */
    int64_t        next_spawn_ms;        /* respawn back-off after crash loops */
    int            quick_deaths;
    int            initial_spawn_done;
    int            timed_out[SV_SCOREBOARD_SLOTS];
    /* Who runs in each slot, kept here and not in the scoreboard: workers
     * can write the scoreboard, and the master signals these pids as
     * root. 0: free. */
    pid_t          pids[SV_SCOREBOARD_SLOTS];
    uint32_t       generations[SV_SCOREBOARD_SLOTS];
    int64_t        started_ms[SV_SCOREBOARD_SLOTS];   /* wall clock */
    pid_t          reconciler;           /* streamvibe-job --reconcile running, or 0 */
    pid_t          launcher;             /* streamvibe-job --launcher running, or 0 */
    int64_t        launcher_started_ms;  /* monotonic */
    int64_t        launcher_next_ms;     /* monotonic: no respawn before (back-off) */
    int            launcher_quick_deaths;
    int64_t        next_reconcile_ms;    /* monotonic */
    sv_pool_realtime rt;
} sv_pool;

static int sv_pool_signal_pipe[2] = { -1, -1 };

static void sv_pool_on_signal(int signo)
{
    int saved = errno;
    unsigned char b = (unsigned char)signo;
    ssize_t n = write(sv_pool_signal_pipe[1], &b, 1);
    (void)n;
    errno = saved;
}

static int sv_pool_install_signals(void)
{
    if (pipe2(sv_pool_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = sv_pool_on_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    return 0;
}

/* The job spool, owned by the workers' user: workers write descriptors
 * there and the jobs they spawn remove them. */
static void sv_pool_prepare_spool(sv_pool *pool)
{
    char err[512] = "";
    if (sv_spool_prepare(pool->cfg.job_spool_dir, err, sizeof(err)) != SV_OK ||
        (pool->identity.drop &&
         chown(pool->cfg.job_spool_dir, pool->identity.uid, pool->identity.gid) != 0)) {
        sv_log_warn("job_spool", "msg=\"jobs will be refused\" error=\"%s\"",
                    err[0] ? err : strerror(errno));
    }
}

/* Tells the service manager (streamvibe.service is Type=notify); the
 * pool serves whether or not it listens. */
static void sv_pool_notify(const char *state)
{
    if (sv_notify(state) != SV_OK)
        sv_log_warn("notify", "error=\"%s\"", strerror(errno));
}

/* --- workers ----------------------------------------------------------- */

static int sv_pool_live_workers(const sv_pool *pool, int current_only)
{
    int n = 0;
    for (int i = 0; i < SV_SCOREBOARD_SLOTS; i++)
        if (pool->pids[i] > 0 && (!current_only || pool->generations[i] == pool->generation))
            n++;
    return n;
}

static int sv_pool_spawn(sv_pool *pool)
{
    int index = -1;
    for (int i = 0; i < SV_SCOREBOARD_SLOTS; i++) {
        if (pool->pids[i] == 0) {
            index = i;
            break;
        }
    }
    if (index < 0) {
        sv_log_error("spawn", "error=\"scoreboard full\"");
        return -1;
    }

    sv_slot *slot = sv_scoreboard_slot_prepare(pool->sb, index, pool->generation);
    pool->timed_out[index] = 0;

    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t master = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Child: drop the master's signal plumbing while every signal is
         * still blocked; the worker unblocks them only once its own
         * handlers are installed, so an early SIGTERM is not lost in the
         * master's handler. */
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        sigaction(SIGCHLD, &sa, NULL);
        close(sv_pool_signal_pipe[0]);
        close(sv_pool_signal_pipe[1]);
        if (sv_identity_drop(&pool->identity) != SV_OK) {
            sv_log_error("worker_start", "error=\"cannot become user %s: %s\"",
                         pool->identity.user, strerror(errno));
            _exit(1);
        }
        sv_worker w;
        sv_worker_init(&w, &pool->cfg, pool->sb, index, master);
        w.vault = &pool->vault;
        w.ratelimit = pool->ratelimit;
        w.handoff_fds[0] = pool->handoff_fds[0];
        w.handoff_fds[1] = pool->handoff_fds[1];
        int rc = sv_worker_serve_fcgi(&w, pool->listen_fd);
        sv_worker_cleanup(&w);
        _exit(rc);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        sv_log_error("spawn", "error=\"fork: %s\"", strerror(errno));
        sv_slot_free(slot);
        return -1;
    }
    pool->pids[index] = pid;
    pool->generations[index] = pool->generation;
    pool->started_ms[index] = sv_clock_wall_ms();
    if (pool->initial_spawn_done)
        sv_scoreboard_count(pool->sb, SV_COUNT_RESPAWNED);
    return 0;
}

static void sv_pool_signal_workers(sv_pool *pool, int signo, int old_generation_only)
{
    for (int i = 0; i < SV_SCOREBOARD_SLOTS; i++) {
        if (pool->pids[i] <= 0)
            continue;
        if (old_generation_only && pool->generations[i] == pool->generation)
            continue;
        kill(pool->pids[i], signo);
    }
}

/* Starts streamvibe-job with the pool's configuration and mode
 * ("--reconcile", "--launcher"): its pid, or -1 with errno. */
static pid_t sv_pool_start_job_program(sv_pool *pool, const char *mode, char *program, size_t len)
{
    sv_job_program(&pool->cfg, program, len);
    char *args[5];
    int n = 0;
    args[n++] = program;
    if (pool->config_path != NULL) {
        args[n++] = "--config";
        args[n++] = (char *)pool->config_path;
    }
    args[n++] = (char *)mode;
    args[n] = NULL;
    /* The master passes SIGUSR1 (reopen the log) on to the launcher, and
     * its default would end a launcher that has not yet installed its
     * handler (the dynamic loader alone takes ~17 ms, far longer under
     * ASan): it starts with SIGUSR1 blocked, held until it unblocks. */
    sigset_t reopen;
    sigemptyset(&reopen);
    sigaddset(&reopen, SIGUSR1);
    return sv_job_spawn(program, args, -1, -1, -1, &reopen);
}

/* Jobs whose supervisor died (SIGKILL, host restart) still hold their
 * spool descriptor: a short-lived streamvibe-job --reconcile, started at
 * start and every job_reconcile_interval seconds, finishes them. The
 * master itself keeps no database connection. */
static void sv_pool_reconcile(sv_pool *pool)
{
    int64_t now = sv_clock_mono_ms();
    if (pool->stopping || pool->reconciler != 0 || now < pool->next_reconcile_ms)
        return;
    pool->next_reconcile_ms = now + (int64_t)pool->cfg.job_reconcile_interval * 1000;
    char program[4096];
    pool->reconciler = sv_pool_start_job_program(pool, "--reconcile", program, sizeof(program));
    if (pool->reconciler < 0) {
        sv_log_warn("job_reconcile", "msg=\"cannot start streamvibe-job\" program=%s error=\"%s\"",
                    program, strerror(errno));
        pool->reconciler = 0;
    }
}

/* The job launcher (job/sv_job_launcher.c): a streamvibe-job the workers
 * hand accepted jobs to, so that a job is forked from a process that has
 * loaded and initialised everything instead of exec'd, and runs its
 * statements on the launcher's connection instead of opening one. Like
 * the reconciler it starts as root, reads the configuration and becomes
 * the workers' user. Workers start jobs themselves while it is not
 * there; jobs it forked never depend on it. */
static void sv_pool_launcher_check(sv_pool *pool)
{
    int64_t now = sv_clock_mono_ms();
    if (pool->stopping || pool->launcher != 0 || !pool->cfg.job_launcher || now < pool->launcher_next_ms)
        return;
    char program[4096];
    pool->launcher = sv_pool_start_job_program(pool, "--launcher", program, sizeof(program));
    pool->launcher_started_ms = now;
    if (pool->launcher < 0) {
        sv_log_warn("job_launcher", "msg=\"cannot start streamvibe-job; workers start jobs themselves\" "
                    "program=%s error=\"%s\"", program, strerror(errno));
        pool->launcher = 0;
        pool->launcher_next_ms = now + 30000;
    }
}

static void sv_pool_launcher_exited(sv_pool *pool, int status)
{
    int64_t now = sv_clock_mono_ms();
    /* A launcher killed outright leaves its socket behind; nothing
     * listens there until the next one binds it anew. (A socket that
     * answers is another pool's, on the same spool: not ours to remove.) */
    char sock[256];
    if (sv_job_relay_path(pool->cfg.job_spool_dir, sock, sizeof(sock)) == SV_OK &&
        !sv_job_relay_listening(pool->cfg.job_spool_dir))
        unlink(sock);
    int asked = pool->stopping || pool->launcher_next_ms < 0;
    pool->launcher = 0;
    if (asked && !pool->stopping) {   /* restarted for a reload: at once */
        pool->launcher_next_ms = 0;
        return;
    }
    if (asked)
        return;
    sv_log_warn("job_launcher", "msg=\"exited; workers start jobs themselves until it is back\" "
                "status=%d signal=%d", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    /* Dying at once again and again (a bad spool, say): wait longer each
     * time, up to a minute. */
    pool->launcher_quick_deaths = now - pool->launcher_started_ms < 10000 ? pool->launcher_quick_deaths + 1 : 0;
    int64_t delay = pool->launcher_quick_deaths ? 1000LL << (pool->launcher_quick_deaths < 6 ? pool->launcher_quick_deaths : 6) : 0;
    pool->launcher_next_ms = now + (delay > 60000 ? 60000 : delay);
}

/* A reload: the launcher runs with the configuration it read, so a new
 * one takes its place (the jobs it forked go on). */
static void sv_pool_launcher_reload(sv_pool *pool)
{
    if (pool->launcher > 0) {
        pool->launcher_next_ms = -1;   /* its exit was asked for */
        kill(pool->launcher, SIGTERM);
    } else {
        pool->launcher_next_ms = 0;
        pool->launcher_quick_deaths = 0;
    }
}

/* --- streamvibe-realtime --------------------------------------------- */

/* Opens (or closes) the daemon's socket for the current configuration. */
static void sv_pool_realtime_listen(sv_pool *pool)
{
    sv_pool_realtime *rt = &pool->rt;
    const char *want = pool->cfg.realtime_listen;
    if (rt->listen != NULL && strcmp(rt->listen, want) == 0)
        return;
    if (rt->listen_fd >= 0) {
        close(rt->listen_fd);
        if (sv_rt_listen_is_unix(rt->listen))
            unlink(rt->listen);
    }
    rt->listen_fd = -1;
    free(rt->listen);
    rt->listen = NULL;
    if (want[0] == '\0')
        return;
    char err[512];
    if (pool->cfg.jwt_secret[0] == '\0') {
        sv_log_error("realtime", "msg=\"realtime_listen is set but jwt_secret is not: not started\"");
        return;
    }
    rt->listen_fd = sv_rt_listen_open(&pool->cfg, err, sizeof(err));
    if (rt->listen_fd < 0) {
        sv_log_error("realtime", "msg=\"cannot listen, not started\" error=\"%s\"", err);
        return;
    }
    rt->listen = strdup(want);
}

/* The settings the daemon runs with: a reload that changes them restarts
 * it (it cannot re-read a file that only root may read). Malloc'd. */
static char *sv_pool_realtime_settings(const sv_config *cfg)
{
    char *s = NULL;
    if (asprintf(&s, "%s\n%s\n%d %d %d %ld %ld %d %d %s %s", cfg->database_url, cfg->jwt_secret,
                 cfg->listen_backlog, cfg->realtime_max_sockets, cfg->realtime_max_channels,
                 cfg->realtime_max_message, cfg->realtime_send_buffer, cfg->realtime_handshake_timeout,
                 cfg->realtime_idle_timeout, cfg->user, cfg->group) < 0)
        return NULL;
    return s;
}

static void sv_pool_realtime_spawn(sv_pool *pool)
{
    sv_pool_realtime *rt = &pool->rt;
    int logpipe[2], cfgpipe[2];
    size_t cfglen = 0;
    char *cfg = sv_config_serialize(&pool->cfg, &cfglen);
    if (cfg == NULL || cfglen > 65536 || pipe2(logpipe, O_CLOEXEC) != 0) {
        sv_log_error("realtime", "error=\"cannot prepare its configuration: %s\"", strerror(errno));
        free(cfg);
        rt->next_spawn_ms = sv_clock_mono_ms() + 1000;
        return;
    }
    /* The configuration goes through a pipe (it fits in the pipe's
     * buffer, so it is written before the daemon exists). */
    if (pipe2(cfgpipe, O_CLOEXEC) != 0 || write(cfgpipe[1], cfg, cfglen) != (ssize_t)cfglen) {
        sv_log_error("realtime", "error=\"pipe: %s\"", strerror(errno));
        free(cfg);
        close(logpipe[0]);
        close(logpipe[1]);
        rt->next_spawn_ms = sv_clock_mono_ms() + 1000;
        return;
    }
    free(cfg);
    close(cfgpipe[1]);
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t master = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; sig++)
            sigaction(sig, &sa, NULL);
        if (sv_identity_drop(&pool->identity) != SV_OK) {
            sv_log_error("realtime", "error=\"cannot become user %s: %s\"", pool->identity.user, strerror(errno));
            _exit(1);
        }
        /* After the identity change, which clears it: the daemon stops
         * with the master even if the master is killed. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != master)
            _exit(1);
        /* Its socket as descriptor 3, its log pipe as 4, its configuration
         * as 5, nothing else. */
        int lfd = fcntl(rt->listen_fd, F_DUPFD, 16), pfd = fcntl(logpipe[1], F_DUPFD, 16),
            cfd = fcntl(cfgpipe[0], F_DUPFD, 16);
        if (lfd < 0 || pfd < 0 || cfd < 0)
            _exit(1);
        sv_log_use_fd(pfd); /* the master's log descriptor may be 3, 4 or 5 */
        if (dup2(lfd, SV_RT_LISTEN_FD) < 0 || dup2(pfd, 4) < 0 || dup2(cfd, 5) < 0)
            _exit(1);
        sv_log_use_fd(4);
        close_range(6, ~0U, 0);
        char pidtext[24];
        snprintf(pidtext, sizeof(pidtext), "%d", (int)getpid());
        setenv("LISTEN_PID", pidtext, 1);
        setenv("LISTEN_FDS", "1", 1);
        setenv("STREAMVIBE_LOG_FD", "4", 1);
        setenv("STREAMVIBE_CONFIG_FD", "5", 1);
        sigprocmask(SIG_SETMASK, &old, NULL);
        char *argv[] = { "streamvibe-realtime", NULL };
        execv(rt->program, argv);
        sv_log_error("realtime", "error=\"exec %s: %s\"", rt->program, strerror(errno));
        _exit(127);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(logpipe[1]);
    close(cfgpipe[0]);
    if (pid < 0) {
        close(logpipe[0]);
        sv_log_error("realtime", "error=\"fork: %s\"", strerror(errno));
        rt->next_spawn_ms = sv_clock_mono_ms() + 1000;
        return;
    }
    if (rt->log_fd >= 0)
        close(rt->log_fd);
    rt->log_fd = logpipe[0];
    fcntl(rt->log_fd, F_SETFL, O_NONBLOCK);
    rt->log_len = 0;
    rt->pid = pid;
    rt->started_ms = sv_clock_mono_ms();
    free(rt->settings);
    rt->settings = sv_pool_realtime_settings(&pool->cfg);
}

/* Writes out the daemon's complete log lines. */
static void sv_pool_realtime_log(sv_pool *pool, int eof)
{
    sv_pool_realtime *rt = &pool->rt;
    if (rt->log_fd < 0)
        return;
    for (;;) {
        ssize_t n = read(rt->log_fd, rt->log_buf + rt->log_len, sizeof(rt->log_buf) - rt->log_len);
        if (n > 0) {
            rt->log_len += (size_t)n;
            char *nl = memrchr(rt->log_buf, '\n', rt->log_len);
            if (nl != NULL) {
                size_t whole = (size_t)(nl - rt->log_buf) + 1;
                sv_log_write_raw(rt->log_buf, whole);
                memmove(rt->log_buf, rt->log_buf + whole, rt->log_len - whole);
                rt->log_len -= whole;
            } else if (rt->log_len == sizeof(rt->log_buf)) {
                sv_log_write_raw(rt->log_buf, rt->log_len);
                rt->log_len = 0;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || eof) {
            close(rt->log_fd);
            rt->log_fd = -1;
        }
        return;
    }
}

/* The daemon exited: back off when it keeps dying young; a configuration
 * it refuses (exit 78) waits for a reload. */
static void sv_pool_realtime_exited(sv_pool *pool, int status)
{
    sv_pool_realtime *rt = &pool->rt;
    int64_t lived = sv_clock_mono_ms() - rt->started_ms;
    sv_pool_realtime_log(pool, 1);
    if (WIFSIGNALED(status))
        sv_log(pool->stopping ? "info" : "warn", "realtime_exit", "pid=%d signal=%d lived_ms=%lld",
               (int)rt->pid, WTERMSIG(status), (long long)lived);
    else
        sv_log(pool->stopping || WEXITSTATUS(status) == 0 ? "info" : "warn", "realtime_exit",
               "pid=%d status=%d lived_ms=%lld", (int)rt->pid, WEXITSTATUS(status), (long long)lived);
    rt->pid = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 78) {
        rt->config_error = 1;
        sv_log_error("realtime", "msg=\"streamvibe-realtime refused the configuration; not restarted until a reload\"");
        return;
    }
    if (lived < 5000) {
        rt->quick_deaths++;
        int64_t delay = 500LL << (rt->quick_deaths > 6 ? 6 : rt->quick_deaths);
        rt->next_spawn_ms = sv_clock_mono_ms() + (delay > 30000 ? 30000 : delay);
    } else {
        rt->quick_deaths = 0;
        rt->next_spawn_ms = sv_clock_mono_ms() + 100;
    }
}

static void sv_pool_realtime_check(sv_pool *pool)
{
    sv_pool_realtime *rt = &pool->rt;
    sv_pool_realtime_log(pool, 0);
    if (!pool->stopping && rt->pid == 0 && rt->listen_fd >= 0 && !rt->config_error &&
        sv_clock_mono_ms() >= rt->next_spawn_ms)
        sv_pool_realtime_spawn(pool);
}

/* SIGHUP: when the daemon's address or settings changed it is restarted
 * (its clients reconnect and rejoin on their own); otherwise it is left
 * alone, its sockets open. */
static void sv_pool_realtime_reload(sv_pool *pool)
{
    sv_pool_realtime *rt = &pool->rt;
    const char *before = rt->listen ? rt->listen : "";
    int moved = strcmp(before, pool->cfg.realtime_listen) != 0;
    char *now = sv_pool_realtime_settings(&pool->cfg);
    int changed = now == NULL || rt->settings == NULL || strcmp(now, rt->settings) != 0;
    free(now);
    rt->config_error = 0;
    rt->quick_deaths = 0;
    rt->next_spawn_ms = 0;
    if (rt->pid > 0 && (moved || changed)) {
        sv_log_info("realtime", "msg=\"settings changed: restarting streamvibe-realtime\"");
        kill(rt->pid, SIGTERM);
    }
    if (moved)
        sv_pool_realtime_listen(pool);
}

static void sv_pool_reap(sv_pool *pool)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == pool->reconciler) {
            pool->reconciler = 0;
            continue;
        }
        if (pid == pool->launcher) {
            sv_pool_launcher_exited(pool, status);
            continue;
        }
        if (pid == pool->rt.pid) {
            sv_pool_realtime_exited(pool, status);
            continue;
        }
        for (int i = 0; i < SV_SCOREBOARD_SLOTS; i++) {
            sv_slot *slot = &pool->sb->slots[i];
            if (pool->pids[i] != pid)
                continue;
            uint32_t generation = pool->generations[i];
            int64_t lived = sv_clock_wall_ms() - pool->started_ms[i];
            /* Access lines of answered requests the worker had not
             * written yet: they come before its exit in the log. */
            size_t held;
            const char *lines = sv_slot_held_log(slot, &held);
            if (held > 0)
                sv_log_write_raw(lines, held);
            int crashed = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
            if (WIFSIGNALED(status))
                sv_log(pool->timed_out[i] || pool->stopping ? "info" : "warn", "worker_exit",
                       "worker=%d signal=%d lived_ms=%lld generation=%u", (int)pid,
                       WTERMSIG(status), (long long)lived, generation);
            else
                sv_log_info("worker_exit", "worker=%d status=%d lived_ms=%lld generation=%u",
                            (int)pid, WEXITSTATUS(status), (long long)lived, generation);
            /* Workers that die right after starting (bad config, missing
             * library) would otherwise be respawned in a tight loop. */
            if (crashed && !pool->timed_out[i] && lived < 1000 && generation == pool->generation) {
                pool->quick_deaths++;
                int delay = pool->quick_deaths * 200;
                pool->next_spawn_ms = sv_clock_mono_ms() + (delay > 5000 ? 5000 : delay);
            } else {
                pool->quick_deaths = 0;
            }
            pool->timed_out[i] = 0;
            pool->pids[i] = 0;
            sv_slot_free(slot);
            break;
        }
    }
}

/* A request past request_timeout cannot be interrupted safely inside
 * libpq or a handler, so the worker is killed (php-fpm's
 * request_terminate_timeout) and replaced; nginx answers the client. */
static void sv_pool_enforce_timeouts(sv_pool *pool)
{
    if (pool->cfg.request_timeout <= 0)
        return;
    int64_t now = sv_clock_mono_ms();
    int64_t limit = (int64_t)pool->cfg.request_timeout * 1000;
    for (int i = 0; i < SV_SCOREBOARD_SLOTS; i++) {
        int64_t started;
        sv_slot_view view;
        if (pool->pids[i] <= 0 || pool->timed_out[i] ||
            !sv_slot_busy_since(&pool->sb->slots[i], &started))
            continue;
        int64_t running = now - started;
        if (running <= limit || !sv_scoreboard_slot_view(pool->sb, i, &view))
            continue;
        /* The view's strings are terminated: the worker wrote them. */
        const char *method = view.method, *path = view.path, *request_id = view.request_id;
        char qpath[256], qid[160];
        sv_log_error("request_timeout",
                     "msg=\"request timed out, killing worker\" worker=%d method=%s path=%s request_id=%s running_ms=%lld limit_s=%d",
                     (int)pool->pids[i], method, sv_log_quote(path, qpath, sizeof(qpath)),
                     sv_log_quote(request_id, qid, sizeof(qid)), (long long)running,
                     pool->cfg.request_timeout);
        pool->timed_out[i] = 1;
        sv_scoreboard_count(pool->sb, SV_COUNT_TIMED_OUT);
        kill(pool->pids[i], SIGKILL);
    }
}

/* Workers that run as another user open log_file again by name after a
 * rotation (SIGUSR1): the file must be theirs. */
static void sv_pool_share_log(const sv_pool *pool)
{
    if (geteuid() == 0 && pool->identity.drop && sv_log_give_to(pool->identity.uid) != 0)
        sv_log_warn("log_file", "msg=\"cannot give log_file to the workers' user\" user=%s error=\"%s\"",
                    pool->identity.user, strerror(errno));
}

/* SIGUSR1 (logrotate's postrotate, as for nginx and php-fpm): the master
 * opens log_file by name again, then tells every worker to do the same.
 * Lines written meanwhile go to the old file, which logrotate renamed,
 * so none is lost; a worker that cannot reopen keeps the old file. */
static void sv_pool_reopen_logs(sv_pool *pool)
{
    if (sv_log_open(pool->cfg.log_file) != 0) {
        sv_log_error("log_reopen", "msg=\"cannot open log_file, keeping the old one\" error=\"%s\"",
                     strerror(errno));
        return;
    }
    sv_pool_share_log(pool);
    sv_log_info("log_reopen", "msg=\"log_file reopened\"");
    sv_pool_signal_workers(pool, SIGUSR1, 0);
    /* The launcher lives as long as the pool and logs too (the jobs it
     * forks open log_file by name). */
    if (pool->launcher > 0)
        kill(pool->launcher, SIGUSR1);
}

static void sv_pool_reload(sv_pool *pool)
{
    sv_config fresh;
    char err[512];

    sv_identity identity;
    sv_vault vault;
    if (sv_config_load(&fresh, pool->config_path, err, sizeof(err)) != SV_OK ||
        sv_identity_resolve(&fresh, &identity, err, sizeof(err)) != SV_OK ||
        sv_vault_load(&vault, fresh.vault_key_file, fresh.vault_old_key_files, err, sizeof(err)) !=
            SV_OK) {
        sv_log_error("reload", "msg=\"configuration rejected, keeping the running one\" error=\"%s\"", err);
        sv_config_free(&fresh);
        return;
    }
    if (fresh.rate_limit_zone_entries != pool->cfg.rate_limit_zone_entries)
        sv_log_warn("reload", "msg=\"rate_limit_zone_entries changed; takes effect after a restart\"");
    if (strcmp(fresh.listen, pool->cfg.listen) != 0)
        sv_log_warn("reload", "msg=\"listen changed; takes effect after a restart\" listen=%s", pool->cfg.listen);
    free(fresh.listen);
    fresh.listen = strdup(pool->cfg.listen);
    if (fresh.listen == NULL) {
        sv_config_free(&fresh);
        sv_vault_free(&vault);
        return;
    }
    /* Old workers keep the copy they were forked with. */
    sv_vault_free(&pool->vault);
    pool->vault = vault;
    if (sv_log_open(fresh.log_file) != 0)
        sv_log_error("reload", "msg=\"cannot open log_file\" error=\"%s\"", strerror(errno));
    sv_config_free(&pool->cfg);
    pool->cfg = fresh;
    if (geteuid() == 0 && !identity.drop && pool->identity.drop)
        sv_log_warn("reload", "msg=\"user removed: new workers run as root\"");
    pool->identity = identity;
    sv_pool_prepare_spool(pool);
    sv_pool_share_log(pool);

    /* New workers start accepting at once on the same socket; the old
     * ones finish what they are serving and exit, so nothing queued or in
     * flight is lost. */
    pool->generation++;
    sv_scoreboard_new_generation(pool->sb, pool->generation, (uint32_t)pool->cfg.workers);
    pool->quick_deaths = 0;
    pool->next_spawn_ms = 0;
    while (sv_pool_live_workers(pool, 1) < pool->cfg.workers)
        if (sv_pool_spawn(pool) != 0)
            break;
    sv_pool_signal_workers(pool, SIGTERM, 1);
    pool->retire_deadline_ms = sv_clock_mono_ms() + (int64_t)pool->cfg.shutdown_timeout * 1000;
    sv_pool_realtime_reload(pool);
    sv_pool_launcher_reload(pool);
    sv_log_info("reload", "generation=%u workers=%d", pool->generation, pool->cfg.workers);
}

static void sv_pool_kill_overdue(sv_pool *pool)
{
    int64_t now = sv_clock_mono_ms();
    if (pool->retire_deadline_ms && now >= pool->retire_deadline_ms) {
        for (int i = 0; i < SV_SCOREBOARD_SLOTS; i++) {
            if (pool->pids[i] > 0 && pool->generations[i] != pool->generation) {
                sv_log_warn("reload", "msg=\"old worker did not finish in time, killing\" worker=%d",
                            (int)pool->pids[i]);
                kill(pool->pids[i], SIGKILL);
            }
        }
        pool->retire_deadline_ms = 0;
    }
    if (pool->stopping && now >= pool->stop_deadline_ms) {
        sv_log_warn("stop", "msg=\"workers did not finish in time, killing\"");
        sv_pool_signal_workers(pool, SIGKILL, 0);
        if (pool->rt.pid > 0)
            kill(pool->rt.pid, SIGKILL);
        if (pool->launcher > 0)
            kill(pool->launcher, SIGKILL);
        if (pool->reconciler > 0)
            kill(pool->reconciler, SIGKILL);
        pool->stop_deadline_ms = now + 60000;
    }
}

static void sv_pool_begin_stop(sv_pool *pool, int signo)
{
    if (pool->stopping)
        return;
    pool->stopping = 1;
    /* Before the signal: leaving workers must not pass connections on. */
    sv_scoreboard_stop(pool->sb);
    sv_log_info("stop", "signal=%d msg=\"finishing in-flight requests\"", signo);
    sv_pool_notify("STOPPING=1");
    /* Remove the socket first so nginx stops sending new requests here;
     * accepted and queued connections are still served. */
    if (sv_listen_is_unix(&pool->cfg))
        unlink(pool->cfg.listen);
    sv_pool_signal_workers(pool, SIGTERM, 0);
    if (pool->rt.pid > 0)
        kill(pool->rt.pid, SIGTERM);
    if (pool->launcher > 0)
        kill(pool->launcher, SIGTERM);
    /* Nothing of the pool but jobs may outlive the master: under systemd
     * (KillMode=process) what is left when it exits stays running. A
     * reconciler stopped halfway loses nothing: finishing a job is one
     * idempotent transaction, and the next one redoes what is left. */
    if (pool->reconciler > 0)
        kill(pool->reconciler, SIGTERM);
    pool->stop_deadline_ms = sv_clock_mono_ms() + (int64_t)pool->cfg.shutdown_timeout * 1000;
}

int sv_pool_run(sv_config *cfg, const char *config_path)
{
    sv_pool pool;
    char err[512];

    memset(&pool, 0, sizeof(pool));
    pool.rt.listen_fd = pool.rt.log_fd = -1;
    pool.cfg = *cfg;            /* the pool owns the strings from now on */
    memset(cfg, 0, sizeof(*cfg));
    pool.config_path = config_path;

    if (sv_log_open(pool.cfg.log_file) != 0) {
        fprintf(stderr, "streamvibe-fcgi: cannot open log_file %s: %s\n", pool.cfg.log_file,
                strerror(errno));
        sv_config_free(&pool.cfg);
        return 1;
    }
    pool.sb = sv_scoreboard_create();
    if (pool.sb == NULL || sv_pool_install_signals() != 0) {
        sv_log_error("start", "error=\"%s\"", strerror(errno));
        sv_config_free(&pool.cfg);
        return 1;
    }
    /* The master holds both ends for the pool's lifetime, so connections
     * queued there outlive the worker that passed them. Connected pairs
     * are not subject to net.unix.max_dgram_qlen, only to the buffer. */
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pool.handoff_fds) != 0) {
        sv_log_error("start", "error=\"socketpair: %s\"", strerror(errno));
        sv_config_free(&pool.cfg);
        return 1;
    }
    if (sv_identity_resolve(&pool.cfg, &pool.identity, err, sizeof(err)) != SV_OK) {
        sv_log_error("start", "error=\"%s\"", err);
        fprintf(stderr, "streamvibe-fcgi: %s\n", err);
        sv_config_free(&pool.cfg);
        return 1;
    }
    pool.ratelimit = sv_ratelimit_create((uint32_t)pool.cfg.rate_limit_zone_entries);
    if (pool.ratelimit == NULL) {
        sv_log_error("start", "error=\"rate limit zone: %s\"", strerror(errno));
        sv_config_free(&pool.cfg);
        return 1;
    }
    if (sv_vault_load(&pool.vault, pool.cfg.vault_key_file, pool.cfg.vault_old_key_files, err,
                      sizeof(err)) != SV_OK) {
        sv_log_error("start", "error=\"%s\"", err);
        fprintf(stderr, "streamvibe-fcgi: %s\n", err);
        sv_config_free(&pool.cfg);
        return 1;
    }
    pool.listen_fd = sv_listen_open(&pool.cfg, err, sizeof(err));
    if (pool.listen_fd < 0 || sv_pidfile_write(pool.cfg.pid_file, err, sizeof(err)) != 0) {
        sv_log_error("start", "error=\"%s\"", err);
        fprintf(stderr, "streamvibe-fcgi: %s\n", err);
        if (pool.listen_fd >= 0 && sv_listen_is_unix(&pool.cfg))
            unlink(pool.cfg.listen);
        sv_config_free(&pool.cfg);
        return 1;
    }

    sv_pool_prepare_spool(&pool);
    sv_log_set_pid(getpid());
    /* The daemon's program: next to this one (as `make install` puts it). */
    ssize_t plen = readlink("/proc/self/exe", pool.rt.program, sizeof(pool.rt.program) - 32);
    char *slash = plen > 0 ? memrchr(pool.rt.program, '/', (size_t)plen) : NULL;
    if (slash != NULL)
        strcpy(slash + 1, "streamvibe-realtime");
    else
        strcpy(pool.rt.program, SV_SBINDIR "/streamvibe-realtime");
    sv_pool_realtime_listen(&pool);
    sv_pool_share_log(&pool);
    pool.generation = 1;
    sv_scoreboard_open(pool.sb, getpid(), (uint32_t)pool.cfg.workers);
    sv_log_info("start", "listen=%s workers=%d max_requests=%d request_timeout=%d user=%s",
                pool.cfg.listen, pool.cfg.workers, pool.cfg.max_requests, pool.cfg.request_timeout,
                pool.identity.drop ? pool.identity.user : "-");
    if (geteuid() == 0 && !pool.identity.drop)
        sv_log_warn("start", "msg=\"workers run as root; set user (e.g. nobody)\"");
    for (int i = 0; i < pool.cfg.workers; i++)
        sv_pool_spawn(&pool);
    pool.initial_spawn_done = 1;
    /* The socket listens and the workers are forked: connections are
     * accepted from now on, whatever the workers' start-up costs. */
    sv_pool_notify("READY=1");

    for (;;) {
        struct pollfd pfd[2] = { { .fd = sv_pool_signal_pipe[0], .events = POLLIN },
                                 { .fd = pool.rt.log_fd, .events = POLLIN } };
        poll(pfd, pool.rt.log_fd >= 0 ? 2 : 1, 200);
        unsigned char sigs[64];
        ssize_t n;
        while ((n = read(sv_pool_signal_pipe[0], sigs, sizeof(sigs))) > 0) {
            for (ssize_t i = 0; i < n; i++) {
                switch (sigs[i]) {
                case SIGCHLD:
                    break;
                case SIGHUP:
                case SIGUSR2:           /* php-fpm's reload: its operators send it */
                    if (!pool.stopping) {
                        sv_pool_notify("RELOADING=1");
                        sv_pool_reload(&pool);
                        sv_pool_notify("READY=1");
                    }
                    break;
                case SIGUSR1:
                    sv_pool_reopen_logs(&pool);
                    break;
                default:
                    sv_pool_begin_stop(&pool, sigs[i]);
                    break;
                }
            }
        }
        sv_pool_reap(&pool);
        sv_pool_realtime_check(&pool);
        if (pool.stopping && sv_pool_live_workers(&pool, 0) == 0 && pool.rt.pid == 0 && pool.launcher == 0 &&
            pool.reconciler == 0)
            break;
        sv_pool_enforce_timeouts(&pool);
        sv_pool_kill_overdue(&pool);
        sv_pool_reconcile(&pool);
        sv_pool_launcher_check(&pool);
        if (!pool.stopping && sv_clock_mono_ms() >= pool.next_spawn_ms) {
            while (sv_pool_live_workers(&pool, 1) < pool.cfg.workers)
                if (sv_pool_spawn(&pool) != 0 || pool.quick_deaths > 0)
                    break;
        }
    }

    close(pool.listen_fd);
    sv_pool_realtime_log(&pool, 1);
    pool.cfg.realtime_listen[0] = '\0';
    sv_pool_realtime_listen(&pool); /* closes it (and removes a unix socket) */
    free(pool.rt.settings);
    close(pool.handoff_fds[0]);
    close(pool.handoff_fds[1]);
    if (pool.cfg.pid_file[0])
        unlink(pool.cfg.pid_file);
    sv_log_info("stop", "msg=\"stopped\"");
    sv_scoreboard_destroy(pool.sb);
    sv_vault_free(&pool.vault);
    sv_ratelimit_destroy(pool.ratelimit);
    sv_config_free(&pool.cfg);
    return 0;
}
