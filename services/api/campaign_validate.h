/* campaign_validate.h: the full check of a campaign's body (spec/api.md), kept
 * apart from the database so the unit tests can run every rule directly.
 *
 * Validation runs in two steps because most rules depend on the bot's platform:
 * campaign_validate_head() checks the fields needed to find the bot, the handler
 * looks the bot up, then campaign_validate_body() checks the rest. Pointers in
 * struct campaign_input are borrowed from the body.
 */
#ifndef BCRM_API_CAMPAIGN_VALIDATE_H
#define BCRM_API_CAMPAIGN_VALIDATE_H

#include "jsonv.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define CAMPAIGN_SLACK_TEXT_MAX 40000
#define CAMPAIGN_MESSENGER_TEXT_MAX 2000

struct campaign_input {
    const char *name;
    const char *bot_id;
    json_t *message;
    json_t *audience;
    json_t *schedule;
    json_t *send_window; /* NULL when not given */
    json_t *messenger;   /* NULL when not given */
    bool has_throttle;
    int64_t throttle_per_minute;
    bool has_max_lateness;
    int64_t max_lateness_minutes;
};

/* Unknown top-level fields, name and bot_id. */
bool campaign_validate_head(json_t *body, struct campaign_input *in, struct jv *v);
/* Everything else, for a bot of platform ("slack" or "messenger"); now_s is the
 * current time, against which a schedule "at" must not lie in the past. */
bool campaign_validate_body(json_t *body, const char *platform, int64_t now_s,
                            struct campaign_input *in, struct jv *v);

/* The parts, for tests. */
bool campaign_validate_schedule(json_t *schedule, int64_t now_s, struct jv *v);
/* An audience is {filter} or {segment_id}; a segment_id is only checked to be an id
 * here: the handler looks the segment up and copies its filter in. */
bool campaign_validate_audience(json_t *audience, const char *platform, struct jv *v);
/* A filter (spec/api.md, "Segments") for a bot of platform; field names in failures
 * start with prefix ("audience.filter" in a campaign, "filter" in a segment). */
bool campaign_validate_filter(json_t *filter, const char *platform, const char *prefix,
                              struct jv *v);

#endif
