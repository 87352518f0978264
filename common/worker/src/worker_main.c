/* worker_main.c: a sender's life: configuration, sockets, the query threads and
 * the send loop, then an orderly stop. */
#include "worker_internal.h"

#include "bcrm/bus.h"
#include "bcrm/config.h"
#include "bcrm/harden.h"
#include "bcrm/keys.h"
#include "bcrm/log.h"
#include "bcrm/ops.h"
#include "bcrm/shutdown.h"

#include <curl/curl.h>
#include <malloc.h>
#include <sodium.h>
#include <stdio.h>
#include <nng/supplemental/util/platform.h>
#include <stdlib.h>
#include <unistd.h>

/* Enough requests in flight for a 200 ms platform to take 2500 sends a second per
 * replica (bench/README.md, "Senders"), at about 30 KiB of libcurl's buffers each:
 * the default keeps a sender under 32 MB. */
#define WORKER_DEFAULT_IN_FLIGHT 512
/* The longest a released token may stay in a sender's memory. */
#define WORKER_TOKEN_TTL_MAX_MS (5 * 60 * 1000)
/* How long a token the platform refused holds its bot's sends back by default. */
#define WORKER_TOKEN_INVALID_TTL_MS 10000

struct worker_config {
    const char *sender_id;
    int max_in_flight;
    int query_threads;
    int64_t token_ttl_ms;
    int64_t token_invalid_ttl_ms;
    int vault_threads;
    int result_batch;
    int64_t result_flush_ms;
    const char *ops_addr;
    const char *identity_key_file;
    const char *work_url, *results_url, *api_query_url, *scheduler_query_url;
};

static void worker_config_read(const struct worker_platform *p, struct worker_config *c,
                               char *default_id, size_t idlen)
{
    char host[128] = "localhost";
    gethostname(host, sizeof(host) - 1);
    snprintf(default_id, idlen, "%s:%d", host, (int)getpid());
    c->sender_id = config_str("BCRM_SENDER_ID", default_id);
    c->max_in_flight =
        (int)config_int("BCRM_SENDER_MAX_IN_FLIGHT", WORKER_DEFAULT_IN_FLIGHT, 1, 65536);
    c->query_threads = (int)config_int("BCRM_SENDER_QUERY_THREADS", 4, 1, 256);
    c->vault_threads = (int)config_int("BCRM_SENDER_VAULT_THREADS", 2, 1, 64);
    c->token_ttl_ms = config_duration_ms("BCRM_SENDER_TOKEN_TTL", 30000);
    if (c->token_ttl_ms < 1 || c->token_ttl_ms > WORKER_TOKEN_TTL_MAX_MS) {
        /* A token in memory is a token a memory dump can read: the time it may
         * stay is bounded whatever the operator asks (config.h: exit status 2). */
        fprintf(stderr,
                "BCRM_SENDER_TOKEN_TTL: %lld ms is out of range: want 1ms to %lld ms (5m)\n",
                (long long)c->token_ttl_ms, (long long)WORKER_TOKEN_TTL_MAX_MS);
        exit(2);
    }
    c->token_invalid_ttl_ms =
        config_duration_ms("BCRM_SENDER_TOKEN_INVALID_TTL", WORKER_TOKEN_INVALID_TTL_MS);
    if (c->token_invalid_ttl_ms < 1 || c->token_invalid_ttl_ms > WORKER_TOKEN_TTL_MAX_MS) {
        fprintf(stderr,
                "BCRM_SENDER_TOKEN_INVALID_TTL: %lld ms is out of range: want 1ms to %lld ms "
                "(5m)\n",
                (long long)c->token_invalid_ttl_ms, (long long)WORKER_TOKEN_TTL_MAX_MS);
        exit(2);
    }
    c->result_batch = (int)config_int("BCRM_SENDER_RESULT_BATCH", 64, 1, 10000);
    c->result_flush_ms = config_duration_ms("BCRM_SENDER_RESULT_FLUSH", 5);
    c->ops_addr = config_str("BCRM_OPS_ADDR", p->ops_addr_default);
    c->identity_key_file = config_str_required("BCRM_IDENTITY_KEY_FILE");
    c->work_url = config_str(p->work_url_var, p->work_url_default);
    c->results_url = config_str("BCRM_SCHEDULER_RESULTS_URL", "tcp://127.0.0.1:7112");
    c->api_query_url = config_str(p->api_query_url_var, p->api_query_url_default);
    c->scheduler_query_url = config_str(p->scheduler_query_url_var, p->scheduler_query_url_default);
    /* Read now, so that a bad value stops the process before it takes work. */
    worker_http_limits();
}

/* Opens the three sockets; all of them dial, since the scheduler and the api
 * listen and replicas come and go. 0 or -1. */
static int worker_sockets_open(const struct worker_config *c, nng_socket *pull, nng_socket *push,
                               nng_socket *rep)
{
    int rv;
    const char *what = c->work_url;
    if ((rv = bus_dial(pull, BUS_PULL, c->work_url)) != 0) {
        goto fail;
    }
    what = c->results_url;
    if ((rv = bus_dial(push, BUS_PUSH, c->results_url)) != 0) {
        goto fail;
    }
    /* No send buffer: a batch NNG accepted while no scheduler was connected could
     * sit in its queue and be lost at exit, so results wait in our own queue until
     * a pipe takes them. A send waits at most 5 ms for a ready pipe. */
    nng_socket_set_ms(*push, NNG_OPT_SENDTIMEO, 5);
    what = c->api_query_url;
    if ((rv = bus_dial(rep, BUS_REP, c->api_query_url)) != 0) {
        goto fail;
    }
    what = c->scheduler_query_url;
    if ((rv = bus_dial_more(*rep, c->scheduler_query_url)) != 0) {
        goto fail;
    }
    return 0;
fail:
    log_error("cannot dial", "{s:s, s:s}", "url", what, "error", nng_strerror(rv));
    return -1;
}

int worker_main(const struct worker_platform *p)
{
    log_init(p->service);
    /* Before any token is in memory: no core dumps, no ptrace by the same user. */
    if (process_harden() != 0) {
        return 1;
    }
    shutdown_install();
    /* glibc gives each thread that allocates an arena of its own, and a page of
     * users parsed on one query thread leaves its freed memory in that arena, where
     * no other thread reuses it: with the send loop, the query and the vault threads,
     * a sender's RSS would grow to several pages' worth per thread. Two arenas keep
     * the send loop off the query threads' locks and the footprint small. */
    mallopt(M_ARENA_MAX, 2);
    if (sodium_init() < 0 || worker_wipe_alloc_init() != 0) {
        log_fatal("library initialisation failed", NULL);
        return 1;
    }
    struct worker_config cfg;
    char default_id[160];
    worker_config_read(p, &cfg, default_id, sizeof(default_id));

    int status = 1;
    char err[256];
    struct identity self = {0};
    struct vault_client *vault = NULL;
    void *state = NULL;
    struct http_server *ops = NULL;
    struct token_cache *tokens = NULL;
    struct result_queue *results = NULL;
    struct query_pool *queries = NULL;
    nng_socket pull = NNG_SOCKET_INITIALIZER, push = NNG_SOCKET_INITIALIZER,
               rep = NNG_SOCKET_INITIALIZER;
    static struct worker_metrics metrics;

    if (identity_load(cfg.identity_key_file, &self, err, sizeof(err)) != 0) {
        log_fatal("identity key not loaded", "{s:s}", "error", err);
        goto out;
    }
    if ((vault = vault_client_from_env(&self, err, sizeof(err))) == NULL) {
        log_fatal("vault client failed", "{s:s}", "error", err);
        goto out;
    }
    if ((state = p->init()) == NULL) {
        goto out;
    }
    worker_metrics_init(&metrics);
    if (worker_sockets_open(&cfg, &pull, &push, &rep) != 0) {
        goto out;
    }
    if ((tokens = token_cache_new(vault, p->platform, cfg.token_ttl_ms, cfg.token_invalid_ttl_ms,
                                  cfg.vault_threads)) == NULL ||
        (results = result_queue_new(push, cfg.sender_id, (size_t)cfg.result_batch,
                                    cfg.result_flush_ms)) == NULL) {
        log_fatal("out of memory", NULL);
        goto out;
    }
    if ((queries = query_pool_start(p, state, rep, tokens, &metrics, cfg.query_threads)) == NULL) {
        goto out;
    }
    if ((ops = ops_start(cfg.ops_addr, NULL, NULL)) == NULL) {
        goto out;
    }
    log_info("sender started", "{s:s, s:s, s:s, s:i, s:i, s:I}", "sender_id", cfg.sender_id,
             "work_url", cfg.work_url, "ops_addr", cfg.ops_addr, "max_in_flight", cfg.max_in_flight,
             "query_threads", cfg.query_threads, "token_ttl_ms", (json_int_t)cfg.token_ttl_ms);

    struct send_loop_config loop = {
        .platform = p,
        .state = state,
        .pull = pull,
        .results = results,
        .tokens = tokens,
        .metrics = &metrics,
        .max_in_flight = cfg.max_in_flight,
    };
    status = send_loop_run(&loop);
    pull = (nng_socket)NNG_SOCKET_INITIALIZER; /* closed by the loop when draining */

out:
    query_pool_stop(queries);
    if (nng_socket_id(push) > 0) {
        /* NNG has no linger: give the last result batch a moment to leave. */
        nng_msleep(100);
    }
    if (nng_socket_id(pull) > 0) {
        nng_close(pull);
    }
    if (nng_socket_id(push) > 0) {
        nng_close(push);
    }
    if (nng_socket_id(rep) > 0) {
        nng_close(rep);
    }
    if (ops != NULL) {
        ops_stop(ops);
    }
    result_queue_free(results);
    token_cache_free(tokens);
    if (state != NULL) {
        p->fini(state);
    }
    vault_client_close(vault);
    identity_free(&self);
    curl_global_cleanup();
    log_info("sender stopped", "{s:i}", "status", status);
    return status;
}
