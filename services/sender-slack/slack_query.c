/* slack_query.c: live reads for the api and the scheduler: auth.test, users.list,
 * conversations.list and conversations.members. Nothing read here is stored or
 * logged. The OAuth code exchange is in slack_oauth.c. */
#include "slack.h"

#include "bcrm/worker_reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Slack advises 200 members a page and allows up to 1000. */
#define SLACK_PAGE_DEFAULT 200
#define SLACK_PAGE_MAX 1000

/* Performs req (consumed) and returns the body of an ok:true answer, or NULL with
 * the reply's status saying why. *captured, when not NULL, gets a copy of the
 * header req->capture_header names (free with free()). */
json_t *slack_query_perform(CURL *easy, struct worker_request *req, Bcrm__V1__PlatformReply *reply,
                            char **captured)
{
    struct worker_response resp;
    char *storage = NULL;
    json_t *body = NULL;
    char code[WORKER_ERROR_MAX];
    worker_http_perform(easy, req, &resp, &storage);
    struct worker_outcome transport;
    worker_outcome_init(&transport);
    if (worker_classify_transport(&resp, &transport)) {
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_UNAVAILABLE, transport.error);
        goto out;
    }
    if (resp.status == 429) {
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_RATE_LIMITED, "ratelimited");
        reply->has_retry_after_ms = true;
        reply->retry_after_ms = resp.retry_after_ms >= 0 ? resp.retry_after_ms : 1000;
        goto out;
    }
    if (resp.status >= 500) {
        snprintf(code, sizeof(code), "http_%ld", resp.status);
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_UNAVAILABLE, code);
        goto out;
    }
    body = slack_parse(&resp);
    if (body != NULL && json_is_true(json_object_get(body, "ok"))) {
        if (captured != NULL && resp.captured != NULL) {
            *captured = strdup(resp.captured);
        }
        goto out;
    }
    const char *error = json_string_value(json_object_get(body, "error"));
    if (error == NULL) {
        snprintf(code, sizeof(code), body == NULL ? "bad_response" : "http_%ld", resp.status);
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_UNAVAILABLE, code);
    } else {
        /* The send rules know which codes mean a bad token or a rate limit. */
        const struct worker_rule *rule =
            worker_rule_find(slack_send_rules, slack_send_rule_count, error);
        Bcrm__V1__QueryStatus status = BCRM__V1__QUERY_STATUS__QUERY_PLATFORM_ERROR;
        if (rule != NULL && (rule->flags & WORKER_RULE_TOKEN_INVALID)) {
            status = BCRM__V1__QUERY_STATUS__QUERY_TOKEN_INVALID;
        } else if (rule != NULL && (rule->flags & WORKER_RULE_RATE_LIMITED)) {
            status = BCRM__V1__QUERY_STATUS__QUERY_RATE_LIMITED;
            reply->has_retry_after_ms = true;
            reply->retry_after_ms = resp.retry_after_ms >= 0 ? resp.retry_after_ms : 1000;
        } else if (rule != NULL && rule->outcome != BCRM__V1__OUTCOME__OUTCOME_FAILED) {
            status = BCRM__V1__QUERY_STATUS__QUERY_UNAVAILABLE;
        } else if (strcmp(error, "invalid_cursor") == 0 || strcmp(error, "invalid_limit") == 0 ||
                   strcmp(error, "invalid_code") == 0 || strcmp(error, "bad_redirect_uri") == 0 ||
                   strcmp(error, "channel_not_found") == 0) {
            status = BCRM__V1__QUERY_STATUS__QUERY_BAD_REQUEST;
        }
        worker_reply_status(reply, status, error);
    }
    json_decref(body);
    body = NULL;
out:
    worker_request_free(req);
    worker_http_storage_free(storage);
    return body;
}

/* Calls method with the bot's token and form (consumed); see slack_query_perform. */
static json_t *slack_call(const struct slack_state *s, CURL *easy, const char *token,
                          const char *method, char *form, Bcrm__V1__PlatformReply *reply,
                          const char *capture_header, char **captured)
{
    struct worker_request req = {0};
    if (slack_request(s, method, token, &req) != 0 || slack_request_form(&req, form) != 0) {
        worker_request_free(&req);
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_UNAVAILABLE, "out_of_memory");
        return NULL;
    }
    req.capture_header = capture_header;
    return slack_query_perform(easy, &req, reply, captured);
}

/* Adds cursor and limit to a list call's form. 0 or -1. */
static int page_form(char **form, const char *cursor, bool has_limit, int32_t limit)
{
    char text[16];
    int n = has_limit && limit > 0 ? limit : SLACK_PAGE_DEFAULT;
    snprintf(text, sizeof(text), "%d", n > SLACK_PAGE_MAX ? SLACK_PAGE_MAX : n);
    if (worker_form_add(form, "limit", text) != 0) {
        return -1;
    }
    if (cursor != NULL && cursor[0] != '\0' && worker_form_add(form, "cursor", cursor) != 0) {
        return -1;
    }
    return 0;
}

/* One page of a paged list method: cursor and limit (page_form) and the pairs of
 * extra (key, value, ..., NULL; extra may be NULL) in its form. The answer's body
 * (json_decref it) with reply->next_cursor set from its response_metadata, or NULL
 * with the reply's status saying why. */
static json_t *call_page(const struct slack_state *s, CURL *easy, const char *token,
                         const char *method, const char *cursor, bool has_limit, int32_t limit,
                         const char *const *extra, Bcrm__V1__PlatformReply *reply)
{
    char *form = NULL;
    int rv = page_form(&form, cursor, has_limit, limit);
    for (size_t i = 0; rv == 0 && extra != NULL && extra[i] != NULL; i += 2) {
        rv = worker_form_add(&form, extra[i], extra[i + 1]);
    }
    if (rv != 0) {
        free(form);
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_UNAVAILABLE, "out_of_memory");
        return NULL;
    }
    json_t *body = slack_call(s, easy, token, method, form, reply, NULL, NULL);
    if (body != NULL) {
        json_t *meta = json_object_get(body, "response_metadata");
        reply->next_cursor = worker_json_strdup(meta, "next_cursor");
    }
    return body;
}

static void verify_bot(const struct slack_state *s, CURL *easy, const char *token,
                       Bcrm__V1__PlatformReply *reply)
{
    /* Slack names the token's scopes in a header of every Web API answer. */
    char *scopes = NULL;
    json_t *body = slack_call(s, easy, token, "auth.test", NULL, reply, "x-oauth-scopes:", &scopes);
    if (body == NULL) {
        return;
    }
    Bcrm__V1__BotIdentity *id = worker_reply_identity(reply);
    if (id != NULL) {
        id->name = worker_json_strdup(body, "team");
        id->team_id = worker_json_strdup(body, "team_id");
        id->bot_user_id = worker_json_strdup(body, "user_id");
        id->bot_id = worker_json_strdup(body, "bot_id");
        id->url = worker_json_strdup(body, "url");
        id->app_id = worker_json_strdup(body, "app_id");
        id->scopes = scopes;
        scopes = NULL;
    }
    free(scopes);
    json_decref(body);
}

static bool json_flag(const json_t *obj, const char *key)
{
    return json_is_true(json_object_get(obj, key));
}

static void list_users(const struct slack_state *s, CURL *easy, const char *token,
                       const Bcrm__V1__ListUsers *q, Bcrm__V1__PlatformReply *reply)
{
    json_t *body =
        call_page(s, easy, token, "users.list", q->cursor, q->has_limit, q->limit, NULL, reply);
    if (body == NULL) {
        return;
    }
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(body, "members"), i, m)
    {
        const char *id = json_string_value(json_object_get(m, "id"));
        Bcrm__V1__PlatformUser *u = id != NULL ? worker_reply_add_user(reply) : NULL;
        if (u == NULL) {
            continue;
        }
        json_t *profile = json_object_get(m, "profile");
        u->id = strdup(id);
        u->name = worker_json_strdup(m, "name");
        u->real_name = worker_json_strdup(m, "real_name");
        if (u->real_name == NULL) {
            u->real_name = worker_json_strdup(profile, "real_name");
        }
        u->first_name = worker_json_strdup(profile, "first_name");
        u->email = worker_json_strdup(profile, "email");
        u->avatar = worker_json_strdup(profile, "image_72");
        u->tz = worker_json_strdup(m, "tz");
        u->has_has_tz = true;
        u->has_tz = u->tz != NULL;
        json_t *offset = json_object_get(m, "tz_offset");
        if (json_is_integer(offset)) {
            u->has_tz_offset = true;
            u->tz_offset = (int32_t)json_integer_value(offset);
        }
        u->has_is_admin = u->has_is_owner = u->has_is_bot = u->has_deleted = true;
        u->is_admin = json_flag(m, "is_admin");
        u->is_owner = json_flag(m, "is_owner") || json_flag(m, "is_primary_owner");
        /* Slackbot is a bot that Slack does not flag as one. */
        u->is_bot = json_flag(m, "is_bot") || strcmp(id, "USLACKBOT") == 0;
        u->deleted = json_flag(m, "deleted");
    }
    json_decref(body);
}

static void list_channels(const struct slack_state *s, CURL *easy, const char *token,
                          const Bcrm__V1__ListChannels *q, Bcrm__V1__PlatformReply *reply)
{
    static const char *const extra[] = {"types", "public_channel,private_channel",
                                        "exclude_archived", "true", NULL};
    json_t *body = call_page(s, easy, token, "conversations.list", q->cursor, q->has_limit,
                             q->limit, extra, reply);
    if (body == NULL) {
        return;
    }
    size_t i;
    json_t *ch;
    json_array_foreach(json_object_get(body, "channels"), i, ch)
    {
        /* Only channels the bot can post into are of use to a campaign. */
        const char *id = json_string_value(json_object_get(ch, "id"));
        if (id == NULL || !json_flag(ch, "is_member")) {
            continue;
        }
        Bcrm__V1__PlatformChannel *c = worker_reply_add_channel(reply);
        if (c == NULL) {
            continue;
        }
        c->id = strdup(id);
        c->name = worker_json_strdup(ch, "name");
        c->has_is_private = c->has_is_archived = true;
        c->is_private = json_flag(ch, "is_private");
        c->is_archived = json_flag(ch, "is_archived");
        json_t *members = json_object_get(ch, "num_members");
        if (json_is_integer(members)) {
            c->has_num_members = true;
            c->num_members = (int32_t)json_integer_value(members);
        }
    }
    json_decref(body);
}

static void list_channel_members(const struct slack_state *s, CURL *easy, const char *token,
                                 const Bcrm__V1__ListChannelMembers *q,
                                 Bcrm__V1__PlatformReply *reply)
{
    const char *extra[] = {"channel", q->channel_id, NULL};
    json_t *body = call_page(s, easy, token, "conversations.members", q->cursor, q->has_limit,
                             q->limit, extra, reply);
    if (body == NULL) {
        return;
    }
    size_t i;
    json_t *member;
    json_array_foreach(json_object_get(body, "members"), i, member)
    {
        const char *id = json_string_value(member);
        if (id != NULL && worker_reply_add_member_id(reply, id) != 0) {
            worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_UNAVAILABLE, "out_of_memory");
            break;
        }
    }
    json_decref(body);
}

void slack_query(void *state, CURL *easy, const char *token, const Bcrm__V1__PlatformQuery *query,
                 Bcrm__V1__PlatformReply *reply)
{
    const struct slack_state *s = state;
    switch (query->query_case) {
    case BCRM__V1__PLATFORM_QUERY__QUERY_VERIFY_BOT:
        verify_bot(s, easy, token, reply);
        break;
    case BCRM__V1__PLATFORM_QUERY__QUERY_LIST_USERS:
        list_users(s, easy, token, query->list_users, reply);
        break;
    case BCRM__V1__PLATFORM_QUERY__QUERY_LIST_CHANNELS:
        list_channels(s, easy, token, query->list_channels, reply);
        break;
    case BCRM__V1__PLATFORM_QUERY__QUERY_LIST_CHANNEL_MEMBERS:
        list_channel_members(s, easy, token, query->list_channel_members, reply);
        break;
    case BCRM__V1__PLATFORM_QUERY__QUERY_EXCHANGE_OAUTH_CODE:
        slack_oauth_exchange(s, easy, query->exchange_oauth_code, reply);
        break;
    default:
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_BAD_REQUEST, "unknown_query");
        break;
    }
}
