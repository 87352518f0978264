/* rng.h: deterministic pseudo-random numbers for the population, and cheap
 * per-thread randomness for faults.
 *
 * The population depends only on (seed, workspace, user index), never on the
 * order of generation, so user 17 of workspace 0 is the same person whatever
 * SLACK_SIM_USERS says.
 */
#ifndef SIM_RNG_H
#define SIM_RNG_H

#include <stddef.h>
#include <stdint.h>

/* splitmix64's finaliser: a good 64-bit mix of one value. */
uint64_t rng_mix64(uint64_t x);
/* A deterministic hash of up to four values. */
uint64_t rng_hash4(uint64_t a, uint64_t b, uint64_t c, uint64_t d);

/* A sequence seeded by one value (for shuffles). */
struct rng {
    uint64_t state;
};
uint64_t rng_next(struct rng *r);

/* Writes prefix followed by n characters of [A-Z0-9] drawn from h (and from
 * further mixes of it), NUL-terminated; out must hold n + 2 bytes. */
void rng_slack_id(char *out, char prefix, uint64_t h, size_t n);
/* n characters of [a-z0-9], NUL-terminated; out must hold n + 1 bytes. */
void rng_token_lower(char *out, uint64_t h, size_t n);

/* Per-thread randomness, not reproducible: for fault injection. */
uint64_t rng_thread_u64(void);
/* Uniform in [0, 1). */
double rng_thread_unit(void);

#endif
