/* profile.c: profile fields for templates, and their short-lived cache. */
#include "bcrm/worker_profile.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void worker_profile_clear(struct worker_profile *p)
{
    free(p->first_name);
    free(p->name);
    free(p->real_name);
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
                free(p->first_name);
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

struct profile_entry {
    char *key; /* "bot_id\x1fuser_id"; NULL for an empty slot */
    struct worker_profile profile;
    int64_t expires_ms;
};

struct profile_cache {
    struct profile_entry *slots;
    size_t capacity;
    int64_t ttl_ms;
};

struct profile_cache *profile_cache_new(size_t capacity, int64_t ttl_ms)
{
    struct profile_cache *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->slots = calloc(capacity > 0 ? capacity : 1, sizeof(*c->slots));
    if (c->slots == NULL) {
        free(c);
        return NULL;
    }
    c->capacity = capacity > 0 ? capacity : 1;
    c->ttl_ms = ttl_ms;
    return c;
}

static void entry_clear(struct profile_entry *e)
{
    free(e->key);
    worker_profile_clear(&e->profile);
    memset(e, 0, sizeof(*e));
}

void profile_cache_free(struct profile_cache *cache)
{
    if (cache == NULL) {
        return;
    }
    for (size_t i = 0; i < cache->capacity; i++) {
        entry_clear(&cache->slots[i]);
    }
    free(cache->slots);
    free(cache);
}

/* FNV-1a over the key: cheap and spreads ids that share a prefix. */
static size_t slot_of(const struct profile_cache *c, const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
        h = (h ^ *p) * 1099511628211ULL;
    }
    return (size_t)(h % c->capacity);
}

static char *make_key(const char *bot_id, const char *user_id)
{
    size_t n = strlen(bot_id) + strlen(user_id) + 2;
    char *key = malloc(n);
    if (key != NULL) {
        memcpy(key, bot_id, strlen(bot_id));
        key[strlen(bot_id)] = '\x1f';
        memcpy(key + strlen(bot_id) + 1, user_id, strlen(user_id) + 1);
    }
    return key;
}

int profile_cache_get(struct profile_cache *cache, const char *bot_id, const char *user_id,
                      int64_t now_ms, struct worker_profile *out)
{
    char *key = make_key(bot_id, user_id);
    int rv = -1;
    if (key == NULL) {
        return -1;
    }
    struct profile_entry *e = &cache->slots[slot_of(cache, key)];
    if (e->key != NULL && now_ms >= e->expires_ms) {
        entry_clear(e);
    }
    if (e->key != NULL && strcmp(e->key, key) == 0) {
        rv = worker_profile_copy(out, &e->profile);
    }
    free(key);
    return rv;
}

void profile_cache_put(struct profile_cache *cache, const char *bot_id, const char *user_id,
                       const struct worker_profile *p, int64_t now_ms)
{
    char *key = make_key(bot_id, user_id);
    if (key == NULL) {
        return;
    }
    struct profile_entry *e = &cache->slots[slot_of(cache, key)];
    entry_clear(e);
    if (worker_profile_copy(&e->profile, p) != 0) {
        free(key);
        return;
    }
    e->key = key;
    e->expires_ms = now_ms + cache->ttl_ms;
}
