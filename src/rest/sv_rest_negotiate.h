/* The headers that choose how PostgREST answers (sv_rest_negotiate.c);
 * sv_rest_negotiate() itself is in sv_rest_query.h, for sv_rest.c. */
#ifndef SV_REST_NEGOTIATE_H
#define SV_REST_NEGOTIATE_H

#include "rest/sv_rest_query.h"

/* What the Prefer header asks for. */
typedef struct sv_prefer {
    int missing_default;  /* missing=default */
    int return_mode;      /* SV_REST_RETURN_*, -1 when not given */
    int count;            /* 1 for count=exact, planned or estimated */
    int resolution;       /* 0 none, 1 merge-duplicates, 2 ignore-duplicates */
} sv_prefer;

/* Reads the Prefer header (NULL: none); unknown preferences are ignored
 * (PostgREST's default, handling=lenient). */
void sv_rq_prefer(const char *h, sv_prefer *pf);
/* Sets plan's media, single and strip_nulls from the Accept header. */
void sv_rq_negotiated(const sv_rest_input *in, sv_rest_plan *plan);

#endif
