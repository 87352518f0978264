/* vault_cmds.c: bcrmctl vault status|rotate|rewrap|config|audit, each one or more
 * boxed calls as the ops identity (docs/vault.md, "Key versions"). */
#include "bcrmctl.h"

#include "bcrm/clock.h"
#include "bcrm/config.h"
#include "bcrm/keys.h"
#include "bcrm/vault_client.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A full rewrap walks the tokens at most this many times: a token stored under
 * the old version while a pass ran (only possible across a rotation during the
 * pass) is picked up by the next. */
#define REWRAP_MAX_PASSES 3

struct ops_session {
    struct identity id;
    struct vault_client *vc;
    bool have_id;
};

/* Loads the ops identity and opens the client. EXIT_SUCCESS or EXIT_USAGE. */
static int session_open(struct ops_session *s)
{
    char err[512];
    memset(s, 0, sizeof(*s));
    const char *key_file = config_str("BCRM_IDENTITY_KEY_FILE", NULL);
    if (key_file == NULL) {
        fprintf(stderr, "bcrmctl: BCRM_IDENTITY_KEY_FILE is not set (the ops identity key)\n");
        return EXIT_USAGE;
    }
    if (config_str("BCRM_VAULT_PUBLIC_KEY", NULL) == NULL) {
        fprintf(stderr, "bcrmctl: BCRM_VAULT_PUBLIC_KEY is not set (the vault's public key)\n");
        return EXIT_USAGE;
    }
    if (identity_load(key_file, &s->id, err, sizeof(err)) != 0) {
        fprintf(stderr, "bcrmctl: %s\n", err);
        return EXIT_USAGE;
    }
    s->have_id = true;
    if ((s->vc = vault_client_from_env(&s->id, err, sizeof(err))) == NULL) {
        fprintf(stderr, "bcrmctl: %s\n", err);
        return EXIT_USAGE;
    }
    return EXIT_SUCCESS;
}

static void session_close(struct ops_session *s)
{
    vault_client_close(s->vc);
    if (s->have_id) {
        identity_free(&s->id);
    }
}

/* One call; on VAULT_OK returns its reply (free with vault_reply_free()), else
 * prints why and returns NULL. */
static Bcrm__V1__VaultReply *call_ok(struct ops_session *s, Bcrm__V1__VaultCall *call)
{
    char err[512];
    Bcrm__V1__VaultReply *reply = NULL;
    int code = vault_call_raw(s->vc, call, &reply, err, sizeof(err));
    if (code != BCRM__V1__VAULT_CODE__VAULT_OK) {
        fprintf(stderr, "bcrmctl: %s\n", err);
        vault_reply_free(reply);
        return NULL;
    }
    return reply;
}

static int vault_status_cmd(struct ops_session *s)
{
    Bcrm__V1__VaultCall call = BCRM__V1__VAULT_CALL__INIT;
    Bcrm__V1__VaultStatusCall status = BCRM__V1__VAULT_STATUS_CALL__INIT;
    call.op_case = BCRM__V1__VAULT_CALL__OP_STATUS;
    call.status = &status;
    Bcrm__V1__VaultReply *r = call_ok(s, &call);
    if (r == NULL) {
        return EXIT_FAILURE;
    }
    printf("vault: ok\nurl: %s\ntokens: %lld\nkey version: %d\nmin_decryption_version: %d\n",
           config_str("BCRM_VAULT_URL", "tcp://127.0.0.1:7100"), (long long)r->token_count,
           (int)r->key_version, (int)r->min_decryption_version);
    printf("versions:\n  %-8s %-8s %-8s %s\n", "version", "state", "tokens", "created");
    for (size_t i = 0; i < r->n_versions; i++) {
        char created[32];
        clock_format_rfc3339(r->versions[i]->created_at_ms, created);
        printf("  %-8d %-8s %-8lld %s\n", (int)r->versions[i]->version, r->versions[i]->state,
               (long long)r->versions[i]->tokens, created);
    }
    vault_reply_free(r);
    return EXIT_SUCCESS;
}

static int vault_rotate_cmd(struct ops_session *s)
{
    Bcrm__V1__VaultCall call = BCRM__V1__VAULT_CALL__INIT;
    Bcrm__V1__VaultRotateCall rotate = BCRM__V1__VAULT_ROTATE_CALL__INIT;
    call.op_case = BCRM__V1__VAULT_CALL__OP_ROTATE;
    call.rotate = &rotate;
    Bcrm__V1__VaultReply *r = call_ok(s, &call);
    if (r == NULL) {
        return EXIT_FAILURE;
    }
    printf("key version: %d\n", (int)r->key_version);
    printf("new tokens are sealed with it; `bcrmctl vault rewrap` moves the stored ones\n");
    vault_reply_free(r);
    return EXIT_SUCCESS;
}

static int vault_rewrap_cmd(struct ops_session *s, int batch)
{
    long long rewrapped = 0, failed = 0, behind = -1;
    int version = 0;
    char after[64] = "";
    for (int pass = 1; pass <= REWRAP_MAX_PASSES; pass++) {
        long long pass_failed = 0;
        after[0] = '\0';
        for (;;) {
            Bcrm__V1__VaultCall call = BCRM__V1__VAULT_CALL__INIT;
            Bcrm__V1__VaultRewrapCall rc = BCRM__V1__VAULT_REWRAP_CALL__INIT;
            rc.has_batch_size = true;
            rc.batch_size = batch;
            rc.after_bot_id = after[0] != '\0' ? after : NULL;
            call.op_case = BCRM__V1__VAULT_CALL__OP_REWRAP;
            call.rewrap = &rc;
            Bcrm__V1__VaultReply *r = call_ok(s, &call);
            if (r == NULL) {
                fprintf(stderr,
                        "bcrmctl: rewrap stopped after %lld tokens; run it again to "
                        "continue\n",
                        rewrapped);
                return EXIT_FAILURE;
            }
            rewrapped += r->rewrapped;
            failed += r->rewrap_failed;
            pass_failed += r->rewrap_failed;
            behind = r->tokens_behind;
            version = r->key_version;
            bool more = r->next_after_bot_id != NULL;
            if (more) {
                snprintf(after, sizeof(after), "%s", r->next_after_bot_id);
            }
            if (r->rewrapped > 0 || r->rewrap_failed > 0) {
                printf("rewrapped %lld, left as they were %lld, behind %lld\n", rewrapped, failed,
                       behind);
            }
            vault_reply_free(r);
            if (!more) {
                break;
            }
        }
        /* Tokens that failed stay behind for good: another pass would only fail
         * them again. */
        if (behind == 0 || pass_failed > 0) {
            break;
        }
    }
    printf("rewrap: %lld tokens sealed again with key version %d; %lld could not be "
           "(see bcrmctl vault audit); %lld still behind\n",
           rewrapped, version, failed, behind);
    return behind == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int vault_config_cmd(struct ops_session *s, int version, bool force)
{
    Bcrm__V1__VaultCall call = BCRM__V1__VAULT_CALL__INIT;
    Bcrm__V1__VaultConfigCall cc = BCRM__V1__VAULT_CONFIG_CALL__INIT;
    if (version > 0) {
        cc.has_min_decryption_version = true;
        cc.min_decryption_version = version;
    }
    cc.has_force = force;
    cc.force = force;
    call.op_case = BCRM__V1__VAULT_CALL__OP_CONFIG;
    call.config = &cc;
    Bcrm__V1__VaultReply *r = call_ok(s, &call);
    if (r == NULL) {
        return EXIT_FAILURE;
    }
    printf("min_decryption_version: %d\nkey version: %d\ntokens below min_decryption_version: "
           "%lld\n",
           (int)r->min_decryption_version, (int)r->key_version, (long long)r->tokens_behind);
    vault_reply_free(r);
    return EXIT_SUCCESS;
}

static const char *or_dash(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : "-";
}

static int vault_audit_cmd(struct ops_session *s, int limit, long long before)
{
    Bcrm__V1__VaultCall call = BCRM__V1__VAULT_CALL__INIT;
    Bcrm__V1__VaultAuditCall ac = BCRM__V1__VAULT_AUDIT_CALL__INIT;
    ac.has_limit = true;
    ac.limit = limit;
    ac.has_before_id = before > 0;
    ac.before_id = before;
    call.op_case = BCRM__V1__VAULT_CALL__OP_AUDIT;
    call.audit = &ac;
    Bcrm__V1__VaultReply *r = call_ok(s, &call);
    if (r == NULL) {
        return EXIT_FAILURE;
    }
    printf("id\tat\trole\toperation\toutcome\torg_id\tbot_id\tkey_version\trequest_id\tcaller\t"
           "detail\n");
    for (size_t i = 0; i < r->n_audit; i++) {
        const Bcrm__V1__VaultAuditRecord *a = r->audit[i];
        char at[32], version[16] = "-";
        clock_format_rfc3339(a->at_ms, at);
        if (a->has_key_version) {
            snprintf(version, sizeof(version), "%d", (int)a->key_version);
        }
        printf("%lld\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", (long long)a->id, at,
               or_dash(a->role), a->operation, a->outcome, or_dash(a->org_id), or_dash(a->bot_id),
               version, or_dash(a->request_id), a->caller, or_dash(a->detail));
    }
    vault_reply_free(r);
    return EXIT_SUCCESS;
}

/* A whole number from min to max, or -1. */
static long long parse_number(const char *text, long long min, long long max)
{
    char *end = NULL;
    if (text == NULL || text[0] == '\0') {
        return -1;
    }
    long long v = strtoll(text, &end, 10);
    return (*end == '\0' && v >= min && v <= max) ? v : -1;
}

int cmd_vault(int argc, char **argv)
{
    const char *cmd = argv[0];
    int batch = 100, limit = 50, min_version = 0;
    long long before = 0;
    bool force = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(cmd, "rewrap") == 0 && strcmp(a, "--batch") == 0 && has_value) {
            if ((batch = (int)parse_number(argv[++i], 1, 1000)) < 0) {
                return usage_error("%s", "--batch: want 1 to 1000");
            }
        } else if (strcmp(cmd, "audit") == 0 && strcmp(a, "--limit") == 0 && has_value) {
            if ((limit = (int)parse_number(argv[++i], 1, 1000)) < 0) {
                return usage_error("%s", "--limit: want 1 to 1000");
            }
        } else if (strcmp(cmd, "audit") == 0 && strcmp(a, "--before") == 0 && has_value) {
            if ((before = parse_number(argv[++i], 1, INT64_MAX)) < 0) {
                return usage_error("%s", "--before: want an audit record id");
            }
        } else if (strcmp(cmd, "config") == 0 && strcmp(a, "--force") == 0) {
            force = true;
        } else if (strcmp(cmd, "config") == 0 && strncmp(a, "min_decryption_version=", 23) == 0) {
            if ((min_version = (int)parse_number(a + 23, 1, INT32_MAX)) < 0) {
                return usage_error("%s", "min_decryption_version: want a key version");
            }
        } else {
            return usage_error("vault %s: unexpected argument", cmd);
        }
    }
    if (strcmp(cmd, "status") != 0 && strcmp(cmd, "rotate") != 0 && strcmp(cmd, "rewrap") != 0 &&
        strcmp(cmd, "config") != 0 && strcmp(cmd, "audit") != 0) {
        return usage_error("unknown vault command \"%s\"", cmd);
    }
    struct ops_session s;
    int rv = session_open(&s);
    if (rv != EXIT_SUCCESS) {
        session_close(&s);
        return rv;
    }
    if (strcmp(cmd, "status") == 0) {
        rv = vault_status_cmd(&s);
    } else if (strcmp(cmd, "rotate") == 0) {
        rv = vault_rotate_cmd(&s);
    } else if (strcmp(cmd, "rewrap") == 0) {
        rv = vault_rewrap_cmd(&s, batch);
    } else if (strcmp(cmd, "config") == 0) {
        rv = vault_config_cmd(&s, min_version, force);
    } else {
        rv = vault_audit_cmd(&s, limit, before);
    }
    session_close(&s);
    return rv;
}
