/* token_crypto.c: per-version keys from the root key, and XChaCha20-Poly1305
 * sealing of tokens bound to their row. */
#include "token_crypto.h"

#include <stdlib.h>
#include <string.h>

#define TOKEN_KDF_CONTEXT "bcrmtokn"
#define TOKEN_AD_LABEL "bcrm.token.v1"
/* Each bound string is at most this long; ids are uuids, platforms short words. */
#define TOKEN_AD_FIELD_MAX 255

struct token_keyring {
    uint8_t *root; /* sodium_malloc'd, read-only after construction */
};

struct token_keyring *token_keyring_new(const uint8_t root_key[TOKEN_ROOT_KEY_BYTES])
{
    struct token_keyring *kr = calloc(1, sizeof(*kr));
    if (kr == NULL) {
        return NULL;
    }
    kr->root = sodium_malloc(TOKEN_ROOT_KEY_BYTES);
    if (kr->root == NULL) {
        free(kr);
        return NULL;
    }
    memcpy(kr->root, root_key, TOKEN_ROOT_KEY_BYTES);
    sodium_mprotect_readonly(kr->root);
    return kr;
}

void token_keyring_free(struct token_keyring *kr)
{
    if (kr == NULL) {
        return;
    }
    sodium_free(kr->root); /* sodium_free wipes, whatever the protection */
    free(kr);
}

int token_derive_key(const struct token_keyring *kr, uint32_t version,
                     uint8_t out[crypto_aead_xchacha20poly1305_ietf_KEYBYTES])
{
    if (version == 0) {
        return -1;
    }
    return crypto_kdf_derive_from_key(out, crypto_aead_xchacha20poly1305_ietf_KEYBYTES, version,
                                      TOKEN_KDF_CONTEXT, kr->root);
}

int token_key_check(const struct token_keyring *kr, uint32_t version,
                    uint8_t out[TOKEN_KEY_CHECK_BYTES])
{
    static const char label[] = "bcrm vault key check";
    uint8_t *key = sodium_malloc(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
    int rv = -1;
    if (key == NULL || token_derive_key(kr, version, key) != 0) {
        goto out;
    }
    /* A keyed hash reveals nothing about the key, unlike a ciphertext of zeros. */
    rv = crypto_generichash(out, TOKEN_KEY_CHECK_BYTES, (const uint8_t *)label, sizeof(label) - 1,
                            key, crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
out:
    sodium_free(key);
    return rv;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

static uint8_t *put_field(uint8_t *p, const char *s)
{
    size_t len = strlen(s);
    p = put_u32(p, (uint32_t)len);
    memcpy(p, s, len);
    return p + len;
}

/* The associated data: a label, the version, then each string with its length in
 * front, so that no two different bindings can encode to the same bytes. */
static int token_ad(const struct token_binding *b, uint8_t *ad, size_t *adlen)
{
    if (b->org_id == NULL || b->bot_id == NULL || b->platform == NULL ||
        strlen(b->org_id) > TOKEN_AD_FIELD_MAX || strlen(b->bot_id) > TOKEN_AD_FIELD_MAX ||
        strlen(b->platform) > TOKEN_AD_FIELD_MAX) {
        return -1;
    }
    uint8_t *p = ad;
    memcpy(p, TOKEN_AD_LABEL, sizeof(TOKEN_AD_LABEL));
    p += sizeof(TOKEN_AD_LABEL);
    p = put_u32(p, b->key_version);
    p = put_field(p, b->org_id);
    p = put_field(p, b->bot_id);
    p = put_field(p, b->platform);
    *adlen = (size_t)(p - ad);
    return 0;
}

#define TOKEN_AD_MAX (sizeof(TOKEN_AD_LABEL) + 4 + 3 * (4 + TOKEN_AD_FIELD_MAX))

int token_seal(const struct token_keyring *kr, const struct token_binding *binding,
               const uint8_t *token, size_t len, uint8_t nonce[TOKEN_NONCE_BYTES], uint8_t *out)
{
    uint8_t ad[TOKEN_AD_MAX];
    size_t adlen;
    int rv = -1;
    if (len == 0 || len > TOKEN_MAX_BYTES || token_ad(binding, ad, &adlen) != 0) {
        return -1;
    }
    uint8_t *key = sodium_malloc(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
    if (key == NULL || token_derive_key(kr, binding->key_version, key) != 0) {
        goto out;
    }
    randombytes_buf(nonce, TOKEN_NONCE_BYTES);
    rv = crypto_aead_xchacha20poly1305_ietf_encrypt(out, NULL, token, len, ad, adlen, NULL, nonce,
                                                    key);
out:
    sodium_free(key);
    return rv;
}

int token_open(const struct token_keyring *kr, const struct token_binding *binding,
               const uint8_t *ct, size_t ctlen, const uint8_t nonce[TOKEN_NONCE_BYTES],
               uint8_t *out, size_t *outlen)
{
    uint8_t ad[TOKEN_AD_MAX];
    size_t adlen;
    unsigned long long got = 0;
    int rv = -1;
    *outlen = 0;
    if (ctlen <= TOKEN_TAG_BYTES || ctlen > token_sealed_len(TOKEN_MAX_BYTES) ||
        token_ad(binding, ad, &adlen) != 0) {
        return -1;
    }
    uint8_t *key = sodium_malloc(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
    if (key == NULL || token_derive_key(kr, binding->key_version, key) != 0) {
        goto out;
    }
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &got, NULL, ct, ctlen, ad, adlen, nonce,
                                                   key) != 0) {
        sodium_memzero(out, ctlen - TOKEN_TAG_BYTES);
        goto out;
    }
    *outlen = (size_t)got;
    rv = 0;
out:
    sodium_free(key);
    return rv;
}

int token_rewrap(const struct token_keyring *kr, const struct token_binding *from,
                 const uint8_t *ct, size_t ctlen, const uint8_t nonce[TOKEN_NONCE_BYTES],
                 const struct token_binding *to, uint8_t new_nonce[TOKEN_NONCE_BYTES], uint8_t *out)
{
    if (ctlen <= TOKEN_TAG_BYTES || ctlen > token_sealed_len(TOKEN_MAX_BYTES)) {
        return -1;
    }
    size_t len = 0;
    int rv = -1;
    uint8_t *plain = sodium_malloc(ctlen - TOKEN_TAG_BYTES);
    if (plain == NULL || token_open(kr, from, ct, ctlen, nonce, plain, &len) != 0) {
        goto out;
    }
    rv = token_seal(kr, to, plain, len, new_nonce, out);
out:
    sodium_free(plain); /* wipes */
    return rv;
}
