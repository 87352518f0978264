/* claims.c: handing due deliveries to the senders, paced and fairly shared.
 *
 * A claim round has three steps:
 *
 *   1. survey: one statement lists the running campaigns of active bots on open
 *      platforms, each with how many of its rows are due now (counted up to a batch and one),
 *      when its next pending row falls due, and whether its bot is paused by a 429
 *      (scheduler_bot_pauses). Two index probes per campaign (deliveries_campaign_due_idx):
 *      the cost does not grow with the backlog, and paused campaigns are not read at all.
 *   2. plan (pacing.h): how many rows each campaign may have now, within the platform's
 *      limit per bot, the campaign's throttle, the in-flight bounds and a fair share of
 *      one batch. The plan also says when to look again: the next due row, the next
 *      token, the end of a pause. That instant is the loop's deadline, so a due row is
 *      claimed when it falls due, not at the next tick.
 *   3. claim: one statement takes, per campaign, up to its share of due rows in due order
 *      (FOR UPDATE SKIP LOCKED, so concurrent claimers never take the same row), marks
 *      them 'sending' under a new lease id with an expiry, counts the attempt, and returns
 *      everything a sender needs. The claim commits before any SendBatch leaves, so a row
 *      is never on the bus without its lease in the database.
 *
 * The claim also settles rows that must not go now:
 *   - too late: past max_lateness_minutes, or, when the campaign sets none, past
 *     BCRM_SCHEDULER_STALE_AFTER (a system back from a long outage does not fire stale
 *     campaigns): 'skipped' with last_error 'max_lateness' or 'stale'. Lateness counts
 *     from lateness_from when set (a send window's opening, a user's retry), else due_at.
 *   - outside their send window: the window they were due in has closed (the campaign
 *     was paused, or paced for longer than the window): they stay 'pending' and wait for
 *     the next opening (window.h).
 *
 * Campaign rows are locked FOR SHARE SKIP LOCKED in the claim: a pause or cancel that the
 * api is committing holds the campaign row, so its deliveries are skipped rather than
 * handed out, and once the api has committed the status is no longer 'running'. Pausing
 * therefore stops new sends at once, and since the claim never waits for a lock it cannot
 * deadlock with the api's cancel.
 *
 * A SendBatch that no sender takes within BCRM_SCHEDULER_SEND_TIMEOUT was provably never
 * handed out: its rows go back to 'pending' (fenced by the lease) instead of expiring
 * into 'unknown', and the platform rests for a moment.
 */
#include "pacing.h"
#include "sched.h"
#include "sched_metrics.h"
#include "window.h"

#include "bcrm/bus.h"
#include "bcrm/clock.h"
#include "bcrm/db.h"
#include "bcrm/keys.h"
#include "bcrm/log.h"
#include "bcrm/v1/send.pb-c.h"
#include "pgarray.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* How long a platform rests after a SendBatch found no sender. */
#define PLATFORM_REST_MS 1000
/* Claim rounds per call, so results are applied between long bursts. */
#define MAX_CLAIMS_PER_RUN 16
/* A campaign whose next row is due "now" by the survey but not by the claim (clocks
 * of a millisecond apart) is looked at again this much later, rather than in a spin. */
#define DUE_NOW_RECHECK_MS 1
/* The most campaigns one survey plans for. */
#define SURVEY_MAX 10000

static const char SURVEY_SQL[] =
    "SELECT c.id, c.bot_id, b.platform, coalesce(c.throttle_per_minute, 0),"
    " (SELECT count(*) FROM (SELECT 1 FROM deliveries d"
    "   WHERE d.campaign_id = c.id AND d.status = 'pending'"
    "     AND coalesce(d.next_attempt_at, d.due_at) <= now()"
    "   ORDER BY coalesce(d.next_attempt_at, d.due_at) LIMIT $1) due),"
    " (SELECT ceil(extract(epoch FROM coalesce(d.next_attempt_at, d.due_at) - now()) * 1000)"
    "   ::bigint FROM deliveries d WHERE d.campaign_id = c.id AND d.status = 'pending'"
    "     AND coalesce(d.next_attempt_at, d.due_at) > now()"
    "   ORDER BY coalesce(d.next_attempt_at, d.due_at) LIMIT 1),"
    " ceil(extract(epoch FROM p.paused_until - now()) * 1000)::bigint"
    " FROM campaigns c JOIN bots b ON b.id = c.bot_id"
    " LEFT JOIN scheduler_bot_pauses p ON p.bot_id = c.bot_id AND p.paused_until > now()"
    " WHERE c.status = 'running' AND b.status = 'active' AND b.platform = ANY($2::text[])"
    " ORDER BY c.created_at, c.id LIMIT " /* SURVEY_MAX */ "10000";

enum { SV_ID, SV_BOT, SV_PLATFORM, SV_THROTTLE, SV_DUE, SV_NEXT_DUE, SV_PAUSED };

static const char CLAIM_SQL[] =
    "WITH want AS ("
    " SELECT * FROM unnest($2::uuid[], $3::int[]) AS w(campaign_id, n)"
    "), live AS MATERIALIZED ("
    " SELECT c.id, c.max_lateness_minutes FROM campaigns c JOIN bots b ON b.id = c.bot_id"
    " WHERE c.id IN (SELECT campaign_id FROM want) AND c.status = 'running'"
    "   AND b.status = 'active'"
    " FOR SHARE OF c SKIP LOCKED"
    "), picked AS ("
    " SELECT p.id, l.max_lateness_minutes FROM want w JOIN live l ON l.id = w.campaign_id"
    " CROSS JOIN LATERAL ("
    "   SELECT d.id FROM deliveries d"
    "   WHERE d.campaign_id = w.campaign_id AND d.status = 'pending'"
    "     AND coalesce(d.next_attempt_at, d.due_at) <= now()"
    "   ORDER BY coalesce(d.next_attempt_at, d.due_at) LIMIT w.n"
    "   FOR UPDATE SKIP LOCKED) p"
    "), claimed AS ("
    " SELECT d.id, CASE"
    "   WHEN d.window_closes_at IS NOT NULL AND d.window_closes_at <= now() THEN 'held'"
    "   WHEN coalesce(d.lateness_from, d.due_at) + coalesce("
    "       make_interval(mins => p.max_lateness_minutes),"
    "       $5::bigint * interval '1 millisecond') < now()"
    "     THEN CASE WHEN p.max_lateness_minutes IS NULL THEN 'stale' ELSE 'late' END"
    "   ELSE 'send' END AS fate"
    " FROM picked p JOIN deliveries d ON d.id = p.id"
    "), updated AS ("
    " UPDATE deliveries d SET"
    "   status = CASE cl.fate WHEN 'send' THEN 'sending' WHEN 'held' THEN 'pending'"
    "     ELSE 'skipped' END,"
    "   last_error = CASE cl.fate WHEN 'late' THEN 'max_lateness' WHEN 'stale' THEN 'stale'"
    "     ELSE d.last_error END,"
    "   lease_id = CASE WHEN cl.fate IN ('send', 'held') THEN $1::uuid ELSE d.lease_id END,"
    "   lease_expires_at = CASE WHEN cl.fate = 'send'"
    "     THEN now() + $4::bigint * interval '1 millisecond' END,"
    "   attempts = d.attempts + CASE WHEN cl.fate = 'send' THEN 1 ELSE 0 END,"
    "   updated_at = now()"
    " FROM claimed cl WHERE d.id = cl.id"
    " RETURNING d.id, d.org_id, d.campaign_id, d.recipient_id, d.attempts, cl.fate,"
    "   d.window_closes_at"
    ")"
    "SELECT u.id, u.org_id, c.bot_id, u.recipient_id, u.attempts, u.campaign_id,"
    "  b.platform, c.message->>'text',"
    "  CASE WHEN jsonb_typeof(c.message->'blocks') = 'array'"
    "    THEN (c.message->'blocks')::text END,"
    "  c.messenger->>'messaging_type', c.messenger->>'tag',"
    "  (extract(epoch FROM ms.last_message_at) * 1000)::bigint, u.fate,"
    "  (extract(epoch FROM u.window_closes_at) * 1000)::bigint,"
    "  CASE WHEN u.fate = 'held' THEN c.send_window::text END,"
    "  (extract(epoch FROM now()) * 1000)::bigint"
    " FROM updated u"
    " JOIN campaigns c ON c.id = u.campaign_id"
    " JOIN bots b ON b.id = c.bot_id"
    " LEFT JOIN messenger_subscribers ms ON b.platform = 'messenger' AND ms.bot_id = b.id"
    "   AND ms.psid = u.recipient_id"
    " ORDER BY b.platform, u.campaign_id, u.id";

enum {
    COL_ID,
    COL_ORG,
    COL_BOT,
    COL_RECIPIENT,
    COL_ATTEMPTS,
    COL_CAMPAIGN,
    COL_PLATFORM,
    COL_TEXT,
    COL_BLOCKS,
    COL_MESSAGING_TYPE,
    COL_TAG,
    COL_LAST_MESSAGE_MS,
    COL_FATE,
    COL_WINDOW_CLOSES_MS,
    COL_SEND_WINDOW,
    COL_NOW_MS,
};

/* Rows handed out but not taken: back to pending, the attempt not counted. */
static const char PUT_BACK_SQL[] =
    "UPDATE deliveries SET status = 'pending', attempts = attempts - 1,"
    " lease_expires_at = NULL, updated_at = now()"
    " WHERE id = ANY($1::bigint[]) AND lease_id = $2::uuid AND status = 'sending'";

/* Rows whose send window closed before they could go: held until the next opening,
 * from which their lateness counts. */
static const char HOLD_SQL[] =
    "UPDATE deliveries d SET next_attempt_at = to_timestamp(h.opens / 1000.0),"
    " lateness_from = to_timestamp(h.opens / 1000.0),"
    " window_closes_at = to_timestamp(h.closes / 1000.0), updated_at = now()"
    " FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS h(id, opens, closes)"
    " WHERE d.id = h.id AND d.lease_id = $4::uuid AND d.status = 'pending'";

int claims_prepare(PGconn *conn)
{
    if (db_prepare(conn, "survey", SURVEY_SQL, 2) != 0 ||
        db_prepare(conn, "claim", CLAIM_SQL, 5) != 0 ||
        db_prepare(conn, "put_back", PUT_BACK_SQL, 2) != 0 ||
        db_prepare(conn, "hold_for_window", HOLD_SQL, 4) != 0) {
        return -1;
    }
    return 0;
}

void claims_watch_senders(struct scheduler *s)
{
    for (int p = 0; p < SCHED_PLATFORMS; p++) {
        peers_init(&s->senders[p]);
        peers_init(&s->queriers[p]);
        peers_watch(&s->senders[p], s->work_sock[p]);
        peers_watch(&s->queriers[p], s->query_sock[p]);
    }
}

static bool platform_open(struct scheduler *s, int p, int64_t now)
{
    return peers_count(&s->senders[p]) > 0 && now >= s->platform_rest_until[p];
}

void claims_open_platforms(struct scheduler *s, int64_t now, struct pgarray *out)
{
    pgarray_init(out);
    for (int p = 0; p < SCHED_PLATFORMS; p++) {
        if (platform_open(s, p, now)) {
            pgarray_add_str(out, sched_platform_names[p], 0);
        }
    }
}

static const char *str_or_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static bool is_fate(const PGresult *res, int row, const char *fate)
{
    return strcmp(PQgetvalue(res, row, COL_FATE), fate) == 0;
}

/* Puts rows [from, to) of res back to pending. */
static void put_back(struct scheduler *s, const PGresult *res, int from, int to,
                     const char *lease_hex)
{
    struct pgarray ids;
    pgarray_init(&ids);
    for (int i = from; i < to; i++) {
        if (is_fate(res, i, "send")) {
            pgarray_add_int(&ids, strtoll(PQgetvalue(res, i, COL_ID), NULL, 10));
            pacer_done(s->pacer, PQgetvalue(res, i, COL_BOT), 1);
        }
    }
    const char *params[] = {pgarray_text(&ids), lease_hex};
    PGresult *r = db_query_prepared(s->work, "put_back", 2, params);
    if (r != NULL) {
        int n = atoi(PQcmdTuples(r));
        s->in_flight -= n;
        metric_add(sched_metrics.put_back, n);
        PQclear(r);
    }
    /* If this failed too, the rows expire into 'unknown': safe, never sent twice. */
    pgarray_free(&ids);
}

/* Sends rows [from, to) of one platform in SendBatch messages. Returns the index of
 * the first row not handed out (to when all went). */
static int push_rows(struct scheduler *s, int p, const PGresult *res, int from, int to,
                     const uint8_t lease[16])
{
    int per = s->cfg.jobs_per_message;
    Bcrm__V1__SendJob *jobs = calloc((size_t)per, sizeof(*jobs));
    Bcrm__V1__SendJob **job_ptrs = calloc((size_t)per, sizeof(*job_ptrs));
    if (jobs == NULL || job_ptrs == NULL) {
        free(jobs);
        free(job_ptrs);
        return from;
    }
    int i = from;
    while (i < to) {
        Bcrm__V1__SendBatch batch = BCRM__V1__SEND_BATCH__INIT;
        batch.jobs = job_ptrs;
        int start = i;
        for (; i < to && (int)batch.n_jobs < per; i++) {
            if (!is_fate(res, i, "send")) {
                continue; /* skipped or held: nothing to send */
            }
            Bcrm__V1__SendJob *job = &jobs[batch.n_jobs];
            bcrm__v1__send_job__init(job);
            job->delivery_id = strtoll(PQgetvalue(res, i, COL_ID), NULL, 10);
            job->lease_id.data = (uint8_t *)lease;
            job->lease_id.len = 16;
            job->org_id = PQgetvalue(res, i, COL_ORG);
            job->bot_id = PQgetvalue(res, i, COL_BOT);
            job->recipient_id = PQgetvalue(res, i, COL_RECIPIENT);
            job->campaign_id = PQgetvalue(res, i, COL_CAMPAIGN);
            job->text = (char *)str_or_null(res, i, COL_TEXT);
            job->blocks_json = (char *)str_or_null(res, i, COL_BLOCKS);
            job->messaging_type = (char *)str_or_null(res, i, COL_MESSAGING_TYPE);
            job->tag = (char *)str_or_null(res, i, COL_TAG);
            job->has_attempt = true;
            job->attempt = atoi(PQgetvalue(res, i, COL_ATTEMPTS));
            if (!PQgetisnull(res, i, COL_LAST_MESSAGE_MS)) {
                job->has_last_message_at_ms = true;
                job->last_message_at_ms =
                    strtoll(PQgetvalue(res, i, COL_LAST_MESSAGE_MS), NULL, 10);
            }
            job_ptrs[batch.n_jobs++] = job;
        }
        if (batch.n_jobs == 0) {
            continue;
        }
        int rv = bus_send(s->work_sock[p], &batch.base, 0);
        if (rv != 0) {
            log_warn("no sender took a batch", "{s:s, s:s, s:i}", "platform",
                     sched_platform_names[p], "error", nng_strerror(rv), "jobs", (int)batch.n_jobs);
            i = start;
            break;
        }
    }
    free(job_ptrs);
    free(jobs);
    return i;
}

/* Rows whose window closed: computes each one's next window and holds it till then. */
static void hold_for_windows(struct scheduler *s, const PGresult *res, const char *lease_hex)
{
    struct pgarray ids, opens, closes;
    pgarray_init(&ids);
    pgarray_init(&opens);
    pgarray_init(&closes);
    int rows = PQntuples(res);
    for (int i = 0; i < rows; i++) {
        if (!is_fate(res, i, "held") || PQgetisnull(res, i, COL_WINDOW_CLOSES_MS)) {
            continue;
        }
        json_error_t jerr;
        json_t *obj = json_loads(PQgetvalue(res, i, COL_SEND_WINDOW), 0, &jerr);
        struct send_window w;
        char err[120];
        int64_t open_ms, close_ms;
        int64_t closed = strtoll(PQgetvalue(res, i, COL_WINDOW_CLOSES_MS), NULL, 10);
        int64_t now = strtoll(PQgetvalue(res, i, COL_NOW_MS), NULL, 10);
        bool ok = window_parse(obj, &w, err, sizeof(err)) == 0 && w.present &&
                  window_next_after(&w, closed, now, &open_ms, &close_ms) == 0;
        json_decref(obj);
        if (!ok) {
            /* The window went away (or cannot be read): the row goes now. */
            open_ms = now;
            close_ms = now + 86400000LL;
        }
        pgarray_add_int(&ids, strtoll(PQgetvalue(res, i, COL_ID), NULL, 10));
        pgarray_add_int(&opens, open_ms > now ? open_ms : now);
        pgarray_add_int(&closes, close_ms);
    }
    if (ids.count > 0) {
        const char *params[] = {pgarray_text(&ids), pgarray_text(&opens), pgarray_text(&closes),
                                lease_hex};
        PGresult *r = db_query_prepared(s->work, "hold_for_window", 4, params);
        if (r != NULL) {
            metric_add(sched_metrics.window_held, atoi(PQcmdTuples(r)));
        }
        PQclear(r);
    }
    pgarray_free(&ids);
    pgarray_free(&opens);
    pgarray_free(&closes);
}

/* Tells the pacer what was handed out, one call per run of rows of one campaign. */
static void account_claimed(struct scheduler *s, const PGresult *res, int64_t now)
{
    int rows = PQntuples(res);
    for (int from = 0; from < rows;) {
        int to = from, sending = 0;
        const char *campaign = PQgetvalue(res, from, COL_CAMPAIGN);
        while (to < rows && strcmp(PQgetvalue(res, to, COL_CAMPAIGN), campaign) == 0) {
            sending += is_fate(res, to, "send");
            to++;
        }
        if (sending > 0) {
            pacer_claimed(s->pacer, campaign, PQgetvalue(res, from, COL_BOT),
                          sched_platform_from_name(PQgetvalue(res, from, COL_PLATFORM)), sending,
                          now);
        }
        from = to;
    }
}

/* One claim statement for the plan's wants and its sends. Returns the number of rows
 * claimed, -1 on a database error. */
static int claim_once(struct scheduler *s, const struct pace_campaign *cs, size_t n, int64_t now)
{
    char lease_hex[33];
    uint8_t lease[16];
    bus_new_id(lease_hex);
    hex_decode(lease, sizeof(lease), lease_hex);

    struct pgarray campaigns, limits;
    pgarray_init(&campaigns);
    pgarray_init(&limits);
    for (size_t i = 0; i < n; i++) {
        if (cs[i].want > 0) {
            pgarray_add_str(&campaigns, cs[i].id, 0);
            pgarray_add_int(&limits, cs[i].want);
        }
    }
    char lease_ms[24], stale_ms[24];
    snprintf(lease_ms, sizeof(lease_ms), "%lld", (long long)s->cfg.lease_ms);
    snprintf(stale_ms, sizeof(stale_ms), "%lld", (long long)s->cfg.stale_after_ms);
    const char *params[] = {lease_hex, pgarray_text(&campaigns), pgarray_text(&limits), lease_ms,
                            stale_ms};
    PGresult *res = db_query_prepared(s->work, "claim", 5, params);
    pgarray_free(&campaigns);
    pgarray_free(&limits);
    if (res == NULL) {
        return -1;
    }
    int rows = PQntuples(res);
    int sending = 0, skipped = 0, held = 0;
    for (int i = 0; i < rows; i++) {
        if (is_fate(res, i, "send")) {
            sending++;
        } else if (is_fate(res, i, "held")) {
            held++;
        } else {
            skipped++;
        }
    }
    s->in_flight += sending;
    metric_add(sched_metrics.claimed, sending);
    metric_add(sched_metrics.skipped_late, skipped);
    account_claimed(s, res, now);
    if (held > 0) {
        hold_for_windows(s, res, lease_hex);
    }

    /* Rows come ordered by platform: one run of rows per socket. */
    for (int from = 0; from < rows;) {
        int p = sched_platform_from_name(PQgetvalue(res, from, COL_PLATFORM));
        int to = from + 1;
        while (to < rows && strcmp(PQgetvalue(res, to, COL_PLATFORM),
                                   PQgetvalue(res, from, COL_PLATFORM)) == 0) {
            to++;
        }
        int stopped = p >= 0 ? push_rows(s, p, res, from, to, lease) : from;
        if (stopped < to) {
            put_back(s, res, stopped, to, lease_hex);
            if (p >= 0) {
                s->platform_rest_until[p] = clock_mono_ms() + PLATFORM_REST_MS;
            }
        }
        from = to;
    }
    PQclear(res);
    return rows;
}

/* The survey: the running campaigns with their due counts, as pace_campaigns in *out
 * (malloc'd; free()). Returns the count, or -1 on a database error. */
static int survey(struct scheduler *s, int64_t now, struct pace_campaign **out)
{
    *out = NULL;
    struct pgarray platforms;
    claims_open_platforms(s, now, &platforms);
    /* Counted up to one more than a batch: a campaign with exactly a batch due and one
     * with more must differ, or a plan that takes a whole batch would think it took
     * everything and wait for the next tick instead of claiming again. */
    char bound[16];
    snprintf(bound, sizeof(bound), "%d", s->cfg.batch + 1);
    const char *params[] = {bound, pgarray_text(&platforms)};
    PGresult *res = db_query_prepared(s->work, "survey", 2, params);
    pgarray_free(&platforms);
    if (res == NULL) {
        return -1;
    }
    int rows = PQntuples(res);
    struct pace_campaign *cs = calloc((size_t)rows + 1, sizeof(*cs));
    if (cs == NULL) {
        PQclear(res);
        return -1;
    }
    int n = 0;
    for (int i = 0; i < rows; i++) {
        struct pace_campaign *c = &cs[n];
        c->due = atoi(PQgetvalue(res, i, SV_DUE));
        if (c->due == 0 && PQgetisnull(res, i, SV_NEXT_DUE)) {
            continue; /* nothing pending: completion is lifecycle's business */
        }
        snprintf(c->id, sizeof(c->id), "%s", PQgetvalue(res, i, SV_ID));
        snprintf(c->bot_id, sizeof(c->bot_id), "%s", PQgetvalue(res, i, SV_BOT));
        c->platform = sched_platform_from_name(PQgetvalue(res, i, SV_PLATFORM));
        c->throttle_per_minute = atoi(PQgetvalue(res, i, SV_THROTTLE));
        if (PQgetisnull(res, i, SV_NEXT_DUE)) {
            c->next_due = SCHED_NEVER;
        } else {
            long long next_in = atoll(PQgetvalue(res, i, SV_NEXT_DUE));
            c->next_due = now + (next_in > 0 ? next_in : DUE_NOW_RECHECK_MS);
        }
        c->bot_paused_until =
            PQgetisnull(res, i, SV_PAUSED) ? 0 : now + atoll(PQgetvalue(res, i, SV_PAUSED));
        n++;
    }
    PQclear(res);
    *out = cs;
    return n;
}

void claims_run(struct scheduler *s)
{
    for (int p = 0; p < SCHED_PLATFORMS; p++) {
        metric_set(sched_metrics.senders[p], peers_count(&s->senders[p]));
    }
    for (int round = 0; round < MAX_CLAIMS_PER_RUN; round++) {
        int64_t now = clock_mono_ms();
        bool any_open = false;
        unsigned open_mask = 0;
        for (int p = 0; p < SCHED_PLATFORMS; p++) {
            if (platform_open(s, p, now)) {
                any_open = true;
                open_mask |= 1u << p;
            }
        }
        if (open_mask != s->open_platforms) {
            /* A platform came back (a sender connected, a rest ended): its due rows
             * were left out of the last look at what is due. */
            s->open_platforms = open_mask;
            s->next_due = 0;
        }
        int room = s->cfg.max_in_flight - s->in_flight;
        if (room <= 0) {
            s->claim_waits_for_results = true;
            return;
        }
        /* An early return leaves claim_waits_for_results as the last plan set it: a turn
         * of the loop between a plan blocked on in-flight room and the results that free
         * it must not make those results forget to ask for a new plan. */
        if (now < s->next_due || !any_open) {
            return;
        }
        struct pace_campaign *cs = NULL;
        int n = survey(s, now, &cs);
        if (n < 0) {
            s->next_due = now + 1000;
            return;
        }
        int64_t wake;
        int limit = room < s->cfg.batch ? room : s->cfg.batch;
        int planned = pacer_plan(s->pacer, cs, (size_t)n, limit, now, &wake);
        metric_set(sched_metrics.bots_paused, pacer_paused_bots(s->pacer, now));
        s->next_due = wake;
        /* Rows left for want of in-flight room wait for a result, and results wake the
         * loop (results.c asks for a new plan then). */
        s->claim_waits_for_results = pacer_in_flight_blocked(s->pacer);
        int claimed = planned > 0 ? claim_once(s, cs, (size_t)n, now) : 0;
        free(cs);
        if (claimed < 0) {
            s->next_due = now + 1000;
            return;
        }
        metric_set(sched_metrics.in_flight, s->in_flight);
        if (claimed == 0 || wake > clock_mono_ms()) {
            return;
        }
    }
}
