/* The `filter` of a postgres_changes binding, as supabase-js sends it:
 * "column=op.value", op one of eq neq lt lte gt gte in ("in.(a,b,c)").
 * Pure code: the daemon turns a parsed filter into SQL that PostgreSQL
 * evaluates on the typed column (realtime.subscription_check checks the
 * column and the value's type first). */
#ifndef SV_RT_FILTER_H
#define SV_RT_FILTER_H

#include <stddef.h>

typedef enum {
    SV_RT_OP_NONE = 0,
    SV_RT_OP_EQ,
    SV_RT_OP_NEQ,
    SV_RT_OP_LT,
    SV_RT_OP_LTE,
    SV_RT_OP_GT,
    SV_RT_OP_GTE,
    SV_RT_OP_IN,
} sv_rt_op;

typedef struct sv_rt_filter {
    sv_rt_op op;
    char    *column;   /* malloc'd */
    /* malloc'd: the value, unquoted; for "in" a PostgreSQL array literal
     * whose elements are all double-quoted ({"a","b"}). */
    char    *value;
} sv_rt_filter;

/* Longest filter string accepted. */
#define SV_RT_FILTER_MAX 4096

/* Parses s (NUL-terminated). An empty or blank s is no filter (op NONE).
 * Returns 0 with *f filled (free with sv_rt_filter_free), or -1 with a
 * message in err (the text Supabase sends: "Error parsing `filter`
 * params: ..."); *f is then empty. */
int sv_rt_filter_parse(const char *s, sv_rt_filter *f, char *err, size_t errlen);
void sv_rt_filter_free(sv_rt_filter *f);

/* "eq", "neq", ... and the SQL operator ("=", "<>", ...; "= ANY" for in). */
const char *sv_rt_filter_op_name(sv_rt_op op);
const char *sv_rt_filter_sql_op(sv_rt_op op);

#endif
