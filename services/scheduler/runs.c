/* runs.c: campaign runs, from creation to a loaded audience.
 *
 * A run is one occurrence of a campaign's schedule (schedule.h). When its earliest
 * recipient is due within BCRM_SCHEDULER_LOAD_AHEAD, the leader inserts the
 * campaign_runs row (UNIQUE (campaign_id, occurrence) makes that idempotent), then
 * reads the audience one page per turn of the event loop, so that claims and results
 * keep flowing while a large audience loads. Each page is one transaction: the
 * page's deliveries (one INSERT of unnested arrays, ON CONFLICT DO NOTHING) and the
 * cursor of the next page. A crash therefore resumes at the page after the last one
 * written, and a recipient is never written twice. The cursor only moves from the
 * value this page was read at, so two schedulers briefly both leading cannot both
 * advance it. The whole audience is never in memory: one page at a time.
 *
 * When the last page is in, the run becomes 'loaded', the campaign 'running' (its
 * deliveries become claimable), and first_due_at / last_due_at are set.
 *
 * A page that fails waits and is tried again (backing off up to a minute, or as long
 * as the platform's Retry-After says). A bot whose token is invalid has its
 * campaigns paused: nothing can be loaded or sent until someone fixes the bot and
 * resumes them.
 */
#include "audience.h"
#include "pgarray.h"
#include "sched.h"
#include "sched_metrics.h"
#include "schedule.h"

#include "bcrm/bus.h"
#include "bcrm/clock.h"
#include "bcrm/db.h"
#include "bcrm/log.h"
#include "bcrm/v1/query.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_MS 5000
/* Ids taken per page from an audience that lists them. */
#define LISTED_PAGE 1000
#define HOLDOFF_MIN_MS 1000
#define HOLDOFF_MAX_MS 60000
#define LOADING_RUNS_MAX 32

/* A run whose last page failed, and when it may be tried again. */
struct run_holdoff {
    char run_id[40];
    int64_t until; /* monotonic ms */
    int failures;
    struct run_holdoff *next;
};

static const char SCAN_SQL[] =
    "SELECT c.id, c.schedule::text, c.status,"
    " (extract(epoch FROM date_trunc('milliseconds', coalesce(c.scheduled_at, now())))"
    "   * 1000)::bigint,"
    " (SELECT (extract(epoch FROM max(r.occurrence)) * 1000)::bigint FROM campaign_runs r"
    "   WHERE r.campaign_id = c.id),"
    " (extract(epoch FROM now()) * 1000)::bigint"
    " FROM campaigns c"
    " WHERE c.status = 'scheduled' OR (c.status = 'running' AND c.schedule->>'mode' = 'recurring')";

static const char CREATE_RUN_SQL[] =
    "INSERT INTO campaign_runs (campaign_id, occurrence)"
    " VALUES ($1::uuid, to_timestamp($2::bigint / 1000.0))"
    " ON CONFLICT (campaign_id, occurrence) DO NOTHING RETURNING id";

static const char LOADING_RUNS_SQL[] =
    "SELECT r.id, r.campaign_id, (extract(epoch FROM r.occurrence) * 1000)::bigint,"
    " r.audience_cursor, c.org_id, c.bot_id, c.audience::text, c.schedule::text, b.platform,"
    " b.bot_user_id, (extract(epoch FROM now()) * 1000)::bigint"
    " FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id JOIN bots b ON b.id = c.bot_id"
    " WHERE r.status = 'loading' AND c.status IN ('scheduled', 'running')"
    " ORDER BY r.created_at LIMIT " /* LOADING_RUNS_MAX */ "32";

enum {
    RUN_ID,
    RUN_CAMPAIGN,
    RUN_OCCURRENCE,
    RUN_CURSOR,
    RUN_ORG,
    RUN_BOT,
    RUN_AUDIENCE,
    RUN_SCHEDULE,
    RUN_PLATFORM,
    RUN_BOT_USER,
    RUN_NOW,
};

static const char LOCK_CAMPAIGN_SQL[] = "SELECT status FROM campaigns WHERE id = $1 FOR SHARE";

static const char ADVANCE_CURSOR_SQL[] =
    "UPDATE campaign_runs SET audience_cursor = $3"
    " WHERE id = $1 AND status = 'loading' AND audience_cursor IS NOT DISTINCT FROM $2";

static const char INSERT_DELIVERIES_SQL[] =
    "INSERT INTO deliveries (org_id, campaign_id, run_id, recipient_id, due_at, status,"
    " last_error)"
    " SELECT $1::uuid, $2::uuid, $3::uuid, u.rid, to_timestamp(u.due / 1000.0), u.st,"
    "   CASE WHEN u.st = 'skipped' THEN 'time_passed' END"
    " FROM unnest($4::text[], $5::bigint[], $6::text[]) AS u(rid, due, st)"
    " ON CONFLICT (run_id, recipient_id) DO NOTHING";

static const char FINISH_RUN_SQL[] =
    "WITH run AS ("
    " UPDATE campaign_runs SET status = 'loaded', loaded_at = now(), audience_cursor = NULL"
    " WHERE id = $1 AND status = 'loading' RETURNING occurrence"
    "), span AS ("
    " SELECT min(due_at) AS lo, max(due_at) AS hi, count(*) AS n FROM deliveries"
    " WHERE run_id = $1"
    ")"
    "UPDATE campaigns c SET"
    " status = CASE WHEN c.status = 'scheduled' THEN 'running' ELSE c.status END,"
    " first_due_at = least(c.first_due_at, coalesce(span.lo, run.occurrence)),"
    " last_due_at = greatest(c.last_due_at, coalesce(span.hi, run.occurrence)),"
    " updated_at = now()"
    " FROM run, span WHERE c.id = $2"
    " RETURNING c.status, span.n";

int runs_prepare(PGconn *conn)
{
    if (db_prepare(conn, "scan_campaigns", SCAN_SQL, 0) != 0 ||
        db_prepare(conn, "create_run", CREATE_RUN_SQL, 2) != 0 ||
        db_prepare(conn, "loading_runs", LOADING_RUNS_SQL, 0) != 0 ||
        db_prepare(conn, "lock_campaign", LOCK_CAMPAIGN_SQL, 1) != 0 ||
        db_prepare(conn, "advance_cursor", ADVANCE_CURSOR_SQL, 3) != 0 ||
        db_prepare(conn, "insert_deliveries", INSERT_DELIVERIES_SQL, 6) != 0 ||
        db_prepare(conn, "finish_run", FINISH_RUN_SQL, 2) != 0) {
        return -1;
    }
    return 0;
}

/* ---- hold-offs ---- */

static struct run_holdoff *holdoff_find(struct scheduler *s, const char *run_id)
{
    for (struct run_holdoff *h = s->holdoffs; h != NULL; h = h->next) {
        if (strcmp(h->run_id, run_id) == 0) {
            return h;
        }
    }
    return NULL;
}

static void holdoff_clear(struct scheduler *s, const char *run_id)
{
    for (struct run_holdoff **pp = &s->holdoffs; *pp != NULL; pp = &(*pp)->next) {
        if (strcmp((*pp)->run_id, run_id) == 0) {
            struct run_holdoff *dead = *pp;
            *pp = dead->next;
            free(dead);
            return;
        }
    }
}

/* Makes the run wait: at least wait_ms, else doubling from a second up to a minute. */
static void holdoff_set(struct scheduler *s, const char *run_id, int64_t wait_ms)
{
    struct run_holdoff *h = holdoff_find(s, run_id);
    if (h == NULL) {
        h = calloc(1, sizeof(*h));
        if (h == NULL) {
            return;
        }
        snprintf(h->run_id, sizeof(h->run_id), "%s", run_id);
        h->next = s->holdoffs;
        s->holdoffs = h;
    }
    int64_t backoff = HOLDOFF_MIN_MS << (h->failures < 6 ? h->failures : 6);
    if (backoff > HOLDOFF_MAX_MS) {
        backoff = HOLDOFF_MAX_MS;
    }
    h->failures++;
    h->until = clock_mono_ms() + (wait_ms > backoff ? wait_ms : backoff);
}

/* Forgets the hold-offs of runs no longer loading (finished elsewhere, cancelled). */
static void holdoff_prune(struct scheduler *s, const PGresult *loading)
{
    for (struct run_holdoff **pp = &s->holdoffs; *pp != NULL;) {
        bool found = false;
        for (int i = 0; i < PQntuples(loading) && !found; i++) {
            found = strcmp(PQgetvalue(loading, i, RUN_ID), (*pp)->run_id) == 0;
        }
        if (found) {
            pp = &(*pp)->next;
        } else {
            struct run_holdoff *dead = *pp;
            *pp = dead->next;
            free(dead);
        }
    }
}

void runs_free(struct scheduler *s)
{
    while (s->holdoffs != NULL) {
        struct run_holdoff *next = s->holdoffs->next;
        free(s->holdoffs);
        s->holdoffs = next;
    }
}

/* ---- creating runs ---- */

static int parse_schedule_text(const char *text, struct schedule *out, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *obj = json_loads(text, 0, &jerr);
    int rv = schedule_parse(obj, out, err, errlen);
    json_decref(obj);
    return rv;
}

void runs_scan(struct scheduler *s)
{
    int64_t mono = clock_mono_ms();
    if (!s->campaigns_dirty && mono < s->next_scan) {
        return;
    }
    s->campaigns_dirty = false;
    s->next_scan = mono + SCAN_MS;
    s->next_load = 0; /* a run may be waiting, created here or by an earlier leader */

    PGresult *res = db_query_prepared(s->work, "scan_campaigns", 0, NULL);
    if (res == NULL) {
        return;
    }
    struct pgarray finished;
    pgarray_init(&finished);
    for (int i = 0; i < PQntuples(res); i++) {
        const char *campaign_id = PQgetvalue(res, i, 0);
        struct schedule sch;
        char err[160];
        if (parse_schedule_text(PQgetvalue(res, i, 1), &sch, err, sizeof(err)) != 0) {
            log_warn("campaign schedule not understood", "{s:s, s:s}", "campaign_id", campaign_id,
                     "error", err);
            continue;
        }
        int64_t scheduled_at = strtoll(PQgetvalue(res, i, 3), NULL, 10);
        int64_t last = PQgetisnull(res, i, 4) ? -1 : strtoll(PQgetvalue(res, i, 4), NULL, 10);
        int64_t now = strtoll(PQgetvalue(res, i, 5), NULL, 10);
        struct schedule_run run;
        int found = schedule_next_run(&sch, scheduled_at, last, now, &run);
        if (found < 0) {
            log_warn("campaign schedule not understood", "{s:s, s:s}", "campaign_id", campaign_id,
                     "error", "recurrence rule cannot be evaluated");
            continue;
        }
        if (found == 0) {
            if (sch.mode == SCHEDULE_RECURRING && strcmp(PQgetvalue(res, i, 2), "running") == 0) {
                pgarray_add_str(&finished, campaign_id, 0);
            }
            continue;
        }
        if (run.earliest_due_ms - s->cfg.load_ahead_ms > now) {
            /* Not yet: its window opens later. Look again then (the scan runs at least
             * every SCAN_MS anyway). */
            continue;
        }
        char occurrence[24];
        snprintf(occurrence, sizeof(occurrence), "%lld", (long long)run.occurrence_ms);
        const char *params[] = {campaign_id, occurrence};
        PGresult *created = db_query_prepared(s->work, "create_run", 2, params);
        if (created != NULL && PQntuples(created) > 0) {
            char due[32];
            clock_format_rfc3339(run.earliest_due_ms, due);
            log_info("run created", "{s:s, s:s, s:s}", "campaign_id", campaign_id, "run_id",
                     PQgetvalue(created, 0, 0), "first_due_at", due);
        }
        PQclear(created);
    }
    PQclear(res);
    if (finished.count > 0) {
        lifecycle_complete(s, pgarray_text(&finished));
    }
    pgarray_free(&finished);
}

/* ---- loading pages ---- */

/* The recipients of one page, ready for the INSERT. */
struct page {
    struct pgarray recipients, dues, statuses;
    int count;
};

static void page_init(struct page *p)
{
    pgarray_init(&p->recipients);
    pgarray_init(&p->dues);
    pgarray_init(&p->statuses);
    p->count = 0;
}

static void page_free(struct page *p)
{
    pgarray_free(&p->recipients);
    pgarray_free(&p->dues);
    pgarray_free(&p->statuses);
}

static void page_add(struct page *p, const struct schedule *sch, const struct schedule_run *run,
                     const char *recipient, const struct recipient_zone *zone, int64_t now)
{
    int64_t due;
    int rv = schedule_recipient_due(sch, run, zone, now, &due);
    if (rv < 0) {
        return; /* cannot happen: the fallback zone was checked when parsing */
    }
    pgarray_add_str(&p->recipients, recipient, 0);
    pgarray_add_int(&p->dues, due);
    pgarray_add_str(&p->statuses, rv == 1 ? "pending" : "skipped", 0);
    p->count++;
}

/* Everything a page needs to know about its run, borrowed from the loading_runs row. */
struct run_row {
    const char *run_id, *campaign_id, *org_id, *bot_id, *cursor, *bot_user_id;
    int platform;
    int64_t now;
    struct schedule schedule;
    struct schedule_run run;
    struct audience audience;
};

/* Writes one page and moves the cursor, in one transaction. next_cursor NULL: the
 * last page. Returns 0, or -1 if nothing was written. */
static int write_page(struct scheduler *s, const struct run_row *r, struct page *page,
                      const char *next_cursor)
{
    if (db_begin(s->work) != 0) {
        return -1;
    }
    const char *lock_params[] = {r->campaign_id};
    PGresult *res = db_query_prepared(s->work, "lock_campaign", 1, lock_params);
    if (res == NULL) {
        goto fail;
    }
    bool live = PQntuples(res) == 1 && (strcmp(PQgetvalue(res, 0, 0), "scheduled") == 0 ||
                                        strcmp(PQgetvalue(res, 0, 0), "running") == 0);
    PQclear(res);
    if (!live) {
        db_rollback(s->work); /* paused or cancelled meanwhile: write nothing */
        return -1;
    }
    const char *cursor_params[] = {r->run_id, r->cursor, next_cursor};
    res = db_query_prepared(s->work, "advance_cursor", 3, cursor_params);
    if (res == NULL) {
        goto fail;
    }
    bool moved = atoi(PQcmdTuples(res)) == 1;
    PQclear(res);
    if (!moved) {
        log_warn("audience page discarded", "{s:s, s:s}", "run_id", r->run_id, "reason",
                 "the run moved on elsewhere");
        db_rollback(s->work);
        return -1;
    }
    int inserted = 0;
    if (page->count > 0) {
        const char *params[] = {r->org_id,
                                r->campaign_id,
                                r->run_id,
                                pgarray_text(&page->recipients),
                                pgarray_text(&page->dues),
                                pgarray_text(&page->statuses)};
        res = db_query_prepared(s->work, "insert_deliveries", 6, params);
        if (res == NULL) {
            goto fail;
        }
        inserted = atoi(PQcmdTuples(res));
        PQclear(res);
    }
    long long total = -1;
    if (next_cursor == NULL) {
        const char *params[] = {r->run_id, r->campaign_id};
        res = db_query_prepared(s->work, "finish_run", 2, params);
        if (res == NULL) {
            goto fail;
        }
        if (PQntuples(res) == 1) {
            total = atoll(PQgetvalue(res, 0, 1));
        }
        PQclear(res);
    }
    if (db_commit(s->work) != 0) {
        db_rollback(s->work);
        return -1;
    }
    metric_add(sched_metrics.deliveries_loaded, inserted);
    if (next_cursor == NULL) {
        log_info("run loaded", "{s:s, s:s, s:I}", "campaign_id", r->campaign_id, "run_id",
                 r->run_id, "deliveries", (json_int_t)total);
        s->next_due = 0;
    }
    return 0;
fail:
    db_rollback(s->work);
    return -1;
}

/* A page of an audience that lists its ids (users or channels). The cursor is the
 * offset of the next id, as "offset:N". */
static void load_listed_page(struct scheduler *s, const struct run_row *r)
{
    size_t offset = 0;
    if (r->cursor != NULL && sscanf(r->cursor, "offset:%zu", &offset) != 1) {
        offset = 0;
    }
    const json_t *ids = r->audience.listed;
    size_t n = json_array_size(ids), end = offset + LISTED_PAGE < n ? offset + LISTED_PAGE : n;
    struct page page;
    page_init(&page);
    for (size_t i = offset; i < end; i++) {
        /* No zone is known for a listed id: the schedule's fallback applies. */
        page_add(&page, &r->schedule, &r->run, json_string_value(json_array_get(ids, i)), NULL,
                 r->now);
    }
    char next[32];
    snprintf(next, sizeof(next), "offset:%zu", end);
    if (write_page(s, r, &page, end < n ? next : NULL) == 0) {
        holdoff_clear(s, r->run_id);
    }
    page_free(&page);
}

static void on_query_failure(struct scheduler *s, const struct run_row *r,
                             const Bcrm__V1__PlatformReply *reply, const char *error)
{
    int64_t wait = 0;
    if (reply != NULL && reply->status == BCRM__V1__QUERY_STATUS__QUERY_TOKEN_INVALID) {
        /* Nothing can be read or sent for this bot until it is fixed: pause its
         * campaigns (this one included) and mark the bot, as a send would. */
        char bots[64];
        snprintf(bots, sizeof(bots), "{\"%s\"}", r->bot_id);
        log_warn("audience not readable: bot token invalid", "{s:s, s:s}", "campaign_id",
                 r->campaign_id, "bot_id", r->bot_id);
        lifecycle_bots_token_invalid(s, bots);
        holdoff_clear(s, r->run_id);
        return;
    }
    if (reply != NULL && reply->status == BCRM__V1__QUERY_STATUS__QUERY_RATE_LIMITED) {
        wait = reply->has_retry_after_ms ? reply->retry_after_ms : 0;
    }
    holdoff_set(s, r->run_id, wait);
    struct run_holdoff *h = holdoff_find(s, r->run_id);
    log_warn("audience page failed", "{s:s, s:s, s:s, s:I}", "campaign_id", r->campaign_id,
             "run_id", r->run_id, "error", error, "retry_in_ms",
             (json_int_t)(h != NULL ? h->until - clock_mono_ms() : 0));
}

/* A page of the platform's users (ListUsers through a sender). */
static void load_platform_page(struct scheduler *s, const struct run_row *r)
{
    if (r->platform < 0) {
        holdoff_set(s, r->run_id, HOLDOFF_MAX_MS);
        log_error("audience not readable", "{s:s, s:s}", "campaign_id", r->campaign_id, "error",
                  "unknown platform");
        return;
    }
    if (peers_count(&s->queriers[r->platform]) == 0) {
        /* A call would only wait out its timeout, and the loop with it. */
        on_query_failure(s, r, NULL, "no sender connected for the platform");
        return;
    }
    char request_id[33];
    bus_new_id(request_id);
    Bcrm__V1__ListUsers list = BCRM__V1__LIST_USERS__INIT;
    list.cursor = (char *)r->cursor;
    list.has_limit = true;
    list.limit = s->cfg.page_limit;
    Bcrm__V1__PlatformQuery query = BCRM__V1__PLATFORM_QUERY__INIT;
    query.request_id = request_id;
    query.org_id = (char *)r->org_id;
    query.bot_id = (char *)r->bot_id;
    query.query_case = BCRM__V1__PLATFORM_QUERY__QUERY_LIST_USERS;
    query.list_users = &list;

    Bcrm__V1__PlatformReply *reply = NULL;
    int rv =
        bus_call(s->query_sock[r->platform], &query.base, &bcrm__v1__platform_reply__descriptor,
                 (ProtobufCMessage **)&reply, (int)s->cfg.query_timeout_ms);
    if (rv != 0) {
        on_query_failure(s, r, NULL, nng_strerror(rv));
        return;
    }
    if (reply->status != BCRM__V1__QUERY_STATUS__QUERY_OK ||
        strcmp(reply->request_id, request_id) != 0) {
        on_query_failure(s, r, reply,
                         reply->error != NULL ? reply->error : "the sender refused the query");
        protobuf_c_message_free_unpacked(&reply->base, NULL);
        return;
    }
    const char *next =
        reply->next_cursor != NULL && reply->next_cursor[0] != '\0' ? reply->next_cursor : NULL;
    if (next != NULL && r->cursor != NULL && strcmp(next, r->cursor) == 0) {
        on_query_failure(s, r, NULL, "the platform returned the same cursor again");
        protobuf_c_message_free_unpacked(&reply->base, NULL);
        return;
    }
    struct page page;
    page_init(&page);
    for (size_t i = 0; i < reply->n_users; i++) {
        const Bcrm__V1__PlatformUser *u = reply->users[i];
        if (!audience_accepts(&r->audience, u, r->bot_user_id)) {
            continue;
        }
        struct recipient_zone zone = {
            .tzid = u->tz,
            .has_offset = u->has_tz_offset && (!u->has_has_tz || u->has_tz),
            .offset_s = u->tz_offset,
        };
        page_add(&page, &r->schedule, &r->run, u->id, &zone, r->now);
    }
    if (write_page(s, r, &page, next) == 0) {
        holdoff_clear(s, r->run_id);
        log_debug("audience page loaded", "{s:s, s:i, s:i}", "run_id", r->run_id, "users",
                  (int)reply->n_users, "recipients", page.count);
    }
    page_free(&page);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
}

static void load_page(struct scheduler *s, const PGresult *res, int i)
{
    struct run_row r;
    memset(&r, 0, sizeof(r));
    r.run_id = PQgetvalue(res, i, RUN_ID);
    r.campaign_id = PQgetvalue(res, i, RUN_CAMPAIGN);
    r.org_id = PQgetvalue(res, i, RUN_ORG);
    r.bot_id = PQgetvalue(res, i, RUN_BOT);
    r.cursor = PQgetisnull(res, i, RUN_CURSOR) ? NULL : PQgetvalue(res, i, RUN_CURSOR);
    r.bot_user_id = PQgetisnull(res, i, RUN_BOT_USER) ? NULL : PQgetvalue(res, i, RUN_BOT_USER);
    r.platform = sched_platform_from_name(PQgetvalue(res, i, RUN_PLATFORM));
    r.now = strtoll(PQgetvalue(res, i, RUN_NOW), NULL, 10);

    char err[160];
    json_error_t jerr;
    json_t *audience = json_loads(PQgetvalue(res, i, RUN_AUDIENCE), 0, &jerr);
    int64_t occurrence = strtoll(PQgetvalue(res, i, RUN_OCCURRENCE), NULL, 10);
    if (parse_schedule_text(PQgetvalue(res, i, RUN_SCHEDULE), &r.schedule, err, sizeof(err)) != 0 ||
        schedule_run_at(&r.schedule, occurrence, &r.run) != 0) {
        goto unusable;
    }
    bool needs_zones = r.schedule.mode == SCHEDULE_LOCAL ||
                       (r.schedule.mode == SCHEDULE_RECURRING && r.schedule.local);
    if (audience_parse(audience, needs_zones, &r.audience, err, sizeof(err)) != 0) {
        goto unusable;
    }
    if (r.audience.source == AUDIENCE_PLATFORM_USERS) {
        load_platform_page(s, &r);
    } else {
        load_listed_page(s, &r);
    }
    json_decref(audience);
    return;
unusable:
    /* The api validates campaigns, so this is a campaign from a newer api or a bug:
     * say so, and look again only now and then. */
    holdoff_set(s, r.run_id, HOLDOFF_MAX_MS);
    log_error("run cannot be loaded", "{s:s, s:s, s:s}", "campaign_id", r.campaign_id, "run_id",
              r.run_id, "error", err);
    json_decref(audience);
}

void runs_load_step(struct scheduler *s)
{
    int64_t now = clock_mono_ms();
    if (now < s->next_load) {
        return;
    }
    PGresult *res = db_query_prepared(s->work, "loading_runs", 0, NULL);
    if (res == NULL) {
        s->next_load = now + HOLDOFF_MIN_MS;
        return;
    }
    holdoff_prune(s, res);
    int pick = -1;
    int64_t next = SCHED_NEVER;
    for (int i = 0; i < PQntuples(res) && pick < 0; i++) {
        struct run_holdoff *h = holdoff_find(s, PQgetvalue(res, i, RUN_ID));
        if (h == NULL || h->until <= now) {
            pick = i;
        } else if (h->until < next) {
            next = h->until;
        }
    }
    if (pick >= 0) {
        load_page(s, res, pick);
        next = 0; /* more pages, or other runs: keep going next turn */
    }
    s->next_load = next;
    PQclear(res);
}
