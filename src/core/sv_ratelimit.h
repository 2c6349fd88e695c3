/* Rate limiting in the pool's shared memory, like nginx's limit_req
 * zones: a fixed-size table made by the pool master before it forks, so
 * every worker counts in the same buckets without a database write per
 * request. These functions are the only door to it (the scoreboard's
 * rule): callers never touch the table or its locks.
 *
 * Each bucket is a GCRA ("generic cell rate algorithm", the leaky bucket
 * of limit_req with nodelay): one theoretical arrival time per key. A key
 * may make burst requests at once, then one every interval; a refused
 * request costs nothing. Keys are hashed with a random SipHash key made
 * at creation (crypto_shorthash), so nobody can aim keys at one set.
 *
 * The table is set-associative: a key lives in one set of 7 entries
 * (two cache lines), guarded by a spin lock held for a few dozen
 * instructions and never across a system call. When a set is full, the
 * entry whose bucket is closest to full again is reused, so a flood of
 * new keys can only make the limits more lenient for the quietest
 * callers, never refuse anyone early. A process killed while it holds a
 * set's lock (it holds it for nanoseconds) is noticed by the next one
 * that waits on it, which takes the lock over. */
#ifndef SV_RATELIMIT_H
#define SV_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct sv_ratelimit sv_ratelimit;

/* The outcome of one request, for the 429 and the RateLimit-* headers. */
typedef struct sv_rate_verdict {
    int  allowed;
    int  limit;           /* the burst: requests allowed at once */
    int  remaining;       /* requests still allowed right now */
    long reset_s;         /* seconds until the bucket is full again */
    long retry_after_s;   /* refused: seconds until one is allowed (>= 1) */
} sv_rate_verdict;

/* Maps a zeroed zone of at least entries buckets, shared with future
 * children; NULL on error (errno set). */
sv_ratelimit *sv_ratelimit_create(uint32_t entries);
void sv_ratelimit_destroy(sv_ratelimit *z);
/* How many buckets the zone holds. */
uint32_t sv_ratelimit_entries(const sv_ratelimit *z);

/* The calling process's pid, recorded in a set's lock while it holds it
 * (call once after fork; 0: asked of the kernel when needed). */
void sv_ratelimit_set_pid(pid_t pid);

/* Counts one request of key[0..len) against a bucket that allows burst
 * requests at once and one every interval_us after that, at now_us
 * (sv_clock_mono_us). Fills *v. */
void sv_ratelimit_take(sv_ratelimit *z, const void *key, size_t len, long interval_us, int burst,
                       int64_t now_us, sv_rate_verdict *v);

#endif
