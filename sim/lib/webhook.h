/* webhook.h: the simulators calling bcrm's webhooks, signed as the platforms sign.
 *
 * Calls are synchronous (libcurl's easy interface). Those a /_sim/ request asks
 * for are made from that request, so a test learns the webhook's answer at once;
 * a background sender (messenger-sim's receipts) keeps a client.
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

/* A client that keeps its connection between posts, for a thread that delivers
 * many events (messenger-sim's receipts). One thread at a time; NULL when out of
 * memory. Free with sim_webhook_client_free(). */
struct sim_webhook_client;
struct sim_webhook_client *sim_webhook_client_new(void);
/* As sim_webhook_post, on the client's connection. */
int sim_webhook_client_post(struct sim_webhook_client *client, const char *url, const char *body,
                            const char *const *headers, size_t header_count, long timeout_ms,
                            struct sim_webhook_result *result);
void sim_webhook_client_free(struct sim_webhook_client *client);
int sim_webhook_get(const char *url, long timeout_ms, struct sim_webhook_result *result);
void sim_webhook_result_free(struct sim_webhook_result *result);

/* Lower-case hex of HMAC-SHA256(key, msg), NUL-terminated. */
void sim_hmac_sha256_hex(const char *key, const void *msg, size_t len, char out[65]);

#endif
