/*
 * The reference design bench/run measures the pool against: the plainest
 * FastCGI responder that can serve an endpoint's SQL, as the issue
 * describes it (libfcgi + libpq, BEGIN, the statements and COMMIT sent in
 * one round trip with libpq's pipeline mode). It ignores the request:
 * every request runs the statements bench/run captured from the real
 * server, with the same parameters, and answers the last one's last column
 * of its first row. No routing, no JWT, no access log, no passing on.
 *
 * One process per connection nginx may hold (libfcgi's accept loop stays
 * on a kept connection until nginx closes it), so no request waits for a
 * process and none pays for connect/accept.
 *
 *   ref-responder SOCKET PROCESSES CONNINFO STATEMENTS.json
 *
 * STATEMENTS.json: [{"sql": "...", "params": ["...", null, ...]}, ...]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <json-c/json.h>
#include <libpq-fe.h>

#define REF_MAX_STATEMENTS 8
#define REF_MAX_PARAMS 32

typedef struct ref_statement {
    char        name[16];
    const char *sql;
    int         nparams;
    const char *params[REF_MAX_PARAMS];
} ref_statement;

static ref_statement ref_statements[REF_MAX_STATEMENTS];
static int ref_nstatements;
/* The statements point into it. */
static json_object *ref_doc;

static void ref_die(const char *what, const char *detail)
{
    fprintf(stderr, "ref-responder: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static void ref_load(const char *path)
{
    json_object *doc = ref_doc = json_object_from_file(path);
    if (doc == NULL || !json_object_is_type(doc, json_type_array))
        ref_die("cannot read the statements", path);
    size_t n = json_object_array_length(doc);
    if (n == 0 || n > REF_MAX_STATEMENTS)
        ref_die("expected 1 to 8 statements", path);
    for (size_t i = 0; i < n; i++) {
        json_object *st = json_object_array_get_idx(doc, i), *sql, *params;
        if (!json_object_object_get_ex(st, "sql", &sql) ||
            !json_object_object_get_ex(st, "params", &params) ||
            !json_object_is_type(params, json_type_array) ||
            json_object_array_length(params) > REF_MAX_PARAMS)
            ref_die("a statement needs sql and at most 32 params", path);
        ref_statement *s = &ref_statements[ref_nstatements++];
        snprintf(s->name, sizeof(s->name), "ref_%zu", i);
        s->sql = json_object_get_string(sql);
        s->nparams = (int)json_object_array_length(params);
        for (int p = 0; p < s->nparams; p++) {
            json_object *v = json_object_array_get_idx(params, (size_t)p);
            s->params[p] = v == NULL ? NULL : json_object_get_string(v);
        }
    }
}

static void ref_prepare(PGconn *conn)
{
    for (int i = 0; i < ref_nstatements; i++) {
        const ref_statement *s = &ref_statements[i];
        PGresult *r = PQprepare(conn, s->name, s->sql, s->nparams, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            ref_die("prepare", PQresultErrorMessage(r));
        PQclear(r);
    }
}

static PGconn *ref_connect(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK)
        ref_die("connect", PQerrorMessage(conn));
    ref_prepare(conn);
    return conn;
}

/* BEGIN, the statements, COMMIT and Sync in one write; then every
 * result. Returns the last statement's result (the caller clears it), or
 * NULL when anything failed. */
static PGresult *ref_run(PGconn *conn)
{
    if (!PQenterPipelineMode(conn) || !PQsendQueryParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
        return NULL;
    for (int i = 0; i < ref_nstatements; i++) {
        const ref_statement *s = &ref_statements[i];
        if (!PQsendQueryPrepared(conn, s->name, s->nparams, s->params, NULL, NULL, 0))
            return NULL;
    }
    if (!PQsendQueryParams(conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) || !PQpipelineSync(conn))
        return NULL;

    PGresult *last = NULL;
    int failed = 0;
    /* BEGIN, each statement, COMMIT: each result then a NULL; then the
     * Sync's PGRES_PIPELINE_SYNC. */
    for (int i = 0; i < ref_nstatements + 2; i++) {
        PGresult *r;
        while ((r = PQgetResult(conn)) != NULL) {
            ExecStatusType st = PQresultStatus(r);
            if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
                failed = 1;
            if (i == ref_nstatements && !failed) {
                PQclear(last);
                last = r;
            } else {
                PQclear(r);
            }
        }
    }
    PGresult *sync = PQgetResult(conn);
    if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC)
        failed = 1;
    PQclear(sync);
    if (!PQexitPipelineMode(conn))
        failed = 1;
    if (failed) {
        PQclear(last);
        return NULL;
    }
    return last;
}

static void ref_serve(int listen_fd, const char *conninfo)
{
    PGconn *conn = ref_connect(conninfo);
    FCGX_Request req;
    if (FCGX_InitRequest(&req, listen_fd, 0) != 0)
        ref_die("FCGX_InitRequest", NULL);
    while (FCGX_Accept_r(&req) >= 0) {
        /* Read the request to its end: an end-of-input record left unread
         * would be taken for the next request's start, and libfcgi would
         * drop the kept connection. */
        char drain[4096];
        while (FCGX_GetStr(drain, sizeof(drain), req.in) > 0)
            ;
        PGresult *r = ref_run(conn);
        if (r != NULL && PQntuples(r) > 0) {
            int col = PQnfields(r) - 1;
            FCGX_PutS("Status: 200 OK\r\nContent-Type: application/json\r\n\r\n", req.out);
            FCGX_PutStr(PQgetvalue(r, 0, col), PQgetlength(r, 0, col), req.out);
        } else {
            FCGX_PutS("Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\n", req.out);
            FCGX_PutS(PQerrorMessage(conn), req.out);
            if (PQstatus(conn) != CONNECTION_OK) {
                PQreset(conn);
                if (PQstatus(conn) != CONNECTION_OK)
                    ref_die("reconnect", PQerrorMessage(conn));
                ref_prepare(conn);
            }
        }
        PQclear(r);
        FCGX_Finish_r(&req);
    }
    PQfinish(conn);
}

int main(int argc, char **argv)
{
    if (argc != 5)
        ref_die("usage: ref-responder SOCKET PROCESSES CONNINFO STATEMENTS.json", NULL);
    const char *path = argv[1];
    int processes = atoi(argv[2]);
    if (processes < 1 || processes > 1024)
        ref_die("PROCESSES must be 1 to 1024", argv[2]);
    ref_load(argv[4]);

    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(addr.sun_path))
        ref_die("socket path too long", path);
    strcpy(addr.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    /* Writable by nginx's workers, which may run as another user (nobody,
     * under root), from the moment the socket exists. */
    mode_t umask_was = umask(0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 1024) != 0)
        ref_die("listen", strerror(errno));
    umask(umask_was);
    if (FCGX_Init() != 0)
        ref_die("FCGX_Init", NULL);

    /* The master waits for a stop signal or a child's end with all three
     * blocked, so none arrives between a check and the wait. */
    sigset_t watched, unblocked;
    sigemptyset(&watched);
    sigaddset(&watched, SIGTERM);
    sigaddset(&watched, SIGINT);
    sigaddset(&watched, SIGCHLD);
    sigprocmask(SIG_BLOCK, &watched, &unblocked);
    pid_t master = getpid();

    pid_t *kids = calloc((size_t)processes, sizeof(*kids));
    if (kids == NULL)
        ref_die("out of memory", NULL);
    for (int i = 0; i < processes; i++) {
        kids[i] = fork();
        if (kids[i] < 0)
            ref_die("fork", strerror(errno));
        if (kids[i] == 0) {
            /* Whatever becomes of the master, no process is left behind
             * (and if it is already gone, this one never starts). */
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != master)
                _exit(1);
            signal(SIGPIPE, SIG_IGN);
            sigprocmask(SIG_SETMASK, &unblocked, NULL);
            ref_serve(fd, argv[3]);
            _exit(0);
        }
    }
    /* Until told to stop, or until a process ends (a bad statement, a
     * lost database): then the measurement is void, so everything stops. */
    int signo = 0;
    pid_t ended = 0;
    while (ended <= 0 && sigwait(&watched, &signo) == 0 && signo == SIGCHLD)
        ended = waitpid(-1, NULL, WNOHANG);
    if (ended > 0)
        fprintf(stderr, "ref-responder: process %d ended\n", (int)ended);
    for (int i = 0; i < processes; i++)
        if (kids[i] != ended)
            kill(kids[i], SIGTERM);
    while (wait(NULL) > 0 || errno == EINTR)
        ;
    unlink(path);
    free(kids);
    json_object_put(ref_doc);
    return 0;
}
