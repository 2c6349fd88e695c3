#include "core/sv_scoreboard.h"

#include <string.h>
#include <sys/mman.h>

#include "core/sv_clock.h"

sv_scoreboard *sv_scoreboard_create(void)
{
    void *p = mmap(NULL, sizeof(sv_scoreboard), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    memset(p, 0, sizeof(sv_scoreboard));
    return p;
}

void sv_scoreboard_destroy(sv_scoreboard *sb)
{
    if (sb != NULL)
        munmap(sb, sizeof(*sb));
}

void sv_scoreboard_open(sv_scoreboard *sb, pid_t master_pid, uint32_t workers)
{
    sb->start_time = sv_clock_wall_ms() / 1000;
    sb->master_pid = master_pid;
    sb->generation = 1;
    sb->workers_configured = workers;
}

void sv_scoreboard_new_generation(sv_scoreboard *sb, uint32_t generation, uint32_t workers)
{
    __atomic_store_n(&sb->generation, generation, __ATOMIC_RELAXED);
    __atomic_store_n(&sb->workers_configured, workers, __ATOMIC_RELAXED);
}

void sv_scoreboard_stop(sv_scoreboard *sb)
{
    __atomic_store_n(&sb->stopping, 1, __ATOMIC_RELEASE);
}

int sv_scoreboard_stopping(const sv_scoreboard *sb)
{
    return (int)__atomic_load_n(&sb->stopping, __ATOMIC_ACQUIRE);
}

uint32_t sv_scoreboard_generation(const sv_scoreboard *sb)
{
    return __atomic_load_n(&sb->generation, __ATOMIC_RELAXED);
}

sv_slot *sv_scoreboard_slot_prepare(sv_scoreboard *sb, int index, uint32_t generation)
{
    sv_slot *slot = &sb->slots[index];
    memset(slot, 0, sizeof(*slot));
    if ((uint32_t)index + 1 > sb->slots_used)
        __atomic_store_n(&sb->slots_used, (uint32_t)index + 1, __ATOMIC_RELEASE);
    slot->generation = generation;
    slot->started_ms = sv_clock_wall_ms();
    __atomic_store_n(&slot->state, SV_SLOT_STARTING, __ATOMIC_RELEASE);
    return slot;
}

void sv_slot_free(sv_slot *slot)
{
    memset(slot, 0, sizeof(*slot));
    __atomic_store_n(&slot->state, SV_SLOT_FREE, __ATOMIC_RELEASE);
}

const char *sv_slot_held_log(const sv_slot *slot, size_t *len)
{
    uint32_t held = __atomic_load_n(&slot->log_len, __ATOMIC_ACQUIRE);
    *len = held <= sizeof(slot->log_buf) ? held : 0;
    return slot->log_buf;
}

int sv_slot_busy_since(const sv_slot *slot, int64_t *start_ms)
{
    if (__atomic_load_n(&slot->state, __ATOMIC_ACQUIRE) != SV_SLOT_BUSY)
        return 0;
    *start_ms = __atomic_load_n(&slot->request_start_ms, __ATOMIC_RELAXED);
    return 1;
}

void sv_slot_attach(sv_slot *slot, pid_t pid, int64_t started_ms)
{
    slot->pid = pid;
    slot->started_ms = started_ms;
    __atomic_store_n(&slot->state, SV_SLOT_IDLE, __ATOMIC_RELEASE);
}

static void sv_slot_copy(char *dst, size_t size, const char *src)
{
    size_t n = src ? strnlen(src, size - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

/* How many workers are busy: only the slots ever handed out, because
 * the rest of the 256 are cache lines nobody writes, and reading them
 * costs on every request. */
uint32_t sv_scoreboard_busy(const sv_scoreboard *sb)
{
    uint32_t active = 0, used = __atomic_load_n(&sb->slots_used, __ATOMIC_ACQUIRE);
    if (used == 0 || used > SV_SCOREBOARD_SLOTS)
        used = SV_SCOREBOARD_SLOTS;
    for (uint32_t i = 0; i < used; i++)
        if (__atomic_load_n(&sb->slots[i].state, __ATOMIC_RELAXED) == SV_SLOT_BUSY)
            active++;
    return active;
}

void sv_slot_busy(sv_scoreboard *sb, sv_slot *slot, const char *method, const char *path,
                  const char *request_id, int64_t start_ms)
{
    sv_slot_copy(slot->method, sizeof(slot->method), method);
    sv_slot_copy(slot->path, sizeof(slot->path), path);
    sv_slot_copy(slot->request_id, sizeof(slot->request_id), request_id);
    __atomic_store_n(&slot->request_start_ms, start_ms, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->state, SV_SLOT_BUSY, __ATOMIC_RELEASE);
    sv_scoreboard_count(sb, SV_COUNT_ACCEPTED);

    uint32_t active = sv_scoreboard_busy(sb);
    uint32_t seen = __atomic_load_n(&sb->max_active, __ATOMIC_RELAXED);
    while (active > seen &&
           !__atomic_compare_exchange_n(&sb->max_active, &seen, active, 0, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
        ;
    uint32_t configured = __atomic_load_n(&sb->workers_configured, __ATOMIC_RELAXED);
    if (configured > 0 && active >= configured)
        __atomic_add_fetch(&sb->max_children_reached, 1, __ATOMIC_RELAXED);
}

void sv_slot_idle(sv_slot *slot, int64_t duration_ms)
{
    slot->last_duration_ms = duration_ms;
    __atomic_store_n(&slot->idle_since_ms, sv_clock_mono_ms(), __ATOMIC_RELAXED);
    __atomic_add_fetch(&slot->requests, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->state, SV_SLOT_IDLE, __ATOMIC_RELEASE);
}

void sv_slot_exiting(sv_slot *slot)
{
    __atomic_store_n(&slot->state, SV_SLOT_EXITING, __ATOMIC_RELEASE);
}

void sv_slot_set_connections(sv_slot *slot, uint32_t n)
{
    __atomic_store_n(&slot->connections, n, __ATOMIC_RELAXED);
}

void sv_slot_set_parked(sv_slot *slot, uint32_t n)
{
    __atomic_store_n(&slot->parked, n, __ATOMIC_RELAXED);
}

void sv_slot_add_connections(sv_slot *slot, int delta)
{
    __atomic_add_fetch(&slot->connections, (uint32_t)delta, __ATOMIC_RELAXED);
}

int64_t sv_slot_request_start(const sv_slot *slot)
{
    return __atomic_load_n(&slot->request_start_ms, __ATOMIC_RELAXED);
}

uint64_t sv_slot_requests(const sv_slot *slot)
{
    return __atomic_load_n(&slot->requests, __ATOMIC_RELAXED);
}

void sv_slot_log_buffer(sv_slot *slot, char **buf, size_t *cap, uint32_t **len)
{
    *buf = slot->log_buf;
    *cap = sizeof(slot->log_buf);
    *len = &slot->log_len;
}

void sv_scoreboard_count(sv_scoreboard *sb, sv_counter counter)
{
    __atomic_add_fetch(&sb->counters[counter], 1, __ATOMIC_RELAXED);
}

void sv_scoreboard_uncount(sv_scoreboard *sb, sv_counter counter)
{
    __atomic_sub_fetch(&sb->counters[counter], 1, __ATOMIC_RELAXED);
}

uint64_t sv_scoreboard_counter(const sv_scoreboard *sb, sv_counter counter)
{
    return __atomic_load_n(&sb->counters[counter], __ATOMIC_RELAXED);
}

int sv_scoreboard_someone_idle(const sv_scoreboard *sb, const sv_slot *self, int64_t idle_before)
{
    uint32_t used = __atomic_load_n(&sb->slots_used, __ATOMIC_ACQUIRE);
    uint32_t generation = sv_scoreboard_generation(sb);
    if (used > SV_SCOREBOARD_SLOTS)
        used = SV_SCOREBOARD_SLOTS;
    for (uint32_t i = 0; i < used; i++) {
        const sv_slot *slot = &sb->slots[i];
        if (slot != self && __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE) == SV_SLOT_IDLE &&
            slot->generation == generation &&
            __atomic_load_n(&slot->idle_since_ms, __ATOMIC_RELAXED) <= idle_before)
            return 1;
    }
    return 0;
}

int sv_scoreboard_slot_view(const sv_scoreboard *sb, int index, sv_slot_view *v)
{
    const sv_slot *slot = &sb->slots[index];
    uint32_t state = __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE);
    if (state == SV_SLOT_FREE)
        return 0;
    v->pid = slot->pid;
    v->state = state;
    v->generation = slot->generation;
    v->started_ms = slot->started_ms;
    v->request_start_ms = __atomic_load_n(&slot->request_start_ms, __ATOMIC_RELAXED);
    v->last_duration_ms = slot->last_duration_ms;
    v->requests = sv_slot_requests(slot);
    v->connections = __atomic_load_n(&slot->connections, __ATOMIC_RELAXED);
    v->parked = __atomic_load_n(&slot->parked, __ATOMIC_RELAXED);
    memcpy(v->method, slot->method, sizeof(slot->method));
    v->method[sizeof(slot->method)] = '\0';
    memcpy(v->path, slot->path, sizeof(slot->path));
    v->path[sizeof(slot->path)] = '\0';
    memcpy(v->request_id, slot->request_id, sizeof(slot->request_id));
    v->request_id[sizeof(slot->request_id)] = '\0';
    return 1;
}

void sv_scoreboard_summary(const sv_scoreboard *sb, sv_scoreboard_view *v)
{
    v->start_time = sb->start_time;
    v->master_pid = sb->master_pid;
    v->generation = sv_scoreboard_generation(sb);
    v->max_active = __atomic_load_n(&sb->max_active, __ATOMIC_RELAXED);
    v->max_children_reached = __atomic_load_n(&sb->max_children_reached, __ATOMIC_RELAXED);
    for (int i = 0; i < SV_NCOUNTERS; i++)
        v->counters[i] = sv_scoreboard_counter(sb, (sv_counter)i);
}
