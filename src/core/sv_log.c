#include "core/sv_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int sv_log_fd = STDERR_FILENO;
static pid_t sv_log_pid;
static char *sv_log_buf;
static size_t sv_log_cap;
static uint32_t *sv_log_len;

void sv_log_write_raw(const char *data, size_t len)
{
    /* A short write to a log must never take down a worker. */
    ssize_t w = write(sv_log_fd, data, len);
    (void)w;
}

void sv_log_set_buffer(char *buf, size_t cap, uint32_t *len)
{
    sv_log_flush();
    sv_log_buf = buf && len && cap > 0 ? buf : NULL;
    sv_log_cap = cap;
    sv_log_len = len;
    if (sv_log_buf != NULL)
        __atomic_store_n(sv_log_len, 0, __ATOMIC_RELEASE);
}

int sv_log_pending(void)
{
    return sv_log_buf != NULL && *sv_log_len > 0;
}

void sv_log_flush(void)
{
    if (!sv_log_pending())
        return;
    sv_log_write_raw(sv_log_buf, *sv_log_len);
    __atomic_store_n(sv_log_len, 0, __ATOMIC_RELEASE);
}

void sv_log_set_pid(pid_t pid)
{
    sv_log_pid = pid;
}

int sv_log_open(const char *path)
{
    sv_log_flush();
    if (path == NULL || *path == '\0' || strcmp(path, "-") == 0) {
        if (sv_log_fd != STDERR_FILENO)
            close(sv_log_fd);
        sv_log_fd = STDERR_FILENO;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    if (sv_log_fd != STDERR_FILENO)
        close(sv_log_fd);
    sv_log_fd = fd;
    return 0;
}

void sv_log_use_fd(int fd)
{
    sv_log_flush();
    if (sv_log_fd != STDERR_FILENO && sv_log_fd != fd)
        close(sv_log_fd);
    sv_log_fd = fd;
}

int sv_log_give_to(uid_t uid)
{
    struct stat st;
    if (sv_log_fd == STDERR_FILENO)
        return 0;
    if (fstat(sv_log_fd, &st) != 0)
        return -1;
    if (st.st_uid == uid)
        return 0;
    return fchown(sv_log_fd, uid, (gid_t)-1);
}

/* "YYYY-MM-DDTHH:MM:SS" of the current second: a worker logs every
 * request, and the date changes once a second. */
static const char *sv_log_second(time_t sec)
{
    static time_t cached = (time_t)-1;
    static char text[64];
    if (sec != cached) {
        struct tm tm;
        gmtime_r(&sec, &tm);
        snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached = sec;
    }
    return text;
}

void sv_log(const char *level, const char *event, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    int saved_errno = errno;

    gettimeofday(&tv, NULL);
    int n = snprintf(line, sizeof(line), "ts=%s.%03ldZ level=%s pid=%d event=%s ",
                     sv_log_second(tv.tv_sec), (long)(tv.tv_usec / 1000), level,
                     (int)(sv_log_pid ? sv_log_pid : getpid()), event);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;

    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';

    if (sv_log_buf != NULL && len <= sv_log_cap) {
        if (*sv_log_len + len > sv_log_cap)
            sv_log_flush();
        uint32_t held = *sv_log_len;
        memcpy(sv_log_buf + held, line, len);
        __atomic_store_n(sv_log_len, held + (uint32_t)len, __ATOMIC_RELEASE);
        if (strcmp(level, "info") != 0)
            sv_log_flush();
    } else {
        sv_log_flush();
        sv_log_write_raw(line, len);
    }
    errno = saved_errno;
}

const char *sv_log_quote(const char *s, char *out, unsigned outlen)
{
    static const char hex[] = "0123456789abcdef";
    unsigned o = 0;
    int needs_quotes = (s == NULL || *s == '\0');

    if (s == NULL)
        s = "";
    for (const char *p = s; *p; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20 || *p == 0x7f)
            needs_quotes = 1;
    if (outlen < 8) {
        if (outlen)
            out[0] = '\0';
        return out;
    }
    if (needs_quotes)
        out[o++] = '"';
    for (const char *p = s; *p && o + 6 < outlen; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    if (needs_quotes)
        out[o++] = '"';
    out[o] = '\0';
    return out;
}
