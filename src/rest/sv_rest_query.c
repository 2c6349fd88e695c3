#include "rest/sv_rest_query.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/sv_json.h"
#include "http/sv_http.h"

/* --- building blocks ---------------------------------------------------- */

/* Translation state for one request. */
typedef struct sv_rq {
    sv_arena                *arena;
    const sv_rest_table_def *t;
    sv_error           *err;
    const char             **params;
    int                      nparams;
    int                      cap;
    int                      nfilters;
    int                      in_where;              /* resolving names of the WHERE clause */
    int                      mentions_deleted_at;   /* a filter names deleted_at */
    sv_rest_plan            *plan;
} sv_rq;

/* One decoded query parameter. */
typedef struct sv_qparam {
    const char *key;
    const char *value;
} sv_qparam;

static int sv_rq_fail(sv_rq *q, int status, const char *code, const char *message,
                      const char *details, const char *hint)
{
    return sv_fail_details(q->err, status, code, message, details, hint);
}

/* PostgREST's parse error: 400 PGRST100. */
static int sv_rq_parse_error(sv_rq *q, const char *what, const char *near)
{
    return sv_rq_fail(q, 400, "PGRST100", sv_arena_printf(q->arena, "\"failed to parse %s\"", what),
                      near ? sv_arena_printf(q->arena, "unexpected input near \"%.80s\"", near) : NULL,
                      NULL);
}

/* Adds a parameter value and returns its number ($n). */
static int sv_rq_param(sv_rq *q, const char *value)
{
    if (q->nparams == q->cap) {
        int cap = q->cap ? q->cap * 2 : 16;
        const char **p = sv_arena_alloc(q->arena, sizeof(*p) * (size_t)cap);
        if (q->nparams)
            memcpy(p, q->params, sizeof(*p) * (size_t)q->nparams);
        q->params = p;
        q->cap = cap;
    }
    q->params[q->nparams++] = value;
    return q->nparams;
}

void sv_rest_quote_ident(sv_buf *buf, const char *name)
{
    sv_buf_puts(buf, "\"");
    for (const char *p = name; *p; p++) {
        if (*p == '"')
            sv_buf_puts(buf, "\"\"");
        else
            sv_buf_append(buf, p, 1);
    }
    sv_buf_puts(buf, "\"");
}

/* "table"."column" */
static void sv_rq_colref(sv_rq *q, sv_buf *buf, const sv_rest_column *c)
{
    sv_rest_quote_ident(buf, q->t->name);
    sv_buf_puts(buf, ".");
    sv_rest_quote_ident(buf, c->name);
}

static const sv_rest_column *sv_rq_find_column(const sv_rest_table_def *t, const char *name)
{
    for (int i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return &t->cols[i];
    return NULL;
}

/* An identifier as a client writes it: bare, or double-quoted (postgrest-js
 * quotes the columns= list). Returns the unquoted name in the arena, or
 * NULL when the quoting is broken. */
static char *sv_rq_unquote(sv_rq *q, const char *s, size_t len)
{
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
        sv_buf b;
        sv_buf_init(&b, q->arena, len);
        for (size_t i = 1; i + 1 < len; i++) {
            if (s[i] == '"') {
                if (i + 2 < len && s[i + 1] == '"')
                    i++;
                else
                    return NULL;
            }
            sv_buf_append(&b, &s[i], 1);
        }
        return b.data;
    }
    for (size_t i = 0; i < len; i++)
        if (s[i] == '"')
            return NULL;
    return sv_arena_strndup(q->arena, s, len);
}

/* Resolves a column name against the whitelist; PostgreSQL's 42703 error
 * (as PostgREST relays it) when unknown. */
static const sv_rest_column *sv_rq_column(sv_rq *q, const char *s, size_t len)
{
    char *name = sv_rq_unquote(q, s, len);
    if (name == NULL || *name == '\0') {
        sv_rq_parse_error(q, "column name", sv_arena_strndup(q->arena, s, len));
        return NULL;
    }
    if (strstr(name, "->") != NULL) {
        sv_rq_fail(q, 400, "PGRST100", "JSON path operators (->, ->>) are not supported",
                   sv_arena_printf(q->arena, "%.80s", name), NULL);
        return NULL;
    }
    const sv_rest_column *c = sv_rq_find_column(q->t, name);
    if (c == NULL) {
        sv_rq_fail(q, 400, "42703",
                   sv_arena_printf(q->arena, "column %s.%.80s does not exist", q->t->name, name),
                   NULL, NULL);
        return NULL;
    }
    if (q->in_where && strcmp(c->name, "deleted_at") == 0)
        q->mentions_deleted_at = 1;
    return c;
}

/* Percent-decodes s[0..len) ('+' is a space, as URLSearchParams writes
 * it). A decoded NUL byte cannot travel as a text parameter: NULL. */
static char *sv_rq_decode(sv_arena *arena, const char *s, size_t len)
{
    char *out = sv_http_url_decode(arena, s, len, 1);
    /* sv_http_url_decode stops nowhere: a %00 shows up as an early NUL,
     * detectable by re-scanning the source for "%00". */
    for (size_t i = 0; i + 2 < len; i++)
        if (s[i] == '%' && s[i + 1] == '0' && s[i + 2] == '0')
            return NULL;
    return out;
}

/* Splits the raw query string into decoded key/value pairs. */
static int sv_rq_split_query(sv_rq *q, const char *query, sv_qparam **out, int *n)
{
    int cap = 8, count = 0;
    sv_qparam *ps = sv_arena_alloc(q->arena, sizeof(*ps) * (size_t)cap);
    const char *p = query ? query : "";

    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            size_t klen = eq ? (size_t)(eq - p) : len;
            char *key = sv_rq_decode(q->arena, p, klen);
            char *value = eq ? sv_rq_decode(q->arena, eq + 1, len - klen - 1)
                             : sv_arena_strdup(q->arena, "");
            if (key == NULL || value == NULL)
                return sv_rq_fail(q, 400, "PGRST100", "NUL bytes are not allowed in the query string",
                                  NULL, NULL);
            if (count == cap) {
                sv_qparam *grown = sv_arena_alloc(q->arena, sizeof(*ps) * (size_t)cap * 2);
                memcpy(grown, ps, sizeof(*ps) * (size_t)cap);
                ps = grown;
                cap *= 2;
            }
            ps[count].key = key;
            ps[count].value = value;
            count++;
            if (count > SV_REST_MAX_FILTERS * 2)
                return sv_rq_fail(q, 400, "PGRST100", "Too many query parameters", NULL, NULL);
        }
        p = amp ? amp + 1 : p + len;
    }
    *out = ps;
    *n = count;
    return SV_OK;
}

/* Parses a non-negative decimal integer (no sign, no spaces). */
static int sv_rq_parse_count(const char *s, long long *out)
{
    if (s == NULL || *s == '\0')
        return SV_ERROR;
    long long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return SV_ERROR;
        if (v > (LLONG_MAX - 9) / 10)
            return SV_ERROR;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return SV_OK;
}

/* Finds the end of one comma-separated item at nesting depth 0, honouring
 * double quotes (with backslash escapes), parentheses, and a value in
 * braces ("tags.cs.{a,b}", "title.like(any).{a*,b*}" in a logic tree: a
 * '{' right after a '.' with a '}' further on opens one, as PostgREST's
 * pPgArray). */
static const char *sv_rq_item_end(const char *p, const char *end)
{
    int depth = 0, quoted = 0, braces = 0;
    const char *start = p;
    for (; p < end; p++) {
        if (quoted) {
            if (*p == '\\' && p + 1 < end)
                p++;
            else if (*p == '"')
                quoted = 0;
            continue;
        }
        if (*p == '"')
            quoted = 1;
        else if (*p == '{' && (braces > 0 || (p > start && p[-1] == '.' && memchr(p, '}', (size_t)(end - p)))))
            braces++;
        else if (*p == '}' && braces > 0)
            braces--;
        else if (braces > 0)
            continue;
        else if (*p == '(')
            depth++;
        else if (*p == ')')
            depth--;
        else if (*p == ',' && depth == 0)
            return p;
    }
    return end;
}

/* --- select= ------------------------------------------------------------- */

static int sv_rq_cast_allowed(const char *type)
{
    static const char *const ok[] = {
        "text", "varchar", "int", "int2", "int4", "int8", "integer", "smallint", "bigint",
        "numeric", "real", "float4", "float8", "boolean", "bool", "json", "jsonb", "uuid",
        "date", "time", "timestamp", "timestamptz", "interval",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcmp(ok[i], type) == 0)
            return 1;
    return 0;
}

/* Appends the select list ("*" or column list with aliases and casts) to
 * buf, fully qualified so it can serve as a RETURNING list too. */
static int sv_rq_select(sv_rq *q, sv_buf *buf, const char *select)
{
    if (select == NULL || *select == '\0' || strcmp(select, "*") == 0) {
        sv_rest_quote_ident(buf, q->t->name);
        sv_buf_puts(buf, ".*");
        return SV_OK;
    }
    const char *p = select, *end = select + strlen(select);
    int first = 1;
    while (p <= end) {
        const char *ie = sv_rq_item_end(p, end);
        /* strip spaces around the item */
        const char *s = p, *e = ie;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if (s == e)
            return sv_rq_parse_error(q, "select", p);
        if (memchr(s, '(', (size_t)(e - s)) || memchr(s, ')', (size_t)(e - s)))
            return sv_rq_fail(q, 400, "PGRST100",
                              "Embedded resources and aggregates in select are not supported",
                              sv_arena_strndup(q->arena, s, (size_t)(e - s) > 80 ? 80 : (size_t)(e - s)),
                              NULL);
        if (!first)
            sv_buf_puts(buf, ", ");
        first = 0;
        if (e - s == 1 && *s == '*') {
            sv_rest_quote_ident(buf, q->t->name);
            sv_buf_puts(buf, ".*");
        } else {
            const char *alias = NULL;
            size_t alias_len = 0;
            const char *colon = NULL;
            /* alias:col — the first single ':' not part of '::' */
            for (const char *c = s; c < e; c++) {
                if (*c == '"') {
                    const char *close = memchr(c + 1, '"', (size_t)(e - c - 1));
                    if (close == NULL)
                        return sv_rq_parse_error(q, "select", s);
                    c = close;
                    continue;
                }
                if (*c == ':' && (c + 1 >= e || c[1] != ':')) {
                    colon = c;
                    break;
                }
                if (*c == ':' && c + 1 < e && c[1] == ':')
                    break;
            }
            if (colon != NULL) {
                alias = s;
                alias_len = (size_t)(colon - s);
                s = colon + 1;
            }
            const char *cast = NULL;
            for (const char *c = s; c + 1 < e; c++) {
                if (*c == '"') {
                    const char *close = memchr(c + 1, '"', (size_t)(e - c - 1));
                    if (close == NULL)
                        return sv_rq_parse_error(q, "select", s);
                    c = close;
                    continue;
                }
                if (c[0] == ':' && c[1] == ':') {
                    cast = c;
                    break;
                }
            }
            const sv_rest_column *col = sv_rq_column(q, s, (size_t)((cast ? cast : e) - s));
            if (col == NULL)
                return SV_ERROR;
            sv_rq_colref(q, buf, col);
            if (cast != NULL) {
                char *type = sv_arena_strndup(q->arena, cast + 2, (size_t)(e - cast - 2));
                if (!sv_rq_cast_allowed(type))
                    return sv_rq_fail(q, 400, "PGRST100",
                                      sv_arena_printf(q->arena, "cast to \"%.40s\" is not allowed", type),
                                      NULL, "Allowed casts: text, integer types, numeric, boolean, json, jsonb, uuid, date/time types");
                sv_buf_printf(buf, "::%s", type);
            }
            sv_buf_puts(buf, " AS ");
            if (alias != NULL) {
                char *a = sv_rq_unquote(q, alias, alias_len);
                if (a == NULL || *a == '\0' || strlen(a) > 63)
                    return sv_rq_parse_error(q, "select alias", alias);
                sv_rest_quote_ident(buf, a);
            } else {
                sv_rest_quote_ident(buf, col->name);
            }
        }
        p = ie + 1;
    }
    return SV_OK;
}

/* --- filters --------------------------------------------------------------- */

/* Builds a PostgreSQL array literal from "(a,b,\"c,d\")" (in.) or a
 * "{a,b}" literal already in PostgreSQL syntax (cs/cd/ov). */
static char *sv_rq_list_literal(sv_rq *q, const char *v)
{
    size_t len = strlen(v);
    if (len >= 2 && v[0] == '{' && v[len - 1] == '}')
        return sv_arena_strdup(q->arena, v);
    if (len < 2 || v[0] != '(' || v[len - 1] != ')')
        return NULL;
    sv_buf b;
    sv_buf_init(&b, q->arena, len + 16);
    sv_buf_puts(&b, "{");
    const char *p = v + 1, *end = v + len - 1;
    int first = 1;
    if (p == end) {
        sv_buf_puts(&b, "}");
        return b.data;
    }
    while (p <= end) {
        const char *ie = p;
        int quoted = 0;
        /* one element: up to the next top-level comma */
        for (; ie < end; ie++) {
            if (quoted) {
                if (*ie == '\\' && ie + 1 < end)
                    ie++;
                else if (*ie == '"')
                    quoted = 0;
            } else if (*ie == '"') {
                quoted = 1;
            } else if (*ie == ',') {
                break;
            }
        }
        if (quoted)
            return NULL;
        const char *s = p, *e = ie;
        if (!first)
            sv_buf_puts(&b, ",");
        first = 0;
        sv_buf_puts(&b, "\"");
        if (e - s >= 2 && *s == '"' && e[-1] == '"') {
            s++;
            e--;
        }
        for (const char *c = s; c < e; c++) {
            if (*c == '\\' && c + 1 < e && (c[1] == '"' || c[1] == '\\'))
                c++;
            if (*c == '"' || *c == '\\')
                sv_buf_puts(&b, "\\");
            sv_buf_append(&b, c, 1);
        }
        sv_buf_puts(&b, "\"");
        p = ie + 1;
    }
    sv_buf_puts(&b, "}");
    return b.data;
}

/* The operators PostgREST lets take the modifiers (any) and (all)
 * ("Operator modifiers"): col <op> ANY|ALL(array). NULL when op takes
 * none; *text says the column is compared as text (like its plain form). */
static const char *sv_rq_quant_op(const char *op, int *text)
{
    static const struct { const char *name, *sql; int text; } ops[] = {
        { "eq", "=", 0 },        { "gt", ">", 0 },          { "gte", ">=", 0 },
        { "lt", "<", 0 },        { "lte", "<=", 0 },        { "like", "LIKE", 1 },
        { "ilike", "ILIKE", 1 }, { "match", "~", 1 },       { "imatch", "~*", 1 },
    };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(op, ops[i].name) == 0) {
            *text = ops[i].text;
            return ops[i].sql;
        }
    }
    return NULL;
}

static int sv_rq_is_fts(const char *op)
{
    return strcmp(op, "fts") == 0 || strcmp(op, "plfts") == 0 || strcmp(op, "phfts") == 0 ||
           strcmp(op, "wfts") == 0;
}

/* like/ilike's wildcard is '*' in the URL, as in PostgREST, and '%' in SQL;
 * other operators take the value as sent. */
static char *sv_rq_pattern(sv_rq *q, const char *op, const char *value)
{
    char *v = sv_arena_strdup(q->arena, value);
    if (strstr(op, "like") != NULL)
        for (char *x = v; *x; x++)
            if (*x == '*')
                *x = '%';
    return v;
}

/* col <op> ANY|ALL($n::type[]) for "op(any).{a,b}": the value is a
 * PostgreSQL array literal, as PostgREST passes it (the same "{a,\"b,c\"}"
 * as cs.), bound as one parameter. An array column would compare arrays
 * with elements: refused rather than failing in PostgreSQL. */
static int sv_rq_quantified(sv_rq *q, sv_buf *buf, const sv_rest_column *c, const char *opval,
                            const char *op, const char *quant, const char *value)
{
    int as_text = 0;
    const char *sqlop = sv_rq_quant_op(op, &as_text);
    size_t vl = strlen(value);
    if (vl < 2 || value[0] != '{' || value[vl - 1] != '}')
        return sv_rq_parse_error(q, "filter value (expected {a,b} after (any) or (all))", value);
    if (!as_text && strchr(c->type, '[') != NULL)
        return sv_rq_fail(q, 400, "PGRST100",
                          sv_arena_printf(q->arena, "\"failed to parse filter (%.40s)\"", opval),
                          "(any) and (all) compare a column with a list of its values; "
                          "an array column takes cs., cd. or ov.", NULL);
    sv_rq_colref(q, buf, c);
    sv_buf_printf(buf, "%s %s %s($%d::", as_text ? "::text" : "", sqlop, quant,
                  sv_rq_param(q, sv_rq_pattern(q, op, value)));
    sv_buf_puts(buf, as_text ? "text" : c->type);
    sv_buf_puts(buf, "[])");
    return SV_OK;
}

/* The SQL of an operator that compares the column with the value as it
 * is, or NULL. */
static const char *sv_rq_binary_op(const char *op)
{
    static const struct { const char *name, *sql; } binops[] = {
        { "eq", "=" },   { "neq", "<>" }, { "gt", ">" },  { "gte", ">=" }, { "lt", "<" },
        { "lte", "<=" }, { "cs", "@>" },  { "cd", "<@" }, { "ov", "&&" },
        { "isdistinct", "IS DISTINCT FROM" },
        /* ranges (no exposed column is one today: PostgreSQL then answers
         * that the operator does not exist for the column's type) */
        { "sl", "<<" },  { "sr", ">>" },  { "nxr", "&<" }, { "nxl", "&>" }, { "adj", "-|-" },
    };
    for (size_t i = 0; i < sizeof(binops) / sizeof(binops[0]); i++)
        if (strcmp(op, binops[i].name) == 0)
            return binops[i].sql;
    return NULL;
}

/* fts, plfts, phfts, wfts: col @@ to_tsquery([$cfg::regconfig, ]$n). */
static void sv_rq_text_search(sv_rq *q, sv_buf *buf, const sv_rest_column *c, const char *op,
                              const char *config, const char *value)
{
    const char *fn = strcmp(op, "fts") == 0 ? "to_tsquery"
                   : strcmp(op, "plfts") == 0 ? "plainto_tsquery"
                   : strcmp(op, "phfts") == 0 ? "phraseto_tsquery" : "websearch_to_tsquery";
    int cfg = config ? sv_rq_param(q, config) : 0;
    /* On a tsvector column, public.@@ (sql/020): the same C function
     * as pg_catalog.@@ but LEAKPROOF, so that under row-level security
     * the planner may use the GIN index before applying the policies
     * (it still applies all of them: the rows returned are the same).
     * A text column goes through to_tsvector(), which is not
     * leakproof anyway, so it keeps the built-in operator. */
    const char *match = " @@ ";
    /* Planned for its own search term (see custom_plan in
     * sv_rest_query.h). */
    if (q->plan)
        q->plan->custom_plan = 1;
    if (strcmp(c->type, "tsvector") == 0) {
        if (q->plan)
            q->plan->index_fallback = 1;
        sv_rq_colref(q, buf, c);
        match = " OPERATOR(public.@@) ";
    } else {
        sv_buf_puts(buf, "to_tsvector(");
        if (cfg)
            sv_buf_printf(buf, "$%d::regconfig, ", cfg);
        sv_rq_colref(q, buf, c);
        sv_buf_puts(buf, "::text)");
    }
    sv_buf_printf(buf, "%s%s(", match, fn);
    if (cfg)
        sv_buf_printf(buf, "$%d::regconfig, ", cfg);
    sv_buf_printf(buf, "$%d)", sv_rq_param(q, value));
}

/* Appends "col <op> $n" for an operator without a modifier. */
static int sv_rq_operator(sv_rq *q, sv_buf *buf, const sv_rest_column *c, const char *opval,
                          const char *op, const char *config, const char *value)
{
    const char *binop = sv_rq_binary_op(op);
    if (binop != NULL) {
        const char *v = value;
        if (op[0] == 'c' || op[0] == 'o') {
            /* array containment: (a,b) or {a,b} */
            v = sv_rq_list_literal(q, value);
            if (v == NULL)
                return sv_rq_parse_error(q, "filter value (expected {a,b} or (a,b))", value);
        }
        sv_rq_colref(q, buf, c);
        sv_buf_printf(buf, " %s $%d", binop, sv_rq_param(q, v));
    } else if (strcmp(op, "like") == 0 || strcmp(op, "ilike") == 0 ||
               strcmp(op, "match") == 0 || strcmp(op, "imatch") == 0) {
        const char *sqlop = strcmp(op, "like") == 0 ? "LIKE" : strcmp(op, "ilike") == 0 ? "ILIKE"
                          : strcmp(op, "match") == 0 ? "~" : "~*";
        sv_rq_colref(q, buf, c);
        sv_buf_printf(buf, "::text %s $%d", sqlop, sv_rq_param(q, sv_rq_pattern(q, op, value)));
    } else if (strcmp(op, "in") == 0) {
        char *lit = sv_rq_list_literal(q, value);
        if (lit == NULL || value[0] != '(')
            return sv_rq_parse_error(q, "filter value (expected in.(a,b))", value);
        sv_rq_colref(q, buf, c);
        sv_buf_printf(buf, " = ANY($%d::", sv_rq_param(q, lit));
        sv_buf_puts(buf, c->type);
        /* an array column's element comparison is not supported by in. */
        if (strchr(c->type, '[') == NULL)
            sv_buf_puts(buf, "[]");
        sv_buf_puts(buf, ")");
    } else if (strcmp(op, "is") == 0) {
        const char *what = strcmp(value, "null") == 0 ? "NULL"
                         : strcmp(value, "not_null") == 0 ? "NOT NULL"
                         : strcmp(value, "true") == 0 ? "TRUE"
                         : strcmp(value, "false") == 0 ? "FALSE"
                         : strcmp(value, "unknown") == 0 ? "UNKNOWN" : NULL;
        if (what == NULL)
            return sv_rq_parse_error(q, "filter value (expected is.null, is.true, is.false or is.unknown)",
                                     value);
        sv_rq_colref(q, buf, c);
        sv_buf_printf(buf, " IS %s", what);
    } else if (sv_rq_is_fts(op)) {
        sv_rq_text_search(q, buf, c, op, config, value);
    } else {
        return sv_rq_fail(q, 400, "PGRST100",
                          sv_arena_printf(q->arena, "\"failed to parse filter (%.40s)\"", opval),
                          sv_arena_printf(q->arena, "unknown operator \"%.40s\"", op), NULL);
    }
    return SV_OK;
}

/* Appends one condition "col <op> $n" for column c and the operator text
 * "[not.]op[(config)|(any)|(all)].value". */
static int sv_rq_condition(sv_rq *q, sv_buf *buf, const sv_rest_column *c, const char *opval)
{
    int negate = 0;
    const char *p = opval;

    if (++q->nfilters > SV_REST_MAX_FILTERS)
        return sv_rq_fail(q, 400, "PGRST100", "Too many filters", NULL, NULL);
    if (strncmp(p, "not.", 4) == 0) {
        negate = 1;
        p += 4;
    }
    const char *op_end = p;
    while (*op_end && *op_end != '.' && *op_end != '(')
        op_end++;
    char *op = sv_arena_strndup(q->arena, p, (size_t)(op_end - p));
    char *config = NULL;
    const char *quant = NULL;            /* "ANY" or "ALL" */
    if (*op_end == '(') {
        const char *close = strchr(op_end, ')');
        if (close == NULL || close[1] != '.')
            return sv_rq_parse_error(q, "filter", opval);
        size_t inner = (size_t)(close - op_end - 1);
        int as_text;
        if (sv_rq_is_fts(op)) {
            config = sv_arena_strndup(q->arena, op_end + 1, inner);
        } else if (sv_rq_quant_op(op, &as_text) != NULL && inner == 3 &&
                   (strncmp(op_end + 1, "any", 3) == 0 || strncmp(op_end + 1, "all", 3) == 0)) {
            quant = op_end[2] == 'n' ? "ANY" : "ALL";
        } else {
            return sv_rq_parse_error(q, "filter", opval);
        }
        op_end = close + 1;
    }
    if (*op_end != '.')
        return sv_rq_parse_error(q, "filter", opval);
    const char *value = op_end + 1;

    if (negate)
        sv_buf_puts(buf, "NOT (");
    int rc = quant != NULL ? sv_rq_quantified(q, buf, c, opval, op, quant, value)
                           : sv_rq_operator(q, buf, c, opval, op, config, value);
    if (rc == SV_OK && negate)
        sv_buf_puts(buf, ")");
    return rc;
}

static int sv_rq_logic(sv_rq *q, sv_buf *buf, const char *s, size_t len, int is_or, int depth);

/* One item of a logic tree: "[not.]and(...)", "[not.]or(...)" or
 * "col.[not.]op.value". */
static int sv_rq_logic_item(sv_rq *q, sv_buf *buf, const char *s, size_t len, int depth)
{
    int negate = 0;
    if (len >= 4 && strncmp(s, "not.", 4) == 0 &&
        ((len > 8 && strncmp(s + 4, "and(", 4) == 0) || (len > 7 && strncmp(s + 4, "or(", 3) == 0))) {
        negate = 1;
        s += 4;
        len -= 4;
    }
    if ((len > 4 && strncmp(s, "and(", 4) == 0) || (len > 3 && strncmp(s, "or(", 3) == 0)) {
        int is_or = s[0] == 'o';
        size_t skip = is_or ? 2 : 3;
        if (s[len - 1] != ')')
            return sv_rq_parse_error(q, "logic tree", s);
        if (negate)
            sv_buf_puts(buf, "NOT ");
        return sv_rq_logic(q, buf, s + skip, len - skip, is_or, depth + 1);
    }
    const char *dot = memchr(s, '.', len);
    if (s[0] == '"') {
        const char *close = memchr(s + 1, '"', len - 1);
        dot = close ? memchr(close, '.', len - (size_t)(close - s)) : NULL;
    }
    if (dot == NULL)
        return sv_rq_parse_error(q, "logic tree", s);
    const sv_rest_column *c = sv_rq_column(q, s, (size_t)(dot - s));
    if (c == NULL)
        return SV_ERROR;
    /* "op.value" with the value possibly double-quoted */
    const char *rest = dot + 1, *end = s + len;
    const char *vdot = rest;
    if (strncmp(rest, "not.", 4) == 0)
        vdot += 4;
    while (vdot < end && *vdot != '.' && *vdot != '(')
        vdot++;
    if (vdot < end && *vdot == '(') {
        const char *close = memchr(vdot, ')', (size_t)(end - vdot));
        vdot = close ? close + 1 : end;
    }
    if (vdot >= end || *vdot != '.')
        return sv_rq_parse_error(q, "logic tree", s);
    const char *vs = vdot + 1;
    size_t vlen = (size_t)(end - vs);
    char *value;
    /* a double-quoted value may hold the tree's reserved characters */
    if (vlen >= 2 && vs[0] == '"' && vs[vlen - 1] == '"') {
        sv_buf vb;
        sv_buf_init(&vb, q->arena, vlen);
        for (size_t i = 1; i + 1 < vlen; i++) {
            if (vs[i] == '\\' && i + 2 < vlen)
                i++;
            sv_buf_append(&vb, &vs[i], 1);
        }
        value = vb.data;
    } else {
        value = sv_arena_strndup(q->arena, vs, vlen);
    }
    char *opval = sv_arena_printf(q->arena, "%.*s%s", (int)(vdot + 1 - rest), rest, value);
    return sv_rq_condition(q, buf, c, opval);
}

/* "(item,item,...)" joined with AND or OR. s/len is the text including
 * the parentheses. */
static int sv_rq_logic(sv_rq *q, sv_buf *buf, const char *s, size_t len, int is_or, int depth)
{
    if (depth > SV_REST_MAX_DEPTH)
        return sv_rq_fail(q, 400, "PGRST100", "Logic trees are nested too deeply", NULL, NULL);
    if (len < 2 || s[0] != '(' || s[len - 1] != ')')
        return sv_rq_parse_error(q, "logic tree", s);
    const char *p = s + 1, *end = s + len - 1;
    if (p == end)
        return sv_rq_parse_error(q, "logic tree (empty)", s);
    /* the parentheses and quotes must balance */
    int d = 0, quoted = 0;
    for (const char *c = p; c < end; c++) {
        if (quoted) {
            if (*c == '\\' && c + 1 < end)
                c++;
            else if (*c == '"')
                quoted = 0;
        } else if (*c == '"') {
            quoted = 1;
        } else if (*c == '(') {
            d++;
        } else if (*c == ')' && --d < 0) {
            break;
        }
    }
    if (d != 0 || quoted)
        return sv_rq_parse_error(q, "logic tree (unbalanced parentheses or quotes)", s);

    sv_buf_puts(buf, "(");
    int first = 1;
    while (p <= end) {
        const char *ie = sv_rq_item_end(p, end);
        if (ie == p)
            return sv_rq_parse_error(q, "logic tree (empty item)", s);
        if (!first)
            sv_buf_puts(buf, is_or ? " OR " : " AND ");
        first = 0;
        if (sv_rq_logic_item(q, buf, p, (size_t)(ie - p), depth) != SV_OK)
            return SV_ERROR;
        p = ie + 1;
    }
    sv_buf_puts(buf, ")");
    return SV_OK;
}

static int sv_rq_is_reserved(const char *key)
{
    static const char *const reserved[] = { "select", "order", "limit", "offset", "on_conflict",
                                            "columns", "or", "and", "not.or", "not.and" };
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcmp(key, reserved[i]) == 0)
            return 1;
    return 0;
}

/* Appends the WHERE conditions (without "WHERE"), "true" when none. */
static int sv_rq_where(sv_rq *q, sv_buf *buf, const sv_qparam *ps, int n)
{
    int any = 0, rc = SV_OK;
    q->in_where = 1;
    for (int i = 0; i < n; i++) {
        const char *key = ps[i].key;
        int logic = strcmp(key, "or") == 0 || strcmp(key, "and") == 0 ||
                    strcmp(key, "not.or") == 0 || strcmp(key, "not.and") == 0;
        if (!logic && sv_rq_is_reserved(key))
            continue;
        if (any)
            sv_buf_puts(buf, " AND ");
        any = 1;
        if (logic) {
            int negate = strncmp(key, "not.", 4) == 0;
            const char *k = negate ? key + 4 : key;
            if (negate)
                sv_buf_puts(buf, "NOT ");
            if ((rc = sv_rq_logic(q, buf, ps[i].value, strlen(ps[i].value), k[0] == 'o', 1)) != SV_OK)
                break;
            continue;
        }
        const sv_rest_column *c = sv_rq_column(q, key, strlen(key));
        if (c == NULL || sv_rq_condition(q, buf, c, ps[i].value) != SV_OK) {
            rc = SV_ERROR;
            break;
        }
    }
    q->in_where = 0;
    if (!any)
        sv_buf_puts(buf, "true");
    return rc;
}

/* --- order= ------------------------------------------------------------------ */

static int sv_rq_order(sv_rq *q, sv_buf *buf, const char *order)
{
    const char *p = order, *end = order + strlen(order);
    int first = 1;
    while (p <= end) {
        const char *ie = sv_rq_item_end(p, end);
        if (ie == p)
            return sv_rq_parse_error(q, "order", order);
        /* col[.asc|.desc][.nullsfirst|.nullslast]; the column may be quoted */
        const char *name_end = p;
        if (*p == '"') {
            const char *close = memchr(p + 1, '"', (size_t)(ie - p - 1));
            if (close == NULL)
                return sv_rq_parse_error(q, "order", p);
            name_end = close + 1;
        } else {
            while (name_end < ie && *name_end != '.')
                name_end++;
        }
        const sv_rest_column *c = sv_rq_column(q, p, (size_t)(name_end - p));
        if (c == NULL)
            return SV_ERROR;
        const char *dir = "", *nulls = "";
        const char *m = name_end;
        while (m < ie) {
            if (*m != '.')
                return sv_rq_parse_error(q, "order", p);
            m++;
            const char *me = m;
            while (me < ie && *me != '.')
                me++;
            size_t ml = (size_t)(me - m);
            if (ml == 3 && strncmp(m, "asc", 3) == 0)
                dir = " ASC";
            else if (ml == 4 && strncmp(m, "desc", 4) == 0)
                dir = " DESC";
            else if (ml == 10 && strncmp(m, "nullsfirst", 10) == 0)
                nulls = " NULLS FIRST";
            else if (ml == 9 && strncmp(m, "nullslast", 9) == 0)
                nulls = " NULLS LAST";
            else
                return sv_rq_parse_error(q, "order", p);
            m = me;
        }
        if (!first)
            sv_buf_puts(buf, ", ");
        first = 0;
        sv_rq_colref(q, buf, c);
        sv_buf_puts(buf, dir);
        sv_buf_puts(buf, nulls);
        p = ie + 1;
    }
    return SV_OK;
}

/* --- headers --------------------------------------------------------------- */

typedef struct sv_prefer {
    int missing_default;  /* missing=default */
    int return_mode;      /* -1 when not given */
    int count;
    int resolution;       /* 0 none, 1 merge-duplicates, 2 ignore-duplicates */
} sv_prefer;

static void sv_rq_prefer(const char *h, sv_prefer *pf)
{
    pf->return_mode = -1;
    pf->count = 0;
    pf->resolution = 0;
    pf->missing_default = 0;
    if (h == NULL)
        return;
    const char *p = h;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        size_t len = (size_t)(e - p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
#define SV_TOKEN(s) (len == sizeof(s) - 1 && strncmp(p, s, len) == 0)
        if (SV_TOKEN("return=minimal"))
            pf->return_mode = SV_REST_RETURN_MINIMAL;
        else if (SV_TOKEN("return=representation"))
            pf->return_mode = SV_REST_RETURN_REPRESENTATION;
        else if (SV_TOKEN("return=headers-only"))
            pf->return_mode = SV_REST_RETURN_HEADERS;
        else if (SV_TOKEN("count=exact") || SV_TOKEN("count=planned") || SV_TOKEN("count=estimated"))
            pf->count = 1;
        else if (SV_TOKEN("resolution=merge-duplicates"))
            pf->resolution = 1;
        else if (SV_TOKEN("resolution=ignore-duplicates"))
            pf->resolution = 2;
        else if (SV_TOKEN("missing=default"))
            pf->missing_default = 1;
#undef SV_TOKEN
        p = e;
    }
}

/* --- content negotiation ---------------------------------------------------------- */

/* One media range as PostgREST reads it: spaces dropped, ";q=" and all
 * after it cut off (into *q, 1 when absent or unreadable; a negative q
 * is read as it is).
 * SV_REST_MEDIA_NONE for a type this server does not make. Of a range
 * longer than any of those with their parameters, only the first 255
 * bytes are read: its type decides, and it is not nulls=stripped. */
static sv_rest_media sv_rq_media_range(const char *item, size_t len, double *q, int *specific)
{
    char range[256];
    size_t n = 0;
    int cut = 0;
    for (size_t i = 0; i < len && !cut; i++) {
        if (item[i] == ' ' || item[i] == '\t')
            continue;
        if (n + 1 < sizeof(range))
            range[n++] = item[i];
        else
            cut = 1;
    }
    range[n] = '\0';
    *q = 1.0;
    char *qp = strstr(range, ";q=");
    if (qp == NULL)
        qp = strstr(range, ";Q=");
    if (qp != NULL) {
        /* Haskell's reads, as PostgREST's parser (wai-extra) uses it: a
         * number, negative ones too (ranked below q=0); else 1. */
        const char *num = qp + 3 + (qp[3] == '-');
        if (*num >= '0' && *num <= '9')
            *q = strtod(qp + 3, NULL);
        *qp = '\0';
    }
    *specific = 0;
    for (const char *c = range; *c != '\0'; c++)
        *specific += *c == ';' ? 1 : *c == '*' ? -1 : 0;

    size_t essence = strcspn(range, ";");
    const char *params = range + essence;
    int stripped = !cut && strcasecmp(params, ";nulls=stripped") == 0;
#define SV_IS(type) (essence == sizeof(type) - 1 && strncasecmp(range, type, essence) == 0)
    if (SV_IS("application/json") || SV_IS("*/*") || SV_IS("application/*"))
        return SV_REST_MEDIA_JSON;
    if (SV_IS("application/vnd.pgrst.array+json") || SV_IS("application/vnd.pgrst.array"))
        return stripped ? SV_REST_MEDIA_JSON_STRIPPED : SV_REST_MEDIA_JSON;
    if (SV_IS("application/vnd.pgrst.object+json") || SV_IS("application/vnd.pgrst.object"))
        return stripped ? SV_REST_MEDIA_OBJECT_STRIPPED : SV_REST_MEDIA_OBJECT;
#undef SV_IS
    return SV_REST_MEDIA_NONE;
}

sv_rest_media sv_rest_negotiate(const char *accept)
{
    if (accept == NULL)
        return SV_REST_MEDIA_JSON;
    sv_rest_media best = SV_REST_MEDIA_NONE;
    double best_q = 0;
    int best_specific = 0, ranges = 0;
    /* PostgREST sorts the ranges (stably) and takes the first it makes:
     * the same as the first of the best-ranked it makes. */
    for (const char *item = accept;;) {
        size_t len = strcspn(item, ",");
        if (strspn(item, " \t") < len) {
            double q;
            int specific;
            sv_rest_media m = sv_rq_media_range(item, len, &q, &specific);
            ranges++;
            if (m != SV_REST_MEDIA_NONE &&
                (best == SV_REST_MEDIA_NONE || q > best_q || (q == best_q && specific > best_specific))) {
                best = m;
                best_q = q;
                best_specific = specific;
            }
        }
        if (item[len] == '\0')
            break;
        item += len + 1;
    }
    return ranges == 0 ? SV_REST_MEDIA_JSON : best;
}

const char *sv_rest_media_content_type(sv_rest_media media)
{
    switch (media) {
    case SV_REST_MEDIA_JSON_STRIPPED:
        return "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8";
    case SV_REST_MEDIA_OBJECT:
        return "application/vnd.pgrst.object+json; charset=utf-8";
    case SV_REST_MEDIA_OBJECT_STRIPPED:
        return "application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8";
    default:
        return NULL;
    }
}

/* The representation a table request negotiated; nothing made (already
 * refused with 406 by the handler) counts as JSON. */
static void sv_rq_negotiated(const sv_rest_input *in, sv_rest_plan *plan)
{
    plan->media = sv_rest_negotiate(in->accept);
    if (plan->media == SV_REST_MEDIA_NONE)
        plan->media = SV_REST_MEDIA_JSON;
    plan->single = plan->media == SV_REST_MEDIA_OBJECT || plan->media == SV_REST_MEDIA_OBJECT_STRIPPED;
    plan->strip_nulls = plan->media == SV_REST_MEDIA_JSON_STRIPPED || plan->media == SV_REST_MEDIA_OBJECT_STRIPPED;
}

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
            const sv_rest_column *c = sv_rq_column(q, p, (size_t)(ie - p));
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
            const sv_rest_column *c = sv_rq_column(q, p, (size_t)(ie - p));
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
