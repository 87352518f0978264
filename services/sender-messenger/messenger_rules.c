/* messenger_rules.c: what each Graph API error means for a send.
 *
 * Errors come as {"error":{"code","error_subcode","message","type"}}. The table
 * is searched for (code, subcode) first, then (code, any). A code not listed is
 * judged by the HTTP status (messenger_send.c).
 */
#include "messenger.h"

const struct messenger_rule messenger_rules[] = {
    /* The page's token: refused, so nothing was sent; back to pending (not
     * counted), and the scheduler pauses the bot until it is reconnected. */
    {190, 0, "invalid_token", BCRM__V1__OUTCOME__OUTCOME_RETRY, WORKER_RULE_TOKEN_INVALID},
    {102, 0, "invalid_session", BCRM__V1__OUTCOME__OUTCOME_RETRY, WORKER_RULE_TOKEN_INVALID},
    /* Policy and recipient. */
    {10, 2018278, "outside_24h_window", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {10, 0, "permission_denied", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {200, 0, "permission_denied", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {551, 0, "person_unavailable", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {100, 0, "invalid_parameter", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    /* Rate limits: not delivered, not counted as an attempt. */
    {4, 0, "rate_limited", BCRM__V1__OUTCOME__OUTCOME_RETRY, WORKER_RULE_RATE_LIMITED},
    {17, 0, "rate_limited", BCRM__V1__OUTCOME__OUTCOME_RETRY, WORKER_RULE_RATE_LIMITED},
    {32, 0, "rate_limited", BCRM__V1__OUTCOME__OUTCOME_RETRY, WORKER_RULE_RATE_LIMITED},
    {613, 0, "rate_limited", BCRM__V1__OUTCOME__OUTCOME_RETRY, WORKER_RULE_RATE_LIMITED},
    {80006, 0, "rate_limited", BCRM__V1__OUTCOME__OUTCOME_RETRY, WORKER_RULE_RATE_LIMITED},
    /* Temporary: Meta says these were not processed and may be retried. */
    {2, 0, "temporary_error", BCRM__V1__OUTCOME__OUTCOME_RETRY, 0},
    {1200, 0, "temporary_send_error", BCRM__V1__OUTCOME__OUTCOME_RETRY, 0},
    /* "An unknown error occurred": the message may have gone out. */
    {1, 0, "unknown_error", BCRM__V1__OUTCOME__OUTCOME_UNKNOWN, 0},
};

const size_t messenger_rule_count = sizeof(messenger_rules) / sizeof(messenger_rules[0]);

const struct messenger_rule *messenger_rule_find(int code, int subcode)
{
    const struct messenger_rule *any = NULL;
    for (size_t i = 0; i < messenger_rule_count; i++) {
        const struct messenger_rule *r = &messenger_rules[i];
        if (r->code != code) {
            continue;
        }
        if (r->subcode != 0 && r->subcode == subcode) {
            return r;
        }
        if (r->subcode == 0 && any == NULL) {
            any = r;
        }
    }
    return any;
}

bool messenger_error(const json_t *body, int *code, int *subcode)
{
    json_t *error = json_object_get(body, "error");
    json_t *c = json_object_get(error, "code");
    if (!json_is_integer(c)) {
        return false;
    }
    *code = (int)json_integer_value(c);
    json_t *sub = json_object_get(error, "error_subcode");
    *subcode = json_is_integer(sub) ? (int)json_integer_value(sub) : 0;
    return true;
}
