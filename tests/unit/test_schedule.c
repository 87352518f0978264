/* Unit tests of the scheduler's schedule computation (services/scheduler/schedule.c).
 * Every expected instant is written out as Unix seconds with its UTC reading beside
 * it, taken from the tz database (checked against GNU date), never recomputed by the
 * code under test. */
#include "check.h"

#include "schedule.h"

#include <jansson.h>

#define S 1000LL /* milliseconds per second */

static int64_t local_utc(const char *tz, int y, int mo, int d, int h, int mi)
{
    int64_t out = -1;
    struct schedule_date date = {y, mo, d};
    if (schedule_local_to_utc(tz, date, h * 60 + mi, &out) != 0) {
        return -1;
    }
    return out;
}

static int parse(const char *text, struct schedule *s)
{
    char err[128] = "";
    json_error_t jerr;
    json_t *obj = json_loads(text, 0, &jerr);
    int rv = schedule_parse(obj, s, err, sizeof(err));
    json_decref(obj);
    return rv;
}

static void test_rfc3339(void)
{
    int64_t ms;
    CHECK(schedule_parse_rfc3339("2026-12-10T09:00:00Z", &ms) == 0 && ms == 1796893200 * S);
    CHECK(schedule_parse_rfc3339("2026-12-10T09:00:00.250Z", &ms) == 0 &&
          ms == 1796893200 * S + 250);
    CHECK(schedule_parse_rfc3339("2026-12-10T10:00:00+01:00", &ms) == 0 && ms == 1796893200 * S);
    CHECK(schedule_parse_rfc3339("2026-12-10T03:30:00-05:30", &ms) == 0 && ms == 1796893200 * S);
    CHECK(schedule_parse_rfc3339("1970-01-01T00:00:00Z", &ms) == 0 && ms == 0);
    CHECK(schedule_parse_rfc3339("2028-02-29T00:00:00Z", &ms) == 0 && ms == 1835395200 * S);
    CHECK(schedule_parse_rfc3339("2027-02-29T00:00:00Z", &ms) == -1);
    CHECK(schedule_parse_rfc3339("2026-12-10T09:00:00", &ms) == -1);
    CHECK(schedule_parse_rfc3339("2026-12-10 09:00Z", &ms) == -1);
    CHECK(schedule_parse_rfc3339("2026-13-10T09:00:00Z", &ms) == -1);
    CHECK(schedule_parse_rfc3339("2026-12-10T09:00:00Zjunk", &ms) == -1);
    CHECK(schedule_parse_rfc3339("", &ms) == -1);
}

static void test_local_to_utc(void)
{
    /* Plain winter and summer times. */
    CHECK(local_utc("Europe/Berlin", 2026, 12, 10, 9, 0) == 1796889600 * S);  /* 08:00Z */
    CHECK(local_utc("America/New_York", 2026, 7, 1, 9, 0) == 1782910800 * S); /* 13:00Z */
    CHECK(local_utc("UTC", 2026, 12, 10, 9, 0) == 1796893200 * S);            /* 09:00Z */
    /* Quarter- and half-hour offsets, the southern hemisphere's summer, UTC+14. */
    CHECK(local_utc("Asia/Kathmandu", 2026, 12, 10, 9, 0) == 1796872500 * S);   /* 03:15Z */
    CHECK(local_utc("America/St_Johns", 2026, 12, 10, 9, 0) == 1796905800 * S); /* 12:30Z */
    /* 2026-12-09T22:30Z: Adelaide is on +10:30 summer time in December. */
    CHECK(local_utc("Australia/Adelaide", 2026, 12, 10, 9, 0) == 1796855400 * S);
    CHECK(local_utc("Pacific/Kiritimati", 2026, 12, 10, 9, 0) == 1796842800 * S); /* 12-09 19:00Z */
    /* Spring-forward gaps: 02:30 does not exist; read with the offset before. */
    CHECK(local_utc("Europe/Berlin", 2026, 3, 29, 2, 30) == 1774747800 * S);    /* 01:30Z */
    CHECK(local_utc("America/New_York", 2026, 3, 8, 2, 30) == 1772955000 * S);  /* 07:30Z */
    CHECK(local_utc("Australia/Sydney", 2026, 10, 4, 2, 30) == 1791045000 * S); /* 10-03 16:30Z */
    /* Lord Howe moves by half an hour (+10:30 to +11): 02:15 falls in its gap. */
    CHECK(local_utc("Australia/Lord_Howe", 2026, 10, 4, 2, 15) == 1791042300 * S);
    /* Fall-back overlaps: the first of the two, still on summer time. */
    CHECK(local_utc("Europe/Berlin", 2026, 10, 25, 2, 30) == 1792888200 * S);   /* 00:30Z */
    CHECK(local_utc("America/New_York", 2026, 11, 1, 1, 30) == 1793511000 * S); /* 05:30Z */
    /* Just outside the changes, the ordinary offsets. */
    CHECK(local_utc("Europe/Berlin", 2026, 3, 29, 3, 0) == 1774746000 * S);  /* 01:00Z */
    CHECK(local_utc("Europe/Berlin", 2026, 10, 25, 3, 0) == 1792893600 * S); /* 02:00Z */
    CHECK(local_utc("Nowhere/Atlantis", 2026, 12, 10, 9, 0) == -1);
    CHECK(schedule_zone_known("Europe/Berlin"));
    CHECK(!schedule_zone_known("Nowhere/Atlantis"));
    CHECK(!schedule_zone_known(""));
}

static void test_parse(void)
{
    struct schedule s;
    CHECK(parse("{\"mode\":\"now\"}", &s) == 0 && s.mode == SCHEDULE_NOW);
    CHECK(parse("{\"mode\":\"at\",\"at\":\"2026-12-10T09:00:00Z\"}", &s) == 0 &&
          s.mode == SCHEDULE_AT && s.at_ms == 1796893200 * S);
    CHECK(parse("{\"mode\":\"at\",\"at\":\"tomorrow\"}", &s) == -1);
    CHECK(parse("{\"mode\":\"at\"}", &s) == -1);
    CHECK(parse("{\"mode\":\"local\",\"date\":\"2026-12-10\",\"time\":\"09:00\","
                "\"fallback_tz\":\"America/New_York\",\"if_passed\":\"skip\"}",
                &s) == 0);
    CHECK(s.mode == SCHEDULE_LOCAL && s.minute_of_day == 540 && s.date.year == 2026 &&
          s.date.month == 12 && s.date.day == 10 && s.if_passed == IF_PASSED_SKIP);
    CHECK_STR(s.fallback_tz, "America/New_York");
    CHECK(parse("{\"mode\":\"local\",\"date\":\"2026-12-10\",\"time\":\"09:00\"}", &s) == 0 &&
          s.if_passed == IF_PASSED_NEXT_DAY);
    CHECK_STR(s.fallback_tz, "UTC");
    CHECK(parse("{\"mode\":\"local\",\"date\":\"2026-12-10\",\"time\":\"24:00\"}", &s) == -1);
    CHECK(parse("{\"mode\":\"local\",\"date\":\"2026-12-10\",\"time\":\"09:00\","
                "\"fallback_tz\":\"Mars/Olympus\"}",
                &s) == -1);
    CHECK(parse("{\"mode\":\"local\",\"date\":\"2026-12-10\",\"time\":\"09:00\","
                "\"if_passed\":\"later\"}",
                &s) == -1);
    CHECK(parse("{\"mode\":\"recurring\",\"rrule\":\"FREQ=WEEKLY;BYDAY=MO\",\"time\":\"09:00\","
                "\"local\":false,\"fallback_tz\":\"Europe/Berlin\",\"start_date\":\"2026-12-07\","
                "\"until\":\"2026-12-31\"}",
                &s) == 0);
    CHECK(s.mode == SCHEDULE_RECURRING && !s.local && s.has_until && s.until.day == 31);
    CHECK(parse("{\"mode\":\"recurring\",\"rrule\":\"FREQ=SOMETIMES\",\"time\":\"09:00\","
                "\"start_date\":\"2026-12-07\"}",
                &s) == -1);
    CHECK(parse("{\"mode\":\"weekly\"}", &s) == -1);
    CHECK(parse("{}", &s) == -1);
    CHECK(parse("[]", &s) == -1);
}

static void test_runs(void)
{
    struct schedule s;
    struct schedule_run run;
    int64_t now = 1796000000 * S; /* 2026-11-30T00:53:20Z */

    /* now: one run at the instant it was scheduled, then none. */
    CHECK(parse("{\"mode\":\"now\"}", &s) == 0);
    CHECK(schedule_next_run(&s, now, -1, now, &run) == 1 && run.occurrence_ms == now &&
          run.earliest_due_ms == now && run.latest_due_ms == now);
    CHECK(schedule_next_run(&s, now, now, now, &run) == 0);

    /* at: one run at that instant. */
    CHECK(parse("{\"mode\":\"at\",\"at\":\"2026-12-10T09:00:00Z\"}", &s) == 0);
    CHECK(schedule_next_run(&s, now, -1, now, &run) == 1 && run.occurrence_ms == 1796893200 * S);

    /* local: occurrence is the date at midnight UTC; due between 09:00 at UTC+14 (12-09
     * 19:00Z) and 09:00 at UTC-12 (12-10 21:00Z), plus a day when next_day may apply. */
    CHECK(parse("{\"mode\":\"local\",\"date\":\"2026-12-10\",\"time\":\"09:00\","
                "\"if_passed\":\"skip\"}",
                &s) == 0);
    CHECK(schedule_next_run(&s, now, -1, now, &run) == 1);
    CHECK(run.occurrence_ms == 1796860800 * S);   /* 2026-12-10T00:00Z */
    CHECK(run.earliest_due_ms == 1796842800 * S); /* 2026-12-09T19:00Z */
    CHECK(run.latest_due_ms == 1796936400 * S);   /* 2026-12-10T21:00Z */
    CHECK(schedule_next_run(&s, now, run.occurrence_ms, now, &run) == 0);

    /* recurring, every Monday from 2026-12-07 until 2026-12-31, 09:00 in Berlin. */
    CHECK(parse("{\"mode\":\"recurring\",\"rrule\":\"FREQ=WEEKLY;BYDAY=MO\",\"time\":\"09:00\","
                "\"local\":false,\"fallback_tz\":\"Europe/Berlin\",\"start_date\":\"2026-12-07\","
                "\"until\":\"2026-12-31\"}",
                &s) == 0);
    CHECK(schedule_next_run(&s, now, -1, now, &run) == 1);
    CHECK(run.occurrence_ms == 1796601600 * S);   /* 2026-12-07 */
    CHECK(run.earliest_due_ms == 1796630400 * S); /* 2026-12-07T08:00Z */
    CHECK(run.latest_due_ms == run.earliest_due_ms);
    CHECK(schedule_next_run(&s, now, 1796601600 * S, now, &run) == 1 &&
          run.occurrence_ms == 1797206400 * S); /* 2026-12-14 */
    CHECK(schedule_next_run(&s, now, 1797811200 * S, now, &run) == 1 &&
          run.occurrence_ms == 1798416000 * S); /* 2026-12-28, the last before until */
    CHECK(schedule_next_run(&s, now, 1798416000 * S, now, &run) == 0);
    /* Scheduled on 2026-12-15: the runs already past are not made. */
    CHECK(schedule_next_run(&s, 1797292800 * S, -1, 1797292800 * S, &run) == 1 &&
          run.occurrence_ms == 1797811200 * S); /* 2026-12-21 */

    /* Local recurring runs across the Berlin spring-forward: a Sunday 02:30 run. */
    CHECK(parse("{\"mode\":\"recurring\",\"rrule\":\"FREQ=DAILY;COUNT=3\",\"time\":\"02:30\","
                "\"local\":false,\"fallback_tz\":\"Europe/Berlin\","
                "\"start_date\":\"2026-03-28\"}",
                &s) == 0);
    int64_t t0 = 1774000000 * S; /* 2026-03-20 */
    CHECK(schedule_next_run(&s, t0, -1, t0, &run) == 1 &&
          run.earliest_due_ms == 1774661400 * S); /* 03-28 01:30Z (+01:00) */
    CHECK(schedule_next_run(&s, t0, run.occurrence_ms, t0, &run) == 1 &&
          run.earliest_due_ms == 1774747800 * S); /* 03-29 01:30Z (gap: read as +01:00) */
    CHECK(schedule_next_run(&s, t0, run.occurrence_ms, t0, &run) == 1 &&
          run.earliest_due_ms == 1774830600 * S); /* 03-30 00:30Z (+02:00) */
    CHECK(schedule_next_run(&s, t0, run.occurrence_ms, t0, &run) == 0);
}

static void test_recipient_due(void)
{
    struct schedule s;
    struct schedule_run run;
    int64_t due;
    int64_t early = 1796000000 * S; /* long before the run */
    CHECK(parse("{\"mode\":\"local\",\"date\":\"2026-12-10\",\"time\":\"09:00\","
                "\"fallback_tz\":\"America/New_York\"}",
                &s) == 0);
    CHECK(schedule_next_run(&s, early, -1, early, &run) == 1);

    struct recipient_zone berlin = {"Europe/Berlin", true, 3600};
    struct recipient_zone offset = {NULL, true, -3 * 3600}; /* Messenger: timezone -3 */
    struct recipient_zone none = {NULL, false, 0};
    struct recipient_zone unknown = {"Nowhere/Atlantis", false, 0};
    CHECK(schedule_recipient_due(&s, &run, &berlin, early, &due) == 1 &&
          due == 1796889600 * S); /* 08:00Z */
    CHECK(schedule_recipient_due(&s, &run, &offset, early, &due) == 1 &&
          due == 1796904000 * S); /* 12:00Z */
    /* No zone, or one the tz database does not know: the fallback, New York, 14:00Z. */
    CHECK(schedule_recipient_due(&s, &run, &none, early, &due) == 1 && due == 1796911200 * S);
    CHECK(schedule_recipient_due(&s, &run, &unknown, early, &due) == 1 && due == 1796911200 * S);

    /* Loaded at 2026-12-10T10:00Z: Berlin's 09:00 (08:00Z) has passed. */
    int64_t late = 1796896800 * S;
    CHECK(schedule_recipient_due(&s, &run, &berlin, late, &due) == 1 &&
          due == 1796976000 * S); /* next_day: 2026-12-11T08:00Z */
    CHECK(schedule_recipient_due(&s, &run, &none, late, &due) == 1 &&
          due == 1796911200 * S); /* New York's 09:00 is still ahead */
    s.if_passed = IF_PASSED_SEND_NOW;
    CHECK(schedule_recipient_due(&s, &run, &berlin, late, &due) == 1 && due == late);
    s.if_passed = IF_PASSED_SKIP;
    CHECK(schedule_recipient_due(&s, &run, &berlin, late, &due) == 0);
    /* Passed by a minute only: still sent at its time (loading takes a moment). */
    CHECK(schedule_recipient_due(&s, &run, &berlin, 1796889660 * S, &due) == 1 &&
          due == 1796889600 * S);

    /* now and at: everyone at the run's instant, whatever their zone. */
    CHECK(parse("{\"mode\":\"at\",\"at\":\"2026-12-10T09:00:00Z\"}", &s) == 0);
    CHECK(schedule_next_run(&s, early, -1, early, &run) == 1);
    CHECK(schedule_recipient_due(&s, &run, &berlin, early, &due) == 1 && due == 1796893200 * S);
}

/* The zones the issue names, at their edges (expected instants from the tz database). */
static void test_more_zones(void)
{
    /* London: GMT in winter, BST in summer; 01:00-02:00 missing on 2026-03-29 and twice
     * on 2026-10-25. */
    CHECK(local_utc("Europe/London", 2026, 12, 10, 9, 0) == 1796893200 * S);  /* 09:00Z */
    CHECK(local_utc("Europe/London", 2026, 7, 1, 9, 0) == 1782892800 * S);    /* 08:00Z */
    CHECK(local_utc("Europe/London", 2026, 3, 29, 1, 30) == 1774747800 * S);  /* gap: 01:30Z */
    CHECK(local_utc("Europe/London", 2026, 3, 29, 2, 0) == 1774746000 * S);   /* 01:00Z */
    CHECK(local_utc("Europe/London", 2026, 10, 25, 1, 30) == 1792888200 * S); /* first: 00:30Z */
    /* Lord Howe: +11 in summer, +10:30 in winter; 01:30-02:00 twice on 2026-04-05. */
    CHECK(local_utc("Australia/Lord_Howe", 2026, 12, 10, 9, 0) ==
          1796853600 * S);                                                        /* 12-09 22:00Z */
    CHECK(local_utc("Australia/Lord_Howe", 2026, 7, 1, 9, 0) == 1782858600 * S);  /* 06-30 22:30Z */
    CHECK(local_utc("Australia/Lord_Howe", 2026, 4, 5, 1, 45) == 1775313900 * S); /* 04-04 14:45Z */
    CHECK(local_utc("Australia/Lord_Howe", 2026, 4, 5, 9, 0) == 1775341800 * S);  /* 04-04 22:30Z */
    /* Kathmandu: +05:45 all year. */
    CHECK(local_utc("Asia/Kathmandu", 2026, 7, 1, 9, 0) == 1782875700 * S); /* 03:15Z */
    /* Chatham: +13:45 in summer, +12:45 in winter; 02:45-03:45 missing on 2026-09-27
     * and twice on 2026-04-05. */
    CHECK(local_utc("Pacific/Chatham", 2026, 12, 10, 9, 0) == 1796843700 * S); /* 12-09 19:15Z */
    CHECK(local_utc("Pacific/Chatham", 2026, 7, 1, 9, 0) == 1782850500 * S);   /* 06-30 20:15Z */
    CHECK(local_utc("Pacific/Chatham", 2026, 9, 27, 3, 0) ==
          1790432100 * S); /* gap: 09-26 14:15Z */
    CHECK(local_utc("Pacific/Chatham", 2026, 4, 5, 3, 15) ==
          1775309400 * S); /* first: 04-04 13:30Z */
}

/* Recurring runs across a DST change: the wall time stays, the UTC instant moves. */
static void test_recurring_across_dst(void)
{
    struct schedule s;
    struct schedule_run run;
    int64_t due;
    int64_t t0 = 1772000000 * S; /* 2026-02-25 */

    /* Every Monday 09:00 in each recipient's zone: New York springs forward on 03-08. */
    CHECK(parse("{\"mode\":\"recurring\",\"rrule\":\"FREQ=WEEKLY;BYDAY=MO\",\"time\":\"09:00\","
                "\"local\":true,\"fallback_tz\":\"UTC\",\"start_date\":\"2026-03-02\"}",
                &s) == 0);
    struct recipient_zone ny = {"America/New_York", false, 0};
    struct recipient_zone chatham = {"Pacific/Chatham", false, 0};
    struct recipient_zone none = {NULL, false, 0};
    CHECK(schedule_next_run(&s, t0, -1, t0, &run) == 1);
    CHECK(schedule_recipient_due(&s, &run, &ny, t0, &due) == 1 &&
          due == 1772460000 * S); /* 14:00Z */
    CHECK(schedule_recipient_due(&s, &run, &none, t0, &due) == 1 &&
          due == 1772442000 * S); /* the fallback, UTC: 09:00Z */
    CHECK(schedule_next_run(&s, t0, run.occurrence_ms, t0, &run) == 1);
    CHECK(schedule_recipient_due(&s, &run, &ny, t0, &due) == 1 &&
          due == 1773061200 * S); /* 13:00Z */
    CHECK(schedule_next_run(&s, t0, run.occurrence_ms, t0, &run) == 1);
    CHECK(schedule_recipient_due(&s, &run, &ny, t0, &due) == 1 &&
          due == 1773666000 * S); /* 13:00Z */

    /* London, not local: everyone at 09:00 London; BST starts 2026-03-29. */
    CHECK(parse("{\"mode\":\"recurring\",\"rrule\":\"FREQ=WEEKLY;BYDAY=MO\",\"time\":\"09:00\","
                "\"local\":false,\"fallback_tz\":\"Europe/London\","
                "\"start_date\":\"2026-03-23\"}",
                &s) == 0);
    CHECK(schedule_next_run(&s, t0, -1, t0, &run) == 1 && run.earliest_due_ms == 1774256400 * S);
    CHECK(schedule_recipient_due(&s, &run, &chatham, t0, &due) == 1 &&
          due == 1774256400 * S); /* not local: the recipient's zone does not matter */
    CHECK(schedule_next_run(&s, t0, run.occurrence_ms, t0, &run) == 1 &&
          run.earliest_due_ms == 1774857600 * S); /* 03-30 08:00Z */

    /* Chatham, local: daylight time starts 2026-09-27, between two Mondays. */
    CHECK(parse("{\"mode\":\"recurring\",\"rrule\":\"FREQ=WEEKLY;BYDAY=MO\",\"time\":\"09:00\","
                "\"start_date\":\"2026-09-21\"}",
                &s) == 0);
    int64_t t1 = 1789000000 * S; /* 2026-09-10 */
    CHECK(schedule_next_run(&s, t1, -1, t1, &run) == 1);
    CHECK(schedule_recipient_due(&s, &run, &chatham, t1, &due) == 1 &&
          due == 1789935300 * S); /* 09-20 20:15Z (+12:45) */
    CHECK(schedule_next_run(&s, t1, run.occurrence_ms, t1, &run) == 1);
    CHECK(schedule_recipient_due(&s, &run, &chatham, t1, &due) == 1 &&
          due == 1790536500 * S); /* 09-27 19:15Z (+13:45) */
}

int main(void)
{
    test_rfc3339();
    test_local_to_utc();
    test_parse();
    test_runs();
    test_recipient_due();
    test_more_zones();
    test_recurring_across_dst();
    CHECK_DONE();
}
