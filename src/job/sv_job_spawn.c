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

/* A close-on-exec copy of fd at 6 or above, so that dup2 onto 3, 4 and
 * 5 cannot overwrite one descriptor with another (and always clears the
 * close-on-exec flag in the job). -1 stays -1. */
static int sv_job_spawn_high(int fd)
{
    return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 6);
}

pid_t sv_job_spawn(const char *program, char *const args[], int keep_fd, int pass_fd, int config_fd,
                   const sigset_t *blocked)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t mask, all;
    pid_t pid = -1;
    int rc = 0;

    if (blocked != NULL)
        mask = *blocked;
    else
        sigemptyset(&mask);
    /* The pool's reload signals, sent to a whole group, are ignored by
     * streamvibe-job (sv_job_ignore_reload_signals); until it gets there
     * their default would end it: held pending, and dropped once ignored. */
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGUSR2);
    sigfillset(&all);
    /* The job's descriptors 3, 4 and 5, in that order. */
    int given[3] = { keep_fd, pass_fd, config_fd }, high[3] = { -1, -1, -1 }, last = 2;
    for (int i = 0; i < 3; i++) {
        if (given[i] < 0)
            continue;
        last = 3 + i;
        if ((high[i] = sv_job_spawn_high(given[i])) < 0)
            rc = errno;
    }
    if (rc != 0)
        goto out;
    if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
        goto out;
    if ((rc = posix_spawnattr_init(&attr)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        goto out;
    }
    /* A job must outlive the worker and never be hit by a signal meant
     * for the pool: a session (and process group) of its own. */
    rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                             POSIX_SPAWN_SETSIGDEF);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&attr, &mask);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&attr, &all);
    for (int fd = 0; rc == 0 && fd < 3; fd++)
        rc = posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
    /* A slot below one in use must not keep whatever the caller has there. */
    for (int i = 0; rc == 0 && 3 + i <= last; i++)
        rc = high[i] >= 0 ? posix_spawn_file_actions_adddup2(&fa, high[i], 3 + i)
                          : posix_spawn_file_actions_addopen(&fa, 3 + i, "/dev/null", O_RDONLY, 0);
    /* Everything else the worker has open stays behind, whatever its
     * close-on-exec flag says. */
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, last + 1);
    if (rc == 0)
        rc = posix_spawn(&pid, program, &fa, &attr, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
out:
    for (int i = 0; i < 3; i++)
        if (high[i] >= 0)
            close(high[i]);
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
