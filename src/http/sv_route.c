#include "http/sv_route.h"

#include <string.h>

#include "http/sv_http.h"

/* Compares pattern with path segment by segment. Returns -1 when they do
 * not match, else a specificity: one bit per segment, set for a literal,
 * most significant first, so a larger value is a more specific match. */
static long sv_route_score(const char *pattern, const char *path)
{
    long score = 0;
    int segments = 0;

    if (*pattern != '/' || *path != '/')
        return -1;
    for (;;) {
        pattern++;
        path++;
        size_t plen = strcspn(pattern, "/"), len = strcspn(path, "/");
        int wild = plen == 1 && pattern[0] == '*';
        if (wild ? len == 0 : plen != len || memcmp(pattern, path, len) != 0)
            return -1;
        if (++segments < 31)
            score = score * 2 + !wild;
        pattern += plen;
        path += len;
        if (*pattern == '\0' || *path == '\0')
            return *pattern == *path ? score : -1;
    }
}

int sv_route_methods(const sv_route *route)
{
    return (route->methods & SV_HTTP_GET) ? route->methods | SV_HTTP_HEAD : route->methods;
}

sv_route_result sv_route_find(const sv_route *routes, size_t n, const struct sv_config *cfg,
                              int method, const char *path, sv_route_match *m)
{
    long best_score = -1;
    char buf[256];

    /* The most specific pattern owns the path: a method it does not take
     * is a 405, even when a less specific pattern would take it (GET
     * /rest/v1/rpc/vault.create_secret is not an rpc/ * call). Several
     * routes may share the pattern, one per method. */
    memset(m, 0, sizeof(*m));
    for (size_t i = 0; i < n; i++) {
        const char *pattern = routes[i].pattern;
        if (pattern == NULL)
            pattern = routes[i].configured_pattern ? routes[i].configured_pattern(cfg, buf, sizeof(buf))
                                                   : NULL;
        if (pattern == NULL || pattern[0] == '\0')
            continue;
        long score = sv_route_score(pattern, path);
        if (score < 0 || score < best_score)
            continue;
        int methods = sv_route_methods(&routes[i]);
        if (score > best_score) {
            best_score = score;
            m->best = &routes[i];
            m->route = NULL;
            m->allowed = 0;
        }
        m->allowed |= methods;
        if ((method & methods) && m->route == NULL)
            m->route = &routes[i];
    }
    if (m->route != NULL)
        return SV_ROUTE_FOUND;
    return m->best != NULL ? SV_ROUTE_METHOD_NOT_ALLOWED : SV_ROUTE_NOT_FOUND;
}
