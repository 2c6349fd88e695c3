/* Telling a service manager how the pool is doing, as sd_notify(3)
 * does: "READY=1" once the socket listens and the workers are started,
 * "RELOADING=1" ... "READY=1" around a SIGHUP reload, "STOPPING=1" when
 * a stop begins. systemd's streamvibe.service is Type=notify. */
#ifndef SV_NOTIFY_H
#define SV_NOTIFY_H

/* Sends state (newline-separated VAR=value lines) to the unix datagram
 * socket named by $NOTIFY_SOCKET ('@' first: an abstract address).
 * Without $NOTIFY_SOCKET it does nothing. Returns SV_OK (also when there
 * is no socket) or SV_ERROR with errno set; callers log and go on, since
 * the pool serves either way. */
int sv_notify(const char *state);

#endif
