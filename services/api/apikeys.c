/* apikeys.c: org API keys. The key is "bcrm_" and 43 random characters; it is
 * shown once, in the answer to its creation, and stored only as its SHA-256.
 * Revoking sets revoked_at, which the next request's lookup already honours. */
#include "api.h"

#include "auth.h"
#include "bcrm/db.h"
#include "bcrm/log.h"
#include "jsonv.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* Characters kept in clear to recognise a key in a list ("bcrm_" and 6 more). */
#define KEY_PREFIX_CHARS 11

void apikeys_create(struct api_req *r)
{
    static const char *const keys[] = {"name", NULL};
    struct jv v = {0};
    json_t *body = api_body_object(r);
    if (body == NULL) {
        return;
    }
    jv_only_keys(&v, body, "", keys);
    const char *name = jv_string(&v, body, "name", "name", true, 1, 200);
    if (v.failed) {
        api_problem(r, 422, "Invalid field", v.field, "%s %s", v.field, v.message);
        json_decref(body);
        return;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        json_decref(body);
        return;
    }
    char key[sizeof(AUTH_KEY_PREFIX) + AUTH_SECRET_CHARS], secret[AUTH_SECRET_CHARS + 1];
    char hash[68], prefix[KEY_PREFIX_CHARS + 1];
    auth_new_secret(secret);
    snprintf(key, sizeof(key), AUTH_KEY_PREFIX "%s", secret);
    sodium_memzero(secret, sizeof(secret));
    auth_hash_param(key, hash);
    memcpy(prefix, key, KEY_PREFIX_CHARS);
    prefix[KEY_PREFIX_CHARS] = '\0';
    const char *p[] = {r->org_id, name, hash, prefix,
                       r->auth == AUTH_SESSION ? r->account_id : NULL};
    PGresult *res = db_query(conn, "insert api key",
                             "INSERT INTO api_keys (org_id, name, key_hash, prefix, created_by)"
                             " VALUES ($1, $2, $3, $4, $5) RETURNING id, " API_TS("created_at"),
                             5, p);
    if (res == NULL) {
        api_internal_error(r);
    } else {
        log_info("api key created", "{s:s, s:s}", "org_id", r->org_id, "api_key_id",
                 PQgetvalue(res, 0, 0));
        api_json(r, 201,
                 json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", PQgetvalue(res, 0, 0), "name", name,
                           "key", key, "prefix", prefix, "created_at", PQgetvalue(res, 0, 1)));
        PQclear(res);
    }
    sodium_memzero(key, sizeof(key));
    json_decref(body);
}

void apikeys_list(struct api_req *r)
{
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return;
    }
    const char *p[] = {r->org_id};
    PGresult *res = db_query(conn, "list api keys",
                             "SELECT id, name, prefix, " API_TS("created_at") ", " API_TS(
                                 "revoked_at") ", created_by FROM api_keys WHERE org_id = $1"
                                               " ORDER BY created_at DESC, id DESC",
                             1, p);
    if (res == NULL) {
        api_internal_error(r);
        return;
    }
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        json_t *k = json_pack("{s:s, s:s, s:s, s:s}", "id", PQgetvalue(res, i, 0), "name",
                              PQgetvalue(res, i, 1), "prefix", PQgetvalue(res, i, 2), "created_at",
                              PQgetvalue(res, i, 3));
        json_object_set_new(k, "revoked_at",
                            PQgetisnull(res, i, 4) ? json_null()
                                                   : json_string(PQgetvalue(res, i, 4)));
        json_object_set_new(k, "created_by",
                            PQgetisnull(res, i, 5) ? json_null()
                                                   : json_string(PQgetvalue(res, i, 5)));
        json_array_append_new(list, k);
    }
    PQclear(res);
    api_json(r, 200, json_pack("{s:o}", "api_keys", list));
}

void apikeys_revoke(struct api_req *r)
{
    const char *id = api_param(r, "key");
    if (!api_is_uuid(id)) {
        api_problem(r, 404, "Not Found", NULL, "no API key %s in this org", id);
        return;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return;
    }
    const char *p[] = {r->org_id, id};
    PGresult *res = db_query(conn, "revoke api key",
                             "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
                             " WHERE org_id = $1 AND id = $2 RETURNING id",
                             2, p);
    if (res == NULL) {
        api_internal_error(r);
        return;
    }
    int n = PQntuples(res);
    PQclear(res);
    if (n == 0) {
        api_problem(r, 404, "Not Found", NULL, "no API key %s in this org", id);
        return;
    }
    log_info("api key revoked", "{s:s, s:s}", "org_id", r->org_id, "api_key_id", id);
    api_no_content(r);
}
