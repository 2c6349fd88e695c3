/* The vault: secrets sealed in the server before they reach PostgreSQL
 * (platform OAuth tokens, the Vault rpc's secrets, the PKCE verifier of
 * an OAuth flow), with libsodium's XChaCha20-Poly1305 (IETF AEAD), a
 * random 24-byte nonce per value, and associated data that names the row
 * and field a value belongs to, so a sealed value copied to another row
 * or column does not open.
 *
 * A sealed value is text: "sv1:<key id>:<base64url(nonce || ciphertext)>".
 * The key id is derived from the key itself (BLAKE2b), so a key file is
 * nothing but 32 random bytes in hex and the id always names the key
 * that sealed a value.
 *
 * Keys live in files the configuration names: vault_key_file (the
 * current key: seals, and opens) and vault_old_key_files (open only),
 * read once before any fork (the pool master reads them as root, so the
 * files can be 0600 root:root while workers run as another user). Keys
 * are kept in sodium_malloc'd, read-only memory and wiped when freed. */
#ifndef SV_VAULT_H
#define SV_VAULT_H

#include <stddef.h>
#include <stdint.h>

#include "core/sv_arena.h"

#define SV_VAULT_KEY_BYTES 32
#define SV_VAULT_MAX_KEYS 16
/* Longest plaintext the vault seals (a token, a Vault secret). */
#define SV_VAULT_MAX_PLAINTEXT 65536

typedef struct sv_vault_key {
    int32_t        id;
    unsigned char *key;        /* SV_VAULT_KEY_BYTES, sodium_malloc'd, read-only */
} sv_vault_key;

typedef struct sv_vault {
    int          n;
    int          current;      /* index of the sealing key, -1: none configured */
    sv_vault_key keys[SV_VAULT_MAX_KEYS];
} sv_vault;

/* Why a value did not open. */
typedef enum {
    SV_VAULT_OK = 0,
    SV_VAULT_MALFORMED,        /* not an "sv1:" value */
    SV_VAULT_UNKNOWN_KEY,      /* sealed with a key that is not configured */
    SV_VAULT_FORGED,           /* wrong associated data, or altered */
    SV_VAULT_NO_KEY,           /* sealing without a current key */
} sv_vault_status;

void sv_vault_init(sv_vault *v);

/* Reads the current key file (may be NULL or "": no key) and the comma
 * separated old key files. A key file must be a regular file that others
 * cannot read, holding 64 hex digits. Returns SV_OK, or SV_ERROR with a
 * message naming the file in err (never key material); v is then empty. */
int sv_vault_load(sv_vault *v, const char *current_path, const char *old_paths, char *err,
                  size_t errlen);

/* Handing the keys to another process (a job spawned by a worker that
 * runs as an unprivileged user, which could not read root-only key
 * files): the keys go through a pipe, never a file or the environment.
 *
 * sv_vault_pass writes v's keys to fd (the write end of a fresh pipe;
 * 16 keys are 580 bytes, well within a pipe's buffer, so it does not
 * block) as "SVK1", the key count, the current key's index (0xff: none),
 * then the 32-byte keys. SV_OK, or SV_ERROR when the write fell short.
 *
 * sv_vault_receive reads that from fd until EOF, into v (read-only,
 * sodium_malloc'd keys as sv_vault_load makes them), and wipes what it
 * read. SV_OK, or SV_ERROR with err (never key material); v is then
 * empty. The caller closes fd. */
int sv_vault_pass(const sv_vault *v, int fd);
int sv_vault_receive(sv_vault *v, int fd, char *err, size_t errlen);

/* Wipes and frees the keys; v is empty again. */
void sv_vault_free(sv_vault *v);

/* 1 when a current key is configured. */
int sv_vault_can_seal(const sv_vault *v);
/* The current key's id, 0 when none. */
int32_t sv_vault_current_id(const sv_vault *v);
/* 1 when key id is configured (current or old). */
int sv_vault_has_key(const sv_vault *v, int32_t id);

/* The id of a key: the first 31 bits of BLAKE2b(key) under a fixed
 * context, never 0. */
int32_t sv_vault_key_id(const unsigned char key[SV_VAULT_KEY_BYTES]);

/* Seals plain[0..len) under the current key with associated data ad.
 * Returns the sealed text in the arena, or NULL (no current key, or len
 * over SV_VAULT_MAX_PLAINTEXT). */
char *sv_vault_seal(const sv_vault *v, sv_arena *arena, const void *plain, size_t len,
                    const void *ad, size_t adlen);

/* Opens sealed (NUL-terminated) with associated data ad. On SV_VAULT_OK
 * *plain is a NUL-terminated secret arena allocation (wiped when the
 * arena resets: sv_arena_secret_alloc) of *len bytes, and *key_id (when
 * not NULL) the sealing key's id. */
sv_vault_status sv_vault_open(const sv_vault *v, sv_arena *arena, const char *sealed,
                              const void *ad, size_t adlen, char **plain, size_t *len,
                              int32_t *key_id);

/* The key id a sealed value names, without opening it; 0 when the text
 * is not a sealed value. */
int32_t sv_vault_sealed_key_id(const char *sealed);

/* A short English reason, for logs and errors (never includes data). */
const char *sv_vault_strerror(sv_vault_status st);

/* The associated data of the values the server seals (arena strings,
 * *len bytes including inner NUL separators):
 *   a platform credential's token: the row's user id, its platform id and
 *   the field ("access_token" or "refresh_token");
 *   a Vault secret: its id;
 *   an OAuth flow's PKCE verifier: the flow's state id. */
const char *sv_vault_ad_credential(sv_arena *arena, const char *user_id, const char *platform_id,
                                   const char *field, size_t *len);
const char *sv_vault_ad_secret(sv_arena *arena, const char *secret_id, size_t *len);
const char *sv_vault_ad_oauth_state(sv_arena *arena, const char *state_id, size_t *len);

/* Writes a new random key to path: created exclusively (an existing file
 * is never overwritten), mode 0600, synced. *id is its key id. Returns
 * SV_OK or SV_ERROR with err filled. */
int sv_vault_keygen(const char *path, int32_t *id, char *err, size_t errlen);

#endif
