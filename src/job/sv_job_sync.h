/* The sync-platform job's work (sv_job_sync.c). */
#ifndef SV_JOB_SYNC_H
#define SV_JOB_SYNC_H

#include <stddef.h>

#include <json-c/json.h>

#include "core/sv_arena.h"
#include "core/sv_config.h"
#include "crypto/sv_vault.h"
#include "db/sv_db.h"
#include "job/sv_job.h"

/* The handle's content read from its platform and written into
 * handle_content. *result holds the counts (new, updated, unchanged,
 * removed, pages, complete), also when it fails part way. */
int sv_job_sync(const sv_config *cfg, const sv_vault *vault, sv_db *db, sv_arena *arena, const sv_job *job,
                json_object **result, char *error, size_t errlen);

#endif
