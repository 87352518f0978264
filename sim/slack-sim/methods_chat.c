/* methods_chat.c: chat.postMessage, the call every campaign is made of.
 *
 * The checks run in Slack's order: where the message goes, the rate limits for
 * that channel, then what the message says. A message that passes is recorded
 * before it is answered, so a "dropped" answer (the drop_rate fault) leaves the
 * ambiguous case a sender must handle: delivered, but no proof of it.
 */
#include "api.h"

#include "rng.h"

#include "bcrm/http.h"
#include "bcrm/metrics.h"

#include <stdlib.h>
#include <string.h>

#define MAX_TEXT_CHARS 40000
#define MAX_BLOCKS 50
#define MAX_ATTACHMENTS 100

/* Characters, not bytes: Slack counts what people see. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        n += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return n;
}

/* Parses blocks; NULL (with *bad set) when they are not what Block Kit accepts
 * at its loosest: an array of at most 50 objects, each with a string type. */
static json_t *parse_blocks(const char *text, bool *bad)
{
    *bad = false;
    if (text == NULL || text[0] == '\0') {
        return NULL;
    }
    json_t *blocks = json_loads(text, 0, NULL);
    bool ok = json_is_array(blocks) && json_array_size(blocks) <= MAX_BLOCKS;
    size_t i;
    json_t *block;
    json_array_foreach(blocks, i, block)
    {
        ok = ok && json_is_object(block) && json_is_string(json_object_get(block, "type"));
    }
    if (!ok) {
        json_decref(blocks);
        *bad = true;
        return NULL;
    }
    return blocks;
}

static bool metadata_valid(const char *text)
{
    json_t *m = json_loads(text, 0, NULL);
    bool ok = json_is_object(m) && json_is_string(json_object_get(m, "event_type")) &&
              json_is_object(json_object_get(m, "event_payload"));
    json_decref(m);
    return ok;
}

static bool ts_valid(const char *ts)
{
    size_t len = strlen(ts);
    if (len != 17 || ts[10] != '.') {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (i != 10 && (ts[i] < '0' || ts[i] > '9')) {
            return false;
        }
    }
    return true;
}

struct post_target {
    const char *channel;         /* the id answered */
    const struct sim_user *user; /* for direct messages */
};

/* Resolves channel (a user id, a DM id or a channel id). Returns the error code,
 * or NULL when the bot may post there. write_public: the token has chat:write.public;
 * refuse_user_id: the refuse_user_id_posts fault. */
static const char *resolve_target(const struct sim_workspace *ws, const char *channel,
                                  bool write_public, bool refuse_user_id, struct post_target *t)
{
    if (channel == NULL || channel[0] == '\0') {
        return "channel_not_found";
    }
    const struct sim_user *u = NULL;
    if ((channel[0] == 'U' || channel[0] == 'W') && refuse_user_id) {
        /* A token that may not open DMs implicitly: the DM id is needed. */
        return "channel_not_found";
    }
    if (channel[0] == 'U' || channel[0] == 'W') {
        u = population_user(ws, channel);
    } else if (channel[0] == 'D') {
        u = population_user_by_dm(ws, channel);
    } else {
        const struct sim_channel *ch = population_channel(ws, channel);
        if (ch == NULL || (ch->is_private && !ch->bot_member)) {
            return "channel_not_found";
        }
        if (ch->is_archived) {
            return "is_archived";
        }
        /* chat:write.public lets a bot post in a public channel it is not in. */
        if (!ch->bot_member && !(write_public && !ch->is_private)) {
            return "not_in_channel";
        }
        t->channel = ch->id;
        t->user = NULL;
        return NULL;
    }
    if (u == NULL) {
        return "channel_not_found";
    }
    if (u->kind != SIM_USER_PERSON) {
        return "cannot_dm_bot";
    }
    if (u->deleted) {
        return "is_archived"; /* a deactivated person's DM is archived */
    }
    t->channel = u->dm_id;
    t->user = u;
    return NULL;
}

void method_chat_post_message(struct api_call *c)
{
    struct sim *sim = c->sim;
    const struct sim_workspace *ws = c->ws;
    struct post_target target;
    const char *err = resolve_target(ws, params_get(&c->params, "channel"),
                                     api_has_scope(c, SCOPE_CHAT_WRITE_PUBLIC),
                                     c->faults.refuse_user_id_posts, &target);
    if (err != NULL) {
        api_reply_error(c, err);
        return;
    }
    if (c->faults.limits.enabled) {
        int wait = ratelimit_take_post(sim->limits, ws->index, target.channel, &c->faults.limits,
                                       c->now_ms);
        if (wait > 0) {
            api_reply_ratelimited(c, wait);
            return;
        }
    }
    const char *text = params_get(&c->params, "text");
    const char *blocks_text = params_get(&c->params, "blocks");
    const char *attachments_text = params_get(&c->params, "attachments");
    const char *metadata = params_get(&c->params, "metadata");
    const char *thread_ts = params_get(&c->params, "thread_ts");
    bool bad_blocks;
    json_t *blocks = parse_blocks(blocks_text, &bad_blocks);
    json_t *attachments = NULL;
    if (bad_blocks) {
        api_reply_error(c, "invalid_blocks");
        return;
    }
    if (attachments_text != NULL && attachments_text[0] != '\0') {
        attachments = json_loads(attachments_text, 0, NULL);
        if (!json_is_array(attachments)) {
            err = "invalid_attachments";
        } else if (json_array_size(attachments) > MAX_ATTACHMENTS) {
            err = "too_many_attachments";
        }
    }
    bool has_text = text != NULL && text[0] != '\0';
    if (err == NULL && !has_text && blocks == NULL && json_array_size(attachments) == 0) {
        err = "no_text";
    } else if (err == NULL && has_text && utf8_chars(text) > MAX_TEXT_CHARS) {
        err = "msg_too_long";
    } else if (err == NULL && metadata != NULL && metadata[0] != '\0' &&
               !metadata_valid(metadata)) {
        err = "invalid_metadata_format";
    } else if (err == NULL && thread_ts != NULL && thread_ts[0] != '\0' && !ts_valid(thread_ts)) {
        err = "invalid_thread_ts";
    }
    json_decref(attachments);
    if (err != NULL) {
        json_decref(blocks);
        api_reply_error(c, err);
        return;
    }

    char ts[24];
    api_next_ts(sim, ts);
    const char *thread = thread_ts && thread_ts[0] ? thread_ts : NULL;
    json_t *extra = json_object();
    json_object_set_new(extra, "blocks", blocks ? json_string(blocks_text) : json_null());
    json_object_set_new(extra, "metadata",
                        metadata && metadata[0] ? json_string(metadata) : json_null());
    json_object_set_new(extra, "thread_ts", thread ? json_string(thread) : json_null());
    struct record_input in = {
        .space = ws->team_id,
        .channel = target.channel,
        .recipient = target.user ? target.user->id : target.channel,
        .user_is_recipient = target.user != NULL,
        .text = has_text ? text : "",
        .alt_content = blocks ? blocks_text : NULL,
        .ts = ts,
        .arrival_ms = c->now_ms,
        .extra = extra,
    };
    if (record_add(sim->record, &in) == 0) {
        json_decref(blocks);
        api_reply_error(c, "fatal_error");
        c->resp->status = 500;
        return;
    }
    metric_inc(sim->m_messages);

    json_t *message =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", "message", "text", in.text, "user",
                  ws->bot_user->id, "ts", ts, "bot_id", ws->bot_user->bot_id, "team", ws->team_id);
    if (blocks != NULL) {
        json_object_set_new(message, "blocks", blocks);
    }
    if (thread != NULL) {
        json_object_set_new(message, "thread_ts", json_string(thread));
    }
    api_reply(c, json_pack("{s:b, s:s, s:s, s:o}", "ok", 1, "channel", target.channel, "ts", ts,
                           "message", message));
    if (c->faults.drop_rate > 0.0 && rng_thread_unit() < c->faults.drop_rate) {
        atomic_fetch_add(&sim->counters.dropped, 1);
        c->resp->drop = true;
    }
}
