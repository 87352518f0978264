/* messenger_query.c: live reads for the api and the scheduler: the page itself
 * (GET /me) and the people who wrote to it (the Conversations API, the only way
 * Meta offers to list them). Nothing read here is stored or logged. */
#include "messenger.h"

#include "bcrm/worker_reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MESSENGER_PAGE_DEFAULT 25
#define MESSENGER_PAGE_MAX 100

/* GETs path with params and returns the body of a successful answer, or NULL with
 * the reply's status saying why. */
static json_t *graph_get(const struct messenger_state *s, CURL *easy, const char *token,
                         const char *path, const char *params, Bcrm__V1__PlatformReply *reply)
{
    struct worker_request req = {0};
    struct worker_response resp;
    char *storage = NULL;
    json_t *body = NULL;
    char name[WORKER_ERROR_MAX];
    int code, subcode;
    if (messenger_request(s, path, params, token, NULL, &req) != 0) {
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_UNAVAILABLE, "out_of_memory");
        goto out;
    }
    worker_http_perform(easy, &req, &resp, &storage);
    struct worker_outcome transport;
    worker_outcome_init(&transport);
    if (worker_classify_transport(&resp, &transport)) {
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_UNAVAILABLE, transport.error);
        goto out;
    }
    body = json_loadb(resp.body, resp.body_len, 0, NULL);
    if (resp.status == 200 && json_is_object(body) && !messenger_error(body, &code, &subcode)) {
        goto out;
    }
    if (messenger_error(body, &code, &subcode)) {
        const struct messenger_rule *r = messenger_rule_find(code, subcode);
        Bcrm__V1__QueryStatus status = BCRM__V1__QUERY_STATUS__QUERY_PLATFORM_ERROR;
        if (r != NULL && (r->flags & WORKER_RULE_TOKEN_INVALID)) {
            status = BCRM__V1__QUERY_STATUS__QUERY_TOKEN_INVALID;
        } else if (r != NULL && (r->flags & WORKER_RULE_RATE_LIMITED)) {
            status = BCRM__V1__QUERY_STATUS__QUERY_RATE_LIMITED;
        } else if (r != NULL && r->outcome != BCRM__V1__OUTCOME__OUTCOME_FAILED) {
            status = BCRM__V1__QUERY_STATUS__QUERY_UNAVAILABLE;
        }
        snprintf(name, sizeof(name), "%s", r != NULL ? r->name : "");
        if (r == NULL) {
            snprintf(name, sizeof(name), "graph_error_%d", code);
        }
        worker_reply_status(reply, status, name);
    } else if (resp.status == 429) {
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_RATE_LIMITED, "rate_limited");
    } else {
        snprintf(name, sizeof(name), "http_%ld", resp.status);
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_UNAVAILABLE, name);
    }
    if (reply->status == BCRM__V1__QUERY_STATUS__QUERY_RATE_LIMITED) {
        /* Graph gives no Retry-After; its limits are per second or per hour. */
        reply->has_retry_after_ms = true;
        reply->retry_after_ms = resp.retry_after_ms >= 0 ? resp.retry_after_ms : 1000;
    }
    json_decref(body);
    body = NULL;
out:
    worker_request_free(&req);
    worker_http_storage_free(storage);
    return body;
}

static void verify_bot(const struct messenger_state *s, CURL *easy, const char *token,
                       Bcrm__V1__PlatformReply *reply)
{
    json_t *me = graph_get(s, easy, token, "me", "fields=id%2Cname", reply);
    if (me == NULL) {
        return;
    }
    Bcrm__V1__BotIdentity *id = worker_reply_identity(reply);
    if (id != NULL) {
        id->page_id = worker_json_strdup(me, "id");
        id->name = worker_json_strdup(me, "name");
    }
    json_decref(me);
}

static void list_users(const struct messenger_state *s, CURL *easy, const char *token,
                       const Bcrm__V1__ListUsers *q, Bcrm__V1__PlatformReply *reply)
{
    json_t *me = graph_get(s, easy, token, "me", "fields=id", reply);
    json_t *page = NULL;
    char *params = NULL;
    if (me == NULL) {
        return;
    }
    const char *page_id = json_string_value(json_object_get(me, "id"));
    char limit[16];
    int n = q->has_limit && q->limit > 0 ? q->limit : MESSENGER_PAGE_DEFAULT;
    snprintf(limit, sizeof(limit), "%d", n > MESSENGER_PAGE_MAX ? MESSENGER_PAGE_MAX : n);
    if (worker_form_add(&params, "platform", "messenger") != 0 ||
        worker_form_add(&params, "fields", "participants,updated_time") != 0 ||
        worker_form_add(&params, "limit", limit) != 0 ||
        (q->cursor != NULL && q->cursor[0] != '\0' &&
         worker_form_add(&params, "after", q->cursor) != 0)) {
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_UNAVAILABLE, "out_of_memory");
        goto out;
    }
    if ((page = graph_get(s, easy, token, "me/conversations", params, reply)) == NULL) {
        goto out;
    }
    size_t i, j;
    json_t *conv, *person;
    json_array_foreach(json_object_get(page, "data"), i, conv)
    {
        json_t *people = json_object_get(json_object_get(conv, "participants"), "data");
        json_array_foreach(people, j, person)
        {
            /* Every conversation lists the page itself too. */
            const char *psid = json_string_value(json_object_get(person, "id"));
            if (psid == NULL || (page_id != NULL && strcmp(psid, page_id) == 0)) {
                continue;
            }
            Bcrm__V1__PlatformUser *u = worker_reply_add_user(reply);
            if (u == NULL) {
                continue;
            }
            u->id = strdup(psid);
            u->name = worker_json_strdup(person, "name");
            u->real_name = worker_json_strdup(person, "name");
            u->email = worker_json_strdup(person, "email");
            u->has_has_tz = true;
            u->has_tz = false;
        }
    }
    /* Graph gives paging.next only when there is a next page. */
    json_t *paging = json_object_get(page, "paging");
    if (json_object_get(paging, "next") != NULL) {
        reply->next_cursor = worker_json_strdup(json_object_get(paging, "cursors"), "after");
    }
out:
    free(params);
    json_decref(page);
    json_decref(me);
}

void messenger_query(void *state, CURL *easy, const char *token,
                     const Bcrm__V1__PlatformQuery *query, Bcrm__V1__PlatformReply *reply)
{
    const struct messenger_state *s = state;
    switch (query->query_case) {
    case BCRM__V1__PLATFORM_QUERY__QUERY_VERIFY_BOT:
        verify_bot(s, easy, token, reply);
        break;
    case BCRM__V1__PLATFORM_QUERY__QUERY_LIST_USERS:
        list_users(s, easy, token, query->list_users, reply);
        break;
    case BCRM__V1__PLATFORM_QUERY__QUERY_LIST_CHANNELS:
        /* A page has conversations with people, not channels. */
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_BAD_REQUEST,
                            "channels_not_supported");
        break;
    default:
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_BAD_REQUEST, "unknown_query");
        break;
    }
}
