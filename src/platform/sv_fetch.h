/* Outbound HTTP, the one way the server talks to other services
 * (platform APIs, the AI model, IndexNow): libcurl with timeouts, TLS
 * verification on, a User-Agent, and a cap on how much of an answer is
 * read. Every base URL is configuration, so tests point them at local
 * fake servers. */
#ifndef SV_FETCH_H
#define SV_FETCH_H

#include <stddef.h>

#include "core/sv_err.h"

typedef struct sv_fetch_request {
    const char        *method;        /* "GET", "POST", …; NULL: GET */
    const char        *url;
    const char *const *headers;       /* "Name: value" lines, NULL-terminated; may be NULL */
    const char        *body;          /* sent as is; NULL: none */
    size_t             body_len;
    long               timeout_ms;    /* whole exchange; 0: 30 s */
    size_t             max_bytes;     /* of the answer's body; 0: 4 MiB */
} sv_fetch_request;

typedef struct sv_fetch_response {
    long   status;          /* HTTP status; 0 when the exchange failed */
    char  *body;            /* malloc'd, NUL-terminated (may hold NULs) */
    size_t body_len;
    /* The delay the server asked for (Retry-After as seconds or an
     * HTTP-date, or retry-after-ms), in ms; -1 when it asked none. */
    long   retry_after_ms;
    char   error[256];      /* why the exchange failed, when status is 0 */
} sv_fetch_response;

/* Initialises libcurl for the process (once, in main, before threads or
 * forks). SV_OK or SV_ERROR. */
int sv_fetch_init(void);

/* Performs one exchange. SV_OK when an answer came (whatever its
 * status), SV_ERROR when none did (connection refused, timeout, TLS,
 * an answer over max_bytes): res->error says which. res must be freed
 * with sv_fetch_free either way. */
int sv_fetch(const sv_fetch_request *req, sv_fetch_response *res);

void sv_fetch_free(sv_fetch_response *res);

/* How an exchange is retried: attempts in all, until deadline_ms
 * (monotonic); retry(res, arg) says whether an answer (or a failure:
 * status 0) is worth another attempt. The wait between attempts is the
 * server's Retry-After when it gave one (a longer one than max_wait_ms
 * ends the retries), else exponential from 500 ms. */
typedef struct sv_fetch_policy {
    int      attempts;
    long     max_wait_ms;
    long long deadline_ms;
    int    (*retry)(const sv_fetch_response *res, void *arg);
    void    *arg;
} sv_fetch_policy;

/* sv_fetch under policy: the last answer is in res. */
int sv_fetch_retry(const sv_fetch_request *req, const sv_fetch_policy *policy,
                   sv_fetch_response *res);

/* The usual "worth another try": no answer, 408, 429, 5xx. */
int sv_fetch_transient(const sv_fetch_response *res, void *arg);

#endif
