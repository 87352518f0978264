/* pacing.h: how fast each bot may send, and who gets the next claim.
 *
 * Pacing belongs to the scheduler (design.md): a delivery is claimed only when its bot
 * has a token, so the senders never have to hold work back and a lease is never spent
 * waiting. Three limits stack, each a token bucket or a counter:
 *
 *   - the platform's published limit per bot (a Slack bot is one app in one workspace,
 *     a Messenger bot one page): BCRM_SLACK_RATE_PER_MINUTE / BCRM_SLACK_BURST and
 *     BCRM_MESSENGER_RATE_PER_SECOND / BCRM_MESSENGER_BURST;
 *   - the campaign's throttle_per_minute, on top;
 *   - in flight per bot, at most what the bot's senders complete in
 *     BCRM_SCHEDULER_BOT_IN_FLIGHT (500 ms), as measured from its results (never below
 *     a floor, so a bot starts and a slow platform still gets work). Work handed out is
 *     therefore done within about a second whatever the platform's speed: a pause stops
 *     the sends within a second, and a lease (60 s) is never outrun. The measure grows
 *     by itself: in-flight over latency is the throughput, which sets the next bound.
 *
 * A 429 pauses its bot, and only its bot, until Retry-After has passed (every campaign
 * of the bot; other bots go on), and empties the bot's bucket so it resumes gently.
 *
 * Fair shares: each claim takes at most one batch. The batch is shared equally between
 * the bots that have due work, and each bot's share equally between its campaigns, the
 * remainder rotating (water-filling: whoever wants less than an equal share gets all it
 * wants, and the rest is shared among the others). One huge campaign therefore cannot
 * starve a small one, nor one busy bot the others.
 *
 * Pure code apart from the clock passed in: tests/unit/test_pacing.c drives it. Times
 * are monotonic milliseconds. Not thread-safe; the scheduler's loop owns it.
 */
#ifndef BCRM_SCHEDULER_PACING_H
#define BCRM_SCHEDULER_PACING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A rate of 0 means "no limit" throughout. */
struct pace_bucket {
    double per_ms;   /* tokens earned per millisecond; 0: unlimited */
    double capacity; /* the burst */
    double tokens;
    int64_t last_ms;
};

void pace_bucket_init(struct pace_bucket *b, double per_ms, double capacity, int64_t now);
/* Changes the rate and burst, keeping the tokens earned so far (capped). */
void pace_bucket_configure(struct pace_bucket *b, double per_ms, double capacity, int64_t now);
/* Whole tokens there now (INT32_MAX when unlimited). */
int pace_bucket_available(struct pace_bucket *b, int64_t now);
void pace_bucket_take(struct pace_bucket *b, int n, int64_t now);
/* When n tokens (at most the capacity) will be there; now when they are. */
int64_t pace_bucket_ready_at(struct pace_bucket *b, int n, int64_t now);
void pace_bucket_empty(struct pace_bucket *b, int64_t now);

/* A platform's published limit for one bot. */
struct pace_limit {
    double per_ms;
    double burst;
    int max_in_flight; /* per bot, whatever the measure says */
    int min_in_flight; /* per bot, whatever the measure says */
    int64_t drain_ms;  /* in flight: what the bot completes in this long (0: no measure) */
};

struct pace_bot {
    char id[40];
    int platform;
    struct pace_bucket bucket;
    int in_flight;
    int64_t paused_until; /* a 429's Retry-After; 0: not paused */
    int64_t seen;         /* the last survey that listed it */
    int64_t window_start; /* results counted per second for the in-flight bound */
    int window_done;
    double done_per_s;      /* results per second over the last whole window */
    int demand, cap, share; /* planning scratch */
    size_t rotate;          /* whose turn it is among its campaigns when tokens are few */
};

/* One running campaign as the survey found it (claims.c fills id .. next_due). */
struct pace_campaign {
    char id[40];
    char bot_id[40];
    int platform;
    int throttle_per_minute;  /* 0: none */
    int due;                  /* claimable rows now, counted up to a batch and one */
    int64_t next_due;         /* when the next pending row falls due (monotonic ms) */
    int64_t bot_paused_until; /* monotonic ms, from the database (another scheduler saw a 429) */
    int want;                 /* the plan: rows to claim now */
    struct pace_bot *bot;     /* planning: its bot */
    struct pace_bucket *throttle;
};

struct pacer;

/* limits: one per platform (borrowed; copied). NULL when memory ran out. */
struct pacer *pacer_new(const struct pace_limit *limits, int platforms);
void pacer_free(struct pacer *p);

/* Plans one claim: sets each campaign's want so that the sum is at most room, every
 * limit is respected and the shares are fair. Returns the total wanted. *wake is set to
 * when a plan may next give something (a token, a pause ending, a row falling due):
 * SCHED-style "never" (INT64_MAX) when only a result can change anything. */
int pacer_plan(struct pacer *p, struct pace_campaign *cs, size_t n, int room, int64_t now,
               int64_t *wake);

/* Whether the last plan left due rows undone because a bot had its most in flight:
 * then the next result should trigger a new plan. */
bool pacer_in_flight_blocked(const struct pacer *p);
/* Records what a claim took for a campaign (tokens and in-flight of its bot). */
void pacer_claimed(struct pacer *p, const char *campaign_id, const char *bot_id, int platform,
                   int n, int64_t now);
/* Deliveries of a bot no longer in flight without having been sent (put back). */
void pacer_done(struct pacer *p, const char *bot_id, int n);
/* Results came back for a bot: fewer in flight, and they count towards its measured
 * throughput. */
void pacer_completed(struct pacer *p, const char *bot_id, int n, int64_t now);
/* The bot's in-flight bound now (for tests and metrics). */
int pacer_in_flight_cap(struct pacer *p, struct pace_bot *bot, int64_t now);
/* A 429: the bot rests until now + retry_after_ms. Returns true if this starts a pause
 * (the bot was not already paused that long). */
bool pacer_rate_limited(struct pacer *p, const char *bot_id, int platform, int64_t retry_after_ms,
                        int64_t now);
/* Recounted from the database: every bot's in-flight count starts again from these. */
void pacer_reset_in_flight(struct pacer *p);
void pacer_set_in_flight(struct pacer *p, const char *bot_id, int platform, int n, int64_t now);
/* Bots paused now, for the gauge. */
int pacer_paused_bots(struct pacer *p, int64_t now);
/* The bot's state, or NULL when it is not known. */
struct pace_bot *pacer_bot(struct pacer *p, const char *bot_id);

/* Shares capacity between demands (water-filling), starting the rotation of the
 * remainder at *rotate (advanced). Sets out[i] <= demand[i], sum(out) <= capacity. */
void pace_share(const int *demand, int *out, size_t n, int capacity, size_t *rotate);

#endif
