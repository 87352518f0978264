/* worker_cache.h: a short-lived map for what a sender may keep of a platform's
 * data for a few minutes and no longer (profiles, direct-message channel ids).
 *
 * Keys have two parts (a bot id and a user id); values are owned by the cache.
 * Every entry lives ttl_ms from the put that made it, and entries are kept in
 * the order they were put, which is the order they expire in, so a sweep costs
 * what it frees and nothing when nothing is due. At most max_entries are kept: a
 * put into a full cache drops the oldest entry first. A value leaves through the
 * free function given to worker_cache_new() when it expires, is replaced,
 * dropped or the cache is freed; that function should wipe what the value holds
 * (it is a person's data).
 *
 * Time is passed in by the caller (monotonic milliseconds), so that tests can run
 * a clock of their own. Not thread-safe: a cache belongs to one thread.
 */
#ifndef BCRM_WORKER_CACHE_H
#define BCRM_WORKER_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct worker_cache;
typedef void (*worker_cache_free_fn)(void *value);

/* NULL when out of memory. max_entries 0 means 1. */
struct worker_cache *worker_cache_new(size_t max_entries, int64_t ttl_ms,
                                      worker_cache_free_fn free_value);
/* Frees every value and the cache; NULL is fine. */
void worker_cache_free(struct worker_cache *cache);
/* The value of (a, b), borrowed until the next put, sweep or free of the cache;
 * NULL when there is none or it has expired (an expired entry found is freed). */
void *worker_cache_get(struct worker_cache *cache, const char *a, const char *b, int64_t now_ms);
/* Stores value under (a, b) for ttl_ms from now_ms, replacing any older value.
 * Takes ownership of value: on failure (-1, out of memory) it is freed at once.
 * Returns 0 or -1. */
int worker_cache_put(struct worker_cache *cache, const char *a, const char *b, void *value,
                     int64_t now_ms);
/* Frees every entry that has expired by now_ms; returns how many it freed. */
size_t worker_cache_sweep(struct worker_cache *cache, int64_t now_ms);
/* Entries held, expired ones not yet swept included. */
size_t worker_cache_count(const struct worker_cache *cache);
int64_t worker_cache_ttl(const struct worker_cache *cache);

#endif
