/* /rest/v1: the PostgREST-compatible data API. */
#ifndef SV_REST_H
#define SV_REST_H

#include "sv_http.h"

struct sv_worker;

/* GET /rest/v1/ : the OpenAPI description of the exposed tables and rpcs. */
void sv_rest_openapi(struct sv_worker *w, sv_request *req, sv_response *res);
/* /rest/v1/rpc/<fn> */
void sv_rest_rpc(struct sv_worker *w, sv_request *req, sv_response *res);
/* /rest/v1/<table> with PostgREST's query language. */
void sv_rest_table(struct sv_worker *w, sv_request *req, sv_response *res);

#endif
