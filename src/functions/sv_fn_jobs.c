/* Accepting jobs in the worker: authenticate (the phase did), check the
 * target belongs to the caller and reserve the quota atomically
 * (public.sv_job_accept), write the job's descriptor into the spool, spawn
 * streamvibe-job detached, answer 202. Nothing waits in a queue. */
#include "functions/sv_fn_jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/sv_clock.h"
#include "core/sv_json.h"
#include "core/sv_log.h"
#include "core/sv_uuid.h"
#include "crypto/sv_crypto.h"
#include "db/sv_sqlstate.h"
#include "functions/sv_fn_common.h"
#include "job/sv_job.h"
#include "job/sv_job_relay.h"
#include "job/sv_job_spawn.h"
#include "job/sv_spool.h"
#include "platform/sv_indexnow.h"

static const char sv_fn_service_claims[] = "{\"role\":\"service_role\"}";

/* Most content ids one submit-seo takes (a batch IndexNow accepts many
 * more; this bounds the request). */
#define SV_FN_SEO_MAX 1000

/* A serialized configuration larger than a pipe's buffer would block the
 * worker before the job exists to read it. */
#define SV_FN_CONFIG_PIPE_MAX 65536

/* A launcher that took a job's lock and did not answer: how long the
 * worker tries the lock before it counts as the job's (a killed
 * launcher's is let go of a moment after its connection closes). */
#define SV_FN_LOCK_TRIES  50
#define SV_FN_LOCK_TRY_MS 20

/* How a parked request answers when it resumes. */
enum { SV_FN_PARK_STATUS, SV_FN_PARK_ACCEPT };

/* ?wait=N: 0 when absent, else 0..job_wait_max seconds. */
static int sv_fn_wait(sv_ctx *ctx, int *wait_s)
{
    const char *w = sv_request_query_param(ctx->req, "wait");
    *wait_s = 0;
    if (w == NULL)
        return SV_OK;
    char *end;
    long n = strtol(w, &end, 10);
    if (*w == '\0' || *end != '\0' || n < 0 || n > ctx->cfg->job_wait_max)
        return sv_fail(&ctx->err, 400, "invalid_wait",
                       sv_arena_printf(ctx->arena, "wait must be a number of seconds from 0 to %d",
                                       ctx->cfg->job_wait_max));
    *wait_s = (int)n;
    return SV_OK;
}

/* Who the job is for: a user is always themself; the service role names
 * the user in the body's userId. */
static int sv_fn_owner(sv_ctx *ctx, json_object *body, const char **user_id)
{
    if (strcmp(ctx->caller.role, "service_role") != 0) {
        *user_id = ctx->caller.user_id;
        return SV_OK;
    }
    if (sv_json_string(body, "userId", user_id, NULL) != 1 || !sv_uuid_valid(*user_id))
        return sv_fail(&ctx->err, 400, "invalid_body",
                       "The service role must name the user it acts for (userId)");
    *user_id = sv_arena_strdup(ctx->arena, *user_id);
    return SV_OK;
}

/* Runs one statement as service_role: the result, or NULL with ctx->err. */
static PGresult *sv_fn_sql(sv_ctx *ctx, const char *sql, int n, const char *const *values)
{
    PGresult *r = NULL;
    if (sv_db_query_as(ctx->db, "service_role", sv_fn_service_claims, sql, n, values, &r) != SV_OK) {
        sv_db_unavailable(ctx->db, ctx->cfg->retry_after, &ctx->err);
        return NULL;
    }
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        sv_sqlstate_postgrest(ctx->arena, r, 0, ctx->req->request_id, &ctx->err);
        PQclear(r);
        return NULL;
    }
    return r;
}

/* --- the job's target --------------------------------------------------- */

/* The payload (the document's own names) and the targets (a Postgres
 * uuid[] literal) of a job of kind from the body. */
static int sv_fn_targets(sv_ctx *ctx, sv_job_kind kind, json_object *body, json_object **payload,
                         const char **targets)
{
    static const char *const keys[] = { "handleId", "contentId" };
    const char *id;
    json_object *ids;

    *payload = NULL;
    if (kind != SV_JOB_SEO) {
        const char *key = keys[kind == SV_JOB_AI];
        if (sv_json_string(body, key, &id, NULL) != 1 || !sv_uuid_valid(id))
            return sv_fail(&ctx->err, 400, "invalid_body",
                           sv_arena_printf(ctx->arena, "%s must be a uuid", key));
        *payload = json_object_new_object();
        json_object_object_add(*payload, key, json_object_new_string(id));
        *targets = sv_arena_printf(ctx->arena, "{%s}", id);
        return SV_OK;
    }
    if (!json_object_object_get_ex(body, "contentIds", &ids) || !json_object_is_type(ids, json_type_array) ||
        json_object_array_length(ids) == 0 || json_object_array_length(ids) > SV_FN_SEO_MAX)
        return sv_fail(&ctx->err, 400, "invalid_body",
                       sv_arena_printf(ctx->arena, "contentIds must be a list of 1 to %d uuids",
                                       SV_FN_SEO_MAX));
    sv_buf list;
    sv_buf_init(&list, ctx->arena, 40 * json_object_array_length(ids) + 2);
    sv_buf_puts(&list, "{");
    for (size_t i = 0; i < json_object_array_length(ids); i++) {
        json_object *v = json_object_array_get_idx(ids, i);
        if (!json_object_is_type(v, json_type_string) || !sv_uuid_valid(json_object_get_string(v)))
            return sv_fail(&ctx->err, 400, "invalid_body", "contentIds must hold uuids only");
        sv_buf_printf(&list, "%s%s", i ? "," : "", json_object_get_string(v));
    }
    sv_buf_puts(&list, "}");
    *payload = json_object_new_object();
    json_object_object_add(*payload, "contentIds", json_object_get(ids));
    *targets = list.data;
    return SV_OK;
}

/* Maps a refusal of public.sv_job_accept to the answer. */
static int sv_fn_refused(sv_ctx *ctx, json_object *verdict, const char *status)
{
    json_object *v;
    if (strcmp(status, "not_found") == 0)
        return sv_fail(&ctx->err, 404, "not_found", "No such handle or content of yours");
    if (strcmp(status, "already_syncing") == 0)
        return sv_fail(&ctx->err, 409, "already_syncing", "This handle is already syncing");
    if (strcmp(status, "not_public") == 0) {
        ctx->err.extra = json_object_new_object();
        if (json_object_object_get_ex(verdict, "ids", &v))
            json_object_object_add(ctx->err.extra, "ids", json_object_get(v));
        return sv_fail(&ctx->err, 422, "not_public",
                       "Only public content on a public, active handle can be submitted");
    }
    ctx->err.extra = json_object_new_object();
    static const char *const keys[] = { "quota", "limit", "used", "resets_at", "running" };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (json_object_object_get_ex(verdict, keys[i], &v))
            json_object_object_add(ctx->err.extra, keys[i], json_object_get(v));
    if (strcmp(status, "busy") == 0) {
        ctx->err.retry_after = 5;
        return sv_fail(&ctx->err, 429, "too_many_jobs",
                       "Too many of your jobs are running; try again when one has finished");
    }
    return sv_fail(&ctx->err, 429, "quota_exceeded", "Quota exceeded");
}

/* --- starting the process ------------------------------------------------ */

/* Ends a job that was accepted but could not be started: its audit_log
 * row says so and its quota comes back. */
static void sv_fn_abandon(sv_ctx *ctx, const sv_job *job, const char *why)
{
    int64_t now = sv_clock_wall_ms();
    sv_job_end end = { .status = "failed", .error = why, .started_ms = now, .completed_ms = now };
    sv_error err;
    int written;
    sv_error_init(&err);
    sv_job_finish(ctx->db, job, &end, &written, &err);
    sv_error_clear(&err);
}

/* Reserves the job's place on this host. The host's cap is exact under
 * any concurrency: counting the descriptors and writing this job's happen
 * under the spool's accept lock, which is held for nothing else (not
 * across the database's accept), so accepts on one host do not queue
 * behind each other. Returns the descriptor, locked, with its path in
 * path; or -1 with ctx->err. */
static int sv_fn_reserve(sv_ctx *ctx, const sv_job *job, char *path, size_t len)
{
    const char *dir = ctx->cfg->job_spool_dir;
    char perr[256];
    int accept_lock = sv_spool_lock_accepts(dir);
    /* Outside a pool (CGI, spawn-fcgi) nobody made the spool yet. */
    if (accept_lock < 0 && errno == ENOENT && sv_spool_prepare(dir, perr, sizeof(perr)) == SV_OK)
        accept_lock = sv_spool_lock_accepts(dir);
    if (accept_lock < 0) {
        sv_log_error("job_spool", "dir=%s error=\"%s\"", dir, strerror(errno));
        sv_fail(&ctx->err, 503, "job_start_failed", "The job spool is not available");
        return -1;
    }
    if (sv_spool_count(dir) >= ctx->cfg->job_max_running_per_host) {
        close(accept_lock);
        ctx->err.retry_after = 5;
        sv_fail(&ctx->err, 429, "host_busy", "Too many jobs are running on this server; try again shortly");
        return -1;
    }
    char *text = sv_job_to_json(job);
    int fd = text ? sv_spool_create(dir, job->job_id, text, path, len) : -1;
    int saved = errno;
    free(text);
    close(accept_lock);
    if (fd < 0) {
        sv_log_error("job_spool", "job_id=%s error=\"%s\"", job->job_id, strerror(saved));
        sv_fail(&ctx->err, 503, "job_start_failed", "The job could not be started");
    }
    return fd;
}

/* The job's process: forked by the pool's job launcher when there is
 * one, else spawned from this worker. The pid, 0 when it runs but its pid
 * is not known, or -1 with errno. *lock_fd may be replaced (or closed and
 * set to -1). */
/* The read end of a pipe holding this worker's configuration, for a job
 * it starts itself (--config-fd): the configuration file is root's (0640,
 * as installed) when the pool drops to `user`, and such a job, running as
 * that user, could not read it. The Realtime daemon gets the master's the
 * same way; the launcher's jobs have the launcher's. -1 with errno. */
static int sv_fn_config_pipe(const sv_config *cfg)
{
    size_t len = 0;
    char *text = sv_config_serialize(cfg, &len);
    int fds[2] = { -1, -1 }, saved;
    if (text == NULL) {
        saved = ENOMEM;
    } else if (len > SV_FN_CONFIG_PIPE_MAX) {
        saved = E2BIG;
    } else if (pipe2(fds, O_CLOEXEC) != 0) {
        saved = errno;
    } else {
        ssize_t written = write(fds[1], text, len);
        saved = written == (ssize_t)len ? 0 : written < 0 ? errno : EIO;
        close(fds[1]);
    }
    free(text);
    if (saved != 0 && fds[0] >= 0) {
        close(fds[0]);
        fds[0] = -1;
    }
    errno = saved;
    return fds[0];
}

static pid_t sv_fn_launch(sv_ctx *ctx, const char *program, char *const args[], const char *path,
                          int *lock_fd, int vault_fd)
{
    pid_t pid = ctx->cfg->job_launcher ? sv_job_relay_spawn(ctx->cfg->job_spool_dir, path, *lock_fd, vault_fd)
                                       : -1;
    if (pid > 0)
        return pid;
    if (pid == 0) {
        /* The launcher took the descriptor's lock but did not say whether
         * it forked. Whoever holds the lock runs the job: if a fresh
         * open of the descriptor can take it once this copy is gone,
         * nobody does, and the job is started here. A launcher killed
         * with the request in hand lets go of the lock as it exits, which
         * need not be before its end of the connection closed, whereas a
         * job holds it for its whole life: the lock is tried for a while
         * before it counts as the job's. */
        close(*lock_fd);
        *lock_fd = open(path, O_RDWR | O_CLOEXEC);
        if (*lock_fd < 0 && errno == ENOENT) {
            /* Only a job's end removes its descriptor: it ran, and ended. */
            sv_log_warn("job_launcher", "msg=\"no answer; the job has ended already\" job_path=%s", path);
            return 0;
        }
        if (*lock_fd < 0)
            return -1;
        int taken = 0;
        for (int i = 0; i < SV_FN_LOCK_TRIES && !(taken = flock(*lock_fd, LOCK_EX | LOCK_NB) == 0); i++) {
            struct timespec ts = { 0, SV_FN_LOCK_TRY_MS * 1000000L };
            nanosleep(&ts, NULL);
        }
        struct stat st;
        if (!taken || (fstat(*lock_fd, &st) == 0 && st.st_nlink == 0)) {
            /* Held: the job runs. Taken on a removed descriptor: the job
             * ended between the open and the lock. */
            close(*lock_fd);
            *lock_fd = -1;
            sv_log_warn("job_launcher", "msg=\"no answer; the job %s\" job_path=%s",
                        taken ? "has ended already" : "holds its lock", path);
            return 0;
        }
    }
    int config_fd = sv_fn_config_pipe(ctx->cfg);
    if (config_fd < 0)
        return -1;
    pid_t spawned = sv_job_spawn(program, args, *lock_fd, vault_fd, config_fd, NULL);
    int saved = errno;
    close(config_fd);
    errno = saved;
    return spawned;
}

/* Starts streamvibe-job on the descriptor at path (lock_fd holds its
 * lock, which passes to the job). */
static int sv_fn_start(sv_ctx *ctx, sv_job *job, const char *path, int lock_fd)
{
    char program_buf[PATH_MAX];
    const char *program = sv_job_program(ctx->cfg, program_buf, sizeof(program_buf));
    char *args[12];
    int n = 0;
    args[n++] = (char *)program;
    if (ctx->cfg->config_path != NULL) {
        args[n++] = "--config";
        args[n++] = ctx->cfg->config_path;
    }
    /* Read by a job this worker starts itself (sv_fn_config_pipe); the
     * launcher forks its jobs and passes no arguments. */
    args[n++] = "--config-fd";
    args[n++] = "5";
    args[n++] = "--lock-fd";
    args[n++] = "3";
    /* A sync opens the user's sealed platform token. The key files are
     * root's (the pool master read them before dropping privileges), so
     * the job, which runs as the worker's user, gets the keys from this
     * worker's memory through a pipe it reads and closes at once. Only
     * the sync gets them: the other jobs have no use for them. */
    int keys[2] = { -1, -1 };
    if (job->kind == SV_JOB_SYNC) {
        if (pipe2(keys, O_CLOEXEC) != 0 || sv_vault_pass(ctx->vault, keys[1]) != SV_OK) {
            int saved = errno;
            if (keys[0] >= 0) {
                close(keys[0]);
                close(keys[1]);
            }
            close(lock_fd);
            sv_log_error("job_spawn", "job_id=%s error=\"vault pipe: %s\"", job->job_id, strerror(saved));
            unlink(path);
            sv_fn_abandon(ctx, job, "the job's keys could not be passed to it");
            return sv_fail(&ctx->err, 503, "job_start_failed", "The job could not be started");
        }
        close(keys[1]);
        args[n++] = "--vault-fd";
        args[n++] = "4";
    }
    args[n++] = (char *)path;
    args[n] = NULL;
    pid_t pid = sv_fn_launch(ctx, program, args, path, &lock_fd, keys[0]);
    int spawn_errno = errno;
    if (lock_fd >= 0)
        close(lock_fd);
    if (keys[0] >= 0)
        close(keys[0]);   /* unread keys (a failed spawn) go with the pipe */
    if (pid < 0) {
        sv_log_error("job_spawn", "job_id=%s program=%s error=\"%s\"", job->job_id, program,
                     strerror(spawn_errno));
        unlink(path);
        sv_fn_abandon(ctx, job, "streamvibe-job could not be started");
        return sv_fail(&ctx->err, 503, "job_start_failed", "The job could not be started");
    }
    sv_log_info("job_accepted", "job_id=%s type=%s pid=%d request_id=%s", job->job_id,
                sv_job_type_name(job->kind), (int)pid, ctx->req->request_id);
    return SV_OK;
}

/* --- waiting ------------------------------------------------------------- */

static int sv_fn_resume(sv_ctx *ctx);

/* Parks the request until job_id ends or wait_s seconds pass. */
static int sv_fn_park(sv_ctx *ctx, const char *job_id, const char *user_id, int wait_s, int mode)
{
    sv_park *p = &ctx->park;
    p->resume = sv_fn_resume;
    p->mode = mode;
    p->deadline_ms = sv_clock_mono_ms() + (int64_t)wait_s * 1000;
    snprintf(p->key, sizeof(p->key), "%s", job_id);
    snprintf(p->user_id, sizeof(p->user_id), "%s", user_id ? user_id : "");
    return SV_PARK;
}

/* The job as its owner sees it (NULL user: any), as JSON text in the
 * arena; NULL with ctx->err when there is no such job. */
static const char *sv_fn_status_of(sv_ctx *ctx, const char *job_id, const char *user_id)
{
    static const char sql[] = "SELECT public.sv_job_status($1::uuid, $2::uuid)::text";
    const char *values[2] = { job_id, user_id && *user_id ? user_id : NULL };
    PGresult *r = sv_fn_sql(ctx, sql, 2, values);
    if (r == NULL)
        return NULL;
    const char *text = PQgetisnull(r, 0, 0) ? NULL : sv_arena_strdup(ctx->arena, PQgetvalue(r, 0, 0));
    PQclear(r);
    if (text == NULL)
        sv_fail(&ctx->err, 404, "not_found", "No such job of yours");
    return text;
}

static int sv_fn_is_running(const char *status_json)
{
    json_object *st, *v;
    const char *why;
    if (sv_json_parse(status_json, strlen(status_json), &st, &why) != SV_OK)
        return 0;
    int running = json_object_object_get_ex(st, "status", &v) && json_object_is_type(v, json_type_string) &&
                  strcmp(json_object_get_string(v), "running") == 0;
    json_object_put(st);
    return running;
}

/* The answer of an accept that waited: the document's {success, result}
 * for a completed job, {error} (500, as the document's functions
 * answer a failure) for one that failed, 202 while it runs. */
static int sv_fn_accept_answer(sv_ctx *ctx, const char *job_id, const char *status_json)
{
    json_object *st = NULL, *v;
    const char *why;
    if (status_json == NULL || sv_json_parse(status_json, strlen(status_json), &st, &why) != SV_OK)
        return sv_fn_json(ctx, 202, sv_arena_printf(ctx->arena, "{\"job_id\":\"%s\",\"status\":\"running\"}",
                                                      job_id));
    const char *status = json_object_object_get_ex(st, "status", &v) ? json_object_get_string(v) : "running";
    json_object *out = json_object_new_object();
    int code = 200;
    if (strcmp(status, "running") == 0) {
        code = 202;
        json_object_object_add(out, "job_id", json_object_new_string(job_id));
        json_object_object_add(out, "status", json_object_new_string("running"));
    } else if (strcmp(status, "completed") == 0) {
        json_object_object_add(out, "success", json_object_new_boolean(1));
        json_object_object_add(out, "job_id", json_object_new_string(job_id));
        json_object_object_add(out, "result", json_object_object_get_ex(st, "result", &v)
                                                  ? json_object_get(v) : json_object_new_object());
    } else {
        code = 500;
        json_object_object_add(out, "error", json_object_new_string(
            json_object_object_get_ex(st, "error", &v) ? json_object_get_string(v) : status));
        json_object_object_add(out, "job_id", json_object_new_string(job_id));
        json_object_object_add(out, "status", json_object_new_string(status));
    }
    sv_response_json(ctx->res, code, out);
    sv_response_header(ctx->res, "Cache-Control", "no-store");
    json_object_put(st);
    return SV_OK;
}

static int sv_fn_resume(sv_ctx *ctx)
{
    sv_park *p = &ctx->park;
    const char *status = sv_fn_status_of(ctx, p->key, p->user_id);
    if (status != NULL && sv_fn_is_running(status) && sv_clock_mono_ms() < p->deadline_ms)
        return SV_PARK;
    if (p->mode == SV_FN_PARK_ACCEPT) {
        sv_error_clear(&ctx->err);
        return sv_fn_accept_answer(ctx, p->key, status);
    }
    return status != NULL ? sv_fn_json(ctx, 200, status) : SV_ERROR;
}

/* --- the endpoints -------------------------------------------------------- */

static int sv_fn_accept_body(sv_ctx *ctx, sv_job_kind kind, json_object *body)
{
    static const char sql[] =
        "SELECT public.sv_job_accept($1::uuid, $2::uuid, $3::public.job_type, $4::uuid[], "
        "$5::int, $6::int)::text";
    const char *user_id, *targets = NULL, *why;
    int wait_s;
    sv_job job;

    memset(&job, 0, sizeof(job));
    if (sv_fn_owner(ctx, body, &user_id) != SV_OK || sv_fn_wait(ctx, &wait_s) != SV_OK ||
        sv_fn_targets(ctx, kind, body, &job.payload, &targets) != SV_OK)
        goto fail;
    sv_crypto_uuid4(job.job_id);
    snprintf(job.user_id, sizeof(job.user_id), "%s", user_id);
    job.kind = kind;
    job.accepted_ms = sv_clock_wall_ms();
    job.time_limit_s = sv_job_time_limit(ctx->cfg, kind);

    char path[4096];
    int lock_fd = sv_fn_reserve(ctx, &job, path, sizeof(path));
    if (lock_fd < 0)
        goto fail;
    const char *values[6] = { job.job_id, user_id, sv_job_type_name(kind), targets,
                              sv_arena_printf(ctx->arena, "%d", ctx->cfg->job_max_running_per_user),
                              sv_arena_printf(ctx->arena, "%d", sv_job_time_limit(ctx->cfg, kind) * 2) };
    PGresult *r = sv_fn_sql(ctx, sql, 6, values);
    json_object *verdict = NULL, *v;
    if (r != NULL) {
        sv_json_parse(PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), &verdict, &why);
        PQclear(r);
    }
    const char *status = verdict && json_object_object_get_ex(verdict, "status", &v)
                             ? json_object_get_string(v) : "";
    if (strcmp(status, "accepted") != 0) {
        /* Refused (or the database failed): the reservation goes. */
        unlink(path);
        close(lock_fd);
        if (r != NULL)
            sv_fn_refused(ctx, verdict, status);
        json_object_put(verdict);
        goto fail;
    }
    json_object_put(verdict);
    int rc = sv_fn_start(ctx, &job, path, lock_fd);
    if (rc != SV_OK)
        goto fail;
    if (wait_s > 0) {
        rc = sv_fn_park(ctx, job.job_id, user_id, wait_s, SV_FN_PARK_ACCEPT);
        sv_job_clear(&job);
        return rc;
    }
    rc = sv_fn_json(ctx, 202, sv_arena_printf(ctx->arena, "{\"job_id\":\"%s\",\"status\":\"running\"}",
                                                job.job_id));
    sv_job_clear(&job);
    return rc;
fail:
    sv_job_clear(&job);
    return SV_ERROR;
}

static int sv_fn_accept(sv_ctx *ctx, sv_job_kind kind)
{
    json_object *body;
    if (sv_fn_body(ctx, &body) != SV_OK)
        return SV_ERROR;
    int rc = sv_fn_accept_body(ctx, kind, body);
    json_object_put(body);
    return rc;
}

int sv_fn_sync_platform(sv_ctx *ctx)
{
    return sv_fn_accept(ctx, SV_JOB_SYNC);
}

int sv_fn_enhance_ai(sv_ctx *ctx)
{
    return sv_fn_accept(ctx, SV_JOB_AI);
}

int sv_fn_submit_seo(sv_ctx *ctx)
{
    return sv_fn_accept(ctx, SV_JOB_SEO);
}

/* The user a status request may see the jobs of: the caller, or any for
 * the service role (NULL). */
static const char *sv_fn_viewer(const sv_ctx *ctx)
{
    return strcmp(ctx->caller.role, "service_role") == 0 ? NULL : ctx->caller.user_id;
}

int sv_fn_job_status(sv_ctx *ctx)
{
    const char *job_id = ctx->req->path + strlen("/functions/v1/jobs/");
    int wait_s;

    if (!sv_uuid_valid(job_id))
        return sv_fail(&ctx->err, 404, "not_found", "No such job of yours");
    if (sv_fn_wait(ctx, &wait_s) != SV_OK)
        return SV_ERROR;
    const char *status = sv_fn_status_of(ctx, job_id, sv_fn_viewer(ctx));
    if (status == NULL)
        return SV_ERROR;
    if (wait_s > 0 && sv_fn_is_running(status))
        return sv_fn_park(ctx, job_id, sv_fn_viewer(ctx), wait_s, SV_FN_PARK_STATUS);
    return sv_fn_json(ctx, 200, status);
}

int sv_fn_jobs_list(sv_ctx *ctx)
{
    static const char sql[] = "SELECT public.sv_job_list_running($1::uuid)::text";
    const char *status = sv_request_query_param(ctx->req, "status");
    if (status == NULL || strcmp(status, "running") != 0)
        return sv_fail(&ctx->err, 400, "invalid_query",
                       "List jobs with ?status=running (finished jobs are in audit_log)");
    const char *user_id = sv_fn_viewer(ctx);
    if (user_id == NULL && (user_id = sv_request_query_param(ctx->req, "user_id")) == NULL)
        return sv_fail(&ctx->err, 400, "invalid_query", "The service role names the user (user_id)");
    if (!sv_uuid_valid(user_id))
        return sv_fail(&ctx->err, 400, "invalid_query", "user_id must be a uuid");
    const char *values[1] = { user_id };
    PGresult *r = sv_fn_sql(ctx, sql, 1, values);
    if (r == NULL)
        return SV_ERROR;
    int rc = sv_fn_json(ctx, 200, PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

int sv_fn_suggestion_apply(sv_ctx *ctx)
{
    static const char sql[] =
        "SELECT public.apply_ai_suggestion($1::uuid, ARRAY(SELECT jsonb_array_elements_text($2::jsonb)), "
        "$3::uuid)::text";
    const char *path = ctx->req->path + strlen("/functions/v1/suggestions/");
    const char *slash = strchr(path, '/');
    char id[37];
    json_object *body, *fields;

    if (slash == NULL || slash - path != 36)
        return sv_fail(&ctx->err, 404, "not_found", "No such suggestion of yours");
    memcpy(id, path, 36);
    id[36] = '\0';
    if (!sv_uuid_valid(id))
        return sv_fail(&ctx->err, 404, "not_found", "No such suggestion of yours");
    if (sv_fn_body(ctx, &body) != SV_OK)
        return SV_ERROR;
    const char *user_id;
    int rc = sv_fn_owner(ctx, body, &user_id);
    if (rc == SV_OK && (!json_object_object_get_ex(body, "fields", &fields) ||
                        !json_object_is_type(fields, json_type_array)))
        rc = sv_fail(&ctx->err, 400, "invalid_body",
                     "fields must be a list of title, description and tags");
    const char *values[3] = { id, rc == SV_OK ? json_object_to_json_string_ext(fields, JSON_C_TO_STRING_PLAIN) : NULL,
                              strcmp(ctx->caller.role, "service_role") == 0 ? user_id : NULL };
    PGresult *r = NULL;
    if (rc == SV_OK) {
        /* As the caller: row-level security decides whose suggestion it is. */
        if (sv_db_query_as(ctx->db, ctx->caller.role, ctx->caller.claims, sql, 3, values, &r) != SV_OK)
            rc = sv_db_unavailable(ctx->db, ctx->cfg->retry_after, &ctx->err);
        else if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
            rc = sv_sqlstate_postgrest(ctx->arena, r, 0, ctx->req->request_id, &ctx->err);
        else if (PQgetisnull(r, 0, 0))
            rc = sv_fail(&ctx->err, 404, "not_found", "No such suggestion of yours");
        else
            rc = sv_fn_json(ctx, 200, PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    json_object_put(body);
    return rc;
}

const char *sv_fn_indexnow_key_path(const sv_config *cfg, char *buf, size_t len)
{
    if (!sv_indexnow_key_valid(cfg->indexnow_key))
        return NULL;
    snprintf(buf, len, "/%s.txt", cfg->indexnow_key);
    return buf;
}

int sv_fn_indexnow_key(sv_ctx *ctx)
{
    sv_response_header(ctx->res, "Content-Type", "text/plain; charset=utf-8");
    sv_response_header(ctx->res, "X-Robots-Tag", "noindex");
    return sv_fn_json(ctx, 200, ctx->cfg->indexnow_key);
}
