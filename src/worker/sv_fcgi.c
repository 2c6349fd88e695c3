#include "worker/sv_fcgi.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

enum {
    SV_FCGI_VERSION = 1,
    SV_FCGI_END_REQUEST = 3,
    SV_FCGI_STDOUT = 6,
    SV_FCGI_HEADER_LEN = 8,
    /* Records per writev: 32 x 64 kB; a larger answer takes several. */
    SV_FCGI_BATCH = 32,
};

static void sv_fcgi_header(unsigned char *h, int type, int request_id, size_t content_len)
{
    h[0] = SV_FCGI_VERSION;
    h[1] = (unsigned char)type;
    h[2] = (unsigned char)((request_id >> 8) & 0xff);
    h[3] = (unsigned char)(request_id & 0xff);
    h[4] = (unsigned char)((content_len >> 8) & 0xff);
    h[5] = (unsigned char)(content_len & 0xff);
    h[6] = 0; /* no padding */
    h[7] = 0;
}

static int sv_writev_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        size_t done = (size_t)w;
        while (n > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

int sv_fcgi_send_response(int fd, int request_id, const char *head, size_t head_len,
                          const char *body, size_t body_len)
{
    const char *part[2] = { head, body };
    size_t part_len[2] = { head_len, body_len };
    int p = 0;
    size_t off = 0, left = head_len + body_len;

    /* Each record: its header and at most two slices (the end of head
     * and the start of body); plus the three closing pieces. */
    unsigned char headers[SV_FCGI_BATCH][SV_FCGI_HEADER_LEN];
    unsigned char trailer[3 * SV_FCGI_HEADER_LEN];
    struct iovec iov[SV_FCGI_BATCH * 3 + 1];
    int niov = 0, nrec = 0;

    while (left > 0) {
        size_t rec = left > SV_FCGI_MAX_CONTENT ? SV_FCGI_MAX_CONTENT : left;
        sv_fcgi_header(headers[nrec], SV_FCGI_STDOUT, request_id, rec);
        iov[niov++] = (struct iovec){ headers[nrec], SV_FCGI_HEADER_LEN };
        nrec++;
        left -= rec;
        while (rec > 0) {
            while (off == part_len[p]) {
                p++;
                off = 0;
            }
            size_t take = part_len[p] - off < rec ? part_len[p] - off : rec;
            iov[niov++] = (struct iovec){ (char *)part[p] + off, take };
            off += take;
            rec -= take;
        }
        if (nrec == SV_FCGI_BATCH && left > 0) {
            if (sv_writev_all(fd, iov, niov) != 0)
                return -1;
            niov = nrec = 0;
        }
    }

    /* The empty FCGI_STDOUT record, then FCGI_END_REQUEST whose 8-byte
     * body is appStatus 0 and FCGI_REQUEST_COMPLETE (0). */
    memset(trailer, 0, sizeof(trailer));
    sv_fcgi_header(trailer, SV_FCGI_STDOUT, request_id, 0);
    sv_fcgi_header(trailer + SV_FCGI_HEADER_LEN, SV_FCGI_END_REQUEST, request_id, 8);
    iov[niov++] = (struct iovec){ trailer, sizeof(trailer) };
    return sv_writev_all(fd, iov, niov);
}
