/* worker_profile.h: the few profile fields a template may use, and a short-lived
 * in-memory cache of them.
 *
 * Profiles are read live from the platform and never stored (design.md): the
 * cache lives in process memory only, for BCRM_SENDER_PROFILE_TTL, is swept
 * and wiped when that has passed, and is never logged. A cache is used by one
 * thread (the send loop) and takes no lock.
 */
#ifndef BCRM_WORKER_PROFILE_H
#define BCRM_WORKER_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct worker_profile {
    char *first_name; /* owned; NULL when unknown */
    char *name;
    char *real_name;
};

/* Wipes and frees the fields and zeroes the struct. */
void worker_profile_clear(struct worker_profile *p);
/* Deep copy into dst (cleared first). 0 or -1. */
int worker_profile_copy(struct worker_profile *dst, const struct worker_profile *src);
/* A template_lookup_fn over a struct worker_profile: first_name, name, real_name.
 * first_name falls back to the first word of real_name, because many Slack
 * profiles leave first_name empty. */
const char *worker_profile_lookup(void *profile, const char *field, size_t len);

struct profile_cache;

/* At most max_entries profiles (a put into a full cache drops the oldest), each
 * kept ttl_ms from when it was put. NULL when out of memory. */
struct profile_cache *profile_cache_new(size_t max_entries, int64_t ttl_ms);
/* Wipes and frees every profile; NULL is fine. */
void profile_cache_free(struct profile_cache *cache);
/* Copies the entry of (bot_id, user_id) into *out and returns 0, or returns -1 when
 * there is none or it expired. Free *out with worker_profile_clear(). */
int profile_cache_get(struct profile_cache *cache, const char *bot_id, const char *user_id,
                      int64_t now_ms, struct worker_profile *out);
/* Whether a live entry of (bot_id, user_id) is held, without copying it. */
bool profile_cache_has(struct profile_cache *cache, const char *bot_id, const char *user_id,
                       int64_t now_ms);
/* Stores a copy of p (nothing when out of memory). */
void profile_cache_put(struct profile_cache *cache, const char *bot_id, const char *user_id,
                       const struct worker_profile *p, int64_t now_ms);
/* Wipes and frees the profiles that expired by now_ms; returns how many. The
 * cache's owner calls it periodically (a module's tick), so that nothing stays
 * past its time for want of a lookup. */
size_t profile_cache_sweep(struct profile_cache *cache, int64_t now_ms);
/* Profiles held, expired ones not yet swept included. */
size_t profile_cache_count(const struct profile_cache *cache);
int64_t profile_cache_ttl(const struct profile_cache *cache);

#endif
