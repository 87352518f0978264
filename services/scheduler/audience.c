/* audience.c: audience filters (see audience.h). */
#include "audience.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int fail(char *err, size_t errlen, const char *field, const char *problem)
{
    snprintf(err, errlen, "audience.%s: %s", field, problem);
    return -1;
}

static bool string_array(const json_t *v)
{
    if (!json_is_array(v)) {
        return false;
    }
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item)) {
            return false;
        }
    }
    return true;
}

static bool array_has(const json_t *array, const char *value)
{
    size_t i;
    json_t *item;
    json_array_foreach(array, i, item)
    {
        if (strcmp(json_string_value(item), value) == 0) {
            return true;
        }
    }
    return false;
}

int audience_parse(const json_t *audience, bool needs_zones, struct audience *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->is_admin = -1;
    if (!json_is_object(audience)) {
        snprintf(err, errlen, "audience: not an object");
        return -1;
    }
    /* A segment's campaign carries segment_id next to the filter copied from it: only
     * the filter counts (a later change to the segment changes no campaign). */
    const json_t *segment = json_object_get(audience, "segment_id");
    if (segment != NULL && !json_is_string(segment)) {
        return fail(err, errlen, "segment_id", "not a string");
    }
    const json_t *filter = json_object_get(audience, "filter");
    if (!json_is_object(filter)) {
        return fail(err, errlen, "filter", "missing or not an object");
    }
    const json_t *members_of = json_object_get(filter, "members_of");
    if (members_of != NULL && (!string_array(members_of) || json_array_size(members_of) == 0)) {
        return fail(err, errlen, "filter.members_of", "not a non-empty array of channel ids");
    }
    const json_t *channels = json_object_get(filter, "channel_ids");
    if (channels != NULL) {
        if (!string_array(channels)) {
            return fail(err, errlen, "filter.channel_ids", "not an array of ids");
        }
        if (json_object_size(filter) != 1) {
            return fail(err, errlen, "filter.channel_ids", "cannot be combined with users");
        }
        out->source = AUDIENCE_CHANNELS;
        out->listed = channels;
        return 0;
    }
    const json_t *all = json_object_get(filter, "all");
    if (all != NULL && !json_is_boolean(all)) {
        return fail(err, errlen, "filter.all", "not a boolean");
    }
    const json_t *user_ids = json_object_get(filter, "user_ids");
    if (user_ids != NULL && !string_array(user_ids)) {
        return fail(err, errlen, "filter.user_ids", "not an array of ids");
    }
    const json_t *zones = json_object_get(filter, "timezones");
    if (zones != NULL && !string_array(zones)) {
        return fail(err, errlen, "filter.timezones", "not an array of zone names");
    }
    const json_t *is_admin = json_object_get(filter, "is_admin");
    if (is_admin != NULL && !json_is_boolean(is_admin)) {
        return fail(err, errlen, "filter.is_admin", "not a boolean");
    }
    const json_t *domain = json_object_get(filter, "email_domain");
    if (domain != NULL && !json_is_string(domain)) {
        return fail(err, errlen, "filter.email_domain", "not a string");
    }
    if (all == NULL && user_ids == NULL && zones == NULL && is_admin == NULL && domain == NULL &&
        members_of == NULL) {
        return fail(err, errlen, "filter", "has no condition");
    }
    if (json_is_false(all)) {
        return fail(err, errlen, "filter.all", "false selects nobody");
    }
    bool only_ids = user_ids != NULL && zones == NULL && is_admin == NULL && domain == NULL &&
                    members_of == NULL;
    if (only_ids && !needs_zones) {
        out->source = AUDIENCE_LISTED_USERS;
        out->listed = user_ids;
        return 0;
    }
    out->source = AUDIENCE_PLATFORM_USERS;
    out->user_ids = user_ids;
    out->timezones = zones;
    out->is_admin = is_admin == NULL ? -1 : json_is_true(is_admin);
    out->email_domain = json_string_value(domain);
    out->members_of = members_of;
    return 0;
}

static bool email_in_domain(const char *email, const char *domain)
{
    if (email == NULL) {
        return false;
    }
    const char *at = strrchr(email, '@');
    return at != NULL && strcasecmp(at + 1, domain) == 0;
}

bool audience_accepts(const struct audience *a, const Bcrm__V1__PlatformUser *user,
                      const char *bot_user_id)
{
    if (user->id == NULL || user->id[0] == '\0' || user->is_bot || user->deleted) {
        return false;
    }
    /* Slack reports Slackbot as a user that is not a bot; it cannot receive messages. */
    if (strcmp(user->id, "USLACKBOT") == 0 ||
        (bot_user_id != NULL && strcmp(user->id, bot_user_id) == 0)) {
        return false;
    }
    if (a->user_ids != NULL && !array_has(a->user_ids, user->id)) {
        return false;
    }
    if (a->timezones != NULL && (user->tz == NULL || !array_has(a->timezones, user->tz))) {
        return false;
    }
    if (a->is_admin >= 0 && (user->is_admin || user->is_owner) != (a->is_admin == 1)) {
        return false;
    }
    if (a->email_domain != NULL && !email_in_domain(user->email, a->email_domain)) {
        return false;
    }
    if (a->members_of != NULL && !member_set_has(a->members, user->id)) {
        return false;
    }
    return true;
}

enum audience_members_page audience_add_members(struct member_set *set,
                                                const Bcrm__V1__PlatformReply *reply, char *err,
                                                size_t errlen)
{
    if (reply->status == BCRM__V1__QUERY_STATUS__QUERY_BAD_REQUEST && reply->error != NULL &&
        strcmp(reply->error, "channel_not_found") == 0) {
        return MEMBERS_PAGE_CHANNEL_GONE;
    }
    if (reply->status != BCRM__V1__QUERY_STATUS__QUERY_OK) {
        return MEMBERS_PAGE_REFUSED;
    }
    for (size_t i = 0; i < reply->n_member_ids; i++) {
        enum member_add rv = member_set_add(set, reply->member_ids[i]);
        if (rv == MEMBER_FULL) {
            snprintf(err, errlen,
                     "audience.filter.members_of: the channels have more than %zu members",
                     member_set_max(set));
            return MEMBERS_PAGE_TOO_MANY;
        }
        if (rv == MEMBER_NO_MEMORY) {
            snprintf(err, errlen, "audience.filter.members_of: out of memory after %zu members",
                     member_set_count(set));
            return MEMBERS_PAGE_TOO_MANY;
        }
        /* MEMBER_BAD_ID: not a user id, so never a recipient either; skipped. */
    }
    return MEMBERS_PAGE_ADDED;
}
