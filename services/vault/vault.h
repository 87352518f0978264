/* vault.h: the vault's state shared by its worker threads. Everything here is
 * set up by main() before the workers start and read-only afterwards, except the
 * atomic readiness flag. */
#ifndef BCRM_VAULT_VAULT_H
#define BCRM_VAULT_VAULT_H

#include "allowlist.h"
#include "token_crypto.h"

#include "bcrm/keys.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Calls issued more than this far from the vault's clock are refused. */
#define VAULT_REPLAY_WINDOW_MS 60000

struct vault {
    struct identity identity;      /* the vault's own key pair (BCRM_IDENTITY_KEY_FILE) */
    struct token_keyring *keyring; /* root key (BCRM_VAULT_MASTER_KEY_FILE) */
    struct allowlist *allowlist;   /* BCRM_VAULT_ALLOWLIST_FILE */
    uint32_t key_version;          /* the current version at start, for the log; the
                                      database is the truth afterwards (key_store.h) */
    atomic_bool db_ok;             /* the last database round trip worked (for /readyz) */
};

#endif
