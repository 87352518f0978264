/* webhooks_messenger.c: the Messenger Platform webhook.
 *
 * GET answers Meta's subscription check: hub.mode=subscribe with our verify token
 * gets hub.challenge back as text. POST carries events, signed with the app secret
 * in X-Hub-Signature-256 over the raw body (webhook_sig.h). For each entry (a page,
 * matched to the bots connected with that page id) and each messaging item:
 *   - a message or postback from a person records the PSID as a subscriber with the
 *     time of that message: the start of Messenger's 24-hour window, which is all a
 *     send needs to know about them (nothing else about the person is stored);
 *   - a read receipt {watermark} marks that person's deliveries of that bot that
 *     were sent up to the watermark as read;
 *   - delivery receipts and everything else are ignored (a sent message is already
 *     recorded as sent).
 * All of one request is applied in one transaction and every step is idempotent
 * (the latest message time wins; only sent deliveries become read), so Meta's
 * redeliveries change nothing more. The answer is 200 as soon as that is done.
 */
#include "api.h"

#include "bcrm/db.h"
#include "bcrm/log.h"
#include "webhook_sig.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PSID_MAX_CHARS 64

void webhooks_messenger_verify(struct api_req *r)
{
    const char *expected = r->api->messenger_verify_token;
    const char *mode = http_query(r->http, "hub.mode");
    const char *token = http_query(r->http, "hub.verify_token");
    const char *challenge = http_query(r->http, "hub.challenge");
    if (expected == NULL) {
        api_problem(r, 403, "Forbidden", NULL,
                    "Messenger webhooks are not configured (BCRM_MESSENGER_VERIFY_TOKEN)");
        return;
    }
    size_t len = strlen(expected);
    bool token_ok =
        token != NULL && strlen(token) == len && sodium_memcmp(token, expected, len) == 0;
    if (mode == NULL || strcmp(mode, "subscribe") != 0 || !token_ok) {
        api_problem(r, 403, "Forbidden", NULL,
                    "hub.mode must be subscribe and hub.verify_token must match");
        return;
    }
    if (challenge == NULL) {
        api_problem(r, 400, "Bad Request", "hub.challenge", "hub.challenge is missing");
        return;
    }
    http_respond(r->resp, 200, "text/plain", challenge, strlen(challenge));
}

/* A JSON number of milliseconds, or -1 when it is not a number. */
static long long json_ms(json_t *v)
{
    if (json_is_integer(v)) {
        return json_integer_value(v);
    }
    if (json_is_real(v)) {
        return (long long)json_real_value(v);
    }
    return -1;
}

struct messenger_counts {
    int subscribers;
    int read;
};

/* Applies one messaging item to bot_id. 0 or -1 (database failure). */
static int apply_item(PGconn *conn, const char *bot_id, json_t *item, struct messenger_counts *n)
{
    const char *psid = json_string_value(json_object_get(json_object_get(item, "sender"), "id"));
    long long timestamp = json_ms(json_object_get(item, "timestamp"));
    if (psid == NULL || psid[0] == '\0' || strlen(psid) > PSID_MAX_CHARS || timestamp < 0) {
        return 0;
    }
    char ts[24];
    snprintf(ts, sizeof(ts), "%lld", timestamp);
    json_t *message = json_object_get(item, "message");
    json_t *postback = json_object_get(item, "postback");
    json_t *read = json_object_get(item, "read");
    /* An echo is the page's own message, sent to the person: not from them. */
    if ((json_is_object(message) && !json_is_true(json_object_get(message, "is_echo"))) ||
        json_is_object(postback)) {
        const char *p[] = {bot_id, psid, ts};
        PGresult *res =
            db_query(conn, "record subscriber",
                     "INSERT INTO messenger_subscribers (bot_id, psid, last_message_at)"
                     " VALUES ($1, $2, to_timestamp($3::bigint / 1000.0))"
                     " ON CONFLICT (bot_id, psid) DO UPDATE SET last_message_at ="
                     " greatest(messenger_subscribers.last_message_at, excluded.last_message_at)",
                     3, p);
        if (res == NULL) {
            return -1;
        }
        n->subscribers += atoi(PQcmdTuples(res));
        PQclear(res);
    }
    long long watermark = json_ms(json_object_get(read, "watermark"));
    if (json_is_object(read) && watermark >= 0) {
        char wm[24];
        snprintf(wm, sizeof(wm), "%lld", watermark);
        const char *p[] = {bot_id, psid, wm, ts};
        PGresult *res = db_query(conn, "mark deliveries read",
                                 "UPDATE deliveries d SET status = 'read',"
                                 " read_at = to_timestamp($4::bigint / 1000.0), updated_at = now()"
                                 " FROM campaigns c WHERE c.id = d.campaign_id AND c.bot_id = $1"
                                 " AND d.org_id = c.org_id AND d.recipient_id = $2"
                                 " AND d.status = 'sent'"
                                 " AND d.sent_at <= to_timestamp($3::bigint / 1000.0)",
                                 4, p);
        if (res == NULL) {
            return -1;
        }
        n->read += atoi(PQcmdTuples(res));
        PQclear(res);
    }
    return 0;
}

/* Applies one entry (one page) to every bot connected with that page. */
static int apply_entry(PGconn *conn, json_t *entry, struct messenger_counts *n)
{
    const char *page_id = json_string_value(json_object_get(entry, "id"));
    json_t *messaging = json_object_get(entry, "messaging");
    if (page_id == NULL || !json_is_array(messaging)) {
        return 0;
    }
    const char *p[] = {page_id};
    PGresult *bots = db_query(conn, "bots of page",
                              "SELECT id FROM bots WHERE platform = 'messenger' AND page_id = $1"
                              " AND status <> 'deleted'",
                              1, p);
    if (bots == NULL) {
        return -1;
    }
    if (PQntuples(bots) == 0) {
        log_info("messenger event for an unknown page", "{s:s}", "page_id", page_id);
    }
    int rv = 0;
    for (int b = 0; b < PQntuples(bots) && rv == 0; b++) {
        size_t i;
        json_t *item;
        json_array_foreach(messaging, i, item)
        {
            if (apply_item(conn, PQgetvalue(bots, b, 0), item, n) != 0) {
                rv = -1;
                break;
            }
        }
    }
    PQclear(bots);
    return rv;
}

void webhooks_messenger_events(struct api_req *r)
{
    const char *secret = r->api->messenger_app_secret;
    if (secret == NULL) {
        api_problem(r, 503, "Service Unavailable", NULL,
                    "Messenger webhooks are not configured (BCRM_MESSENGER_APP_SECRET)");
        return;
    }
    enum sig_result sig = sig_meta_check(secret, http_header(r->http, "X-Hub-Signature-256"),
                                         r->http->body, r->http->body_len);
    if (sig != SIG_OK) {
        char peer[64];
        http_peer(r->http, peer, sizeof(peer));
        log_warn("messenger event refused", "{s:s, s:s}", "reason", sig_result_reason(sig), "peer",
                 peer);
        api_problem(r, 401, "Unauthorized", NULL, "X-Hub-Signature-256 verification failed: %s",
                    sig_result_reason(sig));
        return;
    }
    json_t *body = api_body_object(r);
    if (body == NULL) {
        return;
    }
    json_t *entries = json_object_get(body, "entry");
    const char *object = json_string_value(json_object_get(body, "object"));
    struct messenger_counts n = {0};
    if (object == NULL || strcmp(object, "page") != 0 || !json_is_array(entries)) {
        api_json(r, 200, json_pack("{s:i, s:i}", "subscribers", 0, "read", 0));
        goto out;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        goto out;
    }
    if (db_begin(conn) != 0) {
        api_internal_error(r);
        goto out;
    }
    size_t i;
    json_t *entry;
    json_array_foreach(entries, i, entry)
    {
        if (apply_entry(conn, entry, &n) != 0) {
            db_rollback(conn);
            api_internal_error(r);
            goto out;
        }
    }
    if (db_commit(conn) != 0) {
        db_rollback(conn);
        api_internal_error(r);
        goto out;
    }
    log_info("messenger events applied", "{s:i, s:i, s:i}", "entries",
             (int)json_array_size(entries), "subscribers", n.subscribers, "read", n.read);
    api_json(r, 200, json_pack("{s:i, s:i}", "subscribers", n.subscribers, "read", n.read));
out:
    json_decref(body);
}
