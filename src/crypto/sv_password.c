#include "crypto/sv_password.h"

#include <crypt.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/sv_err.h"

/* A valid argon2id string with the same parameters as real hashes (of a
 * random password nobody knows): verifying against it costs what a real
 * verification costs. */
static const char sv_password_nobody[crypto_pwhash_STRBYTES] =
    "$argon2id$v=19$m=65536,t=2,p=1$Y/I//AM51mJFmehvkKNvOA$"
    "CXvQU0xC8A1d/X9foUpUXmVEqsQV9/+q210QU5wdB3U";

int sv_password_hash(char out[SV_PASSWORD_HASH_BYTES], const char *pw, size_t len)
{
    return crypto_pwhash_str(out, pw, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                             crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0 ? SV_OK : SV_ERROR;
}

int sv_password_verify(const char *hash, const char *pw, size_t len)
{
    return crypto_pwhash_str_verify(hash, pw, len) == 0;
}

void sv_password_verify_nobody(const char *pw, size_t len)
{
    volatile int r = sv_password_verify(sv_password_nobody, pw, len);
    (void)r;
}

int sv_password_is_bcrypt(const char *hash)
{
    return hash[0] == '$' && hash[1] == '2' && hash[2] != '\0' && strchr("abxy", hash[2]) != NULL &&
           hash[3] == '$';
}

/* bcrypt reads no further (pgcrypto truncated there too); libxcrypt
 * refuses 512 bytes and more outright, at once. */
#define SV_PASSWORD_BCRYPT_PW_BYTES 72

int sv_password_bcrypt_check(const char *hash, const char *pw, size_t pw_len)
{
    static const char b64[] = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    /* What is hashed when the stored hash cannot be checked, so that no
     * answer comes sooner than a real check's: GoTrue's cost. */
    static const char stand_in[] = "$2b$10$CCCCCCCCCCCCCCCCCCCCC.";

    /* $2?$NN$ and 53 characters of salt and digest */
    int well_formed = strlen(hash) == 60 && hash[0] == '$' && hash[1] == '2' && hash[2] != '\0' &&
                      strchr("abxy", hash[2]) != NULL && hash[3] == '$' &&
                      isdigit((unsigned char)hash[4]) && isdigit((unsigned char)hash[5]) &&
                      hash[6] == '$' && strspn(hash + 7, b64) == 53;
    int cost = well_formed ? (hash[4] - '0') * 10 + (hash[5] - '0') : 0;
    int too_costly = cost > SV_PASSWORD_BCRYPT_MAX_COST && cost <= 31;
    /* bcrypt reads a C string: no password with a NUL was ever hashed */
    int usable = well_formed && cost >= 4 && cost <= SV_PASSWORD_BCRYPT_MAX_COST &&
                 memchr(pw, '\0', pw_len) == NULL;
    size_t n = pw_len < SV_PASSWORD_BCRYPT_PW_BYTES ? pw_len : SV_PASSWORD_BCRYPT_PW_BYTES;

    /* ~32 kB of state, which ends up holding what the password became */
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    char *pwz = malloc(n + 1);
    int good = 0;
    if (cd != NULL && pwz != NULL) {
        memcpy(pwz, pw, n);
        pwz[usable ? n : 0] = '\0';
        const char *out = crypt_rn(pwz, usable ? hash : stand_in, cd, (int)sizeof(*cd));
        good = usable && out != NULL && strlen(out) == 60 && sodium_memcmp(out, hash, 60) == 0;
    }
    if (pwz != NULL) {
        sodium_memzero(pwz, n);
        free(pwz);
    }
    if (cd != NULL) {
        sodium_memzero(cd, sizeof(*cd));
        free(cd);
    }
    return good ? 1 : too_costly ? -1 : 0;
}

