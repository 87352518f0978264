/* allowlist.h: who may call the vault, and what each role may do.
 *
 * The file (BCRM_VAULT_ALLOWLIST_FILE) holds one `<role> <public key hex>` per
 * line; blank lines and lines starting with '#' are ignored. A key names exactly
 * one role. The vault reads it once at start; restart the vault to change it.
 */
#ifndef BCRM_VAULT_ALLOWLIST_H
#define BCRM_VAULT_ALLOWLIST_H

#include "bcrm/v1/vault.pb-c.h"

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vault_role {
    VAULT_ROLE_NONE = 0, /* not on the allowlist */
    VAULT_ROLE_API,      /* store and destroy tokens */
    VAULT_ROLE_SENDER_SLACK,
    VAULT_ROLE_SENDER_MESSENGER, /* release tokens of their own platform */
    VAULT_ROLE_OPS,              /* status, rotate, rewrap, config, audit */
};

struct allowlist;

/* Reads path. NULL with err filled ("allowlist /x line 3: unknown role \"foo\"").
 * The file must not be writable by group or others: whoever can write it can
 * grant themselves tokens. Free with allowlist_free(). */
struct allowlist *allowlist_load(const char *path, char *err, size_t errlen);
void allowlist_free(struct allowlist *al);
size_t allowlist_count(const struct allowlist *al);

/* The role of a caller's public key, or VAULT_ROLE_NONE. */
enum vault_role allowlist_role(const struct allowlist *al,
                               const uint8_t public_key[crypto_box_PUBLICKEYBYTES]);

/* The role's name as written in the file ("api", "sender-slack", ...), or NULL. */
const char *vault_role_name(enum vault_role role);

/* Whether role may perform the call: op is the VaultCall's op case, platform the
 * platform of a release (ignored for other operations). */
bool vault_role_allows(enum vault_role role, Bcrm__V1__VaultCall__OpCase op,
                       Bcrm__V1__Platform platform);

#endif
