/* ratelimit.c: token buckets (see ratelimit.h). */
#include "ratelimit.h"

#include "bucket.h"
#include "strmap.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct locked_bucket {
    pthread_mutex_t lock;
    struct bucket b;
};

/* A channel's bucket, owned by its shard's map; the key lives inside. */
struct channel_bucket {
    struct bucket b;
    char key[48];
};

#define CHANNEL_SHARDS 64

struct channel_shard {
    pthread_mutex_t lock;
    struct strmap *buckets;
};

struct ratelimit {
    size_t workspaces;
    size_t methods;
    struct locked_bucket *method_buckets; /* [ws * methods + method] */
    struct locked_bucket *post_buckets;   /* [ws] */
    struct channel_shard shards[CHANNEL_SHARDS];
};

struct ratelimit *ratelimit_new(size_t workspaces, size_t methods)
{
    struct ratelimit *rl = calloc(1, sizeof(*rl));
    if (rl == NULL) {
        return NULL;
    }
    rl->workspaces = workspaces;
    rl->methods = methods;
    rl->method_buckets = calloc(workspaces * methods, sizeof(*rl->method_buckets));
    rl->post_buckets = calloc(workspaces, sizeof(*rl->post_buckets));
    if (rl->method_buckets == NULL || rl->post_buckets == NULL) {
        goto fail;
    }
    for (size_t i = 0; i < workspaces * methods; i++) {
        pthread_mutex_init(&rl->method_buckets[i].lock, NULL);
    }
    for (size_t i = 0; i < workspaces; i++) {
        pthread_mutex_init(&rl->post_buckets[i].lock, NULL);
    }
    for (size_t i = 0; i < CHANNEL_SHARDS; i++) {
        pthread_mutex_init(&rl->shards[i].lock, NULL);
        rl->shards[i].buckets = strmap_new(64);
        if (rl->shards[i].buckets == NULL) {
            goto fail;
        }
    }
    return rl;
fail:
    ratelimit_free(rl);
    return NULL;
}

static void free_bucket(void *ctx, const char *key, void *value)
{
    (void)ctx;
    (void)key;
    free(value);
}

void ratelimit_free(struct ratelimit *rl)
{
    if (rl == NULL) {
        return;
    }
    for (size_t i = 0; i < CHANNEL_SHARDS; i++) {
        if (rl->shards[i].buckets != NULL) {
            strmap_foreach(rl->shards[i].buckets, free_bucket, NULL);
            strmap_free(rl->shards[i].buckets);
        }
        pthread_mutex_destroy(&rl->shards[i].lock);
    }
    free(rl->method_buckets);
    free(rl->post_buckets);
    free(rl);
}

void ratelimit_reset(struct ratelimit *rl)
{
    for (size_t i = 0; i < rl->workspaces * rl->methods; i++) {
        pthread_mutex_lock(&rl->method_buckets[i].lock);
        rl->method_buckets[i].b.started = false;
        pthread_mutex_unlock(&rl->method_buckets[i].lock);
    }
    for (size_t i = 0; i < rl->workspaces; i++) {
        pthread_mutex_lock(&rl->post_buckets[i].lock);
        rl->post_buckets[i].b.started = false;
        pthread_mutex_unlock(&rl->post_buckets[i].lock);
    }
    for (size_t i = 0; i < CHANNEL_SHARDS; i++) {
        pthread_mutex_lock(&rl->shards[i].lock);
        strmap_foreach(rl->shards[i].buckets, free_bucket, NULL);
        strmap_clear(rl->shards[i].buckets);
        pthread_mutex_unlock(&rl->shards[i].lock);
    }
}

int ratelimit_take_method(struct ratelimit *rl, size_t ws, size_t method, int per_minute,
                          int64_t now_ms)
{
    if (per_minute <= 0 || ws >= rl->workspaces || method >= rl->methods) {
        return 0;
    }
    struct locked_bucket *lb = &rl->method_buckets[ws * rl->methods + method];
    double per_ms = per_minute / 60000.0;
    pthread_mutex_lock(&lb->lock);
    int wait = bucket_take(&lb->b, per_minute, per_ms, now_ms);
    pthread_mutex_unlock(&lb->lock);
    return wait;
}

int ratelimit_take_post(struct ratelimit *rl, size_t ws, const char *channel,
                        const struct sim_limits *limits, int64_t now_ms)
{
    if (ws >= rl->workspaces) {
        return 0;
    }
    char key[48];
    snprintf(key, sizeof(key), "%zu:%s", ws, channel);
    struct channel_shard *shard = &rl->shards[strmap_hash(key) % CHANNEL_SHARDS];
    struct locked_bucket *wsb = &rl->post_buckets[ws];
    double ch_per_ms = limits->channel_per_second / 1000.0;
    double ws_per_ms = limits->post_per_minute / 60000.0;
    int wait = 0;

    /* Always the channel's shard first, then the workspace: one lock order. */
    pthread_mutex_lock(&shard->lock);
    struct channel_bucket *cb = strmap_get(shard->buckets, key);
    if (cb == NULL) {
        cb = calloc(1, sizeof(*cb));
        if (cb == NULL) {
            pthread_mutex_unlock(&shard->lock);
            return 0; /* out of memory: let the call through rather than fail it */
        }
        memcpy(cb->key, key, sizeof(key));
        if (strmap_put(shard->buckets, cb->key, cb) != 0) {
            free(cb);
            pthread_mutex_unlock(&shard->lock);
            return 0;
        }
    }
    bucket_refill(&cb->b, limits->channel_burst, ch_per_ms, now_ms);
    pthread_mutex_lock(&wsb->lock);
    bucket_refill(&wsb->b, limits->post_per_minute, ws_per_ms, now_ms);
    int ch_wait = bucket_wait_s(&cb->b, ch_per_ms);
    int ws_wait = bucket_wait_s(&wsb->b, ws_per_ms);
    wait = ch_wait > ws_wait ? ch_wait : ws_wait;
    if (wait == 0) {
        cb->b.tokens -= 1.0;
        wsb->b.tokens -= 1.0;
    }
    pthread_mutex_unlock(&wsb->lock);
    pthread_mutex_unlock(&shard->lock);
    return wait;
}
