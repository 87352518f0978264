/* rng.c: see rng.h. */
#include "rng.h"

#include <stdatomic.h>
#include <time.h>

uint64_t rng_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t rng_hash4(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    uint64_t h = rng_mix64(a);
    h = rng_mix64(h ^ b);
    h = rng_mix64(h ^ c);
    return rng_mix64(h ^ d);
}

uint64_t rng_next(struct rng *r)
{
    r->state += 0x9e3779b97f4a7c15ULL;
    return rng_mix64(r->state);
}

static void rng_chars(char *out, uint64_t h, size_t n, const char *alphabet, uint64_t base)
{
    for (size_t i = 0; i < n; i++) {
        if (i % 12 == 0) {
            h = rng_mix64(h + i);
        }
        out[i] = alphabet[h % base];
        h /= base;
    }
    out[n] = '\0';
}

void rng_slack_id(char *out, char prefix, uint64_t h, size_t n)
{
    out[0] = prefix;
    rng_chars(out + 1, h, n, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 36);
}

void rng_token_lower(char *out, uint64_t h, size_t n)
{
    rng_chars(out, h, n, "abcdefghijklmnopqrstuvwxyz0123456789", 36);
}

static _Thread_local uint64_t rng_thread_state;
static atomic_uint_fast64_t rng_thread_seq;

uint64_t rng_thread_u64(void)
{
    if (rng_thread_state == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        rng_thread_state = rng_hash4((uint64_t)ts.tv_nsec, (uint64_t)ts.tv_sec,
                                     atomic_fetch_add(&rng_thread_seq, 1), 0x51u) |
                           1u;
    }
    rng_thread_state += 0x9e3779b97f4a7c15ULL;
    return rng_mix64(rng_thread_state);
}

double rng_thread_unit(void)
{
    return (double)(rng_thread_u64() >> 11) * (1.0 / 9007199254740992.0);
}
