/* Unit tests of the pure PostgREST translator (src/rest/sv_rest_query.h): the
 * SQL it generates for each operator and option, the errors it returns,
 * and that hostile input never reaches the SQL text. */
#include <stdio.h>
#include <stdlib.h>

#include "http/sv_http.h"
#include "rest/sv_rest_query.h"
#include "tap.h"

static const sv_rest_column cols[] = {
    { "id", "uuid", SV_REST_COL_PK | SV_REST_COL_DEFAULT, "gen_random_uuid()" },
    { "title", "text", 0, NULL },
    { "view_count", "bigint", SV_REST_COL_DEFAULT, "0" },
    { "tags", "text[]", SV_REST_COL_DEFAULT, "'{}'::text[]" },
    { "visibility", "visibility", 0, NULL },
    { "search_vector", "tsvector", SV_REST_COL_GENERATED, NULL },
    { "deleted_at", "timestamp with time zone", 0, NULL },
    { "weird\"name", "text", 0, NULL },
};
static const sv_rest_table_def tbl = { "handle_content", cols, sizeof(cols) / sizeof(cols[0]),
                                       SV_REST_TABLE_SOFT_DELETE };

static sv_arena arena;
static sv_rest_plan plan;
static sv_error err;

static int run(int method, const char *query, const char *body, const char *prefer,
               const char *range, const char *accept)
{
    sv_rest_input in = { method, query, prefer, range, accept, NULL, body, body ? strlen(body) : 0 };
    return sv_rest_translate(&arena, &tbl, &in, &plan, &err);
}

static int get(const char *query)
{
    return run(SV_HTTP_GET, query, NULL, NULL, NULL, NULL);
}

static int has(const char *needle)
{
    return plan.sql != NULL && strstr(plan.sql, needle) != NULL;
}

static const char *param(int n)
{
    return n >= 1 && n <= plan.nparams ? plan.params[n - 1] : "(none)";
}

/* Every generated statement must have balanced quotes: a value that ended
 * up in the SQL text would show as an unbalanced quote or a stray token. */
static int sql_is_clean(void)
{
    int dq = 0, sq = 0;
    for (const char *p = plan.sql; *p; p++) {
        if (*p == '"')
            dq ^= 1;
        else if (*p == '\'' && !dq)
            sq ^= 1;
    }
    return !dq && !sq;
}

static void test_select(void)
{
    is_int(get(""), SV_OK, "empty query");
    ok(has("SELECT \"handle_content\".* FROM public.\"handle_content\""), "default select *");
    ok(has("\"handle_content\".\"deleted_at\" IS NULL"), "soft-deleted rows hidden by default");
    ok(has("coalesce(pg_catalog.json_agg(_pgrst_s), '[]')::text"), "body built by json_agg");
    ok(has("NULL::bigint"), "no count by default");

    is_int(get("select=id,t:title,view_count::text"), SV_OK, "column list, alias, cast");
    ok(has("\"handle_content\".\"id\" AS \"id\", \"handle_content\".\"title\" AS \"t\", "
           "\"handle_content\".\"view_count\"::text AS \"view_count\""), "select list SQL");
    is_int(get("select=%22title%22"), SV_OK, "quoted column");
    is_int(get("select=nope"), SV_ERROR, "unknown column");
    is_int(err.status, 400, "unknown column: 400");
    is_str(err.code, "42703", "unknown column: 42703");
    is_str(err.message, "column handle_content.nope does not exist", "PostgreSQL's message");
    is_int(get("select=*,(select 1)"), SV_ERROR, "subselect in select refused");
    is_int(err.status, 400, "subselect: 400");
    is_int(get("select=*,other(*)"), SV_ERROR, "embedding refused");
    is_int(get("select=title::text;drop table x"), SV_ERROR, "cast to a non-whitelisted type");
    is_int(get("select=title::regclass"), SV_ERROR, "regclass cast refused");
    is_int(get("select=title,,id"), SV_ERROR, "empty select item");
    is_int(get("select=x:\"title"), SV_ERROR, "unbalanced quote in select");
    is_int(get("select=title->>a"), SV_ERROR, "json path refused");
    is_int(get("select=%22weird%22%22name%22"), SV_OK, "a quote inside a quoted identifier");
    ok(has("\"weird\"\"name\""), "quote doubled in the SQL identifier");
    is_int(get("select=a%20b:title"), SV_OK, "alias with a space");
    ok(has("AS \"a b\""), "alias quoted");
    is_int(get("select=x%22y:title"), SV_ERROR, "alias with a stray quote refused");
}

static void test_filters(void)
{
    static const struct { const char *q, *sql, *p1; } cases[] = {
        { "title=eq.a", "\"handle_content\".\"title\" = $1", "a" },
        { "title=neq.a", "\"handle_content\".\"title\" <> $1", "a" },
        { "view_count=gt.5", "\"handle_content\".\"view_count\" > $1", "5" },
        { "view_count=gte.5", "\"handle_content\".\"view_count\" >= $1", "5" },
        { "view_count=lt.5", "\"handle_content\".\"view_count\" < $1", "5" },
        { "view_count=lte.5", "\"handle_content\".\"view_count\" <= $1", "5" },
        { "title=like.*ab*", "\"handle_content\".\"title\"::text LIKE $1", "%ab%" },
        { "title=ilike.a*", "\"handle_content\".\"title\"::text ILIKE $1", "a%" },
        { "title=match.^a", "\"handle_content\".\"title\"::text ~ $1", "^a" },
        { "title=imatch.^a", "\"handle_content\".\"title\"::text ~* $1", "^a" },
        { "title=in.(a,b,%22c,d%22)", "\"handle_content\".\"title\" = ANY($1::text[])", "{\"a\",\"b\",\"c,d\"}" },
        { "title=in.()", "= ANY($1::text[])", "{}" },
        { "title=in.(%22a%5C%22b%22)", "= ANY($1::text[])", "{\"a\\\"b\"}" },
        { "visibility=in.(public,private)", "ANY($1::visibility[])", "{\"public\",\"private\"}" },
        { "tags=cs.{a,b}", "\"handle_content\".\"tags\" @> $1", "{a,b}" },
        { "tags=cd.{a}", "\"handle_content\".\"tags\" <@ $1", "{a}" },
        { "tags=ov.(a,b)", "\"handle_content\".\"tags\" && $1", "{\"a\",\"b\"}" },
        { "title=isdistinct.a", "IS DISTINCT FROM $1", "a" },
        { "title=not.eq.a", "NOT (\"handle_content\".\"title\" = $1)", "a" },
        { "search_vector=fts.cat", "\"handle_content\".\"search_vector\" OPERATOR(public.@@) to_tsquery($1)", "cat" },
        { "search_vector=fts(english).cooking%20%26%20recipe",
          "\"handle_content\".\"search_vector\" OPERATOR(public.@@) to_tsquery($1::regconfig, $2)", "english" },
        { "search_vector=plfts.a%20b", "OPERATOR(public.@@) plainto_tsquery($1)", "a b" },
        { "search_vector=phfts(simple).a+b", "OPERATOR(public.@@) phraseto_tsquery($1::regconfig, $2)", "simple" },
        { "search_vector=wfts.a", "OPERATOR(public.@@) websearch_to_tsquery($1)", "a" },
        { "search_vector=not.wfts.a", "NOT (\"handle_content\".\"search_vector\" OPERATOR(public.@@) websearch_to_tsquery($1))", "a" },
        { "title=fts.a", "to_tsvector(\"handle_content\".\"title\"::text) @@ to_tsquery($1)", "a" },
        /* operator modifiers: postgrest-js's likeAnyOf and friends */
        { "title=like(any).{a*,*b}", "\"handle_content\".\"title\"::text LIKE ANY($1::text[])", "{a%,%b}" },
        { "title=like(all).{a*,*b}", "\"handle_content\".\"title\"::text LIKE ALL($1::text[])", "{a%,%b}" },
        { "title=ilike(any).{a*,%22b,*c%22}", "\"title\"::text ILIKE ANY($1::text[])", "{a%,\"b,%c\"}" },
        { "title=ilike(all).{*x*}", "\"title\"::text ILIKE ALL($1::text[])", "{%x%}" },
        { "title=not.like(any).{a*}", "NOT (\"handle_content\".\"title\"::text LIKE ANY($1::text[]))", "{a%}" },
        { "title=match(any).{^a,b$}", "\"title\"::text ~ ANY($1::text[])", "{^a,b$}" },
        { "title=imatch(all).{a,b}", "\"title\"::text ~* ALL($1::text[])", "{a,b}" },
        { "view_count=eq(any).{1,2}", "\"handle_content\".\"view_count\" = ANY($1::bigint[])", "{1,2}" },
        { "view_count=gt(any).{1,2}", "\"view_count\" > ANY($1::bigint[])", "{1,2}" },
        { "view_count=gte(all).{1,2}", "\"view_count\" >= ALL($1::bigint[])", "{1,2}" },
        { "view_count=lt(all).{5}", "\"view_count\" < ALL($1::bigint[])", "{5}" },
        { "view_count=lte(any).{}", "\"view_count\" <= ANY($1::bigint[])", "{}" },
        { "visibility=eq(any).{public,unlisted}", "\"visibility\" = ANY($1::visibility[])", "{public,unlisted}" },
        { "deleted_at=lt(all).{2020-01-01}", "\"deleted_at\" < ALL($1::timestamp with time zone[])", "{2020-01-01}" },
        { "title=like(any).{%22');drop%20table%20x;--%22}", "LIKE ANY($1::text[])", "{\"');drop table x;--\"}" },
        /* ranges */
        { "title=sl.[1,2)", "\"title\" << $1", "[1,2)" },
        { "title=sr.[1,2)", "\"title\" >> $1", "[1,2)" },
        { "title=nxr.[1,2)", "\"title\" &< $1", "[1,2)" },
        { "title=nxl.[1,2)", "\"title\" &> $1", "[1,2)" },
        { "title=not.adj.[1,2)", "NOT (\"handle_content\".\"title\" -|- $1)", "[1,2)" },
        { "title=eq.", "\"handle_content\".\"title\" = $1", "" },
        { "title=eq.a.b.c", "= $1", "a.b.c" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = get(cases[i].q);
        is_int(rc, SV_OK, cases[i].q);
        if (rc != SV_OK) {
            printf("# %s: %s\n", err.message, err.details ? err.details : "");
            continue;
        }
        ok(has(cases[i].sql), cases[i].q);
        if (!has(cases[i].sql))
            printf("# sql: %s\n", plan.sql);
        is_str(param(1), cases[i].p1, cases[i].q);
        ok(sql_is_clean(), "quotes balanced");
    }
    is_int(get("search_vector=fts(english).cooking%20%26%20recipe"), SV_OK, "fts with config");
    is_str(param(2), "cooking & recipe", "fts query text is a parameter");
    /* A text search is planned for its own term (run unnamed), other
     * reads go through the prepared-statement cache. */
    is_int(plan.custom_plan, 1, "a text search asks for a custom plan");
    is_int(get("title=eq.a&or=(search_vector.wfts.b,title.eq.c)"), SV_OK, "fts inside or=");
    is_int(plan.custom_plan, 1, "so does one inside or=");
    is_int(get("title=eq.a"), SV_OK, "eq");
    is_int(plan.custom_plan, 0, "a read without text search does not");

    static const struct { const char *q, *sql; } is_cases[] = {
        { "deleted_at=is.null", "\"deleted_at\" IS NULL" },
        { "deleted_at=is.not_null", "\"deleted_at\" IS NOT NULL" },
        { "deleted_at=not.is.null", "NOT (\"handle_content\".\"deleted_at\" IS NULL)" },
        { "title=is.true", "IS TRUE" },
        { "title=is.false", "IS FALSE" },
        { "title=is.unknown", "IS UNKNOWN" },
    };
    for (size_t i = 0; i < sizeof(is_cases) / sizeof(is_cases[0]); i++) {
        is_int(get(is_cases[i].q), SV_OK, is_cases[i].q);
        ok(has(is_cases[i].sql), is_cases[i].q);
        is_int(plan.nparams, 0, "is. takes no parameter");
    }
    is_int(get("select=id,deleted_at&order=deleted_at"), SV_OK, "deleted_at only selected and ordered");
    ok(has("AND \"handle_content\".\"deleted_at\" IS NULL"), "selecting deleted_at does not show soft-deleted rows");
    is_int(get("deleted_at=not.is.null"), SV_OK, "filter on deleted_at");
    ok(!has("AND \"handle_content\".\"deleted_at\" IS NULL"), "naming deleted_at shows soft-deleted rows");

    is_int(get("title=eq.a&view_count=gt.1"), SV_OK, "two filters");
    ok(has("\"title\" = $1 AND \"handle_content\".\"view_count\" > $2"), "joined with AND");
    is_int(get("title=eq.a&title=neq.b"), SV_OK, "two filters on one column");
    is_int(plan.nparams, 2, "both kept");

    is_int(get("title=a"), SV_ERROR, "value without operator");
    is_str(err.code, "PGRST100", "PGRST100");
    is_int(get("title=foo.bar"), SV_ERROR, "unknown operator");
    is_int(err.status, 400, "unknown operator: 400");
    is_int(get("title=is.maybe"), SV_ERROR, "bad is. value");
    is_int(get("title=in.a,b"), SV_ERROR, "in. without parentheses");
    is_int(get("title=in.(a,%22b)"), SV_ERROR, "in. with an open quote");
    is_int(get("title=eq(english).a"), SV_ERROR, "config on a non-fts operator");
    static const char *const bad_quant[] = {
        "title=like(any).a*",          /* not a list */
        "title=like(any).(a,b)",       /* in.'s form is not PostgREST's here */
        "title=like(some).{a}",        /* unknown modifier */
        "title=like(any.{a}",          /* unclosed */
        "title=like(any){a}",          /* no dot */
        "title=neq(any).{a}",          /* neq takes no modifier in PostgREST */
        "title=in(any).{a}",
        "title=is(all).{null}",
        "search_vector=fts(any)x.{a}",
        "tags=eq(any).{a,b}",          /* an array column */
        "title=like(any).{a",
        "title=like(any).",
    };
    for (size_t i = 0; i < sizeof(bad_quant) / sizeof(bad_quant[0]); i++) {
        is_int(get(bad_quant[i]), SV_ERROR, bad_quant[i]);
        is_int(err.status, 400, "400");
        is_str(err.code, "PGRST100", "PGRST100");
    }
    is_int(get("search_vector=fts(any).a"), SV_OK, "fts(any) is a text-search config named any, as in PostgREST");
    is_str(param(1), "any", "the config");
    is_int(get("title=fts(english.a"), SV_ERROR, "unclosed fts config");
    is_int(get("nope=eq.1"), SV_ERROR, "filter on an unknown column");
    is_str(err.code, "42703", "42703");
    is_int(get("title;drop=eq.1"), SV_ERROR, "SQL in a column name");
    is_int(get("%22title%22%20OR%201=1--=eq.1"), SV_ERROR, "SQL in a quoted column name");
    is_int(get("title=eq.1'%20OR%20'1'='1"), SV_OK, "SQL in a value is just a value");
    is_str(param(1), "1' OR '1'='1", "the value is a parameter");
    ok(!has("OR '1'"), "and never in the SQL");
    is_int(get("title=eq.a%00b"), SV_ERROR, "NUL byte refused");
    is_int(err.status, 400, "NUL: 400");
    is_int(get("ti%00tle=eq.a"), SV_ERROR, "NUL byte in a key refused");
}

static void test_logic(void)
{
    is_int(get("or=(title.eq.a,view_count.gt.2)"), SV_OK, "or=");
    ok(has("(\"handle_content\".\"title\" = $1 OR \"handle_content\".\"view_count\" > $2)"), "or SQL");
    is_int(get("and=(title.eq.a,view_count.gt.2)"), SV_OK, "and=");
    ok(has("(\"handle_content\".\"title\" = $1 AND \"handle_content\".\"view_count\" > $2)"), "and SQL");
    is_int(get("not.or=(title.eq.a,title.eq.b)"), SV_OK, "not.or=");
    ok(has("NOT (\"handle_content\".\"title\" = $1 OR"), "not.or SQL");
    is_int(get("or=(title.eq.a,and(view_count.gt.1,view_count.lt.5))"), SV_OK, "nested and");
    ok(has("OR (\"handle_content\".\"view_count\" > $2 AND \"handle_content\".\"view_count\" < $3))"), "nested SQL");
    is_int(get("or=(title.eq.a,not.and(view_count.gt.1,view_count.lt.5))"), SV_OK, "nested not.and");
    ok(has("OR NOT (\"handle_content\""), "nested not SQL");
    is_int(get("or=(title.not.eq.a,title.is.null)"), SV_OK, "not inside a tree");
    ok(has("NOT (\"handle_content\".\"title\" = $1) OR \"handle_content\".\"title\" IS NULL"), "negated item");
    is_int(get("or=(title.eq.%22a,b%22,title.in.(c,%22d,e%22))"), SV_OK, "quoted values in a tree");
    is_str(param(1), "a,b", "quoted value unquoted");
    is_str(param(2), "{\"c\",\"d,e\"}", "in list inside a tree");
    is_int(get("or=(search_vector.fts(english).a,title.eq.b)"), SV_OK, "fts with config in a tree");
    is_str(param(1), "english", "config parameter");
    is_int(get("or=(title.like(any).{a*,*b},title.ilike(all).{%22x,y%22,z},view_count.eq(any).{1,2})"), SV_OK,
           "(any)/(all) lists in a tree: their commas do not split the tree");
    ok(has("(\"handle_content\".\"title\"::text LIKE ANY($1::text[]) OR \"handle_content\".\"title\"::text ILIKE ALL($2::text[]) OR "
           "\"handle_content\".\"view_count\" = ANY($3::bigint[]))"), "tree SQL");
    is_str(param(1), "{a%,%b}", "first list");
    is_str(param(2), "{\"x,y\",z}", "second list, quoted comma kept");
    is_str(param(3), "{1,2}", "third list");
    is_int(get("or=(tags.cs.{a,b},title.eq.c)"), SV_OK, "cs.{a,b} in a tree");
    is_str(param(1), "{a,b}", "the whole array");
    is_str(param(2), "c", "then the next item");
    is_int(get("or=(title.eq.{a,title.eq.b)"), SV_OK, "an unclosed brace is an ordinary character");
    is_str(param(1), "{a", "first value");
    is_str(param(2), "b", "second value");
    is_int(get("or=(title.like(any).{a,title.eq.b)"), SV_ERROR, "an unclosed (any) list in a tree");

    is_int(get("or=(title.eq.a"), SV_ERROR, "unbalanced parenthesis");
    is_int(get("or=title.eq.a)"), SV_ERROR, "missing opening parenthesis");
    is_int(get("or=((title.eq.a)"), SV_ERROR, "unbalanced nested");
    is_int(get("or=()"), SV_ERROR, "empty tree");
    is_int(get("or=(title.eq.a,)"), SV_ERROR, "empty item");
    is_int(get("or=(title)"), SV_ERROR, "item without operator");
    is_int(get("or=(nope.eq.1)"), SV_ERROR, "unknown column in a tree");
    is_str(err.code, "42703", "42703 in a tree");
    is_int(get("or=(title.eq.%22a)"), SV_ERROR, "unbalanced quote in a tree");
    is_int(get("or=(or(or(or(or(or(or(or(or(or(title.eq.a))))))))))"), SV_ERROR, "too deep");
    is_int(err.status, 400, "too deep: 400");
}

static void test_order_limit(void)
{
    is_int(get("order=view_count.desc.nullslast,title"), SV_OK, "order");
    ok(has("ORDER BY \"handle_content\".\"view_count\" DESC NULLS LAST, \"handle_content\".\"title\")"),
       "order SQL");
    is_int(get("order=title.asc.nullsfirst"), SV_OK, "asc nullsfirst");
    ok(has("\"title\" ASC NULLS FIRST"), "asc nullsfirst SQL");
    is_int(get("order=title.sideways"), SV_ERROR, "bad direction");
    is_int(get("order=nope.desc"), SV_ERROR, "unknown order column");
    is_int(get("order=title;drop"), SV_ERROR, "SQL in order");
    is_int(get("order="), SV_ERROR, "empty order");

    is_int(get("limit=10&offset=20"), SV_OK, "limit/offset");
    ok(has(" LIMIT 10 OFFSET 20)"), "limit SQL");
    is_int(plan.offset, 20, "plan offset");
    is_int(get("limit=-1"), SV_ERROR, "negative limit");
    is_int(err.status, 400, "negative limit: 400");
    is_int(get("limit=1e3"), SV_ERROR, "non-integer limit");
    is_int(get("limit=99999999999999999999999"), SV_ERROR, "huge limit");
    is_int(get("offset=abc"), SV_ERROR, "bad offset");
    is_int(get("limit=0"), SV_OK, "limit=0");
    ok(has(" LIMIT 0)"), "limit 0 SQL");

    is_int(run(SV_HTTP_GET, "", NULL, NULL, "0-9", NULL), SV_OK, "Range 0-9");
    ok(has(" LIMIT 10)"), "Range → LIMIT 10");
    is_int(run(SV_HTTP_GET, "", NULL, NULL, "10-19", NULL), SV_OK, "Range 10-19");
    ok(has(" LIMIT 10 OFFSET 10)"), "Range → LIMIT/OFFSET");
    is_int(plan.offset, 10, "offset from Range");
    is_int(run(SV_HTTP_GET, "", NULL, NULL, "5-", NULL), SV_OK, "open Range");
    ok(has(" OFFSET 5)") && !has("LIMIT"), "open Range → OFFSET only");
    is_int(run(SV_HTTP_GET, "limit=3", NULL, NULL, "0-9", NULL), SV_OK, "Range and limit");
    ok(has(" LIMIT 3)"), "the smaller limit wins");
    is_int(run(SV_HTTP_GET, "", NULL, NULL, "9-0", NULL), SV_ERROR, "inverted Range");
    is_int(err.status, 416, "inverted Range: 416");
    is_int(run(SV_HTTP_GET, "", NULL, NULL, "x-y", NULL), SV_ERROR, "garbage Range");
    is_int(err.code[0], 'P', "PGRST103");

    is_int(run(SV_HTTP_GET, "", NULL, "count=exact", NULL, NULL), SV_OK, "count=exact");
    ok(has("(SELECT pg_catalog.count(*) FROM public.\"handle_content\" WHERE"), "count subquery");
    is_int(plan.count, 1, "plan.count");
    is_int(run(SV_HTTP_GET, "", NULL, NULL, NULL, "application/vnd.pgrst.object+json"), SV_OK, "single");
    is_int(plan.single, 1, "plan.single");
    ok(has("(pg_catalog.json_agg(_pgrst_s) -> 0)::text"), "single body is the first element");
    is_int(run(SV_HTTP_HEAD, "", NULL, NULL, NULL, NULL), SV_OK, "HEAD");
    ok(has("NULL::text FROM pgrst_source"), "HEAD builds no body");
    is_int(plan.has_body, 0, "HEAD has no body");
}

static void test_writes(void)
{
    is_int(run(SV_HTTP_POST, "", "{\"title\":\"a\",\"tags\":[\"x\"]}", "return=representation", NULL, NULL),
           SV_OK, "insert an object");
    ok(has("INSERT INTO public.\"handle_content\" AS \"handle_content\" (\"title\", \"tags\") SELECT _pgrst_b.\"title\", _pgrst_b.\"tags\" "
           "FROM pg_catalog.json_populate_recordset(NULL::public.\"handle_content\", $1::json) _pgrst_b"),
       "insert SQL");
    is_str(param(1), "[{\"title\":\"a\",\"tags\":[\"x\"]}]", "object wrapped into an array");
    ok(has("RETURNING \"handle_content\".*"), "representation returns rows");
    is_int(plan.status, 201, "201");
    is_int(plan.has_body, 1, "with body");

    is_int(run(SV_HTTP_POST, "", "[{\"title\":\"a\"},{\"view_count\":1}]", NULL, NULL, NULL), SV_OK, "bulk insert");
    ok(has("(\"title\", \"view_count\")"), "union of keys");
    ok(!has("RETURNING"), "minimal: no RETURNING");
    is_int(plan.has_body, 0, "minimal: no body");
    is_int(run(SV_HTTP_POST, "columns=%22title%22", "[{\"title\":\"a\",\"view_count\":1}]", NULL, NULL, NULL),
           SV_OK, "columns=");
    ok(has("(\"title\") SELECT"), "only the listed columns");
    is_int(run(SV_HTTP_POST, "", "[{\"title\":\"a\"},{\"view_count\":1}]", "missing=default", NULL, NULL),
           SV_OK, "missing=default");
    ok(has("CASE WHEN _pgrst_j.v::jsonb ? 'title' THEN _pgrst_b.\"title\" ELSE NULL END"), "absent key: default");
    ok(has("CASE WHEN _pgrst_j.v::jsonb ? 'view_count' THEN _pgrst_b.\"view_count\" ELSE 0 END"), "default expression");
    ok(has("LATERAL pg_catalog.json_populate_record(NULL::public.\"handle_content\", _pgrst_j.v) _pgrst_b"),
       "one record per element");
    is_int(run(SV_HTTP_POST, "", "[]", NULL, NULL, NULL), SV_OK, "empty array");
    is_int(run(SV_HTTP_POST, "", "{}", NULL, NULL, NULL), SV_OK, "empty object");
    ok(has("SELECT FROM pg_catalog.json_array_elements($1::json)"), "all defaults");
    is_int(run(SV_HTTP_POST, "", "{\"nope\":1}", NULL, NULL, NULL), SV_ERROR, "unknown key");
    is_str(err.code, "PGRST204", "PGRST204");
    is_int(run(SV_HTTP_POST, "", "{\"title\":", NULL, NULL, NULL), SV_ERROR, "broken JSON");
    is_str(err.code, "PGRST102", "PGRST102");
    is_int(run(SV_HTTP_POST, "", "{} x", NULL, NULL, NULL), SV_ERROR, "trailing garbage");
    is_int(run(SV_HTTP_POST, "", "[1,2]", NULL, NULL, NULL), SV_ERROR, "array of scalars");
    is_int(run(SV_HTTP_POST, "", "\"x\"", NULL, NULL, NULL), SV_ERROR, "scalar body");
    is_int(run(SV_HTTP_POST, "", "", NULL, NULL, NULL), SV_ERROR, "empty body");
    is_int(run(SV_HTTP_POST, "title=eq.a", "{}", NULL, NULL, NULL), SV_ERROR, "filters on insert");

    is_int(run(SV_HTTP_POST, "on_conflict=id", "{\"id\":\"x\",\"title\":\"a\"}",
               "resolution=merge-duplicates,return=representation", NULL, NULL), SV_OK, "upsert");
    /* PostgREST: every column sent is set, the conflict target's too,
     * sorted by name; the inserted rows are counted in pgrst.inserted */
    ok(has("ON CONFLICT (\"id\") DO UPDATE SET \"id\" = EXCLUDED.\"id\", \"title\" = EXCLUDED.\"title\" "
           "WHERE pg_catalog.set_config('pgrst.inserted', (coalesce(nullif(pg_catalog.current_setting("
           "'pgrst.inserted', true), '')::int, 0) - 1)::text, true) <> '-1' RETURNING"), "upsert SQL");
    ok(has("_pgrst_b WHERE pg_catalog.set_config('pgrst.inserted', (coalesce(nullif(pg_catalog.current_setting("
           "'pgrst.inserted', true), '')::int, 0) + 1)::text, true) <> '0' ON CONFLICT"),
       "rows offered to the insert are counted");
    ok(has("SELECT nullif(pg_catalog.current_setting('pgrst.inserted', true), '')::bigint, pg_catalog.count(*)"),
       "the inserted count is the total column");
    is_int(plan.resolution, 1, "merge-duplicates");
    is_int(plan.range_star, 1, "insert: Content-Range */…");
    is_int(run(SV_HTTP_POST, "on_conflict=title,id", "{\"title\":\"a\",\"id\":\"x\"}",
               "resolution=merge-duplicates,return=representation", NULL, NULL), SV_OK,
           "get-or-create: only the conflict columns sent");
    ok(has("DO UPDATE SET \"id\" = EXCLUDED.\"id\", \"title\" = EXCLUDED.\"title\" WHERE"),
       "still DO UPDATE (returns the existing row), columns sorted");
    ok(!has("DO NOTHING"), "not DO NOTHING");
    is_int(run(SV_HTTP_POST, "on_conflict=id", "{}", "resolution=merge-duplicates", NULL, NULL), SV_OK,
           "merge with nothing sent");
    ok(has("ON CONFLICT (\"id\") DO NOTHING"), "nothing to set: DO NOTHING");
    ok(has("RETURNING 1)"), "a merge without return= still counts its rows");
    is_int(run(SV_HTTP_POST, "on_conflict=id", "[{\"id\":\"x\"}]", "resolution=merge-duplicates,missing=default",
               NULL, NULL), SV_OK, "merge with missing=default");
    ok(has("_pgrst_b WHERE pg_catalog.set_config('pgrst.inserted'"), "counted there too");
    ok(sql_is_clean(), "balanced quotes");
    is_int(run(SV_HTTP_POST, "", "{\"id\":\"x\",\"title\":\"a\"}", "resolution=merge-duplicates", NULL, NULL),
           SV_OK, "upsert on the primary key");
    ok(has("ON CONFLICT (\"id\") DO UPDATE"), "primary key as the default target");
    is_int(run(SV_HTTP_POST, "on_conflict=id", "{\"id\":\"x\"}", "resolution=ignore-duplicates", NULL, NULL),
           SV_OK, "ignore-duplicates");
    ok(has("ON CONFLICT (\"id\") DO NOTHING"), "DO NOTHING");
    ok(!has("pgrst.inserted"), "ignore-duplicates: nothing counted (always 201)");
    is_int(run(SV_HTTP_POST, "on_conflict=nope", "{\"id\":\"x\"}", "resolution=merge-duplicates", NULL, NULL),
           SV_ERROR, "unknown on_conflict column");

    is_int(run(SV_HTTP_PATCH, "id=eq.1", "{\"title\":\"b\"}", NULL, NULL, NULL), SV_OK, "patch");
    ok(has("UPDATE public.\"handle_content\" AS \"handle_content\" SET \"title\" = _pgrst_b.\"title\" FROM "
           "pg_catalog.json_populate_record(NULL::public.\"handle_content\", $2::json) _pgrst_b WHERE \"handle_content\".\"id\" = $1"),
       "patch SQL");
    is_int(plan.status, 204, "patch minimal: 204");
    is_int(plan.range_star, 0, "patch: Content-Range 0-(N-1)");
    is_int(run(SV_HTTP_PATCH, "id=eq.1", "[{\"title\":\"b\"}]", NULL, NULL, NULL), SV_ERROR, "patch with an array");
    is_int(run(SV_HTTP_PATCH, "id=eq.1", "{\"title\":\"b\"}", "return=representation", NULL,
               "application/vnd.pgrst.object+json"), SV_OK, "patch single");
    ok(has("public.sv_rest_expect_one(pg_catalog.count(*))"), "single write checked in the statement");
    is_int(plan.status, 200, "patch representation: 200");

    is_int(run(SV_HTTP_DELETE, "id=eq.1", NULL, NULL, NULL, NULL), SV_OK, "delete (soft)");
    ok(has("UPDATE public.\"handle_content\" AS \"handle_content\" SET \"deleted_at\" = pg_catalog.now() "
           "WHERE (\"handle_content\".\"id\" = $1) AND \"handle_content\".\"deleted_at\" IS NULL"),
       "soft delete SQL");
    is_int(run(SV_HTTP_DELETE, "id=eq.1", NULL, "count=exact", NULL, NULL), SV_OK, "delete with count");
    ok(has("RETURNING 1"), "count needs RETURNING 1");
    is_int(run(SV_HTTP_DELETE, "limit=1", NULL, NULL, NULL, NULL), SV_ERROR, "limit on delete");

    sv_rest_table_def plain = tbl;
    plain.flags = 0;
    sv_rest_input in = { SV_HTTP_DELETE, "id=eq.1", NULL, NULL, NULL, NULL, NULL, 0 };
    is_int(sv_rest_translate(&arena, &plain, &in, &plan, &err), SV_OK, "hard delete");
    ok(has("DELETE FROM public.\"handle_content\" AS \"handle_content\" WHERE \"handle_content\".\"id\" = $1"),
       "delete SQL");

    /* pg-safeupdate, as on hosted Supabase: no row filter, no statement */
    static const char *const unfiltered[] = { "", "select=id", "columns=title", "select=id&columns=title",
                                              "on_conflict=id" };
    for (size_t i = 0; i < sizeof(unfiltered) / sizeof(unfiltered[0]); i++) {
        is_int(run(SV_HTTP_PATCH, unfiltered[i], "{\"title\":\"z\"}", NULL, NULL, NULL), SV_ERROR,
               unfiltered[i][0] ? unfiltered[i] : "unfiltered patch");
        is_int(err.status, 400, "unfiltered patch: 400");
        is_str(err.code, "21000", "unfiltered patch: 21000");
        is_str(err.message, "UPDATE requires a WHERE clause", "unfiltered patch: pg-safeupdate's message");
        ok(err.details == NULL && err.hint == NULL, "no details, no hint");
        is_int(run(SV_HTTP_DELETE, unfiltered[i], NULL, "return=representation", NULL, NULL), SV_ERROR,
               "unfiltered soft delete");
        is_str(err.code, "21000", "unfiltered delete: 21000");
        is_str(err.message, "DELETE requires a WHERE clause", "unfiltered delete: pg-safeupdate's message");
    }
    in.query = "";
    is_int(sv_rest_translate(&arena, &plain, &in, &plan, &err), SV_ERROR, "unfiltered hard delete");
    is_str(err.message, "DELETE requires a WHERE clause", "hard delete: the same message");
    is_int(run(SV_HTTP_PATCH, "or=(id.eq.1,title.eq.a)", "{\"title\":\"z\"}", NULL, NULL, NULL), SV_OK,
           "or= is a filter");
    is_int(run(SV_HTTP_PATCH, "not.and=(id.eq.1,title.eq.a)", "{\"title\":\"z\"}", NULL, NULL, NULL), SV_OK,
           "not.and= is a filter");
    is_int(run(SV_HTTP_DELETE, "title=not.is.null", NULL, NULL, NULL, NULL), SV_OK, "not.… is a filter");
    is_int(run(SV_HTTP_PATCH, "", "{}", NULL, NULL, NULL), SV_OK,
           "empty patch body: no UPDATE runs, nothing to refuse (as PostgREST)");
    is_int(run(SV_HTTP_POST, "", "{\"id\":\"x\"}", "resolution=merge-duplicates", NULL, NULL), SV_OK,
           "an upsert is no UPDATE statement: allowed");

    sv_rest_input csv = { SV_HTTP_POST, "", NULL, NULL, NULL, "text/csv", "a,b", 3 };
    is_int(sv_rest_translate(&arena, &tbl, &csv, &plan, &err), SV_ERROR, "CSV body");
    is_int(err.status, 415, "415");
}

static void test_rpc(void)
{
    const char *names[] = { "query", "config", "max_results" };
    const char *types[] = { "text", "regconfig", "integer" };
    sv_rest_function_def f = { "search_content", names, types, 3, 2, 1, "record" };
    sv_rest_input in = { SV_HTTP_POST, "", NULL, NULL, NULL, NULL,
                         "{\"query\":\"a b\",\"max_results\":5}", 0 };
    in.body_len = strlen(in.body);
    is_int(sv_rest_translate_rpc(&arena, &f, &in, &plan, &err), SV_OK, "rpc POST");
    ok(!plan.read_only, "POST rpc runs read-write");
    ok(has("FROM public.\"search_content\"(\"query\" => $1::text, \"max_results\" => $2::integer) _pgrst_s"),
       "named arguments");
    is_str(param(1), "a b", "string argument");
    is_str(param(2), "5", "number argument as text");

    sv_rest_input g = { SV_HTTP_GET, "query=a+b&config=simple", NULL, NULL, NULL, NULL, NULL, 0 };
    is_int(sv_rest_translate_rpc(&arena, &f, &g, &plan, &err), SV_OK, "rpc GET");
    is_str(param(1), "a b", "query-string argument");
    ok(plan.read_only, "GET rpc runs read-only");
    g.query = "nope=1";
    is_int(sv_rest_translate_rpc(&arena, &f, &g, &plan, &err), SV_ERROR, "unknown argument");
    is_int(err.status, 404, "404");
    is_str(err.code, "PGRST202", "PGRST202");
    is_str(err.message, "Could not find the function public.search_content(nope) in the schema cache",
           "one argument named");
    is_str(err.details, "Searched for the function public.search_content with parameter nope, but no "
                        "matches were found in the schema cache.", "details: parameter");
    is_str(err.hint, "Perhaps you meant to call the function public.search_content(config, max_results, query)",
           "hint: the function's own parameters, sorted");
    g.query = "query=a&zeta=1&max_results=2";
    is_int(sv_rest_translate_rpc(&arena, &f, &g, &plan, &err), SV_ERROR, "one unknown among known ones");
    is_str(err.message, "Could not find the function public.search_content(max_results, query, zeta) in the "
                        "schema cache", "PostgREST lists every argument sent, sorted");
    is_str(err.details, "Searched for the function public.search_content with parameters max_results, query, "
                        "zeta, but no matches were found in the schema cache.", "details: parameters");
    g.query = "config=simple";
    is_int(sv_rest_translate_rpc(&arena, &f, &g, &plan, &err), SV_ERROR, "a required argument missing");
    is_str(err.code, "PGRST202", "is PGRST202 too");
    is_str(err.message, "Could not find the function public.search_content(config) in the schema cache",
           "missing required argument: message");
    g.query = "";
    is_int(sv_rest_translate_rpc(&arena, &f, &g, &plan, &err), SV_ERROR, "no argument at all");
    is_str(err.message, "Could not find the function public.search_content without parameters in the schema cache",
           "without parameters");
    sv_rest_input p2 = { SV_HTTP_POST, "", NULL, NULL, NULL, NULL, "{\"b\":1,\"query\":\"x\",\"a\":2}", 0 };
    p2.body_len = strlen(p2.body);
    is_int(sv_rest_translate_rpc(&arena, &f, &p2, &plan, &err), SV_ERROR, "POST with unknown keys");
    is_str(err.message, "Could not find the function public.search_content(a, b, query) in the schema cache",
           "POST: every key, sorted");
    is_str(err.details, "Searched for the function public.search_content with parameters a, b, query or with a "
                        "single unnamed json/jsonb parameter, but no matches were found in the schema cache.",
           "POST details mention the single json parameter");
    is_int(sv_rest_rpc_not_found(&arena, "nofn", &p2, &err), SV_ERROR, "unknown function");
    is_int(err.status, 404, "unknown function: 404");
    is_str(err.message, "Could not find the function public.nofn(a, b, query) in the schema cache",
           "unknown function: arguments listed");
    ok(err.hint == NULL, "unknown function: no hint");
    in.body = "{\"query\":null}";
    in.body_len = strlen(in.body);
    is_int(sv_rest_translate_rpc(&arena, &f, &in, &plan, &err), SV_OK, "null argument");
    ok(plan.params[0] == NULL, "JSON null is SQL NULL");
    in.body = "[1]";
    in.body_len = 3;
    is_int(sv_rest_translate_rpc(&arena, &f, &in, &plan, &err), SV_ERROR, "array body");

    sv_rest_function_def scalar = { "quota_status", NULL, NULL, 0, 0, 0, "jsonb" };
    sv_rest_input empty = { SV_HTTP_POST, "", NULL, NULL, NULL, NULL, NULL, 0 };
    is_int(sv_rest_translate_rpc(&arena, &scalar, &empty, &plan, &err), SV_OK, "scalar rpc");
    ok(has("coalesce(pg_catalog.to_json(public.\"quota_status\"())::text, 'null')"), "scalar as JSON");
}

static void test_hostile(void)
{
    /* long values, long lists, many filters, garbage bytes */
    size_t n = 200000;
    char *big = malloc(n + 32);
    memcpy(big, "title=eq.", 9);
    memset(big + 9, 'x', n);
    big[9 + n] = '\0';
    is_int(get(big), SV_OK, "200k-character value");
    is_int((long long)strlen(param(1)), (long long)n, "kept as one parameter");

    sv_buf b;
    sv_buf_init(&b, &arena, 1 << 16);
    sv_buf_puts(&b, "title=in.(");
    for (int i = 0; i < 10000; i++)
        sv_buf_printf(&b, "%sv%d", i ? "," : "", i);
    sv_buf_puts(&b, ")");
    is_int(get(b.data), SV_OK, "10000-element in list");
    is_int(plan.nparams, 1, "one array parameter");

    sv_buf_init(&b, &arena, 1 << 16);
    for (int i = 0; i < 1000; i++)
        sv_buf_printf(&b, "%stitle=eq.%d", i ? "&" : "", i);
    is_int(get(b.data), SV_ERROR, "1000 filters refused");
    is_int(err.status, 400, "too many filters: 400");

    sv_buf_init(&b, &arena, 1 << 16);
    sv_buf_puts(&b, "or=");
    for (int i = 0; i < 5000; i++)
        sv_buf_puts(&b, "(");
    is_int(get(b.data), SV_ERROR, "5000 open parentheses");

    const char *garbage[] = {
        "=", "&&&", "=eq.1", "select=", "select=,", "select=:", "select=::", "select=a:", "select=:title",
        "order=.", "order=title.", "or=", "or=(", "or=)", "and=(,)", "title=in.(", "title=in.)",
        "title=not.", "title=not.not.eq.1", "title=fts(", "title=fts().a", "%ff%fe=eq.1",
        "title=eq.%ff%fe", "select=%ff", "or=(title.eq.\\)", "limit=", "offset=-0",
        "select=title::", "select=\"\"", "title=in.(\"\\\")", "or=(title.in.(a,b)",
    };
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        int rc = get(garbage[i]);
        ok(rc == SV_OK ? sql_is_clean() : (err.status >= 400 && err.status < 500), garbage[i]);
    }
    free(big);
}

/* Random query strings assembled from the language's own tokens: every
 * translation either fails with a 4xx or yields SQL with balanced quotes
 * whose parameters are all present. Deterministic (fixed seed). */
static void test_fuzz(void)
{
    static const char *const tok[] = {
        "title", "view_count", "tags", "deleted_at", "search_vector", "nope", "\"title\"", "%22",
        "=", "&", ".", ",", "(", ")", ":", "::", "*", "eq", "not", "in", "is", "null", "fts",
        "(english)", "or", "and", "select", "order", "limit", "offset", "desc", "nullslast", "%00",
        "%ff", "'", ";", "--", "\\", "1", "-1", "{a,b}", "cs", "ov", "like", "text", "%2C", "+",
        "(any)", "(all)", "{", "}", "gt(any).", "like(all).{", "adj",
    };
    unsigned seed = 12345;
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        char q[512];
        size_t len = 0;
        int n = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 24;
        for (int k = 0; k < n; k++) {
            const char *t = tok[((seed = seed * 1103515245u + 12345u) >> 16) % (sizeof(tok) / sizeof(tok[0]))];
            size_t tl = strlen(t);
            if (len + tl >= sizeof(q))
                break;
            memcpy(q + len, t, tl);
            len += tl;
        }
        q[len] = '\0';
        int method = (seed >> 8) % 3 == 0 ? SV_HTTP_DELETE : SV_HTTP_GET;
        int rc = run(method, q, NULL, (seed >> 4) % 2 ? "count=exact" : NULL, NULL, NULL);
        int fine;
        if (rc == SV_OK) {
            fine = sql_is_clean();
            for (int p = 0; p < plan.nparams; p++)
                if (plan.params[p] == NULL)
                    fine = 0;
        } else {
            fine = err.status >= 400 && err.status < 500 && err.code != NULL && err.message != NULL;
        }
        if (!fine) {
            if (bad++ < 5)
                printf("# fuzz failure on: %s\n", q);
        }
        if ((i & 1023) == 0)
            sv_arena_reset(&arena);
    }
    is_int(bad, 0, "20000 random query strings: 4xx or clean SQL");
}

/* PostgREST's negotiation: q ranks, specificity breaks ties, the first
 * type made wins; nulls=stripped only as the one other parameter. */
static void test_negotiate(void)
{
    static const struct {
        const char   *accept;
        sv_rest_media want;
        const char   *name;
    } cases[] = {
        { NULL, SV_REST_MEDIA_JSON, "no Accept" },
        { "", SV_REST_MEDIA_JSON, "empty Accept" },
        { " , ", SV_REST_MEDIA_JSON, "only empty ranges" },
        { "application/json", SV_REST_MEDIA_JSON, "application/json" },
        { "*/*", SV_REST_MEDIA_JSON, "*/*" },
        { "application/vnd.pgrst.array+json", SV_REST_MEDIA_JSON, "array without the parameter is JSON" },
        { "application/vnd.pgrst.array+json;nulls=stripped", SV_REST_MEDIA_JSON_STRIPPED, "stripNulls()" },
        { "application/vnd.pgrst.array; nulls=stripped", SV_REST_MEDIA_JSON_STRIPPED, "array, space before the parameter" },
        { "application/vnd.pgrst.array+json;nulls=stripped;charset=utf-8", SV_REST_MEDIA_JSON,
          "another parameter besides nulls: not stripped (PostgREST's exact match)" },
        { "application/vnd.pgrst.array+json;nulls=stripped;q=0.5", SV_REST_MEDIA_JSON_STRIPPED,
          "q is cut off before the parameter check" },
        { "application/vnd.pgrst.object+json", SV_REST_MEDIA_OBJECT, ".single()" },
        { "application/vnd.pgrst.object", SV_REST_MEDIA_OBJECT, "object without +json" },
        { "application/vnd.pgrst.object+json;nulls=stripped", SV_REST_MEDIA_OBJECT_STRIPPED,
          ".single().stripNulls()" },
        { "application/json;q=0", SV_REST_MEDIA_JSON, "q=0 alone: still JSON, as PostgREST" },
        { "application/vnd.pgrst.object+json;q=0.5, application/json", SV_REST_MEDIA_JSON,
          "the higher q wins over the order" },
        { "application/json;q=0, application/vnd.pgrst.object+json;q=0.001", SV_REST_MEDIA_OBJECT,
          "q=0 ranks last" },
        { "application/json, application/vnd.pgrst.array+json;nulls=stripped", SV_REST_MEDIA_JSON_STRIPPED,
          "equal q: the more specific range first" },
        { "*/*, application/vnd.pgrst.object+json", SV_REST_MEDIA_OBJECT, "equal q: a wildcard last" },
        { "application/json, application/vnd.pgrst.object+json", SV_REST_MEDIA_JSON,
          "equal q and specificity: the first" },
        { "text/csv, application/json;q=0.1", SV_REST_MEDIA_JSON, "the first type made" },
        { "text/csv", SV_REST_MEDIA_NONE, "CSV is not made" },
        { "application/vnd.pgrst.plan+text; for=\"application/json\"", SV_REST_MEDIA_NONE, "plans are not made" },
        { "application/vnd.pgrst.array+jsonx;nulls=stripped", SV_REST_MEDIA_NONE, "no prefix match" },
        { "application/json;q=abc", SV_REST_MEDIA_JSON, "an unreadable q counts as 1" },
        { "application/vnd.pgrst.object+json;q=-1, application/json;q=0", SV_REST_MEDIA_JSON,
          "a negative q ranks below q=0 (wai-extra reads it as a number)" },
        { "application/vnd.pgrst.object+json;q=+1, application/json;q=0.5", SV_REST_MEDIA_OBJECT,
          "q=+1 is unreadable to Haskell's reads: 1" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        is_int(sv_rest_negotiate(cases[i].accept), cases[i].want, cases[i].name);

    char longest[300];
    memset(longest, ' ', sizeof(longest) - 1);
    memcpy(longest + 200, "application/json", 16);
    longest[sizeof(longest) - 1] = '\0';
    is_int(sv_rest_negotiate(longest), SV_REST_MEDIA_JSON, "spaces around a range do not count against its length");
    char params[600];
    snprintf(params, sizeof(params), "application/vnd.pgrst.object+json;charset=%0500d", 0);
    is_int(sv_rest_negotiate(params), SV_REST_MEDIA_OBJECT, "a range with long parameters: its type decides");
    snprintf(params, sizeof(params), "text/csv;q=0.5, application/vnd.pgrst.array+json;x=%0300d;nulls=stripped", 0);
    is_int(sv_rest_negotiate(params), SV_REST_MEDIA_JSON, "past 255 bytes, not stripped");

    is_str(sv_rest_media_content_type(SV_REST_MEDIA_JSON_STRIPPED),
           "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8", "PostgREST's stripped array type");
    is_str(sv_rest_media_content_type(SV_REST_MEDIA_OBJECT_STRIPPED),
           "application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8", "PostgREST's stripped object type");
    ok(sv_rest_media_content_type(SV_REST_MEDIA_JSON) == NULL, "plain JSON keeps the default type");

    is_int(run(SV_HTTP_GET, "", NULL, NULL, NULL, "application/vnd.pgrst.array+json;nulls=stripped"), SV_OK,
           "stripped read");
    ok(has("coalesce(pg_catalog.json_strip_nulls(pg_catalog.json_agg(_pgrst_s)), '[]')::text"),
       "the array goes through json_strip_nulls");
    is_int(plan.single, 0, "not single");
    is_int(run(SV_HTTP_GET, "", NULL, NULL, NULL, "application/vnd.pgrst.object+json;nulls=stripped"), SV_OK,
           "stripped single read");
    ok(has("(pg_catalog.json_strip_nulls(pg_catalog.json_agg(_pgrst_s) -> 0))::text"), "the object is stripped");
    is_int(plan.single, 1, "single");
    is_int(run(SV_HTTP_PATCH, "title=eq.a", "{\"title\":\"b\"}", "return=representation", NULL,
               "application/vnd.pgrst.object+json;nulls=stripped"), SV_OK, "stripped single write");
    ok(has("THEN (pg_catalog.json_strip_nulls(pg_catalog.json_agg(_pgrst_s) -> 0))::text END"),
       "a write's object is checked and stripped");
    is_int(run(SV_HTTP_GET, "", NULL, NULL, NULL, "application/vnd.pgrst.object+json;q=0.5, application/json"),
           SV_OK, "a read preferring JSON");
    is_int(plan.single, 0, "JSON ranked above the object: an array");
    ok(!has("json_strip_nulls"), "and nothing stripped");

    const char *names[] = { "query" };
    const char *types[] = { "text" };
    sv_rest_function_def set = { "search_content", names, types, 1, 0, 1, "record" };
    sv_rest_function_def one = { "quota_status", names, types, 1, 0, 0, "json" };
    sv_rest_input in = { SV_HTTP_GET, "query=a", NULL, NULL, "application/vnd.pgrst.array+json;nulls=stripped",
                         NULL, NULL, 0 };
    is_int(sv_rest_translate_rpc(&arena, &set, &in, &plan, &err), SV_OK, "stripped set-returning rpc");
    ok(has("coalesce(pg_catalog.json_strip_nulls(pg_catalog.json_agg(_pgrst_s)), '[]')::text"), "rows stripped");
    is_int(plan.media, SV_REST_MEDIA_JSON_STRIPPED, "answered as the stripped array type");
    is_int(sv_rest_translate_rpc(&arena, &one, &in, &plan, &err), SV_OK, "stripped scalar rpc");
    ok(has("coalesce(pg_catalog.json_strip_nulls(pg_catalog.to_json(public.\"quota_status\"(\"query\" => $1::text)))::text, 'null')"),
       "the value stripped");
    in.accept = "application/vnd.pgrst.object+json";
    is_int(sv_rest_translate_rpc(&arena, &set, &in, &plan, &err), SV_OK, ".single() on a set-returning rpc");
    ok(has("CASE WHEN public.sv_rest_expect_one(pg_catalog.count(*)) THEN (pg_catalog.json_agg(_pgrst_s) -> 0)::text END"),
       "one row as an object, else PGRST116 raised in the statement");
    is_int(plan.single, 1, "single");
    is_int(plan.media, SV_REST_MEDIA_OBJECT, "answered as the object type");
    is_int(sv_rest_translate_rpc(&arena, &one, &in, &plan, &err), SV_OK, ".single() on a scalar rpc");
    ok(!has("sv_rest_expect_one") && plan.single == 0, "a scalar is its value");
}

int main(void)
{
    sv_arena_init(&arena, 65536);
    test_select();
    test_filters();
    test_logic();
    test_order_limit();
    test_writes();
    test_rpc();
    test_negotiate();
    test_hostile();
    test_fuzz();
    sv_arena_free(&arena);
    return tap_done();
}
