#include "platform/sv_oauth.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include "core/sv_err.h"
#include "core/sv_json.h"
#include "core/sv_log.h"
#include "crypto/sv_jwt.h"
#include "platform/sv_http_client.h"

/* The oauth_<name>_* configuration keys every platform has, into p. */
#define SV_OAUTH_FROM_CONFIG(p, cfg, name)                      \
    do {                                                        \
        (p)->platform = #name;                                  \
        (p)->client_id = (cfg)->oauth_##name##_client_id;         \
        (p)->client_secret = (cfg)->oauth_##name##_client_secret; \
        (p)->authorize_url = (cfg)->oauth_##name##_authorize_url; \
        (p)->token_url = (cfg)->oauth_##name##_token_url;         \
        (p)->revoke_url = (cfg)->oauth_##name##_revoke_url;       \
        (p)->scopes = (cfg)->oauth_##name##_scopes;               \
        (p)->pkce = (cfg)->oauth_##name##_pkce;                   \
    } while (0)

int sv_oauth_provider_get(const sv_config *cfg, const char *platform, sv_oauth_provider *p)
{
    memset(p, 0, sizeof(*p));
    p->client_id_param = "client_id";
    p->scope_sep = ' ';
    p->authorize_extra = "";
    if (strcmp(platform, "youtube") == 0) {
        SV_OAUTH_FROM_CONFIG(p, cfg, youtube);
        /* Google hands out a refresh token only for offline access, and
         * a second time only when consent is asked again. */
        p->authorize_extra = "access_type=offline&prompt=consent&include_granted_scopes=true";
        p->revoke_refresh = 1;
        return 1;
    }
    if (strcmp(platform, "instagram") == 0) {
        SV_OAUTH_FROM_CONFIG(p, cfg, instagram);
        p->scope_sep = ',';
        return 1;
    }
    if (strcmp(platform, "tiktok") == 0) {
        SV_OAUTH_FROM_CONFIG(p, cfg, tiktok);
        p->client_id_param = "client_key";
        p->scope_sep = ',';
        return 1;
    }
    return 0;
}

int sv_oauth_ready(const sv_oauth_provider *p)
{
    return p->client_id && p->client_id[0] && p->client_secret && p->client_secret[0] &&
           p->token_url && p->token_url[0] && p->authorize_url && p->authorize_url[0];
}

/* The configured scopes joined with the provider's separator. */
static char *sv_oauth_scopes(sv_arena *arena, const sv_oauth_provider *p)
{
    sv_buf b;
    sv_buf_init(&b, arena, 128);
    for (const char *s = p->scopes ? p->scopes : ""; *s;) {
        s += strspn(s, " ,\t");
        size_t n = strcspn(s, " ,\t");
        if (n == 0)
            break;
        if (b.len > 0)
            sv_buf_append(&b, &p->scope_sep, 1);
        sv_buf_append(&b, s, n);
        s += n;
    }
    return b.data;
}

char *sv_oauth_authorize_url(sv_arena *arena, const sv_oauth_provider *p, const char *redirect_uri,
                             const char *state, const char *challenge)
{
    sv_buf b;
    sv_buf_init(&b, arena, 512);
    sv_buf_puts(&b, p->authorize_url);
    sv_buf_puts(&b, strchr(p->authorize_url, '?') ? "&" : "?");
    sv_buf_printf(&b, "response_type=code&%s=%s&redirect_uri=%s&scope=%s&state=%s", p->client_id_param,
                  sv_http_client_escape(arena, p->client_id), sv_http_client_escape(arena, redirect_uri),
                  sv_http_client_escape(arena, sv_oauth_scopes(arena, p)),
                  sv_http_client_escape(arena, state));
    if (challenge != NULL)
        sv_buf_printf(&b, "&code_challenge=%s&code_challenge_method=S256", challenge);
    if (p->authorize_extra[0])
        sv_buf_printf(&b, "&%s", p->authorize_extra);
    return b.data;
}

void sv_oauth_pkce(sv_arena *arena, char **verifier, char **challenge)
{
    unsigned char raw[32], hash[crypto_hash_sha256_BYTES];
    size_t vlen = sodium_base64_ENCODED_LEN(sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);

    randombytes_buf(raw, sizeof(raw));
    *verifier = sv_arena_secret_alloc(arena, vlen);
    sodium_bin2base64(*verifier, vlen, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    crypto_hash_sha256(hash, (const unsigned char *)*verifier, strlen(*verifier));
    *challenge = sv_jwt_b64url_encode(arena, hash, sizeof(hash));
}

/* A provider's error code as safe log and URL text: [A-Za-z0-9_.-], at
 * most 64 characters, else "unknown". */
static const char *sv_oauth_clean_code(sv_arena *arena, const char *code)
{
    if (code == NULL || code[0] == '\0')
        return NULL;
    size_t n = strlen(code);
    if (n > 64)
        return "unknown";
    for (size_t i = 0; i < n; i++) {
        char c = code[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == '-'))
            return "unknown";
    }
    return sv_arena_strdup(arena, code);
}

/* Copies the string member key of obj into a secret allocation. */
static char *sv_oauth_secret_member(sv_arena *arena, json_object *obj, const char *key, size_t *len)
{
    const char *s;
    size_t n;
    if (sv_json_string(obj, key, &s, &n) != 1 || n == 0)
        return NULL;
    char *out = sv_arena_secret_alloc(arena, n + 1);
    memcpy(out, s, n);
    if (len != NULL)
        *len = n;
    return out;
}

/* The granted scopes: "scope" (a string with spaces or commas) or
 * Instagram's "permissions" (a string or an array), as a JSON array. */
static const char *sv_oauth_scopes_json(sv_arena *arena, json_object *obj)
{
    json_object *v, *arr;
    if (!json_object_object_get_ex(obj, "scope", &v) && !json_object_object_get_ex(obj, "permissions", &v))
        return NULL;
    arr = json_object_new_array();
    if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v) && i < 64; i++) {
            json_object *e = json_object_array_get_idx(v, i);
            if (json_object_is_type(e, json_type_string))
                json_object_array_add(arr, json_object_new_string(json_object_get_string(e)));
        }
    } else if (json_object_is_type(v, json_type_string)) {
        sv_json_add_words(arr, json_object_get_string(v), " ,", 256, 64);
    }
    const char *text = sv_arena_strdup(arena, json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
    json_object_put(arr);
    return text;
}

/* Reads a token endpoint's answer into t (outcome, tokens, error). */
static void sv_oauth_read_tokens(sv_arena *arena, const sv_http_result *r, sv_oauth_tokens *t)
{
    json_object *doc = NULL, *obj, *v;
    const char *why;

    t->status = r->status;
    if (r->status == 0) {
        t->outcome = SV_OAUTH_UNREACHABLE;
        t->error = r->error;
        return;
    }
    if (r->status >= 500 || r->status == 429) {
        t->outcome = SV_OAUTH_UNREACHABLE;
        t->error = r->status == 429 ? "provider rate limited" : "provider error";
        return;
    }
    if (r->len == 0 || sv_json_parse(r->body, r->len, &doc, &why) != SV_OK ||
        !json_object_is_type(doc, json_type_object)) {
        json_object_put(doc);
        t->outcome = SV_OAUTH_FAILED;
        t->error = "answer is not a JSON object";
        return;
    }
    obj = doc;
    /* Instagram wraps the answer in {"data": [...]}. */
    if (json_object_object_get_ex(doc, "data", &v) && json_object_is_type(v, json_type_array) &&
        json_object_array_length(v) > 0 && json_object_is_type(json_object_array_get_idx(v, 0), json_type_object))
        obj = json_object_array_get_idx(v, 0);
    const char *err = NULL;
    if (json_object_object_get_ex(obj, "error", &v)) {
        if (json_object_is_type(v, json_type_string))
            err = json_object_get_string(v);
        else if (json_object_is_type(v, json_type_object) &&
                 json_object_object_get_ex(v, "code", &v) && json_object_is_type(v, json_type_string))
            err = json_object_get_string(v);  /* TikTok's {"error": {"code": ...}} */
        if (err != NULL && strcmp(err, "ok") == 0)
            err = NULL;
    }
    t->access_token = sv_oauth_secret_member(arena, obj, "access_token", &t->access_len);
    if (err != NULL || t->access_token == NULL || r->status >= 300) {
        t->error = sv_oauth_clean_code(arena, err);
        if (t->error == NULL)
            t->error = t->access_token == NULL ? "no access_token in the answer" : "unexpected status";
        t->outcome = t->error != NULL && strcmp(t->error, "invalid_grant") == 0 ? SV_OAUTH_REFUSED
                                                                                : SV_OAUTH_FAILED;
        if (t->access_token != NULL)
            sodium_memzero(t->access_token, t->access_len);
        t->access_token = NULL;
        t->access_len = 0;
        sv_json_put_wiped(doc);
        return;
    }
    t->refresh_token = sv_oauth_secret_member(arena, obj, "refresh_token", &t->refresh_len);
    t->expires_in = -1;
    if (json_object_object_get_ex(obj, "expires_in", &v) &&
        (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_string))) {
        long n = strtol(json_object_get_string(v), NULL, 10);
        if (n > 0 && n < 100L * 365 * 86400)
            t->expires_in = n;
    }
    t->scopes_json = sv_oauth_scopes_json(arena, obj);
    const char *uid;
    size_t ulen;
    if ((sv_json_string(obj, "open_id", &uid, &ulen) == 1 || sv_json_string(obj, "user_id", &uid, &ulen) == 1) &&
        ulen > 0 && ulen <= 256)
        t->platform_user_id = sv_arena_strndup(arena, uid, ulen);
    else if (json_object_object_get_ex(obj, "user_id", &v) && json_object_is_type(v, json_type_int))
        t->platform_user_id = sv_arena_strdup(arena, json_object_get_string(v));
    t->outcome = SV_OAUTH_OK;
    sv_json_put_wiped(doc);
}

static const char *sv_oauth_outcome_name(sv_oauth_outcome o)
{
    switch (o) {
    case SV_OAUTH_OK: return "ok";
    case SV_OAUTH_REFUSED: return "refused";
    case SV_OAUTH_FAILED: return "failed";
    case SV_OAUTH_UNREACHABLE: return "unreachable";
    }
    return "?";
}

static sv_oauth_outcome sv_oauth_token_call(sv_arena *arena, const sv_oauth_provider *p,
                                            const char *grant, sv_http_form *form, long timeout_ms,
                                            const char *request_id, sv_oauth_tokens *t)
{
    sv_http_result r;
    char qerr[96];

    memset(t, 0, sizeof(*t));
    t->expires_in = -1;
    sv_http_client_post_form(arena, p->token_url, form, timeout_ms, &r);
    sodium_memzero(form->data, form->cap);
    sv_oauth_read_tokens(arena, &r, t);
    sodium_memzero(r.body, r.len);
    sv_log(t->outcome == SV_OAUTH_OK ? "info" : "warn", "oauth_call",
           "platform=%s grant=%s status=%ld outcome=%s error=%s duration_ms=%ld request_id=%s",
           p->platform, grant, t->status, sv_oauth_outcome_name(t->outcome),
           sv_log_quote(t->error ? t->error : "-", qerr, sizeof(qerr)), r.duration_ms,
           request_id ? request_id : "-");
    return t->outcome;
}

sv_oauth_outcome sv_oauth_exchange_code(sv_arena *arena, const sv_oauth_provider *p, const char *code,
                                        const char *redirect_uri, const char *verifier,
                                        long timeout_ms, const char *request_id, sv_oauth_tokens *t)
{
    sv_http_form form;
    sv_http_form_init(&form, arena);
    sv_http_form_add(&form, "grant_type", "authorization_code");
    sv_http_form_add(&form, "code", code);
    sv_http_form_add(&form, "redirect_uri", redirect_uri);
    sv_http_form_add(&form, p->client_id_param, p->client_id);
    sv_http_form_add(&form, "client_secret", p->client_secret);
    sv_http_form_add(&form, "code_verifier", verifier);
    return sv_oauth_token_call(arena, p, "authorization_code", &form, timeout_ms, request_id, t);
}

sv_oauth_outcome sv_oauth_refresh(sv_arena *arena, const sv_oauth_provider *p,
                                  const char *refresh_token, long timeout_ms,
                                  const char *request_id, sv_oauth_tokens *t)
{
    sv_http_form form;
    sv_http_form_init(&form, arena);
    sv_http_form_add(&form, "grant_type", "refresh_token");
    sv_http_form_add(&form, "refresh_token", refresh_token);
    sv_http_form_add(&form, p->client_id_param, p->client_id);
    sv_http_form_add(&form, "client_secret", p->client_secret);
    return sv_oauth_token_call(arena, p, "refresh_token", &form, timeout_ms, request_id, t);
}

int sv_oauth_revoke(sv_arena *arena, const sv_oauth_provider *p, const char *token,
                    long timeout_ms, const char *request_id, const char **why)
{
    sv_http_form form;
    sv_http_result r;

    if (p->revoke_url == NULL || p->revoke_url[0] == '\0') {
        *why = "the provider has no revoke endpoint";
        return 0;
    }
    sv_http_form_init(&form, arena);
    sv_http_form_add(&form, "token", token);
    sv_http_form_add(&form, p->client_id_param, p->client_id);
    sv_http_form_add(&form, "client_secret", p->client_secret);
    sv_http_client_post_form(arena, p->revoke_url, &form, timeout_ms, &r);
    sodium_memzero(form.data, form.cap);
    sodium_memzero(r.body, r.len);
    int ok = r.status >= 200 && r.status < 300;
    *why = ok ? NULL
           : r.status == 0 ? sv_arena_printf(arena, "revoke endpoint unreachable: %s", r.error)
                           : sv_arena_printf(arena, "revoke endpoint answered %ld", r.status);
    sv_log(ok ? "info" : "warn", "oauth_call", "platform=%s grant=revoke status=%ld outcome=%s duration_ms=%ld request_id=%s",
           p->platform, r.status, ok ? "ok" : "failed", r.duration_ms, request_id ? request_id : "-");
    return ok;
}
