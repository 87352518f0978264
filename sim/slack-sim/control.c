/* control.c: the /_sim/ endpoints, for tests, benchmarks and the sandbox.
 *
 *   GET  /_sim/workspaces          teams with their tokens and bot identities
 *   GET  /_sim/users?team_id=      the whole population with profiles and flags
 *   GET  /_sim/channels?team_id=   channels with their members
 *   GET  /_sim/messages?team_id=&user=&channel=&since=   the record, in arrival order
 *   GET  /_sim/recipients?team_id= messages per recipient
 *   GET  /_sim/stats               counters
 *   GET  /_sim/app                 the app's OAuth client id and secret (oauth.h)
 *   POST /_sim/events              send a signed Events API event to bcrm (events.h)
 *   POST /_sim/membership {leave: [ids], join: [ids]}   people leave or join the workspace
 *   GET  /_sim/scopes              each workspace's granted scopes, and the known ones
 *   POST /_sim/scopes {team_id?, scopes?, add?, remove?}   changes the grant of one
 *                                  workspace (every one without team_id): scopes
 *                                  replaces it, add and remove change it (lists of
 *                                  names or comma-separated strings)
 *   POST /_sim/reset               forget messages, counters, rate-limit state,
 *                                  revocations, scope changes and faults
 *                                  ({"keep_faults":true} keeps the faults,
 *                                  revocations and scopes)
 *   GET  /_sim/faults, POST /_sim/faults   see faults.h; plus revoke_token and
 *                                  restore_token (a team id, or a list of them) and
 *                                  revoke_as: token_revoked (the default),
 *                                  invalid_auth or account_inactive
 *   GET  /_sim/requests?since=&method=&limit=   the Web API calls as received
 *                                  (reqlog.h), oldest first
 *   POST /_sim/requests {reset?, enabled?}, DELETE /_sim/requests (reset)
 *
 * These answers carry tokens and profile data by design: the control port is a
 * test fixture and never faces anything but loopback.
 */
#include "events.h"
#include "faults.h"
#include "oauth.h"
#include "scopes.h"
#include "sim.h"
#include "simutil.h"
#include "strmap.h"

#include "bcrm/clock.h"
#include "bcrm/http.h"
#include "bcrm/log.h"

#include <stdlib.h>
#include <string.h>

static bool is_get(const struct http_request *req)
{
    return strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
}

/* Resolves ?team_id=; answers 404 and returns false for an unknown team. */
static bool team_filter(struct sim *sim, const struct http_request *req, struct http_response *resp,
                        const struct sim_workspace **out)
{
    const char *team = http_query(req, "team_id");
    *out = NULL;
    if (team == NULL || team[0] == '\0') {
        return true;
    }
    *out = strmap_get(sim->pop->workspace_by_team, team);
    if (*out == NULL) {
        http_respond_problem(resp, 404, "Not Found", "no workspace with team_id %s", team);
        return false;
    }
    return true;
}

static json_t *ok_with(const char *key, json_t *value)
{
    return json_pack("{s:b, s:o}", "ok", 1, key, value);
}

static void get_workspaces(struct sim *sim, struct http_response *resp)
{
    json_t *arr = json_array();
    for (size_t w = 0; w < sim->pop->workspace_count; w++) {
        const struct sim_workspace *ws = &sim->pop->workspaces[w];
        json_array_append_new(
            arr,
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:o}", "team_id", ws->team_id,
                      "name", ws->name, "domain", ws->domain, "token", ws->token, "bot_user_id",
                      ws->bot_user->id, "bot_id", ws->bot_user->bot_id, "app_id", ws->app_id,
                      "users", (json_int_t)ws->user_count, "revoked", atomic_load(&ws->revoked),
                      "scopes", scopes_to_json(atomic_load(&ws->scopes))));
    }
    http_respond_json(resp, 200, ok_with("workspaces", arr));
}

static const char *kind_name(enum sim_user_kind k)
{
    switch (k) {
    case SIM_USER_PERSON:
        return "person";
    case SIM_USER_BOT:
        return "bot";
    case SIM_USER_SLACKBOT:
        return "slackbot";
    case SIM_USER_APP_BOT:
        return "app_bot";
    }
    return "person";
}

static json_t *user_json(const struct sim_user *u)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:b, s:I}",
        "id", u->id, "team_id", u->ws->team_id, "dm_id", u->dm_id, "kind", kind_name(u->kind),
        "name", u->name, "real_name", u->real_name, "first_name", u->first_name, "last_name",
        u->last_name, "display_name", u->display_name, "marker", u->marker, "is_bot",
        population_user_is_bot(u), "deleted", u->deleted, "is_admin", u->is_admin, "is_owner",
        u->is_owner, "is_primary_owner", u->is_primary_owner, "is_restricted", u->is_restricted,
        "updated", (json_int_t)u->updated);
    json_object_set_new(o, "away", json_boolean(atomic_load(&u->away)));
    json_object_set_new(o, "email", u->email ? json_string(u->email) : json_null());
    json_object_set_new(o, "tz", u->zone ? json_string(u->zone->name) : json_null());
    json_object_set_new(o, "tz_offset",
                        u->zone ? json_integer(atomic_load(&u->zone->offset_s)) : json_null());
    /* How users.list shows a user without a zone: tz null, or no tz at all. */
    json_object_set_new(o, "tz_field",
                        json_string(u->zone ? "zone" : (u->tz_null ? "null" : "absent")));
    if (u->marker[0] == '\0') {
        json_object_set_new(o, "marker", json_null());
    }
    if (population_user_is_bot(u)) {
        json_object_set_new(o, "bot_id", json_string(u->bot_id));
    }
    return o;
}

static void get_users(struct sim *sim, const struct http_request *req, struct http_response *resp)
{
    const struct sim_workspace *only;
    if (!team_filter(sim, req, resp, &only)) {
        return;
    }
    json_t *arr = json_array();
    for (size_t w = 0; w < sim->pop->workspace_count; w++) {
        const struct sim_workspace *ws = &sim->pop->workspaces[w];
        for (size_t i = 0; (only == NULL || only == ws) && i < ws->user_count; i++) {
            json_array_append_new(arr, user_json(&ws->users[i]));
        }
    }
    http_respond_json(resp, 200, ok_with("users", arr));
}

static void get_channels(struct sim *sim, const struct http_request *req,
                         struct http_response *resp)
{
    const struct sim_workspace *only;
    if (!team_filter(sim, req, resp, &only)) {
        return;
    }
    json_t *arr = json_array();
    for (size_t w = 0; w < sim->pop->workspace_count; w++) {
        const struct sim_workspace *ws = &sim->pop->workspaces[w];
        for (size_t c = 0; (only == NULL || only == ws) && c < ws->channel_count; c++) {
            const struct sim_channel *ch = &ws->channels[c];
            json_t *members = json_array();
            for (size_t m = 0; m < ch->member_count; m++) {
                json_array_append_new(members, json_string(ws->users[ch->members[m]].id));
            }
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:o}", "id",
                                                 ch->id, "team_id", ws->team_id, "name", ch->name,
                                                 "is_private", ch->is_private, "is_archived",
                                                 ch->is_archived, "is_general", ch->is_general,
                                                 "bot_member", ch->bot_member, "members", members));
        }
    }
    http_respond_json(resp, 200, ok_with("channels", arr));
}

static void get_messages(struct sim *sim, const struct http_request *req,
                         struct http_response *resp)
{
    const struct sim_workspace *only;
    if (!team_filter(sim, req, resp, &only)) {
        return;
    }
    const char *since = http_query(req, "since");
    const char *user = http_query(req, "user");
    const char *channel = http_query(req, "channel");
    sim_respond_messages(resp, sim->record, only ? only->team_id : NULL,
                         user && user[0] ? user : NULL, channel && channel[0] ? channel : NULL,
                         since ? strtoll(since, NULL, 10) : 0);
}

static void get_recipients(struct sim *sim, const struct http_request *req,
                           struct http_response *resp)
{
    const struct sim_workspace *only;
    if (!team_filter(sim, req, resp, &only)) {
        return;
    }
    json_t *arr = record_recipients_json(sim->record, only ? only->team_id : NULL);
    if (arr == NULL) {
        http_respond_problem(resp, 500, "Internal Server Error", "out of memory");
        return;
    }
    http_respond_json(resp, 200, ok_with("recipients", arr));
}

static void get_stats(struct sim *sim, struct http_response *resp)
{
    struct record_totals t;
    record_totals(sim->record, &t);
    json_t *by_method = json_object();
    for (int m = 0; m < SIM_METHOD_COUNT; m++) {
        json_object_set_new(by_method, sim_method_name((enum sim_method)m),
                            json_integer(atomic_load(&sim->counters.by_method[m])));
    }
    struct sim_counters *c = &sim->counters;
    struct http_server *srv = atomic_load(&sim->http);
    int held = 0, held_max = 0;
    if (srv != NULL) {
        http_server_held(srv, &held, &held_max, false);
    }
    http_respond_json(resp, 200,
                      json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:i, s:o}", "ok", 1,
                                "requests", (json_int_t)atomic_load(&c->requests), "messages",
                                (json_int_t)t.messages, "recipients", (json_int_t)t.recipients,
                                "duplicates", (json_int_t)t.duplicates, "ratelimited",
                                (json_int_t)atomic_load(&c->ratelimited), "injected_errors",
                                (json_int_t)atomic_load(&c->injected_errors), "dropped",
                                (json_int_t)atomic_load(&c->dropped), "answers_held", held,
                                "answers_held_max", held_max, "by_method", by_method));
}

void sim_counters_reset(struct sim *sim)
{
    struct sim_counters *c = &sim->counters;
    atomic_store(&c->requests, 0);
    atomic_store(&c->ratelimited, 0);
    atomic_store(&c->injected_errors, 0);
    atomic_store(&c->dropped, 0);
    for (int m = 0; m < SIM_METHOD_COUNT; m++) {
        atomic_store(&c->by_method[m], 0);
    }
}

/* The request body as JSON, or an empty object for an empty body. NULL (after
 * answering 400) when it is not JSON. */
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

static void post_reset(struct sim *sim, const struct http_request *req, struct http_response *resp)
{
    json_t *body = body_json(req, resp);
    if (body == NULL) {
        return;
    }
    bool keep_faults = json_is_true(json_object_get(body, "keep_faults"));
    json_decref(body);
    record_reset(sim->record);
    reqlog_reset(sim->requests);
    ratelimit_reset(sim->limits);
    sim_counters_reset(sim);
    struct http_server *srv = atomic_load(&sim->http);
    if (srv != NULL) {
        int held, held_max;
        http_server_held(srv, &held, &held_max, true);
    }
    for (size_t w = 0; w < sim->pop->workspace_count; w++) {
        struct sim_workspace *ws = &sim->pop->workspaces[w];
        for (size_t i = 0; i < ws->user_count; i++) {
            atomic_store(&ws->users[i].dm_open, false);
            atomic_store(&ws->users[i].away, false); /* everyone back, as at start-up */
        }
        if (!keep_faults) {
            atomic_store(&ws->revoked, false);
            atomic_store(&ws->revoked_as, SIM_REVOKED_TOKEN_REVOKED);
            atomic_store(&ws->scopes, sim->default_scopes);
        }
    }
    if (!keep_faults) {
        faults_restore_defaults();
    }
    oauth_reset();
    log_info("simulator reset", "{s:b}", "keep_faults", keep_faults);
    http_respond_json(resp, 200, json_pack("{s:b}", "ok", 1));
}

/* Applies revoke_token / restore_token: a team id or a list of them; revoke_as
 * says how the revoked tokens are answered. */
static int apply_revocations(struct sim *sim, json_t *body, const char *field, bool revoked,
                             char *err, size_t errlen)
{
    json_t *v = json_object_get(body, field);
    if (v == NULL) {
        return 0;
    }
    int how = SIM_REVOKED_TOKEN_REVOKED;
    json_t *as = json_object_get(body, "revoke_as");
    if (revoked && as != NULL &&
        (!json_is_string(as) || (how = population_revocation_parse(json_string_value(as))) < 0)) {
        snprintf(err, errlen, "revoke_as: want token_revoked, invalid_auth or account_inactive");
        return -1;
    }
    json_t *list = json_is_array(v) ? json_incref(v) : json_pack("[O]", v);
    size_t i;
    json_t *team;
    int rc = 0;
    /* Validate everything first, so a bad entry changes nothing. */
    json_array_foreach(list, i, team)
    {
        if (!json_is_string(team) ||
            strmap_get(sim->pop->workspace_by_team, json_string_value(team)) == NULL) {
            snprintf(err, errlen, "%s: no workspace with that team_id", field);
            rc = -1;
        }
    }
    json_array_foreach(list, i, team)
    {
        struct sim_workspace *ws =
            rc == 0 ? strmap_get(sim->pop->workspace_by_team, json_string_value(team)) : NULL;
        if (ws != NULL) {
            atomic_store(&ws->revoked_as, how);
            atomic_store(&ws->revoked, revoked);
        }
    }
    json_decref(list);
    return rc;
}

static json_t *faults_answer(struct sim *sim)
{
    struct sim_faults f;
    faults_get(&f);
    json_t *o = faults_to_json(&f, clock_wall_ms());
    json_t *revoked = json_array();
    json_t *revoked_as = json_object();
    for (size_t w = 0; w < sim->pop->workspace_count; w++) {
        const struct sim_workspace *ws = &sim->pop->workspaces[w];
        if (atomic_load(&ws->revoked)) {
            json_array_append_new(revoked, json_string(ws->team_id));
            json_object_set_new(revoked_as, ws->team_id,
                                json_string(population_revocation_error(ws)));
        }
    }
    json_object_set_new(o, "revoked", revoked);
    json_object_set_new(o, "revoked_as", revoked_as);
    json_object_set_new(o, "ok", json_true());
    return o;
}

static void post_faults(struct sim *sim, const struct http_request *req, struct http_response *resp)
{
    json_t *body = body_json(req, resp);
    if (body == NULL) {
        return;
    }
    char err[160] = "";
    struct sim_faults f;
    faults_get(&f);
    if (faults_update_from_json(&f, body, clock_wall_ms(), err, sizeof(err)) != 0 ||
        apply_revocations(sim, body, "revoke_token", true, err, sizeof(err)) != 0 ||
        apply_revocations(sim, body, "restore_token", false, err, sizeof(err)) != 0) {
        json_decref(body);
        http_respond_problem(resp, 400, "Bad Request", "%s", err);
        return;
    }
    json_decref(body);
    faults_set(&f);
    json_t *answer = faults_answer(sim);
    char *text = json_dumps(answer, JSON_COMPACT);
    log_info("faults changed", "{s:s}", "faults", text ? text : "");
    free(text);
    http_respond_json(resp, 200, answer);
}

static void get_requests(struct sim *sim, const struct http_request *req,
                         struct http_response *resp)
{
    const char *since = http_query(req, "since");
    const char *method = http_query(req, "method");
    const char *limit = http_query(req, "limit");
    json_t *answer =
        reqlog_list(sim->requests, since ? strtoll(since, NULL, 10) : 0,
                    method && method[0] ? method : NULL, limit ? strtoul(limit, NULL, 10) : 0);
    if (answer == NULL) {
        http_respond_problem(resp, 500, "Internal Server Error", "out of memory");
        return;
    }
    http_respond_json(resp, 200, answer);
}

/* POST /_sim/requests {reset?, enabled?}: clears the log, switches it. */
static void post_requests(struct sim *sim, const struct http_request *req,
                          struct http_response *resp)
{
    static const char *const fields[] = {"reset", "enabled", NULL};
    json_t *body = body_json(req, resp);
    if (body == NULL) {
        return;
    }
    char err[160] = "";
    bool reset = false;
    bool enabled = reqlog_enabled(sim->requests);
    if (sim_json_known_fields(body, fields, err, sizeof(err)) != 0 ||
        sim_json_bool(body, "reset", &reset, err, sizeof(err)) != 0 ||
        sim_json_bool(body, "enabled", &enabled, err, sizeof(err)) != 0) {
        json_decref(body);
        http_respond_problem(resp, 400, "Bad Request", "%s", err);
        return;
    }
    json_decref(body);
    if (reset) {
        reqlog_reset(sim->requests);
    }
    reqlog_set_enabled(sim->requests, enabled);
    http_respond_json(resp, 200,
                      json_pack("{s:b, s:b}", "ok", 1, "enabled", reqlog_enabled(sim->requests)));
}

/* POST /_sim/membership {"leave": [user ids], "join": [user ids]}: people leave the
 * workspace or (re)join it; users.list shows only those present. Every user starts
 * present. */
static void post_membership(struct sim *sim, const struct http_request *req,
                            struct http_response *resp)
{
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, 0, &jerr);
    if (!json_is_object(body)) {
        json_decref(body);
        http_respond_problem(resp, 400, "Bad Request", "body: not a JSON object");
        return;
    }
    static const char *const keys[] = {"leave", "join"};
    int changed[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        json_t *ids = json_object_get(body, keys[k]);
        size_t i;
        json_t *id;
        if (ids != NULL && !json_is_array(ids)) {
            json_decref(body);
            http_respond_problem(resp, 400, "Bad Request", "%s: not an array of user ids", keys[k]);
            return;
        }
        json_array_foreach(ids, i, id)
        {
            for (size_t w = 0; json_is_string(id) && w < sim->pop->workspace_count; w++) {
                struct sim_user *u = (struct sim_user *)population_user(&sim->pop->workspaces[w],
                                                                        json_string_value(id));
                if (u != NULL) {
                    atomic_store(&u->away, k == 0);
                    changed[k]++;
                }
            }
        }
    }
    json_decref(body);
    http_respond_json(
        resp, 200, json_pack("{s:b, s:i, s:i}", "ok", 1, "left", changed[0], "joined", changed[1]));
}

static json_t *scopes_answer(struct sim *sim)
{
    json_t *arr = json_array();
    for (size_t w = 0; w < sim->pop->workspace_count; w++) {
        const struct sim_workspace *ws = &sim->pop->workspaces[w];
        json_array_append_new(arr, json_pack("{s:s, s:o}", "team_id", ws->team_id, "scopes",
                                             scopes_to_json(atomic_load(&ws->scopes))));
    }
    return json_pack("{s:b, s:o, s:o, s:o}", "ok", 1, "workspaces", arr, "default",
                     scopes_to_json(sim->default_scopes), "known", scopes_known_json());
}

/* POST /_sim/scopes: a workspace with fewer (or more) scopes, for tests of what
 * a sender does with a token that cannot do everything. */
static void post_scopes(struct sim *sim, const struct http_request *req, struct http_response *resp)
{
    static const char *const fields[] = {"team_id", "scopes", "add", "remove", NULL};
    json_t *body = body_json(req, resp);
    if (body == NULL) {
        return;
    }
    char err[160] = "";
    uint64_t set = 0, add = 0, remove = 0;
    json_t *team = json_object_get(body, "team_id");
    json_t *scopes = json_object_get(body, "scopes");
    json_t *add_v = json_object_get(body, "add");
    json_t *remove_v = json_object_get(body, "remove");
    struct sim_workspace *only = NULL;
    int rc = sim_json_known_fields(body, fields, err, sizeof(err));
    if (rc == 0 && team != NULL &&
        (!json_is_string(team) ||
         (only = strmap_get(sim->pop->workspace_by_team, json_string_value(team))) == NULL)) {
        snprintf(err, sizeof(err), "team_id: no workspace with that team_id");
        rc = -1;
    }
    if (rc == 0 && scopes == NULL && add_v == NULL && remove_v == NULL) {
        snprintf(err, sizeof(err), "want scopes, add or remove");
        rc = -1;
    }
    if (rc == 0 &&
        ((scopes != NULL && scopes_from_json(scopes, &set, err, sizeof(err)) != 0) ||
         (add_v != NULL && scopes_from_json(add_v, &add, err, sizeof(err)) != 0) ||
         (remove_v != NULL && scopes_from_json(remove_v, &remove, err, sizeof(err)) != 0))) {
        rc = -1;
    }
    if (rc != 0) {
        json_decref(body);
        http_respond_problem(resp, 400, "Bad Request", "%s", err);
        return;
    }
    for (size_t w = 0; w < sim->pop->workspace_count; w++) {
        struct sim_workspace *ws = &sim->pop->workspaces[w];
        if (only != NULL && ws != only) {
            continue;
        }
        uint64_t now = scopes != NULL ? set : atomic_load(&ws->scopes);
        atomic_store(&ws->scopes, (now | add) & ~remove);
        char text[SCOPES_TEXT_MAX];
        scopes_format((now | add) & ~remove, text, sizeof(text));
        log_info("scopes changed", "{s:s, s:s}", "team_id", ws->team_id, "scopes", text);
    }
    json_decref(body);
    http_respond_json(resp, 200, scopes_answer(sim));
}

void control_handle(struct sim *sim, const struct http_request *req, struct http_response *resp,
                    const char *path)
{
    bool get = is_get(req);
    bool post = strcmp(req->method, "POST") == 0;
    if (get && strcmp(path, "workspaces") == 0) {
        get_workspaces(sim, resp);
    } else if (get && strcmp(path, "users") == 0) {
        get_users(sim, req, resp);
    } else if (get && strcmp(path, "channels") == 0) {
        get_channels(sim, req, resp);
    } else if (get && strcmp(path, "messages") == 0) {
        get_messages(sim, req, resp);
    } else if (get && strcmp(path, "recipients") == 0) {
        get_recipients(sim, req, resp);
    } else if (get && strcmp(path, "stats") == 0) {
        get_stats(sim, resp);
    } else if (post && strcmp(path, "events") == 0) {
        events_post(sim, req, resp);
    } else if (get && strcmp(path, "app") == 0) {
        const struct sim_oauth_app *app = oauth_app();
        http_respond_json(resp, 200,
                          json_pack("{s:b, s:s, s:s, s:s}", "ok", 1, "client_id", app->client_id,
                                    "client_secret", app->client_secret, "authorize_path",
                                    "/oauth/v2/authorize"));
    } else if (get && strcmp(path, "scopes") == 0) {
        http_respond_json(resp, 200, scopes_answer(sim));
    } else if (post && strcmp(path, "scopes") == 0) {
        post_scopes(sim, req, resp);
    } else if (post && strcmp(path, "membership") == 0) {
        post_membership(sim, req, resp);
    } else if (post && strcmp(path, "reset") == 0) {
        post_reset(sim, req, resp);
    } else if (get && strcmp(path, "faults") == 0) {
        http_respond_json(resp, 200, faults_answer(sim));
    } else if (post && strcmp(path, "faults") == 0) {
        post_faults(sim, req, resp);
    } else if (get && strcmp(path, "requests") == 0) {
        get_requests(sim, req, resp);
    } else if (post && strcmp(path, "requests") == 0) {
        post_requests(sim, req, resp);
    } else if (strcmp(req->method, "DELETE") == 0 && strcmp(path, "requests") == 0) {
        reqlog_reset(sim->requests);
        http_respond_json(resp, 200, json_pack("{s:b}", "ok", 1));
    } else {
        http_respond_problem(resp, 404, "Not Found", "no control endpoint %s %s", req->method,
                             req->path);
    }
}
