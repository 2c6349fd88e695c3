#include "job/sv_job_relay.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/types.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/sv_err.h"
#include "core/sv_json.h"

/* How long a caller waits for the launcher's answer: a fork or one short
 * statement, unless the launcher is stuck. Each of the launcher's
 * processes (job_launcher_processes) serves one exchange at a time, each
 * statement bounded by its statement_timeout (30 s), so when all of them
 * are busy a statement may wait that long behind another's. */
#define SV_JOB_RELAY_SPAWN_WAIT_MS 5000
#define SV_JOB_RELAY_SQL_WAIT_MS   60000
/* A launcher stopped (SIGSTOP, a debugger) this long is not waited for:
 * it answers nobody until someone continues it. Longer than a debugger's
 * or strace's passing stops. */
#define SV_JOB_RELAY_STOPPED_MS    2000
#define SV_JOB_RELAY_SLICE_MS      250

static const char *sv_job_relay_spool;

int sv_job_relay_path(const char *spool_dir, char *buf, size_t len)
{
    struct sockaddr_un sa;
    int n = snprintf(buf, len, "%s/.launcher.sock", spool_dir);
    return n < 0 || (size_t)n >= len || (size_t)n >= sizeof(sa.sun_path) ? SV_ERROR : SV_OK;
}

void sv_job_relay_enable(const char *spool_dir)
{
    sv_job_relay_spool = spool_dir;
}

/* A connected socket to the launcher, or -1 with errno. */
static int sv_job_relay_connect(const char *spool_dir)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (spool_dir == NULL || sv_job_relay_path(spool_dir, sa.sun_path, sizeof(sa.sun_path)) != SV_OK) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int sv_job_relay_listening(const char *spool_dir)
{
    int fd = sv_job_relay_connect(spool_dir);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

/* Sends one message with up to two descriptors. SV_OK/SV_ERROR. */
static int sv_job_relay_send(int fd, const char *msg, size_t len, const int *fds, int nfds)
{
    struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (nfds > 0) {
        memset(&control, 0, sizeof(control));
        mh.msg_control = control.buf;
        mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    ssize_t w;
    while ((w = sendmsg(fd, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return w == (ssize_t)len ? SV_OK : SV_ERROR;
}

/* 1 when process pid is stopped (job control or a tracer), from its
 * /proc/<pid>/stat state; 0 when it runs, is gone, or cannot be read. */
static int sv_job_relay_stopped(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = pid > 0 ? fopen(path, "re") : NULL;
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');   /* the name may hold spaces and ')' */
    return p != NULL && p[1] == ' ' && (p[2] == 'T' || p[2] == 't');
}

/* The answer (at most max bytes), NUL-terminated in a malloc'd buffer
 * (caller frees), or NULL when none came within wait_ms or while the
 * launcher process serving the connection (*peer; 0: unknown) stayed
 * stopped for SV_JOB_RELAY_STOPPED_MS (*timed_out set, if given), or the
 * launcher closed the connection. The launcher's greeting ("launcher
 * <pid>": which of its processes took the connection) is not an answer:
 * it sets *peer, and the wait goes on. */
static char *sv_job_relay_answer(int fd, size_t max, int wait_ms, pid_t *peer, int *timed_out)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int n = 0, waited = 0, stopped = 0;
    char *buf = NULL;
    for (;;) {
        while (waited < wait_ms && stopped < SV_JOB_RELAY_STOPPED_MS) {
            int slice = wait_ms - waited < SV_JOB_RELAY_SLICE_MS ? wait_ms - waited : SV_JOB_RELAY_SLICE_MS;
            n = poll(&pfd, 1, slice);
            if (n < 0 && errno == EINTR)
                continue;
            if (n != 0)
                break;
            waited += slice;
            stopped = sv_job_relay_stopped(*peer) ? stopped + slice : 0;
        }
        if (timed_out != NULL)
            *timed_out = n == 0;
        if (n <= 0)
            return NULL;
        if (buf == NULL && (buf = malloc(max + 1)) == NULL)
            return NULL;
        ssize_t r;
        while ((r = recv(fd, buf, max, 0)) < 0 && errno == EINTR)
            ;
        if (r <= 0) {
            free(buf);
            return NULL;
        }
        buf[r] = '\0';
        long pid;
        char end;
        if (strncmp(buf, "launcher ", 9) != 0 || sscanf(buf + 9, "%ld%c", &pid, &end) != 1 || pid <= 0)
            return buf;
        *peer = (pid_t)pid;
        stopped = 0;
        n = 0;
    }
}

pid_t sv_job_relay_spawn(const char *spool_dir, const char *path, int lock_fd, int vault_fd)
{
    char msg[4200];
    int n = snprintf(msg, sizeof(msg), "spawn %s", path);
    if (n < 0 || (size_t)n >= sizeof(msg)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = sv_job_relay_connect(spool_dir);
    if (fd < 0)
        return -1;
    int fds[2] = { lock_fd, vault_fd };
    if (sv_job_relay_send(fd, msg, (size_t)n, fds, vault_fd >= 0 ? 2 : 1) != SV_OK) {
        /* A launcher that has gone since the connect: it got nothing. */
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    pid_t peer = 0;
    char *answer = sv_job_relay_answer(fd, 64, SV_JOB_RELAY_SPAWN_WAIT_MS, &peer, NULL);
    close(fd);
    long pid = 0;
    if (answer != NULL && sscanf(answer, "ok %ld", &pid) == 1 && pid > 0) {
        free(answer);
        return (pid_t)pid;
    }
    int refused = answer != NULL && strncmp(answer, "error", 5) == 0;
    free(answer);
    if (refused) {   /* it answered that it did not fork: nothing runs */
        errno = EAGAIN;
        return -1;
    }
    return 0;
}

/* The launcher's {"fields":[…],"rows":[[…],…]} as a PGresult. */
static PGresult *sv_job_relay_result(const char *text, char *error, size_t errlen)
{
    json_object *o = NULL, *fields, *rows;
    const char *why;
    if (sv_json_parse(text, strlen(text), &o, &why) != SV_OK ||
        !json_object_object_get_ex(o, "fields", &fields) || !json_object_is_type(fields, json_type_array) ||
        !json_object_object_get_ex(o, "rows", &rows) || !json_object_is_type(rows, json_type_array)) {
        json_object_put(o);
        snprintf(error, errlen, "the job launcher answered what is not a result");
        return NULL;
    }
    int nf = (int)json_object_array_length(fields);
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc *att = calloc((size_t)(nf > 0 ? nf : 1), sizeof(*att));
    int ok = r != NULL && att != NULL;
    for (int i = 0; ok && i < nf; i++) {
        att[i].name = (char *)json_object_get_string(json_object_array_get_idx(fields, (size_t)i));
        att[i].typid = 25;   /* text: every value comes as its text form */
        att[i].typlen = -1;
        att[i].atttypmod = -1;
    }
    ok = ok && (nf == 0 || PQsetResultAttrs(r, nf, att));
    free(att);
    for (size_t row = 0; ok && row < json_object_array_length(rows); row++) {
        json_object *values = json_object_array_get_idx(rows, row);
        if (!json_object_is_type(values, json_type_array) || (int)json_object_array_length(values) != nf) {
            ok = 0;
            break;
        }
        for (int col = 0; ok && col < nf; col++) {
            json_object *v = json_object_array_get_idx(values, (size_t)col);
            ok = v == NULL ? PQsetvalue(r, (int)row, col, NULL, -1)
                           : PQsetvalue(r, (int)row, col, (char *)json_object_get_string(v),
                                        json_object_get_string_len(v));
        }
    }
    json_object_put(o);
    if (!ok) {
        PQclear(r);
        snprintf(error, errlen, "the job launcher's result could not be read");
        return NULL;
    }
    return r;
}

PGresult *sv_job_relay_sql(const char *sql, int n, const char *const *values, char *error,
                           size_t errlen, sv_job_relay_outcome *outcome)
{
    *outcome = SV_JOB_RELAY_UNREACHABLE;
    snprintf(error, errlen, "no job launcher");
    if (sv_job_relay_spool == NULL)
        return NULL;
    json_object *req = json_object_new_object();
    json_object *params = json_object_new_array();
    json_object_object_add(req, "sql", json_object_new_string(sql));
    for (int i = 0; i < n; i++)
        json_object_array_add(params, values[i] ? json_object_new_string(values[i]) : NULL);
    json_object_object_add(req, "params", params);
    size_t len;
    const char *body = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN, &len);
    char *msg = len + 4 <= SV_JOB_RELAY_MAX ? malloc(len + 5) : NULL;
    int fd = msg != NULL ? sv_job_relay_connect(sv_job_relay_spool) : -1;
    if (msg != NULL)
        memcpy(msg, "sql ", 4), memcpy(msg + 4, body, len + 1);
    json_object_put(req);
    if (fd < 0 || sv_job_relay_send(fd, msg, len + 4, NULL, 0) != SV_OK) {
        free(msg);
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    free(msg);
    /* The launcher that made the listening socket, until the greeting
     * names its process that took the connection: its state tells a
     * stopped launcher from a busy one. */
    struct ucred cred = { .pid = 0 };
    socklen_t clen = sizeof(cred);
    pid_t peer = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 ? cred.pid : 0;
    /* The launcher answers "ready" and runs the statement only once this
     * end has answered "go". So until "go" is sent nothing can have run:
     * no answer by then (the launcher stopped, stuck or gone), or "go"
     * not delivered, and the statement goes to the database directly.
     * Once "go" is sent, a wait that ends without the result may leave it
     * run or running: lost, never run twice. ("run" is what a launcher
     * of the previous version says instead of "ready": it has started.) */
    int timed_out = 0;
    char *answer = sv_job_relay_answer(fd, SV_JOB_RELAY_MAX, SV_JOB_RELAY_SQL_WAIT_MS, &peer, &timed_out);
    int started = 0;
    if (answer != NULL && (strcmp(answer, "ready") == 0 || strcmp(answer, "run") == 0)) {
        started = strcmp(answer, "run") == 0 || sv_job_relay_send(fd, "go", 2, NULL, 0) == SV_OK;
        free(answer);
        answer = started ? sv_job_relay_answer(fd, SV_JOB_RELAY_MAX, SV_JOB_RELAY_SQL_WAIT_MS, &peer, &timed_out)
                         : NULL;
    }
    close(fd);
    PGresult *r = NULL;
    if (answer == NULL && started) {
        *outcome = SV_JOB_RELAY_LOST;
        snprintf(error, errlen, "the job launcher did not answer%s",
                 timed_out && sv_job_relay_stopped(peer) ? " (it is stopped)" : "");
    } else if (answer == NULL) {
        snprintf(error, errlen, timed_out ? "the job launcher did not take the statement" : "no job launcher");
    } else if (strncmp(answer, "ok ", 3) == 0) {
        *outcome = SV_JOB_RELAY_FAILED;
        r = sv_job_relay_result(answer + 3, error, errlen);
    } else if (strncmp(answer, "error ", 6) == 0) {
        *outcome = SV_JOB_RELAY_FAILED;
        snprintf(error, errlen, "%s", answer + 6);
    }
    /* "unavailable …": the launcher has no database now, or gave up
     * waiting for "go": nothing ran. */
    free(answer);
    return r;
}
