/* replay_cache.c: a hash table of recent calls plus a FIFO in arrival order.
 * Every entry has the same lifetime, so the oldest entry always expires first
 * and expiry only ever looks at the head of the FIFO. */
#include "replay_cache.h"

#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct replay_entry {
    uint8_t key[REPLAY_KEY_BYTES];
    int64_t expires_ms;
    bool done;
    uint8_t *reply; /* malloc'd, once done */
    size_t reply_len;
    struct replay_entry *bucket_next;
    struct replay_entry *fifo_next;
};

struct replay_cache {
    pthread_mutex_t lock;
    size_t capacity, count, nbuckets;
    int64_t ttl_ms;
    struct replay_entry **buckets;
    struct replay_entry *fifo_head, *fifo_tail;
};

struct replay_cache *replay_cache_new(size_t capacity, int64_t ttl_ms)
{
    struct replay_cache *rc = calloc(1, sizeof(*rc));
    if (rc == NULL) {
        return NULL;
    }
    rc->capacity = capacity;
    rc->ttl_ms = ttl_ms;
    rc->nbuckets = capacity > 16 ? capacity : 16;
    rc->buckets = calloc(rc->nbuckets, sizeof(*rc->buckets));
    if (rc->buckets == NULL) {
        free(rc);
        return NULL;
    }
    pthread_mutex_init(&rc->lock, NULL);
    return rc;
}

void replay_cache_free(struct replay_cache *rc)
{
    if (rc == NULL) {
        return;
    }
    struct replay_entry *e = rc->fifo_head;
    while (e != NULL) {
        struct replay_entry *next = e->fifo_next;
        free(e->reply);
        free(e);
        e = next;
    }
    pthread_mutex_destroy(&rc->lock);
    free(rc->buckets);
    free(rc);
}

void replay_key(uint8_t out[REPLAY_KEY_BYTES], const uint8_t caller_key[32], const char *request_id)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, REPLAY_KEY_BYTES);
    crypto_generichash_update(&st, caller_key, 32);
    crypto_generichash_update(&st, (const uint8_t *)request_id, strlen(request_id));
    crypto_generichash_final(&st, out, REPLAY_KEY_BYTES);
}

static size_t bucket_of(const struct replay_cache *rc, const uint8_t key[REPLAY_KEY_BYTES])
{
    uint64_t h;
    memcpy(&h, key, sizeof(h)); /* the key is already a uniform hash */
    return (size_t)(h % rc->nbuckets);
}

static struct replay_entry **find_link(struct replay_cache *rc, const uint8_t key[REPLAY_KEY_BYTES])
{
    struct replay_entry **link = &rc->buckets[bucket_of(rc, key)];
    while (*link != NULL && memcmp((*link)->key, key, REPLAY_KEY_BYTES) != 0) {
        link = &(*link)->bucket_next;
    }
    return link;
}

/* Unlinks e from its bucket; the caller unlinks it from the FIFO. */
static void unlink_bucket(struct replay_cache *rc, struct replay_entry *e)
{
    struct replay_entry **link = find_link(rc, e->key);
    if (*link == e) {
        *link = e->bucket_next;
    }
}

static void expire(struct replay_cache *rc, int64_t now_ms)
{
    /* A call still in progress after the whole lifetime expires too: its
     * replay_cache_finish then finds nothing and stores nothing. */
    while (rc->fifo_head != NULL && rc->fifo_head->expires_ms <= now_ms) {
        struct replay_entry *e = rc->fifo_head;
        rc->fifo_head = e->fifo_next;
        if (rc->fifo_head == NULL) {
            rc->fifo_tail = NULL;
        }
        unlink_bucket(rc, e);
        free(e->reply);
        free(e);
        rc->count--;
    }
}

enum replay_state replay_cache_begin(struct replay_cache *rc, const uint8_t key[REPLAY_KEY_BYTES],
                                     int64_t now_ms, uint8_t **reply, size_t *reply_len)
{
    enum replay_state st;
    *reply = NULL;
    *reply_len = 0;
    pthread_mutex_lock(&rc->lock);
    expire(rc, now_ms);
    struct replay_entry *e = *find_link(rc, key);
    if (e != NULL && !e->done) {
        st = REPLAY_IN_PROGRESS;
    } else if (e != NULL) {
        st = REPLAY_DONE;
        *reply = malloc(e->reply_len > 0 ? e->reply_len : 1);
        if (*reply == NULL) {
            st = REPLAY_FULL;
        } else {
            memcpy(*reply, e->reply, e->reply_len);
            *reply_len = e->reply_len;
        }
    } else if (rc->count >= rc->capacity || (e = calloc(1, sizeof(*e))) == NULL) {
        st = REPLAY_FULL;
    } else {
        memcpy(e->key, key, REPLAY_KEY_BYTES);
        e->expires_ms = now_ms + rc->ttl_ms;
        size_t b = bucket_of(rc, key);
        e->bucket_next = rc->buckets[b];
        rc->buckets[b] = e;
        if (rc->fifo_tail != NULL) {
            rc->fifo_tail->fifo_next = e;
        } else {
            rc->fifo_head = e;
        }
        rc->fifo_tail = e;
        rc->count++;
        st = REPLAY_NEW;
    }
    pthread_mutex_unlock(&rc->lock);
    return st;
}

void replay_cache_finish(struct replay_cache *rc, const uint8_t key[REPLAY_KEY_BYTES],
                         const uint8_t *reply, size_t reply_len)
{
    pthread_mutex_lock(&rc->lock);
    struct replay_entry *e = *find_link(rc, key);
    if (e != NULL && !e->done) {
        e->reply = malloc(reply_len > 0 ? reply_len : 1);
        if (e->reply != NULL) {
            memcpy(e->reply, reply, reply_len);
            e->reply_len = reply_len;
        }
        /* Without a copy the entry still blocks replays; a repeat gets an empty
         * answer, which the caller cannot open and reports. */
        e->done = true;
    }
    pthread_mutex_unlock(&rc->lock);
}

void replay_cache_abandon(struct replay_cache *rc, const uint8_t key[REPLAY_KEY_BYTES])
{
    pthread_mutex_lock(&rc->lock);
    struct replay_entry *e = *find_link(rc, key);
    if (e != NULL && !e->done) {
        /* Marked done with no reply, the entry expires in FIFO order like the rest;
         * unlinking it from its bucket lets a resend be handled anew. */
        unlink_bucket(rc, e);
        e->bucket_next = NULL;
        e->done = true;
        memset(e->key, 0, sizeof(e->key));
    }
    pthread_mutex_unlock(&rc->lock);
}

size_t replay_cache_size(struct replay_cache *rc)
{
    pthread_mutex_lock(&rc->lock);
    size_t n = rc->count;
    pthread_mutex_unlock(&rc->lock);
    return n;
}
