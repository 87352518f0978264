/* messenger_send.c: one campaign message through the Send API.
 *
 * The 24 h window is checked before anything leaves (messenger_precheck), from
 * the subscriber's last-message time the scheduler passes along. A personalised
 * message first reads the person's first and last name (kept a few minutes in
 * memory, never stored or logged).
 */
#include "messenger.h"

#include "bcrm/clock.h"
#include "bcrm/worker_reply.h"
#include "bcrm/worker_template.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int messenger_request(const struct messenger_state *s, const char *path, const char *params,
                      const char *token, const json_t *body, struct worker_request *req)
{
    char *query = params != NULL ? strdup(params) : NULL;
    int rv = -1;
    if ((params != NULL && query == NULL) || worker_form_add(&query, "access_token", token) != 0) {
        goto out;
    }
    if (worker_format(&req->url, "%s/%s?%s", s->graph_url, path, query) < 0) {
        goto out;
    }
    req->method = body != NULL ? "POST" : "GET";
    if (body != NULL &&
        (worker_request_json(req, body) != 0 || worker_request_header(req, "Expect:") != 0)) {
        goto out;
    }
    rv = 0;
out:
    if (query != NULL) {
        sodium_memzero(query, strlen(query)); /* it holds the token */
        free(query);
    }
    return rv;
}

/* Which messaging_type a job goes out with: its own, MESSAGE_TAG when it only
 * names a tag, and UPDATE (a message the page starts) otherwise. */
static const char *messaging_type(const Bcrm__V1__SendJob *job)
{
    if (job->messaging_type != NULL && job->messaging_type[0] != '\0') {
        return job->messaging_type;
    }
    return job->tag != NULL && job->tag[0] != '\0' ? "MESSAGE_TAG" : "UPDATE";
}

bool messenger_precheck(void *state, const Bcrm__V1__SendJob *job, int64_t now_wall_ms,
                        struct worker_outcome *out)
{
    (void)state;
    if (!job->has_last_message_at_ms || job->last_message_at_ms <= 0) {
        return false; /* unknown: let Messenger judge */
    }
    int64_t age = now_wall_ms - job->last_message_at_ms;
    bool tagged =
        strcmp(messaging_type(job), "MESSAGE_TAG") == 0 && job->tag != NULL && job->tag[0] != '\0';
    int64_t window = MESSENGER_WINDOW_MS;
    if (tagged) {
        window = strcmp(job->tag, "HUMAN_AGENT") == 0 ? MESSENGER_HUMAN_AGENT_WINDOW_MS : -1;
    }
    if (window >= 0 && age > window) {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_FAILED, "outside_24h_window");
        return true;
    }
    return false;
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++) {
        n += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return n;
}

static enum worker_next build_post(struct messenger_state *s, struct worker_send *send,
                                   const char *token, struct worker_request *req,
                                   struct worker_outcome *out)
{
    const Bcrm__V1__SendJob *job = send->job;
    enum worker_next next = WORKER_FINAL;
    json_t *body = NULL;
    char *text = NULL;
    if (job->text == NULL || job->text[0] == '\0') {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_FAILED, "no_text");
        goto out;
    }
    if ((text = template_render(job->text, worker_profile_lookup, &send->profile)) == NULL) {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "out_of_memory");
        goto out;
    }
    if (utf8_chars(text) > MESSENGER_MAX_TEXT_CHARS) {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_FAILED, "msg_too_long");
        goto out;
    }
    body = json_pack("{s:{s:s}, s:s, s:{s:s}}", "recipient", "id", job->recipient_id,
                     "messaging_type", messaging_type(job), "message", "text", text);
    if (body == NULL ||
        (job->tag != NULL && job->tag[0] != '\0' &&
         json_object_set_new(body, "tag", json_string(job->tag)) != 0) ||
        messenger_request(s, "me/messages", NULL, token, body, req) != 0) {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "out_of_memory");
        goto out;
    }
    send->step = MESSENGER_STEP_POST;
    next = WORKER_REQUEST;
out:
    free(text);
    json_decref(body);
    return next;
}

enum worker_next messenger_build_send(void *state, struct worker_send *send, const char *token,
                                      struct worker_request *req, struct worker_outcome *out)
{
    struct messenger_state *s = state;
    const Bcrm__V1__SendJob *job = send->job;
    if (template_has_placeholders(job->text) && !send->have_profile) {
        if (profile_cache_get(s->profiles, job->bot_id, job->recipient_id, clock_mono_ms(),
                              &send->profile) == 0) {
            send->have_profile = true;
        } else {
            char *path = curl_easy_escape(NULL, job->recipient_id, 0);
            int rv = path != NULL ? messenger_request(s, path, "fields=first_name%2Clast_name",
                                                      token, NULL, req)
                                  : -1;
            curl_free(path);
            if (rv != 0) {
                worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "out_of_memory");
                return WORKER_FINAL;
            }
            send->step = MESSENGER_STEP_PROFILE;
            return WORKER_REQUEST;
        }
    }
    return build_post(s, send, token, req, out);
}

void messenger_classify_post(const struct worker_response *resp, struct worker_outcome *out)
{
    char name[WORKER_ERROR_MAX];
    if (worker_classify_transport(resp, out)) {
        return;
    }
    out->retry_after_ms = resp->retry_after_ms;
    json_t *body = json_loadb(resp->body, resp->body_len, 0, NULL);
    const char *message_id = json_string_value(json_object_get(body, "message_id"));
    int code, subcode;
    if (resp->status == 200 && message_id != NULL) {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_SENT, NULL);
        snprintf(out->platform_message_id, sizeof(out->platform_message_id), "%s", message_id);
    } else if (messenger_error(body, &code, &subcode) &&
               messenger_rule_find(code, subcode) != NULL) {
        const struct messenger_rule *r = messenger_rule_find(code, subcode);
        worker_outcome_set(out, r->outcome, r->name);
        out->bot_token_invalid = (r->flags & WORKER_RULE_TOKEN_INVALID) != 0;
        out->rate_limited = (r->flags & WORKER_RULE_RATE_LIMITED) != 0;
    } else if (resp->status == 429) {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "rate_limited");
        out->rate_limited = true;
    } else if (resp->status >= 500) {
        snprintf(name, sizeof(name), "http_%ld", resp->status);
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, name);
    } else if (resp->status == 200) {
        /* An answer we cannot read: the message may well have gone out. */
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_UNKNOWN, "bad_response");
    } else if (messenger_error(body, &code, &subcode)) {
        snprintf(name, sizeof(name), "graph_error_%d", code);
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_FAILED, name);
    } else {
        snprintf(name, sizeof(name), "http_%ld", resp->status);
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_FAILED, name);
    }
    json_decref(body);
}

/* The profile answer. Only a failure that would stop the post too (token, rate
 * limit, Graph down) stops the send; otherwise the placeholders' defaults apply. */
static enum worker_next classify_profile(struct messenger_state *s, struct worker_send *send,
                                         const struct worker_response *resp,
                                         struct worker_outcome *out)
{
    if (resp->transport != CURLE_OK) {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "profile_unavailable");
        return WORKER_FINAL;
    }
    json_t *body = json_loadb(resp->body, resp->body_len, 0, NULL);
    int code, subcode;
    bool read =
        resp->status == 200 && json_is_object(body) && !messenger_error(body, &code, &subcode);
    struct worker_outcome would; /* what the post would come to on this answer */
    worker_outcome_init(&would);
    if (read) {
        worker_profile_clear(&send->profile);
        send->profile.first_name = worker_json_strdup(body, "first_name");
        const char *first = json_string_value(json_object_get(body, "first_name"));
        const char *last = json_string_value(json_object_get(body, "last_name"));
        if (first != NULL || last != NULL) {
            char *full = NULL;
            if (asprintf(&full, "%s%s%s", first != NULL ? first : "",
                         first != NULL && last != NULL ? " " : "", last != NULL ? last : "") < 0) {
                full = NULL;
            }
            send->profile.real_name = full;
            send->profile.name = full != NULL ? strdup(full) : NULL;
        }
    } else {
        messenger_classify_post(resp, &would);
    }
    json_decref(body);
    return worker_profile_read_done(send, s->profiles, read, &would, out);
}

enum worker_next messenger_classify_send(void *state, struct worker_send *send,
                                         const struct worker_response *resp,
                                         struct worker_outcome *out)
{
    if (send->step == MESSENGER_STEP_PROFILE) {
        return classify_profile(state, send, resp, out);
    }
    messenger_classify_post(resp, out);
    return WORKER_FINAL;
}
