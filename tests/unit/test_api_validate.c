/* Unit tests of the api's body validation: the format checks of jsonv.c and the
 * campaign rules of campaign_validate.c, run directly without a server. */
#include "check.h"

#include "campaign_validate.h"
#include "jsonv.h"

#include <jansson.h>
#include <stdlib.h>

/* 2026-01-01T00:00:00Z: "now" for the tests of schedule "at". */
#define NOW_S 1767225600

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (j == NULL) {
        fprintf(stderr, "bad test JSON: %s: %s\n", text, err.text);
    }
    return j;
}

/* The field the schedule is refused for, or "" when it is accepted. */
static const char *schedule_field(const char *text, struct jv *v)
{
    json_t *j = parse(text);
    *v = (struct jv){0};
    bool ok = campaign_validate_schedule(j, NOW_S, v);
    json_decref(j);
    return ok ? "" : v->field;
}

static const char *audience_field(const char *text, const char *platform, struct jv *v)
{
    json_t *j = parse(text);
    *v = (struct jv){0};
    bool ok = campaign_validate_audience(j, platform, v);
    json_decref(j);
    return ok ? "" : v->field;
}

static void test_formats(void)
{
    int64_t t;
    CHECK(jv_is_date("2024-02-29"));
    CHECK(!jv_is_date("2023-02-29"));
    CHECK(!jv_is_date("2024-13-01"));
    CHECK(!jv_is_date("2024-1-01"));
    CHECK(jv_is_hhmm("00:00") && jv_is_hhmm("23:59"));
    CHECK(!jv_is_hhmm("24:00") && !jv_is_hhmm("9:00") && !jv_is_hhmm("09:60"));
    CHECK(jv_parse_rfc3339("2026-01-01T00:00:00Z", &t) && t == NOW_S);
    CHECK(jv_parse_rfc3339("2026-01-01T01:30:00.123+01:30", &t) && t == NOW_S);
    CHECK(jv_parse_rfc3339("2025-12-31T19:00:00-05:00", &t) && t == NOW_S);
    CHECK(!jv_parse_rfc3339("2026-01-01 00:00:00Z", &t));
    CHECK(!jv_parse_rfc3339("2026-01-01T00:00:00", &t));
    CHECK(!jv_parse_rfc3339("2026-01-01T00:00:00+0100", &t));
    CHECK(jv_is_timezone("Europe/Berlin"));
    CHECK(jv_is_timezone("America/Argentina/Buenos_Aires"));
    CHECK(jv_is_timezone("Asia/Kathmandu"));
    CHECK(jv_is_timezone("UTC"));
    CHECK(!jv_is_timezone("europe/berlin"));
    CHECK(!jv_is_timezone("Mars/Olympus"));
    CHECK(!jv_is_timezone("../../etc/passwd"));
    CHECK(!jv_is_timezone(""));
    char why[128];
    CHECK(jv_check_rrule("FREQ=WEEKLY;BYDAY=MO,WE", why, sizeof(why)));
    CHECK(jv_check_rrule("FREQ=MONTHLY;BYMONTHDAY=1;COUNT=3", why, sizeof(why)));
    CHECK(!jv_check_rrule("FREQ=WEEKLY;BYDAY=XX", why, sizeof(why)));
    CHECK(!jv_check_rrule("FREQ=HOURLY", why, sizeof(why)));
    CHECK(!jv_check_rrule("", why, sizeof(why)));
    CHECK(!jv_check_rrule("RRULE:FREQ=DAILY", why, sizeof(why)));
    CHECK(jv_utf8_chars("h\xc3\xa9llo", 6) == 5);
}

static void test_schedules(void)
{
    struct jv v;
    CHECK_STR(schedule_field("{\"mode\":\"now\"}", &v), "");
    CHECK_STR(schedule_field("{\"mode\":\"at\",\"at\":\"2026-01-01T00:00:30Z\"}", &v), "");
    /* A minute of clock skew is tolerated; more is "in the past". */
    CHECK_STR(schedule_field("{\"mode\":\"at\",\"at\":\"2025-12-31T23:59:30Z\"}", &v), "");
    CHECK_STR(schedule_field("{\"mode\":\"at\",\"at\":\"2025-12-31T23:58:00Z\"}", &v),
              "schedule.at");
    CHECK_STR(schedule_field("{\"mode\":\"local\",\"date\":\"2026-03-29\",\"time\":\"02:30\","
                             "\"fallback_tz\":\"Europe/Berlin\",\"if_passed\":\"send_now\"}",
                             &v),
              "");
    CHECK_STR(schedule_field("{\"mode\":\"local\",\"date\":\"2026-03-29\",\"time\":\"02:30\","
                             "\"fallback_tz\":\"Europe/Berln\"}",
                             &v),
              "schedule.fallback_tz");
    CHECK_STR(schedule_field("{\"mode\":\"local\",\"date\":\"2026-03-29\",\"time\":\"02:30\"}", &v),
              "schedule.fallback_tz");
    CHECK_STR(schedule_field("{\"mode\":\"recurring\",\"rrule\":\"FREQ=DAILY\",\"time\":\"08:00\","
                             "\"start_date\":\"2026-01-05\"}",
                             &v),
              "");
    CHECK_STR(
        schedule_field("{\"mode\":\"recurring\",\"rrule\":\"FREQ=DAILY\",\"time\":\"08:00\"}", &v),
        "schedule.start_date");
    CHECK_STR(schedule_field("{\"mode\":\"recurring\",\"rrule\":\"FREQ=DAILY\",\"time\":\"08:00\","
                             "\"start_date\":\"2026-01-05\",\"local\":\"yes\"}",
                             &v),
              "schedule.local");
    CHECK_STR(schedule_field("{\"mode\":\"recurring\",\"rrule\":\"FREQ=DAILY\",\"time\":\"08:00\","
                             "\"start_date\":\"2026-01-05\",\"until\":\"2026-01-04\"}",
                             &v),
              "schedule.until");
    CHECK_STR(schedule_field("{\"mode\":\"recurring\",\"rrule\":\"FREQ=DAILY\",\"time\":\"08:00\","
                             "\"start_date\":\"2026-01-05\",\"until\":\"2026-02-01T00:00:00Z\"}",
                             &v),
              "");
    CHECK_STR(schedule_field("{\"mode\":\"now\",\"when\":1}", &v), "schedule.when");
    CHECK_STR(schedule_field("{}", &v), "schedule.mode");
}

static void test_audiences(void)
{
    struct jv v;
    CHECK_STR(audience_field("{\"filter\":{\"all\":true}}", "slack", &v), "");
    CHECK_STR(audience_field("{\"filter\":{\"all\":false}}", "slack", &v), "audience.filter.all");
    CHECK_STR(audience_field("{\"filter\":{}}", "slack", &v), "audience.filter");
    CHECK_STR(audience_field("{\"filter\":{\"timezones\":[\"Europe/Paris\",\"Asia/Kolkata\"],"
                             "\"is_admin\":true,\"email_domain\":\"example.com\"}}",
                             "slack", &v),
              "");
    CHECK_STR(
        audience_field("{\"filter\":{\"timezones\":[\"Europe/Paris\",\"Nowhere\"]}}", "slack", &v),
        "audience.filter.timezones[1]");
    CHECK_STR(audience_field("{\"filter\":{\"channel_ids\":[\"C1\"],\"all\":true}}", "slack", &v),
              "audience.filter.channel_ids");
    CHECK_STR(audience_field("{\"filter\":{\"members_of\":[\"C1\"]}}", "messenger", &v),
              "audience.filter.members_of");
    CHECK_STR(audience_field("{\"filter\":{\"user_ids\":[\"123\", 4]}}", "messenger", &v),
              "audience.filter.user_ids[1]");
    CHECK_STR(audience_field("{\"filter\":{\"email_domain\":\"a b.com\"}}", "slack", &v),
              "audience.filter.email_domain");
    CHECK_STR(audience_field("{}", "slack", &v), "audience");
    /* A segment is named by id; the handler checks that it exists for the bot. */
    CHECK_STR(
        audience_field("{\"segment_id\":\"6f1c3c2e-6d0b-4b7e-9a44-0c1f3f0b2a11\"}", "slack", &v),
        "");
    CHECK_STR(audience_field("{\"segment_id\":\"seg-1\"}", "slack", &v), "audience.segment_id");
    CHECK_STR(audience_field("{\"segment_id\":7}", "slack", &v), "audience.segment_id");
    CHECK_STR(audience_field("{\"segment_id\":\"6f1c3c2e-6d0b-4b7e-9a44-0c1f3f0b2a11\","
                             "\"filter\":{\"all\":true}}",
                             "slack", &v),
              "audience");
}

/* A segment's filter is checked by the same rules, its fields named from "filter". */
static void test_segment_filters(void)
{
    struct jv v = {0};
    json_t *f = parse("{\"timezones\":[\"Europe/Paris\",\"Nowhere\"]}");
    CHECK(!campaign_validate_filter(f, "slack", "filter", &v));
    CHECK_STR(v.field, "filter.timezones[1]");
    json_decref(f);
    v = (struct jv){0};
    f = parse("{\"is_admin\":true}");
    CHECK(!campaign_validate_filter(f, "messenger", "filter", &v));
    CHECK_STR(v.field, "filter.is_admin");
    json_decref(f);
    v = (struct jv){0};
    f = parse("{\"is_admin\":\"yes\"}");
    CHECK(!campaign_validate_filter(f, "slack", "filter", &v));
    CHECK_STR(v.field, "filter.is_admin");
    json_decref(f);
    v = (struct jv){0};
    f = parse("[1]");
    CHECK(!campaign_validate_filter(f, "slack", "filter", &v));
    CHECK_STR(v.field, "filter");
    json_decref(f);
    v = (struct jv){0};
    f = parse("{\"all\":true,\"email_domain\":\"example.com\",\"members_of\":[\"C1\"]}");
    CHECK(campaign_validate_filter(f, "slack", "filter", &v));
    json_decref(f);
}

static void test_campaign_body(void)
{
    struct jv v = {0};
    struct campaign_input in;
    json_t *body = parse("{\"name\":\"n\",\"bot_id\":\"6f1c3c2e-6d0b-4b7e-9a44-0c1f3f0b2a11\","
                         "\"message\":{\"text\":\"hi\"},\"audience\":{\"filter\":{\"all\":true}},"
                         "\"schedule\":{\"mode\":\"now\"},\"throttle_per_minute\":60,"
                         "\"messenger\":{\"messaging_type\":\"UPDATE\"}}");
    CHECK(campaign_validate_head(body, &in, &v));
    CHECK(campaign_validate_body(body, "messenger", NOW_S, &in, &v));
    CHECK(in.has_throttle && in.throttle_per_minute == 60 && !in.has_max_lateness);
    v = (struct jv){0};
    CHECK(!campaign_validate_body(body, "slack", NOW_S, &in, &v));
    CHECK_STR(v.field, "messenger");
    json_decref(body);

    /* 2000 characters of two bytes each fit Messenger; 2001 do not. */
    json_t *text = json_string("");
    char *long_text = malloc(2001 * 2 + 1);
    for (int i = 0; i < 2001; i++) {
        long_text[2 * i] = '\xc3';
        long_text[2 * i + 1] = '\xa9';
    }
    long_text[2001 * 2] = '\0';
    json_string_set(text, long_text);
    body = json_pack("{s:s, s:s, s:{s:O}, s:{s:{s:b}}, s:{s:s}}", "name", "n", "bot_id",
                     "6f1c3c2e-6d0b-4b7e-9a44-0c1f3f0b2a11", "message", "text", text, "audience",
                     "filter", "all", 1, "schedule", "mode", "now");
    v = (struct jv){0};
    CHECK(campaign_validate_head(body, &in, &v));
    CHECK(!campaign_validate_body(body, "messenger", NOW_S, &in, &v));
    CHECK_STR(v.field, "message.text");
    v = (struct jv){0};
    CHECK(campaign_validate_body(body, "slack", NOW_S, &in, &v));
    free(long_text);
    json_decref(text);
    json_decref(body);

    v = (struct jv){0};
    body = parse("{\"name\":\"n\",\"bot_id\":\"nope\"}");
    CHECK(!campaign_validate_head(body, &in, &v));
    CHECK_STR(v.field, "bot_id");
    json_decref(body);
}

int main(void)
{
    test_formats();
    test_schedules();
    test_audiences();
    test_segment_filters();
    test_campaign_body();
    CHECK_DONE();
}
