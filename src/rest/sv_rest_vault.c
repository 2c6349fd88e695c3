/* The V2 document's Supabase Vault calls, from server-side code holding
 * the service role key:
 *
 *   supabase.rpc('vault.create_secret', {secret, name?, description?})
 *       POST /rest/v1/rpc/vault.create_secret -> {"id", "name",
 *       "description", "created_at"}: the document reads data.id. Supabase's
 *       own parameter names (new_secret, new_name, new_description) work too.
 *   supabase.rpc('vault.get_secret', {secret_id})
 *       POST (or GET ?secret_id=) /rest/v1/rpc/vault.get_secret -> the
 *       secret as a JSON string, or null when there is no such secret.
 *
 * The routes are service role only (anon 401, others 403, PostgREST's
 * 42501 shape). The secret is sealed here (crypto/sv_vault.c, its row id
 * as associated data) before it reaches PostgreSQL; the answer of
 * get_secret is built in memory that is wiped when the request ends. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/sv_json.h"
#include "core/sv_log.h"
#include "crypto/sv_crypto.h"
#include "crypto/sv_vault.h"
#include "db/sv_sqlstate.h"
#include "rest/sv_rest.h"

static const char sv_rest_vault_claims[] = "{\"role\":\"service_role\"}";

/* A random (version 4) uuid in the arena. */
/* sql as service_role. Returns its rows (caller PQclears), or NULL with
 * ctx->err set: 503 when the database is away, else PostgREST's error
 * for the SQLSTATE. */
static PGresult *sv_rest_vault_query(sv_ctx *ctx, const char *sql, int n, const char *const *v)
{
    PGresult *r = NULL;
    if (sv_db_query_as(ctx->db, "service_role", sv_rest_vault_claims, sql, n, v, &r) != SV_OK) {
        sv_db_unavailable(ctx->db, ctx->cfg->retry_after, &ctx->err);
        return NULL;
    }
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        sv_sqlstate_postgrest(ctx->arena, r, 0, ctx->req->request_id, &ctx->err);
        PQclear(r);
        return NULL;
    }
    return r;
}

static const char *sv_rest_vault_uuid(sv_arena *arena)
{
    char id[37];
    sv_crypto_uuid4(id);
    return sv_arena_strdup(arena, id);
}

/* The body as an object; PostgREST's PGRST102 otherwise. An empty body
 * is {}. */
static int sv_rest_vault_body(sv_ctx *ctx, json_object **obj)
{
    if (sv_ctx_body_object(ctx, obj, NULL) != SV_OK)
        return sv_fail(&ctx->err, 400, "PGRST102", "Empty or invalid json");
    return SV_OK;
}

/* PostgREST's answer when no function takes the arguments given. */
static int sv_rest_vault_no_function(sv_ctx *ctx, const char *fn, json_object *body)
{
    sv_buf names;
    sv_buf_init(&names, ctx->arena, 64);
    json_object_object_foreach(body, key, val) {
        (void)val;
        if (strlen(key) <= 40)
            sv_buf_printf(&names, "%s%s", names.len ? ", " : "", key);
    }
    return sv_fail_details(&ctx->err, 404, "PGRST202",
                           sv_arena_printf(ctx->arena, "Could not find the function vault.%s(%s) in the schema cache",
                                           fn, names.data),
                           NULL, "Perhaps you meant to call vault.create_secret(secret, name, description) "
                                 "or vault.get_secret(secret_id)");
}

static int sv_rest_vault_need_key(sv_ctx *ctx)
{
    if (sv_vault_can_seal(ctx->vault))
        return SV_OK;
    return sv_fail_details(&ctx->err, 503, "SV503", "The vault is not configured on this server",
                           NULL, "set vault_key_file (streamvibe-admin keygen)");
}

/* A string member under one of two names: 1 found, 0 absent/null, -1 wrong type. */
static int sv_rest_vault_member(json_object *body, const char *a, const char *b, const char **s, size_t *len)
{
    int k = sv_json_string(body, a, s, len);
    return k != 0 ? k : sv_json_string(body, b, s, len);
}

int sv_rest_vault_create_secret(sv_ctx *ctx)
{
    static const char sql[] =
        "INSERT INTO vault.secrets (id, name, description, secret) VALUES ($1::uuid, $2, coalesce($3, ''), $4) "
        "RETURNING json_build_object('id', id, 'name', name, 'description', description, "
        "                            'created_at', created_at)::text";
    json_object *body = NULL;
    const char *secret, *name = NULL, *desc = NULL;
    size_t slen, nlen = 0, dlen = 0;
    int rc = SV_ERROR;

    if (sv_rest_profile(ctx, 1) != SV_OK)
        return SV_ERROR;
    if (sv_rest_vault_body(ctx, &body) != SV_OK)
        goto done;
    if (sv_rest_vault_member(body, "secret", "new_secret", &secret, &slen) != 1 ||
        sv_rest_vault_member(body, "name", "new_name", &name, &nlen) < 0 ||
        sv_rest_vault_member(body, "description", "new_description", &desc, &dlen) < 0) {
        sv_rest_vault_no_function(ctx, "create_secret", body);
        goto done;
    }
    if (slen > SV_VAULT_MAX_PLAINTEXT) {
        sv_fail(&ctx->err, 400, "22001", "the secret is longer than 65536 bytes");
        goto done;
    }
    if (sv_rest_vault_need_key(ctx) != SV_OK)
        goto done;
    const char *id = sv_rest_vault_uuid(ctx->arena);
    size_t adlen;
    const char *ad = sv_vault_ad_secret(ctx->arena, id, &adlen);
    const char *sealed = sv_vault_seal(ctx->vault, ctx->arena, secret, slen, ad, adlen);
    const char *v[4] = { id, name ? sv_arena_strndup(ctx->arena, name, nlen) : NULL,
                         desc ? sv_arena_strndup(ctx->arena, desc, dlen) : NULL, sealed };
    PGresult *r = sv_rest_vault_query(ctx, sql, 4, v);
    if (r == NULL)
        goto done;
    ctx->res->status = 200;
    sv_buf_puts(&ctx->res->body, PQgetvalue(r, 0, 0));
    PQclear(r);
    sv_log_info("vault_secret_created", "id=%s key_id=%d request_id=%s", id,
                (int)sv_vault_current_id(ctx->vault), ctx->req->request_id);
    rc = SV_OK;
done:
    sv_json_put_wiped(body);
    if (ctx->req->body != NULL)
        sodium_memzero(ctx->req->body, ctx->req->body_len);
    return rc;
}

/* plain as a JSON string, in a secret allocation. */
static char *sv_rest_vault_json_string(sv_arena *arena, const char *plain, size_t len, size_t *out_len)
{
    char *out = sv_arena_secret_alloc(arena, 6 * len + 3), *o = out;
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)plain[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            o += snprintf(o, 7, "\\u%04x", c);
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    *out_len = (size_t)(o - out);
    return out;
}

int sv_rest_vault_get_secret(sv_ctx *ctx)
{
    static const char sql[] = "SELECT secret FROM vault.secrets WHERE id = $1::uuid";
    json_object *body = NULL;
    const char *id = NULL;
    size_t idlen = 0;
    int rc = SV_ERROR;

    if (sv_rest_profile(ctx, 1) != SV_OK)
        return SV_ERROR;
    if (ctx->req->method == SV_HTTP_POST) {
        if (sv_rest_vault_body(ctx, &body) != SV_OK)
            goto done;
        if (sv_json_string(body, "secret_id", &id, &idlen) != 1) {
            sv_rest_vault_no_function(ctx, "get_secret", body);
            goto done;
        }
        id = sv_arena_strndup(ctx->arena, id, idlen);
    } else if ((id = sv_request_query_param(ctx->req, "secret_id")) == NULL) {
        body = json_object_new_object();
        sv_rest_vault_no_function(ctx, "get_secret", body);
        goto done;
    }
    const char *v[1] = { id };
    PGresult *r = sv_rest_vault_query(ctx, sql, 1, v);
    if (r == NULL)
        goto done;
    if (PQntuples(r) == 0) {
        PQclear(r);
        ctx->res->status = 200;
        sv_buf_puts(&ctx->res->body, "null");
        rc = SV_OK;
        goto done;
    }
    char *plain;
    size_t len, adlen;
    const char *ad = sv_vault_ad_secret(ctx->arena, id, &adlen);
    sv_vault_status st = sv_vault_open(ctx->vault, ctx->arena, PQgetvalue(r, 0, 0), ad, adlen, &plain,
                                       &len, NULL);
    PQclear(r);
    if (st != SV_VAULT_OK) {
        sv_log_error("vault_secret_unreadable", "id=%s reason=\"%s\" request_id=%s", id, sv_vault_strerror(st),
                     ctx->req->request_id);
        sv_fail(&ctx->err, 500, "SV500",
                st == SV_VAULT_UNKNOWN_KEY ? "The secret was sealed with a key that is not configured"
                                           : "The secret cannot be opened");
        goto done;
    }
    size_t jlen;
    char *json = sv_rest_vault_json_string(ctx->arena, plain, len, &jlen);
    sodium_memzero(plain, len);
    ctx->res->status = 200;
    sv_response_header(ctx->res, "Cache-Control", "no-store");
    sv_response_body_ext(ctx->res, json, jlen, NULL, NULL);
    rc = SV_OK;
done:
    sv_json_put_wiped(body);
    return rc;
}
