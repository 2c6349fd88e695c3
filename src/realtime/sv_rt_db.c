/* The daemon's two PostgreSQL connections, both non-blocking inside the
 * event loop:
 *
 *   listen  LISTEN sv_realtime (the capture trigger's notifications) and
 *           pgrst (schema reloads); never runs anything else, so a
 *           notification is read as soon as PostgreSQL sends it
 *   query   one job at a time, in order: subscription checks when a
 *           channel joins, and for each change one round trip holding
 *           every subscriber group's check (a multi-statement simple
 *           query: set_config for the group's role and claims, then its
 *           SELECT, all in one implicit transaction)
 *
 * Either connection that breaks (PostgreSQL restarted, network) is
 * reopened with a growing delay (250 ms to 5 s); LISTEN is issued again,
 * and channels are told that changes may have been missed meanwhile. */
#include "realtime/sv_rt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "core/sv_log.h"

#define SV_RT_CONNECT_TIMEOUT_MS 10000
#define SV_RT_BACKOFF_MIN_MS 250
#define SV_RT_BACKOFF_MAX_MS 5000

int sv_rt_db_ready(const sv_rt *rt)
{
    return (rt->pg_listen.state == SV_RT_PG_READY || rt->pg_listen.state == SV_RT_PG_BUSY) &&
           (rt->pg_query.state == SV_RT_PG_READY || rt->pg_query.state == SV_RT_PG_BUSY);
}

char *sv_rt_db_literal(sv_rt *rt, const char *s, size_t len)
{
    char *q = PQescapeLiteral(rt->pg_query.conn, s, len);
    if (q == NULL)
        return "NULL";
    char *out = sv_arena_strdup(&rt->arena, q);
    PQfreemem(q);
    return out;
}

void sv_rt_job_free(sv_rt *rt, sv_rt_job *job)
{
    if (job == NULL)
        return;
    sv_rt_ident_put(rt, job->ident);
    sv_rt_fanout_job_free(job);
    for (int i = 0; i < job->nres; i++)
        PQclear(job->res[i]);
    free(job->res);
    free(job->sql);
    free(job);
}

/* epoll interest in pg's socket; libpq may change the descriptor while
 * connecting (one per address it tries). */
static void sv_rt_pg_watch(sv_rt *rt, sv_rt_pg *pg, uint32_t events)
{
    int fd = pg->conn ? PQsocket(pg->conn) : -1;
    struct epoll_event ev = { .events = events, .data.ptr = pg };
    if (fd != pg->fd) {
        if (pg->fd >= 0)
            epoll_ctl(rt->epfd, EPOLL_CTL_DEL, pg->fd, NULL);
        pg->fd = fd;
        pg->events = 0;
        if (fd >= 0 && epoll_ctl(rt->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
            pg->events = events;
        return;
    }
    if (fd < 0 || events == pg->events)
        return;
    if (epoll_ctl(rt->epfd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
        epoll_ctl(rt->epfd, EPOLL_CTL_ADD, fd, &ev);
    pg->events = events;
}

static void sv_rt_pg_close(sv_rt *rt, sv_rt_pg *pg)
{
    if (pg->fd >= 0)
        epoll_ctl(rt->epfd, EPOLL_CTL_DEL, pg->fd, NULL);
    pg->fd = -1;
    pg->events = 0;
    if (pg->conn != NULL)
        PQfinish(pg->conn);
    pg->conn = NULL;
}

static void sv_rt_job_done(sv_rt *rt, sv_rt_job *job, PGresult **res, int n, int db_down);

/* The connection broke or could not be made: try again later. Jobs
 * waiting for the query connection fail (joins are refused, changes are
 * lost and clients are told once the database is back). */
static void sv_rt_pg_down(sv_rt *rt, sv_rt_pg *pg, const char *why)
{
    int was_up = pg->state == SV_RT_PG_READY || pg->state == SV_RT_PG_BUSY || pg->state == SV_RT_PG_SETUP;
    snprintf(pg->last_error, sizeof(pg->last_error), "%s",
             why ? why : (pg->conn ? PQerrorMessage(pg->conn) : "unknown"));
    for (char *p = pg->last_error; *p; p++)
        if (*p == '\n' || *p == '"')
            *p = ' ';
    if (rt->stopping || (why != NULL && strcmp(why, "stopping") == 0))
        ; /* expected */
    else if (was_up || pg->backoff_ms == SV_RT_BACKOFF_MIN_MS)
        sv_log_warn("rt_db", "connection=%s state=down error=\"%s\"", pg->name, pg->last_error);
    sv_rt_pg_close(rt, pg);
    pg->state = SV_RT_PG_DOWN;
    pg->deadline_ms = rt->now_ms + pg->backoff_ms;
    pg->backoff_ms = pg->backoff_ms * 2 > SV_RT_BACKOFF_MAX_MS ? SV_RT_BACKOFF_MAX_MS : pg->backoff_ms * 2;
    if (was_up)
        rt->missed = 1;
    if (pg == &rt->pg_query) {
        sv_rt_job *job = rt->job_running;
        rt->job_running = NULL;
        if (job != NULL)
            sv_rt_job_done(rt, job, NULL, 0, 1);
        while ((job = rt->jobs_head) != NULL) {
            rt->jobs_head = job->next;
            if (rt->jobs_head == NULL)
                rt->jobs_tail = NULL;
            sv_rt_job_done(rt, job, NULL, 0, 1);
        }
    }
}

static void sv_rt_pg_connect(sv_rt *rt, sv_rt_pg *pg)
{
    static const char *const keys[] = { "dbname", "fallback_application_name", NULL };
    const char *vals[] = { rt->cfg.database_url, "streamvibe-realtime", NULL };
    pg->conn = PQconnectStartParams(keys, vals, 1);
    if (pg->conn == NULL || PQstatus(pg->conn) == CONNECTION_BAD) {
        sv_rt_pg_down(rt, pg, NULL);
        return;
    }
    pg->state = SV_RT_PG_CONNECTING;
    pg->deadline_ms = rt->now_ms + SV_RT_CONNECT_TIMEOUT_MS;
    sv_rt_pg_watch(rt, pg, EPOLLOUT);
}

/* Sends the setup statements once connected. */
static void sv_rt_pg_setup(sv_rt *rt, sv_rt_pg *pg)
{
    const char *sql = pg == &rt->pg_listen
                          ? "LISTEN sv_realtime; LISTEN pgrst"
                          /* A subscriber's RLS policy that hangs must not
                           * stop every delivery behind it. */
                          : "SET statement_timeout = '5s'; SET standard_conforming_strings = on";
    if (PQsetnonblocking(pg->conn, 1) != 0 || PQsendQuery(pg->conn, sql) != 1) {
        sv_rt_pg_down(rt, pg, NULL);
        return;
    }
    pg->state = SV_RT_PG_SETUP;
    sv_rt_pg_watch(rt, pg, EPOLLIN | (PQflush(pg->conn) == 1 ? EPOLLOUT : 0));
}

static void sv_rt_db_next(sv_rt *rt);

/* The connection is usable: after a reconnect, say so. */
static void sv_rt_pg_ready(sv_rt *rt, sv_rt_pg *pg)
{
    pg->state = SV_RT_PG_READY;
    pg->backoff_ms = SV_RT_BACKOFF_MIN_MS;
    if (pg->ever_up) {
        rt->stats.db_reconnects++;
        sv_log_info("rt_db", "connection=%s state=up", pg->name);
    }
    pg->ever_up = 1;
    if (pg == &rt->pg_query)
        rt->query_gen++;
    sv_rt_pg_watch(rt, pg, EPOLLIN);
    if (pg == &rt->pg_query)
        sv_rt_db_next(rt);
}

void sv_rt_db_init(sv_rt *rt)
{
    memset(&rt->pg_listen, 0, sizeof(rt->pg_listen));
    memset(&rt->pg_query, 0, sizeof(rt->pg_query));
    rt->pg_listen.kind = rt->pg_query.kind = SV_RT_EP_PG;
    rt->pg_listen.name = "listen";
    rt->pg_query.name = "query";
    rt->pg_listen.fd = rt->pg_query.fd = -1;
    rt->pg_listen.backoff_ms = rt->pg_query.backoff_ms = SV_RT_BACKOFF_MIN_MS;
}

void sv_rt_db_start(sv_rt *rt)
{
    sv_rt_pg_connect(rt, &rt->pg_listen);
    sv_rt_pg_connect(rt, &rt->pg_query);
}

void sv_rt_db_stop(sv_rt *rt)
{
    sv_rt_pg_down(rt, &rt->pg_query, "stopping");
    sv_rt_pg_close(rt, &rt->pg_listen);
    rt->pg_listen.state = SV_RT_PG_DOWN;
    rt->pg_query.deadline_ms = rt->pg_listen.deadline_ms = rt->now_ms;
    rt->pg_query.backoff_ms = rt->pg_listen.backoff_ms = SV_RT_BACKOFF_MIN_MS;
    rt->pg_query.ever_up = rt->pg_listen.ever_up = 0;
}

/* --- jobs ---------------------------------------------------------------------- */

static void sv_rt_job_done(sv_rt *rt, sv_rt_job *job, PGresult **res, int n, int db_down)
{
    if (job->kind == SV_RT_JOB_CHECK) {
        const char *error = NULL;
        for (int i = 0; i < n && error == NULL; i++)
            if (PQresultStatus(res[i]) == PGRES_FATAL_ERROR) {
                const char *msg = PQresultErrorField(res[i], PG_DIAG_MESSAGE_PRIMARY);
                error = sv_arena_strdup(&rt->arena, msg ? msg : "subscription check failed");
            }
        if (db_down || n == 0)
            sv_rt_chan_checked(rt, job, NULL, "database unavailable");
        else {
            if (error == NULL)
                sv_rt_chan_store_tinfos(rt, job->ident->role, res, n);
            sv_rt_chan_checked(rt, job, res[0], error);
        }
        sv_rt_job_free(rt, job);
        return;
    }
    /* FETCH / FANOUT own the job from here. */
    sv_rt_fanout_results(rt, job, res, n, db_down ? "database unavailable" : NULL);
}

/* Starts the next queued job on the query connection, if it is free. */
static void sv_rt_db_next(sv_rt *rt)
{
    while (rt->pg_query.state == SV_RT_PG_READY && rt->job_running == NULL && rt->jobs_head != NULL) {
        sv_rt_job *job = rt->jobs_head;
        rt->jobs_head = job->next;
        if (rt->jobs_head == NULL)
            rt->jobs_tail = NULL;
        job->next = NULL;
        free(job->sql);
        job->sql = NULL;
        if (job->kind == SV_RT_JOB_CHECK) {
            job->sql = sv_rt_chan_check_sql(rt, job);
        } else if (sv_rt_fanout_build(rt, job) != 0) {
            sv_rt_job_free(rt, job);
            continue;
        }
        if (job->sql == NULL) {
            sv_rt_job_free(rt, job);
            continue;
        }
        if (PQsendQuery(rt->pg_query.conn, job->sql) != 1) {
            rt->job_running = job;
            sv_rt_pg_down(rt, &rt->pg_query, NULL);
            return;
        }
        rt->job_running = job;
        rt->pg_query.state = SV_RT_PG_BUSY;
        int f = PQflush(rt->pg_query.conn);
        if (f < 0) {
            sv_rt_pg_down(rt, &rt->pg_query, NULL);
            return;
        }
        sv_rt_pg_watch(rt, &rt->pg_query, EPOLLIN | (f == 1 ? EPOLLOUT : 0));
    }
}

void sv_rt_db_submit(sv_rt *rt, sv_rt_job *job, int front)
{
    if (rt->pg_query.state == SV_RT_PG_DOWN || rt->pg_query.state == SV_RT_PG_CONNECTING ||
        rt->stopping) {
        /* No connection: fail now rather than queue for an unknown time. */
        sv_rt_job_done(rt, job, NULL, 0, 1);
        return;
    }
    job->next = NULL;
    if (front) {
        job->next = rt->jobs_head;
        rt->jobs_head = job;
        if (rt->jobs_tail == NULL)
            rt->jobs_tail = job;
    } else {
        if (rt->jobs_tail != NULL)
            rt->jobs_tail->next = job;
        else
            rt->jobs_head = job;
        rt->jobs_tail = job;
    }
    sv_rt_db_next(rt);
}

/* Collects the running job's results; once libpq has returned the last
 * one, completes the job and starts the next. */
static void sv_rt_db_read_results(sv_rt *rt)
{
    sv_rt_pg *pg = &rt->pg_query;
    while (!PQisBusy(pg->conn)) {
        PGresult *r = PQgetResult(pg->conn);
        sv_rt_job *job = rt->job_running;
        if (r == NULL) {
            if (pg->state == SV_RT_PG_SETUP) {
                sv_rt_pg_ready(rt, pg);
                return;
            }
            if (job == NULL)
                return;
            rt->job_running = NULL;
            pg->state = SV_RT_PG_READY;
            sv_rt_job_done(rt, job, job->res, job->nres, 0);
            sv_rt_db_next(rt);
            return;
        }
        if (job == NULL) {
            /* The setup statements. */
            if (PQresultStatus(r) == PGRES_FATAL_ERROR)
                sv_log_warn("rt_db", "connection=query error=\"%s\"", PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
            PQclear(r);
            continue;
        }
        if (job->nres == job->res_cap) {
            int cap = job->res_cap ? job->res_cap * 2 : 8;
            PGresult **nr = realloc(job->res, sizeof(*nr) * (size_t)cap);
            if (nr == NULL) {
                PQclear(r);
                continue;
            }
            job->res = nr;
            job->res_cap = cap;
        }
        job->res[job->nres++] = r;
    }
}

static void sv_rt_db_read_notifies(sv_rt *rt)
{
    sv_rt_pg *pg = &rt->pg_listen;
    while (!PQisBusy(pg->conn)) {
        PGresult *r = PQgetResult(pg->conn);
        if (r == NULL) {
            if (pg->state == SV_RT_PG_SETUP)
                sv_rt_pg_ready(rt, pg);
            break;
        }
        if (PQresultStatus(r) == PGRES_FATAL_ERROR)
            sv_log_warn("rt_db", "connection=listen error=\"%s\"", PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
        PQclear(r);
    }
    PGnotify *n;
    while ((n = PQnotifies(pg->conn)) != NULL) {
        if (strcmp(n->relname, "sv_realtime") == 0) {
            rt->stats.changes++;
            sv_rt_fanout_notify(rt, n->extra);
        } else if (strcmp(n->relname, "pgrst") == 0) {
            /* A schema change (streamvibe-admin migrate, or by hand):
             * columns and policies are read again. */
            sv_log_info("rt_db", "msg=\"schema reload: checking subscriptions again\"");
            sv_rt_chan_recheck_all(rt);
        }
        PQfreemem(n);
    }
}

void sv_rt_db_event(sv_rt *rt, sv_rt_pg *pg, uint32_t events)
{
    if (pg->conn == NULL)
        return;
    if (pg->state == SV_RT_PG_CONNECTING) {
        PostgresPollingStatusType st = PQconnectPoll(pg->conn);
        switch (st) {
        case PGRES_POLLING_READING:
            sv_rt_pg_watch(rt, pg, EPOLLIN);
            break;
        case PGRES_POLLING_WRITING:
            sv_rt_pg_watch(rt, pg, EPOLLOUT);
            break;
        case PGRES_POLLING_OK:
            sv_rt_pg_setup(rt, pg);
            break;
        default:
            sv_rt_pg_down(rt, pg, NULL);
            break;
        }
        return;
    }
    if (events & EPOLLOUT) {
        int f = PQflush(pg->conn);
        if (f < 0) {
            sv_rt_pg_down(rt, pg, NULL);
            return;
        }
        sv_rt_pg_watch(rt, pg, EPOLLIN | (f == 1 ? EPOLLOUT : 0));
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (PQconsumeInput(pg->conn) != 1 || PQstatus(pg->conn) == CONNECTION_BAD) {
            sv_rt_pg_down(rt, pg, NULL);
            return;
        }
        if (pg == &rt->pg_listen)
            sv_rt_db_read_notifies(rt);
        else
            sv_rt_db_read_results(rt);
    }
}

void sv_rt_db_tick(sv_rt *rt)
{
    sv_rt_pg *pgs[2] = { &rt->pg_listen, &rt->pg_query };
    for (int i = 0; i < 2; i++) {
        sv_rt_pg *pg = pgs[i];
        if (pg->state == SV_RT_PG_DOWN && rt->now_ms >= pg->deadline_ms && !rt->stopping)
            sv_rt_pg_connect(rt, pg);
        else if (pg->state == SV_RT_PG_CONNECTING && rt->now_ms >= pg->deadline_ms)
            sv_rt_pg_down(rt, pg, "connect timeout");
    }
    if (rt->missed && sv_rt_db_ready(rt) && rt->job_running == NULL) {
        rt->missed = 0;
        sv_rt_chan_system_all(rt, "error",
                              "The connection to PostgreSQL was lost and is back: changes made meanwhile may have been missed");
    }
}
