#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "worker/sv_fcgi.h"
#include "tap.h"

#define PARSE_MAX (4u << 20)

/* What nginx reads: records until FCGI_END_REQUEST. */
typedef struct {
    unsigned char *stdout_data;
    size_t stdout_len;
    int stdout_records;       /* with content */
    int stdout_eof;           /* the empty record seen */
    int end_request;          /* FCGI_END_REQUEST seen, after the EOF */
    int end_body_zero;        /* appStatus 0, FCGI_REQUEST_COMPLETE */
    int wrong_id;
    int max_record;
} parsed;

static int read_full(int fd, unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

static void parse_records(int fd, int request_id, parsed *p)
{
    memset(p, 0, sizeof(*p));
    p->stdout_data = malloc(PARSE_MAX);
    unsigned char h[8], content[65536 + 256];
    while (read_full(fd, h, 8) == 0) {
        size_t clen = ((size_t)h[4] << 8) | h[5];
        size_t plen = h[6];
        if (read_full(fd, content, clen + plen) != 0)
            break;
        if (((h[2] << 8) | h[3]) != request_id || h[0] != 1)
            p->wrong_id = 1;
        if ((int)clen > p->max_record)
            p->max_record = (int)clen;
        if (h[1] == 6 && clen > 0 && p->stdout_len + clen > PARSE_MAX) {
            p->wrong_id = 1; /* more than any test sends */
            break;
        } else if (h[1] == 6 && clen > 0) {
            memcpy(p->stdout_data + p->stdout_len, content, clen);
            p->stdout_len += clen;
            p->stdout_records++;
        } else if (h[1] == 6) {
            p->stdout_eof = 1;
        } else if (h[1] == 3 && p->stdout_eof) {
            static const unsigned char zero[8];
            p->end_request = 1;
            p->end_body_zero = clen == 8 && memcmp(content, zero, 8) == 0;
            break;
        }
    }
}

/* Sends on one end of a socketpair from a child (a large answer fills the
 * socket buffer) and parses on the other. */
static int send_and_parse(int request_id, const char *head, size_t head_len, const char *body,
                          size_t body_len, parsed *p)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        _exit(sv_fcgi_send_response(sv[1], request_id, head, head_len, body, body_len) == 0 ? 0 : 1);
    }
    close(sv[1]);
    parse_records(sv[0], request_id, p);
    close(sv[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(void)
{
    parsed p;
    const char *head = "Status: 200 OK\r\nContent-Length: 2\r\n\r\n";

    is_int(send_and_parse(1, head, strlen(head), "{}", 2, &p), 0, "small answer sent");
    is_int(p.stdout_records, 1, "small answer: one FCGI_STDOUT record");
    ok(p.stdout_len == strlen(head) + 2 && memcmp(p.stdout_data, head, strlen(head)) == 0 &&
       memcmp(p.stdout_data + strlen(head), "{}", 2) == 0, "head then body, byte for byte");
    ok(p.stdout_eof && p.end_request && p.end_body_zero, "empty FCGI_STDOUT, then FCGI_END_REQUEST complete");
    ok(!p.wrong_id, "every record carries the request id");
    free(p.stdout_data);

    is_int(send_and_parse(258, head, strlen(head), "", 0, &p), 0, "empty body sent");
    ok(p.stdout_len == strlen(head) && p.end_request && !p.wrong_id, "head only, request id 258 (two bytes)");
    free(p.stdout_data);

    /* Larger than one record, with the record boundary inside the body
     * and the head spanning into the first record. */
    size_t big = 3 * SV_FCGI_MAX_CONTENT + 1234;
    char *body = malloc(big);
    for (size_t i = 0; i < big; i++)
        body[i] = (char)('a' + i % 26);
    is_int(send_and_parse(1, head, strlen(head), body, big, &p), 0, "200 kB answer sent");
    is_int(p.stdout_records, 4, "split into four records");
    ok(p.max_record <= SV_FCGI_MAX_CONTENT, "no record over 65535 bytes");
    ok(p.stdout_len == strlen(head) + big && memcmp(p.stdout_data + strlen(head), body, big) == 0,
       "the body arrives whole and in order");
    ok(p.stdout_eof && p.end_request, "closed properly");
    free(p.stdout_data);

    /* More records than one writev batch. */
    size_t huge = 40 * SV_FCGI_MAX_CONTENT;
    char *hbody = malloc(huge);
    for (size_t i = 0; i < huge; i++)
        hbody[i] = (char)(i * 7);
    is_int(send_and_parse(1, head, strlen(head), hbody, huge, &p), 0, "2.6 MB answer sent");
    ok(p.stdout_len == strlen(head) + huge && memcmp(p.stdout_data + strlen(head), hbody, huge) == 0,
       "several writev batches arrive whole and in order");
    ok(p.end_request, "and end with FCGI_END_REQUEST");
    free(p.stdout_data);
    free(hbody);
    free(body);

    /* The web server has gone away: an error, not a crash (SIGPIPE is
     * the worker's to ignore). */
    signal(SIGPIPE, SIG_IGN);
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    close(sv[0]);
    errno = 0;
    is_int(sv_fcgi_send_response(sv[1], 1, head, strlen(head), "{}", 2), -1, "peer gone: -1");
    is_int(errno, EPIPE, "with EPIPE");
    close(sv[1]);

    return tap_done();
}
