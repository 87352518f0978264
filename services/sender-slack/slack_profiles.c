/* slack_profiles.c: the profile a personalised message's recipient needs.
 *
 * Slack offers two reads: users.info, one person a call (tier 4: 100+ calls a
 * minute), and users.list, up to 1000 people a page (tier 2: 20+ pages a minute).
 * A campaign of 10,000 personalised messages would take 100 minutes of users.info
 * calls, or ten users.list pages. So:
 *
 * - a profile in the cache (BCRM_SENDER_PROFILE_TTL) is used as it is;
 * - a bot's first SLACK_FILL_AFTER_MISSES misses in a minute are looked up one by
 *   one with users.info, so that a test message or a small campaign does not read
 *   a whole workspace;
 * - past that, a miss starts a fill: users.list pages of 1000 people read one
 *   after another, each page's profiles put in the cache as it arrives. Sends
 *   that miss meanwhile wait (WORKER_WAIT) and are built again after each page;
 *   the first of them to find no page in flight fetches the next one, and the
 *   pages are paced to tier 2 (slack_bots.c). A send that has waited
 *   SLACK_FILL_WAIT_MS looks its person up alone, and so does one whose person
 *   was not on the list. A 429 holds the fill until its Retry-After, and the
 *   sends that needed it go back as RETRY rate_limited (the scheduler then pauses
 *   the bot for that long);
 * - a bot is read again only once its profiles have expired: at most one fill
 *   per BCRM_SENDER_PROFILE_TTL.
 *
 * Profiles live in the cache only (process memory, swept and wiped when they
 * expire: slack_tick) and are never logged or stored. Reads send nothing, so
 * every failure here is RETRY, never UNKNOWN.
 */
#include "slack.h"

#include "bcrm/clock.h"
#include "bcrm/worker_reply.h"

#include <stdlib.h>
#include <string.h>

#define SLACK_FILL_AFTER_MISSES 20
#define SLACK_FILL_WAIT_MS 5000
/* Page requests in a row that got no answer before the fill is given up (the
 * sends then look their people up one by one until the profiles would expire). */
#define SLACK_FILL_MAX_FAILURES 3
#define SLACK_FILL_PAGE_SIZE "1000"
/* A page of 1000 members is about 1.5 MB of JSON. */
#define SLACK_PAGE_MAX_BODY (32u << 20)

void slack_profile_from_member(const json_t *member, struct worker_profile *p)
{
    json_t *profile = json_object_get(member, "profile");
    worker_profile_clear(p);
    p->name = worker_json_strdup(member, "name");
    p->first_name = worker_json_strdup(profile, "first_name");
    p->real_name = worker_json_strdup(member, "real_name");
    if (p->real_name == NULL) {
        p->real_name = worker_json_strdup(profile, "real_name");
    }
}

/* A POST of form (consumed) to method. 0, or -1 with out filled. */
static int form_request(struct slack_state *s, const char *method, const char *token, char *form,
                        struct worker_request *req, struct worker_outcome *out)
{
    if (form == NULL || slack_request(s, method, token, req) != 0) {
        free(form);
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "out_of_memory");
        return -1;
    }
    if (slack_request_form(req, form) != 0) {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "out_of_memory");
        return -1;
    }
    return 0;
}

/* users.info for this send's recipient alone. */
static enum slack_profile_next lookup_one(struct slack_state *s, struct worker_send *send,
                                          const char *token, struct worker_request *req,
                                          struct worker_outcome *out)
{
    char *form = NULL;
    if (worker_form_add(&form, "user", send->job->recipient_id) != 0) {
        free(form);
        form = NULL;
    }
    if (form_request(s, "users.info", token, form, req, out) != 0) {
        return SLACK_PROFILE_FINAL;
    }
    send->step = SLACK_STEP_PROFILE;
    send->wait_started_mono_ms = 0;
    return SLACK_PROFILE_REQUEST;
}

/* The fill's next users.list page, fetched by this send for all who wait. */
static enum slack_profile_next fetch_page(struct slack_state *s, struct slack_bot *b,
                                          struct worker_send *send, const char *token,
                                          struct worker_request *req, struct worker_outcome *out)
{
    char *form = NULL;
    if (worker_form_add(&form, "limit", SLACK_FILL_PAGE_SIZE) != 0 ||
        (b->cursor != NULL && worker_form_add(&form, "cursor", b->cursor) != 0)) {
        free(form);
        form = NULL;
    }
    if (form_request(s, "users.list", token, form, req, out) != 0) {
        return SLACK_PROFILE_FINAL;
    }
    req->max_body = SLACK_PAGE_MAX_BODY;
    b->fetching = true;
    send->wakes_waiters = true;
    send->step = SLACK_STEP_FILL;
    return SLACK_PROFILE_REQUEST;
}

static void fill_start(struct slack_bot *b, int64_t now)
{
    free(b->cursor);
    b->cursor = NULL;
    b->filling = true;
    b->fetching = false;
    b->failures = 0;
    b->fill_started_ms = now;
}

enum slack_profile_next slack_profile_step(struct slack_state *s, struct worker_send *send,
                                           const char *token, struct worker_request *req,
                                           struct worker_outcome *out)
{
    const Bcrm__V1__SendJob *job = send->job;
    struct slack_send_state *st = slack_send_state(send);
    int64_t now = clock_mono_ms();
    if (send->have_profile) {
        return SLACK_PROFILE_READY;
    }
    if (profile_cache_get(s->profiles, job->bot_id, job->recipient_id, now, &send->profile) == 0) {
        send->have_profile = true;
        send->wait_started_mono_ms = 0;
        return SLACK_PROFILE_READY;
    }
    struct slack_bot *b = slack_bot_get(s, job->bot_id, now);
    if (b == NULL || st->own_lookup) {
        return lookup_one(s, send, token, req, out);
    }
    if (b->profiles_error_until_ms > now) {
        /* Slack will not give this bot profiles (missing_scope): the defaults. */
        send->have_profile = true;
        return SLACK_PROFILE_READY;
    }
    if (!st->counted_miss) {
        st->counted_miss = true;
        if (now - b->miss_window_ms >= 60000) {
            b->miss_window_ms = now;
            b->misses = 0;
        }
        b->misses++;
    }
    if (b->filling && now - b->fill_started_ms >= s->profile_ttl_ms) {
        b->filling = false; /* so slow that its first pages expired: start over */
        b->fill_started_ms = 0;
    }
    if (!b->filling) {
        bool fresh = b->fill_started_ms != 0 && now - b->fill_started_ms < s->profile_ttl_ms;
        if (fresh || b->misses <= SLACK_FILL_AFTER_MISSES) {
            /* Read recently and not on the list, or too few misses for a fill. */
            return lookup_one(s, send, token, req, out);
        }
        fill_start(b, now);
    }
    if (b->limited_until_ms > now) {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "ratelimited");
        out->rate_limited = true;
        out->retry_after_ms = b->limited_until_ms - now;
        return SLACK_PROFILE_FINAL;
    }
    if (send->wait_started_mono_ms != 0 && now - send->wait_started_mono_ms >= SLACK_FILL_WAIT_MS) {
        st->own_lookup = true;
        return lookup_one(s, send, token, req, out);
    }
    if (!b->fetching && slack_bot_take_page(b, now)) {
        return fetch_page(s, b, send, token, req, out);
    }
    if (send->wait_started_mono_ms == 0) {
        send->wait_started_mono_ms = now;
    }
    return SLACK_PROFILE_WAIT;
}

/* A page request that got no answer; the fill is given up after a few. */
static void page_failed(struct slack_bot *b)
{
    if (++b->failures >= SLACK_FILL_MAX_FAILURES) {
        b->filling = false;
    }
}

/* Puts every member of a users.list page into the cache. */
static void fill_from_page(struct slack_state *s, const char *bot_id, const json_t *members,
                           int64_t now)
{
    size_t i;
    json_t *m;
    struct worker_profile p = {0};
    json_array_foreach(members, i, m)
    {
        const char *id = json_string_value(json_object_get(m, "id"));
        if (id == NULL) {
            continue;
        }
        slack_profile_from_member(m, &p);
        profile_cache_put(s->profiles, bot_id, id, &p, now);
    }
    worker_profile_clear(&p);
}

static enum worker_next classify_page(struct slack_state *s, struct worker_send *send,
                                      const struct worker_response *resp,
                                      struct worker_outcome *out)
{
    const char *bot_id = send->job->bot_id;
    int64_t now = clock_mono_ms();
    struct slack_bot *b = slack_bot_get(s, bot_id, now);
    if (b == NULL) {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "out_of_memory");
        return WORKER_FINAL;
    }
    b->fetching = false;
    if (resp->transport != CURLE_OK) {
        page_failed(b);
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "profile_unavailable");
        return WORKER_FINAL;
    }
    if (resp->status == 429 || resp->status >= 500) {
        if (resp->status == 429) {
            b->limited_until_ms = now + (resp->retry_after_ms >= 0 ? resp->retry_after_ms : 1000);
        } else {
            page_failed(b);
        }
        slack_classify_post(resp, out); /* RETRY, rate_limited for a 429 */
        return WORKER_FINAL;
    }
    json_t *body = slack_parse(resp);
    const char *error = json_string_value(json_object_get(body, "error"));
    enum worker_next next = WORKER_FINAL;
    if (json_is_true(json_object_get(body, "ok"))) {
        fill_from_page(s, bot_id, json_object_get(body, "members"), now);
        const char *cursor = json_string_value(
            json_object_get(json_object_get(body, "response_metadata"), "next_cursor"));
        free(b->cursor);
        b->cursor = cursor != NULL && cursor[0] != '\0' ? strdup(cursor) : NULL;
        if (b->cursor == NULL) {
            b->filling = false; /* the end of the list (or no memory to go on) */
        }
        b->failures = 0;
        next = WORKER_REQUEST; /* built again: the profile is in, or the next page */
    } else if (error != NULL && strcmp(error, "invalid_cursor") == 0) {
        free(b->cursor); /* the cursor went stale: from the first page again */
        b->cursor = NULL;
        next = WORKER_REQUEST;
    } else {
        const struct worker_rule *rule =
            worker_rule_find(slack_send_rules, slack_send_rule_count, error != NULL ? error : "");
        if (rule != NULL && (rule->flags & WORKER_RULE_TOKEN_INVALID)) {
            b->filling = false;
            worker_rule_apply(rule, error, out);
        } else if (rule != NULL && (rule->flags & WORKER_RULE_RATE_LIMITED)) {
            b->limited_until_ms = now + (resp->retry_after_ms >= 0 ? resp->retry_after_ms : 1000);
            worker_rule_apply(rule, error, out);
            out->retry_after_ms = resp->retry_after_ms;
        } else if (error == NULL ||
                   (rule != NULL && rule->outcome != BCRM__V1__OUTCOME__OUTCOME_FAILED)) {
            page_failed(b); /* an answer we cannot read, or Slack's own trouble */
            worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY,
                               error != NULL ? error : "bad_response");
        } else {
            /* Slack will not list this bot's users (missing_scope): its messages
             * take the placeholders' defaults until the profiles would expire. */
            b->filling = false;
            snprintf(b->profiles_error, sizeof(b->profiles_error), "%s", error);
            b->profiles_error_until_ms = now + s->profile_ttl_ms;
            send->have_profile = true;
            next = WORKER_REQUEST;
        }
    }
    json_decref(body);
    return next;
}

/* The users.info answer: on success the profile is cached and the post follows.
 * A failure to read it only stops the send when it would stop the post too
 * (token, rate limit, Slack down); otherwise the placeholders' defaults apply. */
static enum worker_next classify_info(struct slack_state *s, struct worker_send *send,
                                      const struct worker_response *resp,
                                      struct worker_outcome *out)
{
    if (resp->transport != CURLE_OK) {
        /* users.info is a read: whatever happened, nothing was sent. */
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "profile_unavailable");
        return WORKER_FINAL;
    }
    if (resp->status == 429 || resp->status >= 500) {
        slack_classify_post(resp, out);
        return WORKER_FINAL;
    }
    json_t *body = slack_parse(resp);
    json_t *user = json_object_get(body, "user");
    const char *error = json_string_value(json_object_get(body, "error"));
    bool read = json_is_true(json_object_get(body, "ok")) && json_is_object(user);
    struct worker_outcome would; /* what chat.postMessage would come to on this error */
    worker_outcome_init(&would);
    if (read) {
        slack_profile_from_member(user, &send->profile);
    } else {
        const struct worker_rule *rule =
            worker_rule_find(slack_send_rules, slack_send_rule_count, error);
        if (rule != NULL) {
            worker_rule_apply(rule, error, &would);
            would.retry_after_ms = resp->retry_after_ms;
        }
    }
    json_decref(body);
    return worker_profile_read_done(send, s->profiles, read, &would, out);
}

enum worker_next slack_profile_classify(struct slack_state *s, struct worker_send *send,
                                        const struct worker_response *resp,
                                        struct worker_outcome *out)
{
    if (send->step == SLACK_STEP_FILL) {
        return classify_page(s, send, resp, out);
    }
    return classify_info(s, send, resp, out);
}
