/* The job spool: one descriptor file per job accepted on this host, in
 * the spool directory (job_spool_dir). It exists only for crash
 * recovery: a job's state is in PostgreSQL (sql/040_jobs.sql).
 *
 * A descriptor is created locked (flock) and its lock passes to the
 * streamvibe-job supervisor, which holds it for its whole life. A
 * descriptor whose lock can be taken therefore has no live owner: the
 * reconciler (sv_job_reconcile) finishes such a job as interrupted,
 * without trusting pids. */
#ifndef SV_SPOOL_H
#define SV_SPOOL_H

#include <stddef.h>

#include "core/sv_err.h"

/* Longest descriptor: the job's payload is bounded by body_limit. */
#define SV_SPOOL_MAX_BYTES (4L << 20)

/* Makes sure dir exists (mode 0700) and is usable. SV_OK or SV_ERROR
 * with a message in err. */
int sv_spool_prepare(const char *dir, char *err, size_t errlen);

/* Serialises accepts on this host: returns a descriptor holding the
 * spool's accept lock (close it to release), or -1. */
int sv_spool_lock_accepts(const char *dir);

/* How many descriptors (jobs accepted and not finished) the spool holds. */
int sv_spool_count(const char *dir);

/* Writes the descriptor of job_id with content json, already locked:
 * returns an open descriptor holding the lock (to hand to the job), and
 * the file's path in path (size pathlen), or -1. */
int sv_spool_create(const char *dir, const char *job_id, const char *json, char *path,
                    size_t pathlen);

/* Reads the descriptor at path into a malloc'd NUL-terminated string
 * (caller frees), or NULL. */
char *sv_spool_read(const char *path);

/* Replaces the content of the descriptor at path, keeping its lock (fd
 * is the locked descriptor). SV_OK or SV_ERROR. */
int sv_spool_rewrite(int fd, const char *json);

/* Calls fn(path, fd, arg) for every descriptor of dir whose lock this
 * process could take (its owner is gone); fd holds that lock and is
 * closed after fn returns. Returns how many were found. */
int sv_spool_each_orphan(const char *dir, void (*fn)(const char *path, int fd, void *arg),
                         void *arg);

/* Removes the temporary files of accepts that died between writing and
 * renaming their descriptor (no job was ever spawned for those): the
 * unlocked ones older than a minute. */
void sv_spool_sweep_temporaries(const char *dir);

#endif
