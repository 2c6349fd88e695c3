/* What each kind of job does, run in the supervisor's child. */
#ifndef SV_JOB_WORK_H
#define SV_JOB_WORK_H

#include <stddef.h>

#include <json-c/json.h>

#include "core/sv_config.h"
#include "core/sv_arena.h"
#include "crypto/sv_vault.h"
#include "db/sv_db.h"
#include "job/sv_job.h"

/* Does job's work (vault: the keys that open the user's platform token,
 * for a sync). SV_OK with *result (a JSON object for the audit row), or
 * SV_ERROR with the reason in error (and possibly a partial *result).
 * The caller puts *result. */
int sv_job_work(const sv_config *cfg, const sv_vault *vault, const sv_job *job, json_object **result,
                char *error, size_t errlen);

/* For the work of each kind: */

/* Runs sql as service_role on db. The result (caller PQclears) when it
 * succeeded, else NULL with the reason in error. */
PGresult *sv_job_sql(sv_db *db, const char *sql, int n, const char *const *values, char *error,
                     size_t errlen);

/* sync (sv_job_sync.c): the handle's content read from its platform and
 * written into handle_content. *result holds the counts (new, updated,
 * unchanged, removed, pages, complete), also when it fails part way. */
int sv_job_sync(const sv_config *cfg, const sv_vault *vault, sv_db *db, sv_arena *arena, const sv_job *job,
                json_object **result, char *error, size_t errlen);

#endif
