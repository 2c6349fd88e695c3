#include "core/sv_err.h"

#include <string.h>

void sv_error_init(sv_error *err)
{
    memset(err, 0, sizeof(*err));
}

void sv_error_clear(sv_error *err)
{
    json_object_put(err->extra);
    sv_error_init(err);
}

int sv_fail_details(sv_error *err, int status, const char *code, const char *message,
                    const char *details, const char *hint)
{
    err->status = status;
    err->code = code;
    err->message = message;
    err->details = details;
    err->hint = hint;
    return SV_ERROR;
}

int sv_fail(sv_error *err, int status, const char *code, const char *message)
{
    return sv_fail_details(err, status, code, message, NULL, NULL);
}
