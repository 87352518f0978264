/* record.h: every message a simulator received, for tests to inspect.
 *
 * A "space" is what owns the recipients: a Slack workspace (team_id) or a
 * Messenger page (page_id); record_new() names the key the listings use for it.
 * A duplicate is a message to the same recipient (a user, or a channel for
 * channel posts) in the same space with the same content (its text, or its
 * alternative content, such as Slack blocks, when it has no text). Each message remembers which
 * occurrence it was, and the listing shows how often its content has been received in all.
 *
 * The record is split into shards, each with its own lock, so concurrent sends
 * contend only when they hash to the same shard, and a listing holds one shard's
 * lock at a time.
 */
#ifndef SIM_RECORD_H
#define SIM_RECORD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct record;

/* Strings are borrowed and copied by record_add(). */
struct record_input {
    const char *space;       /* team id or page id */
    const char *channel;     /* the channel answered (D... for Slack DMs); NULL for none */
    const char *recipient;   /* the user id for direct messages, else the channel id */
    const char *text;        /* "" when absent */
    const char *alt_content; /* compared instead of text when text is empty; may be NULL */
    const char *ts;          /* the platform's message id or timestamp */
    int64_t arrival_ms;
    bool user_is_recipient; /* recipient is a user id: listed as "user" too */
    json_t *extra;          /* taken: more fields for the listing (may be NULL) */
};

struct record_totals {
    int64_t messages;
    int64_t recipients; /* distinct recipients */
    int64_t duplicates; /* messages whose content the recipient had received before */
};

/* space_key: the listings' name for the space ("team_id", "page_id"); a literal. */
struct record *record_new(const char *space_key);
void record_free(struct record *r);
/* Returns the occurrence (1 for the first time), or 0 when out of memory. */
uint32_t record_add(struct record *r, const struct record_input *in);
void record_totals(struct record *r, struct record_totals *out);
void record_reset(struct record *r);

/* The filters may be NULL; since_seq 0 lists everything. Returns the JSON text
 * of an array of message objects in arrival order (free with free()) and their
 * number in *count, or NULL when out of memory. */
char *record_messages_text(struct record *r, const char *space, const char *recipient,
                           const char *channel, int64_t since_seq, size_t *len, size_t *count);
/* New reference: [{<space_key>, recipient, count}] sorted by space and recipient. */
json_t *record_recipients_json(struct record *r, const char *space);

#endif
