#include "sv_router.h"

#include <string.h>

static int sv_route_path_matches(const char *pattern, const char *path)
{
    size_t plen = strlen(pattern);
    if (plen >= 2 && strcmp(pattern + plen - 2, "/*") == 0)
        return strncmp(path, pattern, plen - 1) == 0 && path[plen - 1] != '\0';
    return strcmp(pattern, path) == 0;
}

static int sv_route_methods(const sv_route *route)
{
    return (route->methods & SV_HTTP_GET) ? route->methods | SV_HTTP_HEAD : route->methods;
}

sv_route_result sv_router_match(const sv_route *routes, size_t n, int method,
                                const char *path, const sv_route **found, int *allowed)
{
    *found = NULL;
    *allowed = 0;
    for (size_t i = 0; i < n; i++) {
        if (routes[i].pattern == NULL || !sv_route_path_matches(routes[i].pattern, path))
            continue;
        int methods = sv_route_methods(&routes[i]);
        if (method & methods) {
            *found = &routes[i];
            return SV_ROUTE_FOUND;
        }
        *allowed |= methods;
    }
    return *allowed ? SV_ROUTE_METHOD_NOT_ALLOWED : SV_ROUTE_NOT_FOUND;
}
