#include "master/sv_pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/sv_err.h"

int sv_pidfile_write(const char *path, char *err, size_t errlen)
{
    if (path == NULL || *path == '\0')
        return SV_OK;
    FILE *fp = fopen(path, "r");
    if (fp != NULL) {
        long pid = 0;
        if (fscanf(fp, "%ld", &pid) == 1 && pid > 0 && pid != getpid() && kill((pid_t)pid, 0) == 0) {
            fclose(fp);
            snprintf(err, errlen, "%s: server already running as pid %ld", path, pid);
            return SV_ERROR;
        }
        fclose(fp);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return SV_ERROR;
    }
    char text[32];
    int n = snprintf(text, sizeof(text), "%d\n", (int)getpid());
    if (write(fd, text, (size_t)n) != n) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return SV_ERROR;
    }
    close(fd);
    return SV_OK;
}

