/* The vault: sealing and opening, what refuses to open (another row's
 * associated data, another key, a flipped bit, garbage), key files
 * (mode, format, never overwritten), key ids, and the arena's wiping of
 * secret allocations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/sv_err.h"
#include "crypto/sv_vault.h"
#include "tap.h"

static char dir[] = "/tmp/sv-vault-test-XXXXXX";

static char *path_in(const char *name)
{
    static char buf[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
    return buf[i];
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

int main(void)
{
    sv_arena a;
    char err[512];
    int32_t id1 = 0, id2 = 0, kid = 0;
    sv_vault v, v2, none;
    char *plain;
    size_t len, adlen, adlen2;

    if (sodium_init() < 0 || mkdtemp(dir) == NULL) {
        puts("Bail out! setup");
        return 1;
    }
    sv_arena_init(&a, 4096);

    /* key files */
    is_int(sv_vault_keygen(path_in("k1"), &id1, err, sizeof(err)), SV_OK, "keygen writes a key");
    struct stat st;
    ok(stat(path_in("k1"), &st) == 0 && (st.st_mode & 0777) == 0600, "key file mode 0600");
    is_int(st.st_size, 65, "64 hex digits and a newline");
    ok(id1 > 0, "key id positive");
    is_int(sv_vault_keygen(path_in("k1"), &id2, err, sizeof(err)), SV_ERROR, "keygen refuses to overwrite");
    ok(strstr(err, "never overwritten") != NULL, "and says so");
    is_int(sv_vault_keygen(path_in("k2"), &id2, err, sizeof(err)), SV_OK, "second key");
    ok(id1 != id2, "different keys, different ids");

    is_int(sv_vault_load(&v, path_in("k1"), NULL, err, sizeof(err)), SV_OK, "load one key");
    is_int(sv_vault_current_id(&v), id1, "current id is the file's key id");
    ok(sv_vault_can_seal(&v), "can seal");

    /* seal and open */
    const char *ad = sv_vault_ad_credential(&a, "11111111-1111-1111-1111-111111111111",
                                            "22222222-2222-2222-2222-222222222222", "access_token", &adlen);
    char *s1 = sv_vault_seal(&v, &a, "ya29.token", 10, ad, adlen);
    char *s2 = sv_vault_seal(&v, &a, "ya29.token", 10, ad, adlen);
    ok(s1 != NULL && strncmp(s1, "sv1:", 4) == 0, "sealed text starts sv1:");
    ok(s1 && s2 && strcmp(s1, s2) != 0, "a fresh nonce each time");
    ok(s1 && strstr(s1, "ya29") == NULL, "no plaintext in the sealed text");
    is_int(sv_vault_sealed_key_id(s1), id1, "sealed text names its key");
    is_int(sv_vault_open(&v, &a, s1, ad, adlen, &plain, &len, &kid), SV_VAULT_OK, "opens");
    is_str(plain, "ya29.token", "same plaintext");
    is_int(len, 10, "same length");
    is_int(kid, id1, "reports the key id");

    /* another row or field: does not open */
    const char *other = sv_vault_ad_credential(&a, "33333333-3333-3333-3333-333333333333",
                                               "22222222-2222-2222-2222-222222222222", "access_token", &adlen2);
    is_int(sv_vault_open(&v, &a, s1, other, adlen2, &plain, &len, NULL), SV_VAULT_FORGED,
           "another user's row: does not open");
    ok(plain == NULL, "no plaintext handed out");
    other = sv_vault_ad_credential(&a, "11111111-1111-1111-1111-111111111111",
                                   "22222222-2222-2222-2222-222222222222", "refresh_token", &adlen2);
    is_int(sv_vault_open(&v, &a, s1, other, adlen2, &plain, &len, NULL), SV_VAULT_FORGED,
           "another field of the same row: does not open");
    other = sv_vault_ad_secret(&a, "11111111-1111-1111-1111-111111111111", &adlen2);
    is_int(sv_vault_open(&v, &a, s1, other, adlen2, &plain, &len, NULL), SV_VAULT_FORGED,
           "as a Vault secret: does not open");

    /* tampering */
    char *t = sv_arena_strdup(&a, s1);
    size_t tl = strlen(t);
    t[tl - 3] = t[tl - 3] == 'A' ? 'B' : 'A';
    is_int(sv_vault_open(&v, &a, t, ad, adlen, &plain, &len, NULL), SV_VAULT_FORGED, "flipped bits: refused");
    is_int(sv_vault_open(&v, &a, "ya29.plain", ad, adlen, &plain, &len, NULL), SV_VAULT_MALFORMED,
           "plaintext is not a sealed value");
    is_int(sv_vault_open(&v, &a, "sv1:1:AAAA", ad, adlen, &plain, &len, NULL), SV_VAULT_MALFORMED,
           "too short");
    is_int(sv_vault_open(&v, &a, "sv1:x:AAAA", ad, adlen, &plain, &len, NULL), SV_VAULT_MALFORMED,
           "bad key id");
    is_int(sv_vault_open(&v, &a, "sv1:99999999999:AAAA", ad, adlen, &plain, &len, NULL), SV_VAULT_MALFORMED,
           "key id too large");
    char *wrongkey = sv_arena_printf(&a, "sv1:%d:%s", (int)id2, strchr(s1 + 4, ':') + 1);
    is_int(sv_vault_open(&v, &a, wrongkey, ad, adlen, &plain, &len, NULL), SV_VAULT_UNKNOWN_KEY,
           "a key that is not configured");
    char *bad64 = sv_arena_printf(&a, "sv1:%d:%s", (int)id1,
                                  "!!!!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    is_int(sv_vault_open(&v, &a, bad64, ad, adlen, &plain, &len, NULL), SV_VAULT_MALFORMED, "not base64url");

    /* rotation: new current key, old one still opens */
    is_int(sv_vault_load(&v2, path_in("k2"), path_in("k1"), err, sizeof(err)), SV_OK,
           "load current + old key");
    is_int(sv_vault_current_id(&v2), id2, "current is k2");
    ok(sv_vault_has_key(&v2, id1), "k1 still known");
    is_int(sv_vault_open(&v2, &a, s1, ad, adlen, &plain, &len, NULL), SV_VAULT_OK, "old value opens with old key");
    char *s3 = sv_vault_seal(&v2, &a, "ya29.token", 10, ad, adlen);
    is_int(sv_vault_sealed_key_id(s3), id2, "new values use the current key");
    is_int(sv_vault_open(&v, &a, s3, ad, adlen, &plain, &len, NULL), SV_VAULT_UNKNOWN_KEY,
           "a vault without k2 cannot open it");
    sv_vault_free(&v2);
    is_int(sv_vault_load(&v2, path_in("k2"), " , ", err, sizeof(err)), SV_OK, "empty old list is fine");
    sv_vault_free(&v2);

    /* passing the keys through a pipe (worker -> job) */
    {
        sv_vault src, got;
        int p[2];
        is_int(sv_vault_load(&src, path_in("k2"), path_in("k1"), err, sizeof(err)), SV_OK, "load two keys to pass");
        ok(pipe(p) == 0, "pipe");
        is_int(sv_vault_pass(&src, p[1]), SV_OK, "keys written to the pipe");
        close(p[1]);
        is_int(sv_vault_receive(&got, p[0], err, sizeof(err)), SV_OK, "and read back");
        close(p[0]);
        is_int(got.n, 2, "both keys arrive");
        is_int(sv_vault_current_id(&got), id2, "the current key stays current");
        ok(sv_vault_has_key(&got, id1), "the old key arrives too");
        is_int(sv_vault_open(&got, &a, s1, ad, adlen, &plain, &len, NULL), SV_VAULT_OK,
               "a value sealed with the old key opens with the passed vault");
        char *s4 = sv_vault_seal(&got, &a, "x", 1, ad, adlen);
        is_int(sv_vault_open(&src, &a, s4, ad, adlen, &plain, &len, NULL), SV_VAULT_OK,
               "and what it seals opens with the original");
        sv_vault_free(&got);
        sv_vault_init(&none);
        ok(pipe(p) == 0, "pipe");
        is_int(sv_vault_pass(&none, p[1]), SV_OK, "an empty vault passes");
        close(p[1]);
        is_int(sv_vault_receive(&got, p[0], err, sizeof(err)), SV_OK, "and arrives");
        close(p[0]);
        ok(!sv_vault_can_seal(&got) && got.n == 0, "empty");
        ok(pipe(p) == 0, "pipe");
        ssize_t wr = write(p[1], "SVK1\x02\x00short", 11);
        (void)wr;
        close(p[1]);
        is_int(sv_vault_receive(&got, p[0], err, sizeof(err)), SV_ERROR, "a truncated pass is refused");
        close(p[0]);
        is_int(got.n, 0, "and leaves the vault empty");
        ok(pipe(p) == 0, "pipe");
        close(p[1]);
        is_int(sv_vault_receive(&got, p[0], err, sizeof(err)), SV_ERROR, "nothing at all is refused");
        close(p[0]);
        sv_vault_free(&src);
    }

    /* empty and long plaintexts */
    char *e = sv_vault_seal(&v, &a, "", 0, ad, adlen);
    is_int(sv_vault_open(&v, &a, e, ad, adlen, &plain, &len, NULL), SV_VAULT_OK, "empty plaintext round trip");
    is_int(len, 0, "empty");
    char *big = malloc(SV_VAULT_MAX_PLAINTEXT + 1);
    memset(big, 'x', SV_VAULT_MAX_PLAINTEXT + 1);
    ok(sv_vault_seal(&v, &a, big, SV_VAULT_MAX_PLAINTEXT + 1, ad, adlen) == NULL, "over the limit: refused");
    char *bs = sv_vault_seal(&v, &a, big, SV_VAULT_MAX_PLAINTEXT, ad, adlen);
    is_int(sv_vault_open(&v, &a, bs, ad, adlen, &plain, &len, NULL), SV_VAULT_OK, "64 KiB round trip");
    free(big);

    /* no key configured */
    is_int(sv_vault_load(&none, "", "", err, sizeof(err)), SV_OK, "no key file: an empty vault");
    ok(!sv_vault_can_seal(&none), "cannot seal");
    ok(sv_vault_seal(&none, &a, "x", 1, ad, adlen) == NULL, "seal refused");
    is_int(sv_vault_load(&none, "", path_in("k1"), err, sizeof(err)), SV_ERROR, "old keys without a current one");

    /* bad key files */
    write_text(path_in("open"), "", 0644);
    chmod(path_in("k1"), 0604);
    is_int(sv_vault_load(&v2, path_in("k1"), NULL, err, sizeof(err)), SV_ERROR, "world-readable key refused");
    ok(strstr(err, "chmod") != NULL, "says how to fix it");
    chmod(path_in("k1"), 0640);
    is_int(sv_vault_load(&v2, path_in("k1"), NULL, err, sizeof(err)), SV_OK, "group-readable accepted");
    sv_vault_free(&v2);
    write_text(path_in("short"), "abcdef\n", 0600);
    is_int(sv_vault_load(&v2, path_in("short"), NULL, err, sizeof(err)), SV_ERROR, "short key refused");
    ok(strstr(err, "64 hex") != NULL, "names the format");
    write_text(path_in("nothex"), "zz23456789012345678901234567890123456789012345678901234567890123\n", 0600);
    is_int(sv_vault_load(&v2, path_in("nothex"), NULL, err, sizeof(err)), SV_ERROR, "non-hex refused");
    ok(strstr(err, "zz23") == NULL, "the error does not echo the file");
    is_int(sv_vault_load(&v2, path_in("missing"), NULL, err, sizeof(err)), SV_ERROR, "missing file refused");
    is_int(sv_vault_load(&v2, dir, NULL, err, sizeof(err)), SV_ERROR, "a directory refused");
    symlink(path_in("k2"), path_in("link"));
    is_int(sv_vault_load(&v2, path_in("link"), NULL, err, sizeof(err)), SV_ERROR, "a symlink refused");
    write_text(path_in("spaced"), "  \n", 0600);
    is_int(sv_vault_load(&v2, path_in("spaced"), NULL, err, sizeof(err)), SV_ERROR, "blank file refused");

    /* the key id is a function of the key */
    unsigned char k[SV_VAULT_KEY_BYTES];
    memset(k, 7, sizeof(k));
    int32_t a1 = sv_vault_key_id(k);
    ok(a1 == sv_vault_key_id(k) && a1 > 0, "key id is stable and positive");
    k[31] = 8;
    ok(sv_vault_key_id(k) != a1, "another key, another id");

    /* the arena wipes secret allocations when it resets */
    sv_arena w;
    sv_arena_init(&w, 4096);
    char *sec = sv_arena_secret_alloc(&w, 32);
    memcpy(sec, "the-secret-token-value", 23);
    sv_arena_reset(&w);
    /* the first chunk is kept across resets, so the bytes are still
     * addressable: they must be zero now */
    ok(memcmp(sec, "the-secret", 10) != 0, "secret bytes wiped at reset");
    sv_arena_free(&w);

    sv_vault_free(&v);
    sv_arena_free(&a);
    const char *names[] = { "k1", "k2", "open", "short", "nothex", "spaced", "link" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        unlink(path_in(names[i]));
    rmdir(dir);
    return tap_done();
}
