/* graph.c: the main port's router and the common path of every Graph call.
 *
 * Paths may carry a version ("/v19.0/me/messages", as BCRM_GRAPH_API_URL ends in
 * one) or not. The nodes understood are the page ("me" or its id) with its
 * "messages" and "conversations" edges, and the page's people by PSID.
 */
#include "graph.h"

#include "rng.h"
#include "simutil.h"
#include "strmap.h"

#include "bcrm/clock.h"
#include "bcrm/http.h"
#include "bcrm/metrics.h"
#include "bcrm/shutdown.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const call_names[MSIM_CALL_COUNT] = {
    [MSIM_C_ME] = "me",           [MSIM_C_SEND] = "messages",
    [MSIM_C_PROFILE] = "profile", [MSIM_C_CONVERSATIONS] = "conversations",
    [MSIM_C_UNKNOWN] = "unknown",
};

const char *msim_call_name(enum msim_call c)
{
    return call_names[c];
}

void graph_reply(struct graph_call *c, int status, json_t *body)
{
    http_respond_json(c->resp, status, body);
    c->resp->content_type = "application/json; charset=UTF-8";
}

void graph_error(struct graph_call *c, int status, int code, int subcode, const char *type,
                 const char *message)
{
    char trace[16];
    rng_token_lower(trace, rng_thread_u64(), 11);
    trace[0] = 'A'; /* fbtrace ids start with a capital letter */
    json_t *err = json_pack("{s:s, s:s, s:i, s:s}", "message", message, "type", type, "code", code,
                            "fbtrace_id", trace);
    if (subcode != 0) {
        json_object_set_new(err, "error_subcode", json_integer(subcode));
    }
    if (code == 2 || code == 4 || code == 1200) {
        json_object_set_new(err, "is_transient", json_true());
    }
    graph_reply(c, status, json_pack("{s:o}", "error", err));
    c->error_code = code;
}

void graph_ratelimited(struct graph_call *c, int code)
{
    atomic_fetch_add(&c->m->ratelimited, 1);
    switch (code) {
    case 4:
        graph_error(c, 400, 4, 0, "OAuthException", "(#4) Application request limit reached");
        break;
    case 80006:
        graph_error(c, 400, 80006, 2018373, "OAuthException",
                    "(#80006) There have been too many messages sent to this Messenger thread "
                    "from your page in a short period of time. Please try again later.");
        break;
    default:
        graph_error(c, 400, 613, 0, "OAuthException",
                    "(#613) Calls to this api have exceeded the rate limit.");
    }
}

static bool all_digits(const char *s, size_t len)
{
    if (len == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

/* The token from "Authorization: Bearer", else the access_token argument. */
static const char *graph_token(const struct graph_call *c)
{
    const char *auth = http_header(c->req, "Authorization");
    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0 && auth[7] != '\0') {
        return auth + 7;
    }
    const char *t = params_get(&c->params, "access_token");
    return t != NULL && t[0] != '\0' ? t : NULL;
}

/* Splits "/[vN.N/]node[/edge]" into its parts (copied into the buffers). */
static int split_path(const char *path, char *version, size_t vlen, char *node, size_t nlen,
                      char *edge, size_t elen)
{
    version[0] = node[0] = edge[0] = '\0';
    const char *p = path[0] == '/' ? path + 1 : path;
    const char *slash = strchr(p, '/');
    if (p[0] == 'v' && slash != NULL && (size_t)(slash - p) < vlen &&
        isdigit((unsigned char)p[1])) {
        memcpy(version, p, (size_t)(slash - p));
        version[slash - p] = '\0';
        p = slash + 1;
        slash = strchr(p, '/');
    }
    size_t node_len = slash ? (size_t)(slash - p) : strlen(p);
    if (node_len >= nlen) {
        return -1;
    }
    memcpy(node, p, node_len);
    node[node_len] = '\0';
    if (slash != NULL) {
        if (strlen(slash + 1) >= elen || strchr(slash + 1, '/') != NULL) {
            return -1;
        }
        strcpy(edge, slash + 1);
    }
    return 0;
}

static void unknown_object(struct graph_call *c, const char *what)
{
    char msg[512];
    snprintf(msg, sizeof(msg),
             "Unsupported %s request. Object with ID '%s' does not exist, cannot be loaded due to "
             "missing permissions, or does not support this operation. Please read the Graph API "
             "documentation at https://developers.facebook.com/docs/graph-api",
             strcmp(c->req->method, "POST") == 0 ? "post" : "get", what);
    graph_error(c, 400, 100, 33, "GraphMethodException", msg);
}

/* Hands the call, with what it was answered, to the request log. */
static void log_call(struct graph_call *c)
{
    const char *auth = NULL;
    if (http_header(c->req, "Authorization") == NULL &&
        params_get(&c->params, "access_token") != NULL) {
        auth = "access_token_argument";
    }
    struct reqlog_call call = {
        .at_ms = c->arrived_ms,
        .method = msim_call_name(c->kind),
        .status = c->resp->status,
        .error_code = c->error_code,
        .space = c->page ? c->page->id : NULL,
        .auth = auth,
        .dropped = c->resp->drop,
    };
    reqlog_add(c->m->request_log, c->req, &call);
}

/* The common path, after the call was classified; node names the path's node. */
static void graph_dispatch(struct graph_call *c, int split, const char *node)
{
    struct msim *m = c->m;
    const struct http_request *req = c->req;
    const struct msim_person *person = NULL;
    if (c->faults.storm_until_ms > c->now_ms) {
        graph_ratelimited(c, c->faults.ratelimit_code);
        return;
    }
    if (c->faults.error_rate > 0.0 && rng_thread_unit() < c->faults.error_rate) {
        atomic_fetch_add(&m->injected_errors, 1);
        if (c->faults.error_code == 1200) {
            graph_error(c, c->faults.error_status, 1200, 0, "OAuthException",
                        "(#1200) Temporary send message failure. Please try again later");
        } else {
            graph_error(c, c->faults.error_status, 2, 0, "OAuthException",
                        "An unexpected error has occurred. Please retry your request later.");
        }
        return;
    }
    if (params_parse(&c->params, req) != NULL) {
        graph_error(c, 400, 100, 0, "OAuthException",
                    "(#100) The request body could not be parsed");
        return;
    }
    const char *token = graph_token(c);
    if (token == NULL) {
        graph_error(c, 400, 104, 0, "OAuthException",
                    "An access token is required to request this resource.");
        return;
    }
    c->page = strmap_get(m->page_by_token, token);
    if (c->page == NULL) {
        graph_error(c, 400, 190, 0, "OAuthException",
                    "Invalid OAuth access token - Cannot parse access token");
        return;
    }
    if (atomic_load(&c->page->revoked)) {
        int subcode = atomic_load(&c->page->revoked_subcode);
        const char *why =
            subcode == 463 ? "Error validating access token: Session has expired."
            : subcode == 467
                ? "Error validating access token: The session is invalid because the "
                  "user logged out."
                : "Error validating access token: The session has been invalidated because "
                  "the user changed their password or Facebook has changed the session "
                  "for security reasons.";
        graph_error(c, 400, 190, subcode ? subcode : 460, "OAuthException", why);
        return;
    }
    /* A page node must be the token's own page. */
    if ((c->kind == MSIM_C_ME || c->kind == MSIM_C_SEND || c->kind == MSIM_C_CONVERSATIONS) &&
        strcmp(node, "me") != 0 && strcmp(node, c->page->id) != 0) {
        unknown_object(c, node);
        return;
    }
    if (c->kind == MSIM_C_PROFILE && (person = msim_person(c->page, node)) == NULL) {
        unknown_object(c, node);
        return;
    }
    switch (c->kind) {
    case MSIM_C_ME:
        graph_me(c);
        break;
    case MSIM_C_SEND:
        graph_send(c);
        break;
    case MSIM_C_PROFILE:
        graph_profile(c, person);
        break;
    case MSIM_C_CONVERSATIONS:
        graph_conversations(c);
        break;
    default:
        unknown_object(c, split == 0 ? node : req->path);
    }
}

static void graph_handle(struct msim *m, const struct http_request *req, struct http_response *resp)
{
    struct graph_call call = {.m = m, .req = req, .resp = resp, .params = {.req = req}};
    char version[16], node[64], edge[64];
    bool post = strcmp(req->method, "POST") == 0;
    enum msim_call kind = MSIM_C_UNKNOWN;

    call.arrived_ms = clock_wall_ms();
    int split =
        split_path(req->path, version, sizeof(version), node, sizeof(node), edge, sizeof(edge));
    call.version = version;
    if (split == 0 && (strcmp(edge, "") == 0 && !post) &&
        (strcmp(node, "me") == 0 || strmap_get(m->page_by_id, node) != NULL)) {
        kind = MSIM_C_ME;
    } else if (split == 0 && post && strcmp(edge, "messages") == 0) {
        kind = MSIM_C_SEND;
    } else if (split == 0 && !post && strcmp(edge, "conversations") == 0) {
        kind = MSIM_C_CONVERSATIONS;
    } else if (split == 0 && !post && edge[0] == '\0' && all_digits(node, strlen(node))) {
        kind = MSIM_C_PROFILE;
    }
    call.kind = kind;
    atomic_fetch_add(&m->requests, 1);
    atomic_fetch_add(&m->by_call[kind], 1);
    metric_inc(m->m_requests);
    msim_faults_get(m, &call.faults);
    call.now_ms = call.arrived_ms;
    graph_dispatch(&call, split, node);
    /* The latency fault: handled on arrival, answered after the delay without a
     * thread waiting (as in slack-sim). */
    resp->delay_ms = sim_latency_draw(call.faults.latency_ms, call.faults.jitter_ms);
    if (reqlog_enabled(m->request_log)) {
        log_call(&call);
    }
    params_free(&call.params);
}

void msim_handle(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct msim *m = ctx;
    if (strncmp(req->path, "/_sim/", 6) == 0) {
        msim_control(m, req, resp, req->path + 6);
    } else if (strcmp(req->path, "/healthz") == 0) {
        http_respond(resp, 200, "text/plain", "ok\n", 3);
    } else if (strcmp(req->path, "/readyz") == 0) {
        if (shutdown_requested()) {
            http_respond(resp, 503, "text/plain", "not ready\n", 10);
        } else {
            http_respond(resp, 200, "text/plain", "ready\n", 6);
        }
    } else {
        graph_handle(m, req, resp);
    }
}
