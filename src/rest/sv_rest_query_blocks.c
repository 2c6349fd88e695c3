/* The PostgREST translator's building blocks (sv_rest_query_blocks.h). */
#include "rest/sv_rest_query_blocks.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "http/sv_http.h"

int sv_rq_fail(sv_rq *q, int status, const char *code, const char *message,
               const char *details, const char *hint)
{
    return sv_fail_details(q->err, status, code, message, details, hint);
}

/* PostgREST's parse error: 400 PGRST100. */
int sv_rq_parse_error(sv_rq *q, const char *what, const char *near)
{
    return sv_rq_fail(q, 400, "PGRST100", sv_arena_printf(q->arena, "\"failed to parse %s\"", what),
                      near ? sv_arena_printf(q->arena, "unexpected input near \"%.80s\"", near) : NULL,
                      NULL);
}

/* Adds a parameter value and returns its number ($n). */
int sv_rq_param(sv_rq *q, const char *value)
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
void sv_rq_colref(sv_rq *q, sv_buf *buf, const sv_rest_column *c)
{
    sv_rest_quote_ident(buf, q->t->name);
    sv_buf_puts(buf, ".");
    sv_rest_quote_ident(buf, c->name);
}

const sv_rest_column *sv_rq_find_column(const sv_rest_table_def *t, const char *name)
{
    for (int i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return &t->cols[i];
    return NULL;
}

/* An identifier as a client writes it: bare, or double-quoted (postgrest-js
 * quotes the columns= list). Returns the unquoted name in the arena, or
 * NULL when the quoting is broken. */
char *sv_rq_unquote(sv_rq *q, const char *s, size_t len)
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
const sv_rest_column *sv_rq_resolve_column(sv_rq *q, const char *s, size_t len)
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
int sv_rq_split_query(sv_rq *q, const char *query, sv_qparam **out, int *n)
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
int sv_rq_parse_count(const char *s, long long *out)
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
const char *sv_rq_item_end(const char *p, const char *end)
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
