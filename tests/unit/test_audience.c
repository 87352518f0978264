/* Unit tests of the scheduler's audience filters (services/scheduler/audience.c) and
 * of the array literals that carry a batch of rows to PostgreSQL (pgarray.c). */
#include "check.h"

#include "audience.h"
#include "pgarray.h"

#include <jansson.h>

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

    static const char *const refused[] = {
        "{\"segment_id\":\"s\"}",
        "{\"filter\":{\"members_of\":[\"C1\"]}}",
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
    test_pgarray();
    CHECK_DONE();
}
