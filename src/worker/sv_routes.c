/* Every endpoint the server answers, in one table: pattern (one "*" per
 * path segment), methods, handler, who may call it, its rate class and
 * the dialect of its errors. The most specific pattern wins, so
 * "/rest/v1/rpc/ *" takes rpc calls from "/rest/v1/ *". To add an
 * endpoint, write its handler in the module of its resource family and
 * add one line here (doc/architecture.md walks through it). */
#include "worker/sv_routes.h"

#include "auth/sv_auth.h"
#include "functions/sv_functions.h"
#include "http/sv_http.h"
#include "ops/sv_ops.h"
#include "rest/sv_rest.h"

#define SV_GET SV_HTTP_GET
#define SV_POST SV_HTTP_POST
#define SV_PUT SV_HTTP_PUT
#define SV_PATCH SV_HTTP_PATCH
#define SV_DELETE SV_HTTP_DELETE

const sv_route sv_routes[] = {
    /* pattern           methods   handler   auth   rate   dialect */
    { "/healthz", SV_GET, sv_ops_healthz, SV_AUTH_NONE, SV_RATE_NONE, SV_DIALECT_POSTGREST, NULL, NULL },
    /* status_path from the configuration */
    { NULL, SV_GET, sv_ops_status, SV_AUTH_NONE, SV_RATE_NONE, SV_DIALECT_POSTGREST, NULL, NULL },

    { "/auth/v1/signup", SV_POST, sv_auth_signup, SV_AUTH_NONE, SV_RATE_AUTH, SV_DIALECT_GOTRUE, NULL, NULL },
    { "/auth/v1/token", SV_POST, sv_auth_token, SV_AUTH_NONE, SV_RATE_AUTH, SV_DIALECT_GOTRUE, NULL, NULL },
    { "/auth/v1/user", SV_GET, sv_auth_user_get, SV_AUTH_USER, SV_RATE_AUTH, SV_DIALECT_GOTRUE, NULL, NULL },
    { "/auth/v1/user", SV_PUT, sv_auth_user_put, SV_AUTH_USER, SV_RATE_AUTH, SV_DIALECT_GOTRUE, NULL, NULL },
    { "/auth/v1/logout", SV_POST, sv_auth_logout, SV_AUTH_USER, SV_RATE_AUTH, SV_DIALECT_GOTRUE, NULL, NULL },

    { "/rest/v1/", SV_GET, sv_rest_openapi, SV_AUTH_NONE, SV_RATE_DATA, SV_DIALECT_POSTGREST, NULL, NULL },
    { "/rest/v1/rpc/*", SV_GET | SV_POST, sv_rest_rpc, SV_AUTH_OPTIONAL, SV_RATE_DATA,
      SV_DIALECT_POSTGREST, "PGRST101", "Only GET and POST are allowed for functions" },
    /* The seed's Vault calls: literal, so they beat rpc/ *. */
    { "/rest/v1/rpc/vault.create_secret", SV_POST, sv_rest_vault_create_secret, SV_AUTH_SERVICE,
      SV_RATE_DATA, SV_DIALECT_POSTGREST, "PGRST101", "Only POST is allowed for vault.create_secret" },
    { "/rest/v1/rpc/vault.get_secret", SV_GET | SV_POST, sv_rest_vault_get_secret, SV_AUTH_SERVICE,
      SV_RATE_DATA, SV_DIALECT_POSTGREST, "PGRST101", "Only GET and POST are allowed for functions" },
    { "/rest/v1/*", SV_GET | SV_POST | SV_PATCH | SV_DELETE, sv_rest_table, SV_AUTH_OPTIONAL,
      SV_RATE_DATA, SV_DIALECT_POSTGREST, NULL, NULL },

    { "/functions/v1/credentials", SV_GET | SV_POST, sv_fn_credentials, SV_AUTH_USER,
      SV_RATE_FUNCTIONS, SV_DIALECT_FUNCTIONS, NULL, NULL },
    { "/functions/v1/credentials/*", SV_DELETE, sv_fn_credentials_delete, SV_AUTH_USER,
      SV_RATE_FUNCTIONS, SV_DIALECT_FUNCTIONS, NULL, NULL },
    { "/functions/v1/oauth/*/start", SV_GET, sv_fn_oauth_start, SV_AUTH_USER, SV_RATE_FUNCTIONS,
      SV_DIALECT_FUNCTIONS, NULL, NULL },
    /* Reached by the browser's redirect from the provider, without a
     * token: the signed, single-use state says whose flow it is. */
    { "/functions/v1/oauth/*/callback", SV_GET, sv_fn_oauth_callback, SV_AUTH_NONE,
      SV_RATE_FUNCTIONS, SV_DIALECT_FUNCTIONS, NULL, NULL },
};

const size_t sv_routes_count = sizeof(sv_routes) / sizeof(sv_routes[0]);
