/* sched_metrics.c: registration of the scheduler's series. */
#include "sched_metrics.h"

#include <stdio.h>
#include <string.h>

struct sched_metrics sched_metrics;

void sched_metrics_init(void)
{
    /* Fine at the low end, where the target lives (p99 under 20 ms), then coarse up to
     * the hour that a send window or a long pause can add. */
    static const double lateness_bounds[] = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
                                             0.1,   0.25,  0.5,   1,    2.5,  5,
                                             10,    30,    60,    300,  900,  3600};
    struct sched_metrics *m = &sched_metrics;
    m->due_backlog =
        metrics_gauge("bcrm_scheduler_due_backlog",
                      "Pending deliveries that are due now and not yet claimed.", NULL);
    m->lateness = metrics_histogram("bcrm_scheduler_lateness_seconds",
                                    "Seconds from when a delivery could go (its due time, or its "
                                    "send window opening) to its sending.",
                                    NULL, lateness_bounds,
                                    sizeof(lateness_bounds) / sizeof(lateness_bounds[0]));
    static const char *const outcome_labels[SCHED_RESULT_KINDS] = {
        "outcome=\"sent\"", "outcome=\"retry\"", "outcome=\"failed\"", "outcome=\"unknown\"",
        "outcome=\"stale\""};
    for (int i = 0; i < SCHED_RESULT_KINDS; i++) {
        m->results[i] = metrics_counter("bcrm_scheduler_results_total",
                                        "Send results received, by outcome (stale: fenced out).",
                                        outcome_labels[i]);
    }
    m->claimed = metrics_counter("bcrm_scheduler_claimed_total",
                                 "Deliveries claimed and handed to senders.", NULL);
    m->skipped_late = metrics_counter("bcrm_scheduler_skipped_late_total",
                                      "Deliveries skipped for passing max_lateness_minutes.", NULL);
    m->put_back = metrics_counter("bcrm_scheduler_put_back_total",
                                  "Claimed deliveries put back because no sender took them.", NULL);
    m->is_leader =
        metrics_gauge("bcrm_scheduler_is_leader",
                      "Whether this scheduler is the leader (1) or a standby (0).", NULL);
    m->in_flight =
        metrics_gauge("bcrm_scheduler_in_flight",
                      "Deliveries in 'sending', handed out and awaiting a result.", NULL);
    m->senders[0] =
        metrics_gauge("bcrm_scheduler_senders",
                      "Senders connected to the work socket, by platform.", "platform=\"slack\"");
    m->senders[1] = metrics_gauge("bcrm_scheduler_senders",
                                  "Senders connected to the work socket, by platform.",
                                  "platform=\"messenger\"");
    m->leases_expired = metrics_counter("bcrm_scheduler_leases_expired_total",
                                        "Deliveries whose lease expired: marked unknown.", NULL);
    m->deliveries_loaded = metrics_counter("bcrm_scheduler_deliveries_loaded_total",
                                           "Deliveries written while loading audiences.", NULL);
    m->campaigns_completed = metrics_counter("bcrm_scheduler_campaigns_completed_total",
                                             "Campaigns the scheduler completed.", NULL);
    m->bots_paused = metrics_gauge("bcrm_scheduler_bots_paused",
                                   "Bots resting after a 429, until their Retry-After.", NULL);
    m->window_held = metrics_counter(
        "bcrm_scheduler_window_held_total",
        "Deliveries held for their send window after it closed before they went.", NULL);
    m->audience_pages = metrics_counter("bcrm_scheduler_audience_pages_total",
                                        "Audience pages read from the platform.", NULL);
}

/* A small list of the series made so far: a bot paused twice counts on one series. */
#define BOT_SERIES_MAX 4096

void sched_metrics_bot_paused(const char *bot_id)
{
    static struct {
        char bot_id[40];
        struct metric *m;
    } series[BOT_SERIES_MAX];
    static int nseries;
    for (int i = 0; i < nseries; i++) {
        if (strcmp(series[i].bot_id, bot_id) == 0) {
            metric_inc(series[i].m);
            return;
        }
    }
    if (nseries == BOT_SERIES_MAX) {
        return;
    }
    char labels[64];
    snprintf(labels, sizeof(labels), "bot_id=\"%s\"", bot_id);
    snprintf(series[nseries].bot_id, sizeof(series[nseries].bot_id), "%s", bot_id);
    series[nseries].m =
        metrics_counter("bcrm_scheduler_bot_pauses_total",
                        "Pauses of a bot after a 429 (Retry-After), by bot.", labels);
    metric_inc(series[nseries++].m);
}
