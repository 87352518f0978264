/* Unit tests of the common library: configuration parsing, hex, key files,
 * metrics rendering, HTTP limits, protobuf over a real NNG socket pair, and the
 * staging ids of reconnected bots' tokens. */
#include "check.h"

#include "bcrm/bus.h"
#include "bcrm/config.h"
#include "bcrm/harden.h"
#include "bcrm/http.h"
#include "bcrm/keys.h"
#include "bcrm/metrics.h"
#include "bcrm/token_staging.h"
#include "bcrm/v1/send.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_config(void)
{
    int64_t v;
    bool b;
    CHECK(config_parse_int("42", 0, 100, &v) == 0 && v == 42);
    CHECK(config_parse_int("101", 0, 100, &v) == -1);
    CHECK(config_parse_int("4x", 0, 100, &v) == -1);
    CHECK(config_parse_int("", 0, 100, &v) == -1);
    CHECK(config_parse_bool("yes", &b) == 0 && b);
    CHECK(config_parse_bool("off", &b) == 0 && !b);
    CHECK(config_parse_bool("maybe", &b) == -1);
    CHECK(config_parse_duration_ms("5s", &v) == 0 && v == 5000);
    CHECK(config_parse_duration_ms("250ms", &v) == 0 && v == 250);
    CHECK(config_parse_duration_ms("250", &v) == 0 && v == 250);
    CHECK(config_parse_duration_ms("2m", &v) == 0 && v == 120000);
    CHECK(config_parse_duration_ms("5 s", &v) == -1);
    CHECK(config_parse_duration_ms("-1s", &v) == -1);
}

static void test_hex_and_keys(void)
{
    uint8_t raw[4] = {0xde, 0xad, 0xbe, 0xef}, back[4];
    char hex[9];
    hex_encode(hex, raw, 4);
    CHECK_STR(hex, "deadbeef");
    CHECK(hex_decode(back, 4, "deadbeef") == 0 && memcmp(raw, back, 4) == 0);
    CHECK(hex_decode(back, 4, "deadbee") == -1);
    CHECK(hex_decode(back, 4, "deadbeefzz") == -1);

    char dir[] = "/tmp/bcrm-keys-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], err[256];
    snprintf(path, sizeof(path), "%s/id.key", dir);
    struct identity a = {0}, b = {0};
    CHECK(identity_generate(path, &a, err, sizeof(err)) == 0);
    CHECK(identity_load(path, &b, err, sizeof(err)) == 0);
    CHECK(memcmp(a.public_key, b.public_key, sizeof(a.public_key)) == 0);
    identity_free(&b);
    chmod(path, 0644);
    CHECK(identity_load(path, &b, err, sizeof(err)) == -1);
    CHECK(strstr(err, "readable by group or others") != NULL);
    CHECK(identity_generate(path, &b, err, sizeof(err)) == -1); /* never overwrites */
    identity_free(&a);
    unlink(path);
    CHECK(identity_load(path, &b, err, sizeof(err)) == -1);
    rmdir(dir);
}

static void test_metrics(void)
{
    struct metric *c1 = metrics_counter("t_sends_total", "Sends.", "outcome=\"sent\"");
    struct metric *g = metrics_gauge("t_backlog", "Backlog.", NULL);
    struct metric *c2 = metrics_counter("t_sends_total", "Sends.", "outcome=\"failed\"");
    const double bounds[] = {0.01, 0.1};
    struct metric *h = metrics_histogram("t_lateness_seconds", "Lateness.", NULL, bounds, 2);
    metric_inc(c1);
    metric_add(c2, 2);
    metric_set(g, 7);
    metric_observe(h, 0.05);
    metric_observe(h, 5);
    size_t len;
    char *text = metrics_render(&len);
    CHECK(strstr(text, "t_sends_total{outcome=\"sent\"} 1\n") != NULL);
    CHECK(strstr(text, "t_sends_total{outcome=\"failed\"} 2\n") != NULL);
    /* one HELP per family, series kept together */
    char *first = strstr(text, "# HELP t_sends_total");
    CHECK(first != NULL && strstr(first + 1, "# HELP t_sends_total") == NULL);
    CHECK(strstr(text, "t_backlog 7\n") != NULL);
    CHECK(strstr(text, "t_lateness_seconds_bucket{le=\"0.01\"} 0\n") != NULL);
    CHECK(strstr(text, "t_lateness_seconds_bucket{le=\"0.1\"} 1\n") != NULL);
    CHECK(strstr(text, "t_lateness_seconds_bucket{le=\"+Inf\"} 2\n") != NULL);
    CHECK(strstr(text, "t_lateness_seconds_count 2\n") != NULL);
    CHECK(strstr(text, "process_resident_memory_bytes ") != NULL);
    free(text);
}

static void test_http_addr(void)
{
    char host[64];
    int port;
    CHECK(http_parse_addr("127.0.0.1:8080", host, sizeof(host), &port) == 0 && port == 8080);
    CHECK_STR(host, "127.0.0.1");
    CHECK(http_parse_addr("[::1]:80", host, sizeof(host), &port) == 0 && port == 80);
    CHECK_STR(host, "::1");
    CHECK(http_parse_addr("localhost", host, sizeof(host), &port) == -1);
    CHECK(http_parse_addr("h:99999", host, sizeof(host), &port) == -1);
}

static void test_bus_roundtrip(void)
{
    nng_socket push, pull;
    char url[] = "inproc://bus-roundtrip";
    CHECK(bus_listen(&pull, BUS_PULL, url) == 0);
    CHECK(bus_dial(&push, BUS_PUSH, url) == 0);
    Bcrm__V1__SendJob job = BCRM__V1__SEND_JOB__INIT;
    uint8_t lease[16] = {1, 2, 3};
    job.delivery_id = 77;
    job.lease_id.data = lease;
    job.lease_id.len = sizeof(lease);
    job.org_id = "org";
    job.bot_id = "bot";
    job.recipient_id = "U1";
    job.text = "hello";
    CHECK(bus_send(push, &job.base, 0) == 0);
    ProtobufCMessage *got = NULL;
    nng_socket_set_ms(pull, NNG_OPT_RECVTIMEO, 2000);
    CHECK(bus_recv(pull, &bcrm__v1__send_job__descriptor, &got, 0) == 0);
    if (got != NULL) {
        Bcrm__V1__SendJob *j = (Bcrm__V1__SendJob *)got;
        CHECK(j->delivery_id == 77);
        CHECK_STR(j->text, "hello");
        CHECK(j->lease_id.len == 16 && j->lease_id.data[2] == 3);
        protobuf_c_message_free_unpacked(got, NULL);
    }
    /* Garbage is refused as a protocol error, not handed on. */
    nng_send(push, "\xff\xff\xff", 3, 0);
    CHECK(bus_recv(pull, &bcrm__v1__send_job__descriptor, &got, 0) == NNG_EPROTO);
    nng_close(push);
    nng_close(pull);
}

/* BCRM_BUS_MAX_MSG is enforced on the receiving socket: a larger message never
 * reaches the handler (NNG drops the connection that carried it), and the
 * receiving socket still takes messages within the limit afterwards. Over IPC,
 * since inproc does not apply NNG_OPT_RECVMAXSZ. The message within the limit
 * comes from a new sending socket: nng 1.5 sometimes loses (and leaks) the first
 * message the offending socket sends after its connection was dropped. */
static void test_bus_size_limit(void)
{
    char url[96];
    snprintf(url, sizeof(url), "ipc:///tmp/bcrm-test-bus-limit-%d.ipc", (int)getpid());
    setenv("BCRM_BUS_MAX_MSG", "4096", 1);
    nng_socket push, pull;
    CHECK(bus_listen(&pull, BUS_PULL, url) == 0);
    CHECK(bus_dial(&push, BUS_PUSH, url) == 0);
    unsetenv("BCRM_BUS_MAX_MSG");
    nng_socket_set_ms(pull, NNG_OPT_RECVTIMEO, 1000);

    static char big[8192];
    memset(big, 'x', sizeof(big) - 1);
    Bcrm__V1__SendJob job = BCRM__V1__SEND_JOB__INIT;
    job.org_id = "org";
    job.bot_id = "bot";
    job.recipient_id = "U1";
    job.text = big;
    CHECK(bus_send(push, &job.base, 0) == 0);
    ProtobufCMessage *got = NULL;
    CHECK(bus_recv(pull, &bcrm__v1__send_job__descriptor, &got, 0) == NNG_ETIMEDOUT);
    CHECK(got == NULL);

    nng_close(push);

    CHECK(bus_dial(&push, BUS_PUSH, url) == 0);
    job.text = "small";
    CHECK(bus_send(push, &job.base, 0) == 0);
    CHECK(bus_recv(pull, &bcrm__v1__send_job__descriptor, &got, 0) == 0);
    if (got != NULL) {
        CHECK_STR(((Bcrm__V1__SendJob *)got)->text, "small");
        protobuf_c_message_free_unpacked(got, NULL);
    }
    nng_close(push);
    nng_close(pull);
    unlink(url + strlen("ipc://"));
}

/* A staging id is a version 8 UUID, the same for a bot however its id is cased,
 * different for different bots and never the bot's own id; non-UUIDs are refused. */
static void test_token_staging_id(void)
{
    char a[TOKEN_STAGING_ID_LEN + 1], b[TOKEN_STAGING_ID_LEN + 1], c[TOKEN_STAGING_ID_LEN + 1];
    const char *bot = "3f1c2b9e-8d4a-4c1e-9b7a-0a1b2c3d4e5f";
    CHECK(token_staging_id(bot, a) == 0);
    CHECK(token_staging_id("3F1C2B9E-8D4A-4C1E-9B7A-0A1B2C3D4E5F", b) == 0);
    CHECK_STR(a, b);
    CHECK(strcmp(a, bot) != 0);
    CHECK(strlen(a) == TOKEN_STAGING_ID_LEN);
    CHECK(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
    CHECK(a[14] == '8');
    CHECK(strchr("89ab", a[19]) != NULL);
    CHECK(token_staging_id("3f1c2b9e-8d4a-4c1e-9b7a-0a1b2c3d4e60", c) == 0);
    CHECK(strcmp(a, c) != 0);
    /* A staging id's own staging id is another id again (a destroy of it deletes
     * nothing else). */
    CHECK(token_staging_id(a, c) == 0 && strcmp(c, a) != 0);
    CHECK(token_staging_id("not-a-uuid", c) == -1);
    CHECK(token_staging_id("3f1c2b9e-8d4a-4c1e-9b7a-0a1b2c3d4e5", c) == -1);
    CHECK(token_staging_id("3f1c2b9e+8d4a-4c1e-9b7a-0a1b2c3d4e5f", c) == -1);
    CHECK(token_staging_id("3f1c2b9e-8d4a-4c1e-9b7a-0a1b2c3d4e5g", c) == -1);
    CHECK(token_staging_id(NULL, c) == -1);
}

/* process_harden(): no core file, and not dumpable (so no ptrace by other users'
 * processes and /proc/<pid>/mem readable only with CAP_SYS_PTRACE). Last, since it
 * hardens this test process too. */
static void test_process_harden(void)
{
    CHECK(process_harden() == 0);
    struct rlimit core;
    CHECK(getrlimit(RLIMIT_CORE, &core) == 0);
    CHECK(core.rlim_cur == 0 && core.rlim_max == 0);
    CHECK(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    test_config();
    test_hex_and_keys();
    test_metrics();
    test_http_addr();
    test_bus_roundtrip();
    test_bus_size_limit();
    test_token_staging_id();
    test_process_harden();
    CHECK_DONE();
}
