/* A persistent PostgreSQL connection (a worker's: it may hold a second
 * one for a text search that races two plans). It is opened lazily,
 * kept across requests, and dropped as soon as libpq reports it broken so
 * the next request reconnects: a PostgreSQL restart costs the requests
 * made during the outage a 503, never a worker. */
#ifndef SV_DB_H
#define SV_DB_H

#include <poll.h>
#include <stdint.h>
#include <signal.h>

#include <libpq-fe.h>

#include "core/sv_err.h"

/* While a statement runs this process would only sleep; a hook lets it
 * watch other descriptors meanwhile. This is the one deliberate call from
 * a lower layer back into the transport: the worker installs a hook that
 * passes on requests arriving for it (worker/sv_handoff.c), and the
 * database layer runs it without knowing what it does. */
typedef struct sv_db_wait_hook {
    /* Fills up to max descriptors to watch and returns how many; sets
     * *timeout_ms when ready() must run again even if none is ready. */
    int  (*watch)(void *ctx, struct pollfd *fds, int max, int *timeout_ms);
    /* After each wait, with the watched descriptors' revents. */
    void (*ready)(void *ctx, const struct pollfd *fds, int n);
    void *ctx;
    /* The signal mask while waiting (ppoll's), or NULL to keep the
     * process's: a worker blocks its stop signal outside its waits, and a
     * statement can wait for a long time. */
    const sigset_t *sigmask;
} sv_db_wait_hook;

#define SV_DB_WAIT_MAX_FDS 64

/* A pipeline sent and not yet read to its end (one at a time per
 * connection): its steps, and what has arrived. */
typedef struct sv_db_pipe {
    int steps[4], nsteps;
    int at, in_step;           /* the step being read; its first result is in */
    int active, done, failed, bitmap_only, prepared_ok, set_prepared_ok;
    int late_error;            /* 1: an error came before the Sync; 2: and its end */
    unsigned long *set_gen, *prepared_gen;
    PGresult *result;          /* the query's, or the first error */
} sv_db_pipe;

typedef struct sv_db {
    PGconn *conn;
    char   *conninfo;
    char    last_error[256];   /* why the last connect failed, for logs */
    char    statement_timeout[24]; /* ms as text for set_config, "0" = none */
    unsigned long set_prepared_gen; /* generation the set_config statement is prepared on */
    unsigned long set_ro_prepared_gen; /* the same for its read-only variant */
    unsigned long generation;  /* bumped on every new connection: prepared
                                  statements of an older one are gone */
    const sv_db_wait_hook *wait_hook; /* NULL: libpq waits alone */
    const char *listen_channel; /* LISTENed on every new connection, or NULL */
    /* A second channel whose notifications go to on_notify (job ends). */
    const char *notify_channel;
    void      (*on_notify)(void *arg, const char *payload);
    void       *notify_arg;
    int     listen_failed;     /* LISTEN refused (a standby): logged once */
    int     connect_timeout_ms; /* the URL's connect_timeout, else 3 s */
    int     url_connect_timeout; /* the URL set it: it wins */
    int     several_hosts;     /* connect blocking: libpq's per-host timeout */
    unsigned long notified;    /* reload messages received on listen_channel */
    const char *application_name; /* what pg_stat_activity shows (static) */
    int64_t last_sent_ms;      /* monotonic ms of the last pipeline sent */
    sv_db_pipe  pipe;
} sv_db;

void sv_db_init(sv_db *db, const char *conninfo);
/* Request statements are cancelled by PostgreSQL after ms (0: never), so
 * a slow query ends with an error the client sees instead of the master
 * killing the worker and leaving the query running. */
void sv_db_set_statement_timeout(sv_db *db, long ms);
/* The application_name of its connections (a string that outlives db),
 * so a DBA tells the programs apart; "streamvibe" unless set. */
void sv_db_set_application_name(sv_db *db, const char *name);
/* How long a connect may take when the URL sets no connect_timeout. */
void sv_db_set_connect_timeout(sv_db *db, int ms);
/* Ends the connection and forgets the pipeline's state (its held result
 * freed); the conninfo stays, so the next statement connects again. */
void sv_db_disconnect(sv_db *db);
/* Ends the connection for good (the conninfo is freed too). */
void sv_db_close(sv_db *db);
/* hook (kept by the caller) runs while results are awaited; NULL: none. */
void sv_db_set_wait_hook(sv_db *db, const sv_db_wait_hook *hook);

/* Notifications on channel (PostgREST's "pgrst": an empty payload or
 * "reload schema") bump db->notified; a new connection bumps
 * db->generation, since messages sent meanwhile were missed. */
void sv_db_listen(sv_db *db, const char *channel);
/* Notifications on channel go to fn(arg, payload) as they are read (with
 * any statement's results, or by sv_db_read_idle); the channel is
 * LISTENed on every new connection. */
void sv_db_on_notify(sv_db *db, const char *channel, void (*fn)(void *arg, const char *payload),
                     void *arg);
/* The connection's socket while one is open, else -1: readable while
 * idle when a notification arrives or the server closes it. */
int sv_db_socket(const sv_db *db);
/* Reads what arrived on an idle connection: counts notifications, and
 * drops the connection when the server has closed it. */
void sv_db_read_idle(sv_db *db);

/* Makes sure a healthy connection exists: SV_OK, or SV_ERROR when the
 * server cannot be reached (db->last_error says why). */
int sv_db_ensure(sv_db *db);

/* Runs one statement with text parameters outside any explicit
 * transaction. *result (caller PQclears) holds the outcome, which may be
 * an error result; returns SV_ERROR (and *result NULL) when the
 * connection is gone. */
int sv_db_query(sv_db *db, const char *sql, int nparams, const char *const *values,
                PGresult **result);

/* Runs sql as role with request.jwt.claims = claims in one transaction,
 * pipelined into a single round trip (set_config + query + sync). Same
 * return convention as sv_db_query; *result is the query's result. */
int sv_db_query_as(sv_db *db, const char *role, const char *claims, const char *sql,
                   int nparams, const char *const *values, PGresult **result);

/* Flags of sv_db_query_as_prepared and sv_db_query_as_within.
 * SV_DB_READ_ONLY: the transaction is read-only (transaction_read_only
 * set with the role, in the same round trip), so a statement that writes
 * fails with 25006. SV_DB_BITMAP_ONLY: the planner may not use a
 * sequential or a plain index scan (enable_seqscan and enable_indexscan
 * off for the transaction), so a table with a usable index is read
 * through a bitmap of its index matches; not with SV_DB_READ_ONLY. */
enum { SV_DB_READ_ONLY = 1 << 0, SV_DB_BITMAP_ONLY = 1 << 1 };

/* Like sv_db_query_as, with flags (SV_DB_BITMAP_ONLY) and a statement
 * timeout of timeout_ms (0: none) for this transaction instead of the
 * connection's. A statement it cancels fails with 57014. */
int sv_db_query_as_within(sv_db *db, const char *role, const char *claims, unsigned flags,
                          long timeout_ms, const char *sql, int nparams,
                          const char *const *values, PGresult **result);

/* sv_db_query_as_within in two halves, so that one process can run
 * statements on two connections at once: sends it (SV_OK, or SV_ERROR
 * when the connection is gone); sv_db_sent_done reads what has arrived
 * without blocking and says whether it has all come (1), not yet (0),
 * or never will (-1: the connection failed, or nothing was sent);
 * sv_db_collect waits for the rest and returns the result as
 * sv_db_query_as_within does. Every send is collected before the
 * connection's next use. */
int sv_db_send_as_within(sv_db *db, const char *role, const char *claims, unsigned flags,
                         long timeout_ms, const char *sql, int nparams, const char *const *values);
int sv_db_sent_done(sv_db *db);
int sv_db_collect(sv_db *db, PGresult **result);

/* Asks the server to cancel what db's connection is running: through
 * via, an idle connection of the same user, when given (one round trip),
 * else with a cancel request (a new connection to the server). The
 * statement then fails with 57014; one that has already ended is not
 * affected. */
void sv_db_cancel(sv_db *db, sv_db *via);

/* Like sv_db_query_as, but runs sql as the prepared statement stmt_name,
 * with flags (SV_DB_*). When *prepared_gen differs from db->generation
 * the statement is first prepared, in the same round trip; *prepared_gen
 * is set once that succeeded. The caller keeps one prepared_gen per
 * statement name. */
int sv_db_query_as_prepared(sv_db *db, const char *role, const char *claims, unsigned flags,
                            const char *stmt_name, const char *sql, int nparams,
                            const char *const *values, unsigned long *prepared_gen,
                            PGresult **result);

/* The connection is gone (or never came): logs why
 * and fills err with a 503 carrying Retry-After. Returns SV_ERROR. */
int sv_db_unavailable(const sv_db *db, int retry_after, sv_error *err);

#endif
