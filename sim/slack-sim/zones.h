/* zones.h: the IANA time zones the simulated users live in.
 *
 * Slack reports a user's zone as tz (IANA name), tz_label and tz_offset (seconds
 * east of UTC, for the current instant). The offsets come from the system tz
 * database; zones_refresh() recomputes them, so a long-running simulator follows
 * daylight-saving changes within a minute.
 */
#ifndef SIM_ZONES_H
#define SIM_ZONES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct sim_zone {
    const char *name;      /* IANA, e.g. "Asia/Kathmandu" */
    const char *std_label; /* tz_label outside daylight-saving time */
    const char *dst_label; /* tz_label during daylight-saving time */
    atomic_int offset_s;   /* current UTC offset in seconds */
    atomic_bool is_dst;
};

/* Keeps the zones the system tz database knows (warning about any other) and
 * computes their offsets. Returns the number of usable zones. Call once, before
 * any thread reads the zones. */
size_t zones_init(void);
size_t zones_count(void);
/* Borrowed; lives for the whole process. */
struct sim_zone *zones_get(size_t i);
const struct sim_zone *zones_find(const char *name);
/* Recomputes every offset. It changes TZ in the environment for a moment, so call
 * it only from the main thread; request threads read the atomics only. */
void zones_refresh(void);
const char *zone_label(const struct sim_zone *z);

#endif
