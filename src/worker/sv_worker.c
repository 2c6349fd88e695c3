#include "worker/sv_worker.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/sv_clock.h"
#include "core/sv_log.h"
#include "worker/sv_phases.h"

/* NOTIFY sv_job_done: remember the job, for the requests parked on it. */
static void sv_worker_job_done(void *arg, const char *payload)
{
    sv_worker *w = arg;
    snprintf(w->done[w->done_next], sizeof(w->done[0]), "%s", payload);
    w->done_next = (w->done_next + 1) % SV_WORKER_DONE_RING;
    w->done_count++;
}

void sv_worker_init(sv_worker *w, const sv_config *cfg, sv_scoreboard *sb,
                    int slot_index, pid_t master_pid)
{
    memset(w, 0, sizeof(*w));
    w->cfg = cfg;
    w->sb = sb;
    w->slot = &sb->slots[slot_index];
    w->master_pid = master_pid;
    w->started_ms = sv_clock_wall_ms();
    w->handoff_fds[0] = w->handoff_fds[1] = -1;
    static const sv_vault no_vault = { .n = 0, .current = -1 };
    w->vault = &no_vault;
    /* The first chunk is kept across requests: big enough for a typical
     * answer (a 20-row page is ~20 kB) so a request does no malloc. */
    sv_arena_init(&w->arena, 96 * 1024);
    sv_db_init(&w->db, cfg->database_url);
    sv_db_init(&w->race_db, cfg->database_url);
    /* Half a second before the master's kill, so the client gets a clean
     * 504 and the query stops rather than running on orphaned. */
    if (cfg->request_timeout > 1)
        sv_db_set_statement_timeout(&w->db, cfg->request_timeout * 1000L - 500);
    sv_caller_cache_init(&w->callers);
    sv_rest_cache_init(&w->rest);
    sv_db_on_notify(&w->db, "sv_job_done", sv_worker_job_done, w);

    pid_t pid = getpid();
    sv_log_set_pid(pid);
    sv_ratelimit_set_pid(pid);
    sv_slot_attach(w->slot, pid, w->started_ms);
}

void sv_worker_cleanup(sv_worker *w)
{
    sv_db_close(&w->db);
    sv_db_close(&w->race_db);
    sv_caller_cache_free(&w->callers);
    sv_rest_cache_free(&w->rest);
    sv_arena_free(&w->arena);
}

/* A fresh context for a request of io's. */
static void sv_worker_ctx(sv_worker *w, sv_ctx *ctx, sv_request *req, sv_response *res,
                          const sv_io *io)
{
    *ctx = (sv_ctx){
        .cfg = w->cfg,
        .db = &w->db,
        .race_db = &w->race_db,
        .arena = &w->arena,
        .req = req,
        .res = res,
        .slot = w->slot,
        .sb = w->sb,
        .vault = w->vault,
        .ratelimit = w->ratelimit,
        .worker_started_ms = w->started_ms,
        .started_ms = sv_clock_mono_ms(),
        .caller_cache = &w->callers,
        .rest_cache = &w->rest,
        .shed_connections = w->shed_connections,
        .shed_arg = w->shed_arg,
    };
    sv_arena_reset(&w->arena);
    sv_request_init(req, &w->arena, io->envp);
    sv_request_strip_base(req, w->cfg->base_path);
    sv_response_init(res, &w->arena);
    sv_error_init(&ctx->err);
    sv_slot_busy(w->sb, w->slot, req->method_name, req->path, req->request_id, ctx->started_ms);
}

int sv_worker_handle(sv_worker *w, const sv_io *io, sv_park *park)
{
    sv_request req;
    sv_response res;
    sv_ctx ctx;

    sv_worker_ctx(w, &ctx, &req, &res, io);
    int rc = sv_phases_run(&ctx, io);
    if (rc == SV_PARK)
        *park = ctx.park;
    sv_slot_idle(w->slot, sv_clock_mono_ms() - ctx.started_ms);
    return rc;
}

int sv_worker_resume(sv_worker *w, const sv_io *io, sv_park *park)
{
    sv_request req;
    sv_response res;
    sv_ctx ctx;

    sv_worker_ctx(w, &ctx, &req, &res, io);
    ctx.park = *park;
    int64_t resumed = ctx.started_ms;
    int rc = sv_phases_resume(&ctx, io);
    if (rc == SV_PARK)
        *park = ctx.park;
    sv_slot_idle(w->slot, sv_clock_mono_ms() - resumed);
    return rc;
}

int sv_worker_park_ready(const sv_worker *w, const sv_park *park, int64_t now_ms, int force)
{
    if (force || now_ms >= park->deadline_ms)
        return 1;
    for (unsigned i = 0; i < SV_WORKER_DONE_RING; i++)
        if (w->done[i][0] != '\0' && strcmp(w->done[i], park->key) == 0)
            return 1;
    return 0;
}

void sv_worker_wait_parked(sv_worker *w, const sv_io *io, sv_park *park)
{
    do {
        for (;;) {
            int64_t now = sv_clock_mono_ms();
            if (sv_worker_park_ready(w, park, now, 0))
                break;
            int fd = sv_db_socket(&w->db);
            int64_t wait = park->deadline_ms - now;
            struct pollfd pfd = { .fd = fd, .events = POLLIN };
            if (fd < 0 || poll(&pfd, 1, wait > 1000 ? 1000 : (int)wait) > 0)
                sv_db_read_idle(&w->db);
            if (fd < 0)
                break; /* no connection to hear from: answer now */
        }
    } while (sv_worker_resume(w, io, park) == SV_PARK);
}
