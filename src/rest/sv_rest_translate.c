/* The PostgREST translator's statements (sv_rest_query.h): a read, a
 * write or an rpc call as one SQL statement, built from the clauses of
 * sv_rest_query_parse.c and the choices of sv_rest_negotiate.c. */
#include "rest/sv_rest_negotiate.h"
#include "rest/sv_rest_query_blocks.h"
#include "rest/sv_rest_query_parse.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/sv_json.h"
#include "http/sv_http.h"

/* --- statements --------------------------------------------------------------- */

static const char *sv_rq_find(const sv_qparam *ps, int n, const char *key)
{
    const char *v = NULL;
    for (int i = 0; i < n; i++)
        if (strcmp(ps[i].key, key) == 0)
            v = ps[i].value;   /* the last one wins */
    return v;
}

/* The body of json: as it is, or with every object member whose value
 * is null left out, at any depth, as PostgREST strips it. */
static void sv_rq_json_body(sv_buf *sql, int strip_nulls, const char *json)
{
    if (strip_nulls)
        sv_buf_printf(sql, "pg_catalog.json_strip_nulls(%s)", json);
    else
        sv_buf_puts(sql, json);
}

/* The body column over the rows _pgrst_s: their array, or with .single()
 * the one row as an object; check_single raises PGRST116 (PT406) inside
 * the statement unless there is exactly one, so that what the statement
 * wrote is undone with it. */
static void sv_rq_rows_json(sv_buf *sql, const sv_rest_plan *plan, int check_single)
{
    if (plan->single) {
        if (check_single)
            sv_buf_puts(sql, "CASE WHEN public.sv_rest_expect_one(pg_catalog.count(*)) THEN ");
        sv_buf_puts(sql, "(");
        sv_rq_json_body(sql, plan->strip_nulls, "pg_catalog.json_agg(_pgrst_s) -> 0");
        sv_buf_puts(sql, check_single ? ")::text END" : ")::text");
    } else {
        sv_buf_puts(sql, "coalesce(");
        sv_rq_json_body(sql, plan->strip_nulls, "pg_catalog.json_agg(_pgrst_s)");
        sv_buf_puts(sql, ", '[]')::text");
    }
}

/* The outer SELECT over the CTE "pgrst_source". */
static void sv_rq_outer(sv_buf *sql, const char *total, int want_body, const sv_rest_plan *plan,
                        int check_single)
{
    sv_buf_puts(sql, " SELECT ");
    sv_buf_puts(sql, total ? total : "NULL::bigint");
    sv_buf_puts(sql, ", pg_catalog.count(*), ");
    if (want_body)
        sv_rq_rows_json(sql, plan, check_single);
    else
        sv_buf_puts(sql, "NULL::text");
    sv_buf_puts(sql, " FROM pgrst_source _pgrst_s");
}

static int sv_rq_read(sv_rq *q, const sv_rest_input *in, const sv_qparam *ps, int n,
                      const sv_prefer *pf, sv_rest_plan *plan)
{
    sv_buf sel, where, sql;
    sv_buf_init(&sel, q->arena, 128);
    sv_buf_init(&where, q->arena, 256);
    sv_buf_init(&sql, q->arena, 1024);

    if (sv_rq_select(q, &sel, sv_rq_find(ps, n, "select")) != SV_OK)
        return SV_ERROR;
    if (sv_rq_where(q, &where, ps, n) != SV_OK)
        return SV_ERROR;
    if ((q->t->flags & SV_REST_TABLE_SOFT_DELETE) && !q->mentions_deleted_at) {
        sv_buf_puts(&where, " AND ");
        sv_rest_quote_ident(&where, q->t->name);
        sv_buf_puts(&where, ".\"deleted_at\" IS NULL");
    }

    long long limit = -1, offset = 0;
    const char *v;
    if ((v = sv_rq_find(ps, n, "limit")) != NULL && sv_rq_parse_count(v, &limit) != SV_OK)
        return sv_rq_parse_error(q, "limit (expected a non-negative integer)", v);
    if ((v = sv_rq_find(ps, n, "offset")) != NULL && sv_rq_parse_count(v, &offset) != SV_OK)
        return sv_rq_parse_error(q, "offset (expected a non-negative integer)", v);
    if (in->range != NULL && *in->range != '\0') {
        /* "0-9" or "10-"; an optional "items=" prefix is tolerated */
        const char *r = in->range;
        if (strncmp(r, "items=", 6) == 0)
            r += 6;
        const char *dash = strchr(r, '-');
        long long from, to = -1;
        char *a = dash ? sv_arena_strndup(q->arena, r, (size_t)(dash - r)) : NULL;
        if (a == NULL || sv_rq_parse_count(a, &from) != SV_OK ||
            (dash[1] != '\0' && sv_rq_parse_count(dash + 1, &to) != SV_OK))
            return sv_rq_fail(q, 416, "PGRST103", "Requested range not satisfiable",
                              sv_arena_printf(q->arena, "Malformed Range header \"%.40s\"", in->range), NULL);
        if (to >= 0 && to < from)
            return sv_rq_fail(q, 416, "PGRST103", "Requested range not satisfiable",
                              "The range end is before its start", NULL);
        if (sv_rq_find(ps, n, "offset") == NULL)
            offset = from;
        if (to >= 0 && (limit < 0 || to - from + 1 < limit))
            limit = to - from + 1;
    }

    sv_buf_puts(&sql, "WITH pgrst_source AS (SELECT ");
    sv_buf_append(&sql, sel.data, sel.len);
    sv_buf_puts(&sql, " FROM public.");
    sv_rest_quote_ident(&sql, q->t->name);
    sv_buf_puts(&sql, " WHERE ");
    sv_buf_append(&sql, where.data, where.len);
    const char *order = sv_rq_find(ps, n, "order");
    if (order != NULL) {
        sv_buf_puts(&sql, " ORDER BY ");
        if (sv_rq_order(q, &sql, order) != SV_OK)
            return SV_ERROR;
    }
    if (limit >= 0)
        sv_buf_printf(&sql, " LIMIT %lld", limit);
    if (offset > 0)
        sv_buf_printf(&sql, " OFFSET %lld", offset);
    sv_buf_puts(&sql, ")");

    char *total = NULL;
    if (pf->count) {
        sv_buf tb;
        sv_buf_init(&tb, q->arena, where.len + 64);
        sv_buf_puts(&tb, "(SELECT pg_catalog.count(*) FROM public.");
        sv_rest_quote_ident(&tb, q->t->name);
        sv_buf_puts(&tb, " WHERE ");
        sv_buf_append(&tb, where.data, where.len);
        sv_buf_puts(&tb, ")");
        total = tb.data;
    }
    sv_rq_negotiated(in, plan);
    sv_rq_outer(&sql, total, in->method != SV_HTTP_HEAD, plan, 0);
    plan->sql = sql.data;
    plan->count = pf->count;
    plan->is_read = 1;
    plan->offset = offset;
    plan->has_body = in->method != SV_HTTP_HEAD;
    plan->status = 200;
    return SV_OK;
}

/* Parses the JSON body; rows must be an object or an array of objects. */
static int sv_rq_body(sv_rq *q, const sv_rest_input *in, json_object **out)
{
    if (in->content_type != NULL && *in->content_type != '\0' &&
        strstr(in->content_type, "json") == NULL)
        return sv_rq_fail(q, 415, "PGRST107",
                          sv_arena_printf(q->arena, "Content-Type not acceptable: %.60s", in->content_type),
                          NULL, "Send application/json");
    if (in->body == NULL || in->body_len == 0)
        return sv_rq_fail(q, 400, "PGRST102", "Empty or invalid json", NULL, NULL);
    const char *why;
    json_object *doc;
    if (sv_json_parse(in->body, in->body_len, &doc, &why) != SV_OK)
        return sv_rq_fail(q, 400, "PGRST102", "Empty or invalid json", why, NULL);
    *out = doc;
    return SV_OK;
}

/* Collects the columns to write: the union of the rows' keys (or the
 * columns= list), each checked against the whitelist. */
static int sv_rq_write_columns(sv_rq *q, json_object *doc, const char *columns_param,
                               const sv_rest_column ***cols, int *ncols)
{
    const sv_rest_column **list = sv_arena_alloc(q->arena, sizeof(*list) * (size_t)(q->t->ncols + 1));
    int n = 0;

    if (columns_param != NULL) {
        const char *p = columns_param, *end = p + strlen(p);
        while (p <= end) {
            const char *ie = sv_rq_item_end(p, end);
            const sv_rest_column *c = sv_rq_resolve_column(q, p, (size_t)(ie - p));
            if (c == NULL)
                return SV_ERROR;
            int dup = 0;
            for (int i = 0; i < n; i++)
                dup |= list[i] == c;
            if (!dup)
                list[n++] = c;
            p = ie + 1;
        }
    } else {
        size_t rows = json_object_is_type(doc, json_type_array) ? json_object_array_length(doc) : 1;
        for (size_t r = 0; r < rows; r++) {
            json_object *row = json_object_is_type(doc, json_type_array)
                                   ? json_object_array_get_idx(doc, r) : doc;
            json_object_object_foreach(row, key, val) {
                (void)val;
                const sv_rest_column *c = sv_rq_find_column(q->t, key);
                if (c == NULL)
                    return sv_rq_fail(q, 400, "PGRST204",
                                      sv_arena_printf(q->arena,
                                                      "Could not find the '%.80s' column of '%s' in the schema cache",
                                                      key, q->t->name),
                                      NULL, NULL);
                int dup = 0;
                for (int i = 0; i < n; i++)
                    dup |= list[i] == c;
                if (!dup)
                    list[n++] = c;
            }
        }
    }
    *cols = list;
    *ncols = n;
    return SV_OK;
}

static int sv_rq_check_rows(sv_rq *q, json_object *doc, int allow_array)
{
    if (json_object_is_type(doc, json_type_object))
        return SV_OK;
    if (allow_array && json_object_is_type(doc, json_type_array)) {
        size_t n = json_object_array_length(doc);
        for (size_t i = 0; i < n; i++)
            if (!json_object_is_type(json_object_array_get_idx(doc, i), json_type_object))
                return sv_rq_fail(q, 400, "PGRST102", "All array elements must be JSON objects", NULL, NULL);
        return SV_OK;
    }
    return sv_rq_fail(q, 400, "PGRST102",
                      allow_array ? "Body must be a JSON object or an array of objects"
                                  : "Body must be a JSON object", NULL, NULL);
}

static void sv_rq_column_list(sv_buf *buf, const sv_rest_column **cols, int n, const char *prefix)
{
    for (int i = 0; i < n; i++) {
        if (i)
            sv_buf_puts(buf, ", ");
        if (prefix)
            sv_buf_puts(buf, prefix);
        sv_rest_quote_ident(buf, cols[i]->name);
    }
}

/* PostgREST's count of the rows an upsert inserted (SqlFragment.hs,
 * addConfigPgrstInserted): +1 for every row offered to the INSERT, -1
 * for every one that conflicted and was updated instead, in the
 * transaction-local setting pgrst.inserted. Both predicates are always
 * true; they are there for their side effect. */
#define SV_RQ_INSERTED_ADD \
    "pg_catalog.set_config('pgrst.inserted', (coalesce(nullif(pg_catalog.current_setting(" \
    "'pgrst.inserted', true), '')::int, 0) + 1)::text, true) <> '0'"
#define SV_RQ_INSERTED_SUB \
    "pg_catalog.set_config('pgrst.inserted', (coalesce(nullif(pg_catalog.current_setting(" \
    "'pgrst.inserted', true), '')::int, 0) - 1)::text, true) <> '-1'"
#define SV_RQ_INSERTED_TOTAL \
    "nullif(pg_catalog.current_setting('pgrst.inserted', true), '')::bigint"

static int sv_rq_column_cmp(const void *a, const void *b)
{
    const sv_rest_column *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* The body of an insert (many: an array of rows allowed) or an update,
 * parsed into *doc, and the columns it writes (columns_param: the
 * columns= parameter, or NULL for the rows' keys). *doc is the caller's
 * to json_object_put, also on error. */
static int sv_rq_write_body(sv_rq *q, const sv_rest_input *in, const char *columns_param, int many,
                            json_object **doc, const sv_rest_column ***cols, int *ncols)
{
    if (sv_rq_body(q, in, doc) != SV_OK || sv_rq_check_rows(q, *doc, many) != SV_OK)
        return SV_ERROR;
    return sv_rq_write_columns(q, *doc, columns_param, cols, ncols);
}

/* "<verb> public.<table> AS <table>": a write's target, aliased by its
 * own name so that filters and the select list qualify columns alike. */
static void sv_rq_target(sv_buf *sql, const char *verb, const char *table)
{
    sv_buf_printf(sql, "%s public.", verb);
    sv_rest_quote_ident(sql, table);
    sv_buf_puts(sql, " AS ");
    sv_rest_quote_ident(sql, table);
}

/* Hosted Supabase preloads pg-safeupdate for the API's role: an UPDATE
 * or DELETE without a WHERE clause fails with 21000, so a client that
 * forgets .eq() cannot rewrite or delete every row it may touch (with the
 * service role: every user's). PostgREST writes a WHERE only for row
 * filters of the query string (column filters, or=/and=/not.…); select=,
 * columns= and the like are not filters, nor is row-level security.
 * Returns SV_OK when where holds at least one filter, else fills the
 * 400 21000 error. The soft delete (an UPDATE of deleted_at) is refused
 * like the DELETE it stands for. */
static int sv_rq_require_filter(sv_rq *q, const sv_buf *where, const char *verb)
{
    if (strcmp(where->data, "true") != 0)
        return SV_OK;
    return sv_rq_fail(q, 400, "21000", sv_arena_printf(q->arena, "%s requires a WHERE clause", verb),
                      NULL, NULL);
}

/* The SELECT an INSERT takes its rows from: the body's objects ($pb, a
 * JSON array), populated into the table's row type. With missing=default
 * a key absent from a row takes the column default, not NULL. A merge
 * upsert counts the rows it inserts (SV_RQ_INSERTED_ADD). */
static void sv_rq_insert_rows(sv_rq *q, sv_buf *sql, const sv_rest_column **cols, int ncols, int pb,
                              int missing_default, int merge)
{
    if (ncols > 0 && missing_default) {
        sv_buf_puts(sql, " (");
        sv_rq_column_list(sql, cols, ncols, NULL);
        sv_buf_puts(sql, ") SELECT ");
        for (int i = 0; i < ncols; i++) {
            sv_buf_puts(sql, i ? ", CASE WHEN _pgrst_j.v::jsonb ? '" : "CASE WHEN _pgrst_j.v::jsonb ? '");
            for (const char *c = cols[i]->name; *c; c++) {
                if (*c == '\'')
                    sv_buf_puts(sql, "'");   /* doubled: a quote inside a string literal */
                sv_buf_append(sql, c, 1);
            }
            sv_buf_puts(sql, "' THEN _pgrst_b.");
            sv_rest_quote_ident(sql, cols[i]->name);
            sv_buf_puts(sql, " ELSE ");
            sv_buf_puts(sql, cols[i]->default_expr ? cols[i]->default_expr : "NULL");
            sv_buf_puts(sql, " END");
        }
        sv_buf_printf(sql, " FROM pg_catalog.json_array_elements($%d::json) _pgrst_j(v), "
                           "LATERAL pg_catalog.json_populate_record(NULL::public.", pb);
        sv_rest_quote_ident(sql, q->t->name);
        sv_buf_puts(sql, ", _pgrst_j.v) _pgrst_b");
    } else if (ncols > 0) {
        sv_buf_puts(sql, " (");
        sv_rq_column_list(sql, cols, ncols, NULL);
        sv_buf_puts(sql, ") SELECT ");
        sv_rq_column_list(sql, cols, ncols, "_pgrst_b.");
        sv_buf_printf(sql, " FROM pg_catalog.json_populate_recordset(NULL::public.");
        sv_rest_quote_ident(sql, q->t->name);
        sv_buf_printf(sql, ", $%d::json) _pgrst_b", pb);
    } else {
        /* no keys: every column takes its default, one row per object */
        sv_buf_printf(sql, " SELECT FROM pg_catalog.json_array_elements($%d::json)", pb);
    }
    if (merge)
        sv_buf_puts(sql, " WHERE " SV_RQ_INSERTED_ADD);
}

/* An upsert's ON CONFLICT: the on_conflict= columns, else the primary
 * key. */
static int sv_rq_on_conflict(sv_rq *q, sv_buf *sql, const char *on_conflict, int resolution,
                             const sv_rest_column **cols, int ncols)
{
    const sv_rest_column *target[64];
    int nt = 0;
    if (on_conflict != NULL) {
        const char *p = on_conflict, *end = on_conflict + strlen(on_conflict);
        while (p <= end && nt < 64) {
            const char *ie = sv_rq_item_end(p, end);
            const sv_rest_column *c = sv_rq_resolve_column(q, p, (size_t)(ie - p));
            if (c == NULL)
                return SV_ERROR;
            target[nt++] = c;
            p = ie + 1;
        }
    } else {
        for (int i = 0; i < q->t->ncols && nt < 64; i++)
            if (q->t->cols[i].flags & SV_REST_COL_PK)
                target[nt++] = &q->t->cols[i];
    }
    if (nt == 0)
        return sv_rq_fail(q, 400, "PGRST100", "Upsert needs on_conflict or a primary key", NULL, NULL);
    sv_buf_puts(sql, " ON CONFLICT (");
    sv_rq_column_list(sql, target, nt, NULL);
    sv_buf_puts(sql, ")");
    /* PostgREST sets every column sent, the conflict target's
     * too (sorted by name, QueryBuilder.hs): so "get or create"
     * with only the target's columns returns the existing row,
     * and the caller needs UPDATE on every column it sends, as
     * on Supabase. Nothing sent: DO NOTHING. */
    if (resolution == 1 && ncols > 0) {
        const sv_rest_column **sorted = sv_arena_alloc(q->arena, sizeof(*sorted) * (size_t)ncols);
        memcpy(sorted, cols, sizeof(*sorted) * (size_t)ncols);
        qsort(sorted, (size_t)ncols, sizeof(*sorted), sv_rq_column_cmp);
        for (int i = 0; i < ncols; i++) {
            sv_buf_puts(sql, i ? ", " : " DO UPDATE SET ");
            sv_rest_quote_ident(sql, sorted[i]->name);
            sv_buf_puts(sql, " = EXCLUDED.");
            sv_rest_quote_ident(sql, sorted[i]->name);
        }
        sv_buf_puts(sql, " WHERE " SV_RQ_INSERTED_SUB);
    } else {
        sv_buf_puts(sql, " DO NOTHING");
    }
    return SV_OK;
}

/* POST: INSERT the body's rows (doc, their columns cols); with
 * resolution=, an upsert. */
static int sv_rq_insert(sv_rq *q, sv_buf *sql, const sv_rest_input *in, const sv_qparam *ps, int n,
                        const sv_prefer *pf, json_object *doc, const sv_rest_column **cols, int ncols,
                        const sv_buf *where, sv_rest_plan *plan)
{
    /* filters make no sense on an insert */
    if (strcmp(where->data, "true") != 0)
        return sv_rq_fail(q, 400, "PGRST100", "Filters are not allowed on an insert", NULL, NULL);
    const char *body = json_object_is_type(doc, json_type_array)
                           ? sv_arena_strndup(q->arena, in->body, in->body_len)
                           : sv_arena_printf(q->arena, "[%.*s]", (int)in->body_len, in->body);
    int pb = sv_rq_param(q, body);
    sv_rq_target(sql, "INSERT INTO", q->t->name);
    sv_rq_insert_rows(q, sql, cols, ncols, pb, pf->missing_default, pf->resolution == 1);
    if (pf->resolution) {
        if (sv_rq_on_conflict(q, sql, sv_rq_find(ps, n, "on_conflict"), pf->resolution, cols, ncols) != SV_OK)
            return SV_ERROR;
        plan->resolution = pf->resolution;
    }
    plan->status = 201;
    plan->range_star = 1;
    return SV_OK;
}

/* Returned by sv_rq_update when the request changes nothing: the plan is
 * complete without a write. */
enum { SV_RQ_NOTHING_TO_WRITE = 1 };

/* PATCH: UPDATE the filtered rows with the body's columns. */
static int sv_rq_update(sv_rq *q, sv_buf *sql, const sv_rest_input *in, const sv_rest_column **cols,
                        int ncols, const sv_buf *where, int want_body, sv_rest_plan *plan)
{
    if (ncols == 0) {
        /* nothing to change: answer like an update of no rows */
        plan->sql = "SELECT NULL::bigint, 0::bigint, '[]'::text";
        plan->has_body = want_body;
        plan->status = want_body ? 200 : 204;
        return SV_RQ_NOTHING_TO_WRITE;
    }
    if (sv_rq_require_filter(q, where, "UPDATE") != SV_OK)
        return SV_ERROR;
    int pb = sv_rq_param(q, sv_arena_strndup(q->arena, in->body, in->body_len));
    sv_rq_target(sql, "UPDATE", q->t->name);
    sv_buf_puts(sql, " SET ");
    for (int i = 0; i < ncols; i++) {
        if (i)
            sv_buf_puts(sql, ", ");
        sv_rest_quote_ident(sql, cols[i]->name);
        sv_buf_puts(sql, " = _pgrst_b.");
        sv_rest_quote_ident(sql, cols[i]->name);
    }
    sv_buf_puts(sql, " FROM pg_catalog.json_populate_record(NULL::public.");
    sv_rest_quote_ident(sql, q->t->name);
    sv_buf_printf(sql, ", $%d::json) _pgrst_b WHERE ", pb);
    sv_buf_append(sql, where->data, where->len);
    plan->status = want_body ? 200 : 204;
    return SV_OK;
}

/* DELETE the filtered rows; on a soft-delete table, set their
 * deleted_at instead. */
static int sv_rq_delete(sv_rq *q, sv_buf *sql, const sv_buf *where, int want_body, sv_rest_plan *plan)
{
    if (sv_rq_require_filter(q, where, "DELETE") != SV_OK)
        return SV_ERROR;
    if (q->t->flags & SV_REST_TABLE_SOFT_DELETE) {
        sv_rq_target(sql, "UPDATE", q->t->name);
        sv_buf_puts(sql, " SET \"deleted_at\" = pg_catalog.now() WHERE (");
        sv_buf_append(sql, where->data, where->len);
        sv_buf_puts(sql, ") AND ");
        sv_rest_quote_ident(sql, q->t->name);
        sv_buf_puts(sql, ".\"deleted_at\" IS NULL");
    } else {
        sv_rq_target(sql, "DELETE FROM", q->t->name);
        sv_buf_puts(sql, " WHERE ");
        sv_buf_append(sql, where->data, where->len);
    }
    plan->status = want_body ? 200 : 204;
    plan->range_star = 1;
    return SV_OK;
}

/* POST, PATCH, DELETE: the write in a CTE, and the rows it returns (or
 * counts) as the answer. */
static int sv_rq_write(sv_rq *q, const sv_rest_input *in, const sv_qparam *ps, int n,
                       const sv_prefer *pf, sv_rest_plan *plan)
{
    sv_buf sel, where, sql;
    sv_buf_init(&sel, q->arena, 128);
    sv_buf_init(&sql, q->arena, 1024);
    json_object *doc = NULL;

    plan->return_mode = pf->return_mode < 0 ? SV_REST_RETURN_MINIMAL : pf->return_mode;
    sv_rq_negotiated(in, plan);
    plan->count = pf->count;
    int want_body = plan->return_mode == SV_REST_RETURN_REPRESENTATION;
    /* a merge upsert always counts its rows: 201 or 200 depends on them;
     * an update too: its Content-Range is 0-(N-1) */
    int merge = in->method == SV_HTTP_POST && pf->resolution == 1;
    int want_rows = want_body || pf->count || plan->single || merge || in->method == SV_HTTP_PATCH;

    if (sv_rq_find(ps, n, "limit") || sv_rq_find(ps, n, "offset") || sv_rq_find(ps, n, "order"))
        return sv_rq_fail(q, 400, "PGRST100", "limit, offset and order are only supported on reads",
                          NULL, "Narrow the rows with filters instead");
    if (sv_rq_select(q, &sel, sv_rq_find(ps, n, "select")) != SV_OK)
        return SV_ERROR;

    /* the body's errors first, then the filters' */
    const sv_rest_column **cols = NULL;
    int ncols = 0;
    if (in->method != SV_HTTP_DELETE &&
        sv_rq_write_body(q, in, sv_rq_find(ps, n, "columns"), in->method == SV_HTTP_POST, &doc, &cols,
                         &ncols) != SV_OK) {
        json_object_put(doc);
        return SV_ERROR;
    }
    sv_buf_init(&where, q->arena, 256);
    int rc = sv_rq_where(q, &where, ps, n);
    sv_buf_puts(&sql, "WITH pgrst_source AS (");
    if (rc == SV_OK)
        rc = in->method == SV_HTTP_POST  ? sv_rq_insert(q, &sql, in, ps, n, pf, doc, cols, ncols, &where, plan)
           : in->method == SV_HTTP_PATCH ? sv_rq_update(q, &sql, in, cols, ncols, &where, want_body, plan)
                                         : sv_rq_delete(q, &sql, &where, want_body, plan);
    json_object_put(doc);
    if (rc == SV_RQ_NOTHING_TO_WRITE)
        return SV_OK;
    if (rc != SV_OK)
        return SV_ERROR;

    if (want_rows) {
        sv_buf_puts(&sql, " RETURNING ");
        if (want_body)
            sv_buf_append(&sql, sel.data, sel.len);
        else
            sv_buf_puts(&sql, "1");
        sv_buf_puts(&sql, ")");
        sv_rq_outer(&sql, merge ? SV_RQ_INSERTED_TOTAL : NULL, want_body, plan, 1);
    } else {
        /* a data-modifying CTE without RETURNING still runs to completion */
        sv_buf_puts(&sql, ") SELECT NULL::bigint, NULL::bigint, NULL::text");
    }
    plan->sql = sql.data;
    plan->has_body = want_body;
    return SV_OK;
}

static void sv_rq_start(sv_rq *q, sv_arena *arena, const sv_rest_table_def *t, sv_rest_plan *plan,
                        sv_error *err)
{
    memset(q, 0, sizeof(*q));
    q->arena = arena;
    q->t = t;
    q->err = err;
    memset(plan, 0, sizeof(*plan));
    memset(err, 0, sizeof(*err));
    q->plan = plan;
}

int sv_rest_translate(sv_arena *arena, const sv_rest_table_def *t, const sv_rest_input *in,
                      sv_rest_plan *plan, sv_error *err)
{
    sv_rq q;
    sv_qparam *ps;
    int n, rc;
    sv_prefer pf;

    sv_rq_start(&q, arena, t, plan, err);
    if (sv_rq_split_query(&q, in->query, &ps, &n) != SV_OK)
        return SV_ERROR;
    sv_rq_prefer(in->prefer, &pf);

    switch (in->method) {
    case SV_HTTP_GET:
    case SV_HTTP_HEAD:
        rc = sv_rq_read(&q, in, ps, n, &pf, plan);
        break;
    case SV_HTTP_POST:
    case SV_HTTP_PATCH:
    case SV_HTTP_DELETE:
        rc = sv_rq_write(&q, in, ps, n, &pf, plan);
        break;
    default:
        return sv_rq_fail(&q, 405, "PGRST117", "Unsupported HTTP method", NULL, NULL);
    }
    if (rc != SV_OK)
        return SV_ERROR;
    plan->params = q.params;
    plan->nparams = q.nparams;
    return SV_OK;
}

/* --- rpc -------------------------------------------------------------------- */

static int sv_rq_rpc_arg(const sv_rest_function_def *f, const char *name)
{
    for (int i = 0; i < f->nargs; i++)
        if (strcmp(f->arg_names[i], name) == 0)
            return i;
    return -1;
}

static int sv_rq_str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* names[0..n) sorted, without repeats, joined by ", " (PostgREST's
 * Data.Set of argument names). Long lists and names are cut: the text
 * goes into an error message. */
static const char *sv_rq_name_list(sv_arena *arena, const char **names, int n)
{
    enum { SV_RQ_LIST_MAX = 32 };
    const char **sorted = sv_arena_alloc(arena, sizeof(*sorted) * (size_t)(n + 1));
    sv_buf buf;
    int shown = 0;

    memcpy(sorted, names, sizeof(*sorted) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof(*sorted), sv_rq_str_cmp);
    sv_buf_init(&buf, arena, 128);
    for (int i = 0; i < n; i++) {
        if (i > 0 && strcmp(sorted[i], sorted[i - 1]) == 0)
            continue;
        if (shown == SV_RQ_LIST_MAX) {
            sv_buf_puts(&buf, ", ...");
            break;
        }
        sv_buf_printf(&buf, "%s%.60s", shown ? ", " : "", sorted[i]);
        shown++;
    }
    return buf.data;
}

/* PGRST202 worded as PostgREST's NoRpc (Error.hs): the message lists
 * every argument sent, sorted; the details add the single json/jsonb
 * parameter a JSON POST could also have meant; the hint names f's own
 * parameters when the function exists (PostgREST's fuzzy match over
 * overloads, of which we have one), else null. */
static int sv_rq_rpc_not_found(sv_rq *q, const char *fname, const sv_rest_function_def *f,
                               const char **names, int n, int json_post)
{
    const char *list = sv_rq_name_list(q->arena, names, n);
    char *message = n == 0
        ? sv_arena_printf(q->arena, "Could not find the function public.%.100s without parameters "
                                    "in the schema cache", fname)
        : sv_arena_printf(q->arena, "Could not find the function public.%.100s(%s) in the schema cache",
                          fname, list);
    char *details = sv_arena_printf(
        q->arena, "Searched for the function public.%.100s%s%s%s, but no matches were found in the "
                  "schema cache.",
        fname, n == 0 ? " without parameters" : n == 1 ? " with parameter " : " with parameters ",
        n == 0 ? "" : list, json_post ? " or with a single unnamed json/jsonb parameter" : "");
    char *hint = NULL;
    if (f != NULL)
        hint = sv_arena_printf(q->arena, "Perhaps you meant to call the function public.%s(%s)", f->name,
                               sv_rq_name_list(q->arena, f->arg_names, f->nargs));
    return sv_rq_fail(q, 404, "PGRST202", message, details, hint);
}

/* The argument names a request sends: a POST body's keys (when it is a
 * JSON object) or a GET's query parameter names. */
static void sv_rq_rpc_names(sv_rq *q, const sv_rest_input *in, json_object *doc, const char ***out,
                            int *n)
{
    *out = NULL;
    *n = 0;
    if (in->method == SV_HTTP_POST) {
        if (doc == NULL || !json_object_is_type(doc, json_type_object))
            return;
        const char **names = sv_arena_alloc(q->arena, sizeof(*names) *
                                                          (size_t)(json_object_object_length(doc) + 1));
        json_object_object_foreach(doc, key, val) {
            (void)val;
            names[(*n)++] = key;
        }
        *out = names;
    } else {
        sv_qparam *ps;
        int np;
        sv_error saved = *q->err;
        if (sv_rq_split_query(q, in->query, &ps, &np) != SV_OK) {
            *q->err = saved;
            return;
        }
        const char **names = sv_arena_alloc(q->arena, sizeof(*names) * (size_t)(np + 1));
        for (int i = 0; i < np; i++)
            names[i] = ps[i].key;
        *out = names;
        *n = np;
    }
}

int sv_rest_rpc_not_found(sv_arena *arena, const char *name, const sv_rest_input *in, sv_error *err)
{
    sv_rq q;
    sv_rest_plan plan;
    sv_rest_table_def none = { name, NULL, 0, 0 };
    json_object *doc = NULL;
    const char **names;
    int n;

    sv_rq_start(&q, arena, &none, &plan, err);
    if (in->method == SV_HTTP_POST && in->body != NULL && in->body_len > 0) {
        const char *why;
        if (sv_json_parse(in->body, in->body_len, &doc, &why) != SV_OK)
            doc = NULL;
    }
    sv_rq_rpc_names(&q, in, doc, &names, &n);
    int rc = sv_rq_rpc_not_found(&q, name, NULL, names, n, in->method == SV_HTTP_POST);
    json_object_put(doc);
    return rc;
}

int sv_rest_translate_rpc(sv_arena *arena, const sv_rest_function_def *f,
                          const sv_rest_input *in, sv_rest_plan *plan, sv_error *err)
{
    sv_rq q;
    sv_rest_table_def none = { f->name, NULL, 0, 0 };
    sv_buf call, sql;
    int rc = SV_ERROR;
    json_object *doc = NULL;
    int first = 1;
    int nargs = f->nargs > 0 ? f->nargs : 1;
    char *given = NULL;

    sv_rq_start(&q, arena, &none, plan, err);
    sv_buf_init(&call, arena, 256);
    sv_buf_init(&sql, arena, 512);
    sv_buf_puts(&call, "public.");
    sv_rest_quote_ident(&call, f->name);
    sv_buf_puts(&call, "(");
    given = sv_arena_alloc(arena, (size_t)nargs);
    memset(given, 0, (size_t)nargs);

    if (in->method == SV_HTTP_POST) {
        if (in->body != NULL && in->body_len > 0) {
            if (sv_rq_body(&q, in, &doc) != SV_OK)
                return SV_ERROR;
            if (!json_object_is_type(doc, json_type_object)) {
                sv_rq_fail(&q, 400, "PGRST102", "rpc arguments must be a JSON object", NULL, NULL);
                goto done;
            }
            json_object_object_foreach(doc, key, val) {
                int i = sv_rq_rpc_arg(f, key);
                if (i < 0)
                    goto not_found;
                given[i] = 1;
                const char *text = NULL;
                const char *type = f->arg_types[i];
                if (val == NULL || json_object_is_type(val, json_type_null))
                    text = NULL;
                else if (json_object_is_type(val, json_type_string) &&
                         strcmp(type, "json") != 0 && strcmp(type, "jsonb") != 0)
                    text = sv_arena_strdup(arena, json_object_get_string(val));
                else
                    text = sv_arena_strdup(arena, json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN));
                if (!first)
                    sv_buf_puts(&call, ", ");
                first = 0;
                sv_rest_quote_ident(&call, f->arg_names[i]);
                sv_buf_printf(&call, " => $%d::%s", sv_rq_param(&q, text), type);
            }
        }
    } else if (in->method == SV_HTTP_GET || in->method == SV_HTTP_HEAD) {
        sv_qparam *ps;
        int n;
        if (sv_rq_split_query(&q, in->query, &ps, &n) != SV_OK)
            return SV_ERROR;
        for (int k = 0; k < n; k++) {
            int i = sv_rq_rpc_arg(f, ps[k].key);
            if (i < 0)
                goto not_found;
            given[i] = 1;
            if (!first)
                sv_buf_puts(&call, ", ");
            first = 0;
            sv_rest_quote_ident(&call, f->arg_names[i]);
            sv_buf_printf(&call, " => $%d::%s", sv_rq_param(&q, ps[k].value), f->arg_types[i]);
        }
    } else {
        return sv_rq_fail(&q, 405, "PGRST101", "Only GET and POST are allowed for functions", NULL, NULL);
    }
    /* a required argument left out: no function matches what was sent */
    for (int i = 0; i < f->nargs - f->ndefaults; i++)
        if (!given[i])
            goto not_found;
    sv_buf_puts(&call, ")");

    /* supabase-js's .single() on a set-returning function, as
     * PostgREST: its one row as an object, else 406 PGRST116, checked as
     * a table write checks it. A scalar is its value either way, under
     * the type asked for. */
    sv_rest_media media = sv_rest_negotiate(in->accept);
    plan->strip_nulls = media == SV_REST_MEDIA_JSON_STRIPPED || media == SV_REST_MEDIA_OBJECT_STRIPPED;
    plan->media = media == SV_REST_MEDIA_NONE ? SV_REST_MEDIA_JSON : media;
    plan->single = f->returns_set && (media == SV_REST_MEDIA_OBJECT || media == SV_REST_MEDIA_OBJECT_STRIPPED);
    if (f->returns_set) {
        sv_buf_puts(&sql, "SELECT NULL::bigint, pg_catalog.count(*), ");
        sv_rq_rows_json(&sql, plan, 1);
        sv_buf_puts(&sql, " FROM ");
        sv_buf_append(&sql, call.data, call.len);
        sv_buf_puts(&sql, " _pgrst_s");
    } else {
        sv_buf_puts(&sql, "SELECT NULL::bigint, NULL::bigint, coalesce(");
        sv_rq_json_body(&sql, plan->strip_nulls,
                        sv_arena_printf(arena, "pg_catalog.to_json(%.*s)", (int)call.len, call.data));
        sv_buf_puts(&sql, "::text, 'null')");
    }
    plan->sql = sql.data;
    plan->params = q.params;
    plan->nparams = q.nparams;
    plan->has_body = in->method != SV_HTTP_HEAD;
    plan->status = 200;
    /* PostgREST runs GET and HEAD on a function in a read-only
     * transaction, whatever the function: a volatile one that writes
     * fails there (25006, answered 405) instead of changing data on a
     * request that must not. */
    plan->read_only = in->method != SV_HTTP_POST;
    rc = SV_OK;
    goto done;
not_found: {
        const char **names;
        int n;
        sv_rq_rpc_names(&q, in, doc, &names, &n);
        sv_rq_rpc_not_found(&q, f->name, f, names, n, in->method == SV_HTTP_POST);
    }
done:
    json_object_put(doc);
    return rc;
}
