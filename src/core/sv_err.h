/* The one error convention (nginx's NGX_OK / NGX_ERROR). A function that
 * can fail returns SV_OK or SV_ERROR, and on SV_ERROR it has filled the
 * sv_error its caller handed it; the caller checks on the next line and
 * passes the error up unchanged or adds to it. Nothing below a handler
 * writes a response: the phase runner (worker/sv_phases.c) turns the
 * error into the body of the route's dialect (PostgREST's or GoTrue's).
 *
 * Strings in an sv_error are static or live in the request's arena. */
#ifndef SV_ERR_H
#define SV_ERR_H

#include <json-c/json.h>

enum {
    SV_OK = 0,
    SV_ERROR = -1,
    SV_DONE = -2,       /* the response is complete: run no further phase */
    SV_PARK = -3,       /* the answer waits on an event: the transport keeps the
                           request and resumes it later (http/sv_ctx.h, sv_park) */
};

typedef struct sv_error {
    int          status;            /* HTTP status */
    /* PostgREST: its code or the SQLSTATE; GoTrue: the error_code. NULL:
     * the dialect's usual code for the status (a database outage, say,
     * is PGRST000 to PostgREST and unexpected_failure to GoTrue). */
    const char  *code;
    const char  *message;
    const char  *details;           /* PostgREST's details, or NULL */
    const char  *hint;              /* PostgREST's hint, or NULL */
    int          retry_after;       /* > 0: sent as Retry-After (seconds) */
    const char  *www_authenticate;  /* sent as WWW-Authenticate, or NULL */
    const char  *allow;             /* sent as Allow (405), or NULL */
    json_object *extra;             /* members added to the body (owned), or NULL */
} sv_error;

void sv_error_init(sv_error *err);
/* Drops what the error owns (extra); the error is empty again. */
void sv_error_clear(sv_error *err);

/* Fills err and returns SV_ERROR, so a failing path reads
 * `return sv_fail(err, 400, "PGRST100", "...");`. */
int sv_fail(sv_error *err, int status, const char *code, const char *message);
int sv_fail_details(sv_error *err, int status, const char *code, const char *message,
                    const char *details, const char *hint);

#endif
