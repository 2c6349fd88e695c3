/* The parts of a PostgREST query string that become SQL clauses:
 * select= (the select list), the row filters with their operators and
 * logic trees (the WHERE clause), order= (ORDER BY). Every name is
 * checked against the table's columns and every value is a parameter
 * (sv_rest_query.h). */
#include "rest/sv_rest_query_parse.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

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
int sv_rq_select(sv_rq *q, sv_buf *buf, const char *select)
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
            const sv_rest_column *col = sv_rq_resolve_column(q, s, (size_t)((cast ? cast : e) - s));
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
    const sv_rest_column *c = sv_rq_resolve_column(q, s, (size_t)(dot - s));
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
int sv_rq_where(sv_rq *q, sv_buf *buf, const sv_qparam *ps, int n)
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
        const sv_rest_column *c = sv_rq_resolve_column(q, key, strlen(key));
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

int sv_rq_order(sv_rq *q, sv_buf *buf, const char *order)
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
        const sv_rest_column *c = sv_rq_resolve_column(q, p, (size_t)(name_end - p));
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

