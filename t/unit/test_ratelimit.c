/* The rate limiter's arithmetic (burst, then one per interval; what the
 * RateLimit-* headers say), independence of keys, a flood of new keys,
 * several processes counting in one zone, and the client address (the
 * trusted-proxy header, IPv6 by /64). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "core/sv_addr.h"
#include "core/sv_ratelimit.h"
#include "tap.h"

static int take(sv_ratelimit *z, const char *key, long interval, int burst, int64_t now, sv_rate_verdict *v)
{
    sv_ratelimit_take(z, key, strlen(key), interval, burst, now, v);
    return v->allowed;
}

int main(void)
{
    sv_rate_verdict v;
    int64_t t0 = 1000000000;   /* any monotonic time */
    char buf[64], key[48];

    if (sodium_init() < 0) {
        puts("Bail out! sodium");
        return 1;
    }
    sv_ratelimit *z = sv_ratelimit_create(1024);
    ok(z != NULL, "zone created");
    ok(sv_ratelimit_entries(z) >= 1024, "holds at least the entries asked for");

    /* burst 5, one per 100 ms */
    int allowed = 0;
    for (int i = 0; i < 5; i++)
        allowed += take(z, "u alice", 100000, 5, t0, &v);
    is_int(allowed, 5, "a burst of 5 passes at once");
    is_int(v.remaining, 0, "then nothing remains");
    is_int(v.limit, 5, "limit is the burst");
    ok(!take(z, "u alice", 100000, 5, t0, &v), "the 6th at the same instant is refused");
    is_int(v.retry_after_s, 1, "Retry-After rounds 100 ms up to 1 s");
    is_int(v.reset_s, 1, "Reset: 500 ms to full, rounded up");
    ok(!take(z, "u alice", 100000, 5, t0 + 99999, &v), "still refused just before the interval");
    ok(take(z, "u alice", 100000, 5, t0 + 100000, &v), "one interval later: one more");
    is_int(v.remaining, 0, "and none left");
    ok(!take(z, "u alice", 100000, 5, t0 + 100000, &v), "refusals cost nothing, but nothing came back yet");
    ok(take(z, "u alice", 100000, 5, t0 + 200000, &v), "a refused request did not push the next one back");
    ok(take(z, "u alice", 100000, 5, t0 + 10000000, &v), "after a long pause");
    is_int(v.remaining, 4, "the bucket is full again (minus this one)");

    /* the sustained rate: 1 s of requests every 10 ms at 10 r/s, burst 3 */
    allowed = 0;
    for (int i = 0; i < 100; i++)
        allowed += take(z, "u steady", 100000, 3, t0 + i * 10000, &v);
    is_int(allowed, 3 + 9, "burst + rate x elapsed (990 ms at 10 r/s)");

    /* keys do not share a bucket */
    ok(take(z, "u bob", 100000, 5, t0, &v), "another user has their own bucket");
    is_int(v.remaining, 4, "full");
    ok(take(z, "w u alice", 100000, 5, t0, &v), "another class has its own bucket");

    /* slow rates: 30 r/m = one every 2 s */
    for (int i = 0; i < 2; i++)
        take(z, "a 10.0.0.1", 2000000, 2, t0, &v);
    ok(!take(z, "a 10.0.0.1", 2000000, 2, t0, &v), "30r/m burst 2: third refused");
    is_int(v.retry_after_s, 2, "Retry-After 2 s");
    is_int(v.reset_s, 4, "Reset 4 s");

    /* a flood of new keys never refuses anyone early */
    sv_ratelimit *small = sv_ratelimit_create(64);
    take(small, "victim", 1000000, 2, t0, &v);
    int early = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "flood %d", i);
        if (!take(small, key, 1000000, 2, t0, &v))
            early++;
    }
    is_int(early, 0, "5000 new keys in a 64-entry zone: every first request passes");
    ok(take(small, "victim", 1000000, 2, t0, &v), "an evicted key starts over (more lenient, never stricter)");
    sv_ratelimit_destroy(small);

    /* four processes hammer one key: exactly the burst passes */
    int *counts = mmap(NULL, 4 * sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    memset(counts, 0, 4 * sizeof(int));
    for (int p = 0; p < 4; p++) {
        pid_t pid = fork();
        if (pid == 0) {
            sv_ratelimit_set_pid(getpid());
            sv_rate_verdict cv;
            for (int i = 0; i < 20000; i++)
                counts[p] += take(z, "u shared", 60000000, 1000, t0, &cv);
            _exit(0);
        }
    }
    for (int p = 0; p < 4; p++)
        wait(NULL);
    is_int(counts[0] + counts[1] + counts[2] + counts[3], 1000, "80000 tries from 4 processes: exactly 1000 (the burst) pass");
    munmap(counts, 4 * sizeof(int));

    sv_ratelimit_destroy(z);

    /* client addresses */
    is_str(sv_addr_client("10.1.2.3", "9.9.9.9", "", buf, sizeof(buf)), "10.1.2.3",
           "no trusted proxies: the header is ignored");
    is_str(sv_addr_client("10.1.2.3", "9.9.9.9", "127.0.0.1", buf, sizeof(buf)), "10.1.2.3",
           "a peer that is not a trusted proxy: ignored");
    is_str(sv_addr_client("127.0.0.1", "9.9.9.9", "127.0.0.1", buf, sizeof(buf)), "9.9.9.9",
           "a trusted proxy: its header names the client");
    is_str(sv_addr_client("127.0.0.1", "6.6.6.6, 9.9.9.9, 10.0.0.2", "127.0.0.1, 10.0.0.0/8", buf, sizeof(buf)),
           "9.9.9.9", "right to left, past trusted proxies; a spoofed left part is ignored");
    is_str(sv_addr_client("127.0.0.1", "10.0.0.3, 10.0.0.2", "127.0.0.1, 10.0.0.0/8", buf, sizeof(buf)),
           "10.0.0.3", "all trusted: the leftmost");
    is_str(sv_addr_client("127.0.0.1", "garbage, 9.9.9.9", "127.0.0.1", buf, sizeof(buf)), "9.9.9.9",
           "garbage to the left is never reached");
    is_str(sv_addr_client("127.0.0.1", "not-an-ip", "127.0.0.1", buf, sizeof(buf)), "127.0.0.1",
           "a garbage header: the peer");
    is_str(sv_addr_client("127.0.0.1", "", "127.0.0.1", buf, sizeof(buf)), "127.0.0.1", "an empty header: the peer");
    is_str(sv_addr_client("127.0.0.1", NULL, "127.0.0.1", buf, sizeof(buf)), "127.0.0.1", "no header: the peer");
    is_str(sv_addr_client("::1", "2001:db8::7", "::1", buf, sizeof(buf)), "2001:db8::7", "IPv6 proxies too");

    is_str(sv_addr_rate_key("192.0.2.7", key, sizeof(key)), "192.0.2.7", "IPv4 as is");
    is_str(sv_addr_rate_key("2001:db8:1:2:aaaa::1", key, sizeof(key)), "2001:0db8:0001:0002::/64", "IPv6 by /64");
    is_str(sv_addr_rate_key("2001:db8:1:2:bbbb:cccc:dddd:eeee", key, sizeof(key)), "2001:0db8:0001:0002::/64",
           "the same /64, the same key");
    is_str(sv_addr_rate_key("::ffff:192.0.2.7", key, sizeof(key)), "192.0.2.7", "IPv4-mapped as IPv4");
    is_str(sv_addr_rate_key("unix:", key, sizeof(key)), "-", "not an address");
    is_str(sv_addr_rate_key(NULL, key, sizeof(key)), "-", "no address");
    return tap_done();
}
