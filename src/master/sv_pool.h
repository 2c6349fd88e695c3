/* The --pool master (php-fpm's "static" process manager): owns the
 * listening socket and the scoreboard, pre-forks workers, respawns the
 * ones that die, kills requests that overrun request_timeout, reloads on
 * SIGHUP without dropping a request, and stops cleanly on SIGTERM. */
#ifndef SV_POOL_H
#define SV_POOL_H

#include "core/sv_config.h"

/* Runs the master until it is stopped. cfg was loaded from config_path
 * (may be NULL), which SIGHUP reads again; the pool takes over cfg's
 * strings. Returns the exit status. */
int sv_pool_run(sv_config *cfg, const char *config_path);

#endif
