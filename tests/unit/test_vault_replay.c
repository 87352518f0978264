/* Unit tests of the vault's replay cache (services/vault/replay_cache.c): each
 * call counts once within its lifetime, repeats get the stored reply, and the
 * cache refuses rather than forgets when full. */
#include "check.h"

#include "replay_cache.h"

#include <sodium.h>
#include <stdlib.h>

static void key_of(uint8_t out[REPLAY_KEY_BYTES], int caller, const char *request_id)
{
    uint8_t pk[32];
    memset(pk, caller, sizeof(pk));
    replay_key(out, pk, request_id);
}

static void test_lifecycle(void)
{
    struct replay_cache *rc = replay_cache_new(4, 1000);
    uint8_t a[REPLAY_KEY_BYTES], b[REPLAY_KEY_BYTES], *reply;
    size_t len;
    key_of(a, 1, "req-1");
    key_of(b, 2, "req-1"); /* same request id, another caller: another call */
    CHECK(memcmp(a, b, sizeof(a)) != 0);

    CHECK(replay_cache_begin(rc, a, 0, &reply, &len) == REPLAY_NEW);
    CHECK(replay_cache_begin(rc, a, 10, &reply, &len) == REPLAY_IN_PROGRESS);
    CHECK(reply == NULL);
    CHECK(replay_cache_begin(rc, b, 10, &reply, &len) == REPLAY_NEW);
    replay_cache_finish(rc, a, (const uint8_t *)"answer", 6);
    CHECK(replay_cache_begin(rc, a, 20, &reply, &len) == REPLAY_DONE);
    CHECK(len == 6 && reply != NULL && memcmp(reply, "answer", 6) == 0);
    free(reply);

    /* An abandoned call (no reply was sent) may be handled again. */
    replay_cache_abandon(rc, b);
    CHECK(replay_cache_begin(rc, b, 30, &reply, &len) == REPLAY_NEW);
    replay_cache_finish(rc, b, (const uint8_t *)"x", 1);

    /* After its lifetime an entry is forgotten (and the replay window has long
     * refused the call by then). */
    CHECK(replay_cache_begin(rc, a, 999, &reply, &len) == REPLAY_DONE);
    free(reply);
    CHECK(replay_cache_begin(rc, a, 1000, &reply, &len) == REPLAY_NEW);
    replay_cache_free(rc);
}

static void test_full(void)
{
    struct replay_cache *rc = replay_cache_new(3, 1000);
    uint8_t k[REPLAY_KEY_BYTES], *reply;
    size_t len;
    char id[16];
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "r%d", i);
        key_of(k, 1, id);
        CHECK(replay_cache_begin(rc, k, i, &reply, &len) == REPLAY_NEW);
        replay_cache_finish(rc, k, (const uint8_t *)"ok", 2);
    }
    CHECK(replay_cache_size(rc) == 3);
    key_of(k, 1, "r3");
    CHECK(replay_cache_begin(rc, k, 500, &reply, &len) == REPLAY_FULL);
    /* Once the oldest expires there is room again. */
    CHECK(replay_cache_begin(rc, k, 1000, &reply, &len) == REPLAY_NEW);
    CHECK(replay_cache_size(rc) == 3);
    key_of(k, 1, "r0");
    CHECK(replay_cache_begin(rc, k, 1000, &reply, &len) == REPLAY_FULL);
    replay_cache_free(rc);
}

int main(void)
{
    CHECK(sodium_init() >= 0);
    test_lifecycle();
    test_full();
    CHECK_DONE();
}
