/* audience.h: who a campaign's audience takes (spec/api.md, "Segments").
 *
 * An audience is {"filter": {...}} whose conditions all hold; a campaign made from a
 * segment stores {"segment_id": S, "filter": {...}} (docs/architecture.md), and only
 * the filter is read: segment_id is a record of where it came from. It is read from
 * one of three sources:
 *   - listed channels ({"channel_ids": [...]}): one delivery per channel;
 *   - listed users ({"user_ids": [...]} alone, when no recipient's zone is needed):
 *     those ids, as given;
 *   - the platform's users (ListUsers page by page), each user kept if every condition
 *     holds: all, user_ids, timezones, is_admin, email_domain, members_of. Bots,
 *     deleted users, the bot itself and Slackbot are never recipients.
 *
 * members_of needs the members of its channels before the users are read: the caller
 * reads them (ListChannelMembers, page by page) into a member_set with
 * audience_add_members and points audience.members at it (member_set.h says why a
 * set, and how it is bounded). The scheduler (runs.c) and the api's segment preview
 * (services/api/segment_preview.c) both do this with the code here, so a preview and
 * a campaign agree on who is in.
 *
 * Pure code; the json_t objects are borrowed and must outlive the struct audience.
 */
#ifndef BCRM_SCHEDULER_AUDIENCE_H
#define BCRM_SCHEDULER_AUDIENCE_H

#include "bcrm/v1/query.pb-c.h"
#include "member_set.h"

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
    /* PLATFORM_USERS: the channels of members_of (an array of ids), or NULL. */
    const json_t *members_of;
    /* Borrowed: the members of those channels, set by the caller once read. While it
     * is NULL, a members_of audience accepts nobody. */
    const struct member_set *members;
};

/* needs_zones: the schedule gives each recipient their own local time, so listed
 * users are read through the platform to learn their zones. Returns 0, or -1 with
 * err naming the field. */
int audience_parse(const json_t *audience, bool needs_zones, struct audience *out, char *err,
                   size_t errlen);

/* Whether a platform user is a recipient. bot_user_id may be NULL. */
bool audience_accepts(const struct audience *a, const Bcrm__V1__PlatformUser *user,
                      const char *bot_user_id);

/* What a ListChannelMembers reply (borrowed) gave. */
enum audience_members_page {
    MEMBERS_PAGE_ADDED = 0,        /* its ids are in the set; next_cursor says if more */
    MEMBERS_PAGE_CHANNEL_GONE = 1, /* channel_not_found: a channel the bot cannot see
                                    * (deleted, or private without the bot) has no
                                    * members to give; no more pages */
    MEMBERS_PAGE_REFUSED = -1,     /* status not OK: the caller handles it as any failed
                                    * query (rate limit, token, platform down) */
    MEMBERS_PAGE_TOO_MANY = -2,    /* the set is full or out of memory: err says which */
};
enum audience_members_page audience_add_members(struct member_set *set,
                                                const Bcrm__V1__PlatformReply *reply, char *err,
                                                size_t errlen);

#endif
