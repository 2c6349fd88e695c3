/* POST /auth/v1/signup, GET and PUT /auth/v1/user, POST /auth/v1/logout. */
#include <stdlib.h>
#include <string.h>

#include "auth/sv_auth.h"
#include "auth/sv_auth_common.h"
#include "core/sv_json.h"
#include "core/sv_log.h"
#include "crypto/sv_password.h"

/* Signup throttle, checked before the argon2id hash a signup costs:
 * signups per address (auth.sv_signup_begin, shared by all workers) within
 * login_window. Returns SV_OK when this signup may go ahead (it is
 * counted), else SV_ERROR: 429 with Retry-After over the limit, or the
 * database error. */
static int sv_auth_signup_allowed(sv_ctx *ctx)
{
    static const char sql[] =
        "SELECT o_retry_after FROM auth.sv_signup_begin($1::inet, $2::int, $3::int)";
    const char *ip = sv_auth_addr_key(ctx);

    if (ctx->cfg->signup_max_per_window <= 0 || ip == NULL)
        return SV_OK;
    const char *values[3] = { ip, sv_arena_printf(ctx->arena, "%d", ctx->cfg->signup_max_per_window),
                              sv_arena_printf(ctx->arena, "%d", ctx->cfg->login_window) };
    PGresult *r = sv_auth_db(ctx, "signup_begin", sql, 3, values);
    if (r == NULL)
        return SV_ERROR;
    long retry = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (retry <= 0)
        return SV_OK;
    sv_log_warn("auth_signup_throttled", "retry_after=%ld remote_addr=%s request_id=%s", retry, ip,
                ctx->req->request_id);
    ctx->err.retry_after = (int)retry;
    return sv_fail(&ctx->err, 429, "over_request_rate_limit", "Request rate limit reached");
}

static int sv_auth_signup_body(sv_ctx *ctx, json_object *body)
{
    static const char sql[] =
        "SELECT o_error, o_user::text, o_session, o_created "
        "FROM auth.sv_signup($1, $2, $3::jsonb, $4, $5::inet, $6)";
    const char *email_in, *pw, *meta;
    size_t email_len, pw_len;
    char *hash;

    if (sv_json_string(body, "email", &email_in, &email_len) <= 0 || email_len == 0) {
        if (sv_json_string(body, "phone", &email_in, NULL) > 0)
            return sv_fail(&ctx->err, 400, "phone_provider_disabled", "Phone signups are disabled");
        return sv_fail(&ctx->err, 400, "validation_failed", "To signup, please provide your email");
    }
    char *email = sv_auth_email(ctx->arena, email_in, email_len);
    if (email == NULL)
        return sv_fail(&ctx->err, 400, "email_address_invalid",
                       "Unable to validate email address: invalid format");
    if (sv_json_string(body, "password", &pw, &pw_len) < 0)
        return sv_fail(&ctx->err, 400, "validation_failed", "password must be a string");
    if (sv_auth_password_policy(ctx, pw, pw_len) != SV_OK || sv_auth_meta(ctx, body, &meta) != SV_OK ||
        sv_auth_signup_allowed(ctx) != SV_OK || sv_auth_hash_password(ctx, pw, pw_len, &hash) != SV_OK)
        return SV_ERROR;

    const char *refresh, *refresh_hash;
    sv_auth_new_refresh(ctx->arena, &refresh, &refresh_hash);
    const char *values[6] = { email, hash, meta, refresh_hash, sv_auth_ip(ctx),
                              sv_auth_user_agent(ctx) };
    PGresult *r = sv_auth_db(ctx, "signup", sql, 6, values);
    if (r == NULL)
        return SV_ERROR;
    const char *err = sv_auth_col(r, 0);
    int rc;
    if (err != NULL && strcmp(err, "user_already_exists") == 0) {
        rc = sv_fail(&ctx->err, 422, "user_already_exists", "User already registered");
    } else if (err != NULL) {
        rc = sv_fail(&ctx->err, 400, "email_address_invalid",
                     "Unable to validate email address: invalid format");
    } else {
        rc = sv_auth_session(ctx, sv_auth_col(r, 1), sv_auth_col(r, 2), sv_auth_col(r, 3), refresh);
        sv_log_info("auth_signup", "session_id=%s request_id=%s", sv_auth_col(r, 2),
                    ctx->req->request_id);
    }
    PQclear(r);
    return rc;
}

int sv_auth_signup(sv_ctx *ctx)
{
    json_object *body;

    if (sv_auth_require_secret(ctx) != SV_OK || sv_auth_body(ctx, &body) != SV_OK)
        return SV_ERROR;
    int rc = sv_auth_signup_body(ctx, body);
    json_object_put(body);
    return rc;
}

/* Answers a user lookup error code from auth.sv_user_get/sv_user_update. */
static int sv_auth_user_error(sv_ctx *ctx, const char *err)
{
    if (strcmp(err, "user_not_found") == 0)
        return sv_fail(&ctx->err, 403, "user_not_found", "User from sub claim in JWT does not exist");
    if (strcmp(err, "email_exists") == 0)
        return sv_fail(&ctx->err, 422, "email_exists",
                       "A user with this email address has already been registered");
    return sv_fail(&ctx->err, 403, "session_not_found",
                   "Session from session_id claim in JWT does not exist");
}

/* Sends the user object text of column 1 of r. */
int sv_auth_user_get(sv_ctx *ctx)
{
    static const char sql[] = "SELECT o_error, o_user::text FROM auth.sv_user_get($1::uuid, $2::uuid)";

    const char *values[2] = { ctx->caller.user_id, ctx->caller.session_id };
    PGresult *r = sv_auth_db(ctx, "user_get", sql, 2, values);
    if (r == NULL)
        return SV_ERROR;
    sv_response_header(ctx->res, "Cache-Control", "no-store");
    int rc = !PQgetisnull(r, 0, 0) ? sv_auth_user_error(ctx, PQgetvalue(r, 0, 0))
                                   : sv_auth_answer(ctx, r, 1);
    PQclear(r);
    return rc;
}

/* A new password for the signed-in user: checked against the policy and
 * against the current one, then hashed into *hash. */
static int sv_auth_new_password(sv_ctx *ctx, const char *pw, size_t pw_len, char **hash)
{
    static const char get_sql[] =
        "SELECT o_error, o_hash FROM auth.sv_user_get($1::uuid, $2::uuid)";

    if (sv_auth_password_policy(ctx, pw, pw_len) != SV_OK)
        return SV_ERROR;
    const char *gvalues[2] = { ctx->caller.user_id, ctx->caller.session_id };
    PGresult *g = sv_auth_db(ctx, "user_get", get_sql, 2, gvalues);
    if (g == NULL)
        return SV_ERROR;
    if (!PQgetisnull(g, 0, 0)) {
        int rc = sv_auth_user_error(ctx, PQgetvalue(g, 0, 0));
        PQclear(g);
        return rc;
    }
    sv_ctx_shed(ctx);
    int same = !PQgetisnull(g, 0, 1) && sv_password_verify(PQgetvalue(g, 0, 1), pw, pw_len);
    PQclear(g);
    if (same)
        return sv_fail(&ctx->err, 422, "same_password",
                       "New password should be different from the old password.");
    return sv_auth_hash_password(ctx, pw, pw_len, hash);
}

static int sv_auth_user_update(sv_ctx *ctx, json_object *body)
{
    static const char sql[] =
        "SELECT o_error, o_user::text "
        "FROM auth.sv_user_update($1::uuid, $2::uuid, $3, $4, $5::jsonb)";
    const char *email_in = NULL, *pw = NULL, *meta = NULL, *email = NULL;
    char *hash = NULL;
    size_t email_len = 0, pw_len = 0;

    int has_email = sv_json_string(body, "email", &email_in, &email_len);
    int has_pw = sv_json_string(body, "password", &pw, &pw_len);
    if (has_email < 0 || has_pw < 0)
        return sv_fail(&ctx->err, 400, "validation_failed", "email and password must be strings");
    if (has_email > 0 && (email = sv_auth_email(ctx->arena, email_in, email_len)) == NULL)
        return sv_fail(&ctx->err, 400, "email_address_invalid",
                       "Unable to validate email address: invalid format");
    if (sv_auth_meta(ctx, body, &meta) != SV_OK ||
        (has_pw > 0 && sv_auth_new_password(ctx, pw, pw_len, &hash) != SV_OK))
        return SV_ERROR;

    const char *values[5] = { ctx->caller.user_id, ctx->caller.session_id, email, hash, meta };
    PGresult *r = sv_auth_db(ctx, "user_update", sql, 5, values);
    if (r == NULL)
        return SV_ERROR;
    int rc;
    if (!PQgetisnull(r, 0, 0)) {
        rc = sv_auth_user_error(ctx, PQgetvalue(r, 0, 0));
    } else {
        rc = sv_auth_answer(ctx, r, 1);
        if (hash != NULL)
            sv_log_info("auth_password_changed", "user_id=%s other_sessions=revoked request_id=%s",
                        ctx->caller.user_id, ctx->req->request_id);
    }
    PQclear(r);
    return rc;
}

int sv_auth_user_put(sv_ctx *ctx)
{
    json_object *body;

    if (sv_auth_body(ctx, &body) != SV_OK)
        return SV_ERROR;
    int rc = sv_auth_user_update(ctx, body);
    json_object_put(body);
    return rc;
}

int sv_auth_logout(sv_ctx *ctx)
{
    static const char sql[] = "SELECT o_error FROM auth.sv_signout($1::uuid, $2::uuid, $3)";

    const char *scope = sv_request_query_param(ctx->req, "scope");
    if (scope == NULL || scope[0] == '\0')
        scope = "local";
    if (strcmp(scope, "local") != 0 && strcmp(scope, "global") != 0 &&
        strcmp(scope, "others") != 0)
        return sv_fail(&ctx->err, 400, "validation_failed",
                       "Unsupported logout scope (use local, global or others)");
    const char *values[3] = { ctx->caller.user_id, ctx->caller.session_id, scope };
    PGresult *r = sv_auth_db(ctx, "logout", sql, 3, values);
    if (r == NULL)
        return SV_ERROR;
    if (!PQgetisnull(r, 0, 0)) {
        int rc = sv_auth_user_error(ctx, PQgetvalue(r, 0, 0));
        PQclear(r);
        return rc;
    }
    PQclear(r);
    ctx->res->status = 204;
    ctx->res->body.len = 0;
    return SV_OK;
}
