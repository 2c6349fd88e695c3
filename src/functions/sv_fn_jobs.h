/* /functions/v1: the V2 document's three Edge Functions (sync-platform,
 * enhance-ai, submit-seo) as jobs, their status, applying an AI
 * suggestion, and the IndexNow key file. Routes run with policy
 * SV_AUTH_REQUIRED: a user, or the service role acting for a user it
 * names in the body ("userId"); a userId sent by anyone else is ignored. */
#ifndef SV_FN_JOBS_H
#define SV_FN_JOBS_H

#include <stddef.h>

#include "core/sv_config.h"
#include "http/sv_ctx.h"

/* POST {handleId}, {contentId}, {contentIds:[…]} → 202 {job_id, status:
 * "running"}; with ?wait=N (N ≤ job_wait_max) the answer waits up to N
 * seconds for the job and is then the document's {success, result} or
 * {error} (or the 202 when the job is still running). */
int sv_fn_sync_platform(sv_ctx *ctx);
int sv_fn_enhance_ai(sv_ctx *ctx);
int sv_fn_submit_seo(sv_ctx *ctx);

/* GET /functions/v1/jobs/<id>[?wait=N]: running, completed or failed,
 * with result or error; the owner's jobs only. */
int sv_fn_job_status(sv_ctx *ctx);
/* GET /functions/v1/jobs?status=running: the caller's running jobs. */
int sv_fn_jobs_list(sv_ctx *ctx);

/* POST /functions/v1/suggestions/<id>/apply {fields:["title",…]}. */
int sv_fn_suggestion_apply(sv_ctx *ctx);

/* GET /<indexnow_key>.txt: the key, for the search engines to check. */
int sv_fn_indexnow_key(sv_ctx *ctx);
const char *sv_fn_indexnow_key_path(const sv_config *cfg, char *buf, size_t len);

#endif
