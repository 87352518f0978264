/* bots.c: connecting, listing and disconnecting bots, and the live reads of a
 * bot's users and channels.
 *
 * Tokens pass through this process only on their way to the vault: the parsed copy
 * and the raw request body are wiped as soon as the vault has the token, and no
 * token is ever logged or answered. Everything the platform says about a bot's
 * users is read live from a sender (PlatformQuery over the bus) and forgotten when
 * the answer is sent; nothing about them is stored.
 */
#include "bots.h"

#include "bcrm/db.h"
#include "bcrm/log.h"
#include "bcrm/v1/query.pb-c.h"
#include "bcrm/vault_client.h"
#include "jsonv.h"
#include "platform.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const bot_fields[] = {"id",      "platform",   "status",      "name",
                                         "team_id", "app_id",     "bot_user_id", "page_id",
                                         "scopes",  "created_at", "updated_at"};
#define BOT_NFIELDS 11

json_t *bots_json(const PGresult *res, int row)
{
    json_t *bot = json_object();
    for (int col = 0; col < BOT_NFIELDS; col++) {
        json_object_set_new(bot, bot_fields[col],
                            PQgetisnull(res, row, col) ? json_null()
                                                       : json_string(PQgetvalue(res, row, col)));
    }
    return bot;
}

void bots_undo_connect(struct api_req *r, const char *org_id, const char *bot_id, bool stored)
{
    char err[256];
    if (stored && r->api->vault != NULL &&
        vault_destroy_token(r->api->vault, org_id, bot_id, err, sizeof(err)) != 0) {
        log_error("cannot destroy the token of a failed bot", "{s:s, s:s}", "bot_id", bot_id,
                  "error", err);
    }
    PGconn *conn = api_db(r);
    const char *p[] = {bot_id};
    if (conn != NULL) {
        db_exec(conn, "delete failed bot", "DELETE FROM bots WHERE id = $1", 1, p);
    }
}

int bots_insert_verifying(struct api_req *r, const char *org_id, const char *platform,
                          char bot_id[API_UUID_LEN])
{
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return -1;
    }
    const char *p[] = {org_id, platform};
    PGresult *res = db_query(conn, "insert bot",
                             "INSERT INTO bots (org_id, platform, status)"
                             " VALUES ($1, $2, 'verifying') RETURNING id",
                             2, p);
    if (res == NULL) {
        api_internal_error(r);
        return -1;
    }
    snprintf(bot_id, API_UUID_LEN, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    /* Slow calls follow; the connection serves other requests meanwhile. */
    api_db_release(r);
    return 0;
}

int bots_verify(struct api_req *r, const char *org_id, const char *platform, const char *bot_id,
                Bcrm__V1__PlatformReply **reply)
{
    char request_id[33];
    Bcrm__V1__PlatformQuery q;
    platform_query_init(&q, request_id, org_id, bot_id);
    Bcrm__V1__VerifyBot verify = BCRM__V1__VERIFY_BOT__INIT;
    q.query_case = BCRM__V1__PLATFORM_QUERY__QUERY_VERIFY_BOT;
    q.verify_bot = &verify;
    return platform_call(r, platform, &q, reply);
}

void bots_identity_params(const char *bot_id, const Bcrm__V1__BotIdentity *id,
                          const char *p[BOT_IDENTITY_NPARAMS])
{
    p[0] = bot_id;
    p[1] = id ? id->name : NULL;
    p[2] = id ? id->team_id : NULL;
    p[3] = id ? id->app_id : NULL;
    p[4] = id ? id->bot_user_id : NULL;
    p[5] = id ? id->page_id : NULL;
    p[6] = id ? id->scopes : NULL;
}

PGresult *bots_activate(PGconn *conn, const char *bot_id, const Bcrm__V1__BotIdentity *id)
{
    const char *p[BOT_IDENTITY_NPARAMS];
    bots_identity_params(bot_id, id, p);
    return db_query(conn, "activate bot",
                    "UPDATE bots SET status = 'active', name = $2, team_id = $3, app_id = $4,"
                    " bot_user_id = $5, page_id = $6, scopes = $7, updated_at = now()"
                    " WHERE id = $1 RETURNING " BOT_COLUMNS,
                    BOT_IDENTITY_NPARAMS, p);
}

/* The token of the body, validated; the caller wipes it. */
static const char *read_token(struct api_req *r, json_t *body, const char **platform)
{
    static const char *const platforms[] = {"slack", "messenger", NULL};
    static const char *const slack_keys[] = {"platform", "token", NULL};
    static const char *const messenger_keys[] = {"platform", "page_token", NULL};
    struct jv v = {0};
    *platform = jv_enum(&v, body, "platform", "platform", true, platforms);
    const char *token = NULL;
    if (*platform != NULL && strcmp(*platform, "slack") == 0) {
        jv_only_keys(&v, body, "", slack_keys);
        token = jv_string(&v, body, "token", "token", true, 1, TOKEN_MAX_CHARS);
        if (token != NULL && strncmp(token, "xox", 3) != 0) {
            jv_fail(&v, "token", "is not a Slack token (xoxb-...)");
        }
    } else if (*platform != NULL) {
        jv_only_keys(&v, body, "", messenger_keys);
        token = jv_string(&v, body, "page_token", "page_token", true, 1, TOKEN_MAX_CHARS);
    }
    if (v.failed) {
        api_problem(r, 422, "Invalid field", v.field, "%s %s", v.field, v.message);
        return NULL;
    }
    return token;
}

/* The parsed strings are wiped whether or not they passed validation; the raw
 * body is the http wrapper's buffer and ours to overwrite while the handler runs. */
void bots_wipe_token(struct api_req *r, json_t *body)
{
    api_wipe_secret_fields(body, false);
    sodium_memzero((char *)r->http->body, r->http->body_len);
}

void bots_request_end(struct api_req *r, json_t *body, Bcrm__V1__PlatformReply *reply,
                      PGresult *res)
{
    bots_wipe_token(r, body);
    if (reply != NULL) {
        protobuf_c_message_free_unpacked(&reply->base, NULL);
    }
    PQclear(res);
    json_decref(body);
}

void bots_create(struct api_req *r)
{
    const char *platform = NULL, *token = NULL;
    char bot_id[API_UUID_LEN] = "", err[256];
    PGresult *res = NULL;
    Bcrm__V1__PlatformReply *reply = NULL;
    json_t *body = api_body_object(r);
    if (body == NULL) {
        bots_wipe_token(r, NULL);
        return;
    }
    token = read_token(r, body, &platform);
    if (token == NULL) {
        goto out;
    }
    if (r->api->vault == NULL) {
        api_problem(r, 503, "Service Unavailable", NULL,
                    "this api has no identity key (BCRM_IDENTITY_KEY_FILE) to reach the vault");
        goto out;
    }
    /* 1. The row, committed, so a crash later leaves a visible 'verifying' bot. */
    if (bots_insert_verifying(r, r->org_id, platform, bot_id) != 0) {
        goto out;
    }

    /* 2. The token goes to the vault and is forgotten here. */
    int code = vault_store_token(r->api->vault, r->org_id, bot_id, platform_enum_of(platform),
                                 (const uint8_t *)token, strlen(token), err, sizeof(err));
    bots_wipe_token(r, body);
    token = NULL;
    if (code != 0) {
        log_error("vault refused to store a token", "{s:s, s:i, s:s}", "bot_id", bot_id, "code",
                  code, "error", err);
        bots_undo_connect(r, r->org_id, bot_id, true);
        api_problem(r, 503, "Service Unavailable", NULL, "the vault could not store the token");
        goto out;
    }

    /* 3. A sender checks the token with the platform. */
    if (bots_verify(r, r->org_id, platform, bot_id, &reply) != 0) {
        bots_undo_connect(r, r->org_id, bot_id, true);
        goto out;
    }
    if (reply->status != BCRM__V1__QUERY_STATUS__QUERY_OK) {
        log_info("bot verification refused", "{s:s, s:s, s:s}", "bot_id", bot_id, "platform",
                 platform, "error", reply->error ? reply->error : "");
        bots_undo_connect(r, r->org_id, bot_id, true);
        platform_answer_failure(r, platform, reply, true);
        goto out;
    }

    /* 4. Active, with the identity the platform reported. */
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        bots_undo_connect(r, r->org_id, bot_id, true);
        goto out;
    }
    res = bots_activate(conn, bot_id, reply->identity);
    if (res == NULL || PQntuples(res) != 1) {
        bots_undo_connect(r, r->org_id, bot_id, true);
        api_internal_error(r);
        goto out;
    }
    log_info("bot connected", "{s:s, s:s, s:s}", "org_id", r->org_id, "bot_id", bot_id, "platform",
             platform);
    api_json(r, 201, bots_json(res, 0));
out:
    bots_request_end(r, body, reply, res);
}

void bots_list(struct api_req *r)
{
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return;
    }
    const char *p[] = {r->org_id};
    PGresult *res = db_query(conn, "list bots",
                             "SELECT " BOT_COLUMNS " FROM bots WHERE org_id = $1"
                             " AND status <> 'deleted' ORDER BY created_at DESC, id DESC",
                             1, p);
    if (res == NULL) {
        api_internal_error(r);
        return;
    }
    json_t *bots = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        json_array_append_new(bots, bots_json(res, i));
    }
    PQclear(res);
    api_json(r, 200, json_pack("{s:o}", "bots", bots));
}

PGresult *bots_find(struct api_req *r)
{
    const char *id = api_param(r, "bot");
    if (!api_is_uuid(id)) {
        api_problem(r, 404, "Not Found", NULL, "no bot %s in this org", id);
        return NULL;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return NULL;
    }
    const char *p[] = {r->org_id, id};
    PGresult *res = db_query(conn, "find bot",
                             "SELECT " BOT_COLUMNS " FROM bots WHERE org_id = $1 AND id = $2"
                             " AND status <> 'deleted'",
                             2, p);
    if (res == NULL) {
        api_internal_error(r);
        return NULL;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        api_problem(r, 404, "Not Found", NULL, "no bot %s in this org", id);
        return NULL;
    }
    return res;
}

void bots_get(struct api_req *r)
{
    PGresult *res = bots_find(r);
    if (res != NULL) {
        api_json(r, 200, bots_json(res, 0));
        PQclear(res);
    }
}

void bots_delete(struct api_req *r)
{
    char err[256], bot_id[API_UUID_LEN];
    PGresult *res = bots_find(r);
    if (res == NULL) {
        return;
    }
    snprintf(bot_id, sizeof(bot_id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (r->api->vault == NULL) {
        api_problem(r, 503, "Service Unavailable", NULL,
                    "this api has no identity key (BCRM_IDENTITY_KEY_FILE) to reach the vault");
        return;
    }
    api_db_release(r);
    /* The token goes first: a bot row without a token is harmless, the reverse is not. */
    int code = vault_destroy_token(r->api->vault, r->org_id, bot_id, err, sizeof(err));
    if (code != 0 && code != BCRM__V1__VAULT_CODE__VAULT_NOT_FOUND) {
        log_error("vault could not destroy a token", "{s:s, s:i, s:s}", "bot_id", bot_id, "code",
                  code, "error", err);
        api_problem(r, 503, "Service Unavailable", NULL,
                    "the vault could not destroy the token; nothing was changed");
        return;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return;
    }
    /* The row stays (campaigns refer to it) marked deleted; its open campaigns end. */
    const char *p[] = {bot_id};
    if (db_begin(conn) != 0 ||
        db_exec(conn, "delete bot",
                "UPDATE bots SET status = 'deleted', updated_at = now() WHERE id = $1", 1,
                p) != 0 ||
        db_exec(conn, "cancel deliveries of bot",
                "UPDATE deliveries SET status = 'cancelled', updated_at = now()"
                " WHERE status = 'pending' AND campaign_id IN (SELECT id FROM campaigns"
                " WHERE bot_id = $1 AND status IN ('draft', 'scheduled', 'running', 'paused'))",
                1, p) != 0 ||
        db_exec(conn, "cancel campaigns of bot",
                "UPDATE campaigns SET status = 'cancelled', completed_at = now(),"
                " updated_at = now() WHERE bot_id = $1"
                " AND status IN ('draft', 'scheduled', 'running', 'paused')",
                1, p) != 0 ||
        db_commit(conn) != 0) {
        db_rollback(conn);
        api_internal_error(r);
        return;
    }
    log_info("bot deleted", "{s:s, s:s}", "org_id", r->org_id, "bot_id", bot_id);
    api_no_content(r);
}

static json_t *channel_json(const Bcrm__V1__PlatformChannel *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(c->id));
    json_object_set_new(o, "name", c->name ? json_string(c->name) : json_null());
    json_object_set_new(o, "is_private", json_boolean(c->has_is_private && c->is_private));
    json_object_set_new(o, "is_archived", json_boolean(c->has_is_archived && c->is_archived));
    json_object_set_new(o, "num_members",
                        c->has_num_members ? json_integer(c->num_members) : json_null());
    return o;
}

/* GET .../users and .../channels: one page, read live through a sender. */
static void list_live(struct api_req *r, bool users)
{
    int limit;
    char bot_id[API_UUID_LEN], platform[16], status[16];
    if (!api_query_limit(r, 200, 1000, &limit)) {
        return;
    }
    const char *cursor = http_query(r->http, "cursor");
    if (cursor != NULL && strlen(cursor) > 1024) {
        api_problem(r, 422, "Invalid parameter", "cursor", "cursor is too long");
        return;
    }
    PGresult *res = bots_find(r);
    if (res == NULL) {
        return;
    }
    snprintf(bot_id, sizeof(bot_id), "%s", PQgetvalue(res, 0, 0));
    snprintf(platform, sizeof(platform), "%s", PQgetvalue(res, 0, 1));
    snprintf(status, sizeof(status), "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    if (strcmp(status, "active") != 0) {
        api_problem(r, 409, "Conflict", NULL, "the bot is %s; reconnect it with a valid token",
                    status);
        return;
    }
    if (!users && strcmp(platform, "slack") != 0) {
        api_problem(r, 422, "Unprocessable Content", NULL, "%s bots have no channels", platform);
        return;
    }
    api_db_release(r);

    char request_id[33];
    Bcrm__V1__PlatformQuery q;
    platform_query_init(&q, request_id, r->org_id, bot_id);
    Bcrm__V1__ListUsers list_users = BCRM__V1__LIST_USERS__INIT;
    Bcrm__V1__ListChannels list_channels = BCRM__V1__LIST_CHANNELS__INIT;
    if (users) {
        list_users.cursor = cursor && cursor[0] ? (char *)cursor : NULL;
        list_users.has_limit = true;
        list_users.limit = limit;
        q.query_case = BCRM__V1__PLATFORM_QUERY__QUERY_LIST_USERS;
        q.list_users = &list_users;
    } else {
        list_channels.cursor = cursor && cursor[0] ? (char *)cursor : NULL;
        list_channels.has_limit = true;
        list_channels.limit = limit;
        q.query_case = BCRM__V1__PLATFORM_QUERY__QUERY_LIST_CHANNELS;
        q.list_channels = &list_channels;
    }
    Bcrm__V1__PlatformReply *reply = NULL;
    if (platform_call(r, platform, &q, &reply) != 0) {
        return;
    }
    if (reply->status != BCRM__V1__QUERY_STATUS__QUERY_OK) {
        platform_answer_read_failure(r, platform, bot_id, reply);
        protobuf_c_message_free_unpacked(&reply->base, NULL);
        return;
    }
    json_t *items = json_array();
    if (users) {
        for (size_t i = 0; i < reply->n_users; i++) {
            json_array_append_new(items, platform_user_json(reply->users[i]));
        }
    } else {
        for (size_t i = 0; i < reply->n_channels; i++) {
            json_array_append_new(items, channel_json(reply->channels[i]));
        }
    }
    json_t *next =
        reply->next_cursor && reply->next_cursor[0] ? json_string(reply->next_cursor) : json_null();
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    api_json(r, 200,
             json_pack("{s:o, s:o}", users ? "users" : "channels", items, "next_cursor", next));
}

void bots_users(struct api_req *r)
{
    list_live(r, true);
}

void bots_channels(struct api_req *r)
{
    list_live(r, false);
}
