/* bcrm-scheduler: decides who gets what when, and never loses nor duplicates a send.
 *
 * Start here. The scheduler is one thread and one poll() loop over three things: the
 * results socket (senders push outcomes), the LISTEN connection (the api announces
 * campaign changes), the audience call's eventfd (a page arrived) and the shutdown fd.
 * The loop sleeps exactly until the next thing to do (a due delivery or the next token
 * of a paced bot, a lease to expire, a page to load), capped at a second, and each
 * turn does, in order:
 *
 *   1. leader_poll        notifications; become leader, or step down (leader.c)
 *   2. results_drain      apply every outcome waiting, fenced by lease (results.c)
 *   3. runs_scan          leader: create runs due within the load-ahead (runs.c)
 *   4. runs_load_step     leader: take an audience page that arrived, ask for the next
 *                         (the call runs on NNG's threads; runs.c, audience_call.c)
 *   5. claims_run         leader: survey, plan (pacing.c), claim due deliveries, push
 *                         SendBatch (claims.c)
 *   6. lifecycle_tick     leader, once a second: expire leases, complete campaigns
 *
 * On SIGTERM it gives up leadership at once (a standby takes over), stops claiming,
 * applies results for up to BCRM_SCHEDULER_DRAIN while deliveries are in flight, and
 * exits 0.
 */
#include "pacing.h"
#include "sched.h"
#include "sched_metrics.h"

#include "bcrm/bus.h"
#include "bcrm/clock.h"
#include "bcrm/config.h"
#include "bcrm/db.h"
#include "bcrm/http.h"
#include "bcrm/log.h"
#include "bcrm/ops.h"
#include "bcrm/shutdown.h"

#include <ctype.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_CAP_MS 1000
#define RECONNECT_MS 1000

const char *const sched_platform_names[SCHED_PLATFORMS] = {"slack", "messenger"};

int sched_platform_from_name(const char *name)
{
    for (int p = 0; p < SCHED_PLATFORMS; p++) {
        if (strcmp(name, sched_platform_names[p]) == 0) {
            return p;
        }
    }
    return -1;
}

bool sched_looks_like_uuid(const char *text)
{
    if (text == NULL || strlen(text) != 36) {
        return false;
    }
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? text[i] != '-' : !isxdigit((unsigned char)text[i])) {
            return false;
        }
    }
    return true;
}

static void load_config(struct sched_config *c)
{
    c->database_url = config_str("BCRM_DATABASE_URL", "postgresql:///bcrm");
    c->work_url[SCHED_SLACK] = config_str("BCRM_SCHEDULER_WORK_SLACK_URL", "tcp://127.0.0.1:7110");
    c->work_url[SCHED_MESSENGER] =
        config_str("BCRM_SCHEDULER_WORK_MESSENGER_URL", "tcp://127.0.0.1:7111");
    c->results_url = config_str("BCRM_SCHEDULER_RESULTS_URL", "tcp://127.0.0.1:7112");
    c->query_url[SCHED_SLACK] =
        config_str("BCRM_SCHEDULER_QUERY_SLACK_URL", "tcp://127.0.0.1:7113");
    c->query_url[SCHED_MESSENGER] =
        config_str("BCRM_SCHEDULER_QUERY_MESSENGER_URL", "tcp://127.0.0.1:7114");
    c->ops_addr = config_str("BCRM_OPS_ADDR", "127.0.0.1:9181");
    c->batch = (int)config_int("BCRM_SCHEDULER_BATCH", 500, 1, 10000);
    c->jobs_per_message = (int)config_int("BCRM_SCHEDULER_JOBS_PER_MESSAGE", 100, 1, 1000);
    c->max_in_flight = (int)config_int("BCRM_SCHEDULER_MAX_IN_FLIGHT", 5000, 1, 1000000);
    c->max_attempts = (int)config_int("BCRM_SCHEDULER_MAX_ATTEMPTS", 5, 1, 100);
    c->page_limit = (int)config_int("BCRM_SCHEDULER_PAGE_SIZE", 200, 1, 1000);
    c->members_max = (int)config_int("BCRM_SCHEDULER_MEMBERS_MAX", 200000, 1, 50000000);
    c->lease_ms = config_duration_ms("BCRM_SCHEDULER_LEASE", 60000);
    c->load_ahead_ms = config_duration_ms("BCRM_SCHEDULER_LOAD_AHEAD", 26 * 3600000LL);
    c->load_pass_ms = config_duration_ms("BCRM_SCHEDULER_LOAD_PASS", 3600000LL);
    c->retry_base_ms = config_duration_ms("BCRM_SCHEDULER_RETRY_BASE", 1000);
    c->retry_cap_ms = config_duration_ms("BCRM_SCHEDULER_RETRY_CAP", 300000);
    c->query_timeout_ms = config_duration_ms("BCRM_SCHEDULER_QUERY_TIMEOUT", 10000);
    c->send_timeout_ms = config_duration_ms("BCRM_SCHEDULER_SEND_TIMEOUT", 200);
    c->drain_ms = config_duration_ms("BCRM_SCHEDULER_DRAIN", 5000);
    c->stale_after_ms = config_duration_ms("BCRM_SCHEDULER_STALE_AFTER", 24 * 3600000LL);
    /* platforms.md: chat.postMessage allows about one message per second per channel and
     * "several hundred per minute" per workspace and app. A campaign writes to each
     * channel (a user's DM) once, so the workspace limit is the one to pace: 600 a minute
     * with a burst of 10, the workspace limit slack-sim models. Messenger: 300 sends per
     * second per page. */
    c->slack_per_minute = (double)config_int("BCRM_SLACK_RATE_PER_MINUTE", 600, 0, 10000000);
    c->slack_burst = (double)config_int("BCRM_SLACK_BURST", 10, 1, 1000000);
    c->messenger_per_second =
        (double)config_int("BCRM_MESSENGER_RATE_PER_SECOND", 300, 0, 10000000);
    c->messenger_burst = (double)config_int("BCRM_MESSENGER_BURST", 30, 1, 1000000);
    c->bot_in_flight_ms = config_duration_ms("BCRM_SCHEDULER_BOT_IN_FLIGHT", 500);
    c->bot_min_in_flight = (int)config_int("BCRM_SCHEDULER_BOT_MIN_IN_FLIGHT", 8, 1, 1000000);
}

/* The per-bot limits of each platform (pacing.h). In flight, a bot has what its senders
 * complete in bot_in_flight_ms (half a second), at least the floor: a pause takes effect
 * within a second, and the 60 s lease has a wide margin. Enough to keep a platform busy
 * while its answers take less than that (Little's law: in flight = rate x latency). */
static struct pacer *make_pacer(const struct sched_config *c)
{
    struct pace_limit limits[SCHED_PLATFORMS];
    double per_ms[SCHED_PLATFORMS] = {c->slack_per_minute / 60000.0,
                                      c->messenger_per_second / 1000.0};
    double burst[SCHED_PLATFORMS] = {c->slack_burst, c->messenger_burst};
    for (int p = 0; p < SCHED_PLATFORMS; p++) {
        limits[p].per_ms = per_ms[p];
        limits[p].burst = burst[p];
        limits[p].max_in_flight = c->max_in_flight;
        limits[p].min_in_flight = c->bot_min_in_flight;
        limits[p].drain_ms = c->bot_in_flight_ms;
    }
    return pacer_new(limits, SCHED_PLATFORMS);
}

static int prepare_all(PGconn *conn)
{
    if (claims_prepare(conn) != 0 || results_prepare(conn) != 0 || runs_prepare(conn) != 0 ||
        lifecycle_prepare(conn) != 0) {
        return -1;
    }
    return 0;
}

bool sched_db_ensure(struct scheduler *s)
{
    static int64_t next_try;
    if (PQstatus(s->work) == CONNECTION_OK && s->work_prepared) {
        return true;
    }
    int64_t now = clock_mono_ms();
    if (now < next_try) {
        return false;
    }
    next_try = now + RECONNECT_MS;
    if (PQstatus(s->work) != CONNECTION_OK) {
        atomic_store(&s->ready, false);
        s->work_prepared = false;
        log_error("database connection lost: reconnecting", NULL);
        PQreset(s->work);
        if (PQstatus(s->work) != CONNECTION_OK) {
            return false;
        }
        log_info("database connection restored", NULL);
    }
    /* Prepared statements belong to a connection: a new one needs them again. */
    if (prepare_all(s->work) != 0) {
        return false;
    }
    s->work_prepared = true;
    atomic_store(&s->ready, true);
    return true;
}

static bool ready(void *ctx)
{
    struct scheduler *s = ctx;
    return atomic_load(&s->ready);
}

/* The work and query sockets are opened, watched for senders, then bound, so no
 * sender that connects early goes uncounted. */
static int open_sockets(struct scheduler *s)
{
    int rv;
    const char *failed_url = NULL;
    for (int p = 0; p < SCHED_PLATFORMS; p++) {
        if ((rv = bus_open(&s->work_sock[p], BUS_PUSH)) != 0) {
            failed_url = s->cfg.work_url[p];
            goto out;
        }
        /* A send waits this long for a sender to take it, then the rows go back. */
        nng_socket_set_ms(s->work_sock[p], NNG_OPT_SENDTIMEO, (int)s->cfg.send_timeout_ms);
        if ((rv = bus_open(&s->query_sock[p], BUS_REQ)) != 0) {
            failed_url = s->cfg.query_url[p];
            goto out;
        }
    }
    claims_watch_senders(s);
    for (int p = 0; p < SCHED_PLATFORMS; p++) {
        if ((rv = nng_listen(s->work_sock[p], s->cfg.work_url[p], NULL, 0)) != 0) {
            failed_url = s->cfg.work_url[p];
            goto out;
        }
        if ((rv = nng_listen(s->query_sock[p], s->cfg.query_url[p], NULL, 0)) != 0) {
            failed_url = s->cfg.query_url[p];
            goto out;
        }
    }
    if ((rv = bus_listen(&s->results_sock, BUS_PULL, s->cfg.results_url)) != 0) {
        failed_url = s->cfg.results_url;
        goto out;
    }
    if ((rv = bus_recv_fd(s->results_sock, &s->results_fd)) != 0) {
        failed_url = s->cfg.results_url;
        goto out;
    }
out:
    if (rv != 0) {
        log_fatal("cannot listen", "{s:s, s:s}", "url", failed_url, "error", nng_strerror(rv));
    }
    return rv;
}

static bool claim_possible(struct scheduler *s, int64_t now)
{
    if (s->in_flight >= s->cfg.max_in_flight) {
        return false;
    }
    for (int p = 0; p < SCHED_PLATFORMS; p++) {
        if (peers_count(&s->senders[p]) > 0 && now >= s->platform_rest_until[p]) {
            return true;
        }
    }
    return false;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* How long poll() may sleep: until the earliest thing the loop has to do. */
static int wait_ms(struct scheduler *s)
{
    int64_t now = clock_mono_ms();
    int64_t deadline = now + WAIT_CAP_MS;
    if (s->leader && !s->draining) {
        if (s->campaigns_dirty) {
            return 0;
        }
        if (claim_possible(s, now)) {
            deadline = min64(deadline, s->next_due);
        }
        deadline = min64(deadline, s->next_tick);
        deadline = min64(deadline, s->next_scan);
        deadline = min64(deadline, s->next_load);
    } else if (!s->draining) {
        deadline = min64(deadline, s->next_leader_try);
    }
    return deadline <= now ? 0 : (int)(deadline - now);
}

static void wait_for_events(struct scheduler *s, int timeout)
{
    struct pollfd fds[4];
    int n = 0;
    fds[n++] = (struct pollfd){.fd = s->results_fd, .events = POLLIN};
    fds[n++] = (struct pollfd){.fd = shutdown_fd(), .events = POLLIN};
    int call_fd = runs_wake_fd(s);
    if (call_fd >= 0) {
        fds[n++] = (struct pollfd){.fd = call_fd, .events = POLLIN};
    }
    int listen_fd = leader_fd(s);
    if (listen_fd >= 0) {
        fds[n++] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
    }
    poll(fds, (nfds_t)n, timeout);
}

static void run_loop(struct scheduler *s)
{
    while (!shutdown_requested()) {
        if (!sched_db_ensure(s)) {
            wait_for_events(s, RECONNECT_MS);
            continue;
        }
        leader_poll(s);
        results_drain(s);
        if (s->leader) {
            runs_scan(s);
            runs_load_step(s);
            claims_run(s);
            lifecycle_tick(s);
        }
        wait_for_events(s, wait_ms(s));
    }
}

/* Stops claiming, hands leadership over, and applies results while any are due. */
static void drain(struct scheduler *s)
{
    s->draining = true;
    if (s->listen != NULL) {
        /* Closing the session frees the advisory lock: a standby leads from now on. */
        PQfinish(s->listen);
        s->listen = NULL;
    }
    if (s->leader) {
        log_info("leadership released", NULL);
    }
    s->leader = false;
    metric_set(sched_metrics.is_leader, 0);
    int64_t until = clock_mono_ms() + s->cfg.drain_ms;
    log_info("draining", "{s:i, s:I}", "in_flight", s->in_flight, "drain_ms",
             (json_int_t)s->cfg.drain_ms);
    while (s->in_flight > 0 && clock_mono_ms() < until && sched_db_ensure(s)) {
        struct pollfd fd = {.fd = s->results_fd, .events = POLLIN};
        int64_t left = until - clock_mono_ms();
        poll(&fd, 1, (int)min64(left > 0 ? left : 0, 100));
        results_drain(s);
    }
    if (s->in_flight > 0) {
        log_warn("drain ended with deliveries in flight", "{s:i, s:s}", "in_flight", s->in_flight,
                 "then", "their leases expire into unknown");
    }
}

int main(void)
{
    static struct scheduler sched;
    struct scheduler *s = &sched;
    int status = 1;
    struct http_server *ops = NULL;

    log_init("scheduler");
    shutdown_install();
    sched_metrics_init();
    load_config(&s->cfg);
    atomic_init(&s->ready, false);
    s->results_fd = -1;
    s->next_due = 0;
    s->next_load = SCHED_NEVER;

    s->pacer = make_pacer(&s->cfg);
    if (s->pacer == NULL) {
        log_fatal("out of memory", NULL);
        goto out;
    }
    s->work = db_connect(s->cfg.database_url, 30000);
    if (s->work == NULL) {
        goto out;
    }
    if (db_migrate(s->work) != 0 || prepare_all(s->work) != 0) {
        goto out;
    }
    s->work_prepared = true;
    if (open_sockets(s) != 0) {
        goto out;
    }
    ops = ops_start(s->cfg.ops_addr, ready, s);
    if (ops == NULL) {
        goto out;
    }
    if (leader_connect(s) != 0) {
        log_warn("listen connection failed: retrying", NULL);
    }
    atomic_store(&s->ready, true);
    log_info("scheduler started", "{s:s, s:s, s:s, s:s, s:i, s:i, s:I}", "work_slack",
             s->cfg.work_url[SCHED_SLACK], "work_messenger", s->cfg.work_url[SCHED_MESSENGER],
             "results", s->cfg.results_url, "ops", s->cfg.ops_addr, "batch", s->cfg.batch,
             "max_in_flight", s->cfg.max_in_flight, "lease_ms", (json_int_t)s->cfg.lease_ms);

    run_loop(s);
    drain(s);
    status = 0;
    log_info("scheduler stopped", NULL);
out:
    if (ops != NULL) {
        ops_stop(ops);
    }
    /* nng_close on a socket that was never opened is harmless (NNG_ECLOSED). */
    for (int p = 0; p < SCHED_PLATFORMS; p++) {
        nng_close(s->work_sock[p]);
        nng_close(s->query_sock[p]);
    }
    nng_close(s->results_sock);
    if (s->listen != NULL) {
        PQfinish(s->listen);
    }
    if (s->work != NULL) {
        PQfinish(s->work);
    }
    runs_free(s);
    pacer_free(s->pacer);
    return status;
}
