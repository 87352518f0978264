/* token_store.h: the vault's tables (bot_tokens, vault_keys, vault_audit).
 *
 * Every function borrows a connection from its caller (each worker has its own)
 * and runs plain statements; the caller decides what goes into one transaction.
 * Only ciphertexts, nonces and public check values pass through here, never a
 * token or a key.
 */
#ifndef BCRM_VAULT_TOKEN_STORE_H
#define BCRM_VAULT_TOKEN_STORE_H

#include "token_crypto.h"

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

/* A bot_tokens row. Release the ciphertext with token_row_clear(). */
struct token_row {
    char org_id[40];
    char platform[16];
    uint32_t key_version;
    uint8_t nonce[TOKEN_NONCE_BYTES];
    uint8_t *ciphertext; /* PQunescapeBytea'd; freed by token_row_clear */
    size_t ciphertext_len;
};

void token_row_clear(struct token_row *row);

/* Inserts or replaces the ciphertext of binding->bot_id. 1 when stored, 0 when the
 * bot id is already stored for another org (nothing written), -1 on error. */
int token_store_upsert(PGconn *db, const struct token_binding *binding,
                       const uint8_t nonce[TOKEN_NONCE_BYTES], const uint8_t *ct, size_t ctlen);
/* 1 with row filled, 0 when no row, -1 on error (or a malformed row). */
int token_store_fetch(PGconn *db, const char *bot_id, struct token_row *row);
/* The number of rows deleted (0 or 1), or -1. */
int token_store_delete(PGconn *db, const char *org_id, const char *bot_id);
/* The number of stored tokens, or -1. */
int64_t token_store_count(PGconn *db);

/* One vault_audit row. Strings are borrowed; NULL ones are stored as NULL. */
struct audit_entry {
    const char *caller;    /* hex public key */
    const char *role;      /* NULL for an unknown caller */
    const char *operation; /* store, release, destroy, status, unknown */
    const char *org_id;
    const char *bot_id;
    const char *outcome; /* ok, denied, stale, not_found, bad_request, internal, corrupt */
    const char *request_id;
};

/* 0 or -1. */
int audit_insert(PGconn *db, const struct audit_entry *e);

/* Records key version 1 on first start, checks every recorded version against
 * the root key in kr, and sets *current to the current version. 0, or -1 with
 * err filled (the root key does not match, or the database failed). */
int vault_keys_init(PGconn *db, const struct token_keyring *kr, uint32_t *current, char *err,
                    size_t errlen);

#endif
