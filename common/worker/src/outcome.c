/* outcome.c: send outcomes and classification tables. */
#include "bcrm/worker_outcome.h"

#include <stdio.h>
#include <string.h>

void worker_outcome_init(struct worker_outcome *out)
{
    memset(out, 0, sizeof(*out));
    out->outcome = BCRM__V1__OUTCOME__OUTCOME_UNSPECIFIED;
    out->retry_after_ms = -1;
}

void worker_outcome_set(struct worker_outcome *out, Bcrm__V1__Outcome outcome, const char *error)
{
    out->outcome = outcome;
    snprintf(out->error, sizeof(out->error), "%s", error != NULL ? error : "");
}

const char *worker_outcome_name(Bcrm__V1__Outcome outcome)
{
    switch (outcome) {
    case BCRM__V1__OUTCOME__OUTCOME_SENT:
        return "sent";
    case BCRM__V1__OUTCOME__OUTCOME_RETRY:
        return "retry";
    case BCRM__V1__OUTCOME__OUTCOME_FAILED:
        return "failed";
    case BCRM__V1__OUTCOME__OUTCOME_UNKNOWN:
        return "unknown";
    default:
        return "unspecified";
    }
}

const struct worker_rule *worker_rule_find(const struct worker_rule *rules, size_t count,
                                           const char *code)
{
    if (code == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        if (strcmp(rules[i].code, code) == 0) {
            return &rules[i];
        }
    }
    return NULL;
}

void worker_rule_apply(const struct worker_rule *rule, const char *error,
                       struct worker_outcome *out)
{
    worker_outcome_set(out, rule->outcome, error);
    out->bot_token_invalid = (rule->flags & WORKER_RULE_TOKEN_INVALID) != 0;
    out->rate_limited = (rule->flags & WORKER_RULE_RATE_LIMITED) != 0;
}
