/* lifecycle.c: the slow, periodic side of the scheduler.
 *
 * Once a second the leader expires leases (a delivery still 'sending' after its lease
 * becomes 'unknown': the sender may have reached the platform, so it is never resent
 * automatically), completes campaigns that have nothing left to do, and recounts
 * what is in flight. Every few seconds it counts the due backlog for /metrics. It
 * also reacts to campaign notifications (cancel) and to revoked bot tokens.
 */
#include "pacing.h"
#include "sched.h"
#include "sched_metrics.h"

#include "bcrm/clock.h"
#include "bcrm/db.h"
#include "bcrm/log.h"
#include "pgarray.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS 1000
#define GAUGES_MS 5000

static const char EXPIRE_SQL[] =
    "UPDATE deliveries SET status = 'unknown', last_error = 'lease_expired', updated_at = now()"
    " WHERE status = 'sending' AND lease_expires_at < now()";

static const char COMPLETE_SQL[] =
    "WITH done AS ("
    " UPDATE campaigns c SET status = 'completed', completed_at = now(), updated_at = now()"
    " WHERE c.status = 'running'"
    "   AND (c.schedule->>'mode' IS DISTINCT FROM 'recurring' OR c.id = ANY($1::uuid[]))"
    "   AND NOT EXISTS (SELECT 1 FROM campaign_runs r"
    "                   WHERE r.campaign_id = c.id AND r.status = 'loading')"
    "   AND NOT EXISTS (SELECT 1 FROM deliveries d"
    "                   WHERE d.campaign_id = c.id AND d.status IN ('pending', 'sending'))"
    " RETURNING c.id"
    "), runs AS ("
    " UPDATE campaign_runs r SET status = 'done' FROM done"
    " WHERE r.campaign_id = done.id AND r.status = 'loaded'"
    ")"
    "SELECT done.id,"
    " (SELECT count(*) FROM deliveries d WHERE d.campaign_id = done.id),"
    " (SELECT count(*) FROM deliveries d WHERE d.campaign_id = done.id AND d.status = 'sent'),"
    " (SELECT count(*) FROM deliveries d WHERE d.campaign_id = done.id AND d.status = 'failed'),"
    " (SELECT count(*) FROM deliveries d WHERE d.campaign_id = done.id AND d.status = 'unknown')"
    " FROM done";

/* In flight per bot, for the pacer's bounds (and their sum for the global one). */
static const char IN_FLIGHT_SQL[] =
    "SELECT c.bot_id, b.platform, count(*) FROM deliveries d"
    " JOIN campaigns c ON c.id = d.campaign_id JOIN bots b ON b.id = c.bot_id"
    " WHERE d.status = 'sending' GROUP BY c.bot_id, b.platform";

/* Per running campaign, so that it reads deliveries_campaign_due_idx only. */
static const char BACKLOG_SQL[] =
    "SELECT coalesce(sum((SELECT count(*) FROM deliveries d WHERE d.campaign_id = c.id"
    "   AND d.status = 'pending' AND coalesce(d.next_attempt_at, d.due_at) <= now())), 0)"
    " FROM campaigns c WHERE c.status = 'running'";

static const char CLOSE_CANCELLED_SQL[] =
    "WITH c AS (SELECT id FROM campaigns WHERE id = $1::uuid AND status = 'cancelled'),"
    " runs AS (UPDATE campaign_runs SET status = 'cancelled'"
    "   WHERE campaign_id IN (SELECT id FROM c) AND status IN ('loading', 'loaded'))"
    " UPDATE deliveries SET status = 'cancelled', updated_at = now()"
    " WHERE campaign_id IN (SELECT id FROM c) AND status = 'pending'";

/* db/migrations/0011: the bots token_invalid, their campaigns paused (and announced,
 * which also wakes this scheduler's own LISTEN: harmless). */
static const char TOKEN_INVALID_SQL[] =
    "SELECT bots, campaigns_paused FROM bots_token_invalid($1::uuid[])";

int lifecycle_prepare(PGconn *conn)
{
    if (db_prepare(conn, "expire_leases", EXPIRE_SQL, 0) != 0 ||
        db_prepare(conn, "complete_campaigns", COMPLETE_SQL, 1) != 0 ||
        db_prepare(conn, "in_flight", IN_FLIGHT_SQL, 0) != 0 ||
        db_prepare(conn, "due_backlog", BACKLOG_SQL, 0) != 0 ||
        db_prepare(conn, "close_cancelled", CLOSE_CANCELLED_SQL, 1) != 0 ||
        db_prepare(conn, "bots_token_invalid", TOKEN_INVALID_SQL, 1) != 0) {
        return -1;
    }
    return 0;
}

static long long count_of(PGresult *res)
{
    long long n = res != NULL && PQntuples(res) > 0 ? atoll(PQgetvalue(res, 0, 0)) : -1;
    PQclear(res);
    return n;
}

static void expire_leases(struct scheduler *s)
{
    PGresult *res = db_query_prepared(s->work, "expire_leases", 0, NULL);
    if (res == NULL) {
        return;
    }
    int n = atoi(PQcmdTuples(res));
    PQclear(res);
    if (n > 0) {
        metric_add(sched_metrics.leases_expired, n);
        log_warn("leases expired", "{s:i, s:s}", "deliveries", n, "status", "unknown");
    }
}

void lifecycle_complete(struct scheduler *s, const char *finished_recurring)
{
    const char *params[] = {finished_recurring};
    PGresult *res = db_query_prepared(s->work, "complete_campaigns", 1, params);
    if (res == NULL) {
        return;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        metric_inc(sched_metrics.campaigns_completed);
        log_info("campaign completed", "{s:s, s:I, s:I, s:I, s:I}", "campaign_id",
                 PQgetvalue(res, i, 0), "deliveries", (json_int_t)atoll(PQgetvalue(res, i, 1)),
                 "sent", (json_int_t)atoll(PQgetvalue(res, i, 2)), "failed",
                 (json_int_t)atoll(PQgetvalue(res, i, 3)), "unknown",
                 (json_int_t)atoll(PQgetvalue(res, i, 4)));
    }
    PQclear(res);
}

/* Recounts what is in flight, per bot and in all: results that went to another
 * scheduler, leases expired, rows put back all change it behind our counters. */
static void resync_in_flight(struct scheduler *s, int64_t now)
{
    PGresult *res = db_query_prepared(s->work, "in_flight", 0, NULL);
    if (res == NULL) {
        return;
    }
    int total = 0;
    pacer_reset_in_flight(s->pacer);
    for (int i = 0; i < PQntuples(res); i++) {
        int n = atoi(PQgetvalue(res, i, 2));
        pacer_set_in_flight(s->pacer, PQgetvalue(res, i, 0),
                            sched_platform_from_name(PQgetvalue(res, i, 1)), n, now);
        total += n;
    }
    PQclear(res);
    if (total < s->in_flight && s->claim_waits_for_results) {
        s->next_due = 0;
    }
    s->in_flight = total;
    metric_set(sched_metrics.in_flight, total);
}

void lifecycle_tick(struct scheduler *s)
{
    int64_t now = clock_mono_ms();
    if (now < s->next_tick) {
        return;
    }
    s->next_tick = now + TICK_MS;
    expire_leases(s);
    lifecycle_complete(s, "{}");
    resync_in_flight(s, now);
    if (now >= s->next_gauges) {
        s->next_gauges = now + GAUGES_MS;
        long long backlog = count_of(db_query_prepared(s->work, "due_backlog", 0, NULL));
        if (backlog >= 0) {
            metric_set(sched_metrics.due_backlog, (double)backlog);
        }
    }
    /* Rows also become due through others (a retry, a test send): a fresh survey at
     * least once a tick keeps the deadline honest. Due rows never wait for this: the
     * claim's deadline is the next due instant itself. */
    if (s->next_due > now + TICK_MS) {
        s->next_due = now + TICK_MS;
    }
    metric_set(sched_metrics.bots_paused, pacer_paused_bots(s->pacer, now));
}

void lifecycle_campaign_changed(struct scheduler *s, const char *campaign_id)
{
    /* A resume may have made rows claimable, a schedule may bring a run: look now. */
    s->next_due = 0;
    s->campaigns_dirty = true;
    if (!sched_looks_like_uuid(campaign_id)) {
        log_warn("notification ignored", "{s:s}", "reason", "payload is not a campaign id");
        return;
    }
    const char *params[] = {campaign_id};
    PGresult *res = db_query_prepared(s->work, "close_cancelled", 1, params);
    if (res == NULL) {
        return;
    }
    int n = atoi(PQcmdTuples(res));
    PQclear(res);
    if (n > 0) {
        log_info("cancelled deliveries swept", "{s:s, s:i}", "campaign_id", campaign_id,
                 "deliveries", n);
    }
}

void lifecycle_bots_token_invalid(struct scheduler *s, const char *bot_ids_array)
{
    const char *params[] = {bot_ids_array};
    PGresult *res = db_query_prepared(s->work, "bots_token_invalid", 1, params);
    if (res == NULL) {
        return;
    }
    long long bots = atoll(PQgetvalue(res, 0, 0));
    long long paused = atoll(PQgetvalue(res, 0, 1));
    PQclear(res);
    if (bots > 0 || paused > 0) {
        log_warn("bot token invalid: campaigns paused", "{s:s, s:I, s:I}", "bot_ids", bot_ids_array,
                 "bots", (json_int_t)bots, "campaigns_paused", (json_int_t)paused);
    }
}
