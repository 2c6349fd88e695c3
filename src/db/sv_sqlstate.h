/* A failed statement, as HTTP: the one SQLSTATE -> status mapping, in
 * the two dialects the server speaks. PostgREST's passes PostgreSQL's
 * code, message, details and hint on to the client; GoTrue's says as
 * little as GoTrue does and logs the rest. */
#ifndef SV_SQLSTATE_H
#define SV_SQLSTATE_H

#include <libpq-fe.h>

#include "core/sv_arena.h"
#include "core/sv_err.h"

/* PostgREST's status for a SQLSTATE. anon matters for 42501
 * (insufficient privilege): 401 for anonymous callers, else 403. */
int sv_sqlstate_http_status(const char *sqlstate, int anon);

/* Fills err from the error result r the PostgREST way: the SQLSTATE as
 * code (PTnnn means HTTP nnn, PostgREST's convention for raised
 * exceptions; PT406 is .single()'s PGRST116), the message, details and
 * hint copied into arena. 5xx are logged. Returns SV_ERROR. */
int sv_sqlstate_postgrest(sv_arena *arena, const PGresult *r, int anon, const char *request_id,
                          sv_error *err);

/* Fills err from the error result r the GoTrue way: invalid data (class
 * 22) is 400 validation_failed, an unavailable server 503, anything else
 * 500; the database's own message is only logged, as step. Returns
 * SV_ERROR. */
int sv_sqlstate_gotrue(const PGresult *r, const char *step, const char *request_id,
                       sv_error *err);

#endif
