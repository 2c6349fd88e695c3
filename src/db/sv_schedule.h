/* Scheduled work the operator runs or pg_cron runs: the monthly quota
 * reset (sql/035_quota_reset_due.sql). Used by streamvibe-admin. */
#ifndef SV_SCHEDULE_H
#define SV_SCHEDULE_H

#include <stdio.h>
#include <libpq-fe.h>

/* Resets every quota whose period has ended (public.reset_due_quotas())
 * and stores how many users' quotas were reset in *count. SV_OK, or
 * SV_ERROR with a message in err. */
int sv_quota_reset_due(PGconn *conn, long *count, char *err, size_t errlen);

/* Writes one line to out saying whether the monthly reset is scheduled
 * in pg_cron, and if not, why and what to do:
 *   schedule  reset-monthly-quotas  scheduled in pg_cron: 0 0 1 * *  SELECT public.reset_due_quotas()
 *   schedule  reset-monthly-quotas  not scheduled: pg_cron is not installed in this database (...)
 * Read-only. SV_OK, or SV_ERROR with a message in err. */
int sv_schedule_status(PGconn *conn, FILE *out, char *err, size_t errlen);

#endif
