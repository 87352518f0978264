/* window.h: send windows, the quiet hours of a campaign (spec/api.md, "send_window").
 *
 *   "send_window": {"start": "09:00", "end": "18:00", "days": ["mon", "tue", ...]}
 *
 * A window is a wall-clock interval in the recipient's own zone (their IANA zone, else
 * their fixed offset, else the schedule's fallback zone, else UTC) on the days listed
 * (every day when "days" is absent). An end at or before the start is a window over
 * midnight (22:00-06:00 closes the next morning; "days" names the day it opens); start
 * equal to end is the whole day.
 *
 * What the scheduler does with it (the decision, docs in sched.h):
 *   - due_at stays the instant the schedule gave the recipient;
 *   - a delivery due outside its window waits for the next opening: next_attempt_at
 *     and window_opens_at are set to it, and max_lateness_minutes counts from there;
 *   - window_closes_at is the end of the window the delivery may go in; a delivery
 *     still pending then is held again until the next opening (window_next_after).
 *
 * Pure code on schedule.h's zone helpers; tests/unit/test_window.c.
 */
#ifndef BCRM_SCHEDULER_WINDOW_H
#define BCRM_SCHEDULER_WINDOW_H

#include "schedule.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct send_window {
    bool present;
    int start_minute, end_minute; /* minutes after local midnight */
    unsigned days;                /* bit per weekday, 0 = Sunday */
};

/* obj may be NULL or JSON null (no window). 0, or -1 with err naming the field. */
int window_parse(const json_t *obj, struct send_window *out, char *err, size_t errlen);

/* The window a delivery due at due_ms may go in: the one that contains due_ms, or the
 * next one to open after it. *opens_ms is the opening (at or before due_ms when due_ms
 * is inside), *closes_ms its end. 0, or -1 when the zone is unknown. */
int window_place(const struct send_window *w, const struct schedule_zone *zone, int64_t due_ms,
                 int64_t *opens_ms, int64_t *closes_ms);

/* The window, open at now_ms or the next to open, of a delivery whose last window closed
 * at closed_ms, with only that instant to go on (the zone is not stored): the
 * recipient's offset is read back from the window's end time. Offsets from +12:00 to +13:59 are
 * taken as east of UTC, +14:00 as -10:00 (Hawaii rather than Kiritimati), which can put a window
 * restricted to some days on the neighbouring day for the few people at -12:00 to -10:01 or +14:00.
 * The offset is held fixed, so a window after a DST change may open an hour off. */
int window_next_after(const struct send_window *w, int64_t closed_ms, int64_t now_ms,
                      int64_t *opens_ms, int64_t *closes_ms);

#endif
