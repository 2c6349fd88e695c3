/* The --pool master (php-fpm's "static" process manager): owns the
 * listening socket and the scoreboard, pre-forks workers, respawns the
 * ones that die, kills requests that overrun request_timeout, reloads on
 * SIGHUP without dropping a request, and stops cleanly on SIGTERM. */
#ifndef SV_POOL_H
#define SV_POOL_H

#include <stddef.h>

#include "sv_config.h"

/* Opens the FastCGI listening socket described by cfg->listen: a unix
 * socket path (a stale socket file is replaced, a live one is an error;
 * mode/owner/group applied) or "host:port". Returns the fd or -1 with a
 * message in err. */
int sv_pool_listen(const sv_config *cfg, char *err, size_t errlen);

/* Runs the master until it is stopped. cfg was loaded from config_path
 * (may be NULL), which SIGHUP reads again. Returns the exit status. */
int sv_pool_run(sv_config *cfg, const char *config_path);

#endif
