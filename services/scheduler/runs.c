/* runs.c: campaign runs, from creation to a loaded audience.
 *
 * A run is one occurrence of a campaign's schedule (schedule.h). When its earliest
 * recipient is due within BCRM_SCHEDULER_LOAD_AHEAD (26 h), the leader inserts the
 * campaign_runs row (UNIQUE (campaign_id, occurrence) makes that idempotent), then
 * reads the audience live from the platform, page by page, without blocking the loop
 * (audience_call.h), so that claims and results keep flowing while a large audience
 * loads. Each page is one transaction: the page's deliveries (one INSERT of unnested
 * arrays, ON CONFLICT DO NOTHING) and the cursor of the next page. A crash therefore
 * resumes at the page after the last one written, and a recipient is never written
 * twice. The cursor only moves from the value this page was read at, so two
 * schedulers briefly both leading cannot both advance it. The whole audience is never
 * in memory: one page at a time.
 *
 * Passes: nobody's audience membership is read earlier than the load-ahead before
 * their due time. A pass reads the whole list and takes the recipients due after the
 * last pass's horizon (loaded_until) and up to its own (its start plus the
 * load-ahead). A now/at run needs one pass; a local-time run spans 26 h of zones (50 h
 * with next_day), so a new pass starts every BCRM_SCHEDULER_LOAD_PASS (1 h) until a
 * horizon reaches the run's last due time. Each pass reads the list as it is then:
 * people who joined since the campaign was made are in, people who left are out.
 *
 * After the first pass the campaign is 'running' (its deliveries become claimable)
 * and first_due_at / last_due_at are kept up to date; after the last one the run is
 * 'loaded'. Deliveries get their send window here (window.h): one due outside it waits
 * for the opening.
 *
 * A members_of audience first reads the members of its channels (ListChannelMembers,
 * page by page) into a member set, then its users as above, each kept only if a member
 * (audience.h). The set holds ids only, lives for one pass of one run, and is bounded by
 * BCRM_SCHEDULER_MEMBERS_MAX (member_set.h): Slack lists members and users in no
 * common order, so the ids of one side must be at hand while the other is read, and
 * the members side (ids without profiles) is the smaller. It is not saved: after a
 * crash it is read again before the users resume at audience_cursor.
 *
 * Channels with more members than the set may hold make the run wait an hour (the bound
 * changes only with a restart), and the campaign's "problem" (campaigns.problem, shown
 * by the api) says so, naming the variable, until a pass gets past the members.
 *
 * A page that fails waits and is tried again (backing off up to a minute, or as long
 * as the platform's Retry-After says). A bot whose token is invalid has its
 * campaigns paused: nothing can be loaded or sent until someone fixes the bot and
 * resumes them.
 */
#include "audience.h"
#include "audience_call.h"
#include "pgarray.h"
#include "sched.h"
#include "sched_metrics.h"
#include "schedule.h"
#include "window.h"

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
/* A run whose channels have more members than the set may hold waits this long before
 * it is tried again (the bound changes only with a restart). */
#define MEMBERS_TOO_MANY_WAIT_MS 3600000

/* The members of a members_of run's channels, read for one pass (see above). */
struct members_load {
    char run_id[40];
    int64_t horizon; /* the pass they are read for */
    struct member_set *set;
    size_t channel; /* the index in members_of being read */
    char *cursor;   /* that channel's next page; NULL: its first */
    bool complete;  /* every channel read */
};

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

/* Runs with a page to read now: a pass in progress, or one due to start. */
static const char LOADING_RUNS_SQL[] =
    "SELECT r.id, r.campaign_id, (extract(epoch FROM r.occurrence) * 1000)::bigint,"
    " r.audience_cursor, c.org_id, c.bot_id, c.audience::text, c.schedule::text, b.platform,"
    " b.bot_user_id, (extract(epoch FROM now()) * 1000)::bigint, c.send_window::text,"
    " (extract(epoch FROM r.pass_horizon) * 1000)::bigint,"
    " (extract(epoch FROM r.loaded_until) * 1000)::bigint,"
    " (extract(epoch FROM r.pass_started_at + $1::bigint * interval '1 millisecond' - now())"
    "   * 1000)::bigint"
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
    RUN_SEND_WINDOW,
    RUN_PASS_HORIZON,
    RUN_LOADED_UNTIL,
    RUN_NEXT_PASS_IN,
};

/* Sets (or, with NULL, clears) what the campaign's owner should know about why it
 * does not go on; written only when it changes. */
static const char CAMPAIGN_PROBLEM_SQL[] =
    "UPDATE campaigns SET problem = $2 WHERE id = $1::uuid AND problem IS DISTINCT FROM $2";

/* Starts a pass: its horizon is now plus the load-ahead. */
static const char START_PASS_SQL[] =
    "UPDATE campaign_runs SET pass_horizon = now() + $2::bigint * interval '1 millisecond',"
    " pass_started_at = now()"
    " WHERE id = $1 AND status = 'loading' AND audience_cursor IS NULL"
    "   AND pass_horizon IS NOT DISTINCT FROM loaded_until"
    " RETURNING (extract(epoch FROM pass_horizon) * 1000)::bigint";

static const char LOCK_CAMPAIGN_SQL[] = "SELECT status FROM campaigns WHERE id = $1 FOR SHARE";

static const char ADVANCE_CURSOR_SQL[] =
    "UPDATE campaign_runs SET audience_cursor = $3"
    " WHERE id = $1 AND status = 'loading' AND audience_cursor IS NOT DISTINCT FROM $2";

static const char INSERT_DELIVERIES_SQL[] =
    "INSERT INTO deliveries (org_id, campaign_id, run_id, recipient_id, due_at, status,"
    " last_error, next_attempt_at, lateness_from, window_closes_at)"
    " SELECT $1::uuid, $2::uuid, $3::uuid, u.rid, to_timestamp(u.due / 1000.0), u.st,"
    "   CASE WHEN u.st = 'skipped' THEN 'time_passed' END,"
    "   to_timestamp(u.opens / 1000.0), to_timestamp(u.opens / 1000.0),"
    "   to_timestamp(u.closes / 1000.0)"
    " FROM unnest($4::text[], $5::bigint[], $6::text[], $7::bigint[], $8::bigint[])"
    "   AS u(rid, due, st, opens, closes)"
    " ON CONFLICT (run_id, recipient_id) DO NOTHING";

/* The end of a pass: its horizon becomes loaded_until; the run is 'loaded' when that
 * covers its last due time ($3), and the campaign 'running' after any pass. */
static const char FINISH_RUN_SQL[] =
    "WITH run AS ("
    " UPDATE campaign_runs SET loaded_until = pass_horizon, audience_cursor = NULL,"
    "   status = CASE WHEN pass_horizon >= to_timestamp($3::bigint / 1000.0)"
    "     THEN 'loaded' ELSE 'loading' END,"
    "   loaded_at = CASE WHEN pass_horizon >= to_timestamp($3::bigint / 1000.0)"
    "     THEN now() END"
    " WHERE id = $1 AND status = 'loading' RETURNING occurrence, status"
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
    " RETURNING c.status, span.n, run.status";

int runs_prepare(PGconn *conn)
{
    if (db_prepare(conn, "scan_campaigns", SCAN_SQL, 0) != 0 ||
        db_prepare(conn, "create_run", CREATE_RUN_SQL, 2) != 0 ||
        db_prepare(conn, "loading_runs", LOADING_RUNS_SQL, 1) != 0 ||
        db_prepare(conn, "start_pass", START_PASS_SQL, 2) != 0 ||
        db_prepare(conn, "lock_campaign", LOCK_CAMPAIGN_SQL, 1) != 0 ||
        db_prepare(conn, "advance_cursor", ADVANCE_CURSOR_SQL, 3) != 0 ||
        db_prepare(conn, "insert_deliveries", INSERT_DELIVERIES_SQL, 8) != 0 ||
        db_prepare(conn, "finish_run", FINISH_RUN_SQL, 3) != 0 ||
        db_prepare(conn, "campaign_problem", CAMPAIGN_PROBLEM_SQL, 2) != 0) {
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

static void run_row_free(struct run_row *r);

static void campaign_problem(struct scheduler *s, const char *campaign_id, const char *problem)
{
    const char *params[] = {campaign_id, problem};
    PQclear(db_query_prepared(s->work, "campaign_problem", 2, params));
}

static void members_free(struct scheduler *s)
{
    if (s->members == NULL) {
        return;
    }
    member_set_free(s->members->set);
    free(s->members->cursor);
    free(s->members);
    s->members = NULL;
}

/* Forgets the member set of a run no longer loading. */
static void members_prune(struct scheduler *s, const PGresult *loading)
{
    if (s->members == NULL) {
        return;
    }
    for (int i = 0; i < PQntuples(loading); i++) {
        if (strcmp(PQgetvalue(loading, i, RUN_ID), s->members->run_id) == 0) {
            return;
        }
    }
    members_free(s);
}

void runs_free(struct scheduler *s)
{
    audience_call_free(s->audience_call);
    s->audience_call = NULL;
    run_row_free(s->calling);
    s->calling = NULL;
    members_free(s);
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

#define NO_INSTANT INT64_MIN

/* A loading run, with its own copies of the row's text, so that it outlives the query
 * while a platform call is in flight. Free with run_row_free(). */
struct run_row {
    char *run_id, *campaign_id, *org_id, *bot_id, *cursor, *bot_user_id;
    char *audience_text, *schedule_text, *window_text;
    int platform;
    int64_t db_now;       /* wall ms by the database when the row was read */
    int64_t read_at_mono; /* and by our monotonic clock */
    int64_t occurrence;
    int64_t horizon, loaded_until; /* this pass takes due times in (loaded_until, horizon] */
    int64_t next_pass_in;          /* ms until the next pass may start (may be negative) */
    bool members_call;             /* the call in flight reads channel members, not users */
    json_t *audience_json;
    struct schedule schedule;
    struct schedule_run run;
    struct audience audience;
    struct send_window window;
};

static char *dup_or_null(const PGresult *res, int i, int col)
{
    return PQgetisnull(res, i, col) ? NULL : strdup(PQgetvalue(res, i, col));
}

static int64_t instant_or_none(const PGresult *res, int i, int col)
{
    return PQgetisnull(res, i, col) ? NO_INSTANT : strtoll(PQgetvalue(res, i, col), NULL, 10);
}

static void run_row_free(struct run_row *r)
{
    if (r == NULL) {
        return;
    }
    free(r->run_id);
    free(r->campaign_id);
    free(r->org_id);
    free(r->bot_id);
    free(r->cursor);
    free(r->bot_user_id);
    free(r->audience_text);
    free(r->schedule_text);
    free(r->window_text);
    json_decref(r->audience_json);
    free(r);
}

static struct run_row *run_row_copy(const PGresult *res, int i)
{
    struct run_row *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    r->run_id = strdup(PQgetvalue(res, i, RUN_ID));
    r->campaign_id = strdup(PQgetvalue(res, i, RUN_CAMPAIGN));
    r->org_id = strdup(PQgetvalue(res, i, RUN_ORG));
    r->bot_id = strdup(PQgetvalue(res, i, RUN_BOT));
    r->cursor = dup_or_null(res, i, RUN_CURSOR);
    r->bot_user_id = dup_or_null(res, i, RUN_BOT_USER);
    r->audience_text = strdup(PQgetvalue(res, i, RUN_AUDIENCE));
    r->schedule_text = strdup(PQgetvalue(res, i, RUN_SCHEDULE));
    r->window_text = dup_or_null(res, i, RUN_SEND_WINDOW);
    r->platform = sched_platform_from_name(PQgetvalue(res, i, RUN_PLATFORM));
    r->db_now = strtoll(PQgetvalue(res, i, RUN_NOW), NULL, 10);
    r->read_at_mono = clock_mono_ms();
    r->occurrence = strtoll(PQgetvalue(res, i, RUN_OCCURRENCE), NULL, 10);
    r->horizon = instant_or_none(res, i, RUN_PASS_HORIZON);
    r->loaded_until = instant_or_none(res, i, RUN_LOADED_UNTIL);
    r->next_pass_in = PQgetisnull(res, i, RUN_NEXT_PASS_IN)
                          ? 0
                          : strtoll(PQgetvalue(res, i, RUN_NEXT_PASS_IN), NULL, 10);
    if (r->run_id == NULL || r->campaign_id == NULL || r->org_id == NULL || r->bot_id == NULL ||
        r->audience_text == NULL || r->schedule_text == NULL) {
        run_row_free(r);
        return NULL;
    }
    return r;
}

/* Parses what the row's JSON says. 0, or -1 with err naming the field. */
static int run_row_parse(struct run_row *r, char *err, size_t errlen)
{
    json_error_t jerr;
    if (parse_schedule_text(r->schedule_text, &r->schedule, err, errlen) != 0 ||
        schedule_run_at(&r->schedule, r->occurrence, &r->run) != 0) {
        return -1;
    }
    json_t *window = r->window_text != NULL ? json_loads(r->window_text, 0, &jerr) : NULL;
    int rv = window_parse(window, &r->window, err, errlen);
    json_decref(window);
    if (rv != 0) {
        return -1;
    }
    r->audience_json = json_loads(r->audience_text, 0, &jerr);
    bool needs_zones = r->schedule.mode == SCHEDULE_LOCAL ||
                       (r->schedule.mode == SCHEDULE_RECURRING && r->schedule.local) ||
                       r->window.present;
    return audience_parse(r->audience_json, needs_zones, &r->audience, err, errlen);
}

/* A copy of r (parsed) that reads the page at cursor: the next page of the same pass,
 * asked for while this one is written. NULL when out of memory or unparsable. */
static struct run_row *run_row_at_cursor(const struct run_row *r, const char *cursor)
{
    struct run_row *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->run_id = strdup(r->run_id);
    c->campaign_id = strdup(r->campaign_id);
    c->org_id = strdup(r->org_id);
    c->bot_id = strdup(r->bot_id);
    c->cursor = strdup(cursor);
    c->bot_user_id = r->bot_user_id != NULL ? strdup(r->bot_user_id) : NULL;
    c->audience_text = strdup(r->audience_text);
    c->schedule_text = strdup(r->schedule_text);
    c->window_text = r->window_text != NULL ? strdup(r->window_text) : NULL;
    c->platform = r->platform;
    c->db_now = r->db_now;
    c->read_at_mono = r->read_at_mono;
    c->occurrence = r->occurrence;
    c->horizon = r->horizon;
    c->loaded_until = r->loaded_until;
    c->next_pass_in = r->next_pass_in;
    char err[160];
    if (c->run_id == NULL || c->campaign_id == NULL || c->org_id == NULL || c->bot_id == NULL ||
        c->cursor == NULL || c->audience_text == NULL || c->schedule_text == NULL ||
        run_row_parse(c, err, sizeof(err)) != 0) {
        run_row_free(c);
        return NULL;
    }
    c->audience.members = r->audience.members; /* the run's member set, complete by now */
    return c;
}

static bool pass_in_progress(const struct run_row *r)
{
    return r->horizon != NO_INSTANT &&
           (r->loaded_until == NO_INSTANT || r->horizon > r->loaded_until);
}

/* The recipients of one page, ready for the INSERT. */
struct page {
    struct pgarray recipients, dues, statuses, opens, closes;
    int count;
};

static void page_init(struct page *p)
{
    pgarray_init(&p->recipients);
    pgarray_init(&p->dues);
    pgarray_init(&p->statuses);
    pgarray_init(&p->opens);
    pgarray_init(&p->closes);
    p->count = 0;
}

static void page_free(struct page *p)
{
    pgarray_free(&p->recipients);
    pgarray_free(&p->dues);
    pgarray_free(&p->statuses);
    pgarray_free(&p->opens);
    pgarray_free(&p->closes);
}

/* Adds a recipient if their due time falls in this pass. */
static void page_add(struct page *p, const struct run_row *r, const char *recipient,
                     const struct recipient_zone *zone)
{
    int64_t now = r->db_now + (clock_mono_ms() - r->read_at_mono);
    int64_t due;
    int rv = schedule_recipient_due(&r->schedule, &r->run, zone, now, &due);
    if (rv < 0) {
        return; /* cannot happen: the fallback zone was checked when parsing */
    }
    if ((r->loaded_until != NO_INSTANT && due <= r->loaded_until) || due > r->horizon) {
        return; /* an earlier pass took it, or a later one will */
    }
    int64_t opens = NO_INSTANT, closes = NO_INSTANT;
    if (rv == 1 && r->window.present) {
        const char *fallback = r->schedule.fallback_tz[0] != '\0' ? r->schedule.fallback_tz : "UTC";
        struct schedule_zone z = schedule_recipient_zone(zone, fallback);
        if (window_place(&r->window, &z, due, &opens, &closes) != 0) {
            opens = closes = NO_INSTANT;
        } else if (opens <= due) {
            opens = NO_INSTANT; /* due inside its window: no wait */
        }
    }
    pgarray_add_str(&p->recipients, recipient, 0);
    pgarray_add_int(&p->dues, due);
    pgarray_add_str(&p->statuses, rv == 1 ? "pending" : "skipped", 0);
    if (opens != NO_INSTANT) {
        pgarray_add_int(&p->opens, opens);
    } else {
        pgarray_add_null(&p->opens);
    }
    if (closes != NO_INSTANT) {
        pgarray_add_int(&p->closes, closes);
    } else {
        pgarray_add_null(&p->closes);
    }
    p->count++;
}

/* Writes one page and moves the cursor, in one transaction. next_cursor NULL: the
 * pass's last page. Returns 0, or -1 if nothing was written. */
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
                                pgarray_text(&page->statuses),
                                pgarray_text(&page->opens),
                                pgarray_text(&page->closes)};
        res = db_query_prepared(s->work, "insert_deliveries", 8, params);
        if (res == NULL) {
            goto fail;
        }
        inserted = atoi(PQcmdTuples(res));
        PQclear(res);
    }
    long long total = -1;
    bool loaded = false;
    if (next_cursor == NULL) {
        char latest[24];
        snprintf(latest, sizeof(latest), "%lld", (long long)r->run.latest_due_ms);
        const char *params[] = {r->run_id, r->campaign_id, latest};
        res = db_query_prepared(s->work, "finish_run", 3, params);
        if (res == NULL) {
            goto fail;
        }
        if (PQntuples(res) == 1) {
            total = atoll(PQgetvalue(res, 0, 1));
            loaded = strcmp(PQgetvalue(res, 0, 2), "loaded") == 0;
        }
        PQclear(res);
    }
    if (db_commit(s->work) != 0) {
        db_rollback(s->work);
        return -1;
    }
    metric_add(sched_metrics.deliveries_loaded, inserted);
    if (next_cursor == NULL) {
        char horizon[32];
        clock_format_rfc3339(r->horizon, horizon);
        log_info(loaded ? "run loaded" : "audience pass finished", "{s:s, s:s, s:I, s:s}",
                 "campaign_id", r->campaign_id, "run_id", r->run_id, "deliveries",
                 (json_int_t)total, "horizon", horizon);
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
        page_add(&page, r, json_string_value(json_array_get(ids, i)), NULL);
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

/* Sends query for r on its platform's query socket; the reply comes back through
 * runs_load_step. Takes ownership of r. */
static void start_query(struct scheduler *s, struct run_row *r, Bcrm__V1__PlatformQuery *query)
{
    if (r->platform < 0) {
        holdoff_set(s, r->run_id, HOLDOFF_MAX_MS);
        log_error("audience not readable", "{s:s, s:s}", "campaign_id", r->campaign_id, "error",
                  "unknown platform");
        run_row_free(r);
        return;
    }
    if (peers_count(&s->queriers[r->platform]) == 0) {
        /* A call would only wait out its timeout. */
        on_query_failure(s, r, NULL, "no sender connected for the platform");
        run_row_free(r);
        return;
    }
    char request_id[33];
    bus_new_id(request_id);
    query->request_id = request_id;
    query->org_id = r->org_id;
    query->bot_id = r->bot_id;
    int rv = audience_call_start(s->audience_call, s->query_sock[r->platform], query,
                                 (int)s->cfg.query_timeout_ms, request_id);
    if (rv != 0) {
        on_query_failure(s, r, NULL, nng_strerror(rv));
        run_row_free(r);
        return;
    }
    s->calling = r;
}

/* Asks a sender for the next page of r's audience: of the members of the channel m
 * is at (ListChannelMembers), or of the platform's users (ListUsers) when m is
 * NULL. Takes ownership of r. */
static void start_page(struct scheduler *s, struct run_row *r, const struct members_load *m)
{
    Bcrm__V1__ListUsers users = BCRM__V1__LIST_USERS__INIT;
    Bcrm__V1__ListChannelMembers members = BCRM__V1__LIST_CHANNEL_MEMBERS__INIT;
    Bcrm__V1__PlatformQuery query = BCRM__V1__PLATFORM_QUERY__INIT;
    if (m != NULL) {
        members.channel_id =
            (char *)json_string_value(json_array_get(r->audience.members_of, m->channel));
        members.cursor = m->cursor;
        members.has_limit = true;
        members.limit = s->cfg.page_limit;
        query.query_case = BCRM__V1__PLATFORM_QUERY__QUERY_LIST_CHANNEL_MEMBERS;
        query.list_channel_members = &members;
    } else {
        users.cursor = r->cursor;
        users.has_limit = true;
        users.limit = s->cfg.page_limit;
        query.query_case = BCRM__V1__PLATFORM_QUERY__QUERY_LIST_USERS;
        query.list_users = &users;
    }
    r->members_call = m != NULL;
    start_query(s, r, &query);
}

/* The member set for r's pass: the one being read, or a new one (a new run or a new
 * pass reads the members again, live). NULL when out of memory. */
static struct members_load *members_for(struct scheduler *s, const struct run_row *r)
{
    struct members_load *m = s->members;
    if (m != NULL && strcmp(m->run_id, r->run_id) == 0 && m->horizon == r->horizon) {
        return m;
    }
    members_free(s);
    m = calloc(1, sizeof(*m));
    if (m == NULL || (m->set = member_set_new((size_t)s->cfg.members_max)) == NULL) {
        free(m);
        return NULL;
    }
    snprintf(m->run_id, sizeof(m->run_id), "%s", r->run_id);
    m->horizon = r->horizon;
    s->members = m;
    return m;
}

/* The reply to a page of members (start_page with m): its ids go into the set;
 * then the channel's next page, the next channel, or (all read) the users. */
static void finish_members_page(struct scheduler *s, struct run_row *r, int rv,
                                Bcrm__V1__PlatformReply *reply, const char *request_id)
{
    if (rv != 0) {
        on_query_failure(s, r, NULL, nng_strerror(rv));
        return;
    }
    struct members_load *m = s->members;
    if (m == NULL || strcmp(m->run_id, r->run_id) != 0 || m->horizon != r->horizon) {
        return; /* the run moved on meanwhile: the next turn starts again */
    }
    metric_inc(sched_metrics.audience_pages);
    if (strcmp(reply->request_id, request_id) != 0) {
        on_query_failure(s, r, NULL, "the reply is for another request");
        return;
    }
    const char *channel = json_string_value(json_array_get(r->audience.members_of, m->channel));
    char err[160];
    switch (audience_add_members(m->set, reply, err, sizeof(err))) {
    case MEMBERS_PAGE_REFUSED:
        on_query_failure(s, r, reply,
                         reply->error != NULL ? reply->error : "the sender refused the query");
        return;
    case MEMBERS_PAGE_TOO_MANY: {
        char problem[512];
        members_free(s);
        holdoff_set(s, r->run_id, MEMBERS_TOO_MANY_WAIT_MS);
        log_error("run cannot be loaded", "{s:s, s:s, s:s, s:s}", "campaign_id", r->campaign_id,
                  "run_id", r->run_id, "error", err, "hint",
                  "raise BCRM_SCHEDULER_MEMBERS_MAX and restart the scheduler");
        snprintf(problem, sizeof(problem),
                 "%s, the most one run may hold (BCRM_SCHEDULER_MEMBERS_MAX); nothing is sent "
                 "until the scheduler runs with a larger BCRM_SCHEDULER_MEMBERS_MAX (it tries "
                 "again every hour and at start)",
                 err);
        campaign_problem(s, r->campaign_id, problem);
        return;
    }
    case MEMBERS_PAGE_CHANNEL_GONE:
        log_warn("members_of channel not visible: no members from it", "{s:s, s:s}", "campaign_id",
                 r->campaign_id, "channel_id", channel);
        break; /* and no further page of it: next is NULL below */
    case MEMBERS_PAGE_ADDED:
        break;
    }
    holdoff_clear(s, r->run_id);
    const char *next = reply->status == BCRM__V1__QUERY_STATUS__QUERY_OK &&
                               reply->next_cursor != NULL && reply->next_cursor[0] != '\0'
                           ? reply->next_cursor
                           : NULL;
    if (next != NULL && m->cursor != NULL && strcmp(next, m->cursor) == 0) {
        on_query_failure(s, r, NULL, "the platform returned the same cursor again");
        return;
    }
    free(m->cursor);
    m->cursor = NULL;
    if (next != NULL) {
        if ((m->cursor = strdup(next)) == NULL) {
            members_free(s); /* read again from the start */
        }
        return;
    }
    m->channel++;
    if (m->channel >= json_array_size(r->audience.members_of)) {
        m->complete = true;
        campaign_problem(s, r->campaign_id, NULL); /* past the bound, if it ever was not */
        log_info("channel members read", "{s:s, s:s, s:i, s:I}", "campaign_id", r->campaign_id,
                 "run_id", r->run_id, "channels", (int)m->channel, "members",
                 (json_int_t)member_set_count(m->set));
    }
}

/* The reply to a page of users (start_page without m): the page is filtered and
 * written. */
static void finish_platform_page(struct scheduler *s, struct run_row *r, int rv,
                                 Bcrm__V1__PlatformReply *reply, const char *request_id)
{
    if (rv != 0) {
        on_query_failure(s, r, NULL, nng_strerror(rv));
        return;
    }
    metric_inc(sched_metrics.audience_pages);
    if (reply->status != BCRM__V1__QUERY_STATUS__QUERY_OK ||
        strcmp(reply->request_id, request_id) != 0) {
        on_query_failure(s, r, reply,
                         reply->error != NULL ? reply->error : "the sender refused the query");
        return;
    }
    const char *next =
        reply->next_cursor != NULL && reply->next_cursor[0] != '\0' ? reply->next_cursor : NULL;
    if (next != NULL && r->cursor != NULL && strcmp(next, r->cursor) == 0) {
        on_query_failure(s, r, NULL, "the platform returned the same cursor again");
        return;
    }
    /* Ask for the next page now, so that the sender reads and parses it while this
     * one is written: a large audience loads at the pace of the slower of the two,
     * not of both in turn. Should this write fail, that page finds the cursor where
     * it was and is discarded (write_page), and the run is read again from there. */
    if (next != NULL) {
        struct run_row *ahead = run_row_at_cursor(r, next);
        if (ahead != NULL) {
            start_page(s, ahead, NULL);
        }
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
        page_add(&page, r, u->id, &zone);
    }
    if (write_page(s, r, &page, next) == 0) {
        holdoff_clear(s, r->run_id);
        if (next == NULL) {
            members_free(s); /* the pass is over: its member set is no longer needed */
        }
        log_debug("audience page loaded", "{s:s, s:i, s:i}", "run_id", r->run_id, "users",
                  (int)reply->n_users, "recipients", page.count);
    }
    page_free(&page);
}

/* Starts a pass if none is in progress: fills r->horizon. 0, or -1 when the run moved
 * on elsewhere (another leader started it). */
static int start_pass(struct scheduler *s, struct run_row *r)
{
    char ahead[24];
    snprintf(ahead, sizeof(ahead), "%lld", (long long)s->cfg.load_ahead_ms);
    const char *params[] = {r->run_id, ahead};
    PGresult *res = db_query_prepared(s->work, "start_pass", 2, params);
    if (res == NULL || PQntuples(res) != 1) {
        PQclear(res);
        return -1;
    }
    r->horizon = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    char horizon[32];
    clock_format_rfc3339(r->horizon, horizon);
    log_info("audience pass started", "{s:s, s:s, s:s}", "campaign_id", r->campaign_id, "run_id",
             r->run_id, "horizon", horizon);
    return 0;
}

/* Reads one page of one run (the listed kind at once, the platform's kind through a
 * call whose reply a later turn takes). Takes ownership of r. */
static void load_page(struct scheduler *s, struct run_row *r)
{
    char err[160] = "";
    if (run_row_parse(r, err, sizeof(err)) != 0) {
        /* The api validates campaigns, so this is a campaign from a newer api or a bug:
         * say so, and look again only now and then. */
        holdoff_set(s, r->run_id, HOLDOFF_MAX_MS);
        log_error("run cannot be loaded", "{s:s, s:s, s:s}", "campaign_id", r->campaign_id,
                  "run_id", r->run_id, "error", err);
        run_row_free(r);
        return;
    }
    if (!pass_in_progress(r) && start_pass(s, r) != 0) {
        run_row_free(r);
        return;
    }
    if (r->audience.source == AUDIENCE_PLATFORM_USERS) {
        if (r->audience.members_of != NULL) {
            struct members_load *m = members_for(s, r);
            if (m == NULL) {
                on_query_failure(s, r, NULL, "out of memory for the channel members");
                run_row_free(r);
                return;
            }
            if (!m->complete) {
                start_page(s, r, m);
                return;
            }
            r->audience.members = m->set;
        }
        start_page(s, r, NULL);
        return;
    }
    load_listed_page(s, r);
    run_row_free(r);
}

void runs_load_step(struct scheduler *s)
{
    if (s->audience_call == NULL && (s->audience_call = audience_call_new()) == NULL) {
        return;
    }
    int rv;
    Bcrm__V1__PlatformReply *reply = NULL;
    char tag[64];
    if (audience_call_take(s->audience_call, &rv, &reply, tag)) {
        struct run_row *r = s->calling;
        s->calling = NULL;
        if (r != NULL && r->members_call) {
            finish_members_page(s, r, rv, reply, tag);
        } else if (r != NULL) {
            finish_platform_page(s, r, rv, reply, tag);
        }
        run_row_free(r);
        if (reply != NULL) {
            protobuf_c_message_free_unpacked(&reply->base, NULL);
        }
        s->next_load = 0; /* the next page, at once */
    }
    int64_t now = clock_mono_ms();
    if (audience_call_busy(s->audience_call)) {
        /* The page's arrival wakes the loop (runs_wake_fd): nothing to do until then,
         * and a due next_load would only make the loop spin. */
        s->next_load = SCHED_NEVER;
        return;
    }
    if (now < s->next_load) {
        return;
    }
    char pass_ms[24];
    snprintf(pass_ms, sizeof(pass_ms), "%lld", (long long)s->cfg.load_pass_ms);
    const char *params[] = {pass_ms};
    PGresult *res = db_query_prepared(s->work, "loading_runs", 1, params);
    if (res == NULL) {
        s->next_load = now + HOLDOFF_MIN_MS;
        return;
    }
    holdoff_prune(s, res);
    members_prune(s, res);
    int pick = -1;
    int64_t next = SCHED_NEVER;
    for (int i = 0; i < PQntuples(res) && pick < 0; i++) {
        struct run_holdoff *h = holdoff_find(s, PQgetvalue(res, i, RUN_ID));
        if (h != NULL && h->until > now) {
            next = h->until < next ? h->until : next;
            continue;
        }
        int64_t horizon = instant_or_none(res, i, RUN_PASS_HORIZON);
        int64_t until = instant_or_none(res, i, RUN_LOADED_UNTIL);
        bool in_progress = horizon != NO_INSTANT && (until == NO_INSTANT || horizon > until);
        int64_t pass_in = PQgetisnull(res, i, RUN_NEXT_PASS_IN)
                              ? 0
                              : strtoll(PQgetvalue(res, i, RUN_NEXT_PASS_IN), NULL, 10);
        if (in_progress || horizon == NO_INSTANT || pass_in <= 0) {
            pick = i;
        } else if (now + pass_in < next) {
            next = now + pass_in; /* between passes: the next one starts then */
        }
    }
    if (pick >= 0) {
        struct run_row *r = run_row_copy(res, pick);
        if (r != NULL) {
            load_page(s, r);
        }
        /* More pages, or other runs: keep going next turn; while a page is on its
         * way, its arrival is what wakes the loop. */
        next = audience_call_busy(s->audience_call) ? SCHED_NEVER : 0;
    }
    s->next_load = next;
    PQclear(res);
}

int runs_wake_fd(const struct scheduler *s)
{
    return s->audience_call != NULL ? audience_call_fd(s->audience_call) : -1;
}
