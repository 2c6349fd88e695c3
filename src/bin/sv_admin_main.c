/* streamvibe-admin: operator command line. Parses arguments, connects, and
 * hands the work to the library (sv_migrate.c); keep logic out of here. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "auth/sv_auth_admin.h"
#include "core/sv_config.h"
#include "core/sv_err.h"
#include "crypto/sv_crypto.h"
#include "crypto/sv_jwt.h"
#include "crypto/sv_password.h"
#include "crypto/sv_vault.h"
#include "db/sv_migrate.h"
#include "platform/sv_credentials.h"
#include "platform/sv_http_client.h"
#include "platform/sv_vault_rotate.h"
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
            "  keygen FILE\n"
            "      write a new vault key (32 random bytes, hex) to FILE, mode 0600;\n"
            "      an existing file is never overwritten. Prints its key id\n"
            "  keys rotate [--status] [--batch N] [--config FILE] [--database CONNINFO]\n"
            "      re-seal every platform token and Vault secret under vault_key_file\n"
            "      (N rows per transaction, default 100; safe while the pool serves\n"
            "      and when run twice at once; re-run it after an interruption), or\n"
            "      with --status count the rows each key id seals\n"
            "  credentials token --user UUID --platform NAME [--rejected]\n"
            "                    [--config FILE] [--database CONNINFO]\n"
            "      get a valid access token for the user's platform the way the server\n"
            "      and its jobs do (refreshing it at the provider when it expires within\n"
            "      oauth_refresh_margin, or with --rejected as if the platform had just\n"
            "      refused it) and print the outcome: never the token, only a\n"
            "      fingerprint (the first 12 hex digits of its SHA-256). Exit 0 when\n"
            "      a token is at hand, 2 when the credential is missing, inactive or\n"
            "      expired (the user must connect again), 1 on other errors\n"
            "  user list [--database CONNINFO]\n"
            "      list the accounts: id, email, created_at, last_sign_in_at\n"
            "  user set-password --email EMAIL [--config FILE] [--database CONNINFO]\n"
            "      give the account a new password, read from the first line of\n"
            "      standard input (at least password_min_length characters of the\n"
            "      configuration), sign out all its sessions and forget its failed\n"
            "      logins (no e-mail is sent: a forgotten password is reset here)\n"
            "  user delete --email EMAIL [--database CONNINFO]\n"
            "      delete the account and everything it owns (handles, content,\n"
            "      credentials; its audit rows stay, without the user)\n"
            "      user commands exit 2 when no account has that email\n"
            "  help (also --help, -h)\n"
            "      show this text\n"
            "\n"
            "database (libpq conninfo or postgresql:// URL), first found of:\n"
            "  --database, $STREAMVIBE_ADMIN_DATABASE_URL, $STREAMVIBE_DATABASE_URL\n"
            "  (migrations create roles: connect as a superuser)\n"
            "SQL directory, first found of:\n"
            "  --sql-dir, $STREAMVIBE_SQL_DIR, %s/sql\n"
            "  (keys rotate also falls back to database_url of the configuration)\n",
            sv_admin_prog, SV_DATADIR);
}

/* One option of a subcommand: --name VALUE stores VALUE in *value; a
 * flag (value NULL) sets *flag to 1. */
typedef struct {
    const char *name;
    const char **value;
    int *flag;
} sv_admin_opt;

enum { SV_ADMIN_MAX_OPTS = 8 };

/* Parses the options of subcommand cmd ("keys rotate") in argv (argv[0]
 * its last word) against opts (ended by a NULL name) and --help, which
 * prints the usage. No positional argument is accepted. usage: also print
 * the usage after an error. Returns -1 when the command should run, else
 * its exit status (0 after --help, 1 after printing the error). */
static int sv_admin_options(const char *cmd, int argc, char **argv, const sv_admin_opt *opts, int usage)
{
    struct option lopts[SV_ADMIN_MAX_OPTS + 2];
    int n, c;

    for (n = 0; opts[n].name != NULL && n < SV_ADMIN_MAX_OPTS; n++)
        lopts[n] = (struct option){ opts[n].name, opts[n].value ? required_argument : no_argument, NULL, n };
    lopts[n] = (struct option){ "help", no_argument, NULL, 'h' };
    lopts[n + 1] = (struct option){ NULL, 0, NULL, 0 };

    /* '+': stop at the first non-option so stray words are reported below
     * rather than permuted away. */
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+", lopts, NULL)) != -1) {
        if (c == 'h') {
            sv_admin_usage(stdout);
            return 0;
        }
        if (c < 0 || c >= n) {
            fprintf(stderr, "%s %s: unknown or incomplete option '%s'\n", sv_admin_prog, cmd,
                    argv[optind - 1]);
            if (usage)
                sv_admin_usage(stderr);
            return 1;
        }
        if (opts[c].value)
            *opts[c].value = optarg;
        else
            *opts[c].flag = 1;
    }
    if (optind < argc) {
        fprintf(stderr, "%s %s: unexpected argument '%s'\n", sv_admin_prog, cmd, argv[optind]);
        if (usage)
            sv_admin_usage(stderr);
        return 1;
    }
    return -1;
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

/* The connection to the database of --database (given, may be NULL) or
 * the environment, for subcommand cmd. Returns it (caller PQfinishes) or
 * NULL after printing why. */
static PGconn *sv_admin_open(const char *given, const char *cmd)
{
    const char *database = sv_admin_database(given, cmd);

    return database != NULL ? sv_admin_connect(database) : NULL;
}

/* The configuration (config: --config, or NULL for the default) and the
 * vault keys it names, for subcommand cmd. Returns SV_OK (the caller
 * frees both) or SV_ERROR after printing why (nothing to free). */
static int sv_admin_load_vault(const char *cmd, const char *config, sv_config *cfg, sv_vault *vault)
{
    char err[1024];

    if (sv_config_load(cfg, config, err, sizeof(err)) != SV_OK ||
        sv_vault_load(vault, cfg->vault_key_file, cfg->vault_old_key_files, err, sizeof(err)) != SV_OK) {
        fprintf(stderr, "%s %s: %s\n", sv_admin_prog, cmd, err);
        sv_config_free(cfg);
        return SV_ERROR;
    }
    return SV_OK;
}

/* `migrate` subcommand; argv[0] is "migrate". Returns the exit status. */
static int sv_admin_migrate(int argc, char **argv)
{
    const char *database = NULL, *sql_dir = NULL;
    int status = 0, rc;
    const sv_admin_opt opts[] = {
        { "status", NULL, &status },
        { "database", &database, NULL },
        { "sql-dir", &sql_dir, NULL },
        { NULL, NULL, NULL },
    };
    char err[4096];
    PGconn *conn;

    if ((rc = sv_admin_options("migrate", argc, argv, opts, 1)) >= 0)
        return rc;
    conn = sv_admin_open(database, "migrate");
    if (conn == NULL)
        return 1;
    if (sql_dir == NULL)
        sql_dir = sv_admin_env("STREAMVIBE_SQL_DIR");
    if (sql_dir == NULL)
        sql_dir = SV_DATADIR "/sql";

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

static int sv_admin_keys_rotate(int argc, char **argv);

/* `quota` subcommand; argv[0] is "quota", argv[1] the action. Prints
 * "reset N" (users whose quotas were reset). */
static int sv_admin_quota(int argc, char **argv)
{
    const char *database = NULL;
    const sv_admin_opt opts[] = { { "database", &database, NULL }, { NULL, NULL, NULL } };
    char err[1024];
    int rc;

    if (argc < 2 || strcmp(argv[1], "reset-due") != 0) {
        fprintf(stderr, "%s quota: expected the action reset-due\n", sv_admin_prog);
        sv_admin_usage(stderr);
        return 1;
    }
    if ((rc = sv_admin_options("quota reset-due", argc - 1, argv + 1, opts, 1)) >= 0)
        return rc;
    PGconn *conn = sv_admin_open(database, "quota reset-due");
    if (conn == NULL)
        return 1;
    long count = 0;
    rc = sv_quota_reset_due(conn, &count, err, sizeof(err));
    PQfinish(conn);
    if (rc != SV_OK) {
        fprintf(stderr, "%s quota reset-due: %s\n", sv_admin_prog, err);
        return 1;
    }
    printf("reset %ld\n", count);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* `keys` subcommand; argv[0] is "keys". Prints anon_key=... and
 * service_role_key=... lines. The secret itself is never printed.
 * `keys rotate ...` is the vault's key rotation. */
static int sv_admin_keys(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "rotate") == 0)
        return sv_admin_keys_rotate(argc - 1, argv + 1);
    const char *config = NULL;
    const sv_admin_opt opts[] = { { "config", &config, NULL }, { NULL, NULL, NULL } };
    char err[512];
    sv_config cfg;
    int rc;

    if ((rc = sv_admin_options("keys", argc, argv, opts, 1)) >= 0)
        return rc;
    rc = 1;
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

/* `keygen FILE`; argv[0] is "keygen". */
static int sv_admin_keygen(int argc, char **argv)
{
    char err[512];
    int32_t id;

    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        sv_admin_usage(stdout);
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-' || argv[1][0] == '\0') {
        fprintf(stderr, "%s keygen: expected exactly one argument, the key file to write\n",
                sv_admin_prog);
        sv_admin_usage(stderr);
        return 1;
    }
    if (sv_vault_keygen(argv[1], &id, err, sizeof(err)) != SV_OK) {
        fprintf(stderr, "%s keygen: %s\n", sv_admin_prog, err);
        return 1;
    }
    printf("key_id=%d file=%s\n", (int)id, argv[1]);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* `credentials token`; argv[0] is "credentials". */
static int sv_admin_credentials(int argc, char **argv)
{
    const char *user = NULL, *platform = NULL, *config = NULL, *database = NULL;
    int rejected = 0, rc;
    const sv_admin_opt opts[] = {
        { "user", &user, NULL },
        { "platform", &platform, NULL },
        { "rejected", NULL, &rejected },
        { "config", &config, NULL },
        { "database", &database, NULL },
        { NULL, NULL, NULL },
    };

    if (argc < 2 || strcmp(argv[1], "token") != 0) {
        fprintf(stderr, "%s credentials: expected the verb 'token'\n", sv_admin_prog);
        sv_admin_usage(stderr);
        return 1;
    }
    if ((rc = sv_admin_options("credentials token", argc - 1, argv + 1, opts, 0)) >= 0)
        return rc;
    rc = 1;
    if (user == NULL || platform == NULL) {
        fprintf(stderr, "%s credentials token: --user and --platform are required\n", sv_admin_prog);
        return 1;
    }
    sv_config cfg;
    sv_vault vault;
    if (sv_admin_load_vault("credentials token", config, &cfg, &vault) != SV_OK)
        return 1;
    if (database == NULL)
        database = sv_admin_env("STREAMVIBE_ADMIN_DATABASE_URL");
    if (database == NULL)
        database = cfg.database_url;
    sv_db db;
    sv_arena arena;
    sv_db_init(&db, database);
    sv_arena_init(&arena, 16384);
    sv_platform_env env = { .cfg = &cfg, .vault = &vault, .db = &db, .arena = &arena, .request_id = "-" };
    sv_platform_token tok, cur;
    sv_error e;
    sv_error_init(&e);
    int got = SV_OK;
    const char *reject = NULL;
    if (rejected) {
        got = sv_platform_token_get(&env, user, platform, NULL, &cur, &e);
        reject = got == SV_OK ? cur.access_token : NULL;
    }
    if (got == SV_OK)
        got = sv_platform_token_get(&env, user, platform, reject, &tok, &e);
    if (got == SV_OK) {
        unsigned char h[crypto_hash_sha256_BYTES];
        char hex[2 * sizeof(h) + 1];
        crypto_hash_sha256(h, (const unsigned char *)tok.access_token, tok.len);
        sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
        printf("status=ok source=%s expires_at=%lld fingerprint=%.12s\n", sv_token_source_name(tok.source),
               tok.expires_at, hex);
        rc = 0;
    } else {
        printf("status=error http_status=%d code=%s message=\"%s\"\n", e.status, e.code ? e.code : "-",
               e.message ? e.message : "");
        rc = e.status == 404 || e.status == 409 ? 2 : 1;
    }
    fflush(stdout);
    sv_error_clear(&e);
    sv_arena_free(&arena);   /* wipes the token */
    sv_db_close(&db);
    sv_vault_free(&vault);
    sv_config_free(&cfg);
    return rc;
}

/* The first line of standard input, without its line end, into buf
 * (room for SV_PASSWORD_MAX bytes and one more to tell a longer line):
 * read byte by byte from the descriptor, so no copy is left in a stdio
 * buffer, and with the terminal's echo off (after a prompt on stderr)
 * when standard input is one. Returns its length (a NUL in it is kept,
 * for the caller to refuse), or -1 when nothing could be read. */
static long sv_admin_read_secret(const char *prompt, char *buf, size_t size)
{
    struct termios saved, quiet;
    int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
    if (tty) {
        fputs(prompt, stderr);
        fflush(stderr);
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    size_t n = 0;
    int got = 0;
    char c;
    ssize_t r;
    while ((r = read(STDIN_FILENO, &c, 1)) == 1 || (r < 0 && errno == EINTR)) {
        if (r < 0)
            continue;
        got = 1;
        if (c == '\n')
            break;
        if (n + 1 < size)
            buf[n++] = c;
        else
            n = size;                   /* too long: the caller refuses it */
    }
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        fputc('\n', stderr);
    }
    if (n >= size)
        n = size - 1;
    while (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return got ? (long)n : -1;
}

/* `user list|set-password|delete`; argv[0] is "user". */
static int sv_admin_user(int argc, char **argv)
{
    const char *email = NULL, *config = NULL, *database = NULL;
    const char *action = argc >= 2 ? argv[1] : "";
    int list = strcmp(action, "list") == 0, set = strcmp(action, "set-password") == 0;
    int del = strcmp(action, "delete") == 0;
    const sv_admin_opt opts[] = {
        { "email", &email, NULL },      /* not for list: it starts after this one */
        { "config", &config, NULL },
        { "database", &database, NULL },
        { NULL, NULL, NULL },
    };
    char cmd[32], err[1024], id[SV_AUTH_ADMIN_ID_BYTES] = "";
    int rc, found = 0;

    if (!list && !set && !del) {
        fprintf(stderr, "%s user: expected the action list, set-password or delete\n", sv_admin_prog);
        sv_admin_usage(stderr);
        return 1;
    }
    snprintf(cmd, sizeof(cmd), "user %s", action);
    if ((rc = sv_admin_options(cmd, argc - 1, argv + 1, list ? opts + 1 : opts, 1)) >= 0)
        return rc;
    if (!list && (email == NULL || email[0] == '\0')) {
        fprintf(stderr, "%s %s: --email is required\n", sv_admin_prog, cmd);
        return 1;
    }
    /* Only set-password reads the configuration (password_min_length);
     * without one it says which minimum it applies. */
    sv_config cfg;
    sv_config_defaults(&cfg);
    if (set) {
        if (config == NULL && getenv("STREAMVIBE_CONFIG") == NULL)
            fprintf(stderr, "%s %s: no --config or $STREAMVIBE_CONFIG: the built-in password_min_length "
                    "(%d) applies\n", sv_admin_prog, cmd, cfg.password_min_length);
        sv_config_free(&cfg);
        if (sv_config_load(&cfg, config, err, sizeof(err)) != SV_OK) {
            fprintf(stderr, "%s %s: %s\n", sv_admin_prog, cmd, err);
            sv_config_free(&cfg);
            return 1;
        }
    }
    char pw[SV_PASSWORD_MAX + 2];
    long len = 0;
    if (set && (len = sv_admin_read_secret("New password: ", pw, sizeof(pw))) < 0) {
        fprintf(stderr, "%s %s: no password on standard input\n", sv_admin_prog, cmd);
        sv_config_free(&cfg);
        return 1;
    }
    PGconn *conn = sv_admin_open(database, cmd);
    rc = 1;
    if (conn != NULL) {
        long revoked = 0;
        if (list)
            rc = sv_auth_admin_list(conn, stdout, err, sizeof(err)) == SV_OK ? 0 : 1;
        else if (set)
            rc = sv_auth_admin_set_password(conn, email, pw, (size_t)len, cfg.password_min_length, id, &revoked,
                                            &found, err, sizeof(err)) == SV_OK ? 0 : 1;
        else
            rc = sv_auth_admin_delete(conn, email, id, &found, err, sizeof(err)) == SV_OK ? 0 : 1;
        if (rc != 0)
            fprintf(stderr, "%s %s: %s\n", sv_admin_prog, cmd, err);
        else if (!list && !found) {
            fprintf(stderr, "%s %s: no account has the email %s\n", sv_admin_prog, cmd, email);
            rc = 2;
        } else if (set)
            printf("user=%s password=set sessions_revoked=%ld\n", id, revoked);
        else if (del)
            printf("user=%s deleted\n", id);
        if (fflush(stdout) != 0)
            rc = 1;
        PQfinish(conn);
    }
    sodium_memzero(pw, sizeof(pw));
    sv_config_free(&cfg);
    return rc;
}

/* `keys rotate`; argv[0] is "rotate". */
static int sv_admin_keys_rotate(int argc, char **argv)
{
    const char *config = NULL, *database = NULL, *batch_arg = NULL;
    int status = 0, batch = 100, rc;
    const sv_admin_opt opts[] = {
        { "status", NULL, &status },
        { "batch", &batch_arg, NULL },
        { "config", &config, NULL },
        { "database", &database, NULL },
        { NULL, NULL, NULL },
    };
    char err[1024];
    sv_config cfg;
    sv_vault vault;

    if ((rc = sv_admin_options("keys rotate", argc, argv, opts, 1)) >= 0)
        return rc;
    rc = 1;
    if (batch_arg != NULL) {
        batch = atoi(batch_arg);
        if (batch < 1 || batch > 100000) {
            fprintf(stderr, "%s keys rotate: --batch must be 1..100000\n", sv_admin_prog);
            return 1;
        }
    }
    if (sv_admin_load_vault("keys rotate", config, &cfg, &vault) != SV_OK)
        return 1;
    if (database == NULL)
        database = sv_admin_env("STREAMVIBE_ADMIN_DATABASE_URL");
    if (database == NULL)
        database = sv_admin_env("STREAMVIBE_DATABASE_URL");
    if (database == NULL)
        database = cfg.database_url;
    PGconn *conn = sv_admin_connect(database);
    if (conn != NULL) {
        long left = 0;
        if (status) {
            rc = sv_vault_rotate_status(conn, &vault, stdout, &left, err, sizeof(err)) == SV_OK ? 0 : 1;
        } else {
            sv_vault_rotation r;
            if (sv_vault_rotate(conn, &vault, batch, stdout, &r, err, sizeof(err)) == SV_OK) {
                printf("done credentials=%ld secrets=%ld failed=%ld key_id=%d\n", r.credentials,
                       r.secrets, r.failed, (int)sv_vault_current_id(&vault));
                rc = r.failed > 0 ? 1 : 0;
                if (r.failed > 0)
                    snprintf(err, sizeof(err),
                             "%ld value(s) did not open with the configured keys (listed above)",
                             r.failed);
            }
        }
        fflush(stdout);
        if (rc != 0)
            fprintf(stderr, "%s keys rotate: %s\n", sv_admin_prog, err);
        PQfinish(conn);
    }
    sv_vault_free(&vault);
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
    if (sv_crypto_init() != SV_OK || sv_http_client_global_init() != SV_OK) {
        fprintf(stderr, "%s: libsodium or libcurl initialisation failed\n", sv_admin_prog);
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
    if (strcmp(cmd, "credentials") == 0)
        return sv_admin_credentials(argc - 1, argv + 1);
    if (strcmp(cmd, "keygen") == 0)
        return sv_admin_keygen(argc - 1, argv + 1);
    if (strcmp(cmd, "user") == 0)
        return sv_admin_user(argc - 1, argv + 1);

    fprintf(stderr, "%s: unknown command '%s'\n", sv_admin_prog, cmd);
    sv_admin_usage(stderr);
    return 1;
}
