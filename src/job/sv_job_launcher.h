/* The job launcher: a streamvibe-job --launcher that the pool master
 * keeps running as the workers' user. It forks each job a worker hands
 * it (already initialised: no exec, no dynamic loading) and runs the
 * jobs' statements on one database connection that it keeps. The jobs it
 * forks are what posix_spawn would have made: a session of their own, no
 * descriptor but the descriptor's lock (3) and the keys' pipe (4), the
 * default signal dispositions, a title naming the descriptor. The
 * protocol is in job/sv_job_relay.h. */
#ifndef SV_JOB_LAUNCHER_H
#define SV_JOB_LAUNCHER_H

#include <signal.h>

#include "core/sv_config.h"

/* Serves until *stop is set (SIGTERM); opens log_file again when
 * *reopen is set (SIGUSR1, after a log rotation). Returns the exit
 * status. Jobs keep running after it returns: they are not waited for. */
int sv_job_launcher_run(const sv_config *cfg, volatile sig_atomic_t *stop, volatile sig_atomic_t *reopen);

#endif
