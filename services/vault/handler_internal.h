/* handler_internal.h: what handler.c and handler_ops.c share about a call in
 * progress: who called, how to answer, how to audit. */
#ifndef BCRM_VAULT_HANDLER_INTERNAL_H
#define BCRM_VAULT_HANDLER_INTERNAL_H

#include "allowlist.h"
#include "handler.h"

#include <libpq-fe.h>
#include <stdint.h>

/* Everything an audit row and a log line need about the call. */
struct call_info {
    struct vault *v;
    PGconn *db;
    const Bcrm__V1__VaultCall *call;
    char caller[2 * crypto_box_PUBLICKEYBYTES + 1];
    enum vault_role role;
    const char *op;
    const char *org_id; /* as given, if short enough to record, else NULL */
    const char *bot_id;
};

void answer(struct vault_answer *ans, Bcrm__V1__VaultCode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes the call's audit row with outcome; key_version 0 and detail NULL when
 * there is nothing to add. 0 or -1. */
int audit_call(struct call_info *ci, const char *outcome, uint32_t key_version, const char *detail);
/* The same about one token of a call that handles many (a rewrap batch). */
int audit_token(struct call_info *ci, const char *org_id, const char *bot_id, const char *outcome,
                uint32_t key_version, const char *detail);

/* After a failed operation: rolls back, records the failure if the database still
 * answers, and answers VAULT_INTERNAL. Nothing was done. */
void fail_internal(struct call_info *ci, struct vault_answer *ans, const char *what);

/* Copies a uuid in its canonical lower-case form. 0, or -1 if in is not one. */
#define UUID_LEN 36
int uuid_canon(const char *in, char out[UUID_LEN + 1]);

/* The ops role's operations (handler_ops.c). Each writes its audit row. */
void ops_status(struct call_info *ci, struct vault_answer *ans);
void ops_rotate(struct call_info *ci, struct vault_answer *ans);
void ops_rewrap(struct call_info *ci, const Bcrm__V1__VaultRewrapCall *rc,
                struct vault_answer *ans);
void ops_config(struct call_info *ci, const Bcrm__V1__VaultConfigCall *cc,
                struct vault_answer *ans);
void ops_audit(struct call_info *ci, const Bcrm__V1__VaultAuditCall *ac, struct vault_answer *ans);

#endif
