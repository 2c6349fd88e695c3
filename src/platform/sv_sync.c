/* The platforms' sync (sv_sync.h): picks the adapter of the handle's
 * platform; what the adapters share is in sv_sync_common.c. */
#include "platform/sv_sync.h"

#include <stdio.h>
#include <string.h>

#include "core/sv_arena.h"
#include "core/sv_err.h"
#include "platform/sv_sync_common.h"

int sv_sync_supported(const char *platform)
{
    return platform != NULL && (strcmp(platform, "youtube") == 0 || strcmp(platform, "instagram") == 0 ||
                                strcmp(platform, "tiktok") == 0);
}

int sv_sync_fetch(sv_sync_run *run, char *why, size_t whylen)
{
    sv_arena arena;
    int rc;

    run->pages = run->calls = run->refreshed = run->complete = 0;
    run->stopped = NULL;
    run->account[0] = '\0';
    why[0] = '\0';
    sv_arena_init(&arena, 64 * 1024);
    if (strcmp(run->platform, "youtube") == 0) {
        rc = sv_sync_youtube(run, &arena, why, whylen);
    } else if (strcmp(run->platform, "instagram") == 0) {
        rc = sv_sync_instagram(run, &arena, why, whylen);
    } else if (strcmp(run->platform, "tiktok") == 0) {
        rc = sv_sync_tiktok(run, &arena, why, whylen);
    } else {
        snprintf(why, whylen, "syncing %.40s is not supported", run->platform);
        rc = SV_ERROR;
    }
    sv_arena_free(&arena);   /* wipes the answers' secret allocations */
    return rc;
}

int sv_sync_confirm(sv_sync_run *run, json_object *ids, json_object **kept, char *why, size_t whylen)
{
    *kept = json_object_new_array();
    if (strcmp(run->platform, "tiktok") != 0 || json_object_array_length(ids) == 0)
        return SV_OK;
    sv_arena arena;
    sv_arena_init(&arena, 16 * 1024);
    int rc = sv_sync_tiktok_confirm(run, &arena, ids, *kept, why, whylen);
    sv_arena_free(&arena);
    return rc;
}
