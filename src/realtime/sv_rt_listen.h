/* The daemon's listening socket: opened by streamvibe-realtime itself,
 * or by the pool master (as root, before it drops privileges) and handed
 * to the daemon as descriptor 3 the way systemd's socket activation does
 * (LISTEN_FDS=1, LISTEN_PID=<the daemon>), which a systemd unit with a
 * .socket can use as well. The master keeps its copy, so connections
 * that arrive while the daemon is being respawned wait in the backlog. */
#ifndef SV_RT_LISTEN_H
#define SV_RT_LISTEN_H

#include <stddef.h>

#include "core/sv_config.h"

/* The first inherited descriptor of the socket-activation protocol. */
#define SV_RT_LISTEN_FD 3

/* True when realtime_listen names a unix socket (contains a '/'). */
int sv_rt_listen_is_unix(const char *listen);

/* Opens realtime_listen: a path (a unix socket, mode 0666: nginx's user
 * connects to it; a stale socket file is replaced, a live one refused)
 * or host:port / [v6]:port. Non-blocking, close-on-exec. Returns the
 * descriptor, or -1 with a message in err. */
int sv_rt_listen_open(const sv_config *cfg, char *err, size_t errlen);

/* The socket handed over by socket activation (LISTEN_PID is us and
 * LISTEN_FDS >= 1), made non-blocking and close-on-exec, the variables
 * removed; -1 when there is none. */
int sv_rt_listen_inherited(void);

#endif
