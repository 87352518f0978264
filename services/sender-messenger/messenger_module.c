/* messenger_module.c: the Messenger module's configuration and its entry in the
 * worker framework. */
#include "messenger.h"

#include "bcrm/config.h"
#include "bcrm/log.h"

#include <stdlib.h>
#include <string.h>

#define MESSENGER_PROFILE_CACHE_MAX 262144

static void *messenger_init(void)
{
    struct messenger_state *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->graph_url = strdup(config_str("BCRM_GRAPH_API_URL", "https://graph.facebook.com/v19.0"));
    size_t len = s->graph_url != NULL ? strlen(s->graph_url) : 0;
    while (len > 0 && s->graph_url[len - 1] == '/') {
        s->graph_url[--len] = '\0';
    }
    int64_t ttl = config_duration_ms("BCRM_SENDER_PROFILE_TTL", 5 * 60 * 1000);
    s->profiles = profile_cache_new(MESSENGER_PROFILE_CACHE_MAX, ttl);
    if (s->graph_url == NULL || s->profiles == NULL) {
        log_fatal("messenger module: out of memory", NULL);
        profile_cache_free(s->profiles);
        free(s->graph_url);
        free(s);
        return NULL;
    }
    return s;
}

/* Nothing of a person stays past its time for want of a lookup. */
static void messenger_tick(void *state, int64_t now_mono_ms)
{
    struct messenger_state *s = state;
    profile_cache_sweep(s->profiles, now_mono_ms);
}

static void messenger_fini(void *state)
{
    struct messenger_state *s = state;
    profile_cache_free(s->profiles);
    free(s->graph_url);
    free(s);
}

const struct worker_platform messenger_platform = {
    .name = "messenger",
    .service = "sender-messenger",
    .platform = BCRM__V1__PLATFORM__PLATFORM_MESSENGER,
    .work_url_var = "BCRM_SCHEDULER_WORK_MESSENGER_URL",
    .work_url_default = "tcp://127.0.0.1:7111",
    .api_query_url_var = "BCRM_API_QUERY_MESSENGER_URL",
    .api_query_url_default = "tcp://127.0.0.1:7121",
    .scheduler_query_url_var = "BCRM_SCHEDULER_QUERY_MESSENGER_URL",
    .scheduler_query_url_default = "tcp://127.0.0.1:7114",
    .ops_addr_default = "127.0.0.1:9184",
    .init = messenger_init,
    .fini = messenger_fini,
    .precheck = messenger_precheck,
    .build_send = messenger_build_send,
    .classify_send = messenger_classify_send,
    .query = messenger_query,
    .tick = messenger_tick,
};
