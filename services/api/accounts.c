/* accounts.c: signup, login, logout, /v1/me, and org members.
 *
 * An account is a person who logs in to bcrm (a customer), not a bot's user.
 * Names and emails of accounts are never logged.
 */
#include "api.h"

#include "auth.h"
#include "bcrm/db.h"
#include "bcrm/log.h"
#include "jsonv.h"

#include <sodium.h>
#include <string.h>

#define PASSWORD_MIN_CHARS 8
#define PASSWORD_MAX_CHARS 1024

static bool email_is_plausible(const char *email)
{
    /* Deliverability is proven by mail, not by a regex: one '@' with something on
     * each side and a dot in the domain is all we ask. */
    const char *at = strchr(email, '@');
    if (at == NULL || at == email || strchr(at + 1, '@') != NULL) {
        return false;
    }
    const char *dot = strrchr(at + 1, '.');
    if (dot == NULL || dot == at + 1 || dot[1] == '\0') {
        return false;
    }
    for (const char *p = email; *p; p++) {
        if ((unsigned char)*p <= ' ') {
            return false;
        }
    }
    return true;
}

static void answer_invalid(struct api_req *r, const struct jv *v)
{
    api_problem(r, 422, "Invalid field", v->field, "%s %s", v->field, v->message);
}

static json_t *user_json(const char *id, const char *name, const char *email,
                         const char *created_at)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "id", id, "name", name, "email", email, "created_at",
                     created_at);
}

/* The orgs of an account with the account's role in each, oldest first. */
static json_t *orgs_of(PGconn *conn, const char *account_id)
{
    const char *p[] = {account_id};
    PGresult *res = db_query(conn, "orgs of account",
                             "SELECT o.id, o.name, m.role FROM memberships m"
                             " JOIN orgs o ON o.id = m.org_id"
                             " WHERE m.account_id = $1 ORDER BY o.created_at, o.id",
                             1, p);
    if (res == NULL) {
        return NULL;
    }
    json_t *orgs = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        json_array_append_new(orgs,
                              json_pack("{s:s, s:s, s:s}", "id", PQgetvalue(res, i, 0), "name",
                                        PQgetvalue(res, i, 1), "role", PQgetvalue(res, i, 2)));
    }
    PQclear(res);
    return orgs;
}

void accounts_signup(struct api_req *r)
{
    static const char *const keys[] = {"name", "email", "password", "org_name", NULL};
    struct jv v = {0};
    char hash[crypto_pwhash_STRBYTES];
    PGresult *account = NULL, *org = NULL;
    json_t *body = api_body_object(r);
    if (body == NULL) {
        return;
    }
    jv_only_keys(&v, body, "", keys);
    const char *name = jv_string(&v, body, "name", "name", true, 1, 200);
    const char *email = jv_string(&v, body, "email", "email", true, 3, 254);
    const char *password =
        jv_string(&v, body, "password", "password", true, PASSWORD_MIN_CHARS, PASSWORD_MAX_CHARS);
    const char *org_name = jv_string(&v, body, "org_name", "org_name", true, 1, 200);
    if (!v.failed && !email_is_plausible(email)) {
        jv_fail(&v, "email", "is not an email address");
    }
    if (v.failed) {
        answer_invalid(r, &v);
        goto out;
    }
    if (auth_password_hash(r->api, password, hash) != 0) {
        log_error("password hashing failed (out of memory?)", NULL);
        api_internal_error(r);
        goto out;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL || db_begin(conn) != 0) {
        if (conn != NULL) {
            api_internal_error(r);
        }
        goto out;
    }
    const char *pa[] = {email, name, hash};
    account = PQexecParams(conn,
                           "INSERT INTO accounts (email, name, password_hash) VALUES ($1, $2, $3)"
                           " RETURNING id, " API_TS("created_at"),
                           3, NULL, pa, NULL, NULL, 0);
    if (PQresultStatus(account) != PGRES_TUPLES_OK) {
        if (strcmp(db_sqlstate(account), "23505") == 0) {
            api_problem(r, 409, "Conflict", "email", "an account with this email already exists");
        } else {
            log_error("query failed", "{s:s, s:s}", "query", "insert account", "error",
                      PQresultErrorMessage(account));
            api_internal_error(r);
        }
        db_rollback(conn);
        goto out;
    }
    const char *account_id = PQgetvalue(account, 0, 0);
    const char *po[] = {org_name};
    org =
        db_query(conn, "insert org",
                 "INSERT INTO orgs (name) VALUES ($1) RETURNING id, " API_TS("created_at"), 1, po);
    if (org == NULL) {
        db_rollback(conn);
        api_internal_error(r);
        goto out;
    }
    const char *org_id = PQgetvalue(org, 0, 0);
    const char *pm[] = {org_id, account_id};
    char cookie[AUTH_SECRET_CHARS + 1], csrf[AUTH_SECRET_CHARS + 1];
    if (db_exec(conn, "insert owner membership",
                "INSERT INTO memberships (org_id, account_id, role) VALUES ($1, $2, 'owner')", 2,
                pm) != 0 ||
        auth_session_create(r, conn, account_id, cookie, csrf) != 0 || db_commit(conn) != 0) {
        db_rollback(conn);
        api_internal_error(r);
        goto out;
    }
    log_info("account created", "{s:s, s:s}", "account_id", account_id, "org_id", org_id);
    json_t *answer = json_pack("{s:o, s:{s:s, s:s, s:s, s:s}, s:s}", "user",
                               user_json(account_id, name, email, PQgetvalue(account, 0, 1)), "org",
                               "id", org_id, "name", org_name, "role", "owner", "created_at",
                               PQgetvalue(org, 0, 1), "csrf_token", csrf);
    auth_set_cookie(r, cookie);
    sodium_memzero(cookie, sizeof(cookie));
    api_json(r, 201, answer);
out:
    sodium_memzero(hash, sizeof(hash));
    if (password != NULL) {
        sodium_memzero((char *)password, strlen(password));
    }
    PQclear(account);
    PQclear(org);
    json_decref(body);
}

void accounts_login(struct api_req *r)
{
    static const char *const keys[] = {"email", "password", NULL};
    struct jv v = {0};
    PGresult *res = NULL;
    json_t *body = api_body_object(r);
    if (body == NULL) {
        return;
    }
    jv_only_keys(&v, body, "", keys);
    const char *email = jv_string(&v, body, "email", "email", true, 1, 254);
    const char *password = jv_string(&v, body, "password", "password", true, 1, PASSWORD_MAX_CHARS);
    if (v.failed) {
        answer_invalid(r, &v);
        goto out;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        goto out;
    }
    const char *p[] = {email};
    res = db_query(conn, "find account",
                   "SELECT id, name, email, password_hash, " API_TS(
                       "created_at") " FROM accounts WHERE lower(email) = lower($1)",
                   1, p);
    if (res == NULL) {
        api_internal_error(r);
        goto out;
    }
    bool ok;
    if (PQntuples(res) == 1) {
        ok = auth_password_verify(PQgetvalue(res, 0, 3), password);
    } else {
        auth_password_dummy_verify(r->api, password);
        ok = false;
    }
    if (!ok) {
        /* One answer for an unknown email and a wrong password. */
        api_problem(r, 401, "Unauthorized", NULL, "email or password is wrong");
        goto out;
    }
    const char *account_id = PQgetvalue(res, 0, 0);
    /* Expired sessions are never used again; a login sweeps its account's away. */
    const char *pa[] = {account_id};
    db_exec(conn, "sweep sessions",
            "DELETE FROM sessions WHERE account_id = $1 AND expires_at < now()", 1, pa);
    char cookie[AUTH_SECRET_CHARS + 1], csrf[AUTH_SECRET_CHARS + 1];
    if (auth_session_create(r, conn, account_id, cookie, csrf) != 0) {
        api_internal_error(r);
        goto out;
    }
    json_t *orgs = orgs_of(conn, account_id);
    if (orgs == NULL) {
        api_internal_error(r);
        goto out;
    }
    json_t *answer = json_pack(
        "{s:o, s:o, s:s}", "user",
        user_json(account_id, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 4)),
        "orgs", orgs, "csrf_token", csrf);
    auth_set_cookie(r, cookie);
    sodium_memzero(cookie, sizeof(cookie));
    log_info("login", "{s:s}", "account_id", account_id);
    api_json(r, 200, answer);
out:
    if (password != NULL) {
        sodium_memzero((char *)password, strlen(password));
    }
    PQclear(res);
    json_decref(body);
}

void accounts_logout(struct api_req *r)
{
    if (r->auth != AUTH_SESSION) {
        api_problem(r, 400, "Bad Request", NULL,
                    "logout ends a session; API keys are revoked "
                    "with DELETE /v1/orgs/{org}/api-keys/{id}");
        return;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return;
    }
    char hash[68] = "\\x";
    snprintf(hash + 2, sizeof(hash) - 2, "%s", r->session_hash_hex);
    const char *p[] = {hash};
    if (db_exec(conn, "delete session", "DELETE FROM sessions WHERE token_hash = $1", 1, p) != 0) {
        api_internal_error(r);
        return;
    }
    auth_set_cookie(r, NULL);
    api_no_content(r);
}

void accounts_me(struct api_req *r)
{
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return;
    }
    if (r->auth == AUTH_API_KEY) {
        const char *p[] = {r->api_key_id};
        PGresult *res = db_query(conn, "api key of me",
                                 "SELECT k.id, k.name, k.prefix, o.id, o.name FROM api_keys k"
                                 " JOIN orgs o ON o.id = k.org_id WHERE k.id = $1",
                                 1, p);
        if (res == NULL || PQntuples(res) != 1) {
            PQclear(res);
            api_internal_error(r);
            return;
        }
        api_json(r, 200,
                 json_pack("{s:n, s:{s:s, s:s, s:s, s:s}, s:[{s:s, s:s, s:s}]}", "user", "api_key",
                           "id", PQgetvalue(res, 0, 0), "name", PQgetvalue(res, 0, 1), "prefix",
                           PQgetvalue(res, 0, 2), "org_id", PQgetvalue(res, 0, 3), "orgs", "id",
                           PQgetvalue(res, 0, 3), "name", PQgetvalue(res, 0, 4), "role",
                           auth_role_name(ROLE_ADMIN)));
        PQclear(res);
        return;
    }
    const char *p[] = {r->account_id};
    PGresult *res = db_query(
        conn, "account of me",
        "SELECT id, name, email, " API_TS("created_at") " FROM accounts WHERE id = $1", 1, p);
    json_t *orgs = res ? orgs_of(conn, r->account_id) : NULL;
    if (res == NULL || orgs == NULL || PQntuples(res) != 1) {
        PQclear(res);
        json_decref(orgs);
        api_internal_error(r);
        return;
    }
    /* The session's CSRF token too, so that a reloaded dashboard page can send it
     * without keeping it in storage; another origin cannot read this answer. */
    api_json(r, 200,
             json_pack("{s:o, s:o, s:s}", "user",
                       user_json(PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
                                 PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3)),
                       "orgs", orgs, "csrf_token", r->csrf_token));
    PQclear(res);
}

void members_add(struct api_req *r)
{
    static const char *const keys[] = {"email", "role", NULL};
    static const char *const roles[] = {"owner", "admin", "editor", "viewer", NULL};
    struct jv v = {0};
    PGresult *res = NULL;
    json_t *body = api_body_object(r);
    if (body == NULL) {
        return;
    }
    jv_only_keys(&v, body, "", keys);
    const char *email = jv_string(&v, body, "email", "email", true, 1, 254);
    const char *role = jv_enum(&v, body, "role", "role", true, roles);
    if (v.failed) {
        answer_invalid(r, &v);
        goto out;
    }
    /* Nobody hands out more power than they hold. */
    if (auth_role_parse(role) > r->role) {
        api_problem(r, 403, "Forbidden", "role", "only an owner can add an owner");
        goto out;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        goto out;
    }
    const char *p[] = {r->org_id, email, role};
    res = PQexecParams(conn,
                       "INSERT INTO memberships (org_id, account_id, role)"
                       " SELECT $1, a.id, $3 FROM accounts a WHERE lower(a.email) = lower($2)"
                       " RETURNING account_id, " API_TS("created_at"),
                       3, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (strcmp(db_sqlstate(res), "23505") == 0) {
            api_problem(r, 409, "Conflict", "email", "this account is already a member of the org");
        } else {
            log_error("query failed", "{s:s, s:s}", "query", "insert membership", "error",
                      PQresultErrorMessage(res));
            api_internal_error(r);
        }
        goto out;
    }
    if (PQntuples(res) != 1) {
        api_problem(r, 422, "Invalid field", "email",
                    "email: no account has this email; the person must sign up first");
        goto out;
    }
    api_json(r, 201,
             json_pack("{s:s, s:s, s:s, s:s}", "org_id", r->org_id, "account_id",
                       PQgetvalue(res, 0, 0), "role", role, "created_at", PQgetvalue(res, 0, 1)));
out:
    PQclear(res);
    json_decref(body);
}

void members_list(struct api_req *r)
{
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return;
    }
    const char *p[] = {r->org_id};
    PGresult *res =
        db_query(conn, "list members",
                 "SELECT a.id, a.name, a.email, m.role, " API_TS(
                     "m.created_at") " FROM memberships m JOIN accounts a ON a.id = m.account_id"
                                     " WHERE m.org_id = $1 ORDER BY m.created_at, a.id",
                 1, p);
    if (res == NULL) {
        api_internal_error(r);
        return;
    }
    json_t *members = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        json_array_append_new(
            members, json_pack("{s:s, s:s, s:s, s:s, s:s}", "account_id", PQgetvalue(res, i, 0),
                               "name", PQgetvalue(res, i, 1), "email", PQgetvalue(res, i, 2),
                               "role", PQgetvalue(res, i, 3), "created_at", PQgetvalue(res, i, 4)));
    }
    PQclear(res);
    api_json(r, 200, json_pack("{s:o}", "members", members));
}
