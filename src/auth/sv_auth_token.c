/* POST /auth/v1/token: grant_type=password and grant_type=refresh_token. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth/sv_auth.h"
#include "auth/sv_auth_common.h"
#include "core/sv_json.h"
#include "core/sv_log.h"
#include "crypto/sv_password.h"

/* Checks pw against a bcrypt hash and, when it matches, replaces the
 * stored hash with an argon2id one so the bcrypt hash is gone after the
 * first login. Returns 1 (right password), 0 (wrong), or -1 with
 * ctx->err filled (database error). Neither the password nor a hash is
 * ever logged. */
static int sv_auth_bcrypt_login(sv_ctx *ctx, const char *user_id, const char *hash,
                                const char *pw, size_t pw_len)
{
    static const char rehash_sql[] = "SELECT auth.sv_password_rehash($1::uuid, $2, $3)";

    int checked = sv_password_bcrypt_check(hash, pw, pw_len);
    if (checked < 0)
        sv_log_warn("auth_bcrypt_cost", "user_id=%s max_cost=%d msg=\"stored bcrypt hash too costly to "
                    "check; set a new password for this user\" request_id=%s",
                    user_id, SV_PASSWORD_BCRYPT_MAX_COST, ctx->req->request_id);
    if (checked != 1)
        return 0;

    char *argon = sv_arena_alloc(ctx->arena, SV_PASSWORD_HASH_BYTES);
    if (sv_password_hash(argon, pw, pw_len) != SV_OK) {
        /* the login still succeeds; the next one tries again */
        sv_log_error("auth_hash_failed", "reason=out_of_memory step=rehash request_id=%s",
                     ctx->req->request_id);
        return 1;
    }
    const char *rvalues[3] = { user_id, hash, argon };
    PGresult *r = sv_auth_db(ctx, "password_rehash", rehash_sql, 3, rvalues);
    if (r == NULL)
        return -1;
    if (strcmp(PQgetvalue(r, 0, 0), "t") == 0)
        sv_log_info("auth_password_rehashed", "user_id=%s from=bcrypt to=argon2id request_id=%s",
                    user_id, ctx->req->request_id);
    PQclear(r);
    return 1;
}

/* GoTrue's password grant (internal/api/token.go) refuses an address
 * that is not confirmed, after the password was found right, so only
 * whoever holds it learns that: 400 email_not_confirmed. Signup confirms
 * at once; the service role may create an account without email_confirm
 * (sv_auth_admin_users.c). SV_OK when the user may sign in. */
static int sv_auth_login_confirmed(sv_ctx *ctx, const char *user_id)
{
    static const char sql[] = "SELECT auth.sv_login_confirmed($1::uuid)";

    PGresult *r = sv_auth_db(ctx, "login_confirmed", sql, 1, &user_id);
    if (r == NULL)
        return SV_ERROR;
    int confirmed = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (confirmed)
        return SV_OK;
    return sv_fail(&ctx->err, 400, "email_not_confirmed", "Email not confirmed");
}

/* grant_type=password. Throttling first (counted per account and per
 * address, failures recorded before the password is checked so parallel
 * guesses see each other), then one argon2id verification whether or not
 * the email exists, then the same answer for every kind of failure. */
static int sv_auth_password_grant(sv_ctx *ctx, json_object *body)
{
    static const char begin_sql[] =
        "SELECT o_retry_after, o_user_id, o_hash, o_attempts::text "
        "FROM auth.sv_login_begin($1, $2, $3::int, $4::int)";
    static const char ok_sql[] =
        "SELECT o_user::text, o_session, o_created "
        "FROM auth.sv_login_succeed($1::uuid, $2::bigint[], $3, $4, $5::inet, $6)";
    const char *email_in, *pw;
    size_t email_len, pw_len;

    if (sv_json_string(body, "email", &email_in, &email_len) <= 0 || email_len == 0) {
        if (sv_json_string(body, "phone", &email_in, NULL) > 0)
            return sv_fail(&ctx->err, 400, "phone_provider_disabled", "Phone logins are disabled");
        return sv_fail(&ctx->err, 400, "validation_failed", "missing email or phone");
    }
    if (sv_json_string(body, "password", &pw, &pw_len) < 0) {
        pw = NULL;
        pw_len = 0;
    }
    char *email = sv_auth_email(ctx->arena, email_in, email_len);
    if (email == NULL) /* cannot be anyone's address: same answer as a wrong password */
        return sv_fail(&ctx->err, 400, "invalid_credentials", "Invalid login credentials");

    const char *ip = sv_auth_ip(ctx);
    const char *max = sv_arena_printf(ctx->arena, "%d", ctx->cfg->login_max_failures);
    const char *window = sv_arena_printf(ctx->arena, "%d", ctx->cfg->login_window);
    const char *bvalues[4] = { email, sv_auth_addr_key(ctx), max, window };
    PGresult *r = sv_auth_db(ctx, "login_begin", begin_sql, 4, bvalues);
    if (r == NULL)
        return SV_ERROR;
    long retry = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    if (retry > 0) {
        PQclear(r);
        sv_log_warn("auth_login_throttled", "retry_after=%ld remote_addr=%s request_id=%s", retry,
                    ip ? ip : "-", ctx->req->request_id);
        ctx->err.retry_after = (int)retry;
        return sv_fail(&ctx->err, 429, "over_request_rate_limit", "Request rate limit reached");
    }
    const char *user_id = sv_arena_strdup(ctx->arena, PQgetvalue(r, 0, 1));
    const char *hash = sv_auth_col(r, 2);
    const char *attempts = sv_arena_strdup(ctx->arena, PQgetvalue(r, 0, 3));
    int known = !PQgetisnull(r, 0, 1) && hash != NULL;
    int bcrypt = known && sv_password_is_bcrypt(hash);
    int good = 0;
    if (bcrypt)
        hash = sv_arena_strdup(ctx->arena, hash);
    /* argon2id or bcrypt next: tens of ms of CPU with nothing to wait on */
    sv_ctx_shed(ctx);
    if (pw == NULL || pw_len > SV_PASSWORD_MAX)
        sv_password_verify_nobody("", 0); /* same work as a real check, result ignored */
    else if (!known)
        sv_password_verify_nobody(pw, pw_len);
    else if (!bcrypt)
        good = sv_password_verify(hash, pw, pw_len);
    PQclear(r);
    if (bcrypt && pw != NULL && pw_len <= SV_PASSWORD_MAX) {
        int rc = sv_auth_bcrypt_login(ctx, user_id, hash, pw, pw_len);
        if (rc < 0)
            return SV_ERROR;
        good = rc;
    }
    if (!good)
        return sv_fail(&ctx->err, 400, "invalid_credentials", "Invalid login credentials");
    if (sv_auth_login_confirmed(ctx, user_id) != SV_OK)
        return SV_ERROR;

    const char *refresh, *refresh_hash;
    sv_auth_new_refresh(ctx->arena, &refresh, &refresh_hash);
    const char *svalues[6] = { user_id, attempts, sv_arena_printf(ctx->arena, "email:%s", email),
                               refresh_hash, ip, sv_auth_user_agent(ctx) };
    r = sv_auth_db(ctx, "login_succeed", ok_sql, 6, svalues);
    if (r == NULL)
        return SV_ERROR;
    int rc = PQgetisnull(r, 0, 0)
                 ? sv_fail(&ctx->err, 400, "invalid_credentials", "Invalid login credentials")
                 : sv_auth_session(ctx, sv_auth_col(r, 0), sv_auth_col(r, 1), sv_auth_col(r, 2),
                                   refresh);
    PQclear(r);
    return rc;
}

/* grant_type=refresh_token: rotated on each use, one live token per
 * session. A spent token still refreshes for refresh_token_reuse_interval
 * seconds after it was rotated (two tabs or an SSR server refreshing at
 * once): it gets the session's live token again, as GoTrue answers, not
 * a new one. Later, it revokes its whole session (someone else may hold
 * a copy). sql/016_refresh_one_chain.sql has the rules. */
static int sv_auth_refresh_grant(sv_ctx *ctx, json_object *body)
{
    static const char sql[] =
        "SELECT o_error, o_user::text, o_session, o_created, o_generation, o_reused "
        "FROM auth.sv_refresh($1, $2::text[], $3::int)";
    const char *old;
    size_t old_len;

    if (sv_json_string(body, "refresh_token", &old, &old_len) <= 0 || old_len == 0)
        return sv_fail(&ctx->err, 400, "validation_failed", "refresh_token required");
    const char *chain[SV_AUTH_REFRESH_CHAIN], *chain_sql;
    sv_auth_refresh_chain(ctx, old, old_len, chain, &chain_sql);
    const char *values[3] = { sv_auth_hash_token(ctx->arena, old, old_len), chain_sql,
                              sv_arena_printf(ctx->arena, "%d", ctx->cfg->refresh_token_reuse_interval) };
    PGresult *r = sv_auth_db(ctx, "refresh", sql, 3, values);
    if (r == NULL)
        return SV_ERROR;
    const char *err = sv_auth_col(r, 0);
    const char *gen = sv_auth_col(r, 4);
    long g = gen ? strtol(gen, NULL, 10) : 0;
    int rc;
    if (err == NULL && g >= 1 && g <= SV_AUTH_REFRESH_CHAIN) {
        if (sv_auth_col(r, 5) != NULL && strcmp(sv_auth_col(r, 5), "t") == 0)
            sv_log_info("auth_refresh_reuse", "session_id=%s generation=%ld action=live_token_returned "
                        "request_id=%s", sv_auth_col(r, 2) ? sv_auth_col(r, 2) : "-", g,
                        ctx->req->request_id);
        rc = sv_auth_session(ctx, sv_auth_col(r, 1), sv_auth_col(r, 2), sv_auth_col(r, 3),
                             chain[g - 1]);
    } else if (err == NULL) {
        rc = sv_fail(&ctx->err, 500, "unexpected_failure", "Unexpected failure");
    } else if (strcmp(err, "refresh_token_already_used") == 0) {
        sv_log_warn("auth_refresh_reuse", "session_id=%s action=session_revoked request_id=%s",
                    sv_auth_col(r, 2) ? sv_auth_col(r, 2) : "-", ctx->req->request_id);
        rc = sv_fail(&ctx->err, 400, "refresh_token_already_used",
                     "Invalid Refresh Token: Already Used");
    } else if (strcmp(err, "session_expired") == 0) {
        rc = sv_fail(&ctx->err, 400, "session_expired", "Invalid Refresh Token: Session Expired");
    } else if (strcmp(err, "user_banned") == 0) {
        rc = sv_fail(&ctx->err, 400, "user_banned", "User is banned");
    } else {
        rc = sv_fail(&ctx->err, 400, "refresh_token_not_found",
                     "Invalid Refresh Token: Refresh Token Not Found");
    }
    PQclear(r);
    return rc;
}

int sv_auth_token(sv_ctx *ctx)
{
    json_object *body;

    if (sv_auth_require_secret(ctx) != SV_OK)
        return SV_ERROR;
    const char *grant = sv_request_query_param(ctx->req, "grant_type");
    int password = grant != NULL && strcmp(grant, "password") == 0;
    int refresh = grant != NULL && strcmp(grant, "refresh_token") == 0;
    if (!password && !refresh) /* GoTrue's code for it (api/token.go) */
        return sv_fail(&ctx->err, 400, "invalid_credentials", "unsupported_grant_type");
    if (sv_auth_body(ctx, &body) != SV_OK)
        return SV_ERROR;
    int rc = password ? sv_auth_password_grant(ctx, body) : sv_auth_refresh_grant(ctx, body);
    json_object_put(body);
    return rc;
}
