/* slack.h: the Slack platform module of the sender (shared by its files and the
 * unit tests; the rest of bcrm sees only slack_platform). */
#ifndef BCRM_SLACK_H
#define BCRM_SLACK_H

#include "bcrm/worker.h"
#include "bcrm/worker_cache.h"
#include "bcrm/worker_profile.h"

#include <jansson.h>

/* The module, for worker_main(). */
extern const struct worker_platform slack_platform;

struct slack_bot;

struct slack_state {
    char *api_url;                  /* BCRM_SLACK_API_URL without a trailing '/' */
    int64_t profile_ttl_ms;         /* BCRM_SENDER_PROFILE_TTL */
    struct profile_cache *profiles; /* send loop only, like everything below */
    /* (bot, user) -> the D... id of their direct-message channel, malloc'd. */
    struct worker_cache *dm_channels;
    struct slack_bot *bots; /* what the send loop knows of each bot (slack_bots.c) */
    /* OAuth (slack_oauth.c): BCRM_SLACK_CLIENT_ID and BCRM_SLACK_CLIENT_SECRET (the
     * secret in sodium_malloc'd memory), and the vault's key to seal tokens to. */
    bool oauth_configured;
    char *client_id;
    char *client_secret;
    uint8_t vault_public_key[32];
};

/* Steps of a send (worker_send.step). */
enum slack_step {
    SLACK_STEP_START = 0,
    SLACK_STEP_PROFILE, /* users.info for a personalised message */
    SLACK_STEP_FILL,    /* a users.list page that fills the profile cache */
    SLACK_STEP_POST,    /* chat.postMessage */
    SLACK_STEP_OPEN,    /* conversations.open, when Slack refused the user id */
};

/* A send's own state, kept in worker_send.scratch. */
struct slack_send_state {
    char dm_channel[32];    /* the D... id to post to; "" until known */
    bool posted_to_user_id; /* the post in flight went to the user id */
    bool user_id_refused;   /* Slack refused the user id: open the DM instead */
    bool counted_miss;      /* this send's profile miss is counted */
    bool own_lookup;        /* waited long enough: users.info for this one */
};
_Static_assert(sizeof(struct slack_send_state) <= WORKER_SEND_SCRATCH,
               "slack_send_state must fit worker_send.scratch");

static inline struct slack_send_state *slack_send_state(struct worker_send *send)
{
    return (struct slack_send_state *)send->scratch;
}

/* What the send loop keeps per bot (slack_bots.c): how many profiles it missed
 * lately, the users.list reading that fills the cache, and whether Slack refuses
 * posts to user ids for it. */
struct slack_bot {
    char *bot_id;
    int64_t last_used_ms;
    /* Profile misses in the current minute. */
    int64_t miss_window_ms;
    int misses;
    /* The fill: users.list pages read one after another into the profile cache. */
    bool filling;             /* between its first and last page */
    bool fetching;            /* a page request is in flight */
    char *cursor;             /* the next page's cursor; NULL for the first */
    int64_t fill_started_ms;  /* of the latest fill; 0 for none */
    int failures;             /* page requests in a row that got no answer */
    int64_t limited_until_ms; /* users.list answered 429: no page before then */
    double page_tokens;       /* users.list pages the bucket allows now */
    int64_t page_refill_ms;
    /* Slack refused to read profiles (missing_scope): defaults until then. */
    char profiles_error[WORKER_ERROR_MAX];
    int64_t profiles_error_until_ms;
    /* Slack refused posts to user ids: open the DM first until then. */
    int64_t open_dms_until_ms;
    struct slack_bot *next;
};

/* The bot's record, made on first use; NULL when out of memory. */
struct slack_bot *slack_bot_get(struct slack_state *s, const char *bot_id, int64_t now_ms);
/* The bot's record if there is one. */
struct slack_bot *slack_bot_find(struct slack_state *s, const char *bot_id);
/* Takes one users.list page from the bot's bucket; false when none is left. */
bool slack_bot_take_page(struct slack_bot *b, int64_t now_ms);
/* Frees the records of bots idle for long. */
void slack_bots_sweep(struct slack_state *s, int64_t now_ms);
void slack_bots_free(struct slack_state *s);

/* slack_profiles.c: the profile a personalised message needs. */
enum slack_profile_next {
    SLACK_PROFILE_READY, /* send->profile is filled (or defaults will do) */
    SLACK_PROFILE_REQUEST,
    SLACK_PROFILE_WAIT,
    SLACK_PROFILE_FINAL,
};
enum slack_profile_next slack_profile_step(struct slack_state *s, struct worker_send *send,
                                           const char *token, struct worker_request *req,
                                           struct worker_outcome *out);
/* Classifies the answer to users.info (SLACK_STEP_PROFILE) or a users.list page
 * (SLACK_STEP_FILL). */
enum worker_next slack_profile_classify(struct slack_state *s, struct worker_send *send,
                                        const struct worker_response *resp,
                                        struct worker_outcome *out);
/* The profile fields of a users.info user or a users.list member (borrowed). */
void slack_profile_from_member(const json_t *member, struct worker_profile *p);

/* slack_dm.c: direct messages. Returns true and fills req (or out) when the post
 * must wait for conversations.open; otherwise *channel is where to post. */
bool slack_dm_route(struct slack_state *s, struct worker_send *send, const char *token,
                    const char **channel, struct worker_request *req, struct worker_outcome *out,
                    enum worker_next *next);
/* After the post's answer: true when Slack refused the user id and the send goes
 * on with conversations.open (out untouched). */
bool slack_dm_refused(struct worker_send *send, const struct worker_outcome *post);
/* Classifies conversations.open's answer (SLACK_STEP_OPEN). */
enum worker_next slack_dm_classify_open(struct slack_state *s, struct worker_send *send,
                                        const struct worker_response *resp,
                                        struct worker_outcome *out);
void slack_tick(void *state, int64_t now_mono_ms);

/* Slack's error codes and what each means for a send (slack_rules.c). */
extern const struct worker_rule slack_send_rules[];
extern const size_t slack_send_rule_count;

/* Classifies the answer to chat.postMessage. */
void slack_classify_post(const struct worker_response *resp, struct worker_outcome *out);
/* Parses an answer body; returns a new reference to the object, or NULL when the
 * body is not a JSON object. */
json_t *slack_parse(const struct worker_response *resp);

/* Starts a POST to {api_url}/{method} with the bot's token. 0 or -1. */
int slack_request(const struct slack_state *s, const char *method, const char *token,
                  struct worker_request *req);
/* Sets a form body; takes ownership of form (NULL for an empty one). 0 or -1. */
int slack_request_form(struct worker_request *req, char *form);

/* User ids start with U (or W on Enterprise Grid); channel, group and DM ids do
 * not, and have no profile to read. */
bool slack_is_user_id(const char *id);

enum worker_next slack_build_send(void *state, struct worker_send *send, const char *token,
                                  struct worker_request *req, struct worker_outcome *out);
enum worker_next slack_classify_send(void *state, struct worker_send *send,
                                     const struct worker_response *resp,
                                     struct worker_outcome *out);
void slack_query(void *state, CURL *easy, const char *token, const Bcrm__V1__PlatformQuery *query,
                 Bcrm__V1__PlatformReply *reply);
bool slack_query_needs_token(const Bcrm__V1__PlatformQuery *query);
/* Performs a query's request (consumed): the body of an ok:true answer, or NULL
 * with reply's status saying why (slack_query.c). *captured, when not NULL, gets
 * a malloc'd copy of the header req->capture_header names. */
json_t *slack_query_perform(CURL *easy, struct worker_request *req, Bcrm__V1__PlatformReply *reply,
                            char **captured);
/* ExchangeOAuthCode: oauth.v2.access, the token sealed to the vault (slack_oauth.c). */
void slack_oauth_exchange(const struct slack_state *s, CURL *easy,
                          const Bcrm__V1__ExchangeOAuthCode *q, Bcrm__V1__PlatformReply *reply);

#endif
