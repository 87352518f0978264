/* bcrm-vault: the only process that can decrypt bot tokens.
 *
 * Start-up, in order: harden the process (no core dumps, not ptrace-able by the
 * same user), read the vault's identity key, root key and allowlist, bring the
 * schema up to date and check the root key against the recorded key versions,
 * then serve calls on BCRM_VAULT_URL with a pool of workers (server.c) until
 * SIGTERM. The policy of each call is in handler.c (the ops role's operations in
 * handler_ops.c), the SQL in token_store.c, key_store.c and audit_store.c, the
 * sealing of tokens in token_crypto.c.
 */
#include "allowlist.h"
#include "server.h"
#include "token_crypto.h"
#include "key_store.h"
#include "vault.h"

#include "bcrm/config.h"
#include "bcrm/db.h"
#include "bcrm/harden.h"
#include "bcrm/keys.h"
#include "bcrm/log.h"
#include "bcrm/ops.h"
#include "bcrm/shutdown.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vault_config {
    const char *url;
    const char *identity_file;
    const char *master_key_file;
    const char *allowlist_file;
    const char *database_url;
    const char *ops_addr;
    int workers;
};

static void vault_config_read(struct vault_config *c)
{
    c->url = config_str("BCRM_VAULT_URL", "tcp://127.0.0.1:7100");
    c->identity_file = config_str_required("BCRM_IDENTITY_KEY_FILE");
    c->master_key_file = config_str_required("BCRM_VAULT_MASTER_KEY_FILE");
    c->allowlist_file = config_str_required("BCRM_VAULT_ALLOWLIST_FILE");
    c->database_url = config_str("BCRM_DATABASE_URL", "postgresql:///bcrm");
    c->ops_addr = config_str("BCRM_OPS_ADDR", "127.0.0.1:9182");
    c->workers = (int)config_int("BCRM_VAULT_WORKERS", 4, 1, 64);
}

/* The root key, read into locked memory and wiped once the keyring holds it. */
static struct token_keyring *load_root_key(const char *path)
{
    char err[256];
    struct token_keyring *kr = NULL;
    uint8_t *root = sodium_malloc(TOKEN_ROOT_KEY_BYTES);
    if (root == NULL) {
        log_fatal("out of secure memory", NULL);
        return NULL;
    }
    if (secret_file_read(path, root, TOKEN_ROOT_KEY_BYTES, err, sizeof(err)) != 0) {
        log_fatal("cannot read the vault's root key", "{s:s, s:s}", "variable",
                  "BCRM_VAULT_MASTER_KEY_FILE", "error", err);
    } else if ((kr = token_keyring_new(root)) == NULL) {
        log_fatal("out of secure memory", NULL);
    }
    sodium_free(root);
    return kr;
}

/* Applies migrations and checks the root key against vault_keys. 0 or -1. */
static int prepare_database(struct vault *v, const char *database_url)
{
    char err[256];
    int rv = -1;
    PGconn *db = db_connect(database_url, 30000);
    if (db == NULL) {
        return -1;
    }
    if (db_migrate(db) != 0) {
        log_fatal("cannot migrate the database", NULL);
        goto out;
    }
    if (vault_keys_init(db, v->keyring, &v->key_version, err, sizeof(err)) != 0) {
        log_fatal("key versions do not check out", "{s:s}", "error", err);
        goto out;
    }
    rv = 0;
out:
    PQfinish(db);
    return rv;
}

static bool vault_ready(void *ctx)
{
    struct vault *v = ctx;
    return atomic_load(&v->db_ok);
}

int main(void)
{
    struct vault_config cfg;
    struct vault v;
    struct vault_server *srv = NULL;
    struct http_server *ops = NULL;
    char err[256];
    int status = 1;

    memset(&v, 0, sizeof(v));
    atomic_init(&v.db_ok, false);
    log_init("vault");
    if (sodium_init() < 0) {
        log_fatal("libsodium failed to initialise", NULL);
        return 1;
    }
    if (process_harden() != 0) {
        return 1;
    }
    shutdown_install();
    vault_config_read(&cfg);

    if (identity_load(cfg.identity_file, &v.identity, err, sizeof(err)) != 0) {
        log_fatal("cannot read the vault's identity key", "{s:s, s:s}", "variable",
                  "BCRM_IDENTITY_KEY_FILE", "error", err);
        return 1;
    }
    if ((v.keyring = load_root_key(cfg.master_key_file)) == NULL) {
        goto out;
    }
    if ((v.allowlist = allowlist_load(cfg.allowlist_file, err, sizeof(err))) == NULL) {
        log_fatal("cannot read the allowlist", "{s:s, s:s}", "variable",
                  "BCRM_VAULT_ALLOWLIST_FILE", "error", err);
        goto out;
    }
    if (prepare_database(&v, cfg.database_url) != 0) {
        goto out;
    }
    if ((ops = ops_start(cfg.ops_addr, vault_ready, &v)) == NULL) {
        goto out;
    }
    if ((srv = vault_server_start(&v, cfg.url, cfg.database_url, cfg.workers, err, sizeof(err))) ==
        NULL) {
        log_fatal("cannot start serving", "{s:s}", "error", err);
        goto out;
    }
    char public_hex[2 * crypto_box_PUBLICKEYBYTES + 1];
    hex_encode(public_hex, v.identity.public_key, crypto_box_PUBLICKEYBYTES);
    log_info("vault serving", "{s:s, s:s, s:s, s:i, s:i, s:i}", "url", cfg.url, "ops_addr",
             cfg.ops_addr, "public_key", public_hex, "key_version", (int)v.key_version, "callers",
             (int)allowlist_count(v.allowlist), "workers", cfg.workers);

    struct pollfd pfd = {.fd = shutdown_fd(), .events = POLLIN};
    while (!shutdown_requested()) {
        if (poll(&pfd, 1, 1000) < 0 && errno != EINTR) {
            log_error("poll failed", "{s:s}", "error", strerror(errno));
            break;
        }
    }
    if (shutdown_requested()) {
        log_info("vault stopping", NULL);
        status = 0;
    }
out:
    vault_server_stop(srv);
    if (ops != NULL) {
        ops_stop(ops);
    }
    allowlist_free(v.allowlist);
    token_keyring_free(v.keyring);
    identity_free(&v.identity);
    if (status == 0) {
        log_info("vault stopped", NULL);
    }
    return status;
}
