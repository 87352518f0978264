/* claims.c: handing due deliveries to the senders.
 *
 * One statement claims a batch: it picks due pending rows of running campaigns
 * (FOR UPDATE SKIP LOCKED, so concurrent claimers never take the same row), marks
 * them 'sending' under a new lease id with an expiry, counts the attempt, and returns
 * everything a sender needs, joined from the campaign, the bot and, for Messenger,
 * the subscriber's last message time. The claim commits before any SendBatch leaves,
 * so a row is never on the bus without its lease in the database.
 *
 * Campaign rows are locked FOR SHARE SKIP LOCKED in the same statement: a pause or
 * cancel that the api is committing holds the campaign row, so its deliveries are
 * skipped rather than handed out, and once the api has committed the status is no
 * longer 'running'. Pausing therefore stops new sends at once, and since the claim
 * never waits for a lock it cannot deadlock with the api's cancel.
 *
 * The live campaigns are gathered first into an array, so that the pick is a plain
 * walk of the due index in order that stops after the batch (a join there makes
 * the planner sort every due row: 0.7 s per claim with a million rows due). Due rows
 * of paused campaigns are still walked past; an index on (campaign_id, due) would
 * remove that cost when large paused backlogs matter.
 *
 * A SendBatch that no sender takes within BCRM_SCHEDULER_SEND_TIMEOUT was provably
 * never handed out: its rows go back to 'pending' (fenced by the lease) instead of
 * expiring into 'unknown', and the platform rests for a moment.
 */
#include "sched.h"
#include "sched_metrics.h"

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
/* Claim statements per call, so results are applied between long bursts. */
#define MAX_CLAIMS_PER_RUN 16

static const char CLAIM_SQL[] =
    "WITH live AS MATERIALIZED ("
    " SELECT c.id FROM campaigns c JOIN bots b ON b.id = c.bot_id"
    " WHERE c.status = 'running' AND b.status = 'active' AND b.platform = ANY($4::text[])"
    " FOR SHARE OF c SKIP LOCKED"
    "), picked AS ("
    " SELECT d.id FROM deliveries d"
    " WHERE d.status = 'pending' AND coalesce(d.next_attempt_at, d.due_at) <= now()"
    "   AND d.campaign_id = ANY (ARRAY(SELECT id FROM live))"
    " ORDER BY coalesce(d.next_attempt_at, d.due_at)"
    " LIMIT $2"
    " FOR UPDATE SKIP LOCKED"
    "), claimed AS ("
    " SELECT d.id, (c.max_lateness_minutes IS NOT NULL AND"
    "   d.due_at + make_interval(mins => c.max_lateness_minutes) < now()) AS too_late"
    " FROM picked p JOIN deliveries d ON d.id = p.id JOIN campaigns c ON c.id = d.campaign_id"
    "), updated AS ("
    " UPDATE deliveries d SET"
    "   status = CASE WHEN cl.too_late THEN 'skipped' ELSE 'sending' END,"
    "   last_error = CASE WHEN cl.too_late THEN 'max_lateness' ELSE d.last_error END,"
    "   lease_id = CASE WHEN cl.too_late THEN d.lease_id ELSE $1::uuid END,"
    "   lease_expires_at = CASE WHEN cl.too_late THEN NULL"
    "     ELSE now() + $3::bigint * interval '1 millisecond' END,"
    "   attempts = d.attempts + CASE WHEN cl.too_late THEN 0 ELSE 1 END,"
    "   updated_at = now()"
    " FROM claimed cl WHERE d.id = cl.id"
    " RETURNING d.id, d.org_id, d.campaign_id, d.recipient_id, d.attempts, d.status"
    ")"
    "SELECT u.id, u.org_id, c.bot_id, u.recipient_id, u.attempts, u.campaign_id,"
    "  b.platform, c.message->>'text',"
    "  CASE WHEN jsonb_typeof(c.message->'blocks') = 'array'"
    "    THEN (c.message->'blocks')::text END,"
    "  c.messenger->>'messaging_type', c.messenger->>'tag',"
    "  (extract(epoch FROM ms.last_message_at) * 1000)::bigint, u.status"
    " FROM updated u"
    " JOIN campaigns c ON c.id = u.campaign_id"
    " JOIN bots b ON b.id = c.bot_id"
    " LEFT JOIN messenger_subscribers ms ON b.platform = 'messenger' AND ms.bot_id = b.id"
    "   AND ms.psid = u.recipient_id"
    " ORDER BY b.platform, u.id";

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
    COL_STATUS,
};

/* Rows handed out but not taken: back to pending, the attempt not counted. */
static const char PUT_BACK_SQL[] =
    "UPDATE deliveries SET status = 'pending', attempts = attempts - 1,"
    " lease_expires_at = NULL, updated_at = now()"
    " WHERE id = ANY($1::bigint[]) AND lease_id = $2::uuid AND status = 'sending'";

int claims_prepare(PGconn *conn)
{
    if (db_prepare(conn, "claim", CLAIM_SQL, 4) != 0 ||
        db_prepare(conn, "put_back", PUT_BACK_SQL, 2) != 0) {
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

/* Puts rows [from, to) of res back to pending. */
static void put_back(struct scheduler *s, const PGresult *res, int from, int to,
                     const char *lease_hex)
{
    struct pgarray ids;
    pgarray_init(&ids);
    for (int i = from; i < to; i++) {
        if (strcmp(PQgetvalue(res, i, COL_STATUS), "sending") == 0) {
            pgarray_add_int(&ids, strtoll(PQgetvalue(res, i, COL_ID), NULL, 10));
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
    int i = from;
    while (i < to) {
        Bcrm__V1__SendBatch batch = BCRM__V1__SEND_BATCH__INIT;
        batch.jobs = job_ptrs;
        int start = i;
        for (; i < to && (int)batch.n_jobs < per; i++) {
            if (strcmp(PQgetvalue(res, i, COL_STATUS), "sending") != 0) {
                continue; /* skipped for lateness: nothing to send */
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

/* One claim statement and its sends. Returns the number of rows claimed, -1 on a
 * database error. */
static int claim_once(struct scheduler *s, int limit, int64_t now)
{
    char lease_hex[33];
    uint8_t lease[16];
    bus_new_id(lease_hex);
    hex_decode(lease, sizeof(lease), lease_hex);

    struct pgarray platforms;
    claims_open_platforms(s, now, &platforms);
    char limit_text[16], lease_ms[24];
    snprintf(limit_text, sizeof(limit_text), "%d", limit);
    snprintf(lease_ms, sizeof(lease_ms), "%lld", (long long)s->cfg.lease_ms);
    const char *params[] = {lease_hex, limit_text, lease_ms, pgarray_text(&platforms)};
    PGresult *res = db_query_prepared(s->work, "claim", 4, params);
    pgarray_free(&platforms);
    if (res == NULL) {
        return -1;
    }
    int rows = PQntuples(res);
    int sending = 0;
    for (int i = 0; i < rows; i++) {
        if (strcmp(PQgetvalue(res, i, COL_STATUS), "sending") == 0) {
            sending++;
        }
    }
    s->in_flight += sending;
    metric_add(sched_metrics.claimed, sending);
    metric_add(sched_metrics.skipped_late, rows - sending);

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
        if (now < s->next_due || !any_open || room <= 0) {
            return;
        }
        int limit = room < s->cfg.batch ? room : s->cfg.batch;
        int claimed = claim_once(s, limit, now);
        if (claimed < 0) {
            return;
        }
        metric_set(sched_metrics.in_flight, s->in_flight);
        if (claimed < limit) {
            /* Nothing more is due now: sleep until the next due row. */
            lifecycle_refresh_next_due(s);
            return;
        }
    }
}
