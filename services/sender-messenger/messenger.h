/* messenger.h: the Messenger platform module of the sender (shared by its files
 * and the unit tests; the rest of bcrm sees only messenger_platform). */
#ifndef BCRM_MESSENGER_H
#define BCRM_MESSENGER_H

#include "bcrm/worker.h"
#include "bcrm/worker_profile.h"

#include <jansson.h>

extern const struct worker_platform messenger_platform;

struct messenger_state {
    char *graph_url;                /* BCRM_GRAPH_API_URL without a trailing '/' */
    struct profile_cache *profiles; /* send loop only */
};

enum messenger_step {
    MESSENGER_STEP_START = 0,
    MESSENGER_STEP_PROFILE, /* GET /<PSID>?fields=first_name,last_name */
    MESSENGER_STEP_POST,    /* POST /me/messages */
};

/* Messenger's 24 h rule: outside it, only a tagged message may go. */
#define MESSENGER_WINDOW_MS (24LL * 3600 * 1000)
/* HUMAN_AGENT-tagged messages may go up to 7 days after the person wrote. */
#define MESSENGER_HUMAN_AGENT_WINDOW_MS (7LL * 24 * 3600 * 1000)
#define MESSENGER_MAX_TEXT_CHARS 2000

/* One Graph API error: code, and subcode (0 matches any). */
struct messenger_rule {
    int code;
    int subcode;
    const char *name; /* reported as the result's error */
    Bcrm__V1__Outcome outcome;
    unsigned flags; /* WORKER_RULE_* */
};

extern const struct messenger_rule messenger_rules[];
extern const size_t messenger_rule_count;

/* The most specific rule for (code, subcode), or NULL. */
const struct messenger_rule *messenger_rule_find(int code, int subcode);

/* The Graph error in an answer body: returns true and fills code and subcode when
 * the body holds {"error":{"code":...}}. */
bool messenger_error(const json_t *body, int *code, int *subcode);

/* Builds {graph_url}/{path}?{params}&access_token=... as a GET (body NULL) or a
 * JSON POST (body borrowed). params: a form string or NULL. 0 or -1. */
int messenger_request(const struct messenger_state *s, const char *path, const char *params,
                      const char *token, const json_t *body, struct worker_request *req);

void messenger_classify_post(const struct worker_response *resp, struct worker_outcome *out);

bool messenger_precheck(void *state, const Bcrm__V1__SendJob *job, int64_t now_wall_ms,
                        struct worker_outcome *out);
enum worker_next messenger_build_send(void *state, struct worker_send *send, const char *token,
                                      struct worker_request *req, struct worker_outcome *out);
enum worker_next messenger_classify_send(void *state, struct worker_send *send,
                                         const struct worker_response *resp,
                                         struct worker_outcome *out);
void messenger_query(void *state, CURL *easy, const char *token,
                     const Bcrm__V1__PlatformQuery *query, Bcrm__V1__PlatformReply *reply);

#endif
