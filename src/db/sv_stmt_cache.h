/* Prepared statements by their text. The REST translator emits the same
 * SQL for every request of one shape (values are parameters), so a
 * worker prepares the first SV_STMT_CACHE_SIZE shapes it meets on its
 * connection and reuses them: parse and analysis happen once, and
 * PostgreSQL's plan cache applies. Beyond that many shapes, statements
 * run unnamed. The texts live in malloc'd memory for the worker's life,
 * which max_requests bounds. */
#ifndef SV_STMT_CACHE_H
#define SV_STMT_CACHE_H

#include <stddef.h>

#include <libpq-fe.h>

#include "db/sv_db.h"

#define SV_STMT_CACHE_SIZE 128

typedef struct sv_stmt {
    char         *sql;
    size_t        len;
    unsigned long hash;
    unsigned long prepared_gen;   /* sv_db generation it was prepared on */
} sv_stmt;

typedef struct sv_stmt_cache {
    sv_stmt entries[SV_STMT_CACHE_SIZE];
    int     n;
} sv_stmt_cache;

void sv_stmt_cache_init(sv_stmt_cache *cache);
void sv_stmt_cache_free(sv_stmt_cache *cache);

/* Runs sql as role with claims (sv_db_query_as) and flags (SV_DB_*), as a
 * prepared statement when the cache has or can make room for it. Same
 * return convention as sv_db_query_as. */
int sv_stmt_run(sv_stmt_cache *cache, sv_db *db, const char *role, const char *claims,
                unsigned flags, const char *sql, int nparams, const char *const *params,
                PGresult **result);

#endif
