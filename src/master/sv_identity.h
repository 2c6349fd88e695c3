/* Who workers run as (php-fpm's user/group): the master keeps root (it
 * binds the socket, reopens the log and signals workers); the workers,
 * which parse what clients send, become `user`. */
#ifndef SV_IDENTITY_H
#define SV_IDENTITY_H

#include <stddef.h>
#include <sys/types.h>

#include "core/sv_config.h"

/* The resolved cfg->user/group; drop = 0 leaves processes as they are. */
typedef struct sv_identity {
    int   drop;
    uid_t uid;
    gid_t gid;
    char  user[64];
    char  home[256];
} sv_identity;

/* Resolves cfg->user/group. Without root they may only name the running
 * user. SV_OK, or SV_ERROR with a message in err. */
int sv_identity_resolve(const sv_config *cfg, sv_identity *id, char *err, size_t errlen);

/* Becomes id (no-op when id->drop is 0), for good. SV_OK or SV_ERROR. */
int sv_identity_drop(const sv_identity *id);

#endif
