#include "core/sv_proctitle.h"

#include <stdlib.h>
#include <string.h>

extern char **environ;

static char  *sv_title_area;
static size_t sv_title_len;    /* the arguments' and environment's strings */
static size_t sv_title_args;   /* the arguments' alone (the kernel's arg_end) */

void sv_proctitle_init(int argc, char **argv)
{
    if (argc <= 0 || argv[0] == NULL)
        return;
    /* The strings must be contiguous for the kernel to show what is
     * written over them: stop at the first gap. */
    char *end = argv[0] + strlen(argv[0]);
    for (int i = 1; i < argc; i++)
        if (argv[i] == end + 1)
            end = argv[i] + strlen(argv[i]);
    sv_title_args = (size_t)(end - argv[0]) + 1;
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **copy = calloc(n + 1, sizeof(*copy));
    if (copy == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        if (environ[i] == end + 1)
            end = environ[i] + strlen(environ[i]);
        if ((copy[i] = strdup(environ[i])) == NULL)
            return;
    }
    environ = copy;
    for (int i = 1; i < argc; i++)   /* they point into the area */
        argv[i] = NULL;
    sv_title_area = argv[0];
    sv_title_len = (size_t)(end - argv[0]) + 1;
}

void sv_proctitle_set(const char *title)
{
    if (sv_title_area == NULL)
        return;
    size_t len = strlen(title);
    if (len >= sv_title_len)
        len = sv_title_len - 1;
    memset(sv_title_area, 0, sv_title_len);
    memcpy(sv_title_area, title, len);
    /* Within the arguments' space, one argument per word. Beyond it the
     * kernel shows a single string, up to its first NUL, and only while
     * the byte at the arguments' end is not a NUL: the spaces stay. */
    if (len < sv_title_args) {
        for (size_t i = 0; i < len; i++)
            if (sv_title_area[i] == ' ')
                sv_title_area[i] = '\0';
    }
}
