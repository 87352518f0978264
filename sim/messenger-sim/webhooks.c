/* webhooks.c: see webhooks.h. */
#include "webhooks.h"

#include "msim.h"
#include "rng.h"
#include "webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEBHOOK_TIMEOUT_MS 5000

static struct msim_webhook_config webhook_config;

void msim_webhooks_init(const struct msim_webhook_config *config)
{
    webhook_config = *config;
}

const char *msim_webhook_url(const char *override)
{
    return override != NULL && override[0] != '\0' ? override : webhook_config.url;
}

static json_t *report(const struct sim_webhook_result *r)
{
    json_t *o = json_pack("{s:i, s:s}", "status", (int)r->status, "answer", r->body ? r->body : "");
    if (o != NULL && r->status == 0) {
        json_object_set_new(o, "error", json_string(r->error));
    }
    return o;
}

/* The body of a delivery: one entry for page with items (taken), compact. */
static char *entry_text(const struct msim_page *page, json_t *items, int64_t now_ms)
{
    json_t *body = json_pack("{s:s, s:[{s:s, s:I, s:o}]}", "object", "page", "entry", "id",
                             page->id, "time", (json_int_t)now_ms, "messaging", items);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return text;
}

/* Posts text signed with the app secret, as Meta signs. */
static int post_signed(struct sim_webhook_client *client, const char *url, const char *text,
                       struct sim_webhook_result *r)
{
    char mac[65];
    sim_hmac_sha256_hex(webhook_config.app_secret, text, strlen(text), mac);
    char header[96];
    snprintf(header, sizeof(header), "X-Hub-Signature-256: sha256=%s", mac);
    const char *headers[] = {header};
    if (client != NULL) {
        return sim_webhook_client_post(client, url, text, headers, 1, WEBHOOK_TIMEOUT_MS, r);
    }
    return sim_webhook_post(url, text, headers, 1, WEBHOOK_TIMEOUT_MS, r);
}

json_t *msim_webhook_deliver(const struct msim_page *page, json_t *messaging, const char *url,
                             int64_t now_ms)
{
    char *text = entry_text(page, json_pack("[o]", messaging), now_ms);
    if (text == NULL) {
        return json_pack("{s:i, s:s}", "status", 0, "error", "out of memory");
    }
    struct sim_webhook_result r;
    post_signed(NULL, url, text, &r);
    json_t *out = report(&r);
    sim_webhook_result_free(&r);
    free(text);
    return out;
}

long msim_webhook_post_items(struct sim_webhook_client *client, const struct msim_page *page,
                             json_t *items, const char *url, int64_t now_ms, char *err,
                             size_t errlen)
{
    char *text = entry_text(page, items, now_ms);
    if (text == NULL) {
        snprintf(err, errlen, "out of memory");
        return 0;
    }
    struct sim_webhook_result r;
    post_signed(client, url, text, &r);
    if (r.status == 0) {
        snprintf(err, errlen, "%s", r.error);
    }
    long status = r.status;
    sim_webhook_result_free(&r);
    free(text);
    return status;
}

json_t *msim_webhook_verify(const char *url)
{
    char challenge[24];
    rng_token_lower(challenge, rng_thread_u64(), 20);
    char *full = NULL;
    if (asprintf(&full, "%s%shub.mode=subscribe&hub.verify_token=%s&hub.challenge=%s", url,
                 strchr(url, '?') ? "&" : "?", webhook_config.verify_token, challenge) < 0) {
        return json_pack("{s:i, s:s}", "status", 0, "error", "out of memory");
    }
    struct sim_webhook_result r;
    sim_webhook_get(full, WEBHOOK_TIMEOUT_MS, &r);
    json_t *out = report(&r);
    json_object_set_new(out, "echoed",
                        json_boolean(r.status == 200 && r.body && strcmp(r.body, challenge) == 0));
    sim_webhook_result_free(&r);
    free(full);
    return out;
}
