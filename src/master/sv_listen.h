/* The FastCGI listening socket the pool master owns. */
#ifndef SV_LISTEN_H
#define SV_LISTEN_H

#include <stddef.h>

#include "core/sv_config.h"

/* Opens the listening socket described by cfg->listen: a unix socket
 * path (a stale socket file is replaced, a live one is an error;
 * listen_mode/owner/group applied) or "host:port". Returns the fd or -1
 * with a message in err. */
int sv_listen_open(const sv_config *cfg, char *err, size_t errlen);

/* 1 when cfg->listen names a unix socket (a path) rather than host:port. */
int sv_listen_is_unix(const sv_config *cfg);

#endif
