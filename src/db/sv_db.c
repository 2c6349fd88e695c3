#include "db/sv_db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sv_clock.h"
#include "core/sv_log.h"

/* The connection deadline when the URL sets none (libpq's would be
 * forever). */
#define SV_DB_CONNECT_TIMEOUT_MS 3000

void sv_db_init(sv_db *db, const char *conninfo)
{
    memset(db, 0, sizeof(*db));
    db->conninfo = strdup(conninfo ? conninfo : "");
    strcpy(db->statement_timeout, "0");
    db->connect_timeout_ms = SV_DB_CONNECT_TIMEOUT_MS;
    db->application_name = "streamvibe";
    /* PQconnectPoll ignores connect_timeout, which libpq applies per host
     * when it moves on to the next one: with several hosts only the
     * blocking connect fails over correctly. */
    PQconninfoOption *opts = PQconninfoParse(db->conninfo, NULL);
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
        if (o->val == NULL || o->val[0] == '\0')
            continue;
        if (strcmp(o->keyword, "connect_timeout") == 0 && atoi(o->val) > 0) {
            db->connect_timeout_ms = atoi(o->val) * 1000;
            db->url_connect_timeout = 1;
        }
        if ((strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0) &&
            strchr(o->val, ',') != NULL)
            db->several_hosts = 1;
    }
    PQconninfoFree(opts);
}

void sv_db_set_statement_timeout(sv_db *db, long ms)
{
    snprintf(db->statement_timeout, sizeof(db->statement_timeout), "%ld", ms > 0 ? ms : 0);
}

void sv_db_set_application_name(sv_db *db, const char *name)
{
    db->application_name = name;
}

void sv_db_set_connect_timeout(sv_db *db, int ms)
{
    if (!db->url_connect_timeout)
        db->connect_timeout_ms = ms;
}

void sv_db_set_wait_hook(sv_db *db, const sv_db_wait_hook *hook)
{
    db->wait_hook = hook;
}

/* Waits until the connection's socket is ready for events, running the
 * wait hook meanwhile. Returns 1 when ready, 0 at deadline_ms (monotonic;
 * -1: none), -1 on error. */
static int sv_db_wait_socket(sv_db *db, short events, int64_t deadline_ms)
{
    const sv_db_wait_hook *hook = db->wait_hook;
    for (;;) {
        struct pollfd fds[1 + SV_DB_WAIT_MAX_FDS];
        fds[0] = (struct pollfd){ .fd = PQsocket(db->conn), .events = events };
        if (fds[0].fd < 0)
            return -1;
        int timeout_ms = -1;
        int n = hook != NULL ? hook->watch(hook->ctx, fds + 1, SV_DB_WAIT_MAX_FDS, &timeout_ms) : 0;
        if (deadline_ms >= 0) {
            int64_t left = deadline_ms - sv_clock_mono_ms();
            if (left <= 0)
                return 0;
            if (timeout_ms < 0 || left < timeout_ms)
                timeout_ms = (int)left;
        }
        struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };
        if (ppoll(fds, (nfds_t)(1 + n), timeout_ms >= 0 ? &ts : NULL, hook != NULL ? hook->sigmask : NULL) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (hook != NULL)
            hook->ready(hook->ctx, fds + 1, n);
        if (fds[0].revents != 0)
            return 1;
    }
}

/* Returns once PQgetResult will not block, running the wait hook while
 * PostgreSQL works. Any failure here is left for PQgetResult to report. */
static void sv_db_await(sv_db *db)
{
    if (db->wait_hook == NULL || PQflush(db->conn) != 0)
        return;
    while (PQisBusy(db->conn))
        if (sv_db_wait_socket(db, POLLIN, -1) != 1 || !PQconsumeInput(db->conn))
            return;
}

void sv_db_disconnect(sv_db *db)
{
    if (db->conn != NULL)
        PQfinish(db->conn);
    db->conn = NULL;
    if (db->pipe.result != NULL)
        PQclear(db->pipe.result);
    db->pipe = (sv_db_pipe){ 0 };
}

void sv_db_close(sv_db *db)
{
    sv_db_disconnect(db);
    free(db->conninfo);
    db->conninfo = NULL;
}

static void sv_db_drop(sv_db *db)
{
    snprintf(db->last_error, sizeof(db->last_error), "%s",
             db->conn ? PQerrorMessage(db->conn) : "no connection");
    char *nl = strchr(db->last_error, '\n');
    if (nl != NULL)
        *nl = '\0';
    sv_db_disconnect(db);
}

/* What the server says outside a result (a FATAL before it closes the
 * connection, a WARNING) goes to the log, not to stderr. */
static void sv_db_log_notice(void *arg, const char *message)
{
    (void)arg;
    char text[300];
    snprintf(text, sizeof(text), "%s", message);
    for (char *p = text; *p; p++)
        if (*p == '\n' || *p == '"')
            *p = *p == '\n' ? ' ' : '\'';
    sv_log_warn("db_notice", "msg=\"%s\"", text);
}

static int sv_db_connect_async(sv_db *db, const char *const *keys, const char *const *vals)
{
    db->conn = PQconnectStartParams(keys, vals, 1);
    if (db->conn == NULL || PQstatus(db->conn) == CONNECTION_BAD) {
        sv_db_drop(db);
        return SV_ERROR;
    }
    int64_t deadline = sv_clock_mono_ms() + db->connect_timeout_ms;
    PostgresPollingStatusType polled = PGRES_POLLING_WRITING;
    while (polled != PGRES_POLLING_OK) {
        int ready = polled == PGRES_POLLING_FAILED
                        ? -1
                        : sv_db_wait_socket(db, polled == PGRES_POLLING_READING ? POLLIN : POLLOUT,
                                            deadline);
        if (ready != 1) {
            char where[160];
            snprintf(where, sizeof(where), "%s:%s", PQhost(db->conn) ? PQhost(db->conn) : "?",
                     PQport(db->conn) ? PQport(db->conn) : "?");
            sv_db_drop(db);
            if (ready == 0)
                snprintf(db->last_error, sizeof(db->last_error), "timeout expired connecting to %s",
                         where);
            return SV_ERROR;
        }
        polled = PQconnectPoll(db->conn);
    }
    return SV_OK;
}

int sv_db_ensure(sv_db *db)
{
    if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
        return SV_OK;
    if (db->conn != NULL)
        sv_db_drop(db);

    /* The deadline bounds how long a request can wait on a dead server,
     * and the wait hook runs meanwhile; application_name lets a DBA see
     * which worker is which. */
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", db->connect_timeout_ms / 1000);
    const char *keys[] = { "dbname", "application_name", "connect_timeout", NULL };
    const char *vals[] = { db->conninfo, db->application_name, timeout, NULL };
    if (db->several_hosts) {
        db->conn = PQconnectdbParams(keys, vals, 1);
        if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
            sv_db_drop(db);
            return SV_ERROR;
        }
    } else if (sv_db_connect_async(db, keys, vals) != SV_OK) {
        return SV_ERROR;
    }
    PQsetNoticeProcessor(db->conn, sv_db_log_notice, NULL);
    const char *channels[2] = { db->listen_channel, db->notify_channel };
    for (int i = 0; i < 2; i++) {
        if (channels[i] == NULL)
            continue;
        char *ident = PQescapeIdentifier(db->conn, channels[i], strlen(channels[i]));
        char sql[128];
        snprintf(sql, sizeof(sql), "LISTEN %s", ident ? ident : "pgrst");
        PQfreemem(ident);
        PGresult *res = PQexec(db->conn, sql);
        /* A hot standby refuses LISTEN: serve without announced schema
         * changes (and job ends) rather than not at all. */
        if (PQresultStatus(res) != PGRES_COMMAND_OK && !db->listen_failed) {
            db->listen_failed = 1;
            char *nl, msg[200];
            snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
            if ((nl = strchr(msg, '\n')) != NULL)
                *nl = '\0';
            sv_log_warn("db_listen", "msg=\"schema changes will need a reload\" error=\"%s\"", msg);
        }
        PQclear(res);
        if (PQstatus(db->conn) != CONNECTION_OK) {
            sv_db_drop(db);
            return SV_ERROR;
        }
    }
    db->generation++;
    return SV_OK;
}

void sv_db_listen(sv_db *db, const char *channel)
{
    db->listen_channel = channel;
}

void sv_db_on_notify(sv_db *db, const char *channel, void (*fn)(void *arg, const char *payload),
                     void *arg)
{
    db->notify_channel = channel;
    db->on_notify = fn;
    db->notify_arg = arg;
}

int sv_db_socket(const sv_db *db)
{
    return db->conn != NULL ? PQsocket(db->conn) : -1;
}

/* Counts the reload messages libpq has read so far. */
static void sv_db_take_notifications(sv_db *db)
{
    PGnotify *n;
    while ((n = PQnotifies(db->conn)) != NULL) {
        if (db->listen_channel != NULL && strcmp(n->relname, db->listen_channel) == 0 &&
            (n->extra[0] == '\0' || strcmp(n->extra, "reload schema") == 0))
            db->notified++;
        else if (db->notify_channel != NULL && strcmp(n->relname, db->notify_channel) == 0)
            db->on_notify(db->notify_arg, n->extra);
        PQfreemem(n);
    }
}

void sv_db_read_idle(sv_db *db)
{
    if (db->conn == NULL)
        return;
    if (!PQconsumeInput(db->conn) || PQstatus(db->conn) != CONNECTION_OK) {
        sv_db_drop(db);
        return;
    }
    sv_db_take_notifications(db);
}

/* A failed statement on a broken connection means the server went away:
 * drop it so the next request reconnects, and tell the caller. */
static int sv_db_check_connection(sv_db *db, PGresult **result)
{
    if (PQstatus(db->conn) == CONNECTION_OK) {
        /* Read along with the results. */
        sv_db_take_notifications(db);
        return SV_OK;
    }
    if (*result != NULL)
        PQclear(*result);
    *result = NULL;
    sv_db_drop(db);
    return SV_ERROR;
}

int sv_db_query(sv_db *db, const char *sql, int nparams, const char *const *values,
                PGresult **result)
{
    *result = NULL;
    if (sv_db_ensure(db) != SV_OK)
        return SV_ERROR;
    if (!PQsendQueryParams(db->conn, sql, nparams, NULL, values, NULL, NULL, 0)) {
        sv_db_drop(db);
        return SV_ERROR;
    }
    /* PQexec's result: the last one, or the first error. */
    PGresult *res;
    for (;;) {
        sv_db_await(db);
        if ((res = PQgetResult(db->conn)) == NULL)
            break;
        if (*result != NULL && PQresultStatus(*result) == PGRES_FATAL_ERROR) {
            PQclear(res);
            continue;
        }
        PQclear(*result);
        *result = res;
    }
    if (*result == NULL) {
        sv_db_drop(db);
        return SV_ERROR;
    }
    return sv_db_check_connection(db, result);
}

enum { SV_STEP_PREPARE_SET, SV_STEP_SET, SV_STEP_PREPARE, SV_STEP_QUERY };

static int sv_db_pipeline_send(sv_db *db, const char *role, const char *claims, unsigned flags,
                                const char *timeout, const char *stmt_name, const char *sql,
                                int nparams, const char *const *values,
                                unsigned long *prepared_gen)
{
    static const char set_sql[] =
        "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true), "
        "set_config('statement_timeout', $3, true)";
    static const char set_ro_sql[] =
        "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true), "
        "set_config('statement_timeout', $3, true), set_config('transaction_read_only', 'on', true)";
    /* Rare (a retry): not worth a prepared statement of its own. */
    static const char set_bitmap_sql[] =
        "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true), "
        "set_config('statement_timeout', $3, true), set_config('enable_seqscan', 'off', true), "
        "set_config('enable_indexscan', 'off', true)";
    const char *set_values[3] = { role, claims, timeout != NULL ? timeout : db->statement_timeout };
    int read_only = (flags & SV_DB_READ_ONLY) != 0;
    int bitmap_only = (flags & SV_DB_BITMAP_ONLY) != 0;
    const char *set_name = read_only ? "sv_set_ro" : "sv_set";
    unsigned long *set_gen = read_only ? &db->set_ro_prepared_gen : &db->set_prepared_gen;

    if (sv_db_ensure(db) != SV_OK)
        return SV_ERROR;
    int prepare = stmt_name != NULL && *prepared_gen != db->generation;

    if (!PQenterPipelineMode(db->conn)) {
        sv_db_drop(db);
        return SV_ERROR;
    }
    /* set_config first, so the statement timeout also bounds the Parse
     * (which waits for locks on the tables it names). */
    /* The set_config statement is the same for every request: prepared
     * once per connection it costs PostgreSQL no parse or plan. */
    int prepare_set = !bitmap_only && *set_gen != db->generation;
    int sent = (!prepare_set ||
                PQsendPrepare(db->conn, set_name, read_only ? set_ro_sql : set_sql, 3, NULL)) &&
               (bitmap_only
                    ? PQsendQueryParams(db->conn, set_bitmap_sql, 3, NULL, set_values, NULL, NULL, 0)
                    : PQsendQueryPrepared(db->conn, set_name, 3, set_values, NULL, NULL, 0)) &&
               (!prepare || PQsendPrepare(db->conn, stmt_name, sql, nparams, NULL)) &&
               (stmt_name != NULL
                    ? PQsendQueryPrepared(db->conn, stmt_name, nparams, values, NULL, NULL, 0)
                    : PQsendQueryParams(db->conn, sql, nparams, NULL, values, NULL, NULL, 0)) &&
               PQpipelineSync(db->conn);
    if (!sent) {
        sv_db_drop(db);
        return SV_ERROR;
    }

    /* Results arrive in send order: [Parse set], set_config, [Parse], the
     * query, then the Sync. */
    sv_db_pipe *p = &db->pipe;
    *p = (sv_db_pipe){ .active = 1, .bitmap_only = bitmap_only, .set_gen = set_gen,
                       .prepared_gen = prepared_gen };
    if (prepare_set)
        p->steps[p->nsteps++] = SV_STEP_PREPARE_SET;
    p->steps[p->nsteps++] = SV_STEP_SET;
    if (prepare)
        p->steps[p->nsteps++] = SV_STEP_PREPARE;
    p->steps[p->nsteps++] = SV_STEP_QUERY;
    db->last_sent_ms = sv_clock_mono_ms();
    return SV_OK;
}

/* Takes one result of the pipeline's current step (its first). */
static void sv_db_pipe_take(sv_db_pipe *p, PGresult *res)
{
    int step = p->steps[p->at];
    ExecStatusType st = PQresultStatus(res);
    if (step == SV_STEP_PREPARE && st == PGRES_COMMAND_OK)
        p->prepared_ok = 1;
    if (step == SV_STEP_PREPARE_SET) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        /* 42P05: it exists after all (we lost track); use it next time. */
        p->set_prepared_ok = st == PGRES_COMMAND_OK || (state && strcmp(state, "42P05") == 0);
    }
    if (step == SV_STEP_SET && st == PGRES_FATAL_ERROR && !p->bitmap_only) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        /* 26000: something (DISCARD ALL, a pooler) dropped it. */
        if (state && strcmp(state, "26000") == 0)
            *p->set_gen = 0;
    }
    /* The first error is the one to report: after it the pipeline only
     * yields PGRES_PIPELINE_ABORTED for the remaining commands. */
    if (p->result == NULL && (step == SV_STEP_QUERY || (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
                                                        st != PGRES_PIPELINE_ABORTED)))
        p->result = res;
    else
        PQclear(res);
}

/* Reads the pipeline's results as far as they have arrived, or, with
 * block, to the end (running the wait hook meanwhile). Returns 1 once
 * the Sync has been read or the pipeline failed, else 0. */
static int sv_db_pipe_advance(sv_db *db, int block)
{
    sv_db_pipe *p = &db->pipe;
    while (!p->done) {
        if (block)
            sv_db_await(db);
        else if (PQisBusy(db->conn))
            return 0;
        PGresult *res = PQgetResult(db->conn);
        if (p->at == p->nsteps) {          /* the Sync */
            ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
            if (res != NULL && st == PGRES_FATAL_ERROR && !p->late_error) {
                /* An error after the last command's results, before the
                 * Sync (a statement timeout that fired as the query
                 * ended): the transaction did not commit, so that error
                 * is the outcome. Its end (NULL) and the Sync follow. */
                if (p->result != NULL)
                    PQclear(p->result);
                p->result = res;
                res = NULL;
                p->late_error = 1;
                continue;
            }
            if (res == NULL && p->late_error == 1) {
                p->late_error = 2;
                continue;
            }
            p->failed = st != PGRES_PIPELINE_SYNC;
            p->done = 1;
        } else if (!p->in_step) {
            if (res == NULL) {
                p->failed = p->done = 1;
                break;
            }
            sv_db_pipe_take(p, res);
            res = NULL;
            p->in_step = 1;
        } else if (res == NULL) {          /* the end of this command */
            p->at++;
            p->in_step = 0;
        }
        if (res != NULL)
            PQclear(res);
    }
    return 1;
}

/* Reads the pipeline sent by sv_db_pipeline_send to its end: *result is
 * the query's result (or the first error). */
int sv_db_collect(sv_db *db, PGresult **result)
{
    sv_db_pipe *p = &db->pipe;
    *result = NULL;
    if (!p->active)
        return SV_ERROR;
    sv_db_pipe_advance(db, 1);
    p->active = 0;
    if (p->failed || !PQexitPipelineMode(db->conn)) {
        if (p->result != NULL)
            PQclear(p->result);
        p->result = NULL;
        sv_db_drop(db);
        return SV_ERROR;
    }
    if (p->prepared_ok)
        *p->prepared_gen = db->generation;
    if (p->set_prepared_ok)
        *p->set_gen = db->generation;
    *result = p->result;
    p->result = NULL;
    return sv_db_check_connection(db, result);
}

/* The one pipeline behind sv_db_query_as and sv_db_query_as_prepared:
 * set_config(role, claims, statement_timeout[, transaction_read_only]),
 * [Parse stmt_name], the query (prepared when stmt_name is given, else
 * unnamed), Sync. Statements between two Syncs form one implicit
 * transaction, so the role and claims are local to this request and an
 * error anywhere rolls everything back without a separate ROLLBACK round
 * trip. A transaction may always turn read-only, also after its first
 * statement began, so SV_DB_READ_ONLY costs no extra round trip. */
static int sv_db_pipeline_as(sv_db *db, const char *role, const char *claims, unsigned flags,
                             const char *timeout, const char *stmt_name, const char *sql,
                             int nparams, const char *const *values,
                             unsigned long *prepared_gen, PGresult **result)
{
    *result = NULL;
    if (sv_db_pipeline_send(db, role, claims, flags, timeout, stmt_name, sql, nparams, values,
                            prepared_gen) != SV_OK)
        return SV_ERROR;
    return sv_db_collect(db, result);
}

int sv_db_query_as(sv_db *db, const char *role, const char *claims, const char *sql,
                   int nparams, const char *const *values, PGresult **result)
{
    return sv_db_pipeline_as(db, role, claims, 0, NULL, NULL, sql, nparams, values, NULL, result);
}

int sv_db_send_as_within(sv_db *db, const char *role, const char *claims, unsigned flags,
                         long timeout_ms, const char *sql, int nparams, const char *const *values)
{
    char timeout[24];
    snprintf(timeout, sizeof(timeout), "%ld", timeout_ms > 0 ? timeout_ms : 0);
    return sv_db_pipeline_send(db, role, claims, flags, timeout, NULL, sql, nparams, values, NULL);
}

int sv_db_query_as_within(sv_db *db, const char *role, const char *claims, unsigned flags,
                          long timeout_ms, const char *sql, int nparams,
                          const char *const *values, PGresult **result)
{
    *result = NULL;
    if (sv_db_send_as_within(db, role, claims, flags, timeout_ms, sql, nparams, values) != SV_OK)
        return SV_ERROR;
    return sv_db_collect(db, result);
}

int sv_db_sent_done(sv_db *db)
{
    if (db->pipe.active && !db->pipe.done && !PQconsumeInput(db->conn))
        db->pipe.failed = db->pipe.done = 1;
    if (db->pipe.active && !db->pipe.done && !sv_db_pipe_advance(db, 0))
        return 0;
    return db->pipe.active && !db->pipe.failed ? 1 : -1;
}

void sv_db_cancel(sv_db *db, sv_db *via)
{
    if (db->conn == NULL)
        return;
    /* pg_cancel_backend sends the same signal as a cancel request; on a
     * connection already open it costs a round trip, where a cancel
     * request costs a new connection (a fork in the postmaster, several
     * ms on a VM). Both connections log in as the same user, which may
     * signal its own backends. */
    if (via != NULL && via->conn != NULL && !via->pipe.active) {
        char pid[16];
        snprintf(pid, sizeof(pid), "%d", PQbackendPID(db->conn));
        const char *values[1] = { pid };
        PGresult *r = NULL;
        int ok = sv_db_query(via, "SELECT pg_cancel_backend($1::int)", 1, values, &r) == SV_OK &&
                 PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
        if (ok)
            return;
    }
    PGcancel *cancel = PQgetCancel(db->conn);
    char err[256];
    if (cancel != NULL && !PQcancel(cancel, err, sizeof(err)))
        sv_log_warn("db_cancel", "error=\"%s\"", err);
    PQfreeCancel(cancel);
}

int sv_db_query_as_prepared(sv_db *db, const char *role, const char *claims, unsigned flags,
                            const char *stmt_name, const char *sql, int nparams,
                            const char *const *values, unsigned long *prepared_gen,
                            PGresult **result)
{
    return sv_db_pipeline_as(db, role, claims, flags, NULL, stmt_name, sql, nparams, values,
                             prepared_gen, result);
}

int sv_db_unavailable(const sv_db *db, int retry_after, sv_error *err)
{
    /* The libpq message names hosts and roles: log it, don't send it. */
    sv_log_warn("database_unavailable", "error=\"%s\"", db->last_error);
    sv_fail(err, 503, NULL, "Database connection unavailable");
    err->retry_after = retry_after;
    return SV_ERROR;
}
