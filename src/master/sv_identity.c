#include "master/sv_identity.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sv_err.h"

/* The master keeps root (it binds the socket, reopens the log and
 * signals workers); the workers, which parse what clients send, run as
 * `user` (php-fpm's model). Without root the setting can only name the
 * user the pool already runs as. */
int sv_identity_resolve(const sv_config *cfg, sv_identity *id, char *err, size_t errlen)
{
    memset(id, 0, sizeof(*id));
    if (cfg->user[0] == '\0') {
        if (cfg->group[0] != '\0') {
            snprintf(err, errlen, "group is set but user is not");
            return SV_ERROR;
        }
        return SV_OK;
    }
    struct passwd *pw = getpwnam(cfg->user);
    if (pw == NULL || strlen(cfg->user) >= sizeof(id->user)) {
        snprintf(err, errlen, "user: no user %s", cfg->user);
        return SV_ERROR;
    }
    id->uid = pw->pw_uid;
    id->gid = pw->pw_gid;
    snprintf(id->home, sizeof(id->home), "%s", pw->pw_dir ? pw->pw_dir : "/");
    if (cfg->group[0] != '\0') {
        struct group *gr = getgrnam(cfg->group);
        if (gr == NULL) {
            snprintf(err, errlen, "group: no group %s", cfg->group);
            return SV_ERROR;
        }
        id->gid = gr->gr_gid;
    }
    if (geteuid() != 0) {
        if (id->uid != geteuid() || id->gid != getegid()) {
            snprintf(err, errlen, "user = %s needs the pool to be started as root", cfg->user);
            return SV_ERROR;
        }
        return SV_OK;
    }
    strcpy(id->user, cfg->user);
    id->drop = 1;
    return SV_OK;
}

/* In a new worker, before it reads anything a client sent. */
int sv_identity_drop(const sv_identity *id)
{
    if (!id->drop)
        return SV_OK;
    if (initgroups(id->user, id->gid) != 0 || setgid(id->gid) != 0 || setuid(id->uid) != 0)
        return SV_ERROR;
    /* libpq looks for ~/.pgpass and ~/.postgresql/ under HOME: the user's,
     * not root's (which it could not read any more). */
    setenv("HOME", id->home, 1);
    /* setuid from root drops every id; make sure there is no way back. */
    if (id->uid != 0 && (setuid(0) == 0 || geteuid() != id->uid || getegid() != id->gid)) {
        errno = EPERM;
        return SV_ERROR;
    }
    return SV_OK;
}

