/* cache.c: see worker_cache.h.
 *
 * A chained hash table for lookups plus a doubly linked list in put order for
 * expiry. Every entry has the same lifetime, so the oldest entry is always the
 * first to expire: a sweep pops from the head of the list until it meets one that
 * is still alive.
 */
#include "bcrm/worker_cache.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_MIN_BUCKETS 1024

struct cache_entry {
    char *key; /* "a\x1fb", NUL-terminated */
    size_t a_len;
    uint64_t hash;
    void *value;
    int64_t expires_ms;
    struct cache_entry *chain;         /* next in the bucket */
    struct cache_entry *older, *newer; /* the put-order list */
};

struct worker_cache {
    struct cache_entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
    size_t max_entries;
    int64_t ttl_ms;
    worker_cache_free_fn free_value;
    struct cache_entry *oldest, *newest;
};

/* FNV-1a over "a", a unit separator and "b": cheap, and it spreads ids that share
 * a prefix (every user id of a workspace starts alike). */
static uint64_t key_hash(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)a; *p != '\0'; p++) {
        h = (h ^ *p) * 1099511628211ULL;
    }
    h = (h ^ 0x1f) * 1099511628211ULL;
    for (const unsigned char *p = (const unsigned char *)b; *p != '\0'; p++) {
        h = (h ^ *p) * 1099511628211ULL;
    }
    return h;
}

static bool key_is(const struct cache_entry *e, const char *a, size_t a_len, const char *b)
{
    return e->a_len == a_len && memcmp(e->key, a, a_len) == 0 && e->key[a_len] == '\x1f' &&
           strcmp(e->key + a_len + 1, b) == 0;
}

struct worker_cache *worker_cache_new(size_t max_entries, int64_t ttl_ms,
                                      worker_cache_free_fn free_value)
{
    struct worker_cache *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->nbuckets = CACHE_MIN_BUCKETS;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (c->buckets == NULL) {
        free(c);
        return NULL;
    }
    c->max_entries = max_entries > 0 ? max_entries : 1;
    c->ttl_ms = ttl_ms;
    c->free_value = free_value;
    return c;
}

/* Takes e out of its bucket and the list, and frees it with its value. */
static void entry_remove(struct worker_cache *c, struct cache_entry *e)
{
    struct cache_entry **link = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*link != e) {
        link = &(*link)->chain;
    }
    *link = e->chain;
    if (e->older != NULL) {
        e->older->newer = e->newer;
    } else {
        c->oldest = e->newer;
    }
    if (e->newer != NULL) {
        e->newer->older = e->older;
    } else {
        c->newest = e->older;
    }
    c->count--;
    if (c->free_value != NULL) {
        c->free_value(e->value);
    }
    /* A user id next to a bot id says who was being written to. */
    sodium_memzero(e->key, strlen(e->key));
    free(e->key);
    free(e);
}

void worker_cache_free(struct worker_cache *cache)
{
    if (cache == NULL) {
        return;
    }
    while (cache->oldest != NULL) {
        entry_remove(cache, cache->oldest);
    }
    free(cache->buckets);
    free(cache);
}

static struct cache_entry *find(struct worker_cache *c, const char *a, const char *b, uint64_t hash)
{
    size_t a_len = strlen(a);
    for (struct cache_entry *e = c->buckets[hash & (c->nbuckets - 1)]; e != NULL; e = e->chain) {
        if (e->hash == hash && key_is(e, a, a_len, b)) {
            return e;
        }
    }
    return NULL;
}

void *worker_cache_get(struct worker_cache *cache, const char *a, const char *b, int64_t now_ms)
{
    struct cache_entry *e = find(cache, a, b, key_hash(a, b));
    if (e == NULL) {
        return NULL;
    }
    if (now_ms >= e->expires_ms) {
        entry_remove(cache, e);
        return NULL;
    }
    return e->value;
}

/* Doubles the bucket array while the table is fuller than one entry a bucket; a
 * failed allocation only leaves the chains longer. */
static void maybe_grow(struct worker_cache *c)
{
    if (c->count < c->nbuckets) {
        return;
    }
    size_t n = c->nbuckets * 2;
    struct cache_entry **fresh = calloc(n, sizeof(*fresh));
    if (fresh == NULL) {
        return;
    }
    for (struct cache_entry *e = c->oldest; e != NULL; e = e->newer) {
        struct cache_entry **head = &fresh[e->hash & (n - 1)];
        e->chain = *head;
        *head = e;
    }
    free(c->buckets);
    c->buckets = fresh;
    c->nbuckets = n;
}

int worker_cache_put(struct worker_cache *cache, const char *a, const char *b, void *value,
                     int64_t now_ms)
{
    uint64_t hash = key_hash(a, b);
    struct cache_entry *old = find(cache, a, b, hash);
    if (old != NULL) {
        entry_remove(cache, old);
    }
    while (cache->count >= cache->max_entries && cache->oldest != NULL) {
        entry_remove(cache, cache->oldest);
    }
    struct cache_entry *e = calloc(1, sizeof(*e));
    size_t a_len = strlen(a), b_len = strlen(b);
    char *key = malloc(a_len + 1 + b_len + 1);
    if (e == NULL || key == NULL) {
        free(e);
        free(key);
        if (cache->free_value != NULL) {
            cache->free_value(value);
        }
        return -1;
    }
    memcpy(key, a, a_len);
    key[a_len] = '\x1f';
    memcpy(key + a_len + 1, b, b_len + 1);
    e->key = key;
    e->a_len = a_len;
    e->hash = hash;
    e->value = value;
    e->expires_ms = now_ms + cache->ttl_ms;
    struct cache_entry **head = &cache->buckets[hash & (cache->nbuckets - 1)];
    e->chain = *head;
    *head = e;
    e->older = cache->newest;
    if (cache->newest != NULL) {
        cache->newest->newer = e;
    } else {
        cache->oldest = e;
    }
    cache->newest = e;
    cache->count++;
    maybe_grow(cache);
    return 0;
}

size_t worker_cache_sweep(struct worker_cache *cache, int64_t now_ms)
{
    size_t freed = 0;
    while (cache->oldest != NULL && now_ms >= cache->oldest->expires_ms) {
        entry_remove(cache, cache->oldest);
        freed++;
    }
    return freed;
}

size_t worker_cache_count(const struct worker_cache *cache)
{
    return cache->count;
}

int64_t worker_cache_ttl(const struct worker_cache *cache)
{
    return cache->ttl_ms;
}
