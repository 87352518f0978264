/* sched_metrics.h: the scheduler's Prometheus series, registered once at start-up
 * (metrics.h) and updated from the event loop. */
#ifndef BCRM_SCHEDULER_SCHED_METRICS_H
#define BCRM_SCHEDULER_SCHED_METRICS_H

#include "bcrm/metrics.h"

enum sched_result_kind {
    SCHED_RESULT_SENT,
    SCHED_RESULT_RETRY,
    SCHED_RESULT_FAILED,
    SCHED_RESULT_UNKNOWN,
    SCHED_RESULT_STALE, /* fenced out: the lease was no longer current */
    SCHED_RESULT_KINDS
};

struct sched_metrics {
    struct metric *due_backlog;
    struct metric *lateness;
    struct metric *results[SCHED_RESULT_KINDS];
    struct metric *claimed;
    struct metric *skipped_late;
    struct metric *put_back;
    struct metric *is_leader;
    struct metric *in_flight;
    struct metric *senders[2]; /* by platform, as in enum sched_platform */
    struct metric *leases_expired;
    struct metric *deliveries_loaded;
    struct metric *campaigns_completed;
    struct metric *bots_paused;
    struct metric *window_held;
    struct metric *audience_pages;
};

extern struct sched_metrics sched_metrics;

void sched_metrics_init(void);
/* Counts a 429 pause of a bot in bcrm_scheduler_bot_pauses_total{bot_id}; the series
 * is registered on the bot's first pause (bounded by the bots that ever hit a limit). */
void sched_metrics_bot_paused(const char *bot_id);

#endif
