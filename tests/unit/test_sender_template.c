/* Unit tests of the worker framework's pure parts: message templates, profile
 * fields and their cache, Retry-After, form encoding and outcome tables. */
#include "check.h"

#include "bcrm/worker_http.h"
#include "bcrm/worker_outcome.h"
#include "bcrm/worker_profile.h"
#include "bcrm/worker_template.h"

#include <stdlib.h>

static struct worker_profile ada(void)
{
    struct worker_profile p = {0};
    p.first_name = strdup("Ada");
    p.name = strdup("ada.l");
    p.real_name = strdup("Ada Lovelace");
    return p;
}

static void check_render(struct worker_profile *p, const char *text, const char *expected)
{
    char *out = template_render(text, p != NULL ? worker_profile_lookup : NULL, p);
    CHECK_STR(out, expected);
    free(out);
}

static void test_render(void)
{
    struct worker_profile p = ada();
    check_render(&p, "Hi {{first_name}}!", "Hi Ada!");
    check_render(&p, "{{name}}/{{real_name}}", "ada.l/Ada Lovelace");
    check_render(&p, "Hi {{ first_name | there }}!", "Hi Ada!");
    check_render(&p, "no placeholders", "no placeholders");
    check_render(&p, "", "");
    check_render(&p, "{{unknown_field|x}} {{unknown_field}}.", "x .");
    /* Not placeholders: copied as they are. */
    check_render(&p, "{{", "{{");
    check_render(&p, "{{}} {x} {{first_name", "{{}} {x} {{first_name");
    check_render(&p, "{{First_Name}}", "{{First_Name}}");
    check_render(&p, "{{{first_name}}}", "{Ada}");
    check_render(&p, "é {{first_name}} ✓", "é Ada ✓");
    check_render(&p, "{{first_name}}{{first_name}}", "AdaAda");
    check_render(&p, "{{first_name|a {{b}}", "{{first_name|a ");
    worker_profile_clear(&p);

    /* Missing values take the default, or nothing. */
    struct worker_profile empty = {0};
    check_render(&empty, "Hi {{first_name|there}}!", "Hi there!");
    check_render(&empty, "Hi {{first_name}}!", "Hi !");
    check_render(&empty, "Hi {{first_name|}}!", "Hi !");
    check_render(NULL, "Hi {{first_name|friend}}, {{name|you}}", "Hi friend, you");
    empty.first_name = strdup("");
    check_render(&empty, "Hi {{first_name|there}}!", "Hi there!");
    worker_profile_clear(&empty);

    /* first_name falls back to the first word of real_name. */
    struct worker_profile grace = {0};
    grace.real_name = strdup("Grace Brewster Hopper");
    check_render(&grace, "Hi {{first_name|there}}!", "Hi Grace!");
    worker_profile_clear(&grace);

    CHECK(template_has_placeholders("Hi {{first_name}}"));
    CHECK(template_has_placeholders("{{ name | x }}"));
    CHECK(!template_has_placeholders("Hi {{ }}"));
    CHECK(!template_has_placeholders("Hi {first_name}"));
    CHECK(!template_has_placeholders(""));
    CHECK(!template_has_placeholders(NULL));
}

static void test_render_json(void)
{
    struct worker_profile p = ada();
    json_t *blocks = json_loads("[{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\","
                                "\"text\":\"Hello *{{first_name|you}}* \\\"q\\\"\"}},"
                                "{\"type\":\"divider\",\"n\":3}]",
                                0, NULL);
    CHECK(blocks != NULL);
    CHECK(template_json_has_placeholders(blocks));
    CHECK(template_render_json(blocks, worker_profile_lookup, &p) == 0);
    CHECK(!template_json_has_placeholders(blocks));
    const char *text = json_string_value(
        json_object_get(json_object_get(json_array_get(blocks, 0), "text"), "text"));
    CHECK_STR(text, "Hello *Ada* \"q\"");
    CHECK(json_integer_value(json_object_get(json_array_get(blocks, 1), "n")) == 3);
    json_decref(blocks);

    /* A name with JSON-special characters stays inside its string. */
    free(p.first_name);
    p.first_name = strdup("\"}],\"x\":\"");
    json_t *one = json_pack("[{s:s}]", "text", "{{first_name}}");
    CHECK(template_render_json(one, worker_profile_lookup, &p) == 0);
    CHECK_STR(json_string_value(json_object_get(json_array_get(one, 0), "text")), "\"}],\"x\":\"");
    CHECK(json_array_size(one) == 1);
    json_decref(one);
    worker_profile_clear(&p);
}

static void test_profile_cache(void)
{
    struct profile_cache *c = profile_cache_new(64, 1000);
    struct worker_profile p = ada(), got = {0};
    CHECK(profile_cache_get(c, "B1", "U1", 0, &got) == -1);
    profile_cache_put(c, "B1", "U1", &p, 100);
    CHECK(profile_cache_get(c, "B1", "U1", 500, &got) == 0);
    CHECK_STR(got.first_name, "Ada");
    CHECK_STR(got.real_name, "Ada Lovelace");
    worker_profile_clear(&got);
    /* The same user id under another bot is another person. */
    CHECK(profile_cache_get(c, "B2", "U1", 500, &got) == -1);
    /* Expired entries are gone. */
    CHECK(profile_cache_get(c, "B1", "U1", 1100, &got) == -1);
    CHECK(profile_cache_get(c, "B1", "U1", 200, &got) == -1);
    worker_profile_clear(&p);
    profile_cache_free(c);

    /* One slot: a newer entry replaces the older one. */
    c = profile_cache_new(1, 60000);
    p = ada();
    profile_cache_put(c, "B1", "U1", &p, 0);
    profile_cache_put(c, "B1", "U2", &p, 0);
    CHECK(profile_cache_get(c, "B1", "U1", 1, &got) == -1);
    CHECK(profile_cache_get(c, "B1", "U2", 1, &got) == 0);
    worker_profile_clear(&got);
    worker_profile_clear(&p);
    profile_cache_free(c);
}

static void test_retry_after(void)
{
    CHECK(worker_parse_retry_after("120", 0) == 120000);
    CHECK(worker_parse_retry_after(" 5\r\n", 0) == 5000);
    CHECK(worker_parse_retry_after("0", 0) == 0);
    CHECK(worker_parse_retry_after("", 0) == -1);
    CHECK(worker_parse_retry_after("soon", 0) == -1);
    CHECK(worker_parse_retry_after("5x", 0) == -1);
    /* Wed, 21 Oct 2015 07:28:00 GMT is 1445412480 s after the epoch. */
    int64_t at = 1445412480LL * 1000;
    CHECK(worker_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", at - 10000) == 10000);
    CHECK(worker_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", at + 10000) == 0);
}

static void test_form(void)
{
    char *form = NULL;
    CHECK(worker_form_add(&form, "user", "U1") == 0);
    CHECK(worker_form_add(&form, "types", "public_channel,private_channel") == 0);
    CHECK(worker_form_add(&form, "q", "a b&c=d/é") == 0);
    CHECK_STR(form, "user=U1&types=public_channel%2Cprivate_channel&q=a%20b%26c%3Dd%2F%C3%A9");
    free(form);
}

static void test_rules_and_transport(void)
{
    static const struct worker_rule rules[] = {
        {"a", BCRM__V1__OUTCOME__OUTCOME_FAILED, WORKER_RULE_TOKEN_INVALID},
        {"b", BCRM__V1__OUTCOME__OUTCOME_RETRY, WORKER_RULE_RATE_LIMITED},
    };
    CHECK(worker_rule_find(rules, 2, "b") == &rules[1]);
    CHECK(worker_rule_find(rules, 2, "c") == NULL);
    CHECK(worker_rule_find(rules, 2, NULL) == NULL);
    struct worker_outcome out;
    worker_outcome_init(&out);
    worker_rule_apply(&rules[0], "a", &out);
    CHECK(out.outcome == BCRM__V1__OUTCOME__OUTCOME_FAILED && out.bot_token_invalid &&
          !out.rate_limited);
    CHECK_STR(out.error, "a");

    /* Not sent: definitely not delivered. Sent, then lost: maybe delivered. */
    struct worker_response r = {.transport = CURLE_COULDNT_CONNECT, .retry_after_ms = -1};
    worker_outcome_init(&out);
    CHECK(worker_classify_transport(&r, &out));
    CHECK(out.outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY);
    CHECK_STR(out.error, "connect_failed");
    r.transport = CURLE_OPERATION_TIMEDOUT;
    CHECK(worker_classify_transport(&r, &out));
    CHECK(out.outcome == BCRM__V1__OUTCOME__OUTCOME_RETRY);
    CHECK_STR(out.error, "connect_timeout");
    r.request_sent = true;
    CHECK(worker_classify_transport(&r, &out));
    CHECK(out.outcome == BCRM__V1__OUTCOME__OUTCOME_UNKNOWN);
    CHECK_STR(out.error, "timeout");
    r.transport = CURLE_GOT_NOTHING;
    CHECK(worker_classify_transport(&r, &out));
    CHECK(out.outcome == BCRM__V1__OUTCOME__OUTCOME_UNKNOWN);
    CHECK_STR(out.error, "connection_dropped");
    r.transport = CURLE_OK;
    worker_outcome_init(&out);
    CHECK(!worker_classify_transport(&r, &out));
    CHECK(out.outcome == BCRM__V1__OUTCOME__OUTCOME_UNSPECIFIED);
    CHECK_STR(worker_outcome_name(BCRM__V1__OUTCOME__OUTCOME_UNKNOWN), "unknown");
}

int main(void)
{
    test_render();
    test_render_json();
    test_profile_cache();
    test_retry_after();
    test_form();
    test_rules_and_transport();
    CHECK_DONE();
}
