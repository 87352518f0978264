/* webhooks.h: Messenger webhook deliveries to bcrm, signed with the app secret
 * (X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>), and the
 * subscription check (GET ?hub.mode=subscribe&hub.verify_token&hub.challenge).
 */
#ifndef MSIM_WEBHOOKS_H
#define MSIM_WEBHOOKS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct msim_page;
struct sim_webhook_client;

struct msim_webhook_config {
    const char *url;          /* "" when not configured; borrowed */
    const char *app_secret;   /* borrowed */
    const char *verify_token; /* borrowed */
};

void msim_webhooks_init(const struct msim_webhook_config *config);
/* The URL to deliver to: override when given, else the configured one (may be ""). */
const char *msim_webhook_url(const char *override);
/* Wraps one messaging item (taken) in a page entry, signs and posts it. Returns
 * a new report {status, answer[, error]}. */
json_t *msim_webhook_deliver(const struct msim_page *page, json_t *messaging, const char *url,
                             int64_t now_ms);
/* Posts one page entry with several messaging items (an array, taken), signed,
 * on client's connection. Returns the HTTP status, or 0 with err filled when no
 * answer came. */
long msim_webhook_post_items(struct sim_webhook_client *client, const struct msim_page *page,
                             json_t *items, const char *url, int64_t now_ms, char *err,
                             size_t errlen);
/* Runs the subscription check against url. Returns a new report
 * {status, answer, echoed}. */
json_t *msim_webhook_verify(const char *url);

#endif
