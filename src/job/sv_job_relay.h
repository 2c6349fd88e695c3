/* Talking to the job launcher (job/sv_job_launcher.c), the long-lived
 * streamvibe-job the pool master runs: a worker hands it an accepted job
 * to fork, and a job sends it its statements to run on the launcher's
 * database connections (one per serving process). On this kind of machine a process exec'd with
 * libcurl and libpq costs ~17 ms of CPU before main() and a PostgreSQL
 * connection ~20 ms (bench/README.md, "Jobs"); through the launcher a job
 * pays for neither. Every call falls back: without a launcher (CGI,
 * spawn-fcgi, mod_fcgid, or while the pool restarts it) the caller does
 * the work itself, as before.
 *
 * One connection per exchange on a SOCK_SEQPACKET socket in the spool
 * directory (mode 0700, the workers' user's), so only that user reaches
 * it, and a message is never split or merged. The launcher's first
 * message on each is "launcher <pid>": which of its processes took it. */
#ifndef SV_JOB_RELAY_H
#define SV_JOB_RELAY_H

#include <stddef.h>
#include <sys/types.h>

#include <libpq-fe.h>

/* Largest message either way: within the socket's default send buffer,
 * so a send never fails for size. A larger statement or result goes
 * directly to PostgreSQL instead. */
#define SV_JOB_RELAY_MAX (160 * 1024)

/* The launcher's socket path in spool_dir into buf; SV_ERROR when it does
 * not fit an AF_UNIX address. */
int sv_job_relay_path(const char *spool_dir, char *buf, size_t len);

/* 1 when a launcher accepts connections on spool_dir's socket. */
int sv_job_relay_listening(const char *spool_dir);

/* Asks the launcher to start the job whose descriptor is at path, passing
 * lock_fd (the descriptor's lock) and vault_fd (the keys' pipe, or -1).
 * Returns the job's pid; 0 when the launcher took the request but its
 * answer was lost (the descriptor's lock then tells whether it runs);
 * -1 with errno when no launcher took it (nothing was passed: start the
 * job yourself). The caller keeps and closes its own descriptors. */
pid_t sv_job_relay_spawn(const char *spool_dir, const char *path, int lock_fd, int vault_fd);

/* Routes sv_job_sql and sv_job_finish of this process through the
 * launcher of spool_dir (kept, not copied). */
void sv_job_relay_enable(const char *spool_dir);

/* How a relayed statement went when sv_job_relay_sql returns NULL. */
typedef enum {
    SV_JOB_RELAY_FAILED,       /* it ran and failed (error says why) */
    SV_JOB_RELAY_UNREACHABLE,  /* no launcher took it (none there, or none answered "ready"
                                  before it stopped, died or ran out of time): nothing ran,
                                  run it yourself */
    SV_JOB_RELAY_LOST,         /* told "go", but no answer came (the launcher died, stopped
                                  or ran out of time): it may have run */
} sv_job_relay_outcome;

/* Runs sql as service_role on the launcher's connection, if relaying is
 * enabled: sends it, waits for "ready", answers "go", waits for the
 * result. Each wait lasts up to 60 s, less for a launcher that stays
 * stopped (SIGSTOP, a debugger) for 2 s. The result (the caller
 * PQclears), or NULL with *outcome and the reason in error. */
PGresult *sv_job_relay_sql(const char *sql, int n, const char *const *values, char *error,
                           size_t errlen, sv_job_relay_outcome *outcome);

#endif
