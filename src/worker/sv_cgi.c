/* Plain CGI: the one request in the environment, stdin and stdout. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "worker/sv_worker.h"

extern char **environ;

static int sv_cgi_read(void *ctx, char *buf, int len)
{
    (void)ctx;
    size_t n = fread(buf, 1, (size_t)len, stdin);
    return ferror(stdin) ? -1 : (int)n;
}

static int sv_cgi_send(void *ctx, const char *head, size_t head_len, const char *body,
                       size_t body_len)
{
    (void)ctx;
    if (fwrite(head, 1, head_len, stdout) != head_len)
        return -1;
    return body_len == 0 || fwrite(body, 1, body_len, stdout) == body_len ? 0 : -1;
}

int sv_worker_serve_cgi(sv_worker *w)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    /* A job spawned here is reaped by the kernel, never a zombie. */
    sigaction(SIGCHLD, &sa, NULL);

    sv_io io = { environ, sv_cgi_read, sv_cgi_send, NULL };
    sv_park park;
    if (sv_worker_handle(w, &io, &park) == SV_PARK)
        sv_worker_wait_parked(w, &io, &park);
    return fflush(stdout) == 0 ? 0 : 1;
}
