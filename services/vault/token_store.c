/* token_store.c: SQL of the vault. bytea values travel as '\x<hex>' text. */
#include "token_store.h"

#include "bcrm/db.h"
#include "bcrm/keys.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* '\x' and the hex of n bytes into a malloc'd string. */
static char *bytea_param(const uint8_t *data, size_t n)
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
    char *nonce_hex = bytea_param(nonce, TOKEN_NONCE_BYTES);
    char *ct_hex = bytea_param(ct, ctlen);
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

int token_store_fetch(PGconn *db, const char *bot_id, struct token_row *row)
{
    memset(row, 0, sizeof(*row));
    const char *p[] = {bot_id};
    PGresult *res = db_query(db, "fetch token",
                             "SELECT org_id::text, platform, key_version, nonce, ciphertext"
                             " FROM bot_tokens WHERE bot_id = $1",
                             1, p);
    if (res == NULL) {
        return -1;
    }
    int rv = 0;
    if (PQntuples(res) == 1) {
        rv = -1;
        size_t nonce_len = 0;
        uint8_t *nonce = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 3), &nonce_len);
        row->ciphertext =
            PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 4), &row->ciphertext_len);
        long version = strtol(PQgetvalue(res, 0, 2), NULL, 10);
        if (nonce != NULL && nonce_len == TOKEN_NONCE_BYTES && row->ciphertext != NULL &&
            version > 0 && strlen(PQgetvalue(res, 0, 0)) < sizeof(row->org_id) &&
            strlen(PQgetvalue(res, 0, 1)) < sizeof(row->platform)) {
            memcpy(row->nonce, nonce, TOKEN_NONCE_BYTES);
            snprintf(row->org_id, sizeof(row->org_id), "%s", PQgetvalue(res, 0, 0));
            snprintf(row->platform, sizeof(row->platform), "%s", PQgetvalue(res, 0, 1));
            row->key_version = (uint32_t)version;
            rv = 1;
        }
        if (nonce != NULL) {
            PQfreemem(nonce);
        }
        if (rv != 1) {
            token_row_clear(row);
        }
    }
    PQclear(res);
    return rv;
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

int audit_insert(PGconn *db, const struct audit_entry *e)
{
    const char *p[] = {e->caller, e->role,    e->operation, e->org_id,
                       e->bot_id, e->outcome, e->request_id};
    return db_exec(db, "audit",
                   "INSERT INTO vault_audit (caller, role, operation, org_id, bot_id, outcome,"
                   " request_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                   7, p);
}

int vault_keys_init(PGconn *db, const struct token_keyring *kr, uint32_t *current, char *err,
                    size_t errlen)
{
    uint8_t check[TOKEN_KEY_CHECK_BYTES];
    int rv = -1;
    PGresult *res = NULL;
    if (token_key_check(kr, 1, check) != 0) {
        snprintf(err, errlen, "cannot derive key version 1");
        return -1;
    }
    char *check_hex = bytea_param(check, sizeof(check));
    const char *p[] = {check_hex};
    /* Two vaults starting at once on an empty table: one insert wins, the other
     * does nothing and then checks the winner's row like any later start. */
    if (check_hex == NULL ||
        db_exec(db, "record key version",
                "INSERT INTO vault_keys (version, key_check, state)"
                " SELECT 1, $1::bytea, 'current' WHERE NOT EXISTS (SELECT 1 FROM vault_keys)"
                " ON CONFLICT DO NOTHING",
                1, p) != 0) {
        snprintf(err, errlen, "vault_keys: cannot record key version 1");
        goto out;
    }
    res = db_query(db, "read key versions",
                   "SELECT version, key_check, state FROM vault_keys ORDER BY version", 0, NULL);
    if (res == NULL) {
        snprintf(err, errlen, "vault_keys: cannot read key versions");
        goto out;
    }
    *current = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        uint32_t version = (uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10);
        size_t stored_len = 0;
        uint8_t *stored =
            PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 1), &stored_len);
        bool match = stored != NULL && stored_len == sizeof(check) &&
                     token_key_check(kr, version, check) == 0 &&
                     sodium_memcmp(stored, check, sizeof(check)) == 0;
        if (stored != NULL) {
            PQfreemem(stored);
        }
        if (!match) {
            snprintf(err, errlen,
                     "BCRM_VAULT_MASTER_KEY_FILE: root key does not match key version %u "
                     "recorded in vault_keys; the tokens were sealed with another root key",
                     (unsigned)version);
            goto out;
        }
        if (strcmp(PQgetvalue(res, i, 2), "current") == 0) {
            *current = version;
        }
    }
    if (*current == 0) {
        snprintf(err, errlen, "vault_keys: no current key version");
        goto out;
    }
    rv = 0;
out:
    PQclear(res);
    free(check_hex);
    return rv;
}
