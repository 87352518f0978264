/* handler.h: one vault call, from an authenticated caller key to a reply.
 *
 * The policy lives here: allowlist role, replay window, the role's operations,
 * argument checks, then the operation with its audit row. Every call that names
 * a known or unknown caller writes one vault_audit row; a store or destroy and
 * its audit row commit together, and a released token leaves only after its
 * audit row is written. handler.c holds the policy and the token operations,
 * handler_ops.c the ops role's operations (status, key versions, audit).
 */
#ifndef BCRM_VAULT_HANDLER_H
#define BCRM_VAULT_HANDLER_H

#include "vault.h"

#include "bcrm/v1/vault.pb-c.h"

#include <libpq-fe.h>

/* A reply and the storage it points into. */
struct vault_answer {
    Bcrm__V1__VaultReply reply;
    char error[256];
    uint8_t *token;        /* sodium_malloc'd plaintext of a released token; wiped by clear */
    uint8_t token_ref[24]; /* reply.token_ref: the nonce of the copy stored or released */
    char next_after_bot_id[40];
    /* status: key versions; audit: records pointing into rows. All freed by clear. */
    Bcrm__V1__VaultKeyVersion *versions;
    Bcrm__V1__VaultKeyVersion **version_ptrs;
    Bcrm__V1__VaultAuditRecord *records;
    Bcrm__V1__VaultAuditRecord **record_ptrs;
    PGresult *rows;
};

/* Handles call from caller_key (already authenticated by the envelope) on db,
 * the worker's own connection. ans borrows call->request_id, so pack the answer
 * before freeing the call. Release ans with vault_answer_clear(). */
void vault_handle_call(struct vault *v, PGconn *db, const uint8_t caller_key[32],
                       const Bcrm__V1__VaultCall *call, struct vault_answer *ans);
void vault_answer_clear(struct vault_answer *ans);

/* The metric label of an operation ("store", ..., "unknown") and of a code. */
const char *vault_op_name(Bcrm__V1__VaultCall__OpCase op);
const char *vault_code_name(Bcrm__V1__VaultCode code);

#endif
