/* results.c: applying the senders' outcomes.
 *
 * Every ResultBatch waiting on the PULL socket is received, and up to
 * RESULTS_PER_STATEMENT results are applied by one statement (arrays unnested into
 * rows). A result changes its delivery only if the delivery is still 'sending' under
 * the same lease (fencing): a duplicate, a result for a lease that expired, or one
 * from a replica that was presumed dead changes nothing and is counted as stale. The
 * one exception adds knowledge without risk: a 'sent' for a lease that expired turns
 * that 'unknown' into 'sent', since the platform id proves the send.
 *
 *   sent     -> 'sent', platform_message_id, sent_at
 *   failed   -> 'failed', last_error
 *   unknown  -> 'unknown', last_error (never retried automatically)
 *   retry    -> 'pending', next_attempt_at = now + backoff (full jitter, capped,
 *               at least Retry-After); a rate-limited or token-invalid try is not
 *               counted; after BCRM_SCHEDULER_MAX_ATTEMPTS counted tries, 'failed';
 *               'cancelled' if the campaign was cancelled meanwhile. A result
 *               with bot_token_invalid is never 'failed' (the token was refused,
 *               not the recipient): it is a retry, not counted, and its bot
 *               becomes token_invalid with its campaigns paused.
 *
 * Results are applied whether or not this scheduler leads: they are fenced, and
 * dropping one would turn a delivered message into an 'unknown'.
 */
#include "pacing.h"
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESULTS_PER_STATEMENT 4096
#define MAX_ERROR_BYTES 200
#define MAX_PLATFORM_ID_BYTES 200
/* Distinct rate-limited bots remembered per statement; more in one go is a storm that
 * the next statements will report too. */
#define MAX_LIMITED_BOTS 64

static const char APPLY_SQL[] =
    "WITH r AS ("
    " SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::text[],"
    "   $6::bigint[], $7::bool[], $8::bigint[])"
    "   AS r(id, lease_id, outcome, pmid, error, retry_after_ms, not_counted, sent_at_ms)"
    "), target AS ("
    " SELECT DISTINCT ON (r.id) r.*, d.attempts, d.status = 'sending' AS was_sending,"
    "   c.status AS campaign_status, c.bot_id"
    " FROM r JOIN deliveries d ON d.id = r.id AND d.lease_id = r.lease_id"
    " JOIN campaigns c ON c.id = d.campaign_id"
    " WHERE d.status = 'sending'"
    "   OR (d.status = 'unknown' AND d.last_error = 'lease_expired' AND r.outcome = 'sent')"
    " ORDER BY r.id"
    "), decided AS ("
    " SELECT t.*, CASE"
    "   WHEN t.outcome <> 'retry' THEN t.outcome"
    "   WHEN t.campaign_status = 'cancelled' THEN 'cancelled'"
    "   WHEN NOT t.not_counted AND t.attempts >= $9::int THEN 'failed'"
    "   ELSE 'pending' END AS new_status"
    " FROM target t"
    ")"
    "UPDATE deliveries d SET"
    " status = x.new_status,"
    " attempts = d.attempts - CASE WHEN x.outcome = 'retry' AND x.not_counted THEN 1 ELSE 0 END,"
    " next_attempt_at = CASE WHEN x.new_status = 'pending' THEN now() + greatest(x.retry_after_ms,"
    "   floor(random() * least($11::bigint, $10::bigint * power(2, greatest(d.attempts - 1, 0))))"
    "   ::bigint) * interval '1 millisecond' ELSE d.next_attempt_at END,"
    " platform_message_id = CASE WHEN x.outcome = 'sent' THEN x.pmid"
    "   ELSE d.platform_message_id END,"
    " sent_at = CASE WHEN x.outcome = 'sent'"
    "   THEN coalesce(to_timestamp(x.sent_at_ms / 1000.0), now()) ELSE d.sent_at END,"
    " last_error = CASE WHEN x.outcome = 'sent' THEN NULL"
    "   WHEN x.new_status = 'failed' AND x.outcome = 'retry'"
    "     THEN 'max_attempts: ' || coalesce(x.error, 'retry')"
    "   ELSE x.error END,"
    " lease_expires_at = NULL,"
    " updated_at = now()"
    " FROM decided x"
    " WHERE d.id = x.id AND d.lease_id = x.lease_id"
    "   AND (d.status = 'sending'"
    "     OR (d.status = 'unknown' AND d.last_error = 'lease_expired' AND x.outcome = 'sent'))"
    " RETURNING d.status, x.was_sending,"
    "   extract(epoch FROM d.sent_at - coalesce(d.lateness_from, d.due_at)), x.bot_id";

/* A 429 pauses the whole bot (pacing.h): recorded for every scheduler to see. */
static const char PAUSE_BOTS_SQL[] =
    "INSERT INTO scheduler_bot_pauses AS p (bot_id, paused_until)"
    " SELECT u.bot_id, now() + max(u.ms) * interval '1 millisecond'"
    " FROM unnest($1::uuid[], $2::bigint[]) AS u(bot_id, ms)"
    " WHERE EXISTS (SELECT 1 FROM bots b WHERE b.id = u.bot_id) GROUP BY u.bot_id"
    " ON CONFLICT (bot_id) DO UPDATE SET"
    " paused_until = greatest(p.paused_until, EXCLUDED.paused_until),"
    " pauses = p.pauses + 1, updated_at = now()";

/* A 429 without Retry-After rests its bot this long. */
#define RATE_LIMIT_DEFAULT_PAUSE_MS 1000

int results_prepare(PGconn *conn)
{
    if (db_prepare(conn, "apply_results", APPLY_SQL, 11) != 0 ||
        db_prepare(conn, "pause_bots", PAUSE_BOTS_SQL, 2) != 0) {
        return -1;
    }
    return 0;
}

/* One statement's worth of results, as array literals. */
struct result_arrays {
    struct pgarray ids, leases, outcomes, pmids, errors, retry_after, not_counted, sent_at;
    struct pgarray invalid_bots;
    /* 429s: the bots to pause, each once, with the longest Retry-After. */
    struct limited_bot {
        char bot_id[40];
        int64_t retry_after_ms;
    } limited[MAX_LIMITED_BOTS];
    int nlimited;
    int count;
    int invalid_count;
    int received[SCHED_RESULT_KINDS];
};

static void arrays_init(struct result_arrays *a)
{
    memset(a, 0, sizeof(*a));
    pgarray_init(&a->ids);
    pgarray_init(&a->leases);
    pgarray_init(&a->outcomes);
    pgarray_init(&a->pmids);
    pgarray_init(&a->errors);
    pgarray_init(&a->retry_after);
    pgarray_init(&a->not_counted);
    pgarray_init(&a->sent_at);
    pgarray_init(&a->invalid_bots);
}

static void arrays_reset(struct result_arrays *a)
{
    pgarray_reset(&a->ids);
    pgarray_reset(&a->leases);
    pgarray_reset(&a->outcomes);
    pgarray_reset(&a->pmids);
    pgarray_reset(&a->errors);
    pgarray_reset(&a->retry_after);
    pgarray_reset(&a->not_counted);
    pgarray_reset(&a->sent_at);
    pgarray_reset(&a->invalid_bots);
    a->count = 0;
    a->invalid_count = 0;
    a->nlimited = 0;
    memset(a->received, 0, sizeof(a->received));
}

static void arrays_free(struct result_arrays *a)
{
    pgarray_free(&a->ids);
    pgarray_free(&a->leases);
    pgarray_free(&a->outcomes);
    pgarray_free(&a->pmids);
    pgarray_free(&a->errors);
    pgarray_free(&a->retry_after);
    pgarray_free(&a->not_counted);
    pgarray_free(&a->sent_at);
    pgarray_free(&a->invalid_bots);
}

static void note_rate_limited(struct result_arrays *a, const char *bot_id, int64_t ms)
{
    for (int i = 0; i < a->nlimited; i++) {
        if (strcmp(a->limited[i].bot_id, bot_id) == 0) {
            if (ms > a->limited[i].retry_after_ms) {
                a->limited[i].retry_after_ms = ms;
            }
            return;
        }
    }
    if (a->nlimited < MAX_LIMITED_BOTS) {
        snprintf(a->limited[a->nlimited].bot_id, sizeof(a->limited[0].bot_id), "%s", bot_id);
        a->limited[a->nlimited++].retry_after_ms = ms;
    }
}

static void add_result(struct result_arrays *a, const Bcrm__V1__SendResult *r)
{
    if (r->lease_id.len != 16) {
        log_warn("result dropped", "{s:s, s:I}", "reason", "lease id is not 16 bytes",
                 "delivery_id", (json_int_t)r->delivery_id);
        return;
    }
    char lease_hex[33];
    hex_encode(lease_hex, r->lease_id.data, 16);
    const char *outcome;
    enum sched_result_kind kind;
    const char *error = r->error;
    bool token_invalid = r->has_bot_token_invalid && r->bot_token_invalid;
    Bcrm__V1__Outcome given = r->outcome;
    if (token_invalid && given == BCRM__V1__OUTCOME__OUTCOME_FAILED) {
        /* The platform refused the bot's token, not the recipient: nothing was
         * delivered, so the row waits for the bot to be reconnected (an older
         * sender said "failed" here). */
        given = BCRM__V1__OUTCOME__OUTCOME_RETRY;
    }
    switch (given) {
    case BCRM__V1__OUTCOME__OUTCOME_SENT:
        outcome = "sent";
        kind = SCHED_RESULT_SENT;
        break;
    case BCRM__V1__OUTCOME__OUTCOME_RETRY:
        outcome = "retry";
        kind = SCHED_RESULT_RETRY;
        break;
    case BCRM__V1__OUTCOME__OUTCOME_FAILED:
        outcome = "failed";
        kind = SCHED_RESULT_FAILED;
        break;
    default:
        /* A result we cannot read might hide a send: the safe reading is unknown. */
        outcome = "unknown";
        kind = SCHED_RESULT_UNKNOWN;
        if (r->outcome != BCRM__V1__OUTCOME__OUTCOME_UNKNOWN && error == NULL) {
            error = "unspecified_outcome";
        }
        break;
    }
    a->received[kind]++;
    pgarray_add_int(&a->ids, r->delivery_id);
    pgarray_add_str(&a->leases, lease_hex, 0);
    pgarray_add_str(&a->outcomes, outcome, 0);
    pgarray_add_str(&a->pmids, r->platform_message_id, MAX_PLATFORM_ID_BYTES);
    pgarray_add_str(&a->errors, error, MAX_ERROR_BYTES);
    if (r->has_retry_after_ms && r->retry_after_ms > 0) {
        pgarray_add_int(&a->retry_after, r->retry_after_ms);
    } else {
        pgarray_add_null(&a->retry_after);
    }
    pgarray_add_bool(&a->not_counted, (r->has_rate_limited && r->rate_limited) || token_invalid);
    if (r->has_sent_at_ms && r->sent_at_ms > 0) {
        pgarray_add_int(&a->sent_at, r->sent_at_ms);
    } else {
        pgarray_add_null(&a->sent_at);
    }
    bool rate_limited = r->has_rate_limited && r->rate_limited;
    if (rate_limited && sched_looks_like_uuid(r->bot_id)) {
        note_rate_limited(a, r->bot_id,
                          r->has_retry_after_ms && r->retry_after_ms > 0
                              ? r->retry_after_ms
                              : RATE_LIMIT_DEFAULT_PAUSE_MS);
    }
    if (token_invalid && sched_looks_like_uuid(r->bot_id)) {
        pgarray_add_str(&a->invalid_bots, r->bot_id, 64);
        a->invalid_count++;
    }
    a->count++;
}

/* Pauses the bots that got 429s, here at once and for every scheduler in the database. */
static void pause_bots(struct scheduler *s, struct result_arrays *a)
{
    struct pgarray ids, ms;
    pgarray_init(&ids);
    pgarray_init(&ms);
    int64_t now = clock_mono_ms();
    for (int i = 0; i < a->nlimited; i++) {
        pgarray_add_str(&ids, a->limited[i].bot_id, 0);
        pgarray_add_int(&ms, a->limited[i].retry_after_ms);
        /* The pacer would learn the same from its next survey; telling it now saves a
         * claim that would only meet more 429s. */
        if (pacer_rate_limited(s->pacer, a->limited[i].bot_id, -1, a->limited[i].retry_after_ms,
                               now)) {
            sched_metrics_bot_paused(a->limited[i].bot_id);
            log_warn("bot rate limited: paused", "{s:s, s:I}", "bot_id", a->limited[i].bot_id,
                     "retry_after_ms", (json_int_t)a->limited[i].retry_after_ms);
        }
    }
    const char *params[] = {pgarray_text(&ids), pgarray_text(&ms)};
    PQclear(db_query_prepared(s->work, "pause_bots", 2, params));
    pgarray_free(&ids);
    pgarray_free(&ms);
}

static void apply(struct scheduler *s, struct result_arrays *a)
{
    if (a->count == 0) {
        return;
    }
    char max_attempts[16], base[24], cap[24];
    snprintf(max_attempts, sizeof(max_attempts), "%d", s->cfg.max_attempts);
    snprintf(base, sizeof(base), "%lld", (long long)s->cfg.retry_base_ms);
    snprintf(cap, sizeof(cap), "%lld", (long long)s->cfg.retry_cap_ms);
    const char *params[] = {pgarray_text(&a->ids),
                            pgarray_text(&a->leases),
                            pgarray_text(&a->outcomes),
                            pgarray_text(&a->pmids),
                            pgarray_text(&a->errors),
                            pgarray_text(&a->retry_after),
                            pgarray_text(&a->not_counted),
                            pgarray_text(&a->sent_at),
                            max_attempts,
                            base,
                            cap};
    PGresult *res = db_query_prepared(s->work, "apply_results", 11, params);
    if (res == NULL) {
        /* Not applied: the rows stay 'sending' and expire into 'unknown'. */
        log_error("results not applied", "{s:i}", "results", a->count);
        return;
    }
    int applied = PQntuples(res);
    int64_t now = clock_mono_ms();
    bool retried = false;
    for (int i = 0; i < applied; i++) {
        const char *status = PQgetvalue(res, i, 0);
        if (PQgetvalue(res, i, 1)[0] == 't') {
            s->in_flight--;
            pacer_completed(s->pacer, PQgetvalue(res, i, 3), 1, now);
        }
        if (strcmp(status, "sent") == 0 && !PQgetisnull(res, i, 2)) {
            metric_observe(sched_metrics.lateness, atof(PQgetvalue(res, i, 2)));
        } else if (strcmp(status, "pending") == 0) {
            retried = true;
        }
    }
    PQclear(res);
    for (int k = 0; k < SCHED_RESULT_KINDS; k++) {
        metric_add(sched_metrics.results[k], a->received[k]);
    }
    metric_add(sched_metrics.results[SCHED_RESULT_STALE], a->count - applied);
    metric_set(sched_metrics.in_flight, s->in_flight);
    if (retried || (applied > 0 && s->claim_waits_for_results)) {
        s->next_due = 0; /* a retry may be due soon, or room was freed: plan again */
    }
    if (a->nlimited > 0) {
        pause_bots(s, a);
    }
    if (a->invalid_count > 0) {
        lifecycle_bots_token_invalid(s, pgarray_text(&a->invalid_bots));
    }
    log_debug("results applied", "{s:i, s:i}", "received", a->count, "applied", applied);
}

void results_drain(struct scheduler *s)
{
    struct result_arrays a;
    arrays_init(&a);
    for (;;) {
        Bcrm__V1__ResultBatch *batch = NULL;
        int rv = bus_recv(s->results_sock, &bcrm__v1__result_batch__descriptor,
                          (ProtobufCMessage **)&batch, NNG_FLAG_NONBLOCK);
        if (rv == NNG_EAGAIN) {
            break;
        }
        if (rv != 0) {
            log_warn("result batch dropped", "{s:s}", "error", nng_strerror(rv));
            if (rv == NNG_EPROTO) {
                continue; /* one bad message; the socket is fine */
            }
            break;
        }
        for (size_t i = 0; i < batch->n_results; i++) {
            add_result(&a, batch->results[i]);
            if (a.count >= RESULTS_PER_STATEMENT) {
                apply(s, &a);
                arrays_reset(&a);
            }
        }
        protobuf_c_message_free_unpacked(&batch->base, NULL);
    }
    apply(s, &a);
    arrays_free(&a);
}
