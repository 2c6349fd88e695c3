/* Outbound HTTP, the one way the server talks to other services (OAuth
 * providers, the platforms' APIs, the AI model, IndexNow), through
 * libcurl: a deadline for the whole call, TLS verification on, http and
 * https only, no redirects followed, no proxy from the environment, a
 * User-Agent, and a cap on the answer's size. Request and answer bodies
 * may carry secrets (client secrets, codes, tokens), so answers live in
 * secret arena allocations, wiped when the arena resets, and nothing here
 * logs either. Every base URL is configuration, so tests point them at
 * local fake servers. */
#ifndef SV_HTTP_CLIENT_H
#define SV_HTTP_CLIENT_H

#include <stddef.h>

#include "core/sv_arena.h"

/* Largest answer read from an OAuth provider; a larger one is an error.
 * (A request may set its own cap: a page of a platform's API is bigger.) */
#define SV_HTTP_CLIENT_MAX_BODY (256 * 1024)

/* curl_global_init, once, in main() before any fork. SV_OK/SV_ERROR. */
int sv_http_client_global_init(void);

typedef struct sv_http_result {
    long   status;       /* HTTP status; 0 when no answer came */
    char  *body;         /* NUL-terminated, a secret arena allocation ("" when none) */
    size_t len;
    const char *error;   /* why there is no answer (timeout, refused, too large), else NULL */
    long   duration_ms;
    /* The delay the server asked for (Retry-After as seconds or an
     * HTTP-date, or OpenAI's retry-after-ms), in ms; -1 when none. */
    long   retry_after_ms;
} sv_http_result;

/* One exchange. */
typedef struct sv_http_request {
    const char        *method;     /* NULL: GET */
    const char        *url;
    const char *const *headers;    /* "Name: value" lines, NULL-terminated; may be NULL */
    const char        *body;       /* sent as is, or NULL */
    size_t             body_len;
    long               timeout_ms; /* the whole exchange */
    size_t             max_bytes;  /* of the answer; 0: SV_HTTP_CLIENT_MAX_BODY */
} sv_http_request;

/* Performs req. Returns SV_OK when an answer came (whatever its
 * status), SV_ERROR when none did (res->error says why). */
int sv_http_client_send(sv_arena *arena, const sv_http_request *req, sv_http_result *res);

/* How an exchange is retried: attempts in all, until deadline_ms
 * (monotonic); retry(res, arg) says whether an answer (or its absence:
 * status 0) is worth another attempt. The wait between attempts is the
 * server's Retry-After when it gave one (a longer one than max_wait_ms
 * ends the retries: the next attempt would be refused too), else
 * exponential from 500 ms. */
typedef struct sv_http_retry {
    int       attempts;
    long      max_wait_ms;
    long long deadline_ms;
    int     (*retry)(const sv_http_result *res, void *arg);
    void     *arg;
} sv_http_retry;

/* sv_http_client_send under policy: the last answer is in res. */
int sv_http_client_send_retry(sv_arena *arena, const sv_http_request *req,
                              const sv_http_retry *policy, sv_http_result *res);

/* The usual "worth another try": no answer, 408, 429, 5xx. */
int sv_http_client_transient(const sv_http_result *res, void *arg);

/* A form body (application/x-www-form-urlencoded) being built in a
 * secret arena buffer. */
typedef struct sv_http_form {
    sv_arena *arena;
    char     *data;
    size_t    len, cap;
} sv_http_form;

void sv_http_form_init(sv_http_form *f, sv_arena *arena);
/* Appends name=value, percent-encoded; value NULL adds nothing. */
void sv_http_form_add(sv_http_form *f, const char *name, const char *value);

/* Percent-encodes s for a query string (RFC 3986 unreserved kept).
 * Result in the arena (not a secret allocation: use it for URLs). */
char *sv_http_client_escape(sv_arena *arena, const char *s);

/* POSTs form to url with Accept: application/json, waiting at most
 * timeout_ms in all. Returns SV_OK when an answer came (whatever its
 * status), SV_ERROR when none did (res->error says why). */
int sv_http_client_post_form(sv_arena *arena, const char *url, const sv_http_form *form,
                             long timeout_ms, sv_http_result *res);

#endif
