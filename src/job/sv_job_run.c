#include "job/sv_job_run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/sv_clock.h"
#include "core/sv_json.h"
#include "core/sv_log.h"
#include "job/sv_job.h"
#include "job/sv_job_work.h"
#include "job/sv_spool.h"

/* Largest answer a job's child may send its supervisor. */
#define SV_JOB_OUTPUT_MAX (1L << 20)

/* How long a supervisor keeps trying to record the end before it leaves
 * the descriptor to the reconciler. */
#define SV_JOB_FINISH_PATIENCE_MS 30000

/* The child: does the work and writes {"status","result"|"error"} on fd. */
static void sv_job_child(const sv_config *cfg, const sv_vault *vault, const sv_job *job, int fd)
{
    json_object *result = NULL;
    char error[512] = "";
    int rc = sv_job_work(cfg, vault, job, &result, error, sizeof(error));
    json_object *out = json_object_new_object();
    json_object_object_add(out, "status", json_object_new_string(rc == SV_OK ? "completed" : "failed"));
    if (rc == SV_OK || result != NULL)
        json_object_object_add(out, "result", result ? result : json_object_new_object());
    if (rc != SV_OK)
        json_object_object_add(out, "error", json_object_new_string(error[0] ? error : "failed"));
    const char *text = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN);
    size_t len = strlen(text);
    while (len > 0) {
        ssize_t w = write(fd, text, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        text += w;
        len -= (size_t)w;
    }
    json_object_put(out);
}

/* Reads the child's answer until EOF or deadline_ms (monotonic). Returns
 * 1 at EOF, 0 at the deadline. */
static int sv_job_collect(int fd, int64_t deadline_ms, char **buf, size_t *len)
{
    size_t cap = 4096;
    *buf = malloc(cap);
    *len = 0;
    for (;;) {
        int64_t left = deadline_ms - sv_clock_mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int n = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
        if (n < 0 && errno != EINTR)
            return 1;
        if (n <= 0)
            continue;
        if (*len + 4096 > cap && cap < (size_t)SV_JOB_OUTPUT_MAX) {
            cap *= 2;
            *buf = realloc(*buf, cap);
        }
        ssize_t r = read(fd, *buf + *len, cap - *len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 1;
        *len += (size_t)r;
        if (*len + 1 >= cap)   /* over the limit: the rest is not read */
            return 1;
    }
}

/* The outcome of the child from what it wrote and how it ended. */
static json_object *sv_job_outcome(const char *out, size_t len, int status, int timed_out,
                                   int limit_s)
{
    json_object *o = NULL;
    const char *why;
    char msg[160];

    if (timed_out) {
        snprintf(msg, sizeof(msg), "timed out after %d s", limit_s);
    } else if (WIFSIGNALED(status)) {
        snprintf(msg, sizeof(msg), "the job's process was killed by signal %d", WTERMSIG(status));
    } else if (len == 0 || sv_json_parse(out, len, &o, &why) != SV_OK ||
               !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        snprintf(msg, sizeof(msg), "the job's process ended (status %d) without an answer",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    } else {
        return o;
    }
    o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string("failed"));
    json_object_object_add(o, "error", json_object_new_string(msg));
    return o;
}

/* Records outcome (the child's answer plus start and end) in the
 * descriptor and as the job's audit_log row. SV_OK once the database has
 * it (written by us or, in a race with the reconciler, by it). */
static int sv_job_record(const sv_config *cfg, sv_job *job, int lock_fd, json_object *outcome,
                         int64_t started_ms, int64_t completed_ms)
{
    json_object_object_add(outcome, "started_ms", json_object_new_int64(started_ms));
    json_object_object_add(outcome, "completed_ms", json_object_new_int64(completed_ms));
    job->outcome = json_object_get(outcome);
    char *text = sv_job_to_json(job);
    if (text == NULL || sv_spool_rewrite(lock_fd, text) != SV_OK)
        sv_log_warn("job_spool_write", "job_id=%s error=\"%s\"", job->job_id, strerror(errno));
    free(text);

    json_object *v;
    sv_job_end end = { .started_ms = started_ms, .completed_ms = completed_ms };
    end.status = json_object_object_get_ex(outcome, "status", &v) ? json_object_get_string(v) : "failed";
    if (strcmp(end.status, "completed") != 0)
        end.status = "failed";
    end.result = json_object_object_get_ex(outcome, "result", &v) ? v : NULL;
    end.error = json_object_object_get_ex(outcome, "error", &v) ? json_object_get_string(v) : NULL;

    sv_db db;
    sv_db_init(&db, cfg->database_url);
    sv_db_set_application_name(&db, "streamvibe-job");
    sv_db_set_connect_timeout(&db, SV_JOB_CONNECT_TIMEOUT_MS);
    int64_t give_up = sv_clock_mono_ms() + SV_JOB_FINISH_PATIENCE_MS;
    int rc = SV_ERROR, delay_ms = 100;
    for (;;) {
        sv_error err;
        int written;
        sv_error_init(&err);
        rc = sv_job_finish(&db, job, &end, &written, &err);
        if (rc == SV_OK || err.status != 503 || sv_clock_mono_ms() >= give_up)
            break;
        struct timespec ts = { delay_ms / 1000, (delay_ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        delay_ms = delay_ms < 3200 ? delay_ms * 2 : delay_ms;
    }
    sv_db_close(&db);
    sv_log_info("job_end", "job_id=%s type=%s status=%s duration_ms=%lld recorded=%s", job->job_id,
                sv_job_type_name(job->kind), end.status, (long long)(completed_ms - started_ms),
                rc == SV_OK ? "yes" : "left_to_reconciler");
    return rc;
}

void sv_job_ignore_reload_signals(void)
{
    struct sigaction sa;
    sigset_t reload;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigemptyset(&reload);
    sigaddset(&reload, SIGHUP);
    sigaddset(&reload, SIGUSR2);
    sigprocmask(SIG_UNBLOCK, &reload, NULL);
}

int sv_job_needs_vault(const char *path)
{
    sv_job job;
    char *text = sv_spool_read(path);
    int needs = text != NULL && sv_job_from_json(text, &job) == SV_OK;
    if (needs) {
        needs = job.kind == SV_JOB_SYNC;
        sv_job_clear(&job);
    }
    free(text);
    return needs;
}

int sv_job_supervise(const sv_config *cfg, const sv_vault *vault, const char *path, int lock_fd)
{
    sv_job job;
    char *text = sv_spool_read(path);

    if (text == NULL || sv_job_from_json(text, &job) != SV_OK) {
        sv_log_error("job_start", "msg=\"unreadable descriptor\" path=%s", path);
        free(text);
        return 1;
    }
    free(text);
    int limit_s = job.time_limit_s > 0 ? job.time_limit_s : sv_job_time_limit(cfg, job.kind);
    int64_t started_ms = sv_clock_wall_ms();
    int64_t deadline = sv_clock_mono_ms() + (int64_t)limit_s * 1000;
    sv_log_info("job_start", "job_id=%s type=%s pid=%d", job.job_id, sv_job_type_name(job.kind),
                (int)getpid());

    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        sv_job_clear(&job);
        return 1;
    }
    pid_t supervisor = getpid();
    pid_t child = fork();
    if (child == 0) {
        /* The lock is the supervisor's: a child that outlives it must
         * not keep its job looking alive. Nor may it go on working once
         * the job has been finished for it as interrupted. */
        close(lock_fd);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != supervisor)
            _exit(1);
        close(pipefd[0]);
        sv_log_set_pid(getpid());
        sv_job_child(cfg, vault, &job, pipefd[1]);
        _exit(0);
    }
    close(pipefd[1]);
    char *out = NULL;
    size_t len = 0;
    int status = 0, timed_out = 0;
    if (child < 0) {
        status = 0;
    } else {
        timed_out = !sv_job_collect(pipefd[0], deadline, &out, &len);
        if (timed_out)
            kill(child, SIGKILL);
        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
            ;
    }
    close(pipefd[0]);
    json_object *outcome = sv_job_outcome(out ? out : "", len, status, timed_out, limit_s);
    free(out);
    int rc = sv_job_record(cfg, &job, lock_fd, outcome, started_ms, sv_clock_wall_ms());
    json_object_put(outcome);
    if (rc == SV_OK)
        unlink(path);
    sv_job_clear(&job);
    return rc == SV_OK ? 0 : 1;
}

/* --- reconciling ---------------------------------------------------------- */

typedef struct sv_reconcile {
    sv_db db;
    int   finished;
    int   unavailable;
} sv_reconcile;

static void sv_job_reconcile_one(const char *path, int fd, void *arg)
{
    sv_reconcile *rc = arg;
    sv_job job;
    char *text = sv_spool_read(path);
    (void)fd;

    if (rc->unavailable)
        goto out;
    if (text == NULL || sv_job_from_json(text, &job) != SV_OK) {
        sv_log_error("job_reconcile", "msg=\"unreadable descriptor, left in place\" path=%s", path);
        goto out;
    }
    sv_job_end end = { .status = "interrupted",
                       .error = "the job's process ended before it finished (host restart or killed)",
                       .started_ms = job.accepted_ms, .completed_ms = sv_clock_wall_ms() };
    json_object *v;
    if (job.outcome != NULL) {
        end.status = json_object_object_get_ex(job.outcome, "status", &v) &&
                             strcmp(json_object_get_string(v), "completed") == 0
                         ? "completed" : "failed";
        end.result = json_object_object_get_ex(job.outcome, "result", &v) ? v : NULL;
        end.error = json_object_object_get_ex(job.outcome, "error", &v) ? json_object_get_string(v) : NULL;
        if (json_object_object_get_ex(job.outcome, "started_ms", &v))
            end.started_ms = json_object_get_int64(v);
        if (json_object_object_get_ex(job.outcome, "completed_ms", &v))
            end.completed_ms = json_object_get_int64(v);
    }
    sv_error err;
    int written;
    sv_error_init(&err);
    if (sv_job_finish(&rc->db, &job, &end, &written, &err) == SV_OK) {
        unlink(path);
        rc->finished++;
        sv_log_info("job_reconciled", "job_id=%s status=%s written=%d", job.job_id, end.status, written);
    } else if (err.status == 503) {
        rc->unavailable = 1;
    }
    sv_job_clear(&job);
out:
    free(text);
}

int sv_job_reconcile(const sv_config *cfg)
{
    sv_reconcile rc = { .finished = 0 };
    sv_db_init(&rc.db, cfg->database_url);
    sv_db_set_application_name(&rc.db, "streamvibe-job");
    sv_db_set_connect_timeout(&rc.db, SV_JOB_CONNECT_TIMEOUT_MS);
    sv_spool_each_orphan(cfg->job_spool_dir, sv_job_reconcile_one, &rc);
    sv_spool_sweep_temporaries(cfg->job_spool_dir);
    sv_db_close(&rc.db);
    return rc.unavailable ? -1 : rc.finished;
}
