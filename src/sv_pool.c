#include "sv_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sv_log.h"
#include "sv_scoreboard.h"
#include "sv_worker.h"

typedef struct sv_pool {
    sv_config      cfg;
    sv_pool_identity identity;
    const char    *config_path;
    int            listen_fd;
    int            handoff_fds[2];       /* the workers' queue (sv_worker.c) */
    sv_scoreboard *sb;
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
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    return 0;
}

/* --- listening socket -------------------------------------------------- */

static int sv_pool_listen_unix(const sv_config *cfg, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    const char *path = cfg->listen;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "listen path too long: %s", path);
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    /* A socket file nobody accepts on is left over from a crash; one that
     * answers belongs to a running server we must not steal from. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "%s exists and is not a socket", path);
            close(fd);
            return -1;
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            snprintf(err, errlen, "%s is in use by another server", path);
            close(fd);
            return -1;
        }
        close(fd);
        unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(err, errlen, "socket: %s", strerror(errno));
            return -1;
        }
    }

    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc != 0) {
        snprintf(err, errlen, "bind %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (chmod(path, (mode_t)cfg->listen_mode) != 0) {
        snprintf(err, errlen, "chmod %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    if (cfg->listen_owner[0]) {
        struct passwd *pw = getpwnam(cfg->listen_owner);
        if (pw == NULL) {
            snprintf(err, errlen, "listen_owner: no user %s", cfg->listen_owner);
            close(fd);
            return -1;
        }
        uid = pw->pw_uid;
    }
    if (cfg->listen_group[0]) {
        struct group *gr = getgrnam(cfg->listen_group);
        if (gr == NULL) {
            snprintf(err, errlen, "listen_group: no group %s", cfg->listen_group);
            close(fd);
            return -1;
        }
        gid = gr->gr_gid;
    }
    if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(path, uid, gid) != 0) {
        snprintf(err, errlen, "chown %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, cfg->listen_backlog) != 0) {
        snprintf(err, errlen, "listen %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int sv_pool_listen_tcp(const sv_config *cfg, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(cfg->listen, ':');
    size_t hlen = (size_t)(colon - cfg->listen);
    if (hlen >= sizeof(host)) {
        snprintf(err, errlen, "listen: host too long");
        return -1;
    }
    memcpy(host, cfg->listen, hlen);
    host[hlen] = '\0';
    if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') {
        memmove(host, host + 1, hlen - 2);
        host[hlen - 2] = '\0';
    }

    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE };
    struct addrinfo *ai;
    int gai = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
    if (gai != 0) {
        snprintf(err, errlen, "listen %s: %s", cfg->listen, gai_strerror(gai));
        return -1;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, cfg->listen_backlog) != 0) {
        snprintf(err, errlen, "listen %s: %s", cfg->listen, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    return fd;
}

int sv_pool_listen(const sv_config *cfg, char *err, size_t errlen)
{
    if (cfg->listen[0] == '/' || cfg->listen[0] == '.' || strchr(cfg->listen, ':') == NULL)
        return sv_pool_listen_unix(cfg, err, errlen);
    return sv_pool_listen_tcp(cfg, err, errlen);
}

static int sv_pool_is_unix(const sv_config *cfg)
{
    return cfg->listen[0] == '/' || cfg->listen[0] == '.' || strchr(cfg->listen, ':') == NULL;
}

/* --- pid file ---------------------------------------------------------- */

static int sv_pool_write_pid_file(const char *path, char *err, size_t errlen)
{
    if (path == NULL || *path == '\0')
        return 0;
    FILE *fp = fopen(path, "r");
    if (fp != NULL) {
        long pid = 0;
        if (fscanf(fp, "%ld", &pid) == 1 && pid > 0 && pid != getpid() && kill((pid_t)pid, 0) == 0) {
            fclose(fp);
            snprintf(err, errlen, "%s: server already running as pid %ld", path, pid);
            return -1;
        }
        fclose(fp);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char text[32];
    int n = snprintf(text, sizeof(text), "%d\n", (int)getpid());
    if (write(fd, text, (size_t)n) != n) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* --- identity --------------------------------------------------------- */

/* The master keeps root (it binds the socket, reopens the log and
 * signals workers); the workers, which parse what clients send, run as
 * `user` (php-fpm's model). Without root the setting can only name the
 * user the pool already runs as. */
int sv_pool_resolve_identity(const sv_config *cfg, sv_pool_identity *id, char *err, size_t errlen)
{
    memset(id, 0, sizeof(*id));
    if (cfg->user[0] == '\0') {
        if (cfg->group[0] != '\0') {
            snprintf(err, errlen, "group is set but user is not");
            return -1;
        }
        return 0;
    }
    struct passwd *pw = getpwnam(cfg->user);
    if (pw == NULL || strlen(cfg->user) >= sizeof(id->user)) {
        snprintf(err, errlen, "user: no user %s", cfg->user);
        return -1;
    }
    id->uid = pw->pw_uid;
    id->gid = pw->pw_gid;
    snprintf(id->home, sizeof(id->home), "%s", pw->pw_dir ? pw->pw_dir : "/");
    if (cfg->group[0] != '\0') {
        struct group *gr = getgrnam(cfg->group);
        if (gr == NULL) {
            snprintf(err, errlen, "group: no group %s", cfg->group);
            return -1;
        }
        id->gid = gr->gr_gid;
    }
    if (geteuid() != 0) {
        if (id->uid != geteuid() || id->gid != getegid()) {
            snprintf(err, errlen, "user = %s needs the pool to be started as root", cfg->user);
            return -1;
        }
        return 0;
    }
    strcpy(id->user, cfg->user);
    id->drop = 1;
    return 0;
}

/* In a new worker, before it reads anything a client sent. */
int sv_pool_drop_privileges(const sv_pool_identity *id)
{
    if (!id->drop)
        return 0;
    if (initgroups(id->user, id->gid) != 0 || setgid(id->gid) != 0 || setuid(id->uid) != 0)
        return -1;
    /* libpq looks for ~/.pgpass and ~/.postgresql/ under HOME: the user's,
     * not root's (which it could not read any more). */
    setenv("HOME", id->home, 1);
    /* setuid from root drops every id; make sure there is no way back. */
    if (id->uid != 0 && (setuid(0) == 0 || geteuid() != id->uid || getegid() != id->gid)) {
        errno = EPERM;
        return -1;
    }
    return 0;
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

    sv_slot *slot = &pool->sb->slots[index];
    memset(slot, 0, sizeof(*slot));
    if ((uint32_t)index + 1 > pool->sb->slots_used)
        __atomic_store_n(&pool->sb->slots_used, (uint32_t)index + 1, __ATOMIC_RELEASE);
    slot->generation = pool->generation;
    slot->started_ms = sv_now_wall_ms();
    pool->timed_out[index] = 0;
    __atomic_store_n(&slot->state, SV_SLOT_STARTING, __ATOMIC_RELEASE);

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
        if (sv_pool_drop_privileges(&pool->identity) != 0) {
            sv_log_error("worker_start", "error=\"cannot become user %s: %s\"",
                         pool->identity.user, strerror(errno));
            _exit(1);
        }
        sv_worker w;
        sv_worker_init(&w, &pool->cfg, pool->sb, index, master);
        w.handoff_fds[0] = pool->handoff_fds[0];
        w.handoff_fds[1] = pool->handoff_fds[1];
        int rc = sv_worker_serve_fcgi(&w, pool->listen_fd);
        sv_worker_cleanup(&w);
        _exit(rc);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        sv_log_error("spawn", "error=\"fork: %s\"", strerror(errno));
        slot->state = SV_SLOT_FREE;
        return -1;
    }
    slot->pid = pid;
    pool->pids[index] = pid;
    pool->generations[index] = pool->generation;
    pool->started_ms[index] = slot->started_ms;
    if (pool->initial_spawn_done)
        __atomic_add_fetch(&pool->sb->respawned_workers, 1, __ATOMIC_RELAXED);
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

static void sv_pool_reap(sv_pool *pool)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < SV_SCOREBOARD_SLOTS; i++) {
            sv_slot *slot = &pool->sb->slots[i];
            if (pool->pids[i] != pid)
                continue;
            uint32_t generation = pool->generations[i];
            int64_t lived = sv_now_wall_ms() - pool->started_ms[i];
            /* Access lines of answered requests the worker had not
             * written yet: they come before its exit in the log. */
            uint32_t held = __atomic_load_n(&slot->log_len, __ATOMIC_ACQUIRE);
            if (held > 0 && held <= sizeof(slot->log_buf))
                sv_log_write_raw(slot->log_buf, held);
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
                pool->next_spawn_ms = sv_now_monotonic_ms() + (delay > 5000 ? 5000 : delay);
            } else {
                pool->quick_deaths = 0;
            }
            pool->timed_out[i] = 0;
            pool->pids[i] = 0;
            memset(slot, 0, sizeof(*slot));
            __atomic_store_n(&slot->state, SV_SLOT_FREE, __ATOMIC_RELEASE);
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
    int64_t now = sv_now_monotonic_ms();
    int64_t limit = (int64_t)pool->cfg.request_timeout * 1000;
    for (int i = 0; i < SV_SCOREBOARD_SLOTS; i++) {
        sv_slot *slot = &pool->sb->slots[i];
        if (pool->pids[i] <= 0 || pool->timed_out[i] ||
            __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE) != SV_SLOT_BUSY)
            continue;
        int64_t running = now - __atomic_load_n(&slot->request_start_ms, __ATOMIC_RELAXED);
        if (running <= limit)
            continue;
        /* The worker wrote these; never trust them to be terminated. */
        char method[sizeof(slot->method) + 1], path[sizeof(slot->path) + 1],
            request_id[sizeof(slot->request_id) + 1];
        snprintf(method, sizeof(method), "%.*s", (int)sizeof(slot->method), slot->method);
        snprintf(path, sizeof(path), "%.*s", (int)sizeof(slot->path), slot->path);
        snprintf(request_id, sizeof(request_id), "%.*s", (int)sizeof(slot->request_id), slot->request_id);
        char qpath[256], qid[160];
        sv_log_error("request_timeout",
                     "msg=\"request timed out, killing worker\" worker=%d method=%s path=%s request_id=%s running_ms=%lld limit_s=%d",
                     (int)pool->pids[i], method, sv_log_quote(path, qpath, sizeof(qpath)),
                     sv_log_quote(request_id, qid, sizeof(qid)), (long long)running,
                     pool->cfg.request_timeout);
        pool->timed_out[i] = 1;
        __atomic_add_fetch(&pool->sb->timed_out_requests, 1, __ATOMIC_RELAXED);
        kill(pool->pids[i], SIGKILL);
    }
}

static void sv_pool_reload(sv_pool *pool)
{
    sv_config fresh;
    char err[512];

    sv_pool_identity identity;
    if (sv_config_load(&fresh, pool->config_path, err, sizeof(err)) != 0 ||
        sv_pool_resolve_identity(&fresh, &identity, err, sizeof(err)) != 0) {
        sv_log_error("reload", "msg=\"configuration rejected, keeping the running one\" error=\"%s\"", err);
        sv_config_free(&fresh);
        return;
    }
    if (strcmp(fresh.listen, pool->cfg.listen) != 0)
        sv_log_warn("reload", "msg=\"listen changed; takes effect after a restart\" listen=%s", pool->cfg.listen);
    free(fresh.listen);
    fresh.listen = strdup(pool->cfg.listen);
    if (fresh.listen == NULL) {
        sv_config_free(&fresh);
        return;
    }
    if (sv_log_open(fresh.log_file) != 0)
        sv_log_error("reload", "msg=\"cannot open log_file\" error=\"%s\"", strerror(errno));
    sv_config_free(&pool->cfg);
    pool->cfg = fresh;
    if (geteuid() == 0 && !identity.drop && pool->identity.drop)
        sv_log_warn("reload", "msg=\"user removed: new workers run as root\"");
    pool->identity = identity;

    /* New workers start accepting at once on the same socket; the old
     * ones finish what they are serving and exit, so nothing queued or in
     * flight is lost. */
    pool->generation++;
    pool->sb->generation = pool->generation;
    pool->sb->workers_configured = (uint32_t)pool->cfg.workers;
    pool->quick_deaths = 0;
    pool->next_spawn_ms = 0;
    while (sv_pool_live_workers(pool, 1) < pool->cfg.workers)
        if (sv_pool_spawn(pool) != 0)
            break;
    sv_pool_signal_workers(pool, SIGTERM, 1);
    pool->retire_deadline_ms = sv_now_monotonic_ms() + (int64_t)pool->cfg.shutdown_timeout * 1000;
    sv_log_info("reload", "generation=%u workers=%d", pool->generation, pool->cfg.workers);
}

static void sv_pool_kill_overdue(sv_pool *pool)
{
    int64_t now = sv_now_monotonic_ms();
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
        pool->stop_deadline_ms = now + 60000;
    }
}

static void sv_pool_begin_stop(sv_pool *pool, int signo)
{
    if (pool->stopping)
        return;
    pool->stopping = 1;
    /* Before the signal: leaving workers must not pass connections on. */
    __atomic_store_n(&pool->sb->stopping, 1, __ATOMIC_RELEASE);
    sv_log_info("stop", "signal=%d msg=\"finishing in-flight requests\"", signo);
    /* Remove the socket first so nginx stops sending new requests here;
     * accepted and queued connections are still served. */
    if (sv_pool_is_unix(&pool->cfg))
        unlink(pool->cfg.listen);
    sv_pool_signal_workers(pool, SIGTERM, 0);
    pool->stop_deadline_ms = sv_now_monotonic_ms() + (int64_t)pool->cfg.shutdown_timeout * 1000;
}

int sv_pool_run(sv_config *cfg, const char *config_path)
{
    sv_pool pool;
    char err[512];

    memset(&pool, 0, sizeof(pool));
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
    if (sv_pool_resolve_identity(&pool.cfg, &pool.identity, err, sizeof(err)) != 0) {
        sv_log_error("start", "error=\"%s\"", err);
        fprintf(stderr, "streamvibe-fcgi: %s\n", err);
        sv_config_free(&pool.cfg);
        return 1;
    }
    pool.listen_fd = sv_pool_listen(&pool.cfg, err, sizeof(err));
    if (pool.listen_fd < 0 || sv_pool_write_pid_file(pool.cfg.pid_file, err, sizeof(err)) != 0) {
        sv_log_error("start", "error=\"%s\"", err);
        fprintf(stderr, "streamvibe-fcgi: %s\n", err);
        if (pool.listen_fd >= 0 && sv_pool_is_unix(&pool.cfg))
            unlink(pool.cfg.listen);
        sv_config_free(&pool.cfg);
        return 1;
    }

    sv_log_set_pid(getpid());
    pool.generation = 1;
    pool.sb->generation = 1;
    pool.sb->start_time = sv_now_wall_ms() / 1000;
    pool.sb->master_pid = getpid();
    pool.sb->workers_configured = (uint32_t)pool.cfg.workers;
    sv_log_info("start", "listen=%s workers=%d max_requests=%d request_timeout=%d user=%s",
                pool.cfg.listen, pool.cfg.workers, pool.cfg.max_requests, pool.cfg.request_timeout,
                pool.identity.drop ? pool.identity.user : "-");
    if (geteuid() == 0 && !pool.identity.drop)
        sv_log_warn("start", "msg=\"workers run as root; set user (e.g. nobody)\"");
    for (int i = 0; i < pool.cfg.workers; i++)
        sv_pool_spawn(&pool);
    pool.initial_spawn_done = 1;

    for (;;) {
        struct pollfd pfd = { .fd = sv_pool_signal_pipe[0], .events = POLLIN };
        poll(&pfd, 1, 200);
        unsigned char sigs[64];
        ssize_t n;
        while ((n = read(sv_pool_signal_pipe[0], sigs, sizeof(sigs))) > 0) {
            for (ssize_t i = 0; i < n; i++) {
                switch (sigs[i]) {
                case SIGCHLD:
                    break;
                case SIGHUP:
                    if (!pool.stopping)
                        sv_pool_reload(&pool);
                    break;
                default:
                    sv_pool_begin_stop(&pool, sigs[i]);
                    break;
                }
            }
        }
        sv_pool_reap(&pool);
        if (pool.stopping && sv_pool_live_workers(&pool, 0) == 0)
            break;
        sv_pool_enforce_timeouts(&pool);
        sv_pool_kill_overdue(&pool);
        if (!pool.stopping && sv_now_monotonic_ms() >= pool.next_spawn_ms) {
            while (sv_pool_live_workers(&pool, 1) < pool.cfg.workers)
                if (sv_pool_spawn(&pool) != 0 || pool.quick_deaths > 0)
                    break;
        }
    }

    close(pool.listen_fd);
    close(pool.handoff_fds[0]);
    close(pool.handoff_fds[1]);
    if (pool.cfg.pid_file[0])
        unlink(pool.cfg.pid_file);
    sv_log_info("stop", "msg=\"stopped\"");
    sv_scoreboard_destroy(pool.sb);
    sv_config_free(&pool.cfg);
    return 0;
}
