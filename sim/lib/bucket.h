/* bucket.h: a token bucket, the shape of every platform rate limit the
 * simulators model. The caller locks; capacity and rate are passed on each call,
 * so a limit changed through /_sim/faults applies from the next call on. */
#ifndef SIM_BUCKET_H
#define SIM_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

struct bucket {
    double tokens;
    int64_t last_ms;
    bool started; /* false: full on first use (and after a reset) */
};

/* Adds the tokens earned since the last call, up to capacity. */
void bucket_refill(struct bucket *b, double capacity, double per_ms, int64_t now_ms);
/* Whole seconds until one token is there (at least 1), or 0 when it is. */
int bucket_wait_s(const struct bucket *b, double per_ms);
/* Refill, then take one token if there is one: returns 0, else the wait. */
int bucket_take(struct bucket *b, double capacity, double per_ms, int64_t now_ms);

#endif
