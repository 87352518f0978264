/* bucket.c: see bucket.h. */
#include "bucket.h"

void bucket_refill(struct bucket *b, double capacity, double per_ms, int64_t now_ms)
{
    if (!b->started) {
        b->started = true;
        b->tokens = capacity;
        b->last_ms = now_ms;
        return;
    }
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * per_ms;
        b->last_ms = now_ms;
    }
    if (b->tokens > capacity) {
        b->tokens = capacity;
    }
}

int bucket_wait_s(const struct bucket *b, double per_ms)
{
    if (b->tokens >= 1.0) {
        return 0;
    }
    double wait_ms = (1.0 - b->tokens) / per_ms;
    int s = (int)(wait_ms / 1000.0);
    if (s * 1000.0 < wait_ms) {
        s++; /* round up: waiting less than asked gets another refusal */
    }
    return s < 1 ? 1 : s;
}

int bucket_take(struct bucket *b, double capacity, double per_ms, int64_t now_ms)
{
    bucket_refill(b, capacity, per_ms, now_ms);
    int wait = bucket_wait_s(b, per_ms);
    if (wait == 0) {
        b->tokens -= 1.0;
    }
    return wait;
}
