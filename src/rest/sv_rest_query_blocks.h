/* The PostgREST translator's building blocks (sv_rest_query.h), shared by
 * its files and by nothing else: the translation state of one request,
 * the query string split and decoded, names resolved against the table's
 * columns, values kept as parameters, errors in PostgREST's words. Above
 * them: sv_rest_query_parse.c (select=, the filters, order=),
 * sv_rest_negotiate.c (Prefer, Accept), sv_rest_translate.c (a request's
 * one statement). */
#ifndef SV_REST_QUERY_BLOCKS_H
#define SV_REST_QUERY_BLOCKS_H

#include "core/sv_arena.h"
#include "core/sv_err.h"
#include "rest/sv_rest_query.h"

/* Translation state for one request. */
typedef struct sv_rq {
    sv_arena                *arena;
    const sv_rest_table_def *t;
    sv_error                *err;
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

/* Fills q's error; returns SV_ERROR. */
int sv_rq_fail(sv_rq *q, int status, const char *code, const char *message,
               const char *details, const char *hint);
/* PostgREST's parse error: 400 PGRST100. */
int sv_rq_parse_error(sv_rq *q, const char *what, const char *near);
/* Adds a parameter value and returns its number ($n). */
int sv_rq_param(sv_rq *q, const char *value);
/* Appends "table"."column". */
void sv_rq_colref(sv_rq *q, sv_buf *buf, const sv_rest_column *c);
/* An identifier bare or double-quoted, unquoted; NULL when the quoting
 * is broken. */
char *sv_rq_unquote(sv_rq *q, const char *s, size_t len);
/* The table's column of that name, or NULL with the error filled. */
const sv_rest_column *sv_rq_resolve_column(sv_rq *q, const char *s, size_t len);
/* The end of one comma-separated item at nesting depth 0. */
const char *sv_rq_item_end(const char *p, const char *end);
/* The table's column of that exact name, or NULL. */
const sv_rest_column *sv_rq_find_column(const sv_rest_table_def *t, const char *name);
/* The query string as decoded key/value pairs. */
int sv_rq_split_query(sv_rq *q, const char *query, sv_qparam **out, int *n);
/* A non-negative decimal integer (no sign, no spaces): limit, offset,
 * a Range bound. */
int sv_rq_parse_count(const char *s, long long *out);

#endif
