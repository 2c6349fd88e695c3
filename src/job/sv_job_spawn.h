/* The one place a job process is started (redis's single fork point):
 * streamvibe-job, detached. */
#ifndef SV_JOB_SPAWN_H
#define SV_JOB_SPAWN_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/sv_config.h"

/* Starts program (streamvibe-job) with args (NULL-terminated, args[0]
 * being the program) in a session of its own, with every signal at its
 * default and unblocked but those in blocked (NULL: none) and SIGHUP and
 * SIGUSR2 (blocked until streamvibe-job ignores them), stdin/stdout/stderr
 * on /dev/null, and no
 * inherited descriptor but keep_fd, which becomes its descriptor 3 (the
 * job's locked spool descriptor; -1 for none), and pass_fd, which becomes
 * its descriptor 4 (the read end of the pipe the vault's keys come
 * through, which the job reads and closes at once; -1 for none), and
 * config_fd, which becomes its descriptor 5 (the read end of the pipe its
 * configuration comes through: --config-fd; -1 for none). Nothing of the
 * caller stays open in it: not the web server's socket, not the database
 * connection, not the listening socket. Returns the pid, or -1 with
 * errno set. The caller does not wait for it: workers ignore SIGCHLD,
 * so a job that ends is reaped by the kernel, never a zombie. */
pid_t sv_job_spawn(const char *program, char *const args[], int keep_fd, int pass_fd, int config_fd,
                   const sigset_t *blocked);

/* streamvibe-job's path: job_program, else the streamvibe-job next to
 * the running program. Written into buf. */
const char *sv_job_program(const sv_config *cfg, char *buf, size_t len);

#endif
