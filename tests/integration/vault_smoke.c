/* vault_smoke: a vault client for the system tests (tests/e2e/test_vault.py),
 * which cannot speak crypto_box themselves. It calls a running vault through
 * vault_client.h as the identity in KEYFILE and prints what came back:
 *
 *   vault_smoke KEYFILE store ORG BOT PLATFORM TOKEN
 *   vault_smoke KEYFILE release ORG BOT PLATFORM       prints "token <value>" and
 *                                                       "ref <hex>" on success
 *   vault_smoke KEYFILE stage ORG BOT PLATFORM TOKEN   stores TOKEN under BOT's staging
 *                                                       id: "staging_id <id>", "ref <hex>"
 *   vault_smoke KEYFILE promote ORG BOT PLATFORM REF   moves BOT's staged token (REF hex)
 *   vault_smoke KEYFILE destroy ORG BOT
 *   vault_smoke KEYFILE status
 *   vault_smoke KEYFILE stale ORG BOT PLATFORM         a release issued 5 minutes ago
 *   vault_smoke KEYFILE replay ORG BOT PLATFORM TOKEN  store, destroy, then resend the
 *                                                       captured store envelope
 *   vault_smoke KEYFILE concurrent N ORG BOT PLATFORM  N threads release at once
 *   vault_smoke KEYFILE batch                          one call per stdin line, one
 *       answer line each: "store ORG BOT PLATFORM TOKEN" -> "<code>", "release ORG
 *       BOT PLATFORM" -> "<code> [token]", "destroy ORG BOT" -> "<code>"
 *   vault_smoke KEYFILE release-loop N STOPFILE        reads "ORG BOT PLATFORM TOKEN"
 *       lines, then N threads release them round robin until STOPFILE exists, and
 *       print "releases <n>", "failures <n>" and the first failures
 *
 * The first line printed is "code <name>" (or "error <text>" when the vault could
 * not be reached); the exit status is 0 when the vault answered, 1 otherwise.
 * BCRM_VAULT_URL and BCRM_VAULT_PUBLIC_KEY name the vault. Test code: it prints
 * tokens, which no service ever does.
 */
#include "bcrm/bus.h"
#include "bcrm/clock.h"
#include "bcrm/vault_box.h"
#include "bcrm/vault_client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

static const char *code_name(int code)
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
    case BCRM__V1__VAULT_CODE__VAULT_INTERNAL:
        return "internal";
    case BCRM__V1__VAULT_CODE__VAULT_KEY_RETIRED:
        return "key_retired";
    default:
        return "unknown";
    }
}

static Bcrm__V1__Platform platform_of(const char *name)
{
    if (strcmp(name, "slack") == 0) {
        return BCRM__V1__PLATFORM__PLATFORM_SLACK;
    }
    if (strcmp(name, "messenger") == 0) {
        return BCRM__V1__PLATFORM__PLATFORM_MESSENGER;
    }
    return BCRM__V1__PLATFORM__PLATFORM_UNSPECIFIED;
}

static int report(int code, const char *err)
{
    if (code < 0) {
        printf("error %s\n", err);
        return 1;
    }
    printf("code %s\n", code_name(code));
    if (code != 0) {
        printf("message %s\n", err);
    }
    return 0;
}

/* Sends a hand-built call and prints the reply's code; for calls the client
 * library would never make (stale, replayed). */
static int raw_call(nng_socket sock, const struct vault_box *box, const struct identity *self,
                    const uint8_t *vault_pk, const char *label)
{
    Bcrm__V1__VaultEnvelope *env = NULL;
    ProtobufCMessage *opened = NULL;
    int rv = bus_call(sock, &box->env.base, &bcrm__v1__vault_envelope__descriptor,
                      (ProtobufCMessage **)&env, 5000);
    if (rv != 0) {
        printf("%s error %s\n", label, nng_strerror(rv));
        return -1;
    }
    if (env->sender_public_key.len != 32 || memcmp(env->sender_public_key.data, vault_pk, 32) ||
        vault_box_open(env, self, &bcrm__v1__vault_reply__descriptor, &opened) != 0) {
        printf("%s error reply did not open\n", label);
        protobuf_c_message_free_unpacked(&env->base, NULL);
        return -1;
    }
    int code = ((Bcrm__V1__VaultReply *)opened)->code;
    printf("%s code %s\n", label, code_name(code));
    vault_box_free_unpacked(opened);
    protobuf_c_message_free_unpacked(&env->base, NULL);
    return code;
}

static int cmd_stale(const struct identity *self, const uint8_t *vault_pk, const char *url,
                     char **argv)
{
    Bcrm__V1__VaultCall call = BCRM__V1__VAULT_CALL__INIT;
    Bcrm__V1__ReleaseToken rel = BCRM__V1__RELEASE_TOKEN__INIT;
    char id[33];
    nng_socket sock;
    struct vault_box box;
    bus_new_id(id);
    rel.org_id = argv[0];
    rel.bot_id = argv[1];
    rel.platform = platform_of(argv[2]);
    call.request_id = id;
    call.issued_at_ms = clock_wall_ms() - 5 * 60 * 1000;
    call.op_case = BCRM__V1__VAULT_CALL__OP_RELEASE;
    call.release = &rel;
    if (bus_dial(&sock, BUS_REQ, url) != 0 || vault_box_seal(&box, &call.base, self, vault_pk)) {
        printf("error setup\n");
        return 1;
    }
    int code = raw_call(sock, &box, self, vault_pk, "stale");
    vault_box_clear(&box);
    nng_close(sock);
    return code < 0 ? 1 : 0;
}

static int cmd_replay(struct vault_client *vc, const struct identity *self, const uint8_t *vault_pk,
                      const char *url, char **argv)
{
    Bcrm__V1__VaultCall call = BCRM__V1__VAULT_CALL__INIT;
    Bcrm__V1__StoreToken st = BCRM__V1__STORE_TOKEN__INIT;
    char id[33], err[256];
    nng_socket sock;
    struct vault_box box;
    bus_new_id(id);
    st.org_id = argv[0];
    st.bot_id = argv[1];
    st.platform = platform_of(argv[2]);
    st.token.data = (uint8_t *)argv[3];
    st.token.len = strlen(argv[3]);
    call.request_id = id;
    call.issued_at_ms = clock_wall_ms();
    call.op_case = BCRM__V1__VAULT_CALL__OP_STORE;
    call.store = &st;
    if (bus_dial(&sock, BUS_REQ, url) != 0 || vault_box_seal(&box, &call.base, self, vault_pk)) {
        printf("error setup\n");
        return 1;
    }
    raw_call(sock, &box, self, vault_pk, "store");
    int code = vault_destroy_token(vc, argv[0], argv[1], err, sizeof(err));
    printf("destroy code %s\n", code_name(code));
    raw_call(sock, &box, self, vault_pk, "replayed-store");
    vault_box_clear(&box);
    nng_close(sock);
    return 0;
}

struct concurrent_arg {
    struct vault_client *vc;
    char **argv;
    int ok;
    char first[64];
};

static void *concurrent_release(void *p)
{
    struct concurrent_arg *a = p;
    char err[256];
    for (int i = 0; i < 5; i++) {
        struct secret s;
        int code = vault_release_token(a->vc, a->argv[0], a->argv[1], platform_of(a->argv[2]), &s,
                                       err, sizeof(err));
        if (code == 0) {
            if (i == 0) {
                snprintf(a->first, sizeof(a->first), "%s", (const char *)s.data);
            }
            a->ok += strcmp((const char *)s.data, a->first) == 0;
            secret_free(&s);
        }
    }
    return NULL;
}

static int cmd_concurrent(struct vault_client *vc, int n, char **argv)
{
    pthread_t threads[32];
    struct concurrent_arg args[32];
    int ok = 0;
    n = n < 1 ? 1 : n > 32 ? 32 : n;
    for (int i = 0; i < n; i++) {
        args[i] = (struct concurrent_arg){.vc = vc, .argv = argv};
        pthread_create(&threads[i], NULL, concurrent_release, &args[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(threads[i], NULL);
        ok += args[i].ok;
    }
    printf("released %d of %d\n", ok, n * 5);
    return 0;
}

/* One call per stdin line (see the top of the file). */
static int cmd_batch(struct vault_client *vc)
{
    char line[8192], err[512];
    int n = 0;
    while (fgets(line, sizeof(line), stdin) != NULL) {
        char *save = NULL, *w[6] = {0};
        int nw = 0;
        for (char *t = strtok_r(line, " \t\r\n", &save); t != NULL && nw < 6;
             t = strtok_r(NULL, " \t\r\n", &save)) {
            w[nw++] = t;
        }
        if (nw == 0) {
            continue;
        }
        int code = -1;
        struct secret s = {0};
        if (strcmp(w[0], "store") == 0 && nw == 5) {
            code = vault_store_token(vc, w[1], w[2], platform_of(w[3]), (const uint8_t *)w[4],
                                     strlen(w[4]), err, sizeof(err));
        } else if (strcmp(w[0], "release") == 0 && nw == 4) {
            code = vault_release_token(vc, w[1], w[2], platform_of(w[3]), &s, err, sizeof(err));
        } else if (strcmp(w[0], "destroy") == 0 && nw == 3) {
            code = vault_destroy_token(vc, w[1], w[2], err, sizeof(err));
        } else {
            printf("bad_line\n");
            continue;
        }
        if (code < 0) {
            printf("error\n");
        } else if (s.data != NULL) {
            printf("%s %s\n", code_name(code), (const char *)s.data);
        } else {
            printf("%s\n", code_name(code));
        }
        secret_free(&s);
        n++;
    }
    printf("done %d\n", n);
    return 0;
}

struct loop_target {
    char org[64], bot[64], platform[16], token[512];
};

struct loop_state {
    struct vault_client *vc;
    struct loop_target *targets;
    int ntargets;
    const char *stop_file;
    atomic_long next, releases, failures;
    pthread_mutex_t lock;
    char first_failures[5][600];
};

static void *release_loop(void *p)
{
    struct loop_state *st = p;
    char err[512];
    while (access(st->stop_file, F_OK) != 0) {
        long i = atomic_fetch_add(&st->next, 1) % st->ntargets;
        const struct loop_target *t = &st->targets[i];
        struct secret s = {0};
        int code = vault_release_token(st->vc, t->org, t->bot, platform_of(t->platform), &s, err,
                                       sizeof(err));
        bool ok = code == 0 && s.data != NULL && strcmp((const char *)s.data, t->token) == 0;
        secret_free(&s);
        atomic_fetch_add(&st->releases, 1);
        if (!ok) {
            long f = atomic_fetch_add(&st->failures, 1);
            if (f < 5) {
                pthread_mutex_lock(&st->lock);
                snprintf(st->first_failures[f], sizeof(st->first_failures[f]),
                         "failure %s bot %.64s: %.400s", code < 0 ? "error" : code_name(code),
                         t->bot, code == 0 ? "token differs" : err);
                pthread_mutex_unlock(&st->lock);
            }
        }
    }
    return NULL;
}

static int cmd_release_loop(struct vault_client *vc, int threads, const char *stop_file)
{
    static struct loop_state st;
    pthread_t tid[32];
    int cap = 0;
    st.vc = vc;
    st.stop_file = stop_file;
    pthread_mutex_init(&st.lock, NULL);
    struct loop_target t;
    char line[1024];
    while (fgets(line, sizeof(line), stdin) != NULL) {
        if (sscanf(line, "%63s %63s %15s %511s", t.org, t.bot, t.platform, t.token) != 4) {
            continue;
        }
        if (st.ntargets == cap) {
            cap = cap ? 2 * cap : 64;
            st.targets = realloc(st.targets, (size_t)cap * sizeof(*st.targets));
        }
        st.targets[st.ntargets++] = t;
    }
    if (st.ntargets == 0) {
        printf("error no targets\n");
        return 1;
    }
    threads = threads < 1 ? 1 : threads > 32 ? 32 : threads;
    for (int i = 0; i < threads; i++) {
        pthread_create(&tid[i], NULL, release_loop, &st);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
    }
    printf("releases %ld\nfailures %ld\n", atomic_load(&st.releases), atomic_load(&st.failures));
    for (int i = 0; i < 5 && st.first_failures[i][0] != '\0'; i++) {
        printf("%s\n", st.first_failures[i]);
    }
    free(st.targets);
    return 0;
}

int main(int argc, char **argv)
{
    struct identity self;
    struct vault_client *vc;
    char err[512];
    uint8_t vault_pk[32];
    int rv = 1;
    if (sodium_init() < 0) {
        return 2;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: vault_smoke KEYFILE store|release|stage|promote|destroy|status|"
                        "stale|replay|concurrent|batch|release-loop ARGS...\n");
        return 2;
    }
    const char *url = getenv("BCRM_VAULT_URL");
    const char *pk_hex = getenv("BCRM_VAULT_PUBLIC_KEY");
    if (url == NULL || pk_hex == NULL || hex_decode(vault_pk, 32, pk_hex) != 0) {
        fprintf(stderr, "vault_smoke: set BCRM_VAULT_URL and BCRM_VAULT_PUBLIC_KEY\n");
        return 2;
    }
    if (identity_load(argv[1], &self, err, sizeof(err)) != 0) {
        fprintf(stderr, "vault_smoke: %s\n", err);
        return 2;
    }
    if ((vc = vault_client_from_env(&self, err, sizeof(err))) == NULL) {
        fprintf(stderr, "vault_smoke: %s\n", err);
        identity_free(&self);
        return 2;
    }
    const char *cmd = argv[2];
    char **args = argv + 3;
    int nargs = argc - 3;
    if (strcmp(cmd, "store") == 0 && nargs == 4) {
        rv = report(vault_store_token(vc, args[0], args[1], platform_of(args[2]),
                                      (const uint8_t *)args[3], strlen(args[3]), err, sizeof(err)),
                    err);
    } else if (strcmp(cmd, "release") == 0 && nargs == 3) {
        struct secret s;
        uint8_t ref[VAULT_TOKEN_REF_BYTES];
        char ref_hex[2 * VAULT_TOKEN_REF_BYTES + 1];
        int code = vault_release_token_ref(vc, args[0], args[1], platform_of(args[2]), &s, ref, err,
                                           sizeof(err));
        rv = report(code, err);
        if (code == 0) {
            hex_encode(ref_hex, ref, sizeof(ref));
            printf("token %s\nref %s\n", (const char *)s.data, ref_hex);
            secret_free(&s);
        }
    } else if (strcmp(cmd, "stage") == 0 && nargs == 4) {
        char staging_id[37] = "";
        uint8_t ref[VAULT_TOKEN_REF_BYTES];
        char ref_hex[2 * VAULT_TOKEN_REF_BYTES + 1];
        int code =
            vault_stage_token(vc, args[0], args[1], platform_of(args[2]), (const uint8_t *)args[3],
                              strlen(args[3]), staging_id, ref, err, sizeof(err));
        rv = report(code, err);
        if (code == 0) {
            hex_encode(ref_hex, ref, sizeof(ref));
            printf("staging_id %s\nref %s\n", staging_id, ref_hex);
        }
    } else if (strcmp(cmd, "promote") == 0 && nargs == 4) {
        uint8_t ref[VAULT_TOKEN_REF_BYTES];
        if (hex_decode(ref, sizeof(ref), args[3]) != 0) {
            fprintf(stderr, "vault_smoke: REF: want %d hex characters\n",
                    2 * VAULT_TOKEN_REF_BYTES);
            rv = 2;
        } else {
            rv = report(vault_promote_token(vc, args[0], args[1], platform_of(args[2]), ref, err,
                                            sizeof(err)),
                        err);
        }
    } else if (strcmp(cmd, "destroy") == 0 && nargs == 2) {
        rv = report(vault_destroy_token(vc, args[0], args[1], err, sizeof(err)), err);
    } else if (strcmp(cmd, "status") == 0 && nargs == 0) {
        int64_t tokens = 0;
        int32_t version = 0;
        int code = vault_status(vc, &tokens, &version, err, sizeof(err));
        rv = report(code, err);
        if (code == 0) {
            printf("tokens %lld\nkey_version %d\n", (long long)tokens, (int)version);
        }
    } else if (strcmp(cmd, "stale") == 0 && nargs == 3) {
        rv = cmd_stale(&self, vault_pk, url, args);
    } else if (strcmp(cmd, "replay") == 0 && nargs == 4) {
        rv = cmd_replay(vc, &self, vault_pk, url, args);
    } else if (strcmp(cmd, "concurrent") == 0 && nargs == 4) {
        rv = cmd_concurrent(vc, atoi(args[0]), args + 1);
    } else if (strcmp(cmd, "batch") == 0 && nargs == 0) {
        rv = cmd_batch(vc);
    } else if (strcmp(cmd, "release-loop") == 0 && nargs == 2) {
        rv = cmd_release_loop(vc, atoi(args[0]), args[1]);
    } else {
        fprintf(stderr, "vault_smoke: bad command or arguments\n");
        rv = 2;
    }
    vault_client_close(vc);
    identity_free(&self);
    return rv;
}
