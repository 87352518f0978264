/* schedule.c: schedule parsing, runs and per-recipient due times (see schedule.h). */
#include "schedule.h"

#include <libical/ical.h>
#include <stdio.h>
#include <string.h>

#define MS_PER_MINUTE 60000LL
#define MS_PER_DAY 86400000LL

/* Zones span UTC-12 to UTC+14: a wall time happens somewhere in the world between
 * 14 hours before and 12 hours after the same wall time in UTC. */
#define EARLIEST_ZONE_MS (14 * 60 * MS_PER_MINUTE)
#define LATEST_ZONE_MS (12 * 60 * MS_PER_MINUTE)

/* A recipient whose wall time passed less than this long before the run was loaded
 * is still sent at once rather than treated as "passed": loading takes a moment, and
 * a campaign scheduled for 09:00 at 08:59 must not move everyone in UTC to tomorrow. */
#define PASSED_GRACE_MS (5 * MS_PER_MINUTE)

/* How far a recurring rule is followed looking for the next run (daily for 100 years). */
#define RRULE_MAX_STEPS 36600

int64_t schedule_days_from_civil(struct schedule_date date)
{
    /* Howard Hinnant's days_from_civil: exact for the proleptic Gregorian calendar. */
    int64_t y = date.year - (date.month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = (date.month + 9) % 12;
    int64_t doy = (153 * mp + 2) / 5 + date.day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

struct schedule_date schedule_civil_from_days(int64_t z)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    struct schedule_date d;
    d.day = (int)(doy - (153 * mp + 2) / 5 + 1);
    d.month = (int)(mp < 10 ? mp + 3 : mp - 9);
    d.year = (int)(yoe + era * 400 + (d.month <= 2));
    return d;
}

static bool date_valid(struct schedule_date d)
{
    static const int days_in_month[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (d.year < 1970 || d.year > 9999 || d.month < 1 || d.month > 12 || d.day < 1 ||
        d.day > days_in_month[d.month - 1]) {
        return false;
    }
    /* February 29th only in leap years: the round trip through days says so. */
    struct schedule_date back = schedule_civil_from_days(schedule_days_from_civil(d));
    return back.day == d.day && back.month == d.month;
}

int schedule_parse_date(const char *text, struct schedule_date *out)
{
    int n = 0;
    struct schedule_date d;
    if (sscanf(text, "%4d-%2d-%2d%n", &d.year, &d.month, &d.day, &n) != 3 || n != 10 ||
        text[n] != '\0' || !date_valid(d)) {
        return -1;
    }
    *out = d;
    return 0;
}

static int parse_minute_of_day(const char *text, int *out)
{
    int h, m, n = 0;
    if (sscanf(text, "%2d:%2d%n", &h, &m, &n) != 2 || n != 5 || text[n] != '\0' || h < 0 ||
        h > 23 || m < 0 || m > 59) {
        return -1;
    }
    *out = h * 60 + m;
    return 0;
}

int schedule_parse_rfc3339(const char *text, int64_t *out_ms)
{
    struct schedule_date d;
    int hh, mm, ss, n = 0;
    if (sscanf(text, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &d.year, &d.month, &d.day, &hh, &mm, &ss,
               &n) != 6 ||
        n != 19 || !date_valid(d) || hh > 23 || mm > 59 || ss > 60 || hh < 0 || mm < 0 || ss < 0) {
        return -1;
    }
    const char *p = text + n;
    int64_t frac_ms = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            if (digits < 3) {
                frac_ms = frac_ms * 10 + (*p - '0');
            }
        }
        if (digits == 0) {
            return -1;
        }
        for (; digits < 3; digits++) {
            frac_ms *= 10;
        }
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5 || oh > 23 || om > 59) {
            return -1;
        }
        offset_s = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 1 + m;
    } else {
        return -1;
    }
    if (*p != '\0') {
        return -1;
    }
    if (ss == 60) {
        ss = 59; /* a leap second: the instant just before the next minute */
    }
    int64_t secs = schedule_days_from_civil(d) * 86400 + hh * 3600 + mm * 60 + ss - offset_s;
    *out_ms = secs * 1000 + frac_ms;
    return 0;
}

static icaltimezone *zone_lookup(const char *tzid)
{
    if (tzid == NULL || tzid[0] == '\0') {
        return NULL;
    }
    if (strcmp(tzid, "UTC") == 0 || strcmp(tzid, "Etc/UTC") == 0 || strcmp(tzid, "GMT") == 0 ||
        strcmp(tzid, "Z") == 0) {
        return icaltimezone_get_utc_timezone();
    }
    return icaltimezone_get_builtin_timezone(tzid);
}

bool schedule_zone_known(const char *tzid)
{
    return zone_lookup(tzid) != NULL;
}

/* The zone's offset from UTC, in seconds, at a UTC instant. */
static int zone_offset_at(icaltimezone *zone, int64_t utc_s)
{
    if (zone == icaltimezone_get_utc_timezone()) {
        return 0;
    }
    struct icaltimetype t =
        icaltime_from_timet_with_zone((time_t)utc_s, 0, icaltimezone_get_utc_timezone());
    int is_daylight = 0;
    return icaltimezone_get_utc_offset_of_utc_time(zone, &t, &is_daylight);
}

int schedule_local_to_utc(const char *tzid, struct schedule_date date, int minute_of_day,
                          int64_t *out_ms)
{
    icaltimezone *zone = zone_lookup(tzid);
    if (zone == NULL) {
        return -1;
    }
    /* The wall time read as if it were UTC, then corrected by the zone's offset. Zone
     * rules change at most once within two days, so the offsets a day before and a day
     * after are the only candidates; each is right if the offset at the instant it
     * gives is itself. Both right: the wall time happens twice, take the first. Neither:
     * it falls in a gap, read it with the offset before the change. */
    int64_t wall_s = schedule_days_from_civil(date) * 86400 + (int64_t)minute_of_day * 60;
    int before = zone_offset_at(zone, wall_s - 86400);
    int after = zone_offset_at(zone, wall_s + 86400);
    int64_t with_before = wall_s - before, with_after = wall_s - after;
    bool before_ok = zone_offset_at(zone, with_before) == before;
    bool after_ok = zone_offset_at(zone, with_after) == after;
    int64_t utc_s;
    if (before_ok && after_ok) {
        utc_s = with_before < with_after ? with_before : with_after;
    } else if (before_ok) {
        utc_s = with_before;
    } else if (after_ok) {
        utc_s = with_after;
    } else {
        utc_s = with_before;
    }
    *out_ms = utc_s * 1000;
    return 0;
}

static int set_err(char *err, size_t errlen, const char *field, const char *problem)
{
    snprintf(err, errlen, "schedule.%s: %s", field, problem);
    return -1;
}

static const char *get_string(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static int parse_wall_time_fields(const json_t *obj, struct schedule *out, char *err, size_t errlen)
{
    const char *time = get_string(obj, "time");
    if (time == NULL || parse_minute_of_day(time, &out->minute_of_day) != 0) {
        return set_err(err, errlen, "time", "not a time of day (HH:MM)");
    }
    const char *fallback = get_string(obj, "fallback_tz");
    if (fallback == NULL) {
        fallback = "UTC";
    }
    if (strlen(fallback) >= sizeof(out->fallback_tz) || !schedule_zone_known(fallback)) {
        return set_err(err, errlen, "fallback_tz", "unknown time zone");
    }
    snprintf(out->fallback_tz, sizeof(out->fallback_tz), "%s", fallback);
    return 0;
}

int schedule_parse(const json_t *obj, struct schedule *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "schedule: not an object");
        return -1;
    }
    const char *mode = get_string(obj, "mode");
    if (mode == NULL) {
        return set_err(err, errlen, "mode", "missing");
    }
    if (strcmp(mode, "now") == 0) {
        out->mode = SCHEDULE_NOW;
        return 0;
    }
    if (strcmp(mode, "at") == 0) {
        out->mode = SCHEDULE_AT;
        const char *at = get_string(obj, "at");
        if (at == NULL || schedule_parse_rfc3339(at, &out->at_ms) != 0) {
            return set_err(err, errlen, "at", "not an RFC 3339 time");
        }
        return 0;
    }
    if (strcmp(mode, "local") == 0) {
        out->mode = SCHEDULE_LOCAL;
        const char *date = get_string(obj, "date");
        if (date == NULL || schedule_parse_date(date, &out->date) != 0) {
            return set_err(err, errlen, "date", "not a date (YYYY-MM-DD)");
        }
        if (parse_wall_time_fields(obj, out, err, errlen) != 0) {
            return -1;
        }
        const char *if_passed = get_string(obj, "if_passed");
        if (if_passed == NULL || strcmp(if_passed, "next_day") == 0) {
            out->if_passed = IF_PASSED_NEXT_DAY;
        } else if (strcmp(if_passed, "send_now") == 0) {
            out->if_passed = IF_PASSED_SEND_NOW;
        } else if (strcmp(if_passed, "skip") == 0) {
            out->if_passed = IF_PASSED_SKIP;
        } else {
            return set_err(err, errlen, "if_passed", "not one of next_day, send_now, skip");
        }
        return 0;
    }
    if (strcmp(mode, "recurring") == 0) {
        out->mode = SCHEDULE_RECURRING;
        /* A recipient whose time passed in a recurring run waits for the next run. */
        out->if_passed = IF_PASSED_SKIP;
        const char *rrule = get_string(obj, "rrule");
        if (rrule != NULL && strncmp(rrule, "RRULE:", 6) == 0) {
            rrule += 6;
        }
        if (rrule == NULL || strlen(rrule) >= sizeof(out->rrule)) {
            return set_err(err, errlen, "rrule", "missing or too long");
        }
        struct icalrecurrencetype recur = icalrecurrencetype_from_string(rrule);
        if (recur.freq == ICAL_NO_RECURRENCE) {
            icalerror_clear_errno();
            return set_err(err, errlen, "rrule", "not an RFC 5545 recurrence rule");
        }
        snprintf(out->rrule, sizeof(out->rrule), "%s", rrule);
        const char *start = get_string(obj, "start_date");
        if (start == NULL || schedule_parse_date(start, &out->date) != 0) {
            return set_err(err, errlen, "start_date", "not a date (YYYY-MM-DD)");
        }
        if (parse_wall_time_fields(obj, out, err, errlen) != 0) {
            return -1;
        }
        json_t *local = json_object_get(obj, "local");
        out->local = local == NULL || json_is_true(local);
        const char *until = get_string(obj, "until");
        if (until != NULL) {
            int64_t until_ms;
            out->has_until = true;
            /* A date, or an instant whose UTC date is the last one. */
            if (schedule_parse_date(until, &out->until) != 0) {
                if (schedule_parse_rfc3339(until, &until_ms) != 0) {
                    return set_err(err, errlen, "until", "not a date or an RFC 3339 time");
                }
                int64_t days = until_ms / MS_PER_DAY - (until_ms % MS_PER_DAY < 0);
                out->until = schedule_civil_from_days(days);
            }
        }
        return 0;
    }
    return set_err(err, errlen, "mode", "not one of now, at, local, recurring");
}

static int64_t date_midnight_ms(struct schedule_date d)
{
    return schedule_days_from_civil(d) * MS_PER_DAY;
}

/* The window of due times of a run on date: the wall time across every zone, or in
 * the fallback zone only when a recurring campaign is not local. */
static int fill_dated_run(const struct schedule *s, struct schedule_date date,
                          struct schedule_run *run)
{
    run->occurrence_ms = date_midnight_ms(date);
    run->date = date;
    int64_t wall_ms = run->occurrence_ms + s->minute_of_day * MS_PER_MINUTE;
    if (s->mode == SCHEDULE_RECURRING && !s->local) {
        if (schedule_local_to_utc(s->fallback_tz, date, s->minute_of_day, &run->earliest_due_ms) !=
            0) {
            return -1;
        }
        run->latest_due_ms = run->earliest_due_ms;
        return 0;
    }
    run->earliest_due_ms = wall_ms - EARLIEST_ZONE_MS;
    run->latest_due_ms = wall_ms + LATEST_ZONE_MS;
    if (s->if_passed == IF_PASSED_NEXT_DAY) {
        run->latest_due_ms += MS_PER_DAY;
    }
    return 0;
}

static int next_recurring_run(const struct schedule *s, int64_t after_occurrence_ms, int64_t now_ms,
                              struct schedule_run *run)
{
    struct icalrecurrencetype recur = icalrecurrencetype_from_string(s->rrule);
    if (recur.freq == ICAL_NO_RECURRENCE) {
        icalerror_clear_errno();
        return -1;
    }
    /* From text: a hand-filled icaltime_null_date() makes libical repeat the first date. */
    char start[16];
    snprintf(start, sizeof(start), "%04d%02d%02d", s->date.year, s->date.month, s->date.day);
    struct icaltimetype dtstart = icaltime_from_string(start);
    icalrecur_iterator *it = icalrecur_iterator_new(recur, dtstart);
    if (it == NULL) {
        icalerror_clear_errno();
        return -1;
    }
    int found = 0;
    for (int step = 0; step < RRULE_MAX_STEPS; step++) {
        struct icaltimetype t = icalrecur_iterator_next(it);
        if (icaltime_is_null_time(t)) {
            break;
        }
        struct schedule_date date = {t.year, t.month, t.day};
        if (s->has_until && schedule_days_from_civil(date) > schedule_days_from_civil(s->until)) {
            break;
        }
        if (after_occurrence_ms >= 0 && date_midnight_ms(date) <= after_occurrence_ms) {
            continue;
        }
        if (fill_dated_run(s, date, run) != 0) {
            found = -1;
            break;
        }
        /* A date whose every recipient is already late would only be skipped. */
        if (run->latest_due_ms + PASSED_GRACE_MS < now_ms) {
            continue;
        }
        found = 1;
        break;
    }
    icalrecur_iterator_free(it);
    return found;
}

int schedule_next_run(const struct schedule *s, int64_t scheduled_at_ms,
                      int64_t after_occurrence_ms, int64_t now_ms, struct schedule_run *run)
{
    memset(run, 0, sizeof(*run));
    switch (s->mode) {
    case SCHEDULE_NOW:
    case SCHEDULE_AT:
        if (after_occurrence_ms >= 0) {
            return 0;
        }
        run->occurrence_ms = s->mode == SCHEDULE_NOW ? scheduled_at_ms : s->at_ms;
        run->earliest_due_ms = run->latest_due_ms = run->occurrence_ms;
        return 1;
    case SCHEDULE_LOCAL:
        if (after_occurrence_ms >= 0) {
            return 0;
        }
        return fill_dated_run(s, s->date, run) == 0 ? 1 : -1;
    case SCHEDULE_RECURRING:
        return next_recurring_run(s, after_occurrence_ms, now_ms, run);
    }
    return -1;
}

int schedule_run_at(const struct schedule *s, int64_t occurrence_ms, struct schedule_run *run)
{
    memset(run, 0, sizeof(*run));
    if (s->mode == SCHEDULE_NOW || s->mode == SCHEDULE_AT) {
        run->occurrence_ms = run->earliest_due_ms = run->latest_due_ms = occurrence_ms;
        return 0;
    }
    int64_t days = occurrence_ms / MS_PER_DAY - (occurrence_ms % MS_PER_DAY < 0);
    return fill_dated_run(s, schedule_civil_from_days(days), run);
}

/* The wall time of date in the recipient's zone (or the fallback), as UTC. */
static int recipient_wall_time(const struct schedule *s, struct schedule_date date,
                               const struct recipient_zone *zone, int64_t *out_ms)
{
    bool own_zone = s->mode == SCHEDULE_LOCAL || s->local;
    if (own_zone && zone != NULL) {
        if (zone->tzid != NULL && zone->tzid[0] != '\0') {
            if (schedule_local_to_utc(zone->tzid, date, s->minute_of_day, out_ms) == 0) {
                return 0;
            }
            /* An unknown zone name takes the fallback zone (design.md). */
        } else if (zone->has_offset) {
            *out_ms = date_midnight_ms(date) + s->minute_of_day * MS_PER_MINUTE -
                      (int64_t)zone->offset_s * 1000;
            return 0;
        }
    }
    return schedule_local_to_utc(s->fallback_tz, date, s->minute_of_day, out_ms);
}

int schedule_recipient_due(const struct schedule *s, const struct schedule_run *run,
                           const struct recipient_zone *zone, int64_t now_ms, int64_t *due_ms)
{
    if (s->mode == SCHEDULE_NOW || s->mode == SCHEDULE_AT) {
        *due_ms = run->occurrence_ms;
        return 1;
    }
    int64_t due;
    if (recipient_wall_time(s, run->date, zone, &due) != 0) {
        return -1;
    }
    if (due + PASSED_GRACE_MS >= now_ms) {
        *due_ms = due;
        return 1;
    }
    switch (s->if_passed) {
    case IF_PASSED_SEND_NOW:
        *due_ms = now_ms;
        return 1;
    case IF_PASSED_NEXT_DAY: {
        struct schedule_date next =
            schedule_civil_from_days(schedule_days_from_civil(run->date) + 1);
        if (recipient_wall_time(s, next, zone, &due) != 0) {
            return -1;
        }
        *due_ms = due;
        return 1;
    }
    case IF_PASSED_SKIP:
        break;
    }
    *due_ms = due;
    return 0;
}

struct schedule_zone schedule_recipient_zone(const struct recipient_zone *zone,
                                             const char *fallback_tz)
{
    struct schedule_zone z = {.tzid = fallback_tz, .fixed = false, .offset_s = 0};
    if (zone == NULL) {
        return z;
    }
    if (zone->tzid != NULL && zone->tzid[0] != '\0' && schedule_zone_known(zone->tzid)) {
        z.tzid = zone->tzid;
    } else if ((zone->tzid == NULL || zone->tzid[0] == '\0') && zone->has_offset) {
        z.fixed = true;
        z.offset_s = zone->offset_s;
    }
    return z;
}

int schedule_zone_to_utc(const struct schedule_zone *zone, struct schedule_date date,
                         int minute_of_day, int64_t *out_ms)
{
    if (zone->fixed) {
        *out_ms =
            date_midnight_ms(date) + minute_of_day * MS_PER_MINUTE - (int64_t)zone->offset_s * 1000;
        return 0;
    }
    return schedule_local_to_utc(zone->tzid, date, minute_of_day, out_ms);
}

int schedule_zone_offset(const struct schedule_zone *zone, int64_t utc_ms, int *offset_s)
{
    if (zone->fixed) {
        *offset_s = zone->offset_s;
        return 0;
    }
    icaltimezone *tz = zone_lookup(zone->tzid);
    if (tz == NULL) {
        return -1;
    }
    int64_t secs = utc_ms / 1000 - (utc_ms % 1000 < 0);
    *offset_s = zone_offset_at(tz, secs);
    return 0;
}
