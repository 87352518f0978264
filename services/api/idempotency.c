/* idempotency.c: claims, replays and releases of Idempotency-Keys. */
#include "idempotency.h"

#include "bcrm/db.h"
#include "bcrm/keys.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A claim older than this belongs to a request that died; it may be taken over. */
#define IDEM_STALE_CLAIM "5 minutes"
/* How long an answer is replayed. */
#define IDEM_KEEP "24 hours"

/* What tells one request from another under the same key: the method, the path
 * and the body. The hash stays in the database for a day, and a digest of a body
 * that holds a token is a digest of the token, so a body with secret fields
 * (api_wipe_secret_fields) counts without them, as its canonical JSON: a repeat
 * that differs only in its token replays the first answer. */
static void request_hash(const struct api_req *r, char out[68])
{
    crypto_hash_sha256_state st;
    uint8_t digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const uint8_t *)r->http->method, strlen(r->http->method) + 1);
    crypto_hash_sha256_update(&st, (const uint8_t *)r->http->path, strlen(r->http->path) + 1);
    json_t *body = json_loadb(r->http->body, r->http->body_len, 0, NULL);
    char *canonical = NULL;
    if (json_is_object(body) && api_wipe_secret_fields(body, true) &&
        (canonical = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS)) != NULL) {
        crypto_hash_sha256_update(&st, (const uint8_t *)canonical, strlen(canonical));
        free(canonical);
    } else {
        crypto_hash_sha256_update(&st, (const uint8_t *)r->http->body, r->http->body_len);
    }
    api_wipe_secret_fields(body, false); /* when it was no object, or not dumped */
    json_decref(body);
    crypto_hash_sha256_final(&st, digest);
    out[0] = '\\';
    out[1] = 'x';
    hex_encode(out + 2, digest, sizeof(digest));
}

static bool key_is_valid(const char *key)
{
    size_t len = strlen(key);
    if (len == 0 || len > 255) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (key[i] < 0x21 || key[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

/* Tries to claim the key; 1 if claimed, 0 if someone holds it, -1 on error. */
static int claim(PGconn *conn, const char *org_id, const char *key, const char *hash)
{
    const char *p[] = {org_id, key, hash};
    PGresult *res =
        db_query(conn, "claim idempotency key",
                 "INSERT INTO idempotency_keys AS k (org_id, key, request_hash, status, body)"
                 " VALUES ($1, $2, $3, 0, '')"
                 " ON CONFLICT (org_id, key) DO UPDATE SET request_hash = $3, created_at = now()"
                 "   WHERE k.status = 0 AND k.created_at < now() - interval '" IDEM_STALE_CLAIM "'"
                 " RETURNING 1",
                 3, p);
    if (res == NULL) {
        return -1;
    }
    int claimed = PQntuples(res) == 1;
    PQclear(res);
    return claimed;
}

int idem_begin(struct api_req *r, struct idem_state *st)
{
    st->claimed = false;
    const char *key = http_header(r->http, "Idempotency-Key");
    if (key == NULL) {
        return 0;
    }
    if (!key_is_valid(key)) {
        api_problem(r, 400, "Invalid header", "Idempotency-Key",
                    "Idempotency-Key must be 1 to "
                    "255 visible ASCII characters");
        return 1;
    }
    snprintf(st->key, sizeof(st->key), "%s", key);
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return 1;
    }
    /* Keys are kept for a day (as Stripe does): long enough for any client retry. */
    const char *ps[] = {r->org_id};
    db_exec(conn, "sweep idempotency keys",
            "DELETE FROM idempotency_keys WHERE org_id = $1"
            " AND created_at < now() - interval '" IDEM_KEEP "'",
            1, ps);
    char hash[68];
    request_hash(r, hash);
    int rv = claim(conn, r->org_id, key, hash);
    if (rv < 0) {
        api_internal_error(r);
        return 1;
    }
    if (rv == 1) {
        st->claimed = true;
        return 0;
    }
    const char *p[] = {r->org_id, key, hash};
    PGresult *res = db_query(conn, "read idempotency key",
                             "SELECT status, body, request_hash = $3 FROM idempotency_keys"
                             " WHERE org_id = $1 AND key = $2",
                             3, p);
    if (res == NULL) {
        api_internal_error(r);
        return 1;
    }
    if (PQntuples(res) != 1) {
        /* Released between our claim and this read: the client may simply retry. */
        api_problem(r, 409, "Conflict", "Idempotency-Key",
                    "a request with this Idempotency-Key just finished; retry it");
    } else if (strcmp(PQgetvalue(res, 0, 2), "t") != 0) {
        api_problem(r, 422, "Idempotency-Key reused", "Idempotency-Key",
                    "this Idempotency-Key was used with a different request");
    } else if (strcmp(PQgetvalue(res, 0, 0), "0") == 0) {
        api_problem(r, 409, "Conflict", "Idempotency-Key",
                    "a request with this Idempotency-Key is still in progress");
    } else {
        const char *body = PQgetvalue(res, 0, 1);
        http_respond(r->resp, atoi(PQgetvalue(res, 0, 0)), "application/json", body, strlen(body));
        http_add_header(r->resp, "Idempotent-Replayed", "true");
    }
    PQclear(res);
    return 1;
}

void idem_finish(struct api_req *r, struct idem_state *st)
{
    if (!st->claimed) {
        return;
    }
    PGconn *conn = api_db(r);
    if (conn == NULL) {
        return;
    }
    int status = r->resp->status;
    if (status >= 200 && status < 300) {
        char code[8];
        snprintf(code, sizeof(code), "%d", status);
        const char *p[] = {r->org_id, st->key, code, r->resp->body ? r->resp->body : ""};
        db_exec(conn, "store idempotent answer",
                "UPDATE idempotency_keys SET status = $3, body = $4"
                " WHERE org_id = $1 AND key = $2",
                4, p);
    } else {
        const char *p[] = {r->org_id, st->key};
        db_exec(conn, "release idempotency key",
                "DELETE FROM idempotency_keys WHERE org_id = $1 AND key = $2 AND status = 0", 2, p);
    }
}
