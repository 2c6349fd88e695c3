/* bench/ratelimit: the CPU a request spends in the rate phase, measured
 * on the limiter's own code (core/sv_ratelimit.c) under the pool's
 * conditions: one shared zone made before fork, several processes taking
 * from it at once. Per request it does what sv_phase_rate does: build
 * the key ("r u <uuid>"), take from the bucket, and add the three
 * RateLimit-* headers to a response (sv_response_header into the
 * arena). It reports CPU nanoseconds per request (getrusage of the
 * children, user + system), for:
 *
 *   hot      every process on one key (one set's lock, contended)
 *   10k      10,000 callers (the zone's sets in and out of cache)
 *   churn    1,000,000 callers through a 65,536-entry zone (eviction)
 *
 * and, as the baseline, the same loop without the take and headers
 * (the key and a clock read only), so "limiter" is the difference;
 * "take" is the loop with the take but without the headers.
 * The target: under 1 microsecond (1000 ns) per request.
 *
 *   bench/ratelimit [iterations per process, default 2000000] [processes, default 2]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/sv_arena.h"
#include "core/sv_clock.h"
#include "core/sv_ratelimit.h"
#include "http/sv_http.h"

static volatile unsigned long sink;

/* One process's loop. full: 0 the baseline, 1 the take only, 2 the
 * whole phase (take and headers). */
static void run(sv_ratelimit *z, long iterations, unsigned long ncallers, int full, unsigned seed)
{
    sv_arena arena;
    sv_response res;
    sv_arena_init(&arena, 96 * 1024);
    sv_response_init(&res, &arena);
    srandom(seed);
    for (long i = 0; i < iterations; i++) {
        char key[128];
        unsigned long caller = ncallers == 1 ? 0 : (unsigned long)random() % ncallers;
        int n = snprintf(key, sizeof(key), "r u %08lx-0000-4000-8000-%012lx", caller, caller * 7919);
        int64_t now = sv_clock_mono_us();
        if (!full) {
            sink += (unsigned long)n + (unsigned long)now;
            continue;
        }
        sv_rate_verdict v;
        /* A limit nobody reaches, so every request does the full work. */
        sv_ratelimit_take(z, key, (size_t)n, 1, 1000000, now, &v);
        if (full == 1) {
            sink += (unsigned long)v.allowed;
            continue;
        }
        /* A response per request in the server; here one per 64, which
         * only makes its header buffer a little longer. */
        if ((i & 63) == 0) {
            sv_arena_reset(&arena);
            sv_response_init(&res, &arena);
        }
        sv_response_header_long(&res, "RateLimit-Limit", v.limit);
        sv_response_header_long(&res, "RateLimit-Remaining", v.remaining);
        sv_response_header_long(&res, "RateLimit-Reset", v.reset_s);
        sink += (unsigned long)v.allowed;
    }
    sv_arena_free(&arena);
}

/* Forks procs children running the loop; returns CPU ns per request. */
static double measure(sv_ratelimit *z, long iterations, int procs, unsigned long ncallers, int full)
{
    struct rusage before, after;
    getrusage(RUSAGE_CHILDREN, &before);
    for (int p = 0; p < procs; p++) {
        pid_t pid = fork();
        if (pid == 0) {
            sv_ratelimit_set_pid(getpid());
            run(z, iterations, ncallers, full, (unsigned)(p + 1) * 2654435761u);
            _exit(0);
        }
    }
    for (int p = 0; p < procs; p++)
        wait(NULL);
    getrusage(RUSAGE_CHILDREN, &after);
    double us = (double)(after.ru_utime.tv_sec - before.ru_utime.tv_sec) * 1e6 +
                (double)(after.ru_utime.tv_usec - before.ru_utime.tv_usec) +
                (double)(after.ru_stime.tv_sec - before.ru_stime.tv_sec) * 1e6 +
                (double)(after.ru_stime.tv_usec - before.ru_stime.tv_usec);
    return us * 1000.0 / ((double)iterations * procs);
}

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 2000000;
    int procs = argc > 2 ? atoi(argv[2]) : 2;
    static const struct {
        const char   *name;
        unsigned long callers;
        uint32_t      entries;
    } cases[] = {
        { "hot", 1, 65536 },
        { "10k", 10000, 65536 },
        { "churn", 1000000, 65536 },
    };

    if (sodium_init() < 0 || iterations < 1 || procs < 1)
        return 1;
    printf("rate phase CPU per request: %ld requests x %d processes per case\n", iterations, procs);
    printf("%-8s %12s %12s %12s %12s\n", "case", "baseline ns", "take ns", "phase ns", "limiter ns");
    int over = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sv_ratelimit *z = sv_ratelimit_create(cases[i].entries);
        if (z == NULL)
            return 1;
        double base = measure(z, iterations, procs, cases[i].callers, 0);
        double take = measure(z, iterations, procs, cases[i].callers, 1);
        double full = measure(z, iterations, procs, cases[i].callers, 2);
        printf("%-8s %12.1f %12.1f %12.1f %12.1f\n", cases[i].name, base, take, full, full - base);
        if (full - base >= 1000.0)
            over = 1;
        sv_ratelimit_destroy(z);
    }
    printf("target: < 1000 ns per request: %s\n", over ? "MISSED" : "met");
    return over;
}
