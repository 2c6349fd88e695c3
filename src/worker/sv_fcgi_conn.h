/* The worker's FastCGI state: the connections nginx keeps open to it,
 * and the one whose request is being served. Internal to worker/:
 * sv_fcgi_loop.c serves them, sv_handoff.c passes them on. */
#ifndef SV_FCGI_CONN_H
#define SV_FCGI_CONN_H

#include <stdint.h>

#include <fcgiapp.h>

#include "db/sv_db.h"
#include "worker/sv_worker.h"

/* One FastCGI connection from nginx. With fastcgi_keep_conn nginx keeps
 * it open between requests. */
typedef struct sv_fcgi_conn {
    FCGX_Request req;
    int64_t      last_used_ms;
    int          answered;   /* the response has been written */
    int          waiting;    /* a request arrived while the worker was busy */
    sv_park     *park;       /* malloc'd while its request is parked, else NULL */
} sv_fcgi_conn;

/* A worker holds at most this many connections: nginx caches far fewer
 * (the template's keepalive per nginx process), but each request parked
 * on a job (?wait=N) keeps its own. */
#define SV_WORKER_MAX_CONNS 256

typedef struct sv_fcgi_server {
    sv_worker    *w;
    sv_fcgi_conn *conns;                 /* SV_WORKER_MAX_CONNS slots */
    sv_fcgi_conn *current;               /* serving a request on it */
    sv_fcgi_conn *watched[SV_DB_WAIT_MAX_FDS];   /* the wait hook's poll set */
} sv_fcgi_server;

/* Makes the connection fd the one of free slot c. */
void sv_fcgi_conn_adopt(sv_fcgi_conn *c, int fd);

/* Closes c's connection (dropping a parked request); keepConnection = 1
 * leaves libfcgi nothing to close at the next FCGX_Accept_r. */
void sv_fcgi_conn_close(sv_fcgi_conn *c);

/* Reads the next request on c's connection and answers it, or parks it
 * (c->park); with last set, the connection closes with the answer.
 * Returns 1 when a request was served or parked, 0 when the connection
 * ended instead. */
int sv_fcgi_conn_serve(sv_fcgi_server *s, sv_fcgi_conn *c, int last);

/* Resumes c's parked request: answered (and c->park freed), or parked
 * on. */
void sv_fcgi_conn_resume(sv_fcgi_server *s, sv_fcgi_conn *c, int last);

#endif
