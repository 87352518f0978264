/* handler_ops.c: the ops role's operations: status, key rotation, rewrap, the
 * key policy and reading the audit log. None of them lets a token out of the
 * vault; a rewrap opens and seals again in locked memory. */
#include "audit_store.h"
#include "handler_internal.h"
#include "key_store.h"
#include "token_store.h"

#include "bcrm/db.h"
#include "bcrm/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REWRAP_BATCH_DEFAULT 100
#define REWRAP_BATCH_MAX 1000
#define AUDIT_LIMIT_DEFAULT 50
#define AUDIT_LIMIT_MAX 1000

void ops_status(struct call_info *ci, struct vault_answer *ans)
{
    struct key_version_info *list = NULL;
    size_t n = 0;
    uint32_t min_version = 0;
    int64_t count = token_store_count(ci->db);
    if (count < 0 || key_versions_list(ci->db, &list, &n, &min_version) != 0) {
        fail_internal(ci, ans, "cannot read the vault's state");
        return;
    }
    ans->versions = calloc(n + 1, sizeof(*ans->versions));
    ans->version_ptrs = calloc(n + 1, sizeof(*ans->version_ptrs));
    if (ans->versions == NULL || ans->version_ptrs == NULL) {
        free(list);
        fail_internal(ci, ans, "out of memory");
        return;
    }
    uint32_t current = 0;
    for (size_t i = 0; i < n; i++) {
        Bcrm__V1__VaultKeyVersion *kv = &ans->versions[i];
        bcrm__v1__vault_key_version__init(kv);
        kv->version = (int32_t)list[i].version;
        kv->state = (char *)list[i].state; /* a string literal */
        kv->tokens = list[i].tokens;
        kv->created_at_ms = list[i].created_at_ms;
        ans->version_ptrs[i] = kv;
        if (strcmp(list[i].state, "current") == 0) {
            current = list[i].version;
        }
    }
    free(list);
    if (audit_call(ci, "ok", 0, NULL) != 0) {
        fail_internal(ci, ans, "cannot write audit record");
        return;
    }
    answer(ans, BCRM__V1__VAULT_CODE__VAULT_OK, NULL);
    ans->reply.has_token_count = true;
    ans->reply.token_count = count;
    ans->reply.has_key_version = true;
    ans->reply.key_version = (int32_t)current;
    ans->reply.has_min_decryption_version = true;
    ans->reply.min_decryption_version = (int32_t)min_version;
    ans->reply.n_versions = n;
    ans->reply.versions = ans->version_ptrs;
}

void ops_rotate(struct call_info *ci, struct vault_answer *ans)
{
    char detail[96];
    if (db_begin(ci->db) != 0) {
        fail_internal(ci, ans, "storage unavailable");
        return;
    }
    /* FOR UPDATE: waits for the stores and rewrap batches in flight. */
    uint32_t current = key_current_lock(ci->db, true);
    if (current == 0) {
        fail_internal(ci, ans, "cannot read the current key version");
        return;
    }
    if (key_rotate(ci->db, ci->v->keyring, current) != 0) {
        fail_internal(ci, ans, "cannot add a key version");
        return;
    }
    snprintf(detail, sizeof(detail), "key version %u is current; %u is previous",
             (unsigned)current + 1, (unsigned)current);
    if (audit_call(ci, "ok", current + 1, detail) != 0 || db_commit(ci->db) != 0) {
        fail_internal(ci, ans, "cannot write audit record");
        return;
    }
    log_info("key version rotated", "{s:i, s:i, s:s}", "key_version", (int)current + 1, "previous",
             (int)current, "caller", ci->caller);
    answer(ans, BCRM__V1__VAULT_CODE__VAULT_OK, NULL);
    ans->reply.has_key_version = true;
    ans->reply.key_version = (int32_t)current + 1;
}

enum rewrap_result {
    REWRAP_ERROR = -1, /* the database failed: the batch must roll back */
    REWRAP_DONE,       /* sealed again under the current version */
    REWRAP_CHANGED,    /* a store replaced the row meanwhile: nothing to do */
    REWRAP_FAILED,     /* retired or corrupt: left as it was, audited */
};

/* Seals one locked row again under current, auditing the outcome. */
static enum rewrap_result rewrap_row(struct call_info *ci, const struct token_row *row,
                                     uint32_t current, uint32_t min_version)
{
    char detail[96];
    if (row->key_version == 0) {
        return audit_token(ci, NULL, row->bot_id, "corrupt", 0, "malformed row") == 0
                   ? REWRAP_FAILED
                   : REWRAP_ERROR;
    }
    if (row->key_version < min_version) {
        snprintf(detail, sizeof(detail), "key version %u is below min_decryption_version %u",
                 (unsigned)row->key_version, (unsigned)min_version);
        return audit_token(ci, row->org_id, row->bot_id, "retired", row->key_version, detail) == 0
                   ? REWRAP_FAILED
                   : REWRAP_ERROR;
    }
    struct token_binding from = {row->org_id, row->bot_id, row->platform, row->key_version};
    struct token_binding to = {row->org_id, row->bot_id, row->platform, current};
    uint8_t nonce[TOKEN_NONCE_BYTES];
    uint8_t *ct = malloc(row->ciphertext_len);
    if (ct == NULL) {
        return REWRAP_ERROR;
    }
    if (!row->version_known || token_rewrap(ci->v->keyring, &from, row->ciphertext,
                                            row->ciphertext_len, row->nonce, &to, nonce, ct)) {
        free(ct);
        log_error("stored token does not authenticate; not rewrapped", "{s:s, s:s, s:i}", "bot_id",
                  row->bot_id, "org_id", row->org_id, "key_version", (int)row->key_version);
        return audit_token(ci, row->org_id, row->bot_id, "corrupt", row->key_version,
                           "ciphertext does not authenticate; left as it was") == 0
                   ? REWRAP_FAILED
                   : REWRAP_ERROR;
    }
    int replaced = token_store_replace(ci->db, row, current, nonce, ct, row->ciphertext_len);
    free(ct);
    if (replaced <= 0) {
        return replaced < 0 ? REWRAP_ERROR : REWRAP_CHANGED;
    }
    snprintf(detail, sizeof(detail), "from key version %u", (unsigned)row->key_version);
    return audit_token(ci, row->org_id, row->bot_id, "ok", current, detail) == 0 ? REWRAP_DONE
                                                                                 : REWRAP_ERROR;
}

void ops_rewrap(struct call_info *ci, const Bcrm__V1__VaultRewrapCall *rc, struct vault_answer *ans)
{
    int batch = rc->has_batch_size ? rc->batch_size : REWRAP_BATCH_DEFAULT;
    char after[UUID_LEN + 1];
    const char *after_id = NULL;
    struct token_row *rows = NULL;
    size_t n = 0;
    int rewrapped = 0, failed = 0;
    if (batch < 1 || batch > REWRAP_BATCH_MAX) {
        audit_call(ci, "bad_request", 0, NULL);
        answer(ans, BCRM__V1__VAULT_CODE__VAULT_BAD_REQUEST, "batch_size: want 1 to %d",
               REWRAP_BATCH_MAX);
        return;
    }
    if (rc->after_bot_id != NULL && rc->after_bot_id[0] != '\0') {
        if (uuid_canon(rc->after_bot_id, after) != 0) {
            audit_call(ci, "bad_request", 0, NULL);
            answer(ans, BCRM__V1__VAULT_CODE__VAULT_BAD_REQUEST, "after_bot_id: want a uuid");
            return;
        }
        after_id = after;
    }
    if (db_begin(ci->db) != 0) {
        fail_internal(ci, ans, "storage unavailable");
        return;
    }
    /* FOR SHARE: a rotation waits for this batch, and the batch seals under the
     * version that is current when it commits. */
    uint32_t current = key_current_lock(ci->db, false);
    uint32_t min_version = current ? key_min_decryption_version(ci->db) : 0;
    if (current == 0 || min_version == 0 ||
        token_store_behind(ci->db, current, after_id, batch, &rows, &n) != 0) {
        fail_internal(ci, ans, "cannot read tokens to rewrap");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        enum rewrap_result r = rewrap_row(ci, &rows[i], current, min_version);
        if (r == REWRAP_ERROR) {
            for (size_t j = 0; j < n; j++) {
                token_row_clear(&rows[j]);
            }
            free(rows);
            fail_internal(ci, ans, "cannot rewrap tokens");
            return;
        }
        rewrapped += r == REWRAP_DONE;
        failed += r == REWRAP_FAILED;
    }
    if (n == (size_t)batch) {
        snprintf(ans->next_after_bot_id, sizeof(ans->next_after_bot_id), "%s", rows[n - 1].bot_id);
    }
    for (size_t j = 0; j < n; j++) {
        token_row_clear(&rows[j]);
    }
    free(rows);
    int64_t behind = token_store_count_below(ci->db, current);
    if (behind < 0 || db_commit(ci->db) != 0) {
        fail_internal(ci, ans, "cannot commit the rewrap batch");
        return;
    }
    if (rewrapped > 0 || failed > 0) {
        log_info("rewrap batch done", "{s:i, s:i, s:i, s:I}", "key_version", (int)current,
                 "rewrapped", rewrapped, "left_as_they_were", failed, "tokens_behind",
                 (json_int_t)behind);
    }
    answer(ans, BCRM__V1__VAULT_CODE__VAULT_OK, NULL);
    ans->reply.has_key_version = true;
    ans->reply.key_version = (int32_t)current;
    ans->reply.has_rewrapped = true;
    ans->reply.rewrapped = rewrapped;
    ans->reply.has_rewrap_failed = true;
    ans->reply.rewrap_failed = failed;
    ans->reply.has_tokens_behind = true;
    ans->reply.tokens_behind = behind;
    if (ans->next_after_bot_id[0] != '\0') {
        ans->reply.next_after_bot_id = ans->next_after_bot_id;
    }
}

void ops_config(struct call_info *ci, const Bcrm__V1__VaultConfigCall *cc, struct vault_answer *ans)
{
    char detail[160];
    if (db_begin(ci->db) != 0) {
        fail_internal(ci, ans, "storage unavailable");
        return;
    }
    uint32_t current = key_current_lock(ci->db, false);
    uint32_t min_version = current ? key_min_decryption_version(ci->db) : 0;
    if (current == 0 || min_version == 0) {
        fail_internal(ci, ans, "cannot read the key policy");
        return;
    }
    uint32_t wanted = min_version;
    if (cc->has_min_decryption_version) {
        if (cc->min_decryption_version < 1 || (uint32_t)cc->min_decryption_version > current) {
            db_rollback(ci->db);
            audit_call(ci, "bad_request", 0, NULL);
            answer(ans, BCRM__V1__VAULT_CODE__VAULT_BAD_REQUEST,
                   "min_decryption_version: want 1 to %u (the current key version)",
                   (unsigned)current);
            return;
        }
        wanted = (uint32_t)cc->min_decryption_version;
    }
    bool force = cc->has_force && cc->force;
    int64_t below = token_store_count_below(ci->db, wanted);
    if (below < 0) {
        fail_internal(ci, ans, "cannot count tokens");
        return;
    }
    /* Raising the minimum over tokens that still use an older version makes them
     * unreadable, and lowering it brings retired versions back: both only when
     * asked for explicitly. */
    const char *refusal = NULL;
    if (wanted > min_version && below > 0 && !force) {
        refusal = "tokens are still sealed with older versions: run `bcrmctl vault rewrap` "
                  "first, or force it (they become unreadable)";
    } else if (wanted < min_version && !force) {
        refusal = "lowering min_decryption_version makes retired versions decrypt again: "
                  "force it if that is meant";
    }
    if (refusal != NULL) {
        db_rollback(ci->db);
        snprintf(detail, sizeof(detail), "min_decryption_version %u -> %u refused",
                 (unsigned)min_version, (unsigned)wanted);
        if (audit_call(ci, "bad_request", 0, detail) != 0) {
            fail_internal(ci, ans, "cannot write audit record");
            return;
        }
        answer(ans, BCRM__V1__VAULT_CODE__VAULT_BAD_REQUEST, "min_decryption_version %u: %lld %s",
               (unsigned)wanted, (long long)below, refusal);
        return;
    }
    if (wanted != min_version && key_set_min_decryption_version(ci->db, wanted) != 0) {
        fail_internal(ci, ans, "cannot change the key policy");
        return;
    }
    snprintf(detail, sizeof(detail), "min_decryption_version %u -> %u; %lld tokens below it%s",
             (unsigned)min_version, (unsigned)wanted, (long long)below, force ? " (forced)" : "");
    if (audit_call(ci, "ok", 0, detail) != 0 || db_commit(ci->db) != 0) {
        fail_internal(ci, ans, "cannot write audit record");
        return;
    }
    if (wanted != min_version) {
        log_warn("min_decryption_version changed", "{s:i, s:i, s:I, s:b, s:s}", "from",
                 (int)min_version, "to", (int)wanted, "tokens_below", (json_int_t)below, "forced",
                 force, "caller", ci->caller);
    }
    answer(ans, BCRM__V1__VAULT_CODE__VAULT_OK, NULL);
    ans->reply.has_min_decryption_version = true;
    ans->reply.min_decryption_version = (int32_t)wanted;
    ans->reply.has_key_version = true;
    ans->reply.key_version = (int32_t)current;
    ans->reply.has_tokens_behind = true;
    ans->reply.tokens_behind = below;
}

/* A column of the audit result as a string, NULL for SQL NULL. */
static char *column(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

void ops_audit(struct call_info *ci, const Bcrm__V1__VaultAuditCall *ac, struct vault_answer *ans)
{
    int limit = ac->has_limit ? ac->limit : AUDIT_LIMIT_DEFAULT;
    int64_t before = ac->has_before_id ? ac->before_id : 0;
    if (limit < 1 || limit > AUDIT_LIMIT_MAX || before < 0) {
        audit_call(ci, "bad_request", 0, NULL);
        answer(ans, BCRM__V1__VAULT_CODE__VAULT_BAD_REQUEST, "limit: want 1 to %d",
               AUDIT_LIMIT_MAX);
        return;
    }
    /* Reading the log is itself recorded first, so a read that cannot be
     * recorded does not happen. */
    if (audit_call(ci, "ok", 0, NULL) != 0) {
        fail_internal(ci, ans, "cannot write audit record");
        return;
    }
    PGresult *res = audit_read(ci->db, limit, before);
    if (res == NULL) {
        fail_internal(ci, ans, "cannot read the audit log");
        return;
    }
    int n = PQntuples(res);
    ans->rows = res;
    ans->records = calloc((size_t)n + 1, sizeof(*ans->records));
    ans->record_ptrs = calloc((size_t)n + 1, sizeof(*ans->record_ptrs));
    if (ans->records == NULL || ans->record_ptrs == NULL) {
        fail_internal(ci, ans, "out of memory");
        return;
    }
    for (int i = 0; i < n; i++) {
        Bcrm__V1__VaultAuditRecord *r = &ans->records[i];
        bcrm__v1__vault_audit_record__init(r);
        r->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        r->at_ms = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        r->caller = column(res, i, 2);
        r->role = column(res, i, 3);
        r->operation = column(res, i, 4);
        r->org_id = column(res, i, 5);
        r->bot_id = column(res, i, 6);
        r->outcome = column(res, i, 7);
        r->request_id = column(res, i, 8);
        if (!PQgetisnull(res, i, 9)) {
            r->has_key_version = true;
            r->key_version = (int32_t)strtol(PQgetvalue(res, i, 9), NULL, 10);
        }
        r->detail = column(res, i, 10);
        ans->record_ptrs[i] = r;
    }
    answer(ans, BCRM__V1__VAULT_CODE__VAULT_OK, NULL);
    ans->reply.n_audit = (size_t)n;
    ans->reply.audit = ans->record_ptrs;
}
