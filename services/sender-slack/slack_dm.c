/* slack_dm.c: direct messages to users.
 *
 * chat.postMessage takes a user id as its channel and posts into the app's DM
 * with that person where the bot's token allows it (chat:write: Slack's usual
 * case), so a DM is first posted to the user id: one request. Where Slack
 * answers channel_not_found to a user id (a token or workspace that will not
 * open DMs that way), nothing was posted, so the send opens the DM with
 * conversations.open (im:write) and posts to its D... id: the message still goes
 * once. From then on that bot opens DMs first, with no refused post per person,
 * and each person's D... id is kept in memory; both for BCRM_SENDER_PROFILE_TTL
 * and no longer. A person conversations.open does not know ends FAILED with
 * Slack's reason (user_not_found, user_disabled, missing_scope...).
 */
#include "slack.h"

#include "bcrm/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool slack_dm_route(struct slack_state *s, struct worker_send *send, const char *token,
                    const char **channel, struct worker_request *req, struct worker_outcome *out,
                    enum worker_next *next)
{
    const Bcrm__V1__SendJob *job = send->job;
    struct slack_send_state *st = slack_send_state(send);
    *channel = job->recipient_id;
    st->posted_to_user_id = false;
    if (!slack_is_user_id(job->recipient_id)) {
        return false;
    }
    if (st->dm_channel[0] != '\0') {
        *channel = st->dm_channel;
        return false;
    }
    int64_t now = clock_mono_ms();
    const char *known = worker_cache_get(s->dm_channels, job->bot_id, job->recipient_id, now);
    if (known != NULL && strlen(known) < sizeof(st->dm_channel)) {
        snprintf(st->dm_channel, sizeof(st->dm_channel), "%s", known);
        *channel = st->dm_channel;
        return false;
    }
    const struct slack_bot *b = slack_bot_find(s, job->bot_id);
    if (!st->user_id_refused && (b == NULL || b->open_dms_until_ms <= now)) {
        st->posted_to_user_id = true;
        return false;
    }
    char *form = NULL;
    *next = WORKER_FINAL;
    if (worker_form_add(&form, "users", job->recipient_id) != 0 ||
        slack_request(s, "conversations.open", token, req) != 0) {
        free(form);
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "out_of_memory");
        return true;
    }
    if (slack_request_form(req, form) != 0) {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "out_of_memory");
        return true;
    }
    send->step = SLACK_STEP_OPEN;
    *next = WORKER_REQUEST;
    return true;
}

bool slack_dm_refused(struct worker_send *send, const struct worker_outcome *post)
{
    struct slack_send_state *st = slack_send_state(send);
    if (!st->posted_to_user_id || post->outcome != BCRM__V1__OUTCOME__OUTCOME_FAILED ||
        strcmp(post->error, "channel_not_found") != 0) {
        return false;
    }
    st->posted_to_user_id = false;
    st->user_id_refused = true;
    return true;
}

/* Opening a DM posts nothing: whatever went wrong, the message was not sent. */
static void never_unknown(struct worker_outcome *out)
{
    if (out->outcome == BCRM__V1__OUTCOME__OUTCOME_UNKNOWN) {
        out->outcome = BCRM__V1__OUTCOME__OUTCOME_RETRY;
    }
}

enum worker_next slack_dm_classify_open(struct slack_state *s, struct worker_send *send,
                                        const struct worker_response *resp,
                                        struct worker_outcome *out)
{
    const Bcrm__V1__SendJob *job = send->job;
    struct slack_send_state *st = slack_send_state(send);
    if (worker_classify_transport(resp, out)) {
        never_unknown(out);
        return WORKER_FINAL;
    }
    json_t *body = resp->status == 200 ? slack_parse(resp) : NULL;
    const char *id = json_string_value(json_object_get(json_object_get(body, "channel"), "id"));
    enum worker_next next = WORKER_FINAL;
    if (json_is_true(json_object_get(body, "ok")) && id != NULL && id[0] != '\0' &&
        strlen(id) < sizeof(st->dm_channel)) {
        int64_t now = clock_mono_ms();
        snprintf(st->dm_channel, sizeof(st->dm_channel), "%s", id);
        char *copy = strdup(id);
        if (copy != NULL) {
            worker_cache_put(s->dm_channels, job->bot_id, job->recipient_id, copy, now);
        }
        if (st->user_id_refused) {
            /* The user id was refused and the D... id works: open DMs first. */
            struct slack_bot *b = slack_bot_get(s, job->bot_id, now);
            if (b != NULL) {
                b->open_dms_until_ms = now + s->profile_ttl_ms;
            }
        }
        next = WORKER_REQUEST;
    } else if (json_is_true(json_object_get(body, "ok"))) {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "bad_response");
    } else {
        slack_classify_post(resp, out);
        never_unknown(out);
    }
    json_decref(body);
    return next;
}
