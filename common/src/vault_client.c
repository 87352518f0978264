/* vault_client.c: boxed calls to the vault over a REQ socket. */
#include "bcrm/vault_client.h"

#include "bcrm/bus.h"
#include "bcrm/clock.h"
#include "bcrm/config.h"
#include "bcrm/token_staging.h"
#include "bcrm/vault_box.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vault_client {
    nng_socket sock; /* REQ; bus_call opens a context per call, so threads share it */
    uint8_t vault_public_key[crypto_box_PUBLICKEYBYTES];
    const struct identity *self; /* borrowed */
    int timeout_ms;
    char *url;
};

void secret_free(struct secret *s)
{
    if (s == NULL) {
        return;
    }
    sodium_free(s->data); /* wipes */
    s->data = NULL;
    s->len = 0;
}

struct vault_client *vault_client_open(const char *url, const uint8_t *vault_public_key,
                                       const struct identity *self, int timeout_ms, char *err,
                                       size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return NULL;
    }
    struct vault_client *vc = calloc(1, sizeof(*vc));
    if (vc == NULL || (vc->url = strdup(url)) == NULL) {
        snprintf(err, errlen, "out of memory");
        free(vc);
        return NULL;
    }
    int rv = bus_dial(&vc->sock, BUS_REQ, url);
    if (rv != 0) {
        snprintf(err, errlen, "vault %s: %s", url, nng_strerror(rv));
        free(vc->url);
        free(vc);
        return NULL;
    }
    memcpy(vc->vault_public_key, vault_public_key, sizeof(vc->vault_public_key));
    vc->self = self;
    vc->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    return vc;
}

struct vault_client *vault_client_from_env(const struct identity *self, char *err, size_t errlen)
{
    const char *url = config_str("BCRM_VAULT_URL", "tcp://127.0.0.1:7100");
    const char *hex = config_str("BCRM_VAULT_PUBLIC_KEY", NULL);
    int64_t timeout_ms = config_duration_ms("BCRM_VAULT_TIMEOUT", 5000);
    uint8_t pk[crypto_box_PUBLICKEYBYTES];
    if (hex == NULL) {
        snprintf(err, errlen, "BCRM_VAULT_PUBLIC_KEY is not set");
        return NULL;
    }
    if (hex_decode(pk, sizeof(pk), hex) != 0) {
        snprintf(err, errlen, "BCRM_VAULT_PUBLIC_KEY: want %zu hex characters", 2 * sizeof(pk));
        return NULL;
    }
    if (timeout_ms <= 0 || timeout_ms > 600000) {
        snprintf(err, errlen, "BCRM_VAULT_TIMEOUT: want a duration between 1ms and 10m");
        return NULL;
    }
    return vault_client_open(url, pk, self, (int)timeout_ms, err, errlen);
}

void vault_client_close(struct vault_client *vc)
{
    if (vc == NULL) {
        return;
    }
    nng_close(vc->sock);
    free(vc->url);
    free(vc);
}

/* One call: box it to the vault, wait for the reply, and accept the reply only if
 * it comes boxed from the vault's key and answers this request id. On a reply,
 * returns its code with *out set (free with vault_box_free_unpacked()); otherwise
 * -1 with err filled. */
static int vault_call(struct vault_client *vc, Bcrm__V1__VaultCall *call,
                      Bcrm__V1__VaultReply **out, char *err, size_t errlen)
{
    char request_id[33];
    struct vault_box box;
    Bcrm__V1__VaultEnvelope *env = NULL;
    ProtobufCMessage *opened = NULL;
    int rv = -1;
    *out = NULL;

    bus_new_id(request_id);
    call->request_id = request_id;
    call->issued_at_ms = clock_wall_ms();
    if (vault_box_seal(&box, &call->base, vc->self, vc->vault_public_key) != 0) {
        snprintf(err, errlen, "out of secure memory");
        return -1;
    }
    int nrv = bus_call(vc->sock, &box.env.base, &bcrm__v1__vault_envelope__descriptor,
                       (ProtobufCMessage **)&env, vc->timeout_ms);
    vault_box_clear(&box);
    if (nrv != 0) {
        snprintf(err, errlen, "vault %s: %s", vc->url, nng_strerror(nrv));
        goto out;
    }
    /* An empty box is the vault's unauthenticated "could not open": only a hint. */
    if (env->box.len == 0) {
        snprintf(err, errlen,
                 "vault %s: the vault could not open the call; does BCRM_VAULT_PUBLIC_KEY "
                 "match the vault's key?",
                 vc->url);
        goto out;
    }
    if (env->sender_public_key.len != sizeof(vc->vault_public_key) ||
        sodium_memcmp(env->sender_public_key.data, vc->vault_public_key,
                      sizeof(vc->vault_public_key)) != 0) {
        snprintf(err, errlen, "vault %s: reply not from the vault's key", vc->url);
        goto out;
    }
    if (vault_box_open(env, vc->self, &bcrm__v1__vault_reply__descriptor, &opened) != 0) {
        snprintf(err, errlen, "vault %s: reply did not authenticate", vc->url);
        goto out;
    }
    Bcrm__V1__VaultReply *reply = (Bcrm__V1__VaultReply *)opened;
    if (strcmp(reply->request_id, request_id) != 0) {
        snprintf(err, errlen, "vault %s: reply answers another request", vc->url);
        vault_box_free_unpacked(opened);
        goto out;
    }
    if (reply->code != BCRM__V1__VAULT_CODE__VAULT_OK) {
        snprintf(err, errlen, "vault: %s",
                 reply->error != NULL && reply->error[0] != '\0' ? reply->error
                                                                 : "request refused");
    }
    *out = reply;
    rv = (int)reply->code;
out:
    if (env != NULL) {
        protobuf_c_message_free_unpacked(&env->base, NULL);
    }
    return rv;
}

/* A call whose reply tells nothing but its code: vault_call, the reply freed. */
static int vault_call_code(struct vault_client *vc, Bcrm__V1__VaultCall *call, char *err,
                           size_t errlen)
{
    Bcrm__V1__VaultReply *reply;
    int rv = vault_call(vc, call, &reply, err, errlen);
    vault_box_free_unpacked(reply ? &reply->base : NULL);
    return rv;
}

/* Copies the reply's token_ref into ref (zeros when it has none of the right size). */
static void reply_ref(const Bcrm__V1__VaultReply *reply, uint8_t ref[VAULT_TOKEN_REF_BYTES])
{
    memset(ref, 0, VAULT_TOKEN_REF_BYTES);
    if (reply != NULL && reply->has_token_ref && reply->token_ref.len == VAULT_TOKEN_REF_BYTES) {
        memcpy(ref, reply->token_ref.data, VAULT_TOKEN_REF_BYTES);
    }
}

/* Stores token under stored_id (a bot's id, or its staging id): the StoreToken call
 * of vault_store_token and vault_stage_token. On VAULT_OK, ref (when not NULL) gets
 * the reply's token_ref. token is borrowed: vault_box_seal packs it into locked
 * memory and wipes that. */
static int store_token_as(struct vault_client *vc, const char *org_id, const char *stored_id,
                          Bcrm__V1__Platform platform, const uint8_t *token, size_t len,
                          uint8_t ref[VAULT_TOKEN_REF_BYTES], char *err, size_t errlen)
{
    Bcrm__V1__VaultCall call = BCRM__V1__VAULT_CALL__INIT;
    Bcrm__V1__StoreToken store = BCRM__V1__STORE_TOKEN__INIT;
    Bcrm__V1__VaultReply *reply;
    store.org_id = (char *)org_id;
    store.bot_id = (char *)stored_id;
    store.platform = platform;
    store.token.data = (uint8_t *)token;
    store.token.len = len;
    call.op_case = BCRM__V1__VAULT_CALL__OP_STORE;
    call.store = &store;
    int rv = vault_call(vc, &call, &reply, err, errlen);
    if (rv == BCRM__V1__VAULT_CODE__VAULT_OK && ref != NULL) {
        reply_ref(reply, ref);
    }
    vault_box_free_unpacked(reply ? &reply->base : NULL);
    return rv;
}

int vault_store_token(struct vault_client *vc, const char *org_id, const char *bot_id,
                      Bcrm__V1__Platform platform, const uint8_t *token, size_t len, char *err,
                      size_t errlen)
{
    return store_token_as(vc, org_id, bot_id, platform, token, len, NULL, err, errlen);
}

int vault_release_token_ref(struct vault_client *vc, const char *org_id, const char *bot_id,
                            Bcrm__V1__Platform platform, struct secret *out,
                            uint8_t ref[VAULT_TOKEN_REF_BYTES], char *err, size_t errlen)
{
    Bcrm__V1__VaultCall call = BCRM__V1__VAULT_CALL__INIT;
    Bcrm__V1__ReleaseToken release = BCRM__V1__RELEASE_TOKEN__INIT;
    Bcrm__V1__VaultReply *reply;
    out->data = NULL;
    out->len = 0;
    memset(ref, 0, VAULT_TOKEN_REF_BYTES);
    release.org_id = (char *)org_id;
    release.bot_id = (char *)bot_id;
    release.platform = platform;
    call.op_case = BCRM__V1__VAULT_CALL__OP_RELEASE;
    call.release = &release;
    int rv = vault_call(vc, &call, &reply, err, errlen);
    if (rv == BCRM__V1__VAULT_CODE__VAULT_OK) {
        if (!reply->has_token || reply->token.len == 0) {
            snprintf(err, errlen, "vault: release answered without a token");
            rv = -1;
        } else if ((out->data = sodium_malloc(reply->token.len + 1)) == NULL) {
            snprintf(err, errlen, "out of secure memory");
            rv = -1;
        } else {
            memcpy(out->data, reply->token.data, reply->token.len);
            out->data[reply->token.len] = '\0';
            out->len = reply->token.len;
            reply_ref(reply, ref);
        }
    }
    vault_box_free_unpacked(reply ? &reply->base : NULL);
    return rv;
}

int vault_release_token(struct vault_client *vc, const char *org_id, const char *bot_id,
                        Bcrm__V1__Platform platform, struct secret *out, char *err, size_t errlen)
{
    uint8_t ref[VAULT_TOKEN_REF_BYTES];
    return vault_release_token_ref(vc, org_id, bot_id, platform, out, ref, err, errlen);
}

int vault_stage_token(struct vault_client *vc, const char *org_id, const char *bot_id,
                      Bcrm__V1__Platform platform, const uint8_t *token, size_t len,
                      char staging_id[37], uint8_t staged_ref[VAULT_TOKEN_REF_BYTES], char *err,
                      size_t errlen)
{
    memset(staged_ref, 0, VAULT_TOKEN_REF_BYTES);
    if (token_staging_id(bot_id, staging_id) != 0) {
        snprintf(err, errlen, "bot_id: want a uuid");
        return BCRM__V1__VAULT_CODE__VAULT_BAD_REQUEST;
    }
    int rv = store_token_as(vc, org_id, staging_id, platform, token, len, staged_ref, err, errlen);
    if (rv == BCRM__V1__VAULT_CODE__VAULT_OK && sodium_is_zero(staged_ref, VAULT_TOKEN_REF_BYTES)) {
        /* A vault that names no stored copy cannot be asked to promote this one. */
        snprintf(err, errlen, "vault: store answered without a token_ref");
        rv = -1;
    }
    return rv;
}

int vault_promote_token(struct vault_client *vc, const char *org_id, const char *bot_id,
                        Bcrm__V1__Platform platform,
                        const uint8_t staged_ref[VAULT_TOKEN_REF_BYTES], char *err, size_t errlen)
{
    Bcrm__V1__VaultCall call = BCRM__V1__VAULT_CALL__INIT;
    Bcrm__V1__PromoteToken promote = BCRM__V1__PROMOTE_TOKEN__INIT;
    promote.org_id = (char *)org_id;
    promote.bot_id = (char *)bot_id;
    promote.platform = platform;
    promote.staged_ref.data = (uint8_t *)staged_ref;
    promote.staged_ref.len = VAULT_TOKEN_REF_BYTES;
    call.op_case = BCRM__V1__VAULT_CALL__OP_PROMOTE;
    call.promote = &promote;
    return vault_call_code(vc, &call, err, errlen);
}

int vault_store_sealed_token(struct vault_client *vc, const char *org_id, const char *bot_id,
                             Bcrm__V1__Platform platform, const uint8_t *sealed, size_t len,
                             char *err, size_t errlen)
{
    Bcrm__V1__VaultCall call = BCRM__V1__VAULT_CALL__INIT;
    Bcrm__V1__StoreSealedToken store = BCRM__V1__STORE_SEALED_TOKEN__INIT;
    store.org_id = (char *)org_id;
    store.bot_id = (char *)bot_id;
    store.platform = platform;
    store.sealed_token.data = (uint8_t *)sealed;
    store.sealed_token.len = len;
    call.op_case = BCRM__V1__VAULT_CALL__OP_STORE_SEALED;
    call.store_sealed = &store;
    return vault_call_code(vc, &call, err, errlen);
}

int vault_destroy_token(struct vault_client *vc, const char *org_id, const char *bot_id, char *err,
                        size_t errlen)
{
    Bcrm__V1__VaultCall call = BCRM__V1__VAULT_CALL__INIT;
    Bcrm__V1__DestroyToken destroy = BCRM__V1__DESTROY_TOKEN__INIT;
    destroy.org_id = (char *)org_id;
    destroy.bot_id = (char *)bot_id;
    call.op_case = BCRM__V1__VAULT_CALL__OP_DESTROY;
    call.destroy = &destroy;
    return vault_call_code(vc, &call, err, errlen);
}

int vault_status(struct vault_client *vc, int64_t *token_count, int32_t *key_version, char *err,
                 size_t errlen)
{
    Bcrm__V1__VaultCall call = BCRM__V1__VAULT_CALL__INIT;
    Bcrm__V1__VaultStatusCall status = BCRM__V1__VAULT_STATUS_CALL__INIT;
    Bcrm__V1__VaultReply *reply;
    call.op_case = BCRM__V1__VAULT_CALL__OP_STATUS;
    call.status = &status;
    int rv = vault_call(vc, &call, &reply, err, errlen);
    if (rv == BCRM__V1__VAULT_CODE__VAULT_OK) {
        *token_count = reply->has_token_count ? reply->token_count : 0;
        *key_version = reply->has_key_version ? reply->key_version : 0;
    }
    vault_box_free_unpacked(reply ? &reply->base : NULL);
    return rv;
}

int vault_call_raw(struct vault_client *vc, Bcrm__V1__VaultCall *call, Bcrm__V1__VaultReply **reply,
                   char *err, size_t errlen)
{
    return vault_call(vc, call, reply, err, errlen);
}

void vault_reply_free(Bcrm__V1__VaultReply *reply)
{
    vault_box_free_unpacked(reply ? &reply->base : NULL);
}
