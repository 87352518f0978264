/* token_crypto.h: how the vault seals bot tokens at rest. Pure functions, no I/O.
 *
 * Each key version has its own 256-bit key, derived from the vault's root key with
 * crypto_kdf_derive_from_key(subkey_id = version, context "bcrmtokn"), so rotating
 * to a new version needs no new secret and retired versions can be derived again
 * to rewrap old rows. Tokens are sealed with XChaCha20-Poly1305-IETF under a random
 * 192-bit nonce; the associated data binds the ciphertext to its org, bot,
 * platform and key version, so a ciphertext copied to another row does not open.
 *
 * Keys are kept in sodium_malloc'd memory (guard pages, locked, wiped on free).
 */
#ifndef BCRM_VAULT_TOKEN_CRYPTO_H
#define BCRM_VAULT_TOKEN_CRYPTO_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#define TOKEN_ROOT_KEY_BYTES crypto_kdf_KEYBYTES
#define TOKEN_NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TOKEN_TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
/* The largest token the vault accepts; Slack and Graph tokens are far smaller. */
#define TOKEN_MAX_BYTES 4096

/* What a ciphertext is bound to. All strings are borrowed. */
struct token_binding {
    const char *org_id;
    const char *bot_id;
    const char *platform; /* "slack" or "messenger" */
    uint32_t key_version; /* 1 or more */
};

struct token_keyring;

/* Takes a copy of the 32-byte root key into locked, read-only memory; the caller
 * wipes its own copy. NULL when secure memory cannot be had. Free with
 * token_keyring_free(). */
struct token_keyring *token_keyring_new(const uint8_t root_key[TOKEN_ROOT_KEY_BYTES]);
void token_keyring_free(struct token_keyring *kr);

/* The key of one version into out (32 bytes; pass sodium_malloc'd memory and
 * wipe it after use). 0, or -1 for version 0. */
int token_derive_key(const struct token_keyring *kr, uint32_t version,
                     uint8_t out[crypto_aead_xchacha20poly1305_ietf_KEYBYTES]);

/* A short public value that proves which root key a version's key came from: the
 * vault stores it with the version and compares it at start, so a vault started
 * with the wrong root key refuses to run instead of failing every release. */
#define TOKEN_KEY_CHECK_BYTES 16
int token_key_check(const struct token_keyring *kr, uint32_t version,
                    uint8_t out[TOKEN_KEY_CHECK_BYTES]);

/* The ciphertext length for a token of len bytes (a constant expression). */
#define token_sealed_len(len) ((size_t)(len) + TOKEN_TAG_BYTES)

/* Seals token (len bytes, 1..TOKEN_MAX_BYTES) under binding->key_version into
 * out (token_sealed_len(len) bytes) with a fresh random nonce. 0 or -1. */
int token_seal(const struct token_keyring *kr, const struct token_binding *binding,
               const uint8_t *token, size_t len, uint8_t nonce[TOKEN_NONCE_BYTES], uint8_t *out);

/* Opens a ciphertext of ctlen bytes into out (ctlen - TOKEN_TAG_BYTES bytes; pass
 * sodium_malloc'd memory). 0, or -1 when it does not authenticate under binding
 * (another org, bot, platform or version, a wrong root key, or tampering); out is
 * wiped then. */
int token_open(const struct token_keyring *kr, const struct token_binding *binding,
               const uint8_t *ct, size_t ctlen, const uint8_t nonce[TOKEN_NONCE_BYTES],
               uint8_t *out, size_t *outlen);

/* Seals a ciphertext again under another binding (a newer key version) without
 * the plaintext leaving locked memory: opens ct (ctlen bytes, under from) into a
 * sodium_malloc'd buffer, seals that under to into out (ctlen bytes: the length
 * does not change) with a fresh nonce, and wipes the buffer. 0, or -1 when ct
 * does not open under from or memory ran out; out is then untouched. */
int token_rewrap(const struct token_keyring *kr, const struct token_binding *from,
                 const uint8_t *ct, size_t ctlen, const uint8_t nonce[TOKEN_NONCE_BYTES],
                 const struct token_binding *to, uint8_t new_nonce[TOKEN_NONCE_BYTES],
                 uint8_t *out);

#endif
