/* window.c: send windows (see window.h). */
#include "window.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MS_PER_MINUTE 60000LL
#define MS_PER_DAY 86400000LL
#define MINUTES_PER_DAY 1440
/* Windows are looked for this many days ahead: a week, and a day for an overnight one. */
#define WINDOW_SEARCH_DAYS 9

static const char *const day_names[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static int fail(char *err, size_t errlen, const char *field, const char *problem)
{
    snprintf(err, errlen, "send_window.%s: %s", field, problem);
    return -1;
}

static int parse_hhmm(const char *text, int *out)
{
    int h, m, n = 0;
    if (text == NULL || sscanf(text, "%2d:%2d%n", &h, &m, &n) != 2 || n != 5 || text[n] != '\0' ||
        h < 0 || h > 24 || m < 0 || m > 59 || (h == 24 && m != 0)) {
        return -1;
    }
    *out = h * 60 + m;
    return 0;
}

int window_parse(const json_t *obj, struct send_window *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (obj == NULL || json_is_null(obj)) {
        return 0;
    }
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "send_window: not an object");
        return -1;
    }
    if (parse_hhmm(json_string_value(json_object_get(obj, "start")), &out->start_minute) != 0) {
        return fail(err, errlen, "start", "not a time of day (HH:MM)");
    }
    if (parse_hhmm(json_string_value(json_object_get(obj, "end")), &out->end_minute) != 0) {
        return fail(err, errlen, "end", "not a time of day (HH:MM)");
    }
    out->start_minute %= MINUTES_PER_DAY;
    out->end_minute %= MINUTES_PER_DAY;
    const json_t *days = json_object_get(obj, "days");
    if (days == NULL || json_is_null(days)) {
        out->days = 0x7f;
    } else if (!json_is_array(days) || json_array_size(days) == 0) {
        return fail(err, errlen, "days", "not a non-empty array of days");
    } else {
        size_t i;
        json_t *d;
        json_array_foreach(days, i, d)
        {
            const char *name = json_string_value(d);
            int found = -1;
            for (int k = 0; k < 7 && name != NULL && found < 0; k++) {
                if (strncasecmp(name, day_names[k], 3) == 0) {
                    found = k;
                }
            }
            if (found < 0) {
                return fail(err, errlen, "days", "not one of mon, tue, wed, thu, fri, sat, sun");
            }
            out->days |= 1u << found;
        }
    }
    out->present = true;
    return 0;
}

static int weekday(struct schedule_date d)
{
    int64_t days = schedule_days_from_civil(d);
    int w = (int)((days + 4) % 7); /* 1970-01-01 was a Thursday */
    return w < 0 ? w + 7 : w;
}

/* The first window, opening on a local date from first_local_day on, that closes after
 * after_ms. */
static int find_window(const struct send_window *w, const struct schedule_zone *zone,
                       int64_t first_local_day, int64_t after_ms, int64_t *opens_ms,
                       int64_t *closes_ms)
{
    bool whole_day = w->start_minute == w->end_minute;
    bool overnight = w->end_minute < w->start_minute;
    for (int k = 0; k < WINDOW_SEARCH_DAYS; k++) {
        struct schedule_date day = schedule_civil_from_days(first_local_day + k);
        if ((w->days & (1u << weekday(day))) == 0) {
            continue;
        }
        int64_t open, close;
        struct schedule_date end_day =
            schedule_civil_from_days(first_local_day + k + (whole_day || overnight ? 1 : 0));
        if (schedule_zone_to_utc(zone, day, w->start_minute, &open) != 0 ||
            schedule_zone_to_utc(zone, end_day, w->end_minute, &close) != 0) {
            return -1;
        }
        if (close > after_ms && close > open) {
            *opens_ms = open;
            *closes_ms = close;
            return 0;
        }
    }
    return -1; /* cannot happen: some day of every week is allowed */
}

static int64_t local_day_of(int64_t utc_ms, int offset_s)
{
    int64_t local = utc_ms + (int64_t)offset_s * 1000;
    return local / MS_PER_DAY - (local % MS_PER_DAY < 0);
}

int window_place(const struct send_window *w, const struct schedule_zone *zone, int64_t due_ms,
                 int64_t *opens_ms, int64_t *closes_ms)
{
    int offset_s;
    if (schedule_zone_offset(zone, due_ms, &offset_s) != 0) {
        return -1;
    }
    /* From the day before: an overnight window that opened yesterday may hold due_ms. */
    return find_window(w, zone, local_day_of(due_ms, offset_s) - 1, due_ms, opens_ms, closes_ms);
}

int window_next_after(const struct send_window *w, int64_t closed_ms, int64_t now_ms,
                      int64_t *opens_ms, int64_t *closes_ms)
{
    int64_t utc_minute = ((closed_ms % MS_PER_DAY) + MS_PER_DAY) % MS_PER_DAY / MS_PER_MINUTE;
    int east =
        (int)(((w->end_minute - utc_minute) % MINUTES_PER_DAY + MINUTES_PER_DAY) % MINUTES_PER_DAY);
    if (east >= 14 * 60) {
        east -= MINUTES_PER_DAY;
    }
    struct schedule_zone fixed = {.tzid = NULL, .fixed = true, .offset_s = east * 60};
    int64_t from = now_ms > closed_ms ? now_ms : closed_ms;
    return find_window(w, &fixed, local_day_of(from, fixed.offset_s) - 1, from, opens_ms,
                       closes_ms);
}
