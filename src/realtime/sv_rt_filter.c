#include "realtime/sv_rt_filter.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    const char *sql;
    sv_rt_op    op;
} sv_rt_ops[] = {
    { "eq", "=", SV_RT_OP_EQ },   { "neq", "<>", SV_RT_OP_NEQ }, { "lt", "<", SV_RT_OP_LT },
    { "lte", "<=", SV_RT_OP_LTE }, { "gt", ">", SV_RT_OP_GT },   { "gte", ">=", SV_RT_OP_GTE },
    { "in", "= ANY", SV_RT_OP_IN },
};

const char *sv_rt_filter_op_name(sv_rt_op op)
{
    for (size_t i = 0; i < sizeof(sv_rt_ops) / sizeof(sv_rt_ops[0]); i++)
        if (sv_rt_ops[i].op == op)
            return sv_rt_ops[i].name;
    return "";
}

const char *sv_rt_filter_sql_op(sv_rt_op op)
{
    for (size_t i = 0; i < sizeof(sv_rt_ops) / sizeof(sv_rt_ops[0]); i++)
        if (sv_rt_ops[i].op == op)
            return sv_rt_ops[i].sql;
    return "";
}

void sv_rt_filter_free(sv_rt_filter *f)
{
    free(f->column);
    free(f->value);
    memset(f, 0, sizeof(*f));
}

static int sv_rt_filter_fail(sv_rt_filter *f, char *err, size_t errlen, const char *filter,
                             const char *why)
{
    sv_rt_filter_free(f);
    snprintf(err, errlen, "Error parsing `filter` params: %s (%.200s)", why, filter);
    return -1;
}

/* Unquotes a PostgREST-style value: "..." with \" and \\ inside becomes
 * its content; anything else is kept as it is. Returns a malloc'd string
 * or NULL (bad quoting, or out of memory). */
static char *sv_rt_unquote(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
        size_t n = 0;
        for (size_t i = 1; i + 1 < len; i++) {
            if (s[i] == '\\') {
                if (i + 2 >= len) {
                    free(out);
                    return NULL;
                }
                i++;
            } else if (s[i] == '"') {
                free(out);
                return NULL;
            }
            out[n++] = s[i];
        }
        out[n] = '\0';
        return out;
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

/* Appends element e (len bytes) to the array literal being built in out
 * (capacity cap, used *n), double-quoted with \ and " escaped. */
static int sv_rt_array_add(char *out, size_t cap, size_t *n, const char *e, size_t len)
{
    if (*n + 2 * len + 4 > cap)
        return -1;
    if (out[*n - 1] != '{')
        out[(*n)++] = ',';
    out[(*n)++] = '"';
    for (size_t i = 0; i < len; i++) {
        if (e[i] == '"' || e[i] == '\\')
            out[(*n)++] = '\\';
        out[(*n)++] = e[i];
    }
    out[(*n)++] = '"';
    return 0;
}

/* "(a,b,"c,d")" -> {"a","b","c,d"}. Returns malloc'd text or NULL. */
static char *sv_rt_in_list(const char *v, size_t len)
{
    if (len < 2 || v[0] != '(' || v[len - 1] != ')')
        return NULL;
    size_t cap = 2 * len + 8;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    out[n++] = '{';
    const char *p = v + 1, *end = v + len - 1;
    while (p < end) {
        while (p < end && isspace((unsigned char)*p))
            p++;
        const char *start = p;
        int quoted = p < end && *p == '"';
        if (quoted) {
            p++;
            while (p < end && *p != '"') {
                if (*p == '\\' && p + 1 < end)
                    p++;
                p++;
            }
            if (p >= end) {
                free(out);
                return NULL;
            }
            p++;
        } else {
            while (p < end && *p != ',')
                p++;
        }
        const char *stop = p;
        while (stop > start && isspace((unsigned char)stop[-1]))
            stop--;
        while (p < end && isspace((unsigned char)*p))
            p++;
        if (p < end && *p != ',') {
            free(out);
            return NULL;
        }
        char *e = sv_rt_unquote(start, (size_t)(stop - start));
        if (e == NULL || (!quoted && stop == start) ||
            sv_rt_array_add(out, cap, &n, e, strlen(e)) != 0) {
            free(e);
            free(out);
            return NULL;
        }
        free(e);
        if (p < end)
            p++; /* the comma */
        if (p == end && p[-1] == ',') {
            free(out);
            return NULL;
        }
    }
    out[n++] = '}';
    out[n] = '\0';
    return out;
}

int sv_rt_filter_parse(const char *s, sv_rt_filter *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    size_t len = strlen(s);
    const char *p = s;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '\0')
        return 0;
    if (len > SV_RT_FILTER_MAX)
        return sv_rt_filter_fail(f, err, errlen, s, "too long");

    const char *eq = strchr(s, '=');
    if (eq == NULL || eq == s)
        return sv_rt_filter_fail(f, err, errlen, s, "expected column=operator.value");
    const char *dot = strchr(eq + 1, '.');
    if (dot == NULL)
        return sv_rt_filter_fail(f, err, errlen, s, "expected column=operator.value");
    size_t oplen = (size_t)(dot - eq - 1);
    for (size_t i = 0; i < sizeof(sv_rt_ops) / sizeof(sv_rt_ops[0]); i++)
        if (strlen(sv_rt_ops[i].name) == oplen && memcmp(sv_rt_ops[i].name, eq + 1, oplen) == 0)
            f->op = sv_rt_ops[i].op;
    if (f->op == SV_RT_OP_NONE)
        return sv_rt_filter_fail(f, err, errlen, s,
                                 "unsupported operator (eq, neq, lt, lte, gt, gte, in)");
    size_t collen = (size_t)(eq - s);
    if (collen > 63)
        return sv_rt_filter_fail(f, err, errlen, s, "column name too long");
    f->column = malloc(collen + 1);
    if (f->column == NULL)
        return sv_rt_filter_fail(f, err, errlen, s, "out of memory");
    memcpy(f->column, s, collen);
    f->column[collen] = '\0';

    const char *v = dot + 1;
    size_t vlen = len - (size_t)(v - s);
    if (f->op == SV_RT_OP_IN) {
        f->value = sv_rt_in_list(v, vlen);
        if (f->value == NULL)
            return sv_rt_filter_fail(f, err, errlen, s,
                                     "`in` filter value must be wrapped by parentheses: in.(a,b)");
    } else {
        f->value = sv_rt_unquote(v, vlen);
        if (f->value == NULL)
            return sv_rt_filter_fail(f, err, errlen, s, "badly quoted value");
    }
    return 0;
}
