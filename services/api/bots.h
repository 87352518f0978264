/* bots.h: what the bot handlers share (bots.c: connect, list, get, delete, live
 * reads; bots_reconnect.c: a new token for an existing bot). */
#ifndef BCRM_API_BOTS_H
#define BCRM_API_BOTS_H

#include "api.h"
#include "bcrm/v1/query.pb-c.h"

#include <stdbool.h>

/* The columns of a bot as the API shows it, in the order bots_json() reads them:
 * id, platform, status, name, team_id, app_id, bot_user_id, page_id, scopes,
 * created_at, updated_at. */
#define BOT_COLUMNS                                                                                \
    "id, platform, status, name, team_id, app_id, bot_user_id, page_id, scopes, " API_TS(          \
        "created_at") ", " API_TS("updated_at")

/* Result columns of BOT_COLUMNS, for PQgetvalue. */
enum bot_column {
    BOT_ID,
    BOT_PLATFORM,
    BOT_STATUS,
    BOT_NAME,
    BOT_TEAM_ID,
    BOT_APP_ID,
    BOT_BOT_USER_ID,
    BOT_PAGE_ID,
    BOT_SCOPES,
};

/* Row row of res (BOT_COLUMNS) as JSON. New reference. */
json_t *bots_json(const PGresult *res, int row);

/* The bot of the path ({bot}) in the caller's org, not deleted, as a result row
 * of BOT_COLUMNS (PQclear it), or NULL after answering 404 (or 503/500). */
PGresult *bots_find(struct api_req *r);

/* Wipes every copy of a token this request holds: the parsed strings of body
 * ("token", "page_token"; body may be NULL) and the raw request body. */
void bots_wipe_token(struct api_req *r, json_t *body);

/* The end of a connect or reconnect handler: wipes the token (bots_wipe_token),
 * then frees what it held: the sender's reply, a result and the body (each may
 * be NULL). */
void bots_request_end(struct api_req *r, json_t *body, Bcrm__V1__PlatformReply *reply,
                      PGresult *res);

/* The steps that connect a bot, shared by POST .../bots (bots.c), the Slack OAuth
 * install (oauth_slack.c) and, for verifying, a reconnect (bots_reconnect.c). */

/* The bot's row, 'verifying' and committed, so that a crash later leaves a visible
 * 'verifying' bot; then the database connection is given back, since slow calls
 * follow. 0 with bot_id filled, or -1 after answering 503 or 500. */
int bots_insert_verifying(struct api_req *r, const char *org_id, const char *platform,
                          char bot_id[API_UUID_LEN]);

/* Asks a sender of platform to verify the token the vault holds under bot_id (a
 * bot's id, or its staging id while it is reconnected) in org_id: auth.test or
 * GET /me. As platform_call: 0 with *reply set whatever its status (free it with
 * protobuf_c_message_free_unpacked), or -1 after answering 503. */
int bots_verify(struct api_req *r, const char *org_id, const char *platform, const char *bot_id,
                Bcrm__V1__PlatformReply **reply);

/* The parameters of a bot row's update from the identity the platform reported:
 * $1 the bot's id, then $2 name, $3 team_id, $4 app_id, $5 bot_user_id, $6 page_id
 * and $7 scopes (NULL where the platform reported none, or all when id is NULL).
 * The strings are borrowed from bot_id and id. */
#define BOT_IDENTITY_NPARAMS 7
void bots_identity_params(const char *bot_id, const Bcrm__V1__BotIdentity *id,
                          const char *p[BOT_IDENTITY_NPARAMS]);

/* Makes a new bot's row active with the identity the platform reported (id may be
 * NULL: the fields stay NULL). The row as BOT_COLUMNS (PQclear it; no row when the
 * bot is gone), or NULL on a database error. */
PGresult *bots_activate(PGconn *conn, const char *bot_id, const Bcrm__V1__BotIdentity *id);

/* Removes a bot that failed to connect: its vault entry when the vault may hold
 * one (stored), and its row. Logs what it cannot undo; answers nothing, unless the
 * database cannot be reached (503). */
void bots_undo_connect(struct api_req *r, const char *org_id, const char *bot_id, bool stored);

/* The longest token the api passes on (the vault stores at most 4096 bytes). */
#define TOKEN_MAX_CHARS 4096

#endif
