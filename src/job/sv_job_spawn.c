#include "job/sv_job_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

extern char **environ;

pid_t sv_job_spawn(const char *program, char *const args[], int keep_fd)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    pid_t pid = -1;
    int rc;

    sigemptyset(&none);
    sigfillset(&all);
    /* dup2 onto itself keeps close-on-exec: clear it by hand then. */
    if (keep_fd == 3) {
        int flags = fcntl(keep_fd, F_GETFD);
        if (flags < 0 || fcntl(keep_fd, F_SETFD, flags & ~FD_CLOEXEC) != 0)
            return -1;
    }
    if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
        errno = rc;
        return -1;
    }
    if ((rc = posix_spawnattr_init(&attr)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        errno = rc;
        return -1;
    }
    /* A job must outlive the worker and never be hit by a signal meant
     * for the pool: a session (and process group) of its own. */
    rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                             POSIX_SPAWN_SETSIGDEF);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&attr, &all);
    for (int fd = 0; rc == 0 && fd < 3; fd++)
        rc = posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
    if (rc == 0 && keep_fd >= 0)
        rc = posix_spawn_file_actions_adddup2(&fa, keep_fd, 3);
    /* Everything else the worker has open stays behind, whatever its
     * close-on-exec flag says. */
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, keep_fd >= 0 ? 4 : 3);
    if (rc == 0)
        rc = posix_spawn(&pid, program, &fa, &attr, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return pid;
}

const char *sv_job_program(const sv_config *cfg, char *buf, size_t len)
{
    char self[PATH_MAX];
    if (cfg->job_program[0] != '\0') {
        snprintf(buf, len, "%s", cfg->job_program);
        return buf;
    }
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        snprintf(buf, len, "streamvibe-job");
        return buf;
    }
    self[n] = '\0';
    snprintf(buf, len, "%s/streamvibe-job", dirname(self));
    return buf;
}
