/* bots_reconnect.c: POST /v1/orgs/{org}/bots/{bot}/token, a new token for a bot
 * the platform stopped taking (token_invalid) or one the owner wants to replace.
 *
 * The bot keeps its id, campaigns and history; only its token changes, and only
 * to a token of the same workspace and app (Slack: team_id, app_id when both are
 * known, bot_user_id) or the same page (Messenger: page_id). Nothing is written
 * before the new token has been verified, so a refusal leaves the bot, its row
 * and its token exactly as they were (docs/vault.md, "Staged tokens"):
 *
 *   1. the token goes to the vault under the bot's staging id (vault_stage_token)
 *      and is wiped here at once, as when a bot is connected;
 *   2. a sender verifies it there (VerifyBot for the staging id: auth.test or
 *      GET /me) and reports the identity, which must be the bot's;
 *   3. on a refusal or another identity the staged token is destroyed and the
 *      answer names the platform's error or the identity that differs;
 *   4. otherwise the vault promotes the staged token to the bot in one
 *      transaction (only the very copy stored in 1: a reconnect of the same bot
 *      that staged another token meanwhile makes this one 409), and then the row
 *      becomes active with the refreshed name and scopes.
 *
 * Campaigns the bot's token paused stay paused: the answer lists the bot's
 * paused campaigns, for the caller to resume (POST .../campaigns/{id}/resume).
 * The senders end their hold on the old token by themselves when they find the
 * new copy in the vault (common/worker/src/token_cache.c).
 */
#include "bots.h"

#include "bcrm/db.h"
#include "bcrm/log.h"
#include "bcrm/v1/query.pb-c.h"
#include "bcrm/vault_client.h"
#include "jsonv.h"
#include "platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the api knows about the bot before its token is replaced. */
struct bot_before {
    char id[API_UUID_LEN];
    char platform[16];
    char status[16];
    char team_id[64], app_id[64], bot_user_id[64], page_id[64]; /* "" when NULL */
};

static void copy_column(const PGresult *res, int col, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", PQgetisnull(res, 0, col) ? "" : PQgetvalue(res, 0, col));
}

/* The token of the body for a bot of platform, validated; NULL after answering
 * 422 naming the field. The caller wipes it. A body may repeat the bot's platform
 * (the connect body's shape), but not name another, nor carry the other
 * platform's field. */
static const char *read_token(struct api_req *r, json_t *body, const char *platform)
{
    static const char *const slack_keys[] = {"platform", "token", NULL};
    static const char *const messenger_keys[] = {"platform", "page_token", NULL};
    bool slack = strcmp(platform, "slack") == 0;
    const char *key = slack ? "token" : "page_token";
    const char *other = slack ? "page_token" : "token";
    struct jv v = {0};
    json_t *given = json_object_get(body, "platform");
    if (given != NULL && (!json_is_string(given) || strcmp(json_string_value(given), platform))) {
        jv_fail(&v, "platform", "must be %s, the bot's platform (a bot cannot change platform)",
                platform);
    } else if (json_object_get(body, other) != NULL) {
        jv_fail(&v, other, "is not a field of a %s bot: send its new token as %s", platform, key);
    } else {
        jv_only_keys(&v, body, "", slack ? slack_keys : messenger_keys);
    }
    const char *token = v.failed ? NULL : jv_string(&v, body, key, key, true, 1, TOKEN_MAX_CHARS);
    if (token != NULL && slack && strncmp(token, "xox", 3) != 0) {
        jv_fail(&v, "token", "is not a Slack token (xoxb-...)");
    }
    if (v.failed) {
        api_problem(r, 422, "Invalid field", v.field, "%s %s", v.field, v.message);
        return NULL;
    }
    return token;
}

/* Gives up the staged token (its staging id is destroyed); the bot's own token
 * was never touched. */
static void drop_staged(struct api_req *r, const char *staging_id)
{
    char err[256];
    if (vault_destroy_token(r->api->vault, r->org_id, staging_id, err, sizeof(err)) != 0) {
        /* Harmless: the next reconnect overwrites it, the bot's deletion destroys it. */
        log_warn("cannot destroy a staged token", "{s:s, s:s}", "staging_id", staging_id, "error",
                 err);
    }
}

/* The identity field of the new token that differs from the bot's, or NULL when
 * it is the bot's. A field the bot has no value for yet is not compared (it is
 * filled in); app_id is compared only when the platform reported it, since
 * auth.test does not, and a Slack bot's bot_user_id already tells its app. */
static const char *identity_mismatch(const struct bot_before *b, const Bcrm__V1__BotIdentity *id,
                                     const char **expected, const char **got)
{
    struct {
        const char *name, *have, *reported;
        bool reported_optional;
    } fields[] = {
        {"team_id", b->team_id, id ? id->team_id : NULL, false},
        {"app_id", b->app_id, id ? id->app_id : NULL, true},
        {"bot_user_id", b->bot_user_id, id ? id->bot_user_id : NULL, false},
        {"page_id", b->page_id, id ? id->page_id : NULL, false},
    };
    bool slack = strcmp(b->platform, "slack") == 0;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        bool applies =
            slack ? strcmp(fields[i].name, "page_id") != 0 : strcmp(fields[i].name, "page_id") == 0;
        const char *reported = fields[i].reported ? fields[i].reported : "";
        if (!applies || fields[i].have[0] == '\0' ||
            (fields[i].reported_optional && reported[0] == '\0')) {
            continue;
        }
        if (strcmp(fields[i].have, reported) != 0) {
            *expected = fields[i].have;
            *got = reported;
            return fields[i].name;
        }
    }
    return NULL;
}

static void answer_mismatch(struct api_req *r, const struct bot_before *b, const char *what,
                            const char *expected, const char *got)
{
    bool slack = strcmp(b->platform, "slack") == 0;
    const char *field = slack ? "token" : "page_token";
    const char *whose = strcmp(what, "team_id") == 0   ? "another workspace"
                        : strcmp(what, "page_id") == 0 ? "another page"
                                                       : "another app";
    json_t *extra = json_pack("{s:s, s:s, s:s, s:s}", "field", field, "mismatch", what, "expected",
                              expected, "got", got[0] ? got : "(none)");
    api_problem_ext(r, 409, slack ? "Token of another workspace or app" : "Token of another page",
                    extra,
                    "%s is the token of %s: its %s is %s, this bot's is %s; a reconnect keeps the "
                    "bot's %s (connect that token as a new bot instead)",
                    field, whose, what, got[0] ? got : "(none)", expected,
                    slack ? "workspace and app" : "page");
}

/* The bot's paused campaigns (ids, oldest first) as a JSON array, or NULL. */
static json_t *paused_campaigns(PGconn *conn, const char *bot_id)
{
    const char *p[] = {bot_id};
    PGresult *res = db_query(conn, "paused campaigns of bot",
                             "SELECT id FROM campaigns WHERE bot_id = $1 AND status = 'paused'"
                             " ORDER BY created_at, id",
                             1, p);
    if (res == NULL) {
        return NULL;
    }
    json_t *ids = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        json_array_append_new(ids, json_string(PQgetvalue(res, i, 0)));
    }
    PQclear(res);
    return ids;
}

/* Step 4's row update: active, with what the platform reports now. The row must
 * still be the bot's, active or token_invalid (not deleted meanwhile). */
static PGresult *activate(PGconn *conn, const struct bot_before *b, const Bcrm__V1__BotIdentity *id)
{
    const char *p[BOT_IDENTITY_NPARAMS];
    bots_identity_params(b->id, id, p);
    return db_query(conn, "activate reconnected bot",
                    "UPDATE bots SET status = 'active', name = coalesce($2, name),"
                    " scopes = coalesce($7, scopes), team_id = coalesce(team_id, $3),"
                    " app_id = coalesce(app_id, $4), bot_user_id = coalesce(bot_user_id, $5),"
                    " page_id = coalesce(page_id, $6), updated_at = now()"
                    " WHERE id = $1 AND status IN ('active', 'token_invalid')"
                    " RETURNING " BOT_COLUMNS,
                    BOT_IDENTITY_NPARAMS, p);
}

void bots_reconnect(struct api_req *r)
{
    struct bot_before b;
    char staging_id[API_UUID_LEN] = "", err[256];
    uint8_t staged_ref[VAULT_TOKEN_REF_BYTES];
    PGresult *res = NULL;
    Bcrm__V1__PlatformReply *reply = NULL;
    const char *token = NULL;
    json_t *body = api_body_object(r);
    if (body == NULL) {
        bots_wipe_token(r, NULL);
        return;
    }
    if ((res = bots_find(r)) == NULL) {
        goto out;
    }
    copy_column(res, BOT_ID, b.id, sizeof(b.id));
    copy_column(res, BOT_PLATFORM, b.platform, sizeof(b.platform));
    copy_column(res, BOT_STATUS, b.status, sizeof(b.status));
    copy_column(res, BOT_TEAM_ID, b.team_id, sizeof(b.team_id));
    copy_column(res, BOT_APP_ID, b.app_id, sizeof(b.app_id));
    copy_column(res, BOT_BOT_USER_ID, b.bot_user_id, sizeof(b.bot_user_id));
    copy_column(res, BOT_PAGE_ID, b.page_id, sizeof(b.page_id));
    PQclear(res);
    res = NULL;
    if ((token = read_token(r, body, b.platform)) == NULL) {
        goto out;
    }
    if (strcmp(b.status, "active") != 0 && strcmp(b.status, "token_invalid") != 0) {
        /* 'verifying': a connect is still under way (or died); deleting it is the fix. */
        api_problem_ext(r, 409, "Conflict", json_pack("{s:s}", "current_status", b.status),
                        "the bot is %s: only an active or token_invalid bot takes a new token",
                        b.status);
        goto out;
    }
    if (r->api->vault == NULL) {
        api_problem(r, 503, "Service Unavailable", NULL,
                    "this api has no identity key (BCRM_IDENTITY_KEY_FILE) to reach the vault");
        goto out;
    }
    api_db_release(r); /* slow calls follow */

    /* 1. Staged in the vault, and forgotten here. */
    int code = vault_stage_token(r->api->vault, r->org_id, b.id, platform_enum_of(b.platform),
                                 (const uint8_t *)token, strlen(token), staging_id, staged_ref, err,
                                 sizeof(err));
    bots_wipe_token(r, body);
    token = NULL;
    if (code != 0) {
        log_error("vault refused to stage a token", "{s:s, s:i, s:s}", "bot_id", b.id, "code", code,
                  "error", err);
        api_problem(r, 503, "Service Unavailable", NULL,
                    "the vault could not store the token; nothing was changed");
        goto out;
    }

    /* 2. A sender checks it where it waits. */
    if (bots_verify(r, r->org_id, b.platform, staging_id, &reply) != 0) {
        drop_staged(r, staging_id);
        goto out;
    }
    if (reply->status != BCRM__V1__QUERY_STATUS__QUERY_OK) {
        log_info("reconnect refused by the platform", "{s:s, s:s, s:s}", "bot_id", b.id, "platform",
                 b.platform, "error", reply->error ? reply->error : "");
        drop_staged(r, staging_id);
        platform_answer_failure(r, b.platform, reply, true);
        goto out;
    }

    /* 3. The same workspace and app, or the same page. */
    const Bcrm__V1__BotIdentity *id = reply->identity;
    const char *expected = NULL, *got = NULL;
    const char *mismatch = identity_mismatch(&b, id, &expected, &got);
    if (mismatch != NULL) {
        log_info("reconnect refused: token of another identity", "{s:s, s:s}", "bot_id", b.id,
                 "mismatch", mismatch);
        drop_staged(r, staging_id);
        answer_mismatch(r, &b, mismatch, expected, got);
        goto out;
    }

    /* 4. The token the sender verified becomes the bot's, then the row active. */
    code = vault_promote_token(r->api->vault, r->org_id, b.id, platform_enum_of(b.platform),
                               staged_ref, err, sizeof(err));
    if (code == BCRM__V1__VAULT_CODE__VAULT_NOT_FOUND) {
        /* Another reconnect staged its token after ours: the staged token is now
         * that one's, which this request never verified. */
        api_problem(r, 409, "Conflict", NULL,
                    "another reconnect of this bot replaced the token while it was verified; "
                    "nothing was changed by this one: try again");
        goto out;
    }
    if (code != 0) {
        log_error("vault could not promote a staged token", "{s:s, s:i, s:s}", "bot_id", b.id,
                  "code", code, "error", err);
        drop_staged(r, staging_id);
        api_problem(r, 503, "Service Unavailable", NULL,
                    "the vault could not replace the token; nothing was changed");
        goto out;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        /* The bot now holds a token the platform accepted; a retry finishes. */
        goto out;
    }
    res = activate(conn, &b, id);
    if (res == NULL) {
        api_internal_error(r);
        goto out;
    }
    if (PQntuples(res) != 1) {
        /* Deleted while it was reconnected: its token must not outlive it. */
        if (vault_destroy_token(r->api->vault, r->org_id, b.id, err, sizeof(err)) != 0) {
            log_error("cannot destroy the token of a bot deleted during its reconnect",
                      "{s:s, s:s}", "bot_id", b.id, "error", err);
        }
        api_problem(r, 404, "Not Found", NULL, "no bot %s in this org", b.id);
        goto out;
    }
    json_t *answer = bots_json(res, 0);
    json_t *paused = paused_campaigns(conn, b.id);
    if (paused == NULL) {
        json_decref(answer);
        api_internal_error(r);
        goto out;
    }
    json_object_set_new(answer, "paused_campaigns", paused);
    log_info("bot reconnected", "{s:s, s:s, s:s, s:s, s:I}", "org_id", r->org_id, "bot_id", b.id,
             "platform", b.platform, "was", b.status, "paused_campaigns",
             (json_int_t)json_array_size(paused));
    api_json(r, 200, answer);
out:
    bots_request_end(r, body, reply, res);
}
