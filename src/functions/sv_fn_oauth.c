/* The OAuth authorization-code flow that connects a platform account,
 * GoTrue's identity-linking flow for our platforms:
 *
 *   GET /functions/v1/oauth/<platform>/start?redirect_to=<app URL>
 *       (a signed-in user) -> 302 to the provider's authorize URL, or with
 *       skip_http_redirect=true 200 {"url": ...} for a web app that
 *       navigates itself (supabase-js functions.invoke cannot follow a
 *       cross-origin redirect). The state is HMAC-signed (a key derived
 *       from jwt_secret), names the platform and an expiry, and is
 *       single-use: a row of auth.platform_oauth_flows keyed by a hash
 *       of its random part holds the user, redirect_to, redirect_uri and
 *       the sealed PKCE verifier (S256, where the provider takes it).
 *   GET /functions/v1/oauth/<platform>/callback?code&state
 *       (the browser, sent back by the provider) -> the state is checked
 *       and consumed, the code exchanged at the token endpoint, the
 *       tokens stored sealed for the user who started the flow, and a 302
 *       to redirect_to?connected=<platform>, or ?error=<reason>. A
 *       forged, foreign (another platform's or another server's),
 *       replayed or unknown state is a 400 invalid_state: there is no
 *       trustworthy place to send the browser then.
 *
 * redirect_to must be site_url or start with an entry of
 * redirect_allow_list (same scheme, host and port, and a path below the
 * entry's): no open redirect. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "core/sv_json.h"
#include "core/sv_log.h"
#include "crypto/sv_jwt.h"
#include "functions/sv_fn_common.h"
#include "functions/sv_functions.h"
#include "platform/sv_oauth.h"

#define SV_FN_NONCE 16
#define SV_FN_URL_MAX 2048

/* --- redirect_to --------------------------------------------------------- */

typedef struct sv_fn_url {
    const char *scheme;     /* "http" or "https" */
    const char *authority;  /* host[:port], lower-cased */
    size_t      authority_len;
    const char *path;       /* from the first '/', '?' or '#' after the authority */
} sv_fn_url;

/* Splits an absolute http(s) URL. Refuses what browsers and servers read
 * differently: user info, backslashes, white space and control bytes. */
static int sv_fn_url_parse(const char *s, sv_fn_url *u)
{
    size_t n = strlen(s);
    if (n == 0 || n > SV_FN_URL_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '\\')
            return -1;
    if (strncasecmp(s, "https://", 8) == 0)
        u->scheme = "https", s += 8;
    else if (strncasecmp(s, "http://", 7) == 0)
        u->scheme = "http", s += 7;
    else
        return -1;
    size_t a = strcspn(s, "/?#");
    if (a == 0 || memchr(s, '@', a) != NULL)
        return -1;
    u->authority = s;
    u->authority_len = a;
    u->path = s + a;
    return 0;
}

/* url is allowed by entry: same scheme and authority, and url's path
 * lies below entry's path (a segment boundary, or entry ends in '/'). */
static int sv_fn_url_under(const sv_fn_url *url, const char *entry)
{
    sv_fn_url e;
    if (sv_fn_url_parse(entry, &e) != 0 || strcmp(url->scheme, e.scheme) != 0 ||
        url->authority_len != e.authority_len ||
        strncasecmp(url->authority, e.authority, e.authority_len) != 0)
        return 0;
    size_t plen = strcspn(e.path, "?#");
    if (plen == 0 || (plen == 1 && e.path[0] == '/'))
        return 1;
    if (strncmp(url->path, e.path, plen) != 0)
        return 0;
    char next = url->path[plen];
    return e.path[plen - 1] == '/' || next == '\0' || next == '/' || next == '?' || next == '#';
}

static int sv_fn_redirect_allowed(const sv_config *cfg, const char *redirect_to)
{
    sv_fn_url u;
    char entry[SV_FN_URL_MAX + 1];

    if (sv_fn_url_parse(redirect_to, &u) != 0)
        return 0;
    if (cfg->site_url[0] && sv_fn_url_under(&u, cfg->site_url))
        return 1;
    for (const char *p = cfg->redirect_allow_list; *p;) {
        p += strspn(p, ", \t");
        size_t n = strcspn(p, ", \t");
        if (n == 0)
            break;
        if (n <= SV_FN_URL_MAX) {
            memcpy(entry, p, n);
            entry[n] = '\0';
            if (sv_fn_url_under(&u, entry))
                return 1;
        }
        p += n;
    }
    return 0;
}

/* redirect_to with name=value added to its query (before any fragment). */
static const char *sv_fn_redirect_with(sv_arena *arena, const char *redirect_to, const char *name,
                                       const char *value)
{
    const char *hash = strchr(redirect_to, '#');
    size_t head = hash ? (size_t)(hash - redirect_to) : strlen(redirect_to);
    int has_query = memchr(redirect_to, '?', head) != NULL;
    return sv_arena_printf(arena, "%.*s%s%s=%s%s", (int)head, redirect_to, has_query ? "&" : "?", name, value,
                           hash ? hash : "");
}

static int sv_fn_redirect(sv_ctx *ctx, const char *location)
{
    ctx->res->status = 302;
    sv_response_header(ctx->res, "Location", location);
    sv_response_header(ctx->res, "Cache-Control", "no-store");
    sv_buf_puts(&ctx->res->body, "{}");
    return SV_OK;
}

/* --- the state --------------------------------------------------------------- */

/* The HMAC key of states: derived from jwt_secret, so every host of a
 * deployment verifies every other's states. */
static void sv_fn_state_key(const sv_config *cfg, unsigned char key[crypto_auth_hmacsha256_KEYBYTES])
{
    static const char context[] = "streamvibe oauth state v1";
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, crypto_auth_hmacsha256_KEYBYTES);
    crypto_generichash_update(&st, (const unsigned char *)context, sizeof(context) - 1);
    crypto_generichash_update(&st, (const unsigned char *)cfg->jwt_secret, strlen(cfg->jwt_secret));
    crypto_generichash_final(&st, key, crypto_auth_hmacsha256_KEYBYTES);
}

/* The flow's row id: a hash of the state's random part. */
static const char *sv_fn_flow_id(sv_arena *arena, const unsigned char *nonce)
{
    unsigned char h[32];
    crypto_hash_sha256(h, nonce, SV_FN_NONCE);
    return sv_jwt_b64url_encode(arena, h, sizeof(h));
}

/* state = b64url(nonce[16] || exp[8, big endian] || platform) "."
 *         b64url(HMAC-SHA256(key, that)). */
static const char *sv_fn_state_make(sv_ctx *ctx, const char *platform, int64_t exp, const char **flow_id)
{
    unsigned char payload[SV_FN_NONCE + 8 + 33], key[crypto_auth_hmacsha256_KEYBYTES],
        mac[crypto_auth_hmacsha256_BYTES];
    size_t plen = strlen(platform), n = SV_FN_NONCE + 8 + plen;

    randombytes_buf(payload, SV_FN_NONCE);
    for (int i = 0; i < 8; i++)
        payload[SV_FN_NONCE + i] = (unsigned char)((uint64_t)exp >> (56 - 8 * i));
    memcpy(payload + SV_FN_NONCE + 8, platform, plen);
    sv_fn_state_key(ctx->cfg, key);
    crypto_auth_hmacsha256(mac, payload, n, key);
    sodium_memzero(key, sizeof(key));
    *flow_id = sv_fn_flow_id(ctx->arena, payload);
    return sv_arena_printf(ctx->arena, "%s.%s", sv_jwt_b64url_encode(ctx->arena, payload, n),
                           sv_jwt_b64url_encode(ctx->arena, mac, sizeof(mac)));
}

/* Checks a state's signature and platform. Returns the flow id, or NULL. */
static const char *sv_fn_state_check(sv_ctx *ctx, const char *state, const char *platform)
{
    unsigned char key[crypto_auth_hmacsha256_KEYBYTES];
    unsigned char *payload, *mac;
    size_t plen, mlen;
    const char *dot = state ? strchr(state, '.') : NULL;

    if (dot == NULL || strlen(state) > 512 ||
        sv_jwt_b64url_decode(ctx->arena, state, (size_t)(dot - state), &payload, &plen) != 0 ||
        sv_jwt_b64url_decode(ctx->arena, dot + 1, strlen(dot + 1), &mac, &mlen) != 0 ||
        mlen != crypto_auth_hmacsha256_BYTES || plen <= SV_FN_NONCE + 8)
        return NULL;
    sv_fn_state_key(ctx->cfg, key);
    int bad = crypto_auth_hmacsha256_verify(mac, payload, plen, key);
    sodium_memzero(key, sizeof(key));
    size_t name_len = plen - SV_FN_NONCE - 8;
    if (bad || name_len != strlen(platform) || memcmp(payload + SV_FN_NONCE + 8, platform, name_len) != 0)
        return NULL;
    return sv_fn_flow_id(ctx->arena, payload);
}

/* --- start ---------------------------------------------------------------------- */

/* A Host header that is a host and nothing more: a name or an IPv4
 * address ([A-Za-z0-9._-]), or an IPv6 literal in brackets, then an
 * optional :port. What else nginx lets through ('@', '?', '#', '\\')
 * would make the callback URL point somewhere else than it reads:
 * "app.example.com@evil.example" is evil.example's. */
static int sv_fn_host_ok(const char *host)
{
    size_t n = host ? strlen(host) : 0, i = 0;
    if (n == 0 || n > 255)
        return 0;
    if (host[0] == '[') {
        i = 1 + strspn(host + 1, "0123456789abcdefABCDEF:.");
        if (i < 3 || host[i] != ']')
            return 0;
        i++;
    } else {
        i = strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_");
        if (i == 0)
            return 0;
    }
    if (host[i] == '\0')
        return 1;
    size_t digits = strspn(host + i + 1, "0123456789");
    return host[i] == ':' && digits >= 1 && digits <= 5 && host[i + 1 + digits] == '\0' &&
           strtol(host + i + 1, NULL, 10) <= 65535;
}

/* The callback URL the provider sends the browser to: under
 * api_external_url, else under the scheme and Host of the request and
 * base_path. NULL when it would come from a Host header that is not a
 * host[:port]. */
static const char *sv_fn_redirect_uri(sv_ctx *ctx, const char *platform)
{
    const char *base = ctx->cfg->api_external_url;
    if (base == NULL || base[0] == '\0') {
        const char *scheme = sv_http_param(ctx->req->envp, "REQUEST_SCHEME");
        const char *https = sv_http_param(ctx->req->envp, "HTTPS");
        const char *host = sv_request_header(ctx->req, "Host");
        int secure = scheme ? strcmp(scheme, "https") == 0 : https != NULL && strcasecmp(https, "on") == 0;
        if (!sv_fn_host_ok(host))
            return NULL;
        base = sv_arena_printf(ctx->arena, "%s://%s%s", secure ? "https" : "http", host, ctx->cfg->base_path);
    }
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    return sv_arena_printf(ctx->arena, "%.*s/functions/v1/oauth/%s/callback", (int)n, base, platform);
}

/* The platform of the path, known to both the providers and the
 * platforms table: SV_OK with *platform, the provider and its id. */
static int sv_fn_oauth_platform(sv_ctx *ctx, sv_platform_env *env, const char **platform,
                                sv_oauth_provider *prov, const char **platform_id)
{
    if (sv_fn_platform_segment(ctx, "/functions/v1/oauth/", platform) != SV_OK)
        return SV_ERROR;
    if (!sv_oauth_provider_get(ctx->cfg, *platform, prov))
        return sv_fail(&ctx->err, 404, "unknown_platform", "no OAuth provider for this platform");
    return sv_credentials_platform_id(env, *platform, platform_id, &ctx->err);
}

int sv_fn_oauth_start(sv_ctx *ctx)
{
    static const char sql[] =
        "WITH gone AS (DELETE FROM auth.platform_oauth_flows WHERE expires_at < now() - interval '1 hour') "
        "INSERT INTO auth.platform_oauth_flows (id, user_id, platform_id, redirect_to, redirect_uri, "
        "       code_verifier, expires_at) "
        "VALUES ($1, $2::uuid, $3::uuid, $4, $5, $6, to_timestamp($7::bigint))";
    static const char claims[] = "{\"role\":\"service_role\"}";
    sv_platform_env env;
    sv_oauth_provider prov;
    const char *platform, *platform_id, *flow_id;

    sv_fn_env(ctx, &env);
    if (sv_fn_oauth_platform(ctx, &env, &platform, &prov, &platform_id) != SV_OK)
        return SV_ERROR;
    if (!sv_oauth_ready(&prov))
        return sv_fail(&ctx->err, 503, "oauth_not_configured",
                       sv_arena_printf(ctx->arena, "no OAuth client is configured for %s", platform));
    if (!sv_vault_can_seal(ctx->vault))
        return sv_fail(&ctx->err, 503, "vault_not_configured",
                       "credential storage is not configured on this server (vault_key_file)");
    const char *redirect_to = sv_request_query_param(ctx->req, "redirect_to");
    if (redirect_to == NULL || redirect_to[0] == '\0')
        redirect_to = ctx->cfg->site_url;
    if (redirect_to == NULL || redirect_to[0] == '\0')
        return sv_fail(&ctx->err, 400, "invalid_redirect", "redirect_to is required (no site_url is configured)");
    if (!sv_fn_redirect_allowed(ctx->cfg, redirect_to))
        return sv_fail(&ctx->err, 400, "invalid_redirect",
                       "redirect_to is not an allowed URL (site_url, redirect_allow_list)");

    const char *redirect_uri = sv_fn_redirect_uri(ctx, platform);
    if (redirect_uri == NULL)
        return sv_fail(&ctx->err, 400, "invalid_host",
                       "the Host header is not a host[:port] to build the callback URL from (api_external_url is not set)");

    int64_t exp = (int64_t)time(NULL) + ctx->cfg->oauth_state_ttl;
    const char *state = sv_fn_state_make(ctx, platform, exp, &flow_id);
    char *verifier = NULL, *challenge = NULL;
    const char *sealed = NULL;
    if (prov.pkce) {
        size_t adlen;
        sv_oauth_pkce(ctx->arena, &verifier, &challenge);
        const char *ad = sv_vault_ad_oauth_state(ctx->arena, flow_id, &adlen);
        sealed = sv_vault_seal(ctx->vault, ctx->arena, verifier, strlen(verifier), ad, adlen);
    }
    const char *v[7] = { flow_id, ctx->caller.user_id, platform_id, redirect_to, redirect_uri, sealed,
                         sv_arena_printf(ctx->arena, "%lld", (long long)exp) };
    PGresult *r = NULL;
    if (sv_db_query_as(ctx->db, "service_role", claims, sql, 7, v, &r) != SV_OK)
        return sv_db_unavailable(ctx->db, ctx->cfg->retry_after, &ctx->err);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        sv_log_error("oauth_start", "sqlstate=%s request_id=%s", PQresultErrorField(r, PG_DIAG_SQLSTATE),
                     ctx->req->request_id);
        PQclear(r);
        return sv_fail(&ctx->err, 500, "unexpected_failure", "cannot record the flow");
    }
    PQclear(r);
    const char *url = sv_oauth_authorize_url(ctx->arena, &prov, redirect_uri, state, challenge);
    sv_log_info("oauth_start", "user_id=%s platform=%s pkce=%d request_id=%s", ctx->caller.user_id, platform,
                prov.pkce, ctx->req->request_id);
    const char *skip = sv_request_query_param(ctx->req, "skip_http_redirect");
    if (skip != NULL && strcmp(skip, "true") == 0) {
        json_object *obj = json_object_new_object();
        json_object_object_add(obj, "url", json_object_new_string(url));
        sv_response_header(ctx->res, "Cache-Control", "no-store");
        sv_response_json(ctx->res, 200, obj);
        return SV_OK;
    }
    return sv_fn_redirect(ctx, url);
}

/* The configured scopes as a JSON array: what was asked for, when the
 * provider does not say what it granted. */
static const char *sv_fn_scopes_asked(sv_arena *arena, const sv_oauth_provider *p)
{
    json_object *arr = json_object_new_array();
    sv_json_add_words(arr, p->scopes ? p->scopes : "", " ,\t", 0, 0);
    const char *text = sv_arena_strdup(arena, json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
    json_object_put(arr);
    return text;
}

/* --- callback ---------------------------------------------------------------------- */

/* A provider's error code, as safe to put in a URL: [a-z_], else
 * "access_denied" is not assumed: "provider_error". */
static const char *sv_fn_clean_error(const char *e)
{
    size_t n = e ? strlen(e) : 0;
    if (n == 0 || n > 64)
        return "provider_error";
    for (size_t i = 0; i < n; i++)
        if (!((e[i] >= 'a' && e[i] <= 'z') || e[i] == '_'))
            return "provider_error";
    return e;
}

int sv_fn_oauth_callback(sv_ctx *ctx)
{
    static const char take_sql[] =
        "DELETE FROM auth.platform_oauth_flows WHERE id = $1 "
        "RETURNING user_id, platform_id, redirect_to, redirect_uri, code_verifier, expires_at < now()";
    static const char claims[] = "{\"role\":\"service_role\"}";
    sv_platform_env env;
    sv_oauth_provider prov;
    const char *platform, *platform_id;

    sv_fn_env(ctx, &env);
    if (sv_fn_oauth_platform(ctx, &env, &platform, &prov, &platform_id) != SV_OK)
        return SV_ERROR;
    const char *flow_id = sv_fn_state_check(ctx, sv_request_query_param(ctx->req, "state"), platform);
    if (flow_id == NULL) {
        sv_log_warn("oauth_callback", "platform=%s outcome=invalid_state request_id=%s", platform,
                    ctx->req->request_id);
        return sv_fail(&ctx->err, 400, "invalid_state", "the OAuth state is invalid or was not issued for this flow");
    }
    const char *v[1] = { flow_id };
    PGresult *r = NULL;
    if (sv_db_query_as(ctx->db, "service_role", claims, take_sql, 1, v, &r) != SV_OK)
        return sv_db_unavailable(ctx->db, ctx->cfg->retry_after, &ctx->err);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        PQclear(r);
        sv_log_warn("oauth_callback", "platform=%s outcome=unknown_or_used_state request_id=%s", platform,
                    ctx->req->request_id);
        return sv_fail(&ctx->err, 400, "invalid_state", "the OAuth state was already used or is unknown");
    }
    const char *user_id = sv_arena_strdup(ctx->arena, PQgetvalue(r, 0, 0));
    const char *redirect_to = sv_arena_strdup(ctx->arena, PQgetvalue(r, 0, 2));
    const char *redirect_uri = sv_arena_strdup(ctx->arena, PQgetvalue(r, 0, 3));
    const char *sealed = PQgetisnull(r, 0, 4) ? NULL : sv_arena_strdup(ctx->arena, PQgetvalue(r, 0, 4));
    int expired = strcmp(PQgetvalue(r, 0, 5), "t") == 0;
    PQclear(r);

    const char *outcome = NULL;
    const char *error = sv_request_query_param(ctx->req, "error");
    const char *code = sv_request_query_param(ctx->req, "code");
    char *verifier = NULL;
    size_t vlen = 0;
    if (expired)
        outcome = "expired_state";
    else if (error != NULL)
        outcome = sv_fn_clean_error(error);
    else if (code == NULL || code[0] == '\0' || strlen(code) > 4096)
        outcome = "invalid_request";
    else if (!sv_oauth_ready(&prov))
        outcome = "server_error";
    else if (sealed != NULL) {
        size_t adlen;
        const char *ad = sv_vault_ad_oauth_state(ctx->arena, flow_id, &adlen);
        if (sv_vault_open(ctx->vault, ctx->arena, sealed, ad, adlen, &verifier, &vlen, NULL) != SV_VAULT_OK)
            outcome = "server_error";
    }
    if (outcome == NULL) {
        sv_oauth_tokens t;
        sv_ctx_shed(ctx);
        sv_oauth_exchange_code(ctx->arena, &prov, code, redirect_uri, verifier,
                               (long)ctx->cfg->oauth_http_timeout * 1000, ctx->req->request_id, &t);
        if (t.outcome == SV_OAUTH_OK) {
            sv_credential_input in = {
                .user_id = user_id, .platform = platform, .platform_id = platform_id,
                .access_token = t.access_token, .access_len = t.access_len,
                .refresh_token = t.refresh_token, .refresh_len = t.refresh_len,
                .expires_in = t.expires_in,
                .scopes_json = t.scopes_json ? t.scopes_json : sv_fn_scopes_asked(ctx->arena, &prov),
                .platform_user_id = t.platform_user_id, .verified = 1,
            };
            const char *meta;
            int inserted;
            sv_error serr;
            sv_error_init(&serr);
            if (sv_credentials_store(&env, &in, &meta, &inserted, &serr) != SV_OK) {
                outcome = "server_error";
                sv_error_clear(&serr);
            }
        } else {
            outcome = t.outcome == SV_OAUTH_REFUSED      ? "invalid_grant"
                      : t.outcome == SV_OAUTH_UNREACHABLE ? "temporarily_unavailable"
                                                          : "server_error";
        }
    }
    sv_log(outcome ? "warn" : "info", "oauth_callback", "user_id=%s platform=%s outcome=%s request_id=%s",
           user_id, platform, outcome ? outcome : "connected", ctx->req->request_id);
    if (outcome != NULL)
        return sv_fn_redirect(ctx, sv_fn_redirect_with(ctx->arena, redirect_to, "error", outcome));
    return sv_fn_redirect(ctx, sv_fn_redirect_with(ctx->arena, redirect_to, "connected", platform));
}
