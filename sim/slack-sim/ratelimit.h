/* ratelimit.h: Slack's rate limits as token buckets.
 *
 * Each Web API method has a bucket per workspace sized by its tier (Slack limits
 * per method, per workspace, per app; the simulator has one app per workspace).
 * chat.postMessage instead has a bucket per channel (about one message a second
 * with a short burst) and one per workspace (a cap per minute). A refused call
 * learns how many whole seconds to wait: the Retry-After Slack would send.
 * Buckets are locked individually, so calls for different channels do not wait
 * for each other.
 */
#ifndef SIM_RATELIMIT_H
#define SIM_RATELIMIT_H

#include "faults.h"

#include <stddef.h>
#include <stdint.h>

struct ratelimit;

struct ratelimit *ratelimit_new(size_t workspaces, size_t methods);
void ratelimit_free(struct ratelimit *rl);
/* Forgets every bucket: all start full again. */
void ratelimit_reset(struct ratelimit *rl);

/* Takes one call of method (an index below methods) in workspace ws. Returns 0
 * when allowed, else the seconds to wait (at least 1). per_minute <= 0 means no
 * limit. */
int ratelimit_take_method(struct ratelimit *rl, size_t ws, size_t method, int per_minute,
                          int64_t now_ms);
/* Takes one chat.postMessage to channel (any id, scoped by ws) under limits.
 * Nothing is taken from either bucket when the call is refused. */
int ratelimit_take_post(struct ratelimit *rl, size_t ws, const char *channel,
                        const struct sim_limits *limits, int64_t now_ms);

#endif
