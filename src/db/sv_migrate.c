/* Schema migrations (see sv_migrate.h).
 *
 * Each pending file runs as
 *     BEGIN; <settings>; pg_advisory_xact_lock; <re-check>; <file>;
 *     INSERT INTO schema_migrations; COMMIT
 * so the file and its bookkeeping row commit or vanish together. The file
 * is sent as one simple-protocol query string, which lets it hold any
 * number of statements and dollar-quoted function bodies without this code
 * having to split SQL. */
#include "db/sv_migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "core/sv_clock.h"
#include "core/sv_err.h"

/* "SVMIGRAT" as a big-endian int64: an arbitrary key unlikely to collide
 * with another application's advisory locks in the same database. */
#define SV_MIGRATE_LOCK_SQL "SELECT pg_catalog.pg_advisory_xact_lock(6005072130269659476)"

#define SV_MIGRATE_TABLE_SQL \
    "CREATE TABLE IF NOT EXISTS public.schema_migrations (" \
    " version text PRIMARY KEY," \
    " applied_at timestamptz NOT NULL DEFAULT now()," \
    " checksum text)"

/* Timestamps print in UTC so the output does not depend on the server's
 * TimeZone setting. */
#define SV_MIGRATE_SELECT_SQL \
    "SELECT version, checksum," \
    " to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')" \
    " FROM public.schema_migrations ORDER BY version COLLATE \"C\""

/* Largest migration file we accept; far above anything hand-written, it
 * only guards against pointing --sql-dir at the wrong directory. */
#define SV_MIGRATE_MAX_FILE (64u * 1024u * 1024u)

/* Hex BLAKE2b-256 plus NUL. */
#define SV_MIGRATE_CHECKSUM_LEN (crypto_generichash_BYTES * 2 + 1)

typedef struct sv_mig_file {
    char  *name;                               /* "001_roles_auth.sql" */
    char  *sql;                                /* file contents, NUL-terminated */
    char   checksum[SV_MIGRATE_CHECKSUM_LEN];
} sv_mig_file;

typedef struct sv_mig_applied {
    char *version;
    char *checksum;                            /* may be NULL for hand-made rows */
    char *applied_at;
    int   seen;                                /* matched by a file in sql_dir */
} sv_mig_applied;

typedef struct sv_mig_state {
    sv_mig_file    *files;
    size_t          nfiles;
    sv_mig_applied *applied;
    size_t          napplied;
} sv_mig_state;

static void sv_mig_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sv_mig_append_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats a message into err (truncating); a NULL/empty err is allowed. */
static void sv_mig_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Appends to the message already in err, truncating at errlen. */
static void sv_mig_append_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    size_t used;

    if (err == NULL || errlen == 0)
        return;
    used = strnlen(err, errlen);
    if (used + 1 >= errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err + used, errlen - used, fmt, ap);
    va_end(ap);
}

/* Puts "<what>: <libpq's connection error>" into err, without the trailing
 * newline libpq appends. */
static void sv_mig_conn_err(PGconn *conn, const char *what, char *err, size_t errlen)
{
    const char *msg = PQerrorMessage(conn);
    size_t n = strlen(msg);

    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    sv_mig_set_err(err, errlen, "%s: %.*s", what, (int)n, msg);
}

/* 1-based line of the 1-based character position pos in sql. The server
 * counts characters, not bytes; our files are UTF-8, so continuation bytes
 * (10xxxxxx) do not start a character. Returns 0 when pos is out of range. */
static int sv_mig_line_of(const char *sql, long pos)
{
    long chars = 0;
    int line = 1;
    const unsigned char *p;

    if (pos <= 0)
        return 0;
    for (p = (const unsigned char *)sql; *p; p++) {
        if ((*p & 0xC0) != 0x80)
            chars++;
        if (chars == pos)
            return line;
        if (*p == '\n')
            line++;
    }
    return 0;
}

/* Describes a failed result in err: "<what>: ERROR <sqlstate>: <message>
 * (line N)" plus DETAIL/HINT/CONTEXT lines when the server sent them.
 * sql is the text that was executed, used to turn the error position into
 * a line number; may be NULL. res may be NULL (connection lost). */
static void sv_mig_result_err(PGconn *conn, const PGresult *res, const char *what,
                              const char *sql, char *err, size_t errlen)
{
    const char *primary, *sqlstate, *detail, *hint, *context, *position;
    int line = 0;

    if (res == NULL) {
        sv_mig_conn_err(conn, what, err, errlen);
        return;
    }
    primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (primary == NULL) {
        /* Not a server error (e.g. an unexpected result status): libpq's
         * text is all there is. */
        const char *msg = PQresultErrorMessage(res);
        size_t n = strlen(msg);

        while (n > 0 && msg[n - 1] == '\n')
            n--;
        if (n == 0)
            sv_mig_set_err(err, errlen, "%s: unexpected result %s", what,
                           PQresStatus(PQresultStatus(res)));
        else
            sv_mig_set_err(err, errlen, "%s: %.*s", what, (int)n, msg);
        return;
    }
    sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
    context = PQresultErrorField(res, PG_DIAG_CONTEXT);
    position = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
    if (position != NULL && sql != NULL)
        line = sv_mig_line_of(sql, strtol(position, NULL, 10));

    sv_mig_set_err(err, errlen, "%s: ERROR %s: %s", what, sqlstate ? sqlstate : "?????", primary);
    if (line > 0)
        sv_mig_append_err(err, errlen, " (line %d)", line);
    if (detail != NULL)
        sv_mig_append_err(err, errlen, "\nDETAIL: %s", detail);
    if (hint != NULL)
        sv_mig_append_err(err, errlen, "\nHINT: %s", hint);
    if (context != NULL)
        sv_mig_append_err(err, errlen, "\nCONTEXT: %s", context);
}

/* Runs sql, with nparams text params when nparams > 0 (else as a simple
 * query, which may hold several statements), and expects a command or
 * rows. Returns the result (caller PQclears), or NULL with err describing
 * the failure (prefixed by what). */
static PGresult *sv_mig_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
                              const char *what, char *err, size_t errlen)
{
    PGresult *res = nparams > 0 ? PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0)
                                : PQexec(conn, sql);
    ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        sv_mig_result_err(conn, res, what, sql, err, errlen);
        PQclear(res);
        return NULL;
    }
    return res;
}

/* Runs one command that returns no rows we need. Returns 0, or -1 with
 * err describing the failure (prefixed by what). */
static int sv_mig_exec(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen)
{
    PGresult *res = sv_mig_query(conn, sql, 0, NULL, what, err, errlen);

    if (res == NULL)
        return SV_ERROR;
    PQclear(res);
    return SV_OK;
}

/* Ends a failed transaction so the connection is reusable. Best effort:
 * the error being reported matters more than a failed rollback. */
static void sv_mig_rollback(PGconn *conn)
{
    PGTransactionStatusType ts = PQtransactionStatus(conn);

    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
        PGresult *res = PQexec(conn, "ROLLBACK");

        PQclear(res);
    }
}

/* qsort comparator: byte order, independent of the locale, so "010_" and
 * "009_" sort the same everywhere. */
static int sv_mig_cmp_files(const void *a, const void *b)
{
    const sv_mig_file *fa = a, *fb = b;

    return strcmp(fa->name, fb->name);
}

/* True for names we treat as migrations: "*.sql", not hidden (editor swap
 * and backup files start with '.'). */
static int sv_mig_is_migration_name(const char *name)
{
    size_t n = strlen(name);

    return name[0] != '.' && n > 4 && strcmp(name + n - 4, ".sql") == 0;
}

/* Reads path into a malloc'd NUL-terminated buffer (*out, caller frees).
 * Refuses files with NUL bytes, which PQexec would silently truncate at.
 * Returns 0, or -1 with err set. */
static int sv_mig_read_file(const char *path, const char *name, char **out, char *err, size_t errlen)
{
    FILE *f;
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    *out = NULL;
    f = fopen(path, "rb");
    if (f == NULL) {
        sv_mig_set_err(err, errlen, "%s: cannot open: %s", name, strerror(errno));
        return SV_ERROR;
    }
    for (;;) {
        if (len + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 16384;
            char *nbuf;

            if (ncap > SV_MIGRATE_MAX_FILE + 4096 + 1) {
                sv_mig_set_err(err, errlen, "%s: larger than %u bytes, refusing", name,
                               SV_MIGRATE_MAX_FILE);
                goto fail;
            }
            nbuf = realloc(buf, ncap);
            if (nbuf == NULL) {
                sv_mig_set_err(err, errlen, "%s: out of memory", name);
                goto fail;
            }
            buf = nbuf;
            cap = ncap;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        sv_mig_set_err(err, errlen, "%s: read error: %s", name, strerror(errno));
        goto fail;
    }
    fclose(f);
    /* The loop allocated on its first pass, so buf is never NULL here. */
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) {
        sv_mig_set_err(err, errlen, "%s: contains a NUL byte; not a SQL text file", name);
        free(buf);
        return SV_ERROR;
    }
    *out = buf;
    return SV_OK;

fail:
    fclose(f);
    free(buf);
    return SV_ERROR;
}

/* Frees everything st owns and zeroes it. */
static void sv_mig_state_free(sv_mig_state *st)
{
    size_t i;

    for (i = 0; i < st->nfiles; i++) {
        free(st->files[i].name);
        free(st->files[i].sql);
    }
    free(st->files);
    for (i = 0; i < st->napplied; i++) {
        free(st->applied[i].version);
        free(st->applied[i].checksum);
        free(st->applied[i].applied_at);
    }
    free(st->applied);
    memset(st, 0, sizeof(*st));
}

/* Lists, reads and checksums every migration file of dir into st->files,
 * sorted by name. All files are read before any is applied so an
 * unreadable file fails the run up front. Returns 0, or -1 with err set
 * (st then holds whatever was loaded; sv_mig_state_free it). */
static int sv_mig_load_files(const char *dir, sv_mig_state *st, char *err, size_t errlen)
{
    DIR *d;
    struct dirent *de;
    size_t cap = 0, i;

    d = opendir(dir);
    if (d == NULL) {
        sv_mig_set_err(err, errlen, "cannot open SQL directory %s: %s", dir, strerror(errno));
        return SV_ERROR;
    }
    for (;;) {
        struct stat sb;
        char *path;

        errno = 0;
        de = readdir(d);
        if (de == NULL) {
            if (errno != 0) {
                sv_mig_set_err(err, errlen, "cannot read SQL directory %s: %s", dir, strerror(errno));
                closedir(d);
                return SV_ERROR;
            }
            break;
        }
        if (!sv_mig_is_migration_name(de->d_name))
            continue;
        if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
            sv_mig_set_err(err, errlen, "out of memory");
            closedir(d);
            return SV_ERROR;
        }
        /* stat, not d_type: follows symlinks and works on filesystems that
         * report DT_UNKNOWN. */
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            free(path);
            continue;
        }
        if (st->nfiles == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            sv_mig_file *nf = realloc(st->files, ncap * sizeof(*nf));

            if (nf == NULL) {
                sv_mig_set_err(err, errlen, "out of memory");
                free(path);
                closedir(d);
                return SV_ERROR;
            }
            st->files = nf;
            cap = ncap;
        }
        memset(&st->files[st->nfiles], 0, sizeof(st->files[0]));
        st->files[st->nfiles].name = strdup(de->d_name);
        if (st->files[st->nfiles].name == NULL) {
            sv_mig_set_err(err, errlen, "out of memory");
            free(path);
            closedir(d);
            return SV_ERROR;
        }
        st->nfiles++;
        if (sv_mig_read_file(path, de->d_name, &st->files[st->nfiles - 1].sql, err, errlen) != 0) {
            free(path);
            closedir(d);
            return SV_ERROR;
        }
        free(path);
    }
    closedir(d);

    if (st->nfiles > 0)
        qsort(st->files, st->nfiles, sizeof(st->files[0]), sv_mig_cmp_files);
    for (i = 0; i < st->nfiles; i++) {
        unsigned char hash[crypto_generichash_BYTES];
        sv_mig_file *f = &st->files[i];

        if (crypto_generichash(hash, sizeof(hash), (const unsigned char *)f->sql, strlen(f->sql),
                               NULL, 0) != 0) {
            sv_mig_set_err(err, errlen, "%s: checksum failed", f->name);
            return SV_ERROR;
        }
        sodium_bin2hex(f->checksum, sizeof(f->checksum), hash, sizeof(hash));
    }
    return SV_OK;
}

/* Fills st->applied from schema_migrations, or leaves it empty when the
 * table does not exist yet. Runs in whatever transaction state conn is in.
 * Returns 0, or -1 with err set. */
static int sv_mig_load_applied(PGconn *conn, sv_mig_state *st, char *err, size_t errlen)
{
    PGresult *res;
    int exists, i, n;

    res = sv_mig_query(conn, "SELECT pg_catalog.to_regclass('public.schema_migrations') IS NOT NULL", 0,
                       NULL, "reading schema_migrations", err, errlen);
    if (res == NULL)
        return SV_ERROR;
    exists = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!exists)
        return SV_OK;

    res = sv_mig_query(conn, SV_MIGRATE_SELECT_SQL, 0, NULL, "reading schema_migrations", err, errlen);
    if (res == NULL)
        return SV_ERROR;
    n = PQntuples(res);
    if (n > 0) {
        st->applied = calloc((size_t)n, sizeof(*st->applied));
        if (st->applied == NULL) {
            sv_mig_set_err(err, errlen, "out of memory");
            PQclear(res);
            return SV_ERROR;
        }
    }
    for (i = 0; i < n; i++) {
        sv_mig_applied *a = &st->applied[i];

        st->napplied++;
        a->version = strdup(PQgetvalue(res, i, 0));
        a->checksum = PQgetisnull(res, i, 1) ? NULL : strdup(PQgetvalue(res, i, 1));
        a->applied_at = strdup(PQgetvalue(res, i, 2));
        if (a->version == NULL || a->applied_at == NULL
            || (a->checksum == NULL && !PQgetisnull(res, i, 1))) {
            sv_mig_set_err(err, errlen, "out of memory");
            PQclear(res);
            return SV_ERROR;
        }
    }
    PQclear(res);
    return SV_OK;
}

/* The applied row for file name, or NULL. Linear: a project has tens of
 * migrations, not thousands. */
static sv_mig_applied *sv_mig_find_applied(sv_mig_state *st, const char *name)
{
    size_t i;

    for (i = 0; i < st->napplied; i++)
        if (strcmp(st->applied[i].version, name) == 0)
            return &st->applied[i];
    return NULL;
}

/* A hand-inserted row without a checksum is trusted rather than reported. */
static int sv_mig_changed(const sv_mig_applied *a, const sv_mig_file *f)
{
    return a->checksum != NULL && strcmp(a->checksum, f->checksum) != 0;
}

/* Applies one file in its own transaction (see the file comment). Sets
 * *skipped when another migrator applied it while we waited for the lock.
 * Returns 0, or -1 with err set and the transaction rolled back. */
static int sv_mig_apply_one(PGconn *conn, const sv_mig_file *f, int *skipped, char *err, size_t errlen)
{
    const char *params[2];
    PGresult *res;
    ExecStatusType est;
    char what[512];

    *skipped = 0;
    snprintf(what, sizeof(what), "%s", f->name);

    /* search_path is pinned so a file means the same thing whatever the
     * connecting role's or database's defaults are; files are UTF-8
     * whatever the client's locale says; notices below WARNING (IF NOT
     * EXISTS chatter, "role is already a member") are noise. */
    if (sv_mig_exec(conn, "BEGIN", what, err, errlen) != 0)
        goto fail;
    if (sv_mig_exec(conn,
                    "SET LOCAL search_path = public; SET LOCAL client_encoding = 'UTF8';"
                    " SET LOCAL client_min_messages = warning",
                    what, err, errlen) != 0)
        goto fail;
    if (sv_mig_exec(conn, SV_MIGRATE_LOCK_SQL, what, err, errlen) != 0)
        goto fail;
    if (sv_mig_exec(conn, SV_MIGRATE_TABLE_SQL, what, err, errlen) != 0)
        goto fail;

    params[0] = f->name;
    res = sv_mig_query(conn, "SELECT 1 FROM public.schema_migrations WHERE version = $1", 1, params, what,
                       err, errlen);
    if (res == NULL)
        goto fail;
    if (PQntuples(res) > 0) {
        PQclear(res);
        *skipped = 1;
        sv_mig_rollback(conn);
        return SV_OK;
    }
    PQclear(res);

    res = PQexec(conn, f->sql);
    if (res == NULL) {
        sv_mig_conn_err(conn, what, err, errlen);
        goto fail;
    }
    est = PQresultStatus(res);
    /* An empty file yields PGRES_EMPTY_QUERY: harmless, recorded anyway so
     * the numbering stays meaningful. */
    if (est != PGRES_COMMAND_OK && est != PGRES_TUPLES_OK && est != PGRES_EMPTY_QUERY) {
        sv_mig_result_err(conn, res, what, f->sql, err, errlen);
        PQclear(res);
        goto fail;
    }
    PQclear(res);

    /* A file with its own COMMIT would have split itself from its
     * schema_migrations row; refuse rather than record half a story. */
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        sv_mig_set_err(err, errlen,
                       "%s: the file ended the migration's transaction (it must not contain "
                       "BEGIN/COMMIT/ROLLBACK); statements before that point may have been committed",
                       f->name);
        goto fail;
    }

    params[1] = f->checksum;
    res = sv_mig_query(conn, "INSERT INTO public.schema_migrations (version, checksum) VALUES ($1, $2)", 2,
                       params, what, err, errlen);
    if (res == NULL)
        goto fail;
    PQclear(res);

    /* COMMIT can still fail (deferred constraints, serialization). */
    if (sv_mig_exec(conn, "COMMIT", what, err, errlen) != 0)
        goto fail;
    return SV_OK;

fail:
    sv_mig_rollback(conn);
    return SV_ERROR;
}

int sv_migrate_apply(PGconn *conn, const char *sql_dir, FILE *out, char *err, size_t errlen)
{
    sv_mig_state st;
    size_t i, nchanged = 0, napplied_now = 0;
    int rc = -1;

    memset(&st, 0, sizeof(st));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (PQstatus(conn) != CONNECTION_OK) {
        sv_mig_conn_err(conn, "not connected", err, errlen);
        return SV_ERROR;
    }
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        sv_mig_set_err(err, errlen, "the connection is inside a transaction; migrations need an idle one");
        return SV_ERROR;
    }
    if (sv_mig_load_files(sql_dir, &st, err, errlen) != 0) {
        sv_mig_state_free(&st);
        return SV_ERROR;
    }
    if (st.nfiles == 0) {
        sv_mig_set_err(err, errlen, "no *.sql files in %s", sql_dir);
        sv_mig_state_free(&st);
        return SV_ERROR;
    }

    /* Validate under the lock, before applying anything: an applied file
     * that changed means the database and sql/ disagree, and running the
     * files after it could build on the wrong assumptions. */
    if (sv_mig_exec(conn, "BEGIN", "reading schema_migrations", err, errlen) != 0)
        goto done;
    if (sv_mig_exec(conn, SV_MIGRATE_LOCK_SQL, "reading schema_migrations", err, errlen) != 0)
        goto done;
    if (sv_mig_load_applied(conn, &st, err, errlen) != 0)
        goto done;
    sv_mig_rollback(conn);

    for (i = 0; i < st.nfiles; i++) {
        sv_mig_applied *a = sv_mig_find_applied(&st, st.files[i].name);

        if (a != NULL && sv_mig_changed(a, &st.files[i])) {
            if (nchanged == 0)
                sv_mig_set_err(err, errlen, "applied migration(s) changed since they were applied: %s",
                               st.files[i].name);
            else
                sv_mig_append_err(err, errlen, ", %s", st.files[i].name);
            nchanged++;
        }
    }
    if (nchanged > 0) {
        sv_mig_append_err(err, errlen,
                          "\nHINT: restore the applied version of the file(s) and put new changes "
                          "in a new numbered migration");
        goto done;
    }

    for (i = 0; i < st.nfiles; i++) {
        const sv_mig_file *f = &st.files[i];
        long long t0;
        int skipped;

        if (sv_mig_find_applied(&st, f->name) != NULL)
            continue;
        t0 = (long long)sv_clock_mono_ms();
        if (sv_mig_apply_one(conn, f, &skipped, err, errlen) != 0) {
            if (out != NULL)
                fprintf(out, "failed   %s\n", f->name);
            goto done;
        }
        if (out != NULL) {
            if (skipped)
                fprintf(out, "skipped  %s (applied concurrently by another migrate)\n", f->name);
            else
                fprintf(out, "applied  %s (%lld ms)\n", f->name, (long long)sv_clock_mono_ms() - t0);
        }
        if (!skipped)
            napplied_now++;
    }
    if (out != NULL) {
        if (napplied_now == 0)
            fprintf(out, "nothing to apply: all %zu migration(s) already applied\n", st.nfiles);
        else
            fprintf(out, "%zu migration(s) applied\n", napplied_now);
    }
    rc = 0;

done:
    if (rc != 0)
        sv_mig_rollback(conn);
    /* Running servers reload their schema cache now rather than at their
     * next reload (PostgREST's channel and message, so the same NOTIFY by
     * hand after other DDL works too). */
    if (napplied_now > 0)
        PQclear(PQexec(conn, "NOTIFY pgrst, 'reload schema'"));
    sv_mig_state_free(&st);
    return rc;
}

int sv_migrate_status(PGconn *conn, const char *sql_dir, FILE *out, char *err, size_t errlen)
{
    sv_mig_state st;
    size_t i;

    memset(&st, 0, sizeof(st));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (PQstatus(conn) != CONNECTION_OK) {
        sv_mig_conn_err(conn, "not connected", err, errlen);
        return SV_ERROR;
    }
    if (sv_mig_load_files(sql_dir, &st, err, errlen) != 0) {
        sv_mig_state_free(&st);
        return SV_ERROR;
    }
    if (sv_mig_load_applied(conn, &st, err, errlen) != 0) {
        sv_mig_state_free(&st);
        return SV_ERROR;
    }
    for (i = 0; i < st.nfiles; i++) {
        const sv_mig_file *f = &st.files[i];
        sv_mig_applied *a = sv_mig_find_applied(&st, f->name);

        if (a == NULL) {
            if (out != NULL)
                fprintf(out, "pending  %s\n", f->name);
            continue;
        }
        a->seen = 1;
        if (out == NULL)
            continue;
        if (sv_mig_changed(a, f))
            fprintf(out, "changed  %s  %s  (file differs from the applied version)\n", f->name,
                    a->applied_at);
        else
            fprintf(out, "applied  %s  %s\n", f->name, a->applied_at);
    }
    for (i = 0; i < st.napplied; i++) {
        if (!st.applied[i].seen && out != NULL)
            fprintf(out, "missing  %s  %s  (applied, but no such file in %s)\n", st.applied[i].version,
                    st.applied[i].applied_at, sql_dir);
    }
    sv_mig_state_free(&st);
    return SV_OK;
}
