/* openapi.c: GET /v1/openapi.json, an OpenAPI 3.0 document built from the route
 * table (router.c), so that every route served is described and no route is
 * described that is not served. The schemas of bodies and answers are below. */
#include "api.h"

#include "bcrm/log.h"
#include "router.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* clang-format off */
static const char schemas_json[] =
"{"
"\"Problem\":{\"type\":\"object\",\"description\":\"RFC 9457 problem (application/problem+json)\","
" \"properties\":{\"type\":{\"type\":\"string\"},\"title\":{\"type\":\"string\"},"
"  \"status\":{\"type\":\"integer\"},\"detail\":{\"type\":\"string\"},"
"  \"field\":{\"type\":\"string\",\"description\":\"the request field at fault\"}}},"
"\"User\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},"
" \"email\":{\"type\":\"string\"},\"created_at\":{\"type\":\"string\",\"format\":\"date-time\"}}},"
"\"OrgRole\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},"
" \"role\":{\"type\":\"string\",\"enum\":[\"owner\",\"admin\",\"editor\",\"viewer\"]}}},"
"\"Signup\":{\"type\":\"object\",\"required\":[\"name\",\"email\",\"password\",\"org_name\"],"
" \"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":200},\"email\":{\"type\":\"string\"},"
"  \"password\":{\"type\":\"string\",\"minLength\":8},\"org_name\":{\"type\":\"string\",\"maxLength\":200}}},"
"\"SignupResult\":{\"type\":\"object\",\"properties\":{\"user\":{\"$ref\":\"#/components/schemas/User\"},"
" \"org\":{\"$ref\":\"#/components/schemas/OrgRole\"},\"csrf_token\":{\"type\":\"string\"}}},"
"\"Login\":{\"type\":\"object\",\"required\":[\"email\",\"password\"],"
" \"properties\":{\"email\":{\"type\":\"string\"},\"password\":{\"type\":\"string\"}}},"
"\"LoginResult\":{\"type\":\"object\",\"properties\":{\"user\":{\"$ref\":\"#/components/schemas/User\"},"
" \"orgs\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/OrgRole\"}},"
" \"csrf_token\":{\"type\":\"string\"}}},"
"\"Me\":{\"type\":\"object\",\"properties\":{\"user\":{\"$ref\":\"#/components/schemas/User\"},"
" \"orgs\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/OrgRole\"}},"
" \"csrf_token\":{\"type\":\"string\",\"description\":\"sessions only\"}}},"
"\"MemberCreate\":{\"type\":\"object\",\"required\":[\"email\",\"role\"],\"properties\":{"
" \"email\":{\"type\":\"string\"},\"role\":{\"type\":\"string\",\"enum\":[\"owner\",\"admin\",\"editor\",\"viewer\"]}}},"
"\"Member\":{\"type\":\"object\",\"properties\":{\"org_id\":{\"type\":\"string\"},"
" \"account_id\":{\"type\":\"string\"},\"role\":{\"type\":\"string\"},\"created_at\":{\"type\":\"string\"}}},"
"\"MemberList\":{\"type\":\"object\",\"properties\":{\"members\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}}}},"
"\"ApiKeyCreate\":{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{\"name\":{\"type\":\"string\"}}},"
"\"ApiKeyCreated\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},"
" \"key\":{\"type\":\"string\",\"description\":\"bcrm_...; shown once\"},\"prefix\":{\"type\":\"string\"},"
" \"created_at\":{\"type\":\"string\"}}},"
"\"ApiKeyList\":{\"type\":\"object\",\"properties\":{\"api_keys\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
" \"properties\":{\"id\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},\"prefix\":{\"type\":\"string\"},"
" \"created_at\":{\"type\":\"string\"},\"revoked_at\":{\"type\":\"string\",\"nullable\":true}}}}}},"
"\"BotCreate\":{\"type\":\"object\",\"required\":[\"platform\"],\"properties\":{"
" \"platform\":{\"type\":\"string\",\"enum\":[\"slack\",\"messenger\"]},"
" \"token\":{\"type\":\"string\",\"description\":\"Slack bot token (platform slack)\"},"
" \"page_token\":{\"type\":\"string\",\"description\":\"page access token (platform messenger)\"}}},"
"\"Bot\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"platform\":{\"type\":\"string\"},"
" \"status\":{\"type\":\"string\"},\"name\":{\"type\":\"string\",\"nullable\":true},"
" \"team_id\":{\"type\":\"string\",\"nullable\":true},\"app_id\":{\"type\":\"string\",\"nullable\":true},"
" \"bot_user_id\":{\"type\":\"string\",\"nullable\":true},\"page_id\":{\"type\":\"string\",\"nullable\":true},"
" \"scopes\":{\"type\":\"string\",\"nullable\":true},\"created_at\":{\"type\":\"string\"},"
" \"updated_at\":{\"type\":\"string\"}}},"
"\"BotToken\":{\"type\":\"object\",\"description\":\"the bot's new token: token for a Slack bot, page_token for a Messenger bot\","
" \"properties\":{\"platform\":{\"type\":\"string\",\"enum\":[\"slack\",\"messenger\"],\"description\":\"optional; must be the bot's\"},"
" \"token\":{\"type\":\"string\",\"description\":\"Slack bot token (xoxb-...) of the bot's workspace and app\"},"
" \"page_token\":{\"type\":\"string\",\"description\":\"page access token of the bot's page\"}}},"
"\"BotReconnected\":{\"allOf\":[{\"$ref\":\"#/components/schemas/Bot\"},{\"type\":\"object\",\"properties\":{"
" \"paused_campaigns\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},"
"  \"description\":\"ids of the bot's paused campaigns (a refused token pauses them); resume each with POST .../campaigns/{id}/resume\"}}}]},"
"\"BotList\":{\"type\":\"object\",\"properties\":{\"bots\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Bot\"}}}},"
"\"UserPage\":{\"type\":\"object\",\"properties\":{\"users\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
" \"properties\":{\"id\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},\"real_name\":{\"type\":\"string\"},"
" \"first_name\":{\"type\":\"string\"},\"tz\":{\"type\":\"string\",\"nullable\":true},"
" \"tz_offset\":{\"type\":\"integer\",\"nullable\":true},\"is_admin\":{\"type\":\"boolean\"},"
" \"is_owner\":{\"type\":\"boolean\"},\"is_bot\":{\"type\":\"boolean\"},\"deleted\":{\"type\":\"boolean\"},"
" \"email\":{\"type\":\"string\",\"nullable\":true},\"avatar\":{\"type\":\"string\",\"nullable\":true}}}},"
" \"next_cursor\":{\"type\":\"string\",\"nullable\":true}}},"
"\"ChannelPage\":{\"type\":\"object\",\"properties\":{\"channels\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
" \"properties\":{\"id\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},\"is_private\":{\"type\":\"boolean\"},"
" \"is_archived\":{\"type\":\"boolean\"},\"num_members\":{\"type\":\"integer\"}}}},"
" \"next_cursor\":{\"type\":\"string\",\"nullable\":true}}},"
"\"CampaignCreate\":{\"type\":\"object\",\"required\":[\"name\",\"bot_id\",\"message\",\"audience\",\"schedule\"],"
" \"properties\":{\"name\":{\"type\":\"string\"},\"bot_id\":{\"type\":\"string\"},"
"  \"message\":{\"type\":\"object\",\"required\":[\"text\"],\"properties\":{\"text\":{\"type\":\"string\","
"   \"description\":\"up to 40000 characters (Slack) or 2000 (Messenger)\"},"
"   \"blocks\":{\"type\":\"array\",\"items\":{\"type\":\"object\"},\"description\":\"Slack only\"}}},"
"  \"audience\":{\"type\":\"object\",\"description\":\"{filter} or {segment_id}\",\"properties\":{"
"   \"segment_id\":{\"type\":\"string\"},\"filter\":{\"type\":\"object\",\"properties\":{"
"    \"all\":{\"type\":\"boolean\"},\"user_ids\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
"    \"channel_ids\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
"    \"members_of\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
"    \"timezones\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
"    \"is_admin\":{\"type\":\"boolean\"},\"email_domain\":{\"type\":\"string\"}}}}},"
"  \"schedule\":{\"type\":\"object\",\"required\":[\"mode\"],\"properties\":{"
"   \"mode\":{\"type\":\"string\",\"enum\":[\"now\",\"at\",\"local\",\"recurring\"]},"
"   \"at\":{\"type\":\"string\",\"format\":\"date-time\"},\"date\":{\"type\":\"string\",\"format\":\"date\"},"
"   \"time\":{\"type\":\"string\",\"pattern\":\"^[0-2][0-9]:[0-5][0-9]$\"},"
"   \"fallback_tz\":{\"type\":\"string\",\"description\":\"IANA zone\"},"
"   \"if_passed\":{\"type\":\"string\",\"enum\":[\"next_day\",\"send_now\",\"skip\"]},"
"   \"rrule\":{\"type\":\"string\",\"description\":\"RFC 5545 RRULE, DAILY or less often\"},"
"   \"local\":{\"type\":\"boolean\"},\"start_date\":{\"type\":\"string\",\"format\":\"date\"},"
"   \"until\":{\"type\":\"string\"}}},"
"  \"throttle_per_minute\":{\"type\":\"integer\",\"minimum\":1},"
"  \"send_window\":{\"type\":\"object\",\"required\":[\"start\",\"end\"],\"properties\":{"
"   \"start\":{\"type\":\"string\"},\"end\":{\"type\":\"string\"},"
"   \"days\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"enum\":[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\",\"sat\",\"sun\"]}}}},"
"  \"max_lateness_minutes\":{\"type\":\"integer\",\"minimum\":1},"
"  \"messenger\":{\"type\":\"object\",\"properties\":{"
"   \"messaging_type\":{\"type\":\"string\",\"enum\":[\"RESPONSE\",\"UPDATE\",\"MESSAGE_TAG\"]},"
"   \"tag\":{\"type\":\"string\"}}}}},"
"\"Campaign\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"org_id\":{\"type\":\"string\"},"
" \"bot_id\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},"
" \"status\":{\"type\":\"string\",\"enum\":[\"draft\",\"scheduled\",\"running\",\"paused\",\"completed\",\"cancelled\"]},"
" \"message\":{\"type\":\"object\"},\"audience\":{\"type\":\"object\"},\"schedule\":{\"type\":\"object\"},"
" \"throttle_per_minute\":{\"type\":\"integer\",\"nullable\":true},"
" \"send_window\":{\"type\":\"object\",\"nullable\":true},"
" \"max_lateness_minutes\":{\"type\":\"integer\",\"nullable\":true},"
" \"messenger\":{\"type\":\"object\",\"nullable\":true},"
" \"stats\":{\"type\":\"object\",\"properties\":{\"total\":{\"type\":\"integer\"},\"pending\":{\"type\":\"integer\"},"
"  \"sent\":{\"type\":\"integer\"},\"failed\":{\"type\":\"integer\"},\"unknown\":{\"type\":\"integer\"},"
"  \"skipped\":{\"type\":\"integer\"},\"cancelled\":{\"type\":\"integer\"},\"read\":{\"type\":\"integer\"}}},"
" \"first_due_at\":{\"type\":\"string\",\"nullable\":true},\"last_due_at\":{\"type\":\"string\",\"nullable\":true},"
" \"created_at\":{\"type\":\"string\"},\"updated_at\":{\"type\":\"string\"},"
" \"scheduled_at\":{\"type\":\"string\",\"nullable\":true},\"completed_at\":{\"type\":\"string\",\"nullable\":true},"
" \"problem\":{\"type\":\"string\",\"nullable\":true,\"description\":\"why the campaign does not go on, naming what to change (e.g. a members_of audience over BCRM_SCHEDULER_MEMBERS_MAX); null when nothing is wrong\"}}},"
"\"CampaignList\":{\"type\":\"object\",\"properties\":{\"campaigns\":{\"type\":\"array\","
" \"items\":{\"$ref\":\"#/components/schemas/Campaign\"}},\"next_cursor\":{\"type\":\"string\",\"nullable\":true}}},"
"\"CampaignRetry\":{\"type\":\"object\",\"required\":[\"status\"],\"properties\":{"
" \"status\":{\"type\":\"string\",\"enum\":[\"failed\",\"unknown\"]}}},"
"\"CampaignTest\":{\"type\":\"object\",\"required\":[\"recipient_id\"],\"properties\":{"
" \"recipient_id\":{\"type\":\"string\"}}},"
"\"DeliveryPage\":{\"type\":\"object\",\"properties\":{\"deliveries\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
" \"properties\":{\"id\":{\"type\":\"string\"},\"recipient_id\":{\"type\":\"string\"},\"run_id\":{\"type\":\"string\"},"
" \"due_at\":{\"type\":\"string\"},\"status\":{\"type\":\"string\"},\"attempts\":{\"type\":\"integer\"},"
" \"last_error\":{\"type\":\"string\",\"nullable\":true},\"platform_message_id\":{\"type\":\"string\",\"nullable\":true},"
" \"sent_at\":{\"type\":\"string\",\"nullable\":true},\"read_at\":{\"type\":\"string\",\"nullable\":true}}}},"
" \"next_cursor\":{\"type\":\"string\",\"nullable\":true}}},"
"\"Filter\":{\"type\":\"object\",\"description\":\"conditions that all hold (spec/api.md, Segments)\","
" \"properties\":{\"all\":{\"type\":\"boolean\"},\"user_ids\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
" \"channel_ids\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
" \"members_of\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
" \"timezones\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
" \"is_admin\":{\"type\":\"boolean\"},\"email_domain\":{\"type\":\"string\"}}},"
"\"SegmentCreate\":{\"type\":\"object\",\"required\":[\"name\",\"bot_id\",\"filter\"],\"properties\":{"
" \"name\":{\"type\":\"string\",\"maxLength\":200},\"bot_id\":{\"type\":\"string\"},"
" \"filter\":{\"$ref\":\"#/components/schemas/Filter\"}}},"
"\"Segment\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},"
" \"bot_id\":{\"type\":\"string\"},\"filter\":{\"$ref\":\"#/components/schemas/Filter\"},"
" \"created_at\":{\"type\":\"string\"},\"updated_at\":{\"type\":\"string\"}}},"
"\"SegmentList\":{\"type\":\"object\",\"properties\":{\"segments\":{\"type\":\"array\","
" \"items\":{\"$ref\":\"#/components/schemas/Segment\"}}}},"
"\"SegmentPreview\":{\"type\":\"object\",\"properties\":{\"segment_id\":{\"type\":\"string\"},"
" \"bot_id\":{\"type\":\"string\"},\"kind\":{\"type\":\"string\",\"enum\":[\"users\",\"channels\"]},"
" \"count\":{\"type\":\"integer\"},\"sample\":{\"type\":\"array\",\"items\":{\"type\":\"object\"},"
"  \"description\":\"up to ?sample= (default 10, max 50) users as in UserPage, or channel ids\"},"
" \"pages_read\":{\"type\":\"integer\"},\"read_at\":{\"type\":\"string\"}}}"
"}";
/* clang-format on */

static json_t *schema_ref(const char *name)
{
    char ref[128];
    snprintf(ref, sizeof(ref), "#/components/schemas/%s", name);
    return json_pack("{s:s}", "$ref", ref);
}

static json_t *problem_response(const char *description)
{
    return json_pack("{s:s, s:{s:{s:o}}}", "description", description, "content",
                     "application/problem+json", "schema", schema_ref("Problem"));
}

/* "{name}" segments of a pattern become path parameters; GET lists page. */
static json_t *operation(const struct route *rt)
{
    json_t *op = json_object();
    json_t *params = json_array();
    json_object_set_new(op, "summary", json_string(rt->summary));
    for (const char *p = strchr(rt->pattern, '{'); p != NULL; p = strchr(p + 1, '{')) {
        const char *close = strchr(p, '}');
        json_array_append_new(params, json_pack("{s:s%, s:s, s:b, s:{s:s}}", "name", p + 1,
                                                (size_t)(close - p - 1), "in", "path", "required",
                                                1, "schema", "type", "string"));
    }
    if (strcmp(rt->method, "GET") == 0 &&
        (strstr(rt->pattern, "/campaigns") != NULL || strstr(rt->pattern, "/users") != NULL ||
         strstr(rt->pattern, "/channels") != NULL) &&
        rt->pattern[strlen(rt->pattern) - 1] != '}') {
        json_array_append_new(params, json_pack("{s:s, s:s, s:{s:s}}", "name", "cursor", "in",
                                                "query", "schema", "type", "string"));
        json_array_append_new(params, json_pack("{s:s, s:s, s:{s:s}}", "name", "limit", "in",
                                                "query", "schema", "type", "integer"));
        if (strstr(rt->pattern, "/deliveries") != NULL) {
            json_array_append_new(params, json_pack("{s:s, s:s, s:{s:s}}", "name", "status", "in",
                                                    "query", "schema", "type", "string"));
        }
    }
    /* Query parameters of the routes added with segments, OAuth and webhooks. */
    static const struct {
        const char *pattern_end, *names;
    } queries[] = {{"/segments", "bot_id"},
                   {"/preview", "sample"},
                   {"/oauth/slack/callback", "code state error"},
                   {"/webhooks/messenger", "hub.mode hub.verify_token hub.challenge"}};
    for (size_t q = 0; q < sizeof(queries) / sizeof(queries[0]); q++) {
        size_t plen = strlen(rt->pattern), elen = strlen(queries[q].pattern_end);
        if (strcmp(rt->method, "GET") != 0 || plen < elen ||
            strcmp(rt->pattern + plen - elen, queries[q].pattern_end) != 0) {
            continue;
        }
        char names[64];
        snprintf(names, sizeof(names), "%s", queries[q].names);
        for (char *save = NULL, *name = strtok_r(names, " ", &save); name != NULL;
             name = strtok_r(NULL, " ", &save)) {
            json_array_append_new(params, json_pack("{s:s, s:s, s:{s:s}}", "name", name, "in",
                                                    "query", "schema", "type", "string"));
        }
    }
    if (rt->idempotent) {
        json_array_append_new(params, json_pack("{s:s, s:s, s:s, s:{s:s}}", "name",
                                                "Idempotency-Key", "in", "header", "description",
                                                "a repeat with the same key returns the first "
                                                "answer",
                                                "schema", "type", "string"));
    }
    json_object_set_new(op, "parameters", params);
    if (rt->request_schema != NULL) {
        json_object_set_new(op, "requestBody",
                            json_pack("{s:b, s:{s:{s:o}}}", "required", 1, "content",
                                      "application/json", "schema",
                                      schema_ref(rt->request_schema)));
    }
    json_t *responses = json_object();
    char code[8];
    snprintf(code, sizeof(code), "%d", rt->success_status);
    json_t *ok = json_pack("{s:s}", "description", "success");
    if (rt->response_schema != NULL) {
        json_object_set_new(
            ok, "content",
            json_pack("{s:{s:o}}", "application/json", "schema", schema_ref(rt->response_schema)));
    }
    json_object_set_new(responses, code, ok);
    if (rt->request_schema != NULL) {
        json_object_set_new(responses, "400", problem_response("malformed JSON"));
        json_object_set_new(responses, "422", problem_response("invalid field (named in field)"));
    }
    if (rt->auth != ROUTE_PUBLIC) {
        json_object_set_new(responses, "401", problem_response("no valid credential"));
    }
    if (rt->auth == ROUTE_ORG) {
        json_object_set_new(responses, "404", problem_response("not found in this org"));
    }
    if (strcmp(rt->method, "POST") == 0 && strstr(rt->pattern, "{campaign}/") != NULL) {
        json_object_set_new(responses, "409",
                            problem_response("not allowed in the campaign's current status"));
    }
    if (strcmp(rt->method, "POST") == 0 && strstr(rt->pattern, "{bot}/token") != NULL) {
        json_object_set_new(responses, "409",
                            problem_response("the token is another workspace's, app's or page's "
                                             "(mismatch names the field), the bot is not active "
                                             "or token_invalid, or another reconnect of the bot "
                                             "interfered"));
        json_object_set_new(responses, "422",
                            problem_response("invalid field, or the platform refused the token "
                                             "(platform_error)"));
        json_object_set_new(responses, "429",
                            problem_response("the platform rate-limits the bot (Retry-After)"));
        json_object_set_new(responses, "503",
                            problem_response("no sender answered, or the vault could not be "
                                             "reached; nothing was changed"));
    }
    json_object_set_new(op, "responses", responses);
    if (rt->auth == ROUTE_PUBLIC) {
        json_object_set_new(op, "security", json_array());
    }
    return op;
}

static json_t *build_document(void)
{
    json_error_t err;
    json_t *schemas = json_loads(schemas_json, 0, &err);
    if (schemas == NULL) {
        log_error("openapi schemas do not parse", "{s:s, s:i}", "error", err.text, "position",
                  err.position);
        return NULL;
    }
    json_t *paths = json_object();
    for (int i = 0; i < api_route_count; i++) {
        const struct route *rt = &api_routes[i];
        json_t *item = json_object_get(paths, rt->pattern);
        if (item == NULL) {
            item = json_object();
            json_object_set_new(paths, rt->pattern, item);
        }
        char method[16];
        snprintf(method, sizeof(method), "%s", rt->method);
        for (char *c = method; *c; c++) {
            *c = (char)(*c - 'A' + 'a');
        }
        json_object_set_new(item, method, operation(rt));
    }
    return json_pack("{s:s, s:{s:s, s:s, s:s}, s:o, s:{s:o, s:{s:{s:s, s:s, s:s}, s:{s:s, s:s}}},"
                     " s:[{s:[]}, {s:[]}]}",
                     "openapi", "3.0.3", "info", "title", "bcrm API", "version", "1", "description",
                     "REST API of bcrm (spec/api.md). Errors are RFC 9457 problems.", "paths",
                     paths, "components", "schemas", schemas, "securitySchemes", "session", "type",
                     "apiKey", "in", "cookie", "name", "__Host-bcrm_session", "apiKey", "type",
                     "http", "scheme", "bearer", "security", "session", "apiKey");
}

static pthread_once_t document_once = PTHREAD_ONCE_INIT;
static char *document_text;

static void document_init(void)
{
    json_t *doc = build_document();
    if (doc != NULL) {
        document_text = json_dumps(doc, JSON_INDENT(1));
        json_decref(doc);
    }
}

void openapi_serve(struct api_req *r)
{
    pthread_once(&document_once, document_init);
    if (document_text == NULL) {
        api_internal_error(r);
        return;
    }
    http_respond(r->resp, 200, "application/json", document_text, strlen(document_text));
}
