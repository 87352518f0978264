/* webhook_sig.c: Slack and Meta webhook signatures (see webhook_sig.h). */
#include "webhook_sig.h"

#include "bcrm/keys.h"

#include <ctype.h>
#include <sodium.h>
#include <string.h>

#define MAC_BYTES crypto_auth_hmacsha256_BYTES
/* A Unix time in seconds has 10 digits until the year 2286; allow a few more. */
#define TIMESTAMP_MAX_DIGITS 12

void sig_hmac_sha256(const uint8_t *key, size_t keylen, const void *const *parts,
                     const size_t *lens, size_t n, uint8_t out[32])
{
    /* crypto_auth_hmacsha256() itself wants a 32-byte key; the init/update/final
     * form takes a key of any length, as HMAC allows (longer keys are hashed). */
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init(&state, key, keylen);
    for (size_t i = 0; i < n; i++) {
        crypto_auth_hmacsha256_update(&state, parts[i], lens[i]);
    }
    crypto_auth_hmacsha256_final(&state, out);
    sodium_memzero(&state, sizeof(state));
}

/* Decodes "<prefix><64 hex>" into mac. 0, or -1 when the header is not that shape.
 * Hex digits of either case are accepted. */
static int parse_signature(const char *header, const char *prefix, uint8_t mac[MAC_BYTES])
{
    size_t plen = strlen(prefix);
    if (strncmp(header, prefix, plen) != 0) {
        return -1;
    }
    return hex_decode(mac, MAC_BYTES, header + plen);
}

static enum sig_result compare(const uint8_t expected[MAC_BYTES], const uint8_t given[MAC_BYTES])
{
    return crypto_verify_32(expected, given) == 0 ? SIG_OK : SIG_MISMATCH;
}

enum sig_result sig_slack_check(const char *secret, const char *timestamp, const char *signature,
                                const char *body, size_t body_len, int64_t now_s)
{
    uint8_t given[MAC_BYTES], expected[MAC_BYTES];
    if (timestamp == NULL || signature == NULL || timestamp[0] == '\0' || signature[0] == '\0') {
        return SIG_MISSING;
    }
    size_t digits = strlen(timestamp);
    if (digits > TIMESTAMP_MAX_DIGITS) {
        return SIG_MALFORMED;
    }
    int64_t ts = 0;
    for (size_t i = 0; i < digits; i++) {
        if (!isdigit((unsigned char)timestamp[i])) {
            return SIG_MALFORMED;
        }
        ts = ts * 10 + (timestamp[i] - '0');
    }
    if (parse_signature(signature, "v0=", given) != 0) {
        return SIG_MALFORMED;
    }
    /* The window comes first: an old request replayed with its genuine signature
     * must fail however well it is signed. */
    if (ts < now_s - SIG_SLACK_WINDOW_S || ts > now_s + SIG_SLACK_WINDOW_S) {
        return SIG_STALE;
    }
    const void *parts[] = {"v0:", timestamp, ":", body};
    const size_t lens[] = {3, digits, 1, body_len};
    sig_hmac_sha256((const uint8_t *)secret, strlen(secret), parts, lens, 4, expected);
    enum sig_result result = compare(expected, given);
    sodium_memzero(expected, sizeof(expected));
    return result;
}

enum sig_result sig_meta_check(const char *app_secret, const char *signature, const char *body,
                               size_t body_len)
{
    uint8_t given[MAC_BYTES], expected[MAC_BYTES];
    if (signature == NULL || signature[0] == '\0') {
        return SIG_MISSING;
    }
    if (parse_signature(signature, "sha256=", given) != 0) {
        return SIG_MALFORMED;
    }
    const void *parts[] = {body};
    const size_t lens[] = {body_len};
    sig_hmac_sha256((const uint8_t *)app_secret, strlen(app_secret), parts, lens, 1, expected);
    enum sig_result result = compare(expected, given);
    sodium_memzero(expected, sizeof(expected));
    return result;
}

const char *sig_result_reason(enum sig_result result)
{
    switch (result) {
    case SIG_OK:
        return "signature valid";
    case SIG_MISSING:
        return "signature or timestamp header missing";
    case SIG_MALFORMED:
        return "signature or timestamp header malformed";
    case SIG_STALE:
        return "timestamp outside the 300 s window";
    case SIG_MISMATCH:
        return "signature does not match";
    }
    return "signature invalid";
}
