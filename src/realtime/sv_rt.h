/* streamvibe-realtime: Supabase Realtime (Phoenix channels over a
 * WebSocket, postgres_changes) for supabase-js v2 clients, in one epoll
 * event loop per host.
 *
 * The core structs, shared by the files of this directory:
 *
 *   sv_rt        the daemon: configuration, the listening socket, every
 *                client connection (by descriptor), the database side,
 *                counters
 *   sv_rt_conn   one client socket: the HTTP upgrade, then wslay's
 *                WebSocket context and the channels joined on it
 *   sv_rt_chan   one joined Phoenix channel ("realtime:<name>") with its
 *                access token's identity and its postgres_changes bindings
 *   sv_rt_bind   one binding: event, schema, table, filter, id
 *   sv_rt_ident  a (role, JWT claims) pair, interned: subscribers with the
 *                same claims share one, and a change is checked once per
 *                ident, not once per socket
 *   sv_rt_tinfo  what one role may see of one published table (from
 *                realtime.subscription_check), cached per (role, table)
 *
 * Files: sv_rt_daemon.c (loop, signals, listening, health),
 * sv_rt_conn.c (sockets, upgrade, wslay), sv_rt_chan.c (the Phoenix
 * protocol: join, leave, heartbeat, tokens), sv_rt_db.c (the two
 * PostgreSQL connections and the query queue), sv_rt_fanout.c (a change
 * in, messages out), and the pure parsers sv_rt_http.c, sv_rt_phx.c and
 * sv_rt_filter.c, which the unit tests call directly. */
#ifndef SV_RT_H
#define SV_RT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <json-c/json.h>
#include <libpq-fe.h>
#include <wslay/wslay.h>

#include "core/sv_arena.h"
#include "core/sv_config.h"
#include "realtime/sv_rt_filter.h"

/* What an epoll_event's data.ptr points at: every watched object starts
 * with one of these tags. */
typedef enum {
    SV_RT_EP_LISTEN = 1,
    SV_RT_EP_SIGNAL,
    SV_RT_EP_CONN,
    SV_RT_EP_PG,
} sv_rt_ep_kind;

/* Joins a socket may make in one second. */
#define SV_RT_MAX_JOINS_PER_SECOND 20

/* Largest HTTP request head accepted before the upgrade (431 beyond). */
#define SV_RT_MAX_HEAD 16384

/* Serializer versions (the vsn query parameter). */
enum { SV_RT_VSN1 = 1, SV_RT_VSN2 = 2 };

/* Events a binding listens to. */
enum { SV_RT_EV_INSERT = 1, SV_RT_EV_UPDATE = 2, SV_RT_EV_DELETE = 4, SV_RT_EV_ALL = 7 };

typedef struct sv_rt sv_rt;
typedef struct sv_rt_conn sv_rt_conn;
typedef struct sv_rt_chan sv_rt_chan;

typedef struct sv_rt_ident {
    struct sv_rt_ident *next;  /* hash chain */
    uint32_t hash;
    uint32_t refs;
    char    *role;
    char    *claims;           /* the token's payload as compact JSON */
    char    *sub;              /* its "sub" (the user), "" when none */
    /* Scratch for grouping during one fan-out: */
    uint64_t mark;
    int      group;
} sv_rt_ident;

typedef struct sv_rt_tinfo {
    struct sv_rt_tinfo *next;
    char  *role;
    char  *schema;
    char  *table;
    int    readable;
    char  *columns_json;       /* [{"name":..,"type":..}] for messages */
    char  *select_sql;         /* quoted column list */
    char  *vis_sql;            /* row visibility for DELETE (see 030_realtime.sql) */
    int    npk;
    char **pk_names;
    char **pk_idents;
} sv_rt_tinfo;

typedef struct sv_rt_bind {
    uint32_t      id;          /* echoed in the join reply and in events */
    uint8_t       events;      /* SV_RT_EV_* */
    char         *schema;
    char         *table;       /* "*": every published table of schema */
    sv_rt_filter  filter;      /* op SV_RT_OP_NONE: no filter */
} sv_rt_bind;

enum {
    SV_RT_CHAN_JOINING = 1,    /* reply not sent yet: bindings being checked */
    SV_RT_CHAN_JOINED,         /* replied; bindings live if active */
};

struct sv_rt_chan {
    sv_rt_conn  *conn;
    sv_rt_chan  *pg_prev, *pg_next; /* rt->pg_chans: channels with live bindings */
    uint32_t     serial;
    uint8_t      state;
    uint8_t      active;       /* bindings checked for ident's role and live */
    uint8_t      in_pg_list;
    uint8_t      checking;     /* a subscription check is queued or running */
    char        *topic;        /* "realtime:name" */
    char        *topic_json;   /* the topic as a JSON string */
    char        *name_json;    /* "name" as a JSON string (system messages) */
    char        *join_ref;     /* as the client sent it, or NULL */
    char        *pending_ref;  /* ref of the join awaiting its reply */
    char        *reply_json;   /* postgres_changes of the join reply, until sent */
    sv_rt_ident *ident;        /* whose rows this channel may receive */
    sv_rt_ident *want;         /* newer token awaiting a check, or NULL */
    int64_t      exp;          /* ident's token expiry, seconds since the epoch */
    int64_t      want_exp;
    unsigned char token_hash[16];
    int          nbinds;
    sv_rt_bind  *binds;
};

enum {
    SV_RT_CONN_HANDSHAKE = 1,  /* reading the HTTP request head */
    SV_RT_CONN_HTTP,           /* writing a plain HTTP answer, then closing */
    SV_RT_CONN_WS,             /* WebSocket open */
};

struct sv_rt_conn {
    sv_rt_ep_kind  kind;       /* SV_RT_EP_CONN */
    sv_rt         *rt;         /* for wslay's callbacks */
    int            fd;
    uint32_t       serial;
    uint8_t        state;
    uint8_t        vsn;
    uint8_t        dead;       /* closed; freed at the end of the loop turn */
    uint8_t        want_out;   /* EPOLLOUT registered */
    uint8_t        closing;    /* close frame queued */
    uint8_t        io_error;   /* the socket failed under wslay (EOF, reset) */
    int64_t        opened_ms;
    int64_t        deadline_ms; /* handshake or close deadline (monotonic), 0 = none */
    int64_t        last_rx_ms;
    wslay_event_context_ptr ws; /* only while something is in flight */
    uint64_t       fed;        /* bytes handed to ws */
    uint64_t       framed;     /* bytes of the frames ws started */
    uint8_t        in_frame;   /* a frame started, not ended */
    uint8_t        in_message; /* a fragmented message is open */
    uint8_t        in_recv;    /* inside wslay_event_recv */
    uint16_t       code_sent;  /* close code sent, for the log */
    char          *buf;        /* handshake: the request head; HTTP: the answer */
    uint32_t       buf_len, buf_cap, buf_off;
    sv_rt_ident   *api_ident;  /* the apikey's identity (joins without a token) */
    int64_t        api_exp;
    int            nchans, chans_cap;
    int64_t        join_second;
    int            joins_this_second;
    sv_rt_chan   **chans;
    sv_rt_conn    *dead_next;
    char           peer[48];
};

/* One PostgreSQL connection driven by the event loop. */
typedef struct sv_rt_pg {
    sv_rt_ep_kind  kind;       /* SV_RT_EP_PG */
    const char    *name;       /* "listen" or "query", for logs */
    PGconn        *conn;
    int            fd;         /* registered with epoll, or -1 */
    uint32_t       events;     /* registered events */
    int            state;      /* SV_RT_PG_* */
    int64_t        deadline_ms; /* connect deadline, or next attempt when down */
    int            backoff_ms;
    int            ever_up;
    char           last_error[256];
} sv_rt_pg;

enum { SV_RT_PG_DOWN = 0, SV_RT_PG_CONNECTING, SV_RT_PG_SETUP, SV_RT_PG_READY, SV_RT_PG_BUSY };

typedef struct sv_rt_job sv_rt_job;

typedef struct sv_rt_stats {
    uint64_t accepted;
    uint64_t refused;          /* over realtime_max_sockets */
    uint64_t upgrades;
    uint64_t joins;
    uint64_t changes;          /* notifications received */
    uint64_t delivered;        /* postgres_changes messages queued */
    uint64_t slow_readers;     /* sockets dropped for a full send buffer */
    uint64_t db_reconnects;
} sv_rt_stats;

struct sv_rt {
    sv_config     cfg;
    const char   *config_path;
    int           epfd;
    int           sigfd;
    sv_rt_ep_kind listen_kind; /* SV_RT_EP_LISTEN; &listen_kind is the epoll tag */
    int           listen_fd;
    int           listen_inherited; /* from the pool (socket activation) */
    int           log_inherited; /* logging to the pool's pipe */
    sv_rt_ep_kind sig_kind;
    int           stopping;
    int64_t       stop_deadline_ms;
    int64_t       now_ms;      /* monotonic, refreshed every loop turn */
    uint32_t      next_serial;
    sv_arena      arena;       /* scratch, reset every loop turn */
    /* Connections by descriptor. */
    sv_rt_conn  **conns;
    int           nconns_max;  /* size of conns */
    int           max_fd;      /* highest descriptor a connection ever had */
    int           nsockets;    /* open client sockets (any state) */
    int           nchannels;
    sv_rt_conn   *dead;        /* closed this turn, freed at its end */
    sv_rt_chan   *pg_chans;    /* channels with live bindings (fan-out candidates) */
    /* Identities, interned by claims. */
    sv_rt_ident **idents;
    uint32_t      nidents_buckets;
    uint64_t      fanout_mark;
    sv_rt_tinfo  *tinfos;
    struct sv_rt_checked **checked; /* bindings PostgreSQL accepted, per role (sv_rt_chan.c) */
    struct sv_rt_prep **preps; /* statements prepared on pg_query (sv_rt_fanout.c) */
    int           npreps;
    unsigned      prep_serial;
    uint64_t      prep_gen;    /* query_gen the registry belongs to */
    uint64_t      query_gen;   /* bumped for every new query connection */
    uint32_t      nchecked;
    /* Database. */
    sv_rt_pg      pg_listen;
    sv_rt_pg      pg_query;
    sv_rt_job    *jobs_head, *jobs_tail; /* waiting for pg_query */
    sv_rt_job    *job_running;
    int           missed;      /* changes may have been lost: tell clients when back */
    int64_t       next_tick_ms;
    sv_rt_stats   stats;
};

/* --- sv_rt_daemon.c ---------------------------------------------------- */

/* config_path when the configuration came from the pool master: SIGHUP
 * then has no file to read (the master restarts the daemon instead). */
#define SV_RT_CONFIG_FROM_POOL "(from the pool)"

/* Runs the daemon until SIGTERM/SIGINT. cfg (loaded from config_path, may
 * be NULL) is taken over. Returns the exit status. */
int sv_rt_run(sv_config *cfg, const char *config_path);

/* A JSON string literal for s (quoted, escaped), in the loop's arena. */
char *sv_rt_json_string(sv_rt *rt, const char *s);
/* Same, malloc'd (caller frees); NULL when out of memory. */
char *sv_rt_json_string_dup(const char *s);

/* The health document (GET /healthz), in the loop's arena; *ok is 0 when
 * a database connection is down. */
char *sv_rt_health_json(sv_rt *rt, int *ok);

/* --- sv_rt_conn.c ------------------------------------------------------ */

void sv_rt_conn_accept(sv_rt *rt);
void sv_rt_conn_event(sv_rt *rt, sv_rt_conn *c, uint32_t events);
/* Queues a text message; a socket whose queued output would exceed
 * realtime_send_buffer is dropped (slow reader). Returns 0, or -1 when
 * the socket is gone. */
int  sv_rt_conn_send(sv_rt *rt, sv_rt_conn *c, const char *text, size_t len);
/* Starts the WebSocket close handshake with code and reason. */
void sv_rt_conn_close_ws(sv_rt *rt, sv_rt_conn *c, uint16_t code, const char *reason);
/* Closes at once (no close frame); the struct is freed at the end of
 * the loop turn, so callers may still look at it. */
void sv_rt_conn_drop(sv_rt *rt, sv_rt_conn *c, const char *why);
void sv_rt_conn_free_dead(sv_rt *rt);
/* Once a second: handshake, idle and close deadlines. */
void sv_rt_conn_tick(sv_rt *rt, sv_rt_conn *c);
/* The connection on fd if it is still the one with this serial. */
sv_rt_conn *sv_rt_conn_find(sv_rt *rt, int fd, uint32_t serial);

/* --- sv_rt_chan.c ------------------------------------------------------- */

/* A whole text message from the client. */
void sv_rt_chan_message(sv_rt *rt, sv_rt_conn *c, const char *text, size_t len);
/* Once a second: token expiry of each channel. */
void sv_rt_chan_tick(sv_rt *rt, sv_rt_conn *c, time_t now);
void sv_rt_chan_free_all(sv_rt *rt, sv_rt_conn *c);
/* Sends event with payload (JSON text) on channel ch. */
int  sv_rt_chan_push(sv_rt *rt, sv_rt_chan *ch, const char *join_ref_json, const char *ref_json,
                     const char *event, const char *payload);
/* A `system` message to every channel with live bindings (e.g. after a
 * database outage: changes may have been missed). */
void sv_rt_chan_system_all(sv_rt *rt, const char *status, const char *message);
/* The result of a subscription check (see sv_rt_db.c). */
void sv_rt_chan_checked(sv_rt *rt, sv_rt_job *job, PGresult *res, const char *error);
/* The SQL of a check job: as the subscriber, realtime.subscription_check
 * for each binding (malloc'd). NULL when the channel is gone. */
char *sv_rt_chan_check_sql(sv_rt *rt, sv_rt_job *job);
/* Caches the tables of a successful check's results for role. */
void sv_rt_chan_store_tinfos(sv_rt *rt, const char *role, PGresult **res, int n);
/* Forgets which bindings were accepted (at exit; schema reloads do it). */
void sv_rt_checked_clear(sv_rt *rt);
/* Every channel with bindings checks them again (schema reload). */
void sv_rt_chan_recheck_all(sv_rt *rt);
sv_rt_ident *sv_rt_ident_get(sv_rt *rt, const char *role, const char *claims);
void sv_rt_ident_put(sv_rt *rt, sv_rt_ident *id);
/* Frees what t's columns, SQL and key lists own (t, its role, schema
 * and table stay): before t is filled again, or freed. */
void sv_rt_tinfo_clear(sv_rt_tinfo *t);
sv_rt_tinfo *sv_rt_tinfo_find(sv_rt *rt, const char *role, const char *schema, const char *table);

/* --- sv_rt_db.c --------------------------------------------------------- */

enum { SV_RT_JOB_CHECK = 1, SV_RT_JOB_FETCH, SV_RT_JOB_FANOUT };

struct sv_rt_job {
    sv_rt_job *next;
    int        kind;
    char      *sql;            /* built when the job starts (malloc) */
    PGresult **res;            /* its results, as they arrive */
    int        nres, res_cap;
    /* SV_RT_JOB_CHECK */
    int        conn_fd;
    uint32_t   conn_serial;
    uint32_t   chan_serial;
    sv_rt_ident *ident;        /* holds a reference */
    /* SV_RT_JOB_FETCH / FANOUT */
    struct sv_rt_change *change;
    struct sv_rt_fanout *fanout;
};

void sv_rt_db_init(sv_rt *rt);
void sv_rt_db_start(sv_rt *rt);
void sv_rt_db_stop(sv_rt *rt);
void sv_rt_db_event(sv_rt *rt, sv_rt_pg *pg, uint32_t events);
/* Reconnects what is down, enforces connect deadlines. */
void sv_rt_db_tick(sv_rt *rt);
/* Appends (or, with front, prepends) a job and starts it if idle. */
void sv_rt_db_submit(sv_rt *rt, sv_rt_job *job, int front);
void sv_rt_job_free(sv_rt *rt, sv_rt_job *job);
int  sv_rt_db_ready(const sv_rt *rt);
/* SQL literal / identifier quoting on the query connection (arena). */
char *sv_rt_db_literal(sv_rt *rt, const char *s, size_t len);

/* --- sv_rt_fanout.c ----------------------------------------------------- */

/* One notification on sv_realtime (its JSON payload). */
void sv_rt_fanout_notify(sv_rt *rt, const char *payload);
/* Builds the job's SQL when it reaches the connection; 0, or -1 when
 * there is nothing to ask (the job is then dropped). */
int  sv_rt_fanout_build(sv_rt *rt, sv_rt_job *job);
/* Results of a FETCH or FANOUT job (res is an array of n results). */
void sv_rt_fanout_results(sv_rt *rt, sv_rt_job *job, PGresult **res, int n, const char *error);
void sv_rt_fanout_job_free(sv_rt_job *job);
/* Forgets the prepared statements (at exit). */
void sv_rt_prep_clear(sv_rt *rt);

#endif
