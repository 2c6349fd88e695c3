/* Method + path routing. A route matches a path exactly, or every path
 * under a prefix when its pattern ends in a slash and an asterisk. */
#ifndef SV_ROUTER_H
#define SV_ROUTER_H

#include "sv_http.h"

struct sv_worker;

typedef void (*sv_handler_fn)(struct sv_worker *worker, sv_request *req, sv_response *res);

typedef struct sv_route {
    const char   *pattern;
    int           methods;   /* sv_http_method bits; GET implies HEAD */
    sv_handler_fn handler;
} sv_route;

typedef enum { SV_ROUTE_FOUND, SV_ROUTE_NOT_FOUND, SV_ROUTE_METHOD_NOT_ALLOWED } sv_route_result;

/* Finds the route for method + path among n routes. On
 * SV_ROUTE_METHOD_NOT_ALLOWED, *allowed holds the union of methods the
 * matching patterns accept (for the Allow header). */
sv_route_result sv_router_match(const sv_route *routes, size_t n, int method,
                                const char *path, const sv_route **found, int *allowed);

#endif
