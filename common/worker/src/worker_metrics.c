/* worker_metrics.c: the series every sender exposes on /metrics. */
#include "worker_internal.h"

#include "bcrm/metrics.h"

#include <stdio.h>

void worker_metrics_init(struct worker_metrics *m)
{
    static const char *outcomes[] = {"unspecified", "sent", "retry", "failed", "unknown"};
    static const char *statuses[] = {"ok",           "platform_error", "token_invalid",
                                     "rate_limited", "unavailable",    "bad_request"};
    static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    char labels[64];
    /* "unspecified" is never counted (a module bug becomes "unknown"), so only the
     * four real outcomes are registered. */
    for (int i = 1; i < 5; i++) {
        snprintf(labels, sizeof(labels), "outcome=\"%s\"", outcomes[i]);
        m->sends[i] = metrics_counter("bcrm_sender_sends_total", "Sends by outcome.", labels);
    }
    m->sends[0] = m->sends[BCRM__V1__OUTCOME__OUTCOME_UNKNOWN];
    m->in_flight = metrics_gauge("bcrm_sender_in_flight",
                                 "Platform requests of sends currently in flight.", NULL);
    m->request_seconds = metrics_histogram("bcrm_sender_request_seconds",
                                           "Duration of platform requests made for sends.", NULL,
                                           bounds, sizeof(bounds) / sizeof(bounds[0]));
    for (int i = 0; i < 6; i++) {
        snprintf(labels, sizeof(labels), "status=\"%s\"", statuses[i]);
        m->queries[i] =
            metrics_counter("bcrm_sender_queries_total", "Platform queries by status.", labels);
    }
}
