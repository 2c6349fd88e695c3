/* The process-wide setup the crypto code needs. */
#ifndef SV_CRYPTO_H
#define SV_CRYPTO_H

/* Initialises libsodium (its random generator and the CPU feature
 * checks behind the fast code paths). Called once, by each program's
 * main() before it forks; everything else may then use libsodium.
 * Returns SV_OK or SV_ERROR. */
int sv_crypto_init(void);

/* A new random (version 4) UUID, as text, into out (37 bytes with the
 * NUL): job ids and Vault secret ids the server mints itself. */
void sv_crypto_uuid4(char out[37]);

#endif
