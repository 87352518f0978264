/* audit_store.h: the vault's audit log (vault_audit), append-only.
 *
 * One row per call that opened, written in the same transaction as what the call
 * changed, or before a token leaves the vault; a call whose row cannot be written
 * is refused. The vault's database role may insert and read rows, never change
 * or delete them (db/migrations/0004_db_roles.sql). Never holds a token.
 */
#ifndef BCRM_VAULT_AUDIT_STORE_H
#define BCRM_VAULT_AUDIT_STORE_H

#include <libpq-fe.h>
#include <stdint.h>

/* One vault_audit row. Strings are borrowed; NULL ones are stored as NULL. */
struct audit_entry {
    const char *caller;    /* hex public key */
    const char *role;      /* NULL for an unknown caller */
    const char *operation; /* store, release, destroy, status, rotate, rewrap, config, audit */
    const char *org_id;
    const char *bot_id;
    const char *outcome; /* ok, absent, denied, stale, not_found, bad_request, internal,
                            corrupt, retired */
    const char *request_id;
    uint32_t key_version; /* 0: none */
    const char *detail;   /* a short factual note, or NULL */
};

/* 0 or -1. */
int audit_insert(PGconn *db, const struct audit_entry *e);

/* The newest limit rows with an id below before_id (0: any), newest first, as a
 * result whose columns are id, at (ms since the epoch), caller, role, operation,
 * org_id, bot_id, outcome, request_id, key_version, detail (NULLs as NULL).
 * Free with PQclear(). NULL on error. */
PGresult *audit_read(PGconn *db, int limit, int64_t before_id);

#endif
