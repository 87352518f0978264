/* api.h: one Web API call as the method handlers see it.
 *
 * api.c has done the common work before a handler runs: counted the call,
 * applied storms and injected errors, parsed the arguments, checked the token,
 * the method's scope (where it does not depend on the arguments) and its tier
 * limit, and named the token's scopes in X-OAuth-Scopes. The handler answers through the api_reply*
 * helpers, which always use HTTP 200 with {"ok":...} as Slack does, except
 * api_reply_ratelimited's 429.
 */
#ifndef SIM_API_H
#define SIM_API_H

#include "cursor.h"
#include "faults.h"
#include "params.h"
#include "scopes.h"
#include "sim.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct buf;

struct api_call {
    struct sim *sim;
    const struct http_request *req;
    struct http_response *resp;
    struct params params;
    struct sim_workspace *ws; /* the token's workspace */
    uint64_t scopes;          /* the token's scopes, as the call arrived */
    struct sim_faults faults; /* a snapshot taken when the call arrived */
    int64_t now_ms;
    enum sim_method method;
    const char *error;  /* the error code answered, a literal; NULL on success */
    int64_t arrived_ms; /* before the latency fault, for the request log */
};

/* Takes ownership of body. */
void api_reply(struct api_call *c, json_t *body);
/* error must be a literal (or live as long as the process): the request log
 * keeps the pointer until the call ends. */
/* Takes the buffer's contents (see buf_take). */
void api_reply_buf(struct api_call *c, struct buf *b);
void api_reply_error(struct api_call *c, const char *error);
void api_reply_ratelimited(struct api_call *c, int retry_after_s);
/* missing_scope, naming the scope needed and the token's scopes, as Slack does. */
void api_reply_missing_scope(struct api_call *c, enum sim_scope needed);
static inline bool api_has_scope(const struct api_call *c, enum sim_scope s)
{
    return (c->scopes & SIM_SCOPE(s)) != 0;
}

/* The "limit" argument: fallback when absent or empty, clamped to max. Returns -1
 * for a value that is not a non-negative integer. */
long api_arg_limit(const struct api_call *c, long fallback, long max);
bool api_arg_bool(const struct api_call *c, const char *key);

/* A fresh, unique message timestamp ("1712345678.000123") into out[24]. */
void api_next_ts(struct sim *sim, char out[24]);

/* The method handlers. */
void method_auth_test(struct api_call *c);
void method_users_list(struct api_call *c);
void method_users_info(struct api_call *c);
void method_conversations_open(struct api_call *c);
void method_conversations_list(struct api_call *c);
void method_conversations_members(struct api_call *c);
void method_chat_post_message(struct api_call *c);

/* Appends a users.list member object for u; the profile's email only with_email
 * (a token with users:read.email). */
void users_render(struct buf *b, const struct sim_user *u, bool include_locale, bool with_email);

#endif
