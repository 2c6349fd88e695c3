/* sd_notify(3) without libsystemd: the protocol is one datagram of text
 * to a unix socket, documented by systemd as a stable interface meant to
 * be reimplemented, and linking a library for one sendto() is not worth
 * a dependency for a binary that also runs as a CGI program. */
#include "master/sv_notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/sv_err.h"

int sv_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0')
        return SV_OK;
    /* A path or an abstract name ('@'); anything else (systemd 253's
     * vsock addresses) is not for us. */
    size_t len = strlen(path);
    struct sockaddr_un addr;
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(addr.sun_path)) {
        errno = EAFNOSUPPORT;
        return SV_ERROR;
    }
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, path, len);
    if (path[0] == '@')
        addr.sun_path[0] = '\0';
    socklen_t addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return SV_ERROR;
    ssize_t sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, addrlen);
    int saved = errno;
    close(fd);
    errno = saved;
    return sent == (ssize_t)strlen(state) ? SV_OK : SV_ERROR;
}
