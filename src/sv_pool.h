/* The --pool master (php-fpm's "static" process manager): owns the
 * listening socket and the scoreboard, pre-forks workers, respawns the
 * ones that die, kills requests that overrun request_timeout, reloads on
 * SIGHUP without dropping a request, and stops cleanly on SIGTERM. */
#ifndef SV_POOL_H
#define SV_POOL_H

#include <stddef.h>
#include <sys/types.h>

#include "sv_config.h"

/* Who the workers run as (cfg->user, cfg->group); drop = 0 leaves them
 * as the process that started them. */
typedef struct sv_pool_identity {
    int   drop;
    uid_t uid;
    gid_t gid;
    char  user[64];
    char  home[256];
} sv_pool_identity;

/* Resolves cfg->user/group. Without root they may only name the running
 * user. Returns 0, or -1 with a message in err. */
int sv_pool_resolve_identity(const sv_config *cfg, sv_pool_identity *id, char *err, size_t errlen);

/* Becomes id (no-op when id->drop is 0), for good. Returns 0 or -1. */
int sv_pool_drop_privileges(const sv_pool_identity *id);

/* Opens the FastCGI listening socket described by cfg->listen: a unix
 * socket path (a stale socket file is replaced, a live one is an error;
 * mode/owner/group applied) or "host:port". Returns the fd or -1 with a
 * message in err. */
int sv_pool_listen(const sv_config *cfg, char *err, size_t errlen);

/* Runs the master until it is stopped. cfg was loaded from config_path
 * (may be NULL), which SIGHUP reads again. Returns the exit status. */
int sv_pool_run(sv_config *cfg, const char *config_path);

#endif
