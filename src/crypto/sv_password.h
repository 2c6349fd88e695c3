/* Password hashes: argon2id for every password the server sets
 * (libsodium's crypto_pwhash_str, interactive limits), and bcrypt checks
 * for the hashes GoTrue stored in V1 (libxcrypt). Both cost tens of
 * milliseconds of CPU: callers shed their connections first. */
#ifndef SV_PASSWORD_H
#define SV_PASSWORD_H

#include <stddef.h>

#include <sodium.h>

/* Room for an argon2id hash string. */
#define SV_PASSWORD_HASH_BYTES crypto_pwhash_STRBYTES

/* Longest password accepted anywhere; longer ones are refused at signup
 * and simply fail at login (after the same work as any failure). */
#define SV_PASSWORD_MAX 1024

/* Hashes pw[0..len) with argon2id into out. SV_OK, or SV_ERROR when out
 * of memory. */
int sv_password_hash(char out[SV_PASSWORD_HASH_BYTES], const char *pw, size_t len);

/* 1 when pw[0..len) matches the argon2id string hash, else 0. */
int sv_password_verify(const char *hash, const char *pw, size_t len);

/* The work of a failed verification without a hash to verify against:
 * an unknown email then answers as slowly as a known one with a wrong
 * password. */
void sv_password_verify_nobody(const char *pw, size_t len);

/* 1 when hash is a bcrypt string ($2a$, $2b$, $2x$, $2y$: GoTrue's, kept
 * for users imported from V1) rather than an argon2id one. */
int sv_password_is_bcrypt(const char *hash);

/* Above this cost a stored bcrypt hash is not checked: each step doubles
 * the work (~85 ms at GoTrue's 10 here, ~5 s at 16), and a worker inside
 * crypt() cannot be interrupted. */
#define SV_PASSWORD_BCRYPT_MAX_COST 16

/* 1 when the password (pw_len bytes, of which bcrypt reads 72) matches a
 * bcrypt hash, 0 when not or for any malformed hash, -1 for a hash whose
 * cost is 17 to 31 (not checked: it could outlast request_timeout). A
 * hash or password that cannot be checked (malformed, too costly, a NUL
 * in the password, 512 bytes or more) still costs a cost-10 bcrypt, so
 * such an account answers no sooner than one with a real check.
 * Constant-time comparison; the password's copies are wiped. */
int sv_password_bcrypt_check(const char *hash, const char *pw, size_t pw_len);

#endif
