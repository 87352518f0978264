/* events.c: see events.h. */
#include "events.h"

#include "api.h"
#include "rng.h"
#include "sim.h"
#include "strmap.h"
#include "webhook.h"

#include "bcrm/clock.h"
#include "bcrm/http.h"
#include "bcrm/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEBHOOK_TIMEOUT_MS 3000 /* Slack gives a webhook three seconds */

static struct sim_events_config events_config;

void events_init(const struct sim_events_config *config)
{
    events_config = *config;
}

/* The event of an event_callback, or NULL (with *error) for a bad request. */
static json_t *make_event(struct sim_workspace *ws, const char *type, json_t *req,
                          const char *event_ts, const char **error)
{
    if (strcmp(type, "app_uninstalled") == 0) {
        return json_pack("{s:s, s:s}", "type", type, "event_ts", event_ts);
    }
    if (strcmp(type, "tokens_revoked") == 0) {
        return json_pack("{s:s, s:{s:[], s:[s]}, s:s}", "type", type, "tokens", "oauth", "bot",
                         ws->bot_user->id, "event_ts", event_ts);
    }
    if (strcmp(type, "message") == 0) {
        const char *user_id = json_string_value(json_object_get(req, "user"));
        const char *text = json_string_value(json_object_get(req, "text"));
        const struct sim_user *u = user_id ? population_user(ws, user_id) : NULL;
        if (u == NULL) {
            *error = "message events need \"user\": a user id of the workspace";
            return NULL;
        }
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "type", "message", "channel_type",
                         "im", "channel", u->dm_id, "user", u->id, "text", text ? text : "hello",
                         "ts", event_ts, "event_ts", event_ts);
    }
    *error = "type must be url_verification, app_uninstalled, tokens_revoked or message";
    return NULL;
}

void events_post(struct sim *sim, const struct http_request *req, struct http_response *resp)
{
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, 0, &jerr);
    json_t *envelope = NULL;
    char *text = NULL;
    struct sim_webhook_result result = {0};
    const char *error = NULL;
    const char *type = json_string_value(json_object_get(body, "type"));
    const char *team = json_string_value(json_object_get(body, "team_id"));
    const char *url = json_string_value(json_object_get(body, "url"));
    url = url ? url : events_config.url;
    struct sim_workspace *ws =
        team ? strmap_get(sim->pop->workspace_by_team, team) : &sim->pop->workspaces[0];
    if (!json_is_object(body) || type == NULL) {
        error = "want a JSON object with \"type\"";
    } else if (ws == NULL) {
        error = "no workspace with that team_id";
    } else if (url == NULL || url[0] == '\0') {
        error = "no url given and SLACK_SIM_EVENTS_URL not set";
    }
    if (error != NULL) {
        goto bad;
    }

    char event_ts[24];
    api_next_ts(sim, event_ts);
    char challenge[48] = "";
    if (strcmp(type, "url_verification") == 0) {
        rng_token_lower(challenge, rng_thread_u64(), 40);
        envelope = json_pack("{s:s, s:s, s:s}", "token", "sim-verification-token", "challenge",
                             challenge, "type", "url_verification");
    } else {
        json_t *event = make_event(ws, type, body, event_ts, &error);
        if (event == NULL) {
            goto bad;
        }
        char event_id[16];
        rng_slack_id(event_id, 'E', rng_thread_u64(), 10);
        char ev_id[20];
        snprintf(ev_id, sizeof(ev_id), "Ev%s", event_id + 1);
        envelope =
            json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:I, s:[{s:s, s:s, s:b}]}", "token",
                      "sim-verification-token", "team_id", ws->team_id, "api_app_id", ws->app_id,
                      "event", event, "type", "event_callback", "event_id", ev_id, "event_time",
                      (json_int_t)(clock_wall_ms() / 1000), "authorizations", "team_id",
                      ws->team_id, "user_id", ws->bot_user->id, "is_bot", 1);
    }
    text = json_dumps(envelope, JSON_COMPACT);

    /* v0 signature over "v0:<timestamp>:<raw body>". */
    json_t *skew = json_object_get(body, "timestamp_skew_s");
    long long ts = (long long)(clock_wall_ms() / 1000) + (skew ? json_integer_value(skew) : 0);
    char base_head[32];
    int head_len = snprintf(base_head, sizeof(base_head), "v0:%lld:", ts);
    size_t text_len = strlen(text);
    char *base = malloc((size_t)head_len + text_len + 1);
    char mac[65];
    memcpy(base, base_head, (size_t)head_len);
    memcpy(base + head_len, text, text_len + 1);
    sim_hmac_sha256_hex(events_config.signing_secret, base, (size_t)head_len + text_len, mac);
    free(base);
    if (json_is_true(json_object_get(body, "bad_signature"))) {
        mac[0] = mac[0] == '0' ? '1' : '0';
    }
    char h_ts[64], h_sig[96], h_retry[64], h_reason[64];
    snprintf(h_ts, sizeof(h_ts), "X-Slack-Request-Timestamp: %lld", ts);
    snprintf(h_sig, sizeof(h_sig), "X-Slack-Signature: v0=%s", mac);
    const char *headers[4] = {h_ts, h_sig};
    size_t nheaders = 2;
    json_t *retry = json_object_get(body, "retry_num");
    if (json_is_integer(retry)) {
        snprintf(h_retry, sizeof(h_retry), "X-Slack-Retry-Num: %lld",
                 (long long)json_integer_value(retry));
        snprintf(h_reason, sizeof(h_reason), "X-Slack-Retry-Reason: http_timeout");
        headers[nheaders++] = h_retry;
        headers[nheaders++] = h_reason;
    }
    if (strcmp(type, "app_uninstalled") == 0 || strcmp(type, "tokens_revoked") == 0) {
        /* Slack tells of a token that has already stopped working: a receiver
         * that asks (auth.test) while handling the event hears token_revoked. */
        atomic_store(&ws->revoked, true);
    }
    sim_webhook_post(url, text, headers, nheaders, WEBHOOK_TIMEOUT_MS, &result);
    log_info("event delivered", "{s:s, s:s, s:i}", "type", type, "team_id", ws->team_id, "status",
             (int)result.status);
    json_t *answer =
        json_pack("{s:b, s:i, s:s, s:o}", "ok", result.status != 0, "status", (int)result.status,
                  "answer", result.body ? result.body : "", "envelope", json_incref(envelope));
    if (result.status == 0) {
        json_object_set_new(answer, "error", json_string(result.error));
    }
    if (challenge[0] != '\0') {
        json_object_set_new(answer, "challenge_echoed",
                            json_boolean(result.body && strstr(result.body, challenge)));
    }
    http_respond_json(resp, 200, answer);
    goto out;
bad:
    http_respond_problem(resp, 400, "Bad Request", "%s", error);
out:
    sim_webhook_result_free(&result);
    free(text);
    json_decref(envelope);
    json_decref(body);
}
