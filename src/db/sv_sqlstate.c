#include "db/sv_sqlstate.h"

#include <stdlib.h>
#include <string.h>

#include "core/sv_log.h"

int sv_sqlstate_http_status(const char *sqlstate, int anon)
{
    if (sqlstate == NULL || strlen(sqlstate) != 5)
        return 500;
    if (strcmp(sqlstate, "23503") == 0 || strcmp(sqlstate, "23505") == 0)
        return 409;
    if (strcmp(sqlstate, "25006") == 0)
        return 405;
    if (strcmp(sqlstate, "42883") == 0 || strcmp(sqlstate, "42P01") == 0)
        return 404;
    if (strcmp(sqlstate, "42501") == 0)
        return anon ? 401 : 403;
    if (strcmp(sqlstate, "53400") == 0)
        return 500;
    if (strcmp(sqlstate, "57014") == 0)
        return 504; /* statement_timeout: the request ran too long */
    if (strcmp(sqlstate, "P0001") == 0)
        return 400;
    if (strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "53", 2) == 0 ||
        strncmp(sqlstate, "54", 2) == 0 || strncmp(sqlstate, "55", 2) == 0 ||
        strncmp(sqlstate, "57", 2) == 0 || strncmp(sqlstate, "58", 2) == 0)
        return 503;
    if (strncmp(sqlstate, "0L", 2) == 0 || strncmp(sqlstate, "0P", 2) == 0 ||
        strncmp(sqlstate, "28", 2) == 0)
        return 403;
    if (strncmp(sqlstate, "09", 2) == 0 || strncmp(sqlstate, "25", 2) == 0 ||
        strncmp(sqlstate, "2D", 2) == 0 || strncmp(sqlstate, "38", 2) == 0 ||
        strncmp(sqlstate, "39", 2) == 0 || strncmp(sqlstate, "3B", 2) == 0 ||
        strncmp(sqlstate, "40", 2) == 0 || strncmp(sqlstate, "XX", 2) == 0 ||
        strncmp(sqlstate, "F0", 2) == 0 || strncmp(sqlstate, "HV", 2) == 0 ||
        strncmp(sqlstate, "P0", 2) == 0)
        return 500;
    return 400;
}

static const char *sv_sqlstate_field(sv_arena *arena, const PGresult *r, int field)
{
    const char *v = PQresultErrorField(r, field);
    return v != NULL ? sv_arena_strdup(arena, v) : NULL;
}

int sv_sqlstate_postgrest(sv_arena *arena, const PGresult *r, int anon, const char *request_id,
                          sv_error *err)
{
    const char *state = sv_sqlstate_field(arena, r, PG_DIAG_SQLSTATE);
    const char *message = sv_sqlstate_field(arena, r, PG_DIAG_MESSAGE_PRIMARY);
    int status;
    if (state != NULL && state[0] == 'P' && state[1] == 'T' && state[2] >= '1' && state[2] <= '5' &&
        state[3] >= '0' && state[3] <= '9' && state[4] >= '0' && state[4] <= '9' && state[5] == '\0') {
        status = atoi(state + 2);
        if (strcmp(state, "PT406") == 0)
            state = "PGRST116";
    } else {
        status = sv_sqlstate_http_status(state, anon);
    }
    if (status >= 500)
        sv_log_warn("rest_db_error", "sqlstate=%s status=%d request_id=%s", state ? state : "-",
                    status, request_id);
    return sv_fail_details(err, status, state, message ? message : "database error",
                           sv_sqlstate_field(arena, r, PG_DIAG_MESSAGE_DETAIL),
                           sv_sqlstate_field(arena, r, PG_DIAG_MESSAGE_HINT));
}

int sv_sqlstate_gotrue(const PGresult *r, const char *step, const char *request_id,
                       sv_error *err)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    char qmsg[256];

    sv_log_error("auth_db_error", "step=%s sqlstate=%s message=%s request_id=%s", step,
                 state ? state : "-",
                 sv_log_quote(PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY), qmsg, sizeof(qmsg)),
                 request_id);
    if (state != NULL && strncmp(state, "22", 2) == 0)
        return sv_fail(err, 400, "validation_failed", "Invalid input");
    if (state != NULL && (strncmp(state, "08", 2) == 0 || strncmp(state, "57", 2) == 0 ||
                          strncmp(state, "53", 2) == 0))
        return sv_fail(err, 503, "unexpected_failure", "Database unavailable");
    return sv_fail(err, 500, "unexpected_failure", "Unexpected failure");
}
