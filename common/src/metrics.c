/* metrics.c: a fixed registry of counters, gauges and histograms. */
#include "bcrm/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum metric_kind { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metric {
    enum metric_kind kind;
    char *name;
    char *help;
    char *labels; /* "" when none */
    pthread_mutex_t lock;
    double value; /* counter, gauge; histogram sum */
    double *bounds;
    unsigned long long *buckets; /* cumulative at render time, per-bucket here */
    unsigned long long count;
    size_t nbounds;
    struct metric *next;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metric *registry_head, *registry_tail;
static time_t process_start;

static struct metric *metric_register(enum metric_kind kind, const char *name, const char *help,
                                      const char *labels)
{
    struct metric *m = calloc(1, sizeof(*m));
    m->kind = kind;
    m->name = strdup(name);
    m->help = strdup(help);
    m->labels = strdup(labels ? labels : "");
    pthread_mutex_init(&m->lock, NULL);
    pthread_mutex_lock(&registry_lock);
    if (process_start == 0) {
        process_start = time(NULL);
    }
    /* Keep a family's series together: insert after the last one of the name. */
    struct metric *after = NULL;
    for (struct metric *it = registry_head; it != NULL; it = it->next) {
        if (strcmp(it->name, name) == 0) {
            after = it;
        }
    }
    if (after != NULL) {
        m->next = after->next;
        after->next = m;
        if (registry_tail == after) {
            registry_tail = m;
        }
    } else if (registry_tail != NULL) {
        registry_tail->next = m;
        registry_tail = m;
    } else {
        registry_head = registry_tail = m;
    }
    pthread_mutex_unlock(&registry_lock);
    return m;
}

struct metric *metrics_counter(const char *name, const char *help, const char *labels)
{
    return metric_register(METRIC_COUNTER, name, help, labels);
}

struct metric *metrics_gauge(const char *name, const char *help, const char *labels)
{
    return metric_register(METRIC_GAUGE, name, help, labels);
}

struct metric *metrics_histogram(const char *name, const char *help, const char *labels,
                                 const double *bounds, size_t nbounds)
{
    struct metric *m = metric_register(METRIC_HISTOGRAM, name, help, labels);
    m->bounds = malloc(nbounds * sizeof(double));
    memcpy(m->bounds, bounds, nbounds * sizeof(double));
    m->buckets = calloc(nbounds + 1, sizeof(unsigned long long));
    m->nbounds = nbounds;
    return m;
}

void metric_add(struct metric *m, double v)
{
    pthread_mutex_lock(&m->lock);
    m->value += v;
    pthread_mutex_unlock(&m->lock);
}

void metric_inc(struct metric *m)
{
    metric_add(m, 1.0);
}

void metric_set(struct metric *m, double v)
{
    pthread_mutex_lock(&m->lock);
    m->value = v;
    pthread_mutex_unlock(&m->lock);
}

void metric_observe(struct metric *m, double v)
{
    size_t i = 0;
    while (i < m->nbounds && v > m->bounds[i]) {
        i++;
    }
    pthread_mutex_lock(&m->lock);
    m->buckets[i]++;
    m->count++;
    m->value += v;
    pthread_mutex_unlock(&m->lock);
}

struct render_buf {
    char *data;
    size_t len, cap;
};

static void rb_printf(struct render_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void rb_printf(struct render_buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->cap + (size_t)n) * 2;
        b->data = realloc(b->data, b->cap);
    }
}

/* labels joined with an extra one (le="..."), inside braces or nothing at all. */
static void rb_labels(struct render_buf *b, const char *labels, const char *extra)
{
    if (labels[0] == '\0' && extra == NULL) {
        return;
    }
    rb_printf(b, "{%s%s%s}", labels, (labels[0] && extra) ? "," : "", extra ? extra : "");
}

static void render_process(struct render_buf *b)
{
    long rss_pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        long size;
        if (fscanf(f, "%ld %ld", &size, &rss_pages) != 2) {
            rss_pages = 0;
        }
        fclose(f);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    rb_printf(b,
              "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
              "# TYPE process_resident_memory_bytes gauge\n"
              "process_resident_memory_bytes %ld\n",
              rss_pages * sysconf(_SC_PAGESIZE));
    rb_printf(b,
              "# HELP process_max_resident_memory_bytes Peak resident memory in bytes.\n"
              "# TYPE process_max_resident_memory_bytes gauge\n"
              "process_max_resident_memory_bytes %ld\n",
              ru.ru_maxrss * 1024L);
    rb_printf(b,
              "# HELP process_cpu_seconds_total Total user and system CPU time in seconds.\n"
              "# TYPE process_cpu_seconds_total counter\n"
              "process_cpu_seconds_total %.6f\n",
              cpu);
    rb_printf(b,
              "# HELP process_start_time_seconds Start time of the process since the epoch.\n"
              "# TYPE process_start_time_seconds gauge\n"
              "process_start_time_seconds %lld\n",
              (long long)process_start);
}

char *metrics_render(size_t *len)
{
    struct render_buf b = {.data = malloc(4096), .cap = 4096};
    b.data[0] = '\0';
    pthread_mutex_lock(&registry_lock);
    if (process_start == 0) {
        process_start = time(NULL);
    }
    const char *family = NULL;
    for (struct metric *m = registry_head; m != NULL; m = m->next) {
        if (family == NULL || strcmp(family, m->name) != 0) {
            static const char *types[] = {"counter", "gauge", "histogram"};
            rb_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
                      types[m->kind]);
            family = m->name;
        }
        pthread_mutex_lock(&m->lock);
        if (m->kind == METRIC_HISTOGRAM) {
            unsigned long long cum = 0;
            for (size_t i = 0; i <= m->nbounds; i++) {
                char le[48];
                cum += m->buckets[i];
                if (i < m->nbounds) {
                    snprintf(le, sizeof(le), "le=\"%g\"", m->bounds[i]);
                } else {
                    snprintf(le, sizeof(le), "le=\"+Inf\"");
                }
                rb_printf(&b, "%s_bucket", m->name);
                rb_labels(&b, m->labels, le);
                rb_printf(&b, " %llu\n", cum);
            }
            rb_printf(&b, "%s_sum", m->name);
            rb_labels(&b, m->labels, NULL);
            rb_printf(&b, " %.17g\n", m->value);
            rb_printf(&b, "%s_count", m->name);
            rb_labels(&b, m->labels, NULL);
            rb_printf(&b, " %llu\n", m->count);
        } else {
            rb_printf(&b, "%s", m->name);
            rb_labels(&b, m->labels, NULL);
            rb_printf(&b, " %.17g\n", m->value);
        }
        pthread_mutex_unlock(&m->lock);
    }
    pthread_mutex_unlock(&registry_lock);
    render_process(&b);
    *len = b.len;
    return b.data;
}
