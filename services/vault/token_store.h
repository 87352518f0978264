/* token_store.h: the vault's bot_tokens table.
 *
 * Every function borrows a connection from its caller (each worker has its own)
 * and runs plain statements; the caller decides what goes into one transaction.
 * Only ciphertexts and nonces pass through here, never a token or a key.
 */
#ifndef BCRM_VAULT_TOKEN_STORE_H
#define BCRM_VAULT_TOKEN_STORE_H

#include "token_crypto.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A bot_tokens row. Release the ciphertext with token_row_clear(). */
struct token_row {
    char bot_id[40];
    char org_id[40];
    char platform[16];
    uint32_t key_version;
    bool version_known;              /* vault_keys records key_version */
    uint32_t min_decryption_version; /* the policy when the row was read */
    uint8_t nonce[TOKEN_NONCE_BYTES];
    uint8_t *ciphertext; /* PQunescapeBytea'd; freed by token_row_clear */
    size_t ciphertext_len;
};

void token_row_clear(struct token_row *row);

/* '\x' and the hex of n bytes: a bytea parameter in text form. malloc'd (free()),
 * NULL when memory ran out. */
char *sql_bytea(const uint8_t *data, size_t n);

/* Inserts or replaces the ciphertext of binding->bot_id. 1 when stored, 0 when the
 * bot id is already stored for another org (nothing written), -1 on error. */
int token_store_upsert(PGconn *db, const struct token_binding *binding,
                       const uint8_t nonce[TOKEN_NONCE_BYTES], const uint8_t *ct, size_t ctlen);
/* 1 with row filled, 0 when no row, -1 on error (or a malformed row). */
int token_store_fetch(PGconn *db, const char *bot_id, struct token_row *row);
/* In a transaction: locks (FOR UPDATE) the rows of the n bot ids that exist, in
 * bot id order, as a rewrap batch does, so that the two never deadlock. 0 or -1. */
int token_store_lock(PGconn *db, const char *const *bot_ids, int n);
/* The number of rows deleted (0 or 1), or -1. */
int token_store_delete(PGconn *db, const char *org_id, const char *bot_id);
/* The number of stored tokens, or -1. */
int64_t token_store_count(PGconn *db);

/* In a transaction: locks (FOR UPDATE) and reads up to limit rows sealed with a
 * version below current, in bot id order after after_bot_id (NULL: from the
 * start). *rows is a calloc'd array of *n rows: token_row_clear each, then free.
 * 0 or -1. */
int token_store_behind(PGconn *db, uint32_t current, const char *after_bot_id, int limit,
                       struct token_row **rows, size_t *n);
/* Replaces the ciphertext of old's bot with one sealed under new_version, only if
 * the row still holds old's version and nonce (compare-and-swap: a store that got
 * there first is not overwritten). 1 replaced, 0 the row changed, -1 error. */
int token_store_replace(PGconn *db, const struct token_row *old, uint32_t new_version,
                        const uint8_t nonce[TOKEN_NONCE_BYTES], const uint8_t *ct, size_t ctlen);
/* The number of tokens sealed with a version below version, or -1. */
int64_t token_store_count_below(PGconn *db, uint32_t version);

#endif
