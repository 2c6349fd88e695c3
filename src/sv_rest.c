#include "sv_rest.h"

#include <stdlib.h>
#include <string.h>

#include "sv_log.h"
#include "sv_worker.h"

/* Maps a failed statement to PostgREST's error body and status. */
static void sv_rest_db_error(sv_worker *w, sv_request *req, sv_response *res, PGresult *result,
                             int anon)
{
    if (result == NULL) {
        sv_response_header(res, "Retry-After",
                           sv_arena_printf(req->arena, "%d", w->cfg->retry_after));
        sv_response_error(res, 503, "PGRST000", "Database connection unavailable",
                          w->db.last_error, NULL);
        return;
    }
    const char *state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    const char *message = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
    const char *detail = PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL);
    const char *hint = PQresultErrorField(result, PG_DIAG_MESSAGE_HINT);
    sv_response_error(res, sv_db_sqlstate_http_status(state, anon), state,
                      message ? message : "database error", detail, hint);
}

/* GET /rest/v1/platforms as the anon role. The full PostgREST query
 * language (select, filters, order, ranges) is not built yet, so any
 * query parameter is refused rather than silently ignored. */
static void sv_rest_platforms(sv_worker *w, sv_request *req, sv_response *res)
{
    static const char sql[] =
        "SELECT coalesce(json_agg(t), '[]')::text, count(*) "
        "FROM (SELECT * FROM public.platforms ORDER BY name) t";
    const char *select = sv_request_query_param(req, "select");
    int only_select_star = select != NULL && strcmp(select, "*") == 0 && strchr(req->query, '&') == NULL;

    if (req->query[0] != '\0' && !only_select_star) {
        sv_response_error(res, 400, "PGRST100", "Query parameters are not supported on this endpoint yet",
                          req->query, "Only select=* is accepted");
        return;
    }

    PGresult *result = NULL;
    int rc = sv_db_query_as(&w->db, "anon", "{\"role\":\"anon\"}", sql, 0, NULL, &result);
    if (rc != SV_DB_OK || PQresultStatus(result) != PGRES_TUPLES_OK) {
        sv_rest_db_error(w, req, res, result, 1);
        if (result != NULL)
            PQclear(result);
        return;
    }
    long rows = strtol(PQgetvalue(result, 0, 1), NULL, 10);
    sv_response_header(res, "Content-Range",
                       rows > 0 ? sv_arena_printf(req->arena, "0-%ld/*", rows - 1) : "*/*");
    res->status = 200;
    sv_buf_append(&res->body, PQgetvalue(result, 0, 0), (size_t)PQgetlength(result, 0, 0));
    PQclear(result);
}

void sv_rest_table(sv_worker *w, sv_request *req, sv_response *res)
{
    if (strcmp(req->path, "/rest/v1/platforms") == 0 && (req->method & (SV_HTTP_GET | SV_HTTP_HEAD))) {
        sv_rest_platforms(w, req, res);
        return;
    }
    sv_response_error(res, 404, "PGRST205", "Could not find the table in the schema cache",
                      req->path, NULL);
}

void sv_rest_rpc(sv_worker *w, sv_request *req, sv_response *res)
{
    (void)w;
    sv_response_error(res, 404, "PGRST202", "Could not find the function in the schema cache",
                      req->path, NULL);
}

void sv_rest_openapi(sv_worker *w, sv_request *req, sv_response *res)
{
    (void)w; (void)req;
    sv_response_error(res, 501, "SV501", "The OpenAPI description is not implemented yet", NULL, NULL);
}
