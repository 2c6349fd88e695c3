#include "realtime/sv_rt_listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int sv_rt_listen_is_unix(const char *listen)
{
    return strchr(listen, '/') != NULL;
}

int sv_rt_listen_open(const sv_config *cfg, char *err, size_t errlen)
{
    const char *spec = cfg->realtime_listen;
    int fd;
    if (sv_rt_listen_is_unix(spec)) {
        struct sockaddr_un sun;
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        if (strlen(spec) >= sizeof(sun.sun_path)) {
            snprintf(err, errlen, "realtime_listen: path too long: %s", spec);
            return -1;
        }
        strcpy(sun.sun_path, spec);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(err, errlen, "socket: %s", strerror(errno));
            return -1;
        }
        /* A socket file left by a process that is gone: replace it;
         * one that answers belongs to a running daemon. */
        struct stat st;
        if (lstat(spec, &st) == 0 && S_ISSOCK(st.st_mode)) {
            int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            int live = probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0;
            if (probe >= 0)
                close(probe);
            if (live) {
                snprintf(err, errlen, "realtime_listen: %s is in use", spec);
                close(fd);
                return -1;
            }
            unlink(spec);
        }
        mode_t old = umask(0);
        int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
        umask(old);
        if (rc != 0 || chmod(spec, 0666) != 0) {
            snprintf(err, errlen, "bind %s: %s", spec, strerror(errno));
            close(fd);
            return -1;
        }
    } else {
        char host[256];
        const char *port;
        const char *colon = strrchr(spec, ':');
        if (colon == NULL || colon == spec || colon[1] == '\0') {
            snprintf(err, errlen, "realtime_listen: expected host:port or a socket path, got \"%s\"", spec);
            return -1;
        }
        size_t hlen = (size_t)(colon - spec);
        if (spec[0] == '[' && hlen >= 2 && spec[hlen - 1] == ']') {
            spec++;
            hlen -= 2;
        }
        if (hlen >= sizeof(host)) {
            snprintf(err, errlen, "realtime_listen: host too long");
            return -1;
        }
        memcpy(host, spec, hlen);
        host[hlen] = '\0';
        port = colon + 1;
        struct addrinfo hints, *ai = NULL;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        int gai = getaddrinfo(hlen ? host : NULL, port, &hints, &ai);
        if (gai != 0) {
            snprintf(err, errlen, "realtime_listen %s: %s", cfg->realtime_listen, gai_strerror(gai));
            return -1;
        }
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            snprintf(err, errlen, "bind %s: %s", cfg->realtime_listen, strerror(errno));
            if (fd >= 0)
                close(fd);
            freeaddrinfo(ai);
            return -1;
        }
        freeaddrinfo(ai);
    }
    if (listen(fd, cfg->listen_backlog) != 0) {
        snprintf(err, errlen, "listen %s: %s", cfg->realtime_listen, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int sv_rt_listen_inherited(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    if (pid == NULL || fds == NULL || atol(pid) != (long)getpid() || atoi(fds) < 1)
        return -1;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    int fd = SV_RT_LISTEN_FD;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        return -1;
    return fd;
}
