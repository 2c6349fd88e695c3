/* A change in, postgres_changes messages out.
 *
 * The capture trigger (sql/030_realtime.sql) notifies the row's identity.
 * The channels whose bindings match the table and event are grouped by
 * identity (role + claims: the same claims see the same rows), and one
 * round trip asks PostgreSQL, for every group in turn, as that group:
 *
 *   SELECT set_config('role', R, true), set_config('request.jwt.claims', C, true);
 *   SELECT to_jsonb(t)::text, <filter 1>, <filter 2>, ...
 *     FROM (SELECT <columns R may read> FROM tbl WHERE <pk> = <value>) AS t;
 *
 * A row comes back only if R's row-level security lets the group see it;
 * the filters are compared on the typed columns. A DELETE cannot be read
 * back: the old row (kept by the trigger in realtime.change_rows) is put
 * in a setting, and the group evaluates the table's SELECT policies for
 * its role and its filters on that old row instead; the message carries
 * only the primary key, as Supabase's does.
 *
 * Each channel then gets one message listing the ids of its bindings that
 * matched.
 *
 * When several groups have filters (the V2 document's case: every user
 * subscribed to audit_log with user_id=eq.<self>), the distinct filters
 * are first evaluated together in one statement on the row (read as
 * service_role, which bypasses RLS; for a DELETE on the old row), and
 * only the groups with a matching binding get their RLS check: one
 * check for the job's owner instead of one per subscribed user. */
#include "realtime/sv_rt.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sv_err.h"
#include "core/sv_json.h"
#include "core/sv_log.h"
#include "realtime/sv_rt_phx.h"

typedef struct sv_rt_change {
    int      refs;
    uint8_t  ev;              /* SV_RT_EV_* */
    int64_t  ref_id;          /* row of realtime.change_rows, 0 when inline */
    char    *schema;
    char    *table;
    char    *type;            /* INSERT, UPDATE, DELETE */
    char    *pk_json;         /* {"id": 42} */
    char    *old_pk_json;     /* UPDATE: the key before the change */
    char    *old_json;        /* DELETE: the whole old row */
    char    *ts;              /* commit_timestamp */
} sv_rt_change;

typedef struct sv_rt_pred {
    char    *column;
    sv_rt_op op;
    char    *value;
} sv_rt_pred;

typedef struct sv_rt_entry {
    int      conn_fd;
    uint32_t conn_serial;
    uint32_t chan_serial;
    uint32_t bind_id;
    int      group;
    int      pred;            /* index of the group's filter, -1: none */
    int      filter;          /* index in the fanout's filters, -1: none */
} sv_rt_entry;

/* One output column of the filters' statement: one filter's result, or
 * (members) which of several equality filters on one column match. */
typedef struct sv_rt_pfcol {
    int  filter;              /* >= 0: a filter index; -1: members */
    int  nmembers;
    int *members;
} sv_rt_pfcol;

typedef struct sv_rt_group {
    sv_rt_ident *ident;       /* a reference */
    int          res_at;      /* index of its SELECT's result */
    int          first, n;    /* its entries */
    int          npreds;
    sv_rt_pred  *preds;
} sv_rt_group;

typedef struct sv_rt_fanout {
    int          ngroups;
    sv_rt_group *groups;
    int          nentries;
    sv_rt_entry *entries;
    int          nfilters;    /* distinct filters of all groups */
    sv_rt_pred  *filters;
    int          prefilter;   /* the job runs the filters' statement now */
    int          npf;         /* its output columns after the first: */
    struct sv_rt_pfcol *pf;
    int          prefiltered; /* done (or not worth it) */
    int          old_at;      /* DELETE: index of set_config('realtime.old')'s result */
    int          nres;        /* results the batch yields */
    int          npreps;      /* statements this batch prepares */
    struct sv_rt_prep **preps;
    int         *preps_at;    /* index of each PREPARE's result */
} sv_rt_fanout;

/* Statements prepared on the query connection, by their text: a change
 * for 1,000 subscriber groups is then 2,000 EXECUTEs, not 2,000 parsed
 * and planned statements. PostgreSQL re-plans a cached plan for another
 * role, and the policies' auth.uid() is evaluated at each execution, so
 * row-level security is what it is for a fresh statement. */
typedef struct sv_rt_prep {
    struct sv_rt_prep *next;
    uint32_t hash;
    int      state;           /* 0: not prepared, 1: prepared, 2: in the running batch */
    char     name[24];
    char     sql[];
} sv_rt_prep;

#define SV_RT_PREP_BUCKETS 256
#define SV_RT_PREP_MAX 2000

static void sv_rt_change_put(sv_rt_change *ch)
{
    if (ch == NULL || --ch->refs > 0)
        return;
    free(ch->schema);
    free(ch->table);
    free(ch->type);
    free(ch->pk_json);
    free(ch->old_pk_json);
    free(ch->old_json);
    free(ch->ts);
    free(ch);
}

static void sv_rt_fanout_free(sv_rt_fanout *f)
{
    if (f == NULL)
        return;
    for (int g = 0; g < f->ngroups; g++) {
        /* Identities are released by the caller (it has the daemon). */
        for (int p = 0; p < f->groups[g].npreds; p++) {
            free(f->groups[g].preds[p].column);
            free(f->groups[g].preds[p].value);
        }
        free(f->groups[g].preds);
    }
    for (int i = 0; i < f->nfilters; i++) {
        free(f->filters[i].column);
        free(f->filters[i].value);
    }
    free(f->filters);
    for (int i = 0; i < f->npf; i++)
        free(f->pf[i].members);
    free(f->pf);
    free(f->preps);
    free(f->preps_at);
    free(f->groups);
    free(f->entries);
    free(f);
}

void sv_rt_fanout_job_free(sv_rt_job *job)
{
    sv_rt_change_put(job->change);
    job->change = NULL;
    sv_rt_fanout_free(job->fanout);
    job->fanout = NULL;
}

static void sv_rt_fanout_release(sv_rt *rt, sv_rt_job *job)
{
    if (job->fanout != NULL)
        for (int g = 0; g < job->fanout->ngroups; g++)
            sv_rt_ident_put(rt, job->fanout->groups[g].ident);
    sv_rt_job_free(rt, job);
}

static uint8_t sv_rt_event_of(const char *type)
{
    if (strcmp(type, "INSERT") == 0)
        return SV_RT_EV_INSERT;
    if (strcmp(type, "UPDATE") == 0)
        return SV_RT_EV_UPDATE;
    if (strcmp(type, "DELETE") == 0)
        return SV_RT_EV_DELETE;
    return 0;
}

static char *sv_rt_jdup(json_object *o, const char *key, int as_json)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || v == NULL || json_object_is_type(v, json_type_null))
        return NULL;
    if (as_json)
        return strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    if (!json_object_is_type(v, json_type_string))
        return NULL;
    return strdup(json_object_get_string(v));
}

static void sv_rt_fanout_submit(sv_rt *rt, sv_rt_change *change, int front)
{
    sv_rt_job *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        sv_rt_change_put(change);
        return;
    }
    job->kind = change->ref_id && change->type == NULL ? SV_RT_JOB_FETCH : SV_RT_JOB_FANOUT;
    job->change = change;
    sv_rt_db_submit(rt, job, front);
}

void sv_rt_fanout_notify(sv_rt *rt, const char *payload)
{
    json_object *o = NULL;
    const char *why;
    if (sv_json_parse(payload, strlen(payload), &o, &why) != SV_OK || !json_object_is_type(o, json_type_object)) {
        sv_log_warn("rt_change", "msg=\"notification is not a JSON object\"");
        if (o != NULL)
            json_object_put(o);
        return;
    }
    sv_rt_change *ch = calloc(1, sizeof(*ch));
    if (ch == NULL) {
        json_object_put(o);
        return;
    }
    ch->refs = 1;
    json_object *ref;
    if (json_object_object_get_ex(o, "ref", &ref)) {
        ch->ref_id = json_object_get_int64(ref);
    } else {
        ch->schema = sv_rt_jdup(o, "schema", 0);
        ch->table = sv_rt_jdup(o, "table", 0);
        ch->type = sv_rt_jdup(o, "type", 0);
        ch->pk_json = sv_rt_jdup(o, "pk", 1);
        ch->old_pk_json = sv_rt_jdup(o, "old_pk", 1);
        ch->ts = sv_rt_jdup(o, "ts", 0);
        ch->ev = ch->type ? sv_rt_event_of(ch->type) : 0;
        if (ch->schema == NULL || ch->table == NULL || ch->pk_json == NULL || ch->ts == NULL || ch->ev == 0) {
            sv_log_warn("rt_change", "msg=\"notification without schema, table, type, pk or ts\"");
            json_object_put(o);
            sv_rt_change_put(ch);
            return;
        }
    }
    json_object_put(o);
    if (ch->ref_id == 0 && ch->type == NULL) {
        sv_rt_change_put(ch);
        return;
    }
    sv_rt_fanout_submit(rt, ch, 0);
}

/* --- prepared statements ---------------------------------------------- */

static uint32_t sv_rt_prep_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

void sv_rt_prep_clear(sv_rt *rt)
{
    if (rt->preps == NULL)
        return;
    for (int i = 0; i < SV_RT_PREP_BUCKETS; i++) {
        while (rt->preps[i] != NULL) {
            sv_rt_prep *p = rt->preps[i];
            rt->preps[i] = p->next;
            free(p);
        }
    }
    rt->npreps = 0;
}

/* The registry entry for sql, made when new (state 0); NULL when out of
 * memory. */
static sv_rt_prep *sv_rt_prep_get(sv_rt *rt, const char *sql)
{
    if (rt->preps == NULL && (rt->preps = calloc(SV_RT_PREP_BUCKETS, sizeof(*rt->preps))) == NULL)
        return NULL;
    uint32_t h = sv_rt_prep_hash(sql);
    for (sv_rt_prep *p = rt->preps[h % SV_RT_PREP_BUCKETS]; p != NULL; p = p->next)
        if (p->hash == h && strcmp(p->sql, sql) == 0)
            return p;
    size_t len = strlen(sql);
    sv_rt_prep *p = calloc(1, sizeof(*p) + len + 1);
    if (p == NULL)
        return NULL;
    memcpy(p->sql, sql, len + 1);
    p->hash = h;
    snprintf(p->name, sizeof(p->name), "sv_rt_%u", ++rt->prep_serial);
    p->next = rt->preps[h % SV_RT_PREP_BUCKETS];
    rt->preps[h % SV_RT_PREP_BUCKETS] = p;
    rt->npreps++;
    return p;
}

/* Appends "EXECUTE name(args);" to body for the statement sql (its
 * parameters $1..$nargs), preceded by its PREPARE when this connection
 * does not have it yet: where it is first used, so that it is analysed
 * as the role set just before (the policies' functions live in schemas
 * the daemon's own role may not use). Counts the results in f->nres.
 * Returns the EXECUTE's result index, or -1 when out of memory. */
static int sv_rt_emit(sv_rt *rt, sv_rt_fanout *f, sv_buf *body, const char *sql, const char *const *args,
                      int nargs)
{
    sv_rt_prep *p = sv_rt_prep_get(rt, sql);
    if (p == NULL)
        return -1;
    if (p->state == 0) {
        sv_rt_prep **np = realloc(f->preps, sizeof(*np) * (size_t)(f->npreps + 1));
        if (np == NULL)
            return -1;
        f->preps = np;
        int *na = realloc(f->preps_at, sizeof(*na) * (size_t)(f->npreps + 1));
        if (na == NULL)
            return -1;
        f->preps_at = na;
        f->preps[f->npreps] = p;
        f->preps_at[f->npreps++] = f->nres++;
        p->state = 2;
        sv_buf_printf(body, "PREPARE %s AS %s;", p->name, sql);
    }
    sv_buf_printf(body, "EXECUTE %s", p->name);
    for (int i = 0; i < nargs; i++)
        sv_buf_printf(body, "%s%s", i ? ", " : "(", args[i]);
    sv_buf_puts(body, nargs ? ");" : ";");
    return f->nres++;
}

/* --- building the round trip ------------------------------------------- */

/* The index of filter f in the list (*preds, *n), added when new; -1
 * for no filter, -2 when out of memory. */
static int sv_rt_pred_index(sv_rt_pred **preds, int *n, const sv_rt_filter *f)
{
    if (f->op == SV_RT_OP_NONE)
        return -1;
    for (int i = 0; i < *n; i++)
        if ((*preds)[i].op == f->op && strcmp((*preds)[i].column, f->column) == 0 &&
            strcmp((*preds)[i].value, f->value) == 0)
            return i;
    sv_rt_pred *np = realloc(*preds, sizeof(*np) * (size_t)(*n + 1));
    if (np == NULL)
        return -2;
    *preds = np;
    np[*n].column = strdup(f->column);
    np[*n].value = strdup(f->value);
    np[*n].op = f->op;
    if (np[*n].column == NULL || np[*n].value == NULL) {
        free(np[*n].column);
        free(np[*n].value);
        return -2;
    }
    return (*n)++;
}

/* The fanout's distinct filters, hashed while they are collected (the V2
 * document's pattern has one per subscribed user). */
typedef struct sv_rt_fset {
    int     *slot;            /* filter index + 1, 0: empty */
    uint32_t mask;
} sv_rt_fset;

static uint32_t sv_rt_filter_hash(const sv_rt_filter *flt)
{
    uint32_t h = 2166136261u ^ (uint32_t)flt->op;
    for (const char *c = flt->column; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    h = (h ^ 0x1f) * 16777619u;
    for (const char *c = flt->value; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    return h;
}

/* The index of flt among f->filters, added when new: -1 no filter, -2
 * out of memory. */
static int sv_rt_fset_index(sv_rt *rt, sv_rt_fset *set, sv_rt_fanout *f, const sv_rt_filter *flt)
{
    if (flt->op == SV_RT_OP_NONE)
        return -1;
    if (set->slot == NULL || (uint32_t)f->nfilters * 2 >= set->mask) {
        uint32_t size = set->mask ? (set->mask + 1) * 4 : 64;
        int *slot = sv_arena_calloc(&rt->arena, sizeof(int) * size);
        for (int i = 0; i < f->nfilters; i++) {
            uint32_t k = sv_rt_filter_hash(&(sv_rt_filter){ f->filters[i].op, f->filters[i].column, f->filters[i].value }) & (size - 1);
            while (slot[k])
                k = (k + 1) & (size - 1);
            slot[k] = i + 1;
        }
        set->slot = slot;
        set->mask = size - 1;
    }
    uint32_t k = sv_rt_filter_hash(flt) & set->mask;
    for (; set->slot[k]; k = (k + 1) & set->mask) {
        const sv_rt_pred *p = &f->filters[set->slot[k] - 1];
        if (p->op == flt->op && strcmp(p->column, flt->column) == 0 && strcmp(p->value, flt->value) == 0)
            return set->slot[k] - 1;
    }
    int n = f->nfilters;
    /* New: append (the list is scanned no more). */
    sv_rt_pred *np = realloc(f->filters, sizeof(*np) * (size_t)(n + 1));
    if (np == NULL)
        return -2;
    f->filters = np;
    np[n].column = strdup(flt->column);
    np[n].value = strdup(flt->value);
    np[n].op = flt->op;
    if (np[n].column == NULL || np[n].value == NULL) {
        free(np[n].column);
        free(np[n].value);
        return -2;
    }
    f->nfilters++;
    set->slot[k] = n + 1;
    return n;
}

/* Who should hear about the change: the matching bindings of live
 * channels, grouped by identity, entries sorted by group. NULL when
 * nobody. */
static sv_rt_fanout *sv_rt_fanout_collect(sv_rt *rt, const sv_rt_change *change)
{
    sv_rt_fanout *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    int ecap = 0, gcap = 0;
    sv_rt_fset fset = { NULL, 0 };
    uint64_t mark = ++rt->fanout_mark;
    for (sv_rt_chan *ch = rt->pg_chans; ch != NULL; ch = ch->pg_next) {
        if (ch->conn->dead || !ch->active)
            continue;
        for (int b = 0; b < ch->nbinds; b++) {
            const sv_rt_bind *bind = &ch->binds[b];
            if (!(bind->events & change->ev) || strcmp(bind->schema, change->schema) != 0 ||
                (strcmp(bind->table, "*") != 0 && strcmp(bind->table, change->table) != 0))
                continue;
            sv_rt_ident *id = ch->ident;
            if (id->mark != mark) {
                const sv_rt_tinfo *t = sv_rt_tinfo_find(rt, id->role, change->schema, change->table);
                if (t == NULL || !t->readable)
                    break; /* this role may not read the table at all */
                if (f->ngroups == gcap) {
                    gcap = gcap ? gcap * 2 : 8;
                    sv_rt_group *ng = realloc(f->groups, sizeof(*ng) * (size_t)gcap);
                    if (ng == NULL)
                        goto oom;
                    f->groups = ng;
                }
                memset(&f->groups[f->ngroups], 0, sizeof(sv_rt_group));
                f->groups[f->ngroups].ident = id;
                id->refs++;
                id->mark = mark;
                id->group = f->ngroups++;
            }
            if (f->nentries == ecap) {
                ecap = ecap ? ecap * 2 : 16;
                sv_rt_entry *ne = realloc(f->entries, sizeof(*ne) * (size_t)ecap);
                if (ne == NULL)
                    goto oom;
                f->entries = ne;
            }
            sv_rt_entry *e = &f->entries[f->nentries++];
            e->conn_fd = ch->conn->fd;
            e->conn_serial = ch->conn->serial;
            e->chan_serial = ch->serial;
            e->bind_id = bind->id;
            e->group = id->group;
            e->pred = sv_rt_pred_index(&f->groups[id->group].preds, &f->groups[id->group].npreds, &bind->filter);
            e->filter = sv_rt_fset_index(rt, &fset, f, &bind->filter);
            if (e->pred == -2 || e->filter == -2)
                goto oom;
            f->groups[id->group].n++;
        }
    }
    if (f->nentries == 0) {
        sv_rt_fanout_free(f);
        return NULL;
    }
    /* Entries by group (stable: a channel's entries stay together). */
    sv_rt_entry *sorted = malloc(sizeof(*sorted) * (size_t)f->nentries);
    if (sorted == NULL)
        goto oom;
    int pos = 0;
    for (int g = 0; g < f->ngroups; g++) {
        f->groups[g].first = pos;
        pos += f->groups[g].n;
        f->groups[g].n = 0;
    }
    for (int i = 0; i < f->nentries; i++) {
        sv_rt_group *g = &f->groups[f->entries[i].group];
        sorted[g->first + g->n++] = f->entries[i];
    }
    free(f->entries);
    f->entries = sorted;
    return f;
oom:
    for (int g = 0; g < f->ngroups; g++)
        sv_rt_ident_put(rt, f->groups[g].ident);
    sv_rt_fanout_free(f);
    return NULL;
}

static char *sv_rt_ident_q(sv_rt *rt, const char *s)
{
    char *q = PQescapeIdentifier(rt->pg_query.conn, s, strlen(s));
    if (q == NULL)
        return "\"?\"";
    char *out = sv_arena_strdup(&rt->arena, q);
    PQfreemem(q);
    return out;
}

/* The text of a JSON scalar, for a primary key literal. */
static char *sv_rt_json_text(sv_rt *rt, json_object *v)
{
    if (v == NULL || json_object_is_type(v, json_type_null))
        return NULL;
    if (json_object_is_type(v, json_type_string))
        return sv_arena_strdup(&rt->arena, json_object_get_string(v));
    return sv_arena_strdup(&rt->arena, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
}

static void sv_rt_append_preds(sv_rt *rt, sv_buf *sql, const sv_rt_pred *preds, int npreds, const char *alias)
{
    for (int p = 0; p < npreds; p++) {
        const sv_rt_pred *pr = &preds[p];
        if (pr->op == SV_RT_OP_IN)
            sv_buf_printf(sql, ", (%s.%s = ANY (%s))::text", alias, sv_rt_ident_q(rt, pr->column),
                          sv_rt_db_literal(rt, pr->value, strlen(pr->value)));
        else
            sv_buf_printf(sql, ", (%s.%s %s %s)::text", alias, sv_rt_ident_q(rt, pr->column),
                          sv_rt_filter_sql_op(pr->op), sv_rt_db_literal(rt, pr->value, strlen(pr->value)));
    }
}

/* The type name of column col of the table described by t, or NULL. */
static char *sv_rt_column_type(sv_rt *rt, const sv_rt_tinfo *t, const char *col)
{
    char *type = NULL;
    json_object *cols = t ? json_tokener_parse(t->columns_json) : NULL;
    for (size_t i = 0; cols != NULL && type == NULL && i < json_object_array_length(cols); i++) {
        json_object *c = json_object_array_get_idx(cols, i), *n, *ty;
        if (json_object_object_get_ex(c, "name", &n) && strcmp(json_object_get_string(n), col) == 0 &&
            json_object_object_get_ex(c, "type", &ty))
            type = sv_arena_strdup(&rt->arena, json_object_get_string(ty));
    }
    if (cols != NULL)
        json_object_put(cols);
    return type;
}

/* The filters' columns for the statement that evaluates them all (after
 * "SELECT true::text"). Equality filters on one column -- one per user
 * in the V2 document's pattern -- become a single lookup, which of the
 * values equal the column: one array, not a thousand comparisons. */
static int sv_rt_prefilter_preds(sv_rt *rt, sv_rt_fanout *f, sv_buf *sql, const char *alias, const sv_rt_tinfo *t)
{
    f->pf = calloc((size_t)f->nfilters + 1, sizeof(*f->pf));
    if (f->pf == NULL)
        return -1;
    f->npf = 0;
    /* Equality filters by column (few distinct columns). */
    int ncols = 0;
    const char **cols = sv_arena_alloc(&rt->arena, sizeof(char *) * ((size_t)f->nfilters + 1));
    int *count = sv_arena_calloc(&rt->arena, sizeof(int) * ((size_t)f->nfilters + 1));
    int *colof = sv_arena_alloc(&rt->arena, sizeof(int) * ((size_t)f->nfilters + 1));
    for (int i = 0; i < f->nfilters; i++) {
        colof[i] = -1;
        if (f->filters[i].op != SV_RT_OP_EQ)
            continue;
        int c = 0;
        while (c < ncols && strcmp(cols[c], f->filters[i].column) != 0)
            c++;
        if (c == ncols)
            cols[ncols++] = f->filters[i].column;
        colof[i] = c;
        count[c]++;
    }
    int *pfcol = sv_arena_alloc(&rt->arena, sizeof(int) * ((size_t)ncols + 1)); /* column -> pf index */
    for (int c = 0; c < ncols; c++) {
        pfcol[c] = -1;
        char *type = count[c] > 1 ? sv_rt_column_type(rt, t, cols[c]) : NULL;
        if (type == NULL || type[0] == '_')
            continue;
        sv_rt_pfcol *col = &f->pf[f->npf];
        col->filter = -1;
        col->members = malloc(sizeof(int) * (size_t)count[c]);
        if (col->members == NULL)
            return -1;
        sv_buf arr;
        sv_buf_init(&arr, &rt->arena, 256);
        sv_buf_puts(&arr, "{");
        for (int j = 0; j < f->nfilters; j++) {
            if (colof[j] != c)
                continue;
            sv_buf_puts(&arr, col->nmembers ? ",\"" : "\"");
            for (const char *ch = f->filters[j].value; *ch; ch++) {
                if (*ch == '"' || *ch == '\\')
                    sv_buf_append(&arr, "\\", 1);
                sv_buf_append(&arr, ch, 1);
            }
            sv_buf_puts(&arr, "\"");
            col->members[col->nmembers++] = j;
        }
        sv_buf_puts(&arr, "}");
        sv_buf_printf(sql, ", (SELECT array_agg(u.o)::text FROM unnest(%s::%s[]) WITH ORDINALITY AS u(v, o) WHERE %s.%s = u.v)",
                      sv_rt_db_literal(rt, arr.data, arr.len), sv_rt_ident_q(rt, type), alias,
                      sv_rt_ident_q(rt, cols[c]));
        pfcol[c] = f->npf++;
    }
    for (int i = 0; i < f->nfilters; i++) {
        if (colof[i] >= 0 && pfcol[colof[i]] >= 0)
            continue; /* in its column's lookup */
        f->pf[f->npf++].filter = i;
        sv_rt_append_preds(rt, sql, &f->filters[i], 1, alias);
    }
    return 0;
}

int sv_rt_fanout_build(sv_rt *rt, sv_rt_job *job)
{
    sv_rt_change *change = job->change;
    if (job->kind == SV_RT_JOB_FETCH) {
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SELECT schema_name, table_name, op, pk::text, old_pk::text, old::text, ts "
                 "FROM realtime.change_rows WHERE id = %" PRId64,
                 change->ref_id);
        job->sql = strdup(sql);
        return job->sql ? 0 : -1;
    }
    if (job->fanout == NULL)
        job->fanout = sv_rt_fanout_collect(rt, change);
    sv_rt_fanout *f = job->fanout;
    if (f == NULL)
        return -1;

    json_object *pk = json_tokener_parse(change->pk_json);
    if (pk == NULL || !json_object_is_type(pk, json_type_object)) {
        if (pk != NULL)
            json_object_put(pk);
        return -1;
    }
    char *qrel = sv_arena_printf(&rt->arena, "%s.%s", sv_rt_ident_q(rt, change->schema),
                                 sv_rt_ident_q(rt, change->table));
    char *alias = sv_rt_ident_q(rt, change->table);
    sv_buf sql;
    sv_buf_init(&sql, &rt->arena, 1024);
    f->prefilter = 0;
    if (!f->prefiltered && f->ngroups > 1 && f->nfilters > 0) {
        /* Which filters match the row, all at once (see the top). */
        f->prefilter = 1;
        const sv_rt_tinfo *t = NULL;
        for (sv_rt_tinfo *x = rt->tinfos; x != NULL && t == NULL; x = x->next)
            if (strcmp(x->schema, change->schema) == 0 && strcmp(x->table, change->table) == 0)
                t = x;
        for (int i = 0; f->pf != NULL && i < f->npf; i++)
            free(f->pf[i].members);
        free(f->pf);
        f->pf = NULL;
        f->npf = 0;
        if (change->ev == SV_RT_EV_DELETE) {
            sv_buf_puts(&sql, "SELECT true::text");
            if (sv_rt_prefilter_preds(rt, f, &sql, alias, t) != 0) {
                json_object_put(pk);
                return -1;
            }
            sv_buf_printf(&sql, " FROM jsonb_populate_record(NULL::%s, %s::jsonb) AS %s;", qrel,
                          sv_rt_db_literal(rt, change->old_json ? change->old_json : "{}",
                                           strlen(change->old_json ? change->old_json : "{}")),
                          alias);
        } else {
            sv_buf_puts(&sql, "SELECT set_config('role', 'service_role', true);SELECT true::text");
            if (sv_rt_prefilter_preds(rt, f, &sql, "t", t) != 0) {
                json_object_put(pk);
                return -1;
            }
            sv_buf_printf(&sql, " FROM %s AS t WHERE ", qrel);
            for (int k = 0; t != NULL && k < t->npk; k++) {
                json_object *v = NULL;
                json_object_object_get_ex(pk, t->pk_names[k], &v);
                char *text = sv_rt_json_text(rt, v);
                sv_buf_printf(&sql, "%st.%s = %s", k ? " AND " : "", t->pk_idents[k],
                              text ? sv_rt_db_literal(rt, text, strlen(text)) : "NULL");
            }
            if (t == NULL)
                sv_buf_puts(&sql, "false");
            sv_buf_puts(&sql, ";");
        }
        json_object_put(pk);
        job->sql = strdup(sql.data);
        return job->sql ? 0 : -1;
    }
    /* The connection is new (prepared statements gone), or too many
     * shapes were prepared: start again. */
    sv_buf body;
    sv_buf_init(&body, &rt->arena, 1024);
    f->nres = 0;
    f->npreps = 0;
    f->old_at = -1;
    if (rt->prep_gen != rt->query_gen || rt->npreps > SV_RT_PREP_MAX) {
        sv_rt_prep_clear(rt);
        rt->prep_gen = rt->query_gen;
        sv_buf_puts(&body, "DEALLOCATE ALL;");
        f->nres++;
    }
    int ok = 1;
    if (change->ev == SV_RT_EV_DELETE) {
        const char *old = change->old_json ? change->old_json : "{}";
        const char *arg = sv_rt_db_literal(rt, old, strlen(old));
        f->old_at = sv_rt_emit(rt, f, &body, "SELECT set_config('realtime.old', $1, true)", &arg, 1);
        ok = f->old_at >= 0;
    }
    for (int gi = 0; gi < f->ngroups && ok; gi++) {
        sv_rt_group *g = &f->groups[gi];
        const sv_rt_tinfo *t = sv_rt_tinfo_find(rt, g->ident->role, change->schema, change->table);
        const char *setc[2] = { sv_rt_db_literal(rt, g->ident->role, strlen(g->ident->role)),
                                sv_rt_db_literal(rt, g->ident->claims, strlen(g->ident->claims)) };
        if (sv_rt_emit(rt, f, &body, "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
                       setc, 2) < 0) {
            ok = 0;
            break;
        }
        if (t == NULL || !t->readable) {
            sv_buf_puts(&body, "SELECT WHERE false;"); /* nothing for this group */
            g->res_at = f->nres++;
            continue;
        }
        /* The statement, with the key and the filters' values as $n. */
        const char **args = sv_arena_alloc(&rt->arena, sizeof(char *) * (size_t)(t->npk + g->npreds + 1));
        int nargs = 0;
        sv_buf stmt;
        sv_buf_init(&stmt, &rt->arena, 512);
        const char *pa = change->ev == SV_RT_EV_DELETE ? alias : "t";
        if (change->ev == SV_RT_EV_DELETE)
            sv_buf_printf(&stmt, "SELECT (%s)::text", t->vis_sql);
        else
            sv_buf_puts(&stmt, "SELECT to_jsonb(t)::text");
        int base = change->ev == SV_RT_EV_DELETE ? 0 : t->npk;
        for (int p = 0; p < g->npreds; p++) {
            const sv_rt_pred *pr = &g->preds[p];
            if (pr->op == SV_RT_OP_IN)
                sv_buf_printf(&stmt, ", (%s.%s = ANY ($%d))::text", pa, sv_rt_ident_q(rt, pr->column), base + p + 1);
            else
                sv_buf_printf(&stmt, ", (%s.%s %s $%d)::text", pa, sv_rt_ident_q(rt, pr->column),
                              sv_rt_filter_sql_op(pr->op), base + p + 1);
        }
        if (change->ev == SV_RT_EV_DELETE) {
            sv_buf_printf(&stmt, " FROM jsonb_populate_record(NULL::%s, current_setting('realtime.old')::jsonb) AS %s",
                          qrel, alias);
        } else {
            sv_buf_printf(&stmt, " FROM (SELECT %s FROM %s WHERE ", t->select_sql, qrel);
            for (int k = 0; k < t->npk; k++) {
                json_object *v = NULL;
                json_object_object_get_ex(pk, t->pk_names[k], &v);
                char *text = sv_rt_json_text(rt, v);
                if (text == NULL) {
                    ok = 0;
                    break;
                }
                sv_buf_printf(&stmt, "%s%s = $%d", k ? " AND " : "", t->pk_idents[k], k + 1);
                args[nargs++] = sv_rt_db_literal(rt, text, strlen(text));
            }
            sv_buf_puts(&stmt, ") AS t");
        }
        for (int p = 0; p < g->npreds; p++)
            args[nargs++] = sv_rt_db_literal(rt, g->preds[p].value, strlen(g->preds[p].value));
        if (ok && (g->res_at = sv_rt_emit(rt, f, &body, stmt.data, args, nargs)) < 0)
            ok = 0;
    }
    sql = body;
    json_object_put(pk);
    if (!ok) {
        for (int i = 0; i < f->npreps; i++)
            f->preps[i]->state = 0;
        f->npreps = 0;
        sv_log_warn("rt_change", "table=%s msg=\"primary key missing from the notification\"", change->table);
        return -1;
    }
    job->sql = strdup(sql.data);
    return job->sql ? 0 : -1;
}

/* --- results ------------------------------------------------------------ */

static sv_rt_chan *sv_rt_entry_chan(sv_rt *rt, const sv_rt_entry *e)
{
    sv_rt_conn *c = sv_rt_conn_find(rt, e->conn_fd, e->conn_serial);
    if (c == NULL)
        return NULL;
    for (int i = 0; i < c->nchans; i++)
        if (c->chans[i]->serial == e->chan_serial)
            return c->chans[i];
    return NULL;
}

/* Scratch for one round trip's deliveries, reused from group to group. */
typedef struct sv_rt_bufs {
    sv_buf data;              /* the group's "data" object */
    sv_buf msg;               /* one channel's message */
} sv_rt_bufs;

static void sv_rt_buf_clear(sv_buf *b)
{
    b->len = 0;
    b->data[0] = '\0';
}

/* Sends the group's result to its channels. */
static void sv_rt_fanout_deliver(sv_rt *rt, const sv_rt_change *change, const sv_rt_group *g,
                                 const sv_rt_fanout *f, PGresult *r, sv_rt_bufs *bufs)
{
    if (PQntuples(r) != 1)
        return; /* not visible to this group (or gone since) */
    const char *first = PQgetvalue(r, 0, 0);
    if (change->ev == SV_RT_EV_DELETE && strcmp(first, "true") != 0)
        return;
    const sv_rt_tinfo *t = sv_rt_tinfo_find(rt, g->ident->role, change->schema, change->table);
    if (t == NULL)
        return;

    sv_buf *data = &bufs->data, *msg = &bufs->msg;
    sv_rt_buf_clear(data);
    sv_buf_printf(data, "{\"schema\":%s,\"table\":%s,\"commit_timestamp\":%s,\"type\":\"%s\",\"columns\":%s",
                  sv_rt_json_string(rt, change->schema), sv_rt_json_string(rt, change->table),
                  sv_rt_json_string(rt, change->ts), change->type, t->columns_json);
    if (change->ev != SV_RT_EV_DELETE) {
        sv_buf_puts(data, ",\"record\":");
        sv_buf_append(data, first, (size_t)PQgetlength(r, 0, 0));
    }
    if (change->ev == SV_RT_EV_UPDATE) {
        sv_buf_puts(data, ",\"old_record\":");
        sv_buf_puts(data, change->old_pk_json ? change->old_pk_json : change->pk_json);
    } else if (change->ev == SV_RT_EV_DELETE) {
        sv_buf_puts(data, ",\"old_record\":");
        sv_buf_puts(data, change->pk_json);
    }
    sv_buf_puts(data, ",\"errors\":null}");

    for (int i = g->first; i < g->first + g->n;) {
        /* One channel's entries are consecutive: one message each. */
        const sv_rt_entry *e = &f->entries[i];
        int j = i;
        sv_rt_chan *ch = sv_rt_entry_chan(rt, e);
        /* The channel must still be the one checked: same role and user. */
        int live = ch != NULL && ch->active &&
                   (ch->ident == g->ident ||
                    (strcmp(ch->ident->role, g->ident->role) == 0 && strcmp(ch->ident->sub, g->ident->sub) == 0));
        int nids = 0;
        if (live) {
            sv_rt_buf_clear(msg);
            sv_rt_phx_encode_head(msg, ch->conn->vsn, NULL, NULL, ch->topic_json, "postgres_changes");
        }
        for (; j < g->first + g->n && f->entries[j].conn_fd == e->conn_fd &&
               f->entries[j].chan_serial == e->chan_serial;
             j++) {
            const sv_rt_entry *x = &f->entries[j];
            if (!live || (x->pred >= 0 && strcmp(PQgetvalue(r, 0, 1 + x->pred), "true") != 0))
                continue;
            sv_buf_printf(msg, "%s%" PRIu32, nids++ ? "," : "{\"ids\":[", x->bind_id);
        }
        i = j;
        if (nids == 0)
            continue;
        sv_buf_puts(msg, "],\"data\":");
        sv_buf_append(msg, data->data, data->len);
        sv_buf_puts(msg, "}");
        sv_rt_phx_encode_tail(msg, ch->conn->vsn, NULL);
        if (sv_rt_conn_send(rt, ch->conn, msg->data, msg->len) == 0)
            rt->stats.delivered++;
    }
}

/* The filters' results: keeps the entries whose filter matched, drops the
 * groups left without any, and queues the RLS round trip for the rest
 * (the same job, first in line). On an error (service_role may not read
 * the table) every group is checked, filters included, as without it. */
static void sv_rt_fanout_prefiltered(sv_rt *rt, sv_rt_job *job, PGresult **res, int n)
{
    sv_rt_fanout *f = job->fanout;
    PGresult *r = n > 0 ? res[n - 1] : NULL;
    int ok = 1;
    for (int i = 0; i < n; i++)
        if (PQresultStatus(res[i]) != PGRES_TUPLES_OK)
            ok = 0;
    f->prefilter = 0;
    f->prefiltered = 1;
    if (ok && PQntuples(r) == 0) {
        sv_rt_fanout_release(rt, job); /* the row is gone: nothing to send */
        return;
    }
    if (ok && PQntuples(r) == 1 && PQnfields(r) == 1 + f->npf) {
        char *match = sv_arena_calloc(&rt->arena, (size_t)f->nfilters + 1);
        for (int k = 0; k < f->npf; k++) {
            const char *v = PQgetvalue(r, 0, 1 + k);
            if (f->pf[k].filter >= 0) {
                match[f->pf[k].filter] = strcmp(v, "true") == 0;
                continue;
            }
            /* "{2,7}": the positions of the values that matched. */
            for (const char *c = v; *c; c++) {
                if (*c < '0' || *c > '9')
                    continue;
                long o = strtol(c, (char **)&c, 10);
                if (o >= 1 && o <= f->pf[k].nmembers)
                    match[f->pf[k].members[o - 1]] = 1;
                c--;
            }
        }
        int kept = 0;
        for (int i = 0; i < f->nentries; i++) {
            const sv_rt_entry *e = &f->entries[i];
            if (e->filter < 0 || match[e->filter])
                f->entries[kept++] = *e;
        }
        f->nentries = kept;
        /* Groups again (entries are still sorted by group); those left
         * without entries go. */
        int ng = 0, i = 0;
        for (int g = 0; g < f->ngroups; g++) {
            int first = i;
            while (i < f->nentries && f->entries[i].group == g)
                f->entries[i++].group = ng;
            if (i == first) {
                sv_rt_ident_put(rt, f->groups[g].ident);
                for (int p = 0; p < f->groups[g].npreds; p++) {
                    free(f->groups[g].preds[p].column);
                    free(f->groups[g].preds[p].value);
                }
                free(f->groups[g].preds);
                continue;
            }
            f->groups[ng] = f->groups[g];
            f->groups[ng].first = first;
            f->groups[ng].n = i - first;
            ng++;
        }
        f->ngroups = ng;
        if (ng == 0) {
            sv_rt_fanout_release(rt, job);
            return;
        }
    } else if (!ok) {
        const char *msg = "?";
        for (int i = 0; i < n; i++)
            if (PQresultStatus(res[i]) == PGRES_FATAL_ERROR)
                msg = PQresultErrorField(res[i], PG_DIAG_MESSAGE_PRIMARY);
        char qmsg[256];
        sv_log_warn("rt_change", "table=%s error=%s msg=\"filters not evaluated ahead; every subscriber group is checked\"",
                    job->change->table, sv_log_quote(msg ? msg : "?", qmsg, sizeof(qmsg)));
    }
    for (int i = 0; i < job->nres; i++)
        PQclear(job->res[i]);
    job->nres = 0;
    sv_rt_db_submit(rt, job, 1);
}

void sv_rt_fanout_results(sv_rt *rt, sv_rt_job *job, PGresult **res, int n, const char *error)
{
    sv_rt_change *change = job->change;
    if (error != NULL) {
        rt->missed = 1;
        sv_rt_fanout_release(rt, job);
        return;
    }
    if (job->kind == SV_RT_JOB_FETCH) {
        if (n < 1 || PQresultStatus(res[0]) != PGRES_TUPLES_OK || PQntuples(res[0]) != 1) {
            sv_log_warn("rt_change", "ref=%" PRId64 " msg=\"change row not found\"", change->ref_id);
            sv_rt_fanout_release(rt, job);
            return;
        }
        PGresult *r = res[0];
        char *fields[7];
        for (int i = 0; i < 7; i++)
            fields[i] = PQgetisnull(r, 0, i) ? NULL : strdup(PQgetvalue(r, 0, i));
        change->schema = fields[0];
        change->table = fields[1];
        change->type = fields[2];
        change->pk_json = fields[3];
        change->old_pk_json = fields[4];
        change->old_json = fields[5];
        change->ts = fields[6];
        change->ev = change->type ? sv_rt_event_of(change->type) : 0;
        if (change->schema && change->table && change->type && change->pk_json && change->ts && change->ev) {
            change->refs++;
            sv_rt_fanout_submit(rt, change, 1); /* before later changes */
        }
        sv_rt_fanout_release(rt, job);
        return;
    }

    sv_rt_fanout *f = job->fanout;
    if (f->prefilter) {
        sv_rt_fanout_prefiltered(rt, job, res, n);
        return;
    }
    /* Which PREPAREs took (the others are made again next time). */
    for (int i = 0; i < f->npreps; i++) {
        int at = f->preps_at[i];
        f->preps[i]->state = at < n && PQresultStatus(res[at]) == PGRES_COMMAND_OK ? 1 : 0;
    }
    f->npreps = 0;
    if (f->old_at >= 0 && (f->old_at >= n || PQresultStatus(res[f->old_at]) != PGRES_TUPLES_OK)) {
        const char *msg = NULL;
        for (int i = 0; i < n && msg == NULL; i++)
            if (PQresultStatus(res[i]) == PGRES_FATAL_ERROR)
                msg = PQresultErrorField(res[i], PG_DIAG_MESSAGE_PRIMARY);
        sv_log_warn("rt_change", "table=%s error=\"%s\"", change->table, msg ? msg : "no result");
        sv_rt_fanout_release(rt, job);
        return;
    }
    sv_rt_bufs bufs;
    sv_buf_init(&bufs.data, &rt->arena, 4096);
    sv_buf_init(&bufs.msg, &rt->arena, 4096);
    int g = 0;
    for (; g < f->ngroups; g++) {
        int at = f->groups[g].res_at;
        if (at >= n || PQresultStatus(res[at]) != PGRES_TUPLES_OK)
            break;
        sv_rt_fanout_deliver(rt, change, &f->groups[g], f, res[at], &bufs);
    }
    if (g < f->ngroups) {
        /* Group g failed (its role, its claims or a policy raised): it is
         * skipped, and the groups after it, which the error kept from
         * running, go again in a round trip of their own. */
        const char *msg = "no result";
        for (int i = 0; i < n; i++)
            if (PQresultStatus(res[i]) == PGRES_FATAL_ERROR)
                msg = PQresultErrorField(res[i], PG_DIAG_MESSAGE_PRIMARY);
        char qmsg[256];
        sv_log_warn("rt_change", "table=%s role=%s error=%s msg=\"a subscriber group's check failed\"",
                    change->table, f->groups[g].ident->role, sv_log_quote(msg ? msg : "?", qmsg, sizeof(qmsg)));
        if (g + 1 < f->ngroups) {
            sv_rt_fanout *rest = calloc(1, sizeof(*rest));
            sv_rt_job *next = calloc(1, sizeof(*next));
            int first = f->groups[g + 1].first;
            int nent = f->nentries - first;
            if (rest != NULL && next != NULL &&
                (rest->groups = malloc(sizeof(sv_rt_group) * (size_t)(f->ngroups - g - 1))) != NULL &&
                (rest->entries = malloc(sizeof(sv_rt_entry) * (size_t)nent)) != NULL) {
                rest->ngroups = f->ngroups - g - 1;
                rest->nentries = nent;
                memcpy(rest->entries, f->entries + first, sizeof(sv_rt_entry) * (size_t)nent);
                for (int k = 0; k < rest->ngroups; k++) {
                    rest->groups[k] = f->groups[g + 1 + k];
                    rest->groups[k].first -= first;
                    /* Moved, not copied: the old fanout must not free them. */
                    f->groups[g + 1 + k].ident = NULL;
                    f->groups[g + 1 + k].preds = NULL;
                    f->groups[g + 1 + k].npreds = 0;
                }
                for (int k = 0; k < nent; k++)
                    rest->entries[k].group -= g + 1;
                f->ngroups = g + 1;
                next->kind = SV_RT_JOB_FANOUT;
                next->change = change;
                change->refs++;
                next->fanout = rest;
                sv_rt_fanout_release(rt, job);
                sv_rt_db_submit(rt, next, 1);
                return;
            }
            if (rest != NULL) {
                free(rest->groups);
                free(rest);
            }
            free(next);
        }
    }
    sv_rt_fanout_release(rt, job);
}
