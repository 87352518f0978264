/* pacing.c: token buckets, per-bot state and fair shares (see pacing.h). */
#include "pacing.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PACE_NEVER INT64_MAX
/* A bot no survey listed for this long, with nothing in flight, is forgotten. */
#define BOT_FORGET_MS (10 * 60 * 1000)

struct pace_throttle {
    char campaign_id[40];
    int per_minute;
    struct pace_bucket bucket;
    uint64_t generation; /* the last plan that listed the campaign */
};

struct pacer {
    struct pace_limit *limits;
    int platforms;
    struct pace_bot **bots;
    size_t nbots, capbots;
    struct pace_throttle *throttles;
    size_t nthrottles, capthrottles;
    uint64_t generation;
    size_t rotate_bots;
    bool in_flight_blocked; /* the last plan left due rows for want of in-flight room */
};

/* ---- buckets ---- */

void pace_bucket_init(struct pace_bucket *b, double per_ms, double capacity, int64_t now)
{
    b->per_ms = per_ms;
    b->capacity = capacity < 1 ? 1 : capacity;
    b->tokens = b->capacity; /* a new bucket starts full: a burst is allowed at once */
    b->last_ms = now;
}

static void refill(struct pace_bucket *b, int64_t now)
{
    if (now > b->last_ms) {
        b->tokens += (double)(now - b->last_ms) * b->per_ms;
        if (b->tokens > b->capacity) {
            b->tokens = b->capacity;
        }
        b->last_ms = now;
    }
}

void pace_bucket_configure(struct pace_bucket *b, double per_ms, double capacity, int64_t now)
{
    refill(b, now);
    b->per_ms = per_ms;
    b->capacity = capacity < 1 ? 1 : capacity;
    if (b->tokens > b->capacity) {
        b->tokens = b->capacity;
    }
}

int pace_bucket_available(struct pace_bucket *b, int64_t now)
{
    if (b->per_ms <= 0) {
        return INT32_MAX;
    }
    refill(b, now);
    return b->tokens < 0 ? 0 : (int)floor(b->tokens);
}

void pace_bucket_take(struct pace_bucket *b, int n, int64_t now)
{
    if (b->per_ms <= 0) {
        return;
    }
    refill(b, now);
    b->tokens -= n;
}

int64_t pace_bucket_ready_at(struct pace_bucket *b, int n, int64_t now)
{
    if (b->per_ms <= 0) {
        return now;
    }
    refill(b, now);
    double need = (n > b->capacity ? b->capacity : n) - b->tokens;
    if (need <= 0) {
        return now;
    }
    return now + (int64_t)ceil(need / b->per_ms);
}

void pace_bucket_empty(struct pace_bucket *b, int64_t now)
{
    refill(b, now);
    if (b->tokens > 0) {
        b->tokens = 0;
    }
}

/* ---- the pacer ---- */

struct pacer *pacer_new(const struct pace_limit *limits, int platforms)
{
    struct pacer *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->limits = calloc((size_t)platforms, sizeof(*limits));
    if (p->limits == NULL) {
        free(p);
        return NULL;
    }
    memcpy(p->limits, limits, (size_t)platforms * sizeof(*limits));
    p->platforms = platforms;
    return p;
}

void pacer_free(struct pacer *p)
{
    if (p == NULL) {
        return;
    }
    for (size_t i = 0; i < p->nbots; i++) {
        free(p->bots[i]);
    }
    free(p->bots);
    free(p->throttles);
    free(p->limits);
    free(p);
}

static const struct pace_limit *limit_of(const struct pacer *p, int platform)
{
    static const struct pace_limit none = {0, 1, INT32_MAX, 1, 0};
    return platform >= 0 && platform < p->platforms ? &p->limits[platform] : &none;
}

struct pace_bot *pacer_bot(struct pacer *p, const char *bot_id)
{
    for (size_t i = 0; i < p->nbots; i++) {
        if (strcmp(p->bots[i]->id, bot_id) == 0) {
            return p->bots[i];
        }
    }
    return NULL;
}

static struct pace_bot *bot_get(struct pacer *p, const char *bot_id, int platform, int64_t now)
{
    struct pace_bot *bot = pacer_bot(p, bot_id);
    if (bot != NULL) {
        return bot;
    }
    if (p->nbots == p->capbots) {
        size_t cap = p->capbots ? p->capbots * 2 : 16;
        struct pace_bot **grown = realloc(p->bots, cap * sizeof(*grown));
        if (grown == NULL) {
            return NULL;
        }
        p->bots = grown;
        p->capbots = cap;
    }
    bot = calloc(1, sizeof(*bot));
    if (bot == NULL) {
        return NULL;
    }
    snprintf(bot->id, sizeof(bot->id), "%s", bot_id);
    bot->platform = platform;
    const struct pace_limit *lim = limit_of(p, platform);
    pace_bucket_init(&bot->bucket, lim->per_ms, lim->burst, now);
    bot->seen = now;
    bot->window_start = now;
    p->bots[p->nbots++] = bot;
    return bot;
}

static struct pace_bucket *throttle_get(struct pacer *p, const char *campaign_id, int per_minute,
                                        int64_t now)
{
    for (size_t i = 0; i < p->nthrottles; i++) {
        struct pace_throttle *t = &p->throttles[i];
        if (strcmp(t->campaign_id, campaign_id) == 0) {
            if (t->per_minute != per_minute) {
                t->per_minute = per_minute;
                pace_bucket_configure(&t->bucket, per_minute / 60000.0, per_minute / 60.0, now);
            }
            t->generation = p->generation;
            return &t->bucket;
        }
    }
    if (p->nthrottles == p->capthrottles) {
        size_t cap = p->capthrottles ? p->capthrottles * 2 : 16;
        struct pace_throttle *grown = realloc(p->throttles, cap * sizeof(*grown));
        if (grown == NULL) {
            return NULL;
        }
        p->throttles = grown;
        p->capthrottles = cap;
    }
    struct pace_throttle *t = &p->throttles[p->nthrottles++];
    memset(t, 0, sizeof(*t));
    snprintf(t->campaign_id, sizeof(t->campaign_id), "%s", campaign_id);
    t->per_minute = per_minute;
    /* A throttle's burst is one second of its rate: "600 a minute" is 10 a second,
     * never 600 at once. */
    pace_bucket_init(&t->bucket, per_minute / 60000.0, per_minute / 60.0, now);
    t->generation = p->generation;
    return &t->bucket;
}

/* Forgets throttles of campaigns the last plan did not list, and idle bots. */
static void prune(struct pacer *p, int64_t now)
{
    size_t keep = 0;
    for (size_t i = 0; i < p->nthrottles; i++) {
        if (p->throttles[i].generation == p->generation) {
            p->throttles[keep++] = p->throttles[i];
        }
    }
    p->nthrottles = keep;
    keep = 0;
    for (size_t i = 0; i < p->nbots; i++) {
        struct pace_bot *b = p->bots[i];
        if (b->in_flight <= 0 && b->paused_until <= now && now - b->seen > BOT_FORGET_MS) {
            free(b);
        } else {
            p->bots[keep++] = b;
        }
    }
    p->nbots = keep;
}

void pace_share(const int *demand, int *out, size_t n, int capacity, size_t *rotate)
{
    size_t active = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = 0;
        if (demand[i] > 0) {
            active++;
        }
    }
    while (capacity > 0 && active > 0) {
        int share = capacity / (int)active;
        if (share == 0) {
            /* Fewer units than takers: one each, the start rotating between calls so
             * that nobody is always last. */
            size_t start = n > 0 ? *rotate % n : 0;
            for (size_t k = 0; k < n && capacity > 0; k++) {
                size_t i = (start + k) % n;
                if (out[i] < demand[i]) {
                    out[i]++;
                    capacity--;
                }
            }
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (out[i] < demand[i]) {
                int give = demand[i] - out[i] < share ? demand[i] - out[i] : share;
                out[i] += give;
                capacity -= give;
                if (out[i] == demand[i]) {
                    active--;
                }
            }
        }
    }
    (*rotate)++;
}

/* Closes the counting window when a second has passed; a window of idleness counts as
 * nothing done. */
static void measure(struct pace_bot *bot, int64_t now)
{
    int64_t elapsed = now - bot->window_start;
    if (elapsed >= 1000) {
        bot->done_per_s = elapsed < 2000 ? bot->window_done * 1000.0 / (double)elapsed : 0;
        bot->window_done = 0;
        bot->window_start = now;
    }
}

int pacer_in_flight_cap(struct pacer *p, struct pace_bot *bot, int64_t now)
{
    const struct pace_limit *lim = limit_of(p, bot->platform);
    if (lim->drain_ms <= 0) {
        return lim->max_in_flight;
    }
    measure(bot, now);
    /* The better of the last whole second and the one under way. */
    double partial =
        now > bot->window_start ? bot->window_done * 1000.0 / (double)(now - bot->window_start) : 0;
    double rate = bot->done_per_s > partial ? bot->done_per_s : partial;
    double cap = rate * (double)lim->drain_ms / 1000.0;
    if (cap < lim->min_in_flight) {
        cap = lim->min_in_flight;
    }
    return cap > lim->max_in_flight ? lim->max_in_flight : (int)cap;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int min_int(int a, int b)
{
    return a < b ? a : b;
}

int pacer_plan(struct pacer *p, struct pace_campaign *cs, size_t n, int room, int64_t now,
               int64_t *wake)
{
    p->generation++;
    p->in_flight_blocked = false;
    *wake = PACE_NEVER;
    int *demand = calloc(n + 1, sizeof(int));
    int *bot_demand = calloc(p->nbots + n + 1, sizeof(int));
    int *bot_share = calloc(p->nbots + n + 1, sizeof(int));
    int total = 0;
    if (demand == NULL || bot_demand == NULL || bot_share == NULL) {
        goto out;
    }

    /* Each campaign's own cap: what is due, within its throttle. */
    for (size_t i = 0; i < n; i++) {
        struct pace_campaign *c = &cs[i];
        c->want = 0;
        c->bot = bot_get(p, c->bot_id, c->platform, now);
        if (c->bot == NULL) {
            continue;
        }
        c->bot->seen = now;
        if (c->bot_paused_until > c->bot->paused_until) {
            c->bot->paused_until = c->bot_paused_until;
        }
        c->throttle =
            c->throttle_per_minute > 0 ? throttle_get(p, c->id, c->throttle_per_minute, now) : NULL;
        int cap = c->due;
        if (c->throttle != NULL) {
            cap = min_int(cap, pace_bucket_available(c->throttle, now));
        }
        demand[i] = cap;
    }
    /* Each bot's cap: its bucket and its in-flight bound, nothing while paused. */
    for (size_t b = 0; b < p->nbots; b++) {
        struct pace_bot *bot = p->bots[b];
        if (bot->paused_until > now) {
            bot->cap = 0;
        } else {
            int room_in_flight = pacer_in_flight_cap(p, bot, now) - bot->in_flight;
            bot->cap = min_int(pace_bucket_available(&bot->bucket, now),
                               room_in_flight > 0 ? room_in_flight : 0);
        }
        bot->demand = 0;
    }
    /* Within each bot: its cap shared between its campaigns. The campaigns of a bot are
     * gathered into scratch arrays in survey order. */
    int *sub_demand = calloc(n + 1, sizeof(int));
    int *sub_out = calloc(n + 1, sizeof(int));
    size_t *index = calloc(n + 1, sizeof(size_t));
    if (sub_demand == NULL || sub_out == NULL || index == NULL) {
        free(sub_demand);
        free(sub_out);
        free(index);
        goto out;
    }
    for (size_t b = 0; b < p->nbots; b++) {
        struct pace_bot *bot = p->bots[b];
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (cs[i].bot == bot) {
                index[k] = i;
                sub_demand[k++] = demand[i];
            }
        }
        if (k == 0) {
            continue;
        }
        size_t turn = bot->rotate;
        pace_share(sub_demand, sub_out, k, bot->cap, &turn);
        for (size_t j = 0; j < k; j++) {
            demand[index[j]] = sub_out[j];
            bot->demand += sub_out[j];
        }
        bot_demand[b] = bot->demand;
    }
    /* Across bots: the batch shared between them, then each bot's share between its
     * campaigns again. */
    pace_share(bot_demand, bot_share, p->nbots, room, &p->rotate_bots);
    for (size_t b = 0; b < p->nbots; b++) {
        struct pace_bot *bot = p->bots[b];
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (cs[i].bot == bot) {
                index[k] = i;
                sub_demand[k++] = demand[i];
            }
        }
        if (k == 0) {
            continue;
        }
        /* The same turn as above, then the next plan starts with the next campaign. */
        size_t turn = bot->rotate++;
        pace_share(sub_demand, sub_out, k, bot_share[b], &turn);
        for (size_t j = 0; j < k; j++) {
            cs[index[j]].want = sub_out[j];
            total += sub_out[j];
        }
    }
    free(sub_demand);
    free(sub_out);
    free(index);

    /* When could a plan give more? The next row to fall due, and, for rows due now
     * that this plan left, whatever holds them back. */
    for (size_t i = 0; i < n; i++) {
        struct pace_campaign *c = &cs[i];
        if (c->bot == NULL) {
            continue;
        }
        int64_t at = c->next_due;
        if (c->want < c->due) {
            int64_t held;
            if (c->bot->paused_until > now) {
                held = c->bot->paused_until;
            } else if (c->throttle != NULL && pace_bucket_available(c->throttle, now) <= c->want) {
                held = pace_bucket_ready_at(c->throttle, c->want + 1, now);
            } else if (pace_bucket_available(&c->bot->bucket, now) <= c->bot->demand) {
                held = pace_bucket_ready_at(&c->bot->bucket, c->bot->demand + 1, now);
            } else if (c->bot->in_flight + c->bot->demand >= pacer_in_flight_cap(p, c->bot, now)) {
                p->in_flight_blocked = true; /* a result frees room, and results wake the loop */
                held = PACE_NEVER;
            } else {
                held = now; /* the batch was full: claim again at once */
            }
            at = min64(at, held);
        }
        if (c->bot->paused_until > at) {
            at = c->bot->paused_until;
        }
        *wake = min64(*wake, at);
    }
    prune(p, now);
out:
    free(demand);
    free(bot_demand);
    free(bot_share);
    return total;
}

void pacer_claimed(struct pacer *p, const char *campaign_id, const char *bot_id, int platform,
                   int n, int64_t now)
{
    struct pace_bot *bot = bot_get(p, bot_id, platform, now);
    if (bot != NULL) {
        pace_bucket_take(&bot->bucket, n, now);
        bot->in_flight += n;
    }
    for (size_t i = 0; i < p->nthrottles; i++) {
        if (strcmp(p->throttles[i].campaign_id, campaign_id) == 0) {
            pace_bucket_take(&p->throttles[i].bucket, n, now);
            break;
        }
    }
}

void pacer_done(struct pacer *p, const char *bot_id, int n)
{
    struct pace_bot *bot = pacer_bot(p, bot_id);
    if (bot != NULL) {
        bot->in_flight -= n;
        if (bot->in_flight < 0) {
            bot->in_flight = 0;
        }
    }
}

void pacer_completed(struct pacer *p, const char *bot_id, int n, int64_t now)
{
    struct pace_bot *bot = pacer_bot(p, bot_id);
    if (bot != NULL) {
        measure(bot, now);
        bot->window_done += n;
        pacer_done(p, bot_id, n);
    }
}

bool pacer_rate_limited(struct pacer *p, const char *bot_id, int platform, int64_t retry_after_ms,
                        int64_t now)
{
    struct pace_bot *bot = bot_get(p, bot_id, platform, now);
    if (bot == NULL) {
        return false;
    }
    int64_t until = now + (retry_after_ms > 0 ? retry_after_ms : 1000);
    if (until <= bot->paused_until) {
        return false;
    }
    /* The bucket starts empty when the pause ends: the bot resumes at its rate, not
     * with a burst into a limit that has only just let go. */
    pace_bucket_empty(&bot->bucket, now);
    bot->bucket.last_ms = until;
    bool started = bot->paused_until <= now;
    bot->paused_until = until;
    return started;
}

void pacer_reset_in_flight(struct pacer *p)
{
    for (size_t i = 0; i < p->nbots; i++) {
        p->bots[i]->in_flight = 0;
    }
}

void pacer_set_in_flight(struct pacer *p, const char *bot_id, int platform, int n, int64_t now)
{
    struct pace_bot *bot = bot_get(p, bot_id, platform, now);
    if (bot != NULL) {
        bot->in_flight = n;
    }
}

int pacer_paused_bots(struct pacer *p, int64_t now)
{
    int n = 0;
    for (size_t i = 0; i < p->nbots; i++) {
        n += p->bots[i]->paused_until > now;
    }
    return n;
}

bool pacer_in_flight_blocked(const struct pacer *p)
{
    return p->in_flight_blocked;
}
