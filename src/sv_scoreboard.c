#include "sv_scoreboard.h"

#include <string.h>
#include <sys/mman.h>
#include <time.h>

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

int64_t sv_now_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sv_now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
