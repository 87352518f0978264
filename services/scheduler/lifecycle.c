/* lifecycle.c: the slow, periodic side of the scheduler.
 *
 * Once a second the leader expires leases (a delivery still 'sending' after its lease
 * becomes 'unknown': the sender may have reached the platform, so it is never resent
 * automatically), completes campaigns that have nothing left to do, and recounts
 * what is in flight. Every few seconds it counts the due backlog for /metrics. It
 * also reacts to campaign notifications (cancel) and to revoked bot tokens.
 */
#include "sched.h"
#include "sched_metrics.h"

#include "bcrm/clock.h"
#include "bcrm/db.h"
#include "bcrm/log.h"
#include "pgarray.h"

#include <jansson.h>
#include <ctype.h>
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

static const char IN_FLIGHT_SQL[] = "SELECT count(*) FROM deliveries WHERE status = 'sending'";

static const char BACKLOG_SQL[] =
    "SELECT count(*) FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id"
    " WHERE d.status = 'pending' AND coalesce(d.next_attempt_at, d.due_at) <= now()"
    "   AND c.status = 'running'";

/* ORDER BY ... LIMIT 1 rather than min(): it walks the due index in order and stops at
 * the first row a claim could take, with the same filter as the claim. */
static const char NEXT_DUE_SQL[] =
    "SELECT (extract(epoch FROM coalesce(d.next_attempt_at, d.due_at) - now()) * 1000)::bigint"
    " FROM deliveries d"
    " WHERE d.status = 'pending' AND d.campaign_id = ANY (ARRAY("
    "   SELECT c.id FROM campaigns c JOIN bots b ON b.id = c.bot_id"
    "   WHERE c.status = 'running' AND b.status = 'active' AND b.platform = ANY($1::text[])))"
    " ORDER BY coalesce(d.next_attempt_at, d.due_at) LIMIT 1";

/* A row due now that the claim just left (its campaign row was locked by the api for
 * a moment) is looked at again this much later, rather than at once in a spin. */
#define DUE_NOW_RECHECK_MS 100

static const char CLOSE_CANCELLED_SQL[] =
    "WITH c AS (SELECT id FROM campaigns WHERE id = $1::uuid AND status = 'cancelled'),"
    " runs AS (UPDATE campaign_runs SET status = 'cancelled'"
    "   WHERE campaign_id IN (SELECT id FROM c) AND status IN ('loading', 'loaded'))"
    " UPDATE deliveries SET status = 'cancelled', updated_at = now()"
    " WHERE campaign_id IN (SELECT id FROM c) AND status = 'pending'";

static const char TOKEN_INVALID_SQL[] =
    "WITH b AS ("
    " UPDATE bots SET status = 'token_invalid', updated_at = now()"
    " WHERE id = ANY($1::uuid[]) AND status = 'active' RETURNING id"
    "), p AS ("
    " UPDATE campaigns SET status = 'paused', updated_at = now()"
    " WHERE bot_id = ANY($1::uuid[]) AND status IN ('scheduled', 'running') RETURNING id"
    ")"
    "SELECT (SELECT count(*) FROM b), (SELECT count(*) FROM p)";

int lifecycle_prepare(PGconn *conn)
{
    if (db_prepare(conn, "expire_leases", EXPIRE_SQL, 0) != 0 ||
        db_prepare(conn, "complete_campaigns", COMPLETE_SQL, 1) != 0 ||
        db_prepare(conn, "in_flight", IN_FLIGHT_SQL, 0) != 0 ||
        db_prepare(conn, "due_backlog", BACKLOG_SQL, 0) != 0 ||
        db_prepare(conn, "next_due", NEXT_DUE_SQL, 1) != 0 ||
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

void lifecycle_refresh_next_due(struct scheduler *s)
{
    int64_t now = clock_mono_ms();
    struct pgarray platforms;
    claims_open_platforms(s, now, &platforms);
    const char *params[] = {pgarray_text(&platforms)};
    PGresult *res = db_query_prepared(s->work, "next_due", 1, params);
    pgarray_free(&platforms);
    if (res == NULL) {
        s->next_due = now + TICK_MS;
        return;
    }
    if (PQntuples(res) == 0) {
        s->next_due = SCHED_NEVER;
    } else {
        long long in_ms = atoll(PQgetvalue(res, 0, 0));
        s->next_due = now + (in_ms > 0 ? in_ms : DUE_NOW_RECHECK_MS);
    }
    PQclear(res);
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
    long long in_flight = count_of(db_query_prepared(s->work, "in_flight", 0, NULL));
    if (in_flight >= 0) {
        s->in_flight = (int)in_flight;
        metric_set(sched_metrics.in_flight, (double)in_flight);
    }
    if (now >= s->next_gauges) {
        s->next_gauges = now + GAUGES_MS;
        long long backlog = count_of(db_query_prepared(s->work, "due_backlog", 0, NULL));
        if (backlog >= 0) {
            metric_set(sched_metrics.due_backlog, (double)backlog);
        }
    }
    /* Rows also become due through others (the api's retry): a fresh look once a
     * tick keeps the deadline honest. */
    if (s->next_due > now) {
        lifecycle_refresh_next_due(s);
    }
}

/* A uuid in its text form, checked before it reaches a ::uuid cast. */
static bool looks_like_uuid(const char *text)
{
    size_t n = strlen(text);
    if (n != 36) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? text[i] != '-' : !isxdigit((unsigned char)text[i])) {
            return false;
        }
    }
    return true;
}

void lifecycle_campaign_changed(struct scheduler *s, const char *campaign_id)
{
    /* A resume may have made rows claimable, a schedule may bring a run: look now. */
    s->next_due = 0;
    s->campaigns_dirty = true;
    if (!looks_like_uuid(campaign_id)) {
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
