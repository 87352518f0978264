/* webhook_sig.h: checking the signatures that Slack and Meta put on the webhook
 * requests they send us (spec/platforms.md), as pure functions for the unit tests.
 *
 * Both are HMAC-SHA256 over the raw request body, keyed by a secret the platform
 * shares with us: Slack signs "v0:<timestamp>:<body>" with its signing secret and
 * sends "v0=<hex>" in X-Slack-Signature; Meta signs the body with the app secret and
 * sends "sha256=<hex>" in X-Hub-Signature-256. The comparison is constant-time, and
 * a failure says which check failed, never what the expected value was.
 *
 * Every pointer is borrowed for the length of the call.
 */
#ifndef BCRM_API_WEBHOOK_SIG_H
#define BCRM_API_WEBHOOK_SIG_H

#include <stddef.h>
#include <stdint.h>

/* Slack's replay window: a request whose timestamp is further than this from our
 * clock, in either direction, is refused. */
#define SIG_SLACK_WINDOW_S 300

enum sig_result {
    SIG_OK = 0,
    SIG_MISSING,   /* a signature or timestamp header is absent */
    SIG_MALFORMED, /* present, but not "v0=" / "sha256=" and 64 hex characters */
    SIG_STALE,     /* Slack: the timestamp is outside the window */
    SIG_MISMATCH,  /* well-formed, but not made with our secret */
};

/* HMAC-SHA256 under a key of any length of the concatenation of n parts (parts[i]
 * of lens[i] bytes) into out. */
void sig_hmac_sha256(const uint8_t *key, size_t keylen, const void *const *parts,
                     const size_t *lens, size_t n, uint8_t out[32]);

/* Checks a Slack Events API request. timestamp and signature are the header values
 * (NULL when absent); now_s is our clock in Unix seconds. */
enum sig_result sig_slack_check(const char *secret, const char *timestamp, const char *signature,
                                const char *body, size_t body_len, int64_t now_s);

/* Checks a Messenger webhook request; signature is X-Hub-Signature-256 (or NULL). */
enum sig_result sig_meta_check(const char *app_secret, const char *signature, const char *body,
                               size_t body_len);

/* A short phrase naming why a check failed ("signature does not match"). */
const char *sig_result_reason(enum sig_result result);

#endif
