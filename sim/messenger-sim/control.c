/* control.c: messenger-sim's /_sim/ endpoints.
 *
 *   GET  /_sim/pages                   pages with their tokens
 *   GET  /_sim/users?page_id=          every person, with profile, window and flags
 *   POST /_sim/inbound {psid, page_id?, at_ms?, text?, url?}   the person writes to
 *                                      the page (now, or at at_ms): their 24-hour window
 *                                      opens again, and the webhook gets the message
 *   POST /_sim/read {psid, watermark_ms?, url?}      a read receipt to the webhook
 *   POST /_sim/delivery {psid, mids?, watermark_ms?, url?}   a delivery receipt
 *   POST /_sim/verify_webhook {url?}   the subscription check (hub.challenge echo)
 *   GET  /_sim/receipts, POST /_sim/receipts {enabled?, delivery_delay_ms?,
 *       read_delay_ms?, read_fraction?, url?}   automatic delivery and read events
 *       after each send (receipts.h), and their counters
 *   GET  /_sim/messages?page_id=&user=&since=     the record, in arrival order
 *   GET  /_sim/recipients?page_id=     messages per person
 *   GET  /_sim/stats                   counters
 *   POST /_sim/reset                   forget messages, counters, inbound messages
 *                                      and waiting receipts; faults and the receipts'
 *                                      settings too unless {"keep_faults":true}
 *   GET  /_sim/faults, POST /_sim/faults   latency_ms, jitter_ms, error_rate,
 *       error_status, error_code (2 or 1200), drop_rate, ratelimit_storm_seconds,
 *       ratelimit_code (613, 4 or 80006), short_pages, empty_page_rate, limits,
 *       send_per_second, conversations_per_second, revoke_token / restore_token
 *       (page ids) with revoke_subcode (460, 463 or 467), clear
 *   GET  /_sim/requests?since=&method=&limit=   the Graph calls as received
 *                                      (reqlog.h), oldest first
 *   POST /_sim/requests {reset?, enabled?}, DELETE /_sim/requests (reset)
 */
#include "msim.h"
#include "receipts.h"

#include "rng.h"
#include "simutil.h"
#include "strmap.h"
#include "webhooks.h"

#include "bcrm/clock.h"
#include "bcrm/http.h"
#include "bcrm/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS (24LL * 3600 * 1000)

void msim_faults_get(struct msim *m, struct msim_faults *out)
{
    pthread_rwlock_rdlock(&m->faults_lock);
    *out = m->faults;
    pthread_rwlock_unlock(&m->faults_lock);
}

static bool page_filter(struct msim *m, const struct http_request *req, struct http_response *resp,
                        const struct msim_page **out)
{
    const char *id = http_query(req, "page_id");
    *out = NULL;
    if (id == NULL || id[0] == '\0') {
        return true;
    }
    *out = strmap_get(m->page_by_id, id);
    if (*out == NULL) {
        http_respond_problem(resp, 404, "Not Found", "no page with id %s", id);
        return false;
    }
    return true;
}

static json_t *ok_with(const char *key, json_t *value)
{
    return json_pack("{s:b, s:o}", "ok", 1, key, value);
}

static void get_pages(struct msim *m, struct http_response *resp)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < m->page_count; i++) {
        const struct msim_page *p = &m->pages[i];
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:b}", "page_id", p->id, "name",
                                             p->name, "token", p->token, "users",
                                             (json_int_t)p->person_count, "revoked",
                                             atomic_load(&p->revoked)));
    }
    http_respond_json(resp, 200, ok_with("pages", arr));
}

static json_t *person_json(struct msim *m, const struct msim_person *p, int64_t now_ms)
{
    int64_t last = atomic_load(&p->last_message_ms);
    int64_t age = now_ms - last;
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:b, s:b}", "psid", p->psid,
        "page_id", p->page->id, "conversation_id", p->conversation_id, "first_name", p->first_name,
        "last_name", p->last_name, "name", p->name, "marker", p->marker, "profile_pic",
        p->profile_pic, "locale", p->locale, "last_message_ms", (json_int_t)last, "in_window",
        age <= DAY_MS, "human_agent_window", age <= 7 * DAY_MS, "unavailable", p->unavailable);
    json_object_set_new(o, "timezone", p->has_timezone ? json_real(p->timezone) : json_null());
    /* Whether the receipts, when on, include read events for this person. */
    json_object_set_new(o, "reads", json_boolean(msim_receipts_reads(m->receipts, p)));
    return o;
}

static void get_users(struct msim *m, const struct http_request *req, struct http_response *resp)
{
    const struct msim_page *only;
    if (!page_filter(m, req, resp, &only)) {
        return;
    }
    int64_t now = clock_wall_ms();
    json_t *arr = json_array();
    for (size_t i = 0; i < m->page_count; i++) {
        const struct msim_page *p = &m->pages[i];
        for (size_t j = 0; (only == NULL || only == p) && j < p->person_count; j++) {
            json_array_append_new(arr, person_json(m, &p->people[j], now));
        }
    }
    http_respond_json(resp, 200, ok_with("users", arr));
}

static json_t *body_json(const struct http_request *req, struct http_response *resp)
{
    if (req->body_len == 0) {
        return json_object();
    }
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, 0, &jerr);
    if (!json_is_object(body)) {
        json_decref(body);
        http_respond_problem(resp, 400, "Bad Request", "body is not a JSON object: %s", jerr.text);
        return NULL;
    }
    return body;
}

/* Finds the person a /_sim/ request names ({psid, page_id?}). */
static struct msim_person *find_person(struct msim *m, json_t *body)
{
    const char *psid = json_string_value(json_object_get(body, "psid"));
    const char *page_id = json_string_value(json_object_get(body, "page_id"));
    for (size_t i = 0; psid != NULL && i < m->page_count; i++) {
        if (page_id == NULL || strcmp(page_id, m->pages[i].id) == 0) {
            const struct msim_person *p = msim_person(&m->pages[i], psid);
            if (p != NULL) {
                return (struct msim_person *)p; /* only its atomics change */
            }
        }
    }
    return NULL;
}

/* Delivers messaging (taken) to the webhook when a URL is known; the report, or
 * JSON null when there is nowhere to deliver. */
static json_t *deliver(struct msim_person *person, json_t *body, json_t *messaging, int64_t now)
{
    const char *url = msim_webhook_url(json_string_value(json_object_get(body, "url")));
    if (url[0] == '\0') {
        json_decref(messaging);
        return json_null();
    }
    return msim_webhook_deliver(person->page, messaging, url, now);
}

static void post_inbound(struct msim *m, const struct http_request *req, struct http_response *resp)
{
    json_t *body = body_json(req, resp);
    if (body == NULL) {
        return;
    }
    struct msim_person *person = find_person(m, body);
    json_t *at = json_object_get(body, "at_ms");
    if (person == NULL || (at != NULL && !json_is_integer(at))) {
        json_decref(body);
        http_respond_problem(
            resp, 400, "Bad Request",
            "want {psid, page_id?, at_ms?, text?, url?} naming a simulated person");
        return;
    }
    int64_t now = clock_wall_ms();
    int64_t when = at ? (int64_t)json_integer_value(at) : now;
    atomic_store(&person->last_message_ms, when);
    const char *text = json_string_value(json_object_get(body, "text"));
    char mid[40] = "m_";
    rng_token_lower(mid + 2, rng_thread_u64(), 32);
    json_t *messaging =
        json_pack("{s:{s:s}, s:{s:s}, s:I, s:{s:s, s:s}}", "sender", "id", person->psid,
                  "recipient", "id", person->page->id, "timestamp", (json_int_t)when, "message",
                  "mid", mid, "text", text ? text : "hello");
    json_t *answer = ok_with("user", person_json(m, person, now));
    json_object_set_new(answer, "webhook", deliver(person, body, messaging, now));
    json_decref(body);
    http_respond_json(resp, 200, answer);
}

/* POST /_sim/read and /_sim/delivery: receipts for what the page sent. */
static void post_receipt(struct msim *m, const struct http_request *req, struct http_response *resp,
                         bool is_read)
{
    json_t *body = body_json(req, resp);
    if (body == NULL) {
        return;
    }
    struct msim_person *person = find_person(m, body);
    json_t *wm = json_object_get(body, "watermark_ms");
    json_t *mids = json_object_get(body, "mids");
    if (person == NULL || (wm != NULL && !json_is_integer(wm)) ||
        (mids != NULL && !json_is_array(mids))) {
        json_decref(body);
        http_respond_problem(resp, 400, "Bad Request",
                             "want {psid, page_id?, watermark_ms?, mids?, url?}");
        return;
    }
    int64_t now = clock_wall_ms();
    json_int_t watermark = wm ? json_integer_value(wm) : (json_int_t)now;
    json_t *receipt = is_read
                          ? json_pack("{s:I}", "watermark", watermark)
                          : json_pack("{s:o, s:I}", "mids", mids ? json_incref(mids) : json_array(),
                                      "watermark", watermark);
    json_t *messaging = json_pack("{s:{s:s}, s:{s:s}, s:I, s:o}", "sender", "id", person->psid,
                                  "recipient", "id", person->page->id, "timestamp", (json_int_t)now,
                                  is_read ? "read" : "delivery", receipt);
    json_t *answer =
        json_pack("{s:b, s:o}", "ok", 1, "webhook", deliver(person, body, messaging, now));
    json_decref(body);
    http_respond_json(resp, 200, answer);
}

static void post_verify(const struct http_request *req, struct http_response *resp)
{
    json_t *body = body_json(req, resp);
    if (body == NULL) {
        return;
    }
    const char *url = msim_webhook_url(json_string_value(json_object_get(body, "url")));
    if (url[0] == '\0') {
        json_decref(body);
        http_respond_problem(resp, 400, "Bad Request",
                             "no url given and MESSENGER_SIM_WEBHOOK_URL not set");
        return;
    }
    json_t *answer = msim_webhook_verify(url);
    json_object_set_new(answer, "ok", json_true());
    json_decref(body);
    http_respond_json(resp, 200, answer);
}

static void get_messages(struct msim *m, const struct http_request *req, struct http_response *resp)
{
    const struct msim_page *only;
    if (!page_filter(m, req, resp, &only)) {
        return;
    }
    const char *since = http_query(req, "since");
    const char *user = http_query(req, "user");
    sim_respond_messages(resp, m->record, only ? only->id : NULL, user && user[0] ? user : NULL,
                         NULL, since ? strtoll(since, NULL, 10) : 0);
}

static void get_recipients(struct msim *m, const struct http_request *req,
                           struct http_response *resp)
{
    const struct msim_page *only;
    if (!page_filter(m, req, resp, &only)) {
        return;
    }
    json_t *arr = record_recipients_json(m->record, only ? only->id : NULL);
    if (arr == NULL) {
        http_respond_problem(resp, 500, "Internal Server Error", "out of memory");
        return;
    }
    http_respond_json(resp, 200, ok_with("recipients", arr));
}

static void get_stats(struct msim *m, struct http_response *resp)
{
    struct record_totals t;
    record_totals(m->record, &t);
    json_t *by_call = json_object();
    for (int i = 0; i < MSIM_CALL_COUNT; i++) {
        json_object_set_new(by_call, msim_call_name((enum msim_call)i),
                            json_integer(atomic_load(&m->by_call[i])));
    }
    struct http_server *srv = atomic_load(&m->http);
    int held = 0, held_max = 0;
    if (srv != NULL) {
        http_server_held(srv, &held, &held_max, false);
    }
    http_respond_json(resp, 200,
                      json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:i, s:o}",
                                "ok", 1, "requests", (json_int_t)atomic_load(&m->requests),
                                "messages", (json_int_t)t.messages, "recipients",
                                (json_int_t)t.recipients, "duplicates", (json_int_t)t.duplicates,
                                "ratelimited", (json_int_t)atomic_load(&m->ratelimited),
                                "injected_errors", (json_int_t)atomic_load(&m->injected_errors),
                                "dropped", (json_int_t)atomic_load(&m->dropped), "policy_refusals",
                                (json_int_t)atomic_load(&m->policy_refusals), "answers_held", held,
                                "answers_held_max", held_max, "by_call", by_call));
}

static void post_reset(struct msim *m, const struct http_request *req, struct http_response *resp)
{
    json_t *body = body_json(req, resp);
    if (body == NULL) {
        return;
    }
    bool keep_faults = json_is_true(json_object_get(body, "keep_faults"));
    json_decref(body);
    record_reset(m->record);
    reqlog_reset(m->request_log);
    atomic_store(&m->requests, 0);
    atomic_store(&m->ratelimited, 0);
    atomic_store(&m->injected_errors, 0);
    atomic_store(&m->dropped, 0);
    atomic_store(&m->policy_refusals, 0);
    for (int i = 0; i < MSIM_CALL_COUNT; i++) {
        atomic_store(&m->by_call[i], 0);
    }
    struct http_server *srv = atomic_load(&m->http);
    if (srv != NULL) {
        int held, held_max;
        http_server_held(srv, &held, &held_max, true);
    }
    for (size_t i = 0; i < m->page_count; i++) {
        struct msim_page *p = &m->pages[i];
        for (size_t j = 0; j < p->person_count; j++) {
            atomic_store(&p->people[j].last_message_ms, p->people[j].initial_last_message_ms);
        }
        pthread_mutex_lock(&p->limit_lock);
        p->send_bucket.started = false;
        p->conversations_bucket.started = false;
        pthread_mutex_unlock(&p->limit_lock);
        if (!keep_faults) {
            atomic_store(&p->revoked, false);
            atomic_store(&p->revoked_subcode, 460);
        }
    }
    if (!keep_faults) {
        pthread_rwlock_wrlock(&m->faults_lock);
        m->faults = m->default_faults;
        pthread_rwlock_unlock(&m->faults_lock);
    }
    msim_receipts_reset(m->receipts, keep_faults);
    log_info("simulator reset", "{s:b}", "keep_faults", keep_faults);
    http_respond_json(resp, 200, json_pack("{s:b}", "ok", 1));
}

static json_t *faults_json(struct msim *m)
{
    struct msim_faults f;
    msim_faults_get(m, &f);
    int64_t now = clock_wall_ms();
    int64_t storm_left = f.storm_until_ms > now ? f.storm_until_ms - now : 0;
    json_t *revoked = json_array();
    for (size_t i = 0; i < m->page_count; i++) {
        if (atomic_load(&m->pages[i].revoked)) {
            json_array_append_new(revoked, json_string(m->pages[i].id));
        }
    }
    return json_pack("{s:b, s:i, s:i, s:f, s:i, s:i, s:f, s:I, s:i, s:b, s:f, s:b, s:f, s:f, s:o}",
                     "ok", 1, "latency_ms", f.latency_ms, "jitter_ms", f.jitter_ms, "error_rate",
                     f.error_rate, "error_status", f.error_status, "error_code", f.error_code,
                     "drop_rate", f.drop_rate, "ratelimit_storm_seconds",
                     (json_int_t)((storm_left + 999) / 1000), "ratelimit_code", f.ratelimit_code,
                     "short_pages", f.short_pages, "empty_page_rate", f.empty_page_rate, "limits",
                     f.limits, "send_per_second", f.send_per_second, "conversations_per_second",
                     f.conversations_per_second, "revoked", revoked);
}

static int apply_revocations(struct msim *m, json_t *body, const char *field, bool revoked,
                             char *err, size_t errlen)
{
    json_t *v = json_object_get(body, field);
    if (v == NULL) {
        return 0;
    }
    int subcode = 460;
    json_t *how = json_object_get(body, "revoke_subcode");
    if (revoked && how != NULL) {
        subcode = json_is_integer(how) ? (int)json_integer_value(how) : 0;
        if (subcode != 460 && subcode != 463 && subcode != 467) {
            snprintf(err, errlen, "revoke_subcode: want 460, 463 or 467");
            return -1;
        }
    }
    json_t *list = json_is_array(v) ? json_incref(v) : json_pack("[O]", v);
    size_t i;
    json_t *id;
    int rc = 0;
    json_array_foreach(list, i, id)
    {
        if (!json_is_string(id) || strmap_get(m->page_by_id, json_string_value(id)) == NULL) {
            snprintf(err, errlen, "%s: no page with that id", field);
            rc = -1;
        }
    }
    json_array_foreach(list, i, id)
    {
        struct msim_page *p = rc == 0 ? strmap_get(m->page_by_id, json_string_value(id)) : NULL;
        if (p != NULL) {
            atomic_store(&p->revoked_subcode, subcode);
            atomic_store(&p->revoked, revoked);
        }
    }
    json_decref(list);
    return rc;
}

static const char *const fault_fields[] = {"latency_ms",
                                           "jitter_ms",
                                           "error_rate",
                                           "error_status",
                                           "error_code",
                                           "drop_rate",
                                           "ratelimit_storm_seconds",
                                           "ratelimit_code",
                                           "short_pages",
                                           "empty_page_rate",
                                           "limits",
                                           "send_per_second",
                                           "conversations_per_second",
                                           "revoke_token",
                                           "restore_token",
                                           "revoke_subcode",
                                           "clear",
                                           NULL};

static void post_faults(struct msim *m, const struct http_request *req, struct http_response *resp)
{
    json_t *body = body_json(req, resp);
    if (body == NULL) {
        return;
    }
    char err[160] = "";
    struct msim_faults f;
    msim_faults_get(m, &f);
    bool clear = false;
    int storm_s = -1;
    int rc = sim_json_known_fields(body, fault_fields, err, sizeof(err));
    rc = rc ? rc : sim_json_bool(body, "clear", &clear, err, sizeof(err));
    if (rc == 0 && clear) {
        /* Clears the injected faults but keeps the limits as they are. */
        f.latency_ms = f.jitter_ms = 0;
        f.error_rate = f.drop_rate = f.empty_page_rate = 0.0;
        f.error_status = 500;
        f.error_code = 2;
        f.storm_until_ms = 0;
        f.ratelimit_code = 613;
        f.short_pages = false;
    }
    if (rc != 0 || sim_json_int(body, "latency_ms", 0, 60000, &f.latency_ms, err, sizeof(err)) ||
        sim_json_int(body, "jitter_ms", 0, 60000, &f.jitter_ms, err, sizeof(err)) ||
        sim_json_rate(body, "error_rate", &f.error_rate, err, sizeof(err)) ||
        sim_json_int(body, "error_status", 500, 599, &f.error_status, err, sizeof(err)) ||
        sim_json_choice(body, "error_code", (const int[]){2, 1200, 0}, &f.error_code, err,
                        sizeof(err)) ||
        sim_json_choice(body, "ratelimit_code", (const int[]){613, 4, 80006, 0}, &f.ratelimit_code,
                        err, sizeof(err)) ||
        sim_json_bool(body, "short_pages", &f.short_pages, err, sizeof(err)) ||
        sim_json_rate(body, "empty_page_rate", &f.empty_page_rate, err, sizeof(err)) ||
        sim_json_rate(body, "drop_rate", &f.drop_rate, err, sizeof(err)) ||
        sim_json_int(body, "ratelimit_storm_seconds", 0, 86400, &storm_s, err, sizeof(err)) ||
        sim_json_bool(body, "limits", &f.limits, err, sizeof(err)) ||
        sim_json_positive(body, "send_per_second", 1e6, &f.send_per_second, err, sizeof(err)) ||
        sim_json_positive(body, "conversations_per_second", 1e6, &f.conversations_per_second, err,
                          sizeof(err)) ||
        apply_revocations(m, body, "revoke_token", true, err, sizeof(err)) ||
        apply_revocations(m, body, "restore_token", false, err, sizeof(err))) {
        json_decref(body);
        http_respond_problem(resp, 400, "Bad Request", "%s", err);
        return;
    }
    json_decref(body);
    if (storm_s >= 0) {
        f.storm_until_ms = storm_s > 0 ? clock_wall_ms() + (int64_t)storm_s * 1000 : 0;
    }
    pthread_rwlock_wrlock(&m->faults_lock);
    m->faults = f;
    pthread_rwlock_unlock(&m->faults_lock);
    json_t *answer = faults_json(m);
    char *text = json_dumps(answer, JSON_COMPACT);
    log_info("faults changed", "{s:s}", "faults", text ? text : "");
    free(text);
    http_respond_json(resp, 200, answer);
}

static void get_requests(struct msim *m, const struct http_request *req, struct http_response *resp)
{
    const char *since = http_query(req, "since");
    const char *method = http_query(req, "method");
    const char *limit = http_query(req, "limit");
    json_t *answer =
        reqlog_list(m->request_log, since ? strtoll(since, NULL, 10) : 0,
                    method && method[0] ? method : NULL, limit ? strtoul(limit, NULL, 10) : 0);
    if (answer == NULL) {
        http_respond_problem(resp, 500, "Internal Server Error", "out of memory");
        return;
    }
    http_respond_json(resp, 200, answer);
}

/* POST /_sim/requests {reset?, enabled?}: clears the log, switches it. */
static void post_requests(struct msim *m, const struct http_request *req,
                          struct http_response *resp)
{
    static const char *const fields[] = {"reset", "enabled", NULL};
    json_t *body = body_json(req, resp);
    if (body == NULL) {
        return;
    }
    char err[160] = "";
    bool reset = false;
    bool enabled = reqlog_enabled(m->request_log);
    if (sim_json_known_fields(body, fields, err, sizeof(err)) != 0 ||
        sim_json_bool(body, "reset", &reset, err, sizeof(err)) != 0 ||
        sim_json_bool(body, "enabled", &enabled, err, sizeof(err)) != 0) {
        json_decref(body);
        http_respond_problem(resp, 400, "Bad Request", "%s", err);
        return;
    }
    json_decref(body);
    if (reset) {
        reqlog_reset(m->request_log);
    }
    reqlog_set_enabled(m->request_log, enabled);
    http_respond_json(resp, 200,
                      json_pack("{s:b, s:b}", "ok", 1, "enabled", reqlog_enabled(m->request_log)));
}

static void post_receipts(struct msim *m, const struct http_request *req,
                          struct http_response *resp)
{
    json_t *body = body_json(req, resp);
    if (body == NULL) {
        return;
    }
    char err[160] = "";
    int rc = msim_receipts_update(m->receipts, body, err, sizeof(err));
    json_decref(body);
    if (rc != 0) {
        http_respond_problem(resp, 400, "Bad Request", "%s", err);
        return;
    }
    json_t *answer = msim_receipts_json(m->receipts);
    log_info("receipts changed", "{s:O, s:O, s:O}", "enabled", json_object_get(answer, "enabled"),
             "read_fraction", json_object_get(answer, "read_fraction"), "delivery_delay_ms",
             json_object_get(answer, "delivery_delay_ms"));
    http_respond_json(resp, 200, answer);
}

void msim_control(struct msim *m, const struct http_request *req, struct http_response *resp,
                  const char *path)
{
    bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    bool post = strcmp(req->method, "POST") == 0;
    if (get && strcmp(path, "pages") == 0) {
        get_pages(m, resp);
    } else if (get && strcmp(path, "users") == 0) {
        get_users(m, req, resp);
    } else if (post && strcmp(path, "inbound") == 0) {
        post_inbound(m, req, resp);
    } else if (post && strcmp(path, "read") == 0) {
        post_receipt(m, req, resp, true);
    } else if (post && strcmp(path, "delivery") == 0) {
        post_receipt(m, req, resp, false);
    } else if (get && strcmp(path, "receipts") == 0) {
        http_respond_json(resp, 200, msim_receipts_json(m->receipts));
    } else if (post && strcmp(path, "receipts") == 0) {
        post_receipts(m, req, resp);
    } else if (post && strcmp(path, "verify_webhook") == 0) {
        post_verify(req, resp);
    } else if (get && strcmp(path, "messages") == 0) {
        get_messages(m, req, resp);
    } else if (get && strcmp(path, "recipients") == 0) {
        get_recipients(m, req, resp);
    } else if (get && strcmp(path, "stats") == 0) {
        get_stats(m, resp);
    } else if (post && strcmp(path, "reset") == 0) {
        post_reset(m, req, resp);
    } else if (get && strcmp(path, "faults") == 0) {
        http_respond_json(resp, 200, faults_json(m));
    } else if (post && strcmp(path, "faults") == 0) {
        post_faults(m, req, resp);
    } else if (get && strcmp(path, "requests") == 0) {
        get_requests(m, req, resp);
    } else if (post && strcmp(path, "requests") == 0) {
        post_requests(m, req, resp);
    } else if (strcmp(req->method, "DELETE") == 0 && strcmp(path, "requests") == 0) {
        reqlog_reset(m->request_log);
        http_respond_json(resp, 200, json_pack("{s:b}", "ok", 1));
    } else {
        http_respond_problem(resp, 404, "Not Found", "no control endpoint %s %s", req->method,
                             req->path);
    }
}
