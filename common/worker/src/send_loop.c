/* send_loop.c: the sends, many at a time, on one thread.
 *
 * Jobs arrive in SendBatch messages on the PULL socket. Each becomes a transfer
 * on a libcurl multi handle, which keeps up to max_in_flight requests going at
 * once over reused connections. The loop sleeps in epoll_wait() on curl's sockets
 * (curl_multi_socket_action: only the transfers whose socket is ready are looked
 * at, so a thousand idle requests cost nothing) plus three of ours: the PULL
 * socket's receive fd (only while there is room for more work, so that a busy
 * sender leaves jobs queued in the bus, where another replica can take them), the
 * shutdown fd and an eventfd the token cache's fetch threads write to.
 *
 * A job whose bot's token is not cached is parked while a fetch thread asks the
 * vault, so a slow vault holds up only the bots it is asked about. A token fresh
 * from the vault is tried by one request first (token_cache.c's probe), the bot's
 * other jobs parked until the platform has answered it; and once the platform
 * refuses a token, the bot's jobs are answered RETRY with bot_token_invalid at
 * once, without a request: none of them was delivered, and the scheduler pauses
 * the bot on the first such answer.
 *
 * A module may also set a send aside (WORKER_WAIT) while it fetches data for many
 * sends at once; those wait on a list of their own, and are built again when the
 * request they wait for is answered (worker_send.wakes_waiters) or, at the
 * latest, at the next tick.
 *
 * On SIGTERM the loop closes the PULL socket, answers RETRY for jobs it has not
 * started and for waiting ones (they were definitely not sent), lets in-flight
 * requests finish (each bounded by BCRM_SENDER_TIMEOUT) and flushes the results.
 */
#include "worker_internal.h"

#include "bcrm/bus.h"
#include "bcrm/clock.h"
#include "bcrm/harden.h"
#include "bcrm/log.h"
#include "bcrm/metrics.h"
#include "bcrm/shutdown.h"

#include <errno.h>
#include <nng/supplemental/util/platform.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* How long the final flush of results may wait for the scheduler. */
#define DRAIN_FLUSH_MS 5000
#define EPOLL_EVENTS 256

/* A received SendBatch, alive while any of its jobs is. */
struct job_batch {
    Bcrm__V1__SendBatch *msg;
    int64_t received_mono_ms; /* when it came in: a held bot's sends ask the vault anew */
    size_t next;              /* index of the first job not yet started */
    size_t outstanding;       /* started and not yet finished */
};

struct transfer {
    struct send_loop *loop;
    struct job_batch *batch;
    struct worker_send send;
    struct worker_request req;
    struct transfer_io io;
    CURL *easy;
    int64_t started_mono_ms;
    /* Which token the request in flight carries, and whether it is the probe. */
    uint8_t token_fp[TOKEN_FP_BYTES];
    bool token_probe;
    bool restarted;               /* started over once after a refused token (transfer_done) */
    struct transfer *next_parked; /* in the parked or the waiting list */
};

struct send_loop {
    const struct send_loop_config *cfg;
    CURLM *multi;
    int epfd;
    int wake_fd;              /* eventfd: a token arrived */
    int pull_fd;              /* readable while a SendBatch waits */
    int64_t curl_deadline_ms; /* curl's timer, -1 when none */
    int in_flight;            /* requests on the multi handle */
    int parked;               /* jobs waiting for a token */
    struct transfer *parked_head;
    int waiting; /* sends a module set aside (WORKER_WAIT) */
    struct transfer *waiting_head;
    uint64_t token_generation; /* of the token cache when the parked list was tried */
    bool parked_ready;         /* some parked transfers may have their token now */
    struct job_batch *current; /* jobs still to start, or NULL */
    bool pull_open;
    bool pull_watched;
    bool shutdown_watched;
    bool draining;
};

enum build_result { BUILD_FINAL, BUILD_REQUEST, BUILD_PARKED, BUILD_WAIT };

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
    int64_t now = clock_mono_ms();
    result_queue_add(loop->cfg->results, job, out, now);
    metric_inc(loop->cfg->metrics->sends[out->outcome]);
    log_debug("send finished", "{s:I, s:s, s:s, s:s}", "delivery_id", (json_int_t)job->delivery_id,
              "bot_id", job->bot_id, "outcome", worker_outcome_name(out->outcome), "error",
              out->error);
    batch_release(loop, b);
}

/* Asks the module for the transfer's next request with a copy of the token that
 * lives on this stack frame only (wiped before returning). */
static enum build_result transfer_build(struct transfer *t, struct worker_outcome *out)
{
    const struct send_loop_config *cfg = t->loop->cfg;
    const Bcrm__V1__SendJob *job = t->send.job;
    struct token_copy token;
    switch (token_cache_try(cfg->tokens, job->org_id, job->bot_id, t->batch->received_mono_ms,
                            &token)) {
    case TOKEN_PENDING:
        return BUILD_PARKED;
    case TOKEN_MISSING:
        /* Nothing was sent: back to pending, not counted, and the bot paused
         * until it is reconnected. */
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "no_token");
        out->bot_token_invalid = true;
        return BUILD_FINAL;
    case TOKEN_INVALID:
        /* The platform refused this bot's token a moment ago: not sent at all. */
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, token.data);
        out->bot_token_invalid = true;
        token_copy_wipe(&token);
        return BUILD_FINAL;
    case TOKEN_UNAVAILABLE:
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "vault_unavailable");
        return BUILD_FINAL;
    case TOKEN_OK:
        break;
    }
    worker_request_free(&t->req);
    enum worker_next next =
        cfg->platform->build_send(cfg->state, &t->send, token.data, &t->req, out);
    token_copy_wipe(&token);
    if (next == WORKER_REQUEST) {
        memcpy(t->token_fp, token.fp, TOKEN_FP_BYTES);
        t->token_probe = token.probe;
        return BUILD_REQUEST;
    }
    if (token.probe) {
        /* No request came of it: the next send probes instead. */
        token_cache_verdict(cfg->tokens, job->org_id, job->bot_id, token.fp, TOKEN_NO_VERDICT, true,
                            NULL);
    }
    return next == WORKER_WAIT ? BUILD_WAIT : BUILD_FINAL;
}

/* What an answer says of the token it carried. */
static enum token_verdict verdict_of(const struct worker_response *resp, enum worker_next next,
                                     const struct worker_outcome *out)
{
    if (next == WORKER_FINAL && out->bot_token_invalid) {
        return TOKEN_REFUSED;
    }
    if (resp->transport != CURLE_OK || resp->status == 0 || resp->status == 429 ||
        resp->status >= 500 || (next == WORKER_FINAL && out->rate_limited)) {
        return TOKEN_NO_VERDICT; /* said nothing of the token */
    }
    return TOKEN_WORKS;
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
        transfer_io_setup(t->easy, &t->io, &t->req,
                          t->req.max_body > 0 ? t->req.max_body : WORKER_SEND_MAX_BODY,
                          false) != 0 ||
        curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t) != CURLE_OK ||
        /* A platform's answer to a send is a KiB or two; the default 16 KiB download
         * buffer per request in flight would be most of a sender's memory. Larger
         * answers (a users.list page) just take more reads. */
        curl_easy_setopt(t->easy, CURLOPT_BUFFERSIZE, 4096L) != CURLE_OK ||
        /* Over TLS, wait for a connection that can multiplex (HTTP/2) rather than
         * open a new one. Plain http:// never multiplexes (no h2c), and waiting
         * there would queue a request behind a busy connection for a whole
         * platform latency: HTTP/1.1 gets a connection per request in flight. */
        curl_easy_setopt(t->easy, CURLOPT_PIPEWAIT,
                         strncmp(t->req.url, "https://", 8) == 0 ? 1L : 0L) != CURLE_OK ||
        curl_multi_add_handle(t->loop->multi, t->easy) != CURLM_OK) {
        worker_outcome_set(out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "request_setup_failed");
        return -1;
    }
    t->started_mono_ms = clock_mono_ms();
    return 0;
}

/* A request that never started carries no verdict; a probe is handed back. */
static void transfer_release_probe(struct transfer *t)
{
    if (t->token_probe) {
        t->token_probe = false;
        token_cache_verdict(t->loop->cfg->tokens, t->send.job->org_id, t->send.job->bot_id,
                            t->token_fp, TOKEN_NO_VERDICT, true, NULL);
    }
}

static void transfer_free(struct transfer *t)
{
    worker_request_free(&t->req);
    transfer_io_free(&t->io);
    worker_profile_clear(&t->send.profile);
    if (t->easy != NULL) {
        /* The handle holds copies of the URL (Messenger's access_token); cleaning
         * it up frees them through the wiping allocator (wipe_alloc.c). */
        curl_easy_cleanup(t->easy);
    }
    free(t);
}

/* Puts t's send back to its first step, as job_start made it. */
static void transfer_restart(struct transfer *t)
{
    const Bcrm__V1__SendJob *job = t->send.job;
    worker_profile_clear(&t->send.profile);
    memset(&t->send, 0, sizeof(t->send));
    t->send.job = job;
    worker_request_free(&t->req);
}

static void in_flight_changed(struct send_loop *loop, int delta)
{
    loop->in_flight += delta;
    metric_set(loop->cfg->metrics->in_flight, loop->in_flight);
}

/* Builds and starts requests for t until one is in flight, the job waits for its
 * token, or the job is decided. */
static void transfer_advance(struct send_loop *loop, struct transfer *t)
{
    struct worker_outcome out;
    worker_outcome_init(&out);
    switch (transfer_build(t, &out)) {
    case BUILD_PARKED:
        t->next_parked = loop->parked_head;
        loop->parked_head = t;
        loop->parked++;
        return;
    case BUILD_WAIT:
        if (!loop->draining) {
            t->next_parked = loop->waiting_head;
            loop->waiting_head = t;
            loop->waiting++;
            return;
        }
        /* Nothing of it was sent: the scheduler may give it to another replica. */
        worker_outcome_set(&out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "sender_shutdown");
        break;
    case BUILD_REQUEST:
        if (transfer_start(t, &out) == 0) {
            in_flight_changed(loop, 1);
            return;
        }
        transfer_release_probe(t);
        break;
    case BUILD_FINAL:
        break;
    }
    job_finish(loop, t->batch, t->send.job, &out);
    transfer_free(t);
}

/* Tries the parked transfers again once the token cache has news, as many as
 * there is room for in flight; the rest wait for room (parked_ready stays set). */
static void unpark(struct send_loop *loop)
{
    uint64_t generation = token_cache_generation(loop->cfg->tokens);
    if (generation != loop->token_generation) {
        loop->token_generation = generation;
        loop->parked_ready = true;
    }
    if (loop->parked_head == NULL || !loop->parked_ready) {
        return;
    }
    struct transfer *t = loop->parked_head;
    loop->parked_head = NULL;
    loop->parked = 0;
    while (t != NULL && loop->in_flight < loop->cfg->max_in_flight) {
        struct transfer *next = t->next_parked;
        t->next_parked = NULL;
        transfer_advance(loop, t); /* may park it again: its token is still coming */
        t = next;
    }
    loop->parked_ready = t != NULL;
    while (t != NULL) {
        struct transfer *next = t->next_parked;
        t->next_parked = loop->parked_head;
        loop->parked_head = t;
        loop->parked++;
        t = next;
    }
}

/* Moves the waiting sends of bot_id (all of them when NULL) to the parked list,
 * to be built again as soon as there is room. */
static void wake_waiters(struct send_loop *loop, const char *bot_id)
{
    struct transfer **link = &loop->waiting_head;
    while (*link != NULL) {
        struct transfer *t = *link;
        if (bot_id == NULL || strcmp(t->send.job->bot_id, bot_id) == 0) {
            *link = t->next_parked;
            loop->waiting--;
            t->next_parked = loop->parked_head;
            loop->parked_head = t;
            loop->parked++;
            loop->parked_ready = true;
        } else {
            link = &t->next_parked;
        }
    }
}

/* Drain: the waiting sends sent nothing, so they go back as RETRY at once. */
static void refuse_waiters(struct send_loop *loop)
{
    while (loop->waiting_head != NULL) {
        struct transfer *t = loop->waiting_head;
        loop->waiting_head = t->next_parked;
        loop->waiting--;
        struct worker_outcome out;
        worker_outcome_init(&out);
        worker_outcome_set(&out, BCRM__V1__OUTCOME__OUTCOME_RETRY, "sender_shutdown");
        job_finish(loop, t->batch, t->send.job, &out);
        transfer_free(t);
    }
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

/* A finished curl transfer: classify, tell the token cache what the answer said
 * of the token, then either finish the job or go on. */
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
    const Bcrm__V1__SendJob *job = t->send.job;
    bool wake = t->send.wakes_waiters;
    t->send.wakes_waiters = false;
    enum worker_next next = cfg->platform->classify_send(cfg->state, &t->send, &resp, &out);
    enum token_verdict verdict = verdict_of(&resp, next, &out);
    if (t->token_probe || verdict == TOKEN_REFUSED) {
        token_cache_verdict(cfg->tokens, job->org_id, job->bot_id, t->token_fp, verdict,
                            t->token_probe, out.error);
    }
    t->token_probe = false;
    /* The job is kept alive by its batch until job_finish; copy the bot id for
     * the wake-up, which comes after it. */
    char bot_id[128];
    snprintf(bot_id, sizeof(bot_id), "%s", job->bot_id);
    if (next == WORKER_FINAL && verdict == TOKEN_REFUSED && !t->restarted) {
        /* Refused: nothing was delivered, and the vault may hold another copy of
         * the bot's token by now (a reconnect or a rotation while this request
         * was out, with a token cached before it). The send starts over once:
         * the token cache asks the vault first, and only the refused copy still
         * there (or a second refusal) makes the answer bot_token_invalid. */
        t->restarted = true;
        transfer_restart(t);
        transfer_advance(loop, t);
    } else if (next == WORKER_REQUEST) {
        transfer_advance(loop, t);
    } else {
        job_finish(loop, t->batch, job, &out);
        transfer_free(t);
    }
    if (wake) {
        wake_waiters(loop, bot_id);
    }
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
     * more sends would only pile up outcomes in memory. Parked jobs have a bound
     * of their own, so that a bot whose token is slow to come cannot take every
     * slot from the others. */
    int max = loop->cfg->max_in_flight;
    return !loop->draining && loop->in_flight < max && loop->parked + loop->waiting < max &&
           result_queue_len(loop->cfg->results) < (size_t)max * 4;
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
        b->received_mono_ms = clock_mono_ms();
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

/* Adds, changes or removes fd in the loop's epoll set. */
static void watch(struct send_loop *loop, int fd, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.fd = fd};
    if (events == 0) {
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
        return;
    }
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT &&
        epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        log_error("epoll_ctl failed", "{s:i, s:s}", "fd", fd, "error", strerror(errno));
    }
}

static void drain_begin(struct send_loop *loop)
{
    loop->draining = true;
    log_info("draining", "{s:i, s:i, s:i}", "in_flight", loop->in_flight, "parked", loop->parked,
             "waiting", loop->waiting);
    refuse_waiters(loop);
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
    if (loop->pull_watched) {
        watch(loop, loop->pull_fd, 0);
        loop->pull_watched = false;
    }
    if (loop->shutdown_watched) {
        watch(loop, shutdown_fd(), 0); /* it stays readable: stop listening to it */
        loop->shutdown_watched = false;
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

/* CURLMOPT_SOCKETFUNCTION: curl says which of its sockets to wait on, and how. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    struct send_loop *loop = userp;
    uint32_t events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) {
        events |= EPOLLIN;
    }
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) {
        events |= EPOLLOUT;
    }
    watch(loop, fd, what == CURL_POLL_REMOVE ? 0 : events);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: when curl wants to be called with CURL_SOCKET_TIMEOUT. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct send_loop *loop = userp;
    loop->curl_deadline_ms = timeout_ms < 0 ? -1 : clock_mono_ms() + timeout_ms;
    return 0;
}

/* The token cache's notify: runs on a fetch thread. */
static void on_token(void *arg)
{
    struct send_loop *loop = arg;
    uint64_t one = 1;
    if (write(loop->wake_fd, &one, sizeof(one)) < 0) {
        /* EAGAIN: the counter is full, so the loop is awake anyway. */
    }
}

static void curl_act(struct send_loop *loop, curl_socket_t fd, int flags)
{
    int running;
    curl_multi_socket_action(loop->multi, fd, flags, &running);
}

/* The epoll_wait timeout: the earliest of curl's timer, the token sweep and the
 * next result flush. */
static int wait_ms(const struct send_loop *loop, int64_t next_sweep)
{
    int64_t now = clock_mono_ms();
    int64_t until = next_sweep;
    if (loop->curl_deadline_ms >= 0 && loop->curl_deadline_ms < until) {
        until = loop->curl_deadline_ms;
    }
    int64_t flush_in = result_queue_next_ms(loop->cfg->results, now);
    if (flush_in >= 0 && now + flush_in < until) {
        until = now + flush_in;
    }
    return until > now ? (int)(until - now) : 0;
}

static int loop_open(struct send_loop *loop)
{
    if (bus_recv_fd(loop->cfg->pull, &loop->pull_fd) != 0) {
        log_error("job socket has no receive fd", NULL);
        return -1;
    }
    if ((loop->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        log_error("epoll or eventfd failed", "{s:s}", "error", strerror(errno));
        return -1;
    }
    if ((loop->multi = curl_multi_init()) == NULL) {
        log_error("curl multi handle failed", NULL);
        return -1;
    }
    long max = loop->cfg->max_in_flight;
    /* Keep a connection for every request that may be in flight, so a steady
     * stream of sends reuses them instead of reconnecting; HTTP/2 platforms
     * multiplex the requests over few connections instead. */
    curl_multi_setopt(loop->multi, CURLMOPT_MAXCONNECTS, max);
    curl_multi_setopt(loop->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max);
    curl_multi_setopt(loop->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(loop->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(loop->multi, CURLMOPT_SOCKETDATA, loop);
    curl_multi_setopt(loop->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(loop->multi, CURLMOPT_TIMERDATA, loop);
    watch(loop, loop->wake_fd, EPOLLIN);
    watch(loop, shutdown_fd(), EPOLLIN);
    loop->shutdown_watched = true;
    token_cache_set_notify(loop->cfg->tokens, on_token, loop);
    return 0;
}

static void loop_close(struct send_loop *loop)
{
    token_cache_set_notify(loop->cfg->tokens, NULL, NULL);
    if (loop->multi != NULL) {
        curl_multi_cleanup(loop->multi);
    }
    if (loop->wake_fd >= 0) {
        close(loop->wake_fd);
    }
    if (loop->epfd >= 0) {
        close(loop->epfd);
    }
}

/* Handles what epoll_wait reported. */
static void loop_events(struct send_loop *loop, const struct epoll_event *events, int n)
{
    for (int i = 0; i < n; i++) {
        int fd = events[i].data.fd;
        if (fd == loop->wake_fd) {
            uint64_t count;
            if (read(loop->wake_fd, &count, sizeof(count)) < 0) {
                /* EAGAIN: another read took it */
            }
        } else if (fd == loop->pull_fd || fd == shutdown_fd()) {
            /* dispatch() and the shutdown check at the top of the loop look */
        } else {
            int flags = 0;
            if (events[i].events & (EPOLLIN | EPOLLHUP)) {
                flags |= CURL_CSELECT_IN;
            }
            if (events[i].events & EPOLLOUT) {
                flags |= CURL_CSELECT_OUT;
            }
            if (events[i].events & EPOLLERR) {
                flags |= CURL_CSELECT_ERR;
            }
            curl_act(loop, fd, flags);
        }
    }
    if (loop->curl_deadline_ms >= 0 && clock_mono_ms() >= loop->curl_deadline_ms) {
        loop->curl_deadline_ms = -1;
        curl_act(loop, CURL_SOCKET_TIMEOUT, 0);
    }
}

int send_loop_run(const struct send_loop_config *cfg)
{
    struct send_loop loop = {.cfg = cfg,
                             .epfd = -1,
                             .wake_fd = -1,
                             .pull_fd = -1,
                             .curl_deadline_ms = -1,
                             .pull_open = true};
    int rv = 1;
    if (loop_open(&loop) != 0) {
        goto out;
    }
    struct epoll_event events[EPOLL_EVENTS];
    int64_t next_sweep = 0;
    while (true) {
        int64_t now = clock_mono_ms();
        if (!loop.draining && shutdown_requested()) {
            drain_begin(&loop);
        }
        if (now >= next_sweep) {
            token_cache_sweep(cfg->tokens);
            if (cfg->platform->tick != NULL) {
                cfg->platform->tick(cfg->state, now);
            }
            /* A waiting send may have waited long enough to go on another way. */
            wake_waiters(&loop, NULL);
            /* What expired is wiped from the caches; its copies in the dead stack
             * (and the vector registers saved there) go with it. */
            stack_scrub();
            next_sweep = now + 1000;
        }
        unpark(&loop);
        dispatch(&loop);
        /* Handles added since the last turn set curl's timer to "now". */
        if (loop.curl_deadline_ms >= 0 && clock_mono_ms() >= loop.curl_deadline_ms) {
            loop.curl_deadline_ms = -1;
            curl_act(&loop, CURL_SOCKET_TIMEOUT, 0);
        }
        reap(&loop);
        result_queue_flush(cfg->results, false, clock_mono_ms());
        if (loop.draining && loop.in_flight == 0 && loop.parked == 0 && loop.waiting == 0) {
            break;
        }
        bool want_pull = loop.pull_open && can_take(&loop);
        if (want_pull != loop.pull_watched) {
            watch(&loop, loop.pull_fd, want_pull ? EPOLLIN : 0);
            loop.pull_watched = want_pull;
        }
        int n = epoll_wait(loop.epfd, events, EPOLL_EVENTS, wait_ms(&loop, next_sweep));
        if (n < 0 && errno != EINTR) {
            log_error("epoll_wait failed", "{s:s}", "error", strerror(errno));
            shutdown_request();
            continue;
        }
        loop_events(&loop, events, n > 0 ? n : 0);
        reap(&loop);
    }
    drain_flush(&loop);
    rv = 0;
out:
    loop_close(&loop);
    return rv;
}
