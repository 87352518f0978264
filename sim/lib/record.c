/* record.c: the message record (see record.h). */
#include "record.h"

#include "buf.h"
#include "strmap.h"

#include <inttypes.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_SHARDS 64

/* One distinct (workspace, recipient, content); owns its key. */
struct content_key {
    char *key;
    uint32_t count;
};

/* One recipient's total; owns its key "space\x1frecipient". */
struct recipient_count {
    char *key;
    int64_t count;
};

struct record_entry {
    uint64_t seq;
    char *space;
    char *channel; /* NULL for none */
    char *recipient;
    char *text;
    char *extra; /* the extra fields as JSON members ("\"a\":1,\"b\":null"), or NULL */
    char ts[64];
    int64_t arrival_ms;
    bool user_is_recipient;
    uint32_t occurrence;
    struct content_key *content;
};

struct record_shard {
    pthread_mutex_t lock;
    struct strmap *contents;   /* key -> struct content_key */
    struct strmap *recipients; /* key -> struct recipient_count */
    struct record_entry **entries;
    size_t entry_count;
    size_t entry_cap;
};

struct record {
    const char *space_key;
    struct record_shard shards[RECORD_SHARDS];
    atomic_uint_fast64_t next_seq;
    atomic_int_fast64_t messages;
    atomic_int_fast64_t recipients;
    atomic_int_fast64_t duplicates;
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void free_entry(struct record_entry *e)
{
    free(e->space);
    free(e->channel);
    free(e->recipient);
    free(e->text);
    free(e->extra);
    free(e);
}

static void free_content(void *ctx, const char *key, void *value)
{
    (void)ctx;
    (void)key;
    struct content_key *c = value;
    free(c->key);
    free(c);
}

static void free_recipient(void *ctx, const char *key, void *value)
{
    (void)ctx;
    (void)key;
    struct recipient_count *rc = value;
    free(rc->key);
    free(rc);
}

struct record *record_new(const char *space_key)
{
    struct record *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    r->space_key = space_key;
    atomic_init(&r->next_seq, 1);
    for (size_t i = 0; i < RECORD_SHARDS; i++) {
        pthread_mutex_init(&r->shards[i].lock, NULL);
        r->shards[i].contents = strmap_new(256);
        r->shards[i].recipients = strmap_new(256);
        if (r->shards[i].contents == NULL || r->shards[i].recipients == NULL) {
            record_free(r);
            return NULL;
        }
    }
    return r;
}

static void shard_clear(struct record_shard *s)
{
    for (size_t i = 0; i < s->entry_count; i++) {
        free_entry(s->entries[i]);
    }
    s->entry_count = 0;
    if (s->contents != NULL) {
        strmap_foreach(s->contents, free_content, NULL);
        strmap_clear(s->contents);
    }
    if (s->recipients != NULL) {
        strmap_foreach(s->recipients, free_recipient, NULL);
        strmap_clear(s->recipients);
    }
}

void record_free(struct record *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < RECORD_SHARDS; i++) {
        shard_clear(&r->shards[i]);
        free(r->shards[i].entries);
        strmap_free(r->shards[i].contents);
        strmap_free(r->shards[i].recipients);
        pthread_mutex_destroy(&r->shards[i].lock);
    }
    free(r);
}

void record_reset(struct record *r)
{
    for (size_t i = 0; i < RECORD_SHARDS; i++) {
        pthread_mutex_lock(&r->shards[i].lock);
        shard_clear(&r->shards[i]);
        pthread_mutex_unlock(&r->shards[i].lock);
    }
    atomic_store(&r->messages, 0);
    atomic_store(&r->recipients, 0);
    atomic_store(&r->duplicates, 0);
}

static struct record_entry *entry_new(const struct record_input *in, uint64_t seq)
{
    struct record_entry *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        json_decref(in->extra);
        return NULL;
    }
    e->seq = seq;
    e->space = strdup(in->space);
    e->channel = dup_or_null(in->channel);
    e->recipient = strdup(in->recipient);
    e->text = strdup(in->text ? in->text : "");
    bool want_extra = in->extra != NULL && json_object_size(in->extra) > 0;
    if (want_extra) {
        /* Kept as text: listing a large record is then concatenation only. */
        char *dumped = json_dumps(in->extra, JSON_COMPACT);
        size_t len = dumped ? strlen(dumped) : 0;
        if (len >= 2) {
            memmove(dumped, dumped + 1, len - 2);
            dumped[len - 2] = '\0';
        }
        e->extra = dumped;
    }
    json_decref(in->extra);
    snprintf(e->ts, sizeof(e->ts), "%s", in->ts);
    e->arrival_ms = in->arrival_ms;
    e->user_is_recipient = in->user_is_recipient;
    if (e->space == NULL || (in->channel && !e->channel) || e->recipient == NULL ||
        e->text == NULL || (want_extra && !e->extra)) {
        free_entry(e);
        return NULL;
    }
    return e;
}

/* Counts the message for its recipient, in the recipient's own shard. */
static void count_recipient(struct record *r, const struct record_input *in)
{
    char *key = NULL;
    if (asprintf(&key, "%s\x1f%s", in->space, in->recipient) < 0) {
        return;
    }
    struct record_shard *s = &r->shards[strmap_hash(key) % RECORD_SHARDS];
    pthread_mutex_lock(&s->lock);
    struct recipient_count *rc = strmap_get(s->recipients, key);
    if (rc == NULL) {
        rc = calloc(1, sizeof(*rc));
        if (rc != NULL) {
            rc->key = key;
            key = NULL;
            if (strmap_put(s->recipients, rc->key, rc) != 0) {
                free_recipient(NULL, NULL, rc);
                rc = NULL;
            } else {
                atomic_fetch_add(&r->recipients, 1);
            }
        }
    }
    if (rc != NULL) {
        rc->count++;
    }
    pthread_mutex_unlock(&s->lock);
    free(key);
}

uint32_t record_add(struct record *r, const struct record_input *in)
{
    const char *content =
        in->text && in->text[0] ? in->text : (in->alt_content ? in->alt_content : "");
    char *key = NULL;
    if (asprintf(&key, "%s\x1f%s\x1f%s", in->space, in->recipient, content) < 0) {
        json_decref(in->extra);
        return 0;
    }
    uint64_t seq = atomic_fetch_add(&r->next_seq, 1);
    struct record_entry *e = entry_new(in, seq);
    if (e == NULL) {
        free(key);
        return 0;
    }
    struct record_shard *s = &r->shards[strmap_hash(key) % RECORD_SHARDS];
    uint32_t occurrence = 0;
    pthread_mutex_lock(&s->lock);
    struct content_key *c = strmap_get(s->contents, key);
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            goto unlock;
        }
        c->key = key;
        key = NULL;
        if (strmap_put(s->contents, c->key, c) != 0) {
            free_content(NULL, NULL, c);
            goto unlock;
        }
    }
    if (s->entry_count == s->entry_cap) {
        size_t cap = s->entry_cap ? s->entry_cap * 2 : 256;
        struct record_entry **ne = realloc(s->entries, cap * sizeof(*ne));
        if (ne == NULL) {
            goto unlock;
        }
        s->entries = ne;
        s->entry_cap = cap;
    }
    occurrence = ++c->count;
    e->occurrence = occurrence;
    e->content = c;
    s->entries[s->entry_count++] = e;
    e = NULL;
unlock:
    pthread_mutex_unlock(&s->lock);
    free(key);
    if (e != NULL) {
        free_entry(e);
        return 0;
    }
    atomic_fetch_add(&r->messages, 1);
    if (occurrence > 1) {
        atomic_fetch_add(&r->duplicates, 1);
    }
    count_recipient(r, in);
    return occurrence;
}

void record_totals(struct record *r, struct record_totals *out)
{
    out->messages = atomic_load(&r->messages);
    out->recipients = atomic_load(&r->recipients);
    out->duplicates = atomic_load(&r->duplicates);
}

struct seq_item {
    uint64_t seq;
    char *json; /* the entry rendered, owned */
    size_t len;
};

static int seq_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct seq_item *)a)->seq;
    uint64_t y = ((const struct seq_item *)b)->seq;
    return x < y ? -1 : x > y;
}

/* Renders one entry; called under its shard's lock, so it only concatenates. */
static char *entry_render(const struct record *r, const struct record_entry *e, size_t *len)
{
    struct buf b;
    buf_init(&b, 256 + strlen(e->text) + (e->extra ? strlen(e->extra) : 0));
    buf_printf(&b, "{\"seq\":%" PRIu64 ",\"%s\":", e->seq, r->space_key);
    buf_json_str(&b, e->space);
    buf_puts(&b, ",\"channel\":");
    if (e->channel != NULL) {
        buf_json_str(&b, e->channel);
    } else {
        buf_puts(&b, "null");
    }
    buf_puts(&b, ",\"recipient\":");
    buf_json_str(&b, e->recipient);
    buf_puts(&b, ",\"user\":");
    if (e->user_is_recipient) {
        buf_json_str(&b, e->recipient);
    } else {
        buf_puts(&b, "null");
    }
    buf_puts(&b, ",\"text\":");
    buf_json_str(&b, e->text);
    buf_puts(&b, ",\"ts\":");
    buf_json_str(&b, e->ts);
    buf_printf(&b, ",\"arrival_ms\":%" PRId64 ",\"count\":%" PRIu32 ",\"occurrence\":%" PRIu32,
               e->arrival_ms, e->content->count, e->occurrence);
    if (e->extra != NULL && e->extra[0] != '\0') {
        buf_puts(&b, ",");
        buf_puts(&b, e->extra);
    }
    buf_puts(&b, "}");
    return buf_take(&b, len);
}

char *record_messages_text(struct record *r, const char *space, const char *recipient,
                           const char *channel, int64_t since_seq, size_t *len, size_t *count_out)
{
    struct seq_item *items = NULL;
    size_t count = 0;
    size_t cap = 0;
    size_t total_len = 2;
    bool failed = false;
    for (size_t i = 0; i < RECORD_SHARDS && !failed; i++) {
        struct record_shard *s = &r->shards[i];
        pthread_mutex_lock(&s->lock);
        for (size_t j = 0; j < s->entry_count; j++) {
            const struct record_entry *e = s->entries[j];
            if ((int64_t)e->seq <= since_seq || (space && strcmp(space, e->space) != 0) ||
                (recipient && strcmp(recipient, e->recipient) != 0) ||
                (channel && (!e->channel || strcmp(channel, e->channel) != 0))) {
                continue;
            }
            if (count == cap) {
                cap = cap ? cap * 2 : 1024;
                struct seq_item *ni = realloc(items, cap * sizeof(*ni));
                if (ni == NULL) {
                    failed = true;
                    break;
                }
                items = ni;
            }
            items[count].seq = e->seq;
            items[count].json = entry_render(r, e, &items[count].len);
            if (items[count].json == NULL) {
                failed = true;
                break;
            }
            total_len += items[count].len + 1;
            count++;
        }
        pthread_mutex_unlock(&s->lock);
    }
    if (count > 1) {
        qsort(items, count, sizeof(*items), seq_cmp);
    }
    struct buf out;
    buf_init(&out, failed ? 16 : total_len + 1);
    buf_puts(&out, "[");
    for (size_t i = 0; i < count; i++) {
        if (!failed) {
            if (i > 0) {
                buf_puts(&out, ",");
            }
            buf_append(&out, items[i].json, items[i].len);
        }
        free(items[i].json);
    }
    free(items);
    buf_puts(&out, "]");
    if (failed) {
        buf_free(&out);
        return NULL;
    }
    *count_out = count;
    return buf_take(&out, len);
}

struct recipient_item {
    char *key; /* copied: "space\x1frecipient" */
    int64_t count;
};

struct recipients_ctx {
    struct recipient_item *items;
    size_t count;
    size_t cap;
    const char *space;
    bool failed;
};

static void collect_recipient(void *ctx, const char *key, void *value)
{
    struct recipients_ctx *rc = ctx;
    const struct recipient_count *cnt = value;
    const char *sep = strchr(key, '\x1f');
    size_t space_len = sep ? (size_t)(sep - key) : 0;
    if (sep == NULL || rc->failed ||
        (rc->space != NULL &&
         (strlen(rc->space) != space_len || strncmp(rc->space, key, space_len) != 0))) {
        return;
    }
    if (rc->count == rc->cap) {
        size_t cap = rc->cap ? rc->cap * 2 : 256;
        struct recipient_item *ni = realloc(rc->items, cap * sizeof(*ni));
        if (ni == NULL) {
            rc->failed = true;
            return;
        }
        rc->items = ni;
        rc->cap = cap;
    }
    rc->items[rc->count].key = strdup(key);
    rc->items[rc->count].count = cnt->count;
    rc->failed = rc->items[rc->count].key == NULL;
    rc->count += !rc->failed;
}

/* The separator sorts before every printable character, so sorting the keys
 * sorts by space, then by recipient. */
static int recipient_cmp(const void *a, const void *b)
{
    return strcmp(((const struct recipient_item *)a)->key, ((const struct recipient_item *)b)->key);
}

json_t *record_recipients_json(struct record *r, const char *space)
{
    struct recipients_ctx ctx = {.space = space};
    for (size_t i = 0; i < RECORD_SHARDS; i++) {
        pthread_mutex_lock(&r->shards[i].lock);
        strmap_foreach(r->shards[i].recipients, collect_recipient, &ctx);
        pthread_mutex_unlock(&r->shards[i].lock);
    }
    if (ctx.count > 1) {
        qsort(ctx.items, ctx.count, sizeof(*ctx.items), recipient_cmp);
    }
    json_t *arr = ctx.failed ? NULL : json_array();
    for (size_t i = 0; i < ctx.count; i++) {
        if (arr != NULL) {
            const char *sep = strchr(ctx.items[i].key, '\x1f');
            json_array_append_new(arr, json_pack("{s:s%, s:s, s:I}", r->space_key, ctx.items[i].key,
                                                 (size_t)(sep - ctx.items[i].key), "recipient",
                                                 sep + 1, "count", (json_int_t)ctx.items[i].count));
        }
        free(ctx.items[i].key);
    }
    free(ctx.items);
    return arr;
}
