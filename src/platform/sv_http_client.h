/* Outbound HTTP for the platform adapters (OAuth token, refresh and
 * revoke calls now; the platforms' APIs for the jobs), through libcurl:
 * a deadline for the whole call, TLS verification on, http and https
 * only, no redirects followed, a User-Agent, and a cap on the answer's
 * size. Request and answer bodies carry secrets (client secrets, codes,
 * tokens), so both live in secret arena allocations, wiped when the
 * arena resets, and nothing here logs either. */
#ifndef SV_HTTP_CLIENT_H
#define SV_HTTP_CLIENT_H

#include <stddef.h>

#include "core/sv_arena.h"

/* Largest answer read from a provider; a larger one is an error. */
#define SV_HTTP_CLIENT_MAX_BODY (256 * 1024)

/* curl_global_init, once, in main() before any fork. SV_OK/SV_ERROR. */
int sv_http_client_global_init(void);

typedef struct sv_http_result {
    long   status;       /* HTTP status; 0 when no answer came */
    char  *body;         /* NUL-terminated, a secret arena allocation ("" when none) */
    size_t len;
    const char *error;   /* why there is no answer (timeout, refused, too large), else NULL */
    long   duration_ms;
} sv_http_result;

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
