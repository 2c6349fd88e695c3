#include "db/sv_schedule.h"

#include <stdlib.h>
#include <string.h>

#include "core/sv_err.h"

#define SV_SCHEDULE_JOB "reset-monthly-quotas"

/* PostgreSQL's primary message of a failed result, without its newline. */
static void sv_schedule_err(const char *what, PGconn *conn, PGresult *res, char *err, size_t errlen)
{
    const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (msg == NULL)
        msg = PQerrorMessage(conn);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        n--;
    snprintf(err, errlen, "%s: %.*s", what, (int)n, msg);
}

int sv_quota_reset_due(PGconn *conn, long *count, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, "SELECT public.reset_due_quotas()");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (state != NULL && strcmp(state, "42883") == 0)
            snprintf(err, errlen, "public.reset_due_quotas() does not exist: run streamvibe-admin migrate first");
        else
            sv_schedule_err("reset_due_quotas", conn, res, err, errlen);
        PQclear(res);
        return SV_ERROR;
    }
    *count = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return SV_OK;
}

int sv_schedule_status(PGconn *conn, FILE *out, char *err, size_t errlen)
{
    /* One round trip that never names cron.job unless it exists: the
     * schema is there only with the extension. */
    PGresult *res = PQexec(conn,
        "SELECT pg_catalog.to_regprocedure('public.reset_due_quotas()') IS NOT NULL,"
        " EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron'),"
        " EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'pg_cron')");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        sv_schedule_err("schedule status", conn, res, err, errlen);
        PQclear(res);
        return SV_ERROR;
    }
    int have_function = PQgetvalue(res, 0, 0)[0] == 't';
    int have_cron = PQgetvalue(res, 0, 1)[0] == 't';
    int cron_available = PQgetvalue(res, 0, 2)[0] == 't';
    PQclear(res);

    const char *label = "schedule  " SV_SCHEDULE_JOB "  ";
    if (!have_function) {
        fprintf(out, "%snot scheduled: the quota reset migration is not applied yet\n", label);
        return SV_OK;
    }
    if (!have_cron) {
        fprintf(out,
                "%snot scheduled: pg_cron is %s in this database (quotas still reset lazily;"
                " run `streamvibe-admin quota reset-due` monthly from cron, or install pg_cron"
                " and SELECT public.sv_schedule_quota_reset())\n",
                label, cron_available ? "not created" : "not installed");
        return SV_OK;
    }
    const char *param[1] = { SV_SCHEDULE_JOB };
    res = PQexecParams(conn,
                       "SELECT schedule, command, active FROM cron.job WHERE jobname = $1"
                       " ORDER BY jobid LIMIT 1",
                       1, NULL, param, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        sv_schedule_err("cron.job", conn, res, err, errlen);
        PQclear(res);
        return SV_ERROR;
    }
    if (PQntuples(res) == 0)
        fprintf(out, "%snot scheduled: pg_cron has no such job (SELECT public.sv_schedule_quota_reset())\n",
                label);
    else
        fprintf(out, "%sscheduled in pg_cron%s: %s  %s\n", label,
                PQgetvalue(res, 0, 2)[0] == 't' ? "" : " (inactive)", PQgetvalue(res, 0, 0),
                PQgetvalue(res, 0, 1));
    PQclear(res);
    return SV_OK;
}
