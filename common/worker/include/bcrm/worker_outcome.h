/* worker_outcome.h: the outcome of one send, and the tables that map a platform's
 * error codes to outcomes.
 *
 * Each platform module keeps its classification as data (an array of rules) so
 * that a reader sees every decision in one place and a unit test can walk it.
 */
#ifndef BCRM_WORKER_OUTCOME_H
#define BCRM_WORKER_OUTCOME_H

#include "bcrm/v1/send.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WORKER_ERROR_MAX 64
#define WORKER_MESSAGE_ID_MAX 256

/* What a module reports for a send. Plain data, no pointers: copy freely. */
struct worker_outcome {
    Bcrm__V1__Outcome outcome;
    char error[WORKER_ERROR_MAX];                    /* "" when none */
    char platform_message_id[WORKER_MESSAGE_ID_MAX]; /* "" unless SENT */
    int64_t retry_after_ms;                          /* -1 when the platform gave none */
    bool rate_limited;                               /* a 429: not counted as an attempt */
    bool bot_token_invalid;                          /* pause the bot until it is reconnected */
};

/* Resets out to "unspecified, no error, no retry-after". */
void worker_outcome_init(struct worker_outcome *out);
/* Sets the outcome and its error code (error may be NULL; it is truncated to fit). */
void worker_outcome_set(struct worker_outcome *out, Bcrm__V1__Outcome outcome, const char *error);
/* "sent", "retry", "failed", "unknown" (metric labels and logs). */
const char *worker_outcome_name(Bcrm__V1__Outcome outcome);

#define WORKER_RULE_TOKEN_INVALID 0x1u /* the bot's token is revoked or invalid */
#define WORKER_RULE_RATE_LIMITED 0x2u  /* the platform asked us to slow down */

/* One row of a classification table, keyed by the platform's error code. */
struct worker_rule {
    const char *code;
    Bcrm__V1__Outcome outcome;
    unsigned flags;
};

/* The rule for code, or NULL when the table has none. */
const struct worker_rule *worker_rule_find(const struct worker_rule *rules, size_t count,
                                           const char *code);
/* Fills out from rule, with error as the reported code. */
void worker_rule_apply(const struct worker_rule *rule, const char *error,
                       struct worker_outcome *out);

#endif
