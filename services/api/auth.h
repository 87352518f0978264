/* auth.h: who is calling, and may they do this.
 *
 * Sessions and API keys are random secrets handed to the client once; the
 * database holds only their SHA-256. Passwords are Argon2id (crypto_pwhash_str).
 * Cookie-authenticated requests that change state must prove they come from our
 * own pages: a matching Origin, or the session's CSRF token in X-CSRF-Token.
 */
#ifndef BCRM_API_AUTH_H
#define BCRM_API_AUTH_H

#include "api.h"

#include <stddef.h>
#include <stdint.h>

#define AUTH_SESSION_COOKIE "__Host-bcrm_session"
#define AUTH_KEY_PREFIX "bcrm_"
/* 32 random bytes in unpadded base64url. */
#define AUTH_SECRET_CHARS 43

/* Fills out (AUTH_SECRET_CHARS + 1 bytes) with a new random secret. */
void auth_new_secret(char *out);
/* "\\x" and the hex SHA-256 of text, ready to be a bytea query parameter (68 bytes). */
void auth_hash_param(const char *text, char out[68]);

/* Creates a session for account_id on conn (inside or outside a transaction).
 * Fills the cookie value and the CSRF token (AUTH_SECRET_CHARS + 1 bytes each).
 * 0 or -1. */
int auth_session_create(struct api_req *r, PGconn *conn, const char *account_id, char *cookie,
                        char *csrf);
/* Set-Cookie for a new session, or one that clears the cookie when value is NULL. */
void auth_set_cookie(struct api_req *r, const char *value);

/* Reads the credential of the request. Anonymous requests and stale cookies are
 * fine (r->auth stays AUTH_ANON); a bad or revoked API key is answered 401 and
 * -1 returned. -1 also when the database failed (answered). */
int auth_identify(struct api_req *r);
/* The caller's role in org_id, ROLE_NONE if none. -1 when the database failed. */
int auth_org_role(struct api_req *r, const char *org_id, enum api_role *role);
/* True if the request may change state: API keys always, sessions with a
 * matching Origin or X-CSRF-Token. */
bool auth_csrf_ok(struct api_req *r);

const char *auth_role_name(enum api_role role);
enum api_role auth_role_parse(const char *name);

/* Argon2id. auth_password_hash fills out (crypto_pwhash_STRBYTES); 0 or -1. */
int auth_password_hash(const struct api_ctx *api, const char *password, char *out);
bool auth_password_verify(const char *hash, const char *password);
/* Spends the time of one verification without an account, so that an unknown
 * email cannot be told from a wrong password by timing. */
void auth_password_dummy_verify(const struct api_ctx *api, const char *password);

#endif
