/* token_store.c: SQL of bot_tokens. bytea values travel as '\x<hex>' text. */
#include "token_store.h"

#include "bcrm/db.h"
#include "bcrm/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *sql_bytea(const uint8_t *data, size_t n)
{
    char *s = malloc(2 * n + 3);
    if (s != NULL) {
        s[0] = '\\';
        s[1] = 'x';
        hex_encode(s + 2, data, n);
    }
    return s;
}

void token_row_clear(struct token_row *row)
{
    if (row->ciphertext != NULL) {
        PQfreemem(row->ciphertext);
    }
    memset(row, 0, sizeof(*row));
}

int token_store_upsert(PGconn *db, const struct token_binding *binding,
                       const uint8_t nonce[TOKEN_NONCE_BYTES], const uint8_t *ct, size_t ctlen)
{
    char version[16];
    int rv = -1;
    snprintf(version, sizeof(version), "%u", (unsigned)binding->key_version);
    char *nonce_hex = sql_bytea(nonce, TOKEN_NONCE_BYTES);
    char *ct_hex = sql_bytea(ct, ctlen);
    if (nonce_hex == NULL || ct_hex == NULL) {
        goto out;
    }
    const char *p[] = {binding->bot_id, binding->org_id, binding->platform,
                       version,         nonce_hex,       ct_hex};
    /* A bot id belongs to one org for good: a store naming another org changes
     * nothing, rather than let one org overwrite another's token. */
    PGresult *res =
        db_query(db, "store token",
                 "INSERT INTO bot_tokens (bot_id, org_id, platform, key_version, nonce, ciphertext)"
                 " VALUES ($1, $2, $3, $4, $5::bytea, $6::bytea)"
                 " ON CONFLICT (bot_id) DO UPDATE SET platform = EXCLUDED.platform,"
                 " key_version = EXCLUDED.key_version, nonce = EXCLUDED.nonce,"
                 " ciphertext = EXCLUDED.ciphertext, updated_at = now()"
                 " WHERE bot_tokens.org_id = EXCLUDED.org_id",
                 6, p);
    if (res == NULL) {
        goto out;
    }
    rv = strcmp(PQcmdTuples(res), "1") == 0 ? 1 : 0;
    PQclear(res);
out:
    free(nonce_hex);
    free(ct_hex);
    return rv;
}

/* Fills row from row i of res, whose columns are bot_id, org_id, platform,
 * key_version, nonce, ciphertext, version_known, min_decryption_version. 0, or
 * -1 for a malformed row (row cleared). */
static int row_read(PGresult *res, int i, struct token_row *row)
{
    int rv = -1;
    size_t nonce_len = 0;
    memset(row, 0, sizeof(*row));
    uint8_t *nonce = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 4), &nonce_len);
    row->ciphertext =
        PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 5), &row->ciphertext_len);
    long version = strtol(PQgetvalue(res, i, 3), NULL, 10);
    if (nonce != NULL && nonce_len == TOKEN_NONCE_BYTES && row->ciphertext != NULL && version > 0 &&
        strlen(PQgetvalue(res, i, 0)) < sizeof(row->bot_id) &&
        strlen(PQgetvalue(res, i, 1)) < sizeof(row->org_id) &&
        strlen(PQgetvalue(res, i, 2)) < sizeof(row->platform)) {
        memcpy(row->nonce, nonce, TOKEN_NONCE_BYTES);
        snprintf(row->bot_id, sizeof(row->bot_id), "%s", PQgetvalue(res, i, 0));
        snprintf(row->org_id, sizeof(row->org_id), "%s", PQgetvalue(res, i, 1));
        snprintf(row->platform, sizeof(row->platform), "%s", PQgetvalue(res, i, 2));
        row->key_version = (uint32_t)version;
        row->version_known = strcmp(PQgetvalue(res, i, 6), "t") == 0;
        row->min_decryption_version = (uint32_t)strtoul(PQgetvalue(res, i, 7), NULL, 10);
        rv = 0;
    }
    if (nonce != NULL) {
        PQfreemem(nonce);
    }
    if (rv != 0) {
        token_row_clear(row);
    }
    return rv;
}

/* The columns row_read wants, from bot_tokens t. */
#define ROW_COLUMNS                                                                                \
    "t.bot_id::text, t.org_id::text, t.platform, t.key_version, t.nonce, t.ciphertext,"            \
    " EXISTS (SELECT 1 FROM vault_keys k WHERE k.version = t.key_version),"                        \
    " (SELECT min_decryption_version FROM vault_policy)"

int token_store_fetch(PGconn *db, const char *bot_id, struct token_row *row)
{
    memset(row, 0, sizeof(*row));
    const char *p[] = {bot_id};
    PGresult *res = db_query(db, "fetch token",
                             "SELECT " ROW_COLUMNS " FROM bot_tokens t WHERE t.bot_id = $1", 1, p);
    if (res == NULL) {
        return -1;
    }
    int rv = 0;
    if (PQntuples(res) == 1) {
        rv = row_read(res, 0, row) == 0 ? 1 : -1;
    }
    PQclear(res);
    return rv;
}

int token_store_lock(PGconn *db, const char *const *bot_ids, int n)
{
    /* A text array of uuids: '{id,id}'. The ids were checked as uuids already. */
    char list[8 + 40 * 4];
    size_t used = 0;
    if (n < 1 || n > 4) {
        return -1;
    }
    list[used++] = '{';
    for (int i = 0; i < n; i++) {
        used +=
            (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? "," : "", bot_ids[i]);
    }
    snprintf(list + used, sizeof(list) - used, "}");
    const char *p[] = {list};
    PGresult *res = db_query(db, "lock tokens",
                             "SELECT bot_id FROM bot_tokens WHERE bot_id = ANY($1::uuid[])"
                             " ORDER BY bot_id FOR UPDATE",
                             1, p);
    if (res == NULL) {
        return -1;
    }
    PQclear(res);
    return 0;
}

int token_store_delete(PGconn *db, const char *org_id, const char *bot_id)
{
    const char *p[] = {bot_id, org_id};
    PGresult *res = db_query(db, "destroy token",
                             "DELETE FROM bot_tokens WHERE bot_id = $1 AND org_id = $2", 2, p);
    if (res == NULL) {
        return -1;
    }
    int n = atoi(PQcmdTuples(res));
    PQclear(res);
    return n;
}

int64_t token_store_count(PGconn *db)
{
    PGresult *res = db_query(db, "count tokens", "SELECT count(*) FROM bot_tokens", 0, NULL);
    if (res == NULL) {
        return -1;
    }
    int64_t n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}

int token_store_behind(PGconn *db, uint32_t current, const char *after_bot_id, int limit,
                       struct token_row **rows, size_t *n)
{
    char version[16], lim[16];
    snprintf(version, sizeof(version), "%u", (unsigned)current);
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *p[] = {version, after_bot_id, lim};
    *rows = NULL;
    *n = 0;
    /* FOR UPDATE waits for a store in flight on a row, then re-checks the row: one
     * the store has just sealed under the current version drops out. */
    PGresult *res = db_query(db, "rewrap batch",
                             "SELECT " ROW_COLUMNS " FROM bot_tokens t WHERE t.key_version < $1"
                             " AND ($2::uuid IS NULL OR t.bot_id > $2::uuid)"
                             " ORDER BY t.bot_id LIMIT $3 FOR UPDATE OF t",
                             3, p);
    if (res == NULL) {
        return -1;
    }
    int count = PQntuples(res);
    struct token_row *list = calloc(count > 0 ? (size_t)count : 1, sizeof(*list));
    if (list == NULL) {
        PQclear(res);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        /* A malformed row stays cleared (key_version 0): the caller reports it. */
        row_read(res, i, &list[i]);
        if (list[i].key_version == 0) {
            snprintf(list[i].bot_id, sizeof(list[i].bot_id), "%s", PQgetvalue(res, i, 0));
        }
    }
    PQclear(res);
    *rows = list;
    *n = (size_t)count;
    return 0;
}

int token_store_replace(PGconn *db, const struct token_row *old, uint32_t new_version,
                        const uint8_t nonce[TOKEN_NONCE_BYTES], const uint8_t *ct, size_t ctlen)
{
    char old_version[16], version[16];
    int rv = -1;
    snprintf(old_version, sizeof(old_version), "%u", (unsigned)old->key_version);
    snprintf(version, sizeof(version), "%u", (unsigned)new_version);
    char *old_nonce_hex = sql_bytea(old->nonce, TOKEN_NONCE_BYTES);
    char *nonce_hex = sql_bytea(nonce, TOKEN_NONCE_BYTES);
    char *ct_hex = sql_bytea(ct, ctlen);
    if (old_nonce_hex == NULL || nonce_hex == NULL || ct_hex == NULL) {
        goto out;
    }
    const char *p[] = {old->bot_id, old_version, old_nonce_hex, version, nonce_hex, ct_hex};
    PGresult *res = db_query(db, "rewrap token",
                             "UPDATE bot_tokens SET key_version = $4, nonce = $5::bytea,"
                             " ciphertext = $6::bytea, updated_at = now()"
                             " WHERE bot_id = $1 AND key_version = $2 AND nonce = $3::bytea",
                             6, p);
    if (res == NULL) {
        goto out;
    }
    rv = strcmp(PQcmdTuples(res), "1") == 0 ? 1 : 0;
    PQclear(res);
out:
    free(old_nonce_hex);
    free(nonce_hex);
    free(ct_hex);
    return rv;
}

int64_t token_store_count_below(PGconn *db, uint32_t version)
{
    char v[16];
    snprintf(v, sizeof(v), "%u", (unsigned)version);
    const char *p[] = {v};
    PGresult *res = db_query(db, "count tokens below version",
                             "SELECT count(*) FROM bot_tokens WHERE key_version < $1", 1, p);
    if (res == NULL) {
        return -1;
    }
    int64_t n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}
