/* Unit tests of the scheduler's pacing (services/scheduler/pacing.c): token buckets,
 * fair shares between bots and campaigns, 429 pauses and in-flight bounds, driven by
 * a clock the test moves. */
#include "check.h"

#include "pacing.h"

#include <stdio.h>
#include <string.h>

static struct pace_campaign campaign(const char *id, const char *bot, int due, int throttle)
{
    struct pace_campaign c;
    memset(&c, 0, sizeof(c));
    snprintf(c.id, sizeof(c.id), "%s", id);
    snprintf(c.bot_id, sizeof(c.bot_id), "%s", bot);
    c.platform = 0;
    c.due = due;
    c.throttle_per_minute = throttle;
    c.next_due = INT64_MAX;
    return c;
}

static void test_bucket(void)
{
    struct pace_bucket b;
    pace_bucket_init(&b, 10 / 1000.0, 10, 0); /* 10 a second, burst 10 */
    CHECK(pace_bucket_available(&b, 0) == 10);
    pace_bucket_take(&b, 10, 0);
    CHECK(pace_bucket_available(&b, 0) == 0);
    CHECK(pace_bucket_available(&b, 99) == 0);
    CHECK(pace_bucket_available(&b, 100) == 1);
    CHECK(pace_bucket_ready_at(&b, 5, 100) == 500);
    CHECK(pace_bucket_available(&b, 60000) == 10); /* never above the burst */
    pace_bucket_empty(&b, 60000);
    CHECK(pace_bucket_available(&b, 60000) == 0);
    struct pace_bucket unlimited;
    pace_bucket_init(&unlimited, 0, 1, 0);
    CHECK(pace_bucket_available(&unlimited, 0) == INT32_MAX);
    CHECK(pace_bucket_ready_at(&unlimited, 1000, 5) == 5);
}

static void test_share(void)
{
    size_t rot = 0;
    int demand[3] = {1000, 5, 1000}, out[3];
    pace_share(demand, out, 3, 100, &rot);
    /* The small one gets all it wants; the two big ones split the rest evenly. */
    CHECK(out[1] == 5 && out[0] + out[2] == 95 && out[0] >= 47 && out[2] >= 47);
    int d2[2] = {3, 4}, o2[2];
    pace_share(d2, o2, 2, 100, &rot);
    CHECK(o2[0] == 3 && o2[1] == 4);
    /* Fewer units than takers: the one left out changes from call to call. */
    int d3[3] = {5, 5, 5}, a[3], b[3];
    pace_share(d3, a, 3, 1, &rot);
    pace_share(d3, b, 3, 1, &rot);
    CHECK(a[0] + a[1] + a[2] == 1 && b[0] + b[1] + b[2] == 1);
    CHECK(memcmp(a, b, sizeof(a)) != 0);
}

/* Slack-like: 600 a minute (10/s), burst 10, 100 in flight at most per bot. */
static const struct pace_limit slack_like = {10 / 1000.0, 10, 100, 100, 0};

static void test_rate_per_bot(void)
{
    struct pacer *p = pacer_new(&slack_like, 1);
    int64_t wake;
    struct pace_campaign cs[1] = {campaign("c1", "b1", 500, 0)};
    /* The burst at once, then 10 a second: over 10 s of planning every 10 ms, about
     * 10 + 100 are handed out, never more. */
    int total = 0;
    for (int64_t now = 0; now < 10000; now += 10) {
        int n = pacer_plan(p, cs, 1, 500, now, &wake);
        if (n > 0) {
            pacer_claimed(p, "c1", "b1", 0, n, now);
            pacer_done(p, "b1", n); /* results come back at once */
        }
        total += n;
        CHECK(n == 0 || wake >= now);
    }
    CHECK(total >= 108 && total <= 110);
    /* After a claim that took every token, the wake is the next token. */
    int n = pacer_plan(p, cs, 1, 500, 20000, &wake);
    pacer_claimed(p, "c1", "b1", 0, n, 20000);
    CHECK(n == 10);
    pacer_plan(p, cs, 1, 500, 20000, &wake);
    CHECK(wake == 20100);
    pacer_free(p);
}

static void test_fair_between_bots_and_campaigns(void)
{
    const struct pace_limit unlimited = {0, 1, 1000000, 1, 0};
    struct pacer *p = pacer_new(&unlimited, 1);
    int64_t wake;
    /* Bot A has a huge campaign and a small one; bot B one medium campaign. */
    struct pace_campaign cs[3] = {campaign("huge", "A", 500, 0), campaign("small", "A", 3, 0),
                                  campaign("medium", "B", 500, 0)};
    int n = pacer_plan(p, cs, 3, 100, 0, &wake);
    CHECK(n == 100);
    CHECK(cs[1].want == 3);  /* the small campaign is not starved */
    CHECK(cs[2].want == 50); /* each bot half the batch */
    CHECK(cs[0].want == 47); /* the huge one gets the rest of A's half */
    CHECK(wake == 0);        /* more is due: claim again at once */
    pacer_free(p);
}

/* One token a turn, two campaigns of one bot: they take turns, neither starves. */
static void test_turns_when_tokens_are_few(void)
{
    const struct pace_limit one_per_100ms = {10 / 1000.0, 1, 1000, 1, 0};
    struct pacer *p = pacer_new(&one_per_100ms, 1);
    int64_t wake;
    struct pace_campaign cs[2] = {campaign("big", "b", 500, 0), campaign("small", "b", 3, 0)};
    int got[2] = {0, 0};
    for (int64_t now = 0; now < 1000; now += 100) {
        CHECK(pacer_plan(p, cs, 2, 500, now, &wake) == 1);
        for (int i = 0; i < 2; i++) {
            if (cs[i].want > 0) {
                got[i] += cs[i].want;
                pacer_claimed(p, cs[i].id, "b", 0, cs[i].want, now);
                pacer_done(p, "b", cs[i].want);
            }
        }
    }
    CHECK(got[0] == 5 && got[1] == 5);
    pacer_free(p);
}

static void test_throttle(void)
{
    struct pacer *p = pacer_new(&slack_like, 1);
    int64_t wake;
    /* throttle_per_minute 60: one a second, burst one, under a bot allowing ten. */
    struct pace_campaign cs[1] = {campaign("t", "b", 100, 60)};
    int n = pacer_plan(p, cs, 1, 100, 0, &wake);
    CHECK(n == 1);
    pacer_claimed(p, "t", "b", 0, n, 0);
    n = pacer_plan(p, cs, 1, 100, 500, &wake);
    CHECK(n == 0 && wake == 1000);
    n = pacer_plan(p, cs, 1, 100, 1000, &wake);
    CHECK(n == 1);
    pacer_free(p);
}

static void test_rate_limited_pauses_one_bot(void)
{
    struct pacer *p = pacer_new(&slack_like, 1);
    int64_t wake;
    struct pace_campaign cs[3] = {campaign("a1", "A", 50, 0), campaign("a2", "A", 50, 0),
                                  campaign("b1", "B", 50, 0)};
    CHECK(pacer_rate_limited(p, "A", 0, 30000, 0));
    CHECK(!pacer_rate_limited(p, "A", 0, 1000, 10)); /* shorter: the pause stands */
    CHECK(pacer_paused_bots(p, 100) == 1);
    int n = pacer_plan(p, cs, 3, 100, 100, &wake);
    CHECK(cs[0].want == 0 && cs[1].want == 0); /* every campaign of the paused bot */
    CHECK(cs[2].want == 10 && n == 10);        /* the other bot goes on */
    pacer_claimed(p, "b1", "B", 0, 10, 100);
    pacer_plan(p, cs, 3, 100, 100, &wake);
    CHECK(wake == 200); /* B's next token comes before A's pause ends */
    cs[2].due = 0;
    pacer_plan(p, cs, 3, 100, 100, &wake);
    CHECK(wake == 30000); /* then only the pause's end */
    /* After the pause the bucket starts empty: it resumes gently. */
    n = pacer_plan(p, cs, 3, 100, 30000, &wake);
    CHECK(n == 0);
    n = pacer_plan(p, cs, 3, 100, 30100, &wake);
    CHECK(n == 1);
    /* A pause learned from the database (another scheduler's 429) works the same. */
    struct pace_campaign other[1] = {campaign("c", "C", 5, 0)};
    other[0].bot_paused_until = 50000;
    CHECK(pacer_plan(p, other, 1, 100, 40000, &wake) == 0 && wake == 50000);
    pacer_free(p);
}

static void test_in_flight_bound(void)
{
    const struct pace_limit limit = {0, 1, 20, 20, 0}; /* no rate, 20 in flight */
    struct pacer *p = pacer_new(&limit, 1);
    int64_t wake;
    struct pace_campaign cs[1] = {campaign("c", "b", 500, 0)};
    int n = pacer_plan(p, cs, 1, 500, 0, &wake);
    CHECK(n == 20);
    pacer_claimed(p, "c", "b", 0, n, 0);
    CHECK(pacer_plan(p, cs, 1, 500, 1, &wake) == 0);
    CHECK(pacer_in_flight_blocked(p));
    pacer_done(p, "b", 5);
    CHECK(pacer_plan(p, cs, 1, 500, 2, &wake) == 5);
    pacer_reset_in_flight(p);
    CHECK(pacer_plan(p, cs, 1, 500, 3, &wake) == 20);
    pacer_free(p);
}

/* In flight follows the measured throughput: a second's worth of what the bot's
 * senders complete, between the floor and the ceiling. */
static void test_in_flight_follows_throughput(void)
{
    const struct pace_limit limit = {0, 1, 5000, 32, 1000};
    struct pacer *p = pacer_new(&limit, 1);
    int64_t wake;
    struct pace_campaign cs[1] = {campaign("c", "b", 100000, 0)};
    /* Nothing measured yet: the floor. */
    CHECK(pacer_plan(p, cs, 1, 100000, 0, &wake) == 32);
    pacer_claimed(p, "c", "b", 0, 32, 0);
    /* Senders complete 400 a second (everything in flight every 80 ms). */
    int64_t now = 0;
    for (int step = 0; step < 50; step++) {
        now += 80;
        struct pace_bot *bot = pacer_bot(p, "b");
        int done = bot->in_flight < 32 ? bot->in_flight : 32;
        pacer_completed(p, "b", done, now);
        int n = pacer_plan(p, cs, 1, 100000, now, &wake);
        pacer_claimed(p, "c", "b", 0, n, now);
    }
    struct pace_bot *bot = pacer_bot(p, "b");
    int cap = pacer_in_flight_cap(p, bot, now);
    CHECK(cap >= 360 && cap <= 460); /* 400 a second, give or take a window's phase */
    /* Idle for a while: back to the floor. */
    CHECK(pacer_in_flight_cap(p, bot, now + 5000) == 32);
    pacer_free(p);
}

int main(void)
{
    test_bucket();
    test_share();
    test_rate_per_bot();
    test_fair_between_bots_and_campaigns();
    test_turns_when_tokens_are_few();
    test_throttle();
    test_rate_limited_pauses_one_bot();
    test_in_flight_bound();
    test_in_flight_follows_throughput();
    CHECK_DONE();
}
