/* replay_cache.h: the vault's memory of recent calls, by caller key and request id.
 *
 * The replay window (60 s either side of the vault's clock) bounds how long an
 * intercepted call stays valid; within it, this cache makes each call count once.
 * A repeat of a finished call gets the very same reply back (a boxed envelope,
 * readable by the caller alone), which also makes NNG's resends of a slow call
 * harmless; a repeat of a call still in progress is dropped, since the first
 * copy's reply answers it. Without this, a store captured before a destroy could
 * be replayed after it and bring the destroyed token back.
 *
 * Entries live for ttl_ms after the call was first seen. The cache holds at most
 * capacity entries; when full it refuses new calls rather than forget one early.
 * Thread-safe.
 */
#ifndef BCRM_VAULT_REPLAY_CACHE_H
#define BCRM_VAULT_REPLAY_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define REPLAY_KEY_BYTES 32

enum replay_state {
    REPLAY_NEW,         /* first sight: handle it, then replay_cache_finish or _abandon */
    REPLAY_IN_PROGRESS, /* another worker is handling it: do not answer */
    REPLAY_DONE,        /* answered before: send *reply (malloc'd copy; free it) */
    REPLAY_FULL,        /* too many calls in the window: refuse */
};

struct replay_cache;

struct replay_cache *replay_cache_new(size_t capacity, int64_t ttl_ms);
void replay_cache_free(struct replay_cache *rc);

/* The cache key of a call: a hash of the caller's key and the request id. */
void replay_key(uint8_t out[REPLAY_KEY_BYTES], const uint8_t caller_key[32],
                const char *request_id);

/* now_ms: a monotonic clock. */
enum replay_state replay_cache_begin(struct replay_cache *rc, const uint8_t key[REPLAY_KEY_BYTES],
                                     int64_t now_ms, uint8_t **reply, size_t *reply_len);
/* Stores a copy of the reply sent for a REPLAY_NEW call. */
void replay_cache_finish(struct replay_cache *rc, const uint8_t key[REPLAY_KEY_BYTES],
                         const uint8_t *reply, size_t reply_len);
/* Forgets a REPLAY_NEW call that got no reply, so a resend is handled anew. */
void replay_cache_abandon(struct replay_cache *rc, const uint8_t key[REPLAY_KEY_BYTES]);

size_t replay_cache_size(struct replay_cache *rc);

#endif
