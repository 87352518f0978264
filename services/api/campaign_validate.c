/* campaign_validate.c: every rule a campaign body must satisfy (see the header). */
#include "campaign_validate.h"

#include "api.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* A schedule "at" this far in the past is still accepted: the clocks of client and
 * server differ a little, and "now-ish" is what such a client means. */
#define AT_PAST_TOLERANCE_S 60

#define AUDIENCE_MAX_IDS 10000
#define SLACK_MAX_BLOCKS 50

static bool is_slack(const char *platform)
{
    return strcmp(platform, "slack") == 0;
}

bool campaign_validate_head(json_t *body, struct campaign_input *in, struct jv *v)
{
    static const char *const keys[] = {"name",        "bot_id",
                                       "message",     "audience",
                                       "schedule",    "throttle_per_minute",
                                       "send_window", "max_lateness_minutes",
                                       "messenger",   NULL};
    memset(in, 0, sizeof(*in));
    jv_only_keys(v, body, "", keys);
    in->name = jv_string(v, body, "name", "name", true, 1, 200);
    in->bot_id = jv_string(v, body, "bot_id", "bot_id", true, 1, 64);
    if (!v->failed && !api_is_uuid(in->bot_id)) {
        jv_fail(v, "bot_id", "is not a bot id");
    }
    return !v->failed;
}

static bool validate_message(json_t *message, const char *platform, struct jv *v)
{
    static const char *const keys[] = {"text", "blocks", NULL};
    jv_only_keys(v, message, "message", keys);
    size_t max = is_slack(platform) ? CAMPAIGN_SLACK_TEXT_MAX : CAMPAIGN_MESSENGER_TEXT_MAX;
    const char *text = jv_string(v, message, "text", "message.text", true, 1, max);
    if (text == NULL) {
        return false;
    }
    json_t *blocks = json_object_get(message, "blocks");
    if (blocks == NULL || json_is_null(blocks)) {
        return true;
    }
    if (!is_slack(platform)) {
        return jv_fail(v, "message.blocks", "is only for Slack bots");
    }
    if (!json_is_array(blocks)) {
        return jv_fail(v, "message.blocks", "must be an array of Slack blocks");
    }
    if (json_array_size(blocks) > SLACK_MAX_BLOCKS) {
        return jv_fail(v, "message.blocks", "must hold at most %d blocks", SLACK_MAX_BLOCKS);
    }
    size_t i;
    json_t *block;
    json_array_foreach(blocks, i, block)
    {
        char field[64];
        snprintf(field, sizeof(field), "message.blocks[%zu]", i);
        if (!json_is_object(block)) {
            return jv_fail(v, field, "must be an object");
        }
        snprintf(field, sizeof(field), "message.blocks[%zu].type", i);
        if (jv_string(v, block, "type", field, true, 1, 64) == NULL) {
            return false;
        }
    }
    return true;
}

/* An array of 1..max non-empty strings; each_zone checks every item as a zone.
 * prefix names the filter in messages ("audience.filter"). */
static bool validate_id_list(json_t *filter, const char *prefix, const char *key, struct jv *v,
                             bool each_zone)
{
    char field[96];
    snprintf(field, sizeof(field), "%s.%s", prefix, key);
    json_t *list = json_object_get(filter, key);
    if (!json_is_array(list) || json_array_size(list) == 0) {
        return jv_fail(v, field, "must be a non-empty array of strings");
    }
    if (json_array_size(list) > AUDIENCE_MAX_IDS) {
        return jv_fail(v, field, "must hold at most %d items", AUDIENCE_MAX_IDS);
    }
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        const char *s = json_string_value(item);
        char item_field[160];
        snprintf(item_field, sizeof(item_field), "%s[%zu]", field, i);
        if (s == NULL || s[0] == '\0' || json_string_length(item) > 255) {
            return jv_fail(v, item_field, "must be a non-empty string");
        }
        if (each_zone && !jv_is_timezone(s)) {
            return jv_fail(v, item_field, "\"%s\" is not an IANA time zone", s);
        }
    }
    return true;
}

bool campaign_validate_filter(json_t *filter, const char *platform, const char *prefix,
                              struct jv *v)
{
    static const char *const slack_keys[] = {"all",       "user_ids", "channel_ids",  "members_of",
                                             "timezones", "is_admin", "email_domain", NULL};
    /* Messenger reports no channels, admins, emails or zone names for a person. */
    static const char *const messenger_keys[] = {"all", "user_ids", NULL};
    char field[96];
    if (!json_is_object(filter)) {
        return jv_fail(v, prefix, "must be an object");
    }
    if (json_object_size(filter) == 0) {
        return jv_fail(v, prefix,
                       "must hold at least one condition, e.g. "
                       "{\"all\": true}");
    }
    if (!jv_only_keys(v, filter, prefix, is_slack(platform) ? slack_keys : messenger_keys)) {
        snprintf(v->message, sizeof(v->message), "is not a filter condition for %s bots", platform);
        return false;
    }
    json_t *all = json_object_get(filter, "all");
    if (all != NULL && !json_is_true(all)) {
        snprintf(field, sizeof(field), "%s.all", prefix);
        return jv_fail(v, field, "must be true");
    }
    if (json_object_get(filter, "user_ids") &&
        !validate_id_list(filter, prefix, "user_ids", v, false)) {
        return false;
    }
    if (json_object_get(filter, "channel_ids")) {
        if (!validate_id_list(filter, prefix, "channel_ids", v, false)) {
            return false;
        }
        if (json_object_size(filter) > 1) {
            snprintf(field, sizeof(field), "%s.channel_ids", prefix);
            return jv_fail(v, field,
                           "posts into channels and cannot be combined with user conditions");
        }
    }
    if (json_object_get(filter, "members_of") &&
        !validate_id_list(filter, prefix, "members_of", v, false)) {
        return false;
    }
    if (json_object_get(filter, "timezones") &&
        !validate_id_list(filter, prefix, "timezones", v, true)) {
        return false;
    }
    json_t *is_admin = json_object_get(filter, "is_admin");
    if (is_admin != NULL && !json_is_boolean(is_admin)) {
        snprintf(field, sizeof(field), "%s.is_admin", prefix);
        return jv_fail(v, field, "must be true or false");
    }
    if (json_object_get(filter, "email_domain")) {
        snprintf(field, sizeof(field), "%s.email_domain", prefix);
        const char *domain = jv_string(v, filter, "email_domain", field, true, 3, 253);
        if (domain == NULL) {
            return false;
        }
        for (const char *p = domain; *p; p++) {
            if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-') {
                return jv_fail(v, field, "must be a domain such as example.com");
            }
        }
        if (strchr(domain, '.') == NULL) {
            return jv_fail(v, field, "must be a domain such as example.com");
        }
    }
    return true;
}

bool campaign_validate_audience(json_t *audience, const char *platform, struct jv *v)
{
    static const char *const keys[] = {"filter", "segment_id", NULL};
    if (!jv_only_keys(v, audience, "audience", keys)) {
        return false;
    }
    json_t *filter = json_object_get(audience, "filter");
    json_t *segment = json_object_get(audience, "segment_id");
    if ((filter == NULL) == (segment == NULL)) {
        return jv_fail(v, "audience", "must have exactly one of filter and segment_id");
    }
    if (segment != NULL) {
        const char *id = jv_string(v, audience, "segment_id", "audience.segment_id", true, 1, 64);
        if (id == NULL) {
            return false;
        }
        /* Whether the segment exists, in this org and for this bot, is the handler's
         * question (campaign_resolve_segment in campaigns.c). */
        if (!api_is_uuid(id)) {
            return jv_fail(v, "audience.segment_id", "no segment %s in this org", id);
        }
        return true;
    }
    return campaign_validate_filter(filter, platform, "audience.filter", v);
}

static bool validate_wall_time(json_t *schedule, struct jv *v, bool tz_required)
{
    const char *time = jv_string(v, schedule, "time", "schedule.time", true, 1, 16);
    if (time != NULL && !jv_is_hhmm(time)) {
        return jv_fail(v, "schedule.time", "must be a time of day HH:MM (00:00 to 23:59)");
    }
    const char *tz =
        jv_string(v, schedule, "fallback_tz", "schedule.fallback_tz", tz_required, 1, 63);
    if (tz != NULL && !jv_is_timezone(tz)) {
        return jv_fail(v, "schedule.fallback_tz", "\"%s\" is not an IANA time zone", tz);
    }
    return !v->failed;
}

static bool validate_date_field(json_t *schedule, const char *key, struct jv *v, bool required)
{
    char field[64];
    snprintf(field, sizeof(field), "schedule.%s", key);
    const char *date = jv_string(v, schedule, key, field, required, 1, 16);
    if (date != NULL && !jv_is_date(date)) {
        return jv_fail(v, field, "must be a date YYYY-MM-DD");
    }
    return !v->failed;
}

bool campaign_validate_schedule(json_t *schedule, int64_t now_s, struct jv *v)
{
    static const char *const modes[] = {"now", "at", "local", "recurring", NULL};
    static const char *const now_keys[] = {"mode", NULL};
    static const char *const at_keys[] = {"mode", "at", NULL};
    static const char *const local_keys[] = {"mode",        "date",      "time",
                                             "fallback_tz", "if_passed", NULL};
    static const char *const recurring_keys[] = {"mode",        "rrule",      "time",  "local",
                                                 "fallback_tz", "start_date", "until", NULL};
    static const char *const if_passed[] = {"next_day", "send_now", "skip", NULL};
    const char *mode = jv_enum(v, schedule, "mode", "schedule.mode", true, modes);
    if (mode == NULL) {
        return false;
    }
    if (strcmp(mode, "now") == 0) {
        return jv_only_keys(v, schedule, "schedule", now_keys);
    }
    if (strcmp(mode, "at") == 0) {
        jv_only_keys(v, schedule, "schedule", at_keys);
        const char *at = jv_string(v, schedule, "at", "schedule.at", true, 1, 64);
        int64_t at_s;
        if (at == NULL) {
            return false;
        }
        if (!jv_parse_rfc3339(at, &at_s)) {
            return jv_fail(v, "schedule.at",
                           "must be an RFC 3339 time such as 2026-12-10T09:00:00Z");
        }
        if (at_s < now_s - AT_PAST_TOLERANCE_S) {
            return jv_fail(v, "schedule.at", "is in the past");
        }
        return true;
    }
    if (strcmp(mode, "local") == 0) {
        jv_only_keys(v, schedule, "schedule", local_keys);
        validate_date_field(schedule, "date", v, true);
        validate_wall_time(schedule, v, true);
        jv_enum(v, schedule, "if_passed", "schedule.if_passed", false, if_passed);
        return !v->failed;
    }
    jv_only_keys(v, schedule, "schedule", recurring_keys);
    const char *rrule = jv_string(v, schedule, "rrule", "schedule.rrule", true, 1, 255);
    if (rrule != NULL) {
        char why[128];
        if (strncmp(rrule, "RRULE:", 6) == 0) {
            rrule += 6;
        }
        if (!jv_check_rrule(rrule, why, sizeof(why))) {
            return jv_fail(v, "schedule.rrule", "%s", why);
        }
    }
    validate_wall_time(schedule, v, false);
    json_t *local = json_object_get(schedule, "local");
    if (local != NULL && !json_is_boolean(local)) {
        return jv_fail(v, "schedule.local", "must be true or false");
    }
    validate_date_field(schedule, "start_date", v, true);
    const char *until = jv_string(v, schedule, "until", "schedule.until", false, 1, 64);
    int64_t until_s;
    if (until != NULL && !jv_is_date(until) && !jv_parse_rfc3339(until, &until_s)) {
        return jv_fail(v, "schedule.until", "must be a date YYYY-MM-DD or an RFC 3339 time");
    }
    if (until != NULL && !v->failed) {
        /* Both start with YYYY-MM-DD, which compares as text. */
        const char *start = json_string_value(json_object_get(schedule, "start_date"));
        if (strncmp(until, start, 10) < 0) {
            return jv_fail(v, "schedule.until", "is before schedule.start_date");
        }
    }
    return !v->failed;
}

static bool validate_send_window(json_t *window, struct jv *v)
{
    static const char *const keys[] = {"start", "end", "days", NULL};
    static const char *const day_names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    jv_only_keys(v, window, "send_window", keys);
    const char *start = jv_string(v, window, "start", "send_window.start", true, 1, 16);
    if (start != NULL && !jv_is_hhmm(start)) {
        return jv_fail(v, "send_window.start", "must be a time of day HH:MM");
    }
    const char *end = jv_string(v, window, "end", "send_window.end", true, 1, 16);
    if (end != NULL && !jv_is_hhmm(end)) {
        return jv_fail(v, "send_window.end", "must be a time of day HH:MM");
    }
    if (v->failed) {
        return false;
    }
    if (strcmp(start, end) == 0) {
        return jv_fail(v, "send_window.end", "must differ from send_window.start");
    }
    json_t *days = json_object_get(window, "days");
    if (days == NULL || json_is_null(days)) {
        return true;
    }
    if (!json_is_array(days) || json_array_size(days) == 0 || json_array_size(days) > 7) {
        return jv_fail(v, "send_window.days", "must be a non-empty array of mon..sun");
    }
    unsigned seen = 0;
    size_t i;
    json_t *day;
    json_array_foreach(days, i, day)
    {
        const char *name = json_string_value(day);
        int found = -1;
        for (int d = 0; name != NULL && d < 7; d++) {
            if (strcmp(day_names[d], name) == 0) {
                found = d;
            }
        }
        char field[40];
        snprintf(field, sizeof(field), "send_window.days[%zu]", i);
        if (found < 0) {
            return jv_fail(v, field, "must be one of mon, tue, wed, thu, fri, sat, sun");
        }
        if (seen & (1u << found)) {
            return jv_fail(v, field, "repeats %s", name);
        }
        seen |= 1u << found;
    }
    return true;
}

static bool validate_messenger(json_t *options, struct jv *v)
{
    static const char *const keys[] = {"messaging_type", "tag", NULL};
    static const char *const types[] = {"RESPONSE", "UPDATE", "MESSAGE_TAG", NULL};
    static const char *const tags[] = {"CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE",
                                       "ACCOUNT_UPDATE", "HUMAN_AGENT", NULL};
    jv_only_keys(v, options, "messenger", keys);
    const char *type =
        jv_enum(v, options, "messaging_type", "messenger.messaging_type", true, types);
    const char *tag = jv_enum(v, options, "tag", "messenger.tag", false, tags);
    if (v->failed) {
        return false;
    }
    bool tagged = strcmp(type, "MESSAGE_TAG") == 0;
    if (tagged && tag == NULL) {
        return jv_fail(v, "messenger.tag", "is required with messaging_type MESSAGE_TAG");
    }
    if (!tagged && tag != NULL) {
        return jv_fail(v, "messenger.tag", "is only allowed with messaging_type MESSAGE_TAG");
    }
    return true;
}

bool campaign_validate_body(json_t *body, const char *platform, int64_t now_s,
                            struct campaign_input *in, struct jv *v)
{
    in->message = jv_object(v, body, "message", "message", true);
    if (in->message != NULL) {
        validate_message(in->message, platform, v);
    }
    in->audience = jv_object(v, body, "audience", "audience", true);
    if (in->audience != NULL) {
        campaign_validate_audience(in->audience, platform, v);
    }
    in->schedule = jv_object(v, body, "schedule", "schedule", true);
    if (in->schedule != NULL) {
        campaign_validate_schedule(in->schedule, now_s, v);
    }
    jv_int(v, body, "throttle_per_minute", "throttle_per_minute", 1, 1000000,
           &in->throttle_per_minute, &in->has_throttle);
    in->send_window = jv_object(v, body, "send_window", "send_window", false);
    if (in->send_window != NULL) {
        validate_send_window(in->send_window, v);
    }
    jv_int(v, body, "max_lateness_minutes", "max_lateness_minutes", 1, 7 * 24 * 60,
           &in->max_lateness_minutes, &in->has_max_lateness);
    in->messenger = jv_object(v, body, "messenger", "messenger", false);
    if (in->messenger != NULL) {
        if (is_slack(platform)) {
            jv_fail(v, "messenger", "is only for Messenger bots");
        } else {
            validate_messenger(in->messenger, v);
        }
    }
    return !v->failed;
}
