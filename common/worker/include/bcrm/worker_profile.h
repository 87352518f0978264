/* worker_profile.h: the few profile fields a template may use, and a short-lived
 * in-memory cache of them.
 *
 * Profiles are read live from the platform and never stored (design.md): the
 * cache lives in process memory only, for a few minutes, and is never logged.
 * A cache is used by one thread (the send loop) and takes no lock.
 */
#ifndef BCRM_WORKER_PROFILE_H
#define BCRM_WORKER_PROFILE_H

#include <stddef.h>
#include <stdint.h>

struct worker_profile {
    char *first_name; /* owned; NULL when unknown */
    char *name;
    char *real_name;
};

/* Frees the fields and zeroes the struct. */
void worker_profile_clear(struct worker_profile *p);
/* Deep copy into dst (cleared first). 0 or -1. */
int worker_profile_copy(struct worker_profile *dst, const struct worker_profile *src);
/* A template_lookup_fn over a struct worker_profile: first_name, name, real_name.
 * first_name falls back to the first word of real_name, because many Slack
 * profiles leave first_name empty. */
const char *worker_profile_lookup(void *profile, const char *field, size_t len);

struct profile_cache;

/* capacity entries (direct-mapped: a newer entry replaces an older one of the same
 * slot), each kept ttl_ms. NULL when out of memory. */
struct profile_cache *profile_cache_new(size_t capacity, int64_t ttl_ms);
void profile_cache_free(struct profile_cache *cache);
/* Copies the entry of (bot_id, user_id) into *out and returns 0, or returns -1 when
 * there is none or it expired. Free *out with worker_profile_clear(). */
int profile_cache_get(struct profile_cache *cache, const char *bot_id, const char *user_id,
                      int64_t now_ms, struct worker_profile *out);
/* Stores a copy of p. */
void profile_cache_put(struct profile_cache *cache, const char *bot_id, const char *user_id,
                       const struct worker_profile *p, int64_t now_ms);

#endif
