/* slack-sim: a Slack Web API simulator for tests, benchmarks and the sandbox.
 *
 * It serves https://slack.com/api's methods that bcrm uses under /api/ (set
 * BCRM_SLACK_API_URL=http://<SLACK_SIM_ADDR>/api), over a population generated
 * from a seed, and records every message it receives. Tests read the record and
 * switch faults and rate limits on under /_sim/ (control.c).
 *
 * Start-up: read the configuration, generate the population, start the HTTP
 * server; then wait for SIGTERM, refreshing the time zones' UTC offsets every
 * minute so tz_offset stays right across daylight-saving changes.
 *
 * Configuration (environment):
 *   SLACK_SIM_ADDR          127.0.0.1:8090  listen address (port 0 picks one, logged)
 *   SLACK_SIM_SEED          1               population seed
 *   SLACK_SIM_WORKSPACES    1               workspaces (one app and bot token each)
 *   SLACK_SIM_USERS         300             generated users per workspace (users.list
 *                                           also lists USLACKBOT and the app's bot)
 *   SLACK_SIM_LIMITS        off             Slack's rate limits (on/off)
 *   SLACK_SIM_POST_PER_MINUTE 600           chat.postMessage per workspace per minute
 *   SLACK_SIM_CHANNEL_BURST 3               chat.postMessage burst per channel (1/s after)
 *   SLACK_SIM_THREADS       8               HTTP worker threads
 *   SLACK_SIM_MAX_CONNECTIONS 4096          open connections at most (answers held by
 *                                           the latency fault included: none holds a
 *                                           thread, each holds a file descriptor)
 *   SLACK_SIM_OPS_ADDR      (none)          optional ops port (/healthz /readyz /metrics)
 *   SLACK_SIM_CLIENT_ID     1111111111.2222222222   the app's OAuth client id
 *   SLACK_SIM_CLIENT_SECRET sim-client-secret       the app's OAuth client secret
 *   SLACK_SIM_SIGNING_SECRET sim-signing-secret     signs Events API deliveries
 *   SLACK_SIM_EVENTS_URL    (none)          where /_sim/events delivers by default
 *   SLACK_SIM_REQUEST_LOG   10000           Web API calls kept for GET /_sim/requests
 *                                           (a ring; 0 switches the log off)
 *   SLACK_SIM_SCOPES        (scopes.h)      the scopes every app's bot token was granted,
 *                                           comma-separated (SIM_DEFAULT_SCOPES)
 */
#include "events.h"
#include "faults.h"
#include "oauth.h"
#include "population.h"
#include "scopes.h"
#include "sim.h"
#include "simutil.h"
#include "zones.h"

#include "bcrm/config.h"
#include "bcrm/http.h"
#include "bcrm/log.h"
#include "bcrm/metrics.h"
#include "bcrm/ops.h"
#include "bcrm/shutdown.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>

#define ZONE_REFRESH_MS 60000

/* Arguments the request log never lists. */
static const char *const request_secrets[] = {"token", "client_secret", "code", "refresh_token",
                                              NULL};

static void faults_from_env(struct sim_faults *f)
{
    *f = (struct sim_faults){.error_status = 500};
    f->limits.enabled = config_bool("SLACK_SIM_LIMITS", false);
    f->limits.post_per_minute = (int)config_int("SLACK_SIM_POST_PER_MINUTE", 600, 1, 1000000);
    f->limits.channel_per_second = 1.0;
    f->limits.channel_burst = (int)config_int("SLACK_SIM_CHANNEL_BURST", 3, 1, 1000000);
    f->limits.tier_per_minute[1] = 1;
    f->limits.tier_per_minute[2] = 20;
    f->limits.tier_per_minute[3] = 50;
    f->limits.tier_per_minute[4] = 100;
}

static bool sim_ready(void *ctx)
{
    (void)ctx;
    return true;
}

static void register_metrics(struct sim *sim)
{
    sim->m_requests = metrics_counter("slack_sim_requests_total", "Web API calls received.", NULL);
    sim->m_messages =
        metrics_counter("slack_sim_messages_total", "Messages recorded by chat.postMessage.", NULL);
    sim->m_ratelimited =
        metrics_counter("slack_sim_ratelimited_total", "Calls answered 429 ratelimited.", NULL);
}

int main(void)
{
    log_init("slack-sim");
    shutdown_install();

    const char *addr = config_str("SLACK_SIM_ADDR", "127.0.0.1:8090");
    const char *ops_addr = config_str("SLACK_SIM_OPS_ADDR", "");
    uint64_t seed = (uint64_t)config_int("SLACK_SIM_SEED", 1, 0, INT64_MAX);
    size_t workspaces = (size_t)config_int("SLACK_SIM_WORKSPACES", 1, 1, 1000);
    size_t users = (size_t)config_int("SLACK_SIM_USERS", 300, 0, 2000000);
    unsigned threads = (unsigned)config_int("SLACK_SIM_THREADS", 8, 1, 256);
    unsigned max_connections = (unsigned)config_int("SLACK_SIM_MAX_CONNECTIONS", 4096, 16, 1000000);
    size_t request_log = (size_t)config_int("SLACK_SIM_REQUEST_LOG", 10000, 0, 10000000);
    struct sim_faults defaults;
    faults_from_env(&defaults);
    faults_init(&defaults);
    struct sim_oauth_app app = {
        .client_id = config_str("SLACK_SIM_CLIENT_ID", "1111111111.2222222222"),
        .client_secret = config_str("SLACK_SIM_CLIENT_SECRET", "sim-client-secret"),
    };
    oauth_init(&app);
    struct sim_events_config events = {
        .url = config_str("SLACK_SIM_EVENTS_URL", ""),
        .signing_secret = config_str("SLACK_SIM_SIGNING_SECRET", "sim-signing-secret"),
    };
    events_init(&events);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sim_raise_fd_limit();

    int rc = 1;
    struct sim sim = {0};
    struct http_server *srv = NULL;
    struct http_server *ops = NULL;
    char err[256];

    if (zones_init() == 0) {
        log_fatal("no time zone of the table is in the tz database", NULL);
        goto out;
    }
    sim.pop = population_build(seed, workspaces, users);
    sim.record = record_new("team_id");
    sim.requests = reqlog_new(request_log, "team_id", request_secrets);
    sim.limits = ratelimit_new(workspaces, SIM_METHOD_COUNT);
    if (sim.pop == NULL || sim.record == NULL || sim.requests == NULL || sim.limits == NULL) {
        log_fatal("cannot allocate the simulator's state", NULL);
        goto out;
    }
    register_metrics(&sim);
    const char *scopes = config_str("SLACK_SIM_SCOPES", SIM_DEFAULT_SCOPES);
    if (scopes_parse(scopes, &sim.default_scopes, err, sizeof(err)) != 0) {
        log_fatal("SLACK_SIM_SCOPES is not a list of scopes", "{s:s}", "error", err);
        goto out;
    }
    for (size_t w = 0; w < sim.pop->workspace_count; w++) {
        atomic_store(&sim.pop->workspaces[w].scopes, sim.default_scopes);
    }

    struct http_server_opts opts = {.addr = addr,
                                    .max_body = 4 * 1024 * 1024,
                                    .timeout_s = 60,
                                    .threads = threads,
                                    .delayed_answers = true,
                                    .max_connections = max_connections};
    srv = http_server_start(&opts, sim_handle, &sim, err, sizeof(err));
    if (srv == NULL) {
        log_fatal("cannot start the HTTP server", "{s:s, s:s}", "addr", addr, "error", err);
        goto out;
    }
    atomic_store(&sim.http, srv);
    if (ops_addr[0] != '\0' && (ops = ops_start(ops_addr, sim_ready, &sim)) == NULL) {
        goto out;
    }
    log_info("slack-sim listening", "{s:s, s:i, s:I, s:I, s:I, s:b, s:i}", "addr", addr, "port",
             http_server_port(srv), "seed", (json_int_t)seed, "workspaces", (json_int_t)workspaces,
             "users", (json_int_t)users, "limits", defaults.limits.enabled, "zones",
             (int)zones_count());

    struct pollfd pfd = {.fd = shutdown_fd(), .events = POLLIN};
    while (!shutdown_requested()) {
        int n = poll(&pfd, 1, ZONE_REFRESH_MS);
        if (n < 0 && errno != EINTR) {
            log_error("poll failed", "{s:i}", "errno", errno);
            break;
        }
        if (n == 0) {
            zones_refresh();
        }
    }
    log_info("slack-sim stopping", NULL);
    rc = 0;
out:
    http_server_stop(srv, 2000);
    if (ops != NULL) {
        ops_stop(ops);
    }
    ratelimit_free(sim.limits);
    record_free(sim.record);
    reqlog_free(sim.requests);
    population_free(sim.pop);
    curl_global_cleanup();
    return rc;
}
