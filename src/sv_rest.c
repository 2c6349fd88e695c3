/* /rest/v1: authenticate, translate (sv_rest_query.c), run the one
 * statement as the caller's role in one pipelined round trip, and map the
 * result row (total, page, body) to PostgREST's response.
 *
 * Choices where PostgREST offers no rule or where we differ on purpose:
 *   - DELETE on handle_content is a soft delete (UPDATE ... SET deleted_at
 *     = now() WHERE <filters> AND deleted_at IS NULL); clients have no
 *     DELETE privilege on content at all.
 *   - GET/HEAD on handle_content hide soft-deleted rows unless a filter
 *     (plain, or inside or=/and=) names deleted_at: owners still find them
 *     with deleted_at=not.is.null and restore them with PATCH
 *     {"deleted_at": null}. It also lets the partial indexes
 *     (WHERE deleted_at IS NULL) serve the default listing.
 *   - limit/offset/order on PATCH and DELETE are refused (400) instead of
 *     being silently ignored.
 *   - Prefer: count=planned and count=estimated are answered exactly.
 *   - The schema cache is loaded by each worker; it reloads on PostgREST's
 *     NOTIFY pgrst, 'reload schema' (sent by streamvibe-admin migrate)
 *     and after a reconnect. */
#include "sv_rest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "sv_auth.h"
#include "sv_log.h"
#include "sv_rest_query.h"
#include "sv_worker.h"

/* --- schema cache ---------------------------------------------------------
 *
 * The exposed tables' columns and the exposed functions' signatures, read
 * from pg_catalog by the first request a worker serves, and again by the
 * first after a schema change was announced on the database connection
 * (or the connection was replaced, which may have missed one). Only
 * names listed here are ever reachable. */

static const struct {
    const char *name;
    unsigned    flags;
} sv_rest_exposed_tables[] = {
    { "platforms", 0 },
    { "account_handles", 0 },
    { "handle_content", SV_REST_TABLE_SOFT_DELETE },
    { "ai_content_suggestions", 0 },
    { "content_edit_history", 0 },
    { "audit_log", 0 },
    { "subscription_settings", 0 },
    { "quota_usage_history", 0 },
    { "platform_connections", SV_REST_TABLE_VIEW },
};
#define SV_REST_NTABLES (sizeof(sv_rest_exposed_tables) / sizeof(sv_rest_exposed_tables[0]))

/* increment_quota/decrement_quota are listed because the V2 design calls
 * them through supabase.rpc() with the service key; EXECUTE is granted to
 * service_role only, so users get 403 and anon 401 from PostgreSQL. */
static const char *const sv_rest_exposed_functions[] = { "check_quota", "quota_status",
                                                         "search_content", "increment_quota",
                                                         "decrement_quota" };
#define SV_REST_NFUNCTIONS (sizeof(sv_rest_exposed_functions) / sizeof(sv_rest_exposed_functions[0]))

typedef struct sv_rest_schema {
    int                  loaded;
    unsigned long        db_generation;  /* the connection it was loaded on */
    unsigned long        db_notified;    /* reload messages seen by then */
    sv_arena             arena;
    sv_rest_table_def    tables[SV_REST_NTABLES];
    int                  ntables;
    sv_rest_function_def functions[SV_REST_NFUNCTIONS];
    int                  nfunctions;
} sv_rest_schema;

static sv_rest_schema sv_rest_cache;

static const char sv_rest_columns_sql[] =
    "SELECT c.relname, a.attname, a.atttypid::pg_catalog.regtype::text, "
    "       coalesce(a.attnum = ANY (i.indkey::int2[]), false), a.attgenerated <> '', "
    "       a.attnotnull, a.atthasdef, "
    "       CASE WHEN a.attgenerated = '' THEN pg_catalog.pg_get_expr(d.adbin, d.adrelid) END "
    "  FROM pg_catalog.pg_class c "
    "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' "
    "  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum "
    "  LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary "
    " WHERE c.relname = ANY ($1::text[]) AND c.relkind IN ('r', 'v', 'p', 'm') "
    " ORDER BY c.relname, a.attnum";

static const char sv_rest_functions_sql[] =
    "SELECT p.proname, p.proretset, p.prorettype::pg_catalog.regtype::text, p.pronargs, "
    "       p.pronargdefaults, "
    "       coalesce((SELECT pg_catalog.string_agg(coalesce(p.proargnames[k + 1], ''), ',' ORDER BY k) "
    "                   FROM pg_catalog.generate_series(0, p.pronargs - 1) k), ''), "
    "       coalesce((SELECT pg_catalog.string_agg(p.proargtypes[k]::pg_catalog.regtype::text, ',' ORDER BY k) "
    "                   FROM pg_catalog.generate_series(0, p.pronargs - 1) k), '') "
    "  FROM pg_catalog.pg_proc p "
    "  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace AND n.nspname = 'public' "
    " WHERE p.proname = ANY ($1::text[]) "
    " ORDER BY p.proname, p.oid";

/* Splits a comma list into n arena strings. */
static const char **sv_rest_split(sv_arena *a, const char *s, int n)
{
    const char **out = sv_arena_calloc(a, sizeof(*out) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        out[i] = sv_arena_strndup(a, s, len);
        s = comma ? comma + 1 : s + len;
    }
    return out;
}

static void sv_rest_db_error(sv_worker *w, sv_request *req, sv_response *res, PGresult *result,
                             int anon);

/* Loads the cache on first use. SV_OK, or SV_ERROR with res written. */
static int sv_rest_load(sv_worker *w, sv_request *req, sv_response *res)
{
    sv_rest_schema *s = &sv_rest_cache;
    /* Connect first: a new connection may have missed an announcement. */
    if (sv_db_ensure(&w->db) != SV_DB_OK) {
        sv_rest_db_error(w, req, res, NULL, 0);
        return SV_ERROR;
    }
    if (s->loaded && s->db_generation == w->db.generation && s->db_notified == w->db.notified)
        return SV_OK;
    /* Taken before the catalog is read: an announcement that arrives with
     * these queries' results may be of a change they did not see yet (DDL
     * and NOTIFY committed while the load waited on its lock), so it must
     * trigger another load. */
    unsigned long generation = w->db.generation, notified = w->db.notified;

    sv_buf names;
    sv_buf_init(&names, req->arena, 256);
    sv_buf_puts(&names, "{");
    for (size_t i = 0; i < SV_REST_NTABLES; i++)
        sv_buf_printf(&names, "%s%s", i ? "," : "", sv_rest_exposed_tables[i].name);
    sv_buf_puts(&names, "}");
    sv_buf fnames;
    sv_buf_init(&fnames, req->arena, 128);
    sv_buf_puts(&fnames, "{");
    for (size_t i = 0; i < SV_REST_NFUNCTIONS; i++)
        sv_buf_printf(&fnames, "%s%s", i ? "," : "", sv_rest_exposed_functions[i]);
    sv_buf_puts(&fnames, "}");

    PGresult *cols = NULL, *fns = NULL;
    const char *p1[1] = { names.data };
    const char *p2[1] = { fnames.data };
    /* As the login role ("none" resets to it) but under the request
     * statement timeout: pg_get_expr locks each table, and a table held
     * by a migration must cost this request a 504, not the worker. */
    if (sv_db_query_as(&w->db, "none", "{}", sv_rest_columns_sql, 1, p1, &cols) != SV_DB_OK ||
        PQresultStatus(cols) != PGRES_TUPLES_OK) {
        sv_rest_db_error(w, req, res, cols, 0);
        if (cols)
            PQclear(cols);
        return SV_ERROR;
    }
    if (sv_db_query_as(&w->db, "none", "{}", sv_rest_functions_sql, 1, p2, &fns) != SV_DB_OK ||
        PQresultStatus(fns) != PGRES_TUPLES_OK) {
        sv_rest_db_error(w, req, res, fns, 0);
        PQclear(cols);
        if (fns)
            PQclear(fns);
        return SV_ERROR;
    }

    if (s->loaded)
        sv_arena_free(&s->arena);
    s->loaded = 0;
    sv_arena_init(&s->arena, 16384);
    sv_arena *a = &s->arena;
    int nrows = PQntuples(cols);
    s->ntables = 0;
    for (size_t i = 0; i < SV_REST_NTABLES; i++) {
        const char *tname = sv_rest_exposed_tables[i].name;
        int n = 0;
        for (int r = 0; r < nrows; r++)
            if (strcmp(PQgetvalue(cols, r, 0), tname) == 0)
                n++;
        if (n == 0)
            continue; /* not migrated (yet): stays unknown */
        sv_rest_column *cs = sv_arena_calloc(a, sizeof(*cs) * (size_t)n);
        int k = 0;
        for (int r = 0; r < nrows; r++) {
            if (strcmp(PQgetvalue(cols, r, 0), tname) != 0)
                continue;
            cs[k].name = sv_arena_strdup(a, PQgetvalue(cols, r, 1));
            cs[k].type = sv_arena_strdup(a, PQgetvalue(cols, r, 2));
            cs[k].flags = (PQgetvalue(cols, r, 3)[0] == 't' ? SV_REST_COL_PK : 0) |
                          (PQgetvalue(cols, r, 4)[0] == 't' ? SV_REST_COL_GENERATED : 0) |
                          (PQgetvalue(cols, r, 5)[0] == 't' ? SV_REST_COL_NOT_NULL : 0) |
                          (PQgetvalue(cols, r, 6)[0] == 't' ? SV_REST_COL_DEFAULT : 0);
            cs[k].default_expr = PQgetisnull(cols, r, 7) ? NULL : sv_arena_strdup(a, PQgetvalue(cols, r, 7));
            k++;
        }
        s->tables[s->ntables++] = (sv_rest_table_def){ sv_arena_strdup(a, tname), cs, n,
                                                       sv_rest_exposed_tables[i].flags };
    }
    s->nfunctions = 0;
    for (int r = 0; r < PQntuples(fns) && s->nfunctions < (int)SV_REST_NFUNCTIONS; r++) {
        const char *fname = PQgetvalue(fns, r, 0);
        int dup = 0;
        for (int j = 0; j < s->nfunctions; j++)
            dup |= strcmp(s->functions[j].name, fname) == 0;
        if (dup)
            continue; /* overloads are not exposed: the first one wins */
        sv_rest_function_def *f = &s->functions[s->nfunctions++];
        f->name = sv_arena_strdup(a, fname);
        f->returns_set = PQgetvalue(fns, r, 1)[0] == 't';
        f->return_type = sv_arena_strdup(a, PQgetvalue(fns, r, 2));
        f->nargs = atoi(PQgetvalue(fns, r, 3));
        f->ndefaults = atoi(PQgetvalue(fns, r, 4));
        f->arg_names = sv_rest_split(a, PQgetvalue(fns, r, 5), f->nargs);
        f->arg_types = sv_rest_split(a, PQgetvalue(fns, r, 6), f->nargs);
    }
    PQclear(cols);
    PQclear(fns);
    s->loaded = 1;
    s->db_generation = generation;
    s->db_notified = notified;
    sv_log_info("rest_schema_loaded", "tables=%d functions=%d", s->ntables, s->nfunctions);
    return SV_OK;
}

static const sv_rest_table_def *sv_rest_find_table(const char *name)
{
    for (int i = 0; i < sv_rest_cache.ntables; i++)
        if (strcmp(sv_rest_cache.tables[i].name, name) == 0)
            return &sv_rest_cache.tables[i];
    return NULL;
}

static const sv_rest_function_def *sv_rest_find_function(const char *name)
{
    for (int i = 0; i < sv_rest_cache.nfunctions; i++)
        if (strcmp(sv_rest_cache.functions[i].name, name) == 0)
            return &sv_rest_cache.functions[i];
    return NULL;
}

/* --- errors ------------------------------------------------------------------ */

/* Maps a failed statement to PostgREST's error body and status. SQLSTATE
 * PTnnn means HTTP nnn (PostgREST's convention); PT406 is the .single()
 * refusal and carries PostgREST's code PGRST116. */
static void sv_rest_db_error(sv_worker *w, sv_request *req, sv_response *res, PGresult *result,
                             int anon)
{
    if (result == NULL) {
        sv_response_header(res, "Retry-After",
                           sv_arena_printf(req->arena, "%d", w->cfg->retry_after));
        /* The libpq message names hosts and roles: log it, don't send it. */
        sv_log_warn("database_unavailable", "error=\"%s\"", w->db.last_error);
        sv_response_error(res, 503, "PGRST000", "Database connection unavailable", NULL, NULL);
        return;
    }
    const char *state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    const char *message = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
    const char *detail = PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL);
    const char *hint = PQresultErrorField(result, PG_DIAG_MESSAGE_HINT);
    int status;
    if (state != NULL && state[0] == 'P' && state[1] == 'T' && state[2] >= '1' && state[2] <= '5' &&
        state[3] >= '0' && state[3] <= '9' && state[4] >= '0' && state[4] <= '9' && state[5] == '\0') {
        status = atoi(state + 2);
        if (strcmp(state, "PT406") == 0)
            state = "PGRST116";
    } else {
        status = sv_db_sqlstate_http_status(state, anon);
    }
    if (status >= 500)
        sv_log_warn("rest_db_error", "sqlstate=%s status=%d request_id=%s", state ? state : "-",
                    status, req->request_id);
    sv_response_error(res, status, state, message ? message : "database error", detail, hint);
}

/* --- running a plan -------------------------------------------------------------- */

static int sv_rest_is_anon(const sv_auth_ctx *ctx)
{
    return ctx->role == NULL || strcmp(ctx->role, "anon") == 0;
}

static void sv_rest_input_from(sv_request *req, sv_rest_input *in)
{
    memset(in, 0, sizeof(*in));
    in->method = req->method;
    in->query = req->query;
    in->prefer = sv_request_header(req, "Prefer");
    in->range = sv_request_header(req, "Range");
    in->accept = sv_request_header(req, "Accept");
    in->content_type = sv_request_header(req, "Content-Type");
    in->body = req->body;
    in->body_len = req->body_len;
}

static long long sv_rest_ll(PGresult *r, int col)
{
    return PQgetisnull(r, 0, col) ? -1 : strtoll(PQgetvalue(r, 0, col), NULL, 10);
}

/* --- prepared statements ----------------------------------------------------
 *
 * The translator emits the same SQL text for every request of one shape
 * (values are parameters), so each worker prepares the first
 * SV_REST_PREPARED shapes it meets on its connection and reuses them:
 * parse and analysis happen once, and PostgreSQL's plan cache applies.
 * Beyond that many shapes, statements run unnamed. The texts live in
 * malloc'd memory for the worker's life, which max_requests bounds. */
#define SV_REST_PREPARED 128

typedef struct sv_rest_stmt {
    char         *sql;
    size_t        len;
    unsigned long hash;
    unsigned long prepared_gen;   /* sv_db generation it was prepared on */
} sv_rest_stmt;

static sv_rest_stmt sv_rest_stmts[SV_REST_PREPARED];
static int sv_rest_nstmts;

static unsigned long sv_rest_hash(const char *s, size_t len)
{
    unsigned long h = 1469598103934665603UL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211UL;
    return h;
}

/* The cache slot for sql, adding it when there is room; -1 when full. */
static int sv_rest_stmt_slot(const char *sql)
{
    size_t len = strlen(sql);
    unsigned long h = sv_rest_hash(sql, len);
    for (int i = 0; i < sv_rest_nstmts; i++)
        if (sv_rest_stmts[i].hash == h && sv_rest_stmts[i].len == len &&
            memcmp(sv_rest_stmts[i].sql, sql, len) == 0)
            return i;
    if (sv_rest_nstmts == SV_REST_PREPARED)
        return -1;
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, sql, len + 1);
    sv_rest_stmts[sv_rest_nstmts] = (sv_rest_stmt){ copy, len, h, 0 };
    return sv_rest_nstmts++;
}

/* Runs the plan's statement as the caller, prepared when possible. */
static int sv_rest_run(sv_worker *w, const sv_auth_ctx *ctx, const sv_rest_plan *plan, PGresult **r)
{
    int slot = sv_rest_stmt_slot(plan->sql);
    if (slot < 0)
        return sv_db_query_as(&w->db, ctx->role, ctx->claims, plan->sql, plan->nparams, plan->params, r);

    char name[32];
    snprintf(name, sizeof(name), "sv_rest_%d", slot);
    for (int attempt = 0;; attempt++) {
        int rc = sv_db_query_as_prepared(&w->db, ctx->role, ctx->claims, name, plan->sql, plan->nparams,
                                         plan->params, &sv_rest_stmts[slot].prepared_gen, r);
        if (rc != SV_DB_OK || attempt > 0 || PQresultStatus(*r) != PGRES_FATAL_ERROR)
            return rc;
        /* Our bookkeeping and the server disagree (a DISCARD, a pooler):
         * resynchronise once. */
        const char *state = PQresultErrorField(*r, PG_DIAG_SQLSTATE);
        if (state == NULL)
            return rc;
        if (strcmp(state, "26000") == 0)          /* invalid_sql_statement_name */
            sv_rest_stmts[slot].prepared_gen = 0;
        else if (strcmp(state, "42P05") == 0)     /* duplicate_prepared_statement */
            sv_rest_stmts[slot].prepared_gen = w->db.generation;
        else
            return rc;
        PQclear(*r);
        *r = NULL;
    }
}

static void sv_rest_clear_result(void *result)
{
    PQclear(result);
}

static void sv_rest_execute(sv_worker *w, sv_request *req, sv_response *res, const sv_auth_ctx *ctx,
                            const sv_rest_plan *plan)
{
    PGresult *r = NULL;
    int rc = sv_rest_run(w, ctx, plan, &r);
    if (rc != SV_DB_OK || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
        PQnfields(r) != 3) {
        if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK) {
            sv_response_error(res, 500, "SV500", "unexpected result shape", NULL, NULL);
        } else {
            sv_rest_db_error(w, req, res, r, sv_rest_is_anon(ctx));
        }
        if (r != NULL)
            PQclear(r);
        return;
    }
    long long total = sv_rest_ll(r, 0), page = sv_rest_ll(r, 1);
    int status = plan->status;

    if (plan->is_read) {
        if (plan->single && page != 1) {
            sv_response_error(res, 406, "PGRST116",
                              "JSON object requested, multiple (or no) rows returned",
                              sv_arena_printf(req->arena, "The result contains %lld rows", page), NULL);
            PQclear(r);
            return;
        }
        if (total >= 0 && plan->offset > 0 && plan->offset >= total && page == 0) {
            sv_response_header(res, "Content-Range", sv_arena_printf(req->arena, "*/%lld", total));
            sv_response_error(res, 416, "PGRST103", "Requested range not satisfiable",
                              sv_arena_printf(req->arena,
                                              "An offset of %lld was requested, but there are only %lld rows.",
                                              plan->offset, total), NULL);
            PQclear(r);
            return;
        }
        char totals[32];
        if (total >= 0)
            snprintf(totals, sizeof(totals), "%lld", total);
        else
            snprintf(totals, sizeof(totals), "*");
        sv_response_header(res, "Content-Range",
                           page > 0 ? sv_arena_printf(req->arena, "%lld-%lld/%s", plan->offset,
                                                      plan->offset + page - 1, totals)
                                    : sv_arena_printf(req->arena, "*/%s", totals));
        if (total >= 0 && page < total && !plan->single)
            status = 206;
    } else if (page >= 0) {
        /* writes: how many rows the statement touched */
        sv_response_header(res, "Content-Range",
                           page > 0 ? sv_arena_printf(req->arena, "0-%lld/%s", page - 1,
                                                      plan->count ? sv_arena_printf(req->arena, "%lld", page) : "*")
                                    : sv_arena_printf(req->arena, "*/%s", plan->count ? "0" : "*"));
    }
    /* Preference-Applied: what PostgREST reports back of the Prefer header */
    sv_buf pa;
    sv_buf_init(&pa, req->arena, 96);
    if (plan->resolution)
        sv_buf_puts(&pa, plan->resolution == 1 ? "resolution=merge-duplicates" : "resolution=ignore-duplicates");
    if (plan->return_mode == SV_REST_RETURN_REPRESENTATION)
        sv_buf_printf(&pa, "%sreturn=representation", pa.len ? ", " : "");
    if (plan->count)
        sv_buf_printf(&pa, "%scount=exact", pa.len ? ", " : "");
    if (pa.len)
        sv_response_header(res, "Preference-Applied", pa.data);
    if (plan->single && plan->has_body)
        sv_response_header(res, "Content-Type", "application/vnd.pgrst.object+json; charset=utf-8");
    res->status = status;
    res->body.len = 0;
    if (plan->has_body && !PQgetisnull(r, 0, 2)) {
        sv_response_body_ext(res, PQgetvalue(r, 0, 2), (size_t)PQgetlength(r, 0, 2),
                             sv_rest_clear_result, r);
        return;
    }
    if (plan->has_body && plan->single)
        sv_buf_puts(&res->body, "null");
    PQclear(r);
}

/* --- handlers -------------------------------------------------------------------- */

/* What every table and rpc request does first: resolve the caller, and
 * make sure the schema cache is loaded. SV_ERROR means res is written. */
static int sv_rest_begin(sv_worker *w, sv_request *req, sv_response *res, sv_auth_ctx *ctx)
{
    if (sv_auth_request(w, req, res, ctx) != SV_OK)
        return SV_ERROR;
    return sv_rest_load(w, req, res);
}

void sv_rest_table(sv_worker *w, sv_request *req, sv_response *res)
{
    const char *name = req->path + strlen("/rest/v1/");
    sv_auth_ctx ctx;

    if (strncmp(name, "rpc/", 4) == 0) {
        sv_response_header(res, "Allow", "GET, HEAD, POST");
        sv_response_error(res, 405, "PGRST101", "Only GET and POST are allowed for functions",
                          NULL, NULL);
        return;
    }
    if (sv_rest_begin(w, req, res, &ctx) != SV_OK)
        return;
    const sv_rest_table_def *t = sv_rest_find_table(name);
    if (t == NULL) {
        sv_response_error(res, 404, "PGRST205",
                          sv_arena_printf(req->arena,
                                          "Could not find the table 'public.%.100s' in the schema cache",
                                          name),
                          NULL, NULL);
        return;
    }

    sv_rest_input in;
    sv_rest_plan plan;
    sv_rest_error err;
    sv_rest_input_from(req, &in);
    if (sv_rest_translate(req->arena, t, &in, &plan, &err) != SV_OK) {
        sv_response_error(res, err.status, err.code, err.message, err.details, err.hint);
        return;
    }
    sv_rest_execute(w, req, res, &ctx, &plan);
}

void sv_rest_rpc(sv_worker *w, sv_request *req, sv_response *res)
{
    const char *name = req->path + strlen("/rest/v1/rpc/");
    sv_auth_ctx ctx;

    if (sv_rest_begin(w, req, res, &ctx) != SV_OK)
        return;
    const sv_rest_function_def *f = sv_rest_find_function(name);
    if (f == NULL) {
        sv_response_error(res, 404, "PGRST202",
                          sv_arena_printf(req->arena,
                                          "Could not find the function public.%.100s in the schema cache",
                                          name),
                          NULL, NULL);
        return;
    }
    sv_rest_input in;
    sv_rest_plan plan;
    sv_rest_error err;
    sv_rest_input_from(req, &in);
    if (sv_rest_translate_rpc(req->arena, f, &in, &plan, &err) != SV_OK) {
        sv_response_error(res, err.status, err.code, err.message, err.details, err.hint);
        return;
    }
    sv_rest_execute(w, req, res, &ctx, &plan);
}

/* --- OpenAPI --------------------------------------------------------------------- */

/* Swagger 2.0 schema of a PostgreSQL type. */
static json_object *sv_rest_openapi_type(const char *pgtype)
{
    json_object *o = json_object_new_object();
    size_t len = strlen(pgtype);
    if (len > 2 && strcmp(pgtype + len - 2, "[]") == 0) {
        char elem[128];
        snprintf(elem, sizeof(elem), "%.*s", (int)(len - 2), pgtype);
        json_object_object_add(o, "type", json_object_new_string("array"));
        json_object_object_add(o, "items", sv_rest_openapi_type(elem));
        json_object_object_add(o, "format", json_object_new_string(pgtype));
        return o;
    }
    const char *type = "string", *format = pgtype;
    if (strcmp(pgtype, "integer") == 0 || strcmp(pgtype, "smallint") == 0 || strcmp(pgtype, "bigint") == 0)
        type = "integer";
    else if (strcmp(pgtype, "numeric") == 0 || strcmp(pgtype, "real") == 0 ||
             strcmp(pgtype, "double precision") == 0)
        type = "number";
    else if (strcmp(pgtype, "boolean") == 0)
        type = "boolean";
    else if (strcmp(pgtype, "json") == 0 || strcmp(pgtype, "jsonb") == 0)
        type = NULL;
    if (type)
        json_object_object_add(o, "type", json_object_new_string(type));
    json_object_object_add(o, "format", json_object_new_string(format));
    return o;
}

static json_object *sv_rest_openapi_param_ref(const char *name)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "$ref",
                           json_object_new_string(name));
    return o;
}

static json_object *sv_rest_openapi_op(const char *summary, const char *const *refs, size_t nrefs,
                                       const char *ok_status, const char *ok_desc)
{
    json_object *op = json_object_new_object();
    json_object_object_add(op, "summary", json_object_new_string(summary));
    json_object *params = json_object_new_array();
    for (size_t i = 0; i < nrefs; i++)
        json_object_array_add(params, sv_rest_openapi_param_ref(refs[i]));
    json_object_object_add(op, "parameters", params);
    json_object *responses = json_object_new_object();
    json_object *ok = json_object_new_object();
    json_object_object_add(ok, "description", json_object_new_string(ok_desc));
    json_object_object_add(responses, ok_status, ok);
    json_object_object_add(op, "responses", responses);
    return op;
}

static json_object *sv_rest_openapi_simple_param(const char *name, const char *in, const char *type,
                                                 const char *desc)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "name", json_object_new_string(name));
    json_object_object_add(p, "in", json_object_new_string(in));
    json_object_object_add(p, "required", json_object_new_boolean(0));
    if (type)
        json_object_object_add(p, "type", json_object_new_string(type));
    json_object_object_add(p, "description", json_object_new_string(desc));
    return p;
}

void sv_rest_openapi(sv_worker *w, sv_request *req, sv_response *res)
{
    if (sv_rest_load(w, req, res) != SV_OK)
        return;

    json_object *doc = json_object_new_object();
    json_object_object_add(doc, "swagger", json_object_new_string("2.0"));
    json_object *info = json_object_new_object();
    json_object_object_add(info, "title", json_object_new_string("StreamVibe REST API"));
    json_object_object_add(info, "description",
                           json_object_new_string("PostgREST-compatible data API over the exposed tables and functions"));
    json_object_object_add(info, "version", json_object_new_string(PACKAGE_VERSION));
    json_object_object_add(doc, "info", info);
    json_object_object_add(doc, "basePath", json_object_new_string("/rest/v1"));
    json_object *schemes = json_object_new_array();
    json_object_array_add(schemes, json_object_new_string("http"));
    json_object_array_add(schemes, json_object_new_string("https"));
    json_object_object_add(doc, "schemes", schemes);
    json_object *consumes = json_object_new_array();
    json_object_array_add(consumes, json_object_new_string("application/json"));
    json_object_object_add(doc, "consumes", consumes);
    json_object *produces = json_object_new_array();
    json_object_array_add(produces, json_object_new_string("application/json"));
    json_object_array_add(produces, json_object_new_string("application/vnd.pgrst.object+json"));
    json_object_object_add(doc, "produces", produces);

    json_object *parameters = json_object_new_object();
    json_object_object_add(parameters, "select",
                           sv_rest_openapi_simple_param("select", "query", "string", "Columns to return: col, alias:col, col::type, *"));
    json_object_object_add(parameters, "order",
                           sv_rest_openapi_simple_param("order", "query", "string", "Ordering: col.asc|desc[.nullsfirst|nullslast],..."));
    json_object_object_add(parameters, "limit",
                           sv_rest_openapi_simple_param("limit", "query", "string", "Maximum number of rows"));
    json_object_object_add(parameters, "offset",
                           sv_rest_openapi_simple_param("offset", "query", "string", "Rows to skip"));
    json_object_object_add(parameters, "range",
                           sv_rest_openapi_simple_param("Range", "header", "string", "Row range, e.g. 0-9"));
    json_object_object_add(parameters, "preferCount",
                           sv_rest_openapi_simple_param("Prefer", "header", "string", "count=exact"));
    json_object_object_add(parameters, "preferReturn",
                           sv_rest_openapi_simple_param("Prefer", "header", "string",
                                                        "return=minimal|representation|headers-only, resolution=merge-duplicates|ignore-duplicates"));
    json_object_object_add(parameters, "on_conflict",
                           sv_rest_openapi_simple_param("on_conflict", "query", "string", "Upsert conflict target columns"));
    json_object_object_add(doc, "parameters", parameters);

    json_object *paths = json_object_new_object();
    json_object *definitions = json_object_new_object();
    json_object *root = json_object_new_object();
    json_object_object_add(root, "get", sv_rest_openapi_op("OpenAPI description (this document)", NULL, 0, "200", "OK"));
    json_object_object_add(paths, "/", root);

    for (int i = 0; i < sv_rest_cache.ntables; i++) {
        const sv_rest_table_def *t = &sv_rest_cache.tables[i];
        json_object *def = json_object_new_object();
        json_object *props = json_object_new_object();
        json_object *required = json_object_new_array();
        json_object_object_add(def, "type", json_object_new_string("object"));
        for (int c = 0; c < t->ncols; c++) {
            json_object *p = sv_rest_openapi_type(t->cols[c].type);
            if (t->cols[c].flags & SV_REST_COL_PK)
                json_object_object_add(p, "description",
                                       json_object_new_string("Note:\nThis is a Primary Key.<pk/>"));
            json_object_object_add(props, t->cols[c].name, p);
            if ((t->cols[c].flags & SV_REST_COL_NOT_NULL) &&
                !(t->cols[c].flags & (SV_REST_COL_DEFAULT | SV_REST_COL_GENERATED)))
                json_object_array_add(required, json_object_new_string(t->cols[c].name));
        }
        json_object_object_add(def, "required", required);
        json_object_object_add(def, "properties", props);
        json_object_object_add(definitions, t->name, def);

        static const char *const read_refs[] = { "#/parameters/select", "#/parameters/order",
                                                 "#/parameters/range", "#/parameters/offset",
                                                 "#/parameters/limit", "#/parameters/preferCount" };
        static const char *const write_refs[] = { "#/parameters/select", "#/parameters/preferReturn" };
        static const char *const insert_refs[] = { "#/parameters/select", "#/parameters/preferReturn",
                                                   "#/parameters/on_conflict" };
        json_object *path = json_object_new_object();
        json_object_object_add(path, "get", sv_rest_openapi_op("Read rows (filters: col=op.value)",
                                                               read_refs, 6, "200", "OK"));
        if (!(t->flags & SV_REST_TABLE_VIEW)) {
            json_object_object_add(path, "post", sv_rest_openapi_op("Insert or upsert rows",
                                                                    insert_refs, 3, "201", "Created"));
            json_object_object_add(path, "patch", sv_rest_openapi_op("Update the filtered rows",
                                                                     write_refs, 2, "204", "No Content"));
            json_object_object_add(path, "delete",
                                   sv_rest_openapi_op((t->flags & SV_REST_TABLE_SOFT_DELETE)
                                                          ? "Soft-delete the filtered rows (sets deleted_at)"
                                                          : "Delete the filtered rows",
                                                      write_refs, 2, "204", "No Content"));
        }
        json_object_object_add(paths, sv_arena_printf(req->arena, "/%s", t->name), path);
    }

    for (int i = 0; i < sv_rest_cache.nfunctions; i++) {
        const sv_rest_function_def *f = &sv_rest_cache.functions[i];
        json_object *path = json_object_new_object();
        json_object *op = sv_rest_openapi_op(sv_arena_printf(req->arena, "Call %s (returns %s%s)",
                                                             f->name, f->returns_set ? "setof " : "",
                                                             f->return_type),
                                             NULL, 0, "200", "OK");
        json_object *params = json_object_object_get(op, "parameters");
        json_object *body = json_object_new_object();
        json_object_object_add(body, "name", json_object_new_string("args"));
        json_object_object_add(body, "in", json_object_new_string("body"));
        json_object_object_add(body, "required", json_object_new_boolean(f->nargs > f->ndefaults));
        json_object *schema = json_object_new_object();
        json_object_object_add(schema, "type", json_object_new_string("object"));
        json_object *props = json_object_new_object();
        json_object *required = json_object_new_array();
        for (int a = 0; a < f->nargs; a++) {
            json_object_object_add(props, f->arg_names[a], sv_rest_openapi_type(f->arg_types[a]));
            if (a < f->nargs - f->ndefaults)
                json_object_array_add(required, json_object_new_string(f->arg_names[a]));
        }
        json_object_object_add(schema, "required", required);
        json_object_object_add(schema, "properties", props);
        json_object_object_add(body, "schema", schema);
        json_object_array_add(params, body);
        json_object_object_add(path, "post", op);
        json_object_object_add(path, "get",
                               sv_rest_openapi_op("Call with arguments as query parameters", NULL, 0, "200", "OK"));
        json_object_object_add(paths, sv_arena_printf(req->arena, "/rpc/%s", f->name), path);
    }
    json_object_object_add(doc, "paths", paths);
    json_object_object_add(doc, "definitions", definitions);
    sv_response_header(res, "Content-Type", "application/openapi+json; charset=utf-8");
    sv_response_json(res, 200, doc);
}
