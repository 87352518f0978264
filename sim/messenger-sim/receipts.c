/* receipts.c: see receipts.h. */
#include "receipts.h"

#include "msim.h"
#include "simutil.h"
#include "webhook.h"
#include "webhooks.h"

#include "bcrm/clock.h"
#include "bcrm/due_heap.h"
#include "bcrm/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECEIPTS_WAITING_MAX 1000000 /* events waiting at most; more are counted, not kept */
#define ITEMS_PER_POST 100           /* messaging items in one POST, as Meta batches */
#define MID_MAX 48

struct receipt {
    const struct msim_person *person;
    bool read; /* a read event; else a delivery */
    char mid[MID_MAX];
};

struct receipts_counters {
    int64_t deliveries; /* delivery items posted (one may carry several mids) */
    int64_t mids;       /* message ids named in them */
    int64_t reads;      /* read items posted */
    int64_t posts;      /* webhook requests answered 2xx */
    int64_t posts_failed;
    int64_t overflowed; /* events not kept: RECEIPTS_WAITING_MAX reached */
};

/* Nanoseconds, so that an event never leaves before its delay is over (a
 * millisecond clock would let it go up to a millisecond early). */
static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct msim_receipts {
    pthread_mutex_t lock;
    pthread_cond_t wake;    /* something new is due first, or quit */
    struct due_heap events; /* of struct receipt (owned), due in monotonic ns */
    struct msim_receipts_config config;
    struct msim_receipts_config defaults;
    struct receipts_counters counters;
    long last_status;
    char last_error[256];
    /* Bumped by a reset: what a pass took before it is still posted, but no
     * longer counted. */
    uint64_t generation;
    pthread_t thread;
    bool quit;
};

static void drop_waiting(struct msim_receipts *r)
{
    while (r->events.count > 0) {
        free(due_heap_pop(&r->events));
    }
    due_heap_clear(&r->events);
}

static int push(struct msim_receipts *r, int64_t due_ns, const struct msim_person *person,
                bool read, const char *mid)
{
    if (r->events.count >= RECEIPTS_WAITING_MAX) {
        r->counters.overflowed++;
        return -1;
    }
    struct receipt *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        r->counters.overflowed++;
        return -1;
    }
    e->person = person;
    e->read = read;
    snprintf(e->mid, sizeof(e->mid), "%s", mid);
    bool earliest = r->events.count == 0 || due_ns < due_heap_first(&r->events);
    if (due_heap_push(&r->events, due_ns, e) != 0) {
        free(e);
        r->counters.overflowed++;
        return -1;
    }
    if (earliest) {
        pthread_cond_signal(&r->wake);
    }
    return 0;
}

void msim_receipts_sent(struct msim_receipts *r, const struct msim_person *person, const char *mid)
{
    pthread_mutex_lock(&r->lock);
    if (r->config.enabled) {
        int64_t delivered = mono_ns() + (int64_t)r->config.delivery_delay_ms * 1000000;
        push(r, delivered, person, false, mid);
        if (person->read_draw < r->config.read_fraction) {
            /* Due after the delivery (or with it, and then after it: ties keep order). */
            push(r, delivered + (int64_t)r->config.read_delay_ms * 1000000, person, true, mid);
        }
    }
    pthread_mutex_unlock(&r->lock);
}

bool msim_receipts_reads(struct msim_receipts *r, const struct msim_person *person)
{
    pthread_mutex_lock(&r->lock);
    bool reads = person->read_draw < r->config.read_fraction;
    pthread_mutex_unlock(&r->lock);
    return reads;
}

/* The messaging item of one event. */
static json_t *item_for(const struct receipt *e, int64_t now_ms)
{
    const struct msim_person *p = e->person;
    json_t *what = e->read
                       ? json_pack("{s:I}", "watermark", (json_int_t)now_ms)
                       : json_pack("{s:[s], s:I}", "mids", e->mid, "watermark", (json_int_t)now_ms);
    return json_pack("{s:{s:s}, s:{s:s}, s:I, s:o}", "sender", "id", p->psid, "recipient", "id",
                     p->page->id, "timestamp", (json_int_t)now_ms, e->read ? "read" : "delivery",
                     what);
}

/* Adds e to the page's items: one delivery item per person, its mids growing,
 * and one read item per person (a read watermark covers everything before it). */
static void add_to_batch(json_t *items, const struct receipt *e, int64_t now_ms,
                         int64_t *deliveries, int64_t *mids, int64_t *reads)
{
    const char *kind = e->read ? "read" : "delivery";
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        json_t *same = json_object_get(item, kind);
        const char *psid =
            json_string_value(json_object_get(json_object_get(item, "sender"), "id"));
        if (same != NULL && psid != NULL && strcmp(psid, e->person->psid) == 0) {
            if (!e->read) {
                json_array_append_new(json_object_get(same, "mids"), json_string(e->mid));
                (*mids)++;
            }
            return;
        }
    }
    json_array_append_new(items, item_for(e, now_ms));
    if (e->read) {
        (*reads)++;
    } else {
        (*deliveries)++;
        (*mids)++;
    }
}

/* Posts the events of one pass, one POST per page, and frees them. */
static void post_batch(struct msim_receipts *r, struct sim_webhook_client *client,
                       struct receipt **batch, size_t n, const char *url, uint64_t generation)
{
    int64_t now = clock_wall_ms();
    for (size_t first = 0; first < n; first++) {
        if (batch[first] == NULL) {
            continue;
        }
        const struct msim_page *page = batch[first]->person->page;
        json_t *items = json_array();
        int64_t deliveries = 0, mids = 0, reads = 0;
        for (size_t i = first; i < n; i++) {
            if (batch[i] != NULL && batch[i]->person->page == page) {
                add_to_batch(items, batch[i], now, &deliveries, &mids, &reads);
                free(batch[i]);
                batch[i] = NULL;
            }
        }
        char err[256] = "";
        long status = msim_webhook_post_items(client, page, items, url, now, err, sizeof(err));
        pthread_mutex_lock(&r->lock);
        if (generation != r->generation) {
            pthread_mutex_unlock(&r->lock);
            continue;
        }
        r->last_status = status;
        if (status >= 200 && status < 300) {
            r->counters.posts++;
            r->counters.deliveries += deliveries;
            r->counters.mids += mids;
            r->counters.reads += reads;
        } else {
            r->counters.posts_failed++;
            snprintf(r->last_error, sizeof(r->last_error), "%s",
                     status == 0 ? err : "webhook answered an error status");
        }
        pthread_mutex_unlock(&r->lock);
        if (status < 200 || status >= 300) {
            log_warn("receipts not delivered", "{s:s, s:i, s:s}", "page_id", page->id, "status",
                     (int)status, "error", status == 0 ? err : "");
        }
    }
}

static void *receipts_main(void *arg)
{
    struct msim_receipts *r = arg;
    struct sim_webhook_client *client = sim_webhook_client_new();
    struct receipt *batch[ITEMS_PER_POST];
    char url[sizeof(r->config.url)];
    pthread_mutex_lock(&r->lock);
    while (!r->quit) {
        int64_t now = mono_ns();
        size_t n = 0;
        while (r->events.count > 0 && due_heap_first(&r->events) <= now && n < ITEMS_PER_POST) {
            batch[n++] = due_heap_pop(&r->events);
        }
        if (n > 0) {
            snprintf(url, sizeof(url), "%s", msim_webhook_url(r->config.url));
            uint64_t generation = r->generation;
            pthread_mutex_unlock(&r->lock);
            if (client == NULL || url[0] == '\0') {
                for (size_t i = 0; i < n; i++) {
                    free(batch[i]);
                }
                pthread_mutex_lock(&r->lock);
                r->counters.posts_failed++;
                snprintf(r->last_error, sizeof(r->last_error), "%s",
                         client == NULL ? "out of memory" : "no webhook URL");
                continue;
            }
            post_batch(r, client, batch, n, url, generation);
            pthread_mutex_lock(&r->lock);
            continue;
        }
        if (r->events.count == 0) {
            pthread_cond_wait(&r->wake, &r->lock);
        } else {
            int64_t at = due_heap_first(&r->events);
            struct timespec ts = {.tv_sec = (time_t)(at / 1000000000),
                                  .tv_nsec = (long)(at % 1000000000)};
            pthread_cond_timedwait(&r->wake, &r->lock, &ts);
        }
    }
    pthread_mutex_unlock(&r->lock);
    sim_webhook_client_free(client);
    return NULL;
}

struct msim_receipts *msim_receipts_start(const struct msim_receipts_config *defaults)
{
    struct msim_receipts *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    r->config = r->defaults = *defaults;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&r->thread, NULL, receipts_main, r) != 0) {
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->wake);
        free(r);
        return NULL;
    }
    return r;
}

void msim_receipts_stop(struct msim_receipts *r)
{
    if (r == NULL) {
        return;
    }
    pthread_mutex_lock(&r->lock);
    r->quit = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    drop_waiting(r);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    free(r);
}

json_t *msim_receipts_json(struct msim_receipts *r)
{
    pthread_mutex_lock(&r->lock);
    const struct msim_receipts_config *c = &r->config;
    const struct receipts_counters *n = &r->counters;
    json_t *o = json_pack(
        "{s:b, s:b, s:i, s:i, s:f, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:s}", "ok", 1,
        "enabled", c->enabled, "delivery_delay_ms", c->delivery_delay_ms, "read_delay_ms",
        c->read_delay_ms, "read_fraction", c->read_fraction, "url", c->url, "webhook_url",
        msim_webhook_url(c->url), "waiting", (json_int_t)r->events.count, "deliveries",
        (json_int_t)n->deliveries, "mids", (json_int_t)n->mids, "reads", (json_int_t)n->reads,
        "posts", (json_int_t)n->posts, "posts_failed", (json_int_t)n->posts_failed, "overflowed",
        (json_int_t)n->overflowed, "last_status", (int)r->last_status, "last_error", r->last_error);
    pthread_mutex_unlock(&r->lock);
    return o;
}

int msim_receipts_update(struct msim_receipts *r, json_t *body, char *err, size_t errlen)
{
    static const char *const fields[] = {
        "enabled", "delivery_delay_ms", "read_delay_ms", "read_fraction", "url", NULL};
    pthread_mutex_lock(&r->lock);
    struct msim_receipts_config c = r->config;
    json_t *url = json_object_get(body, "url");
    int rc = -1;
    if (sim_json_known_fields(body, fields, err, errlen) != 0 ||
        sim_json_bool(body, "enabled", &c.enabled, err, errlen) != 0 ||
        sim_json_int(body, "delivery_delay_ms", 0, 600000, &c.delivery_delay_ms, err, errlen) !=
            0 ||
        sim_json_int(body, "read_delay_ms", 0, 3600000, &c.read_delay_ms, err, errlen) != 0 ||
        sim_json_rate(body, "read_fraction", &c.read_fraction, err, errlen) != 0) {
        goto out;
    }
    if (url != NULL) {
        const char *u = json_string_value(url);
        if (u == NULL || strlen(u) >= sizeof(c.url) ||
            (u[0] != '\0' && strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)) {
            snprintf(err, errlen, "url must be an http(s) URL, or \"\" for the configured one");
            goto out;
        }
        snprintf(c.url, sizeof(c.url), "%s", u);
    }
    if (c.enabled && msim_webhook_url(c.url)[0] == '\0') {
        snprintf(err, errlen, "enabled needs a url (MESSENGER_SIM_WEBHOOK_URL is not set)");
        goto out;
    }
    if (r->config.enabled && !c.enabled) {
        drop_waiting(r); /* off means no more events, those waiting included */
    }
    r->config = c;
    rc = 0;
out:
    pthread_mutex_unlock(&r->lock);
    return rc;
}

void msim_receipts_reset(struct msim_receipts *r, bool keep_settings)
{
    pthread_mutex_lock(&r->lock);
    drop_waiting(r);
    r->generation++;
    memset(&r->counters, 0, sizeof(r->counters));
    r->last_status = 0;
    r->last_error[0] = '\0';
    if (!keep_settings) {
        r->config = r->defaults;
    }
    pthread_mutex_unlock(&r->lock);
}
