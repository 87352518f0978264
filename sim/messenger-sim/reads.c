/* reads.c: GET /me, GET /<PSID> (the User Profile API) and
 * GET /me/conversations, the only way to list the people who wrote to a page.
 */
#include "graph.h"

#include "cursor.h"
#include "rng.h"

#include "bcrm/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONVERSATIONS_DEFAULT_LIMIT 25
#define CONVERSATIONS_MAX_LIMIT 100

void graph_me(struct graph_call *c)
{
    graph_reply(c, 200, json_pack("{s:s, s:s}", "name", c->page->name, "id", c->page->id));
}

/* Calls fn for each field of a comma-separated list; stops at the first non-zero. */
static int each_field(const char *fields, int (*fn)(void *ctx, const char *field), void *ctx)
{
    char name[64];
    for (const char *p = fields; p != NULL && *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len > 0 && len < sizeof(name)) {
            memcpy(name, p, len);
            name[len] = '\0';
            int rc = fn(ctx, name);
            if (rc != 0) {
                return rc;
            }
        }
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

struct profile_ctx {
    const struct msim_person *p;
    json_t *out;
    char bad[64];
};

static int add_profile_field(void *ctx, const char *field)
{
    struct profile_ctx *pc = ctx;
    const struct msim_person *p = pc->p;
    json_t *v = NULL;
    if (strcmp(field, "id") == 0) {
        v = json_string(p->psid);
    } else if (strcmp(field, "first_name") == 0) {
        v = json_string(p->first_name);
    } else if (strcmp(field, "last_name") == 0) {
        v = json_string(p->last_name);
    } else if (strcmp(field, "name") == 0) {
        v = json_string(p->name);
    } else if (strcmp(field, "profile_pic") == 0) {
        v = json_string(p->profile_pic);
    } else if (strcmp(field, "locale") == 0) {
        v = json_string(p->locale);
    } else if (strcmp(field, "timezone") == 0) {
        if (!p->has_timezone) {
            return 0; /* Graph leaves out what it does not know */
        }
        /* Whole hours come as integers, the others as decimals (5.5, 5.75). */
        v = p->timezone == (double)(long)p->timezone ? json_integer((json_int_t)p->timezone)
                                                     : json_real(p->timezone);
    } else if (strcmp(field, "gender") == 0) {
        return 0;
    } else {
        snprintf(pc->bad, sizeof(pc->bad), "%s", field);
        return -1;
    }
    json_object_set_new(pc->out, field, v);
    return 0;
}

void graph_profile(struct graph_call *c, const struct msim_person *p)
{
    const char *fields = params_get(&c->params, "fields");
    if (fields == NULL || fields[0] == '\0') {
        fields = "first_name,last_name,profile_pic";
    }
    struct profile_ctx pc = {.p = p, .out = json_object()};
    if (each_field(fields, add_profile_field, &pc) != 0) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "(#100) Tried accessing nonexisting field (%s) on node type "
                 "(User)",
                 pc.bad);
        json_decref(pc.out);
        graph_error(c, 400, 100, 0, "OAuthException", msg);
        return;
    }
    json_object_set_new(pc.out, "id", json_string(p->psid));
    graph_reply(c, 200, pc.out);
}

struct conv_fields {
    bool updated_time;
    bool participants;
    bool message_count;
    char bad[64];
};

static int parse_conv_field(void *ctx, const char *field)
{
    struct conv_fields *cf = ctx;
    if (strcmp(field, "id") == 0) {
        return 0;
    } else if (strcmp(field, "updated_time") == 0) {
        cf->updated_time = true;
    } else if (strcmp(field, "participants") == 0 || strcmp(field, "senders") == 0) {
        cf->participants = true;
    } else if (strcmp(field, "message_count") == 0) {
        cf->message_count = true;
    } else {
        snprintf(cf->bad, sizeof(cf->bad), "%s", field);
        return -1;
    }
    return 0;
}

static json_t *conversation_json(const struct msim_page *page, const struct msim_person *p,
                                 const struct conv_fields *cf)
{
    json_t *o = json_pack("{s:s}", "id", p->conversation_id);
    if (cf->updated_time) {
        char when[32];
        msim_format_time(atomic_load(&p->last_message_ms), when);
        json_object_set_new(o, "updated_time", json_string(when));
    }
    if (cf->message_count) {
        json_object_set_new(o, "message_count", json_integer(1 + p->index % 7));
    }
    if (cf->participants) {
        char person_email[40], page_email[40];
        snprintf(person_email, sizeof(person_email), "%s@facebook.com", p->psid);
        snprintf(page_email, sizeof(page_email), "%s@facebook.com", page->id);
        json_object_set_new(o, "participants",
                            json_pack("{s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}]}", "data", "name",
                                      p->name, "email", person_email, "id", p->psid, "name",
                                      page->name, "email", page_email, "id", page->id));
    }
    return o;
}

/* The "next" link Graph gives: the same request with the after cursor. */
static char *next_link(const struct graph_call *c, const char *fields, long limit,
                       const char *after)
{
    const char *host = http_header(c->req, "Host");
    char *link = NULL;
    /* Base64's '+', '/' and '=' must be escaped in a query string. */
    char escaped[256];
    size_t o = 0;
    for (const char *p = after; *p && o + 4 < sizeof(escaped); p++) {
        if (*p == '+' || *p == '/' || *p == '=') {
            o += (size_t)snprintf(escaped + o, sizeof(escaped) - o, "%%%02X", (unsigned char)*p);
        } else {
            escaped[o++] = *p;
        }
    }
    escaped[o] = '\0';
    if (asprintf(&link,
                 "http://%s/%s%s%s/conversations?platform=messenger&fields=%s&limit=%ld"
                 "&access_token=%s&after=%s",
                 host ? host : "127.0.0.1", c->version, c->version[0] ? "/" : "", c->page->id,
                 fields, limit, c->page->token, escaped) < 0) {
        return NULL;
    }
    return link;
}

void graph_conversations(struct graph_call *c)
{
    struct msim_page *page = c->page;
    if (c->faults.limits) {
        pthread_mutex_lock(&page->limit_lock);
        int wait = bucket_take(&page->conversations_bucket, c->faults.conversations_per_second,
                               c->faults.conversations_per_second / 1000.0, c->now_ms);
        pthread_mutex_unlock(&page->limit_lock);
        if (wait > 0) {
            graph_ratelimited(c, 613);
            return;
        }
    }
    const char *platform = params_get(&c->params, "platform");
    const char *fields = params_get(&c->params, "fields");
    const char *limit_text = params_get(&c->params, "limit");
    const char *after = params_get(&c->params, "after");
    if (fields == NULL || fields[0] == '\0') {
        fields = "id,updated_time";
    }
    struct conv_fields cf = {0};
    if (each_field(fields, parse_conv_field, &cf) != 0) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "(#100) Tried accessing nonexisting field (%s) on node type (Conversation)",
                 cf.bad);
        graph_error(c, 400, 100, 0, "OAuthException", msg);
        return;
    }
    long limit = CONVERSATIONS_DEFAULT_LIMIT;
    if (limit_text != NULL && limit_text[0] != '\0') {
        char *end = NULL;
        limit = strtol(limit_text, &end, 10);
        if (*end != '\0' || limit <= 0) {
            graph_error(c, 400, 100, 0, "OAuthException",
                        "(#100) Param limit must be a positive integer");
            return;
        }
        if (limit > CONVERSATIONS_MAX_LIMIT) {
            limit = CONVERSATIONS_MAX_LIMIT;
        }
    }
    size_t start = 0;
    if (after != NULL && after[0] != '\0') {
        char value[32];
        char *end = NULL;
        unsigned long pos = 0;
        if (cursor_decode(after, "conversation", value, sizeof(value)) == 0) {
            pos = strtoul(value, &end, 10);
        }
        if (end == NULL || *end != '\0' || pos >= page->person_count) {
            graph_error(c, 400, 100, 0, "OAuthException",
                        "(#100) The parameter after is not a valid cursor");
            return;
        }
        start = pos + 1;
    }
    bool messenger = platform == NULL || platform[0] == '\0' || strcmp(platform, "messenger") == 0;
    size_t total = messenger ? page->person_count : 0;
    /* Graph pages may come short, or empty with a next link, before the end. An
     * empty page needs a cursor to send the reader back to, so only a page asked
     * for with "after" can come empty. */
    if (c->faults.empty_page_rate > 0.0 && start > 0 && start < total &&
        rng_thread_unit() < c->faults.empty_page_rate) {
        char *link = next_link(c, fields, limit, after);
        json_t *body = json_pack("{s:[], s:{s:{s:s, s:s}}}", "data", "paging", "cursors", "before",
                                 after, "after", after);
        if (link != NULL) {
            json_object_set_new(json_object_get(body, "paging"), "next", json_string(link));
        }
        free(link);
        graph_reply(c, 200, body);
        return;
    }
    long page_size = limit;
    if (c->faults.short_pages && page_size > 1) {
        page_size = 1 + (long)(rng_thread_u64() % (uint64_t)page_size);
    }
    size_t end = start + (size_t)page_size < total ? start + (size_t)page_size : total;
    if (start > end) {
        start = end;
    }
    json_t *data = json_array();
    for (size_t i = start; i < end; i++) {
        const struct msim_person *p = &page->people[page->conversation_order[i]];
        json_array_append_new(data, conversation_json(page, p, &cf));
    }
    json_t *body = json_pack("{s:o}", "data", data);
    if (end > start) {
        char pos[24];
        snprintf(pos, sizeof(pos), "%zu", start);
        char *before_cursor = cursor_encode("conversation", pos);
        snprintf(pos, sizeof(pos), "%zu", end - 1);
        char *after_cursor = cursor_encode("conversation", pos);
        json_t *paging =
            json_pack("{s:{s:s, s:s}}", "cursors", "before", before_cursor ? before_cursor : "",
                      "after", after_cursor ? after_cursor : "");
        if (end < total && after_cursor != NULL) {
            char *link = next_link(c, fields, limit, after_cursor);
            if (link != NULL) {
                json_object_set_new(paging, "next", json_string(link));
            }
            free(link);
        }
        json_object_set_new(body, "paging", paging);
        free(before_cursor);
        free(after_cursor);
    }
    graph_reply(c, 200, body);
}
