/* Unit tests of the webhook signature checks (services/api/webhook_sig.c): HMAC-SHA256
 * against RFC 4231, Slack's own documented example, and Meta's header format with
 * values computed independently with Python's hmac module. */
#include "check.h"

#include "bcrm/keys.h"
#include "webhook_sig.h"

#include <sodium.h>
#include <string.h>

static void hex_of(const uint8_t mac[32], char out[65])
{
    hex_encode(out, mac, 32);
}

/* RFC 4231 test cases 1, 2 and 6 (6: a key longer than the block size). */
static void test_hmac_rfc4231(void)
{
    uint8_t key[131], mac[32];
    char hex[65];
    memset(key, 0x0b, 20);
    const void *p1[] = {"Hi There"};
    const size_t l1[] = {8};
    sig_hmac_sha256(key, 20, p1, l1, 1, mac);
    hex_of(mac, hex);
    CHECK_STR(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

    /* The same data split in parts gives the same MAC. */
    const void *p2[] = {"what do ya ", "want for nothing?"};
    const size_t l2[] = {11, 17};
    sig_hmac_sha256((const uint8_t *)"Jefe", 4, p2, l2, 2, mac);
    hex_of(mac, hex);
    CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    memset(key, 0xaa, sizeof(key));
    const char *text = "Test Using Larger Than Block-Size Key - Hash Key First";
    const void *p6[] = {text};
    const size_t l6[] = {strlen(text)};
    sig_hmac_sha256(key, sizeof(key), p6, l6, 1, mac);
    hex_of(mac, hex);
    CHECK_STR(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

/* The example of Slack's "Verifying requests from Slack" page. */
#define SLACK_SECRET "8f742231b10e8888abcd99yyyzzz85a5"
#define SLACK_TS "1531420618"
#define SLACK_BODY                                                                                 \
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="         \
    "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"     \
    "collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%"             \
    "2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121."               \
    "803a0bc887a14d10d2c447fce8b6703c"
#define SLACK_SIG "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

static void test_slack(void)
{
    const char *body = SLACK_BODY;
    size_t len = strlen(body);
    int64_t ts = 1531420618;
    CHECK(sig_slack_check(SLACK_SECRET, SLACK_TS, SLACK_SIG, body, len, ts) == SIG_OK);
    /* Upper-case hex is the same signature. */
    CHECK(sig_slack_check(SLACK_SECRET, SLACK_TS,
                          "v0=A2114D57B48EAC39B9AD189DD8316235A7B4A8D21A10BD27519666489C69B503",
                          body, len, ts) == SIG_OK);
    /* The window: 300 s either way is accepted, 301 s is not. */
    CHECK(sig_slack_check(SLACK_SECRET, SLACK_TS, SLACK_SIG, body, len, ts + 300) == SIG_OK);
    CHECK(sig_slack_check(SLACK_SECRET, SLACK_TS, SLACK_SIG, body, len, ts - 300) == SIG_OK);
    CHECK(sig_slack_check(SLACK_SECRET, SLACK_TS, SLACK_SIG, body, len, ts + 301) == SIG_STALE);
    CHECK(sig_slack_check(SLACK_SECRET, SLACK_TS, SLACK_SIG, body, len, ts - 301) == SIG_STALE);
    /* Another secret, a changed body, a changed timestamp, one changed digit. */
    CHECK(sig_slack_check("another secret", SLACK_TS, SLACK_SIG, body, len, ts) == SIG_MISMATCH);
    CHECK(sig_slack_check(SLACK_SECRET, SLACK_TS, SLACK_SIG, body, len - 1, ts) == SIG_MISMATCH);
    CHECK(sig_slack_check(SLACK_SECRET, "1531420619", SLACK_SIG, body, len, ts) == SIG_MISMATCH);
    CHECK(sig_slack_check(SLACK_SECRET, SLACK_TS,
                          "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b504",
                          body, len, ts) == SIG_MISMATCH);
    /* Missing and malformed headers. */
    CHECK(sig_slack_check(SLACK_SECRET, NULL, SLACK_SIG, body, len, ts) == SIG_MISSING);
    CHECK(sig_slack_check(SLACK_SECRET, SLACK_TS, NULL, body, len, ts) == SIG_MISSING);
    CHECK(sig_slack_check(SLACK_SECRET, SLACK_TS, "", body, len, ts) == SIG_MISSING);
    CHECK(sig_slack_check(SLACK_SECRET, SLACK_TS,
                          "v1=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
                          body, len, ts) == SIG_MALFORMED);
    CHECK(sig_slack_check(SLACK_SECRET, SLACK_TS, "v0=a2114d57", body, len, ts) == SIG_MALFORMED);
    CHECK(sig_slack_check(SLACK_SECRET, SLACK_TS, SLACK_SIG "00", body, len, ts) == SIG_MALFORMED);
    CHECK(sig_slack_check(SLACK_SECRET, "15314x0618", SLACK_SIG, body, len, ts) == SIG_MALFORMED);
    CHECK(sig_slack_check(SLACK_SECRET, "-1531420618", SLACK_SIG, body, len, ts) == SIG_MALFORMED);
    CHECK(sig_slack_check(SLACK_SECRET, "99999999999999999999", SLACK_SIG, body, len, ts) ==
          SIG_MALFORMED);
}

/* Computed with Python: hmac.new(b'app-secret-for-tests', body, hashlib.sha256). */
static void test_meta(void)
{
    const char *body = "{\"object\":\"page\",\"entry\":[]}";
    size_t len = strlen(body);
    const char *good = "sha256=6a5f0a148836edd071340dcb9d15e1495c2578fcdd886e46cc4f5d0577771513";
    CHECK(sig_meta_check("app-secret-for-tests", good, body, len) == SIG_OK);
    CHECK(sig_meta_check("app-secret-for-test", good, body, len) == SIG_MISMATCH);
    CHECK(sig_meta_check("app-secret-for-tests", good, body, len - 1) == SIG_MISMATCH);
    CHECK(sig_meta_check("app-secret-for-tests", NULL, body, len) == SIG_MISSING);
    CHECK(sig_meta_check("app-secret-for-tests", good + 7, body, len) == SIG_MALFORMED);
    CHECK(sig_meta_check("app-secret-for-tests",
                         "sha1=6a5f0a148836edd071340dcb9d15e1495c2578fcdd886e46cc4f5d0577771513",
                         body, len) == SIG_MALFORMED);
    CHECK(sig_meta_check("app-secret-for-tests",
                         "sha256=6a5f0a148836edd071340dcb9d15e1495c2578fcdd886e46cc4f5d05777715zz",
                         body, len) == SIG_MALFORMED);
}

static void test_reasons(void)
{
    /* A reason names the failed check and never carries a MAC. */
    CHECK(strstr(sig_result_reason(SIG_STALE), "300") != NULL);
    CHECK(strstr(sig_result_reason(SIG_MISMATCH), "match") != NULL);
    CHECK(strstr(sig_result_reason(SIG_MISSING), "missing") != NULL);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    test_hmac_rfc4231();
    test_slack();
    test_meta();
    test_reasons();
    CHECK_DONE();
}
