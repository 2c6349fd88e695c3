/* The PostgREST query-language translator: a request (method, query
 * string, a few headers, body) against one exposed table or function, in;
 * one SQL statement with text parameters ($1..$n), out. Pure: no libpq, no
 * database, no globals, so it is unit-tested and fuzzed on its own
 * (t/unit/test_rest_query.c).
 *
 * Safety rules the translator guarantees:
 *   - identifiers in the SQL are only names from the table's column list
 *     (loaded from pg_catalog by the caller), always double-quoted;
 *   - every value from the request is a bound parameter, never SQL text;
 *   - the only literals it prints are integers it parsed itself
 *     (limit/offset) and type names from a fixed cast whitelist.
 *
 * Every statement returns exactly one row of three columns:
 *   total bigint  (reads: the count for Prefer: count=exact, else NULL;
 *                  a merge-duplicates upsert: the rows it inserted)
 *   page  bigint  (rows returned / affected, NULL for scalar rpc results)
 *   body  text    (the JSON response body, NULL when none is wanted) */
#ifndef SV_REST_QUERY_H
#define SV_REST_QUERY_H

#include <stddef.h>

#include "core/sv_arena.h"
#include "core/sv_err.h"

enum {
    SV_REST_COL_PK = 1 << 0,          /* part of the primary key */
    SV_REST_COL_GENERATED = 1 << 1,   /* GENERATED ALWAYS ... STORED */
    SV_REST_COL_NOT_NULL = 1 << 2,
    SV_REST_COL_DEFAULT = 1 << 3,     /* has a column default */
};

typedef struct sv_rest_column {
    const char *name;
    const char *type;     /* as PostgreSQL prints it: "uuid", "text[]", "visibility" */
    unsigned    flags;
    const char *default_expr;  /* pg_get_expr of the column default (trusted catalog SQL) or NULL;
                                  used for Prefer: missing=default */
} sv_rest_column;

enum {
    /* DELETE becomes UPDATE ... SET deleted_at = now(); GET hides rows with
     * deleted_at set unless a filter names deleted_at. */
    SV_REST_TABLE_SOFT_DELETE = 1 << 0,
    SV_REST_TABLE_VIEW = 1 << 1,
};

typedef struct sv_rest_table_def {
    const char           *name;      /* in schema public */
    const sv_rest_column *cols;
    int                   ncols;
    unsigned              flags;
} sv_rest_table_def;

typedef struct sv_rest_function_def {
    const char  *name;               /* in schema public */
    const char **arg_names;
    const char **arg_types;
    int          nargs;
    int          ndefaults;          /* the last ndefaults args are optional */
    int          returns_set;
    const char  *return_type;
} sv_rest_function_def;

typedef struct sv_rest_input {
    int         method;              /* SV_HTTP_* bit */
    const char *query;               /* raw (still percent-encoded) query string */
    const char *prefer;              /* Prefer header or NULL */
    const char *range;               /* Range header or NULL */
    const char *accept;              /* Accept header or NULL */
    const char *content_type;        /* Content-Type header or NULL */
    const char *body;                /* request body or NULL */
    size_t      body_len;
} sv_rest_input;

/* What content negotiation picked from the Accept header: the media
 * types PostgREST's MediaType.hs decodes, of those this server makes. */
typedef enum sv_rest_media {
    SV_REST_MEDIA_NONE = 0,          /* nothing it makes: 406 PGRST107 */
    SV_REST_MEDIA_JSON,              /* application/json, application/vnd.pgrst.array+json,
                                        the wildcards, no Accept at all */
    SV_REST_MEDIA_JSON_STRIPPED,     /* application/vnd.pgrst.array+json;nulls=stripped */
    SV_REST_MEDIA_OBJECT,            /* application/vnd.pgrst.object+json: .single() */
    SV_REST_MEDIA_OBJECT_STRIPPED,   /* application/vnd.pgrst.object+json;nulls=stripped */
} sv_rest_media;

/* PostgREST's content negotiation over an Accept header (NULL: none):
 * the media ranges are ranked by q, highest first, then by how specific
 * they are (parameters count up, '*' down), then by their order, and
 * the first one this server makes wins. As in PostgREST (wai-extra's
 * parseHttpAccept), q only ranks: q=0 does not refuse a type. Spaces
 * and tabs inside a range are ignored, the type is compared without
 * regard to case, and nulls=stripped counts only as the one parameter
 * besides q (PostgREST's checkArrayNullStrip). Unlike PostgREST, the
 * wildcard for any application type is taken for JSON too. */
sv_rest_media sv_rest_negotiate(const char *accept);

/* The Content-Type PostgREST answers with for media (toContentType), or
 * NULL for plain JSON, every response's default. */
const char *sv_rest_media_content_type(sv_rest_media media);

enum { SV_REST_RETURN_MINIMAL = 0, SV_REST_RETURN_HEADERS = 1, SV_REST_RETURN_REPRESENTATION = 2 };

typedef struct sv_rest_plan {
    const char  *sql;
    const char **params;
    int          nparams;
    int          status;             /* HTTP status on success */
    int          single;             /* Accept: application/vnd.pgrst.object+json */
    int          strip_nulls;        /* ...;nulls=stripped: the body through json_strip_nulls */
    sv_rest_media media;             /* negotiated: its Content-Type when there is a body */
    int          count;              /* Prefer: count=exact (or planned/estimated) */
    int          return_mode;        /* SV_REST_RETURN_* (writes) */
    int          has_body;           /* the body column carries the answer */
    int          is_read;            /* GET/HEAD: Content-Range describes a page */
    int          resolution;         /* upsert: 1 merge-duplicates, 2 ignore-duplicates;
                                        with 1, total is the rows inserted (0: answer 200) */
    int          read_only;          /* run in a read-only transaction (GET/HEAD rpc) */
    int          range_star;         /* insert, delete: Content-Range is "*" + "/total",
                                        PostgREST's contentRangeH 1 0 */
    long long    offset;             /* first row of the page (reads) */
    /* A text-search filter: run unnamed, so that PostgreSQL plans the
     * statement for the search term at hand. A prepared statement may
     * settle on a generic plan, which cannot see the term's frequency and
     * reads every posting of a common word from the GIN index where a
     * scan would stop after `limit` matches (4 ms instead of 0.3 ms at
     * 200,000 rows, growing with the table; bench/README.md). */
    int          custom_plan;
    /* A text-search filter on a tsvector column (one a GIN index can
     * answer). The planner estimates a query's matches from each word's
     * frequency, and for a common word under `limit` prefers a scan that
     * stops after the first matches. When the matches are few, or lie
     * where the scan reaches them last ('tips & !tips', a word common
     * only in rows the caller may not see or only in old rows), that scan
     * reads the whole table. A read with this flag therefore runs first
     * within text_filter_budget ms, and past it also on bitmap plans,
     * whose cost follows the postings of the query's words and not the
     * table's size, the first to finish answering (sv_rest.c). */
    int          index_fallback;
} sv_rest_plan;

enum { SV_REST_MAX_FILTERS = 256, SV_REST_MAX_DEPTH = 8 };

/* Translates a request on table t. Returns SV_OK (0) with *plan filled or
 * SV_ERROR (-1) with *err filled. All memory comes from arena. */
int sv_rest_translate(sv_arena *arena, const sv_rest_table_def *t, const sv_rest_input *in,
                      sv_rest_plan *plan, sv_error *err);

/* Translates /rest/v1/rpc/<f>: named arguments from a POST body (JSON
 * object) or from the query string of a GET. Same conventions. */
int sv_rest_translate_rpc(sv_arena *arena, const sv_rest_function_def *f,
                          const sv_rest_input *in, sv_rest_plan *plan, sv_error *err);

/* PGRST202 (404) for /rest/v1/rpc/<name> when no function of that name
 * is exposed, worded as PostgREST's: every argument the request sends
 * (POST body keys or GET query names), sorted. Fills *err, returns
 * SV_ERROR. */
int sv_rest_rpc_not_found(sv_arena *arena, const char *name, const sv_rest_input *in,
                          sv_error *err);

/* Appends name as a double-quoted SQL identifier. */
void sv_rest_quote_ident(sv_buf *buf, const char *name);

#endif
