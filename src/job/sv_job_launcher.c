#include "job/sv_job_launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/sv_clock.h"
#include "core/sv_json.h"
#include "core/sv_log.h"
#include "core/sv_proctitle.h"
#include "crypto/sv_crypto.h"
#include "crypto/sv_vault.h"
#include "db/sv_db.h"
#include "job/sv_job.h"
#include "job/sv_job_relay.h"
#include "job/sv_job_run.h"

/* A statement of a job may not hold the launcher longer than this. */
#define SV_JOB_LAUNCHER_STATEMENT_TIMEOUT_MS 30000
/* How long it waits for a job's "go": the job answers "ready" at once,
 * unless it gave up and is gone (then the connection closes sooner). */
#define SV_JOB_LAUNCHER_GO_WAIT_MS 5000

static const char sv_launcher_claims[] = "{\"role\":\"service_role\"}";

static int sv_launcher_listen(const char *spool_dir, const char *path, ino_t *ino)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    /* Someone answering there is another pool's launcher on the same
     * spool (a second pool with this configuration): leave it alone. A
     * socket nobody answers on was left by a launcher that died. */
    if (sv_job_relay_listening(spool_dir)) {
        errno = EADDRINUSE;
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    unlink(path);
    mode_t old = umask(0077);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    struct stat st;
    if (rc == 0 && stat(path, &st) == 0)
        *ino = st.st_ino;
    if (rc != 0 || listen(fd, 128) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* The test hook (job_launcher_test_hook; never set in production): the
 * tests stop the launcher (SIGSTOP) at one instant of the protocol, to
 * kill it exactly there. The file holds the instant's name and, after a
 * space, optionally a text the request must contain (a statement, a
 * job's path). It fires once: the launcher that removes the file stops,
 * so a launcher started in its place goes on. Nothing a client sends can
 * set it: only the configuration names the file. */
static void sv_launcher_test_hook(const sv_config *cfg, const char *point, const char *request)
{
    if (cfg->job_launcher_test_hook == NULL || cfg->job_launcher_test_hook[0] == '\0')
        return;
    char line[512] = "";
    FILE *f = fopen(cfg->job_launcher_test_hook, "re");
    if (f == NULL)
        return;
    if (fgets(line, sizeof(line), f) == NULL)
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\n")] = '\0';
    size_t n = strlen(point);
    if (strncmp(line, point, n) != 0 || (line[n] != '\0' && line[n] != ' ') ||
        (line[n] == ' ' && strstr(request, line + n + 1) == NULL) ||
        unlink(cfg->job_launcher_test_hook) != 0)
        return;
    sv_log_warn("job_launcher_test_hook", "point=%s msg=\"stopping (SIGSTOP)\"", point);
    sv_log_flush();
    raise(SIGSTOP);
}

/* SV_OK once the peer has the message. */
static int sv_launcher_reply(int fd, const char *text)
{
    ssize_t w;
    while ((w = send(fd, text, strlen(text), MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return w == (ssize_t)strlen(text) ? SV_OK : SV_ERROR;
}

/* The message and the descriptors that came with it (-1 where none). */
static ssize_t sv_launcher_receive(int fd, char *buf, size_t len, int fds[2])
{
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov = { .iov_base = buf, .iov_len = len - 1 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof(control.buf) };
    fds[0] = fds[1] = -1;
    ssize_t r;
    while ((r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (i < 2)
                fds[i] = got;
            else
                close(got);
        }
    }
    if (r < 0 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        for (int i = 0; i < 2; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        fds[0] = fds[1] = -1;
        return -1;
    }
    buf[r] = '\0';
    return r;
}

/* A descriptor the worker named: a job file directly in the spool. */
static int sv_launcher_path_ok(const sv_config *cfg, const char *path)
{
    size_t d = strlen(cfg->job_spool_dir), n = strlen(path);
    return strncmp(path, cfg->job_spool_dir, d) == 0 && path[d] == '/' && strchr(path + d + 1, '/') == NULL &&
           n > d + 5 && strcmp(path + n - 4, ".job") == 0 && path[d + 1] != '.';
}

/* In the forked job: becomes what posix_spawn makes of streamvibe-job
 * (job/sv_job_spawn.c) and supervises the job. Never returns. */
static void sv_launcher_become_job(const sv_config *cfg, const char *path, int lock_fd, int vault_fd)
{
    sigset_t none;
    sigemptyset(&none);
    /* The reload signals stay ignored throughout, as the launcher has
     * them: reset, they would end a job that a reload catches here. */
    for (int s = 1; s < NSIG; s++)
        if (s != SIGHUP && s != SIGUSR2)
            signal(s, SIG_DFL);
    sv_job_ignore_reload_signals();
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    /* The launcher's log descriptor goes first: its number may be 3 or 4. */
    sv_log_use_fd(STDERR_FILENO);
    /* 3 and 4, as a spawned job has them; everything else the launcher
     * holds (its socket, its database connection, the log) stays behind. */
    int lock = fcntl(lock_fd, F_DUPFD_CLOEXEC, 5);
    int vault = vault_fd >= 0 ? fcntl(vault_fd, F_DUPFD_CLOEXEC, 5) : -1;
    if (lock < 0 || dup2(lock, 3) != 3 || (vault >= 0 && dup2(vault, 4) != 4))
        _exit(1);
    int devnull = open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3 && devnull >= 0; fd++)
        dup2(devnull, fd);
    close_range(vault >= 0 ? 5 : 4, ~0U, 0);
    sv_log_open(cfg->log_file);
    sv_log_set_pid(getpid());
    char title[4300];
    snprintf(title, sizeof(title), "streamvibe-job --lock-fd 3%s %s", vault >= 0 ? " --vault-fd 4" : "", path);
    sv_proctitle_set(title);

    sv_vault keys;
    char err[256] = "";
    sv_vault_init(&keys);
    if (vault >= 0) {
        if (sv_vault_receive(&keys, 4, err, sizeof(err)) != SV_OK)
            sv_log_warn("job_vault", "error=\"%s\"", err[0] ? err : "the keys could not be read");
        close(4);
    }
    sv_job_relay_enable(cfg->job_spool_dir);
    int rc = sv_job_supervise(cfg, &keys, path, 3);
    sv_vault_free(&keys);
    sv_log_flush();
    _exit(rc);
}

static void sv_launcher_spawn(const sv_config *cfg, int conn, const char *path, const int fds[2])
{
    char answer[64];
    if (fds[0] < 0 || !sv_launcher_path_ok(cfg, path)) {
        sv_launcher_reply(conn, "error the request names no job of this spool");
        return;
    }
    /* Freed chunks the job's first allocation would gather up, page by
     * page, each a copy-on-write fault: gathered once, here. */
    malloc_trim(0);
    sv_launcher_test_hook(cfg, "spawn_received", path);
    pid_t pid = fork();
    if (pid == 0) {
        close(conn);
        sv_launcher_become_job(cfg, path, fds[0], fds[1]);
    }
    if (pid < 0) {
        sv_log_error("job_launcher", "msg=\"cannot fork\" error=\"%s\"", strerror(errno));
        sv_launcher_reply(conn, "error fork failed");
        return;
    }
    sv_launcher_test_hook(cfg, "spawn_forked", path);
    snprintf(answer, sizeof(answer), "ok %d", (int)pid);
    sv_launcher_reply(conn, answer);
}

/* The answer to a statement that ran: a job that is no longer there to
 * read it (it gave up waiting) is worth a line in the log, since it
 * counts the statement as lost. */
static void sv_launcher_answer(int conn, const char *text)
{
    if (sv_launcher_reply(conn, text) != SV_OK)
        sv_log_warn("job_launcher_sql", "msg=\"the job is gone: the statement ran, its answer is lost\"");
}

/* Runs a job's statement: "ready", and once the job has answered "go",
 * the statement, then "ok {fields, rows}", "error …" (it failed) or
 * "unavailable …" (no database, or no "go": nothing ran). A statement it
 * cannot read is answered "error …" at once. */
static void sv_launcher_sql(const sv_config *cfg, sv_db *db, int conn, const char *text)
{
    json_object *req = NULL, *sql, *params;
    const char *why;
    if (sv_json_parse(text, strlen(text), &req, &why) != SV_OK ||
        !json_object_object_get_ex(req, "sql", &sql) || !json_object_is_type(sql, json_type_string) ||
        !json_object_object_get_ex(req, "params", &params) || !json_object_is_type(params, json_type_array) ||
        json_object_array_length(params) > 64) {
        json_object_put(req);
        sv_launcher_reply(conn, "error the job launcher could not read the statement");
        return;
    }
    int n = (int)json_object_array_length(params);
    const char *values[64];
    for (int i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(params, (size_t)i);
        values[i] = v == NULL ? NULL : json_object_get_string(v);
    }
    /* The statement runs only once the job says "go" to "ready": a job
     * that gave up waiting (this launcher stopped, or busy) before it
     * said so runs the statement itself, and this one must not. From
     * "go" on, the job counts the statement as run by the launcher. */
    sv_launcher_test_hook(cfg, "sql_received", json_object_get_string(sql));
    char go[8];
    struct pollfd pfd = { .fd = conn, .events = POLLIN };
    ssize_t got = -1;
    if (sv_launcher_reply(conn, "ready") == SV_OK && poll(&pfd, 1, SV_JOB_LAUNCHER_GO_WAIT_MS) == 1)
        while ((got = recv(conn, go, sizeof(go), 0)) < 0 && errno == EINTR)
            ;
    if (got != 2 || memcmp(go, "go", 2) != 0) {
        sv_log_info("job_launcher_sql", "msg=\"the job did not confirm: the statement was not run\"");
        sv_launcher_reply(conn, "unavailable the job did not confirm the statement");
        json_object_put(req);
        return;
    }
    sv_launcher_test_hook(cfg, "sql_run", json_object_get_string(sql));
    PGresult *r = NULL;
    int ran = sv_db_query_as(db, "service_role", sv_launcher_claims, json_object_get_string(sql), n, values, &r);
    sv_launcher_test_hook(cfg, "sql_done", json_object_get_string(sql));
    if (ran != SV_OK) {
        char msg[320];
        snprintf(msg, sizeof(msg), "unavailable %s", db->last_error);
        sv_launcher_answer(conn, msg);
        json_object_put(req);
        return;
    }
    json_object_put(req);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
        char msg[320];
        snprintf(msg, sizeof(msg), "error database error %s: %.200s",
                 PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "-",
                 PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : "");
        PQclear(r);
        sv_launcher_answer(conn, msg);
        return;
    }
    json_object *out = json_object_new_object(), *fields = json_object_new_array(), *rows = json_object_new_array();
    for (int c = 0; c < PQnfields(r); c++)
        json_object_array_add(fields, json_object_new_string(PQfname(r, c)));
    for (int row = 0; row < PQntuples(r); row++) {
        json_object *values_out = json_object_new_array();
        for (int c = 0; c < PQnfields(r); c++)
            json_object_array_add(values_out, PQgetisnull(r, row, c) ? NULL
                                  : json_object_new_string_len(PQgetvalue(r, row, c), PQgetlength(r, row, c)));
        json_object_array_add(rows, values_out);
    }
    PQclear(r);
    json_object_object_add(out, "fields", fields);
    json_object_object_add(out, "rows", rows);
    size_t len;
    const char *body = json_object_to_json_string_length(out, JSON_C_TO_STRING_PLAIN, &len);
    char *msg = len + 3 <= SV_JOB_RELAY_MAX ? malloc(len + 4) : NULL;
    if (msg == NULL) {
        sv_launcher_answer(conn, "error the result is too large for the job launcher");
    } else {
        memcpy(msg, "ok ", 3);
        memcpy(msg + 3, body, len + 1);
        sv_launcher_answer(conn, msg);
        free(msg);
    }
    json_object_put(out);
}

/* One exchange on a connection just accepted. */
static void sv_launcher_serve(const sv_config *cfg, sv_db *db, int conn, char *buf)
{
    struct ucred peer;
    socklen_t plen = sizeof(peer);
    int fds[2];
    /* The spool is the workers' user's alone; a peer of another user
     * reached the socket through a mistake in its permissions. */
    if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &peer, &plen) != 0 ||
        (peer.uid != geteuid() && peer.uid != 0))
        return;
    /* Which of the launcher's processes took the connection: the peer's
     * credentials name the one that listened (the launcher's parent),
     * and a job tells a stopped launcher from a busy one by this. */
    char hello[32];
    snprintf(hello, sizeof(hello), "launcher %d", (int)getpid());
    struct pollfd pfd = { .fd = conn, .events = POLLIN };
    if (sv_launcher_reply(conn, hello) != SV_OK || poll(&pfd, 1, 1000) != 1 ||
        sv_launcher_receive(conn, buf, SV_JOB_RELAY_MAX + 1, fds) < 0)
        return;
    if (strncmp(buf, "spawn ", 6) == 0)
        sv_launcher_spawn(cfg, conn, buf + 6, fds);
    else if (strncmp(buf, "sql ", 4) == 0)
        sv_launcher_sql(cfg, db, conn, buf + 4);
    else
        sv_launcher_reply(conn, "error unknown request");
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* A serving process's stop (SIGTERM from the launcher, which has closed
 * its own copy of the listening socket already). It puts /dev/null in the
 * place of its copy at once, even in the middle of a statement: once all
 * of them have, connections still queued are dropped and their callers
 * fall back, rather than waiting where nobody will accept. dup2 keeps the
 * number taken, so no other descriptor can come to have it. */
static volatile sig_atomic_t sv_launcher_child_stop;
static int sv_launcher_listen_copy = -1, sv_launcher_devnull = -1;

static void sv_launcher_on_stop(int signo)
{
    int saved = errno;
    (void)signo;
    sv_launcher_child_stop = 1;
    if (sv_launcher_listen_copy >= 0 && sv_launcher_devnull >= 0)
        dup2(sv_launcher_devnull, sv_launcher_listen_copy);
    errno = saved;
}

/* Wakes the parent's wait when a serving process ends. */
static void sv_launcher_on_child(int signo)
{
    (void)signo;
}

/* One serving process: accepts on listen_fd, forks jobs and runs their
 * statements on a connection of its own, one exchange at a time, until
 * it is told to stop or its parent (the launcher) is gone. Returns the
 * exit status. */
static int sv_launcher_serve_loop(const sv_config *cfg, int listen_fd, pid_t parent, volatile sig_atomic_t *stop,
                                  volatile sig_atomic_t *reopen)
{
    /* A launcher that stops asks them to stop and waits; one that is
     * gone all at once (SIGKILL: the master's stop deadline, a crash)
     * takes them with it, as the launcher was gone before it had them:
     * nothing of it outlives it, and a job whose statement's answer is
     * lost so knows what to do (doc/jobs.md). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        return 0;
    sv_log_set_pid(getpid());
    sv_launcher_devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    sv_launcher_listen_copy = listen_fd;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = sv_launcher_on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* The jobs it forks are nobody's to wait for: the kernel reaps them.
     * (They reset this, and the parent-death signal, as they start.) */
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = SA_NOCLDWAIT;
    sigaction(SIGCHLD, &sa, NULL);
    char *buf = malloc(SV_JOB_RELAY_MAX + 2);
    if (buf == NULL) {
        sv_log_error("job_launcher", "msg=\"out of memory\"");
        return 1;
    }
    sv_db db;
    sv_db_init(&db, cfg->database_url);
    sv_db_set_application_name(&db, "streamvibe-job-launcher");
    sv_db_set_connect_timeout(&db, SV_JOB_CONNECT_TIMEOUT_MS);
    sv_db_set_statement_timeout(&db, SV_JOB_LAUNCHER_STATEMENT_TIMEOUT_MS);
    /* Connected before the first statement needs it; a database that is
     * not there yet is tried again when a statement comes. */
    if (sv_db_ensure(&db) != SV_OK)
        sv_log_warn("job_launcher", "msg=\"no database yet\" error=\"%s\"", db.last_error);
    while (!*stop && !sv_launcher_child_stop && getppid() == parent) {
        if (*reopen) {
            *reopen = 0;
            if (sv_log_open(cfg->log_file) != 0)
                sv_log_error("log_reopen", "msg=\"cannot open log_file, keeping the old one\" error=\"%s\"",
                             strerror(errno));
        }
        struct pollfd pfd = { .fd = listen_fd, .events = POLLIN };
        int db_fd = sv_db_socket(&db);
        struct pollfd fds[2] = { pfd, { .fd = db_fd, .events = POLLIN } };
        if (poll(fds, db_fd >= 0 ? 2 : 1, 1000) <= 0)
            continue;
        if (db_fd >= 0 && fds[1].revents)   /* the server closed it, or a notice */
            sv_db_read_idle(&db);
        if (!fds[0].revents)
            continue;
        /* Its siblings poll the same socket: whoever accepts first serves,
         * the others find nothing (the socket is non-blocking). */
        int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (conn < 0)
            continue;
        sv_launcher_serve(cfg, &db, conn, buf);
        close(conn);
    }
    free(buf);
    sv_db_close(&db);
    return 0;
}

int sv_job_launcher_run(const sv_config *cfg, volatile sig_atomic_t *stop, volatile sig_atomic_t *reopen)
{
    /* It serves the pool that started it and no other: when the master
     * is gone (even SIGKILLed), so is the launcher (its jobs go on). */
    pid_t master = getppid();
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != master)
        return 0;
    char path[256];
    if (sv_job_relay_path(cfg->job_spool_dir, path, sizeof(path)) != SV_OK) {
        sv_log_error("job_launcher", "msg=\"job_spool_dir is too long for a socket path\" dir=%s",
                     cfg->job_spool_dir);
        return 1;
    }
    ino_t ino = 0;
    int listen_fd = sv_launcher_listen(cfg->job_spool_dir, path, &ino);
    if (listen_fd < 0) {
        sv_log_error("job_launcher", "path=%s error=\"%s\"", path, strerror(errno));
        return 1;
    }
    int fl = fcntl(listen_fd, F_GETFL);
    if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        sv_log_error("job_launcher", "path=%s error=\"%s\"", path, strerror(errno));
        close(listen_fd);
        unlink(path);
        return 1;
    }
    /* Its serving processes accept the connections; the parent only
     * waits for them (woken when one ends) and starts them again. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = sv_launcher_on_child;
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    /* Several processes, each with its own connection, so that a
     * statement waiting (on a row lock, say) holds up only the one
     * serving it, not every job of the host. */
    int n = cfg->job_launcher_processes > 0 ? cfg->job_launcher_processes : 1;
    struct { pid_t pid; int64_t started_ms; } *kids = calloc((size_t)n, sizeof(*kids));
    if (kids == NULL) {
        sv_log_error("job_launcher", "msg=\"out of memory\"");
        close(listen_fd);
        unlink(path);
        return 1;
    }
    int64_t next_ms = 0;
    int quick_deaths = 0;
    pid_t self = getpid();
    sv_log_info("job_launcher", "msg=\"started\" socket=%s pid=%d processes=%d", path, (int)self, n);
    while (!*stop && getppid() == master) {
        if (*reopen) {
            *reopen = 0;
            if (sv_log_open(cfg->log_file) != 0)
                sv_log_error("log_reopen", "msg=\"cannot open log_file, keeping the old one\" error=\"%s\"",
                             strerror(errno));
            for (int i = 0; i < n; i++)
                if (kids[i].pid > 0)
                    kill(kids[i].pid, SIGUSR1);
        }
        int status;
        pid_t gone;
        int64_t now = sv_clock_mono_ms();
        while ((gone = waitpid(-1, &status, WNOHANG)) > 0)
            for (int i = 0; i < n; i++) {
                if (kids[i].pid != gone)
                    continue;
                kids[i].pid = 0;
                /* One that keeps dying young is started again after a
                 * back-off; its siblings serve meanwhile. */
                quick_deaths = now - kids[i].started_ms < 10000 ? quick_deaths + 1 : 0;
                int64_t delay = quick_deaths > 1 ? 500LL << (quick_deaths < 8 ? quick_deaths : 8) : 0;
                next_ms = now + (delay > 60000 ? 60000 : delay);
                if (WIFSIGNALED(status))
                    sv_log_warn("job_launcher", "msg=\"a serving process was killed; starting another\" "
                                "pid=%d signal=%d", (int)gone, WTERMSIG(status));
                else
                    sv_log_warn("job_launcher", "msg=\"a serving process exited; starting another\" "
                                "pid=%d status=%d", (int)gone, WEXITSTATUS(status));
            }
        for (int i = 0; i < n && now >= next_ms; i++) {
            if (kids[i].pid != 0)
                continue;
            pid_t pid = fork();
            if (pid == 0) {
                free(kids);
                int rc = sv_launcher_serve_loop(cfg, listen_fd, self, stop, reopen);
                close(listen_fd);
                return rc;
            }
            if (pid < 0) {
                sv_log_error("job_launcher", "msg=\"cannot fork a serving process\" error=\"%s\"", strerror(errno));
                next_ms = now + 1000;
                break;
            }
            kids[i].pid = pid;
            kids[i].started_ms = now;
        }
        /* SIGCHLD, SIGTERM or SIGUSR1 cut it short. */
        poll(NULL, 0, 1000);
    }
    /* Nobody new is taken: a caller that cannot connect falls back at
     * once. The path goes only if it is still ours (a new launcher may
     * have bound it already). */
    struct stat st;
    if (stat(path, &st) == 0 && st.st_ino == ino)
        unlink(path);
    close(listen_fd);
    /* They finish the exchange they are in (a statement lasts at most its
     * statement_timeout), so that nothing of the launcher outlives it. */
    for (int i = 0; i < n; i++)
        if (kids[i].pid > 0)
            kill(kids[i].pid, SIGTERM);
    for (int i = 0; i < n; i++)
        if (kids[i].pid > 0)
            while (waitpid(kids[i].pid, NULL, 0) < 0 && errno == EINTR)
                ;
    free(kids);
    sv_log_info("job_launcher", "msg=\"stopped\"");
    return 0;
}
