/* slack.h: the Slack platform module of the sender (shared by its files and the
 * unit tests; the rest of bcrm sees only slack_platform). */
#ifndef BCRM_SLACK_H
#define BCRM_SLACK_H

#include "bcrm/worker.h"
#include "bcrm/worker_profile.h"

#include <jansson.h>

/* The module, for worker_main(). */
extern const struct worker_platform slack_platform;

struct slack_state {
    char *api_url;                  /* BCRM_SLACK_API_URL without a trailing '/' */
    struct profile_cache *profiles; /* send loop only */
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
    SLACK_STEP_POST,    /* chat.postMessage */
};

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
