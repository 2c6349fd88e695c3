/* Every endpoint the server answers, in one table: pattern (one "*" per
 * path segment), methods, handler, who may call it, its rate class and
 * the dialect of its errors. The most specific pattern wins, so
 * "/rest/v1/rpc/ *" takes rpc calls from "/rest/v1/ *". To add an
 * endpoint, write its handler in the module of its resource family and
 * add one line here (doc/architecture.md walks through it). */
#include "worker/sv_routes.h"

#include <stdio.h>

#include "auth/sv_auth.h"
#include "core/sv_config.h"
#include "functions/sv_fn_jobs.h"
#include "functions/sv_functions.h"
#include "http/sv_http.h"
#include "ops/sv_ops.h"
#include "rest/sv_rest.h"

#define GET SV_HTTP_GET
#define POST SV_HTTP_POST
#define PUT SV_HTTP_PUT
#define PATCH SV_HTTP_PATCH
#define DELETE SV_HTTP_DELETE

/* Route: pattern, methods, handler, auth policy, rate class, dialect. */
#define R(p, m, h, a, r, d) \
    { .pattern = (p), .methods = (m), .handler = (h), .auth = SV_AUTH_##a, .rate = SV_RATE_##r, \
      .dialect = SV_DIALECT_##d }

static const char *sv_routes_status_path(const sv_config *cfg, char *buf, size_t len)
{
    (void)buf;
    (void)len;
    return cfg->status_path;
}

const sv_route sv_routes[] = {
    R("/healthz", GET, sv_ops_healthz, NONE, NONE, POSTGREST),
    { .methods = GET, .handler = sv_ops_status, .auth = SV_AUTH_NONE, .rate = SV_RATE_NONE,
      .dialect = SV_DIALECT_POSTGREST, .configured_pattern = sv_routes_status_path },

    R("/auth/v1/signup", POST, sv_auth_signup, NONE, AUTH, GOTRUE),
    R("/auth/v1/token", POST, sv_auth_token, NONE, AUTH, GOTRUE),
    R("/auth/v1/user", GET, sv_auth_user_get, USER, AUTH, GOTRUE),
    R("/auth/v1/user", PUT, sv_auth_user_put, USER, AUTH, GOTRUE),
    R("/auth/v1/logout", POST, sv_auth_logout, USER, AUTH, GOTRUE),
    R("/auth/v1/admin/users", GET, sv_auth_admin_users_list, ADMIN, AUTH, GOTRUE),
    R("/auth/v1/admin/users", POST, sv_auth_admin_user_create, ADMIN, AUTH, GOTRUE),
    R("/auth/v1/admin/users/*", GET, sv_auth_admin_user_get, ADMIN, AUTH, GOTRUE),
    R("/auth/v1/admin/users/*", PUT, sv_auth_admin_user_update, ADMIN, AUTH, GOTRUE),
    R("/auth/v1/admin/users/*", DELETE, sv_auth_admin_user_delete, ADMIN, AUTH, GOTRUE),

    R("/rest/v1/", GET, sv_rest_openapi, NONE, DATA, POSTGREST),
    { .pattern = "/rest/v1/rpc/*", .methods = GET | POST, .handler = sv_rest_rpc,
      .auth = SV_AUTH_OPTIONAL, .rate = SV_RATE_DATA, .dialect = SV_DIALECT_POSTGREST,
      .bad_method_code = "PGRST101", .bad_method_message = "Only GET and POST are allowed for functions" },
    /* The seed's Vault calls: literal, so they beat rpc/ *. */
    { .pattern = "/rest/v1/rpc/vault.create_secret", .methods = POST,
      .handler = sv_rest_vault_create_secret, .auth = SV_AUTH_SERVICE, .rate = SV_RATE_DATA,
      .dialect = SV_DIALECT_POSTGREST, .bad_method_code = "PGRST101",
      .bad_method_message = "Only POST is allowed for vault.create_secret" },
    { .pattern = "/rest/v1/rpc/vault.get_secret", .methods = GET | POST,
      .handler = sv_rest_vault_get_secret, .auth = SV_AUTH_SERVICE, .rate = SV_RATE_DATA,
      .dialect = SV_DIALECT_POSTGREST, .bad_method_code = "PGRST101",
      .bad_method_message = "Only GET and POST are allowed for functions" },
    R("/rest/v1/*", GET | POST | PATCH | DELETE, sv_rest_table, OPTIONAL, DATA, POSTGREST),

    R("/functions/v1/credentials", GET | POST, sv_fn_credentials, USER, FUNCTIONS, FUNCTIONS),
    R("/functions/v1/credentials/*", DELETE, sv_fn_credentials_delete, USER, FUNCTIONS, FUNCTIONS),
    R("/functions/v1/oauth/*/start", GET, sv_fn_oauth_start, USER, FUNCTIONS, FUNCTIONS),
    /* Reached by the browser's redirect from the provider, without a
     * token: the signed, single-use state says whose flow it is. */
    R("/functions/v1/oauth/*/callback", GET, sv_fn_oauth_callback, NONE, FUNCTIONS, FUNCTIONS),

    R("/functions/v1/sync-platform", POST, sv_fn_sync_platform, REQUIRED, FUNCTIONS, FUNCTIONS),
    R("/functions/v1/enhance-ai", POST, sv_fn_enhance_ai, REQUIRED, FUNCTIONS, FUNCTIONS),
    R("/functions/v1/submit-seo", POST, sv_fn_submit_seo, REQUIRED, FUNCTIONS, FUNCTIONS),
    R("/functions/v1/jobs", GET, sv_fn_jobs_list, REQUIRED, DATA, FUNCTIONS),
    R("/functions/v1/jobs/*", GET, sv_fn_job_status, REQUIRED, DATA, FUNCTIONS),
    R("/functions/v1/suggestions/*/apply", POST, sv_fn_suggestion_apply, REQUIRED, FUNCTIONS, FUNCTIONS),
    { .methods = GET, .handler = sv_fn_indexnow_key, .auth = SV_AUTH_NONE, .rate = SV_RATE_NONE,
      .dialect = SV_DIALECT_FUNCTIONS, .configured_pattern = sv_fn_indexnow_key_path },
};

const size_t sv_routes_count = sizeof(sv_routes) / sizeof(sv_routes[0]);
