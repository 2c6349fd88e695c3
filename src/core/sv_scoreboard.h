/* The pool's shared scoreboard (php-fpm's fpm_scoreboard): one slot per
 * worker in a MAP_SHARED mapping made before fork. A worker writes its
 * own slot; the master reads every slot (timeouts, the lines a killed
 * worker still held) and resets a slot when its worker is gone; any
 * worker reads all of them for the status page. These functions are the
 * only door to that memory: the atomics live here, callers use verbs. */
#ifndef SV_SCOREBOARD_H
#define SV_SCOREBOARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SV_SCOREBOARD_SLOTS 256   /* twice the largest pool: a reload runs old and new side by side */

typedef enum { SV_SLOT_FREE = 0, SV_SLOT_STARTING, SV_SLOT_IDLE, SV_SLOT_BUSY, SV_SLOT_EXITING } sv_slot_state;

/* Pool-wide counters, as the status page names them. */
typedef enum {
    SV_COUNT_ACCEPTED,          /* requests, as php-fpm counts them (accepted_conn) */
    SV_COUNT_FASTCGI_CONNS,     /* connections accepted from the web server */
    SV_COUNT_FASTCGI_PASSED,    /* connections passed on by a busy or leaving worker */
    SV_COUNT_SLOW,
    SV_COUNT_TIMED_OUT,
    SV_COUNT_RESPAWNED,
    SV_NCOUNTERS
} sv_counter;

typedef struct sv_slot {
    pid_t    pid;
    uint32_t generation;
    uint32_t state;              /* sv_slot_state */
    int64_t  started_ms;         /* wall clock */
    int64_t  request_start_ms;   /* monotonic; valid while BUSY */
    int64_t  idle_since_ms;      /* monotonic; valid while IDLE */
    uint64_t requests;
    uint32_t connections;        /* FastCGI connections held (kept ones included) */
    uint32_t parked;             /* requests parked on a job (?wait), held without the worker */
    int64_t  last_duration_ms;
    char     method[8];
    char     path[96];
    char     request_id[48];
    /* The worker's buffered log lines (sv_log_set_buffer): written out by
     * the master when the worker was killed before it could. */
    uint32_t log_len;
    char     log_buf[16384];
} sv_slot;

typedef struct sv_scoreboard {
    int64_t  start_time;         /* epoch seconds of the master's start */
    uint64_t counters[SV_NCOUNTERS];
    uint32_t max_active;
    uint32_t max_children_reached;
    uint32_t workers_configured;
    uint32_t generation;
    uint32_t slots_used;         /* 1 + the highest slot index ever given out */
    uint32_t stopping;           /* the master is stopping the pool */
    pid_t    master_pid;         /* 0: no pool master (spawn-fcgi, CGI) */
    sv_slot  slots[SV_SCOREBOARD_SLOTS];
} sv_scoreboard;

/* What the status page shows of one slot: a copy, with its strings
 * terminated (workers write them and are not trusted to). */
typedef struct sv_slot_view {
    pid_t    pid;
    uint32_t state;
    uint32_t generation;
    int64_t  started_ms;
    int64_t  request_start_ms;
    int64_t  last_duration_ms;
    uint64_t requests;
    uint32_t connections;
    uint32_t parked;
    char     method[sizeof(((sv_slot *)0)->method) + 1];
    char     path[sizeof(((sv_slot *)0)->path) + 1];
    char     request_id[sizeof(((sv_slot *)0)->request_id) + 1];
} sv_slot_view;

/* The pool-wide part, for the status page. */
typedef struct sv_scoreboard_view {
    int64_t  start_time;
    pid_t    master_pid;
    uint32_t generation;
    uint32_t max_active;
    uint32_t max_children_reached;
    uint64_t counters[SV_NCOUNTERS];
} sv_scoreboard_view;

/* Maps a zeroed scoreboard shared with future children; NULL on error. */
sv_scoreboard *sv_scoreboard_create(void);
void sv_scoreboard_destroy(sv_scoreboard *sb);

/* --- the process that owns it (pool master, or a lone process) --- */

/* Records the start: master_pid 0 when there is no pool master. */
void sv_scoreboard_open(sv_scoreboard *sb, pid_t master_pid, uint32_t workers);
/* A reload: workers of generation run from now on. */
void sv_scoreboard_new_generation(sv_scoreboard *sb, uint32_t generation, uint32_t workers);
/* The pool is stopping: workers close connections instead of passing them on. */
void sv_scoreboard_stop(sv_scoreboard *sb);
/* Readies slot index for a worker of generation about to be forked. */
sv_slot *sv_scoreboard_slot_prepare(sv_scoreboard *sb, int index, uint32_t generation);
/* The slot's worker is gone: free for the next one. */
void sv_slot_free(sv_slot *slot);
/* The log lines a dead worker still held: *len bytes at the return value. */
const char *sv_slot_held_log(const sv_slot *slot, size_t *len);
/* When slot is serving a request: 1 with its start (monotonic ms). */
int sv_slot_busy_since(const sv_slot *slot, int64_t *start_ms);

/* --- a worker, on its own slot --- */

void sv_slot_attach(sv_slot *slot, pid_t pid, int64_t started_ms);
/* A request starts: counts it, and how many workers are busy at once. */
void sv_slot_busy(sv_scoreboard *sb, sv_slot *slot, const char *method, const char *path,
                  const char *request_id, int64_t start_ms);
void sv_slot_idle(sv_slot *slot, int64_t duration_ms);
void sv_slot_exiting(sv_slot *slot);
void sv_slot_set_connections(sv_slot *slot, uint32_t n);
void sv_slot_set_parked(sv_slot *slot, uint32_t n);
void sv_slot_add_connections(sv_slot *slot, int delta);
int64_t sv_slot_request_start(const sv_slot *slot);
uint64_t sv_slot_requests(const sv_slot *slot);
/* The slot's log buffer, for sv_log_set_buffer. */
void sv_slot_log_buffer(sv_slot *slot, char **buf, size_t *cap, uint32_t **len);

/* --- anyone --- */

void sv_scoreboard_count(sv_scoreboard *sb, sv_counter counter);
/* Takes back a count made ahead of an action that then failed. */
void sv_scoreboard_uncount(sv_scoreboard *sb, sv_counter counter);
uint64_t sv_scoreboard_counter(const sv_scoreboard *sb, sv_counter counter);
int sv_scoreboard_stopping(const sv_scoreboard *sb);
uint32_t sv_scoreboard_generation(const sv_scoreboard *sb);
/* Another worker of the current generation than self has been idle
 * since idle_before (monotonic ms) or longer. */
int sv_scoreboard_someone_idle(const sv_scoreboard *sb, const sv_slot *self, int64_t idle_before);
void sv_scoreboard_summary(const sv_scoreboard *sb, sv_scoreboard_view *v);
/* How many workers are serving a request (of any generation). */
uint32_t sv_scoreboard_busy(const sv_scoreboard *sb);
/* Copies slot index into *v; 0 when the slot is free. */
int sv_scoreboard_slot_view(const sv_scoreboard *sb, int index, sv_slot_view *v);

#endif
