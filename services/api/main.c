/* bcrm-api: the REST API (spec/api.md).
 *
 * Start-up: configuration from BCRM_* variables, a small pool of PostgreSQL
 * connections (migrations applied first), the vault client (when this process
 * has an identity key), two REQ sockets on which the senders answer platform
 * queries, the HTTP server, and the ops port. Then it waits for SIGTERM, stops
 * accepting requests, lets those in flight finish, and exits 0.
 *
 * Reading order for a newcomer: router.c (every route and the checks made before
 * a handler runs), auth.c, then one handler file (campaigns.c is the largest).
 */
#include "api.h"

#include "auth.h"
#include "bcrm/bus.h"
#include "bcrm/config.h"
#include "bcrm/db.h"
#include "bcrm/keys.h"
#include "bcrm/log.h"
#include "bcrm/ops.h"
#include "bcrm/shutdown.h"
#include "bcrm/vault_client.h"
#include "db_pool.h"
#include "router.h"
#include "secret_config.h"

#include <poll.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_bool serving;

static bool api_ready(void *ctx)
{
    (void)ctx;
    return atomic_load(&serving);
}

/* BCRM_PASSWORD_HASH_COST picks libsodium's Argon2id limits; "min" is for tests. */
static void password_cost(struct api_ctx *api)
{
    const char *cost = config_str("BCRM_PASSWORD_HASH_COST", "interactive");
    if (strcmp(cost, "interactive") == 0) {
        api->pwhash_opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
        api->pwhash_memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    } else if (strcmp(cost, "moderate") == 0) {
        api->pwhash_opslimit = crypto_pwhash_OPSLIMIT_MODERATE;
        api->pwhash_memlimit = crypto_pwhash_MEMLIMIT_MODERATE;
    } else if (strcmp(cost, "min") == 0) {
        api->pwhash_opslimit = crypto_pwhash_OPSLIMIT_MIN;
        api->pwhash_memlimit = crypto_pwhash_MEMLIMIT_MIN;
    } else {
        fprintf(stderr, "BCRM_PASSWORD_HASH_COST: \"%s\" is not interactive, moderate or min\n",
                cost);
        exit(2);
    }
}

static int open_query_socket(nng_socket *sock, const char *var, const char *fallback)
{
    const char *url = config_str(var, fallback);
    int rv = bus_listen(sock, BUS_REQ, url);
    if (rv != 0) {
        log_error("cannot listen for platform queries", "{s:s, s:s, s:s}", "variable", var, "url",
                  url, "error", nng_strerror(rv));
        return -1;
    }
    return 0;
}

/* The vault client, or NULL when no identity key is configured: the api then
 * serves everything but connecting and deleting bots (answered 503). */
static struct vault_client *open_vault(struct identity *self)
{
    const char *key_file = config_str("BCRM_IDENTITY_KEY_FILE", "");
    char err[256];
    if (key_file[0] == '\0') {
        log_warn("no BCRM_IDENTITY_KEY_FILE: bots cannot be connected", NULL);
        return NULL;
    }
    if (identity_load(key_file, self, err, sizeof(err)) != 0) {
        fprintf(stderr, "BCRM_IDENTITY_KEY_FILE: %s\n", err);
        exit(2);
    }
    struct vault_client *vc = vault_client_from_env(self, err, sizeof(err));
    if (vc == NULL) {
        fprintf(stderr, "vault client: %s\n", err);
        exit(2);
    }
    return vc;
}

/* Secrets of the webhooks and the settings of the Slack OAuth install. Each part
 * that is not configured refuses its requests (503, or 403 for Messenger's
 * subscription check) instead of accepting unsigned ones. */
static void webhook_and_oauth_config(struct api_ctx *api, const char *api_addr)
{
    api->slack_signing_secret = secret_config("BCRM_SLACK_SIGNING_SECRET");
    api->messenger_app_secret = secret_config("BCRM_MESSENGER_APP_SECRET");
    api->messenger_verify_token = secret_config("BCRM_MESSENGER_VERIFY_TOKEN");
    const char *client_id = config_str("BCRM_SLACK_CLIENT_ID", "");
    api->slack_client_id = client_id[0] ? client_id : NULL;
    api->slack_authorize_url =
        config_str("BCRM_SLACK_OAUTH_AUTHORIZE_URL", "https://slack.com/oauth/v2/authorize");
    char fallback[300];
    snprintf(fallback, sizeof(fallback), "http://%s", api_addr);
    const char *public_url = config_str("BCRM_PUBLIC_URL", fallback);
    if (strncmp(public_url, "http://", 7) != 0 && strncmp(public_url, "https://", 8) != 0) {
        fprintf(stderr, "BCRM_PUBLIC_URL: \"%s\" is not an http(s) URL\n", public_url);
        exit(2);
    }
    if (strlen(public_url) >= sizeof(api->public_url)) {
        fprintf(stderr, "BCRM_PUBLIC_URL: longer than %zu characters\n",
                sizeof(api->public_url) - 1);
        exit(2);
    }
    snprintf(api->public_url, sizeof(api->public_url), "%s", public_url);
    size_t len = strlen(api->public_url);
    while (len > 0 && api->public_url[len - 1] == '/') {
        api->public_url[--len] = '\0';
    }
    log_info("webhooks and oauth", "{s:b, s:b, s:b, s:b, s:s}", "slack_events",
             api->slack_signing_secret != NULL, "messenger_events",
             api->messenger_app_secret != NULL, "messenger_verify",
             api->messenger_verify_token != NULL, "slack_oauth", api->slack_client_id != NULL,
             "public_url", api->public_url);
}

int main(void)
{
    int status = 1;
    struct api_ctx api = {0};
    struct identity self = {0};
    struct http_server *http = NULL, *ops = NULL;
    bool sockets_open = false;

    log_init("api");
    if (sodium_init() < 0) {
        log_fatal("libsodium failed to initialise", NULL);
        return 1;
    }
    shutdown_install();

    const char *addr = config_str("BCRM_API_ADDR", "127.0.0.1:8080");
    const char *ops_addr = config_str("BCRM_OPS_ADDR", "127.0.0.1:9180");
    const char *db_url = config_str("BCRM_DATABASE_URL", "postgresql:///bcrm");
    unsigned threads = (unsigned)config_int("BCRM_API_THREADS", 4, 1, 64);
    int pool_size = (int)config_int("BCRM_API_DB_POOL", threads, 1, 64);
    size_t max_body = (size_t)config_int("BCRM_API_MAX_BODY", 1 << 20, 1024, 64 << 20);
    unsigned timeout_s = (unsigned)(config_duration_ms("BCRM_API_TIMEOUT", 30000) / 1000);
    api.query_timeout_ms = (int)config_duration_ms("BCRM_API_QUERY_TIMEOUT", 10000);
    api.session_ttl_s = config_duration_ms("BCRM_API_SESSION_TTL", 14LL * 24 * 3600 * 1000) / 1000;
    password_cost(&api);
    webhook_and_oauth_config(&api, addr);

    /* The ops port first, so that a slow database start shows as "not ready". */
    ops = ops_start(ops_addr, api_ready, NULL);
    if (ops == NULL) {
        goto out;
    }
    PGconn *migrator = db_connect(db_url, 30000);
    if (migrator == NULL) {
        goto out;
    }
    int migrated = db_migrate(migrator);
    PQfinish(migrator);
    if (migrated != 0) {
        goto out;
    }
    api.pool = db_pool_open(db_url, pool_size, 30000);
    if (api.pool == NULL) {
        goto out;
    }
    api.vault = open_vault(&self);
    if (open_query_socket(&api.query_slack, "BCRM_API_QUERY_SLACK_URL", "tcp://127.0.0.1:7120") !=
        0) {
        goto out;
    }
    if (open_query_socket(&api.query_messenger, "BCRM_API_QUERY_MESSENGER_URL",
                          "tcp://127.0.0.1:7121") != 0) {
        nng_close(api.query_slack);
        goto out;
    }
    sockets_open = true;

    router_init();
    struct http_server_opts opts = {.addr = addr,
                                    .max_body = max_body,
                                    .timeout_s = timeout_s ? timeout_s : 1,
                                    .threads = threads};
    char err[256];
    http = http_server_start(&opts, router_handle, &api, err, sizeof(err));
    if (http == NULL) {
        log_error("api server failed", "{s:s, s:s}", "addr", addr, "error", err);
        goto out;
    }
    atomic_store(&serving, true);
    log_info("api serving", "{s:s, s:i, s:s, s:i}", "addr", addr, "port", http_server_port(http),
             "ops_addr", ops_addr, "threads", (int)threads);

    struct pollfd pfd = {.fd = shutdown_fd(), .events = POLLIN};
    while (!shutdown_requested()) {
        poll(&pfd, 1, 1000);
    }
    log_info("shutting down: draining requests", NULL);
    atomic_store(&serving, false);
    status = 0;

out:
    /* Requests in flight may be waiting on a platform query: give them its timeout. */
    http_server_stop(http, api.query_timeout_ms + 2000);
    if (sockets_open) {
        nng_close(api.query_slack);
        nng_close(api.query_messenger);
    }
    if (api.vault != NULL) {
        vault_client_close(api.vault);
    }
    identity_free(&self);
    sodium_free(api.slack_signing_secret);
    sodium_free(api.messenger_app_secret);
    sodium_free(api.messenger_verify_token);
    db_pool_close(api.pool);
    ops_stop(ops);
    log_info("api stopped", "{s:i}", "status", status);
    return status;
}
