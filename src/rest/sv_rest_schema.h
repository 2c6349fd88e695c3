/* The schema cache: the exposed tables' columns and the exposed
 * functions' signatures, read from pg_catalog by the first request a
 * worker serves, and again by the first after a schema change was
 * announced on the database connection (PostgREST's NOTIFY pgrst, 'reload
 * schema', which streamvibe-admin migrate sends) or the connection was
 * replaced, which may have missed one. Only names listed here are ever
 * reachable through /rest/v1. */
#ifndef SV_REST_SCHEMA_H
#define SV_REST_SCHEMA_H

#include "core/sv_arena.h"
#include "core/sv_err.h"
#include "db/sv_db.h"
#include "rest/sv_rest_query.h"

#define SV_REST_MAX_TABLES 16
#define SV_REST_MAX_FUNCTIONS 16

typedef struct sv_rest_schema {
    int                  loaded;
    unsigned long        db_generation;  /* the connection it was loaded on */
    unsigned long        db_notified;    /* reload messages seen by then */
    sv_arena             arena;
    sv_rest_table_def    tables[SV_REST_MAX_TABLES];
    int                  ntables;
    sv_rest_function_def functions[SV_REST_MAX_FUNCTIONS];
    int                  nfunctions;
} sv_rest_schema;

void sv_rest_schema_init(sv_rest_schema *s);
void sv_rest_schema_free(sv_rest_schema *s);

/* Makes sure s matches the database behind db, loading it when it was
 * never loaded or a change was announced since. scratch holds the
 * request's temporary strings. SV_OK, or SV_ERROR with err filled (the
 * database unavailable, or the catalog query failing). */
int sv_rest_schema_load(sv_rest_schema *s, sv_db *db, sv_arena *scratch, int retry_after,
                        const char *request_id, sv_error *err);

const sv_rest_table_def *sv_rest_schema_table(const sv_rest_schema *s, const char *name);
const sv_rest_function_def *sv_rest_schema_function(const sv_rest_schema *s, const char *name);

#endif
