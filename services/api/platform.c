/* platform.c: live questions to the platform senders (see platform.h). */
#include "platform.h"

#include "bcrm/bus.h"
#include "bcrm/db.h"
#include "bcrm/log.h"

#include <stdio.h>
#include <string.h>

Bcrm__V1__Platform platform_enum_of(const char *platform)
{
    return strcmp(platform, "slack") == 0 ? BCRM__V1__PLATFORM__PLATFORM_SLACK
                                          : BCRM__V1__PLATFORM__PLATFORM_MESSENGER;
}

void platform_query_init(Bcrm__V1__PlatformQuery *q, char request_id[33], const char *org_id,
                         const char *bot_id)
{
    Bcrm__V1__PlatformQuery init = BCRM__V1__PLATFORM_QUERY__INIT;
    *q = init;
    bus_new_id(request_id);
    q->request_id = request_id;
    q->org_id = (char *)org_id;
    q->bot_id = (char *)bot_id;
}

/* Asks a sender of platform. 0 with *reply set (whatever its status), or -1 after
 * answering 503 because no sender answered in time. */
int platform_call(struct api_req *r, const char *platform, Bcrm__V1__PlatformQuery *q,
                  Bcrm__V1__PlatformReply **reply)
{
    nng_socket sock =
        strcmp(platform, "slack") == 0 ? r->api->query_slack : r->api->query_messenger;
    ProtobufCMessage *out = NULL;
    int rv = bus_call(sock, &q->base, &bcrm__v1__platform_reply__descriptor, &out,
                      r->api->query_timeout_ms);
    if (rv != 0) {
        log_warn("platform query failed", "{s:s, s:s, s:s, s:s}", "platform", platform, "bot_id",
                 q->bot_id, "request_id", q->request_id, "error", nng_strerror(rv));
        api_problem(r, 503, "Service Unavailable", NULL,
                    "no %s sender answered within %d ms; try again later", platform,
                    r->api->query_timeout_ms);
        return -1;
    }
    *reply = (Bcrm__V1__PlatformReply *)out;
    return 0;
}

/* Answers a reply that is not QUERY_OK. While verifying a new token, what the
 * platform refuses is the client's input (422); later it is an upstream failure. */
void platform_answer_failure(struct api_req *r, const char *platform,
                             const Bcrm__V1__PlatformReply *rep, bool verifying)
{
    const char *error = rep->error && rep->error[0] ? rep->error : "unknown_error";
    json_t *extra = json_pack("{s:s, s:s}", "platform", platform, "platform_error", error);
    switch (rep->status) {
    case BCRM__V1__QUERY_STATUS__QUERY_RATE_LIMITED: {
        long long seconds = rep->has_retry_after_ms ? (rep->retry_after_ms + 999) / 1000 : 1;
        char retry[24];
        snprintf(retry, sizeof(retry), "%lld", seconds > 0 ? seconds : 1);
        api_problem_ext(r, 429, "Too Many Requests", extra,
                        "%s rate-limits this bot; retry after %s s", platform, retry);
        http_add_header(r->resp, "Retry-After", retry);
        break;
    }
    case BCRM__V1__QUERY_STATUS__QUERY_UNAVAILABLE:
        api_problem_ext(r, 503, "Service Unavailable", extra, "%s is not reachable: %s", platform,
                        error);
        break;
    case BCRM__V1__QUERY_STATUS__QUERY_TOKEN_INVALID:
    case BCRM__V1__QUERY_STATUS__QUERY_PLATFORM_ERROR:
        if (verifying) {
            json_object_set_new(
                extra, "field",
                json_string(strcmp(platform, "slack") == 0 ? "token" : "page_token"));
            api_problem_ext(r, 422, "Token rejected", extra, "%s refused the token: %s", platform,
                            error);
        } else {
            api_problem_ext(r, 502, "Bad Gateway", extra, "%s answered an error: %s", platform,
                            error);
        }
        break;
    default:
        if (strstr(error, "cursor") != NULL) {
            json_object_set_new(extra, "field", json_string("cursor"));
            api_problem_ext(r, 422, "Invalid parameter", extra, "%s refused the cursor: %s",
                            platform, error);
        } else {
            api_problem_ext(r, verifying ? 422 : 400, "Bad Request", extra,
                            "%s refused the request: %s", platform, error);
        }
        break;
    }
}

static json_t *opt_string(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *platform_user_json(const Bcrm__V1__PlatformUser *u)
{
    bool has_tz = u->tz != NULL && u->tz[0] != '\0' && (!u->has_has_tz || u->has_tz);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(u->id));
    json_object_set_new(o, "name", opt_string(u->name));
    json_object_set_new(o, "real_name", opt_string(u->real_name));
    json_object_set_new(o, "first_name", opt_string(u->first_name));
    json_object_set_new(o, "tz", has_tz ? json_string(u->tz) : json_null());
    json_object_set_new(o, "tz_offset",
                        u->has_tz_offset ? json_integer(u->tz_offset) : json_null());
    json_object_set_new(o, "is_admin", json_boolean(u->has_is_admin && u->is_admin));
    json_object_set_new(o, "is_owner", json_boolean(u->has_is_owner && u->is_owner));
    json_object_set_new(o, "is_bot", json_boolean(u->has_is_bot && u->is_bot));
    json_object_set_new(o, "deleted", json_boolean(u->has_deleted && u->deleted));
    json_object_set_new(o, "email", opt_string(u->email));
    json_object_set_new(o, "avatar", opt_string(u->avatar));
    return o;
}

int platform_mark_token_invalid(struct api_req *r, const char *bot_id)
{
    PGconn *conn = api_db(r);
    const char *p[] = {bot_id};
    return conn != NULL ? db_exec(conn, "mark token invalid",
                                  "SELECT bots_token_invalid(ARRAY[$1::uuid])", 1, p)
                        : -1;
}

void platform_answer_read_failure(struct api_req *r, const char *platform, const char *bot_id,
                                  const Bcrm__V1__PlatformReply *rep)
{
    if (rep->status == BCRM__V1__QUERY_STATUS__QUERY_TOKEN_INVALID) {
        platform_mark_token_invalid(r, bot_id);
    }
    platform_answer_failure(r, platform, rep, false);
}
