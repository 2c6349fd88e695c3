#include "rest/sv_rest_schema.h"

#include <stdlib.h>
#include <string.h>

#include "core/sv_log.h"
#include "db/sv_sqlstate.h"

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
    /* The tiers and their limits: a pricing or upgrade page reads them. */
    { "subscription_tiers", 0 },
    { "subscription_settings", 0 },
    { "quota_usage_history", 0 },
    { "platform_connections", SV_REST_TABLE_VIEW },
    /* Owners read the non-secret columns (column grants); the token
     * columns are a permission error for everyone but service_role. */
    { "platform_credentials", 0 },
};
#define SV_REST_NTABLES (sizeof(sv_rest_exposed_tables) / sizeof(sv_rest_exposed_tables[0]))

/* increment_quota/decrement_quota are listed because the V2 design calls
 * them through supabase.rpc() with the service key; EXECUTE is granted to
 * service_role only, so users get 403 and anon 401 from PostgreSQL. */
static const char *const sv_rest_exposed_functions[] = { "check_quota", "quota_status",
                                                         "search_content", "increment_quota",
                                                         "decrement_quota" };
#define SV_REST_NFUNCTIONS (sizeof(sv_rest_exposed_functions) / sizeof(sv_rest_exposed_functions[0]))

_Static_assert(SV_REST_NTABLES <= SV_REST_MAX_TABLES, "raise SV_REST_MAX_TABLES");
_Static_assert(SV_REST_NFUNCTIONS <= SV_REST_MAX_FUNCTIONS, "raise SV_REST_MAX_FUNCTIONS");


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

void sv_rest_schema_init(sv_rest_schema *s)
{
    memset(s, 0, sizeof(*s));
}

void sv_rest_schema_free(sv_rest_schema *s)
{
    if (s->loaded)
        sv_arena_free(&s->arena);
    sv_rest_schema_init(s);
}

int sv_rest_schema_load(sv_rest_schema *s, sv_db *db, sv_arena *scratch, int retry_after,
                        const char *request_id, sv_error *err)
{
    /* Connect first: a new connection may have missed an announcement. */
    if (sv_db_ensure(db) != SV_OK)
        return sv_db_unavailable(db, retry_after, err);
    if (s->loaded && s->db_generation == db->generation && s->db_notified == db->notified)
        return SV_OK;
    /* Taken before the catalog is read: an announcement that arrives with
     * these queries' results may be of a change they did not see yet (DDL
     * and NOTIFY committed while the load waited on its lock), so it must
     * trigger another load. */
    unsigned long generation = db->generation, notified = db->notified;

    sv_buf names;
    sv_buf_init(&names, scratch, 256);
    sv_buf_puts(&names, "{");
    for (size_t i = 0; i < SV_REST_NTABLES; i++)
        sv_buf_printf(&names, "%s%s", i ? "," : "", sv_rest_exposed_tables[i].name);
    sv_buf_puts(&names, "}");
    sv_buf fnames;
    sv_buf_init(&fnames, scratch, 128);
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
    if (sv_db_query_as(db, "none", "{}", sv_rest_columns_sql, 1, p1, &cols) != SV_OK ||
        sv_db_query_as(db, "none", "{}", sv_rest_functions_sql, 1, p2, &fns) != SV_OK) {
        PQclear(cols);
        return sv_db_unavailable(db, retry_after, err);
    }
    const PGresult *failed = PQresultStatus(cols) != PGRES_TUPLES_OK ? cols
                             : PQresultStatus(fns) != PGRES_TUPLES_OK ? fns : NULL;
    if (failed != NULL) {
        sv_sqlstate_postgrest(scratch, failed, 0, request_id, err);
        PQclear(cols);
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

const sv_rest_table_def *sv_rest_schema_table(const sv_rest_schema *s, const char *name)
{
    for (int i = 0; i < s->ntables; i++)
        if (strcmp(s->tables[i].name, name) == 0)
            return &s->tables[i];
    return NULL;
}

const sv_rest_function_def *sv_rest_schema_function(const sv_rest_schema *s, const char *name)
{
    for (int i = 0; i < s->nfunctions; i++)
        if (strcmp(s->functions[i].name, name) == 0)
            return &s->functions[i];
    return NULL;
}
