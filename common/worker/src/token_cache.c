/* token_cache.c: bot tokens released by the vault, kept briefly in locked memory.
 *
 * Every send needs its bot's token, and asking the vault for each one would make
 * the vault the bottleneck and its audit log a copy of the send log. So a released
 * token is kept for at most ttl_ms, in sodium_malloc'd memory (guard pages, never
 * swapped), and wiped when it expires, whether or not anything is sending. The
 * answers "no token" and "vault unreachable" are kept too, briefly, so a batch of
 * jobs for a bot without a token asks the vault once, not once per job.
 *
 * The send loop never waits for the vault: on a miss, token_cache_try() leaves a
 * pending entry that one of the fetch threads picks up, and the notify callback
 * tells the loop when an answer is in. A slow vault then delays the sends of the
 * bots whose tokens are not cached, and no others. The query threads, which answer
 * one query at a time anyway, ask the vault themselves (token_cache_get()).
 *
 * Copies handed out go into the caller's struct token_copy, which the caller wipes
 * (token_copy_wipe()): a stack buffer costs no allocation per send and leaves no
 * copy in the heap.
 *
 * A token is on probation until the platform has accepted it once: the send loop
 * gets it for one request at a time (the probe), and the bot's other sends wait
 * for that answer. When the platform refuses a token (revoked, invalid, the
 * account gone), the entry becomes a refused one for invalid_ttl_ms: it holds no
 * token, only its fingerprint and the platform's code, and every send of the bot
 * in that time is answered at once, without the vault or the platform. So a
 * revoked token costs one refused request per replica, not one per recipient,
 * and the scheduler, told by those answers, pauses the bot. The refused entry
 * ends with its time (the next send asks the vault again and probes with one
 * request), or sooner when a query tries the token and the platform accepts it,
 * or when the vault has the bot's token stored again since (a reconnect).
 *
 * That last one is what lets a reconnected bot's campaign, resumed at once, go
 * out from every replica: the reconnect's own VerifyBot reaches one replica at
 * most (and checks the new token under its staging id, not the bot's), so each
 * replica finds out for itself. The hold answers a send only from what the
 * vault said after the refusal and after the send's job came in: a job received
 * since the vault was last asked about the bot waits (as for any fetch) while a
 * fetch thread asks again. So a campaign resumed right after a reconnect is never
 * refused by what the vault said before it, however soon it comes; and the
 * refused send itself, started over (send_loop.c), goes out with a copy stored
 * while it was in flight (a token rotated while sending). The vault names each
 * stored copy of a token (token_ref), and a copy other than the refused one ends
 * the hold: that token goes on probation like any fresh one. The same copy, or no
 * answer, keeps the hold, so a revoked token still costs one refused request
 * per replica, and the platform is never asked by a recheck. Only jobs that
 * reach a held bot cause rechecks, one for all the jobs that came in before it
 * started: after the first refusal the scheduler pauses the bot's campaigns, so
 * these are the few batches in flight then, and the first ones after a resume.
 */
#include "worker_internal.h"

#include "bcrm/clock.h"
#include "bcrm/log.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long a failure to reach the vault is remembered before asking again. */
#define TOKEN_UNAVAILABLE_MS 1000

enum fetch_state {
    FETCH_NONE,    /* an answer (status is final until it expires) */
    FETCH_WAITING, /* pending: no fetch thread has taken it yet */
    FETCH_RUNNING, /* pending: a fetch thread is asking the vault */
};

struct token_entry {
    char *org_id;
    char *bot_id;
    enum token_status status; /* TOKEN_PENDING while fetch != FETCH_NONE */
    enum fetch_state fetch;
    struct secret token;        /* data is NULL unless status is TOKEN_OK */
    uint8_t fp[TOKEN_FP_BYTES]; /* TOKEN_OK and TOKEN_INVALID: which token */
    /* TOKEN_OK and TOKEN_INVALID: which stored copy of it the vault released
     * (zeros when unknown): a reconnect stores a new copy even of the same token. */
    uint8_t ref[VAULT_TOKEN_REF_BYTES];
    /* When the vault was last asked about the bot for this entry (the start of
     * the call; INT64_MIN for a refusal not checked yet): a held bot's sends
     * whose jobs came in later ask again. */
    int64_t asked_mono_ms;
    /* TOKEN_INVALID: while the vault is asked again (expires_mono_ms being
     * INT64_MAX then), when the hold ends. */
    int64_t hold_expires_mono_ms;
    bool proven;   /* TOKEN_OK: the platform accepted it */
    bool probing;  /* TOKEN_OK, unproven: a send holds the probe */
    char code[64]; /* TOKEN_INVALID: the platform's error code */
    int64_t expires_mono_ms;
    struct token_entry *next;
};

struct token_cache {
    pthread_mutex_t lock;
    pthread_cond_t work;        /* a pending entry is waiting, or stop */
    struct vault_client *vault; /* borrowed */
    Bcrm__V1__Platform platform;
    int64_t ttl_ms;
    int64_t invalid_ttl_ms;
    uint8_t fp_key[crypto_generichash_KEYBYTES];
    struct token_entry *head;
    bool stop;
    atomic_uint_fast64_t generation;
    void (*notify)(void *arg);
    void *notify_arg;
    int nthreads;
    pthread_t *threads;
};

void token_copy_wipe(struct token_copy *t)
{
    sodium_memzero(t->data, t->len + 1 < sizeof(t->data) ? t->len + 1 : sizeof(t->data));
    t->len = 0;
}

static void fingerprint(const struct token_cache *c, const uint8_t *token, size_t len,
                        uint8_t fp[TOKEN_FP_BYTES])
{
    crypto_generichash(fp, TOKEN_FP_BYTES, token, len, c->fp_key, sizeof(c->fp_key));
}

static bool same_fp(const uint8_t a[TOKEN_FP_BYTES], const uint8_t b[TOKEN_FP_BYTES])
{
    return sodium_memcmp(a, b, TOKEN_FP_BYTES) == 0;
}

static bool same_ref(const uint8_t a[VAULT_TOKEN_REF_BYTES], const uint8_t b[VAULT_TOKEN_REF_BYTES])
{
    return memcmp(a, b, VAULT_TOKEN_REF_BYTES) == 0;
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

static void *fetch_main(void *arg);

struct token_cache *token_cache_new(struct vault_client *vault, Bcrm__V1__Platform platform,
                                    int64_t ttl_ms, int64_t invalid_ttl_ms, int fetch_threads)
{
    struct token_cache *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->work, NULL);
    c->vault = vault;
    c->platform = platform;
    c->ttl_ms = ttl_ms;
    c->invalid_ttl_ms = invalid_ttl_ms;
    randombytes_buf(c->fp_key, sizeof(c->fp_key));
    atomic_init(&c->generation, 0);
    c->threads = calloc((size_t)(fetch_threads > 0 ? fetch_threads : 1), sizeof(*c->threads));
    if (c->threads == NULL) {
        token_cache_free(c);
        return NULL;
    }
    for (int i = 0; i < fetch_threads; i++) {
        if (pthread_create(&c->threads[i], NULL, fetch_main, c) != 0) {
            token_cache_free(c);
            return NULL;
        }
        c->nthreads++;
    }
    return c;
}

void token_cache_free(struct token_cache *cache)
{
    if (cache == NULL) {
        return;
    }
    pthread_mutex_lock(&cache->lock);
    cache->stop = true;
    cache->notify = NULL;
    pthread_cond_broadcast(&cache->work);
    pthread_mutex_unlock(&cache->lock);
    for (int i = 0; i < cache->nthreads; i++) {
        pthread_join(cache->threads[i], NULL);
    }
    free(cache->threads);
    sodium_memzero(cache->fp_key, sizeof(cache->fp_key));
    struct token_entry *e = cache->head;
    while (e != NULL) {
        struct token_entry *next = e->next;
        entry_free(e);
        e = next;
    }
    pthread_cond_destroy(&cache->work);
    pthread_mutex_destroy(&cache->lock);
    free(cache);
}

void token_cache_set_notify(struct token_cache *cache, void (*notify)(void *arg), void *arg)
{
    pthread_mutex_lock(&cache->lock);
    cache->notify = notify;
    cache->notify_arg = arg;
    pthread_mutex_unlock(&cache->lock);
}

uint64_t token_cache_generation(struct token_cache *cache)
{
    return atomic_load(&cache->generation);
}

/* Copies the entry's answer into out (the token for TOKEN_OK, the code for
 * TOKEN_INVALID) and returns its status. */
static enum token_status answer_locked(const struct token_entry *e, struct token_copy *out)
{
    out->probe = false;
    if (e->status == TOKEN_INVALID) {
        out->len = strlen(e->code);
        memcpy(out->data, e->code, out->len + 1);
        memcpy(out->fp, e->fp, TOKEN_FP_BYTES);
        return TOKEN_INVALID;
    }
    if (e->status != TOKEN_OK) {
        return e->status;
    }
    if (e->token.len >= sizeof(out->data)) {
        return TOKEN_UNAVAILABLE; /* the vault stores at most 4096 bytes */
    }
    memcpy(out->data, e->token.data, e->token.len);
    out->data[e->token.len] = '\0';
    out->len = e->token.len;
    memcpy(out->fp, e->fp, TOKEN_FP_BYTES);
    return TOKEN_OK;
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

/* Frees every entry of bot_id but one a fetch thread is filling in (it stays in
 * the list so that nobody asks the vault for that bot a second time). */
static void remove_locked(struct token_cache *c, const char *bot_id)
{
    struct token_entry **link = &c->head;
    while (*link != NULL) {
        struct token_entry *e = *link;
        if (strcmp(e->bot_id, bot_id) == 0 && e->fetch != FETCH_RUNNING) {
            *link = e->next;
            entry_free(e);
        } else {
            link = &e->next;
        }
    }
}

static void unlink_locked(struct token_cache *c, struct token_entry *target)
{
    for (struct token_entry **link = &c->head; *link != NULL; link = &(*link)->next) {
        if (*link == target) {
            *link = target->next;
            return;
        }
    }
}

static struct token_entry *entry_new(const char *org_id, const char *bot_id)
{
    struct token_entry *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return NULL;
    }
    e->org_id = strdup(org_id);
    e->bot_id = strdup(bot_id);
    if (e->org_id == NULL || e->bot_id == NULL) {
        entry_free(e);
        return NULL;
    }
    return e;
}

/* Asks the vault (no lock held) about e's bot and fills ans (status, token and
 * expiry) with the answer; e itself is only read. */
static void entry_fetch(struct token_cache *c, const struct token_entry *e, struct token_entry *ans)
{
    struct secret released = {0};
    char err[256] = "";
    ans->asked_mono_ms = clock_mono_ms();
    int code = vault_release_token_ref(c->vault, e->org_id, e->bot_id, c->platform, &released,
                                       ans->ref, err, sizeof(err));
    int64_t now = clock_mono_ms();
    if (code == BCRM__V1__VAULT_CODE__VAULT_OK) {
        ans->status = TOKEN_OK;
        ans->token = released;
        fingerprint(c, released.data, released.len, ans->fp);
        ans->expires_mono_ms = now + c->ttl_ms;
    } else if (code == BCRM__V1__VAULT_CODE__VAULT_NOT_FOUND) {
        ans->status = TOKEN_MISSING;
        ans->expires_mono_ms = now + TOKEN_UNAVAILABLE_MS;
        log_info("bot has no token in the vault", "{s:s, s:s}", "org_id", e->org_id, "bot_id",
                 e->bot_id);
    } else {
        ans->status = TOKEN_UNAVAILABLE;
        ans->expires_mono_ms = now + TOKEN_UNAVAILABLE_MS;
        log_warn("token release failed", "{s:s, s:s, s:i, s:s}", "org_id", e->org_id, "bot_id",
                 e->bot_id, "code", code, "error", err);
    }
}

static void answer_apply(struct token_entry *e, const struct token_entry *ans)
{
    e->fetch = FETCH_NONE;
    e->status = ans->status;
    e->token = ans->token;
    memcpy(e->fp, ans->fp, TOKEN_FP_BYTES);
    memcpy(e->ref, ans->ref, VAULT_TOKEN_REF_BYTES);
    e->proven = false;
    e->probing = false;
    e->asked_mono_ms = ans->asked_mono_ms;
    e->expires_mono_ms = ans->expires_mono_ms;
}

/* The bot's answered entry (not one being fetched), or NULL. */
static struct token_entry *answered_locked(struct token_cache *c, const char *bot_id, int64_t now)
{
    for (struct token_entry *e = c->head; e != NULL; e = e->next) {
        if (e->fetch == FETCH_NONE && strcmp(e->bot_id, bot_id) == 0 && now < e->expires_mono_ms) {
            return e;
        }
    }
    return NULL;
}

static void changed_locked(struct token_cache *c)
{
    atomic_fetch_add(&c->generation, 1);
    if (c->notify != NULL) {
        c->notify(c->notify_arg);
    }
}

/* Puts a fetched entry into the list in place of any other entry of its bot. */
static void insert_locked(struct token_cache *c, struct token_entry *e)
{
    remove_locked(c, e->bot_id);
    e->next = c->head;
    c->head = e;
    atomic_fetch_add(&c->generation, 1);
}

/* Replaces the bot's entries by a refused one (no token: only which one it was,
 * and which stored copy, ref, or NULL when not known). */
static void refuse_locked(struct token_cache *c, const char *org_id, const char *bot_id,
                          const uint8_t *fp, const uint8_t *ref, const char *code)
{
    struct token_entry *e = entry_new(org_id, bot_id);
    if (e == NULL) {
        remove_locked(c, bot_id); /* at least the refused token goes */
        return;
    }
    e->status = TOKEN_INVALID;
    e->fetch = FETCH_NONE;
    memcpy(e->fp, fp, TOKEN_FP_BYTES);
    if (ref != NULL) {
        memcpy(e->ref, ref, VAULT_TOKEN_REF_BYTES);
    }
    snprintf(e->code, sizeof(e->code), "%s",
             code != NULL && code[0] != '\0' ? code : "token_invalid");
    int64_t now = clock_mono_ms();
    e->expires_mono_ms = now + c->invalid_ttl_ms;
    /* The vault has not been asked since the refusal: the first send to meet the
     * hold asks it (the refused send itself, started over: send_loop.c). */
    e->asked_mono_ms = INT64_MIN;
    log_warn("bot token refused by the platform: its sends are held", "{s:s, s:s, s:I}", "bot_id",
             bot_id, "error", e->code, "hold_ms", (json_int_t)c->invalid_ttl_ms);
    insert_locked(c, e);
}

enum token_status token_cache_get(struct token_cache *cache, const char *org_id, const char *bot_id,
                                  bool fresh, struct token_copy *out)
{
    out->len = 0;
    out->probe = false;
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&cache->lock);
    struct token_entry *hit = find_locked(cache, bot_id, now);
    if (!fresh && hit != NULL && hit->fetch == FETCH_NONE && hit->status != TOKEN_INVALID &&
        strcmp(hit->org_id, org_id) == 0) {
        enum token_status status = answer_locked(hit, out);
        pthread_mutex_unlock(&cache->lock);
        return status;
    }
    pthread_mutex_unlock(&cache->lock);

    /* Ask the vault on this thread, without the lock: the other threads' bots
     * should not wait for this one. A fetch thread may be asking for the same bot
     * at the same time; the later answer replaces the earlier. */
    struct token_entry *e = entry_new(org_id, bot_id);
    if (e == NULL) {
        return TOKEN_UNAVAILABLE;
    }
    struct token_entry ans = {0};
    entry_fetch(cache, e, &ans);
    answer_apply(e, &ans);
    pthread_mutex_lock(&cache->lock);
    enum token_status status = answer_locked(e, out);
    struct token_entry *refused = answered_locked(cache, bot_id, clock_mono_ms());
    if (status == TOKEN_OK && refused != NULL && refused->status == TOKEN_INVALID &&
        same_fp(refused->fp, e->fp) && same_ref(refused->ref, e->ref)) {
        /* The vault still holds the copy the platform refused: the query may try
         * it (its verdict can end the refusal), the sends stay held. */
        entry_free(e);
    } else {
        insert_locked(cache, e);
    }
    pthread_mutex_unlock(&cache->lock);
    return status;
}

enum token_status token_cache_try(struct token_cache *cache, const char *org_id, const char *bot_id,
                                  int64_t job_in_mono_ms, struct token_copy *out)
{
    out->len = 0;
    out->probe = false;
    int64_t now = clock_mono_ms();
    enum token_status status = TOKEN_PENDING;
    pthread_mutex_lock(&cache->lock);
    struct token_entry *hit = find_locked(cache, bot_id, now);
    if (hit != NULL && strcmp(hit->org_id, org_id) != 0) {
        hit = NULL; /* another org names this bot: ask the vault, which refuses */
        remove_locked(cache, bot_id);
    }
    if (hit != NULL && hit->fetch == FETCH_NONE) {
        if (hit->status == TOKEN_OK && !hit->proven) {
            if (hit->probing) {
                pthread_mutex_unlock(&cache->lock);
                return TOKEN_PENDING; /* the probe's verdict will wake us */
            }
            hit->probing = true;
            status = answer_locked(hit, out);
            out->probe = true;
        } else if (hit->status == TOKEN_INVALID && job_in_mono_ms >= hit->asked_mono_ms) {
            /* Has the bot's token been stored again since the vault was last
             * asked, before this job came in? A fetch thread asks the vault; this
             * send waits for the answer like any. The sweep leaves an entry being
             * fetched alone, so its hold's end is kept aside meanwhile. */
            hit->hold_expires_mono_ms = hit->expires_mono_ms;
            hit->expires_mono_ms = INT64_MAX;
            hit->fetch = FETCH_WAITING;
            pthread_cond_signal(&cache->work);
        } else {
            status = answer_locked(hit, out);
        }
    } else if (hit == NULL) {
        struct token_entry *e = entry_new(org_id, bot_id);
        if (e == NULL) {
            status = TOKEN_UNAVAILABLE;
        } else {
            e->status = TOKEN_PENDING;
            e->fetch = FETCH_WAITING;
            e->expires_mono_ms = INT64_MAX;
            e->next = cache->head;
            cache->head = e;
            pthread_cond_signal(&cache->work);
        }
    }
    pthread_mutex_unlock(&cache->lock);
    return status;
}

static void *fetch_main(void *arg)
{
    struct token_cache *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        struct token_entry *e = c->head;
        while (e != NULL && e->fetch != FETCH_WAITING) {
            e = e->next;
        }
        if (e == NULL) {
            pthread_cond_wait(&c->work, &c->lock);
            continue;
        }
        /* A running entry stays in the list, where verdicts and sweep leave it
         * alone, and only this thread writes it until it is done. */
        e->fetch = FETCH_RUNNING;
        pthread_mutex_unlock(&c->lock);
        struct token_entry ans = {0};
        entry_fetch(c, e, &ans);
        pthread_mutex_lock(&c->lock);
        if (e->status == TOKEN_INVALID) {
            if (ans.status != TOKEN_OK || same_ref(ans.ref, e->ref)) {
                /* The refused copy is still the bot's (or the vault said nothing
                 * useful): the hold goes on. Another entry of the bot made
                 * meanwhile is newer and stays in front of this one. */
                if (ans.token.data != NULL) {
                    secret_free(&ans.token);
                }
                e->fetch = FETCH_NONE;
                e->expires_mono_ms = e->hold_expires_mono_ms;
                e->asked_mono_ms = ans.asked_mono_ms;
                changed_locked(c);
                continue;
            }
            log_info("bot token stored again since the platform refused it: the hold ends", "{s:s}",
                     "bot_id", e->bot_id);
        }
        answer_apply(e, &ans);
        unlink_locked(c, e);
        insert_locked(c, e);
        changed_locked(c);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

void token_cache_verdict(struct token_cache *cache, const char *org_id, const char *bot_id,
                         const uint8_t fp[TOKEN_FP_BYTES], enum token_verdict verdict, bool probe,
                         const char *code)
{
    pthread_mutex_lock(&cache->lock);
    struct token_entry *cur = answered_locked(cache, bot_id, clock_mono_ms());
    bool same = cur != NULL && same_fp(cur->fp, fp);
    bool changed = false;
    switch (verdict) {
    case TOKEN_REFUSED:
        /* A newer token released meanwhile is not judged by an answer to the old
         * one; the same token refused again changes nothing. */
        if (cur == NULL || (cur->status == TOKEN_OK && same) ||
            (cur->status == TOKEN_INVALID && !same) ||
            (cur->status != TOKEN_OK && cur->status != TOKEN_INVALID)) {
            refuse_locked(cache, org_id, bot_id, fp,
                          cur != NULL && same && cur->status == TOKEN_OK ? cur->ref : NULL, code);
            changed = true;
        }
        break;
    case TOKEN_WORKS:
        if (same && cur->status == TOKEN_OK && (!cur->proven || cur->probing)) {
            cur->proven = true;
            cur->probing = false;
            changed = true;
        } else if (same && cur->status == TOKEN_INVALID) {
            /* The platform takes the refused token again (a query after the bot
             * was reconnected): the sends may go, with a fresh release. */
            remove_locked(cache, bot_id);
            changed = true;
        }
        break;
    case TOKEN_NO_VERDICT:
        if (probe && same && cur->status == TOKEN_OK && cur->probing) {
            cur->probing = false; /* the next send probes */
            changed = true;
        }
        break;
    }
    if (changed) {
        changed_locked(cache);
    }
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
