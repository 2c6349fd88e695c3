#include "crypto/sv_crypto.h"

#include <sodium.h>

#include "core/sv_err.h"

int sv_crypto_init(void)
{
    return sodium_init() < 0 ? SV_ERROR : SV_OK;
}
