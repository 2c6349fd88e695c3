#include "master/sv_listen.h"

#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int sv_listen_unix(const sv_config *cfg, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    const char *path = cfg->listen;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "listen path too long: %s", path);
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    /* A socket file nobody accepts on is left over from a crash; one that
     * answers belongs to a running server we must not steal from. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "%s exists and is not a socket", path);
            close(fd);
            return -1;
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            snprintf(err, errlen, "%s is in use by another server", path);
            close(fd);
            return -1;
        }
        close(fd);
        unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(err, errlen, "socket: %s", strerror(errno));
            return -1;
        }
    }

    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc != 0) {
        snprintf(err, errlen, "bind %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (chmod(path, (mode_t)cfg->listen_mode) != 0) {
        snprintf(err, errlen, "chmod %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    if (cfg->listen_owner[0]) {
        struct passwd *pw = getpwnam(cfg->listen_owner);
        if (pw == NULL) {
            snprintf(err, errlen, "listen_owner: no user %s", cfg->listen_owner);
            close(fd);
            return -1;
        }
        uid = pw->pw_uid;
    }
    if (cfg->listen_group[0]) {
        struct group *gr = getgrnam(cfg->listen_group);
        if (gr == NULL) {
            snprintf(err, errlen, "listen_group: no group %s", cfg->listen_group);
            close(fd);
            return -1;
        }
        gid = gr->gr_gid;
    }
    if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(path, uid, gid) != 0) {
        snprintf(err, errlen, "chown %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, cfg->listen_backlog) != 0) {
        snprintf(err, errlen, "listen %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int sv_listen_tcp(const sv_config *cfg, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(cfg->listen, ':');
    size_t hlen = (size_t)(colon - cfg->listen);
    if (hlen >= sizeof(host)) {
        snprintf(err, errlen, "listen: host too long");
        return -1;
    }
    memcpy(host, cfg->listen, hlen);
    host[hlen] = '\0';
    if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') {
        memmove(host, host + 1, hlen - 2);
        host[hlen - 2] = '\0';
    }

    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE };
    struct addrinfo *ai;
    int gai = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
    if (gai != 0) {
        snprintf(err, errlen, "listen %s: %s", cfg->listen, gai_strerror(gai));
        return -1;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, cfg->listen_backlog) != 0) {
        snprintf(err, errlen, "listen %s: %s", cfg->listen, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    return fd;
}

int sv_listen_open(const sv_config *cfg, char *err, size_t errlen)
{
    if (sv_listen_is_unix(cfg))
        return sv_listen_unix(cfg, err, errlen);
    return sv_listen_tcp(cfg, err, errlen);
}

int sv_listen_is_unix(const sv_config *cfg)
{
    return cfg->listen[0] == '/' || cfg->listen[0] == '.' || strchr(cfg->listen, ':') == NULL;
}

