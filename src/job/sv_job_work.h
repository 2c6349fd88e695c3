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

#endif
