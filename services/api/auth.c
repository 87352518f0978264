/* auth.c: sessions, API keys, org roles, CSRF and passwords (see auth.h). */
#include "auth.h"

#include "bcrm/db.h"
#include "bcrm/keys.h"
#include "bcrm/log.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void auth_new_secret(char *out)
{
    uint8_t raw[32];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(out, AUTH_SECRET_CHARS + 1, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
}

void auth_hash_param(const char *text, char out[68])
{
    uint8_t digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, (const uint8_t *)text, strlen(text));
    out[0] = '\\';
    out[1] = 'x';
    hex_encode(out + 2, digest, sizeof(digest));
}

int auth_session_create(struct api_req *r, PGconn *conn, const char *account_id, char *cookie,
                        char *csrf)
{
    char hash[68], ttl[32];
    auth_new_secret(cookie);
    auth_new_secret(csrf);
    auth_hash_param(cookie, hash);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)r->api->session_ttl_s);
    const char *p[] = {hash, account_id, csrf, ttl};
    return db_exec(conn, "insert session",
                   "INSERT INTO sessions (token_hash, account_id, csrf_token, expires_at)"
                   " VALUES ($1, $2, $3, now() + make_interval(secs => $4::bigint))",
                   4, p);
}

void auth_set_cookie(struct api_req *r, const char *value)
{
    char header[256];
    if (value != NULL) {
        snprintf(header, sizeof(header),
                 AUTH_SESSION_COOKIE "=%s; Secure; HttpOnly; SameSite=Lax; Path=/; Max-Age=%lld",
                 value, (long long)r->api->session_ttl_s);
    } else {
        snprintf(header, sizeof(header),
                 AUTH_SESSION_COOKIE "=; Secure; HttpOnly; SameSite=Lax; Path=/; Max-Age=0");
    }
    http_add_header(r->resp, "Set-Cookie", header);
}

static int identify_key(struct api_req *r, const char *key)
{
    char hash[68];
    auth_hash_param(key, hash);
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return -1;
    }
    const char *p[] = {hash};
    PGresult *res = db_query(conn, "find api key",
                             "SELECT id, org_id FROM api_keys"
                             " WHERE key_hash = $1 AND revoked_at IS NULL",
                             1, p);
    if (res == NULL) {
        api_internal_error(r);
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        http_add_header(r->resp, "WWW-Authenticate", "Bearer");
        api_problem(r, 401, "Unauthorized", NULL, "the API key is unknown or revoked");
        return -1;
    }
    snprintf(r->api_key_id, sizeof(r->api_key_id), "%s", PQgetvalue(res, 0, 0));
    snprintf(r->key_org_id, sizeof(r->key_org_id), "%s", PQgetvalue(res, 0, 1));
    r->auth = AUTH_API_KEY;
    PQclear(res);
    return 0;
}

static int identify_session(struct api_req *r, const char *cookie)
{
    if (strlen(cookie) != AUTH_SECRET_CHARS) {
        return 0; /* not one of ours: treat as no cookie */
    }
    char hash[68];
    auth_hash_param(cookie, hash);
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return -1;
    }
    const char *p[] = {hash};
    PGresult *res = db_query(conn, "find session",
                             "SELECT account_id, csrf_token FROM sessions"
                             " WHERE token_hash = $1 AND expires_at > now()",
                             1, p);
    if (res == NULL) {
        api_internal_error(r);
        return -1;
    }
    if (PQntuples(res) == 1) {
        snprintf(r->account_id, sizeof(r->account_id), "%s", PQgetvalue(res, 0, 0));
        snprintf(r->csrf_token, sizeof(r->csrf_token), "%s", PQgetvalue(res, 0, 1));
        snprintf(r->session_hash_hex, sizeof(r->session_hash_hex), "%.64s", hash + 2);
        r->auth = AUTH_SESSION;
    }
    PQclear(res);
    return 0;
}

int auth_identify(struct api_req *r)
{
    const char *authz = http_header(r->http, "Authorization");
    if (authz != NULL) {
        if (strncasecmp(authz, "Bearer ", 7) != 0) {
            http_add_header(r->resp, "WWW-Authenticate", "Bearer");
            api_problem(r, 401, "Unauthorized", NULL,
                        "the Authorization header must be \"Bearer bcrm_...\"");
            return -1;
        }
        const char *key = authz + 7;
        while (*key == ' ') {
            key++;
        }
        if (strncmp(key, AUTH_KEY_PREFIX, strlen(AUTH_KEY_PREFIX)) != 0 ||
            strlen(key) != strlen(AUTH_KEY_PREFIX) + AUTH_SECRET_CHARS) {
            http_add_header(r->resp, "WWW-Authenticate", "Bearer");
            api_problem(r, 401, "Unauthorized", NULL, "the API key is malformed");
            return -1;
        }
        return identify_key(r, key);
    }
    const char *cookie = http_cookie(r->http, AUTH_SESSION_COOKIE);
    if (cookie != NULL) {
        return identify_session(r, cookie);
    }
    return 0;
}

int auth_org_role(struct api_req *r, const char *org_id, enum api_role *role)
{
    *role = ROLE_NONE;
    if (!api_is_uuid(org_id)) {
        return 0;
    }
    if (r->auth == AUTH_API_KEY) {
        if (strcasecmp(org_id, r->key_org_id) == 0) {
            *role = ROLE_ADMIN;
        }
        return 0;
    }
    if (r->auth != AUTH_SESSION) {
        return 0;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return -1;
    }
    const char *p[] = {org_id, r->account_id};
    PGresult *res =
        db_query(conn, "find membership",
                 "SELECT role FROM memberships WHERE org_id = $1 AND account_id = $2", 2, p);
    if (res == NULL) {
        api_internal_error(r);
        return -1;
    }
    if (PQntuples(res) == 1) {
        *role = auth_role_parse(PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return 0;
}

/* The authority of an origin ("https://Host:8080" gives "Host:8080"). */
static const char *origin_authority(const char *origin)
{
    const char *sep = strstr(origin, "://");
    return sep ? sep + 3 : NULL;
}

bool auth_csrf_ok(struct api_req *r)
{
    if (r->auth != AUTH_SESSION) {
        return true;
    }
    const char *origin = http_header(r->http, "Origin");
    const char *host = http_header(r->http, "Host");
    if (origin != NULL && host != NULL) {
        const char *authority = origin_authority(origin);
        if (authority != NULL && strcasecmp(authority, host) == 0) {
            return true;
        }
    }
    const char *token = http_header(r->http, "X-CSRF-Token");
    size_t len = strlen(r->csrf_token);
    return token != NULL && len > 0 && strlen(token) == len &&
           sodium_memcmp(token, r->csrf_token, len) == 0;
}

static const char *const role_names[] = {"none", "viewer", "editor", "admin", "owner"};

const char *auth_role_name(enum api_role role)
{
    return role_names[role];
}

enum api_role auth_role_parse(const char *name)
{
    for (int i = ROLE_VIEWER; i <= ROLE_OWNER; i++) {
        if (strcmp(role_names[i], name) == 0) {
            return (enum api_role)i;
        }
    }
    return ROLE_NONE;
}

int auth_password_hash(const struct api_ctx *api, const char *password, char *out)
{
    return crypto_pwhash_str_alg(out, password, strlen(password), api->pwhash_opslimit,
                                 api->pwhash_memlimit, crypto_pwhash_ALG_ARGON2ID13);
}

bool auth_password_verify(const char *hash, const char *password)
{
    return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[crypto_pwhash_STRBYTES];
static const struct api_ctx *dummy_api;

static void dummy_init(void)
{
    if (auth_password_hash(dummy_api, "not a password anyone has", dummy_hash) != 0) {
        dummy_hash[0] = '\0';
    }
}

void auth_password_dummy_verify(const struct api_ctx *api, const char *password)
{
    dummy_api = api;
    pthread_once(&dummy_once, dummy_init);
    if (dummy_hash[0] != '\0') {
        (void)auth_password_verify(dummy_hash, password);
    }
}
