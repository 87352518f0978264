/* http_delay.c: see http_delay.h. */
#include "http_delay.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* Connections resumed per pass of the thread, so the lock is never held long. */
#define RESUME_BATCH 256

struct delay_entry {
    int64_t due_ns;
    uint64_t seq; /* ties keep the order of arrival */
    struct MHD_Connection *conn;
};

struct http_delay {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* a new earliest entry, or quit */
    struct delay_entry *heap;
    size_t count;
    size_t cap;
    uint64_t next_seq;
    pthread_t thread;
    bool started;
    bool flushed; /* refuses new entries */
    bool quit;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool entry_before(const struct delay_entry *a, const struct delay_entry *b)
{
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->seq < b->seq);
}

static void heap_swap(struct delay_entry *h, size_t i, size_t j)
{
    struct delay_entry t = h[i];
    h[i] = h[j];
    h[j] = t;
}

static void heap_push(struct http_delay *d, struct delay_entry e)
{
    size_t i = d->count++;
    d->heap[i] = e;
    while (i > 0 && entry_before(&d->heap[i], &d->heap[(i - 1) / 2])) {
        heap_swap(d->heap, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static struct delay_entry heap_pop(struct http_delay *d)
{
    struct delay_entry top = d->heap[0];
    d->heap[0] = d->heap[--d->count];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, min = i;
        if (l < d->count && entry_before(&d->heap[l], &d->heap[min])) {
            min = l;
        }
        if (r < d->count && entry_before(&d->heap[r], &d->heap[min])) {
            min = r;
        }
        if (min == i) {
            return top;
        }
        heap_swap(d->heap, i, min);
        i = min;
    }
}

/* Resumes outside the lock: MHD takes its own locks in MHD_resume_connection,
 * and a handler may be waiting for ours in http_delay_add. */
static void resume_all(struct MHD_Connection **conns, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        MHD_resume_connection(conns[i]);
    }
}

static void *delay_main(void *arg)
{
    struct http_delay *d = arg;
    struct MHD_Connection *due[RESUME_BATCH];
    pthread_mutex_lock(&d->lock);
    while (!d->quit) {
        int64_t now = mono_ns();
        size_t n = 0;
        while (d->count > 0 && d->heap[0].due_ns <= now && n < RESUME_BATCH) {
            due[n++] = heap_pop(d).conn;
        }
        if (n > 0) {
            pthread_mutex_unlock(&d->lock);
            resume_all(due, n);
            pthread_mutex_lock(&d->lock);
            continue;
        }
        if (d->count == 0) {
            pthread_cond_wait(&d->wake, &d->lock);
        } else {
            int64_t at = d->heap[0].due_ns;
            struct timespec ts = {.tv_sec = (time_t)(at / 1000000000),
                                  .tv_nsec = (long)(at % 1000000000)};
            pthread_cond_timedwait(&d->wake, &d->lock, &ts);
        }
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

struct http_delay *http_delay_new(void)
{
    struct http_delay *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return NULL;
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->wake, &attr);
    pthread_condattr_destroy(&attr);
    return d;
}

int http_delay_add(struct http_delay *d, struct MHD_Connection *conn, int delay_ms)
{
    int rc = -1;
    pthread_mutex_lock(&d->lock);
    if (d->flushed) {
        goto out;
    }
    if (d->count == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 1024;
        struct delay_entry *grown = realloc(d->heap, cap * sizeof(*grown));
        if (grown == NULL) {
            goto out;
        }
        d->heap = grown;
        d->cap = cap;
    }
    if (!d->started) {
        if (pthread_create(&d->thread, NULL, delay_main, d) != 0) {
            goto out;
        }
        d->started = true;
    }
    struct delay_entry e = {
        .due_ns = mono_ns() + (int64_t)delay_ms * 1000000, .seq = d->next_seq++, .conn = conn};
    heap_push(d, e);
    if (d->heap[0].conn == conn) {
        pthread_cond_signal(&d->wake); /* the thread sleeps until a later time */
    }
    rc = 0;
out:
    pthread_mutex_unlock(&d->lock);
    return rc;
}

void http_delay_flush(struct http_delay *d)
{
    if (d == NULL) {
        return;
    }
    pthread_mutex_lock(&d->lock);
    d->flushed = true;
    struct delay_entry *waiting = d->heap;
    size_t n = d->count;
    d->heap = NULL;
    d->count = d->cap = 0;
    pthread_mutex_unlock(&d->lock);
    for (size_t i = 0; i < n; i++) {
        MHD_resume_connection(waiting[i].conn);
    }
    free(waiting);
}

size_t http_delay_waiting(struct http_delay *d)
{
    pthread_mutex_lock(&d->lock);
    size_t n = d->count;
    pthread_mutex_unlock(&d->lock);
    return n;
}

void http_delay_free(struct http_delay *d)
{
    if (d == NULL) {
        return;
    }
    pthread_mutex_lock(&d->lock);
    d->quit = true;
    pthread_cond_signal(&d->wake);
    bool started = d->started;
    pthread_mutex_unlock(&d->lock);
    if (started) {
        pthread_join(d->thread, NULL);
    }
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->wake);
    free(d->heap);
    free(d);
}
