#include "job/sv_job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sv_json.h"
#include "core/sv_log.h"
#include "job/sv_job_relay.h"

static const char *const sv_job_names[] = { "platform_sync", "ai_enhancement", "seo_submission" };

const char *sv_job_type_name(sv_job_kind kind)
{
    return sv_job_names[kind];
}

int sv_job_kind_from_name(const char *name, sv_job_kind *kind)
{
    for (int i = 0; i < 3; i++)
        if (name != NULL && strcmp(name, sv_job_names[i]) == 0) {
            *kind = (sv_job_kind)i;
            return SV_OK;
        }
    return SV_ERROR;
}

int sv_job_time_limit(const sv_config *cfg, sv_job_kind kind)
{
    switch (kind) {
    case SV_JOB_SYNC:
        return cfg->job_time_limit_sync;
    case SV_JOB_AI:
        return cfg->job_time_limit_ai;
    case SV_JOB_SEO:
        break;
    }
    return cfg->job_time_limit_seo;
}

char *sv_job_to_json(const sv_job *job)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "job_id", json_object_new_string(job->job_id));
    json_object_object_add(o, "user_id", json_object_new_string(job->user_id));
    json_object_object_add(o, "type", json_object_new_string(sv_job_type_name(job->kind)));
    json_object_object_add(o, "payload", json_object_get(job->payload));
    json_object_object_add(o, "accepted_ms", json_object_new_int64(job->accepted_ms));
    json_object_object_add(o, "time_limit_s", json_object_new_int(job->time_limit_s));
    if (job->outcome != NULL)
        json_object_object_add(o, "outcome", json_object_get(job->outcome));
    char *text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return text;
}

static int sv_job_copy_id(char *dst, json_object *o, const char *key)
{
    const char *s;
    size_t len;
    if (sv_json_string(o, key, &s, &len) != 1 || len != 36)
        return SV_ERROR;
    memcpy(dst, s, 37);
    return SV_OK;
}

int sv_job_from_json(const char *text, sv_job *job)
{
    json_object *o, *v;
    const char *why, *type;

    memset(job, 0, sizeof(*job));
    if (sv_json_parse(text, strlen(text), &o, &why) != SV_OK)
        return SV_ERROR;
    int ok = json_object_is_type(o, json_type_object) &&
             sv_job_copy_id(job->job_id, o, "job_id") == SV_OK &&
             sv_job_copy_id(job->user_id, o, "user_id") == SV_OK &&
             sv_json_string(o, "type", &type, NULL) == 1 &&
             sv_job_kind_from_name(type, &job->kind) == SV_OK &&
             json_object_object_get_ex(o, "payload", &v) && json_object_is_type(v, json_type_object);
    if (ok) {
        job->payload = json_object_get(v);
        if (json_object_object_get_ex(o, "accepted_ms", &v))
            job->accepted_ms = json_object_get_int64(v);
        if (json_object_object_get_ex(o, "time_limit_s", &v))
            job->time_limit_s = json_object_get_int(v);
        if (json_object_object_get_ex(o, "outcome", &v) && json_object_is_type(v, json_type_object))
            job->outcome = json_object_get(v);
    }
    json_object_put(o);
    return ok ? SV_OK : SV_ERROR;
}

void sv_job_clear(sv_job *job)
{
    json_object_put(job->payload);
    json_object_put(job->outcome);
    memset(job, 0, sizeof(*job));
}

/* Epoch milliseconds as a timestamptz literal PostgreSQL reads. */
static void sv_job_timestamp(char *out, size_t len, int64_t ms)
{
    snprintf(out, len, "%lld.%03d", (long long)(ms / 1000), (int)(ms % 1000));
}

int sv_job_finish(sv_db *db, const sv_job *job, const sv_job_end *end, int *written, sv_error *err)
{
    static const char sql[] =
        "SELECT public.sv_job_finish($1::uuid, $2::uuid, $3::public.job_type, $4::public.job_status, "
        "$5::jsonb, $6::jsonb, $7, to_timestamp($8::double precision), "
        "to_timestamp($9::double precision))";
    char started[32], completed[32];
    PGresult *r = NULL;

    *written = 0;
    sv_job_timestamp(started, sizeof(started), end->started_ms);
    sv_job_timestamp(completed, sizeof(completed), end->completed_ms);
    const char *values[9] = {
        job->job_id, job->user_id, sv_job_type_name(job->kind), end->status,
        json_object_to_json_string_ext(job->payload, JSON_C_TO_STRING_PLAIN),
        end->result ? json_object_to_json_string_ext(end->result, JSON_C_TO_STRING_PLAIN) : NULL,
        end->error, started, completed,
    };
    char why[320];
    sv_job_relay_outcome how;
    r = sv_job_relay_sql(sql, 9, values, why, sizeof(why), &how);
    if (r == NULL && how == SV_JOB_RELAY_LOST)   /* finishing twice is harmless: try again */
        return sv_fail(err, 503, NULL, why);
    if (r == NULL && how == SV_JOB_RELAY_FAILED) {
        sv_log_error("job_finish_failed", "job_id=%s error=\"%s\"", job->job_id, why);
        return sv_fail(err, 500, NULL, "the database refused the job's end");
    }
    if (r == NULL &&
        sv_db_query_as(db, "service_role", "{\"role\":\"service_role\"}", sql, 9, values, &r) != SV_OK)
        return sv_db_unavailable(db, 1, err);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        sv_log_error("job_finish_failed", "job_id=%s sqlstate=%s", job->job_id,
                     PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "-");
        PQclear(r);
        return sv_fail(err, 500, NULL, "the database refused the job's end");
    }
    *written = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return SV_OK;
}

static const char sv_job_service_claims[] = "{\"role\":\"service_role\"}";

/* sql on the job's own connection to the database. */
static PGresult *sv_job_sql_direct(sv_db *db, const char *sql, int n, const char *const *values, char *error,
                                   size_t errlen)
{
    PGresult *r = NULL;
    if (sv_db_query_as(db, "service_role", sv_job_service_claims, sql, n, values, &r) != SV_OK) {
        snprintf(error, errlen, "the database is unavailable: %s", db->last_error);
        return NULL;
    }
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
        snprintf(error, errlen, "database error %s: %.200s",
                 PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "-",
                 PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : "");
        PQclear(r);
        return NULL;
    }
    return r;
}

PGresult *sv_job_sql(sv_db *db, const char *sql, int n, const char *const *values, char *error,
                     size_t errlen)
{
    sv_job_relay_outcome how;
    PGresult *r = sv_job_relay_sql(sql, n, values, error, errlen, &how);
    if (r != NULL || how != SV_JOB_RELAY_UNREACHABLE)
        return r;
    return sv_job_sql_direct(db, sql, n, values, error, errlen);
}

PGresult *sv_job_sql_idempotent(sv_db *db, const char *sql, int n, const char *const *values, char *error,
                                size_t errlen)
{
    sv_job_relay_outcome how;
    PGresult *r = sv_job_relay_sql(sql, n, values, error, errlen, &how);
    if (r != NULL || how == SV_JOB_RELAY_FAILED)
        return r;
    /* Lost: the launcher that did not answer is not asked again. */
    if (how == SV_JOB_RELAY_LOST)
        sv_log_warn("job_relay_lost", "msg=\"sending the statement again on the job's own connection\" "
                    "error=\"%s\"", error);
    return sv_job_sql_direct(db, sql, n, values, error, errlen);
}
