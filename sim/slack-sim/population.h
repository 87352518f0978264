/* population.h: the simulated workspaces, their users and channels.
 *
 * Everything here is generated once at start-up from SLACK_SIM_SEED and is then
 * read-only (apart from the atomics), so request threads read it without locks.
 * Every generated person carries a marker: an 8-character token that appears in
 * their name, real_name, display_name, last_name and email, so a test can prove
 * that none of their profile data was stored anywhere.
 */
#ifndef SIM_POPULATION_H
#define SIM_POPULATION_H

#include "zones.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sim_workspace;

#define SIM_ID_LEN 16 /* room for a prefix letter, 10 characters and the NUL */

enum sim_user_kind {
    SIM_USER_PERSON,
    SIM_USER_BOT,      /* another app's bot user: is_bot */
    SIM_USER_SLACKBOT, /* USLACKBOT: famously is_bot false */
    SIM_USER_APP_BOT,  /* the bot user of the token's own app */
};

struct sim_user {
    char id[SIM_ID_LEN];
    char dm_id[SIM_ID_LEN]; /* the app's direct-message channel with this user */
    char bot_id[SIM_ID_LEN];
    char marker[12]; /* "" for Slackbot and the app's bot */
    struct sim_workspace *ws;
    uint32_t index; /* position in ws->users, the users.list order */
    enum sim_user_kind kind;
    char *name;
    char *real_name;
    char *first_name;
    char *last_name;
    char *display_name;
    char *email;                 /* NULL for bots */
    const struct sim_zone *zone; /* NULL: no zone */
    bool tz_null;                /* without a zone: "tz":null when set, tz omitted when not */
    bool deleted;
    bool is_admin;
    bool is_owner;
    bool is_primary_owner;
    bool is_restricted;
    int64_t updated;
    uint64_t look_hash; /* colour and avatar */
    /* The users.list object without its tz fields and closing brace, which are
     * appended per request because the offset follows daylight-saving time. */
    char *json_head;
    size_t json_head_len;
    /* Where the profile's ",\"email\":..." sits in json_head (length 0 when the
     * user has none), to leave it out for a token without users:read.email. */
    size_t email_at;
    size_t email_len;
    atomic_bool dm_open; /* conversations.open seen since the last reset */
    /* Not in the workspace right now (POST /_sim/membership): users.list leaves the user
     * out, so a test can make people join and leave between two reads. */
    atomic_bool away;
};

struct sim_channel {
    char id[SIM_ID_LEN];
    char *name;
    bool is_private;
    bool is_archived;
    bool is_general;
    bool bot_member;
    int64_t created;
    const struct sim_user *creator;
    uint32_t *members; /* indexes into ws->users, in order */
    size_t member_count;
};

struct sim_workspace {
    uint32_t index;
    char team_id[SIM_ID_LEN];
    char app_id[SIM_ID_LEN];
    char *name;
    char *domain;
    char *token; /* xoxb-... */
    struct sim_user *bot_user;
    struct sim_user *users; /* Slackbot, the generated users, then the app's bot */
    size_t user_count;
    struct sim_channel *channels;
    size_t channel_count;
    struct strmap *user_by_id;
    struct strmap *user_by_dm;
    struct strmap *channel_by_id;
    atomic_bool revoked;
    atomic_int revoked_as; /* enum sim_revocation: how a revoked token is answered */
    /* The bot token's granted scopes, a set of enum sim_scope bits (scopes.h):
     * set at start-up, changed by /_sim/scopes and by OAuth installs. */
    atomic_uint_fast64_t scopes;
};

/* How Slack answers a token that stopped working: revoked by the user or an
 * admin (token_revoked), gone without a trace (invalid_auth, as after an app is
 * uninstalled and its tokens are deleted), or its owner deactivated
 * (account_inactive). */
enum sim_revocation {
    SIM_REVOKED_TOKEN_REVOKED,
    SIM_REVOKED_INVALID_AUTH,
    SIM_REVOKED_ACCOUNT_INACTIVE,
    SIM_REVOCATION_COUNT
};

struct sim_population {
    struct sim_workspace *workspaces;
    size_t workspace_count;
    struct strmap *workspace_by_token;
    struct strmap *workspace_by_team;
};

/* Builds the population. Returns NULL (after logging why) when out of memory.
 * Free with population_free(). zones_init() must have run. */
struct sim_population *population_build(uint64_t seed, size_t workspaces, size_t users);
void population_free(struct sim_population *pop);

const struct sim_user *population_user(const struct sim_workspace *ws, const char *user_id);
const struct sim_user *population_user_by_dm(const struct sim_workspace *ws, const char *dm_id);
const struct sim_channel *population_channel(const struct sim_workspace *ws, const char *id);
bool population_user_is_bot(const struct sim_user *u);
/* The error code a revoked workspace's token gets (a literal). */
const char *population_revocation_error(const struct sim_workspace *ws);
/* The enum sim_revocation for an error code, or -1. */
int population_revocation_parse(const char *error);

#endif
