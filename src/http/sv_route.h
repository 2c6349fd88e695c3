/* Routes: a path pattern, the methods it takes, its handler, and what the
 * phase runner does before the handler (worker/sv_phases.c): which
 * callers it admits, which rate class it counts against, and which
 * dialect its errors speak. The table itself is worker/sv_routes.c.
 *
 * A pattern is matched segment by segment: "*" stands for exactly one
 * non-empty segment ("/functions/v1/oauth/ * /start", without the
 * spaces), anything else must be equal. When several patterns match,
 * the most specific wins: comparing segment by segment, the first
 * literal beats a "*". The most specific pattern owns its path: a
 * method none of its routes takes is a 405, whatever a less specific
 * pattern would take. */
#ifndef SV_ROUTE_H
#define SV_ROUTE_H

#include <stddef.h>

struct sv_ctx;
struct sv_config;

/* Who may call the route, checked before its handler runs. */
typedef enum {
    SV_AUTH_NONE,       /* no token is looked at */
    SV_AUTH_OPTIONAL,   /* no token: anon; a token must verify (PostgREST) */
    SV_AUTH_REQUIRED,   /* as OPTIONAL, but anon is refused: a user, or the service role */
    SV_AUTH_USER,       /* a signed-in user's access token (GoTrue's requireAuthentication) */
    SV_AUTH_SERVICE,    /* the service_role key only */
    SV_AUTH_ADMIN,      /* the service_role key as a Bearer token (GoTrue's requireAdminCredentials) */
} sv_auth_policy;

/* The bucket a request is counted in by the rate limiter. */
typedef enum {
    SV_RATE_NONE,
    SV_RATE_AUTH,
    SV_RATE_DATA,       /* reads for GET/HEAD, writes otherwise */
    SV_RATE_FUNCTIONS,
} sv_rate_class;

/* The shape of error bodies. */
typedef enum {
    SV_DIALECT_POSTGREST,   /* {"code","message","details","hint"} */
    SV_DIALECT_GOTRUE,      /* {"code":status,"error_code","msg"} */
    SV_DIALECT_FUNCTIONS,   /* Edge Functions: {"error":message,"code"[,"details"]} */
} sv_dialect;

/* Returns SV_OK with the response filled, SV_DONE likewise, or SV_ERROR
 * with ctx->err filled. */
typedef int (*sv_handler_fn)(struct sv_ctx *ctx);

/* A pattern that comes from the configuration (the status page's
 * path, the IndexNow key file's): written into buf, or NULL when the
 * route is switched off. */
typedef const char *(*sv_route_pattern_fn)(const struct sv_config *cfg, char *buf, size_t len);

typedef struct sv_route {
    const char    *pattern;    /* NULL: configured_pattern's */
    int            methods;    /* sv_http_method bits; GET implies HEAD */
    sv_handler_fn  handler;
    sv_auth_policy auth;
    sv_rate_class  rate;
    sv_dialect     dialect;
    /* The 405 for this path, when it is not the generic PGRST117. */
    const char    *bad_method_code;
    const char    *bad_method_message;
    sv_route_pattern_fn configured_pattern;
} sv_route;

typedef enum { SV_ROUTE_FOUND, SV_ROUTE_NOT_FOUND, SV_ROUTE_METHOD_NOT_ALLOWED } sv_route_result;

typedef struct sv_route_match {
    const sv_route *route;     /* FOUND: the route to run */
    const sv_route *best;      /* METHOD_NOT_ALLOWED: the most specific route of the path */
    int             allowed;   /* METHOD_NOT_ALLOWED: the path's methods, for Allow */
} sv_route_match;

/* Finds the route for method + path among n routes (the configured
 * patterns come from cfg). */
sv_route_result sv_route_find(const sv_route *routes, size_t n, const struct sv_config *cfg,
                              int method, const char *path, sv_route_match *m);

/* The methods a route takes (GET implies HEAD). */
int sv_route_methods(const sv_route *route);

#endif
