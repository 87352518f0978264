/* clock.h: time helpers. Wall time for due times and records, monotonic time
 * for timeouts and intervals. */
#ifndef BCRM_CLOCK_H
#define BCRM_CLOCK_H

#include <stdint.h>

int64_t clock_wall_ms(void);
int64_t clock_mono_ms(void);
/* RFC 3339 UTC with milliseconds ("2026-12-10T09:00:00.000Z") into out[32]. */
void clock_format_rfc3339(int64_t wall_ms, char out[32]);

#endif
