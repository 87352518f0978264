/* router.c: the route table and the dispatcher (see router.h). */
#include "router.h"

#include "auth.h"
#include "bcrm/clock.h"
#include "bcrm/log.h"
#include "bcrm/metrics.h"
#include "dashboard.h"
#include "db_pool.h"
#include "idempotency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAMPAIGN "/v1/orgs/{org}/campaigns/{campaign}"
#define SEGMENT "/v1/orgs/{org}/segments/{segment}"

/* clang-format off */
const struct route api_routes[] = {
    {"POST", "/v1/signup", accounts_signup, ROUTE_PUBLIC, ROLE_NONE, false,
     "Create an account and its first org; starts a session", "Signup", 201, "SignupResult"},
    {"POST", "/v1/login", accounts_login, ROUTE_PUBLIC, ROLE_NONE, false,
     "Log in with email and password; starts a session", "Login", 200, "LoginResult"},
    {"POST", "/v1/logout", accounts_logout, ROUTE_SESSION, ROLE_NONE, false,
     "End the session", NULL, 204, NULL},
    {"GET", "/v1/me", accounts_me, ROUTE_SESSION, ROLE_NONE, false,
     "The caller and their orgs", NULL, 200, "Me"},
    {"GET", "/v1/openapi.json", openapi_serve, ROUTE_PUBLIC, ROLE_NONE, false,
     "This document", NULL, 200, NULL},

    {"POST", "/v1/orgs/{org}/members", members_add, ROUTE_ORG, ROLE_ADMIN, true,
     "Add an existing account to the org", "MemberCreate", 201, "Member"},
    {"GET", "/v1/orgs/{org}/members", members_list, ROUTE_ORG, ROLE_VIEWER, false,
     "List the org's members", NULL, 200, "MemberList"},

    {"POST", "/v1/orgs/{org}/api-keys", apikeys_create, ROUTE_ORG, ROLE_ADMIN, false,
     "Create an API key; the key is shown once", "ApiKeyCreate", 201, "ApiKeyCreated"},
    {"GET", "/v1/orgs/{org}/api-keys", apikeys_list, ROUTE_ORG, ROLE_ADMIN, false,
     "List API keys, without secrets", NULL, 200, "ApiKeyList"},
    {"DELETE", "/v1/orgs/{org}/api-keys/{key}", apikeys_revoke, ROUTE_ORG, ROLE_ADMIN, false,
     "Revoke an API key at once", NULL, 204, NULL},

    {"POST", "/v1/orgs/{org}/bots", bots_create, ROUTE_ORG, ROLE_EDITOR, true,
     "Connect a bot; its token is verified on the platform and kept by the vault",
     "BotCreate", 201, "Bot"},
    {"GET", "/v1/orgs/{org}/bots", bots_list, ROUTE_ORG, ROLE_VIEWER, false,
     "List the org's bots", NULL, 200, "BotList"},
    {"GET", "/v1/orgs/{org}/bots/{bot}", bots_get, ROUTE_ORG, ROLE_VIEWER, false,
     "One bot", NULL, 200, "Bot"},
    {"DELETE", "/v1/orgs/{org}/bots/{bot}", bots_delete, ROUTE_ORG, ROLE_EDITOR, false,
     "Disconnect a bot; its token is destroyed", NULL, 204, NULL},
    {"POST", "/v1/orgs/{org}/bots/{bot}/token", bots_reconnect, ROUTE_ORG, ROLE_EDITOR, true,
     "Reconnect a bot with a new token of the same workspace and app (Slack) or page "
     "(Messenger), verified first; the bot becomes active, its paused campaigns stay paused",
     "BotToken", 200, "BotReconnected"},
    {"GET", "/v1/orgs/{org}/bots/{bot}/users", bots_users, ROUTE_ORG, ROLE_VIEWER, false,
     "The bot's users, read live from the platform (never stored)", NULL, 200, "UserPage"},
    {"GET", "/v1/orgs/{org}/bots/{bot}/channels", bots_channels, ROUTE_ORG, ROLE_VIEWER, false,
     "Channels the bot is a member of, read live", NULL, 200, "ChannelPage"},

    {"POST", "/v1/orgs/{org}/campaigns", campaigns_create, ROUTE_ORG, ROLE_EDITOR, true,
     "Create a campaign in status draft", "CampaignCreate", 201, "Campaign"},
    {"GET", "/v1/orgs/{org}/campaigns", campaigns_list, ROUTE_ORG, ROLE_VIEWER, false,
     "List campaigns, newest first, cursor-paged", NULL, 200, "CampaignList"},
    {"GET", CAMPAIGN, campaigns_get, ROUTE_ORG, ROLE_VIEWER, false,
     "One campaign with its delivery statistics", NULL, 200, "Campaign"},
    {"POST", CAMPAIGN "/schedule", campaigns_schedule, ROUTE_ORG, ROLE_EDITOR, false,
     "draft -> scheduled", NULL, 200, "Campaign"},
    {"POST", CAMPAIGN "/pause", campaigns_pause, ROUTE_ORG, ROLE_EDITOR, false,
     "scheduled or running -> paused", NULL, 200, "Campaign"},
    {"POST", CAMPAIGN "/resume", campaigns_resume, ROUTE_ORG, ROLE_EDITOR, false,
     "paused -> running (or scheduled if no run has started)", NULL, 200, "Campaign"},
    {"POST", CAMPAIGN "/cancel", campaigns_cancel, ROUTE_ORG, ROLE_EDITOR, false,
     "End the campaign; pending deliveries are cancelled", NULL, 200, "Campaign"},
    {"POST", CAMPAIGN "/retry", campaigns_retry, ROUTE_ORG, ROLE_EDITOR, false,
     "Send again to the failed or unknown deliveries", "CampaignRetry", 200, "Campaign"},
    {"POST", CAMPAIGN "/test", campaigns_test, ROUTE_ORG, ROLE_EDITOR, false,
     "Send one preview now (not implemented yet: 501)", "CampaignTest", 200, NULL},
    {"GET", CAMPAIGN "/timeline", campaigns_timeline, ROUTE_ORG, ROLE_VIEWER, false,
     "Live preview of when the message goes out (not implemented yet: 501)", NULL, 200, NULL},
    {"GET", CAMPAIGN "/deliveries", deliveries_list, ROUTE_ORG, ROLE_VIEWER, false,
     "The campaign's deliveries, cursor-paged; Accept: text/csv gives CSV", NULL, 200,
     "DeliveryPage"},

    {"POST", "/v1/orgs/{org}/segments", segments_create, ROUTE_ORG, ROLE_EDITOR, true,
     "Save an audience filter of a bot", "SegmentCreate", 201, "Segment"},
    {"GET", "/v1/orgs/{org}/segments", segments_list, ROUTE_ORG, ROLE_VIEWER, false,
     "List the org's segments, newest first (?bot_id narrows)", NULL, 200, "SegmentList"},
    {"GET", SEGMENT, segments_get, ROUTE_ORG, ROLE_VIEWER, false,
     "One segment", NULL, 200, "Segment"},
    {"PUT", SEGMENT, segments_replace, ROUTE_ORG, ROLE_EDITOR, false,
     "Replace a segment; campaigns made from it keep the filter they copied",
     "SegmentCreate", 200, "Segment"},
    {"DELETE", SEGMENT, segments_delete, ROUTE_ORG, ROLE_EDITOR, false,
     "Delete a segment", NULL, 204, NULL},
    {"GET", SEGMENT "/preview", segments_preview, ROUTE_ORG, ROLE_VIEWER, false,
     "Live count and sample of the segment's audience, read through the platform",
     NULL, 200, "SegmentPreview"},

    {"GET", "/v1/orgs/{org}/oauth/slack/start", oauth_slack_start, ROUTE_ORG, ROLE_EDITOR, false,
     "Begin a Slack OAuth install: 302 to Slack's authorize page", NULL, 302, NULL},
    {"GET", "/v1/oauth/slack/callback", oauth_slack_callback, ROUTE_SESSION, ROLE_NONE, false,
     "Slack's redirect after authorizing: checks the state (the code exchange answers 501 "
     "for now)", NULL, 201, "Bot"},

    {"POST", "/v1/webhooks/slack/events", webhooks_slack_events, ROUTE_PUBLIC, ROLE_NONE, false,
     "Slack Events API (signature v0): url_verification, app_uninstalled, tokens_revoked",
     NULL, 200, NULL},
    {"GET", "/v1/webhooks/messenger", webhooks_messenger_verify, ROUTE_PUBLIC, ROLE_NONE, false,
     "Messenger subscription check: echoes hub.challenge", NULL, 200, NULL},
    {"POST", "/v1/webhooks/messenger", webhooks_messenger_events, ROUTE_PUBLIC, ROLE_NONE, false,
     "Messenger events (X-Hub-Signature-256): subscribers and read receipts", NULL, 200, NULL},
};
/* clang-format on */
const int api_route_count = (int)(sizeof(api_routes) / sizeof(api_routes[0]));

enum { CODE_CLASSES = 5 }; /* 1xx..5xx */

/* requests[route][class]; after the routes, one row counts requests that matched no
 * route and one the dashboard's files. */
static struct metric *(*request_counters)[CODE_CLASSES];
static struct metric *request_seconds;

void router_init(void)
{
    static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    request_counters = calloc((size_t)api_route_count + 2, sizeof(*request_counters));
    for (int i = 0; i <= api_route_count + 1; i++) {
        for (int c = 0; c < CODE_CLASSES; c++) {
            char labels[256];
            if (i < api_route_count) {
                snprintf(labels, sizeof(labels), "method=\"%s\",route=\"%s\",code=\"%dxx\"",
                         api_routes[i].method, api_routes[i].pattern, c + 1);
            } else {
                snprintf(labels, sizeof(labels), "method=\"\",route=\"%s\",code=\"%dxx\"",
                         i == api_route_count ? "unmatched" : "dashboard", c + 1);
            }
            request_counters[i][c] = metrics_counter(
                "bcrm_api_requests_total", "API requests by route and status class.", labels);
        }
    }
    request_seconds =
        metrics_histogram("bcrm_api_request_duration_seconds", "Time to answer an API request.", "",
                          bounds, sizeof(bounds) / sizeof(bounds[0]));
}

bool router_match(const char *pattern, const char *path, struct api_req *r)
{
    int nparams = 0;
    const char *p = pattern, *s = path;
    while (*p != '\0' && *s != '\0') {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            size_t seglen = strcspn(s, "/");
            if (close == NULL || seglen == 0 || seglen >= sizeof(r->param_values[0]) ||
                nparams >= API_MAX_PARAMS) {
                return false;
            }
            /* Parameter names are "{name}" in the pattern; keep a pointer after '{'
             * and its length is implied by the '}' the readers stop at. */
            r->param_names[nparams] = p + 1;
            memcpy(r->param_values[nparams], s, seglen);
            r->param_values[nparams][seglen] = '\0';
            nparams++;
            p = close + 1;
            s += seglen;
            continue;
        }
        if (*p != *s) {
            return false;
        }
        p++;
        s++;
    }
    if (*p != '\0' || *s != '\0') {
        return false;
    }
    r->nparams = nparams;
    return true;
}

const char *api_param(const struct api_req *r, const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; i < r->nparams; i++) {
        if (strncmp(r->param_names[i], name, len) == 0 && r->param_names[i][len] == '}') {
            return r->param_values[i];
        }
    }
    return "";
}

PGconn *api_db(struct api_req *r)
{
    if (r->db == NULL) {
        r->db = db_pool_acquire(r->api->pool, 5000);
        if (r->db == NULL) {
            api_problem(r, 503, "Service Unavailable", NULL, "the database is not reachable");
        }
    }
    return r->db;
}

void api_db_release(struct api_req *r)
{
    if (r->db != NULL) {
        db_pool_release(r->api->pool, r->db);
        r->db = NULL;
    }
}

static bool changes_state(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

/* Runs the checks of route, then its handler. */
static void dispatch(struct api_req *r, const struct route *route)
{
    if (route->auth != ROUTE_PUBLIC) {
        if (auth_identify(r) != 0) {
            return;
        }
        if (r->auth == AUTH_ANON) {
            api_problem(r, 401, "Unauthorized", NULL,
                        "log in (session cookie) or send an API key (Authorization: Bearer)");
            return;
        }
    }
    if (route->auth == ROUTE_ORG) {
        r->org_id = api_param(r, "org");
        if (auth_org_role(r, r->org_id, &r->role) != 0) {
            return;
        }
        /* Another org's resources are indistinguishable from missing ones. */
        if (r->role == ROLE_NONE) {
            api_problem(r, 404, "Not Found", NULL, "no org %s", r->org_id);
            return;
        }
    }
    if (changes_state(r->http->method) && !auth_csrf_ok(r)) {
        api_problem(r, 403, "Forbidden", NULL,
                    "a cookie-authenticated request that changes state needs a matching Origin "
                    "or the X-CSRF-Token from login");
        return;
    }
    if (route->auth == ROUTE_ORG && r->role < route->min_role) {
        api_problem(r, 403, "Forbidden", NULL, "this needs the %s role or higher in the org",
                    auth_role_name(route->min_role));
        return;
    }
    struct idem_state idem = {0};
    if (route->idempotent && idem_begin(r, &idem) != 0) {
        return;
    }
    route->handler(r);
    if (route->idempotent) {
        idem_finish(r, &idem);
    }
}

/* Answers 405 with Allow when the path exists under other methods; 404 otherwise. */
static void no_route(struct api_req *r)
{
    char allow[128] = "";
    for (int i = 0; i < api_route_count; i++) {
        struct api_req scratch = {0};
        if (router_match(api_routes[i].pattern, r->http->path, &scratch)) {
            size_t used = strlen(allow);
            snprintf(allow + used, sizeof(allow) - used, "%s%s", used ? ", " : "",
                     api_routes[i].method);
        }
    }
    if (allow[0] != '\0') {
        api_problem(r, 405, "Method Not Allowed", NULL, "%s is not allowed on %s (allowed: %s)",
                    r->http->method, r->http->path, allow);
        http_add_header(r->resp, "Allow", allow);
    } else {
        api_problem(r, 404, "Not Found", NULL, "no route %s", r->http->path);
    }
}

/* Matches r against the route table and answers it; returns the route's index, or
 * api_route_count when none matched. */
static int serve_api(struct api_req *r)
{
    int matched = api_route_count;
    for (int i = 0; i < api_route_count; i++) {
        if (strcmp(api_routes[i].method, r->http->method) == 0 &&
            router_match(api_routes[i].pattern, r->http->path, r)) {
            matched = i;
            break;
        }
    }
    if (matched < api_route_count) {
        dispatch(r, &api_routes[matched]);
    } else {
        no_route(r);
    }
    api_db_release(r);
    return matched;
}

void router_handle(void *ctx, const struct http_request *req, struct http_response *resp)
{
    int64_t started = clock_mono_ms();
    struct api_req r = {.api = ctx, .http = req, .resp = resp};
    /* The dashboard's files first: none of them lies under /v1/, so no API route is
     * ever shadowed, and any other path falls through to the table as before. */
    int row = api_route_count + 1;
    const char *route_name = "dashboard";
    if (!dashboard_handle(req, resp)) {
        row = serve_api(&r);
        route_name = row < api_route_count ? api_routes[row].pattern : "unmatched";
    }

    int class = resp->status / 100;
    if (class >= 1 && class <= CODE_CLASSES) {
        metric_inc(request_counters[row][class - 1]);
    }
    int64_t elapsed = clock_mono_ms() - started;
    metric_observe(request_seconds, (double)elapsed / 1000.0);
    log_info("request", "{s:s, s:s, s:s, s:i, s:I}", "method", req->method, "route", route_name,
             "path", req->path, "status", resp->status, "ms", (json_int_t)elapsed);
}
