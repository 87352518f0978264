/* slack_bots.c: what the send loop keeps per bot between sends.
 *
 * A short list (a sender serves tens of bots, not thousands), read on the paths
 * that need it: a profile miss, and the choice between posting to a user id and
 * opening the DM. A bot's record holds no profile and no token, and goes after
 * it has been idle for two profile lifetimes.
 */
#include "slack.h"

#include <stdlib.h>
#include <string.h>

/* users.list is in Slack's tier 2 (20+ calls a minute per workspace and app):
 * a fill may read this many pages at once, then one page every three seconds. */
#define SLACK_PAGES_PER_MINUTE 20.0
#define SLACK_PAGE_BURST 20.0

struct slack_bot *slack_bot_find(struct slack_state *s, const char *bot_id)
{
    for (struct slack_bot *b = s->bots; b != NULL; b = b->next) {
        if (strcmp(b->bot_id, bot_id) == 0) {
            return b;
        }
    }
    return NULL;
}

struct slack_bot *slack_bot_get(struct slack_state *s, const char *bot_id, int64_t now_ms)
{
    struct slack_bot *b = slack_bot_find(s, bot_id);
    if (b == NULL) {
        b = calloc(1, sizeof(*b));
        if (b == NULL || (b->bot_id = strdup(bot_id)) == NULL) {
            free(b);
            return NULL;
        }
        b->page_tokens = SLACK_PAGE_BURST;
        b->page_refill_ms = now_ms;
        b->miss_window_ms = now_ms;
        b->next = s->bots;
        s->bots = b;
    }
    b->last_used_ms = now_ms;
    return b;
}

bool slack_bot_take_page(struct slack_bot *b, int64_t now_ms)
{
    if (now_ms > b->page_refill_ms) {
        b->page_tokens += (double)(now_ms - b->page_refill_ms) * SLACK_PAGES_PER_MINUTE / 60000.0;
        if (b->page_tokens > SLACK_PAGE_BURST) {
            b->page_tokens = SLACK_PAGE_BURST;
        }
        b->page_refill_ms = now_ms;
    }
    if (b->page_tokens < 1.0) {
        return false;
    }
    b->page_tokens -= 1.0;
    return true;
}

static void bot_free(struct slack_bot *b)
{
    free(b->bot_id);
    free(b->cursor);
    free(b);
}

void slack_bots_sweep(struct slack_state *s, int64_t now_ms)
{
    struct slack_bot **link = &s->bots;
    while (*link != NULL) {
        struct slack_bot *b = *link;
        /* No send waits that long; a page in flight still needs the record. */
        if (!b->fetching && now_ms - b->last_used_ms > 2 * s->profile_ttl_ms) {
            *link = b->next;
            bot_free(b);
        } else {
            link = &b->next;
        }
    }
}

void slack_bots_free(struct slack_state *s)
{
    while (s->bots != NULL) {
        struct slack_bot *b = s->bots;
        s->bots = b->next;
        bot_free(b);
    }
}
