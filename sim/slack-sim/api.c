/* api.c: the main port's router and the common path of every Web API call.
 *
 * The order of the checks follows what a client of Slack can observe: a storm or
 * a 5xx arrives whatever the request says; a malformed body or a bad token is
 * answered before the method runs; a rate limit applies to an authenticated
 * workspace. Faults are drawn per call from a snapshot taken on arrival, so a
 * test that changes them sees the change from the next call on.
 */
#include "api.h"
#include "oauth.h"

#include "buf.h"
#include "rng.h"
#include "simutil.h"
#include "strmap.h"

#include "bcrm/clock.h"
#include "bcrm/http.h"
#include "bcrm/metrics.h"
#include "bcrm/shutdown.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*api_method_fn)(struct api_call *c);

struct api_method {
    const char *name;
    api_method_fn fn;
    int tier;      /* Slack's tier, 1-4; 0 for chat.postMessage's own rules */
    bool no_token; /* called with the app's client credentials instead */
};

/* auth.test is in Slack's "special" tier, generous enough to call as tier 4. */
static const struct api_method api_methods[SIM_M_UNKNOWN] = {
    [SIM_M_AUTH_TEST] = {"auth.test", method_auth_test, 4},
    [SIM_M_USERS_LIST] = {"users.list", method_users_list, 2},
    [SIM_M_USERS_INFO] = {"users.info", method_users_info, 4},
    [SIM_M_CONVERSATIONS_OPEN] = {"conversations.open", method_conversations_open, 3},
    [SIM_M_CONVERSATIONS_LIST] = {"conversations.list", method_conversations_list, 2},
    [SIM_M_CONVERSATIONS_MEMBERS] = {"conversations.members", method_conversations_members, 4},
    [SIM_M_CHAT_POST_MESSAGE] = {"chat.postMessage", method_chat_post_message, 0},
    [SIM_M_OAUTH_V2_ACCESS] = {"oauth.v2.access", method_oauth_v2_access, 0, true},
};

const char *sim_method_name(enum sim_method m)
{
    return m < SIM_M_UNKNOWN ? api_methods[m].name : "unknown";
}

static const char api_content_type[] = "application/json; charset=utf-8";

void api_reply(struct api_call *c, json_t *body)
{
    http_respond_json(c->resp, 200, body);
    c->resp->content_type = api_content_type;
}

void api_reply_buf(struct api_call *c, struct buf *b)
{
    size_t len;
    char *data = buf_take(b, &len);
    if (data == NULL) {
        api_reply_error(c, "fatal_error");
        c->resp->status = 500;
        return;
    }
    free(c->resp->body);
    c->resp->status = 200;
    c->resp->content_type = api_content_type;
    c->resp->body = data;
    c->resp->body_len = len;
}

void api_reply_error(struct api_call *c, const char *error)
{
    api_reply(c, json_pack("{s:b, s:s}", "ok", 0, "error", error));
}

void api_reply_ratelimited(struct api_call *c, int retry_after_s)
{
    char secs[16];
    snprintf(secs, sizeof(secs), "%d", retry_after_s);
    api_reply_error(c, "ratelimited");
    c->resp->status = 429;
    http_add_header(c->resp, "Retry-After", secs);
    atomic_fetch_add(&c->sim->counters.ratelimited, 1);
    metric_inc(c->sim->m_ratelimited);
}

long api_arg_limit(const struct api_call *c, long fallback, long max)
{
    const char *v = params_get(&c->params, "limit");
    if (v == NULL || v[0] == '\0') {
        return fallback;
    }
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (*end != '\0' || n < 0) {
        return -1;
    }
    return n > max ? max : n;
}

bool api_arg_bool(const struct api_call *c, const char *key)
{
    const char *v = params_get(&c->params, key);
    return v != NULL && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

void api_next_ts(struct sim *sim, char out[24])
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
    int64_t last = atomic_load(&sim->last_ts_us);
    int64_t next;
    do {
        next = us > last ? us : last + 1;
    } while (!atomic_compare_exchange_weak(&sim->last_ts_us, &last, next));
    snprintf(out, 24, "%010lld.%06lld", (long long)(next / 1000000), (long long)(next % 1000000));
}

static enum sim_method method_lookup(const char *name)
{
    for (int m = 0; m < SIM_M_UNKNOWN; m++) {
        if (strcmp(api_methods[m].name, name) == 0) {
            return (enum sim_method)m;
        }
    }
    return SIM_M_UNKNOWN;
}

static void api_handle(struct sim *sim, const struct http_request *req, struct http_response *resp,
                       const char *method_name)
{
    struct api_call call = {.sim = sim, .req = req, .resp = resp};
    call.method = method_lookup(method_name);
    atomic_fetch_add(&sim->counters.requests, 1);
    atomic_fetch_add(&sim->counters.by_method[call.method], 1);
    metric_inc(sim->m_requests);
    faults_get(&call.faults);

    sim_sleep_latency(call.faults.latency_ms, call.faults.jitter_ms);
    call.now_ms = clock_wall_ms();
    if (call.faults.storm_until_ms > call.now_ms) {
        api_reply_ratelimited(&call,
                              (int)((call.faults.storm_until_ms - call.now_ms + 999) / 1000));
        return;
    }
    if (call.faults.error_rate > 0.0 && rng_thread_unit() < call.faults.error_rate) {
        atomic_fetch_add(&sim->counters.injected_errors, 1);
        api_reply_error(&call, "internal_error");
        resp->status = call.faults.error_status;
        return;
    }
    if (call.method == SIM_M_UNKNOWN) {
        api_reply_error(&call, "unknown_method");
        return;
    }
    const char *bad_body = params_parse(&call.params, req);
    if (bad_body != NULL) {
        api_reply_error(&call, bad_body);
        goto out;
    }
    const struct api_method *m = &api_methods[call.method];
    if (m->no_token) {
        m->fn(&call);
        goto out;
    }
    const char *token = params_token(&call.params);
    if (token == NULL) {
        api_reply_error(&call, "not_authed");
        goto out;
    }
    call.ws = strmap_get(sim->pop->workspace_by_token, token);
    if (call.ws == NULL) {
        api_reply_error(&call, "invalid_auth");
        goto out;
    }
    if (atomic_load(&call.ws->revoked)) {
        api_reply_error(&call, "token_revoked");
        goto out;
    }
    if (call.faults.limits.enabled && m->tier > 0) {
        int wait = ratelimit_take_method(sim->limits, call.ws->index, call.method,
                                         call.faults.limits.tier_per_minute[m->tier], call.now_ms);
        if (wait > 0) {
            api_reply_ratelimited(&call, wait);
            goto out;
        }
    }
    m->fn(&call);
out:
    params_free(&call.params);
}

void sim_handle(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct sim *sim = ctx;
    const char *path = req->path;
    if (strncmp(path, "/api/", 5) == 0) {
        api_handle(sim, req, resp, path + 5);
    } else if (strncmp(path, "/_sim/", 6) == 0) {
        control_handle(sim, req, resp, path + 6);
    } else if (strcmp(path, "/oauth/v2/authorize") == 0) {
        oauth_authorize(sim, req, resp);
    } else if (strcmp(path, "/healthz") == 0) {
        http_respond(resp, 200, "text/plain", "ok\n", 3);
    } else if (strcmp(path, "/readyz") == 0) {
        if (shutdown_requested()) {
            http_respond(resp, 503, "text/plain", "not ready\n", 10);
        } else {
            http_respond(resp, 200, "text/plain", "ready\n", 6);
        }
    } else {
        http_respond_problem(resp, 404, "Not Found", "no endpoint %s (the Web API is under /api/)",
                             path);
    }
}
