#include "../../src/sv_router.h"
#include "tap.h"

static void h(struct sv_worker *w, sv_request *req, sv_response *res)
{
    (void)w; (void)req; (void)res;
}

int main(void)
{
    sv_route routes[] = {
        { "/healthz", SV_HTTP_GET, h },
        { "/rest/v1/*", SV_HTTP_GET | SV_HTTP_POST | SV_HTTP_PATCH | SV_HTTP_DELETE, h },
        { "/auth/v1/token", SV_HTTP_POST, h },
    };
    const sv_route *found;
    int allowed;
    size_t n = sizeof(routes) / sizeof(routes[0]);

    is_int(sv_router_match(routes, n, SV_HTTP_GET, "/healthz", &found, &allowed), SV_ROUTE_FOUND,
           "exact path matches");
    ok(found == &routes[0], "the right route is returned");
    is_int(sv_router_match(routes, n, SV_HTTP_HEAD, "/healthz", &found, &allowed), SV_ROUTE_FOUND,
           "HEAD is implied by GET");
    is_int(sv_router_match(routes, n, SV_HTTP_POST, "/healthz", &found, &allowed),
           SV_ROUTE_METHOD_NOT_ALLOWED, "wrong method is 405");
    is_int(allowed, SV_HTTP_GET | SV_HTTP_HEAD, "Allow lists GET and HEAD");
    is_int(sv_router_match(routes, n, SV_HTTP_GET, "/healthz/x", &found, &allowed),
           SV_ROUTE_NOT_FOUND, "exact pattern does not match longer paths");
    is_int(sv_router_match(routes, n, SV_HTTP_PATCH, "/rest/v1/handle_content", &found, &allowed),
           SV_ROUTE_FOUND, "prefix pattern matches below it");
    is_int(sv_router_match(routes, n, SV_HTTP_GET, "/rest/v1/", &found, &allowed),
           SV_ROUTE_NOT_FOUND, "prefix pattern needs something after the slash");
    is_int(sv_router_match(routes, n, SV_HTTP_GET, "/rest/v10/x", &found, &allowed),
           SV_ROUTE_NOT_FOUND, "prefix is matched on a path boundary");
    is_int(sv_router_match(routes, n, 0, "/auth/v1/token", &found, &allowed),
           SV_ROUTE_METHOD_NOT_ALLOWED, "unknown method on a known path is 405");
    is_int(sv_router_match(routes, n, SV_HTTP_GET, "/nope", &found, &allowed), SV_ROUTE_NOT_FOUND,
           "unknown path is 404");
    return tap_done();
}
