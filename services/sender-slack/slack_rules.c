/* slack_rules.c: what each Slack error code means for a send.
 *
 * Slack answers most errors with HTTP 200 and {"ok":false,"error":code}. A code
 * not listed here is FAILED: Slack did not post the message, and trying again
 * would meet the same refusal. The uncertain ones are UNKNOWN, because Slack's
 * own documentation says "it's possible some aspect of the operation succeeded"
 * for internal_error and fatal_error, and a duplicated message is worse than one
 * flagged for the user to decide (design.md).
 */
#include "slack.h"

const struct worker_rule slack_send_rules[] = {
    /* The recipient or the channel cannot take the message. */
    {"channel_not_found", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {"user_not_found", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {"user_disabled", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {"is_archived", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {"not_in_channel", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {"messages_tab_disabled", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {"cannot_dm_bot", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {"method_not_supported_for_channel_type", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {"restricted_action", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {"restricted_action_read_only_channel", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {"team_access_not_granted", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {"missing_scope", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    /* The message itself is refused. */
    {"msg_too_long", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {"no_text", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {"invalid_blocks", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {"invalid_blocks_format", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {"too_many_attachments", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {"invalid_metadata_format", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    {"invalid_metadata_schema", BCRM__V1__OUTCOME__OUTCOME_FAILED, 0},
    /* The bot's token: Slack refused the call, so nothing was posted, and every
     * send of this bot would meet the same refusal until it is reconnected. The
     * recipient goes back to pending (not counted) and the scheduler pauses the
     * bot. For chat.postMessage, account_inactive means the token belongs to a
     * deleted user or workspace, i.e. the bot's own account. */
    {"invalid_auth", BCRM__V1__OUTCOME__OUTCOME_RETRY, WORKER_RULE_TOKEN_INVALID},
    {"not_authed", BCRM__V1__OUTCOME__OUTCOME_RETRY, WORKER_RULE_TOKEN_INVALID},
    {"token_revoked", BCRM__V1__OUTCOME__OUTCOME_RETRY, WORKER_RULE_TOKEN_INVALID},
    {"token_expired", BCRM__V1__OUTCOME__OUTCOME_RETRY, WORKER_RULE_TOKEN_INVALID},
    {"account_inactive", BCRM__V1__OUTCOME__OUTCOME_RETRY, WORKER_RULE_TOKEN_INVALID},
    {"no_permission", BCRM__V1__OUTCOME__OUTCOME_RETRY, WORKER_RULE_TOKEN_INVALID},
    /* Slow down: not delivered, not counted as an attempt. */
    {"ratelimited", BCRM__V1__OUTCOME__OUTCOME_RETRY, WORKER_RULE_RATE_LIMITED},
    {"rate_limited", BCRM__V1__OUTCOME__OUTCOME_RETRY, WORKER_RULE_RATE_LIMITED},
    /* Slack was down before doing anything. */
    {"service_unavailable", BCRM__V1__OUTCOME__OUTCOME_RETRY, 0},
    /* Slack may have acted on the request. */
    {"internal_error", BCRM__V1__OUTCOME__OUTCOME_UNKNOWN, 0},
    {"fatal_error", BCRM__V1__OUTCOME__OUTCOME_UNKNOWN, 0},
    {"request_timeout", BCRM__V1__OUTCOME__OUTCOME_UNKNOWN, 0},
};

const size_t slack_send_rule_count = sizeof(slack_send_rules) / sizeof(slack_send_rules[0]);
