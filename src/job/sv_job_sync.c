/* sync-platform: the handle's content read from its platform
 * (platform/sv_sync.h) and written into handle_content, one statement per
 * page (public.sv_sync_upsert, sql/041_sync.sql), with the user's token
 * from the credentials layer. What the platform no longer lists is
 * soft-deleted only after a complete listing. The handle's sync_status
 * and last_synced_at are set by sv_job_finish when the job ends. */
#include "job/sv_job_sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sv_clock.h"
#include "core/sv_json.h"
#include "core/sv_log.h"
#include "platform/sv_credentials.h"
#include "platform/sv_sync.h"

typedef struct sv_job_sync_state {
    sv_db           *db;
    const sv_job    *job;
    const char      *handle_id;
    const char      *platform;
    sv_platform_env  env;
    const char      *token;       /* secret arena allocation of env.arena */
    json_object     *seen;        /* platform ids read so far, as an object's keys */
    long long        n_new, n_updated, n_unchanged;
} sv_job_sync_state;

static const char *sv_job_sync_token(void *arg, const char *rejected, char *why, size_t whylen)
{
    sv_job_sync_state *st = arg;
    if (rejected == NULL && st->token != NULL)
        return st->token;
    sv_platform_token tok;
    sv_error err;
    sv_error_init(&err);
    if (sv_platform_token_get(&st->env, st->job->user_id, st->platform, rejected, &tok, &err) != SV_OK) {
        const char *code = err.code ? err.code : "";
        if (strcmp(code, "credential_not_found") == 0)
            snprintf(why, whylen, "no %s account is connected for this user: connect it, then sync again",
                     st->platform);
        else if (strcmp(code, "credential_inactive") == 0 || strcmp(code, "credential_expired") == 0)
            snprintf(why, whylen, "the %s connection no longer works (%s): connect the account again",
                     st->platform, code);
        else
            snprintf(why, whylen, "no usable %s token: %.200s", st->platform,
                     err.message ? err.message : code);
        sv_error_clear(&err);
        return NULL;
    }
    sv_error_clear(&err);
    if (rejected != NULL)
        sv_log_info("job_sync_token", "job_id=%s platform=%s source=%s", st->job->job_id, st->platform,
                    sv_token_source_name(tok.source));
    st->token = tok.access_token;
    return st->token;
}

/* One page: the items not seen earlier in this sync, upserted in one
 * statement. */
static int sv_job_sync_page(void *arg, json_object *items, char *why, size_t whylen)
{
    static const char sql[] = "SELECT public.sv_sync_upsert($1::uuid, $2::uuid, $3::jsonb)::text";
    sv_job_sync_state *st = arg;
    json_object *fresh = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(items); i++) {
        json_object *item = json_object_array_get_idx(items, i);
        const char *id;
        if (sv_json_string(item, "platform_content_id", &id, NULL) != 1 ||
            json_object_object_get_ex(st->seen, id, NULL))
            continue;
        json_object_object_add(st->seen, id, NULL);
        json_object_array_add(fresh, json_object_get(item));
    }
    int rc = SV_OK;
    if (json_object_array_length(fresh) > 0) {
        const char *v[3] = { st->handle_id, st->job->user_id,
                             json_object_to_json_string_ext(fresh, JSON_C_TO_STRING_PLAIN) };
        PGresult *r = sv_job_sql(st->db, sql, 3, v, why, whylen);
        json_object *counts = NULL;
        const char *pwhy;
        if (r == NULL || sv_json_parse(PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), &counts, &pwhy) != SV_OK) {
            if (r != NULL)
                snprintf(why, whylen, "the database's answer to a page was not understood");
            rc = SV_ERROR;
        } else {
            json_object *n;
            if (json_object_object_get_ex(counts, "new", &n))
                st->n_new += json_object_get_int64(n);
            if (json_object_object_get_ex(counts, "updated", &n))
                st->n_updated += json_object_get_int64(n);
            if (json_object_object_get_ex(counts, "unchanged", &n))
                st->n_unchanged += json_object_get_int64(n);
        }
        json_object_put(counts);
        if (r != NULL)
            PQclear(r);
    }
    json_object_put(fresh);
    return rc;
}

/* Before soft-deleting: the live content the listing did not show, asked
 * of the platform once more (sv_sync_confirm); what it still has is
 * added to st->seen, so it stays. *kept says how many. */
static int sv_job_sync_confirm(sv_job_sync_state *st, sv_sync_run *run, long long *kept, char *why, size_t whylen)
{
    static const char sql[] =
        "SELECT coalesce(jsonb_agg(c.platform_content_id), '[]')::text FROM public.handle_content c "
        "WHERE c.handle_id = $1::uuid AND c.user_id = $2::uuid AND c.deleted_at IS NULL "
        "AND NOT (c.platform_content_id = ANY (ARRAY(SELECT jsonb_object_keys($3::jsonb))))";
    const char *v[3] = { st->handle_id, st->job->user_id,
                         json_object_to_json_string_ext(st->seen, JSON_C_TO_STRING_PLAIN) };
    PGresult *r = sv_job_sql_idempotent(st->db, sql, 3, v, why, whylen);
    if (r == NULL)
        return SV_ERROR;
    json_object *missing = NULL, *still = NULL;
    const char *pwhy;
    int rc = sv_json_parse(PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), &missing, &pwhy);
    PQclear(r);
    if (rc != SV_OK) {
        snprintf(why, whylen, "the database's list of missing content was not understood");
        return SV_ERROR;
    }
    rc = sv_sync_confirm(run, missing, &still, why, whylen);
    for (size_t i = 0; rc == SV_OK && i < json_object_array_length(still); i++)
        json_object_object_add(st->seen, json_object_get_string(json_object_array_get_idx(still, i)), NULL);
    *kept = rc == SV_OK ? (long long)json_object_array_length(still) : 0;
    json_object_put(missing);
    json_object_put(still);
    return rc;
}

int sv_job_sync(const sv_config *cfg, const sv_vault *vault, sv_db *db, sv_arena *arena, const sv_job *job,
                json_object **result, char *error, size_t errlen)
{
    static const char handle_sql[] =
        "SELECT p.name, h.platform_user_id FROM public.account_handles h "
        "JOIN public.platforms p ON p.id = h.platform_id WHERE h.id = $1::uuid AND h.user_id = $2::uuid";
    static const char remove_sql[] =
        "SELECT public.sv_sync_remove_missing($1::uuid, $2::uuid, $3::jsonb)";
    const char *handle_id;
    if (sv_json_string(job->payload, "handleId", &handle_id, NULL) != 1) {
        snprintf(error, errlen, "the job has no handleId");
        return SV_ERROR;
    }
    /* Leave a tenth of the time limit (1 s at least) for the writes that
     * follow the last page, and for recording the end. */
    int limit_s = job->time_limit_s > 0 ? job->time_limit_s : cfg->job_time_limit_sync;
    long long limit_ms = (long long)limit_s * 1000, margin = limit_ms / 10;
    if (margin < 1000)
        margin = limit_ms / 2 < 1000 ? limit_ms / 2 : 1000;
    long long deadline = sv_clock_mono_ms() + limit_ms - margin;

    const char *hv[2] = { handle_id, job->user_id };
    PGresult *r = sv_job_sql_idempotent(db, handle_sql, 2, hv, error, errlen);
    if (r == NULL)
        return SV_ERROR;
    if (PQntuples(r) != 1) {
        PQclear(r);
        snprintf(error, errlen, "the handle no longer exists");
        return SV_ERROR;
    }
    const char *platform = sv_arena_strdup(arena, PQgetvalue(r, 0, 0));
    const char *account = PQgetisnull(r, 0, 1) ? NULL : sv_arena_strdup(arena, PQgetvalue(r, 0, 1));
    PQclear(r);
    if (!sv_sync_supported(platform)) {
        snprintf(error, errlen, "syncing %.40s handles is not supported", platform);
        return SV_ERROR;
    }

    sv_job_sync_state st = { .db = db, .job = job, .handle_id = handle_id, .platform = platform,
                             .env = { .cfg = cfg, .vault = vault, .db = db, .arena = arena, .request_id = "-" },
                             .seen = json_object_new_object() };
    sv_sync_run run = { .cfg = cfg, .platform = platform, .account_id = account, .deadline_ms = deadline,
                        .max_pages = cfg->sync_max_pages, .token = sv_job_sync_token,
                        .page = sv_job_sync_page, .arg = &st };
    int rc = sv_sync_fetch(&run, error, errlen);

    long long removed = 0, kept = 0;
    if (rc == SV_OK && run.complete && sv_job_sync_confirm(&st, &run, &kept, error, errlen) != SV_OK)
        rc = SV_ERROR;
    if (rc == SV_OK && run.complete) {
        json_object *ids = json_object_new_array();
        json_object_object_foreach(st.seen, key, val) {
            (void)val;
            json_object_array_add(ids, json_object_new_string(key));
        }
        const char *rv[3] = { handle_id, job->user_id, json_object_to_json_string_ext(ids, JSON_C_TO_STRING_PLAIN) };
        r = sv_job_sql(db, remove_sql, 3, rv, error, errlen);
        if (r == NULL)
            rc = SV_ERROR;
        else
            removed = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        if (r != NULL)
            PQclear(r);
        json_object_put(ids);
    }
    json_object_put(st.seen);

    json_object *res = json_object_new_object();
    json_object_object_add(res, "handle_id", json_object_new_string(handle_id));
    json_object_object_add(res, "platform", json_object_new_string(platform));
    json_object_object_add(res, "new", json_object_new_int64(st.n_new));
    json_object_object_add(res, "updated", json_object_new_int64(st.n_updated));
    json_object_object_add(res, "unchanged", json_object_new_int64(st.n_unchanged));
    json_object_object_add(res, "removed", json_object_new_int64(removed));
    if (kept > 0)
        json_object_object_add(res, "kept_unlisted", json_object_new_int64(kept));
    json_object_object_add(res, "pages", json_object_new_int(run.pages));
    json_object_object_add(res, "complete", json_object_new_boolean(rc == SV_OK && run.complete));
    if (run.stopped != NULL)
        json_object_object_add(res, "stopped", json_object_new_string(run.stopped));
    if (run.refreshed)
        json_object_object_add(res, "token_refreshed", json_object_new_boolean(1));
    *result = res;
    return rc;
}
