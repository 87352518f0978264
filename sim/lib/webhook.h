/* webhook.h: the simulators calling bcrm's webhooks, signed as the platforms sign.
 *
 * Calls are synchronous (libcurl's easy interface) and made from the /_sim/
 * request that asked for them, so a test learns the webhook's answer at once.
 * curl_global_init() must have run (each simulator's main does it).
 */
#ifndef SIM_WEBHOOK_H
#define SIM_WEBHOOK_H

#include <stddef.h>

struct sim_webhook_result {
    long status;     /* the HTTP status, or 0 when there was no answer */
    char *body;      /* the answer's body (owned; free with sim_webhook_result_free) */
    char error[256]; /* why there was no answer */
};

/* POSTs body (JSON) to url with the extra headers ("Name: value"). Returns 0 when
 * an answer came (any status), -1 otherwise (see result->error). */
int sim_webhook_post(const char *url, const char *body, const char *const *headers,
                     size_t header_count, long timeout_ms, struct sim_webhook_result *result);
int sim_webhook_get(const char *url, long timeout_ms, struct sim_webhook_result *result);
void sim_webhook_result_free(struct sim_webhook_result *result);

/* Lower-case hex of HMAC-SHA256(key, msg), NUL-terminated. */
void sim_hmac_sha256_hex(const char *key, const void *msg, size_t len, char out[65]);

#endif
