/* GoTrue's /auth/v1/admin/users (internal/api/admin.go and
 * pagination.go of supabase/auth; what @supabase/auth-js's
 * GoTrueAdminApi sends and reads): the service role lists, creates,
 * reads, updates and deletes accounts. The route's policy (SV_AUTH_ADMIN)
 * has already admitted only the service_role key. Each request is one
 * statement of sql/048_auth_admin_users.sql (deletion: auth.delete_user,
 * as `streamvibe-admin user delete`), run as service_role; passwords are
 * hashed here and never reach PostgreSQL. The user object is
 * auth.sv_user_json's, the one GET /user answers. */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sv_auth.h"
#include "auth/sv_auth_common.h"
#include "core/sv_json.h"
#include "core/sv_log.h"
#include "core/sv_uuid.h"

/* GoTrue pages without a ceiling; one is kept here so that one request
 * cannot make the server build every account's JSON at once. */
#define SV_ADMIN_PER_PAGE_DEFAULT 50
#define SV_ADMIN_PER_PAGE_MAX 1000
/* Beyond any page that can hold an account: (page - 1) * per_page stays
 * far inside a bigint, and the page is empty as it would be anyway. */
#define SV_ADMIN_PAGE_CLAMP ((uint64_t)1000000000000)

/* Appends s as Go's time and strconv packages quote a value in their
 * error messages: in double quotes, '"' and '\' escaped, any byte that is
 * not printable ASCII as \xNN. */
static void sv_admin_go_quote(sv_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    sv_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p < 0x20 || *p >= 0x7f) {
            char esc[4] = { '\\', 'x', hex[*p >> 4], hex[*p & 15] };
            sv_buf_append(b, esc, 4);
        } else {
            if (*p == '"' || *p == '\\')
                sv_buf_puts(b, "\\");
            sv_buf_append(b, (const char *)p, 1);
        }
    }
    sv_buf_puts(b, "\"");
}

static const char *sv_admin_quoted(sv_ctx *ctx, const char *prefix, const char *s,
                                   const char *suffix)
{
    sv_buf b;

    sv_buf_init(&b, ctx->arena, 128);
    sv_buf_puts(&b, prefix);
    sv_admin_go_quote(&b, s);
    sv_buf_puts(&b, suffix);
    return b.data;
}

/* --- the user id in the path ---------------------------------------------- */

/* GoTrue's loadUser: a segment that is not a UUID is a 404
 * validation_failed, not a 400, so a client sees one status for "no such
 * user" whatever the id looked like. */
static int sv_admin_user_id(sv_ctx *ctx, const char **id)
{
    /* the route's "*": the last segment */
    const char *p = strrchr(ctx->req->path, '/') + 1;

    if (!sv_uuid_valid(p))
        return sv_fail(&ctx->err, 404, "validation_failed", "user_id must be an UUID");
    *id = p;
    return SV_OK;
}

static int sv_admin_not_found(sv_ctx *ctx)
{
    return sv_fail(&ctx->err, 404, "user_not_found", "User not found");
}

/* Column c of r (a JSON text) as the 200 body, which no cache keeps. */
static int sv_admin_answer(sv_ctx *ctx, PGresult *r, int c)
{
    sv_response_header(ctx->res, "Cache-Control", "no-store");
    return sv_auth_answer(ctx, r, c);
}

/* --- list ------------------------------------------------------------------------ */

/* strconv.ParseUint(s, 10, 64): digits only. 0, or the error text. */
static const char *sv_admin_parse_uint(sv_ctx *ctx, const char *s, uint64_t *out)
{
    uint64_t v = 0;

    if (s[0] == '\0')
        return sv_admin_quoted(ctx, "strconv.ParseUint: parsing ", s, ": invalid syntax");
    for (const char *p = s; *p != '\0'; p++)
        if (*p < '0' || *p > '9')
            return sv_admin_quoted(ctx, "strconv.ParseUint: parsing ", s, ": invalid syntax");
    for (const char *p = s; *p != '\0'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return sv_admin_quoted(ctx, "strconv.ParseUint: parsing ", s, ": value out of range");
        v = v * 10 + d;
    }
    *out = v;
    return NULL;
}

static int sv_admin_bad_page(sv_ctx *ctx, const char *why)
{
    return sv_fail(&ctx->err, 400, "validation_failed",
                   sv_arena_printf(ctx->arena, "Bad Pagination Parameters: %s", why));
}

typedef struct {
    const char *text;   /* "key=value" as the client wrote it */
    size_t      len, key_len, order;
} sv_admin_pair;

static int sv_admin_pair_cmp(const void *a, const void *b)
{
    const sv_admin_pair *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->text, y->text, n);

    if (c != 0)
        return c;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    return x->order < y->order ? -1 : (x->order > y->order);
}

/* A parameter that can go between the link's <> as it is (a web server
 * passes no control byte or space in a query, but a header must never
 * carry one): others are left out of the link. */
static int sv_admin_link_safe(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] <= 0x20 || p[i] == 0x7f || p[i] == '<' || p[i] == '>' || p[i] == ',')
            return 0;
    return 1;
}

/* The request's path and query with page=page, as Go's url.Values.Encode
 * writes it (keys sorted, page's old values replaced); the other
 * parameters keep the encoding the client gave them. auth-js reads the
 * page number from the first "=" of each link, which is page's as long
 * as no key sorts before it, as with GoTrue. */
static void sv_admin_page_link(sv_ctx *ctx, sv_buf *b, uint64_t page, const char *rel)
{
    const char *q = ctx->req->query != NULL ? ctx->req->query : "";
    size_t cap = 1;

    for (const char *p = q; *p != '\0'; p++)
        cap += *p == '&';
    sv_admin_pair *pairs = sv_arena_alloc(ctx->arena, (cap + 1) * sizeof(*pairs));
    size_t n = 0;
    for (const char *p = q; *p != '\0';) {
        size_t len = strcspn(p, "&");
        size_t key_len = strcspn(p, "=&");
        if (len > 0 && !(key_len == 4 && memcmp(p, "page", 4) == 0) && sv_admin_link_safe(p, len)) {
            pairs[n] = (sv_admin_pair){ p, len, key_len, n };
            n++;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    const char *page_text = sv_arena_printf(ctx->arena, "page=%" PRIu64, page);
    pairs[n] = (sv_admin_pair){ page_text, strlen(page_text), 4, n };
    n++;
    qsort(pairs, n, sizeof(*pairs), sv_admin_pair_cmp);

    sv_buf_puts(b, "<");
    sv_buf_puts(b, ctx->req->sent_path != NULL ? ctx->req->sent_path : ctx->req->path);
    for (size_t i = 0; i < n; i++) {
        sv_buf_puts(b, i == 0 ? "?" : "&");
        sv_buf_append(b, pairs[i].text, pairs[i].len);
    }
    sv_buf_puts(b, ">; rel=\"");
    sv_buf_puts(b, rel);
    sv_buf_puts(b, "\"");
}

int sv_auth_admin_users_list(sv_ctx *ctx)
{
    static const char sql[] = "SELECT o_total, o_list::text FROM auth.sv_admin_users($1::bigint, $2::int)";
    uint64_t page = 1, per_page = SV_ADMIN_PER_PAGE_DEFAULT;
    const char *s, *why;

    if ((s = sv_request_query_param(ctx->req, "page")) != NULL && s[0] != '\0' &&
        (why = sv_admin_parse_uint(ctx, s, &page)) != NULL)
        return sv_admin_bad_page(ctx, why);
    if ((s = sv_request_query_param(ctx->req, "per_page")) != NULL && s[0] != '\0') {
        if ((why = sv_admin_parse_uint(ctx, s, &per_page)) != NULL)
            return sv_admin_bad_page(ctx, why);
        if (per_page == 0)
            return sv_admin_bad_page(ctx, "per_page must be greater than 0");
        if (per_page > SV_ADMIN_PER_PAGE_MAX)
            return sv_admin_bad_page(ctx, sv_arena_printf(ctx->arena, "per_page must be at most %d",
                                                          SV_ADMIN_PER_PAGE_MAX));
    }
    /* GoTrue takes page 0 for an offset before the first account and
     * fails in the database; here it is the caller's error. */
    if (page == 0)
        return sv_admin_bad_page(ctx, "page must be greater than 0");

    const char *values[2] = {
        sv_arena_printf(ctx->arena, "%" PRIu64, page < SV_ADMIN_PAGE_CLAMP ? page : SV_ADMIN_PAGE_CLAMP),
        sv_arena_printf(ctx->arena, "%" PRIu64, per_page) };
    PGresult *r = sv_auth_db(ctx, "admin_users", sql, 2, values);
    if (r == NULL)
        return SV_ERROR;
    uint64_t total = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    uint64_t pages = total / per_page + (total % per_page != 0);

    sv_buf link;
    sv_buf_init(&link, ctx->arena, 256);
    if (pages > page) {
        sv_admin_page_link(ctx, &link, page + 1, "next");
        sv_buf_puts(&link, ", ");
    }
    sv_admin_page_link(ctx, &link, pages, "last");
    sv_response_header(ctx->res, "Link", link.data);
    sv_response_header(ctx->res, "X-Total-Count", sv_arena_printf(ctx->arena, "%" PRIu64, total));
    int rc = sv_admin_answer(ctx, r, 1);
    PQclear(r);
    return rc;
}

/* --- the body of create and update ---------------------------------------------- */

/* A Go time.Duration, as time.ParseDuration reads it ("1h30m", "-1.5s",
 * "300ms"; "0"), in microseconds, the precision of a timestamptz. NULL,
 * or the error text GoTrue passes on. */
static const char *sv_admin_parse_duration(sv_ctx *ctx, const char *orig, int64_t *usec)
{
    static const struct { const char *name; uint64_t ns; } units[] = {
        { "ns", 1 }, { "us", 1000 }, { "\xc2\xb5s", 1000 }, { "\xce\xbcs", 1000 },
        { "ms", 1000000 }, { "s", 1000000000ULL }, { "m", 60000000000ULL },
        { "h", 3600000000000ULL },
    };
    const uint64_t limit = (uint64_t)1 << 63;
    const char *s = orig;
    int neg = 0;
    uint64_t d = 0;

    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (strcmp(s, "0") == 0) {
        *usec = 0;
        return NULL;
    }
    if (*s == '\0')
        return sv_admin_quoted(ctx, "time: invalid duration ", orig, "");
    while (*s != '\0') {
        if (!(*s == '.' || (*s >= '0' && *s <= '9')))
            return sv_admin_quoted(ctx, "time: invalid duration ", orig, "");
        uint64_t v = 0;
        const char *start = s;
        for (; *s >= '0' && *s <= '9'; s++) {
            if (v > (limit - 1) / 10)
                return sv_admin_quoted(ctx, "time: invalid duration ", orig, "");
            v = v * 10 + (uint64_t)(*s - '0');
        }
        int pre = s != start, post = 0;
        uint64_t f = 0;
        double scale = 1;
        if (*s == '.') {
            s++;
            start = s;
            int overflow = 0;
            for (; *s >= '0' && *s <= '9'; s++) {
                if (overflow || f > (limit - 1) / 10) {
                    overflow = 1;   /* further digits cannot matter */
                    continue;
                }
                f = f * 10 + (uint64_t)(*s - '0');
                scale *= 10;
            }
            post = s != start;
        }
        if (!pre && !post)
            return sv_admin_quoted(ctx, "time: invalid duration ", orig, "");
        size_t ulen = strcspn(s, ".0123456789");
        if (ulen == 0)
            return sv_admin_quoted(ctx, "time: missing unit in duration ", orig, "");
        uint64_t unit = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (strlen(units[i].name) == ulen && memcmp(units[i].name, s, ulen) == 0)
                unit = units[i].ns;
        if (unit == 0) {
            const char *u = sv_arena_strndup(ctx->arena, s, ulen);
            return sv_admin_quoted(ctx, sv_admin_quoted(ctx, "time: unknown unit ", u, " in duration "),
                                   orig, "");
        }
        s += ulen;
        if (v > limit / unit)
            return sv_admin_quoted(ctx, "time: invalid duration ", orig, "");
        v *= unit;
        if (f > 0) {
            v += (uint64_t)((double)f * ((double)unit / scale));
            if (v > limit)
                return sv_admin_quoted(ctx, "time: invalid duration ", orig, "");
        }
        d += v;
        if (d > limit)
            return sv_admin_quoted(ctx, "time: invalid duration ", orig, "");
    }
    if (!neg && d > limit - 1)
        return sv_admin_quoted(ctx, "time: invalid duration ", orig, "");
    *usec = neg ? -(int64_t)(d / 1000) : (int64_t)(d / 1000);
    return NULL;
}

/* What a create or update asks for, checked; everything in the arena. */
typedef struct {
    const char *email;        /* lower-cased; NULL: not given */
    const char *hash;         /* argon2id; NULL: no new password */
    const char *user_meta;    /* JSON text; NULL: not given */
    const char *app_meta;
    int         confirm;
    int         ban_set;
    const char *ban;          /* interval text; NULL with ban_set: lift the ban */
} sv_admin_params;

/* GoTrue decodes the body into AdminUserParams with encoding/json: a
 * member of the wrong type is its 400 bad_json. */
static int sv_admin_bad_type(sv_ctx *ctx, const char *key, const char *type)
{
    return sv_fail(&ctx->err, 400, "bad_json",
                   sv_arena_printf(ctx->arena, "Could not parse request body as JSON: %s must be %s",
                                   key, type));
}

/* An object member, or null / absent (*text NULL). */
static int sv_admin_object(sv_ctx *ctx, json_object *body, const char *key, const char **text)
{
    if (sv_auth_object_member(ctx, body, key, text) < 0)
        return sv_admin_bad_type(ctx, key, "an object");
    return SV_OK;
}

/* A boolean member; null or absent is false, as in Go. */
static int sv_admin_bool(sv_ctx *ctx, json_object *body, const char *key, int *out)
{
    json_object *v;

    *out = 0;
    if (!json_object_object_get_ex(body, key, &v) || v == NULL)
        return SV_OK;
    if (!json_object_is_type(v, json_type_boolean))
        return sv_admin_bad_type(ctx, key, "a boolean");
    *out = json_object_get_boolean(v);
    return SV_OK;
}

/* A string member: *s NULL when absent or null, "" when empty. */
static int sv_admin_string(sv_ctx *ctx, json_object *body, const char *key, const char **s,
                           size_t *len)
{
    int has = sv_json_string(body, key, s, len);

    if (has < 0)
        return sv_admin_bad_type(ctx, key, "a string");
    if (has == 0) {
        *s = NULL;
        *len = 0;
    }
    return SV_OK;
}

/* Reads and checks the body (creating: a new account) into p; hashes a
 * given password last, once nothing else can refuse the request. */
static int sv_admin_params_read(sv_ctx *ctx, json_object *body, int creating, sv_admin_params *p)
{
    const char *email, *pw, *ban, *phone, *role, *aud, *id, *pw_hash;
    size_t email_len, pw_len, ban_len, phone_len, role_len, aud_len, id_len, pw_hash_len;
    int phone_confirm;

    memset(p, 0, sizeof(*p));
    if (sv_admin_string(ctx, body, "email", &email, &email_len) != SV_OK ||
        sv_admin_string(ctx, body, "password", &pw, &pw_len) != SV_OK ||
        sv_admin_string(ctx, body, "ban_duration", &ban, &ban_len) != SV_OK ||
        sv_admin_string(ctx, body, "phone", &phone, &phone_len) != SV_OK ||
        sv_admin_string(ctx, body, "role", &role, &role_len) != SV_OK ||
        sv_admin_string(ctx, body, "aud", &aud, &aud_len) != SV_OK ||
        sv_admin_string(ctx, body, "id", &id, &id_len) != SV_OK ||
        sv_admin_string(ctx, body, "password_hash", &pw_hash, &pw_hash_len) != SV_OK ||
        sv_admin_bool(ctx, body, "email_confirm", &p->confirm) != SV_OK ||
        sv_admin_bool(ctx, body, "phone_confirm", &phone_confirm) != SV_OK ||
        sv_admin_object(ctx, body, "user_metadata", &p->user_meta) != SV_OK ||
        sv_admin_object(ctx, body, "app_metadata", &p->app_meta) != SV_OK)
        return SV_ERROR;

    /* What GoTrue would do and this server cannot: refused, not ignored. */
    if (phone_len > 0 || phone_confirm)
        return sv_fail(&ctx->err, 400, "validation_failed",
                       "Phone numbers are not supported: accounts have an email address only");
    if (role_len > 0 && strcmp(role, "authenticated") != 0)
        return sv_fail(&ctx->err, 400, "validation_failed",
                       "Only the role authenticated can be given to an account");
    if (aud_len > 0 && strcmp(aud, "authenticated") != 0)
        return sv_fail(&ctx->err, 400, "validation_failed",
                       "Only the audience authenticated is supported");
    if (id_len > 0 || pw_hash_len > 0)
        return sv_fail(&ctx->err, 400, "validation_failed",
                       "Choosing the id or the password hash of an account is not supported");

    if (email_len > 0 && (p->email = sv_auth_email(ctx->arena, email, email_len)) == NULL)
        return sv_fail(&ctx->err, 400, "email_address_invalid",
                       "Unable to validate email address: invalid format");
    if (creating && p->email == NULL)
        return sv_fail(&ctx->err, 400, "validation_failed",
                       "Cannot create a user without either an email or phone");

    if (ban_len > 0) {
        int64_t usec = 0;
        const char *why = strcmp(ban, "none") == 0 ? NULL : sv_admin_parse_duration(ctx, ban, &usec);
        if (why != NULL)
            return sv_fail(&ctx->err, 400, "validation_failed",
                           sv_arena_printf(ctx->arena, "invalid format for ban duration: %s", why));
        p->ban_set = 1;
        p->ban = usec == 0 ? NULL : sv_arena_printf(ctx->arena, "%" PRId64 " microseconds", usec);
    }

    /* Creating without a password (or with ""): GoTrue makes up one that
     * nobody knows; no password at all has the same effect. Updating, a
     * password given is checked as signup checks one ("" is too short). */
    if (pw != NULL && (!creating || pw_len > 0)) {
        char *hash;
        if (sv_auth_password_policy(ctx, pw, pw_len) != SV_OK ||
            sv_auth_hash_password(ctx, pw, pw_len, &hash) != SV_OK)
            return SV_ERROR;
        p->hash = hash;
    }
    return SV_OK;
}

/* The o_error of sql/048's create and update, in GoTrue's words. */
static int sv_admin_user_error(sv_ctx *ctx, const char *err)
{
    if (strcmp(err, "user_not_found") == 0)
        return sv_admin_not_found(ctx);
    if (strcmp(err, "email_exists") == 0)
        return sv_fail(&ctx->err, 422, "email_exists",
                       "A user with this email address has already been registered");
    return sv_fail(&ctx->err, 400, "email_address_invalid",
                   "Unable to validate email address: invalid format");
}

/* The answer of sql/048's create and update: o_error in GoTrue's words,
 * else the user (o_user) as the 200 body. */
static int sv_admin_user_result(sv_ctx *ctx, PGresult *r)
{
    if (!PQgetisnull(r, 0, 0))
        return sv_admin_user_error(ctx, PQgetvalue(r, 0, 0));
    return sv_admin_answer(ctx, r, 1);
}

static int sv_admin_create_body(sv_ctx *ctx, json_object *body)
{
    static const char sql[] =
        "SELECT o_error, o_user::text, o_user->>'id' "
        "FROM auth.sv_admin_user_create($1, $2, $3::jsonb, $4::jsonb, $5::boolean, $6::interval)";
    sv_admin_params p;

    if (sv_admin_params_read(ctx, body, 1, &p) != SV_OK)
        return SV_ERROR;
    const char *values[6] = { p.email, p.hash, p.user_meta, p.app_meta, p.confirm ? "t" : "f", p.ban };
    PGresult *r = sv_auth_db(ctx, "admin_user_create", sql, 6, values);
    if (r == NULL)
        return SV_ERROR;
    int rc = sv_admin_user_result(ctx, r);
    if (rc == SV_OK)
        sv_log_info("auth_admin_user_created", "user_id=%s request_id=%s", PQgetvalue(r, 0, 2),
                    ctx->req->request_id);
    PQclear(r);
    return rc;
}

int sv_auth_admin_user_create(sv_ctx *ctx)
{
    json_object *body;

    if (sv_auth_body(ctx, &body) != SV_OK)
        return SV_ERROR;
    int rc = sv_admin_create_body(ctx, body);
    sv_json_put_wiped(body);
    return rc;
}

/* --- one account ---------------------------------------------------------------- */

int sv_auth_admin_user_get(sv_ctx *ctx)
{
    static const char sql[] = "SELECT o_user::text FROM auth.sv_admin_user_get($1::uuid)";
    const char *id = NULL;

    if (sv_admin_user_id(ctx, &id) != SV_OK)
        return SV_ERROR;
    PGresult *r = sv_auth_db(ctx, "admin_user_get", sql, 1, &id);
    if (r == NULL)
        return SV_ERROR;
    int rc = PQgetisnull(r, 0, 0) ? sv_admin_not_found(ctx) : sv_admin_answer(ctx, r, 0);
    PQclear(r);
    return rc;
}

static int sv_admin_update_body(sv_ctx *ctx, const char *id, json_object *body)
{
    static const char sql[] =
        "SELECT o_error, o_user::text FROM auth.sv_admin_user_update($1::uuid, $2, $3, $4::jsonb, "
        "$5::jsonb, $6::boolean, $7::boolean, $8::interval)";
    sv_admin_params p;

    if (sv_admin_params_read(ctx, body, 0, &p) != SV_OK)
        return SV_ERROR;
    const char *values[8] = { id, p.email, p.hash, p.user_meta, p.app_meta, p.confirm ? "t" : "f",
                              p.ban_set ? "t" : "f", p.ban };
    PGresult *r = sv_auth_db(ctx, "admin_user_update", sql, 8, values);
    if (r == NULL)
        return SV_ERROR;
    int rc = sv_admin_user_result(ctx, r);
    if (rc == SV_OK)
        sv_log_info("auth_admin_user_updated", "user_id=%s password=%s ban=%s request_id=%s", id,
                    p.hash != NULL ? "set_sessions_revoked" : "-",
                    !p.ban_set ? "-" : p.ban != NULL ? "set" : "lifted", ctx->req->request_id);
    PQclear(r);
    return rc;
}

int sv_auth_admin_user_update(sv_ctx *ctx)
{
    json_object *body;
    const char *id = NULL;

    if (sv_admin_user_id(ctx, &id) != SV_OK || sv_auth_body(ctx, &body) != SV_OK)
        return SV_ERROR;
    int rc = sv_admin_update_body(ctx, id, body);
    sv_json_put_wiped(body);
    return rc;
}

/* GoTrue's should_soft_delete keeps the row and scrambles it; here an
 * account goes with what it owns or not at all, so it is refused. */
int sv_auth_admin_user_delete(sv_ctx *ctx)
{
    static const char sql[] = "SELECT auth.delete_user($1::uuid)";
    json_object *body;
    const char *id = NULL;
    int soft;

    if (sv_admin_user_id(ctx, &id) != SV_OK || sv_auth_body(ctx, &body) != SV_OK)
        return SV_ERROR;
    int rc = sv_admin_bool(ctx, body, "should_soft_delete", &soft);
    json_object_put(body);
    if (rc != SV_OK)
        return SV_ERROR;
    if (soft)
        return sv_fail(&ctx->err, 400, "validation_failed",
                       "Soft deletion is not supported: an account is deleted with everything it owns");
    PGresult *r = sv_auth_db(ctx, "admin_user_delete", sql, 1, &id);
    if (r == NULL)
        return SV_ERROR;
    int found = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!found)
        return sv_admin_not_found(ctx);
    sv_log_info("auth_admin_user_deleted", "user_id=%s request_id=%s", id, ctx->req->request_id);
    ctx->res->status = 200;
    ctx->res->body.len = 0;
    sv_buf_puts(&ctx->res->body, "{}");
    sv_response_header(ctx->res, "Cache-Control", "no-store");
    return SV_OK;
}
