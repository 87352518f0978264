/* handler.c: the vault's policy, and the token operations (store, release,
 * destroy). The ops role's operations are in handler_ops.c. */
#include "handler.h"

#include "audit_store.h"
#include "handler_internal.h"
#include "key_store.h"
#include "token_store.h"

#include "bcrm/clock.h"
#include "bcrm/db.h"
#include "bcrm/log.h"
#include "bcrm/token_staging.h"
#include "bcrm/vault_client.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(((struct vault_answer *)0)->token_ref) == TOKEN_NONCE_BYTES &&
                   TOKEN_NONCE_BYTES == VAULT_TOKEN_REF_BYTES,
               "a token_ref is the nonce of the stored ciphertext");

/* What one call is about, with its ids checked and in canonical (lower-case)
 * form, since the associated data binds these exact strings. */
struct call_target {
    char org_id[UUID_LEN + 1];
    char bot_id[UUID_LEN + 1];
    const char *platform; /* "slack", "messenger", or NULL */
    Bcrm__V1__Platform platform_code;
};

const char *vault_op_name(Bcrm__V1__VaultCall__OpCase op)
{
    switch (op) {
    case BCRM__V1__VAULT_CALL__OP_STORE:
        return "store";
    case BCRM__V1__VAULT_CALL__OP_RELEASE:
        return "release";
    case BCRM__V1__VAULT_CALL__OP_DESTROY:
        return "destroy";
    case BCRM__V1__VAULT_CALL__OP_STATUS:
        return "status";
    case BCRM__V1__VAULT_CALL__OP_ROTATE:
        return "rotate";
    case BCRM__V1__VAULT_CALL__OP_REWRAP:
        return "rewrap";
    case BCRM__V1__VAULT_CALL__OP_CONFIG:
        return "config";
    case BCRM__V1__VAULT_CALL__OP_AUDIT:
        return "audit";
    case BCRM__V1__VAULT_CALL__OP_STORE_SEALED:
        return "store_sealed";
    case BCRM__V1__VAULT_CALL__OP_PROMOTE:
        return "promote";
    default:
        return "unknown";
    }
}

const char *vault_code_name(Bcrm__V1__VaultCode code)
{
    switch (code) {
    case BCRM__V1__VAULT_CODE__VAULT_OK:
        return "ok";
    case BCRM__V1__VAULT_CODE__VAULT_DENIED:
        return "denied";
    case BCRM__V1__VAULT_CODE__VAULT_NOT_FOUND:
        return "not_found";
    case BCRM__V1__VAULT_CODE__VAULT_BAD_REQUEST:
        return "bad_request";
    case BCRM__V1__VAULT_CODE__VAULT_KEY_RETIRED:
        return "key_retired";
    default:
        return "internal";
    }
}

static const char *platform_name(Bcrm__V1__Platform p)
{
    switch (p) {
    case BCRM__V1__PLATFORM__PLATFORM_SLACK:
        return "slack";
    case BCRM__V1__PLATFORM__PLATFORM_MESSENGER:
        return "messenger";
    default:
        return NULL;
    }
}

int uuid_canon(const char *in, char out[UUID_LEN + 1])
{
    if (in == NULL || strlen(in) != UUID_LEN) {
        return -1;
    }
    for (int i = 0; i < UUID_LEN; i++) {
        unsigned char c = (unsigned char)in[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') {
                return -1;
            }
        } else if (!isxdigit(c)) {
            return -1;
        }
        out[i] = (char)tolower(c);
    }
    out[UUID_LEN] = '\0';
    return 0;
}

/* An id worth recording in the audit log as given: short, printable. */
static const char *auditable(const char *s)
{
    if (s == NULL || strlen(s) > 64) {
        return NULL;
    }
    for (const char *p = s; *p; p++) {
        if (!isprint((unsigned char)*p)) {
            return NULL;
        }
    }
    return s;
}

void answer(struct vault_answer *ans, Bcrm__V1__VaultCode code, const char *fmt, ...)
{
    ans->reply.code = code;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ans->error, sizeof(ans->error), fmt, ap);
        va_end(ap);
        ans->reply.error = ans->error;
    }
}

int audit_token(struct call_info *ci, const char *org_id, const char *bot_id, const char *outcome,
                uint32_t key_version, const char *detail)
{
    struct audit_entry e = {
        .caller = ci->caller,
        .role = vault_role_name(ci->role),
        .operation = ci->op,
        .org_id = org_id,
        .bot_id = bot_id,
        .outcome = outcome,
        .request_id = auditable(ci->call->request_id),
        .key_version = key_version,
        .detail = detail,
    };
    int rv = audit_insert(ci->db, &e);
    atomic_store(&ci->v->db_ok, PQstatus(ci->db) == CONNECTION_OK);
    return rv;
}

int audit_call(struct call_info *ci, const char *outcome, uint32_t key_version, const char *detail)
{
    return audit_token(ci, ci->org_id, ci->bot_id, outcome, key_version, detail);
}

static int audit(struct call_info *ci, const char *outcome)
{
    return audit_call(ci, outcome, 0, NULL);
}

void fail_internal(struct call_info *ci, struct vault_answer *ans, const char *what)
{
    db_rollback(ci->db);
    audit(ci, "internal");
    log_error("vault operation failed", "{s:s, s:s, s:s, s:s?}", "operation", ci->op, "error", what,
              "caller", ci->caller, "bot_id", ci->bot_id);
    answer(ans, BCRM__V1__VAULT_CODE__VAULT_INTERNAL, "%s", what);
}

/* Names the stored copy (its nonce) in the reply. */
static void set_token_ref(struct vault_answer *ans, const uint8_t nonce[TOKEN_NONCE_BYTES])
{
    memcpy(ans->token_ref, nonce, TOKEN_NONCE_BYTES);
    ans->reply.has_token_ref = true;
    ans->reply.token_ref.data = ans->token_ref;
    ans->reply.token_ref.len = TOKEN_NONCE_BYTES;
}

static void do_store(struct call_info *ci, const Bcrm__V1__StoreToken *st,
                     const struct call_target *t, struct vault_answer *ans)
{
    uint8_t nonce[TOKEN_NONCE_BYTES];
    uint8_t *ct = malloc(token_sealed_len(st->token.len));
    if (ct == NULL) {
        fail_internal(ci, ans, "out of memory");
        return;
    }
    if (db_begin(ci->db) != 0) {
        free(ct);
        fail_internal(ci, ans, "storage unavailable");
        return;
    }
    /* Sealed with the current version, whose row stays share-locked until the
     * commit: a rotation waits for this store, so a rewrap that starts after the
     * rotation sees this row. */
    uint32_t version = key_current_lock(ci->db, false);
    struct token_binding b = {t->org_id, t->bot_id, t->platform, version};
    if (version == 0) {
        free(ct);
        fail_internal(ci, ans, "cannot read the current key version");
        return;
    }
    if (token_seal(ci->v->keyring, &b, st->token.data, st->token.len, nonce, ct) != 0) {
        free(ct);
        fail_internal(ci, ans, "cannot seal token");
        return;
    }
    int stored = token_store_upsert(ci->db, &b, nonce, ct, token_sealed_len(st->token.len));
    free(ct);
    if (stored < 0) {
        fail_internal(ci, ans, "cannot store token");
        return;
    }
    if (audit_call(ci, stored ? "ok" : "bad_request", stored ? version : 0, NULL) != 0 ||
        db_commit(ci->db) != 0) {
        fail_internal(ci, ans, "cannot write audit record");
        return;
    }
    if (stored) {
        answer(ans, BCRM__V1__VAULT_CODE__VAULT_OK, NULL);
        ans->reply.has_key_version = true;
        ans->reply.key_version = (int32_t)version;
        set_token_ref(ans, nonce);
    } else {
        answer(ans, BCRM__V1__VAULT_CODE__VAULT_BAD_REQUEST, "bot %s is stored for another org",
               t->bot_id);
    }
}

/* A token sealed to our identity key (crypto_box_seal) by a sender: opened into
 * locked memory and stored as StoreToken stores it. */
static void do_store_sealed(struct call_info *ci, const Bcrm__V1__StoreSealedToken *ss,
                            const struct call_target *t, struct vault_answer *ans)
{
    size_t sealed_len = ss->sealed_token.len;
    if (sealed_len <= crypto_box_SEALBYTES || sealed_len - crypto_box_SEALBYTES > TOKEN_MAX_BYTES) {
        audit_call(ci, "bad_request", 0, NULL);
        answer(ans, BCRM__V1__VAULT_CODE__VAULT_BAD_REQUEST,
               "sealed_token: want a seal of 1 to %d "
               "bytes",
               TOKEN_MAX_BYTES);
        return;
    }
    size_t len = sealed_len - crypto_box_SEALBYTES;
    uint8_t *plain = sodium_malloc(len);
    if (plain == NULL) {
        fail_internal(ci, ans, "out of secure memory");
        return;
    }
    if (crypto_box_seal_open(plain, ss->sealed_token.data, sealed_len, ci->v->identity.public_key,
                             ci->v->identity.secret_key) != 0) {
        sodium_free(plain);
        audit_call(ci, "bad_request", 0, "seal does not open");
        answer(ans, BCRM__V1__VAULT_CODE__VAULT_BAD_REQUEST,
               "sealed_token: does not open with the vault's key");
        return;
    }
    Bcrm__V1__StoreToken st = BCRM__V1__STORE_TOKEN__INIT;
    st.org_id = ss->org_id;
    st.bot_id = ss->bot_id;
    st.platform = ss->platform;
    st.token.data = plain;
    st.token.len = len;
    do_store(ci, &st, t, ans);
    sodium_free(plain); /* wipes */
}

static void do_release(struct call_info *ci, const struct call_target *t, struct vault_answer *ans)
{
    struct token_row row;
    char detail[96];
    int found = token_store_fetch(ci->db, t->bot_id, &row);
    if (found < 0) {
        fail_internal(ci, ans, "cannot read token");
        return;
    }
    /* A row of another org or platform is reported as missing: a caller learns
     * nothing about bots it did not name correctly. */
    if (found == 0 || strcmp(row.org_id, t->org_id) != 0 || strcmp(row.platform, t->platform)) {
        token_row_clear(&row);
        if (audit(ci, "not_found") != 0) {
            fail_internal(ci, ans, "cannot write audit record");
            return;
        }
        answer(ans, BCRM__V1__VAULT_CODE__VAULT_NOT_FOUND, "no token for bot %s", t->bot_id);
        return;
    }
    struct token_binding b = {t->org_id, t->bot_id, t->platform, row.key_version};
    if (row.version_known && row.key_version < row.min_decryption_version) {
        /* The version still derives, but the operator retired it: refusing here is
         * what retirement means (docs/vault.md). */
        snprintf(detail, sizeof(detail), "key version %u is below min_decryption_version %u",
                 (unsigned)row.key_version, (unsigned)row.min_decryption_version);
        uint32_t version = row.key_version, row_min = row.min_decryption_version;
        token_row_clear(&row);
        if (audit_call(ci, "retired", version, detail) != 0) {
            fail_internal(ci, ans, "cannot write audit record");
            return;
        }
        log_warn("release refused: key version retired", "{s:s, s:s, s:i}", "bot_id", t->bot_id,
                 "org_id", t->org_id, "key_version", (int)version);
        answer(ans, BCRM__V1__VAULT_CODE__VAULT_KEY_RETIRED,
               "token of bot %s is sealed with key version %u, below min_decryption_version "
               "%u; store it again",
               t->bot_id, (unsigned)version, (unsigned)row_min);
        ans->reply.has_key_version = true;
        ans->reply.key_version = (int32_t)version;
        return;
    }
    size_t len = 0;
    int opened = -1;
    ans->token = sodium_malloc(row.ciphertext_len);
    if (ans->token == NULL) {
        token_row_clear(&row);
        fail_internal(ci, ans, "out of secure memory");
        return;
    }
    /* A version the vault never recorded is not even tried: only tampering makes
     * one. */
    if (row.version_known) {
        opened = token_open(ci->v->keyring, &b, row.ciphertext, row.ciphertext_len, row.nonce,
                            ans->token, &len);
    }
    bool known = row.version_known;
    uint8_t nonce[TOKEN_NONCE_BYTES];
    memcpy(nonce, row.nonce, TOKEN_NONCE_BYTES);
    token_row_clear(&row);
    if (opened != 0) {
        /* Tampering, a row copied from another bot or given another version:
         * nothing to release, and an operator must look. */
        snprintf(detail, sizeof(detail), "%s",
                 known ? "ciphertext does not authenticate" : "unknown key version");
        audit_call(ci, "corrupt", b.key_version, detail);
        log_error("stored token does not authenticate", "{s:s, s:s, s:i, s:s}", "bot_id", t->bot_id,
                  "org_id", t->org_id, "key_version", (int)b.key_version, "reason", detail);
        answer(ans, BCRM__V1__VAULT_CODE__VAULT_INTERNAL,
               "stored token for bot %s does not authenticate", t->bot_id);
        return;
    }
    if (audit_call(ci, "ok", b.key_version, NULL) != 0) {
        fail_internal(ci, ans, "cannot write audit record");
        return;
    }
    answer(ans, BCRM__V1__VAULT_CODE__VAULT_OK, NULL);
    ans->reply.has_token = true;
    ans->reply.token.data = ans->token;
    ans->reply.token.len = len;
    ans->reply.has_key_version = true;
    ans->reply.key_version = (int32_t)b.key_version;
    set_token_ref(ans, nonce);
}

static void do_destroy(struct call_info *ci, const struct call_target *t, struct vault_answer *ans)
{
    if (db_begin(ci->db) != 0) {
        fail_internal(ci, ans, "storage unavailable");
        return;
    }
    /* A token staged for the bot (a reconnect in progress, or one that died) goes
     * with it: it was stored for this bot and no other. */
    char staging_id[TOKEN_STAGING_ID_LEN + 1];
    int deleted = token_store_delete(ci->db, t->org_id, t->bot_id);
    int staged = token_staging_id(t->bot_id, staging_id) == 0
                     ? token_store_delete(ci->db, t->org_id, staging_id)
                     : 0;
    if (deleted < 0 || staged < 0) {
        fail_internal(ci, ans, "cannot destroy token");
        return;
    }
    /* Destroy is idempotent (a resent call finds nothing); the audit row still
     * tells whether there was something to destroy. */
    if (audit_call(ci, deleted > 0 ? "ok" : "absent", 0,
                   staged > 0 ? "with its staged token" : NULL) != 0 ||
        db_commit(ci->db) != 0) {
        fail_internal(ci, ans, "cannot write audit record");
        return;
    }
    answer(ans, BCRM__V1__VAULT_CODE__VAULT_OK, NULL);
}

/* Refuses a promote after the transaction is rolled back: audited, then answered. */
static void promote_refused(struct call_info *ci, struct vault_answer *ans, const char *outcome,
                            uint32_t key_version, Bcrm__V1__VaultCode code, const char *detail)
{
    db_rollback(ci->db);
    if (audit_call(ci, outcome, key_version, detail) != 0) {
        fail_internal(ci, ans, "cannot write audit record");
        return;
    }
    answer(ans, code, "%s", detail);
}

/* Moves the token staged for t's bot to the bot (see PromoteToken in vault.proto):
 * the staged ciphertext is opened and sealed again under the bot's binding with
 * the current key version, in locked memory (token_rewrap), and the bot's row
 * replaced and the staged row deleted in one transaction with the audit row. */
static void do_promote(struct call_info *ci, const Bcrm__V1__PromoteToken *pr,
                       const struct call_target *t, struct vault_answer *ans)
{
    char staging_id[TOKEN_STAGING_ID_LEN + 1], detail[160];
    struct token_row row = {0};
    uint8_t nonce[TOKEN_NONCE_BYTES];
    uint8_t *ct = NULL;
    if (pr->staged_ref.len != TOKEN_NONCE_BYTES) {
        audit(ci, "bad_request");
        answer(ans, BCRM__V1__VAULT_CODE__VAULT_BAD_REQUEST, "staged_ref: want %d bytes",
               TOKEN_NONCE_BYTES);
        return;
    }
    token_staging_id(t->bot_id, staging_id); /* t->bot_id is a checked uuid */
    if (db_begin(ci->db) != 0) {
        fail_internal(ci, ans, "storage unavailable");
        return;
    }
    /* The current version stays share-locked until the commit, as for a store. */
    uint32_t version = key_current_lock(ci->db, false);
    if (version == 0) {
        fail_internal(ci, ans, "cannot read the current key version");
        return;
    }
    const char *ids[] = {staging_id, t->bot_id};
    int found =
        token_store_lock(ci->db, ids, 2) == 0 ? token_store_fetch(ci->db, staging_id, &row) : -1;
    if (found < 0) {
        fail_internal(ci, ans, "cannot read the staged token");
        return;
    }
    bool ours =
        found == 1 && strcmp(row.org_id, t->org_id) == 0 && strcmp(row.platform, t->platform) == 0;
    if (!ours || sodium_memcmp(row.nonce, pr->staged_ref.data, TOKEN_NONCE_BYTES) != 0) {
        /* Nothing staged, or staged again since the caller stored it: the caller
         * verified another token than the one there now, so nothing moves. */
        snprintf(detail, sizeof(detail),
                 ours ? "the staged token of bot %s was replaced since it was stored"
                      : "no staged token for bot %s",
                 t->bot_id);
        token_row_clear(&row);
        promote_refused(ci, ans, "not_found", 0, BCRM__V1__VAULT_CODE__VAULT_NOT_FOUND, detail);
        return;
    }
    if (!row.version_known || row.key_version < row.min_decryption_version) {
        uint32_t staged_version = row.key_version;
        bool known = row.version_known;
        token_row_clear(&row);
        snprintf(detail, sizeof(detail), "staged token of bot %s: %s", t->bot_id,
                 known ? "its key version is retired; stage it again" : "unknown key version");
        promote_refused(ci, ans, known ? "retired" : "corrupt", staged_version,
                        known ? BCRM__V1__VAULT_CODE__VAULT_KEY_RETIRED
                              : BCRM__V1__VAULT_CODE__VAULT_INTERNAL,
                        detail);
        return;
    }
    struct token_binding from = {t->org_id, staging_id, t->platform, row.key_version};
    struct token_binding to = {t->org_id, t->bot_id, t->platform, version};
    size_t ctlen = row.ciphertext_len;
    ct = malloc(ctlen > 0 ? ctlen : 1);
    if (ct == NULL) {
        token_row_clear(&row);
        fail_internal(ci, ans, "out of memory");
        return;
    }
    int sealed =
        token_rewrap(ci->v->keyring, &from, row.ciphertext, ctlen, row.nonce, &to, nonce, ct);
    uint32_t staged_version = row.key_version;
    token_row_clear(&row);
    if (sealed != 0) {
        free(ct);
        log_error("staged token does not authenticate", "{s:s, s:s}", "bot_id", t->bot_id,
                  "staging_id", staging_id);
        snprintf(detail, sizeof(detail), "staged token of bot %s does not authenticate", t->bot_id);
        promote_refused(ci, ans, "corrupt", staged_version, BCRM__V1__VAULT_CODE__VAULT_INTERNAL,
                        detail);
        return;
    }
    int stored = token_store_upsert(ci->db, &to, nonce, ct, ctlen);
    free(ct);
    if (stored < 0 || (stored == 1 && token_store_delete(ci->db, t->org_id, staging_id) < 0)) {
        fail_internal(ci, ans, "cannot store token");
        return;
    }
    if (stored == 0) {
        snprintf(detail, sizeof(detail), "bot %s is stored for another org", t->bot_id);
        promote_refused(ci, ans, "bad_request", 0, BCRM__V1__VAULT_CODE__VAULT_BAD_REQUEST, detail);
        return;
    }
    snprintf(detail, sizeof(detail), "from staging id %s", staging_id);
    if (audit_call(ci, "ok", version, detail) != 0 || db_commit(ci->db) != 0) {
        fail_internal(ci, ans, "cannot write audit record");
        return;
    }
    answer(ans, BCRM__V1__VAULT_CODE__VAULT_OK, NULL);
    ans->reply.has_key_version = true;
    ans->reply.key_version = (int32_t)version;
    set_token_ref(ans, nonce);
}

/* Checks the arguments of a store, release or destroy into t. 0, or -1 with the
 * answer filled. */
static int check_target(const char *org_id, const char *bot_id, bool with_platform,
                        Bcrm__V1__Platform platform, struct call_target *t,
                        struct vault_answer *ans)
{
    if (uuid_canon(org_id, t->org_id) != 0) {
        answer(ans, BCRM__V1__VAULT_CODE__VAULT_BAD_REQUEST, "org_id: want a uuid");
        return -1;
    }
    if (uuid_canon(bot_id, t->bot_id) != 0) {
        answer(ans, BCRM__V1__VAULT_CODE__VAULT_BAD_REQUEST, "bot_id: want a uuid");
        return -1;
    }
    t->platform_code = platform;
    t->platform = platform_name(platform);
    if (with_platform && t->platform == NULL) {
        answer(ans, BCRM__V1__VAULT_CODE__VAULT_BAD_REQUEST,
               "platform: want PLATFORM_SLACK or PLATFORM_MESSENGER");
        return -1;
    }
    return 0;
}

void vault_handle_call(struct vault *v, PGconn *db, const uint8_t caller_key[32],
                       const Bcrm__V1__VaultCall *call, struct vault_answer *ans)
{
    struct call_info ci = {.v = v, .db = db, .call = call};
    struct call_target t;
    Bcrm__V1__Platform platform = BCRM__V1__PLATFORM__PLATFORM_UNSPECIFIED;
    const char *org_id = NULL, *bot_id = NULL;

    memset(ans, 0, sizeof(*ans));
    bcrm__v1__vault_reply__init(&ans->reply);
    ans->reply.request_id = call->request_id;
    hex_encode(ci.caller, caller_key, crypto_box_PUBLICKEYBYTES);
    ci.role = allowlist_role(v->allowlist, caller_key);
    ci.op = vault_op_name(call->op_case);
    switch (call->op_case) {
    case BCRM__V1__VAULT_CALL__OP_STORE:
        org_id = call->store->org_id;
        bot_id = call->store->bot_id;
        platform = call->store->platform;
        break;
    case BCRM__V1__VAULT_CALL__OP_RELEASE:
        org_id = call->release->org_id;
        bot_id = call->release->bot_id;
        platform = call->release->platform;
        break;
    case BCRM__V1__VAULT_CALL__OP_DESTROY:
        org_id = call->destroy->org_id;
        bot_id = call->destroy->bot_id;
        break;
    case BCRM__V1__VAULT_CALL__OP_STORE_SEALED:
        org_id = call->store_sealed->org_id;
        bot_id = call->store_sealed->bot_id;
        platform = call->store_sealed->platform;
        break;
    case BCRM__V1__VAULT_CALL__OP_PROMOTE:
        org_id = call->promote->org_id;
        bot_id = call->promote->bot_id;
        platform = call->promote->platform;
        break;
    default:
        break;
    }
    ci.org_id = auditable(org_id);
    ci.bot_id = auditable(bot_id);

    if (!db_ensure(db)) {
        atomic_store(&v->db_ok, false);
        answer(ans, BCRM__V1__VAULT_CODE__VAULT_INTERNAL, "storage unavailable");
        return;
    }
    if (ci.role == VAULT_ROLE_NONE) {
        audit(&ci, "denied");
        log_warn("vault call from unknown key", "{s:s, s:s}", "caller", ci.caller, "operation",
                 ci.op);
        answer(ans, BCRM__V1__VAULT_CODE__VAULT_DENIED, "caller not on the vault's allowlist");
        return;
    }
    int64_t skew = clock_wall_ms() - call->issued_at_ms;
    if (skew > VAULT_REPLAY_WINDOW_MS || skew < -VAULT_REPLAY_WINDOW_MS) {
        audit(&ci, "stale");
        log_warn("vault call outside the replay window", "{s:s, s:s, s:I}", "caller", ci.caller,
                 "operation", ci.op, "skew_ms", (json_int_t)skew);
        answer(ans, BCRM__V1__VAULT_CODE__VAULT_DENIED,
               "call issued %lld ms from the vault's clock (window %d ms)", (long long)skew,
               VAULT_REPLAY_WINDOW_MS);
        return;
    }
    if (!vault_role_allows(ci.role, call->op_case, platform)) {
        audit(&ci, "denied");
        log_warn("vault call outside the caller's role", "{s:s, s:s, s:s}", "caller", ci.caller,
                 "role", vault_role_name(ci.role), "operation", ci.op);
        if (call->op_case == BCRM__V1__VAULT_CALL__OP_RELEASE && platform_name(platform)) {
            answer(ans, BCRM__V1__VAULT_CODE__VAULT_DENIED, "role %s may not release %s tokens",
                   vault_role_name(ci.role), platform_name(platform));
        } else {
            answer(ans, BCRM__V1__VAULT_CODE__VAULT_DENIED, "role %s may not call %s",
                   vault_role_name(ci.role), ci.op);
        }
        return;
    }
    bool about_a_bot = call->op_case == BCRM__V1__VAULT_CALL__OP_STORE ||
                       call->op_case == BCRM__V1__VAULT_CALL__OP_STORE_SEALED ||
                       call->op_case == BCRM__V1__VAULT_CALL__OP_RELEASE ||
                       call->op_case == BCRM__V1__VAULT_CALL__OP_DESTROY ||
                       call->op_case == BCRM__V1__VAULT_CALL__OP_PROMOTE;
    if (about_a_bot &&
        check_target(org_id, bot_id, call->op_case != BCRM__V1__VAULT_CALL__OP_DESTROY, platform,
                     &t, ans) != 0) {
        audit(&ci, "bad_request");
        return;
    }
    /* Record the canonical ids from here on. */
    if (about_a_bot) {
        ci.org_id = t.org_id;
        ci.bot_id = t.bot_id;
    }
    switch (call->op_case) {
    case BCRM__V1__VAULT_CALL__OP_STORE:
        if (call->store->token.len == 0 || call->store->token.len > TOKEN_MAX_BYTES) {
            audit(&ci, "bad_request");
            answer(ans, BCRM__V1__VAULT_CODE__VAULT_BAD_REQUEST, "token: want 1 to %d bytes",
                   TOKEN_MAX_BYTES);
            return;
        }
        do_store(&ci, call->store, &t, ans);
        break;
    case BCRM__V1__VAULT_CALL__OP_STORE_SEALED:
        do_store_sealed(&ci, call->store_sealed, &t, ans);
        break;
    case BCRM__V1__VAULT_CALL__OP_RELEASE:
        do_release(&ci, &t, ans);
        break;
    case BCRM__V1__VAULT_CALL__OP_DESTROY:
        do_destroy(&ci, &t, ans);
        break;
    case BCRM__V1__VAULT_CALL__OP_PROMOTE:
        do_promote(&ci, call->promote, &t, ans);
        break;
    case BCRM__V1__VAULT_CALL__OP_STATUS:
        ops_status(&ci, ans);
        break;
    case BCRM__V1__VAULT_CALL__OP_ROTATE:
        ops_rotate(&ci, ans);
        break;
    case BCRM__V1__VAULT_CALL__OP_REWRAP:
        ops_rewrap(&ci, call->rewrap, ans);
        break;
    case BCRM__V1__VAULT_CALL__OP_CONFIG:
        ops_config(&ci, call->config, ans);
        break;
    case BCRM__V1__VAULT_CALL__OP_AUDIT:
        ops_audit(&ci, call->audit, ans);
        break;
    default:
        /* Unreachable: vault_role_allows refuses unknown operations. */
        answer(ans, BCRM__V1__VAULT_CODE__VAULT_BAD_REQUEST, "unknown operation");
        break;
    }
}

void vault_answer_clear(struct vault_answer *ans)
{
    sodium_free(ans->token);
    ans->token = NULL;
    free(ans->versions);
    free(ans->version_ptrs);
    free(ans->records);
    free(ans->record_ptrs);
    PQclear(ans->rows);
    ans->versions = NULL;
    ans->version_ptrs = NULL;
    ans->records = NULL;
    ans->record_ptrs = NULL;
    ans->rows = NULL;
    ans->reply.n_versions = 0;
    ans->reply.versions = NULL;
    ans->reply.n_audit = 0;
    ans->reply.audit = NULL;
    ans->reply.token.data = NULL;
    ans->reply.token.len = 0;
}
