/* The pool's shared scoreboard (php-fpm's): one slot per worker in a
 * MAP_SHARED mapping made before fork, written by the worker, read by the
 * master (timeouts) and by any worker serving the status page. Counters
 * are updated with atomics; the text fields are for display only. */
#ifndef SV_SCOREBOARD_H
#define SV_SCOREBOARD_H

#include <stdint.h>
#include <sys/types.h>

#define SV_SCOREBOARD_SLOTS 256   /* twice the largest pool: a reload runs old and new side by side */

typedef enum { SV_SLOT_FREE = 0, SV_SLOT_STARTING, SV_SLOT_IDLE, SV_SLOT_BUSY, SV_SLOT_EXITING } sv_slot_state;

typedef struct sv_slot {
    pid_t    pid;
    uint32_t generation;
    uint32_t state;              /* sv_slot_state */
    int64_t  started_ms;         /* wall clock, ms since epoch */
    int64_t  request_start_ms;   /* monotonic ms; valid while BUSY */
    int64_t  idle_since_ms;      /* monotonic ms; valid while IDLE */
    uint64_t requests;
    uint32_t connections;        /* FastCGI connections held (kept ones included) */
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
    uint64_t accepted_conn;      /* requests, as php-fpm counts them */
    uint64_t fastcgi_connections; /* connections accepted from the web server */
    uint64_t fastcgi_passed;     /* connections passed on by a busy or leaving worker */
    uint64_t slow_requests;
    uint64_t timed_out_requests;
    uint64_t respawned_workers;
    uint32_t max_active;
    uint32_t max_children_reached;
    uint32_t workers_configured;
    uint32_t generation;
    uint32_t slots_used;         /* 1 + the highest slot index ever given out */
    uint32_t stopping;           /* the master is stopping the pool */
    pid_t    master_pid;
    sv_slot  slots[SV_SCOREBOARD_SLOTS];
} sv_scoreboard;

/* Maps a zeroed scoreboard shared with future children; NULL on error. */
sv_scoreboard *sv_scoreboard_create(void);
void sv_scoreboard_destroy(sv_scoreboard *sb);

int64_t sv_now_monotonic_ms(void);
int64_t sv_now_wall_ms(void);

#endif
