/* http_delay.c: see http_delay.h. */
#include "http_delay.h"

#include "bcrm/due_heap.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* Connections resumed per pass of the thread, so the lock is never held long. */
#define RESUME_BATCH 256

struct http_delay {
    pthread_mutex_t lock;
    pthread_cond_t wake;  /* a new earliest entry, or quit */
    struct due_heap heap; /* of struct MHD_Connection, due in monotonic ns */
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
        while (d->heap.count > 0 && due_heap_first(&d->heap) <= now && n < RESUME_BATCH) {
            due[n++] = due_heap_pop(&d->heap);
        }
        if (n > 0) {
            pthread_mutex_unlock(&d->lock);
            resume_all(due, n);
            pthread_mutex_lock(&d->lock);
            continue;
        }
        if (d->heap.count == 0) {
            pthread_cond_wait(&d->wake, &d->lock);
        } else {
            int64_t at = due_heap_first(&d->heap);
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
    if (!d->started) {
        if (pthread_create(&d->thread, NULL, delay_main, d) != 0) {
            goto out;
        }
        d->started = true;
    }
    int64_t due = mono_ns() + (int64_t)delay_ms * 1000000;
    bool earliest = d->heap.count == 0 || due < due_heap_first(&d->heap);
    if (due_heap_push(&d->heap, due, conn) != 0) {
        goto out;
    }
    if (earliest) {
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
    struct due_heap waiting = d->heap;
    due_heap_init(&d->heap);
    pthread_mutex_unlock(&d->lock);
    while (waiting.count > 0) {
        MHD_resume_connection(due_heap_pop(&waiting));
    }
    due_heap_clear(&waiting);
}

size_t http_delay_waiting(struct http_delay *d)
{
    pthread_mutex_lock(&d->lock);
    size_t n = d->heap.count;
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
    due_heap_clear(&d->heap);
    free(d);
}
