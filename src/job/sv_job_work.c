#include "job/sv_job_work.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sv_json.h"
#include "core/sv_log.h"
#include "db/sv_db.h"
#include "job/sv_job_sync.h"
#include "platform/sv_ai.h"
#include "platform/sv_indexnow.h"

static const char *sv_job_payload_string(const sv_job *job, const char *key)
{
    const char *s;
    return sv_json_string(job->payload, key, &s, NULL) == 1 ? s : NULL;
}

/* ai: one suggestion for one content item, stored in ai_content_suggestions. */
static int sv_job_ai(const sv_config *cfg, sv_db *db, sv_arena *arena, const sv_job *job, json_object **result,
                     char *error, size_t errlen)
{
    static const char get_sql[] =
        "SELECT title, description, to_json(tags)::text FROM public.handle_content "
        "WHERE id = $1::uuid AND user_id = $2::uuid AND deleted_at IS NULL";
    /* Once per job (sql/044): sent again after a lost answer, it returns
     * the suggestion the first sending stored. */
    static const char put_sql[] =
        "SELECT public.sv_job_store_suggestion($8::uuid, $1::uuid, $2::uuid, $3, $4, $5::jsonb, $6, $7)::text";
    const char *content_id = sv_job_payload_string(job, "contentId");
    if (content_id == NULL) {
        snprintf(error, errlen, "the job has no contentId");
        return SV_ERROR;
    }
    const char *gv[2] = { content_id, job->user_id };
    PGresult *r = sv_job_sql_idempotent(db, get_sql, 2, gv, error, errlen);
    if (r == NULL)
        return SV_ERROR;
    if (PQntuples(r) != 1) {
        PQclear(r);
        snprintf(error, errlen, "the content no longer exists");
        return SV_ERROR;
    }
    json_object *tags = NULL;
    const char *why;
    sv_json_parse(PQgetvalue(r, 0, 2), (size_t)PQgetlength(r, 0, 2), &tags, &why);
    json_object *suggestion = NULL;
    int rc = sv_ai_suggest(cfg, arena, PQgetisnull(r, 0, 0) ? NULL : PQgetvalue(r, 0, 0),
                           PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1), tags, &suggestion,
                           error, errlen);
    json_object_put(tags);
    PQclear(r);
    if (rc != SV_OK)
        return SV_ERROR;

    json_object *title, *description, *stags;
    json_object_object_get_ex(suggestion, "title", &title);
    json_object_object_get_ex(suggestion, "description", &description);
    json_object_object_get_ex(suggestion, "tags", &stags);
    const char *pv[8] = { content_id, job->user_id, json_object_get_string(title),
                          json_object_get_string(description),
                          json_object_to_json_string_ext(stags, JSON_C_TO_STRING_PLAIN),
                          cfg->ai_model, SV_AI_PROMPT_VERSION, job->job_id };
    r = sv_job_sql_idempotent(db, put_sql, 8, pv, error, errlen);
    if (r == NULL) {
        json_object_put(suggestion);
        return SV_ERROR;
    }
    json_object_object_add(suggestion, "suggestion_id", json_object_new_string(PQgetvalue(r, 0, 0)));
    json_object_object_add(suggestion, "content_id", json_object_new_string(content_id));
    PQclear(r);
    *result = suggestion;
    return SV_OK;
}

/* seo: the content's public URLs submitted via IndexNow. Content that
 * stopped being public since the job was accepted is left out. */
static int sv_job_seo(const sv_config *cfg, sv_db *db, sv_arena *arena, const sv_job *job, json_object **result,
                      char *error, size_t errlen)
{
    static const char sql[] =
        "SELECT c.id::text FROM public.handle_content c "
        "JOIN public.account_handles h ON h.id = c.handle_id "
        "WHERE c.id = ANY (ARRAY(SELECT jsonb_array_elements_text($1::jsonb))::uuid[]) "
        "AND c.user_id = $2::uuid AND c.deleted_at IS NULL AND c.visibility = 'public' "
        "AND h.visibility = 'public' AND h.active_status = 'active' ORDER BY c.id";
    json_object *ids;
    if (!json_object_object_get_ex(job->payload, "contentIds", &ids) ||
        !json_object_is_type(ids, json_type_array)) {
        snprintf(error, errlen, "the job has no contentIds");
        return SV_ERROR;
    }
    const char *v[2] = { json_object_to_json_string_ext(ids, JSON_C_TO_STRING_PLAIN), job->user_id };
    PGresult *r = sv_job_sql_idempotent(db, sql, 2, v, error, errlen);
    if (r == NULL)
        return SV_ERROR;
    size_t n = (size_t)PQntuples(r);
    char **urls = calloc(n + 1, sizeof(*urls));
    for (size_t i = 0; urls != NULL && i < n; i++)
        urls[i] = sv_indexnow_url(cfg, PQgetvalue(r, (int)i, 0));
    PQclear(r);
    int rc = SV_ERROR;
    json_object *results = NULL;
    if (urls == NULL || n == 0) {
        snprintf(error, errlen, "none of the content is public any more");
    } else {
        rc = sv_indexnow_submit(cfg, arena, urls, n, &results, error, errlen);
    }
    for (size_t i = 0; urls != NULL && i < n; i++)
        free(urls[i]);
    free(urls);
    *result = json_object_new_object();
    json_object_object_add(*result, "urls", results ? results : json_object_new_array());
    json_object_object_add(*result, "submitted", json_object_new_int((int)(rc == SV_OK ? n : 0)));
    json_object_object_add(*result, "skipped",
                           json_object_new_int((int)json_object_array_length(ids) - (int)n));
    return rc;
}

int sv_job_work(const sv_config *cfg, const sv_vault *vault, const sv_job *job, json_object **result,
                char *error, size_t errlen)
{
    sv_db db;
    sv_arena arena;
    int rc = SV_ERROR;

    *result = NULL;
    sv_arena_init(&arena, 64 * 1024);
    sv_db_init(&db, cfg->database_url);
    sv_db_set_application_name(&db, "streamvibe-job");
    sv_db_set_connect_timeout(&db, SV_JOB_CONNECT_TIMEOUT_MS);
    switch (job->kind) {
    case SV_JOB_AI:
        rc = sv_job_ai(cfg, &db, &arena, job, result, error, errlen);
        break;
    case SV_JOB_SEO:
        rc = sv_job_seo(cfg, &db, &arena, job, result, error, errlen);
        break;
    case SV_JOB_SYNC:
        rc = sv_job_sync(cfg, vault, &db, &arena, job, result, error, errlen);
        break;
    }
    sv_db_close(&db);
    sv_arena_free(&arena);
    return rc;
}
