/* sender-slack: delivers campaign messages to Slack and answers live Slack
 * queries. Everything but the Slack specifics lives in the worker framework
 * (common/worker); the Slack specifics live in slack_*.c. */
#include "bcrm/worker.h"
#include "slack.h"

int main(void)
{
    return worker_main(&slack_platform);
}
