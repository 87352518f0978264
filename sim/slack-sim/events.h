/* events.h: Events API deliveries from the simulated Slack to bcrm's webhook.
 *
 * POST /_sim/events {type, team_id?, url?, user?, text?, timestamp_skew_s?,
 * bad_signature?, retry_num?} sends one event, signed with the signing secret
 * (X-Slack-Signature v0, X-Slack-Request-Timestamp), and answers what the webhook
 * answered. Types: url_verification (the webhook must echo the challenge),
 * app_uninstalled and tokens_revoked (the token stops working before the event
 * is sent, as on Slack, whatever the webhook answers), and
 * message (a person writes to the bot: a DM event). url defaults to
 * SLACK_SIM_EVENTS_URL.
 */
#ifndef SIM_EVENTS_H
#define SIM_EVENTS_H

struct http_request;
struct http_response;
struct sim;

struct sim_events_config {
    const char *url;            /* "" when not configured; borrowed */
    const char *signing_secret; /* borrowed */
};

void events_init(const struct sim_events_config *config);
void events_post(struct sim *sim, const struct http_request *req, struct http_response *resp);

#endif
