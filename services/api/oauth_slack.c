/* oauth_slack.c: installing a Slack bot with OAuth v2 (spec/api.md, "Bots").
 *
 * GET /v1/orgs/{org}/oauth/slack/start sends a logged-in person to Slack's
 * authorize page with a fresh random state. The state is stored as its SHA-256
 * only, bound to the org and to the session that began the install, single use,
 * and expires after ten minutes. GET /v1/oauth/slack/callback takes the state back
 * (consuming it) and checks that it is known, fresh, and comes back in the same
 * session: a state from another session is a forged or stolen link.
 *
 * Exchanging the code (oauth.v2.access) is not done here: only the senders speak to
 * the platforms, and the client secret is the sender's configuration. sender-slack
 * exchanges the code and returns the token sealed to the vault's public key, which
 * this process forwards to the vault (StoreSealedToken) without being able to read
 * it (docs/architecture.md, "Slack OAuth install"). The bot row is 'verifying' until
 * the vault holds the token; any failure removes the row and the vault entry.
 */
#include "api.h"

#include "auth.h"
#include "bots.h"
#include "platform.h"

#include "bcrm/db.h"
#include "bcrm/log.h"
#include "bcrm/vault_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OAUTH_STATE_TTL "10 minutes"
#define OAUTH_SLACK_SCOPES                                                                         \
    "chat:write,users:read,users:read.email,channels:read,groups:read,im:write"
#define OAUTH_CALLBACK_PATH "/v1/oauth/slack/callback"
#define OAUTH_URL_MAX 4096

/* Appends text percent-encoded (everything but RFC 3986's unreserved characters)
 * to out, which holds cap bytes. false when it does not fit. */
static bool url_append_encoded(char *out, size_t cap, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t used = strlen(out);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        size_t need = plain ? 1 : 3;
        if (used + need + 1 > cap) {
            return false;
        }
        if (plain) {
            out[used++] = (char)*p;
        } else {
            out[used++] = '%';
            out[used++] = hex[*p >> 4];
            out[used++] = hex[*p & 15];
        }
    }
    out[used] = '\0';
    return true;
}

static bool url_append(char *out, size_t cap, const char *text)
{
    size_t used = strlen(out), len = strlen(text);
    if (used + len + 1 > cap) {
        return false;
    }
    memcpy(out + used, text, len + 1);
    return true;
}

/* The authorize URL with every parameter; false when it does not fit. */
static bool authorize_url(const struct api_ctx *api, const char *state, char *out, size_t cap)
{
    char redirect[1024];
    snprintf(redirect, sizeof(redirect), "%s%s", api->public_url, OAUTH_CALLBACK_PATH);
    out[0] = '\0';
    return url_append(out, cap, api->slack_authorize_url) &&
           url_append(out, cap, strchr(api->slack_authorize_url, '?') ? "&" : "?") &&
           url_append(out, cap, "client_id=") &&
           url_append_encoded(out, cap, api->slack_client_id) && url_append(out, cap, "&scope=") &&
           url_append_encoded(out, cap, OAUTH_SLACK_SCOPES) &&
           url_append(out, cap, "&redirect_uri=") && url_append_encoded(out, cap, redirect) &&
           url_append(out, cap, "&state=") && url_append_encoded(out, cap, state);
}

void oauth_slack_start(struct api_req *r)
{
    char state[AUTH_SECRET_CHARS + 1], state_hash[68], session_hash[68], url[OAUTH_URL_MAX];
    if (r->auth != AUTH_SESSION) {
        api_problem(r, 403, "Forbidden", NULL,
                    "installing a Slack app is a browser flow: start it logged in (session "
                    "cookie), not with an API key");
        return;
    }
    if (r->api->slack_client_id == NULL) {
        api_problem(r, 503, "Service Unavailable", NULL,
                    "Slack OAuth is not configured (BCRM_SLACK_CLIENT_ID)");
        return;
    }
    auth_new_secret(state);
    auth_hash_param(state, state_hash);
    snprintf(session_hash, sizeof(session_hash), "\\x%s", r->session_hash_hex);
    if (!authorize_url(r->api, state, url, sizeof(url))) {
        api_problem(r, 500, "Internal Server Error", NULL,
                    "the Slack authorize URL is longer than %d bytes; check "
                    "BCRM_SLACK_OAUTH_AUTHORIZE_URL and BCRM_PUBLIC_URL",
                    OAUTH_URL_MAX);
        return;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return;
    }
    /* Expired states of anyone are swept here: the table stays as small as the
     * number of installs begun in the last ten minutes. */
    const char *p[] = {state_hash, r->org_id, session_hash, r->account_id};
    if (db_exec(conn, "sweep oauth states", "DELETE FROM oauth_states WHERE expires_at < now()", 0,
                NULL) != 0 ||
        db_exec(conn, "insert oauth state",
                "INSERT INTO oauth_states (state_hash, org_id, session_hash, account_id,"
                " expires_at) VALUES ($1, $2, $3, $4, now() + interval '" OAUTH_STATE_TTL "')",
                4, p) != 0) {
        api_internal_error(r);
        return;
    }
    log_info("slack install started", "{s:s, s:s}", "org_id", r->org_id, "account_id",
             r->account_id);
    api_json(r, 302, json_pack("{s:s}", "location", url));
    http_add_header(r->resp, "Location", url);
    http_add_header(r->resp, "Cache-Control", "no-store");
}

/* Consumes the state of the callback. 0 with org_id filled, or -1 after answering. */
static int consume_state(struct api_req *r, const char *state, char org_id[API_UUID_LEN])
{
    char state_hash[68], session_hash[68];
    auth_hash_param(state, state_hash);
    snprintf(session_hash, sizeof(session_hash), "\\x%s", r->session_hash_hex);
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return -1;
    }
    /* Deleted whatever the outcome: a state is good for one try only. */
    const char *p[] = {state_hash, session_hash};
    PGresult *res = db_query(conn, "consume oauth state",
                             "DELETE FROM oauth_states WHERE state_hash = $1"
                             " RETURNING org_id, session_hash = $2, expires_at > now()",
                             2, p);
    if (res == NULL) {
        api_internal_error(r);
        return -1;
    }
    int rv = -1;
    if (PQntuples(res) != 1) {
        api_problem(r, 400, "Bad Request", "state",
                    "state is unknown or was already used; start the install again");
    } else if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
        log_warn("oauth state from another session", "{s:s}", "org_id", PQgetvalue(res, 0, 0));
        api_problem(r, 403, "Forbidden", "state",
                    "state was issued to another session; start the install again");
    } else if (strcmp(PQgetvalue(res, 0, 2), "t") != 0) {
        api_problem(r, 400, "Bad Request", "state",
                    "state has expired (10 minutes); start the install again");
    } else {
        snprintf(org_id, API_UUID_LEN, "%s", PQgetvalue(res, 0, 0));
        rv = 0;
    }
    PQclear(res);
    return rv;
}

/* Steps 3 and 4 of the install: the bot row, the code exchanged by sender-slack,
 * the sealed token to the vault, the bot active. Answers in every case. */
static void oauth_slack_install(struct api_req *r, const char *org_id, const char *code)
{
    char bot_id[API_UUID_LEN] = "", err[256], redirect[1024], request_id[33];
    Bcrm__V1__PlatformReply *reply = NULL;
    PGresult *res = NULL;
    bool stored = false;
    if (r->api->vault == NULL) {
        api_problem(r, 503, "Service Unavailable", NULL,
                    "this api has no identity key (BCRM_IDENTITY_KEY_FILE) to reach the vault");
        return;
    }
    if (bots_insert_verifying(r, org_id, "slack", bot_id) != 0) {
        return;
    }

    /* The exchange: only sender-slack knows the client secret. */
    snprintf(redirect, sizeof(redirect), "%s%s", r->api->public_url, OAUTH_CALLBACK_PATH);
    Bcrm__V1__ExchangeOAuthCode exchange = BCRM__V1__EXCHANGE_OAUTH_CODE__INIT;
    exchange.code = (char *)code;
    exchange.redirect_uri = redirect;
    Bcrm__V1__PlatformQuery q;
    platform_query_init(&q, request_id, org_id, bot_id);
    q.query_case = BCRM__V1__PLATFORM_QUERY__QUERY_EXCHANGE_OAUTH_CODE;
    q.exchange_oauth_code = &exchange;
    if (platform_call(r, "slack", &q, &reply) != 0) {
        goto fail;
    }
    if (reply->status != BCRM__V1__QUERY_STATUS__QUERY_OK || !reply->has_sealed_token) {
        log_info("slack install refused", "{s:s, s:s}", "bot_id", bot_id, "error",
                 reply->error ? reply->error : "no sealed token");
        platform_answer_failure(r, "slack", reply, true);
        goto fail;
    }
    /* The seal goes to the vault as is: this process cannot open it. */
    int vcode = vault_store_sealed_token(
        r->api->vault, org_id, bot_id, BCRM__V1__PLATFORM__PLATFORM_SLACK, reply->sealed_token.data,
        reply->sealed_token.len, err, sizeof(err));
    if (vcode != 0) {
        log_error("vault refused a sealed token", "{s:s, s:i, s:s}", "bot_id", bot_id, "code",
                  vcode, "error", err);
        api_problem(r, 503, "Service Unavailable", NULL, "the vault could not store the token");
        goto fail;
    }
    stored = true;
    const Bcrm__V1__BotIdentity *id = reply->identity;
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        goto fail;
    }
    res = bots_activate(conn, bot_id, id);
    if (res == NULL || PQntuples(res) != 1) {
        api_internal_error(r);
        goto fail;
    }
    log_info("slack bot installed", "{s:s, s:s}", "org_id", org_id, "bot_id", bot_id);
    /* Back to the dashboard, which shows the new bot. */
    char location[1200];
    snprintf(location, sizeof(location), "%s/?installed_bot=%s", r->api->public_url, bot_id);
    api_json(r, 302,
             json_pack("{s:s, s:s, s:s, s:s?}", "location", location, "bot_id", bot_id, "org_id",
                       org_id, "team_id", id ? id->team_id : NULL));
    http_add_header(r->resp, "Location", location);
    http_add_header(r->resp, "Cache-Control", "no-store");
    goto out;
fail:
    bots_undo_connect(r, org_id, bot_id, stored);
out:
    PQclear(res);
    if (reply != NULL) {
        protobuf_c_message_free_unpacked(&reply->base, NULL);
    }
}

void oauth_slack_callback(struct api_req *r)
{
    const char *state = http_query(r->http, "state");
    const char *code = http_query(r->http, "code");
    const char *error = http_query(r->http, "error");
    char org_id[API_UUID_LEN];
    enum api_role role;
    if (r->auth != AUTH_SESSION) {
        api_problem(r, 403, "Forbidden", NULL,
                    "the Slack install callback needs the session "
                    "that started it");
        return;
    }
    if (state == NULL || state[0] == '\0' || strlen(state) > 256) {
        api_problem(r, 400, "Bad Request", "state", "state is missing");
        return;
    }
    if (consume_state(r, state, org_id) != 0) {
        return;
    }
    /* The person may have lost the right to add bots since the install began. */
    if (auth_org_role(r, org_id, &role) != 0) {
        return;
    }
    if (role < ROLE_EDITOR) {
        api_problem(r, 403, "Forbidden", NULL, "adding a bot needs the editor role or higher");
        return;
    }
    if (error != NULL) {
        json_t *extra = json_pack("{s:s, s:s}", "org_id", org_id, "platform_error",
                                  strlen(error) < 64 ? error : "invalid");
        api_problem_ext(r, 400, "Install refused", extra, "Slack did not authorize the install");
        return;
    }
    if (code == NULL || code[0] == '\0') {
        api_problem(r, 400, "Bad Request", "code", "code is missing");
        return;
    }
    oauth_slack_install(r, org_id, code);
}
