/* The job launcher: a streamvibe-job --launcher that the pool master
 * keeps running as the workers' user. Its job_launcher_processes serving
 * processes (forked once it is set up, started again when they die) each
 * fork the jobs workers hand them (already initialised: no exec, no
 * dynamic loading) and run the jobs' statements on a database connection
 * of their own, so that a statement waiting on a lock holds up only one
 * of them. The jobs it
 * forks are what posix_spawn would have made: a session of their own, no
 * descriptor but the descriptor's lock (3) and the keys' pipe (4), the
 * default signal dispositions, a title naming the descriptor. The
 * protocol is in job/sv_job_relay.h. */
#ifndef SV_JOB_LAUNCHER_H
#define SV_JOB_LAUNCHER_H

#include <signal.h>

#include "core/sv_config.h"

/* Serves until *stop is set (SIGTERM) or the pool master is gone; opens
 * log_file again when *reopen is set (SIGUSR1, after a log rotation), and
 * has its serving processes do so. Returns the exit status, in the
 * launcher and, when they end, in each serving process (which returns
 * here too, to end as the program does). Jobs keep running after it
 * returns: they are not waited for. */
int sv_job_launcher_run(const sv_config *cfg, volatile sig_atomic_t *stop, volatile sig_atomic_t *reopen);

#endif
