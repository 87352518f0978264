/* methods_users.c: auth.test, users.list and users.info.
 *
 * A member object is the user's pre-rendered JSON plus its time zone fields,
 * which are appended per call because tz_offset follows daylight-saving time.
 * Both need users:read (api.c checks it); the profile's email comes only to a
 * token with users:read.email, as on Slack.
 */
#include "api.h"

#include "buf.h"
#include "rng.h"

#include <stdlib.h>
#include <string.h>

/* Slack answers limit_required when asked for everything of a large team. */
#define USERS_LIST_UNPAGED_MAX 1000

void users_render(struct buf *b, const struct sim_user *u, bool include_locale, bool with_email)
{
    /* The head ends with the profile's closing brace; the object stays open. */
    if (with_email || u->email_len == 0) {
        buf_append(b, u->json_head, u->json_head_len);
    } else {
        size_t after = u->email_at + u->email_len;
        buf_append(b, u->json_head, u->email_at);
        buf_append(b, u->json_head + after, u->json_head_len - after);
    }
    if (include_locale) {
        buf_puts(b, ",\"locale\":\"en-US\"");
    }
    if (u->zone != NULL) {
        buf_puts(b, ",\"tz\":");
        buf_json_str(b, u->zone->name);
        buf_puts(b, ",\"tz_label\":");
        buf_json_str(b, zone_label(u->zone));
        buf_printf(b, ",\"tz_offset\":%d", atomic_load(&u->zone->offset_s));
    } else if (u->tz_null) {
        buf_puts(b, ",\"tz\":null");
    }
    buf_puts(b, "}");
}

void method_auth_test(struct api_call *c)
{
    const struct sim_workspace *ws = c->ws;
    char url[160];
    snprintf(url, sizeof(url), "https://%s.slack.com/", ws->domain);
    api_reply(c, json_pack("{s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "ok", 1, "url", url, "team",
                           ws->name, "user", ws->bot_user->name, "team_id", ws->team_id, "user_id",
                           ws->bot_user->id, "bot_id", ws->bot_user->bot_id,
                           "is_enterprise_install", 0));
}

void method_users_list(struct api_call *c)
{
    const struct sim_workspace *ws = c->ws;
    long limit = api_arg_limit(c, 0, 1000);
    if (limit < 0) {
        limit = 0; /* Slack ignores a limit it cannot read */
    }
    size_t start = 0;
    const char *cursor = params_get(&c->params, "cursor");
    if (cursor != NULL && cursor[0] != '\0') {
        char id[64];
        const struct sim_user *from = NULL;
        if (cursor_decode(cursor, "user", id, sizeof(id)) == 0) {
            from = population_user(ws, id);
        }
        if (from == NULL) {
            api_reply_error(c, "invalid_cursor");
            return;
        }
        start = from->index;
    }
    size_t remaining = ws->user_count - start;
    if (limit == 0 && remaining > USERS_LIST_UNPAGED_MAX) {
        api_reply_error(c, "limit_required");
        return;
    }
    size_t n = limit == 0 ? remaining : (size_t)limit;
    if (c->faults.short_pages && n > 1) {
        n = 1 + (size_t)(rng_thread_u64() % n);
    }
    if (c->faults.empty_page_rate > 0.0 && rng_thread_unit() < c->faults.empty_page_rate) {
        n = 0;
    }
    size_t end = start + n < ws->user_count ? start + n : ws->user_count;
    bool locale = api_arg_bool(c, "include_locale");
    bool email = api_has_scope(c, SCOPE_USERS_READ_EMAIL);

    struct buf b;
    buf_init(&b, 1024 + (end - start) * 1400);
    buf_puts(&b, "{\"ok\":true,\"members\":[");
    bool first = true;
    for (size_t i = start; i < end; i++) {
        if (atomic_load(&ws->users[i].away)) {
            continue; /* left the workspace, or not joined yet (/_sim/membership) */
        }
        if (!first) {
            buf_puts(&b, ",");
        }
        first = false;
        users_render(&b, &ws->users[i], locale, email);
    }
    buf_printf(&b, "],\"cache_ts\":%lld,\"response_metadata\":{\"next_cursor\":\"",
               (long long)(c->now_ms / 1000));
    if (end < ws->user_count) {
        char *next = cursor_encode("user", ws->users[end].id);
        buf_puts(&b, next ? next : "");
        free(next);
    }
    buf_puts(&b, "\"}}");
    api_reply_buf(c, &b);
}

void method_users_info(struct api_call *c)
{
    const char *id = params_get(&c->params, "user");
    const struct sim_user *u = id ? population_user(c->ws, id) : NULL;
    if (u == NULL) {
        api_reply_error(c, "user_not_found");
        return;
    }
    struct buf b;
    buf_init(&b, 2048);
    buf_puts(&b, "{\"ok\":true,\"user\":");
    users_render(&b, u, api_arg_bool(c, "include_locale"),
                 api_has_scope(c, SCOPE_USERS_READ_EMAIL));
    buf_puts(&b, "}");
    api_reply_buf(c, &b);
}
