/* profile.c: profile fields for templates, and their short-lived cache.
 *
 * The cache is a worker_cache (worker_cache.h) of heap copies: a profile expires
 * BCRM_SENDER_PROFILE_TTL after it was read, and its owner sweeps the cache
 * periodically so that an expired profile is wiped whether or not anyone asks
 * for it again. */
#include "bcrm/worker_profile.h"

#include "bcrm/clock.h"
#include "bcrm/worker.h"
#include "bcrm/worker_cache.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Names are a person's data: wiped before the heap may hand the block out again. */
static void wipe_free(char *s)
{
    if (s != NULL) {
        sodium_memzero(s, strlen(s));
        free(s);
    }
}

void worker_profile_clear(struct worker_profile *p)
{
    wipe_free(p->first_name);
    wipe_free(p->name);
    wipe_free(p->real_name);
    memset(p, 0, sizeof(*p));
}

static int copy_field(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL) {
        return 0;
    }
    *dst = strdup(src);
    return *dst != NULL ? 0 : -1;
}

int worker_profile_copy(struct worker_profile *dst, const struct worker_profile *src)
{
    worker_profile_clear(dst);
    if (copy_field(&dst->first_name, src->first_name) != 0 ||
        copy_field(&dst->name, src->name) != 0 ||
        copy_field(&dst->real_name, src->real_name) != 0) {
        worker_profile_clear(dst);
        return -1;
    }
    return 0;
}

static bool field_is(const char *field, size_t len, const char *name)
{
    return strlen(name) == len && memcmp(field, name, len) == 0;
}

const char *worker_profile_lookup(void *profile, const char *field, size_t len)
{
    struct worker_profile *p = profile;
    if (field_is(field, len, "first_name")) {
        if (p->first_name != NULL && p->first_name[0] != '\0') {
            return p->first_name;
        }
        /* The first word of the real name, kept in first_name for the next
         * placeholder: Slack profiles often leave first_name empty. */
        if (p->real_name != NULL && p->real_name[0] != '\0') {
            size_t n = strcspn(p->real_name, " ");
            char *word = strndup(p->real_name, n);
            if (word != NULL) {
                wipe_free(p->first_name);
                p->first_name = word;
            }
            return word;
        }
        return NULL;
    }
    if (field_is(field, len, "name")) {
        return p->name;
    }
    if (field_is(field, len, "real_name")) {
        return p->real_name;
    }
    return NULL;
}

/* A cached profile is a copy on the heap, wiped when it leaves the cache. */
static void profile_free(void *value)
{
    struct worker_profile *p = value;
    if (p != NULL) {
        worker_profile_clear(p);
        free(p);
    }
}

struct profile_cache {
    struct worker_cache *entries;
};

struct profile_cache *profile_cache_new(size_t max_entries, int64_t ttl_ms)
{
    struct profile_cache *c = calloc(1, sizeof(*c));
    if (c != NULL && (c->entries = worker_cache_new(max_entries, ttl_ms, profile_free)) == NULL) {
        free(c);
        c = NULL;
    }
    return c;
}

void profile_cache_free(struct profile_cache *cache)
{
    if (cache != NULL) {
        worker_cache_free(cache->entries);
        free(cache);
    }
}

int profile_cache_get(struct profile_cache *cache, const char *bot_id, const char *user_id,
                      int64_t now_ms, struct worker_profile *out)
{
    const struct worker_profile *p = worker_cache_get(cache->entries, bot_id, user_id, now_ms);
    return p != NULL ? worker_profile_copy(out, p) : -1;
}

bool profile_cache_has(struct profile_cache *cache, const char *bot_id, const char *user_id,
                       int64_t now_ms)
{
    return worker_cache_get(cache->entries, bot_id, user_id, now_ms) != NULL;
}

void profile_cache_put(struct profile_cache *cache, const char *bot_id, const char *user_id,
                       const struct worker_profile *p, int64_t now_ms)
{
    struct worker_profile *copy = calloc(1, sizeof(*copy));
    if (copy == NULL || worker_profile_copy(copy, p) != 0) {
        free(copy);
        return;
    }
    worker_cache_put(cache->entries, bot_id, user_id, copy, now_ms);
}

size_t profile_cache_sweep(struct profile_cache *cache, int64_t now_ms)
{
    return worker_cache_sweep(cache->entries, now_ms);
}

size_t profile_cache_count(const struct profile_cache *cache)
{
    return worker_cache_count(cache->entries);
}

int64_t profile_cache_ttl(const struct profile_cache *cache)
{
    return worker_cache_ttl(cache->entries);
}

enum worker_next worker_profile_read_done(struct worker_send *send, struct profile_cache *cache,
                                          bool read, const struct worker_outcome *would,
                                          struct worker_outcome *out)
{
    send->have_profile = true;
    if (read) {
        profile_cache_put(cache, send->job->bot_id, send->job->recipient_id, &send->profile,
                          clock_mono_ms());
        return WORKER_REQUEST;
    }
    if (!would->bot_token_invalid && !would->rate_limited &&
        would->outcome != BCRM__V1__OUTCOME__OUTCOME_RETRY &&
        would->outcome != BCRM__V1__OUTCOME__OUTCOME_UNKNOWN) {
        return WORKER_REQUEST;
    }
    *out = *would;
    if (out->outcome == BCRM__V1__OUTCOME__OUTCOME_UNKNOWN) {
        out->outcome = BCRM__V1__OUTCOME__OUTCOME_RETRY; /* a read sent nothing */
    }
    return WORKER_FINAL;
}
