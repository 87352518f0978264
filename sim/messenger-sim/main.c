/* messenger-sim: a Messenger Platform (Graph API) simulator for tests,
 * benchmarks and the sandbox.
 *
 * It serves the Graph calls bcrm makes (set BCRM_GRAPH_API_URL to
 * http://<MESSENGER_SIM_ADDR>/v19.0): GET /me, the Send API with the 24-hour
 * window rule, the User Profile API and the page's conversations, over pages and
 * people generated from a seed. It records every message it receives; tests
 * read the record and switch faults on under /_sim/ (control.c).
 *
 * Configuration (environment):
 *   MESSENGER_SIM_ADDR      127.0.0.1:8091  listen address (port 0 picks one, logged)
 *   MESSENGER_SIM_SEED      1               population seed
 *   MESSENGER_SIM_PAGES     1               pages (one page token each)
 *   MESSENGER_SIM_USERS     300             people per page (who wrote to it)
 *   MESSENGER_SIM_LIMITS    off             rate limits: 300 sends/s per page, 2
 *                                           conversation calls/s per page
 *   MESSENGER_SIM_THREADS   8               HTTP worker threads
 *   MESSENGER_SIM_MAX_CONNECTIONS 4096      open connections at most (answers held by
 *                                           the latency fault included)
 *   MESSENGER_SIM_OPS_ADDR  (none)          optional ops port (/healthz /readyz /metrics)
 *   MESSENGER_SIM_WEBHOOK_URL (none)        bcrm's webhook, for /_sim/inbound, read...
 *   MESSENGER_SIM_APP_SECRET sim-app-secret signs webhook deliveries
 *   MESSENGER_SIM_VERIFY_TOKEN sim-verify-token   for the subscription check
 *   MESSENGER_SIM_REQUEST_LOG 10000         Graph calls kept for GET /_sim/requests
 *                                           (a ring; 0 switches the log off)
 *   MESSENGER_SIM_RECEIPTS  off             delivery and read events after each send
 *                                           (receipts.h; /_sim/receipts switches them)
 *   MESSENGER_SIM_DELIVERY_DELAY 100ms      from a send to its delivery event
 *   MESSENGER_SIM_READ_DELAY 1s             from the delivery event to the read event
 *   MESSENGER_SIM_READ_PERCENT 50           the share of people who read (0-100)
 */
#include "msim.h"
#include "receipts.h"
#include "simutil.h"
#include "webhooks.h"

#include "bcrm/config.h"
#include "bcrm/http.h"
#include "bcrm/log.h"
#include "bcrm/metrics.h"
#include "bcrm/ops.h"
#include "bcrm/shutdown.h"

#include "bcrm/clock.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

int main(void)
{
    log_init("messenger-sim");
    shutdown_install();

    const char *addr = config_str("MESSENGER_SIM_ADDR", "127.0.0.1:8091");
    const char *ops_addr = config_str("MESSENGER_SIM_OPS_ADDR", "");
    uint64_t seed = (uint64_t)config_int("MESSENGER_SIM_SEED", 1, 0, INT64_MAX);
    size_t pages = (size_t)config_int("MESSENGER_SIM_PAGES", 1, 1, 1000);
    size_t people = (size_t)config_int("MESSENGER_SIM_USERS", 300, 0, 2000000);
    unsigned threads = (unsigned)config_int("MESSENGER_SIM_THREADS", 8, 1, 256);
    unsigned max_connections =
        (unsigned)config_int("MESSENGER_SIM_MAX_CONNECTIONS", 4096, 16, 1000000);
    size_t request_log = (size_t)config_int("MESSENGER_SIM_REQUEST_LOG", 10000, 0, 10000000);

    static struct msim m; /* zeroed; lives for the process */
    m.default_faults = (struct msim_faults){
        .error_status = 500,
        .error_code = 2,
        .ratelimit_code = 613,
        .limits = config_bool("MESSENGER_SIM_LIMITS", false),
        .send_per_second = 300,
        .conversations_per_second = 2,
    };
    m.faults = m.default_faults;
    pthread_rwlock_init(&m.faults_lock, NULL);
    m.started_ms = clock_wall_ms();

    struct msim_webhook_config hooks = {
        .url = config_str("MESSENGER_SIM_WEBHOOK_URL", ""),
        .app_secret = config_str("MESSENGER_SIM_APP_SECRET", "sim-app-secret"),
        .verify_token = config_str("MESSENGER_SIM_VERIFY_TOKEN", "sim-verify-token"),
    };
    msim_webhooks_init(&hooks);
    int64_t delivery_delay_ms = config_duration_ms("MESSENGER_SIM_DELIVERY_DELAY", 100);
    int64_t read_delay_ms = config_duration_ms("MESSENGER_SIM_READ_DELAY", 1000);
    struct msim_receipts_config receipts = {
        .enabled = config_bool("MESSENGER_SIM_RECEIPTS", false),
        .read_fraction = (double)config_int("MESSENGER_SIM_READ_PERCENT", 50, 0, 100) / 100.0,
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sim_raise_fd_limit();

    int rc = 1;
    struct http_server *srv = NULL;
    struct http_server *ops = NULL;
    m.record = record_new("page_id");
    static const char *const request_secrets[] = {"access_token", NULL};
    m.request_log = reqlog_new(request_log, "page_id", request_secrets);
    if (receipts.enabled && hooks.url[0] == '\0') {
        log_fatal("MESSENGER_SIM_RECEIPTS needs MESSENGER_SIM_WEBHOOK_URL", NULL);
        goto out;
    }
    if (delivery_delay_ms < 0 || delivery_delay_ms > 600000 || read_delay_ms < 0 ||
        read_delay_ms > 3600000) {
        log_fatal("MESSENGER_SIM_DELIVERY_DELAY is 0 to 10 minutes, MESSENGER_SIM_READ_DELAY 0 "
                  "to an hour",
                  NULL);
        goto out;
    }
    receipts.delivery_delay_ms = (int)delivery_delay_ms;
    receipts.read_delay_ms = (int)read_delay_ms;
    m.receipts = msim_receipts_start(&receipts);
    if (m.record == NULL || m.request_log == NULL || m.receipts == NULL ||
        msim_population_build(&m, seed, pages, people) != 0) {
        log_fatal("cannot allocate the simulator's state", NULL);
        goto out;
    }
    m.m_requests = metrics_counter("messenger_sim_requests_total", "Graph calls received.", NULL);
    m.m_messages =
        metrics_counter("messenger_sim_messages_total", "Messages recorded by the Send API.", NULL);

    struct http_server_opts opts = {.addr = addr,
                                    .max_body = 1024 * 1024,
                                    .timeout_s = 60,
                                    .threads = threads,
                                    .delayed_answers = true,
                                    .max_connections = max_connections};
    char err[256];
    srv = http_server_start(&opts, msim_handle, &m, err, sizeof(err));
    if (srv == NULL) {
        log_fatal("cannot start the HTTP server", "{s:s, s:s}", "addr", addr, "error", err);
        goto out;
    }
    atomic_store(&m.http, srv);
    if (ops_addr[0] != '\0' && (ops = ops_start(ops_addr, NULL, NULL)) == NULL) {
        goto out;
    }
    log_info("messenger-sim listening", "{s:s, s:i, s:I, s:I, s:I, s:b}", "addr", addr, "port",
             http_server_port(srv), "seed", (json_int_t)seed, "pages", (json_int_t)pages, "users",
             (json_int_t)people, "limits", m.faults.limits);

    struct pollfd pfd = {.fd = shutdown_fd(), .events = POLLIN};
    while (!shutdown_requested()) {
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
            log_error("poll failed", "{s:i}", "errno", errno);
            break;
        }
    }
    log_info("messenger-sim stopping", NULL);
    rc = 0;
out:
    http_server_stop(srv, 2000);
    if (ops != NULL) {
        ops_stop(ops);
    }
    msim_receipts_stop(m.receipts); /* before the people its events point to */
    msim_population_free(&m);
    record_free(m.record);
    reqlog_free(m.request_log);
    curl_global_cleanup();
    return rc;
}
