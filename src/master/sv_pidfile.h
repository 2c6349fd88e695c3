/* The pool master's pid file. */
#ifndef SV_PIDFILE_H
#define SV_PIDFILE_H

#include <stddef.h>

/* Writes this process's pid to path (nothing when path is empty),
 * refusing when the file names another live process. SV_OK, or SV_ERROR
 * with a message in err. */
int sv_pidfile_write(const char *path, char *err, size_t errlen);

#endif
