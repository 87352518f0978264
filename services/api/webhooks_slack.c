/* webhooks_slack.c: POST /v1/webhooks/slack/events, the Slack Events API.
 *
 * Slack signs every request with the app's signing secret (webhook_sig.h); nothing
 * in the body is believed before that signature and its timestamp check out. Two
 * things matter to bcrm: url_verification (echo the challenge when the endpoint is
 * registered) and the events that kill a bot's token, app_uninstalled and
 * tokens_revoked. For those, each matching bot whose token the platform refuses
 * now (a bot reconnected since keeps its new one) is marked token_invalid and its
 * scheduled or running campaigns paused, in one statement, and then its token is
 * destroyed in the vault. Every step is idempotent, so a delivery that Slack
 * repeats (X-Slack-Retry-Num) changes nothing more; if the vault cannot be reached
 * the answer is 503, and Slack's retry finishes the job.
 */
#include "api.h"

#include "bots.h"
#include "platform.h"

#include "bcrm/clock.h"
#include "bcrm/db.h"
#include "bcrm/log.h"
#include "bcrm/vault_client.h"
#include "webhook_sig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bots of a workspace whose token this event ends: the team's Slack bots (not
 * deleted), of the same app when we know the bot's app id. tokens_revoked names the
 * users whose tokens were revoked; a bot token belongs to the bot user, so only a
 * bot whose bot_user_id is listed matches (a wrong match would destroy a working
 * token, a missed one only fails its sends as token_revoked). */
static PGresult *find_revoked_bots(PGconn *conn, const char *team_id, const char *app_id,
                                   const char *bot_users_json)
{
    const char *p[] = {team_id, app_id, bot_users_json};
    return db_query(conn, "find bots of slack event",
                    "SELECT id, org_id FROM bots WHERE platform = 'slack' AND team_id = $1"
                    " AND status <> 'deleted'"
                    " AND ($2::text IS NULL OR app_id IS NULL OR app_id = $2)"
                    " AND ($3::jsonb IS NULL OR $3::jsonb ? bot_user_id)",
                    3, p);
}

/* Ends the token of every bot the event names. 0, or -1 after answering. */
static int revoke_bots(struct api_req *r, const char *event_type, const char *team_id,
                       const char *app_id, const char *bot_users_json)
{
    char(*ids)[2][API_UUID_LEN] = NULL;
    bool *keep = NULL; /* keep[i]: ids[i]'s token still works */
    int n = 0, rv = -1;
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return -1;
    }
    PGresult *res = find_revoked_bots(conn, team_id, app_id, bot_users_json);
    if (res == NULL) {
        api_internal_error(r);
        return -1;
    }
    n = PQntuples(res);
    ids = calloc((size_t)n + 1, sizeof(*ids));
    keep = calloc((size_t)n + 1, sizeof(*keep));
    if (ids == NULL || keep == NULL) {
        free(ids);
        free(keep);
        PQclear(res);
        api_internal_error(r);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        snprintf(ids[i][0], API_UUID_LEN, "%s", PQgetvalue(res, i, 0));
        snprintf(ids[i][1], API_UUID_LEN, "%s", PQgetvalue(res, i, 1));
    }
    PQclear(res);
    api_db_release(r); /* slow calls follow */

    /* Slack sends these events for a token it has revoked, but a late or repeated
     * delivery may name a bot that was reconnected since with a new token. The
     * token the vault holds now is put to the platform (auth.test, by a sender),
     * and a working one is kept. No sender in time: 503, and Slack's retry asks
     * again. */
    for (int i = 0; i < n; i++) {
        Bcrm__V1__PlatformReply *reply = NULL;
        if (bots_verify(r, ids[i][1], "slack", ids[i][0], &reply) != 0) {
            goto out;
        }
        keep[i] = reply->status == BCRM__V1__QUERY_STATUS__QUERY_OK;
        protobuf_c_message_free_unpacked(&reply->base, NULL);
        if (keep[i]) {
            log_info("slack event names a bot whose token works: kept (reconnected since)",
                     "{s:s, s:s, s:s}", "org_id", ids[i][1], "bot_id", ids[i][0], "event",
                     event_type);
        }
    }
    if (api_db(r) == NULL) {
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (!keep[i] && platform_mark_token_invalid(r, ids[i][0]) != 0) {
            api_internal_error(r);
            goto out;
        }
    }
    api_db_release(r);

    int failures = 0;
    for (int i = 0; i < n; i++) {
        if (keep[i]) {
            continue;
        }
        char err[256] = "";
        int code = r->api->vault == NULL
                       ? -1
                       : vault_destroy_token(r->api->vault, ids[i][1], ids[i][0], err, sizeof(err));
        if (code != 0 && code != BCRM__V1__VAULT_CODE__VAULT_NOT_FOUND) {
            log_error("cannot destroy a revoked bot's token", "{s:s, s:s, s:i, s:s}", "bot_id",
                      ids[i][0], "event", event_type, "code", code, "error",
                      r->api->vault == NULL ? "no vault client (BCRM_IDENTITY_KEY_FILE)" : err);
            failures++;
            continue;
        }
        log_info("bot token revoked by slack", "{s:s, s:s, s:s}", "org_id", ids[i][1], "bot_id",
                 ids[i][0], "event", event_type);
    }
    if (failures > 0) {
        /* Slack retries a delivery that was not answered 2xx: the retry destroys
         * what this attempt could not. */
        api_problem(r, 503, "Service Unavailable", NULL,
                    "the vault could not destroy %d token(s); retry the delivery", failures);
        goto out;
    }
    if (n == 0) {
        log_info("slack event matched no bot", "{s:s, s:s}", "event", event_type, "team_id",
                 team_id);
    }
    rv = 0;
out:
    free(ids);
    free(keep);
    return rv;
}

/* The "tokens.bot" list of a tokens_revoked event as JSON text, or NULL when it
 * names no bot user (only user tokens were revoked: no bot token ends). */
static char *revoked_bot_users(json_t *event)
{
    json_t *bots = json_object_get(json_object_get(event, "tokens"), "bot");
    if (!json_is_array(bots) || json_array_size(bots) == 0) {
        return NULL;
    }
    return json_dumps(bots, JSON_COMPACT);
}

static void handle_event_callback(struct api_req *r, json_t *body)
{
    json_t *event = json_object_get(body, "event");
    const char *type = json_string_value(json_object_get(event, "type"));
    const char *team_id = json_string_value(json_object_get(body, "team_id"));
    const char *app_id = json_string_value(json_object_get(body, "api_app_id"));
    const char *retry = http_header(r->http, "X-Slack-Retry-Num");
    if (type == NULL) {
        api_problem(r, 400, "Bad Request", "event.type", "event_callback without event.type");
        return;
    }
    log_info("slack event", "{s:s, s:s, s:s, s:s}", "event", type, "team_id",
             team_id ? team_id : "", "event_id",
             json_string_value(json_object_get(body, "event_id"))
                 ? json_string_value(json_object_get(body, "event_id"))
                 : "",
             "retry", retry ? retry : "0");
    bool uninstalled = strcmp(type, "app_uninstalled") == 0;
    bool revoked = strcmp(type, "tokens_revoked") == 0;
    if (!uninstalled && !revoked) {
        api_json(r, 200, json_pack("{s:b}", "ok", 1)); /* not ours to act on */
        return;
    }
    if (team_id == NULL || team_id[0] == '\0') {
        api_problem(r, 400, "Bad Request", "team_id", "%s without team_id", type);
        return;
    }
    char *bot_users = NULL;
    if (revoked) {
        bot_users = revoked_bot_users(event);
        if (bot_users == NULL) {
            api_json(r, 200, json_pack("{s:b}", "ok", 1)); /* user tokens only */
            return;
        }
    }
    if (revoke_bots(r, type, team_id, app_id, bot_users) == 0) {
        api_json(r, 200, json_pack("{s:b}", "ok", 1));
    }
    free(bot_users);
}

void webhooks_slack_events(struct api_req *r)
{
    const char *secret = r->api->slack_signing_secret;
    if (secret == NULL) {
        api_problem(r, 503, "Service Unavailable", NULL,
                    "Slack events are not configured (BCRM_SLACK_SIGNING_SECRET)");
        return;
    }
    enum sig_result sig = sig_slack_check(secret, http_header(r->http, "X-Slack-Request-Timestamp"),
                                          http_header(r->http, "X-Slack-Signature"), r->http->body,
                                          r->http->body_len, clock_wall_ms() / 1000);
    if (sig != SIG_OK) {
        char peer[64];
        http_peer(r->http, peer, sizeof(peer));
        log_warn("slack event refused", "{s:s, s:s}", "reason", sig_result_reason(sig), "peer",
                 peer);
        api_problem(r, 401, "Unauthorized", NULL, "Slack request verification failed: %s",
                    sig_result_reason(sig));
        return;
    }
    json_t *body = api_body_object(r);
    if (body == NULL) {
        return;
    }
    const char *type = json_string_value(json_object_get(body, "type"));
    if (type != NULL && strcmp(type, "url_verification") == 0) {
        const char *challenge = json_string_value(json_object_get(body, "challenge"));
        if (challenge == NULL) {
            api_problem(r, 400, "Bad Request", "challenge", "url_verification without challenge");
        } else {
            api_json(r, 200, json_pack("{s:s}", "challenge", challenge));
        }
    } else if (type != NULL && strcmp(type, "event_callback") == 0) {
        handle_event_callback(r, body);
    } else {
        api_json(r, 200, json_pack("{s:b}", "ok", 1)); /* app_rate_limited and the like */
    }
    json_decref(body);
}
