/* streamvibe-admin: operator command line. Parses arguments, connects, and
 * hands the work to the library (sv_migrate.c); keep logic out of here. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "core/sv_config.h"
#include "core/sv_err.h"
#include "crypto/sv_crypto.h"
#include "crypto/sv_jwt.h"
#include "db/sv_migrate.h"
#include "db/sv_schedule.h"

#ifndef SV_DATADIR
#define SV_DATADIR "/usr/local/share/streamvibe"
#endif

static const char *sv_admin_prog = "streamvibe-admin";

/* Prints the usage text to f. */
static void sv_admin_usage(FILE *f)
{
    fprintf(f,
            "usage: %s <command> [options]\n"
            "\n"
            "commands:\n"
            "  migrate [--status] [--database CONNINFO] [--sql-dir DIR]\n"
            "      apply pending schema migrations (each in its own transaction),\n"
            "      or with --status list every migration as applied/pending/changed\n"
            "      and whether the monthly quota reset is scheduled in pg_cron\n"
            "  quota reset-due [--database CONNINFO]\n"
            "      reset every quota whose period has ended (what pg_cron runs\n"
            "      monthly when it is installed; run it from cron otherwise)\n"
            "  keys [--config FILE]\n"
            "      print the anon and service_role API keys (JWTs signed with\n"
            "      jwt_secret from FILE, $STREAMVIBE_CONFIG or $STREAMVIBE_JWT_SECRET)\n"
            "      for a web app's supabase-js configuration\n"
            "  help (also --help, -h)\n"
            "      show this text\n"
            "\n"
            "database (libpq conninfo or postgresql:// URL), first found of:\n"
            "  --database, $STREAMVIBE_ADMIN_DATABASE_URL, $STREAMVIBE_DATABASE_URL\n"
            "  (migrations create roles: connect as a superuser)\n"
            "SQL directory, first found of:\n"
            "  --sql-dir, $STREAMVIBE_SQL_DIR, %s/sql\n",
            sv_admin_prog, SV_DATADIR);
}

/* Non-empty environment value or NULL. */
static const char *sv_admin_env(const char *name)
{
    const char *v = getenv(name);

    return (v != NULL && v[0] != '\0') ? v : NULL;
}

/* The database of --database (given, may be NULL) or the environment;
 * NULL after printing what to do when there is none. */
static const char *sv_admin_database(const char *given, const char *cmd)
{
    const char *database = given;
    if (database == NULL)
        database = sv_admin_env("STREAMVIBE_ADMIN_DATABASE_URL");
    if (database == NULL)
        database = sv_admin_env("STREAMVIBE_DATABASE_URL");
    if (database == NULL)
        fprintf(stderr,
                "%s %s: no database given: use --database CONNINFO or set "
                "STREAMVIBE_ADMIN_DATABASE_URL (or STREAMVIBE_DATABASE_URL)\n",
                sv_admin_prog, cmd);
    return database;
}

/* Opens a connection for conninfo (a keyword string or URL). Returns the
 * connection (caller PQfinishes) or NULL after printing why to stderr.
 * The conninfo itself is never printed: it may carry a password. */
static PGconn *sv_admin_connect(const char *conninfo)
{
    const char *keys[] = { "dbname", "fallback_application_name", NULL };
    const char *vals[] = { conninfo, "streamvibe-admin", NULL };
    PGconn *conn;

    conn = PQconnectdbParams(keys, vals, 1);
    if (conn == NULL) {
        fprintf(stderr, "%s: cannot connect to the database: out of memory\n", sv_admin_prog);
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(conn);
        size_t n = strlen(msg);

        while (n > 0 && msg[n - 1] == '\n')
            n--;
        fprintf(stderr, "%s: cannot connect to the database: %.*s\n", sv_admin_prog, (int)n, msg);
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

/* `migrate` subcommand; argv[0] is "migrate". Returns the exit status. */
static int sv_admin_migrate(int argc, char **argv)
{
    static const struct option opts[] = {
        { "status",   no_argument,       NULL, 's' },
        { "database", required_argument, NULL, 'd' },
        { "sql-dir",  required_argument, NULL, 'D' },
        { "help",     no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *database = NULL, *sql_dir = NULL;
    char err[4096];
    PGconn *conn;
    int status = 0, c, rc;

    /* '+': stop at the first non-option so stray words are reported below
     * rather than permuted away. */
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            status = 1;
            break;
        case 'd':
            database = optarg;
            break;
        case 'D':
            sql_dir = optarg;
            break;
        case 'h':
            sv_admin_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "%s migrate: unknown or incomplete option '%s'\n", sv_admin_prog,
                    argv[optind - 1]);
            sv_admin_usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s migrate: unexpected argument '%s'\n", sv_admin_prog, argv[optind]);
        sv_admin_usage(stderr);
        return 1;
    }

    database = sv_admin_database(database, "migrate");
    if (database == NULL)
        return 1;
    if (sql_dir == NULL)
        sql_dir = sv_admin_env("STREAMVIBE_SQL_DIR");
    if (sql_dir == NULL)
        sql_dir = SV_DATADIR "/sql";

    conn = sv_admin_connect(database);
    if (conn == NULL)
        return 1;

    if (status) {
        rc = sv_migrate_status(conn, sql_dir, stdout, err, sizeof(err));
        if (rc == SV_OK)
            rc = sv_schedule_status(conn, stdout, err, sizeof(err));
    }
    else
        rc = sv_migrate_apply(conn, sql_dir, stdout, err, sizeof(err));
    PQfinish(conn);
    /* stdout carries progress; flush it before the error so the two
     * interleave in order when both go to one terminal or log. */
    fflush(stdout);
    if (rc != 0) {
        fprintf(stderr, "%s migrate: %s\n", sv_admin_prog, err);
        return 1;
    }
    return 0;
}

/* `quota` subcommand; argv[0] is "quota", argv[1] the action. Prints
 * "reset N" (users whose quotas were reset). */
static int sv_admin_quota(int argc, char **argv)
{
    static const struct option opts[] = {
        { "database", required_argument, NULL, 'd' },
        { "help",     no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *database = NULL;
    char err[1024];
    int c;

    if (argc < 2 || strcmp(argv[1], "reset-due") != 0) {
        fprintf(stderr, "%s quota: expected the action reset-due\n", sv_admin_prog);
        sv_admin_usage(stderr);
        return 1;
    }
    argc--;
    argv++;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            database = optarg;
            break;
        case 'h':
            sv_admin_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "%s quota reset-due: unknown or incomplete option '%s'\n", sv_admin_prog,
                    argv[optind - 1]);
            sv_admin_usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s quota reset-due: unexpected argument '%s'\n", sv_admin_prog, argv[optind]);
        sv_admin_usage(stderr);
        return 1;
    }
    database = sv_admin_database(database, "quota reset-due");
    if (database == NULL)
        return 1;
    PGconn *conn = sv_admin_connect(database);
    if (conn == NULL)
        return 1;
    long count = 0;
    int rc = sv_quota_reset_due(conn, &count, err, sizeof(err));
    PQfinish(conn);
    if (rc != SV_OK) {
        fprintf(stderr, "%s quota reset-due: %s\n", sv_admin_prog, err);
        return 1;
    }
    printf("reset %ld\n", count);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* `keys` subcommand; argv[0] is "keys". Prints anon_key=... and
 * service_role_key=... lines. The secret itself is never printed. */
static int sv_admin_keys(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "help",   no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = NULL;
    char err[512];
    sv_config cfg;
    int c, rc = 1;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'h':
            sv_admin_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "%s keys: unknown or incomplete option '%s'\n", sv_admin_prog,
                    argv[optind - 1]);
            sv_admin_usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s keys: unexpected argument '%s'\n", sv_admin_prog, argv[optind]);
        sv_admin_usage(stderr);
        return 1;
    }
    if (sv_config_load(&cfg, config, err, sizeof(err)) != SV_OK) {
        fprintf(stderr, "%s keys: %s\n", sv_admin_prog, err);
        sv_config_free(&cfg);
        return 1;
    }
    size_t len = cfg.jwt_secret ? strlen(cfg.jwt_secret) : 0;
    if (len == 0) {
        fprintf(stderr,
                "%s keys: no jwt_secret: set it in the config file (--config FILE or "
                "$STREAMVIBE_CONFIG) or in $STREAMVIBE_JWT_SECRET\n",
                sv_admin_prog);
    } else if (len < SV_JWT_MIN_SECRET_LEN) {
        fprintf(stderr,
                "%s keys: jwt_secret is %zu bytes; at least %d are required "
                "(e.g. `openssl rand -base64 48`)\n",
                sv_admin_prog, len, SV_JWT_MIN_SECRET_LEN);
    } else {
        sv_arena arena;
        time_t now = time(NULL);

        sv_arena_init(&arena, 4096);
        printf("anon_key=%s\n", sv_jwt_api_key(&arena, cfg.jwt_secret, "anon", now));
        printf("service_role_key=%s\n", sv_jwt_api_key(&arena, cfg.jwt_secret, "service_role", now));
        sv_arena_free(&arena);
        rc = fflush(stdout) == 0 ? 0 : 1;
    }
    sv_config_free(&cfg);
    return rc;
}

int main(int argc, char **argv)
{
    const char *cmd;

    if (argc < 2) {
        sv_admin_usage(stderr);
        return 1;
    }
    if (sv_crypto_init() != SV_OK) {
        fprintf(stderr, "%s: libsodium initialisation failed\n", sv_admin_prog);
        return 1;
    }
    cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        sv_admin_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "migrate") == 0)
        return sv_admin_migrate(argc - 1, argv + 1);
    if (strcmp(cmd, "quota") == 0)
        return sv_admin_quota(argc - 1, argv + 1);
    if (strcmp(cmd, "keys") == 0)
        return sv_admin_keys(argc - 1, argv + 1);

    fprintf(stderr, "%s: unknown command '%s'\n", sv_admin_prog, cmd);
    sv_admin_usage(stderr);
    return 1;
}
