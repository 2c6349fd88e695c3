/* /rest/v1: translate (sv_rest_translate.c), run the one
 * statement as the caller's role in one pipelined round trip, and map the
 * result row (total, page, body) to PostgREST's response.
 *
 * Choices where PostgREST offers no rule or where we differ on purpose:
 *   - DELETE on handle_content is a soft delete (UPDATE ... SET deleted_at
 *     = now() WHERE <filters> AND deleted_at IS NULL); clients have no
 *     DELETE privilege on content at all.
 *   - GET/HEAD on handle_content hide soft-deleted rows unless a filter
 *     (plain, or inside or=/and=) names deleted_at: owners still find them
 *     with deleted_at=not.is.null and restore them with PATCH
 *     {"deleted_at": null}. It also lets the partial indexes
 *     (WHERE deleted_at IS NULL) serve the default listing.
 *   - limit/offset/order on PATCH and DELETE are refused (400) instead of
 *     being silently ignored.
 *   - Prefer: count=planned and count=estimated are answered exactly.
 *   - POST to a STABLE or IMMUTABLE function runs read-write (PostgREST
 *     runs it read-only; the function cannot write either way). GET and
 *     HEAD run read-only, as in PostgREST.
 *   - The schema cache (sv_rest_schema.c) is loaded by each worker. */
#include "rest/sv_rest.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/sv_clock.h"
#include "core/sv_json.h"
#include "core/sv_log.h"
#include "db/sv_sqlstate.h"
#include "rest/sv_rest_query.h"

/* --- running a plan -------------------------------------------------------------- */

static void sv_rest_input_from(sv_request *req, sv_rest_input *in)
{
    memset(in, 0, sizeof(*in));
    in->method = req->method;
    in->query = req->query;
    in->prefer = sv_request_header(req, "Prefer");
    in->range = sv_request_header(req, "Range");
    in->accept = sv_request_header(req, "Accept");
    in->content_type = sv_request_header(req, "Content-Type");
    in->body = req->body;
    in->body_len = req->body_len;
}

static long long sv_rest_ll(PGresult *r, int col)
{
    return PQgetisnull(r, 0, col) ? -1 : strtoll(PQgetvalue(r, 0, col), NULL, 10);
}


static void sv_rest_clear_result(void *result)
{
    PQclear(result);
}

static int sv_rest_cancelled(const PGresult *r)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return PQresultStatus(r) == PGRES_FATAL_ERROR && state != NULL && strcmp(state, "57014") == 0;
}

/* A read with a text-search filter on a tsvector column (index_fallback
 * in sv_rest_query.h) has two plans worth trying: the planner's own,
 * which is by far the cheapest when its estimate holds (a common word
 * under a limit: the first rows a scan meets), and the GIN index's bitmap
 * of the rows holding the query's words (sequential and plain index
 * scans disabled), whose cost follows those words' postings and not the
 * table's size. Neither cost is known beforehand: the estimate is what
 * goes wrong. The planner's plan runs first, cancelled by
 * statement_timeout after text_filter_budget ms; most reads end there.
 * Past it, while the machine has a CPU to spare, both plans run at once,
 * the bitmap on the worker's second connection (sv_rest_race_text_read),
 * and the first to finish answers: the time is then about the budget
 * plus the cheaper plan's. Otherwise they take turns on the one
 * connection, the
 * budget doubling after every pair, the last turn getting what is left
 * of the statement timeout: the work is then within about 4 times the
 * cheaper plan's. Both plans return the same rows (the same statement,
 * all policies applied), so the answer never depends on which one
 * finished. Returns sv_db's convention, *r the result. */
typedef struct sv_rest_race {
    sv_db_wait_hook        hook;
    const sv_db_wait_hook *inner;        /* the worker's own, or NULL */
    sv_db                 *main, *other;
    int                    other_done;   /* its statement's end has been read */
    int                    other_rc;     /* then: sv_db_collect's return, */
    PGresult              *theirs;       /* and its result */
} sv_rest_race;

/* The main connection's wait hook during a race: the second connection's
 * socket first, then whatever the worker's own hook watches. */
static int sv_rest_race_watch(void *ctx, struct pollfd *fds, int max, int *timeout_ms)
{
    sv_rest_race *race = ctx;
    int n = 0;
    if (!race->other_done && sv_db_socket(race->other) < 0) {
        race->other_done = 1;           /* gone */
        race->other_rc = SV_ERROR;
    }
    if (!race->other_done)
        fds[n++] = (struct pollfd){ .fd = sv_db_socket(race->other), .events = POLLIN };
    if (race->inner != NULL)
        n += race->inner->watch(race->inner->ctx, fds + n, max - n, timeout_ms);
    return n;
}

/* The bitmap finished first: its result is taken, and the planner's
 * statement cancelled through the now idle second connection; its 57014
 * ends the main connection's wait. A second connection that failed
 * leaves the planner's to finish. */
static void sv_rest_race_ready(void *ctx, const struct pollfd *fds, int n)
{
    sv_rest_race *race = ctx;
    int own = 0;
    if (!race->other_done) {
        own = 1;
        int done = fds[0].revents != 0 ? sv_db_sent_done(race->other) : 0;
        if (done != 0) {
            race->other_done = 1;
            race->other_rc = sv_db_collect(race->other, &race->theirs);
            if (race->other_rc == SV_OK)
                sv_db_cancel(race->main, race->other);
        }
    }
    if (race->inner != NULL)
        race->inner->ready(race->inner->ctx, fds + own, n - own);
}

/* Racing spends a second CPU to save time: worth it only while one is
 * likely free. With as many workers serving requests as the machine has
 * CPUs the pool is saturated, and the plans take turns, which costs less
 * work (measured: 70 requests/s taking turns, 31 racing, when 32 clients
 * all send such a search on this 2-CPU VM). */
static int sv_rest_race_worth_it(const sv_ctx *ctx)
{
    static long cpus;
    if (cpus == 0) {
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
        if (cpus < 1)
            cpus = 1;
    }
    return ctx->sb != NULL && (long)sv_scoreboard_busy(ctx->sb) < cpus;
}

/* Runs the planner's plan on the worker's connection and the bitmap on
 * its second one, both within limit ms. SV_RETRY: no race (switched off,
 * the machine busy, the second connection not there), nothing was run.
 * *winner says which plan answered. */
#define SV_RETRY (-2)
static int sv_rest_race_text_read(sv_ctx *ctx, const sv_rest_plan *plan, long limit,
                                  PGresult **r, const char **winner)
{
    sv_db *other = ctx->race_db;
    if (other == NULL || !ctx->cfg->text_filter_race || !sv_rest_race_worth_it(ctx) ||
        sv_db_send_as_within(other, ctx->caller.role, ctx->caller.claims, SV_DB_BITMAP_ONLY, limit,
                             plan->sql, plan->nparams, plan->params) != SV_OK)
        return SV_RETRY;
    sv_rest_race race = { .inner = ctx->db->wait_hook, .main = ctx->db, .other = other };
    race.hook = (sv_db_wait_hook){ sv_rest_race_watch, sv_rest_race_ready, &race,
                                   race.inner != NULL ? race.inner->sigmask : NULL };
    sv_db_set_wait_hook(ctx->db, &race.hook);
    int rc = sv_db_query_as_within(ctx->db, ctx->caller.role, ctx->caller.claims, 0, limit,
                                   plan->sql, plan->nparams, plan->params, r);
    sv_db_set_wait_hook(ctx->db, race.inner);

    if (rc == SV_OK && !sv_rest_cancelled(*r)) {
        /* The planner's plan answered (or failed on its own: that error
         * stands); the bitmap's statement is stopped and its end read. */
        if (!race.other_done) {
            if (sv_db_sent_done(other) == 0)
                sv_db_cancel(other, ctx->db);
            race.other_rc = sv_db_collect(other, &race.theirs);
        }
        PQclear(race.theirs);
        *winner = "planner";
        return rc;
    }
    if (!race.other_done)
        race.other_rc = sv_db_collect(other, &race.theirs);
    if (race.other_rc != SV_OK)
        return rc;                      /* the second connection failed: the first's outcome */
    if (rc == SV_OK)
        PQclear(*r);
    *r = race.theirs;
    *winner = sv_rest_cancelled(race.theirs) ? "none" : "index";
    return SV_OK;
}

/* Which plan answered a text-search read that outran its budget,
 * remembered by each worker for a minute: the same search again (the
 * same statement, values, role and user) starts with the plan that won
 * instead of spending the budget on the one that lost. Searches repeat (a
 * popular term, a page reloaded, the next page), and a term whose
 * estimate failed once fails every time. The key holds the caller's
 * user id too: a faster answer must not tell one user that another
 * searched for the same thing (anonymous callers, who have no id, share
 * theirs, and only learn that someone sent the same public search).
 * A hint only changes the order:
 * when the first plan runs out of budget the other still gets its turns,
 * so a stale or colliding hint costs at most one budget and never changes
 * an answer (both plans return the same rows). */
#define SV_REST_HINTS 64
#define SV_REST_HINT_MS 60000
static struct {
    uint64_t key;
    int64_t  until_ms;
} sv_rest_hints[SV_REST_HINTS];

static void sv_rest_hint_mix(uint64_t *h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s;; p++) {
        *h = (*h ^ *p) * 1099511628211ULL;     /* FNV-1a, the NUL included */
        if (*p == '\0')
            break;
    }
}

static uint64_t sv_rest_hint_key(const sv_ctx *ctx, const sv_rest_plan *plan)
{
    uint64_t h = 1469598103934665603ULL;
    sv_rest_hint_mix(&h, ctx->caller.role ? ctx->caller.role : "");
    sv_rest_hint_mix(&h, ctx->caller.user_id ? ctx->caller.user_id : "");
    sv_rest_hint_mix(&h, plan->sql);
    for (int i = 0; i < plan->nparams; i++)
        sv_rest_hint_mix(&h, plan->params[i] ? plan->params[i] : "\x01null");
    return h | 1;                               /* 0 marks a free slot */
}

static int sv_rest_hint_index_first(uint64_t key, int64_t now)
{
    size_t slot = key % SV_REST_HINTS;
    return sv_rest_hints[slot].key == key && sv_rest_hints[slot].until_ms > now;
}

static void sv_rest_hint_set(uint64_t key, int index_won, int64_t now)
{
    size_t slot = key % SV_REST_HINTS;
    if (index_won) {
        sv_rest_hints[slot].key = key;
        sv_rest_hints[slot].until_ms = now + SV_REST_HINT_MS;
    } else if (sv_rest_hints[slot].key == key) {
        sv_rest_hints[slot].key = 0;
    }
}

static int sv_rest_run_text_read(sv_ctx *ctx, const sv_rest_plan *plan, PGresult **r)
{
    long budget = ctx->cfg->text_filter_budget;
    long full = strtol(ctx->db->statement_timeout, NULL, 10);
    if (budget <= 0 || (full > 0 && budget >= full))
        return sv_db_query_as(ctx->db, ctx->caller.role, ctx->caller.claims, plan->sql,
                              plan->nparams, plan->params, r);
    int64_t started = sv_clock_mono_ms();
    uint64_t key = sv_rest_hint_key(ctx, plan);
    /* 1: the bitmap runs first (turn parity shifted by one) */
    int index_first = sv_rest_hint_index_first(key, started);
    const char *winner = NULL, *mode = "turns";
    int rc, turn = 0;
    for (;;) {
        long limit = budget, left = 0;
        if (full > 0) {
            left = full - (long)(sv_clock_mono_ms() - started);
            if (left < 1)
                left = 1;
            if (limit >= left)
                limit = left;
        }
        if (turn == 1) {
            rc = sv_rest_race_text_read(ctx, plan, left, r, &winner);
            if (rc != SV_RETRY) {
                mode = "race";
                turn = 3;                /* the first turn, then both at once */
                break;
            }
        }
        unsigned flags = (turn + index_first) % 2 ? SV_DB_BITMAP_ONLY : 0;
        rc = sv_db_query_as_within(ctx->db, ctx->caller.role, ctx->caller.claims, flags, limit,
                                   plan->sql, plan->nparams, plan->params, r);
        turn++;
        int out_of_time = full > 0 && sv_clock_mono_ms() - started >= full;
        if (rc != SV_OK || !sv_rest_cancelled(*r) || out_of_time)
            break;
        PQclear(*r);
        *r = NULL;
        if (turn % 2 == 0)
            budget *= 2;
    }
    if (winner == NULL)
        winner = rc != SV_OK || sv_rest_cancelled(*r) ? "none"
                 : (turn + index_first) % 2 ? "planner" : "index";
    if ((turn > 1 || index_first) && strcmp(winner, "none") != 0)
        sv_rest_hint_set(key, strcmp(winner, "index") == 0, sv_clock_mono_ms());
    /* mode=hint: the bitmap, run first on a hint, answered within the
     * budget; a hinted read that needed more says hint=index. */
    if (turn > 1 || index_first)
        sv_log_info("text_filter_fallback", "mode=%s runs=%d answered_by=%s ms=%lld request_id=%s%s",
                    turn > 1 ? mode : "hint", turn, winner, (long long)(sv_clock_mono_ms() - started),
                    ctx->req->request_id, index_first ? " hint=index" : "");
    return rc;
}

/* Runs the plan's statement as the caller and maps its one result row
 * (total, page, body) to PostgREST's response. */
static int sv_rest_execute(sv_ctx *ctx, const sv_rest_plan *plan)
{
    sv_request *req = ctx->req;
    sv_response *res = ctx->res;
    PGresult *r = NULL;
    int rc;
    /* A read-only call (GET/HEAD rpc) keeps the prepared path, which sets
     * transaction_read_only in the same round trip, even when a text
     * filter would rather have its own plan. */
    if (plan->custom_plan && !plan->read_only && plan->is_read && plan->index_fallback)
        rc = sv_rest_run_text_read(ctx, plan, &r);
    else if (plan->custom_plan && !plan->read_only)
        rc = sv_db_query_as(ctx->db, ctx->caller.role, ctx->caller.claims, plan->sql,
                            plan->nparams, plan->params, &r);
    else
        rc = sv_stmt_run(&ctx->rest_cache->stmts, ctx->db, ctx->caller.role, ctx->caller.claims,
                         plan->read_only ? SV_DB_READ_ONLY : 0, plan->sql, plan->nparams,
                         plan->params, &r);
    if (rc != SV_OK)
        return sv_db_unavailable(ctx->db, ctx->cfg->retry_after, &ctx->err);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        sv_sqlstate_postgrest(ctx->arena, r, sv_ctx_is_anon(ctx), req->request_id, &ctx->err);
        PQclear(r);
        return SV_ERROR;
    }
    if (PQntuples(r) != 1 || PQnfields(r) != 3) {
        PQclear(r);
        return sv_fail(&ctx->err, 500, "SV500", "unexpected result shape");
    }
    long long total = sv_rest_ll(r, 0), page = sv_rest_ll(r, 1);
    int status = plan->status;

    if (plan->is_read) {
        if (plan->single && page != 1) {
            PQclear(r);
            return sv_fail_details(&ctx->err, 406, "PGRST116",
                                   "JSON object requested, multiple (or no) rows returned",
                                   sv_arena_printf(req->arena, "The result contains %lld rows", page),
                                   NULL);
        }
        if (total >= 0 && plan->offset > 0 && plan->offset >= total && page == 0) {
            sv_response_header(res, "Content-Range", sv_arena_printf(req->arena, "*/%lld", total));
            PQclear(r);
            return sv_fail_details(&ctx->err, 416, "PGRST103", "Requested range not satisfiable",
                                   sv_arena_printf(req->arena,
                                                   "An offset of %lld was requested, but there are only %lld rows.",
                                                   plan->offset, total),
                                   NULL);
        }
        char totals[32];
        if (total >= 0)
            snprintf(totals, sizeof(totals), "%lld", total);
        else
            snprintf(totals, sizeof(totals), "*");
        sv_response_header(res, "Content-Range",
                           page > 0 ? sv_arena_printf(req->arena, "%lld-%lld/%s", plan->offset,
                                                      plan->offset + page - 1, totals)
                                    : sv_arena_printf(req->arena, "*/%s", totals));
        if (total >= 0 && page < total && !plan->single)
            status = 206;
    } else if (page >= 0) {
        /* writes: how many rows the statement touched, as PostgREST
         * says it: "0-(N-1)" for an update (and rpc rows), "*" for an
         * insert or a delete; "/N" only with count=exact */
        const char *tot = plan->count ? sv_arena_printf(req->arena, "%lld", page) : "*";
        sv_response_header(res, "Content-Range",
                           page > 0 && !plan->range_star
                               ? sv_arena_printf(req->arena, "0-%lld/%s", page - 1, tot)
                               : sv_arena_printf(req->arena, "*/%s", tot));
        /* a merge upsert that inserted nothing only updated: 200 */
        if (plan->resolution == 1 && total <= 0)
            status = 200;
    } else if (plan->range_star) {
        /* an insert or delete that did not count its rows */
        sv_response_header(res, "Content-Range", "*/*");
    }
    /* Preference-Applied: what PostgREST reports back of the Prefer header */
    sv_buf pa;
    sv_buf_init(&pa, req->arena, 96);
    if (plan->resolution)
        sv_buf_puts(&pa, plan->resolution == 1 ? "resolution=merge-duplicates" : "resolution=ignore-duplicates");
    if (plan->return_mode == SV_REST_RETURN_REPRESENTATION)
        sv_buf_printf(&pa, "%sreturn=representation", pa.len ? ", " : "");
    if (plan->count)
        sv_buf_printf(&pa, "%scount=exact", pa.len ? ", " : "");
    if (pa.len)
        sv_response_header(res, "Preference-Applied", pa.data);
    /* HEAD answers with GET's headers, the negotiated type included. */
    const char *content_type = sv_rest_media_content_type(plan->media);
    if (content_type != NULL && (plan->has_body || req->method == SV_HTTP_HEAD))
        sv_response_header(res, "Content-Type", content_type);
    res->status = status;
    res->body.len = 0;
    if (plan->has_body && !PQgetisnull(r, 0, 2)) {
        sv_response_body_ext(res, PQgetvalue(r, 0, 2), (size_t)PQgetlength(r, 0, 2),
                             sv_rest_clear_result, r);
        return SV_OK;
    }
    if (plan->has_body && plan->single)
        sv_buf_puts(&res->body, "null");
    PQclear(r);
    return SV_OK;
}


/* --- handlers -------------------------------------------------------------------- */

int sv_rest_profile(sv_ctx *ctx, int vault)
{
    int write = ctx->req->method & (SV_HTTP_POST | SV_HTTP_PATCH | SV_HTTP_PUT | SV_HTTP_DELETE);
    const char *p = sv_request_header(ctx->req, write ? "Content-Profile" : "Accept-Profile");
    if (p == NULL)
        return SV_OK;
    if (strcmp(p, "public") != 0 && !(vault && strcmp(p, "vault") == 0))
        return sv_fail(&ctx->err, 406, "PGRST106", "The schema must be one of the following: public");
    /* PostgREST names the schema it used when the client chose one */
    sv_response_header(ctx->res, "Content-Profile", p);
    return SV_OK;
}

/* PostgREST's content negotiation (sv_rest_negotiate), for what this
 * server produces: JSON, with nulls stripped or not, as an array or as
 * .single()'s object. Anything else a client asks for (text/csv from
 * .csv(), a plan from .explain(), application/geo+json) is PostgREST's
 * 406 PGRST107 naming the types asked for, rather than JSON it did not
 * ask for. The names are the client's own bytes, made valid UTF-8 and
 * cut at a character, so that the error is valid JSON text. */
static int sv_rest_accept(sv_ctx *ctx)
{
    const char *accept = sv_request_header(ctx->req, "Accept");
    if (sv_rest_negotiate(accept) != SV_REST_MEDIA_NONE)
        return SV_OK;
    sv_buf asked;
    sv_buf_init(&asked, ctx->arena, 64);
    for (const char *item = accept; *item != '\0';) {
        size_t len = strcspn(item, ",");
        const char *type = item + strspn(item, " \t");
        size_t tlen = len - (size_t)(type - item);
        while (tlen > 0 && (type[tlen - 1] == ' ' || type[tlen - 1] == '\t'))
            tlen--;
        if (tlen > 0)
            sv_buf_printf(&asked, "%s%.*s", asked.len > 0 ? ", " : "", (int)tlen, type);
        item += len + (item[len] == ',');
    }
    sv_buf message;
    sv_buf_init(&message, ctx->arena, 64 + asked.len);
    sv_buf_puts(&message, "None of these media types are available: ");
    sv_json_buf_utf8(&message, asked.data, asked.len, 200);
    return sv_fail(&ctx->err, 406, "PGRST107", message.data);
}

void sv_rest_cache_init(sv_rest_cache *cache)
{
    sv_rest_schema_init(&cache->schema);
    sv_stmt_cache_init(&cache->stmts);
}

void sv_rest_cache_free(sv_rest_cache *cache)
{
    sv_rest_schema_free(&cache->schema);
    sv_stmt_cache_free(&cache->stmts);
}

int sv_rest_schema_ready(sv_ctx *ctx)
{
    return sv_rest_schema_load(&ctx->rest_cache->schema, ctx->db, ctx->arena, ctx->cfg->retry_after,
                               ctx->req->request_id, &ctx->err);
}

/* Both kinds of /rest/v1 request: the named table or function must be in
 * the schema cache; its plan then runs as the caller. */
static int sv_rest_serve(sv_ctx *ctx, int rpc)
{
    const char *name = ctx->req->path + strlen(rpc ? "/rest/v1/rpc/" : "/rest/v1/");
    const sv_rest_schema *schema = &ctx->rest_cache->schema;
    sv_rest_input in;
    sv_rest_plan plan;
    int rc;

    if (sv_rest_profile(ctx, 0) != SV_OK || sv_rest_accept(ctx) != SV_OK || sv_rest_schema_ready(ctx) != SV_OK)
        return SV_ERROR;
    sv_rest_input_from(ctx->req, &in);
    if (rpc) {
        const sv_rest_function_def *f = sv_rest_schema_function(schema, name);
        if (f == NULL)
            return sv_rest_rpc_not_found(ctx->arena, name, &in, &ctx->err);
        rc = sv_rest_translate_rpc(ctx->arena, f, &in, &plan, &ctx->err);
    } else {
        const sv_rest_table_def *t = sv_rest_schema_table(schema, name);
        if (t == NULL)
            return sv_fail(&ctx->err, 404, "PGRST205",
                           sv_arena_printf(ctx->arena,
                                           "Could not find the table 'public.%.100s' in the schema cache",
                                           name));
        rc = sv_rest_translate(ctx->arena, t, &in, &plan, &ctx->err);
    }
    return rc == SV_OK ? sv_rest_execute(ctx, &plan) : SV_ERROR;
}

int sv_rest_table(sv_ctx *ctx)
{
    return sv_rest_serve(ctx, 0);
}

int sv_rest_rpc(sv_ctx *ctx)
{
    return sv_rest_serve(ctx, 1);
}
