#include "sv_ops.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sv_log.h"
#include "sv_worker.h"

/* Health is a real round trip: it reports the newest applied migration,
 * so a server pointed at an empty database is visibly not ready. */
void sv_ops_healthz(sv_worker *w, sv_request *req, sv_response *res)
{
    PGresult *result = NULL;
    json_object *obj = json_object_new_object();
    int status = 200;

    json_object_object_add(obj, "pid", json_object_new_int(w->slot->pid));
    json_object_object_add(obj, "uptime_s",
                           json_object_new_int64((sv_now_wall_ms() - w->started_ms) / 1000));
    json_object_object_add(obj, "requests",
                           json_object_new_int64((int64_t)w->slot->requests + 1));

    int rc = sv_db_query(&w->db, "SELECT max(version) FROM public.schema_migrations", 0, NULL,
                         &result);
    if (rc == SV_DB_UNAVAILABLE) {
        status = 503;
        json_object_object_add(obj, "status", json_object_new_string("unavailable"));
        json_object_object_add(obj, "database", json_object_new_string("unreachable"));
        sv_response_header(res, "Retry-After",
                           sv_arena_printf(req->arena, "%d", w->cfg->retry_after));
        sv_log_warn("database_unavailable", "error=\"%s\"", w->db.last_error);
    } else if (PQresultStatus(result) != PGRES_TUPLES_OK) {
        status = 503;
        json_object_object_add(obj, "status", json_object_new_string("unavailable"));
        json_object_object_add(obj, "database", json_object_new_string("not migrated"));
        json_object_object_add(obj, "message",
                               json_object_new_string("run: streamvibe-admin migrate"));
        sv_response_header(res, "Retry-After",
                           sv_arena_printf(req->arena, "%d", w->cfg->retry_after));
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
    sv_response_header(res, "Cache-Control", "no-store");
    sv_response_json(res, status, obj);
}

static int sv_cidr_match(const char *entry, const char *addr)
{
    unsigned char want[16], have[16];
    char text[64];
    int bits = -1;

    snprintf(text, sizeof(text), "%s", entry);
    char *slash = strchr(text, '/');
    if (slash != NULL) {
        *slash = '\0';
        bits = atoi(slash + 1);
    }
    int family = strchr(text, ':') ? AF_INET6 : AF_INET;
    int addr_family = strchr(addr, ':') ? AF_INET6 : AF_INET;
    if (family != addr_family || inet_pton(family, text, want) != 1 ||
        inet_pton(family, addr, have) != 1)
        return 0;
    int maxbits = family == AF_INET ? 32 : 128;
    if (bits < 0 || bits > maxbits)
        bits = maxbits;
    for (int i = 0; i < bits / 8; i++)
        if (want[i] != have[i])
            return 0;
    if (bits % 8) {
        unsigned char mask = (unsigned char)(0xff << (8 - bits % 8));
        if ((want[bits / 8] & mask) != (have[bits / 8] & mask))
            return 0;
    }
    return 1;
}

int sv_ops_addr_allowed(const char *allow, const char *addr)
{
    char entry[64];
    if (allow == NULL || addr == NULL || *addr == '\0')
        return 0;
    const char *p = allow;
    while (*p) {
        p += strspn(p, ", \t");
        size_t len = strcspn(p, ", \t");
        if (len > 0 && len < sizeof(entry)) {
            memcpy(entry, p, len);
            entry[len] = '\0';
            if (sv_cidr_match(entry, addr))
                return 1;
        }
        p += len;
    }
    return 0;
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
void sv_ops_status(sv_worker *w, sv_request *req, sv_response *res)
{
    sv_scoreboard *sb = w->sb;
    if (!sv_ops_addr_allowed(w->cfg->status_allow, req->remote_addr)) {
        sv_response_error(res, 403, "SV403", "Access to the pool status is not allowed from this address",
                          NULL, "Add the address to status_allow");
        return;
    }

    int full = sv_request_query_param(req, "full") != NULL;
    int64_t now_wall = sv_now_wall_ms();
    int64_t now_mono = sv_now_monotonic_ms();
    int idle = 0, active = 0, total = 0;
    json_object *workers = full ? json_object_new_array() : NULL;

    for (int i = 0; i < SV_SCOREBOARD_SLOTS; i++) {
        sv_slot *slot = &sb->slots[i];
        uint32_t state = __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE);
        if (state == SV_SLOT_FREE)
            continue;
        total++;
        if (state == SV_SLOT_BUSY)
            active++;
        else if (state == SV_SLOT_IDLE)
            idle++;
        if (!full)
            continue;
        json_object *wo = json_object_new_object();
        json_object_object_add(wo, "pid", json_object_new_int(slot->pid));
        json_object_object_add(wo, "state", json_object_new_string(sv_slot_state_name(state)));
        json_object_object_add(wo, "start_time", json_object_new_int64(slot->started_ms / 1000));
        json_object_object_add(wo, "start_since",
                               json_object_new_int64((now_wall - slot->started_ms) / 1000));
        json_object_object_add(wo, "requests",
                               json_object_new_int64((int64_t)__atomic_load_n(&slot->requests, __ATOMIC_RELAXED)));
        json_object_object_add(wo, "generation", json_object_new_int64(slot->generation));
        json_object_object_add(wo, "connections",
                               json_object_new_int((int)__atomic_load_n(&slot->connections, __ATOMIC_RELAXED)));
        if (state == SV_SLOT_BUSY) {
            json_object_object_add(wo, "request_duration_ms",
                                   json_object_new_int64(now_mono - slot->request_start_ms));
            json_object_object_add(wo, "request_method", json_object_new_string(slot->method));
            json_object_object_add(wo, "request_uri", json_object_new_string(slot->path));
        } else {
            json_object_object_add(wo, "last_request_duration_ms",
                                   json_object_new_int64(slot->last_duration_ms));
        }
        json_object_array_add(workers, wo);
    }

    json_object *obj = json_object_new_object();
    json_object_object_add(obj, "pool", json_object_new_string(w->cfg->pool_name));
    json_object_object_add(obj, "process_manager",
                           json_object_new_string(w->master_pid ? "static" : "external"));
    json_object_object_add(obj, "start_time", json_object_new_int64(sb->start_time));
    json_object_object_add(obj, "start_since",
                           json_object_new_int64(now_wall / 1000 - sb->start_time));
    json_object_object_add(obj, "accepted_conn",
                           json_object_new_int64((int64_t)__atomic_load_n(&sb->accepted_conn, __ATOMIC_RELAXED)));
    json_object_object_add(obj, "fastcgi_connections",
                           json_object_new_int64((int64_t)__atomic_load_n(&sb->fastcgi_connections, __ATOMIC_RELAXED)));
    json_object_object_add(obj, "fastcgi_passed",
                           json_object_new_int64((int64_t)__atomic_load_n(&sb->fastcgi_passed, __ATOMIC_RELAXED)));
    json_object_object_add(obj, "idle_processes", json_object_new_int(idle));
    json_object_object_add(obj, "active_processes", json_object_new_int(active));
    json_object_object_add(obj, "total_processes", json_object_new_int(total));
    json_object_object_add(obj, "max_active_processes", json_object_new_int((int)sb->max_active));
    json_object_object_add(obj, "max_children_reached", json_object_new_int((int)sb->max_children_reached));
    json_object_object_add(obj, "slow_requests",
                           json_object_new_int64((int64_t)__atomic_load_n(&sb->slow_requests, __ATOMIC_RELAXED)));
    json_object_object_add(obj, "timed_out_requests",
                           json_object_new_int64((int64_t)__atomic_load_n(&sb->timed_out_requests, __ATOMIC_RELAXED)));
    json_object_object_add(obj, "respawned_workers",
                           json_object_new_int64((int64_t)__atomic_load_n(&sb->respawned_workers, __ATOMIC_RELAXED)));
    json_object_object_add(obj, "generation", json_object_new_int64(sb->generation));
    if (workers != NULL)
        json_object_object_add(obj, "processes", workers);
    sv_response_header(res, "Cache-Control", "no-store");
    sv_response_json(res, 200, obj);
}
