/* slack_module.c: the Slack module's configuration and its entry in the worker
 * framework. */
#include "slack.h"

#include "bcrm/config.h"
#include "bcrm/keys.h"
#include "bcrm/log.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Profiles for personalised messages, and DM channel ids: enough for a large
 * workspace's campaign (a full users.list reading), bounded all the same. */
#define SLACK_PROFILE_CACHE_MAX 262144

static void slack_fini(void *state);

static void dm_channel_free(void *value)
{
    char *id = value;
    if (id != NULL) {
        sodium_memzero(id, strlen(id));
        free(id);
    }
}

void slack_tick(void *state, int64_t now_mono_ms)
{
    struct slack_state *s = state;
    /* Nothing of a person stays past its time for want of a lookup. */
    profile_cache_sweep(s->profiles, now_mono_ms);
    worker_cache_sweep(s->dm_channels, now_mono_ms);
    slack_bots_sweep(s, now_mono_ms);
}

/* The OAuth client credentials are optional: without them the exchange answers
 * "oauth_not_configured". 0, or -1 after logging why. */
static int slack_oauth_init(struct slack_state *s)
{
    const char *id = config_str("BCRM_SLACK_CLIENT_ID", "");
    const char *secret = config_str("BCRM_SLACK_CLIENT_SECRET", "");
    const char *vault_key = config_str("BCRM_VAULT_PUBLIC_KEY", "");
    if (id[0] == '\0' || secret[0] == '\0') {
        return 0;
    }
    if (hex_decode(s->vault_public_key, sizeof(s->vault_public_key), vault_key) != 0) {
        log_fatal("BCRM_VAULT_PUBLIC_KEY: want 64 hex characters", NULL);
        return -1;
    }
    size_t len = strlen(secret);
    s->client_id = strdup(id);
    s->client_secret = sodium_malloc(len + 1);
    if (s->client_id == NULL || s->client_secret == NULL) {
        log_fatal("slack module: out of memory", NULL);
        return -1;
    }
    memcpy(s->client_secret, secret, len + 1);
    /* The environment block would keep it (and show it in /proc/<pid>/environ). */
    sodium_memzero((char *)secret, len);
    s->oauth_configured = true;
    return 0;
}

static void *slack_init(void)
{
    struct slack_state *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->api_url = strdup(config_str("BCRM_SLACK_API_URL", "https://slack.com/api"));
    size_t len = s->api_url != NULL ? strlen(s->api_url) : 0;
    while (len > 0 && s->api_url[len - 1] == '/') {
        s->api_url[--len] = '\0';
    }
    if (slack_oauth_init(s) != 0) {
        slack_fini(s);
        return NULL;
    }
    s->profile_ttl_ms = config_duration_ms("BCRM_SENDER_PROFILE_TTL", 5 * 60 * 1000);
    s->profiles = profile_cache_new(SLACK_PROFILE_CACHE_MAX, s->profile_ttl_ms);
    s->dm_channels = worker_cache_new(SLACK_PROFILE_CACHE_MAX, s->profile_ttl_ms, dm_channel_free);
    if (s->api_url == NULL || s->profiles == NULL || s->dm_channels == NULL) {
        log_fatal("slack module: out of memory", NULL);
        slack_fini(s);
        return NULL;
    }
    return s;
}

static void slack_fini(void *state)
{
    struct slack_state *s = state;
    profile_cache_free(s->profiles);
    worker_cache_free(s->dm_channels);
    slack_bots_free(s);
    free(s->api_url);
    free(s->client_id);
    sodium_free(s->client_secret);
    free(s);
}

const struct worker_platform slack_platform = {
    .name = "slack",
    .service = "sender-slack",
    .platform = BCRM__V1__PLATFORM__PLATFORM_SLACK,
    .work_url_var = "BCRM_SCHEDULER_WORK_SLACK_URL",
    .work_url_default = "tcp://127.0.0.1:7110",
    .api_query_url_var = "BCRM_API_QUERY_SLACK_URL",
    .api_query_url_default = "tcp://127.0.0.1:7120",
    .scheduler_query_url_var = "BCRM_SCHEDULER_QUERY_SLACK_URL",
    .scheduler_query_url_default = "tcp://127.0.0.1:7113",
    .ops_addr_default = "127.0.0.1:9183",
    .init = slack_init,
    .fini = slack_fini,
    .precheck = NULL,
    .build_send = slack_build_send,
    .classify_send = slack_classify_send,
    .query = slack_query,
    .query_needs_token = slack_query_needs_token,
    .tick = slack_tick,
};
