/* Preloaded (LD_PRELOAD) into a pool by t/238: sendmsg as the C library's,
 * except that after passing a descriptor (SCM_RIGHTS) it sleeps
 * SV_TEST_SENDMSG_SLEEP_MS milliseconds before returning, as a worker
 * that the scheduler leaves waiting right after it passed a connection
 * on a loaded machine. Built by the test with the system's cc. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

typedef ssize_t (*sv_sendmsg_fn)(int, const struct msghdr *, int);

static int sv_passes_descriptor(const struct msghdr *msg)
{
    if (msg == NULL || msg->msg_control == NULL || msg->msg_controllen < sizeof(struct cmsghdr))
        return 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm != NULL;
         cm = CMSG_NXTHDR((struct msghdr *)msg, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
            return 1;
    return 0;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    static sv_sendmsg_fn real;
    if (real == NULL) {
        void *sym = dlsym(RTLD_NEXT, "sendmsg");
        if (sym == NULL) {
            errno = ENOSYS;
            return -1;
        }
        *(void **)&real = sym;
    }
    ssize_t n = real(fd, msg, flags);
    const char *ms = getenv("SV_TEST_SENDMSG_SLEEP_MS");
    if (n >= 0 && ms != NULL && sv_passes_descriptor(msg)) {
        int saved = errno;
        long v = atol(ms);
        struct timespec left = { v / 1000, (v % 1000) * 1000000L };
        while (nanosleep(&left, &left) != 0 && errno == EINTR)
            ;
        errno = saved;
    }
    return n;
}
