/* send_loop.c: the sends, many at a time, on one thread.
 *
 * Jobs arrive in SendBatch messages on the PULL socket. Each becomes a transfer
 * on a libcurl multi handle, which keeps up to max_in_flight requests going at
 * once over reused connections. The loop sleeps in curl_multi_poll() on curl's
 * sockets plus two of ours: the PULL socket's receive fd (only while there is
 * room for more work, so that a busy sender leaves jobs queued in the bus, where
 * another replica can take them) and the shutdown fd.
 *
 * On SIGTERM the loop closes the PULL socket, answers RETRY for jobs it has not
 * started (they were definitely not sent), lets in-flight requests finish (each
 * bounded by BCRM_SENDER_TIMEOUT) and flushes the results.
 */
#include "worker_internal.h"

#include "bcrm/bus.h"
#include "bcrm/clock.h"
#include "bcrm/log.h"
#include "bcrm/metrics.h"
#include "bcrm/shutdown.h"

#include <nng/supplemental/util/platform.h>
#include <stdlib.h>
#include <string.h>

/* How long the final flush of results may wait for the scheduler. */
#define DRAIN_FLUSH_MS 5000

/* A received SendBatch, alive while any of its jobs is. */
struct job_batch {
    Bcrm__V1__SendBatch *msg;
    size_t next;        /* index of the first job not yet started */
    size_t outstanding; /* started and not yet finished */
};

struct transfer {
    struct send_loop *loop;
    struct job_batch *batch;
    struct worker_send send;
    struct worker_request req;
    struct transfer_io io;
    CURL *easy;
    int64_t started_mono_ms;
};

struct send_loop {
    const struct send_loop_config *cfg;
    CURLM *multi;
    int in_flight;
    struct job_batch *current; /* jobs still to start, or NULL */
    bool pull_open;
    bool draining;
};

static void batch_release(struct send_loop *loop, struct job_batch *b)
{
    b->outstanding--;
    if (b->outstanding == 0 && b->next == b->msg->n_jobs && b != loop->current) {
        bcrm__v1__send_batch__free_unpacked(b->msg, NULL);
        free(b);
    }
}

/* Records the final outcome of a job and releases its batch. */
static void job_finish(struct send_loop *loop, struct job_batch *b, const Bcrm__V1__SendJob *job,
                       struct worker_outcome *out)
{
    if (out->outcome == BCRM__V1__OUTCOME__OUTCOME_UNSPECIFIED) {
        /* A module that decides nothing must not make us guess "not sent". */
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_UNKNOWN, "unclassified");
    }
    if (out->outcome != BCRM__V1__OUTCOME__OUTCOME_SENT) {
        out->platform_message_id[0] = '\0';
    }
    if (out->bot_token_invalid) {
        token_cache_forget(loop->cfg->tokens, job->bot_id);
    }
    int64_t now = clock_mono_ms();
    result_queue_add(loop->cfg->results, job, out, now);
    metric_inc(loop->cfg->metrics->sends[out->outcome]);
    log_debug("send finished", "{s:I, s:s, s:s, s:s}", "delivery_id", (json_int_t)job->delivery_id,
              "bot_id", job->bot_id, "outcome", worker_outcome_name(out->outcome), "error",
              out->error);
    batch_release(loop, b);
}

/* Asks the module for the transfer's next request (fetching the token again: it
 * is cached, and holding it no longer than one call keeps copies few). */
static enum worker_next transfer_build(struct transfer *t, struct worker_outcome *out)
{
    const struct send_loop_config *cfg = t->loop->cfg;
    const Bcrm__V1__SendJob *job = t->send.job;
    struct secret token = {0};
    switch (token_cache_get(cfg->tokens, job->org_id, job->bot_id, &token)) {
    case TOKEN_MISSING:
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_FAILED, "no_token");
        out->bot_token_invalid = true;
        return WORKER_FINAL;
    case TOKEN_UNAVAILABLE:
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "vault_unavailable");
        return WORKER_FINAL;
    case TOKEN_OK:
        break;
    }
    worker_request_free(&t->req);
    enum worker_next next =
        cfg->platform->build_send(cfg->state, &t->send, (const char *)token.data, &t->req, out);
    secret_free(&token);
    return next;
}

/* Hands the transfer's request to the multi handle. 0 or -1 (out filled). */
static int transfer_start(struct transfer *t, struct worker_outcome *out)
{
    if (t->easy == NULL) {
        t->easy = curl_easy_init();
    } else {
        curl_easy_reset(t->easy);
    }
    if (t->easy == NULL ||
        transfer_io_setup(t->easy, &t->io, &t->req, WORKER_SEND_MAX_BODY, false) != 0 ||
        curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t) != CURLE_OK ||
        curl_multi_add_handle(t->loop->multi, t->easy) != CURLM_OK) {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "request_setup_failed");
        return -1;
    }
    t->started_mono_ms = clock_mono_ms();
    return 0;
}

static void transfer_free(struct transfer *t)
{
    worker_request_free(&t->req);
    transfer_io_free(&t->io);
    worker_profile_clear(&t->send.profile);
    if (t->easy != NULL) {
        curl_easy_cleanup(t->easy);
    }
    free(t);
}

static void in_flight_changed(struct send_loop *loop, int delta)
{
    loop->in_flight += delta;
    metric_set(loop->cfg->metrics->in_flight, loop->in_flight);
}

/* Builds and starts requests for t until one is in flight or the job is decided. */
static void transfer_advance(struct send_loop *loop, struct transfer *t)
{
    struct worker_outcome out;
    worker_outcome_init(&out);
    if (transfer_build(t, &out) == WORKER_REQUEST && transfer_start(t, &out) == 0) {
        in_flight_changed(loop, 1);
        return;
    }
    job_finish(loop, t->batch, t->send.job, &out);
    transfer_free(t);
}

static void job_start(struct send_loop *loop, struct job_batch *b, const Bcrm__V1__SendJob *job)
{
    const struct send_loop_config *cfg = loop->cfg;
    struct worker_outcome out;
    worker_outcome_init(&out);
    if (cfg->platform->precheck != NULL &&
        cfg->platform->precheck(cfg->state, job, clock_wall_ms(), &out)) {
        job_finish(loop, b, job, &out);
        return;
    }
    struct transfer *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        worker_outcome_set(&out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "out_of_memory");
        job_finish(loop, b, job, &out);
        return;
    }
    t->loop = loop;
    t->batch = b;
    t->send.job = job;
    transfer_advance(loop, t);
}

/* A finished curl transfer: classify, then either finish the job or go on. */
static void transfer_done(struct send_loop *loop, CURL *easy, CURLcode rc)
{
    struct transfer *t = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    curl_multi_remove_handle(loop->multi, easy);
    in_flight_changed(loop, -1);

    struct worker_response resp;
    transfer_io_response(easy, rc, &t->io, &resp);
    metric_observe(loop->cfg->metrics->request_seconds,
                   (double)(clock_mono_ms() - t->started_mono_ms) / 1000.0);
    struct worker_outcome out;
    worker_outcome_init(&out);
    const struct send_loop_config *cfg = loop->cfg;
    if (cfg->platform->classify_send(cfg->state, &t->send, &resp, &out) == WORKER_REQUEST) {
        transfer_advance(loop, t);
        return;
    }
    job_finish(loop, t->batch, t->send.job, &out);
    transfer_free(t);
}

static void reap(struct send_loop *loop)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(loop->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE) {
            transfer_done(loop, msg->easy_handle, msg->data.result);
        }
    }
}

static bool can_take(const struct send_loop *loop)
{
    /* Results that cannot be sent hold the loop too: with no scheduler to tell,
     * more sends would only pile up outcomes in memory. */
    return !loop->draining && loop->in_flight < loop->cfg->max_in_flight &&
           result_queue_len(loop->cfg->results) < (size_t)loop->cfg->max_in_flight * 4;
}

/* Receives one SendBatch without blocking; NULL when none is waiting. */
static struct job_batch *batch_receive(struct send_loop *loop)
{
    while (true) {
        Bcrm__V1__SendBatch *msg = NULL;
        int rv = bus_recv(loop->cfg->pull, &bcrm__v1__send_batch__descriptor,
                          (ProtobufCMessage **)&msg, NNG_FLAG_NONBLOCK);
        if (rv == NNG_EAGAIN || rv == NNG_ECLOSED) {
            return NULL;
        }
        if (rv != 0) {
            log_warn("job batch dropped", "{s:s}", "error", nng_strerror(rv));
            continue;
        }
        if (msg->n_jobs == 0) {
            bcrm__v1__send_batch__free_unpacked(msg, NULL);
            continue;
        }
        struct job_batch *b = calloc(1, sizeof(*b));
        if (b == NULL) {
            log_error("job batch dropped: out of memory", NULL);
            bcrm__v1__send_batch__free_unpacked(msg, NULL);
            return NULL;
        }
        b->msg = msg;
        return b;
    }
}

static void dispatch(struct send_loop *loop)
{
    while (can_take(loop)) {
        if (loop->current == NULL && (loop->current = batch_receive(loop)) == NULL) {
            return;
        }
        struct job_batch *b = loop->current;
        const Bcrm__V1__SendJob *job = b->msg->jobs[b->next++];
        b->outstanding++;
        if (b->next == b->msg->n_jobs) {
            loop->current = NULL; /* the last job's finish may free it */
        }
        job_start(loop, b, job);
    }
}

/* Answers RETRY for every job of b from b->next on: they were never started. */
static void batch_refuse_rest(struct send_loop *loop, struct job_batch *b)
{
    struct worker_outcome out;
    while (b->next < b->msg->n_jobs) {
        worker_outcome_init(&out);
        worker_outcome_set(&out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "sender_shutdown");
        const Bcrm__V1__SendJob *job = b->msg->jobs[b->next++];
        b->outstanding++;
        if (b->next == b->msg->n_jobs && loop->current == b) {
            loop->current = NULL;
        }
        job_finish(loop, b, job, &out);
    }
}

static void drain_begin(struct send_loop *loop)
{
    loop->draining = true;
    log_info("draining", "{s:i}", "in_flight", loop->in_flight);
    if (loop->current != NULL) {
        batch_refuse_rest(loop, loop->current);
    }
    /* Batches NNG already holds for us would be lost with the socket: answer them
     * too, then close it so no more arrive. */
    struct job_batch *b;
    while ((b = batch_receive(loop)) != NULL) {
        loop->current = b;
        batch_refuse_rest(loop, b);
    }
    nng_close(loop->cfg->pull);
    loop->pull_open = false;
}

/* Waits until the results are out or DRAIN_FLUSH_MS passed. */
static void drain_flush(struct send_loop *loop)
{
    int64_t deadline = clock_mono_ms() + DRAIN_FLUSH_MS;
    while (result_queue_flush(loop->cfg->results, true, clock_mono_ms()) > 0) {
        if (clock_mono_ms() >= deadline) {
            log_error("results lost at shutdown: scheduler unreachable", "{s:i}", "results",
                      (int)result_queue_len(loop->cfg->results));
            return;
        }
        nng_msleep(20);
    }
}

int send_loop_run(const struct send_loop_config *cfg)
{
    struct send_loop loop = {.cfg = cfg, .pull_open = true};
    int pull_fd = -1;
    int rv = 1;
    if (bus_recv_fd(cfg->pull, &pull_fd) != 0) {
        log_error("job socket has no receive fd", NULL);
        return 1;
    }
    if ((loop.multi = curl_multi_init()) == NULL) {
        log_error("curl multi handle failed", NULL);
        return 1;
    }
    /* Keep a connection for every request that may be in flight, so a steady
     * stream of sends reuses them instead of reconnecting. */
    curl_multi_setopt(loop.multi, CURLMOPT_MAXCONNECTS, (long)cfg->max_in_flight);

    int64_t next_sweep = 0;
    while (true) {
        int64_t now = clock_mono_ms();
        if (!loop.draining && shutdown_requested()) {
            drain_begin(&loop);
        }
        if (now >= next_sweep) {
            token_cache_sweep(cfg->tokens);
            next_sweep = now + 1000;
        }
        dispatch(&loop);
        int running;
        curl_multi_perform(loop.multi, &running);
        reap(&loop);
        result_queue_flush(cfg->results, false, clock_mono_ms());
        if (loop.draining && loop.in_flight == 0) {
            break;
        }

        struct curl_waitfd extra[2];
        unsigned nextra = 0;
        if (!loop.draining) {
            extra[nextra++] = (struct curl_waitfd){.fd = shutdown_fd(), .events = CURL_WAIT_POLLIN};
        }
        if (loop.pull_open && can_take(&loop)) {
            extra[nextra++] = (struct curl_waitfd){.fd = pull_fd, .events = CURL_WAIT_POLLIN};
        }
        int64_t timeout = next_sweep - clock_mono_ms();
        int64_t flush_in = result_queue_next_ms(cfg->results, clock_mono_ms());
        if (flush_in >= 0 && flush_in < timeout) {
            timeout = flush_in;
        }
        if (timeout < 0) {
            timeout = 0;
        }
        if (curl_multi_poll(loop.multi, extra, nextra, (int)timeout, NULL) != CURLM_OK) {
            log_error("curl poll failed", NULL);
            shutdown_request();
        }
    }
    drain_flush(&loop);
    rv = 0;
    curl_multi_cleanup(loop.multi);
    return rv;
}
