/* segment_preview.c: GET .../segments/{segment}/preview, the live count of a
 * segment's audience and a small sample of it.
 *
 * The audience is read the way the scheduler reads it when a campaign loads: the
 * bot's users through a sender (ListUsers, page after page), each kept if the
 * filter accepts it. The matching is the scheduler's own code
 * (services/scheduler/audience.c, compiled into this binary too), so a preview counts
 * exactly whom a campaign would reach. Nothing read is stored: the count and the
 * sample go into the answer and are forgotten.
 *
 * Filters that list channels are counted from the filter itself (one delivery per
 * channel). members_of first reads the members of its channels (ListChannelMembers,
 * page by page) into a member set, as the scheduler does (audience.h, member_set.h):
 * a channel the bot cannot see adds nobody, and more than PREVIEW_MAX_MEMBERS members
 * is too large to preview (422).
 */
#include "api.h"

#include "../scheduler/audience.h"
#include "bcrm/clock.h"
#include "bcrm/db.h"
#include "bcrm/log.h"
#include "platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREVIEW_PAGE_LIMIT 1000
/* A guard against a cursor that never ends: 200 pages of 1000 users. */
#define PREVIEW_MAX_PAGES 200
#define PREVIEW_SAMPLE_DEFAULT 10
#define PREVIEW_SAMPLE_MAX 50
/* The scheduler's default bound (BCRM_SCHEDULER_MEMBERS_MAX). */
#define PREVIEW_MAX_MEMBERS 200000

struct preview_bot {
    char segment_id[API_UUID_LEN];
    char bot_id[API_UUID_LEN];
    char platform[16];
    char status[16];
    char bot_user_id[64];
    bool has_bot_user_id;
};

/* The segment's filter and bot, or NULL after answering. */
static json_t *load_segment(struct api_req *r, struct preview_bot *b)
{
    const char *id = api_param(r, "segment");
    if (!api_is_uuid(id)) {
        api_problem(r, 404, "Not Found", NULL, "no segment %s in this org", id);
        return NULL;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return NULL;
    }
    const char *p[] = {r->org_id, id};
    PGresult *res = db_query(conn, "segment to preview",
                             "SELECT s.id, s.filter::text, b.id, b.platform, b.status,"
                             " b.bot_user_id FROM segments s JOIN bots b ON b.id = s.bot_id"
                             " WHERE s.org_id = $1 AND s.id = $2",
                             2, p);
    if (res == NULL) {
        api_internal_error(r);
        return NULL;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        api_problem(r, 404, "Not Found", NULL, "no segment %s in this org", id);
        return NULL;
    }
    json_t *filter = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    snprintf(b->segment_id, sizeof(b->segment_id), "%s", PQgetvalue(res, 0, 0));
    snprintf(b->bot_id, sizeof(b->bot_id), "%s", PQgetvalue(res, 0, 2));
    snprintf(b->platform, sizeof(b->platform), "%s", PQgetvalue(res, 0, 3));
    snprintf(b->status, sizeof(b->status), "%s", PQgetvalue(res, 0, 4));
    b->has_bot_user_id = !PQgetisnull(res, 0, 5);
    snprintf(b->bot_user_id, sizeof(b->bot_user_id), "%s", PQgetvalue(res, 0, 5));
    PQclear(res);
    if (filter == NULL) {
        api_internal_error(r);
    }
    return filter;
}

static bool read_sample_size(struct api_req *r, int *out)
{
    const char *text = http_query(r->http, "sample");
    *out = PREVIEW_SAMPLE_DEFAULT;
    if (text == NULL) {
        return true;
    }
    char *end = NULL;
    long n = strtol(text, &end, 10);
    if (end == text || *end != '\0' || n < 0 || n > PREVIEW_SAMPLE_MAX) {
        api_problem(r, 422, "Invalid parameter", "sample", "sample must be an integer from 0 to %d",
                    PREVIEW_SAMPLE_MAX);
        return false;
    }
    *out = (int)n;
    return true;
}

static json_t *preview_answer(const struct preview_bot *b, const char *kind, long long count,
                              json_t *sample, int pages)
{
    char now[32];
    clock_format_rfc3339(clock_wall_ms(), now);
    return json_pack("{s:s, s:s, s:s, s:I, s:o, s:i, s:s}", "segment_id", b->segment_id, "bot_id",
                     b->bot_id, "kind", kind, "count", (json_int_t)count, "sample", sample,
                     "pages_read", pages, "read_at", now);
}

/* Asks a sender for one page of PREVIEW_PAGE_LIMIT from cursor ("" for the first):
 * of the members of channel_id (ListChannelMembers), or of the bot's users
 * (ListUsers) when channel_id is NULL. As platform_call: 0 with *reply set whatever
 * its status, or -1 after answering 503. */
static int ask_page(struct api_req *r, const struct preview_bot *b, const char *channel_id,
                    const char *cursor, Bcrm__V1__PlatformReply **reply)
{
    char request_id[33];
    Bcrm__V1__PlatformQuery q;
    platform_query_init(&q, request_id, r->org_id, b->bot_id);
    Bcrm__V1__ListUsers users = BCRM__V1__LIST_USERS__INIT;
    Bcrm__V1__ListChannelMembers members = BCRM__V1__LIST_CHANNEL_MEMBERS__INIT;
    char *from = cursor[0] ? (char *)cursor : NULL;
    if (channel_id != NULL) {
        members.channel_id = (char *)channel_id;
        members.cursor = from;
        members.has_limit = true;
        members.limit = PREVIEW_PAGE_LIMIT;
        q.query_case = BCRM__V1__PLATFORM_QUERY__QUERY_LIST_CHANNEL_MEMBERS;
        q.list_channel_members = &members;
    } else {
        users.cursor = from;
        users.has_limit = true;
        users.limit = PREVIEW_PAGE_LIMIT;
        q.query_case = BCRM__V1__PLATFORM_QUERY__QUERY_LIST_USERS;
        q.list_users = &users;
    }
    return platform_call(r, b->platform, &q, reply);
}

/* Copies the reply's next cursor into cursor (cap bytes). false when the reply is
 * the last page, or names a next one whose cursor does not fit (read as the last). */
static bool next_page(const Bcrm__V1__PlatformReply *reply, char *cursor, size_t cap)
{
    if (reply->next_cursor == NULL || reply->next_cursor[0] == '\0' ||
        strlen(reply->next_cursor) >= cap) {
        return false;
    }
    snprintf(cursor, cap, "%s", reply->next_cursor);
    return true;
}

/* Reads the members of the audience's members_of channels into set, page by page.
 * Adds the pages read to *pages. 0, or -1 after answering the failure. */
static int read_members(struct api_req *r, const struct preview_bot *b,
                        const struct audience *audience, struct member_set *set, int *pages)
{
    size_t i;
    json_t *channel;
    json_array_foreach(audience->members_of, i, channel)
    {
        char cursor[1024] = "";
        for (;;) {
            Bcrm__V1__PlatformReply *reply = NULL;
            if (ask_page(r, b, json_string_value(channel), cursor, &reply) != 0) {
                return -1;
            }
            char err[160];
            enum audience_members_page got = audience_add_members(set, reply, err, sizeof(err));
            if (got == MEMBERS_PAGE_REFUSED) {
                platform_answer_read_failure(r, b->platform, b->bot_id, reply);
                protobuf_c_message_free_unpacked(&reply->base, NULL);
                return -1;
            }
            if (got == MEMBERS_PAGE_TOO_MANY) {
                protobuf_c_message_free_unpacked(&reply->base, NULL);
                api_problem(r, 422, "Unprocessable Content", "filter.members_of",
                            "%s; too large to preview", err);
                return -1;
            }
            (*pages)++;
            bool more = got == MEMBERS_PAGE_ADDED && next_page(reply, cursor, sizeof(cursor));
            protobuf_c_message_free_unpacked(&reply->base, NULL);
            if (!more) {
                break;
            }
            if (*pages >= PREVIEW_MAX_PAGES) {
                api_problem(r, 422, "Unprocessable Content", "filter.members_of",
                            "the channels have more than %d pages of members; too large to "
                            "preview",
                            PREVIEW_MAX_PAGES);
                return -1;
            }
        }
    }
    return 0;
}

/* Reads every page of the bot's users and counts those the audience accepts.
 * Answers either the preview or the failure. */
static void preview_users(struct api_req *r, const struct preview_bot *b, struct audience *audience,
                          int sample_size)
{
    char cursor[1024] = "";
    long long count = 0;
    int pages = 0;
    struct member_set *members = NULL;
    json_t *sample = json_array();
    if (audience->members_of != NULL) {
        members = member_set_new(PREVIEW_MAX_MEMBERS);
        if (members == NULL) {
            api_internal_error(r);
            goto fail;
        }
        if (read_members(r, b, audience, members, &pages) != 0) {
            goto fail;
        }
        audience->members = members;
    }
    int member_pages = pages;
    for (;;) {
        Bcrm__V1__PlatformReply *reply = NULL;
        if (ask_page(r, b, NULL, cursor, &reply) != 0) {
            goto fail;
        }
        if (reply->status != BCRM__V1__QUERY_STATUS__QUERY_OK) {
            platform_answer_read_failure(r, b->platform, b->bot_id, reply);
            protobuf_c_message_free_unpacked(&reply->base, NULL);
            goto fail;
        }
        pages++;
        for (size_t i = 0; i < reply->n_users; i++) {
            if (audience_accepts(audience, reply->users[i],
                                 b->has_bot_user_id ? b->bot_user_id : NULL)) {
                count++;
                if ((int)json_array_size(sample) < sample_size) {
                    json_array_append_new(sample, platform_user_json(reply->users[i]));
                }
            }
        }
        bool more = next_page(reply, cursor, sizeof(cursor));
        protobuf_c_message_free_unpacked(&reply->base, NULL);
        if (!more) {
            break;
        }
        if (pages - member_pages >= PREVIEW_MAX_PAGES) {
            log_warn("segment preview stopped at the page limit", "{s:s, s:i}", "segment_id",
                     b->segment_id, "pages", pages);
            api_problem(r, 422, "Unprocessable Content", NULL,
                        "the audience has more than %d pages of users; too large to preview",
                        PREVIEW_MAX_PAGES);
            goto fail;
        }
    }
    api_json(r, 200, preview_answer(b, "users", count, sample, pages));
    member_set_free(members);
    return;
fail:
    member_set_free(members);
    json_decref(sample);
}

void segments_preview(struct api_req *r)
{
    struct preview_bot b = {0};
    int sample_size;
    if (!read_sample_size(r, &sample_size)) {
        return;
    }
    json_t *filter = load_segment(r, &b);
    if (filter == NULL) {
        return;
    }
    json_t *audience_json = NULL;
    if (strcmp(b.status, "active") != 0) {
        api_problem(r, 409, "Conflict", NULL, "the segment's bot is %s, not active", b.status);
        goto out;
    }
    json_t *channels = json_object_get(filter, "channel_ids");
    if (json_is_array(channels)) {
        /* One delivery per channel: the filter itself is the audience. */
        json_t *sample = json_array();
        size_t i;
        json_t *id;
        json_array_foreach(channels, i, id)
        {
            if ((int)i >= sample_size) {
                break;
            }
            json_array_append_new(sample, json_pack("{s:O}", "id", id));
        }
        api_json(r, 200,
                 preview_answer(&b, "channels", (long long)json_array_size(channels), sample, 0));
        goto out;
    }
    /* needs_zones: read even listed users through the platform, so that ids that
     * are no longer there (or are bots) are not counted. */
    struct audience audience;
    char err[256];
    audience_json = json_pack("{s:O}", "filter", filter);
    if (audience_parse(audience_json, true, &audience, err, sizeof(err)) != 0) {
        log_error("stored segment filter not readable", "{s:s, s:s}", "segment_id", b.segment_id,
                  "error", err);
        api_problem(r, 422, "Unprocessable Content", "filter", "the segment's filter: %s", err);
        goto out;
    }
    api_db_release(r);
    preview_users(r, &b, &audience, sample_size);
out:
    json_decref(audience_json);
    json_decref(filter);
}
