/* audience.h: who a campaign's audience takes (spec/api.md, "Segments").
 *
 * An audience is {"filter": {...}} whose conditions all hold. It is read from one of
 * three sources:
 *   - listed channels ({"channel_ids": [...]}): one delivery per channel;
 *   - listed users ({"user_ids": [...]} alone, when no recipient's zone is needed):
 *     those ids, as given;
 *   - the platform's users (ListUsers page by page), each user kept if every condition
 *     holds: all, user_ids, timezones, is_admin, email_domain. Bots, deleted users,
 *     the bot itself and Slackbot are never recipients.
 * Conditions the scheduler cannot evaluate yet (segment_id, members_of) make the
 * audience unsupported, named in err.
 *
 * Pure code; the json_t objects are borrowed and must outlive the struct audience.
 */
#ifndef BCRM_SCHEDULER_AUDIENCE_H
#define BCRM_SCHEDULER_AUDIENCE_H

#include "bcrm/v1/query.pb-c.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum audience_source { AUDIENCE_PLATFORM_USERS, AUDIENCE_LISTED_USERS, AUDIENCE_CHANNELS };

struct audience {
    enum audience_source source;
    const json_t *listed;    /* LISTED_USERS, CHANNELS: the array of ids */
    const json_t *user_ids;  /* PLATFORM_USERS: optional condition */
    const json_t *timezones; /* optional condition */
    int is_admin;            /* -1: no condition; 0 or 1: must equal */
    const char *email_domain;
};

/* needs_zones: the schedule gives each recipient their own local time, so listed
 * users are read through the platform to learn their zones. Returns 0, or -1 with
 * err naming the field. */
int audience_parse(const json_t *audience, bool needs_zones, struct audience *out, char *err,
                   size_t errlen);

/* Whether a platform user is a recipient. bot_user_id may be NULL. */
bool audience_accepts(const struct audience *a, const Bcrm__V1__PlatformUser *user,
                      const char *bot_user_id);

#endif
