#include "crypto/sv_vault.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/sv_err.h"

#define SV_VAULT_PREFIX "sv1:"
#define SV_VAULT_NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define SV_VAULT_TAG crypto_aead_xchacha20poly1305_ietf_ABYTES
/* A key file: 64 hex digits, optionally followed by white space. */
#define SV_VAULT_FILE_MAX 256

void sv_vault_init(sv_vault *v)
{
    memset(v, 0, sizeof(*v));
    v->current = -1;
}

void sv_vault_free(sv_vault *v)
{
    for (int i = 0; i < v->n; i++)
        sodium_free(v->keys[i].key);   /* wipes before it unmaps */
    sv_vault_init(v);
}

int32_t sv_vault_key_id(const unsigned char key[SV_VAULT_KEY_BYTES])
{
    static const unsigned char context[] = "streamvibe vault key id v1";
    unsigned char h[8];
    crypto_generichash_state st;

    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    crypto_generichash_update(&st, context, sizeof(context) - 1);
    crypto_generichash_update(&st, key, SV_VAULT_KEY_BYTES);
    crypto_generichash_final(&st, h, sizeof(h));
    uint32_t id = ((uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3]) &
                  0x7fffffffu;
    sodium_memzero(&st, sizeof(st));
    return id == 0 ? 1 : (int32_t)id;
}

/* Reads one key file into a fresh read-only sodium_malloc'd key. Returns
 * SV_OK, or SV_ERROR with err naming path. */
static int sv_vault_read_key(const char *path, unsigned char **out, char *err, size_t errlen)
{
    char text[SV_VAULT_FILE_MAX + 1];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    *out = NULL;
    if (fd < 0) {
        snprintf(err, errlen, "vault key file %s: %s", path, strerror(errno));
        return SV_ERROR;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "vault key file %s: not a regular file", path);
        close(fd);
        return SV_ERROR;
    }
    if (st.st_mode & (S_IRWXO)) {
        snprintf(err, errlen,
                 "vault key file %s: mode %04o lets other users read it; chmod 0600 (or 0640)",
                 path, (unsigned)(st.st_mode & 07777));
        close(fd);
        return SV_ERROR;
    }
    ssize_t n = read(fd, text, sizeof(text));
    close(fd);
    if (n < 0 || n > SV_VAULT_FILE_MAX) {
        snprintf(err, errlen, "vault key file %s: %s", path,
                 n < 0 ? strerror(errno) : "too large to be a key file");
        sodium_memzero(text, sizeof(text));
        return SV_ERROR;
    }
    text[n] = '\0';
    size_t len = (size_t)n;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ' ||
                       text[len - 1] == '\t'))
        len--;
    unsigned char *key = sodium_malloc(SV_VAULT_KEY_BYTES);
    size_t bin_len = 0;
    const char *end = NULL;
    int rc = SV_ERROR;
    if (key == NULL) {
        snprintf(err, errlen, "vault key file %s: out of memory", path);
    } else if (len != 2 * SV_VAULT_KEY_BYTES ||
               sodium_hex2bin(key, SV_VAULT_KEY_BYTES, text, len, NULL, &bin_len, &end) != 0 ||
               bin_len != SV_VAULT_KEY_BYTES || end != text + len) {
        snprintf(err, errlen,
                 "vault key file %s: expected 64 hex digits (write one with streamvibe-admin keygen)",
                 path);
    } else {
        sodium_mprotect_readonly(key);
        *out = key;
        rc = SV_OK;
    }
    sodium_memzero(text, sizeof(text));
    if (rc != SV_OK && key != NULL)
        sodium_free(key);
    return rc;
}

/* Adds the key in path to v (a key already there, by id, is not added
 * twice). Returns its index, or -1 with err filled. */
static int sv_vault_add(sv_vault *v, const char *path, char *err, size_t errlen)
{
    unsigned char *key;

    if (sv_vault_read_key(path, &key, err, errlen) != SV_OK)
        return -1;
    int32_t id = sv_vault_key_id(key);
    for (int i = 0; i < v->n; i++) {
        if (v->keys[i].id == id) {
            sodium_free(key);
            return i;
        }
    }
    if (v->n == SV_VAULT_MAX_KEYS) {
        snprintf(err, errlen, "vault: more than %d key files configured", SV_VAULT_MAX_KEYS);
        sodium_free(key);
        return -1;
    }
    v->keys[v->n].id = id;
    v->keys[v->n].key = key;
    return v->n++;
}

int sv_vault_load(sv_vault *v, const char *current_path, const char *old_paths, char *err,
                  size_t errlen)
{
    sv_vault_init(v);
    int has_old = old_paths != NULL && old_paths[strspn(old_paths, ", \t")] != '\0';
    if (current_path == NULL || current_path[0] == '\0') {
        if (has_old) {
            snprintf(err, errlen, "vault_old_key_files is set but vault_key_file is not");
            return SV_ERROR;
        }
        return SV_OK;
    }
    if ((v->current = sv_vault_add(v, current_path, err, errlen)) < 0) {
        sv_vault_free(v);
        return SV_ERROR;
    }
    for (const char *p = old_paths ? old_paths : ""; *p;) {
        p += strspn(p, ", \t");
        size_t len = strcspn(p, ",");
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == 0)
            break;
        char path[4096];
        if (len >= sizeof(path)) {
            snprintf(err, errlen, "vault_old_key_files: a path is too long");
            sv_vault_free(v);
            return SV_ERROR;
        }
        memcpy(path, p, len);
        path[len] = '\0';
        if (sv_vault_add(v, path, err, errlen) < 0) {
            sv_vault_free(v);
            return SV_ERROR;
        }
        p += len;
        p += strcspn(p, ",");
    }
    return SV_OK;
}

#define SV_VAULT_PASS_MAGIC "SVK1"
#define SV_VAULT_PASS_HEAD 6
#define SV_VAULT_PASS_MAX (SV_VAULT_PASS_HEAD + SV_VAULT_MAX_KEYS * SV_VAULT_KEY_BYTES)

int sv_vault_pass(const sv_vault *v, int fd)
{
    unsigned char buf[SV_VAULT_PASS_MAX];
    size_t len = SV_VAULT_PASS_HEAD;

    memcpy(buf, SV_VAULT_PASS_MAGIC, 4);
    buf[4] = (unsigned char)v->n;
    buf[5] = v->current < 0 ? 0xff : (unsigned char)v->current;
    for (int i = 0; i < v->n; i++, len += SV_VAULT_KEY_BYTES)
        memcpy(buf + len, v->keys[i].key, SV_VAULT_KEY_BYTES);
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    sodium_memzero(buf, sizeof(buf));
    return off == len ? SV_OK : SV_ERROR;
}

int sv_vault_receive(sv_vault *v, int fd, char *err, size_t errlen)
{
    unsigned char buf[SV_VAULT_PASS_MAX + 1];
    size_t len = 0;
    int rc = SV_ERROR;

    sv_vault_init(v);
    while (len < sizeof(buf)) {
        ssize_t r = read(fd, buf + len, sizeof(buf) - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "vault descriptor: %s", strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    int n = len >= SV_VAULT_PASS_HEAD ? buf[4] : -1;
    int current = len >= SV_VAULT_PASS_HEAD ? (buf[5] == 0xff ? -1 : buf[5]) : -1;
    if (len < SV_VAULT_PASS_HEAD || memcmp(buf, SV_VAULT_PASS_MAGIC, 4) != 0 || n > SV_VAULT_MAX_KEYS ||
        len != SV_VAULT_PASS_HEAD + (size_t)n * SV_VAULT_KEY_BYTES || current >= n ||
        (current < 0 && n > 0)) {
        snprintf(err, errlen, "vault descriptor: not the keys a worker passes");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        unsigned char *key = sodium_malloc(SV_VAULT_KEY_BYTES);
        if (key == NULL) {
            snprintf(err, errlen, "vault descriptor: out of memory");
            sv_vault_free(v);
            goto out;
        }
        memcpy(key, buf + SV_VAULT_PASS_HEAD + (size_t)i * SV_VAULT_KEY_BYTES, SV_VAULT_KEY_BYTES);
        sodium_mprotect_readonly(key);
        v->keys[i].id = sv_vault_key_id(key);
        v->keys[i].key = key;
        v->n = i + 1;
    }
    v->current = current;
    rc = SV_OK;
out:
    sodium_memzero(buf, sizeof(buf));
    return rc;
}

int sv_vault_can_seal(const sv_vault *v)
{
    return v != NULL && v->current >= 0;
}

int32_t sv_vault_current_id(const sv_vault *v)
{
    return sv_vault_can_seal(v) ? v->keys[v->current].id : 0;
}

static const sv_vault_key *sv_vault_find(const sv_vault *v, int32_t id)
{
    for (int i = 0; v != NULL && i < v->n; i++)
        if (v->keys[i].id == id)
            return &v->keys[i];
    return NULL;
}

int sv_vault_has_key(const sv_vault *v, int32_t id)
{
    return sv_vault_find(v, id) != NULL;
}

char *sv_vault_seal(const sv_vault *v, sv_arena *arena, const void *plain, size_t len,
                    const void *ad, size_t adlen)
{
    if (!sv_vault_can_seal(v) || len > SV_VAULT_MAX_PLAINTEXT)
        return NULL;
    const sv_vault_key *k = &v->keys[v->current];
    size_t blen = SV_VAULT_NONCE + len + SV_VAULT_TAG;
    unsigned char *box = sv_arena_alloc(arena, blen);
    unsigned long long clen = 0;

    randombytes_buf(box, SV_VAULT_NONCE);
    crypto_aead_xchacha20poly1305_ietf_encrypt(box + SV_VAULT_NONCE, &clen, plain, len, ad, adlen,
                                               NULL, box, k->key);
    size_t b64 = sodium_base64_ENCODED_LEN(blen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char head[24];
    int hlen = snprintf(head, sizeof(head), SV_VAULT_PREFIX "%d:", (int)k->id);
    char *out = sv_arena_alloc(arena, (size_t)hlen + b64);
    memcpy(out, head, (size_t)hlen);
    sodium_bin2base64(out + hlen, b64, box, blen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

/* Splits "sv1:<id>:<b64>": *id and the start of the base64 text, or -1. */
static int sv_vault_parse(const char *sealed, int32_t *id, const char **b64)
{
    if (sealed == NULL || strncmp(sealed, SV_VAULT_PREFIX, sizeof(SV_VAULT_PREFIX) - 1) != 0)
        return -1;
    const char *p = sealed + sizeof(SV_VAULT_PREFIX) - 1;
    long long n = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 11) {
        n = n * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0 || *p != ':' || n <= 0 || n > 0x7fffffff)
        return -1;
    *id = (int32_t)n;
    *b64 = p + 1;
    return 0;
}

int32_t sv_vault_sealed_key_id(const char *sealed)
{
    int32_t id;
    const char *b64;
    return sv_vault_parse(sealed, &id, &b64) == 0 ? id : 0;
}

sv_vault_status sv_vault_open(const sv_vault *v, sv_arena *arena, const char *sealed,
                              const void *ad, size_t adlen, char **plain, size_t *len,
                              int32_t *key_id)
{
    int32_t id;
    const char *b64;

    *plain = NULL;
    *len = 0;
    if (sv_vault_parse(sealed, &id, &b64) != 0)
        return SV_VAULT_MALFORMED;
    size_t b64len = strlen(b64);
    size_t max = b64len / 4 * 3 + 3;
    if (max < SV_VAULT_NONCE + SV_VAULT_TAG ||
        max > SV_VAULT_NONCE + SV_VAULT_MAX_PLAINTEXT + SV_VAULT_TAG + 3)
        return SV_VAULT_MALFORMED;
    const sv_vault_key *k = sv_vault_find(v, id);
    if (k == NULL)
        return SV_VAULT_UNKNOWN_KEY;
    unsigned char *box = sv_arena_alloc(arena, max);
    size_t blen = 0;
    const char *end = NULL;
    if (sodium_base642bin(box, max, b64, b64len, NULL, &blen, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != b64 + b64len || blen < SV_VAULT_NONCE + SV_VAULT_TAG)
        return SV_VAULT_MALFORMED;
    size_t mlen = blen - SV_VAULT_NONCE - SV_VAULT_TAG;
    unsigned char *m = sv_arena_secret_alloc(arena, mlen + 1);
    unsigned long long got = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(m, &got, NULL, box + SV_VAULT_NONCE,
                                                   blen - SV_VAULT_NONCE, ad, adlen, box,
                                                   k->key) != 0)
        return SV_VAULT_FORGED;
    m[got] = '\0';
    *plain = (char *)m;
    *len = (size_t)got;
    if (key_id != NULL)
        *key_id = id;
    return SV_VAULT_OK;
}

const char *sv_vault_strerror(sv_vault_status st)
{
    switch (st) {
    case SV_VAULT_OK: return "ok";
    case SV_VAULT_MALFORMED: return "not a sealed value";
    case SV_VAULT_UNKNOWN_KEY: return "sealed with a key that is not configured";
    case SV_VAULT_FORGED: return "does not open: altered, or moved from another row";
    case SV_VAULT_NO_KEY: return "no vault_key_file configured";
    }
    return "unknown";
}

/* "streamvibe/<kind>/v1" NUL piece NUL piece ...: the separators keep
 * ("ab","c") and ("a","bc") apart. */
static const char *sv_vault_ad(sv_arena *arena, const char *kind, const char *const *pieces,
                               int n, size_t *len)
{
    sv_buf b;
    sv_buf_init(&b, arena, 128);
    sv_buf_printf(&b, "streamvibe/%s/v1", kind);
    for (int i = 0; i < n; i++) {
        sv_buf_append(&b, "", 1);
        sv_buf_puts(&b, pieces[i] ? pieces[i] : "");
    }
    *len = b.len;
    return b.data;
}

const char *sv_vault_ad_credential(sv_arena *arena, const char *user_id, const char *platform_id,
                                   const char *field, size_t *len)
{
    const char *p[3] = { user_id, platform_id, field };
    return sv_vault_ad(arena, "credential", p, 3, len);
}

const char *sv_vault_ad_secret(sv_arena *arena, const char *secret_id, size_t *len)
{
    const char *p[1] = { secret_id };
    return sv_vault_ad(arena, "vault-secret", p, 1, len);
}

const char *sv_vault_ad_oauth_state(sv_arena *arena, const char *state_id, size_t *len)
{
    const char *p[1] = { state_id };
    return sv_vault_ad(arena, "oauth-state", p, 1, len);
}

int sv_vault_keygen(const char *path, int32_t *id, char *err, size_t errlen)
{
    unsigned char *key = sodium_malloc(SV_VAULT_KEY_BYTES);
    char hex[2 * SV_VAULT_KEY_BYTES + 2];
    int rc = SV_ERROR;

    if (key == NULL) {
        snprintf(err, errlen, "out of memory");
        return SV_ERROR;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s%s", path, strerror(errno),
                 errno == EEXIST ? " (a key file is never overwritten)" : "");
        sodium_free(key);
        return SV_ERROR;
    }
    randombytes_buf(key, SV_VAULT_KEY_BYTES);
    sodium_bin2hex(hex, sizeof(hex) - 1, key, SV_VAULT_KEY_BYTES);
    size_t n = strlen(hex);
    hex[n++] = '\n';
    if (fchmod(fd, 0600) != 0 || write(fd, hex, n) != (ssize_t)n || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
    } else if (close(fd) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(path);
    } else {
        *id = sv_vault_key_id(key);
        rc = SV_OK;
    }
    sodium_memzero(hex, sizeof(hex));
    sodium_free(key);
    return rc;
}
