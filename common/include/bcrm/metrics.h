/* metrics.h: Prometheus metrics for the /metrics endpoint of every service.
 *
 * Metrics are registered once at start-up and live for the life of the process;
 * the returned handles are never freed. Several series of one family share the
 * name and help text and differ by their label set, given preformatted:
 *
 *   struct metric *sent = metrics_counter("bcrm_sends_total", "Sends by outcome.",
 *                                         "outcome=\"sent\"");
 *   metric_inc(sent);
 *
 * Updates are thread-safe and cheap (one atomic or one short lock).
 */
#ifndef BCRM_METRICS_H
#define BCRM_METRICS_H

#include <stddef.h>

struct metric;

struct metric *metrics_counter(const char *name, const char *help, const char *labels);
struct metric *metrics_gauge(const char *name, const char *help, const char *labels);
/* bounds: ascending upper bounds (the +Inf bucket is added). Copied. */
struct metric *metrics_histogram(const char *name, const char *help, const char *labels,
                                 const double *bounds, size_t nbounds);

void metric_inc(struct metric *m);
void metric_add(struct metric *m, double v);
void metric_set(struct metric *m, double v);
void metric_observe(struct metric *m, double v);

/* The whole registry in the text exposition format, with process metrics
 * (resident memory, CPU seconds, start time). Free with free(). */
char *metrics_render(size_t *len);

#endif
