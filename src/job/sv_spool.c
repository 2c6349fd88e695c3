#include "job/sv_spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SV_SPOOL_SUFFIX ".job"

int sv_spool_prepare(const char *dir, char *err, size_t errlen)
{
    struct stat st;

    if (dir == NULL || dir[0] != '/') {
        snprintf(err, errlen, "job_spool_dir must be an absolute path");
        return SV_ERROR;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "job_spool_dir %s: %s", dir, strerror(errno));
        return SV_ERROR;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "job_spool_dir %s: not a directory", dir);
        return SV_ERROR;
    }
    return SV_OK;
}

int sv_spool_lock_accepts(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/.accept.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int sv_spool_is_descriptor(const char *name)
{
    size_t n = strlen(name), s = strlen(SV_SPOOL_SUFFIX);
    return name[0] != '.' && n > s && strcmp(name + n - s, SV_SPOOL_SUFFIX) == 0;
}

int sv_spool_count(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;

    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL)
        n += sv_spool_is_descriptor(de->d_name);
    closedir(d);
    return n;
}

static int sv_spool_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return SV_ERROR;
        data += w;
        len -= (size_t)w;
    }
    return SV_OK;
}

/* The lock is taken on the temporary file and travels with the open
 * file through the rename: the descriptor never appears unlocked, so the
 * reconciler cannot take a job being accepted for a dead one. */
int sv_spool_create(const char *dir, const char *job_id, const char *json, char *path,
                    size_t pathlen)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, job_id);
    snprintf(path, pathlen, "%s/%s" SV_SPOOL_SUFFIX, dir, job_id);
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 || sv_spool_write_all(fd, json, strlen(json)) != SV_OK ||
        rename(tmp, path) != 0) {
        unlink(tmp);
        close(fd);
        return -1;
    }
    return fd;
}

char *sv_spool_read(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) != 0 || st.st_size < 0 || st.st_size > SV_SPOOL_MAX_BYTES) {
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf != NULL && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (buf == NULL || got != (size_t)st.st_size) {
        free(buf);
        return NULL;
    }
    buf[got] = '\0';
    return buf;
}

int sv_spool_rewrite(int fd, const char *json)
{
    if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
        return SV_ERROR;
    return sv_spool_write_all(fd, json, strlen(json));
}

int sv_spool_each_orphan(const char *dir, void (*fn)(const char *path, int fd, void *arg),
                         void *arg)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int found = 0;

    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL) {
        if (!sv_spool_is_descriptor(de->d_name))
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            found++;
            fn(path, fd, arg);
        }
        close(fd);
    }
    closedir(d);
    return found;
}

void sv_spool_sweep_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    time_t now = time(NULL);

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (de->d_name[0] != '.' || n < 5 || strcmp(de->d_name + n - 4, ".tmp") != 0)
            continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (fstat(fd, &st) == 0 && now - st.st_mtime > 60 && flock(fd, LOCK_EX | LOCK_NB) == 0)
            unlink(path);
        close(fd);
    }
    closedir(d);
}
