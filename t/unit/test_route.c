#include <stdio.h>

#include "core/sv_config.h"
#include "http/sv_http.h"
#include "http/sv_route.h"
#include "tap.h"

/* The status route's configured path: "/status" with a configuration,
 * none (switched off) without one. */
static const char *status_pattern(const struct sv_config *cfg, char *buf, size_t len)
{
    if (cfg == NULL)
        return NULL;
    snprintf(buf, len, "/status");
    return buf;
}

static int h(struct sv_ctx *ctx)
{
    (void)ctx;
    return 0;
}

int main(void)
{
    sv_route routes[] = {
        { "/healthz", SV_HTTP_GET, h, SV_AUTH_NONE, SV_RATE_NONE, SV_DIALECT_POSTGREST, NULL, NULL, NULL },
        { "/rest/v1/*", SV_HTTP_GET | SV_HTTP_POST | SV_HTTP_PATCH | SV_HTTP_DELETE, h,
          SV_AUTH_OPTIONAL, SV_RATE_DATA, SV_DIALECT_POSTGREST, NULL, NULL, NULL },
        { "/rest/v1/rpc/*", SV_HTTP_GET | SV_HTTP_POST, h, SV_AUTH_OPTIONAL, SV_RATE_DATA,
          SV_DIALECT_POSTGREST, "PGRST101", "functions", NULL },
        { "/auth/v1/token", SV_HTTP_POST, h, SV_AUTH_NONE, SV_RATE_AUTH, SV_DIALECT_GOTRUE, NULL, NULL, NULL },
        { "/functions/v1/oauth/*/start", SV_HTTP_GET, h, SV_AUTH_USER, SV_RATE_FUNCTIONS,
          SV_DIALECT_POSTGREST, NULL, NULL, NULL },
        { "/functions/v1/oauth/youtube/start", SV_HTTP_GET, h, SV_AUTH_NONE, SV_RATE_FUNCTIONS,
          SV_DIALECT_POSTGREST, NULL, NULL, NULL },
        { "/functions/v1/*/*/start", SV_HTTP_GET, h, SV_AUTH_NONE, SV_RATE_FUNCTIONS,
          SV_DIALECT_POSTGREST, NULL, NULL, NULL },
        { NULL, SV_HTTP_GET, h, SV_AUTH_NONE, SV_RATE_NONE, SV_DIALECT_POSTGREST, NULL, NULL, status_pattern },
        { "/rest/v1/rpc/vault.create_secret", SV_HTTP_POST, h, SV_AUTH_SERVICE, SV_RATE_DATA,
          SV_DIALECT_POSTGREST, "PGRST101", "post only", NULL },
    };
    sv_route_match m;
    size_t n = sizeof(routes) / sizeof(routes[0]);

    is_int(sv_route_find(routes, n, NULL, SV_HTTP_GET, "/healthz", &m), SV_ROUTE_FOUND,
           "exact path matches");
    ok(m.route == &routes[0], "the right route is returned");
    is_int(sv_route_find(routes, n, NULL, SV_HTTP_HEAD, "/healthz", &m), SV_ROUTE_FOUND,
           "HEAD is implied by GET");
    is_int(sv_route_find(routes, n, NULL, SV_HTTP_POST, "/healthz", &m),
           SV_ROUTE_METHOD_NOT_ALLOWED, "wrong method is 405");
    is_int(m.allowed, SV_HTTP_GET | SV_HTTP_HEAD, "Allow lists GET and HEAD");
    is_int(sv_route_find(routes, n, NULL, SV_HTTP_GET, "/healthz/x", &m), SV_ROUTE_NOT_FOUND,
           "exact pattern does not match longer paths");
    is_int(sv_route_find(routes, n, NULL, SV_HTTP_PATCH, "/rest/v1/handle_content", &m),
           SV_ROUTE_FOUND, "a star matches one segment");
    ok(m.route == &routes[1], "the table route");
    is_int(sv_route_find(routes, n, NULL, SV_HTTP_GET, "/rest/v1/", &m), SV_ROUTE_NOT_FOUND,
           "a star needs a non-empty segment");
    is_int(sv_route_find(routes, n, NULL, SV_HTTP_GET, "/rest/v1/a/b", &m), SV_ROUTE_NOT_FOUND,
           "a star matches exactly one segment");
    is_int(sv_route_find(routes, n, NULL, SV_HTTP_GET, "/rest/v10/x", &m), SV_ROUTE_NOT_FOUND,
           "segments are compared whole");
    is_int(sv_route_find(routes, n, NULL, SV_HTTP_POST, "/rest/v1/rpc/search_content", &m),
           SV_ROUTE_FOUND, "rpc path found");
    ok(m.route == &routes[2], "the more specific pattern wins over /rest/v1/*");
    is_int(sv_route_find(routes, n, NULL, SV_HTTP_PATCH, "/rest/v1/rpc/search_content", &m),
           SV_ROUTE_METHOD_NOT_ALLOWED, "PATCH on an rpc is 405, not the table route");
    ok(m.best == &routes[2], "the 405 comes from the rpc route");
    is_int(m.allowed, SV_HTTP_GET | SV_HTTP_HEAD | SV_HTTP_POST, "Allow: GET, HEAD, POST");
    is_int(sv_route_find(routes, n, NULL, SV_HTTP_POST, "/rest/v1/rpc/vault.create_secret", &m),
           SV_ROUTE_FOUND, "a literal rpc route beats rpc/*");
    ok(m.route == &routes[8], "the literal one");
    is_int(sv_route_find(routes, n, NULL, SV_HTTP_GET, "/rest/v1/rpc/vault.create_secret", &m),
           SV_ROUTE_METHOD_NOT_ALLOWED, "a method the literal route does not take is 405, not rpc/*'s GET");
    is_int(m.allowed, SV_HTTP_POST, "Allow: the literal route's methods only");
    is_int(sv_route_find(routes, n, NULL, SV_HTTP_GET, "/functions/v1/oauth/tiktok/start", &m),
           SV_ROUTE_FOUND, "a star in the middle of a pattern");
    ok(m.route == &routes[4], "the pattern with more literals first wins");
    is_int(sv_route_find(routes, n, NULL, SV_HTTP_GET, "/functions/v1/oauth/youtube/start", &m),
           SV_ROUTE_FOUND, "a literal path beats a star");
    ok(m.route == &routes[5], "the all-literal route");
    is_int(sv_route_find(routes, n, NULL, SV_HTTP_GET, "/functions/v1/oauth//start", &m),
           SV_ROUTE_NOT_FOUND, "an empty segment matches no star");
    is_int(sv_route_find(routes, n, NULL, 0, "/auth/v1/token", &m), SV_ROUTE_METHOD_NOT_ALLOWED,
           "unknown method on a known path is 405");
    is_int(sv_route_find(routes, n, NULL, SV_HTTP_GET, "/nope", &m), SV_ROUTE_NOT_FOUND,
           "unknown path is 404");
    static sv_config cfg;
    is_int(sv_route_find(routes, n, &cfg, SV_HTTP_GET, "/status", &m), SV_ROUTE_FOUND,
           "the NULL pattern is the configured status path");
    ok(m.route == &routes[7], "the status route");
    is_int(sv_route_find(routes, n, NULL, SV_HTTP_GET, "/status", &m), SV_ROUTE_NOT_FOUND,
           "without a status path it matches nothing");
    return tap_done();
}
