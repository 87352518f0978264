/* server.c: REP contexts, envelopes, replay protection and metrics. */
#include "server.h"

#include "handler.h"
#include "replay_cache.h"

#include "bcrm/bus.h"
#include "bcrm/clock.h"
#include "bcrm/db.h"
#include "bcrm/log.h"
#include "bcrm/metrics.h"
#include "bcrm/vault_box.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long a worker waits for a call before it looks at the stop flag again. */
#define WORKER_POLL_MS 200
/* The most calls the vault remembers within two replay windows. */
#define REPLAY_CAPACITY 65536

/* store, release, destroy, status, rotate, rewrap, config, audit, unknown, store_sealed,
 * promote */
#define OP_COUNT 11
#define CODE_COUNT 6 /* ok, denied, not_found, bad_request, internal, key_retired */

struct worker {
    struct vault_server *srv;
    pthread_t thread;
    nng_ctx ctx;
    nng_aio *aio;
    PGconn *db;
    bool started;
};

struct vault_server {
    struct vault *v;
    nng_socket sock;
    struct worker *workers;
    int nworkers;
    atomic_bool stopping;
    struct replay_cache *replays;
    struct metric *requests[OP_COUNT][CODE_COUNT];
    struct metric *duration;
};

static int op_index(Bcrm__V1__VaultCall__OpCase op)
{
    switch (op) {
    case BCRM__V1__VAULT_CALL__OP_STORE:
        return 0;
    case BCRM__V1__VAULT_CALL__OP_RELEASE:
        return 1;
    case BCRM__V1__VAULT_CALL__OP_DESTROY:
        return 2;
    case BCRM__V1__VAULT_CALL__OP_STATUS:
        return 3;
    case BCRM__V1__VAULT_CALL__OP_ROTATE:
        return 4;
    case BCRM__V1__VAULT_CALL__OP_REWRAP:
        return 5;
    case BCRM__V1__VAULT_CALL__OP_CONFIG:
        return 6;
    case BCRM__V1__VAULT_CALL__OP_AUDIT:
        return 7;
    case BCRM__V1__VAULT_CALL__OP_STORE_SEALED:
        return 9;
    case BCRM__V1__VAULT_CALL__OP_PROMOTE:
        return 10;
    default:
        return 8;
    }
}

static void metrics_init(struct vault_server *srv)
{
    static const Bcrm__V1__VaultCall__OpCase ops[OP_COUNT] = {
        BCRM__V1__VAULT_CALL__OP_STORE,    BCRM__V1__VAULT_CALL__OP_RELEASE,
        BCRM__V1__VAULT_CALL__OP_DESTROY,  BCRM__V1__VAULT_CALL__OP_STATUS,
        BCRM__V1__VAULT_CALL__OP_ROTATE,   BCRM__V1__VAULT_CALL__OP_REWRAP,
        BCRM__V1__VAULT_CALL__OP_CONFIG,   BCRM__V1__VAULT_CALL__OP_AUDIT,
        BCRM__V1__VAULT_CALL__OP__NOT_SET, BCRM__V1__VAULT_CALL__OP_STORE_SEALED,
        BCRM__V1__VAULT_CALL__OP_PROMOTE};
    for (int o = 0; o < OP_COUNT; o++) {
        for (int c = 0; c < CODE_COUNT; c++) {
            char labels[96];
            snprintf(labels, sizeof(labels), "op=\"%s\",outcome=\"%s\"", vault_op_name(ops[o]),
                     vault_code_name((Bcrm__V1__VaultCode)c));
            srv->requests[o][c] = metrics_counter("bcrm_vault_requests_total",
                                                  "Vault calls by operation and outcome.", labels);
        }
    }
    static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
    srv->duration =
        metrics_histogram("bcrm_vault_request_duration_seconds", "Time to answer a vault call.", "",
                          bounds, sizeof(bounds) / sizeof(bounds[0]));
}

static void count(struct vault_server *srv, Bcrm__V1__VaultCall__OpCase op,
                  Bcrm__V1__VaultCode code)
{
    int c = (int)code >= 0 && (int)code < CODE_COUNT ? (int)code : CODE_COUNT - 1;
    metric_inc(srv->requests[op_index(op)][c]);
}

/* Packs env into a new message. NULL when memory ran out. */
static nng_msg *pack_envelope(const Bcrm__V1__VaultEnvelope *env)
{
    nng_msg *m;
    size_t len = bcrm__v1__vault_envelope__get_packed_size(env);
    if (nng_msg_alloc(&m, len) != 0) {
        return NULL;
    }
    bcrm__v1__vault_envelope__pack(env, nng_msg_body(m));
    return m;
}

static nng_msg *unopened_reply(struct vault_server *srv)
{
    struct vault_box box;
    vault_box_unopened(&box, &srv->v->identity);
    nng_msg *m = pack_envelope(&box.env);
    vault_box_clear(&box);
    return m;
}

/* Handles one authenticated call and boxes the answer to the caller. */
static nng_msg *answer_call(struct worker *w, const uint8_t *caller,
                            const Bcrm__V1__VaultCall *call)
{
    struct vault_server *srv = w->srv;
    struct vault_answer ans;
    struct vault_box box;
    nng_msg *m = NULL;
    vault_handle_call(srv->v, w->db, caller, call, &ans);
    count(srv, call->op_case, ans.reply.code);
    if (vault_box_seal(&box, &ans.reply.base, &srv->v->identity, caller) == 0) {
        m = pack_envelope(&box.env);
        vault_box_clear(&box);
    }
    vault_answer_clear(&ans); /* wipes a released token */
    return m;
}

/* Refuses a call without handling it, when the replay cache has no room: failing
 * closed keeps every accepted call protected against replay. */
static nng_msg *busy_reply(struct vault_server *srv, const uint8_t *caller,
                           const Bcrm__V1__VaultCall *call)
{
    Bcrm__V1__VaultReply reply = BCRM__V1__VAULT_REPLY__INIT;
    struct vault_box box;
    nng_msg *m = NULL;
    reply.request_id = call->request_id;
    reply.code = BCRM__V1__VAULT_CODE__VAULT_INTERNAL;
    reply.error = (char *)"vault busy: too many calls in the replay window";
    count(srv, call->op_case, reply.code);
    if (vault_box_seal(&box, &reply.base, &srv->v->identity, caller) == 0) {
        m = pack_envelope(&box.env);
        vault_box_clear(&box);
    }
    return m;
}

/* One request message to one reply message, or NULL to send nothing. */
static nng_msg *serve(struct worker *w, nng_msg *req)
{
    struct vault_server *srv = w->srv;
    Bcrm__V1__VaultEnvelope *env =
        bcrm__v1__vault_envelope__unpack(NULL, nng_msg_len(req), nng_msg_body(req));
    ProtobufCMessage *opened = NULL;
    nng_msg *reply = NULL;
    if (env == NULL ||
        vault_box_open(env, &srv->v->identity, &bcrm__v1__vault_call__descriptor, &opened) != 0) {
        /* Nobody to box an answer to: say "not opened" so the caller fails fast
         * with a hint instead of waiting for its timeout. */
        log_warn("vault call did not open", "{s:b}", "envelope_parsed", env != NULL);
        count(srv, BCRM__V1__VAULT_CALL__OP__NOT_SET, BCRM__V1__VAULT_CODE__VAULT_BAD_REQUEST);
        reply = unopened_reply(srv);
        goto out;
    }
    const uint8_t *caller = env->sender_public_key.data;
    Bcrm__V1__VaultCall *call = (Bcrm__V1__VaultCall *)opened;
    /* Only allowlisted callers take a place in the replay cache, so unknown keys
     * cannot fill it; their calls are refused whatever they hold. */
    if (allowlist_role(srv->v->allowlist, caller) == VAULT_ROLE_NONE) {
        reply = answer_call(w, caller, call);
        goto out;
    }
    uint8_t key[REPLAY_KEY_BYTES], *cached;
    size_t cached_len;
    replay_key(key, caller, call->request_id);
    switch (replay_cache_begin(srv->replays, key, clock_mono_ms(), &cached, &cached_len)) {
    case REPLAY_NEW:
        reply = answer_call(w, caller, call);
        if (reply != NULL) {
            replay_cache_finish(srv->replays, key, nng_msg_body(reply), nng_msg_len(reply));
        } else {
            replay_cache_abandon(srv->replays, key);
        }
        break;
    case REPLAY_DONE:
        log_info("vault call repeated; answered as before", "{s:s}", "operation",
                 vault_op_name(call->op_case));
        if (nng_msg_alloc(&reply, cached_len) == 0) {
            memcpy(nng_msg_body(reply), cached, cached_len);
        }
        free(cached);
        break;
    case REPLAY_IN_PROGRESS:
        log_debug("vault call repeated while in progress; left to the first copy", NULL);
        break;
    case REPLAY_FULL:
        log_error("vault replay cache full; call refused", "{s:i}", "capacity", REPLAY_CAPACITY);
        reply = busy_reply(srv, caller, call);
        break;
    }
out:
    vault_box_free_unpacked(opened); /* wipes a token being stored */
    if (env != NULL) {
        bcrm__v1__vault_envelope__free_unpacked(env, NULL);
    }
    return reply;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct vault_server *srv = w->srv;
    while (!atomic_load(&srv->stopping)) {
        nng_aio_set_timeout(w->aio, WORKER_POLL_MS);
        nng_ctx_recv(w->ctx, w->aio);
        nng_aio_wait(w->aio);
        int rv = nng_aio_result(w->aio);
        if (rv == NNG_ETIMEDOUT) {
            continue;
        }
        if (rv == NNG_ECLOSED) {
            break;
        }
        if (rv != 0) {
            log_warn("vault receive failed", "{s:s}", "error", nng_strerror(rv));
            continue;
        }
        int64_t started = clock_mono_ms();
        nng_msg *req = nng_aio_get_msg(w->aio);
        nng_msg *reply = serve(w, req);
        nng_msg_free(req);
        if (reply == NULL) {
            continue;
        }
        nng_aio_set_timeout(w->aio, 1000);
        nng_aio_set_msg(w->aio, reply);
        nng_ctx_send(w->ctx, w->aio);
        nng_aio_wait(w->aio);
        if ((rv = nng_aio_result(w->aio)) != 0) {
            nng_msg_free(reply);
            log_warn("vault reply failed", "{s:s}", "error", nng_strerror(rv));
        }
        metric_observe(srv->duration, (double)(clock_mono_ms() - started) / 1000.0);
    }
    return NULL;
}

struct vault_server *vault_server_start(struct vault *v, const char *url, const char *db_url,
                                        int workers, char *err, size_t errlen)
{
    struct vault_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->sock = (nng_socket)NNG_SOCKET_INITIALIZER;
    if ((srv->workers = calloc((size_t)workers, sizeof(*srv->workers))) == NULL ||
        (srv->replays = replay_cache_new(REPLAY_CAPACITY, 2 * VAULT_REPLAY_WINDOW_MS)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    srv->v = v;
    srv->nworkers = workers;
    metrics_init(srv);
    for (int i = 0; i < workers; i++) {
        srv->workers[i].srv = srv;
        if ((srv->workers[i].db = db_connect(db_url, 10000)) == NULL) {
            snprintf(err, errlen, "worker %d: cannot connect to PostgreSQL", i);
            goto fail;
        }
    }
    int rv = bus_listen(&srv->sock, BUS_REP, url);
    if (rv != 0) {
        snprintf(err, errlen, "BCRM_VAULT_URL %s: %s", url, nng_strerror(rv));
        goto fail;
    }
    for (int i = 0; i < workers; i++) {
        struct worker *w = &srv->workers[i];
        if ((rv = nng_ctx_open(&w->ctx, srv->sock)) != 0 ||
            (rv = nng_aio_alloc(&w->aio, NULL, NULL)) != 0) {
            snprintf(err, errlen, "vault socket: %s", nng_strerror(rv));
            goto fail;
        }
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            snprintf(err, errlen, "cannot start worker thread");
            goto fail;
        }
        w->started = true;
    }
    atomic_store(&v->db_ok, true);
    return srv;
fail:
    vault_server_stop(srv);
    return NULL;
}

void vault_server_stop(struct vault_server *srv)
{
    if (srv == NULL) {
        return;
    }
    atomic_store(&srv->stopping, true);
    for (int i = 0; srv->workers != NULL && i < srv->nworkers; i++) {
        if (srv->workers[i].started) {
            pthread_join(srv->workers[i].thread, NULL);
        }
    }
    if (nng_socket_id(srv->sock) > 0) {
        nng_close(srv->sock);
    }
    for (int i = 0; srv->workers != NULL && i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        if (w->aio != NULL) {
            nng_aio_free(w->aio);
        }
        if (w->db != NULL) {
            PQfinish(w->db);
        }
    }
    replay_cache_free(srv->replays);
    free(srv->workers);
    free(srv);
}
