/* key_store.c: SQL of vault_keys and vault_policy. */
#include "key_store.h"

#include "token_store.h"

#include "bcrm/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    char *check_hex = sql_bytea(check, sizeof(check));
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

uint32_t key_current_lock(PGconn *db, bool exclusive)
{
    const char *sql = exclusive
                          ? "SELECT version FROM vault_keys WHERE state = 'current' FOR UPDATE"
                          : "SELECT version FROM vault_keys WHERE state = 'current' FOR SHARE";
    /* A statement that waited for a rotation finds the row it waited for no longer
     * current, and the new one invisible to its snapshot: it returns no row. The
     * next statement sees the new current version. */
    for (int attempt = 0; attempt < 3; attempt++) {
        PGresult *res = db_query(db, "lock current key version", sql, 0, NULL);
        if (res == NULL) {
            return 0;
        }
        uint32_t version =
            PQntuples(res) == 1 ? (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10) : 0;
        PQclear(res);
        if (version != 0) {
            return version;
        }
    }
    return 0;
}

int key_rotate(PGconn *db, const struct token_keyring *kr, uint32_t current)
{
    uint8_t check[TOKEN_KEY_CHECK_BYTES];
    char old_version[16], new_version[16];
    int rv = -1;
    if (token_key_check(kr, current + 1, check) != 0) {
        return -1;
    }
    snprintf(old_version, sizeof(old_version), "%u", (unsigned)current);
    snprintf(new_version, sizeof(new_version), "%u", (unsigned)current + 1);
    char *check_hex = sql_bytea(check, sizeof(check));
    const char *p_old[] = {old_version};
    const char *p_new[] = {new_version, check_hex};
    if (check_hex != NULL &&
        db_exec(db, "supersede key version",
                "UPDATE vault_keys SET state = 'previous', superseded_at = now()"
                " WHERE version = $1 AND state = 'current'",
                1, p_old) == 0 &&
        db_exec(db, "add key version",
                "INSERT INTO vault_keys (version, key_check, state)"
                " VALUES ($1, $2::bytea, 'current')",
                2, p_new) == 0) {
        rv = 0;
    }
    free(check_hex);
    return rv;
}

uint32_t key_min_decryption_version(PGconn *db)
{
    PGresult *res = db_query(db, "read min_decryption_version",
                             "SELECT min_decryption_version FROM vault_policy", 0, NULL);
    if (res == NULL) {
        return 0;
    }
    uint32_t v = PQntuples(res) == 1 ? (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    return v;
}

int key_set_min_decryption_version(PGconn *db, uint32_t version)
{
    char v[16];
    snprintf(v, sizeof(v), "%u", (unsigned)version);
    const char *p[] = {v};
    return db_exec(db, "set min_decryption_version",
                   "UPDATE vault_policy SET min_decryption_version = $1, updated_at = now()", 1, p);
}

int key_versions_list(PGconn *db, struct key_version_info **out, size_t *n, uint32_t *min_version)
{
    *out = NULL;
    *n = 0;
    PGresult *res = db_query(db, "list key versions",
                             "SELECT k.version, k.state, p.min_decryption_version,"
                             " (SELECT count(*) FROM bot_tokens t WHERE t.key_version = k.version),"
                             " (extract(epoch FROM k.created_at) * 1000)::bigint"
                             " FROM vault_keys k CROSS JOIN vault_policy p ORDER BY k.version",
                             0, NULL);
    if (res == NULL) {
        return -1;
    }
    int rows = PQntuples(res);
    struct key_version_info *list = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*list));
    if (list == NULL) {
        PQclear(res);
        return -1;
    }
    *min_version = 0;
    for (int i = 0; i < rows; i++) {
        struct key_version_info *k = &list[i];
        k->version = (uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10);
        *min_version = (uint32_t)strtoul(PQgetvalue(res, i, 2), NULL, 10);
        if (strcmp(PQgetvalue(res, i, 1), "current") == 0) {
            k->state = "current";
        } else {
            k->state = k->version < *min_version ? "retired" : "active";
        }
        k->tokens = strtoll(PQgetvalue(res, i, 3), NULL, 10);
        k->created_at_ms = strtoll(PQgetvalue(res, i, 4), NULL, 10);
    }
    PQclear(res);
    *out = list;
    *n = (size_t)rows;
    return 0;
}
