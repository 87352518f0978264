/* Unit tests of the vault's token sealing (services/vault/token_crypto.c): round
 * trip, that a ciphertext opens under its own binding only, and rewrapping. */
#include "check.h"

#include "token_crypto.h"

#include <stdlib.h>

static const char ORG[] = "0b1c6a3e-5d0e-4c8a-9f57-3a0f1e2d4c5b";
static const char BOT[] = "7e9d2f10-1a2b-4c3d-8e4f-5a6b7c8d9e0f";
static const char OTHER[] = "7e9d2f10-1a2b-4c3d-8e4f-5a6b7c8d9e10";
static const char TOKEN[] = "xoxb-1234-5678-unit-test-token";

struct sealed {
    uint8_t nonce[TOKEN_NONCE_BYTES];
    uint8_t ct[token_sealed_len(sizeof(TOKEN) - 1)];
};

/* True when ct opens under binding and gives back TOKEN. */
static int opens(const struct token_keyring *kr, const struct token_binding *b,
                 const struct sealed *s)
{
    uint8_t *out = sodium_malloc(sizeof(s->ct));
    size_t len = 99;
    int ok = token_open(kr, b, s->ct, sizeof(s->ct), s->nonce, out, &len) == 0;
    if (ok) {
        CHECK(len == sizeof(TOKEN) - 1);
        CHECK(memcmp(out, TOKEN, len) == 0);
    } else {
        CHECK(len == 0);
    }
    sodium_free(out);
    return ok;
}

static void test_round_trip_and_binding(const struct token_keyring *kr,
                                        const struct token_keyring *other_root)
{
    struct token_binding b = {ORG, BOT, "slack", 1};
    struct sealed s;
    CHECK(token_seal(kr, &b, (const uint8_t *)TOKEN, sizeof(TOKEN) - 1, s.nonce, s.ct) == 0);
    CHECK(memmem(s.ct, sizeof(s.ct), "xoxb", 4) == NULL);
    CHECK(opens(kr, &b, &s));

    struct token_binding wrong = b;
    wrong.org_id = OTHER;
    CHECK(!opens(kr, &wrong, &s));
    wrong = b;
    wrong.bot_id = OTHER;
    CHECK(!opens(kr, &wrong, &s));
    wrong = b;
    wrong.platform = "messenger";
    CHECK(!opens(kr, &wrong, &s));
    wrong = b;
    wrong.key_version = 2;
    CHECK(!opens(kr, &wrong, &s));
    /* Swapping org and bot must not give the same associated data. */
    wrong.org_id = BOT;
    wrong.bot_id = ORG;
    wrong.key_version = 1;
    CHECK(!opens(kr, &wrong, &s));
    CHECK(!opens(other_root, &b, &s));

    for (size_t i = 0; i < sizeof(s.ct); i += 7) {
        struct sealed t = s;
        t.ct[i] ^= 0x01;
        CHECK(!opens(kr, &b, &t));
    }
    struct sealed t = s;
    t.nonce[3] ^= 0x80;
    CHECK(!opens(kr, &b, &t));
    CHECK(opens(kr, &b, &s));

    /* Two seals of one token differ (fresh nonces). */
    struct sealed s2;
    CHECK(token_seal(kr, &b, (const uint8_t *)TOKEN, sizeof(TOKEN) - 1, s2.nonce, s2.ct) == 0);
    CHECK(memcmp(s.nonce, s2.nonce, sizeof(s.nonce)) != 0);
    CHECK(memcmp(s.ct, s2.ct, sizeof(s.ct)) != 0);
    CHECK(opens(kr, &b, &s2));

    /* A sealed token of version 2 opens under version 2 only. */
    b.key_version = 2;
    CHECK(token_seal(kr, &b, (const uint8_t *)TOKEN, sizeof(TOKEN) - 1, s2.nonce, s2.ct) == 0);
    CHECK(opens(kr, &b, &s2));
    b.key_version = 1;
    CHECK(!opens(kr, &b, &s2));
}

static void test_limits(const struct token_keyring *kr)
{
    struct token_binding b = {ORG, BOT, "slack", 1};
    uint8_t nonce[TOKEN_NONCE_BYTES];
    static uint8_t big[TOKEN_MAX_BYTES + 1], ct[token_sealed_len(TOKEN_MAX_BYTES + 1)];
    CHECK(token_seal(kr, &b, big, 0, nonce, ct) == -1);
    CHECK(token_seal(kr, &b, big, TOKEN_MAX_BYTES + 1, nonce, ct) == -1);
    CHECK(token_seal(kr, &b, big, TOKEN_MAX_BYTES, nonce, ct) == 0);
    b.key_version = 0;
    CHECK(token_seal(kr, &b, big, 10, nonce, ct) == -1);
    b.key_version = 1;
    b.org_id = NULL;
    CHECK(token_seal(kr, &b, big, 10, nonce, ct) == -1);
}

static void test_derivation(const struct token_keyring *kr, const struct token_keyring *other_root)
{
    uint8_t k1[32], k1b[32], k2[32], c1[TOKEN_KEY_CHECK_BYTES], c1b[TOKEN_KEY_CHECK_BYTES],
        c2[TOKEN_KEY_CHECK_BYTES], cx[TOKEN_KEY_CHECK_BYTES];
    CHECK(token_derive_key(kr, 0, k1) == -1);
    CHECK(token_derive_key(kr, 1, k1) == 0);
    CHECK(token_derive_key(kr, 1, k1b) == 0);
    CHECK(token_derive_key(kr, 2, k2) == 0);
    CHECK(memcmp(k1, k1b, 32) == 0);
    CHECK(memcmp(k1, k2, 32) != 0);

    /* The documented derivation: crypto_kdf with subkey id = version, "bcrmtokn". */
    uint8_t root[32], expect[32];
    memset(root, 0x42, sizeof(root));
    struct token_keyring *fixed = token_keyring_new(root);
    CHECK(crypto_kdf_derive_from_key(expect, 32, 1, "bcrmtokn", root) == 0);
    CHECK(token_derive_key(fixed, 1, k1) == 0);
    CHECK(memcmp(k1, expect, 32) == 0);
    token_keyring_free(fixed);

    CHECK(token_key_check(kr, 1, c1) == 0);
    CHECK(token_key_check(kr, 1, c1b) == 0);
    CHECK(token_key_check(kr, 2, c2) == 0);
    CHECK(token_key_check(other_root, 1, cx) == 0);
    CHECK(memcmp(c1, c1b, sizeof(c1)) == 0);
    CHECK(memcmp(c1, c2, sizeof(c1)) != 0);
    CHECK(memcmp(c1, cx, sizeof(c1)) != 0);
}

/* Rewrapping moves a ciphertext to another version without changing the token,
 * refuses what does not open, and leaves its output alone then. */
static void test_rewrap(const struct token_keyring *kr)
{
    struct token_binding v1 = {ORG, BOT, "slack", 1}, v2 = {ORG, BOT, "slack", 2};
    struct sealed s, r;
    CHECK(token_seal(kr, &v1, (const uint8_t *)TOKEN, sizeof(TOKEN) - 1, s.nonce, s.ct) == 0);
    CHECK(token_rewrap(kr, &v1, s.ct, sizeof(s.ct), s.nonce, &v2, r.nonce, r.ct) == 0);
    CHECK(opens(kr, &v2, &r));
    CHECK(!opens(kr, &v1, &r));
    CHECK(memcmp(r.nonce, s.nonce, sizeof(r.nonce)) != 0);
    CHECK(memmem(r.ct, sizeof(r.ct), "xoxb", 4) == NULL);

    /* A ciphertext named with the wrong version or bot does not rewrap. */
    struct token_binding other_bot = {ORG, OTHER, "slack", 1};
    struct sealed untouched;
    memset(&untouched, 0xab, sizeof(untouched));
    struct sealed out = untouched;
    CHECK(token_rewrap(kr, &v2, s.ct, sizeof(s.ct), s.nonce, &v2, out.nonce, out.ct) == -1);
    CHECK(token_rewrap(kr, &other_bot, s.ct, sizeof(s.ct), s.nonce, &v2, out.nonce, out.ct) == -1);
    s.ct[0] ^= 1;
    CHECK(token_rewrap(kr, &v1, s.ct, sizeof(s.ct), s.nonce, &v2, out.nonce, out.ct) == -1);
    CHECK(memcmp(&out, &untouched, sizeof(out)) == 0);
    CHECK(token_rewrap(kr, &v1, s.ct, TOKEN_TAG_BYTES, s.nonce, &v2, out.nonce, out.ct) == -1);
}

int main(void)
{
    CHECK(sodium_init() >= 0);
    uint8_t root[TOKEN_ROOT_KEY_BYTES], root2[TOKEN_ROOT_KEY_BYTES];
    randombytes_buf(root, sizeof(root));
    randombytes_buf(root2, sizeof(root2));
    struct token_keyring *kr = token_keyring_new(root);
    struct token_keyring *other = token_keyring_new(root2);
    CHECK(kr != NULL && other != NULL);
    test_round_trip_and_binding(kr, other);
    test_limits(kr);
    test_derivation(kr, other);
    test_rewrap(kr);
    token_keyring_free(kr);
    token_keyring_free(other);
    CHECK_DONE();
}
