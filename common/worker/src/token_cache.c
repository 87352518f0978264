/* token_cache.c: bot tokens released by the vault, kept briefly in locked memory.
 *
 * Every send needs its bot's token, and asking the vault for each one would make
 * the vault the bottleneck and its audit log a copy of the send log. So a released
 * token is kept for at most ttl_ms, in sodium_malloc'd memory (guard pages, never
 * swapped), and wiped when it expires, whether or not anything is sending. The
 * answers "no token" and "vault unreachable" are kept too, briefly, so a batch of
 * jobs for a bot without a token asks the vault once, not once per job.
 */
#include "worker_internal.h"

#include "bcrm/clock.h"
#include "bcrm/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* How long a failure to reach the vault is remembered before asking again. */
#define TOKEN_UNAVAILABLE_MS 1000

struct token_entry {
    char *org_id;
    char *bot_id;
    enum token_status status;
    struct secret token; /* data is NULL unless status is TOKEN_OK */
    int64_t expires_mono_ms;
    struct token_entry *next;
};

struct token_cache {
    pthread_mutex_t lock;
    struct vault_client *vault; /* borrowed */
    Bcrm__V1__Platform platform;
    int64_t ttl_ms;
    struct token_entry *head;
};

struct token_cache *token_cache_new(struct vault_client *vault, Bcrm__V1__Platform platform,
                                    int64_t ttl_ms)
{
    struct token_cache *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->vault = vault;
    c->platform = platform;
    c->ttl_ms = ttl_ms;
    return c;
}

static void entry_free(struct token_entry *e)
{
    if (e->token.data != NULL) {
        secret_free(&e->token);
    }
    free(e->org_id);
    free(e->bot_id);
    free(e);
}

void token_cache_free(struct token_cache *cache)
{
    if (cache == NULL) {
        return;
    }
    struct token_entry *e = cache->head;
    while (e != NULL) {
        struct token_entry *next = e->next;
        entry_free(e);
        e = next;
    }
    pthread_mutex_destroy(&cache->lock);
    free(cache);
}

/* A copy of src in fresh sodium_malloc'd memory. 0 or -1. */
static int secret_copy(struct secret *dst, const struct secret *src)
{
    dst->data = sodium_malloc(src->len + 1);
    if (dst->data == NULL) {
        dst->len = 0;
        return -1;
    }
    memcpy(dst->data, src->data, src->len);
    dst->data[src->len] = '\0';
    dst->len = src->len;
    return 0;
}

static struct token_entry *find_locked(struct token_cache *c, const char *bot_id, int64_t now)
{
    for (struct token_entry *e = c->head; e != NULL; e = e->next) {
        if (strcmp(e->bot_id, bot_id) == 0 && now < e->expires_mono_ms) {
            return e;
        }
    }
    return NULL;
}

static void remove_locked(struct token_cache *c, const char *bot_id)
{
    struct token_entry **link = &c->head;
    while (*link != NULL) {
        struct token_entry *e = *link;
        if (strcmp(e->bot_id, bot_id) == 0) {
            *link = e->next;
            entry_free(e);
        } else {
            link = &e->next;
        }
    }
}

enum token_status token_cache_get(struct token_cache *cache, const char *org_id, const char *bot_id,
                                  struct secret *out)
{
    out->data = NULL;
    out->len = 0;
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&cache->lock);
    struct token_entry *hit = find_locked(cache, bot_id, now);
    if (hit != NULL && strcmp(hit->org_id, org_id) == 0) {
        enum token_status status = hit->status;
        if (status == TOKEN_OK && secret_copy(out, &hit->token) != 0) {
            status = TOKEN_UNAVAILABLE;
        }
        pthread_mutex_unlock(&cache->lock);
        return status;
    }
    pthread_mutex_unlock(&cache->lock);

    /* Ask the vault without holding the lock: it may take a while, and the other
     * threads' bots should not wait for this one. Two threads missing at once both
     * ask; the second answer replaces the first. */
    struct secret released = {0};
    char err[256] = "";
    int code = vault_release_token(cache->vault, org_id, bot_id, cache->platform, &released, err,
                                   sizeof(err));
    struct token_entry *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        if (code == BCRM__V1__VAULT_CODE__VAULT_OK) {
            secret_free(&released);
        }
        return TOKEN_UNAVAILABLE;
    }
    e->org_id = strdup(org_id);
    e->bot_id = strdup(bot_id);
    if (code == BCRM__V1__VAULT_CODE__VAULT_OK) {
        e->status = TOKEN_OK;
        e->token = released;
        e->expires_mono_ms = now + cache->ttl_ms;
    } else if (code == BCRM__V1__VAULT_CODE__VAULT_NOT_FOUND) {
        e->status = TOKEN_MISSING;
        e->expires_mono_ms = now + TOKEN_UNAVAILABLE_MS;
        log_info("bot has no token in the vault", "{s:s, s:s}", "org_id", org_id, "bot_id", bot_id);
    } else {
        e->status = TOKEN_UNAVAILABLE;
        e->expires_mono_ms = now + TOKEN_UNAVAILABLE_MS;
        log_warn("token release failed", "{s:s, s:s, s:i, s:s}", "org_id", org_id, "bot_id", bot_id,
                 "code", code, "error", err);
    }
    enum token_status status = e->status;
    if (e->org_id == NULL || e->bot_id == NULL ||
        (status == TOKEN_OK && secret_copy(out, &e->token) != 0)) {
        entry_free(e);
        return TOKEN_UNAVAILABLE;
    }
    pthread_mutex_lock(&cache->lock);
    remove_locked(cache, bot_id);
    e->next = cache->head;
    cache->head = e;
    pthread_mutex_unlock(&cache->lock);
    return status;
}

void token_cache_forget(struct token_cache *cache, const char *bot_id)
{
    pthread_mutex_lock(&cache->lock);
    remove_locked(cache, bot_id);
    pthread_mutex_unlock(&cache->lock);
}

size_t token_cache_sweep(struct token_cache *cache)
{
    int64_t now = clock_mono_ms();
    size_t left = 0;
    pthread_mutex_lock(&cache->lock);
    struct token_entry **link = &cache->head;
    while (*link != NULL) {
        struct token_entry *e = *link;
        if (now >= e->expires_mono_ms) {
            *link = e->next;
            entry_free(e);
        } else {
            link = &e->next;
            left++;
        }
    }
    pthread_mutex_unlock(&cache->lock);
    return left;
}
