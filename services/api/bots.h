/* bots.h: what the bot handlers share (bots.c: connect, list, get, delete, live
 * reads; bots_reconnect.c: a new token for an existing bot). */
#ifndef BCRM_API_BOTS_H
#define BCRM_API_BOTS_H

#include "api.h"

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

/* The longest token the api passes on (the vault stores at most 4096 bytes). */
#define TOKEN_MAX_CHARS 4096

#endif
