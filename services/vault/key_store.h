/* key_store.h: the vault's key versions (vault_keys) and their policy
 * (vault_policy).
 *
 * The tables hold no key: a version's key is derived from the root key when it
 * is needed (token_crypto.h); vault_keys records which versions exist, which one
 * is current, and a check value per version that proves which root key it came
 * from. vault_policy holds min_decryption_version.
 *
 * The database is the only truth about versions, so several vault processes, or
 * one restarted, agree without telling each other. A store or a rewrap batch
 * locks the current version's row FOR SHARE and a rotation FOR UPDATE, so a
 * rotation waits for every store in flight, and once it commits no token can be
 * written under the old version any more: a rewrap that starts afterwards sees
 * every row it has to move.
 *
 * Every function borrows its caller's connection and runs inside the caller's
 * transaction where it says so.
 */
#ifndef BCRM_VAULT_KEY_STORE_H
#define BCRM_VAULT_KEY_STORE_H

#include "token_crypto.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Records key version 1 on first start, checks every recorded version against
 * the root key in kr, and sets *current to the current version. 0, or -1 with
 * err filled (the root key does not match, or the database failed). */
int vault_keys_init(PGconn *db, const struct token_keyring *kr, uint32_t *current, char *err,
                    size_t errlen);

/* In a transaction: locks the current version's row (exclusive: FOR UPDATE, for
 * a rotation; else FOR SHARE) and returns its version, or 0 on error. */
uint32_t key_current_lock(PGconn *db, bool exclusive);

/* In a transaction holding key_current_lock(db, true) on current: records
 * version current + 1 with its check value from kr and makes it current. 0 or -1. */
int key_rotate(PGconn *db, const struct token_keyring *kr, uint32_t current);

/* min_decryption_version, or 0 on error. */
uint32_t key_min_decryption_version(PGconn *db);
int key_set_min_decryption_version(PGconn *db, uint32_t version);

struct key_version_info {
    uint32_t version;
    const char *state; /* "current", "active" (decrypts) or "retired" (below the minimum) */
    int64_t tokens;    /* tokens sealed with it */
    int64_t created_at_ms;
};

/* Every version, oldest first, with its token count. *out is a malloc'd array of
 * *n entries (free() it); *min_version the policy's min_decryption_version.
 * 0 or -1. */
int key_versions_list(PGconn *db, struct key_version_info **out, size_t *n, uint32_t *min_version);

#endif
