/* audit_store.c: SQL of vault_audit. */
#include "audit_store.h"

#include "bcrm/db.h"

#include <stdio.h>

int audit_insert(PGconn *db, const struct audit_entry *e)
{
    char version[16];
    snprintf(version, sizeof(version), "%u", (unsigned)e->key_version);
    const char *p[] = {e->caller, e->role,    e->operation,  e->org_id,
                       e->bot_id, e->outcome, e->request_id, e->key_version ? version : NULL,
                       e->detail};
    return db_exec(db, "audit",
                   "INSERT INTO vault_audit (caller, role, operation, org_id, bot_id, outcome,"
                   " request_id, key_version, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                   9, p);
}

PGresult *audit_read(PGconn *db, int limit, int64_t before_id)
{
    char lim[16], before[24];
    snprintf(lim, sizeof(lim), "%d", limit);
    snprintf(before, sizeof(before), "%lld", (long long)before_id);
    const char *p[] = {lim, before_id > 0 ? before : NULL};
    return db_query(db, "read audit",
                    "SELECT id, (extract(epoch FROM at) * 1000)::bigint, caller, role, operation,"
                    " org_id, bot_id, outcome, request_id, key_version, detail FROM vault_audit"
                    " WHERE ($2::bigint IS NULL OR id < $2::bigint) ORDER BY id DESC LIMIT $1",
                    2, p);
}
