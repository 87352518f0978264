/* token_staging.h: where a bot's replacement token waits while it is verified.
 *
 * Reconnecting a bot (POST /v1/orgs/{org}/bots/{bot}/token) must not touch the
 * bot's token until the new one has been checked with the platform. So the api
 * stores the new token under the bot's staging id, a sender verifies it there
 * like any bot's token, and the vault's PromoteToken then moves it to the bot
 * (docs/vault.md, "Staged tokens"). The staging id is derived from the bot id, so
 * the vault can tell that a staged token belongs to that bot and no other, a bot
 * has at most one staged token (a reconnect that died leaves nothing that grows),
 * and destroying the bot's token destroys the staged one too.
 */
#ifndef BCRM_TOKEN_STAGING_H
#define BCRM_TOKEN_STAGING_H

#define TOKEN_STAGING_ID_LEN 36

/* The staging id of bot_id (a UUID in any case): a version 8 UUID, in lower case,
 * from BLAKE2b of a label and the lower-case bot id; it never equals a bot id made
 * by gen_random_uuid() (version 4). 0, or -1 when bot_id is not a UUID. */
int token_staging_id(const char *bot_id, char out[TOKEN_STAGING_ID_LEN + 1]);

#endif
