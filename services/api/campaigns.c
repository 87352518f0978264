/* campaigns.c: creating campaigns, reading them with their delivery statistics,
 * and the status transitions (spec/api.md):
 *
 *   draft --schedule--> scheduled --(scheduler)--> running --(scheduler)--> completed
 *   scheduled|running --pause--> paused --resume--> running (or scheduled: no run yet)
 *   any but completed|cancelled --cancel--> cancelled (pending deliveries cancelled)
 *   running|completed --retry--> running (failed or unknown deliveries pending again)
 *
 * Every transition locks the campaign row, checks the current status, applies its
 * updates and, where the scheduler must act, NOTIFYs bcrm_campaigns, all in one
 * transaction: an error leaves nothing half-written.
 */
#include "api.h"

#include "bcrm/clock.h"
#include "bcrm/db.h"
#include "bcrm/log.h"
#include "campaign_validate.h"
#include "segments.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* clang-format off */
#define CAMPAIGN_COLUMNS                                                                           \
    "c.id, c.org_id, c.bot_id, c.name, c.status, c.message::text, c.audience::text,"               \
    " c.schedule::text, c.throttle_per_minute, c.send_window::text, c.max_lateness_minutes,"       \
    " c.messenger::text, "                                                                         \
    API_TS("coalesce(c.first_due_at, s.first_due)") ", "                                           \
    API_TS("coalesce(c.last_due_at, s.last_due)") ", "                                             \
    API_TS("c.created_at") ", " API_TS("c.updated_at") ", "                                        \
    API_TS("c.scheduled_at") ", " API_TS("c.completed_at") ","                                     \
    " s.total, s.pending, s.sent, s.failed, s.unknown, s.skipped, s.cancelled, s.read,"            \
    " c.created_at::text, c.problem"
/* clang-format on */

/* Statistics by delivery status; "sending" counts as pending (not yet settled). */
#define CAMPAIGN_STATS_JOIN                                                                        \
    " LEFT JOIN LATERAL (SELECT count(*) AS total,"                                                \
    " count(*) FILTER (WHERE d.status IN ('pending', 'sending')) AS pending,"                      \
    " count(*) FILTER (WHERE d.status = 'sent') AS sent,"                                          \
    " count(*) FILTER (WHERE d.status = 'failed') AS failed,"                                      \
    " count(*) FILTER (WHERE d.status = 'unknown') AS unknown,"                                    \
    " count(*) FILTER (WHERE d.status = 'skipped') AS skipped,"                                    \
    " count(*) FILTER (WHERE d.status = 'cancelled') AS cancelled,"                                \
    " count(*) FILTER (WHERE d.status = 'read') AS read,"                                          \
    " min(d.due_at) AS first_due, max(d.due_at) AS last_due"                                       \
    " FROM deliveries d WHERE d.campaign_id = c.id) s ON true"

enum {
    COL_ID,
    COL_ORG,
    COL_BOT,
    COL_NAME,
    COL_STATUS,
    COL_MESSAGE,
    COL_AUDIENCE,
    COL_SCHEDULE,
    COL_THROTTLE,
    COL_WINDOW,
    COL_LATENESS,
    COL_MESSENGER,
    COL_FIRST_DUE,
    COL_LAST_DUE,
    COL_CREATED,
    COL_UPDATED,
    COL_SCHEDULED,
    COL_COMPLETED,
    COL_STATS, /* 8 counts */
    COL_CREATED_RAW = COL_STATS + 8,
    COL_PROBLEM,
};

static json_t *text_or_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

static json_t *int_or_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null()
                                      : json_integer(strtoll(PQgetvalue(res, row, col), NULL, 10));
}

static json_t *jsonb_or_null(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col)) {
        return json_null();
    }
    json_t *value = json_loads(PQgetvalue(res, row, col), 0, NULL);
    return value ? value : json_null();
}

static json_t *campaign_json(const PGresult *res, int row)
{
    static const char *const stat_names[] = {"total",   "pending", "sent",      "failed",
                                             "unknown", "skipped", "cancelled", "read"};
    json_t *stats = json_object();
    for (int i = 0; i < 8; i++) {
        json_object_set_new(stats, stat_names[i],
                            json_integer(strtoll(PQgetvalue(res, row, COL_STATS + i), NULL, 10)));
    }
    json_t *c = json_object();
    json_object_set_new(c, "id", json_string(PQgetvalue(res, row, COL_ID)));
    json_object_set_new(c, "org_id", json_string(PQgetvalue(res, row, COL_ORG)));
    json_object_set_new(c, "bot_id", json_string(PQgetvalue(res, row, COL_BOT)));
    json_object_set_new(c, "name", json_string(PQgetvalue(res, row, COL_NAME)));
    json_object_set_new(c, "status", json_string(PQgetvalue(res, row, COL_STATUS)));
    json_object_set_new(c, "message", jsonb_or_null(res, row, COL_MESSAGE));
    json_object_set_new(c, "audience", jsonb_or_null(res, row, COL_AUDIENCE));
    json_object_set_new(c, "schedule", jsonb_or_null(res, row, COL_SCHEDULE));
    json_object_set_new(c, "throttle_per_minute", int_or_null(res, row, COL_THROTTLE));
    json_object_set_new(c, "send_window", jsonb_or_null(res, row, COL_WINDOW));
    json_object_set_new(c, "max_lateness_minutes", int_or_null(res, row, COL_LATENESS));
    json_object_set_new(c, "messenger", jsonb_or_null(res, row, COL_MESSENGER));
    json_object_set_new(c, "stats", stats);
    json_object_set_new(c, "first_due_at", text_or_null(res, row, COL_FIRST_DUE));
    json_object_set_new(c, "last_due_at", text_or_null(res, row, COL_LAST_DUE));
    json_object_set_new(c, "created_at", text_or_null(res, row, COL_CREATED));
    json_object_set_new(c, "updated_at", text_or_null(res, row, COL_UPDATED));
    json_object_set_new(c, "scheduled_at", text_or_null(res, row, COL_SCHEDULED));
    json_object_set_new(c, "completed_at", text_or_null(res, row, COL_COMPLETED));
    /* Why the campaign does not go on, when the scheduler knows (campaigns.problem). */
    json_object_set_new(c, "problem", text_or_null(res, row, COL_PROBLEM));
    return c;
}

/* The campaign as JSON, or NULL: then *found tells a missing campaign (false) from
 * a failed query (true). */
static json_t *campaign_load(PGconn *conn, const char *org_id, const char *id, bool *found)
{
    const char *p[] = {org_id, id};
    *found = false;
    PGresult *res = db_query(conn, "read campaign",
                             "SELECT " CAMPAIGN_COLUMNS " FROM campaigns c" CAMPAIGN_STATS_JOIN
                             " WHERE c.org_id = $1 AND c.id = $2",
                             2, p);
    if (res == NULL) {
        *found = true;
        return NULL;
    }
    json_t *c = NULL;
    if (PQntuples(res) == 1) {
        *found = true;
        c = campaign_json(res, 0);
    }
    PQclear(res);
    return c;
}

static void answer_not_found(struct api_req *r, const char *id)
{
    api_problem(r, 404, "Not Found", NULL, "no campaign %s in this org", id);
}

void campaigns_create(struct api_req *r)
{
    struct jv v = {0};
    struct campaign_input in;
    PGresult *bot = NULL, *res = NULL;
    char *message = NULL, *audience = NULL, *schedule = NULL, *window = NULL, *messenger = NULL;
    json_t *segment_audience = NULL;
    json_t *body = api_body_object(r);
    if (body == NULL) {
        return;
    }
    if (!campaign_validate_head(body, &in, &v)) {
        goto invalid;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        goto out;
    }
    const char *pb[] = {r->org_id, in.bot_id};
    bot = db_query(conn, "bot of campaign",
                   "SELECT platform, status FROM bots WHERE org_id = $1 AND id = $2", 2, pb);
    if (bot == NULL) {
        api_internal_error(r);
        goto out;
    }
    if (PQntuples(bot) != 1 || strcmp(PQgetvalue(bot, 0, 1), "deleted") == 0) {
        jv_fail(&v, "bot_id", "no bot %s in this org", in.bot_id);
        goto invalid;
    }
    if (strcmp(PQgetvalue(bot, 0, 1), "active") != 0) {
        jv_fail(&v, "bot_id", "the bot is %s, not active", PQgetvalue(bot, 0, 1));
        goto invalid;
    }
    if (!campaign_validate_body(body, PQgetvalue(bot, 0, 0), clock_wall_ms() / 1000, &in, &v)) {
        goto invalid;
    }
    /* A segment's filter is copied into the campaign, {"segment_id", "filter"}: the
     * scheduler reads audience.filter only, and a later change to the segment does
     * not change a campaign already made. */
    const char *segment_id = json_string_value(json_object_get(in.audience, "segment_id"));
    if (segment_id != NULL) {
        json_t *filter = NULL;
        if (segments_resolve(r, conn, segment_id, in.bot_id, &filter, &v) != 0) {
            api_internal_error(r);
            goto out;
        }
        if (filter == NULL) {
            goto invalid;
        }
        segment_audience = json_pack("{s:s, s:o}", "segment_id", segment_id, "filter", filter);
        in.audience = segment_audience;
    }
    message = json_dumps(in.message, JSON_COMPACT);
    audience = json_dumps(in.audience, JSON_COMPACT);
    schedule = json_dumps(in.schedule, JSON_COMPACT);
    window = in.send_window ? json_dumps(in.send_window, JSON_COMPACT) : NULL;
    messenger = in.messenger ? json_dumps(in.messenger, JSON_COMPACT) : NULL;
    char throttle[24], lateness[24];
    snprintf(throttle, sizeof(throttle), "%lld", (long long)in.throttle_per_minute);
    snprintf(lateness, sizeof(lateness), "%lld", (long long)in.max_lateness_minutes);
    const char *p[] = {r->org_id,
                       in.bot_id,
                       in.name,
                       message,
                       audience,
                       schedule,
                       in.has_throttle ? throttle : NULL,
                       window,
                       in.has_max_lateness ? lateness : NULL,
                       messenger};
    res = db_query(conn, "insert campaign",
                   "INSERT INTO campaigns (org_id, bot_id, name, message, audience, schedule,"
                   " throttle_per_minute, send_window, max_lateness_minutes, messenger)"
                   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                   10, p);
    if (res == NULL) {
        api_internal_error(r);
        goto out;
    }
    bool found;
    json_t *campaign = campaign_load(conn, r->org_id, PQgetvalue(res, 0, 0), &found);
    if (campaign == NULL) {
        api_internal_error(r);
        goto out;
    }
    log_info("campaign created", "{s:s, s:s}", "org_id", r->org_id, "campaign_id",
             PQgetvalue(res, 0, 0));
    api_json(r, 201, campaign);
    goto out;
invalid:
    api_problem(r, 422, "Invalid field", v.field, "%s %s", v.field, v.message);
out:
    free(message);
    free(audience);
    free(schedule);
    free(window);
    free(messenger);
    PQclear(bot);
    PQclear(res);
    json_decref(segment_audience);
    json_decref(body);
}

void campaigns_get(struct api_req *r)
{
    const char *id = api_param(r, "campaign");
    if (!api_is_uuid(id)) {
        answer_not_found(r, id);
        return;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return;
    }
    bool found;
    json_t *c = campaign_load(conn, r->org_id, id, &found);
    if (c != NULL) {
        api_json(r, 200, c);
    } else if (found) {
        api_internal_error(r);
    } else {
        answer_not_found(r, id);
    }
}

void campaigns_list(struct api_req *r)
{
    int limit;
    if (!api_query_limit(r, 50, 200, &limit)) {
        return;
    }
    /* The cursor holds the last row's created_at (full precision) and id. */
    char position[128] = "", *after_id = NULL;
    const char *cursor = http_query(r->http, "cursor");
    if (cursor != NULL && cursor[0] != '\0') {
        if (!api_cursor_decode(cursor, position, sizeof(position)) ||
            (after_id = strrchr(position, '|')) == NULL || !api_is_uuid(after_id + 1)) {
            api_problem(r, 422, "Invalid parameter", "cursor", "cursor is not one this API gave");
            return;
        }
        *after_id++ = '\0';
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return;
    }
    char limit_text[16];
    snprintf(limit_text, sizeof(limit_text), "%d", limit + 1);
    const char *p[] = {r->org_id, limit_text, after_id ? position : NULL, after_id};
    /* A malformed timestamp in a forged cursor fails the cast: answer 422, not 500. */
    PGresult *res = PQexecParams(conn,
                                 "SELECT " CAMPAIGN_COLUMNS " FROM campaigns c" CAMPAIGN_STATS_JOIN
                                 " WHERE c.org_id = $1 AND ($3::text IS NULL OR"
                                 " (c.created_at, c.id) < ($3::timestamptz, $4::uuid))"
                                 " ORDER BY c.created_at DESC, c.id DESC LIMIT $2",
                                 4, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (strncmp(db_sqlstate(res), "22", 2) == 0) {
            api_problem(r, 422, "Invalid parameter", "cursor", "cursor is not one this API gave");
        } else {
            log_error("query failed", "{s:s, s:s}", "query", "list campaigns", "error",
                      PQresultErrorMessage(res));
            api_internal_error(r);
        }
        PQclear(res);
        return;
    }
    int rows = PQntuples(res);
    json_t *list = json_array();
    for (int i = 0; i < rows && i < limit; i++) {
        json_array_append_new(list, campaign_json(res, i));
    }
    json_t *next = json_null();
    if (rows > limit) {
        char last[128];
        snprintf(last, sizeof(last), "%s|%s", PQgetvalue(res, limit - 1, COL_CREATED_RAW),
                 PQgetvalue(res, limit - 1, COL_ID));
        char *encoded = api_cursor_encode(last);
        next = json_string(encoded);
        free(encoded);
    }
    PQclear(res);
    api_json(r, 200, json_pack("{s:o, s:o}", "campaigns", list, "next_cursor", next));
}

/* One status transition. The allowed statuses are listed in C, so a refusal can
 * name the current status. apply runs the updates inside the transaction after
 * the checks; it returns 0, or -1 after answering. */
struct transition {
    const char *verb;
    const char *const *from;
    const char *refusal; /* completes "campaign is <status>; " */
    bool bot_must_be_active;
    bool notify;
    int (*apply)(struct api_req *r, PGconn *conn, const char *id, json_t *body);
};

static int exec_or_500(struct api_req *r, PGconn *conn, const char *what, const char *sql, int n,
                       const char *const *p)
{
    if (db_exec(conn, what, sql, n, p) != 0) {
        api_internal_error(r);
        return -1;
    }
    return 0;
}

static int apply_schedule(struct api_req *r, PGconn *conn, const char *id, json_t *body)
{
    (void)body;
    const char *p[] = {id};
    return exec_or_500(r, conn, "schedule campaign",
                       "UPDATE campaigns SET status = 'scheduled', scheduled_at = now(),"
                       " updated_at = now() WHERE id = $1",
                       1, p);
}

static int apply_pause(struct api_req *r, PGconn *conn, const char *id, json_t *body)
{
    (void)body;
    const char *p[] = {id};
    return exec_or_500(r, conn, "pause campaign",
                       "UPDATE campaigns SET status = 'paused', updated_at = now() WHERE id = $1",
                       1, p);
}

static int apply_resume(struct api_req *r, PGconn *conn, const char *id, json_t *body)
{
    (void)body;
    const char *p[] = {id};
    return exec_or_500(r, conn, "resume campaign",
                       "UPDATE campaigns SET updated_at = now(), status = CASE WHEN EXISTS"
                       " (SELECT 1 FROM campaign_runs WHERE campaign_id = $1)"
                       " THEN 'running' ELSE 'scheduled' END WHERE id = $1",
                       1, p);
}

static int apply_cancel(struct api_req *r, PGconn *conn, const char *id, json_t *body)
{
    (void)body;
    const char *p[] = {id};
    if (exec_or_500(r, conn, "cancel campaign",
                    "UPDATE campaigns SET status = 'cancelled', completed_at = now(),"
                    " updated_at = now() WHERE id = $1",
                    1, p) != 0 ||
        exec_or_500(r, conn, "cancel deliveries",
                    "UPDATE deliveries SET status = 'cancelled', updated_at = now()"
                    " WHERE campaign_id = $1 AND status = 'pending'",
                    1, p) != 0) {
        return -1;
    }
    return exec_or_500(r, conn, "cancel runs",
                       "UPDATE campaign_runs SET status = 'cancelled'"
                       " WHERE campaign_id = $1 AND status IN ('loading', 'loaded')",
                       1, p);
}

static int apply_retry(struct api_req *r, PGconn *conn, const char *id, json_t *body)
{
    const char *status = json_string_value(json_object_get(body, "status"));
    const char *p[] = {id, status};
    PGresult *res = db_query(conn, "retry deliveries",
                             "UPDATE deliveries SET status = 'pending', next_attempt_at = now(),"
                             " attempts = 0, lateness_from = now(),"
                             " lease_id = NULL, lease_expires_at = NULL, updated_at = now()"
                             " WHERE campaign_id = $1 AND status = $2",
                             2, p);
    if (res == NULL) {
        api_internal_error(r);
        return -1;
    }
    int retried = atoi(PQcmdTuples(res));
    PQclear(res);
    if (retried == 0) {
        api_problem(r, 409, "Conflict", "status", "the campaign has no %s deliveries to retry",
                    status);
        return -1;
    }
    log_info("deliveries retried", "{s:s, s:s, s:i}", "campaign_id", id, "status", status, "count",
             retried);
    return exec_or_500(r, conn, "rerun campaign",
                       "UPDATE campaigns SET status = 'running', completed_at = NULL,"
                       " updated_at = now() WHERE id = $1",
                       1, p);
}

static bool status_in(const char *status, const char *const *list)
{
    for (int i = 0; list[i] != NULL; i++) {
        if (strcmp(list[i], status) == 0) {
            return true;
        }
    }
    return false;
}

static void run_transition(struct api_req *r, const struct transition *t, json_t *body)
{
    const char *id = api_param(r, "campaign");
    PGresult *res = NULL;
    if (!api_is_uuid(id)) {
        answer_not_found(r, id);
        return;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return;
    }
    if (db_begin(conn) != 0) {
        api_internal_error(r);
        return;
    }
    const char *p[] = {r->org_id, id};
    res = db_query(conn, "lock campaign",
                   "SELECT c.status, b.status FROM campaigns c JOIN bots b ON b.id = c.bot_id"
                   " WHERE c.org_id = $1 AND c.id = $2 FOR UPDATE OF c",
                   2, p);
    if (res == NULL) {
        api_internal_error(r);
        goto fail;
    }
    if (PQntuples(res) != 1) {
        answer_not_found(r, id);
        goto fail;
    }
    const char *status = PQgetvalue(res, 0, 0);
    if (!status_in(status, t->from)) {
        json_t *extra = json_pack("{s:s}", "current_status", status);
        api_problem_ext(r, 409, "Conflict", extra, "campaign is %s; %s", status, t->refusal);
        goto fail;
    }
    if (t->bot_must_be_active && strcmp(PQgetvalue(res, 0, 1), "active") != 0) {
        api_problem(r, 409, "Conflict", "bot_id", "the campaign's bot is %s, not active",
                    PQgetvalue(res, 0, 1));
        goto fail;
    }
    if (t->apply(r, conn, id, body) != 0) {
        goto fail;
    }
    const char *pn[] = {id};
    if (t->notify &&
        db_exec(conn, "notify scheduler", "SELECT pg_notify('bcrm_campaigns', $1)", 1, pn) != 0) {
        api_internal_error(r);
        goto fail;
    }
    bool found;
    json_t *campaign = campaign_load(conn, r->org_id, id, &found);
    if (campaign == NULL || db_commit(conn) != 0) {
        json_decref(campaign);
        api_internal_error(r);
        goto fail;
    }
    log_info("campaign transition", "{s:s, s:s, s:s, s:s}", "campaign_id", id, "action", t->verb,
             "from", status, "to", json_string_value(json_object_get(campaign, "status")));
    PQclear(res);
    api_json(r, 200, campaign);
    return;
fail:
    PQclear(res);
    db_rollback(conn);
}

static const char *const from_draft[] = {"draft", NULL};
static const char *const from_active[] = {"scheduled", "running", NULL};
static const char *const from_paused[] = {"paused", NULL};
static const char *const from_open[] = {"draft", "scheduled", "running", "paused", NULL};
static const char *const from_sent[] = {"running", "completed", NULL};

void campaigns_schedule(struct api_req *r)
{
    static const struct transition t = {"schedule", from_draft, "only a draft can be scheduled",
                                        true,       true,       apply_schedule};
    run_transition(r, &t, NULL);
}

void campaigns_pause(struct api_req *r)
{
    static const struct transition t = {
        "pause", from_active, "only a scheduled or running campaign can be paused",
        false,   true,        apply_pause};
    run_transition(r, &t, NULL);
}

void campaigns_resume(struct api_req *r)
{
    static const struct transition t = {
        "resume", from_paused, "only a paused campaign can be resumed", true, true, apply_resume};
    run_transition(r, &t, NULL);
}

void campaigns_cancel(struct api_req *r)
{
    static const struct transition t = {
        "cancel", from_open, "a completed or cancelled campaign cannot be cancelled",
        false,    true,      apply_cancel};
    run_transition(r, &t, NULL);
}

void campaigns_retry(struct api_req *r)
{
    static const char *const keys[] = {"status", NULL};
    static const char *const statuses[] = {"failed", "unknown", NULL};
    static const struct transition t = {
        "retry", from_sent, "only a running or completed campaign has deliveries to retry",
        true,    true,      apply_retry};
    struct jv v = {0};
    json_t *body = api_body_object(r);
    if (body == NULL) {
        return;
    }
    jv_only_keys(&v, body, "", keys);
    jv_enum(&v, body, "status", "status", true, statuses);
    if (v.failed) {
        api_problem(r, 422, "Invalid field", v.field, "%s %s", v.field, v.message);
    } else {
        run_transition(r, &t, body);
    }
    json_decref(body);
}

void campaigns_test(struct api_req *r)
{
    api_not_implemented(r);
}

void campaigns_timeline(struct api_req *r)
{
    api_not_implemented(r);
}
