/* methods_conversations.c: conversations.open, conversations.list and
 * conversations.members.
 *
 * The bot sees every public channel and only the private channels it is a member
 * of; any other channel id is channel_not_found, as on Slack. Direct-message ids
 * are stable per user (generated with the population), so conversations.open
 * answers the same D... id every time. Reading a kind of conversation takes
 * that kind's scope (channels:read for public channels, groups:read for private
 * ones, im:read and mpim:read for direct messages), so conversations.list checks
 * the types asked for and conversations.members the channel.
 */
#include "api.h"

#include "rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool channel_visible(const struct sim_channel *ch)
{
    return !ch->is_private || ch->bot_member;
}

static json_t *im_json(const struct sim_user *u, bool is_open)
{
    return json_pack("{s:s, s:I, s:b, s:b, s:b, s:s, s:i, s:b, s:s, s:i, s:i}", "id", u->dm_id,
                     "created", (json_int_t)1600000000, "is_im", 1, "is_org_shared", 0,
                     "is_archived", u->deleted, "user", u->id, "priority", 0, "is_open", is_open,
                     "last_read", "0000000000.000000", "unread_count", 0, "unread_count_display",
                     0);
}

void method_conversations_open(struct api_call *c)
{
    const char *users = params_get(&c->params, "users");
    const char *channel = params_get(&c->params, "channel");
    const struct sim_user *u = NULL;
    if (users != NULL && users[0] != '\0') {
        if (strchr(users, ',') != NULL) {
            /* Group DMs (mpim) are outside what the simulator models. */
            api_reply_error(c, "method_not_supported_for_channel_type");
            return;
        }
        u = population_user(c->ws, users);
        if (u == NULL) {
            api_reply_error(c, "user_not_found");
            return;
        }
        if (u->deleted) {
            api_reply_error(c, "user_disabled");
            return;
        }
    } else if (channel != NULL && channel[0] != '\0') {
        u = population_user_by_dm(c->ws, channel);
        if (u == NULL) {
            api_reply_error(c, population_channel(c->ws, channel)
                                   ? "method_not_supported_for_channel_type"
                                   : "channel_not_found");
            return;
        }
    } else {
        api_reply_error(c, "users_list_not_supplied");
        return;
    }
    struct sim_user *mu = (struct sim_user *)u; /* only the atomic flag changes */
    bool already = atomic_exchange(&mu->dm_open, true);
    json_t *ch =
        api_arg_bool(c, "return_im") ? im_json(u, true) : json_pack("{s:s}", "id", u->dm_id);
    api_reply(c, json_pack("{s:b, s:b, s:b, s:o}", "ok", 1, "no_op", already, "already_open",
                           already, "channel", ch));
}

static json_t *channel_json(const struct sim_workspace *ws, const struct sim_channel *ch)
{
    json_t *topic = json_pack("{s:s, s:s, s:i}", "value", "", "creator", "", "last_set", 0);
    json_t *purpose = json_pack("{s:s, s:s, s:I}", "value", "A simulated channel.", "creator",
                                ch->creator->id, "last_set", (json_int_t)ch->created);
    json_t *o = json_pack(
        "{s:s, s:s, s:b, s:b, s:b, s:I, s:b, s:b, s:i, s:s, s:s, s:b, s:b,"
        " s:b, s:b, s:b, s:b, s:b, s:b, s:o, s:o, s:[], s:I}",
        "id", ch->id, "name", ch->name, "is_channel", 1, "is_group", 0, "is_im", 0, "created",
        (json_int_t)ch->created, "is_archived", ch->is_archived, "is_general", ch->is_general,
        "unlinked", 0, "name_normalized", ch->name, "creator", ch->creator->id, "is_shared", 0,
        "is_org_shared", 0, "is_ext_shared", 0, "is_pending_ext_shared", 0, "is_private",
        ch->is_private, "is_mpim", 0, "is_member", ch->bot_member, "is_open", 0, "topic", topic,
        "purpose", purpose, "previous_names", "num_members", (json_int_t)ch->member_count);
    (void)ws;
    return o;
}

/* Whether types (comma-separated, as Slack takes it) asks for kind. */
static bool types_include(const char *types, const char *kind)
{
    size_t klen = strlen(kind);
    for (const char *p = types; p != NULL && *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len > 0 && *p == ' ') {
            p++;
            len--;
        }
        if (len == klen && strncmp(p, kind, klen) == 0) {
            return true;
        }
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

void method_conversations_list(struct api_call *c)
{
    const struct sim_workspace *ws = c->ws;
    const char *types = params_get(&c->params, "types");
    if (types == NULL || types[0] == '\0') {
        types = "public_channel";
    }
    bool want_public = types_include(types, "public_channel");
    bool want_private = types_include(types, "private_channel");
    static const struct {
        const char *type;
        enum sim_scope scope;
    } type_scopes[] = {{"public_channel", SCOPE_CHANNELS_READ},
                       {"private_channel", SCOPE_GROUPS_READ},
                       {"im", SCOPE_IM_READ},
                       {"mpim", SCOPE_MPIM_READ}};
    for (size_t t = 0; t < sizeof(type_scopes) / sizeof(type_scopes[0]); t++) {
        if (types_include(types, type_scopes[t].type) && !api_has_scope(c, type_scopes[t].scope)) {
            api_reply_missing_scope(c, type_scopes[t].scope);
            return;
        }
    }
    bool exclude_archived = api_arg_bool(c, "exclude_archived");
    long limit = api_arg_limit(c, 100, 1000);
    if (limit <= 0) {
        limit = 100;
    }
    size_t start = 0;
    const char *cursor = params_get(&c->params, "cursor");
    if (cursor != NULL && cursor[0] != '\0') {
        char id[64];
        const struct sim_channel *from = NULL;
        if (cursor_decode(cursor, "team", id, sizeof(id)) == 0) {
            from = population_channel(ws, id);
        }
        if (from == NULL) {
            /* conversations.list has no invalid_cursor in Slack's list; it answers
             * invalid_cursor nonetheless. */
            api_reply_error(c, "invalid_cursor");
            return;
        }
        start = (size_t)(from - ws->channels);
    }
    /* Slack fills conversations.list pages after filtering, so pages come short or
     * even empty before the end; the faults make that happen on demand. */
    if (c->faults.short_pages && limit > 1) {
        limit = 1 + (long)(rng_thread_u64() % (uint64_t)limit);
    }
    if (c->faults.empty_page_rate > 0.0 && rng_thread_unit() < c->faults.empty_page_rate &&
        start < ws->channel_count) {
        char *same = cursor_encode("team", ws->channels[start].id);
        api_reply(c, json_pack("{s:b, s:[], s:{s:s}}", "ok", 1, "channels", "response_metadata",
                               "next_cursor", same ? same : ""));
        free(same);
        return;
    }
    json_t *channels = json_array();
    size_t i = start;
    for (; i < ws->channel_count && json_array_size(channels) < (size_t)limit; i++) {
        const struct sim_channel *ch = &ws->channels[i];
        if (!channel_visible(ch) || (ch->is_private ? !want_private : !want_public) ||
            (exclude_archived && ch->is_archived)) {
            continue;
        }
        json_array_append_new(channels, channel_json(ws, ch));
    }
    char *next = i < ws->channel_count ? cursor_encode("team", ws->channels[i].id) : NULL;
    api_reply(c, json_pack("{s:b, s:o, s:{s:s}}", "ok", 1, "channels", channels,
                           "response_metadata", "next_cursor", next ? next : ""));
    free(next);
}

void method_conversations_members(struct api_call *c)
{
    const struct sim_workspace *ws = c->ws;
    const char *id = params_get(&c->params, "channel");
    const struct sim_channel *ch = id ? population_channel(ws, id) : NULL;
    const struct sim_user *dm_user = id ? population_user_by_dm(ws, id) : NULL;
    if ((ch == NULL || !channel_visible(ch)) && dm_user == NULL) {
        api_reply_error(c, "channel_not_found");
        return;
    }
    enum sim_scope needed = dm_user != NULL  ? SCOPE_IM_READ
                            : ch->is_private ? SCOPE_GROUPS_READ
                                             : SCOPE_CHANNELS_READ;
    if (!api_has_scope(c, needed)) {
        api_reply_missing_scope(c, needed);
        return;
    }
    long limit = api_arg_limit(c, 100, 1000);
    if (limit <= 0) {
        api_reply_error(c, "invalid_limit");
        return;
    }
    size_t offset = 0;
    const char *cursor = params_get(&c->params, "cursor");
    if (cursor != NULL && cursor[0] != '\0') {
        char value[64];
        char *end = NULL;
        unsigned long off = 0;
        char *colon = NULL;
        if (cursor_decode(cursor, "member", value, sizeof(value)) == 0 &&
            (colon = strrchr(value, ':')) != NULL) {
            *colon = '\0';
            off = strtoul(colon + 1, &end, 10);
        }
        /* Offset 0 is a cursor too: an empty first page (empty_page_rate) points
         * back at the start. */
        if (colon == NULL || *end != '\0' || strcmp(value, id) != 0 ||
            (ch != NULL && off >= ch->member_count) || (dm_user != NULL && off >= 2)) {
            api_reply_error(c, "invalid_cursor");
            return;
        }
        offset = off;
    }
    size_t total = dm_user != NULL ? 2 : ch->member_count;
    /* The page faults, as for the other lists: shorter than asked, or empty with
     * a cursor to the same place. */
    size_t n = (size_t)limit;
    if (c->faults.short_pages && n > 1) {
        n = 1 + (size_t)(rng_thread_u64() % n);
    }
    if (c->faults.empty_page_rate > 0.0 && offset < total &&
        rng_thread_unit() < c->faults.empty_page_rate) {
        n = 0;
    }
    size_t end = offset + n < total ? offset + n : total;
    json_t *members = json_array();
    for (size_t i = offset; i < end; i++) {
        const char *member = dm_user == NULL ? ws->users[ch->members[i]].id
                             : i == 0        ? dm_user->id
                                             : ws->bot_user->id;
        json_array_append_new(members, json_string(member));
    }
    char next_value[64] = "";
    char *next = NULL;
    if (end < total) {
        snprintf(next_value, sizeof(next_value), "%s:%zu", id, end);
        next = cursor_encode("member", next_value);
    }
    api_reply(c, json_pack("{s:b, s:o, s:{s:s}}", "ok", 1, "members", members, "response_metadata",
                           "next_cursor", next ? next : ""));
    free(next);
}
