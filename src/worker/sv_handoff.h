/* Passing connections on.
 *
 * A request nginx sends on a kept connection of a busy worker would wait
 * for that worker's current request, however long, while other workers
 * idle. So the pool shares one datagram socket pair between all its
 * workers: a busy worker sends such a connection (SCM_RIGHTS) into it,
 * and whichever worker is free first receives it, like a connection
 * from the listening socket, and serves the request waiting on it. A
 * worker leaving on reload or recycle passes its idle connections on the
 * same way, so nginx never sees them closed under it. Only between
 * requests: a connection moves with nothing of a request read from it.
 * Internal to worker/. */
#ifndef SV_HANDOFF_H
#define SV_HANDOFF_H

#include "db/sv_db.h"
#include "worker/sv_fcgi_conn.h"

/* Passing on is for live pools: when the pool stops, connections close.
 * (Nor does a worker whose master has gone: sv_handoff_pass checks that,
 * as it costs a system call.) */
int sv_handoff_can_pass(const sv_worker *w);

/* Sends c's connection to the pool's queue and closes this worker's
 * copy. Returns 0, or -1 (queue full, or no master: the queue would die
 * with the last worker) with c left as it was. */
int sv_handoff_pass(sv_worker *w, sv_fcgi_conn *c);

/* Every connection but the current request's goes to the other workers
 * (leaving on reload or recycle, or long work ahead). Those the queue
 * has no room for stay. */
void sv_handoff_pass_all(sv_fcgi_server *s);

/* Receives one connection from the pool's queue into the free slot c. */
void sv_handoff_take(sv_worker *w, sv_fcgi_conn *c);

/* Are connections waiting in the pool's queue? */
int sv_handoff_pending(const sv_worker *w);

/* Installs, for the life of s, the database wait hook that passes on
 * requests arriving while the current one waits on PostgreSQL (with
 * waiting_mask, the signals the worker waits for, let in meanwhile), and
 * the request context's shed hook. No-op outside a pool. */
void sv_handoff_install(sv_fcgi_server *s, sv_db_wait_hook *hook, const sigset_t *waiting_mask);
void sv_handoff_uninstall(sv_fcgi_server *s);

#endif
