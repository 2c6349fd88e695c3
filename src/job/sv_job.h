/* A job: what was accepted (its descriptor), and how it ends. The
 * descriptor is what the worker writes into the spool and what
 * streamvibe-job reads back; its text form is JSON:
 *   {"job_id","user_id","type":"platform_sync|ai_enhancement|seo_submission",
 *    "payload":{…},"accepted_ms":…,"time_limit_s":…}
 * plus, once the supervisor knows it, "outcome":{"status","result","error",
 * "started_ms","completed_ms"} for a finish the database did not take. */
#ifndef SV_JOB_H
#define SV_JOB_H

#include <stdint.h>

#include <json-c/json.h>

#include "core/sv_config.h"
#include "core/sv_err.h"
#include "db/sv_db.h"

typedef enum { SV_JOB_SYNC, SV_JOB_AI, SV_JOB_SEO } sv_job_kind;

/* A job is not a request someone waits on to connect: it waits longer
 * for a busy database than a worker does (3 s) before failing. */
#define SV_JOB_CONNECT_TIMEOUT_MS 15000

typedef struct sv_job {
    char         job_id[37];
    char         user_id[37];
    sv_job_kind  kind;
    json_object *payload;       /* owned */
    int64_t      accepted_ms;   /* wall clock */
    int          time_limit_s;
    json_object *outcome;       /* owned; NULL until recorded */
} sv_job;

/* The audit_log job_type of a kind ("platform_sync", …). */
const char *sv_job_type_name(sv_job_kind kind);
/* SV_OK with *kind for a job_type name, else SV_ERROR. */
int sv_job_kind_from_name(const char *name, sv_job_kind *kind);
/* The wall-clock limit configured for a kind, seconds. */
int sv_job_time_limit(const sv_config *cfg, sv_job_kind kind);

/* The descriptor as JSON text (malloc'd, caller frees). */
char *sv_job_to_json(const sv_job *job);
/* Parses a descriptor: SV_OK with *job filled (free with sv_job_clear),
 * or SV_ERROR. */
int sv_job_from_json(const char *text, sv_job *job);
void sv_job_clear(sv_job *job);

/* A job's end, as sql/040_jobs.sql records it. */
typedef struct sv_job_end {
    const char  *status;        /* "completed", "failed", "interrupted" */
    json_object *result;        /* may be NULL */
    const char  *error;         /* NULL when completed */
    int64_t      started_ms, completed_ms;
} sv_job_end;

/* Writes the job's audit_log row through public.sv_job_finish (which
 * refunds the quota of a job that did not complete, settles a sync's
 * handle and wakes whoever waits on the job). *written is 1 when this
 * call wrote the row, 0 when someone already had. SV_OK, or SV_ERROR
 * when the database could not be reached or refused (err filled). */
int sv_job_finish(sv_db *db, const sv_job *job, const sv_job_end *end, int *written,
                  sv_error *err);

/* Runs sql as service_role through the job launcher when it takes it,
 * else on db (the work of each kind). The result (caller PQclears) when
 * it succeeded, else NULL with the reason in error: a statement the
 * launcher took but whose answer was lost (the launcher killed, or
 * stopped) is not sent again, since it may have run. */
PGresult *sv_job_sql(sv_db *db, const char *sql, int n, const char *const *values, char *error,
                     size_t errlen);

/* The same for a statement that may run twice with the effect of once (a
 * read, or a write such as public.sv_job_store_suggestion): after a
 * lost answer it is sent once more, on db. */
PGresult *sv_job_sql_idempotent(sv_db *db, const char *sql, int n, const char *const *values, char *error,
                                size_t errlen);

#endif
