/* Unit tests of the senders' short-lived caches (worker_cache.h) and of the
 * profile cache on top of it, on a clock of the test's own: entries live exactly
 * their TTL, a sweep frees what has expired (and only that) whether or not it
 * was looked up, the oldest goes first when the cache is full, a replaced value
 * is freed at once, and thousands of entries stay reachable as the table grows. */
#include "check.h"

#include "bcrm/worker_cache.h"
#include "bcrm/worker_profile.h"

#include <stdio.h>
#include <stdlib.h>

static int freed;

static void count_free(void *value)
{
    freed++;
    free(value);
}

static char *value(int n)
{
    char *v = malloc(16);
    snprintf(v, 16, "v%d", n);
    return v;
}

static void test_expiry_and_sweep(void)
{
    freed = 0;
    struct worker_cache *c = worker_cache_new(100, 1000, count_free);
    CHECK(c != NULL && worker_cache_ttl(c) == 1000);
    CHECK(worker_cache_put(c, "B1", "U1", value(1), 0) == 0);
    CHECK(worker_cache_put(c, "B1", "U2", value(2), 400) == 0);
    CHECK(worker_cache_put(c, "B2", "U1", value(3), 800) == 0);
    CHECK_STR(worker_cache_get(c, "B1", "U1", 999), "v1");
    CHECK_STR(worker_cache_get(c, "B2", "U1", 999), "v3");
    CHECK(worker_cache_get(c, "B1", "U3", 999) == NULL);
    /* The key's two parts are kept apart: ("B1U", "1") is another key. */
    CHECK(worker_cache_get(c, "B1U", "1", 999) == NULL);

    /* Nothing has expired yet: a sweep frees nothing. */
    CHECK(worker_cache_sweep(c, 999) == 0);
    CHECK(worker_cache_count(c) == 3 && freed == 0);
    /* At 1000 the first entry's time is up, untouched or not. */
    CHECK(worker_cache_sweep(c, 1000) == 1);
    CHECK(worker_cache_count(c) == 2 && freed == 1);
    CHECK(worker_cache_get(c, "B1", "U1", 1000) == NULL);
    /* A lookup of an expired entry frees it too. */
    CHECK(worker_cache_get(c, "B1", "U2", 1400) == NULL);
    CHECK(worker_cache_count(c) == 1 && freed == 2);
    CHECK(worker_cache_sweep(c, 5000) == 1);
    CHECK(worker_cache_count(c) == 0 && freed == 3);

    /* A put replaces: the old value is freed at once and the TTL starts again. */
    worker_cache_put(c, "B1", "U1", value(4), 6000);
    worker_cache_put(c, "B1", "U1", value(5), 6500);
    CHECK(freed == 4 && worker_cache_count(c) == 1);
    CHECK(worker_cache_sweep(c, 7000) == 0);
    CHECK_STR(worker_cache_get(c, "B1", "U1", 7400), "v5");
    CHECK(worker_cache_sweep(c, 7500) == 1);
    worker_cache_free(c);
    CHECK(freed == 5);
}

static void test_full_drops_oldest(void)
{
    freed = 0;
    struct worker_cache *c = worker_cache_new(3, 60000, count_free);
    for (int i = 0; i < 5; i++) {
        char user[16];
        snprintf(user, sizeof(user), "U%d", i);
        CHECK(worker_cache_put(c, "B", user, value(i), i) == 0);
    }
    CHECK(worker_cache_count(c) == 3 && freed == 2);
    CHECK(worker_cache_get(c, "B", "U0", 10) == NULL);
    CHECK(worker_cache_get(c, "B", "U1", 10) == NULL);
    CHECK_STR(worker_cache_get(c, "B", "U4", 10), "v4");
    worker_cache_free(c);
    CHECK(freed == 5);
}

static void test_many(void)
{
    freed = 0;
    enum { N = 20000 };
    struct worker_cache *c = worker_cache_new(N, 1000, count_free);
    char user[16];
    for (int i = 0; i < N; i++) {
        snprintf(user, sizeof(user), "U%07d", i);
        CHECK(worker_cache_put(c, "B", user, value(i), i / 100) == 0);
    }
    int found = 0;
    for (int i = 0; i < N; i++) {
        snprintf(user, sizeof(user), "U%07d", i);
        char want[16];
        snprintf(want, sizeof(want), "v%d", i);
        const char *got = worker_cache_get(c, "B", user, 300);
        found += got != NULL && strcmp(got, want) == 0;
    }
    CHECK(found == N);
    /* Entries put at t expire at t + 1000: by 1099, those of t < 100. */
    CHECK(worker_cache_sweep(c, 1099) == 100 * 100);
    CHECK(worker_cache_count(c) == N - 100 * 100);
    worker_cache_free(c);
    CHECK(freed == N);
}

static void test_profile_sweep(void)
{
    struct profile_cache *c = profile_cache_new(1000, 5000);
    struct worker_profile p = {.first_name = strdup("Ada"), .real_name = strdup("Ada L")};
    profile_cache_put(c, "B1", "U1", &p, 100);
    profile_cache_put(c, "B1", "U2", &p, 2000);
    worker_profile_clear(&p);
    CHECK(p.first_name == NULL && p.real_name == NULL);
    CHECK(profile_cache_has(c, "B1", "U1", 5099));
    CHECK(profile_cache_count(c) == 2);
    /* Swept at its time though nobody asks for it again. */
    CHECK(profile_cache_sweep(c, 5100) == 1);
    CHECK(profile_cache_count(c) == 1);
    struct worker_profile got = {0};
    CHECK(profile_cache_get(c, "B1", "U1", 5100, &got) == -1);
    CHECK(profile_cache_get(c, "B1", "U2", 5100, &got) == 0);
    CHECK_STR(got.first_name, "Ada");
    worker_profile_clear(&got);
    CHECK(profile_cache_sweep(c, 7000) == 1);
    CHECK(profile_cache_count(c) == 0);
    CHECK(profile_cache_ttl(c) == 5000);
    profile_cache_free(c);
}

int main(void)
{
    test_expiry_and_sweep();
    test_full_drops_oldest();
    test_many();
    test_profile_sweep();
    CHECK_DONE();
}
