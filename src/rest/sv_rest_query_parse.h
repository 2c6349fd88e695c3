/* The parts of a PostgREST query string that become SQL clauses
 * (sv_rest_query_parse.c). */
#ifndef SV_REST_QUERY_PARSE_H
#define SV_REST_QUERY_PARSE_H

#include "rest/sv_rest_query_blocks.h"

/* select=: the select list (every column when NULL). */
int sv_rq_select(sv_rq *q, sv_buf *buf, const char *select);
/* The row filters of the query string as one condition ("true" when
 * none). */
int sv_rq_where(sv_rq *q, sv_buf *buf, const sv_qparam *ps, int n);
/* order=: the ORDER BY list. */
int sv_rq_order(sv_rq *q, sv_buf *buf, const char *order);

#endif
