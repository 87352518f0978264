/* Unit tests of the scheduler's audience filters (services/scheduler/audience.c), the
 * member sets of members_of (member_set.c), and the array literals that carry a batch
 * of rows to PostgreSQL (pgarray.c). */
#include "check.h"

#include "audience.h"
#include "pgarray.h"

#include <jansson.h>
#include <stdio.h>

static json_t *load(const char *text)
{
    json_error_t err;
    return json_loads(text, 0, &err);
}

static Bcrm__V1__PlatformUser user(const char *id, const char *tz, const char *email)
{
    Bcrm__V1__PlatformUser u = BCRM__V1__PLATFORM_USER__INIT;
    u.id = (char *)id;
    u.tz = (char *)tz;
    u.email = (char *)email;
    return u;
}

static void test_sources(void)
{
    struct audience a;
    char err[128];
    json_t *all = load("{\"filter\":{\"all\":true}}");
    CHECK(audience_parse(all, false, &a, err, sizeof(err)) == 0);
    CHECK(a.source == AUDIENCE_PLATFORM_USERS);
    json_decref(all);

    json_t *ids = load("{\"filter\":{\"user_ids\":[\"U1\",\"U2\"]}}");
    CHECK(audience_parse(ids, false, &a, err, sizeof(err)) == 0);
    CHECK(a.source == AUDIENCE_LISTED_USERS && json_array_size(a.listed) == 2);
    /* A local-time schedule needs each user's zone: read them through the platform. */
    CHECK(audience_parse(ids, true, &a, err, sizeof(err)) == 0);
    CHECK(a.source == AUDIENCE_PLATFORM_USERS && a.user_ids != NULL);
    json_decref(ids);

    json_t *channels = load("{\"filter\":{\"channel_ids\":[\"C1\"]}}");
    CHECK(audience_parse(channels, true, &a, err, sizeof(err)) == 0);
    CHECK(a.source == AUDIENCE_CHANNELS);
    json_decref(channels);

    /* A campaign made from a segment: the copied filter counts, segment_id is ignored. */
    json_t *seg = load("{\"segment_id\":\"0b6c5bde-2f1a-4c3e-9d7a-1f2e3d4c5b6a\","
                       "\"filter\":{\"user_ids\":[\"U7\"]}}");
    CHECK(audience_parse(seg, false, &a, err, sizeof(err)) == 0);
    CHECK(a.source == AUDIENCE_LISTED_USERS && json_array_size(a.listed) == 1);
    json_decref(seg);

    /* members_of is read from the platform's users, even with user_ids alone. */
    json_t *members = load("{\"filter\":{\"members_of\":[\"C1\",\"C2\"],"
                           "\"user_ids\":[\"U1\"]}}");
    CHECK(audience_parse(members, false, &a, err, sizeof(err)) == 0);
    CHECK(a.source == AUDIENCE_PLATFORM_USERS && json_array_size(a.members_of) == 2);
    CHECK(a.members == NULL);
    json_decref(members);

    static const char *const refused[] = {
        "{\"segment_id\":\"s\"}",
        "{\"segment_id\":7,\"filter\":{\"all\":true}}",
        "{\"filter\":{\"members_of\":[]}}",
        "{\"filter\":{\"members_of\":\"C1\"}}",
        "{\"filter\":{\"members_of\":[\"C1\"],\"channel_ids\":[\"C2\"]}}",
        "{\"filter\":{}}",
        "{\"filter\":{\"all\":false}}",
        "{\"filter\":{\"user_ids\":[1,2]}}",
        "{\"filter\":{\"channel_ids\":[\"C1\"],\"all\":true}}",
        "{\"filter\":{\"is_admin\":\"yes\"}}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        json_t *bad = load(refused[i]);
        err[0] = '\0';
        CHECK(audience_parse(bad, false, &a, err, sizeof(err)) == -1);
        CHECK(strncmp(err, "audience", 8) == 0);
        json_decref(bad);
    }
}

static void test_accepts(void)
{
    struct audience a;
    char err[128];
    json_t *all = load("{\"filter\":{\"all\":true}}");
    CHECK(audience_parse(all, false, &a, err, sizeof(err)) == 0);
    Bcrm__V1__PlatformUser u = user("U1", "Europe/Berlin", "ann@example.com");
    CHECK(audience_accepts(&a, &u, "UBOT"));
    u.is_bot = 1;
    CHECK(!audience_accepts(&a, &u, "UBOT"));
    u.is_bot = 0;
    u.deleted = 1;
    CHECK(!audience_accepts(&a, &u, "UBOT"));
    Bcrm__V1__PlatformUser slackbot = user("USLACKBOT", NULL, NULL);
    CHECK(!audience_accepts(&a, &slackbot, "UBOT"));
    Bcrm__V1__PlatformUser self = user("UBOT", NULL, NULL);
    CHECK(!audience_accepts(&a, &self, "UBOT"));
    CHECK(audience_accepts(&a, &self, NULL));
    json_decref(all);

    json_t *f = load("{\"filter\":{\"timezones\":[\"Europe/Berlin\",\"Asia/Tokyo\"],"
                     "\"email_domain\":\"Example.com\",\"is_admin\":false}}");
    CHECK(audience_parse(f, false, &a, err, sizeof(err)) == 0);
    Bcrm__V1__PlatformUser ann = user("U1", "Europe/Berlin", "ann@example.com");
    Bcrm__V1__PlatformUser bob = user("U2", "America/New_York", "bob@example.com");
    Bcrm__V1__PlatformUser eve = user("U3", "Asia/Tokyo", "eve@example.com.evil");
    Bcrm__V1__PlatformUser zed = user("U4", NULL, "zed@example.com");
    CHECK(audience_accepts(&a, &ann, NULL));
    CHECK(!audience_accepts(&a, &bob, NULL)); /* another zone */
    CHECK(!audience_accepts(&a, &eve, NULL)); /* another domain */
    CHECK(!audience_accepts(&a, &zed, NULL)); /* no zone */
    ann.is_owner = 1;
    CHECK(!audience_accepts(&a, &ann, NULL)); /* owners count as admins */
    json_decref(f);

    json_t *ids = load("{\"filter\":{\"user_ids\":[\"U2\"]}}");
    CHECK(audience_parse(ids, true, &a, err, sizeof(err)) == 0);
    CHECK(audience_accepts(&a, &bob, NULL));
    CHECK(!audience_accepts(&a, &zed, NULL));
    json_decref(ids);
}

static void test_members_of(void)
{
    struct audience a;
    char err[128];
    json_t *f = load("{\"filter\":{\"members_of\":[\"C1\"],\"timezones\":[\"Asia/Tokyo\"]}}");
    CHECK(audience_parse(f, false, &a, err, sizeof(err)) == 0);
    Bcrm__V1__PlatformUser ann = user("U1", "Asia/Tokyo", NULL);
    Bcrm__V1__PlatformUser bob = user("U2", "Asia/Tokyo", NULL);
    Bcrm__V1__PlatformUser eve = user("U3", "Europe/Paris", NULL);
    /* Before the members are read, nobody. */
    CHECK(!audience_accepts(&a, &ann, NULL));

    struct member_set *set = member_set_new(1000);
    CHECK(set != NULL);
    char *page1[] = {"U1", "U3", "UBOT"};
    Bcrm__V1__PlatformReply reply = BCRM__V1__PLATFORM_REPLY__INIT;
    reply.status = BCRM__V1__QUERY_STATUS__QUERY_OK;
    reply.member_ids = page1;
    reply.n_member_ids = 3;
    CHECK(audience_add_members(set, &reply, err, sizeof(err)) == MEMBERS_PAGE_ADDED);
    CHECK(member_set_count(set) == 3);
    a.members = set;
    CHECK(audience_accepts(&a, &ann, NULL));
    CHECK(!audience_accepts(&a, &bob, NULL)); /* not a member */
    CHECK(!audience_accepts(&a, &eve, NULL)); /* a member, in another zone */
    Bcrm__V1__PlatformUser bot = user("UBOT", "Asia/Tokyo", NULL);
    CHECK(!audience_accepts(&a, &bot, "UBOT")); /* the bot itself, though a member */

    /* A channel the bot cannot see gives no members; other refusals are the caller's. */
    Bcrm__V1__PlatformReply gone = BCRM__V1__PLATFORM_REPLY__INIT;
    gone.status = BCRM__V1__QUERY_STATUS__QUERY_BAD_REQUEST;
    gone.error = "channel_not_found";
    CHECK(audience_add_members(set, &gone, err, sizeof(err)) == MEMBERS_PAGE_CHANNEL_GONE);
    Bcrm__V1__PlatformReply limited = BCRM__V1__PLATFORM_REPLY__INIT;
    limited.status = BCRM__V1__QUERY_STATUS__QUERY_RATE_LIMITED;
    CHECK(audience_add_members(set, &limited, err, sizeof(err)) == MEMBERS_PAGE_REFUSED);
    Bcrm__V1__PlatformReply bad = BCRM__V1__PLATFORM_REPLY__INIT;
    bad.status = BCRM__V1__QUERY_STATUS__QUERY_BAD_REQUEST;
    bad.error = "invalid_cursor";
    CHECK(audience_add_members(set, &bad, err, sizeof(err)) == MEMBERS_PAGE_REFUSED);
    CHECK(member_set_count(set) == 3);
    member_set_free(set);

    /* More members than the bound: a clear error, naming the bound. */
    struct member_set *small = member_set_new(2);
    CHECK(audience_add_members(small, &reply, err, sizeof(err)) == MEMBERS_PAGE_TOO_MANY);
    CHECK_STR(err, "audience.filter.members_of: the channels have more than 2 members");
    member_set_free(small);
    json_decref(f);
}

static void test_member_set(void)
{
    enum { N = 50000 };
    struct member_set *set = member_set_new(N);
    CHECK(set != NULL && member_set_max(set) == N);
    char id[32];
    int added = 0;
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "U%08X", (unsigned)i * 2654435761u);
        added += member_set_add(set, id) == MEMBER_ADDED;
    }
    CHECK(added == N && member_set_count(set) == N);
    int found = 0, strangers = 0;
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "U%08X", (unsigned)i * 2654435761u);
        found += member_set_has(set, id);
        snprintf(id, sizeof(id), "W%08X", (unsigned)i);
        strangers += member_set_has(set, id);
    }
    CHECK(found == N && strangers == 0);
    /* Present again: no change, even when full; a new one: refused. */
    snprintf(id, sizeof(id), "U%08X", 0u);
    CHECK(member_set_add(set, id) == MEMBER_PRESENT);
    CHECK(member_set_add(set, "UNEW") == MEMBER_FULL);
    CHECK(!member_set_has(set, "UNEW"));
    CHECK(member_set_count(set) == N);
    member_set_free(set);

    struct member_set *s = member_set_new(0); /* at least one */
    CHECK(member_set_add(s, "") == MEMBER_BAD_ID);
    CHECK(member_set_add(s, NULL) == MEMBER_BAD_ID);
    char longer[MEMBER_ID_MAX + 2];
    memset(longer, 'U', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    CHECK(member_set_add(s, longer) == MEMBER_BAD_ID);
    CHECK(!member_set_has(s, longer) && !member_set_has(s, NULL));
    CHECK(member_set_add(s, "U1") == MEMBER_ADDED);
    CHECK(member_set_add(s, "U2") == MEMBER_FULL);
    CHECK(!member_set_has(NULL, "U1"));
    member_set_free(s);
    member_set_free(NULL);
}

static void test_pgarray(void)
{
    struct pgarray a;
    pgarray_init(&a);
    CHECK_STR(pgarray_text(&a), "{}");
    pgarray_add_int(&a, 42);
    pgarray_add_int(&a, -7);
    CHECK_STR(pgarray_text(&a), "{42,-7}");
    pgarray_reset(&a);
    pgarray_add_str(&a, "plain", 0);
    pgarray_add_str(&a, "a \"quote\" and \\ back", 0);
    pgarray_add_str(&a, NULL, 0);
    pgarray_add_str(&a, "", 0);
    pgarray_add_bool(&a, true);
    CHECK_STR(pgarray_text(&a), "{\"plain\",\"a \\\"quote\\\" and \\\\ back\",NULL,\"\",t}");
    pgarray_reset(&a);
    /* Invalid UTF-8, control characters and a cut in the middle of a character. */
    pgarray_add_str(&a, "ok\xff\x01x", 0);
    pgarray_add_str(&a, "caf\xc3\xa9", 4); /* "caf" + half of the e-acute */
    pgarray_add_str(&a, "\xe2\x82\xac", 0);
    pgarray_add_str(&a, "\xc0\xaf", 0); /* overlong '/' */
    CHECK_STR(pgarray_text(&a), "{\"ok??x\",\"caf?\",\"\xe2\x82\xac\",\"??\"}");
    CHECK(a.count == 4);
    pgarray_free(&a);
}

int main(void)
{
    test_sources();
    test_accepts();
    test_members_of();
    test_member_set();
    test_pgarray();
    CHECK_DONE();
}
