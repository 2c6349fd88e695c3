/* The Phoenix protocol as realtime-js speaks it: heartbeat, phx_join
 * (with the postgres_changes bindings and the access token), phx_leave,
 * access_token, and the system / phx_close pushes. A channel's bindings
 * become live once PostgreSQL has checked them as the subscriber
 * (realtime.subscription_check); the join is answered then, so a client
 * that sees SUBSCRIBED is already receiving. */
#include "realtime/sv_rt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "core/sv_clock.h"
#include "core/sv_log.h"
#include "crypto/sv_jwt.h"
#include "realtime/sv_rt_phx.h"

/* --- identities ----------------------------------------------------------- */

static uint32_t sv_rt_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

sv_rt_ident *sv_rt_ident_get(sv_rt *rt, const char *role, const char *claims)
{
    uint32_t h = sv_rt_hash(claims);
    sv_rt_ident **bucket = &rt->idents[h % rt->nidents_buckets];
    for (sv_rt_ident *id = *bucket; id != NULL; id = id->next) {
        if (id->hash == h && strcmp(id->claims, claims) == 0 && strcmp(id->role, role) == 0) {
            id->refs++;
            return id;
        }
    }
    sv_rt_ident *id = calloc(1, sizeof(*id));
    if (id == NULL)
        return NULL;
    id->role = strdup(role);
    id->claims = strdup(claims);
    json_object *o = json_tokener_parse(claims), *sub;
    id->sub = strdup(o != NULL && json_object_object_get_ex(o, "sub", &sub) &&
                             json_object_is_type(sub, json_type_string)
                         ? json_object_get_string(sub)
                         : "");
    if (o != NULL)
        json_object_put(o);
    if (id->role == NULL || id->claims == NULL || id->sub == NULL) {
        free(id->role);
        free(id->claims);
        free(id->sub);
        free(id);
        return NULL;
    }
    id->hash = h;
    id->refs = 1;
    id->next = *bucket;
    *bucket = id;
    return id;
}

void sv_rt_ident_put(sv_rt *rt, sv_rt_ident *id)
{
    if (id == NULL || --id->refs > 0)
        return;
    sv_rt_ident **p = &rt->idents[id->hash % rt->nidents_buckets];
    while (*p != id)
        p = &(*p)->next;
    *p = id->next;
    free(id->role);
    free(id->claims);
    free(id->sub);
    free(id);
}

sv_rt_tinfo *sv_rt_tinfo_find(sv_rt *rt, const char *role, const char *schema, const char *table)
{
    for (sv_rt_tinfo *t = rt->tinfos; t != NULL; t = t->next)
        if (strcmp(t->table, table) == 0 && strcmp(t->schema, schema) == 0 && strcmp(t->role, role) == 0)
            return t;
    return NULL;
}

static char *sv_rt_jstr(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return strdup(json_object_get_string(v));
}

void sv_rt_tinfo_clear(sv_rt_tinfo *t)
{
    free(t->columns_json);
    free(t->select_sql);
    free(t->vis_sql);
    for (int i = 0; i < t->npk; i++) {
        if (t->pk_names)
            free(t->pk_names[i]);
        if (t->pk_idents)
            free(t->pk_idents[i]);
    }
    free(t->pk_names);
    free(t->pk_idents);
}

/* Stores one element of realtime.subscription_check's answer for role. */
static void sv_rt_tinfo_store(sv_rt *rt, const char *role, json_object *o)
{
    json_object *v, *pk;
    char *schema = sv_rt_jstr(o, "schema"), *table = sv_rt_jstr(o, "table");
    if (schema == NULL || table == NULL || !json_object_object_get_ex(o, "pk", &pk) ||
        !json_object_is_type(pk, json_type_array)) {
        free(schema);
        free(table);
        return;
    }
    sv_rt_tinfo *t = sv_rt_tinfo_find(rt, role, schema, table);
    if (t == NULL) {
        t = calloc(1, sizeof(*t));
        if (t == NULL) {
            free(schema);
            free(table);
            return;
        }
        t->role = strdup(role);
        t->schema = schema;
        t->table = table;
        t->next = rt->tinfos;
        rt->tinfos = t;
    } else {
        free(schema);
        free(table);
        sv_rt_tinfo_clear(t);
    }
    t->readable = json_object_object_get_ex(o, "readable", &v) && json_object_get_boolean(v);
    t->columns_json = json_object_object_get_ex(o, "columns", &v)
                          ? strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                                        JSON_C_TO_STRING_NOSLASHESCAPE))
                          : strdup("[]");
    t->select_sql = sv_rt_jstr(o, "select");
    t->vis_sql = sv_rt_jstr(o, "vis");
    t->npk = (int)json_object_array_length(pk);
    t->pk_names = calloc((size_t)t->npk + 1, sizeof(char *));
    t->pk_idents = calloc((size_t)t->npk + 1, sizeof(char *));
    for (int i = 0; t->pk_names && t->pk_idents && i < t->npk; i++) {
        json_object *e = json_object_array_get_idx(pk, (size_t)i);
        t->pk_names[i] = sv_rt_jstr(e, "name");
        t->pk_idents[i] = sv_rt_jstr(e, "ident");
    }
    /* Anything missing: treat the table as unreadable for this role. */
    int complete = t->columns_json && t->select_sql && t->vis_sql && t->pk_names && t->pk_idents;
    for (int i = 0; complete && i < t->npk; i++)
        complete = t->pk_names[i] && t->pk_idents[i];
    if (!complete)
        t->readable = 0;
}

/* --- sending ------------------------------------------------------------------ */

int sv_rt_chan_push(sv_rt *rt, sv_rt_chan *ch, const char *join_ref_json, const char *ref_json,
                    const char *event, const char *payload)
{
    sv_buf out;
    sv_buf_init(&out, &rt->arena, 256);
    sv_rt_phx_encode(&out, ch->conn->vsn, join_ref_json, ref_json, ch->topic_json, event, payload);
    return sv_rt_conn_send(rt, ch->conn, out.data, out.len);
}

/* A reply outside any channel (heartbeat, unmatched topic). */
static void sv_rt_reply_raw(sv_rt *rt, sv_rt_conn *c, const char *ref_json, const char *topic,
                            const char *payload)
{
    sv_buf out;
    sv_buf_init(&out, &rt->arena, 128);
    sv_rt_phx_encode(&out, c->vsn, NULL, ref_json, sv_rt_json_string(rt, topic), "phx_reply", payload);
    sv_rt_conn_send(rt, c, out.data, out.len);
}

static char *sv_rt_reply_payload(sv_rt *rt, const char *status, const char *response)
{
    return sv_arena_printf(&rt->arena, "{\"status\":\"%s\",\"response\":%s}", status, response);
}

static char *sv_rt_reason(sv_rt *rt, const char *reason)
{
    return sv_arena_printf(&rt->arena, "{\"reason\":%s}", sv_rt_json_string(rt, reason));
}

static void sv_rt_chan_system(sv_rt *rt, sv_rt_chan *ch, const char *extension, const char *status,
                              const char *message)
{
    char *payload = sv_arena_printf(&rt->arena,
                                    "{\"extension\":\"%s\",\"status\":\"%s\",\"message\":%s,\"channel\":%s}",
                                    extension, status, sv_rt_json_string(rt, message), ch->name_json);
    sv_rt_chan_push(rt, ch, ch->join_ref, NULL, "system", payload);
}

/* --- channel lifetime ----------------------------------------------------- */

static void sv_rt_pg_list_add(sv_rt *rt, sv_rt_chan *ch)
{
    if (ch->in_pg_list)
        return;
    ch->pg_prev = NULL;
    ch->pg_next = rt->pg_chans;
    if (rt->pg_chans != NULL)
        rt->pg_chans->pg_prev = ch;
    rt->pg_chans = ch;
    ch->in_pg_list = 1;
}

static void sv_rt_pg_list_del(sv_rt *rt, sv_rt_chan *ch)
{
    if (!ch->in_pg_list)
        return;
    if (ch->pg_prev != NULL)
        ch->pg_prev->pg_next = ch->pg_next;
    else
        rt->pg_chans = ch->pg_next;
    if (ch->pg_next != NULL)
        ch->pg_next->pg_prev = ch->pg_prev;
    ch->in_pg_list = 0;
}

static void sv_rt_chan_free(sv_rt *rt, sv_rt_chan *ch)
{
    sv_rt_pg_list_del(rt, ch);
    sv_rt_ident_put(rt, ch->ident);
    sv_rt_ident_put(rt, ch->want);
    for (int i = 0; i < ch->nbinds; i++) {
        free(ch->binds[i].schema);
        free(ch->binds[i].table);
        sv_rt_filter_free(&ch->binds[i].filter);
    }
    free(ch->binds);
    free(ch->topic);
    free(ch->topic_json);
    free(ch->name_json);
    free(ch->join_ref);
    free(ch->pending_ref);
    free(ch->reply_json);
    free(ch);
    rt->nchannels--;
}

static void sv_rt_chan_remove(sv_rt *rt, sv_rt_chan *ch)
{
    sv_rt_conn *c = ch->conn;
    for (int i = 0; i < c->nchans; i++) {
        if (c->chans[i] == ch) {
            c->chans[i] = c->chans[--c->nchans];
            break;
        }
    }
    sv_rt_chan_free(rt, ch);
}

void sv_rt_chan_free_all(sv_rt *rt, sv_rt_conn *c)
{
    for (int i = 0; i < c->nchans; i++)
        sv_rt_chan_free(rt, c->chans[i]);
    c->nchans = 0;
}

static sv_rt_chan *sv_rt_chan_find(sv_rt_conn *c, const char *topic)
{
    for (int i = 0; i < c->nchans; i++)
        if (strcmp(c->chans[i]->topic, topic) == 0)
            return c->chans[i];
    return NULL;
}

/* The server ends the channel: phx_close (the client removes it and does
 * not rejoin). */
static void sv_rt_chan_close(sv_rt *rt, sv_rt_chan *ch)
{
    if (ch->state == SV_RT_CHAN_JOINED)
        sv_rt_chan_push(rt, ch, ch->join_ref, ch->join_ref, "phx_close", "{}");
    sv_rt_chan_remove(rt, ch);
}

/* --- tokens ---------------------------------------------------------------------- */

typedef struct sv_rt_token {
    sv_rt_ident *ident;     /* a reference the caller owns */
    int64_t      exp;
    const char  *error;     /* Supabase's reason text ("Code: message") */
    const char  *message;   /* the same without the code, for system messages */
} sv_rt_token;

/* Verifies an access token: signed with the server's secret, not
 * expired, with the claims role and exp, as Supabase requires. */
static int sv_rt_token_verify(sv_rt *rt, const char *token, sv_rt_token *out)
{
    char *claims = NULL;
    json_object *payload = NULL, *role = NULL, *exp = NULL;
    time_t now = (time_t)(sv_clock_wall_ms() / 1000);
    memset(out, 0, sizeof(*out));
    sv_jwt_status st = sv_jwt_verify_obj(&rt->arena, rt->cfg.jwt_secret, token, now, &claims, &payload);
    switch (st) {
    case SV_JWT_OK:
        break;
    case SV_JWT_EXPIRED: {
        /* The signature was good; say how long ago, like Supabase. */
        long ago = 0;
        const char *d1 = strchr(token, '.');
        const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
        unsigned char *raw;
        size_t rawlen;
        json_object *p = NULL, *e;
        if (d2 && sv_jwt_b64url_decode(&rt->arena, d1 + 1, (size_t)(d2 - d1 - 1), &raw, &rawlen) == 0 &&
            (p = json_tokener_parse((const char *)raw)) != NULL && json_object_object_get_ex(p, "exp", &e))
            ago = (long)(now - (time_t)json_object_get_double(e));
        if (p != NULL)
            json_object_put(p);
        out->message = sv_arena_printf(&rt->arena, "Token has expired %ld seconds ago", ago);
        out->error = sv_arena_printf(&rt->arena, "InvalidJWTToken: %s", out->message);
        return -1;
    }
    case SV_JWT_NOT_YET_VALID:
        out->message = "Token is not valid yet";
        out->error = "InvalidJWTToken: Token is not valid yet";
        return -1;
    case SV_JWT_BAD_ALG:
    case SV_JWT_BAD_SIGNATURE:
        out->message = "Failed to validate JWT signature";
        out->error = "JwtSignatureError: Failed to validate JWT signature";
        return -1;
    default:
        out->message = "The token provided is not a valid JWT";
        out->error = "MalformedJWT: The token provided is not a valid JWT";
        return -1;
    }
    if (!json_object_object_get_ex(payload, "role", &role) || !json_object_is_type(role, json_type_string) ||
        json_object_get_string_len(role) == 0 || !json_object_object_get_ex(payload, "exp", &exp) ||
        !(json_object_is_type(exp, json_type_int) || json_object_is_type(exp, json_type_double))) {
        json_object_put(payload);
        out->message = "Fields `role` and `exp` are required in JWT";
        out->error = "InvalidJWTToken: Fields `role` and `exp` are required in JWT";
        return -1;
    }
    out->exp = (int64_t)json_object_get_double(exp);
    out->ident = sv_rt_ident_get(rt, json_object_get_string(role), claims);
    json_object_put(payload);
    if (out->ident == NULL) {
        out->message = "out of memory";
        out->error = "Unknown Error on Channel";
        return -1;
    }
    return 0;
}

static void sv_rt_token_hash(const char *token, unsigned char out[16])
{
    crypto_generichash(out, 16, (const unsigned char *)token, strlen(token), NULL, 0);
}

/* The token a join or an access_token message names: NULL when absent,
 * null or one of the new "sb_" API keys (which mean: the apikey's). */
static const char *sv_rt_payload_token(json_object *payload)
{
    json_object *v;
    if (payload == NULL)
        return NULL;
    if (!json_object_object_get_ex(payload, "access_token", &v) &&
        !json_object_object_get_ex(payload, "user_token", &v))
        return NULL;
    if (!json_object_is_type(v, json_type_string))
        return NULL;
    const char *t = json_object_get_string(v);
    if (t[0] == '\0' || strncmp(t, "sb_", 3) == 0)
        return NULL;
    return t;
}

/* --- subscription checks --------------------------------------------------- */

/* Bindings PostgreSQL accepted for a role, so the next socket joining
 * with the same (role, table, filter) -- thousands of clients running the
 * same app -- goes live without a round trip. Cleared on a schema
 * reload. */
typedef struct sv_rt_checked {
    struct sv_rt_checked *next;
    uint32_t hash;
    char     key[];
} sv_rt_checked;

#define SV_RT_CHECKED_BUCKETS 4096
#define SV_RT_CHECKED_MAX 100000

static char *sv_rt_check_key(sv_rt *rt, const char *role, const sv_rt_bind *b)
{
    return sv_arena_printf(&rt->arena, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", role, b->schema, b->table,
                           b->filter.op ? b->filter.column : "", sv_rt_filter_op_name(b->filter.op),
                           b->filter.op ? b->filter.value : "");
}

static int sv_rt_checked_has(sv_rt *rt, const char *key)
{
    if (rt->checked == NULL)
        return 0;
    uint32_t h = sv_rt_hash(key);
    for (sv_rt_checked *e = rt->checked[h % SV_RT_CHECKED_BUCKETS]; e != NULL; e = e->next)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return 1;
    return 0;
}

void sv_rt_checked_clear(sv_rt *rt)
{
    if (rt->checked == NULL)
        return;
    for (int i = 0; i < SV_RT_CHECKED_BUCKETS; i++) {
        while (rt->checked[i] != NULL) {
            sv_rt_checked *e = rt->checked[i];
            rt->checked[i] = e->next;
            free(e);
        }
    }
    rt->nchecked = 0;
}

static void sv_rt_checked_add(sv_rt *rt, const char *key)
{
    if (sv_rt_checked_has(rt, key))
        return;
    if (rt->checked == NULL && (rt->checked = calloc(SV_RT_CHECKED_BUCKETS, sizeof(*rt->checked))) == NULL)
        return;
    if (rt->nchecked >= SV_RT_CHECKED_MAX)
        sv_rt_checked_clear(rt);
    size_t len = strlen(key);
    sv_rt_checked *e = malloc(sizeof(*e) + len + 1);
    if (e == NULL)
        return;
    memcpy(e->key, key, len + 1);
    e->hash = sv_rt_hash(key);
    e->next = rt->checked[e->hash % SV_RT_CHECKED_BUCKETS];
    rt->checked[e->hash % SV_RT_CHECKED_BUCKETS] = e;
    rt->nchecked++;
}

static void sv_rt_chan_check_result(sv_rt *rt, sv_rt_chan *ch, sv_rt_ident *ident, int db_down, const char *error);

/* Queues a check of ch's bindings for ident (a reference is taken). */
static void sv_rt_chan_check(sv_rt *rt, sv_rt_chan *ch, sv_rt_ident *ident)
{
    int cached = 1;
    for (int i = 0; i < ch->nbinds && cached; i++)
        cached = sv_rt_checked_has(rt, sv_rt_check_key(rt, ident->role, &ch->binds[i]));
    if (cached) {
        sv_rt_chan_check_result(rt, ch, ident, 0, NULL);
        return;
    }
    sv_rt_job *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return;
    job->kind = SV_RT_JOB_CHECK;
    job->conn_fd = ch->conn->fd;
    job->conn_serial = ch->conn->serial;
    job->chan_serial = ch->serial;
    job->ident = ident;
    ident->refs++;
    ch->checking = 1;
    sv_rt_db_submit(rt, job, 0);
}

static sv_rt_chan *sv_rt_job_chan(sv_rt *rt, const sv_rt_job *job)
{
    sv_rt_conn *c = sv_rt_conn_find(rt, job->conn_fd, job->conn_serial);
    if (c == NULL)
        return NULL;
    for (int i = 0; i < c->nchans; i++)
        if (c->chans[i]->serial == job->chan_serial)
            return c->chans[i];
    return NULL;
}

char *sv_rt_chan_check_sql(sv_rt *rt, sv_rt_job *job)
{
    sv_rt_chan *ch = sv_rt_job_chan(rt, job);
    if (ch == NULL)
        return NULL;
    sv_buf sql;
    sv_buf_init(&sql, &rt->arena, 512);
    sv_buf_printf(&sql, "SELECT set_config('role', %s, true), set_config('request.jwt.claims', %s, true);",
                  sv_rt_db_literal(rt, job->ident->role, strlen(job->ident->role)),
                  sv_rt_db_literal(rt, job->ident->claims, strlen(job->ident->claims)));
    for (int i = 0; i < ch->nbinds; i++) {
        const sv_rt_bind *b = &ch->binds[i];
        const sv_rt_filter *f = &b->filter;
        sv_buf_printf(&sql, "SELECT realtime.subscription_check(%s, %s, %s, %s, %s)::text;",
                      sv_rt_db_literal(rt, b->schema, strlen(b->schema)),
                      sv_rt_db_literal(rt, b->table, strlen(b->table)),
                      f->op ? sv_rt_db_literal(rt, f->column, strlen(f->column)) : "NULL",
                      f->op ? sv_rt_db_literal(rt, sv_rt_filter_op_name(f->op), strlen(sv_rt_filter_op_name(f->op)))
                            : "NULL",
                      f->op ? sv_rt_db_literal(rt, f->value, strlen(f->value)) : "NULL");
    }
    return strdup(sql.data);
}

/* Sends the join's ok reply (with the bindings and their ids). */
static void sv_rt_chan_reply_join(sv_rt *rt, sv_rt_chan *ch)
{
    if (ch->state != SV_RT_CHAN_JOINING)
        return;
    char *response = sv_arena_printf(&rt->arena, "{\"postgres_changes\":%s}", ch->reply_json ? ch->reply_json : "[]");
    sv_rt_chan_push(rt, ch, ch->join_ref, ch->pending_ref, "phx_reply", sv_rt_reply_payload(rt, "ok", response));
    ch->state = SV_RT_CHAN_JOINED;
    free(ch->reply_json);
    free(ch->pending_ref);
    ch->reply_json = ch->pending_ref = NULL;
}

void sv_rt_chan_checked(sv_rt *rt, sv_rt_job *job, PGresult *res, const char *error)
{
    sv_rt_chan *ch = sv_rt_job_chan(rt, job);
    if (ch == NULL)
        return;
    if (res != NULL && error == NULL)
        for (int i = 0; i < ch->nbinds; i++)
            sv_rt_checked_add(rt, sv_rt_check_key(rt, job->ident->role, &ch->binds[i]));
    sv_rt_chan_check_result(rt, ch, job->ident, res == NULL, error);
}

/* Applies the outcome of checking ch's bindings for ident: live (the join
 * answered, "Subscribed to PostgreSQL"), refused by PostgreSQL (the join
 * still answered, a system error), or not known (db_down). */
static void sv_rt_chan_check_result(sv_rt *rt, sv_rt_chan *ch, sv_rt_ident *ident, int db_down, const char *error)
{
    /* A newer token came in while this ran: its own check decides. */
    if (ch->want != NULL ? ch->want != ident : ch->ident != ident)
        return;
    ch->checking = 0;
    if (error != NULL && db_down) {
        /* The database is unreachable: a join is refused (the client
         * retries after 1, 2, 5, 10 s), a re-check keeps what was live. */
        sv_rt_ident_put(rt, ch->want);
        ch->want = NULL;
        if (ch->state == SV_RT_CHAN_JOINING) {
            sv_rt_chan_push(rt, ch, ch->join_ref, ch->pending_ref, "phx_reply",
                            sv_rt_reply_payload(rt, "error", sv_rt_reason(rt,
                                "RealtimeRestarting: PostgreSQL is unreachable, please retry")));
            sv_rt_chan_remove(rt, ch);
        }
        return;
    }
    /* Live, or the bindings are wrong for this subscriber (unknown or
     * unpublished table, bad filter): either way the newer token is
     * adopted and the join succeeds, as with Supabase; a system message
     * says which, and why nothing will arrive in the second case. */
    if (ch->want != NULL) {
        sv_rt_ident_put(rt, ch->ident);
        ch->ident = ch->want;
        ch->exp = ch->want_exp;
        ch->want = NULL;
    }
    ch->active = error == NULL;
    if (ch->active)
        sv_rt_pg_list_add(rt, ch);
    else
        sv_rt_pg_list_del(rt, ch);
    sv_rt_chan_reply_join(rt, ch);
    if (!ch->conn->dead)
        sv_rt_chan_system(rt, ch, "postgres_changes", error == NULL ? "ok" : "error",
                          error == NULL ? "Subscribed to PostgreSQL" : error);
}

void sv_rt_chan_store_tinfos(sv_rt *rt, const char *role, PGresult **res, int n)
{
    for (int i = 0; i < n; i++) {
        if (PQresultStatus(res[i]) != PGRES_TUPLES_OK || PQnfields(res[i]) != 1 || PQntuples(res[i]) != 1)
            continue;
        json_object *arr = json_tokener_parse(PQgetvalue(res[i], 0, 0));
        if (arr != NULL && json_object_is_type(arr, json_type_array))
            for (size_t k = 0; k < json_object_array_length(arr); k++)
                sv_rt_tinfo_store(rt, role, json_object_array_get_idx(arr, k));
        if (arr != NULL)
            json_object_put(arr);
    }
}

void sv_rt_chan_recheck_all(sv_rt *rt)
{
    sv_rt_checked_clear(rt);
    for (int fd = 0; fd <= rt->max_fd; fd++) {
        sv_rt_conn *c = rt->conns[fd];
        if (c == NULL || c->dead || c->state != SV_RT_CONN_WS)
            continue;
        for (int i = 0; i < c->nchans; i++) {
            sv_rt_chan *ch = c->chans[i];
            if (ch->nbinds > 0 && !ch->checking && ch->state == SV_RT_CHAN_JOINED)
                sv_rt_chan_check(rt, ch, ch->ident);
        }
    }
}

void sv_rt_chan_system_all(sv_rt *rt, const char *status, const char *message)
{
    for (sv_rt_chan *ch = rt->pg_chans, *next; ch != NULL; ch = next) {
        next = ch->pg_next;
        if (!ch->conn->dead)
            sv_rt_chan_system(rt, ch, "postgres_changes", status, message);
    }
}

/* --- the messages ---------------------------------------------------------- */

/* A binding's id: the same for the same parameters (clients dedupe
 * identical bindings; Supabase uses a hash of them too), never 0. */
static uint32_t sv_rt_bind_id(const char *event, const char *schema, const char *table, const char *filter)
{
    char buf[SV_RT_FILTER_MAX + 512];
    snprintf(buf, sizeof(buf), "%s\x1f%s\x1f%s\x1f%s", event, schema, table, filter);
    uint32_t h = sv_rt_hash(buf) & 0x7ffffff;
    return h ? h : 1;
}

/* Parses config.postgres_changes into ch->binds and the reply's JSON.
 * Returns NULL, or the first binding's error (arena) for a system
 * message. */
static const char *sv_rt_chan_bindings(sv_rt *rt, sv_rt_chan *ch, json_object *payload)
{
    json_object *config = NULL, *pcs = NULL;
    const char *error = NULL;
    if (payload != NULL)
        json_object_object_get_ex(payload, "config", &config);
    if (config != NULL && json_object_is_type(config, json_type_object))
        json_object_object_get_ex(config, "postgres_changes", &pcs);
    json_object *reply = json_object_new_array();
    if (pcs != NULL && json_object_is_type(pcs, json_type_array)) {
        size_t n = json_object_array_length(pcs);
        ch->binds = calloc(n ? n : 1, sizeof(*ch->binds));
        for (size_t i = 0; ch->binds != NULL && i < n; i++) {
            json_object *e = json_object_array_get_idx(pcs, i);
            if (e == NULL || !json_object_is_type(e, json_type_object))
                continue; /* Supabase drops null entries */
            json_object *v;
            const char *event = "*", *schema = NULL, *table = NULL, *filter = "";
            if (json_object_object_get_ex(e, "event", &v) && json_object_is_type(v, json_type_string))
                event = json_object_get_string(v);
            if (json_object_object_get_ex(e, "schema", &v) && json_object_is_type(v, json_type_string))
                schema = json_object_get_string(v);
            if (json_object_object_get_ex(e, "table", &v) && json_object_is_type(v, json_type_string))
                table = json_object_get_string(v);
            if (json_object_object_get_ex(e, "filter", &v) && json_object_is_type(v, json_type_string))
                filter = json_object_get_string(v);
            uint32_t id = sv_rt_bind_id(event, schema ? schema : "", table ? table : "", filter);
            /* The reply echoes each binding as it came, with its id. */
            json_object_object_add(e, "id", json_object_new_int((int32_t)id));
            json_object_array_add(reply, json_object_get(e));

            sv_rt_bind *b = &ch->binds[ch->nbinds];
            char ferr[512];
            if (schema == NULL && table == NULL) {
                if (error == NULL)
                    error = "No subscription params provided. Please provide at least a `schema` or `table` to subscribe to";
                continue;
            }
            if (sv_rt_filter_parse(filter, &b->filter, ferr, sizeof(ferr)) != 0) {
                if (error == NULL)
                    error = sv_arena_strdup(&rt->arena, ferr);
                continue;
            }
            b->id = id;
            b->events = strcasecmp(event, "INSERT") == 0   ? SV_RT_EV_INSERT
                        : strcasecmp(event, "UPDATE") == 0 ? SV_RT_EV_UPDATE
                        : strcasecmp(event, "DELETE") == 0 ? SV_RT_EV_DELETE
                                                           : SV_RT_EV_ALL;
            b->schema = strdup(schema ? schema : "public");
            b->table = strdup(table ? table : "*");
            if (b->schema == NULL || b->table == NULL) {
                free(b->schema);
                free(b->table);
                sv_rt_filter_free(&b->filter);
                error = "out of memory";
                continue;
            }
            ch->nbinds++;
        }
    }
    ch->reply_json = strdup(json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN |
                                                                      JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(reply);
    return error;
}

static void sv_rt_chan_join(sv_rt *rt, sv_rt_conn *c, const sv_rt_msg *m)
{
    const char *name = strncmp(m->topic, "realtime:", 9) == 0 ? m->topic + 9 : NULL;
    if (name == NULL) {
        sv_rt_reply_raw(rt, c, m->ref_json, m->topic,
                        sv_rt_reply_payload(rt, "error", sv_rt_reason(rt, "unmatched topic")));
        return;
    }
    const char *join_error = NULL;
    sv_rt_chan *old = sv_rt_chan_find(c, m->topic);
    if (old != NULL)
        sv_rt_chan_close(rt, old); /* a second join replaces the first */
    if (c->dead)
        return;
    /* Joins per socket and second (Supabase: 100 per second per project):
     * each new set of bindings costs PostgreSQL a check. */
    int64_t second = rt->now_ms / 1000;
    if (c->join_second != second) {
        c->join_second = second;
        c->joins_this_second = 0;
    }
    if (name[0] == '\0')
        join_error = "TopicNameRequired: You must provide a topic name";
    else if (c->nchans >= rt->cfg.realtime_max_channels)
        join_error = "ChannelRateLimitReached: Too many channels";
    else if (++c->joins_this_second > SV_RT_MAX_JOINS_PER_SECOND)
        join_error = "ClientJoinRateLimitReached: Too many joins per second";

    sv_rt_token tok;
    memset(&tok, 0, sizeof(tok));
    const char *token = sv_rt_payload_token(m->payload);
    if (join_error == NULL) {
        if (token == NULL) {
            tok.ident = c->api_ident;
            tok.ident->refs++;
            tok.exp = c->api_exp;
        } else if (sv_rt_token_verify(rt, token, &tok) != 0) {
            join_error = tok.error;
        }
    }
    if (join_error != NULL) {
        sv_buf out;
        sv_buf_init(&out, &rt->arena, 256);
        sv_rt_phx_encode(&out, c->vsn, m->join_ref_json, m->ref_json, sv_rt_json_string(rt, m->topic), "phx_reply",
                         sv_rt_reply_payload(rt, "error", sv_rt_reason(rt, join_error)));
        sv_rt_conn_send(rt, c, out.data, out.len);
        return;
    }

    sv_rt_chan *ch = calloc(1, sizeof(*ch));
    if (ch == NULL || (c->nchans == c->chans_cap &&
                       !(c->chans = realloc(c->chans, sizeof(*c->chans) * (size_t)(c->chans_cap = c->chans_cap ? c->chans_cap * 2 : 2))))) {
        free(ch);
        sv_rt_ident_put(rt, tok.ident);
        sv_rt_conn_drop(rt, c, "out of memory");
        return;
    }
    rt->nchannels++;
    c->chans[c->nchans++] = ch;
    ch->conn = c;
    ch->serial = ++rt->next_serial;
    ch->state = SV_RT_CHAN_JOINING;
    ch->topic = strdup(m->topic);
    ch->topic_json = sv_rt_json_string_dup(m->topic);
    ch->name_json = sv_rt_json_string_dup(name);
    ch->join_ref = strdup(m->join_ref_json);
    ch->pending_ref = strdup(m->ref_json);
    ch->ident = tok.ident;
    ch->exp = tok.exp;
    if (token != NULL)
        sv_rt_token_hash(token, ch->token_hash);
    rt->stats.joins++;
    if (ch->topic == NULL || ch->topic_json == NULL || ch->name_json == NULL || ch->join_ref == NULL ||
        ch->pending_ref == NULL) {
        sv_rt_chan_remove(rt, ch);
        sv_rt_conn_drop(rt, c, "out of memory");
        return;
    }
    const char *bind_error = sv_rt_chan_bindings(rt, ch, m->payload);
    if (bind_error != NULL || ch->nbinds == 0) {
        sv_rt_chan_reply_join(rt, ch);
        if (bind_error != NULL && !c->dead)
            sv_rt_chan_system(rt, ch, "postgres_changes", "error", bind_error);
        return;
    }
    sv_rt_chan_check(rt, ch, ch->ident);
}

static void sv_rt_chan_access_token(sv_rt *rt, sv_rt_chan *ch, const sv_rt_msg *m)
{
    const char *token = sv_rt_payload_token(m->payload);
    if (token == NULL)
        return;
    unsigned char h[16];
    sv_rt_token_hash(token, h);
    if (sodium_memcmp(h, ch->token_hash, 16) == 0)
        return;
    sv_rt_token tok;
    if (sv_rt_token_verify(rt, token, &tok) != 0) {
        /* Supabase: a system error, then the channel is closed. */
        sv_rt_chan_system(rt, ch, "system", "error", tok.message);
        if (!ch->conn->dead)
            sv_rt_chan_close(rt, ch);
        return;
    }
    memcpy(ch->token_hash, h, 16);
    sv_rt_ident_put(rt, ch->want);
    ch->want = NULL;
    if (ch->nbinds == 0 || strcmp(tok.ident->role, ch->ident->role) == 0) {
        /* Same role: same tables and columns, only the claims change. */
        sv_rt_ident_put(rt, ch->ident);
        ch->ident = tok.ident;
        ch->exp = tok.exp;
        return;
    }
    /* Another role (anon -> authenticated after signing in): the bindings
     * are checked again for it; the old identity stays until then. */
    ch->want = tok.ident;
    ch->want_exp = tok.exp;
    sv_rt_chan_check(rt, ch, tok.ident);
}

void sv_rt_chan_message(sv_rt *rt, sv_rt_conn *c, const char *text, size_t len)
{
    sv_rt_msg m;
    const char *why = NULL;
    if (sv_rt_phx_decode(&rt->arena, c->vsn, text, len, &m, &why) != 0) {
        char reason[96];
        snprintf(reason, sizeof(reason), "invalid message: %s", why);
        sv_rt_conn_close_ws(rt, c, 1007, reason);
        return;
    }
    if (strcmp(m.topic, "phoenix") == 0) {
        if (strcmp(m.event, "heartbeat") == 0)
            sv_rt_reply_raw(rt, c, m.ref_json, "phoenix", "{\"status\":\"ok\",\"response\":{}}");
        sv_rt_phx_msg_free(&m);
        return;
    }
    sv_rt_chan *ch = sv_rt_chan_find(c, m.topic);
    if (strcmp(m.event, "phx_join") == 0) {
        sv_rt_chan_join(rt, c, &m);
    } else if (strcmp(m.event, "phx_leave") == 0) {
        sv_buf out;
        sv_buf_init(&out, &rt->arena, 128);
        sv_rt_phx_encode(&out, c->vsn, m.join_ref_json, m.ref_json, sv_rt_json_string(rt, m.topic), "phx_reply",
                         "{\"status\":\"ok\",\"response\":{}}");
        sv_rt_conn_send(rt, c, out.data, out.len);
        if (ch != NULL && !c->dead)
            sv_rt_chan_close(rt, ch);
    } else if (ch == NULL) {
        sv_rt_reply_raw(rt, c, m.ref_json, m.topic,
                        sv_rt_reply_payload(rt, "error", sv_rt_reason(rt, "unmatched topic")));
    } else if (strcmp(m.event, "access_token") == 0) {
        sv_rt_chan_access_token(rt, ch, &m);
    }
    /* broadcast and presence are not served: ignored. */
    sv_rt_phx_msg_free(&m);
}

void sv_rt_chan_tick(sv_rt *rt, sv_rt_conn *c, time_t now)
{
    for (int i = 0; i < c->nchans && !c->dead;) {
        sv_rt_chan *ch = c->chans[i];
        if (ch->exp > 0 && (int64_t)now >= ch->exp) {
            char msg[96];
            snprintf(msg, sizeof(msg), "Token has expired %lld seconds ago", (long long)((int64_t)now - ch->exp));
            sv_rt_chan_system(rt, ch, "system", "error", msg);
            if (!c->dead)
                sv_rt_chan_close(rt, ch); /* swaps the last channel into i */
            continue;
        }
        i++;
    }
}
