/* oauth.c: see oauth.h. Codes live for ten minutes and work once, as Slack's do.
 * Approving an install grants the scopes the app asked for in addition to those
 * it had: Slack's grants only grow until the app is uninstalled. */
#include "oauth.h"

#include "api.h"
#include "buf.h"
#include "rng.h"
#include "scopes.h"
#include "strmap.h"

#include "bcrm/clock.h"
#include "bcrm/http.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CODE_TTL_MS (10 * 60 * 1000)
#define CODES_MAX 4096 /* a cap, so a loop in a test cannot eat the memory */

struct oauth_code {
    char code[48];
    struct sim_workspace *ws;
    char *redirect_uri; /* NULL when the authorize request had none */
    int64_t expires_ms;
};

static struct sim_oauth_app oauth_config;
static pthread_mutex_t oauth_lock = PTHREAD_MUTEX_INITIALIZER;
static struct strmap *oauth_codes;

void oauth_init(const struct sim_oauth_app *app)
{
    oauth_config = *app;
    oauth_codes = strmap_new(64);
    if (oauth_codes == NULL) {
        abort(); /* at start-up only: nothing sensible to run without it */
    }
}

const struct sim_oauth_app *oauth_app(void)
{
    return &oauth_config;
}

static void free_code(void *ctx, const char *key, void *value)
{
    (void)ctx;
    (void)key;
    struct oauth_code *c = value;
    free(c->redirect_uri);
    free(c);
}

void oauth_reset(void)
{
    pthread_mutex_lock(&oauth_lock);
    strmap_foreach(oauth_codes, free_code, NULL);
    strmap_clear(oauth_codes);
    pthread_mutex_unlock(&oauth_lock);
}

/* Appends key=value to a URL, percent-encoding the value. */
static void url_append(struct buf *b, char *sep, const char *key, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    buf_printf(b, "%c%s=", *sep, key);
    *sep = '&';
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p) != NULL) {
            buf_append(b, (const char *)p, 1);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_append(b, esc, 3);
        }
    }
}

void oauth_authorize(struct sim *sim, const struct http_request *req, struct http_response *resp)
{
    const char *client_id = http_query(req, "client_id");
    const char *redirect_uri = http_query(req, "redirect_uri");
    const char *state = http_query(req, "state");
    const char *team = http_query(req, "team");
    const char *deny = http_query(req, "deny");
    const char *scope = http_query(req, "scope");
    if (client_id == NULL || strcmp(client_id, oauth_config.client_id) != 0) {
        http_respond_problem(resp, 400, "Bad Request", "unknown client_id");
        return;
    }
    uint64_t asked = 0;
    char err[160];
    if (scope != NULL && scopes_parse(scope, &asked, err, sizeof(err)) != 0) {
        /* Slack shows an "invalid_scope" page and does not redirect. */
        http_respond_problem(resp, 400, "Bad Request", "invalid_scope: %s", err);
        return;
    }
    if (redirect_uri == NULL || strncmp(redirect_uri, "http", 4) != 0) {
        http_respond_problem(resp, 400, "Bad Request", "redirect_uri is missing or not http(s)");
        return;
    }
    struct sim_workspace *ws =
        team && team[0] ? strmap_get(sim->pop->workspace_by_team, team) : &sim->pop->workspaces[0];
    if (ws == NULL) {
        http_respond_problem(resp, 400, "Bad Request", "no workspace with team_id %s", team);
        return;
    }
    struct buf location;
    buf_init(&location, 256);
    buf_puts(&location, redirect_uri);
    char sep = strchr(redirect_uri, '?') ? '&' : '?';
    if (deny != NULL && strcmp(deny, "1") == 0) {
        url_append(&location, &sep, "error", "access_denied");
    } else {
        struct oauth_code *c = calloc(1, sizeof(*c));
        char tail[33];
        rng_token_lower(tail, rng_thread_u64(), 32);
        if (c != NULL) {
            snprintf(c->code, sizeof(c->code), "%u.%s", ws->index + 1, tail);
            c->ws = ws;
            c->redirect_uri = strdup(redirect_uri);
            c->expires_ms = clock_wall_ms() + CODE_TTL_MS;
        }
        int stored = -1;
        pthread_mutex_lock(&oauth_lock);
        if (c != NULL && c->redirect_uri != NULL && strmap_size(oauth_codes) < CODES_MAX) {
            stored = strmap_put(oauth_codes, c->code, c);
        }
        pthread_mutex_unlock(&oauth_lock);
        if (stored != 0) {
            if (c != NULL) {
                free_code(NULL, NULL, c);
            }
            buf_free(&location);
            http_respond_problem(resp, 503, "Service Unavailable", "too many pending codes");
            return;
        }
        url_append(&location, &sep, "code", c->code);
        atomic_fetch_or(&ws->scopes, asked);
    }
    if (state != NULL) {
        url_append(&location, &sep, "state", state);
    }
    size_t len;
    char *url = buf_take(&location, &len);
    if (url == NULL) {
        http_respond_problem(resp, 500, "Internal Server Error", "out of memory");
        return;
    }
    http_respond(resp, 302, "text/plain", "", 0);
    http_add_header(resp, "Location", url);
    free(url);
}

static int b64_value(char ch)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = ch ? strchr(b64, ch) : NULL;
    return p ? (int)(p - b64) : -1;
}

/* Decodes "Authorization: Basic base64(id:secret)" into out; 0 or -1. */
static int basic_credentials(const char *header, char *out, size_t outlen)
{
    if (header == NULL || strncasecmp(header, "Basic ", 6) != 0) {
        return -1;
    }
    const char *p = header + 6;
    size_t o = 0;
    unsigned bits = 0;
    int nbits = 0;
    for (; *p && *p != '='; p++) {
        int v = b64_value(*p);
        if (v < 0) {
            return -1;
        }
        bits = bits << 6 | (unsigned)v;
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            if (o + 1 >= outlen) {
                return -1;
            }
            out[o++] = (char)((bits >> nbits) & 0xff);
        }
    }
    out[o] = '\0';
    return 0;
}

void method_oauth_v2_access(struct api_call *c)
{
    char creds[256];
    const char *client_id = params_get(&c->params, "client_id");
    const char *client_secret = params_get(&c->params, "client_secret");
    if (basic_credentials(http_header(c->req, "Authorization"), creds, sizeof(creds)) == 0) {
        char *colon = strchr(creds, ':');
        if (colon != NULL) {
            *colon = '\0';
            client_id = creds;
            client_secret = colon + 1;
        }
    }
    const char *code = params_get(&c->params, "code");
    const char *redirect_uri = params_get(&c->params, "redirect_uri");
    if (client_id == NULL || strcmp(client_id, oauth_config.client_id) != 0) {
        api_reply_error(c, "invalid_client_id");
        return;
    }
    if (client_secret == NULL || strcmp(client_secret, oauth_config.client_secret) != 0) {
        api_reply_error(c, "bad_client_secret");
        return;
    }
    if (code == NULL) {
        api_reply_error(c, "invalid_code");
        return;
    }
    struct sim_workspace *ws = NULL;
    const char *error = NULL;
    pthread_mutex_lock(&oauth_lock);
    struct oauth_code *oc = strmap_get(oauth_codes, code);
    if (oc == NULL || oc->expires_ms < c->now_ms) {
        error = "invalid_code";
    } else if (redirect_uri != NULL && strcmp(redirect_uri, oc->redirect_uri) != 0) {
        error = "bad_redirect_uri";
    } else {
        ws = oc->ws;
    }
    if (oc != NULL && error == NULL) {
        /* Used once. The map has no delete, so the code is made unusable. */
        oc->expires_ms = 0;
    }
    pthread_mutex_unlock(&oauth_lock);
    if (error != NULL) {
        api_reply_error(c, error);
        return;
    }
    if (atomic_load(&ws->revoked)) {
        atomic_store(&ws->revoked, false); /* reinstalling issues a working token again */
    }
    const struct sim_user *installer = ws->user_count > 2 ? &ws->users[1] : ws->bot_user;
    char granted[SCOPES_TEXT_MAX];
    scopes_format(atomic_load(&ws->scopes), granted, sizeof(granted));
    api_reply(c, json_pack("{s:b, s:s, s:{s:s}, s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:n, s:b}", "ok",
                           1, "app_id", ws->app_id, "authed_user", "id", installer->id, "scope",
                           granted, "token_type", "bot", "access_token", ws->token, "bot_user_id",
                           ws->bot_user->id, "team", "id", ws->team_id, "name", ws->name,
                           "enterprise", "is_enterprise_install", 0));
}
