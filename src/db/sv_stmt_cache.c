#include "db/sv_stmt_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sv_stmt_cache_init(sv_stmt_cache *cache)
{
    memset(cache, 0, sizeof(*cache));
}

void sv_stmt_cache_free(sv_stmt_cache *cache)
{
    for (int i = 0; i < cache->n; i++)
        free(cache->entries[i].sql);
    sv_stmt_cache_init(cache);
}

static unsigned long sv_stmt_hash(const char *s, size_t len)
{
    unsigned long h = 1469598103934665603UL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211UL;
    return h;
}

/* The cache slot for sql, adding it when there is room; -1 when full. */
static int sv_stmt_slot(sv_stmt_cache *cache, const char *sql)
{
    size_t len = strlen(sql);
    unsigned long h = sv_stmt_hash(sql, len);
    for (int i = 0; i < cache->n; i++)
        if (cache->entries[i].hash == h && cache->entries[i].len == len &&
            memcmp(cache->entries[i].sql, sql, len) == 0)
            return i;
    if (cache->n == SV_STMT_CACHE_SIZE)
        return -1;
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, sql, len + 1);
    cache->entries[cache->n] = (sv_stmt){ copy, len, h, 0 };
    return cache->n++;
}

int sv_stmt_run(sv_stmt_cache *cache, sv_db *db, const char *role, const char *claims,
                unsigned flags, const char *sql, int nparams, const char *const *params,
                PGresult **result)
{
    int slot = sv_stmt_slot(cache, sql);
    if (slot < 0)
        return sv_db_query_as_prepared(db, role, claims, flags, NULL, sql, nparams, params, NULL,
                                       result);

    sv_stmt *stmt = &cache->entries[slot];
    char name[32];
    snprintf(name, sizeof(name), "sv_rest_%d", slot);
    for (int attempt = 0;; attempt++) {
        int rc = sv_db_query_as_prepared(db, role, claims, flags, name, sql, nparams, params,
                                         &stmt->prepared_gen, result);
        if (rc != SV_OK || attempt > 0 || PQresultStatus(*result) != PGRES_FATAL_ERROR)
            return rc;
        /* Our bookkeeping and the server disagree (a DISCARD, a pooler):
         * resynchronise once. */
        const char *state = PQresultErrorField(*result, PG_DIAG_SQLSTATE);
        if (state == NULL)
            return rc;
        if (strcmp(state, "26000") == 0)          /* invalid_sql_statement_name */
            stmt->prepared_gen = 0;
        else if (strcmp(state, "42P05") == 0)     /* duplicate_prepared_statement */
            stmt->prepared_gen = db->generation;
        else
            return rc;
        PQclear(*result);
        *result = NULL;
    }
}
