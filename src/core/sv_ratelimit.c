#include "core/sv_ratelimit.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sodium.h>

#define SV_RL_WAYS 7
/* Spins before a waiter asks whether the holder is still alive. */
#define SV_RL_SPINS 4096

typedef struct __attribute__((aligned(128))) sv_rl_set {
    uint32_t lock;                  /* pid of the holder, 0 when free */
    uint32_t pad;
    uint64_t keys[SV_RL_WAYS];      /* hash of the key, 0 when empty */
    int64_t  tats[SV_RL_WAYS];      /* theoretical arrival time, monotonic us */
} sv_rl_set;

struct sv_ratelimit {
    size_t        bytes;            /* the mapping's size */
    uint64_t      nsets;
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
    uint64_t      takeovers;        /* locks taken from dead holders */
    sv_rl_set     sets[] __attribute__((aligned(128)));
};

static pid_t sv_rl_pid;

void sv_ratelimit_set_pid(pid_t pid)
{
    sv_rl_pid = pid;
}

sv_ratelimit *sv_ratelimit_create(uint32_t entries)
{
    uint64_t nsets = (entries + SV_RL_WAYS - 1) / SV_RL_WAYS;
    if (nsets == 0)
        nsets = 1;
    size_t bytes = sizeof(sv_ratelimit) + nsets * sizeof(sv_rl_set);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    sv_ratelimit *z = p;
    memset(z, 0, bytes);   /* the kernel zeroes it too; say so */
    z->bytes = bytes;
    z->nsets = nsets;
    randombytes_buf(z->hash_key, sizeof(z->hash_key));
    return z;
}

void sv_ratelimit_destroy(sv_ratelimit *z)
{
    if (z != NULL)
        munmap(z, z->bytes);
}

uint32_t sv_ratelimit_entries(const sv_ratelimit *z)
{
    return (uint32_t)(z->nsets * SV_RL_WAYS);
}

/* Takes the set's lock. Spins (pause) without any system call while
 * someone holds it; only after SV_RL_SPINS rounds does it ask the kernel
 * whether the holder still exists, and takes a dead holder's lock over. */
static void sv_rl_lock(sv_ratelimit *z, sv_rl_set *s, uint32_t me)
{
    for (;;) {
        for (int i = 0; i < SV_RL_SPINS; i++) {
            uint32_t expected = 0;
            if (__atomic_load_n(&s->lock, __ATOMIC_RELAXED) == 0 &&
                __atomic_compare_exchange_n(&s->lock, &expected, me, 0, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
                return;
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
        uint32_t holder = __atomic_load_n(&s->lock, __ATOMIC_RELAXED);
        if (holder != 0 && holder != me && kill((pid_t)holder, 0) != 0 && errno == ESRCH &&
            __atomic_compare_exchange_n(&s->lock, &holder, me, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
            __atomic_add_fetch(&z->takeovers, 1, __ATOMIC_RELAXED);
            return;
        }
        sched_yield();
    }
}

static void sv_rl_unlock(sv_rl_set *s)
{
    __atomic_store_n(&s->lock, 0, __ATOMIC_RELEASE);
}

void sv_ratelimit_take(sv_ratelimit *z, const void *key, size_t len, long interval_us, int burst,
                       int64_t now_us, sv_rate_verdict *v)
{
    unsigned char out[crypto_shorthash_BYTES];
    uint64_t h;

    crypto_shorthash(out, key, len, z->hash_key);
    memcpy(&h, out, sizeof(h));
    if (h == 0)
        h = 1;
    if (burst < 1)
        burst = 1;
    if (sv_rl_pid == 0)
        sv_rl_pid = getpid();
    sv_rl_set *s = &z->sets[(h >> 32) % z->nsets];
    int64_t t = interval_us, cap = t * burst;

    sv_rl_lock(z, s, (uint32_t)sv_rl_pid);
    int slot = -1, victim = 0;
    for (int i = 0; i < SV_RL_WAYS; i++) {
        if (s->keys[i] == h) {
            slot = i;
            break;
        }
        if (s->tats[i] < s->tats[victim])
            victim = i;
    }
    /* A new key takes the entry closest to full again (an expired one
     * is exactly as good as an empty one). */
    int64_t tat = slot >= 0 ? s->tats[slot] : 0;
    if (tat < now_us)
        tat = now_us;
    int64_t next = tat + t;
    v->allowed = next - now_us <= cap;
    if (v->allowed) {
        if (slot < 0) {
            slot = victim;
            s->keys[slot] = h;
        }
        s->tats[slot] = next;
    }
    sv_rl_unlock(s);

    v->limit = burst;
    if (v->allowed) {
        v->remaining = (int)((cap - (next - now_us)) / t);
        v->reset_s = (long)((next - now_us + 999999) / 1000000);
        v->retry_after_s = 0;
    } else {
        v->remaining = 0;
        v->reset_s = (long)((tat - now_us + 999999) / 1000000);
        int64_t wait = next - now_us - cap;
        v->retry_after_s = (long)((wait + 999999) / 1000000);
        if (v->retry_after_s < 1)
            v->retry_after_s = 1;
    }
}
