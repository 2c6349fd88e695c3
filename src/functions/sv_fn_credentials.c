/* /functions/v1/credentials: a signed-in user's platform credentials.
 *
 *   GET                          the caller's credentials, metadata only
 *   POST {platform, access_token, refresh_token?, expires_at?|expires_in?,
 *         scopes?, platform_user_id?}
 *                                stores tokens obtained elsewhere (one
 *                                credential per platform: a second POST
 *                                replaces the first); 201 new, 200 replaced
 *   DELETE /credentials/<platform>
 *                                asks the provider to revoke the token,
 *                                then deletes; says whether the revoke
 *                                worked, and deletes anyway
 *
 * The user is always the JWT's sub: a user_id in the body is ignored.
 * No answer ever contains a token. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "core/sv_json.h"
#include "functions/sv_fn_common.h"
#include "functions/sv_functions.h"

/* Longest token accepted: real ones are up to a few kB (Google's ~2 kB). */
#define SV_FN_TOKEN_MAX 8192
#define SV_FN_SCOPES_MAX 64
#define SV_FN_SCOPE_LEN_MAX 256

/* A token member: SV_OK with *s (NULL when absent or null and not
 * required), or SV_ERROR (400). Tokens are printable ASCII without
 * spaces (RFC 6750's b64token and every real provider's). */
static int sv_fn_token_member(sv_ctx *ctx, json_object *body, const char *key, int required,
                              const char **s, size_t *len)
{
    int kind = sv_json_string(body, key, s, len);
    if (kind < 0)
        return sv_fail(&ctx->err, 400, "invalid_request", sv_arena_printf(ctx->arena, "%s must be a string", key));
    if (kind == 0) {
        *s = NULL;
        return required ? sv_fail(&ctx->err, 400, "invalid_request", sv_arena_printf(ctx->arena, "%s is required", key))
                        : SV_OK;
    }
    if (*len == 0)
        return sv_fail(&ctx->err, 400, "invalid_request", sv_arena_printf(ctx->arena, "%s is empty", key));
    if (*len > SV_FN_TOKEN_MAX)
        return sv_fail(&ctx->err, 400, "invalid_request",
                       sv_arena_printf(ctx->arena, "%s is longer than %d bytes", key, SV_FN_TOKEN_MAX));
    for (size_t i = 0; i < *len; i++)
        if ((unsigned char)(*s)[i] <= 0x20 || (unsigned char)(*s)[i] >= 0x7f)
            return sv_fail(&ctx->err, 400, "invalid_request",
                           sv_arena_printf(ctx->arena, "%s holds characters no token has", key));
    return SV_OK;
}

/* scopes: an array of strings, or one string separated by spaces or
 * commas. Returns SV_OK with *json (a JSON array, or NULL when absent). */
static int sv_fn_scopes(sv_ctx *ctx, json_object *body, const char **json)
{
    json_object *v, *arr;

    *json = NULL;
    if (!json_object_object_get_ex(body, "scopes", &v) || v == NULL)
        return SV_OK;
    arr = json_object_new_array();
    if (json_object_is_type(v, json_type_string)) {
        /* Limits are checked below, to refuse rather than cut. */
        sv_json_add_words(arr, json_object_get_string(v), " ,", 0, 0);
    } else if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            json_object *e = json_object_array_get_idx(v, i);
            if (!json_object_is_type(e, json_type_string)) {
                json_object_put(arr);
                return sv_fail(&ctx->err, 400, "invalid_request", "scopes must be strings");
            }
            json_object_array_add(arr, json_object_get(e));
        }
    } else {
        json_object_put(arr);
        return sv_fail(&ctx->err, 400, "invalid_request", "scopes must be an array of strings");
    }
    size_t n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        if (json_object_get_string_len(e) == 0 || json_object_get_string_len(e) > SV_FN_SCOPE_LEN_MAX) {
            json_object_put(arr);
            return sv_fail(&ctx->err, 400, "invalid_request", "a scope is empty or too long");
        }
    }
    if (n > SV_FN_SCOPES_MAX) {
        json_object_put(arr);
        return sv_fail(&ctx->err, 400, "invalid_request", "too many scopes");
    }
    *json = sv_arena_strdup(ctx->arena, json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
    json_object_put(arr);
    return SV_OK;
}

/* expires_at: an ISO 8601 time or epoch seconds; expires_in: seconds. */
static int sv_fn_expiry(sv_ctx *ctx, json_object *body, sv_credential_input *in)
{
    json_object *v;

    in->expires_at = NULL;
    in->expires_in = -1;
    if (json_object_object_get_ex(body, "expires_at", &v) && v != NULL) {
        if (json_object_is_type(v, json_type_string)) {
            size_t n = (size_t)json_object_get_string_len(v);
            if (n == 0 || n > 64)
                return sv_fail(&ctx->err, 400, "invalid_request", "expires_at is not a time");
            in->expires_at = sv_arena_strdup(ctx->arena, json_object_get_string(v));
        } else if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) {
            double d = json_object_get_double(v);
            if (!(d > 0 && d < 32503680000.0))   /* before year 3000 */
                return sv_fail(&ctx->err, 400, "invalid_request", "expires_at is out of range");
            time_t t = (time_t)d;
            struct tm tm;
            char text[40];
            gmtime_r(&t, &tm);
            strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
            in->expires_at = sv_arena_strdup(ctx->arena, text);
        } else {
            return sv_fail(&ctx->err, 400, "invalid_request", "expires_at must be a time or epoch seconds");
        }
    }
    if (in->expires_at == NULL && json_object_object_get_ex(body, "expires_in", &v) && v != NULL) {
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0 ||
            json_object_get_int64(v) > 100L * 365 * 86400)
            return sv_fail(&ctx->err, 400, "invalid_request", "expires_in must be a positive number of seconds");
        in->expires_in = (long)json_object_get_int64(v);
    }
    return SV_OK;
}

static int sv_fn_credentials_post(sv_ctx *ctx)
{
    json_object *body = NULL;
    sv_credential_input in;
    sv_platform_env env;
    const char *platform, *meta;
    size_t plen;
    int inserted, rc = SV_ERROR;

    memset(&in, 0, sizeof(in));
    if (sv_fn_body(ctx, &body) != SV_OK)
        goto done;
    int kind = sv_json_string(body, "platform", &platform, &plen);
    int bad_name = kind <= 0 || plen == 0 || plen > 32;
    for (size_t i = 0; !bad_name && i < plen; i++)
        bad_name = !((platform[i] >= 'a' && platform[i] <= 'z') || (platform[i] >= '0' && platform[i] <= '9') ||
                     platform[i] == '_');
    if (bad_name) {
        sv_fail(&ctx->err, 400, "invalid_request", "platform is required (youtube, instagram, tiktok)");
        goto done;
    }
    if (sv_fn_token_member(ctx, body, "access_token", 1, &in.access_token, &in.access_len) != SV_OK ||
        sv_fn_token_member(ctx, body, "refresh_token", 0, &in.refresh_token, &in.refresh_len) != SV_OK ||
        sv_fn_expiry(ctx, body, &in) != SV_OK || sv_fn_scopes(ctx, body, &in.scopes_json) != SV_OK)
        goto done;
    const char *puid;
    size_t puid_len;
    kind = sv_json_string(body, "platform_user_id", &puid, &puid_len);
    if (kind < 0 || puid_len > 256) {
        sv_fail(&ctx->err, 400, "invalid_request", "platform_user_id must be a string of at most 256 bytes");
        goto done;
    }
    in.platform_user_id = kind > 0 && puid_len > 0 ? sv_arena_strndup(ctx->arena, puid, puid_len) : NULL;
    in.user_id = ctx->caller.user_id;
    in.platform = sv_arena_strndup(ctx->arena, platform, plen);
    sv_fn_env(ctx, &env);
    if (sv_credentials_platform_id(&env, in.platform, &in.platform_id, &ctx->err) != SV_OK) {
        if (ctx->err.status == 404)
            ctx->err.status = 400;
        goto done;
    }
    if (sv_credentials_store(&env, &in, &meta, &inserted, &ctx->err) != SV_OK)
        goto done;
    rc = sv_fn_json(ctx, inserted ? 201 : 200, meta);
done:
    /* The tokens were in the body and in json-c's strings. */
    sv_json_put_wiped(body);
    sv_fn_wipe_body(ctx);
    return rc;
}

int sv_fn_credentials(sv_ctx *ctx)
{
    sv_platform_env env;
    const char *json;

    if (ctx->req->method == SV_HTTP_POST)
        return sv_fn_credentials_post(ctx);
    sv_fn_env(ctx, &env);
    if (sv_credentials_list(&env, ctx->caller.user_id, &json, &ctx->err) != SV_OK)
        return SV_ERROR;
    return sv_fn_json(ctx, 200, json);
}

int sv_fn_credentials_delete(sv_ctx *ctx)
{
    sv_platform_env env;
    const char *platform, *why;
    int revoked;

    if (sv_fn_platform_segment(ctx, "/functions/v1/credentials/", &platform) != SV_OK)
        return SV_ERROR;
    sv_fn_env(ctx, &env);
    if (sv_credentials_delete(&env, ctx->caller.user_id, platform, &revoked, &why, &ctx->err) != SV_OK)
        return SV_ERROR;
    json_object *obj = json_object_new_object();
    json_object_object_add(obj, "platform", json_object_new_string(platform));
    json_object_object_add(obj, "deleted", json_object_new_boolean(1));
    json_object_object_add(obj, "revoked", json_object_new_boolean(revoked));
    if (!revoked && why != NULL)
        json_object_object_add(obj, "revoke_error", json_object_new_string(why));
    sv_response_header(ctx->res, "Cache-Control", "no-store");
    sv_response_json(ctx->res, 200, obj);
    return SV_OK;
}
