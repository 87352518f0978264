/* scopes.h: the OAuth scopes a workspace's bot token was granted.
 *
 * Slack checks a token's scopes on every Web API call: a method the token lacks
 * the scope for answers missing_scope with the scope "needed" and the token's
 * scopes "provided", and every answer to a token names its scopes in the
 * X-OAuth-Scopes header (bcrm's sender reads them there on auth.test). The
 * simulator knows the bot scopes in the table of scopes.c, enough for what bcrm
 * and apps like it ask for; a set of them is a bit mask, so a workspace keeps
 * its grant in one atomic word that /_sim/scopes may change under running calls.
 */
#ifndef SIM_SCOPES_H
#define SIM_SCOPES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The scopes the methods check; the table in scopes.c has these first, then
 * others an app may hold. */
enum sim_scope {
    SCOPE_CHANNELS_READ,
    SCOPE_CHAT_WRITE,
    SCOPE_CHAT_WRITE_PUBLIC, /* post in public channels the bot is not in */
    SCOPE_GROUPS_READ,
    SCOPE_IM_READ,
    SCOPE_IM_WRITE,
    SCOPE_MPIM_READ,
    SCOPE_MPIM_WRITE,
    SCOPE_USERS_READ,
    SCOPE_USERS_READ_EMAIL, /* without it, profiles come without email */
};

#define SIM_SCOPE(s) ((uint64_t)1 << (s))

/* What a generated app was granted, unless SLACK_SIM_SCOPES says otherwise:
 * everything bcrm asks for and a little more. */
#define SIM_DEFAULT_SCOPES                                                                         \
    "chat:write,im:read,im:write,mpim:read,users:read,users:read.email,channels:read,groups:read"

const char *scope_name(enum sim_scope s);
/* Reads a list of scope names, separated by commas or spaces ("" is the empty
 * set). Returns 0, or -1 with err naming the first unknown scope. */
int scopes_parse(const char *list, uint64_t *out, char *err, size_t errlen);
/* The same from JSON: such a string, or an array of names. */
int scopes_from_json(const json_t *v, uint64_t *out, char *err, size_t errlen);
/* "a,b,c" in the table's order into out; "" for none. */
void scopes_format(uint64_t set, char *out, size_t outlen);
/* A new JSON array of the names. */
json_t *scopes_to_json(uint64_t set);
/* Every scope name the simulator knows, as a new JSON array. */
json_t *scopes_known_json(void);

#define SCOPES_TEXT_MAX 1024 /* room for every known scope, formatted */

#endif
