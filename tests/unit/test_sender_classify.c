/* Unit tests of the senders' platform modules: how every answer of Slack and of
 * the Messenger Send API becomes an outcome, and what requests they build. The
 * real modules are linked; only the HTTP exchange is replaced by answers written
 * here. */
#include "check.h"

#include "messenger.h"
#include "slack.h"

#include "bcrm/clock.h"

#include <stdlib.h>

static struct worker_response answer(long status, const char *body)
{
    struct worker_response r = {.transport = CURLE_OK,
                                .request_sent = true,
                                .status = status,
                                .retry_after_ms = -1,
                                .body = body,
                                .body_len = strlen(body)};
    return r;
}

static struct worker_outcome slack_post(struct worker_response r)
{
    struct worker_outcome out;
    worker_outcome_init(&out);
    slack_classify_post(&r, &out);
    return out;
}

static void test_slack_post_outcomes(void)
{
    struct worker_outcome o =
        slack_post(answer(200, "{\"ok\":true,\"channel\":\"D1\",\"ts\":\"1700000000.000100\"}"));
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_SENT);
    CHECK_STR(o.platform_message_id, "1700000000.000100");

    o = slack_post(answer(200, "{\"ok\":false,\"error\":\"channel_not_found\"}"));
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_FAILED && !o.bot_token_invalid);
    CHECK_STR(o.error, "channel_not_found");

    static const char *token_codes[] = {"invalid_auth", "token_revoked", "not_authed",
                                        "account_inactive"};
    for (size_t i = 0; i < 4; i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"ok\":false,\"error\":\"%s\"}", token_codes[i]);
        o = slack_post(answer(200, body));
        /* Refused before anything was posted: back to pending, the bot paused. */
        CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY && o.bot_token_invalid);
        CHECK_STR(o.error, token_codes[i]);
    }

    struct worker_response limited = answer(429, "{\"ok\":false,\"error\":\"ratelimited\"}");
    limited.retry_after_ms = 3000;
    o = slack_post(limited);
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY && o.rate_limited);
    CHECK(o.retry_after_ms == 3000);

    o = slack_post(answer(200, "{\"ok\":false,\"error\":\"ratelimited\"}"));
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY && o.rate_limited);

    o = slack_post(answer(503, "<html>down</html>"));
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY && !o.rate_limited);
    CHECK_STR(o.error, "http_503");

    o = slack_post(answer(200, "{\"ok\":false,\"error\":\"service_unavailable\"}"));
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY);
    o = slack_post(answer(200, "{\"ok\":false,\"error\":\"internal_error\"}"));
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_UNKNOWN);
    o = slack_post(answer(200, "{\"ok\":false,\"error\":\"request_timeout\"}"));
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_UNKNOWN);

    /* A code Slack adds later is a refusal: FAILED, named. */
    o = slack_post(answer(200, "{\"ok\":false,\"error\":\"brand_new_error\"}"));
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_FAILED);
    CHECK_STR(o.error, "brand_new_error");

    /* An unreadable 200 may be a posted message. */
    o = slack_post(answer(200, "<html>proxy</html>"));
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_UNKNOWN);
    CHECK_STR(o.error, "bad_response");
    o = slack_post(answer(404, "not found"));
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_FAILED);
    CHECK_STR(o.error, "http_404");

    struct worker_response refused = answer(0, "");
    refused.transport = CURLE_COULDNT_CONNECT;
    refused.request_sent = false;
    o = slack_post(refused);
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY);
    struct worker_response dropped = answer(0, "");
    dropped.transport = CURLE_GOT_NOTHING;
    o = slack_post(dropped);
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_UNKNOWN);
    CHECK_STR(o.error, "connection_dropped");
}

/* Every row of the table classifies as it says, and the flags are consistent. */
static void test_slack_table(void)
{
    CHECK(slack_send_rule_count >= 20);
    for (size_t i = 0; i < slack_send_rule_count; i++) {
        const struct worker_rule *r = &slack_send_rules[i];
        char body[128];
        snprintf(body, sizeof(body), "{\"ok\":false,\"error\":\"%s\"}", r->code);
        struct worker_outcome o = slack_post(answer(200, body));
        CHECK(o.outcome == r->outcome);
        CHECK_STR(o.error, r->code);
        CHECK(r->outcome != BCRM__V1__OUTCOME__OUTCOME_SENT &&
              r->outcome != BCRM__V1__OUTCOME__OUTCOME_UNSPECIFIED);
        if (r->flags & WORKER_RULE_TOKEN_INVALID) {
            /* Never FAILED: the recipient was not refused, the bot's token was. */
            CHECK(r->outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY && o.bot_token_invalid);
        }
        if (r->flags & WORKER_RULE_RATE_LIMITED) {
            CHECK(r->outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY && o.rate_limited);
        }
    }
    static const char *failed[] = {
        "channel_not_found", "user_not_found", "is_archived",           "msg_too_long", "no_text",
        "invalid_blocks",    "not_in_channel", "messages_tab_disabled", "user_disabled"};
    for (size_t i = 0; i < sizeof(failed) / sizeof(failed[0]); i++) {
        const struct worker_rule *r =
            worker_rule_find(slack_send_rules, slack_send_rule_count, failed[i]);
        CHECK(r != NULL && r->outcome == BCRM__V1__OUTCOME__OUTCOME_FAILED && r->flags == 0);
    }
}

static const char *header_value(const struct worker_request *req, const char *prefix)
{
    for (struct curl_slist *h = req->headers; h != NULL; h = h->next) {
        if (strncmp(h->data, prefix, strlen(prefix)) == 0) {
            return h->data + strlen(prefix);
        }
    }
    return NULL;
}

static Bcrm__V1__SendJob job_for(const char *recipient, const char *text)
{
    Bcrm__V1__SendJob job = BCRM__V1__SEND_JOB__INIT;
    job.delivery_id = 42;
    job.org_id = "org1";
    job.bot_id = "bot1";
    job.recipient_id = (char *)recipient;
    job.text = (char *)text;
    return job;
}

/* Builds the post of a job (after any profile step) and returns its JSON body. */
static json_t *slack_build_post(struct slack_state *s, struct worker_send *send,
                                struct worker_request *req)
{
    struct worker_outcome out;
    worker_outcome_init(&out);
    CHECK(slack_build_send(s, send, "xoxb-test", req, &out) == WORKER_REQUEST);
    CHECK(send->step == SLACK_STEP_POST);
    CHECK_STR(req->url, "http://sim.test/api/chat.postMessage");
    CHECK_STR(req->method, "POST");
    CHECK_STR(header_value(req, "Authorization: "), "Bearer xoxb-test");
    CHECK_STR(header_value(req, "Content-Type: "), "application/json; charset=utf-8");
    return json_loadb(req->body, req->body_len, 0, NULL);
}

static void test_slack_build(void)
{
    setenv("BCRM_SLACK_API_URL", "http://sim.test/api/", 1);
    struct slack_state *s = slack_platform.init();
    CHECK(s != NULL);
    struct worker_request req = {0};
    struct worker_outcome out;

    /* Plain text: one request, with the delivery in the metadata. */
    Bcrm__V1__SendJob job = job_for("U1", "Hello all");
    struct worker_send send = {.job = &job};
    json_t *body = slack_build_post(s, &send, &req);
    CHECK_STR(json_string_value(json_object_get(body, "channel")), "U1");
    CHECK_STR(json_string_value(json_object_get(body, "text")), "Hello all");
    json_t *meta = json_object_get(body, "metadata");
    CHECK_STR(json_string_value(json_object_get(meta, "event_type")), "bcrm_delivery");
    CHECK_STR(
        json_string_value(json_object_get(json_object_get(meta, "event_payload"), "delivery_id")),
        "42");
    CHECK(json_object_get(body, "blocks") == NULL);
    json_decref(body);
    worker_request_free(&req);

    /* Blocks go as JSON; bad blocks never leave. */
    job.blocks_json = "[{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":\"*hi*\"}}]";
    send = (struct worker_send){.job = &job};
    body = slack_build_post(s, &send, &req);
    CHECK(json_array_size(json_object_get(body, "blocks")) == 1);
    json_decref(body);
    worker_request_free(&req);
    job.blocks_json = "{not json";
    send = (struct worker_send){.job = &job};
    worker_outcome_init(&out);
    CHECK(slack_build_send(s, &send, "xoxb-test", &req, &out) == WORKER_FINAL);
    CHECK(out.outcome == BCRM__V1__OUTCOME__OUTCOME_FAILED);
    CHECK_STR(out.error, "invalid_blocks");
    job.blocks_json = NULL;
    job.text = "";
    worker_outcome_init(&out);
    CHECK(slack_build_send(s, &send, "xoxb-test", &req, &out) == WORKER_FINAL);
    CHECK_STR(out.error, "no_text");

    /* Personalised: users.info first, then the post with the live name. */
    job = job_for("U2", "Hi {{first_name|there}}!");
    send = (struct worker_send){.job = &job};
    worker_outcome_init(&out);
    CHECK(slack_build_send(s, &send, "xoxb-test", &req, &out) == WORKER_REQUEST);
    CHECK(send.step == SLACK_STEP_PROFILE);
    CHECK_STR(req.url, "http://sim.test/api/users.info");
    CHECK_STR(req.body, "user=U2");
    worker_request_free(&req);
    struct worker_response info =
        answer(200, "{\"ok\":true,\"user\":{\"id\":\"U2\",\"name\":\"ada\",\"real_name\":\"Ada L\","
                    "\"profile\":{\"first_name\":\"Ada\"}}}");
    CHECK(slack_classify_send(s, &send, &info, &out) == WORKER_REQUEST);
    body = slack_build_post(s, &send, &req);
    CHECK_STR(json_string_value(json_object_get(body, "text")), "Hi Ada!");
    json_decref(body);
    worker_request_free(&req);
    worker_profile_clear(&send.profile);

    /* The same person again: the profile comes from memory, no lookup. */
    struct worker_send again = {.job = &job};
    body = slack_build_post(s, &again, &req);
    CHECK_STR(json_string_value(json_object_get(body, "text")), "Hi Ada!");
    json_decref(body);
    worker_request_free(&req);
    worker_profile_clear(&again.profile);

    /* A channel has no profile: defaults, no lookup. */
    job = job_for("C1", "Hi {{first_name|there}}!");
    send = (struct worker_send){.job = &job};
    body = slack_build_post(s, &send, &req);
    CHECK_STR(json_string_value(json_object_get(body, "text")), "Hi there!");
    json_decref(body);
    worker_request_free(&req);

    /* A lookup that finds nobody still posts (Slack then names the problem)... */
    job = job_for("U3", "Hi {{first_name|there}}!");
    send = (struct worker_send){.job = &job};
    worker_outcome_init(&out);
    CHECK(slack_build_send(s, &send, "xoxb-test", &req, &out) == WORKER_REQUEST);
    worker_request_free(&req);
    struct worker_response nobody = answer(200, "{\"ok\":false,\"error\":\"user_not_found\"}");
    CHECK(slack_classify_send(s, &send, &nobody, &out) == WORKER_REQUEST);
    body = slack_build_post(s, &send, &req);
    CHECK_STR(json_string_value(json_object_get(body, "text")), "Hi there!");
    json_decref(body);
    worker_request_free(&req);
    worker_profile_clear(&send.profile);

    /* ...but a bad token or a rate limit stops the send there. */
    job = job_for("U4", "Hi {{first_name}}");
    send = (struct worker_send){.job = &job};
    worker_outcome_init(&out);
    CHECK(slack_build_send(s, &send, "xoxb-test", &req, &out) == WORKER_REQUEST);
    worker_request_free(&req);
    struct worker_response revoked = answer(200, "{\"ok\":false,\"error\":\"token_revoked\"}");
    CHECK(slack_classify_send(s, &send, &revoked, &out) == WORKER_FINAL);
    CHECK(out.outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY && out.bot_token_invalid);
    worker_outcome_init(&out);
    struct worker_response limited = answer(429, "");
    limited.retry_after_ms = 1000;
    CHECK(slack_classify_send(s, &send, &limited, &out) == WORKER_FINAL);
    CHECK(out.outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY && out.rate_limited &&
          out.retry_after_ms == 1000);
    worker_profile_clear(&send.profile);

    slack_platform.fini(s);
}

static struct worker_outcome messenger_post(struct worker_response r)
{
    struct worker_outcome out;
    worker_outcome_init(&out);
    messenger_classify_post(&r, &out);
    return out;
}

static struct worker_outcome graph_error(long status, int code, int subcode)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"error\":{\"message\":\"x\",\"type\":\"OAuthException\",\"code\":%d,"
             "\"error_subcode\":%d,\"fbtrace_id\":\"A\"}}",
             code, subcode);
    return messenger_post(answer(status, body));
}

static void test_messenger_outcomes(void)
{
    struct worker_outcome o =
        messenger_post(answer(200, "{\"recipient_id\":\"P1\",\"message_id\":\"m_abc\"}"));
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_SENT);
    CHECK_STR(o.platform_message_id, "m_abc");

    o = graph_error(400, 190, 460);
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY && o.bot_token_invalid);
    o = graph_error(400, 10, 2018278);
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_FAILED && !o.bot_token_invalid);
    CHECK_STR(o.error, "outside_24h_window");
    o = graph_error(400, 10, 0);
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_FAILED);
    CHECK_STR(o.error, "permission_denied");
    o = graph_error(400, 551, 1545041);
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_FAILED);
    CHECK_STR(o.error, "person_unavailable");
    o = graph_error(400, 100, 2018001);
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_FAILED);
    static const int limits[] = {613, 4, 80006};
    for (size_t i = 0; i < 3; i++) {
        o = graph_error(400, limits[i], 0);
        CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY && o.rate_limited);
    }
    o = graph_error(500, 2, 0);
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY && !o.rate_limited);
    o = graph_error(500, 1200, 0);
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY);
    o = graph_error(500, 1, 0);
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_UNKNOWN);
    /* Unlisted codes: judged by the status. */
    o = graph_error(400, 12345, 0);
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_FAILED);
    CHECK_STR(o.error, "graph_error_12345");
    o = graph_error(503, 12345, 0);
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY);
    o = messenger_post(answer(429, ""));
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY && o.rate_limited);
    o = messenger_post(answer(200, "{}"));
    CHECK(o.outcome == BCRM__V1__OUTCOME__OUTCOME_UNKNOWN);

    for (size_t i = 0; i < messenger_rule_count; i++) {
        const struct messenger_rule *r = &messenger_rules[i];
        o = graph_error(400, r->code, r->subcode);
        CHECK(o.outcome == r->outcome);
        CHECK_STR(o.error, r->name);
        CHECK(o.bot_token_invalid == ((r->flags & WORKER_RULE_TOKEN_INVALID) != 0));
        CHECK(o.rate_limited == ((r->flags & WORKER_RULE_RATE_LIMITED) != 0));
    }
}

static void test_messenger_window(void)
{
    const int64_t now = 1800000000000LL, hour = 3600 * 1000;
    struct worker_outcome out;
    Bcrm__V1__SendJob job = job_for("P1", "Hello");
    /* Unknown last message: Messenger judges. */
    worker_outcome_init(&out);
    CHECK(!messenger_precheck(NULL, &job, now, &out));
    job.has_last_message_at_ms = true;
    job.last_message_at_ms = now - 23 * hour;
    CHECK(!messenger_precheck(NULL, &job, now, &out));
    job.last_message_at_ms = now - 25 * hour;
    CHECK(messenger_precheck(NULL, &job, now, &out));
    CHECK(out.outcome == BCRM__V1__OUTCOME__OUTCOME_FAILED);
    CHECK_STR(out.error, "outside_24h_window");
    /* A tag lifts the window; HUMAN_AGENT only to 7 days. */
    job.messaging_type = "MESSAGE_TAG";
    job.tag = "CONFIRMED_EVENT_UPDATE";
    worker_outcome_init(&out);
    CHECK(!messenger_precheck(NULL, &job, now, &out));
    job.tag = "HUMAN_AGENT";
    job.last_message_at_ms = now - 6 * 24 * hour;
    CHECK(!messenger_precheck(NULL, &job, now, &out));
    job.last_message_at_ms = now - 8 * 24 * hour;
    CHECK(messenger_precheck(NULL, &job, now, &out));
    /* MESSAGE_TAG without a tag is no tag. */
    job.tag = NULL;
    job.last_message_at_ms = now - 25 * hour;
    CHECK(messenger_precheck(NULL, &job, now, &out));
}

static void test_messenger_build(void)
{
    setenv("BCRM_GRAPH_API_URL", "http://graph.test/v19.0", 1);
    struct messenger_state *s = messenger_platform.init();
    CHECK(s != NULL);
    struct worker_request req = {0};
    struct worker_outcome out;
    Bcrm__V1__SendJob job = job_for("P1", "Hello");
    struct worker_send send = {.job = &job};
    worker_outcome_init(&out);
    CHECK(messenger_build_send(s, &send, "EAAB+tok/en", &req, &out) == WORKER_REQUEST);
    CHECK_STR(req.url, "http://graph.test/v19.0/me/messages?access_token=EAAB%2Btok%2Fen");
    CHECK_STR(req.method, "POST");
    json_t *body = json_loadb(req.body, req.body_len, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(json_object_get(body, "recipient"), "id")), "P1");
    CHECK_STR(json_string_value(json_object_get(body, "messaging_type")), "UPDATE");
    CHECK_STR(json_string_value(json_object_get(json_object_get(body, "message"), "text")),
              "Hello");
    CHECK(json_object_get(body, "tag") == NULL);
    json_decref(body);
    worker_request_free(&req);

    job.tag = "CONFIRMED_EVENT_UPDATE";
    send = (struct worker_send){.job = &job};
    CHECK(messenger_build_send(s, &send, "t", &req, &out) == WORKER_REQUEST);
    body = json_loadb(req.body, req.body_len, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(body, "messaging_type")), "MESSAGE_TAG");
    CHECK_STR(json_string_value(json_object_get(body, "tag")), "CONFIRMED_EVENT_UPDATE");
    json_decref(body);
    worker_request_free(&req);

    /* 2000 characters go (multi-byte ones count once); 2001 do not. */
    char *long_text = malloc(2001 * 2 + 1);
    for (int i = 0; i < 2000; i++) {
        memcpy(long_text + 2 * i, "\xc3\xa9", 2);
    }
    long_text[4000] = '\0';
    job = job_for("P1", long_text);
    send = (struct worker_send){.job = &job};
    CHECK(messenger_build_send(s, &send, "t", &req, &out) == WORKER_REQUEST);
    worker_request_free(&req);
    strcpy(long_text + 4000, "x");
    worker_outcome_init(&out);
    CHECK(messenger_build_send(s, &send, "t", &req, &out) == WORKER_FINAL);
    CHECK_STR(out.error, "msg_too_long");
    free(long_text);

    /* Personalised: the profile read first. */
    job = job_for("P2", "Hi {{first_name|there}}");
    send = (struct worker_send){.job = &job};
    CHECK(messenger_build_send(s, &send, "t", &req, &out) == WORKER_REQUEST);
    CHECK(send.step == MESSENGER_STEP_PROFILE);
    CHECK_STR(req.method, "GET");
    CHECK_STR(req.url, "http://graph.test/v19.0/P2?fields=first_name%2Clast_name&access_token=t");
    worker_request_free(&req);
    struct worker_response profile = answer(200, "{\"first_name\":\"Lin\",\"last_name\":\"Ma\"}");
    CHECK(messenger_classify_send(s, &send, &profile, &out) == WORKER_REQUEST);
    CHECK(messenger_build_send(s, &send, "t", &req, &out) == WORKER_REQUEST);
    body = json_loadb(req.body, req.body_len, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(json_object_get(body, "message"), "text")),
              "Hi Lin");
    json_decref(body);
    worker_request_free(&req);
    worker_profile_clear(&send.profile);

    messenger_platform.fini(s);
}

static const char *body_channel(json_t *body)
{
    return json_string_value(json_object_get(body, "channel"));
}

/* DMs: to the user id first; where Slack refuses it, conversations.open and the
 * D... id, remembered per person and, for the bot, as "open first". */
static void test_slack_dm(void)
{
    setenv("BCRM_SLACK_API_URL", "http://sim.test/api", 1);
    struct slack_state *s = slack_platform.init();
    CHECK(s != NULL);
    struct worker_request req = {0};
    struct worker_outcome out;

    Bcrm__V1__SendJob job = job_for("U5", "Hello");
    job.bot_id = "botdm";
    struct worker_send send = {.job = &job};
    json_t *body = slack_build_post(s, &send, &req);
    CHECK_STR(body_channel(body), "U5");
    json_decref(body);
    worker_request_free(&req);
    /* Refused: nothing was posted, so the DM is opened and the message goes there. */
    struct worker_response refused = answer(200, "{\"ok\":false,\"error\":\"channel_not_found\"}");
    worker_outcome_init(&out);
    CHECK(slack_classify_send(s, &send, &refused, &out) == WORKER_REQUEST);
    CHECK(slack_build_send(s, &send, "xoxb-test", &req, &out) == WORKER_REQUEST);
    CHECK(send.step == SLACK_STEP_OPEN);
    CHECK_STR(req.url, "http://sim.test/api/conversations.open");
    CHECK_STR(req.body, "users=U5");
    worker_request_free(&req);
    struct worker_response opened = answer(200, "{\"ok\":true,\"channel\":{\"id\":\"D5\"}}");
    CHECK(slack_classify_send(s, &send, &opened, &out) == WORKER_REQUEST);
    body = slack_build_post(s, &send, &req);
    CHECK_STR(body_channel(body), "D5");
    json_decref(body);
    worker_request_free(&req);
    struct worker_response posted =
        answer(200, "{\"ok\":true,\"channel\":\"D5\",\"ts\":\"1700000000.000200\"}");
    CHECK(slack_classify_send(s, &send, &posted, &out) == WORKER_FINAL);
    CHECK(out.outcome == BCRM__V1__OUTCOME__OUTCOME_SENT);

    /* The same person again: straight to the D... id. */
    send = (struct worker_send){.job = &job};
    body = slack_build_post(s, &send, &req);
    CHECK_STR(body_channel(body), "D5");
    json_decref(body);
    worker_request_free(&req);

    /* Another person of that bot: conversations.open first, no refused post. */
    Bcrm__V1__SendJob other = job_for("U6", "Hello");
    other.bot_id = "botdm";
    send = (struct worker_send){.job = &other};
    worker_outcome_init(&out);
    CHECK(slack_build_send(s, &send, "xoxb-test", &req, &out) == WORKER_REQUEST);
    CHECK(send.step == SLACK_STEP_OPEN);
    worker_request_free(&req);
    /* Someone conversations.open does not know: failed, with Slack's reason. */
    struct worker_response nobody = answer(200, "{\"ok\":false,\"error\":\"user_not_found\"}");
    worker_outcome_init(&out);
    CHECK(slack_classify_send(s, &send, &nobody, &out) == WORKER_FINAL);
    CHECK(out.outcome == BCRM__V1__OUTCOME__OUTCOME_FAILED);
    CHECK_STR(out.error, "user_not_found");
    /* A dropped answer to conversations.open posted nothing: RETRY, not UNKNOWN. */
    send = (struct worker_send){.job = &other};
    CHECK(slack_build_send(s, &send, "xoxb-test", &req, &out) == WORKER_REQUEST);
    worker_request_free(&req);
    struct worker_response dropped = answer(0, "");
    dropped.transport = CURLE_GOT_NOTHING;
    worker_outcome_init(&out);
    CHECK(slack_classify_send(s, &send, &dropped, &out) == WORKER_FINAL);
    CHECK(out.outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY);

    /* Other bots still post to user ids; a channel is never opened. */
    Bcrm__V1__SendJob plain = job_for("U5", "Hello");
    send = (struct worker_send){.job = &plain};
    body = slack_build_post(s, &send, &req);
    CHECK_STR(body_channel(body), "U5");
    json_decref(body);
    worker_request_free(&req);
    Bcrm__V1__SendJob channel = job_for("C9", "Hello");
    channel.bot_id = "botdm";
    send = (struct worker_send){.job = &channel};
    body = slack_build_post(s, &send, &req);
    CHECK_STR(body_channel(body), "C9");
    json_decref(body);
    worker_request_free(&req);
    /* channel_not_found for a channel is final. */
    worker_outcome_init(&out);
    CHECK(slack_classify_send(s, &send, &refused, &out) == WORKER_FINAL);
    CHECK_STR(out.error, "channel_not_found");

    /* The tick forgets the D... ids once their time is up. */
    slack_tick(s, clock_mono_ms() + s->profile_ttl_ms + 1);
    CHECK(worker_cache_count(s->dm_channels) == 0);
    slack_platform.fini(s);
}

static char *page_of(int first, int count, const char *next_cursor)
{
    json_t *members = json_array();
    for (int i = first; i < first + count; i++) {
        char id[16], name[32], first_name[32];
        snprintf(id, sizeof(id), "UF%04d", i);
        snprintf(name, sizeof(name), "person.%d", i);
        snprintf(first_name, sizeof(first_name), "First%d", i);
        json_array_append_new(members, json_pack("{s:s, s:s, s:s, s:{s:s}}", "id", id, "name", name,
                                                 "real_name", "Some One", "profile", "first_name",
                                                 first_name));
    }
    json_t *page = json_pack("{s:b, s:o, s:{s:s}}", "ok", 1, "members", members,
                             "response_metadata", "next_cursor", next_cursor);
    char *text = json_dumps(page, JSON_COMPACT);
    json_decref(page);
    return text;
}

static Bcrm__V1__SendJob fill_job(char *id_buf, int n)
{
    snprintf(id_buf, 16, "UF%04d", n);
    Bcrm__V1__SendJob job = job_for(id_buf, "Hi {{first_name|there}}");
    job.bot_id = "botfill";
    return job;
}

/* Profiles at scale: a bot's first misses are looked up one by one; past twenty in
 * a minute, users.list pages of 1000 fill the cache for every waiting send. */
static void test_slack_fill(void)
{
    setenv("BCRM_SLACK_API_URL", "http://sim.test/api", 1);
    struct slack_state *s = slack_platform.init();
    struct worker_request req = {0};
    struct worker_outcome out;
    char ids[40][16];
    Bcrm__V1__SendJob jobs[40];
    struct worker_send sends[40];
    for (int i = 0; i < 40; i++) {
        jobs[i] = fill_job(ids[i], i);
        sends[i] = (struct worker_send){.job = &jobs[i]};
    }
    for (int i = 0; i < 20; i++) {
        worker_outcome_init(&out);
        CHECK(slack_build_send(s, &sends[i], "xoxb-test", &req, &out) == WORKER_REQUEST);
        CHECK(sends[i].step == SLACK_STEP_PROFILE);
        CHECK_STR(req.url, "http://sim.test/api/users.info");
        worker_request_free(&req);
    }
    /* The 21st miss reads the first page, for everyone. */
    worker_outcome_init(&out);
    CHECK(slack_build_send(s, &sends[20], "xoxb-test", &req, &out) == WORKER_REQUEST);
    CHECK(sends[20].step == SLACK_STEP_FILL && sends[20].wakes_waiters);
    CHECK_STR(req.url, "http://sim.test/api/users.list");
    CHECK_STR(req.body, "limit=1000");
    CHECK(req.max_body >= (8u << 20));
    worker_request_free(&req);
    /* The next ones wait for it: no request of their own. */
    for (int i = 21; i < 24; i++) {
        CHECK(slack_build_send(s, &sends[i], "xoxb-test", &req, &out) == WORKER_WAIT);
        CHECK(req.url == NULL && sends[i].wait_started_mono_ms > 0);
    }
    char *text = page_of(20, 3, "page2");
    struct worker_response page = answer(200, text);
    sends[20].wakes_waiters = false; /* the framework's part */
    CHECK(slack_classify_send(s, &sends[20], &page, &out) == WORKER_REQUEST);
    free(text);
    for (int i = 20; i < 23; i++) {
        char want[32];
        snprintf(want, sizeof(want), "Hi First%d", i);
        json_t *body = slack_build_post(s, &sends[i], &req);
        CHECK_STR(json_string_value(json_object_get(body, "text")), want);
        json_decref(body);
        worker_request_free(&req);
        worker_profile_clear(&sends[i].profile);
    }
    /* Not on the first page: this one fetches the second, from its cursor. */
    CHECK(slack_build_send(s, &sends[23], "xoxb-test", &req, &out) == WORKER_REQUEST);
    CHECK(sends[23].step == SLACK_STEP_FILL);
    CHECK_STR(req.body, "limit=1000&cursor=page2");
    worker_request_free(&req);
    /* A 429 on a page: the fetcher and the sends that need the fill go back as
     * RETRY rate_limited, with the time to wait. */
    struct worker_response limited = answer(429, "{\"ok\":false,\"error\":\"ratelimited\"}");
    limited.retry_after_ms = 30000;
    worker_outcome_init(&out);
    CHECK(slack_classify_send(s, &sends[23], &limited, &out) == WORKER_FINAL);
    CHECK(out.outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY && out.rate_limited);
    worker_outcome_init(&out);
    CHECK(slack_build_send(s, &sends[24], "xoxb-test", &req, &out) == WORKER_FINAL);
    CHECK(out.outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY && out.rate_limited &&
          out.retry_after_ms > 29000);
    CHECK(req.url == NULL);
    struct slack_bot *b = slack_bot_find(s, "botfill");
    CHECK(b != NULL && b->filling);
    b->limited_until_ms = 0; /* as if the time had passed */
    struct worker_send again = {.job = &jobs[24]};
    CHECK(slack_build_send(s, &again, "xoxb-test", &req, &out) == WORKER_REQUEST);
    CHECK(again.step == SLACK_STEP_FILL);
    worker_request_free(&req);
    /* The last page: the end of the list. Someone not on it is looked up alone. */
    text = page_of(23, 10, "");
    page = answer(200, text);
    CHECK(slack_classify_send(s, &again, &page, &out) == WORKER_REQUEST);
    free(text);
    CHECK(!b->filling);
    json_t *body = slack_build_post(s, &again, &req);
    CHECK_STR(json_string_value(json_object_get(body, "text")), "Hi First24");
    json_decref(body);
    worker_request_free(&req);
    worker_profile_clear(&again.profile);
    CHECK(slack_build_send(s, &sends[39], "xoxb-test", &req, &out) == WORKER_REQUEST);
    CHECK(sends[39].step == SLACK_STEP_PROFILE);
    worker_request_free(&req);

    /* The tick wipes the profiles once their time is up, asked for or not. */
    CHECK(profile_cache_count(s->profiles) == 13);
    slack_tick(s, clock_mono_ms() + s->profile_ttl_ms - 1000);
    CHECK(profile_cache_count(s->profiles) == 13);
    slack_tick(s, clock_mono_ms() + s->profile_ttl_ms + 1);
    CHECK(profile_cache_count(s->profiles) == 0);
    slack_platform.fini(s);
}

int main(void)
{
    test_slack_post_outcomes();
    test_slack_table();
    test_slack_build();
    test_slack_dm();
    test_slack_fill();
    test_messenger_outcomes();
    test_messenger_window();
    test_messenger_build();
    CHECK_DONE();
}
