/* send.c: the Send API (POST /me/messages), with Messenger's 24-hour rule.
 *
 * A page may message a person within 24 hours of that person's last message;
 * after that only with a message tag (HUMAN_AGENT up to 7 days). Anything else is
 * refused with (#10) and subcode 2018278, the error a sender must treat as a
 * permanent failure. Checks run in the order Graph reports them: arguments, the
 * person, the policy, the rate limit.
 */
#include "graph.h"
#include "receipts.h"

#include "rng.h"

#include "bcrm/http.h"
#include "bcrm/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEXT_CHARS 2000
#define DAY_MS (24LL * 3600 * 1000)

static const char *const allowed_tags[] = {"CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE",
                                           "ACCOUNT_UPDATE", "HUMAN_AGENT", NULL};

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        n += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return n;
}

static bool tag_allowed(const char *tag)
{
    for (size_t i = 0; allowed_tags[i] != NULL; i++) {
        if (strcmp(tag, allowed_tags[i]) == 0) {
            return true;
        }
    }
    return false;
}

static void param_error(struct graph_call *c, int subcode, const char *message)
{
    graph_error(c, 400, 100, subcode, "OAuthException", message);
}

/* Whether the policy lets this send through, given when the person last wrote. */
static bool window_allows(int64_t age_ms, const char *type, const char *tag)
{
    if (age_ms <= DAY_MS) {
        return true;
    }
    if (strcmp(type, "MESSAGE_TAG") != 0) {
        return false;
    }
    if (strcmp(tag, "HUMAN_AGENT") == 0) {
        return age_ms <= 7 * DAY_MS;
    }
    return true;
}

void graph_send(struct graph_call *c)
{
    struct msim *m = c->m;
    struct msim_page *page = c->page;
    json_t *recipient = NULL;
    json_t *message = NULL;
    const char *rtext = params_get(&c->params, "recipient");
    const char *mtext = params_get(&c->params, "message");
    const char *type = params_get(&c->params, "messaging_type");
    const char *tag = params_get(&c->params, "tag");

    if (rtext == NULL || (recipient = json_loads(rtext, 0, NULL)) == NULL ||
        !json_is_string(json_object_get(recipient, "id"))) {
        param_error(c, 0, "(#100) The parameter recipient is required");
        goto out;
    }
    const char *psid = json_string_value(json_object_get(recipient, "id"));
    const struct msim_person *person = msim_person(page, psid);
    if (person == NULL) {
        param_error(c, 2018001, "(#100) No matching user found");
        goto out;
    }
    if (mtext == NULL || (message = json_loads(mtext, 0, NULL)) == NULL ||
        !json_is_object(message)) {
        param_error(c, 0, "(#100) The parameter message is required");
        goto out;
    }
    json_t *text_value = json_object_get(message, "text");
    if (text_value != NULL && !json_is_string(text_value)) {
        param_error(c, 0, "(#100) Param message[text] must be a string");
        goto out;
    }
    const char *text = json_string_value(text_value);
    json_t *attachment = json_object_get(message, "attachment");
    if ((text == NULL || text[0] == '\0') && !json_is_object(attachment)) {
        param_error(c, 0, "(#100) Message cannot be empty, must provide valid attachment or text");
        goto out;
    }
    if (text != NULL && utf8_chars(text) > MAX_TEXT_CHARS) {
        param_error(c, 0,
                    "(#100) Length of param message[text] must be less than or equal to 2000");
        goto out;
    }
    if (type == NULL || type[0] == '\0') {
        param_error(c, 0, "(#100) The parameter messaging_type is required");
        goto out;
    }
    if (strcmp(type, "RESPONSE") != 0 && strcmp(type, "UPDATE") != 0 &&
        strcmp(type, "MESSAGE_TAG") != 0) {
        param_error(c, 0,
                    "(#100) Param messaging_type must be one of {RESPONSE, UPDATE, "
                    "MESSAGE_TAG}");
        goto out;
    }
    if (strcmp(type, "MESSAGE_TAG") == 0 && (tag == NULL || !tag_allowed(tag))) {
        param_error(c, 0,
                    "(#100) Param tag must be one of {CONFIRMED_EVENT_UPDATE, "
                    "POST_PURCHASE_UPDATE, ACCOUNT_UPDATE, HUMAN_AGENT}");
        goto out;
    }
    if (person->unavailable) {
        graph_error(c, 400, 551, 1545041, "OAuthException",
                    "(#551) This person isn't available right now.");
        goto out;
    }
    int64_t age = c->now_ms - atomic_load(&person->last_message_ms);
    if (!window_allows(age, type, tag ? tag : "")) {
        atomic_fetch_add(&m->policy_refusals, 1);
        graph_error(c, 400, 10, 2018278, "OAuthException",
                    "(#10) This message is sent outside of allowed window. Learn more about the "
                    "new policy here: https://developers.facebook.com/docs/messenger-platform/"
                    "policy-overview");
        goto out;
    }
    if (c->faults.limits) {
        pthread_mutex_lock(&page->limit_lock);
        int wait = bucket_take(&page->send_bucket, c->faults.send_per_second,
                               c->faults.send_per_second / 1000.0, c->now_ms);
        pthread_mutex_unlock(&page->limit_lock);
        if (wait > 0) {
            graph_ratelimited(c, 613);
            goto out;
        }
    }

    char mid[64];
    uint64_t n = atomic_fetch_add(&m->next_mid, 1);
    char tail[40];
    rng_token_lower(tail, rng_hash4(n, (uint64_t)c->now_ms, page->index, 0x3d), 32);
    snprintf(mid, sizeof(mid), "m_%s", tail);
    json_t *extra =
        json_pack("{s:s, s:o}", "messaging_type", type, "tag",
                  tag && strcmp(type, "MESSAGE_TAG") == 0 ? json_string(tag) : json_null());
    json_object_set_new(extra, "attachment", attachment ? json_deep_copy(attachment) : json_null());
    struct record_input in = {
        .space = page->id,
        .channel = NULL,
        .recipient = person->psid,
        .user_is_recipient = true,
        .text = text ? text : "",
        .alt_content = NULL,
        .ts = mid,
        .arrival_ms = c->now_ms,
        .extra = extra,
    };
    if (record_add(m->record, &in) == 0) {
        graph_error(c, 500, 2, 0, "OAuthException", "An unexpected error has occurred.");
        goto out;
    }
    metric_inc(m->m_messages);
    msim_receipts_sent(m->receipts, person, mid);
    graph_reply(c, 200, json_pack("{s:s, s:s}", "recipient_id", person->psid, "message_id", mid));
    if (c->faults.drop_rate > 0.0 && rng_thread_unit() < c->faults.drop_rate) {
        atomic_fetch_add(&m->dropped, 1);
        c->resp->drop = true;
    }
out:
    json_decref(recipient);
    json_decref(message);
}
