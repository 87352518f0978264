/* api.c: the main port's router and the common path of every Web API call.
 *
 * The order of the checks follows what a client of Slack can observe: a storm or
 * a 5xx arrives whatever the request says; a malformed body or a bad token is
 * answered before the method runs; a rate limit applies to an authenticated
 * workspace. Faults are drawn per call from a snapshot taken on arrival, so a
 * test that changes them sees the change from the next call on.
 */
#include "api.h"
#include "oauth.h"

#include "buf.h"
#include "rng.h"
#include "simutil.h"
#include "strmap.h"

#include "bcrm/clock.h"
#include "bcrm/http.h"
#include "bcrm/metrics.h"
#include "bcrm/shutdown.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef void (*api_method_fn)(struct api_call *c);

/* How Slack reads an argument of a JSON body. A form or a query string carries
 * text only, so these types are checked for JSON bodies; the methods read the
 * text of form arguments themselves, as Slack does. */
enum api_arg_type {
    ARG_STRING,
    ARG_INTEGER, /* a JSON integer, or a string of digits */
    ARG_BOOLEAN, /* true/false, 0/1, or those as strings */
    ARG_JSON,    /* Block Kit and friends: a JSON array or object, or its text */
};

struct api_arg {
    const char *name;
    enum api_arg_type type;
};

/* A method whose scope api.c does not check: none, or one that depends on the
 * arguments (the method checks it). */
#define NO_SCOPE (-1)

struct api_method {
    const char *name;
    api_method_fn fn;
    int tier;      /* Slack's tier, 1-4; 0 for chat.postMessage's own rules */
    bool no_token; /* called with the app's client credentials instead */
    int scope;     /* enum sim_scope the token needs, or NO_SCOPE */
    /* X-Accepted-OAuth-Scopes: the scopes the method takes (NULL: none). */
    const char *accepted;
    /* The arguments the method reads, from Slack's OpenAPI document plus the newer
     * ones (metadata). Others are ignored, as Slack ignores them, but the request
     * log shows them. */
    const struct api_arg *args;
};

static const struct api_arg args_none[] = {{NULL, ARG_STRING}};
static const struct api_arg args_users_list[] = {{"limit", ARG_INTEGER},
                                                 {"cursor", ARG_STRING},
                                                 {"include_locale", ARG_BOOLEAN},
                                                 {"team_id", ARG_STRING},
                                                 {NULL, ARG_STRING}};
static const struct api_arg args_users_info[] = {
    {"user", ARG_STRING}, {"include_locale", ARG_BOOLEAN}, {NULL, ARG_STRING}};
static const struct api_arg args_conversations_open[] = {{"channel", ARG_STRING},
                                                         {"users", ARG_STRING},
                                                         {"return_im", ARG_BOOLEAN},
                                                         {"prevent_creation", ARG_BOOLEAN},
                                                         {NULL, ARG_STRING}};
static const struct api_arg args_conversations_list[] = {{"exclude_archived", ARG_BOOLEAN},
                                                         {"types", ARG_STRING},
                                                         {"limit", ARG_INTEGER},
                                                         {"cursor", ARG_STRING},
                                                         {"team_id", ARG_STRING},
                                                         {NULL, ARG_STRING}};
static const struct api_arg args_conversations_members[] = {
    {"channel", ARG_STRING}, {"limit", ARG_INTEGER}, {"cursor", ARG_STRING}, {NULL, ARG_STRING}};
static const struct api_arg args_chat_post_message[] = {{"channel", ARG_STRING},
                                                        {"text", ARG_STRING},
                                                        {"blocks", ARG_JSON},
                                                        {"attachments", ARG_JSON},
                                                        {"metadata", ARG_JSON},
                                                        {"thread_ts", ARG_STRING},
                                                        {"as_user", ARG_BOOLEAN},
                                                        {"icon_emoji", ARG_STRING},
                                                        {"icon_url", ARG_STRING},
                                                        {"link_names", ARG_BOOLEAN},
                                                        {"mrkdwn", ARG_BOOLEAN},
                                                        {"parse", ARG_STRING},
                                                        {"reply_broadcast", ARG_BOOLEAN},
                                                        {"unfurl_links", ARG_BOOLEAN},
                                                        {"unfurl_media", ARG_BOOLEAN},
                                                        {"username", ARG_STRING},
                                                        {NULL, ARG_STRING}};
static const struct api_arg args_oauth_v2_access[] = {
    {"client_id", ARG_STRING},  {"client_secret", ARG_STRING},
    {"code", ARG_STRING},       {"redirect_uri", ARG_STRING},
    {"grant_type", ARG_STRING}, {"refresh_token", ARG_STRING},
    {NULL, ARG_STRING}};

#define READ_CONVERSATIONS "channels:read,groups:read,im:read,mpim:read"

/* auth.test is in Slack's "special" tier, generous enough to call as tier 4. The
 * conversations.list and conversations.members scopes depend on the types asked
 * for and the channel: those methods check them. */
static const struct api_method api_methods[SIM_M_UNKNOWN] = {
    [SIM_M_AUTH_TEST] = {"auth.test", method_auth_test, 4, false, NO_SCOPE, NULL, args_none},
    [SIM_M_USERS_LIST] = {"users.list", method_users_list, 2, false, SCOPE_USERS_READ, "users:read",
                          args_users_list},
    [SIM_M_USERS_INFO] = {"users.info", method_users_info, 4, false, SCOPE_USERS_READ, "users:read",
                          args_users_info},
    [SIM_M_CONVERSATIONS_OPEN] = {"conversations.open", method_conversations_open, 3, false,
                                  SCOPE_IM_WRITE,
                                  "channels:manage,groups:write,im:write,mpim:write",
                                  args_conversations_open},
    [SIM_M_CONVERSATIONS_LIST] = {"conversations.list", method_conversations_list, 2, false,
                                  NO_SCOPE, READ_CONVERSATIONS, args_conversations_list},
    [SIM_M_CONVERSATIONS_MEMBERS] = {"conversations.members", method_conversations_members, 4,
                                     false, NO_SCOPE, READ_CONVERSATIONS,
                                     args_conversations_members},
    [SIM_M_CHAT_POST_MESSAGE] = {"chat.postMessage", method_chat_post_message, 0, false,
                                 SCOPE_CHAT_WRITE, "chat:write", args_chat_post_message},
    [SIM_M_OAUTH_V2_ACCESS] = {"oauth.v2.access", method_oauth_v2_access, 0, true, NO_SCOPE, NULL,
                               args_oauth_v2_access},
};

const char *sim_method_name(enum sim_method m)
{
    return m < SIM_M_UNKNOWN ? api_methods[m].name : "unknown";
}

static const char api_content_type[] = "application/json; charset=utf-8";

void api_reply(struct api_call *c, json_t *body)
{
    http_respond_json(c->resp, 200, body);
    c->resp->content_type = api_content_type;
}

void api_reply_buf(struct api_call *c, struct buf *b)
{
    size_t len;
    char *data = buf_take(b, &len);
    if (data == NULL) {
        api_reply_error(c, "fatal_error");
        c->resp->status = 500;
        return;
    }
    free(c->resp->body);
    c->resp->status = 200;
    c->resp->content_type = api_content_type;
    c->resp->body = data;
    c->resp->body_len = len;
}

void api_reply_error(struct api_call *c, const char *error)
{
    api_reply(c, json_pack("{s:b, s:s}", "ok", 0, "error", error));
    c->error = error;
}

/* Slack's answer to arguments of the wrong type in a JSON body: the error, and
 * what was wrong in response_metadata.messages. */
static void api_reply_invalid_arguments(struct api_call *c, const char *message)
{
    api_reply(c, json_pack("{s:b, s:s, s:{s:[s]}}", "ok", 0, "error", "invalid_arguments",
                           "response_metadata", "messages", message));
    c->error = "invalid_arguments";
}

void api_reply_ratelimited(struct api_call *c, int retry_after_s)
{
    char secs[16];
    snprintf(secs, sizeof(secs), "%d", retry_after_s);
    api_reply_error(c, "ratelimited");
    c->resp->status = 429;
    http_add_header(c->resp, "Retry-After", secs);
    atomic_fetch_add(&c->sim->counters.ratelimited, 1);
    metric_inc(c->sim->m_ratelimited);
}

void api_reply_missing_scope(struct api_call *c, enum sim_scope needed)
{
    char provided[SCOPES_TEXT_MAX];
    scopes_format(c->scopes, provided, sizeof(provided));
    api_reply(c, json_pack("{s:b, s:s, s:s, s:s}", "ok", 0, "error", "missing_scope", "needed",
                           scope_name(needed), "provided", provided));
    c->error = "missing_scope";
}

long api_arg_limit(const struct api_call *c, long fallback, long max)
{
    const char *v = params_get(&c->params, "limit");
    if (v == NULL || v[0] == '\0') {
        return fallback;
    }
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (*end != '\0' || n < 0) {
        return -1;
    }
    return n > max ? max : n;
}

bool api_arg_bool(const struct api_call *c, const char *key)
{
    const char *v = params_get(&c->params, key);
    return v != NULL && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

void api_next_ts(struct sim *sim, char out[24])
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
    int64_t last = atomic_load(&sim->last_ts_us);
    int64_t next;
    do {
        next = us > last ? us : last + 1;
    } while (!atomic_compare_exchange_weak(&sim->last_ts_us, &last, next));
    snprintf(out, 24, "%010lld.%06lld", (long long)(next / 1000000), (long long)(next % 1000000));
}

static enum sim_method method_lookup(const char *name)
{
    for (int m = 0; m < SIM_M_UNKNOWN; m++) {
        if (strcmp(api_methods[m].name, name) == 0) {
            return (enum sim_method)m;
        }
    }
    return SIM_M_UNKNOWN;
}

/* The media types Slack reads a POST body in, and the charsets it accepts. */
static const char *const post_types[] = {"application/x-www-form-urlencoded", "application/json",
                                         "multipart/form-data", "text/plain", NULL};

static bool in_list(const char *value, size_t len, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++) {
        if (strlen(list[i]) == len && strncasecmp(value, list[i], len) == 0) {
            return true;
        }
    }
    return false;
}

/* Checks a request's Content-Type the way Slack does; the error code or NULL. */
static const char *check_post_type(const struct http_request *req)
{
    static const char *const charsets[] = {"utf-8", "utf8", "iso-8859-1", NULL};
    if (req->body_len == 0) {
        return NULL;
    }
    const char *ctype = http_header(req, "Content-Type");
    if (ctype == NULL || ctype[0] == '\0') {
        return "missing_post_type";
    }
    size_t type_len = strcspn(ctype, "; \t");
    if (!in_list(ctype, type_len, post_types)) {
        return "invalid_post_type";
    }
    const char *charset = strcasestr(ctype, "charset=");
    if (charset != NULL) {
        charset += 8;
        size_t len = strcspn(charset, "; \t\"");
        if (charset[0] == '"') {
            charset++;
            len = strcspn(charset, "\"");
        }
        if (!in_list(charset, len, charsets)) {
            return "invalid_charset";
        }
    }
    if (strncasecmp(ctype, "multipart/form-data", 19) == 0) {
        /* Slack reads multipart bodies; the simulator does not, and says so in the
         * way a client can see. */
        return "invalid_form_data";
    }
    return NULL;
}

/* Slack's rules for argument names: "foo[]" or "foo[bar]" is an array argument,
 * anything but letters, digits and '_' (or over 100 characters) a bad name. */
static const char *check_arg_name(const char *name)
{
    size_t len = strlen(name);
    if (strchr(name, '[') != NULL) {
        return "invalid_array_arg";
    }
    if (len == 0 || len > 100) {
        return "invalid_arg_name";
    }
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_')) {
            return "invalid_arg_name";
        }
    }
    return NULL;
}

static const char *check_arg_names(const json_t *args)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)args, key, value)
    {
        const char *err = check_arg_name(key);
        if (err != NULL) {
            return err;
        }
    }
    return NULL;
}

static bool digits_only(const char *s)
{
    if (*s == '-') {
        s++;
    }
    if (*s == '\0') {
        return false;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return false;
        }
    }
    return true;
}

static bool json_arg_ok(const json_t *v, enum api_arg_type type)
{
    if (json_is_null(v)) {
        return true; /* Slack treats null as absent */
    }
    switch (type) {
    case ARG_STRING:
        return json_is_string(v);
    case ARG_INTEGER:
        return json_is_integer(v) || (json_is_string(v) && digits_only(json_string_value(v)));
    case ARG_BOOLEAN:
        if (json_is_boolean(v)) {
            return true;
        }
        if (json_is_integer(v)) {
            return json_integer_value(v) == 0 || json_integer_value(v) == 1;
        }
        if (json_is_string(v)) {
            const char *t = json_string_value(v);
            return strcmp(t, "true") == 0 || strcmp(t, "false") == 0 || strcmp(t, "1") == 0 ||
                   strcmp(t, "0") == 0;
        }
        return false;
    case ARG_JSON:
        return json_is_array(v) || json_is_object(v) || json_is_string(v);
    }
    return false;
}

/* Checks the types of a JSON body's known arguments; writes Slack's message for
 * the first bad one into msg and returns false. */
static bool check_json_args(const json_t *doc, const struct api_arg *args, char *msg, size_t msglen)
{
    static const char *const type_names[] = {
        [ARG_STRING] = "a string",
        [ARG_INTEGER] = "an integer",
        [ARG_BOOLEAN] = "a boolean",
        [ARG_JSON] = "an array, an object or a string",
    };
    for (const struct api_arg *a = args; a->name != NULL; a++) {
        json_t *v = json_object_get(doc, a->name);
        if (v != NULL && !json_arg_ok(v, a->type)) {
            snprintf(msg, msglen, "[ERROR] must provide %s [json-pointer:/%s]", type_names[a->type],
                     a->name);
            return false;
        }
    }
    return true;
}

/* Hands the call, with what it was answered, to the request log. */
static void log_call(struct api_call *c)
{
    /* The Authorization header wins over a token argument, as on Slack. */
    const char *auth = NULL;
    if (http_header(c->req, "Authorization") == NULL && params_get(&c->params, "token") != NULL) {
        auth = "token_argument";
    }
    struct reqlog_call call = {
        .at_ms = c->arrived_ms,
        .method = c->method < SIM_M_UNKNOWN ? api_methods[c->method].name : NULL,
        .status = c->resp->status,
        .error = c->error,
        .space = c->ws ? c->ws->team_id : NULL,
        .auth = auth,
        .dropped = c->resp->drop,
    };
    reqlog_add(c->sim->requests, c->req, &call);
}

/* The common path; the handler answers unless a check here answers first. */
static void api_dispatch(struct api_call *c)
{
    struct sim *sim = c->sim;
    const struct http_request *req = c->req;
    if (c->faults.storm_until_ms > c->now_ms) {
        api_reply_ratelimited(c, (int)((c->faults.storm_until_ms - c->now_ms + 999) / 1000));
        return;
    }
    if (c->faults.error_rate > 0.0 && rng_thread_unit() < c->faults.error_rate) {
        atomic_fetch_add(&sim->counters.injected_errors, 1);
        api_reply_error(c, sim_error_codes[c->faults.error_code]);
        c->resp->status = c->faults.error_status;
        return;
    }
    if (c->method == SIM_M_UNKNOWN) {
        api_reply_error(c, "unknown_method");
        return;
    }
    const char *bad = check_post_type(req);
    if (bad == NULL) {
        bad = params_parse(&c->params, req);
    }
    if (bad == NULL) {
        bad = check_arg_names(c->params.body);
    }
    if (bad != NULL) {
        api_reply_error(c, bad);
        return;
    }
    const struct api_method *m = &api_methods[c->method];
    char msg[160];
    if (c->params.json != NULL && !check_json_args(c->params.json, m->args, msg, sizeof(msg))) {
        api_reply_invalid_arguments(c, msg);
        return;
    }
    if (m->no_token) {
        m->fn(c);
        return;
    }
    const char *token = params_token(&c->params);
    if (token == NULL) {
        api_reply_error(c, "not_authed");
        return;
    }
    c->ws = strmap_get(sim->pop->workspace_by_token, token);
    if (c->ws == NULL) {
        api_reply_error(c, "invalid_auth");
        return;
    }
    if (atomic_load(&c->ws->revoked)) {
        api_reply_error(c, population_revocation_error(c->ws));
        return;
    }
    /* Every answer to a working token names its scopes, and the method's. */
    char granted[SCOPES_TEXT_MAX];
    c->scopes = atomic_load(&c->ws->scopes);
    scopes_format(c->scopes, granted, sizeof(granted));
    http_add_header(c->resp, "X-OAuth-Scopes", granted);
    if (m->accepted != NULL) {
        http_add_header(c->resp, "X-Accepted-OAuth-Scopes", m->accepted);
    }
    if (m->scope != NO_SCOPE && !api_has_scope(c, (enum sim_scope)m->scope)) {
        api_reply_missing_scope(c, (enum sim_scope)m->scope);
        return;
    }
    if (c->faults.limits.enabled && m->tier > 0) {
        int wait = ratelimit_take_method(sim->limits, c->ws->index, c->method,
                                         c->faults.limits.tier_per_minute[m->tier], c->now_ms);
        if (wait > 0) {
            api_reply_ratelimited(c, wait);
            return;
        }
    }
    m->fn(c);
}

static void api_handle(struct sim *sim, const struct http_request *req, struct http_response *resp,
                       const char *method_name)
{
    /* params.req is set before parsing so that log_call can read the query. */
    struct api_call call = {.sim = sim, .req = req, .resp = resp, .params = {.req = req}};
    call.method = method_lookup(method_name);
    atomic_fetch_add(&sim->counters.requests, 1);
    atomic_fetch_add(&sim->counters.by_method[call.method], 1);
    metric_inc(sim->m_requests);
    call.arrived_ms = clock_wall_ms();
    faults_get(&call.faults);
    call.now_ms = call.arrived_ms;
    api_dispatch(&call);
    /* The latency fault: the call was handled (recorded, counted against the
     * limits) on arrival; its answer, or the drop, leaves after the delay, and no
     * thread waits for it. */
    resp->delay_ms = sim_latency_draw(call.faults.latency_ms, call.faults.jitter_ms);
    if (reqlog_enabled(sim->requests)) {
        log_call(&call);
    }
    params_free(&call.params);
}

void sim_handle(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct sim *sim = ctx;
    const char *path = req->path;
    if (strncmp(path, "/api/", 5) == 0) {
        api_handle(sim, req, resp, path + 5);
    } else if (strncmp(path, "/_sim/", 6) == 0) {
        control_handle(sim, req, resp, path + 6);
    } else if (strcmp(path, "/oauth/v2/authorize") == 0) {
        oauth_authorize(sim, req, resp);
    } else if (strcmp(path, "/healthz") == 0) {
        http_respond(resp, 200, "text/plain", "ok\n", 3);
    } else if (strcmp(path, "/readyz") == 0) {
        if (shutdown_requested()) {
            http_respond(resp, 503, "text/plain", "not ready\n", 10);
        } else {
            http_respond(resp, 200, "text/plain", "ready\n", 6);
        }
    } else {
        http_respond_problem(resp, 404, "Not Found", "no endpoint %s (the Web API is under /api/)",
                             path);
    }
}
