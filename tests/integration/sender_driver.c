/* sender_driver: plays the scheduler's side of a sender's sockets, for the system
 * tests (tests/e2e/test_senders.py), which cannot speak NNG themselves.
 *
 *   sender_driver send JOBS.json [PEERS [TIMEOUT_MS [BATCH]]]
 *       listens on the work URL (PUSH) and the results URL (PULL), waits until
 *       PEERS senders are connected (default 1), pushes the jobs of JOBS.json (an
 *       array of {delivery_id, org_id, bot_id, recipient_id, text, blocks_json,
 *       messaging_type, tag, last_message_at_ms}) in SendBatches of BATCH jobs
 *       (default 10), each with a fresh lease id, and prints one JSON line per
 *       result until every job has one or TIMEOUT_MS passed (default 30000).
 *   sender_driver query KIND ORG BOT [CURSOR [LIMIT [ARG]]]
 *       listens on the scheduler's query URL (REQ), asks one PlatformQuery
 *       (KIND: verify, users, channels, members (ARG: the channel id), oauth
 *       (CURSOR: the code, ARG: the redirect URI)) and prints the reply as JSON
 *       (a sealed token as its length and hex).
 *
 * BCRM_DRIVER_PLATFORM (slack or messenger, default slack) picks the URLs:
 * BCRM_SCHEDULER_WORK_<P>_URL, BCRM_SCHEDULER_RESULTS_URL and
 * BCRM_SCHEDULER_QUERY_<P>_URL. Exit status 0 when every job got a result (send)
 * or a reply came (query), 1 otherwise. Test code: it prints profile data.
 */
#include "bcrm/bus.h"
#include "bcrm/clock.h"
#include "bcrm/keys.h"
#include "bcrm/v1/query.pb-c.h"
#include "bcrm/v1/send.pb-c.h"

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/supplemental/util/platform.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Senders connected to our work socket and to our results socket. */
static atomic_int work_peers, result_peers;

static void on_pipe_add(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    (void)pipe;
    (void)ev;
    atomic_fetch_add((atomic_int *)arg, 1);
}

static const char *url_var(const char *kind)
{
    static char name[64];
    const char *platform = getenv("BCRM_DRIVER_PLATFORM");
    bool messenger = platform != NULL && strcmp(platform, "messenger") == 0;
    snprintf(name, sizeof(name), "BCRM_SCHEDULER_%s_%s_URL", kind,
             messenger ? "MESSENGER" : "SLACK");
    const char *url = getenv(name);
    if (url == NULL) {
        fprintf(stderr, "sender_driver: %s is not set\n", name);
        exit(2);
    }
    return url;
}

static char *json_str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? strdup(s) : NULL;
}

static Bcrm__V1__SendJob *job_from_json(json_t *j)
{
    Bcrm__V1__SendJob *job = calloc(1, sizeof(*job));
    bcrm__v1__send_job__init(job);
    job->delivery_id = json_integer_value(json_object_get(j, "delivery_id"));
    job->lease_id.len = 16;
    job->lease_id.data = malloc(16);
    randombytes_buf(job->lease_id.data, 16);
    job->org_id = json_str(j, "org_id");
    job->bot_id = json_str(j, "bot_id");
    job->recipient_id = json_str(j, "recipient_id");
    job->text = json_str(j, "text");
    job->blocks_json = json_str(j, "blocks_json");
    job->messaging_type = json_str(j, "messaging_type");
    job->tag = json_str(j, "tag");
    job->has_attempt = true;
    job->attempt = 1;
    json_t *last = json_object_get(j, "last_message_at_ms");
    if (json_is_integer(last)) {
        job->has_last_message_at_ms = true;
        job->last_message_at_ms = json_integer_value(last);
    }
    return job;
}

static void print_result(const Bcrm__V1__SendResult *r, const char *sender_id)
{
    char lease[33];
    hex_encode(lease, r->lease_id.data, r->lease_id.len < 16 ? r->lease_id.len : 16);
    json_t *o = json_pack(
        "{s:I, s:s, s:s, s:s, s:s, s:I, s:b, s:b, s:s, s:s}", "delivery_id",
        (json_int_t)r->delivery_id, "lease_id", lease, "outcome",
        protobuf_c_enum_descriptor_get_value(&bcrm__v1__outcome__descriptor, r->outcome)->name,
        "platform_message_id", r->platform_message_id ? r->platform_message_id : "", "error",
        r->error ? r->error : "", "retry_after_ms",
        (json_int_t)(r->has_retry_after_ms ? r->retry_after_ms : -1), "rate_limited",
        r->rate_limited, "bot_token_invalid", r->bot_token_invalid, "sender_id",
        sender_id ? sender_id : "", "bot_id", r->bot_id ? r->bot_id : "");
    char *line = json_dumps(o, JSON_COMPACT);
    printf("%s\n", line);
    fflush(stdout);
    free(line);
    json_decref(o);
}

static int cmd_send(int argc, char **argv)
{
    json_error_t jerr;
    json_t *jobs = json_load_file(argv[2], 0, &jerr);
    int peers = argc > 3 ? atoi(argv[3]) : 1;
    int64_t timeout_ms = argc > 4 ? atoll(argv[4]) : 30000;
    size_t batch = argc > 5 ? (size_t)atoi(argv[5]) : 10;
    if (!json_is_array(jobs) || batch == 0) {
        fprintf(stderr, "sender_driver: %s: not a JSON array of jobs\n", argv[2]);
        return 2;
    }
    nng_socket push, pull;
    int rv;
    if ((rv = nng_pull0_open(&pull)) != 0 ||
        (rv = nng_pipe_notify(pull, NNG_PIPE_EV_ADD_POST, on_pipe_add, &result_peers)) != 0 ||
        (rv = nng_listen(pull, getenv("BCRM_SCHEDULER_RESULTS_URL") ?: "", NULL, 0)) != 0 ||
        (rv = nng_push0_open(&push)) != 0 ||
        (rv = nng_pipe_notify(push, NNG_PIPE_EV_ADD_POST, on_pipe_add, &work_peers)) != 0 ||
        (rv = nng_listen(push, url_var("WORK"), NULL, 0)) != 0) {
        fprintf(stderr, "sender_driver: listen: %s\n", nng_strerror(rv));
        return 2;
    }
    /* Wait for the senders on both sockets: a sender dials one pipe at a time, so
     * once its results pipe reaches us, none to an earlier driver remains, and no
     * result can go to a listener that is gone. */
    int64_t deadline = clock_mono_ms() + timeout_ms;
    while ((atomic_load(&work_peers) < peers || atomic_load(&result_peers) < peers) &&
           clock_mono_ms() < deadline) {
        nng_msleep(20);
    }
    if (atomic_load(&work_peers) < peers || atomic_load(&result_peers) < peers) {
        fprintf(stderr, "sender_driver: only %d (work) and %d (results) of %d senders\n",
                atomic_load(&work_peers), atomic_load(&result_peers), peers);
        return 1;
    }
    size_t total = json_array_size(jobs);
    for (size_t first = 0; first < total; first += batch) {
        size_t n = total - first < batch ? total - first : batch;
        Bcrm__V1__SendBatch b = BCRM__V1__SEND_BATCH__INIT;
        b.n_jobs = n;
        b.jobs = calloc(n, sizeof(*b.jobs));
        for (size_t i = 0; i < n; i++) {
            b.jobs[i] = job_from_json(json_array_get(jobs, first + i));
        }
        nng_socket_set_ms(push, NNG_OPT_SENDTIMEO, 10000);
        if ((rv = bus_send(push, &b.base, 0)) != 0) {
            fprintf(stderr, "sender_driver: push: %s\n", nng_strerror(rv));
            return 1;
        }
        for (size_t i = 0; i < n; i++) {
            bcrm__v1__send_job__free_unpacked(b.jobs[i], NULL);
        }
        free(b.jobs);
    }
    size_t got = 0;
    while (got < total && clock_mono_ms() < deadline) {
        nng_socket_set_ms(pull, NNG_OPT_RECVTIMEO, (nng_duration)(deadline - clock_mono_ms()));
        Bcrm__V1__ResultBatch *rb = NULL;
        if (bus_recv(pull, &bcrm__v1__result_batch__descriptor, (ProtobufCMessage **)&rb, 0) != 0) {
            break;
        }
        for (size_t i = 0; i < rb->n_results; i++) {
            print_result(rb->results[i], rb->sender_id);
        }
        got += rb->n_results;
        bcrm__v1__result_batch__free_unpacked(rb, NULL);
    }
    nng_close(push);
    nng_close(pull);
    json_decref(jobs);
    if (got < total) {
        fprintf(stderr, "sender_driver: %zu of %zu results\n", got, total);
        return 1;
    }
    return 0;
}

static json_t *user_json(const Bcrm__V1__PlatformUser *u)
{
    return json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:i, s:b, s:b, s:b, s:b, s:b, s:s?, s:s?}",
                     "id", u->id, "name", u->name, "real_name", u->real_name, "first_name",
                     u->first_name, "tz", u->tz, "tz_offset", u->tz_offset, "has_tz", u->has_tz,
                     "is_admin", u->is_admin, "is_owner", u->is_owner, "is_bot", u->is_bot,
                     "deleted", u->deleted, "email", u->email, "avatar", u->avatar);
}

/* The page fields every list query has (ListUsers, ListChannels,
 * ListChannelMembers): a limit of 0 or less asks for the sender's default. */
static void set_page(char **cursor_field, protobuf_c_boolean *has_limit, int32_t *limit_field,
                     char *cursor, int limit)
{
    *cursor_field = cursor;
    *has_limit = limit > 0;
    *limit_field = limit;
}

static int cmd_query(int argc, char **argv)
{
    Bcrm__V1__PlatformQuery q = BCRM__V1__PLATFORM_QUERY__INIT;
    Bcrm__V1__VerifyBot verify = BCRM__V1__VERIFY_BOT__INIT;
    Bcrm__V1__ListUsers users = BCRM__V1__LIST_USERS__INIT;
    Bcrm__V1__ListChannels channels = BCRM__V1__LIST_CHANNELS__INIT;
    Bcrm__V1__ListChannelMembers members = BCRM__V1__LIST_CHANNEL_MEMBERS__INIT;
    Bcrm__V1__ExchangeOAuthCode oauth = BCRM__V1__EXCHANGE_OAUTH_CODE__INIT;
    char *arg = argc > 7 ? argv[7] : "";
    char request_id[33];
    bus_new_id(request_id);
    q.request_id = request_id;
    q.org_id = argv[3];
    q.bot_id = argv[4];
    char *cursor = argc > 5 && argv[5][0] != '\0' ? argv[5] : NULL;
    int limit = argc > 6 ? atoi(argv[6]) : 0;
    if (strcmp(argv[2], "verify") == 0) {
        q.query_case = BCRM__V1__PLATFORM_QUERY__QUERY_VERIFY_BOT;
        q.verify_bot = &verify;
    } else if (strcmp(argv[2], "users") == 0) {
        q.query_case = BCRM__V1__PLATFORM_QUERY__QUERY_LIST_USERS;
        set_page(&users.cursor, &users.has_limit, &users.limit, cursor, limit);
        q.list_users = &users;
    } else if (strcmp(argv[2], "members") == 0) {
        q.query_case = BCRM__V1__PLATFORM_QUERY__QUERY_LIST_CHANNEL_MEMBERS;
        members.channel_id = arg;
        set_page(&members.cursor, &members.has_limit, &members.limit, cursor, limit);
        q.list_channel_members = &members;
    } else if (strcmp(argv[2], "oauth") == 0) {
        q.query_case = BCRM__V1__PLATFORM_QUERY__QUERY_EXCHANGE_OAUTH_CODE;
        oauth.code = cursor != NULL ? cursor : "";
        oauth.redirect_uri = arg;
        q.exchange_oauth_code = &oauth;
    } else {
        q.query_case = BCRM__V1__PLATFORM_QUERY__QUERY_LIST_CHANNELS;
        set_page(&channels.cursor, &channels.has_limit, &channels.limit, cursor, limit);
        q.list_channels = &channels;
    }
    nng_socket req;
    int rv;
    if ((rv = bus_listen(&req, BUS_REQ, url_var("QUERY"))) != 0) {
        fprintf(stderr, "sender_driver: listen: %s\n", nng_strerror(rv));
        return 2;
    }
    Bcrm__V1__PlatformReply *reply = NULL;
    if ((rv = bus_call(req, &q.base, &bcrm__v1__platform_reply__descriptor,
                       (ProtobufCMessage **)&reply, 30000)) != 0) {
        fprintf(stderr, "sender_driver: query: %s\n", nng_strerror(rv));
        return 1;
    }
    json_t *o = json_pack(
        "{s:s, s:s, s:s?, s:s?}", "request_id", reply->request_id, "status",
        protobuf_c_enum_descriptor_get_value(&bcrm__v1__query_status__descriptor, reply->status)
            ->name,
        "error", reply->error, "next_cursor", reply->next_cursor);
    json_object_set_new(o, "retry_after_ms",
                        json_integer(reply->has_retry_after_ms ? reply->retry_after_ms : -1));
    if (reply->identity != NULL) {
        Bcrm__V1__BotIdentity *id = reply->identity;
        json_object_set_new(o, "identity",
                            json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}", "name",
                                      id->name, "team_id", id->team_id, "bot_user_id",
                                      id->bot_user_id, "bot_id", id->bot_id, "url", id->url,
                                      "page_id", id->page_id, "app_id", id->app_id, "scopes",
                                      id->scopes));
    }
    json_t *ids = json_array();
    for (size_t i = 0; i < reply->n_member_ids; i++) {
        json_array_append_new(ids, json_string(reply->member_ids[i]));
    }
    json_object_set_new(o, "member_ids", ids);
    if (reply->has_sealed_token) {
        char *hex = malloc(reply->sealed_token.len * 2 + 1);
        hex_encode(hex, reply->sealed_token.data, reply->sealed_token.len);
        json_object_set_new(o, "sealed_token_hex", json_string(hex));
        free(hex);
    }
    json_t *list = json_array();
    for (size_t i = 0; i < reply->n_users; i++) {
        json_array_append_new(list, user_json(reply->users[i]));
    }
    json_object_set_new(o, "users", list);
    list = json_array();
    for (size_t i = 0; i < reply->n_channels; i++) {
        Bcrm__V1__PlatformChannel *c = reply->channels[i];
        json_array_append_new(list, json_pack("{s:s, s:s?, s:b, s:b, s:i}", "id", c->id, "name",
                                              c->name, "is_private", c->is_private, "is_archived",
                                              c->is_archived, "num_members", c->num_members));
    }
    json_object_set_new(o, "channels", list);
    char *text = json_dumps(o, JSON_COMPACT);
    printf("%s\n", text);
    free(text);
    json_decref(o);
    bcrm__v1__platform_reply__free_unpacked(reply, NULL);
    nng_close(req);
    return 0;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        return 2;
    }
    if (argc >= 3 && strcmp(argv[1], "send") == 0) {
        return cmd_send(argc, argv);
    }
    if (argc >= 5 && strcmp(argv[1], "query") == 0) {
        return cmd_query(argc, argv);
    }
    fprintf(stderr, "usage: sender_driver send JOBS.json [PEERS [TIMEOUT_MS [BATCH]]]\n"
                    "       sender_driver query verify|users|channels|members|oauth ORG BOT "
                    "[CURSOR [LIMIT [ARG]]]\n");
    return 2;
}
