/* results.c: SendResults going back to the scheduler, a batch at a time.
 *
 * One message per result would cost the scheduler a database round trip each;
 * waiting for a full batch would delay outcomes when traffic is light. So a batch
 * goes out when batch_size results are waiting or the oldest has waited flush_ms.
 * A send that cannot go out within a few milliseconds (no scheduler connected) is
 * retried on the next flush: results are never dropped here, and the send loop stops taking
 * jobs while too many wait (backpressure, see send_loop.c).
 */
#include "worker_internal.h"

#include "bcrm/bus.h"
#include "bcrm/clock.h"
#include "bcrm/log.h"

#include <stdlib.h>
#include <string.h>

struct result_queue {
    nng_socket push;
    char *sender_id;
    size_t batch_size;
    int64_t flush_ms;
    Bcrm__V1__SendResult **items; /* each malloc'd with its strings and lease */
    size_t len, cap;
    int64_t oldest_mono_ms;
    int64_t retry_at_mono_ms; /* after a send that would have blocked */
    int64_t last_warn_mono_ms;
};

struct result_queue *result_queue_new(nng_socket push, const char *sender_id, size_t batch_size,
                                      int64_t flush_ms)
{
    struct result_queue *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        return NULL;
    }
    q->push = push;
    q->sender_id = strdup(sender_id);
    q->batch_size = batch_size > 0 ? batch_size : 1;
    q->flush_ms = flush_ms;
    return q;
}

static void result_free(Bcrm__V1__SendResult *r)
{
    free(r->lease_id.data);
    free(r->platform_message_id);
    free(r->error);
    free(r->bot_id);
    free(r);
}

void result_queue_free(struct result_queue *q)
{
    if (q == NULL) {
        return;
    }
    for (size_t i = 0; i < q->len; i++) {
        result_free(q->items[i]);
    }
    free(q->items);
    free(q->sender_id);
    free(q);
}

void result_queue_add(struct result_queue *q, const Bcrm__V1__SendJob *job,
                      const struct worker_outcome *out, int64_t now_mono_ms)
{
    Bcrm__V1__SendResult *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        log_error("result lost: out of memory", "{s:I}", "delivery_id",
                  (json_int_t)job->delivery_id);
        return;
    }
    bcrm__v1__send_result__init(r);
    r->delivery_id = job->delivery_id;
    r->lease_id.len = job->lease_id.len;
    r->lease_id.data = malloc(job->lease_id.len > 0 ? job->lease_id.len : 1);
    if (r->lease_id.data != NULL && job->lease_id.len > 0) {
        memcpy(r->lease_id.data, job->lease_id.data, job->lease_id.len);
    }
    r->outcome = out->outcome;
    if (out->platform_message_id[0] != '\0') {
        r->platform_message_id = strdup(out->platform_message_id);
    }
    if (out->error[0] != '\0') {
        r->error = strdup(out->error);
    }
    if (out->retry_after_ms >= 0) {
        r->has_retry_after_ms = true;
        r->retry_after_ms = out->retry_after_ms;
    }
    if (out->rate_limited) {
        r->has_rate_limited = true;
        r->rate_limited = true;
    }
    if (out->bot_token_invalid) {
        r->has_bot_token_invalid = true;
        r->bot_token_invalid = true;
    }
    if (out->outcome == BCRM__V1__OUTCOME__OUTCOME_SENT) {
        r->has_sent_at_ms = true;
        r->sent_at_ms = clock_wall_ms();
    }
    r->bot_id = strdup(job->bot_id);

    if (q->len == q->cap) {
        size_t cap = q->cap > 0 ? q->cap * 2 : 64;
        Bcrm__V1__SendResult **grown = realloc(q->items, cap * sizeof(*grown));
        if (grown == NULL) {
            log_error("result lost: out of memory", "{s:I}", "delivery_id",
                      (json_int_t)job->delivery_id);
            result_free(r);
            return;
        }
        q->items = grown;
        q->cap = cap;
    }
    if (q->len == 0) {
        q->oldest_mono_ms = now_mono_ms;
    }
    q->items[q->len++] = r;
}

/* Sends the first n results as one batch; false when the bus would block. */
static bool send_batch(struct result_queue *q, size_t n, int64_t now_mono_ms)
{
    Bcrm__V1__ResultBatch batch = BCRM__V1__RESULT_BATCH__INIT;
    batch.n_results = n;
    batch.results = q->items;
    batch.sender_id = q->sender_id;
    /* Blocking, bounded by the socket's 5 ms send timeout (worker_main.c). */
    int rv = bus_send(q->push, &batch.base, 0);
    if (rv != 0) {
        q->retry_at_mono_ms = now_mono_ms + 50;
        if (now_mono_ms - q->last_warn_mono_ms > 5000) {
            q->last_warn_mono_ms = now_mono_ms;
            log_warn("results not sent, will retry", "{s:s, s:i}", "error", nng_strerror(rv),
                     "queued", (int)q->len);
        }
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        result_free(q->items[i]);
    }
    memmove(q->items, q->items + n, (q->len - n) * sizeof(*q->items));
    q->len -= n;
    q->oldest_mono_ms = now_mono_ms;
    return true;
}

size_t result_queue_flush(struct result_queue *q, bool force, int64_t now_mono_ms)
{
    while (q->len > 0) {
        if (!force && now_mono_ms < q->retry_at_mono_ms) {
            break;
        }
        bool due =
            force || q->len >= q->batch_size || now_mono_ms - q->oldest_mono_ms >= q->flush_ms;
        if (!due) {
            break;
        }
        size_t n = q->len < q->batch_size ? q->len : q->batch_size;
        if (!send_batch(q, n, now_mono_ms)) {
            break;
        }
    }
    return q->len;
}

int64_t result_queue_next_ms(const struct result_queue *q, int64_t now_mono_ms)
{
    if (q->len == 0) {
        return -1;
    }
    int64_t due = q->len >= q->batch_size ? now_mono_ms : q->oldest_mono_ms + q->flush_ms;
    if (due < q->retry_at_mono_ms) {
        due = q->retry_at_mono_ms;
    }
    return due > now_mono_ms ? due - now_mono_ms : 0;
}

size_t result_queue_len(const struct result_queue *q)
{
    return q->len;
}
