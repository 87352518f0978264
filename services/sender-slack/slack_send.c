/* slack_send.c: one campaign message through chat.postMessage.
 *
 * A message without placeholders is one request. A personalised one first needs
 * the recipient's profile (slack_profiles.c: from memory, users.info, or a
 * users.list page read for many sends at once), renders the text and blocks,
 * then posts. A DM goes to the user id, or to the DM conversations.open gives
 * where Slack refuses the user id (slack_dm.c).
 */
#include "slack.h"

#include "bcrm/clock.h"
#include "bcrm/worker_reply.h"
#include "bcrm/worker_template.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *slack_parse(const struct worker_response *resp)
{
    json_t *body = json_loadb(resp->body, resp->body_len, 0, NULL);
    if (body != NULL && !json_is_object(body)) {
        json_decref(body);
        body = NULL;
    }
    return body;
}

int slack_request(const struct slack_state *s, const char *method, const char *token,
                  struct worker_request *req)
{
    req->method = "POST";
    if (asprintf(&req->url, "%s/%s", s->api_url, method) < 0) {
        req->url = NULL;
        return -1;
    }
    /* "Expect:" keeps libcurl from waiting for a 100 Continue on larger bodies. */
    return worker_request_header(req, "Authorization: Bearer %s", token) != 0 ||
                   worker_request_header(req, "Expect:") != 0
               ? -1
               : 0;
}

int slack_request_form(struct worker_request *req, char *form)
{
    if (req->body != NULL) {
        sodium_memzero(req->body, req->body_len);
    }
    free(req->body);
    req->body = form != NULL ? form : strdup("");
    if (req->body == NULL) {
        return -1;
    }
    req->body_len = strlen(req->body);
    return worker_request_header(req, "Content-Type: application/x-www-form-urlencoded");
}

bool slack_is_user_id(const char *id)
{
    return id[0] == 'U' || id[0] == 'W';
}

/* Parses the job's blocks; *blocks stays NULL when there are none. -1 when they
 * are not a JSON array. */
static int parse_blocks(const Bcrm__V1__SendJob *job, json_t **blocks)
{
    *blocks = NULL;
    if (job->blocks_json == NULL || job->blocks_json[0] == '\0') {
        return 0;
    }
    *blocks = json_loads(job->blocks_json, 0, NULL);
    if (*blocks == NULL || !json_is_array(*blocks)) {
        json_decref(*blocks);
        *blocks = NULL;
        return -1;
    }
    return 0;
}

static enum worker_next build_post(struct slack_state *s, struct worker_send *send,
                                   const char *token, json_t *blocks, struct worker_request *req,
                                   struct worker_outcome *out)
{
    const Bcrm__V1__SendJob *job = send->job;
    enum worker_next next = WORKER_FINAL;
    char *text = NULL;
    json_t *body = NULL;
    if (job->text != NULL && job->text[0] != '\0') {
        text = template_render(job->text, worker_profile_lookup, &send->profile);
        if (text == NULL) {
            worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "out_of_memory");
            goto out;
        }
    }
    if (text == NULL && blocks == NULL) {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_FAILED, "no_text");
        goto out;
    }
    const char *channel;
    if (slack_dm_route(s, send, token, &channel, req, out, &next)) {
        goto out; /* conversations.open first */
    }
    if (blocks != NULL && template_render_json(blocks, worker_profile_lookup, &send->profile)) {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "out_of_memory");
        goto out;
    }
    /* The metadata lets a reader of the channel (and the simulator) tie the
     * message to its delivery row; the id is a string because JSON numbers lose
     * precision past 2^53. */
    char delivery_id[32];
    snprintf(delivery_id, sizeof(delivery_id), "%lld", (long long)job->delivery_id);
    body = json_pack("{s:s, s:{s:s, s:{s:s}}}", "channel", channel, "metadata", "event_type",
                     "bcrm_delivery", "event_payload", "delivery_id", delivery_id);
    if (body == NULL || (text != NULL && json_object_set_new(body, "text", json_string(text))) ||
        (blocks != NULL && json_object_set(body, "blocks", blocks)) ||
        slack_request(s, "chat.postMessage", token, req) != 0 ||
        worker_request_json(req, body) != 0) {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "out_of_memory");
        goto out;
    }
    send->step = SLACK_STEP_POST;
    next = WORKER_REQUEST;
out:
    if (text != NULL) {
        sodium_memzero(text, strlen(text)); /* it may hold a person's name */
    }
    free(text);
    json_decref(body);
    return next;
}

enum worker_next slack_build_send(void *state, struct worker_send *send, const char *token,
                                  struct worker_request *req, struct worker_outcome *out)
{
    struct slack_state *s = state;
    const Bcrm__V1__SendJob *job = send->job;
    json_t *blocks = NULL;
    if (parse_blocks(job, &blocks) != 0) {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_FAILED, "invalid_blocks");
        return WORKER_FINAL;
    }
    bool personal = template_has_placeholders(job->text) ||
                    (blocks != NULL && template_json_has_placeholders(blocks));
    if (personal && slack_is_user_id(job->recipient_id)) {
        switch (slack_profile_step(s, send, token, req, out)) {
        case SLACK_PROFILE_READY:
            break;
        case SLACK_PROFILE_REQUEST:
            json_decref(blocks);
            return WORKER_REQUEST;
        case SLACK_PROFILE_WAIT:
            json_decref(blocks);
            return WORKER_WAIT;
        case SLACK_PROFILE_FINAL:
            json_decref(blocks);
            return WORKER_FINAL;
        }
    }
    enum worker_next next = build_post(s, send, token, blocks, req, out);
    json_decref(blocks);
    return next;
}

void slack_classify_post(const struct worker_response *resp, struct worker_outcome *out)
{
    char code[WORKER_ERROR_MAX];
    if (worker_classify_transport(resp, out)) {
        return;
    }
    out->retry_after_ms = resp->retry_after_ms;
    if (resp->status == 429) {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "ratelimited");
        out->rate_limited = true;
        return;
    }
    if (resp->status >= 500) {
        /* Slack's front ends answer 5xx before the request reaches the method. */
        snprintf(code, sizeof(code), "http_%ld", resp->status);
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, code);
        return;
    }
    json_t *body = slack_parse(resp);
    json_t *ok = json_object_get(body, "ok");
    const char *error = json_string_value(json_object_get(body, "error"));
    if (resp->status == 200 && json_is_true(ok)) {
        const char *ts = json_string_value(json_object_get(body, "ts"));
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_SENT, NULL);
        snprintf(out->platform_message_id, sizeof(out->platform_message_id), "%s",
                 ts != NULL ? ts : "");
    } else if (json_is_false(ok) && error != NULL) {
        const struct worker_rule *rule =
            worker_rule_find(slack_send_rules, slack_send_rule_count, error);
        if (rule != NULL) {
            worker_rule_apply(rule, error, out);
        } else {
            worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_FAILED, error);
        }
    } else if (resp->status == 200) {
        /* An answer we cannot read: the message may well have been posted. */
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_UNKNOWN, "bad_response");
    } else {
        snprintf(code, sizeof(code), "http_%ld", resp->status);
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_FAILED, code);
    }
    json_decref(body);
}

enum worker_next slack_classify_send(void *state, struct worker_send *send,
                                     const struct worker_response *resp, struct worker_outcome *out)
{
    switch (send->step) {
    case SLACK_STEP_PROFILE:
    case SLACK_STEP_FILL:
        return slack_profile_classify(state, send, resp, out);
    case SLACK_STEP_OPEN:
        return slack_dm_classify_open(state, send, resp, out);
    default:
        break;
    }
    slack_classify_post(resp, out);
    if (slack_dm_refused(send, out)) {
        worker_outcome_init(out); /* nothing was posted: open the DM, post there */
        return WORKER_REQUEST;
    }
    return WORKER_FINAL;
}
