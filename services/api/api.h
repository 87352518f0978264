/* api.h: what every part of the api service shares: the process-wide context, the
 * per-request context handed to each handler, and the handlers themselves.
 *
 * A request flows: http wrapper -> router (route, path params, auth, org access,
 * CSRF, idempotency) -> one handler -> response. Handlers borrow everything in
 * struct api_req for the duration of the call; the database connection is taken
 * from the pool on first use (api_db) and given back by the router afterwards,
 * rolled back if a handler left a transaction open.
 */
#ifndef BCRM_API_H
#define BCRM_API_H

#include "bcrm/http.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <nng/nng.h>
#include <stdbool.h>

struct db_pool;
struct vault_client;

/* The process-wide state, built by main.c and read-only once serving starts. */
struct api_ctx {
    struct db_pool *pool;
    struct vault_client *vault; /* NULL when no identity key is configured */
    nng_socket query_slack;     /* REQ, listening on BCRM_API_QUERY_SLACK_URL */
    nng_socket query_messenger; /* REQ, listening on BCRM_API_QUERY_MESSENGER_URL */
    int query_timeout_ms;
    int64_t session_ttl_s;

    /* Webhook secrets (secret_config.h: sodium_malloc'd, never logged). NULL when
     * not configured: that webhook then refuses every request. */
    char *slack_signing_secret;   /* BCRM_SLACK_SIGNING_SECRET */
    char *messenger_app_secret;   /* BCRM_MESSENGER_APP_SECRET */
    char *messenger_verify_token; /* BCRM_MESSENGER_VERIFY_TOKEN */

    /* Slack OAuth install (oauth_slack.c). slack_client_id NULL: not configured. */
    const char *slack_client_id;     /* BCRM_SLACK_CLIENT_ID */
    const char *slack_authorize_url; /* BCRM_SLACK_OAUTH_AUTHORIZE_URL */
    char public_url[512];            /* BCRM_PUBLIC_URL, without a trailing slash */
    unsigned long long pwhash_opslimit;
    size_t pwhash_memlimit;
};

/* Roles in increasing order of power; API keys act as ROLE_ADMIN of their org. */
enum api_role { ROLE_NONE = 0, ROLE_VIEWER, ROLE_EDITOR, ROLE_ADMIN, ROLE_OWNER };

enum api_auth_kind { AUTH_ANON = 0, AUTH_SESSION, AUTH_API_KEY };

#define API_MAX_PARAMS 4
#define API_UUID_LEN 37 /* 36 characters and the NUL */

struct api_req {
    struct api_ctx *api;
    const struct http_request *http;
    struct http_response *resp;

    /* Path parameters in pattern order: names borrowed from the route table,
     * values are copies owned by the router. */
    int nparams;
    const char *param_names[API_MAX_PARAMS];
    char param_values[API_MAX_PARAMS][128];

    /* Who is calling. account_id is set for sessions, api_key_id and key_org_id
     * for API keys. csrf_token is the session's. */
    enum api_auth_kind auth;
    char account_id[API_UUID_LEN];
    char api_key_id[API_UUID_LEN];
    char key_org_id[API_UUID_LEN];
    char csrf_token[64];
    char session_hash_hex[65];

    /* For org routes: the org and the caller's role in it (checked by the router). */
    const char *org_id;
    enum api_role role;

    PGconn *db; /* from the pool; use api_db() */
};

/* A handler fills r->resp. It must not keep pointers into r after returning. */
typedef void (*api_handler_fn)(struct api_req *r);

/* The database connection of this request, taken from the pool on first use.
 * NULL (after answering 503) when the database cannot be reached. */
PGconn *api_db(struct api_req *r);
/* Gives the connection back early, before a slow call to another service. */
void api_db_release(struct api_req *r);

/* The path parameter of that name (e.g. "campaign"), or "". */
const char *api_param(const struct api_req *r, const char *name);

/* Problems (RFC 9457) with optional extension members. field names the request
 * field at fault ("schedule.fallback_tz"), or is NULL. */
void api_problem(struct api_req *r, int status, const char *title, const char *field,
                 const char *detail_fmt, ...) __attribute__((format(printf, 5, 6)));
/* The same, adding the members of extra (reference taken). */
void api_problem_ext(struct api_req *r, int status, const char *title, json_t *extra,
                     const char *detail_fmt, ...) __attribute__((format(printf, 5, 6)));
void api_json(struct api_req *r, int status, json_t *body); /* takes the reference */
void api_no_content(struct api_req *r);
void api_internal_error(struct api_req *r);

/* Parses the body as a JSON object. On failure answers 400 (naming the position of
 * a syntax error) or 422 (not an object) and returns NULL. Free with json_decref. */
json_t *api_body_object(struct api_req *r);

/* Wipes the values of the body's secret fields ("token", "page_token": what a
 * bot connects with), and with remove takes the fields out of body too. body may
 * be NULL. True when it had any. The raw request body is the caller's to wipe. */
bool api_wipe_secret_fields(json_t *body, bool remove);

/* The "limit" query parameter: fallback when absent; answers 422 and returns false
 * when it is not an integer in 1..max. */
bool api_query_limit(struct api_req *r, int fallback, int max, int *out);
/* Opaque page cursors: base64url of a position text. encode: free() the result.
 * decode: false when the cursor is not one of ours. */
char *api_cursor_encode(const char *position);
bool api_cursor_decode(const char *cursor, char *out, size_t outlen);

/* True when text is a canonical lower- or upper-case UUID. */
bool api_is_uuid(const char *text);

/* SQL snippet formatting a timestamptz column as RFC 3339 UTC with milliseconds. */
#define API_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* Handlers, grouped by the file that holds them. */
void accounts_signup(struct api_req *r);
void accounts_login(struct api_req *r);
void accounts_logout(struct api_req *r);
void accounts_me(struct api_req *r);
void members_add(struct api_req *r);
void members_list(struct api_req *r);

void apikeys_create(struct api_req *r);
void apikeys_list(struct api_req *r);
void apikeys_revoke(struct api_req *r);

void bots_create(struct api_req *r);
void bots_list(struct api_req *r);
void bots_get(struct api_req *r);
void bots_delete(struct api_req *r);
void bots_reconnect(struct api_req *r);
void bots_users(struct api_req *r);
void bots_channels(struct api_req *r);

void campaigns_create(struct api_req *r);
void campaigns_list(struct api_req *r);
void campaigns_get(struct api_req *r);
void campaigns_schedule(struct api_req *r);
void campaigns_pause(struct api_req *r);
void campaigns_resume(struct api_req *r);
void campaigns_cancel(struct api_req *r);
void campaigns_retry(struct api_req *r);
void campaigns_test(struct api_req *r);
void campaigns_timeline(struct api_req *r);

void deliveries_list(struct api_req *r);

void segments_create(struct api_req *r);
void segments_list(struct api_req *r);
void segments_get(struct api_req *r);
void segments_replace(struct api_req *r);
void segments_delete(struct api_req *r);
void segments_preview(struct api_req *r);

void webhooks_slack_events(struct api_req *r);
void webhooks_messenger_verify(struct api_req *r);
void webhooks_messenger_events(struct api_req *r);

void oauth_slack_start(struct api_req *r);
void oauth_slack_callback(struct api_req *r);

void openapi_serve(struct api_req *r);
void api_not_implemented(struct api_req *r);

#endif
