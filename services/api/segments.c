/* segments.c: saved audience filters (spec/api.md, "Segments"): create, list, read,
 * replace and delete. A segment belongs to one bot of the org, and its filter is
 * checked against that bot's platform exactly as a campaign's audience filter is
 * (campaign_validate_filter). The live preview is in segment_preview.c; campaigns
 * refer to a segment through segments_resolve(), which copies its filter.
 */
#include "api.h"

#include "bcrm/db.h"
#include "bcrm/log.h"
#include "campaign_validate.h"
#include "segments.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SEGMENT_COLUMNS                                                                            \
    "id, name, bot_id, filter::text, " API_TS("created_at") ", " API_TS("updated_at")
#define SEGMENT_LIST_MAX 1000

static json_t *segment_json(const PGresult *res, int row)
{
    json_t *filter = json_loads(PQgetvalue(res, row, 3), 0, NULL);
    return json_pack("{s:s, s:s, s:s, s:o, s:s, s:s}", "id", PQgetvalue(res, row, 0), "name",
                     PQgetvalue(res, row, 1), "bot_id", PQgetvalue(res, row, 2), "filter",
                     filter ? filter : json_object(), "created_at", PQgetvalue(res, row, 4),
                     "updated_at", PQgetvalue(res, row, 5));
}

static void answer_not_found(struct api_req *r, const char *id)
{
    api_problem(r, 404, "Not Found", NULL, "no segment %s in this org", id);
}

/* Checks {name, bot_id, filter}: the bot must be one of the org's (not deleted) and
 * the filter valid for its platform. Fills *name, *bot_id (borrowed from body) and
 * filter_text (free() it). false after answering 422 (or 500/503). */
static bool read_segment_body(struct api_req *r, json_t *body, const char **name,
                              const char **bot_id, char **filter_text)
{
    static const char *const keys[] = {"name", "bot_id", "filter", NULL};
    struct jv v = {0};
    PGresult *bot = NULL;
    bool ok = false;
    jv_only_keys(&v, body, "", keys);
    *name = jv_string(&v, body, "name", "name", true, 1, 200);
    *bot_id = jv_string(&v, body, "bot_id", "bot_id", true, 1, 64);
    json_t *filter = jv_object(&v, body, "filter", "filter", true);
    if (!v.failed && !api_is_uuid(*bot_id)) {
        jv_fail(&v, "bot_id", "is not a bot id");
    }
    if (v.failed) {
        goto invalid;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return false;
    }
    const char *p[] = {r->org_id, *bot_id};
    bot = db_query(conn, "bot of segment",
                   "SELECT platform FROM bots WHERE org_id = $1 AND id = $2"
                   " AND status <> 'deleted'",
                   2, p);
    if (bot == NULL) {
        api_internal_error(r);
        return false;
    }
    if (PQntuples(bot) != 1) {
        jv_fail(&v, "bot_id", "no bot %s in this org", *bot_id);
        goto invalid;
    }
    if (!campaign_validate_filter(filter, PQgetvalue(bot, 0, 0), "filter", &v)) {
        goto invalid;
    }
    *filter_text = json_dumps(filter, JSON_COMPACT);
    if (*filter_text == NULL) {
        api_internal_error(r);
    } else {
        ok = true;
    }
    PQclear(bot);
    return ok;
invalid:
    PQclear(bot);
    api_problem(r, 422, "Invalid field", v.field, "%s %s", v.field, v.message);
    return false;
}

void segments_create(struct api_req *r)
{
    const char *name, *bot_id;
    char *filter = NULL;
    json_t *body = api_body_object(r);
    if (body == NULL || !read_segment_body(r, body, &name, &bot_id, &filter)) {
        json_decref(body);
        return;
    }
    const char *p[] = {r->org_id, bot_id, name, filter};
    PGresult *res = db_query(api_db(r), "insert segment",
                             "INSERT INTO segments (org_id, bot_id, name, filter)"
                             " VALUES ($1, $2, $3, $4) RETURNING " SEGMENT_COLUMNS,
                             4, p);
    if (res == NULL) {
        api_internal_error(r);
    } else {
        log_info("segment created", "{s:s, s:s}", "org_id", r->org_id, "segment_id",
                 PQgetvalue(res, 0, 0));
        api_json(r, 201, segment_json(res, 0));
    }
    PQclear(res);
    free(filter);
    json_decref(body);
}

void segments_list(struct api_req *r)
{
    const char *bot_id = http_query(r->http, "bot_id");
    if (bot_id != NULL && !api_is_uuid(bot_id)) {
        api_problem(r, 422, "Invalid parameter", "bot_id", "bot_id is not a bot id");
        return;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return;
    }
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", SEGMENT_LIST_MAX);
    const char *p[] = {r->org_id, bot_id, limit};
    PGresult *res = db_query(conn, "list segments",
                             "SELECT " SEGMENT_COLUMNS " FROM segments WHERE org_id = $1"
                             " AND ($2::uuid IS NULL OR bot_id = $2)"
                             " ORDER BY created_at DESC, id DESC LIMIT $3",
                             3, p);
    if (res == NULL) {
        api_internal_error(r);
        return;
    }
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        json_array_append_new(list, segment_json(res, i));
    }
    PQclear(res);
    api_json(r, 200, json_pack("{s:o}", "segments", list));
}

void segments_get(struct api_req *r)
{
    const char *id = api_param(r, "segment");
    if (!api_is_uuid(id)) {
        answer_not_found(r, id);
        return;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return;
    }
    const char *p[] = {r->org_id, id};
    PGresult *res = db_query(conn, "read segment",
                             "SELECT " SEGMENT_COLUMNS " FROM segments"
                             " WHERE org_id = $1 AND id = $2",
                             2, p);
    if (res == NULL) {
        api_internal_error(r);
    } else if (PQntuples(res) != 1) {
        answer_not_found(r, id);
    } else {
        api_json(r, 200, segment_json(res, 0));
    }
    PQclear(res);
}

/* PUT replaces the whole segment: {name, bot_id, filter}, as for create. Campaigns
 * made from it earlier keep the filter they copied. */
void segments_replace(struct api_req *r)
{
    const char *id = api_param(r, "segment");
    const char *name, *bot_id;
    char *filter = NULL;
    if (!api_is_uuid(id)) {
        answer_not_found(r, id);
        return;
    }
    json_t *body = api_body_object(r);
    if (body == NULL || !read_segment_body(r, body, &name, &bot_id, &filter)) {
        json_decref(body);
        return;
    }
    const char *p[] = {r->org_id, id, bot_id, name, filter};
    PGresult *res = db_query(api_db(r), "replace segment",
                             "UPDATE segments SET bot_id = $3, name = $4, filter = $5,"
                             " updated_at = now() WHERE org_id = $1 AND id = $2"
                             " RETURNING " SEGMENT_COLUMNS,
                             5, p);
    if (res == NULL) {
        api_internal_error(r);
    } else if (PQntuples(res) != 1) {
        answer_not_found(r, id);
    } else {
        log_info("segment replaced", "{s:s, s:s}", "org_id", r->org_id, "segment_id", id);
        api_json(r, 200, segment_json(res, 0));
    }
    PQclear(res);
    free(filter);
    json_decref(body);
}

void segments_delete(struct api_req *r)
{
    const char *id = api_param(r, "segment");
    if (!api_is_uuid(id)) {
        answer_not_found(r, id);
        return;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return;
    }
    const char *p[] = {r->org_id, id};
    PGresult *res = db_query(conn, "delete segment",
                             "DELETE FROM segments WHERE org_id = $1 AND id = $2", 2, p);
    if (res == NULL) {
        api_internal_error(r);
    } else if (atoi(PQcmdTuples(res)) != 1) {
        answer_not_found(r, id);
    } else {
        log_info("segment deleted", "{s:s, s:s}", "org_id", r->org_id, "segment_id", id);
        api_no_content(r);
    }
    PQclear(res);
}

int segments_resolve(struct api_req *r, PGconn *conn, const char *segment_id, const char *bot_id,
                     json_t **filter, struct jv *v)
{
    const char *p[] = {r->org_id, segment_id};
    *filter = NULL;
    PGresult *res = db_query(conn, "segment of campaign",
                             "SELECT bot_id, filter::text FROM segments"
                             " WHERE org_id = $1 AND id = $2",
                             2, p);
    if (res == NULL) {
        return -1;
    }
    if (PQntuples(res) != 1) {
        jv_fail(v, "audience.segment_id", "no segment %s in this org", segment_id);
    } else if (strcasecmp(PQgetvalue(res, 0, 0), bot_id) != 0) {
        jv_fail(v, "audience.segment_id", "segment %s is for bot %s, not the campaign's bot",
                segment_id, PQgetvalue(res, 0, 0));
    } else {
        *filter = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
        if (*filter == NULL) {
            PQclear(res);
            return -1;
        }
    }
    PQclear(res);
    return 0;
}
