/* One line per event, key=value, written with a single write(2) on an
 * O_APPEND descriptor so lines from concurrent workers never interleave. */
#ifndef SV_LOG_H
#define SV_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Opens path ("-" or empty: stderr) for appending. Safe to call again
 * (SIGHUP, SIGUSR1) to follow a rotated file: held lines go to the old
 * file first, and on failure the old file stays in use. Returns 0 or -1
 * with errno set. */
int sv_log_open(const char *path);

/* Logs to fd from now on (a descriptor the process inherited, e.g. a
 * pipe to the pool master that writes its lines out); sv_log_open may
 * replace it. */
void sv_log_use_fd(int fd);
/* Makes uid the owner of the open log file (nothing for stderr, or when
 * it already is), so that workers running as uid can open it again by
 * name after a rotation, as nginx does with its worker user. Returns 0
 * or -1 with errno set. */
int sv_log_give_to(uid_t uid);

/* Records the pid to print, saving a syscall per line; call it again in
 * every forked child (0: ask the kernel each time). */
void sv_log_set_pid(pid_t pid);

/* Writes "ts=... level=LEVEL pid=PID event=EVENT " followed by the
 * formatted key=value pairs and a newline. */
void sv_log(const char *level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Buffering: info lines are held in buf (cap bytes) and written together
 * by sv_log_flush or when the buffer fills; a warn or error line flushes
 * at once, after the lines before it. A busy worker then writes its
 * access lines in batches instead of one write per request; it flushes
 * whenever it has nothing to do, so lines are late only while it is busy
 * with back-to-back requests. A batch is one write of whole lines, so
 * lines still never interleave. *len is the length of the whole lines
 * held, stored after each line is complete: with buf and len in shared
 * memory, the pool master writes out what a killed worker still held.
 * buf NULL: unbuffered again (after a flush). */
void sv_log_set_buffer(char *buf, size_t cap, uint32_t *len);
int sv_log_pending(void);
void sv_log_flush(void);
/* Appends data as is (whole lines) to the log. */
void sv_log_write_raw(const char *data, size_t len);

#define sv_log_info(event, ...)  sv_log("info", event, __VA_ARGS__)
#define sv_log_warn(event, ...)  sv_log("warn", event, __VA_ARGS__)
#define sv_log_error(event, ...) sv_log("error", event, __VA_ARGS__)

/* Copies s into out (size outlen) as a log value: quoted when it holds
 * spaces, quotes or '=', with control characters escaped, so a client
 * cannot forge log lines through a path or header. */
const char *sv_log_quote(const char *s, char *out, unsigned outlen);

#endif
