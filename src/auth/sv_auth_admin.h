/* Operator actions on accounts, for streamvibe-admin's `user` commands:
 * over a connection that may write the auth schema (the database owner's,
 * as for migrate). No e-mail is sent, so a forgotten password is the
 * operator's to reset (or the service role's, through /auth/v1/admin/users,
 * sv_auth_admin_users.c). */
#ifndef SV_AUTH_ADMIN_H
#define SV_AUTH_ADMIN_H

#include <stddef.h>
#include <stdio.h>

#include <libpq-fe.h>

/* A user id as text, NUL included. */
#define SV_AUTH_ADMIN_ID_BYTES 37

/* Writes one line per account to out, oldest first:
 * "id=… email=… created_at=… last_sign_in_at=…" ("-" when never).
 * SV_OK, or SV_ERROR with err. */
int sv_auth_admin_list(PGconn *conn, FILE *out, char *err, size_t errlen);

/* Gives the account whose email is email (compared case-insensitively)
 * the password pw[0..len) (argon2id, as signup does) and, in the same
 * transaction, revokes all its sessions and refresh tokens (whoever holds
 * the old password or a refresh token is signed out; access tokens
 * already issued last until they expire) and forgets its failed logins
 * (the owner is not locked out by an attacker's guesses). A password of
 * fewer than min_chars characters (UTF-8), longer than SV_PASSWORD_MAX
 * bytes or holding a NUL is refused before anything is read.
 * *found: 0 when no account has that email (nothing changed); user_id
 * and *revoked (sessions revoked) are set when found. SV_OK or SV_ERROR
 * with err. */
int sv_auth_admin_set_password(PGconn *conn, const char *email, const char *pw, size_t len,
                               int min_chars, char user_id[SV_AUTH_ADMIN_ID_BYTES], long *revoked,
                               int *found, char *err, size_t errlen);

/* Deletes the account whose email is email with everything it owns, by
 * auth.delete_user (handles, content, credentials; audit rows stay,
 * without the user). *found and user_id as above. SV_OK or SV_ERROR. */
int sv_auth_admin_delete(PGconn *conn, const char *email, char user_id[SV_AUTH_ADMIN_ID_BYTES],
                         int *found, char *err, size_t errlen);

#endif
