/* query_pool.c: threads answering live platform queries (VerifyBot, ListUsers,
 * ListChannels) from the api and the scheduler.
 *
 * Each thread owns a context on the shared REP socket, so NNG hands each request
 * to an idle thread and routes each reply back to whoever asked, and an easy
 * handle of its own, so its connections to the platform are reused. Queries are
 * few and synchronous calls keep them simple; sends never wait behind them
 * because they run on the send loop.
 */
#include "worker_internal.h"

#include "bcrm/clock.h"
#include "bcrm/harden.h"
#include "bcrm/log.h"
#include "bcrm/metrics.h"
#include "bcrm/worker_reply.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How often an idle thread looks at the stop flag. */
#define QUERY_POLL_MS 200
/* Bots and query kinds remembered as rate limited at once. */
#define QUERY_LIMITS 256

/* A platform's rate limits are per method and per bot (Slack's tiers): after a 429,
 * the same query for the same bot is answered QUERY_RATE_LIMITED here until the
 * Retry-After has passed, rather than asking the platform again and again. */
struct query_limit {
    char bot_id[64];
    int kind; /* PlatformQuery's query_case */
    int64_t until_mono_ms;
};

struct query_thread {
    struct query_pool *pool;
    pthread_t tid;
    bool started;
    nng_ctx ctx;
    nng_aio *aio;
    CURL *easy; /* a fresh one per query, sharing the pool's connections */
};

struct query_pool {
    const struct worker_platform *platform;
    void *state;
    struct token_cache *tokens;
    struct worker_metrics *metrics;
    CURLSH *share; /* connections and DNS answers, shared by the threads' handles */
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
    pthread_mutex_t limits_lock;
    struct query_limit limits[QUERY_LIMITS];
    atomic_bool stop;
    int count;
    struct query_thread *threads;
};

static const char *query_kind(const Bcrm__V1__PlatformQuery *q)
{
    switch (q->query_case) {
    case BCRM__V1__PLATFORM_QUERY__QUERY_VERIFY_BOT:
        return "verify_bot";
    case BCRM__V1__PLATFORM_QUERY__QUERY_LIST_USERS:
        return "list_users";
    case BCRM__V1__PLATFORM_QUERY__QUERY_LIST_CHANNELS:
        return "list_channels";
    case BCRM__V1__PLATFORM_QUERY__QUERY_LIST_CHANNEL_MEMBERS:
        return "list_channel_members";
    case BCRM__V1__PLATFORM_QUERY__QUERY_EXCHANGE_OAUTH_CODE:
        return "exchange_oauth_code";
    default:
        return "none";
    }
}

/* Milliseconds the (bot, kind) must still wait, or 0. */
static int64_t limit_remaining(struct query_pool *pool, const Bcrm__V1__PlatformQuery *q,
                               int64_t now)
{
    int64_t left = 0;
    pthread_mutex_lock(&pool->limits_lock);
    for (int i = 0; i < QUERY_LIMITS; i++) {
        struct query_limit *l = &pool->limits[i];
        if (l->until_mono_ms > now && l->kind == (int)q->query_case &&
            strcmp(l->bot_id, q->bot_id) == 0) {
            left = l->until_mono_ms - now;
            break;
        }
    }
    pthread_mutex_unlock(&pool->limits_lock);
    return left;
}

/* Remembers a 429 for (bot, kind): in the slot of the same pair, else an expired
 * one, else the one that ends soonest. */
static void limit_note(struct query_pool *pool, const Bcrm__V1__PlatformQuery *q, int64_t now,
                       int64_t retry_after_ms)
{
    pthread_mutex_lock(&pool->limits_lock);
    struct query_limit *slot = &pool->limits[0];
    for (int i = 0; i < QUERY_LIMITS; i++) {
        struct query_limit *l = &pool->limits[i];
        if (l->kind == (int)q->query_case && strcmp(l->bot_id, q->bot_id) == 0) {
            slot = l;
            break;
        }
        if (l->until_mono_ms < slot->until_mono_ms) {
            slot = l;
        }
    }
    snprintf(slot->bot_id, sizeof(slot->bot_id), "%s", q->bot_id);
    slot->kind = (int)q->query_case;
    if (now + retry_after_ms > slot->until_mono_ms) {
        slot->until_mono_ms = now + retry_after_ms;
    }
    pthread_mutex_unlock(&pool->limits_lock);
}

/* Answers one query into reply (never fails: a problem becomes a status). */
static void query_answer(struct query_thread *t, const Bcrm__V1__PlatformQuery *q,
                         Bcrm__V1__PlatformReply *reply)
{
    struct query_pool *pool = t->pool;
    if (q->query_case == BCRM__V1__PLATFORM_QUERY__QUERY__NOT_SET) {
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_BAD_REQUEST, "no_query");
        return;
    }
    int64_t now = clock_mono_ms();
    int64_t wait = limit_remaining(pool, q, now);
    if (wait > 0) {
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_RATE_LIMITED, "ratelimited");
        reply->has_retry_after_ms = true;
        reply->retry_after_ms = wait;
        return;
    }
    if (pool->platform->query_needs_token != NULL && !pool->platform->query_needs_token(q)) {
        /* A query made before the bot has a token (the OAuth code exchange). */
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_OK, NULL);
        pool->platform->query(pool->state, t->easy, NULL, q, reply);
        return;
    }
    struct token_copy token;
    /* VerifyBot is the question "is the token the vault holds now good?" (a new or
     * reconnected bot), so it never answers from a copy cached before. */
    bool fresh = q->query_case == BCRM__V1__PLATFORM_QUERY__QUERY_VERIFY_BOT;
    switch (token_cache_get(pool->tokens, q->org_id, q->bot_id, fresh, &token)) {
    case TOKEN_MISSING:
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_TOKEN_INVALID, "no_token");
        return;
    case TOKEN_UNAVAILABLE:
    case TOKEN_PENDING:
    case TOKEN_INVALID: /* token_cache_get asks the vault instead */
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_UNAVAILABLE, "vault_unavailable");
        return;
    case TOKEN_OK:
        break;
    }
    worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_OK, NULL);
    pool->platform->query(pool->state, t->easy, token.data, q, reply);
    token_copy_wipe(&token);
    /* What the platform said of the token counts for the sends too: a refusal
     * holds them back, an answer (a reconnected bot's VerifyBot) lets them go. */
    if (reply->status == BCRM__V1__QUERY_STATUS__QUERY_TOKEN_INVALID) {
        token_cache_verdict(pool->tokens, q->org_id, q->bot_id, token.fp, TOKEN_REFUSED, false,
                            reply->error);
    } else if (reply->status == BCRM__V1__QUERY_STATUS__QUERY_OK) {
        token_cache_verdict(pool->tokens, q->org_id, q->bot_id, token.fp, TOKEN_WORKS, false, NULL);
    }
    if (reply->status == BCRM__V1__QUERY_STATUS__QUERY_RATE_LIMITED) {
        limit_note(pool, q, clock_mono_ms(),
                   reply->has_retry_after_ms && reply->retry_after_ms > 0 ? reply->retry_after_ms
                                                                          : 1000);
    }
}

/* A new easy handle on the pool's share. NULL when out of memory. */
static CURL *query_easy_new(struct query_pool *pool)
{
    CURL *easy = curl_easy_init();
    if (easy != NULL && curl_easy_setopt(easy, CURLOPT_SHARE, pool->share) != CURLE_OK) {
        curl_easy_cleanup(easy);
        easy = NULL;
    }
    return easy;
}

/* The handle used for a query keeps copies of its URLs (Messenger's carry the
 * token) until it is cleaned up, so every query gets a fresh one; connections
 * survive in the share. */
static void query_easy_renew(struct query_thread *t)
{
    if (t->easy != NULL) {
        curl_easy_cleanup(t->easy);
    }
    t->easy = query_easy_new(t->pool);
}

/* Handles one request message (consumed) and returns the reply message, or NULL
 * when out of memory. */
static nng_msg *query_handle(struct query_thread *t, nng_msg *request)
{
    Bcrm__V1__PlatformReply reply = BCRM__V1__PLATFORM_REPLY__INIT;
    Bcrm__V1__PlatformQuery *q =
        bcrm__v1__platform_query__unpack(NULL, nng_msg_len(request), nng_msg_body(request));
    nng_msg_free(request);
    int64_t started = clock_mono_ms();
    if (q == NULL) {
        log_warn("query dropped: does not unpack", NULL);
        worker_reply_status(&reply, BCRM__V1__QUERY_STATUS__QUERY_BAD_REQUEST, "bad_message");
        reply.request_id = strdup("");
    } else if (t->easy == NULL && (t->easy = query_easy_new(t->pool)) == NULL) {
        worker_reply_status(&reply, BCRM__V1__QUERY_STATUS__QUERY_UNAVAILABLE, "out_of_memory");
        reply.request_id = strdup(q->request_id);
        bcrm__v1__platform_query__free_unpacked(q, NULL);
    } else {
        query_answer(t, q, &reply);
        query_easy_renew(t);
        reply.request_id = strdup(q->request_id);
        log_info("query answered", "{s:s, s:s, s:s, s:i, s:s, s:I}", "request_id", q->request_id,
                 "bot_id", q->bot_id, "query", query_kind(q), "status", (int)reply.status, "error",
                 reply.error != NULL ? reply.error : "", "ms",
                 (json_int_t)(clock_mono_ms() - started));
        bcrm__v1__platform_query__free_unpacked(q, NULL);
    }
    if ((int)reply.status >= 0 && (int)reply.status < 6) {
        metric_inc(t->pool->metrics->queries[reply.status]);
    }
    nng_msg *m = NULL;
    size_t len = bcrm__v1__platform_reply__get_packed_size(&reply);
    if (nng_msg_alloc(&m, len) == 0) {
        bcrm__v1__platform_reply__pack(&reply, nng_msg_body(m));
    }
    worker_reply_clear(&reply);
    return m;
}

static void *query_thread_main(void *arg)
{
    struct query_thread *t = arg;
    bool trim_due = false;
    while (!atomic_load(&t->pool->stop)) {
        nng_aio_set_timeout(t->aio, QUERY_POLL_MS);
        nng_ctx_recv(t->ctx, t->aio);
        nng_aio_wait(t->aio);
        int rv = nng_aio_result(t->aio);
        if (rv == NNG_ETIMEDOUT) {
            /* Idle after answering: the pages of users parsed and packed (a
             * megabyte of JSON each, its tree, the reply) are free, so give the
             * memory back rather than keep the high-water mark of the largest
             * answers for the life of the process; pages given back come back
             * zeroed, which also drops the profiles the freed blocks held. Not
             * while answers keep coming: during an audience read the next page
             * reuses the same memory, and giving it back in between costs a page
             * fault per 4 KiB of every page parsed (a fifth of the read's speed). */
            if (trim_due) {
                malloc_trim(0);
                stack_scrub(); /* and the copies parsing left on this thread's stack */
                trim_due = false;
            }
            continue;
        }
        if (rv != 0) {
            if (rv != NNG_ECLOSED) {
                log_error("query receive failed", "{s:s}", "error", nng_strerror(rv));
            }
            break;
        }
        nng_msg *reply = query_handle(t, nng_aio_get_msg(t->aio));
        if (reply == NULL) {
            continue; /* the requester resends or times out */
        }
        nng_aio_set_timeout(t->aio, 5000);
        nng_aio_set_msg(t->aio, reply);
        nng_ctx_send(t->ctx, t->aio);
        nng_aio_wait(t->aio);
        if ((rv = nng_aio_result(t->aio)) != 0) {
            nng_msg_free(nng_aio_get_msg(t->aio));
            log_warn("query reply not sent", "{s:s}", "error", nng_strerror(rv));
        }
        trim_due = true;
    }
    return NULL;
}

static void share_lock(CURL *easy, curl_lock_data data, curl_lock_access access, void *userp)
{
    (void)easy;
    (void)access;
    struct query_pool *pool = userp;
    pthread_mutex_lock(&pool->share_locks[data]);
}

static void share_unlock(CURL *easy, curl_lock_data data, void *userp)
{
    (void)easy;
    struct query_pool *pool = userp;
    pthread_mutex_unlock(&pool->share_locks[data]);
}

struct query_pool *query_pool_start(const struct worker_platform *platform, void *state,
                                    nng_socket rep, struct token_cache *tokens,
                                    struct worker_metrics *metrics, int threads)
{
    struct query_pool *pool = calloc(1, sizeof(*pool));
    if (pool == NULL) {
        return NULL;
    }
    pool->platform = platform;
    pool->state = state;
    pool->tokens = tokens;
    pool->metrics = metrics;
    pool->count = threads;
    pthread_mutex_init(&pool->limits_lock, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) {
        pthread_mutex_init(&pool->share_locks[i], NULL);
    }
    if ((pool->share = curl_share_init()) == NULL ||
        curl_share_setopt(pool->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
        curl_share_setopt(pool->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
        curl_share_setopt(pool->share, CURLSHOPT_USERDATA, pool) != CURLSHE_OK ||
        curl_share_setopt(pool->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK ||
        curl_share_setopt(pool->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK) {
        log_error("query curl share failed", NULL);
        goto fail;
    }
    pool->threads = calloc((size_t)threads, sizeof(*pool->threads));
    if (pool->threads == NULL) {
        goto fail;
    }
    for (int i = 0; i < threads; i++) {
        struct query_thread *t = &pool->threads[i];
        t->pool = pool;
        int rv;
        if ((rv = nng_ctx_open(&t->ctx, rep)) != 0 || (rv = nng_aio_alloc(&t->aio, NULL, NULL))) {
            log_error("query context failed", "{s:s}", "error", nng_strerror(rv));
            goto fail;
        }
        if ((t->easy = query_easy_new(pool)) == NULL) {
            log_error("query curl handle failed", NULL);
            goto fail;
        }
        if (pthread_create(&t->tid, NULL, query_thread_main, t) != 0) {
            log_error("query thread failed", NULL);
            goto fail;
        }
        t->started = true;
    }
    return pool;
fail:
    query_pool_stop(pool);
    return NULL;
}

void query_pool_stop(struct query_pool *pool)
{
    if (pool == NULL) {
        return;
    }
    atomic_store(&pool->stop, true);
    for (int i = 0; pool->threads != NULL && i < pool->count; i++) {
        struct query_thread *t = &pool->threads[i];
        if (t->started) {
            pthread_join(t->tid, NULL);
        }
        if (t->aio != NULL) {
            nng_aio_free(t->aio);
            nng_ctx_close(t->ctx);
        }
        if (t->easy != NULL) {
            curl_easy_cleanup(t->easy);
        }
    }
    free(pool->threads);
    if (pool->share != NULL) {
        curl_share_cleanup(pool->share);
    }
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) {
        pthread_mutex_destroy(&pool->share_locks[i]);
    }
    pthread_mutex_destroy(&pool->limits_lock);
    free(pool);
}
