#include "ops/sv_ops.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/sv_addr.h"
#include "core/sv_clock.h"
#include "core/sv_log.h"

/* Health is a real round trip: it reports the newest applied migration,
 * so a server pointed at an empty database is visibly not ready. */
int sv_ops_healthz(sv_ctx *ctx)
{
    PGresult *result = NULL;
    json_object *obj = json_object_new_object();
    int status = 200;

    json_object_object_add(obj, "pid", json_object_new_int(ctx->slot->pid));
    json_object_object_add(obj, "uptime_s",
                           json_object_new_int64((sv_clock_wall_ms() - ctx->worker_started_ms) / 1000));
    json_object_object_add(obj, "requests",
                           json_object_new_int64((int64_t)sv_slot_requests(ctx->slot) + 1));

    int rc = sv_db_query(ctx->db, "SELECT max(version) FROM public.schema_migrations", 0, NULL,
                         &result);
    if (rc != SV_OK) {
        status = 503;
        json_object_object_add(obj, "status", json_object_new_string("unavailable"));
        json_object_object_add(obj, "database", json_object_new_string("unreachable"));
        sv_response_header(ctx->res, "Retry-After",
                           sv_arena_printf(ctx->arena, "%d", ctx->cfg->retry_after));
        sv_log_warn("database_unavailable", "error=\"%s\"", ctx->db->last_error);
    } else if (PQresultStatus(result) != PGRES_TUPLES_OK) {
        status = 503;
        json_object_object_add(obj, "status", json_object_new_string("unavailable"));
        json_object_object_add(obj, "database", json_object_new_string("not migrated"));
        json_object_object_add(obj, "message",
                               json_object_new_string("run: streamvibe-admin migrate"));
        sv_response_header(ctx->res, "Retry-After",
                           sv_arena_printf(ctx->arena, "%d", ctx->cfg->retry_after));
    } else {
        json_object_object_add(obj, "status", json_object_new_string("ok"));
        json_object_object_add(obj, "database", json_object_new_string("ok"));
        json_object_object_add(obj, "schema_version",
                               PQgetisnull(result, 0, 0)
                                   ? NULL
                                   : json_object_new_string(PQgetvalue(result, 0, 0)));
    }
    if (result != NULL)
        PQclear(result);
    sv_response_header(ctx->res, "Cache-Control", "no-store");
    sv_response_json(ctx->res, status, obj);
    return SV_OK;
}

static const char *sv_slot_state_name(uint32_t state)
{
    switch (state) {
    case SV_SLOT_STARTING: return "Starting";
    case SV_SLOT_IDLE: return "Idle";
    case SV_SLOT_BUSY: return "Running";
    case SV_SLOT_EXITING: return "Finishing";
    default: return "Free";
    }
}

/* php-fpm's status page, as JSON; "?full" adds one entry per worker. */
int sv_ops_status(sv_ctx *ctx)
{
    const sv_scoreboard *sb = ctx->sb;
    if (!sv_addr_allowed(ctx->cfg->status_allow, ctx->req->remote_addr))
        return sv_fail_details(&ctx->err, 403, "SV403",
                               "Access to the pool status is not allowed from this address", NULL,
                               "Add the address to status_allow");

    int full = sv_request_query_param(ctx->req, "full") != NULL;
    int64_t now_wall = sv_clock_wall_ms();
    int64_t now_mono = sv_clock_mono_ms();
    int idle = 0, active = 0, total = 0;
    int64_t parked = 0;
    json_object *workers = full ? json_object_new_array() : NULL;

    for (int i = 0; i < SV_SCOREBOARD_SLOTS; i++) {
        sv_slot_view slot;
        if (!sv_scoreboard_slot_view(sb, i, &slot))
            continue;
        total++;
        parked += slot.parked;
        if (slot.state == SV_SLOT_BUSY)
            active++;
        else if (slot.state == SV_SLOT_IDLE)
            idle++;
        if (!full)
            continue;
        json_object *wo = json_object_new_object();
        json_object_object_add(wo, "pid", json_object_new_int(slot.pid));
        json_object_object_add(wo, "state", json_object_new_string(sv_slot_state_name(slot.state)));
        json_object_object_add(wo, "start_time", json_object_new_int64(slot.started_ms / 1000));
        json_object_object_add(wo, "start_since",
                               json_object_new_int64((now_wall - slot.started_ms) / 1000));
        json_object_object_add(wo, "requests", json_object_new_int64((int64_t)slot.requests));
        json_object_object_add(wo, "generation", json_object_new_int64(slot.generation));
        json_object_object_add(wo, "connections", json_object_new_int((int)slot.connections));
        json_object_object_add(wo, "parked_requests", json_object_new_int((int)slot.parked));
        if (slot.state == SV_SLOT_BUSY) {
            json_object_object_add(wo, "request_duration_ms",
                                   json_object_new_int64(now_mono - slot.request_start_ms));
            json_object_object_add(wo, "request_method", json_object_new_string(slot.method));
            json_object_object_add(wo, "request_uri", json_object_new_string(slot.path));
        } else {
            json_object_object_add(wo, "last_request_duration_ms",
                                   json_object_new_int64(slot.last_duration_ms));
        }
        json_object_array_add(workers, wo);
    }

    sv_scoreboard_view v;
    sv_scoreboard_summary(sb, &v);
    json_object *obj = json_object_new_object();
    json_object_object_add(obj, "pool", json_object_new_string(ctx->cfg->pool_name));
    json_object_object_add(obj, "process_manager",
                           json_object_new_string(v.master_pid ? "static" : "external"));
    json_object_object_add(obj, "start_time", json_object_new_int64(v.start_time));
    json_object_object_add(obj, "start_since", json_object_new_int64(now_wall / 1000 - v.start_time));
    static const struct {
        const char *name;
        sv_counter  counter;
    } counters[] = {
        { "accepted_conn", SV_COUNT_ACCEPTED },
        { "fastcgi_connections", SV_COUNT_FASTCGI_CONNS },
        { "fastcgi_passed", SV_COUNT_FASTCGI_PASSED },
    };
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
        json_object_object_add(obj, counters[i].name,
                               json_object_new_int64((int64_t)v.counters[counters[i].counter]));
    json_object_object_add(obj, "idle_processes", json_object_new_int(idle));
    json_object_object_add(obj, "active_processes", json_object_new_int(active));
    json_object_object_add(obj, "total_processes", json_object_new_int(total));
    json_object_object_add(obj, "parked_requests", json_object_new_int64(parked));
    json_object_object_add(obj, "max_active_processes", json_object_new_int((int)v.max_active));
    json_object_object_add(obj, "max_children_reached", json_object_new_int((int)v.max_children_reached));
    json_object_object_add(obj, "slow_requests", json_object_new_int64((int64_t)v.counters[SV_COUNT_SLOW]));
    json_object_object_add(obj, "timed_out_requests",
                           json_object_new_int64((int64_t)v.counters[SV_COUNT_TIMED_OUT]));
    json_object_object_add(obj, "respawned_workers",
                           json_object_new_int64((int64_t)v.counters[SV_COUNT_RESPAWNED]));
    json_object_object_add(obj, "generation", json_object_new_int64(v.generation));
    if (workers != NULL)
        json_object_object_add(obj, "processes", workers);
    sv_response_header(ctx->res, "Cache-Control", "no-store");
    sv_response_json(ctx->res, 200, obj);
    return SV_OK;
}
