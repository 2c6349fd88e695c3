#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/sv_password.h"
#include "tap.h"

/* Openwall's crypt_blowfish test vectors (cost 5, to stay quick). */
static const char uu[] = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

static int check(const char *hash, const char *pw)
{
    return sv_password_bcrypt_check(hash, pw, strlen(pw));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;

    ok(check(uu, "U*U") == 1, "$2a$: the right password");
    ok(check("$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK", "U*U*") == 1,
       "$2a$: a second vector");
    ok(check(uu, "U*U*") == 0, "$2a$: a wrong password");
    ok(check(uu, "") == 0, "$2a$: the empty password");
    /* $2b$ and $2y$ are the same algorithm; GoTrue's Go library writes $2a$ */
    ok(check("$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U") == 1, "$2b$");
    ok(check("$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U") == 1, "$2y$");
    ok(check("$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U") == 1,
       "$2x$ (the old sign-extension variant), as pgcrypto accepted");

    /* each cost step doubles the work: above 16 the hash is not checked */
    ok(check("$2a$17$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U") == -1,
       "cost 17: too costly to check, said apart from a wrong password");
    ok(check("$2a$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U") == -1,
       "cost 31: too costly to check");

    /* bcrypt reads 72 bytes, as pgcrypto (what the server used before) */
    const char *h72 = "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui";
    const char *p72 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    char *longer = malloc(200);
    strcpy(longer, p72);
    strcat(longer, "chars after 72 are ignored");
    ok(check(h72, longer) == 1, "bytes after the 72nd are ignored, as pgcrypto did");
    ok(check(h72, p72) == 1, "so the first 72 alone match too");
    free(longer);
    /* libxcrypt refuses 512 bytes and more; pgcrypto read the first 72 */
    char *huge = malloc(700);
    memset(huge, 'x', 699);
    huge[699] = '\0';
    memcpy(huge, p72, strlen(p72));
    ok(check(h72, huge) == 1, "a 699-byte password is checked on its first 72 bytes");
    free(huge);

    /* a NUL inside the password: no bcrypt hash was made of one */
    ok(sv_password_bcrypt_check(uu, "U*U\0x", 5) == 0, "a password with a NUL never matches");
    ok(sv_password_bcrypt_check(uu, "U*U\0", 4) == 0, "not even a trailing one");

    /* malformed hashes are simply no match, never an error */
    static const struct {
        const char *hash, *what;
    } bad[] = {
        { "", "empty" },
        { "$2a$05$", "prefix only" },
        { "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe", "59 characters" },
        { "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeWW", "61 characters" },
        { "$2z$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "$2z$" },
        { "$2a$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "cost 3" },
        { "$2a$32$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "cost 32" },
        { "$2a$5a$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "cost not digits" },
        { "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvy!eW", "not base64" },
        { "$1$05$CCCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "md5-crypt" },
        { "$argon2id$v=19$m=65536,t=2,p=1$Y/I//AM51mJFmehvkKNvOA$xxxxxxx", "argon2id" },
        { "U*U", "the password itself" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ok(check(bad[i].hash, "U*U") == 0, bad[i].what);

    return tap_done();
}
