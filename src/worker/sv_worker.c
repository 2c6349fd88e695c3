#include "worker/sv_worker.h"

#include <string.h>
#include <unistd.h>

#include "core/sv_clock.h"
#include "core/sv_log.h"
#include "http/sv_ctx.h"
#include "worker/sv_phases.h"

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
    /* Half a second before the master's kill, so the client gets a clean
     * 504 and the query stops rather than running on orphaned. */
    if (cfg->request_timeout > 1)
        sv_db_set_statement_timeout(&w->db, cfg->request_timeout * 1000L - 500);
    sv_caller_cache_init(&w->callers);
    sv_rest_cache_init(&w->rest);

    pid_t pid = getpid();
    sv_log_set_pid(pid);
    sv_ratelimit_set_pid(pid);
    sv_slot_attach(w->slot, pid, w->started_ms);
}

void sv_worker_cleanup(sv_worker *w)
{
    sv_db_close(&w->db);
    sv_caller_cache_free(&w->callers);
    sv_rest_cache_free(&w->rest);
    sv_arena_free(&w->arena);
}

void sv_worker_handle(sv_worker *w, const sv_io *io)
{
    sv_request req;
    sv_response res;
    sv_ctx ctx = {
        .cfg = w->cfg,
        .db = &w->db,
        .arena = &w->arena,
        .req = &req,
        .res = &res,
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
    sv_request_init(&req, &w->arena, io->envp);
    sv_response_init(&res, &w->arena);
    sv_error_init(&ctx.err);
    sv_slot_busy(w->sb, w->slot, req.method_name, req.path, req.request_id, ctx.started_ms);
    sv_phases_run(&ctx, io);
    sv_slot_idle(w->slot, sv_clock_mono_ms() - ctx.started_ms);
}
