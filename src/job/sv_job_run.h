/* streamvibe-job: the supervisor of one job, and the spool reconciler. */
#ifndef SV_JOB_RUN_H
#define SV_JOB_RUN_H

#include "core/sv_config.h"
#include "crypto/sv_vault.h"

/* Runs the job whose descriptor is at path, holding its lock on lock_fd
 * for life: the work runs in a child under the kind's wall-clock limit;
 * whatever happens to the child (success, error, crash, timeout), the
 * supervisor writes the job's one audit_log row and, for a job that did
 * not complete, gets its quota refunded (sql/040_jobs.sql). The outcome
 * is written into the descriptor first, so a database outage leaves it
 * for the reconciler instead of losing it. vault holds the keys the work
 * may need to open the user's platform token (a sync). Returns an exit
 * status. */
int sv_job_supervise(const sv_config *cfg, const sv_vault *vault, const char *path, int lock_fd);

/* Ignores SIGHUP and SIGUSR2, the pool's reload signals, in a
 * streamvibe-job process (a job's supervisor and, through fork, its
 * child; the launcher; the reconciler). They reach these processes
 * when sent to a whole group rather than to the master alone:
 * `systemctl kill -s HUP|USR2` signals every process of the unit's
 * cgroup, jobs included (a session of their own does not take them out
 * of it), and `kill -HUP -<pgid>` every process of a job. Their default
 * action would end the process, so a reload would fail and refund
 * running jobs. The master's reload replaces the launcher itself, and
 * jobs run on with the configuration they started with. Then unblocks
 * them (sv_job_spawn starts the program with them blocked, to cover the
 * time before it gets here). SIGTERM is left alone: it still ends a
 * job. */
void sv_job_ignore_reload_signals(void);

/* 1 when the job whose descriptor is at path opens sealed secrets (a
 * sync: the user's platform token), so needs the vault's keys. */
int sv_job_needs_vault(const char *path);

/* Finishes every job of the spool whose supervisor is gone (its
 * descriptor's lock can be taken): with the outcome it recorded, else
 * as interrupted. Safe to run on several hosts and alongside live
 * supervisors. Returns how many jobs it finished, or -1 when the
 * database could not be reached. */
int sv_job_reconcile(const sv_config *cfg);

#endif
