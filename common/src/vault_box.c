/* vault_box.c: crypto_box envelopes of the vault protocol. */
#include "bcrm/vault_box.h"

#include <stdlib.h>
#include <string.h>

static void *secure_alloc(void *data, size_t size)
{
    (void)data;
    /* sodium_malloc puts the block between guard pages, locks it and wipes it on
     * free; it is slow, but a vault message unpacks into a handful of blocks. */
    return sodium_malloc(size > 0 ? size : 1);
}

static void secure_free(void *data, void *ptr)
{
    (void)data;
    sodium_free(ptr);
}

ProtobufCAllocator vault_box_allocator = {
    .alloc = secure_alloc,
    .free = secure_free,
    .allocator_data = NULL,
};

static void vault_box_init_env(struct vault_box *out, const struct identity *self)
{
    memset(out, 0, sizeof(*out));
    bcrm__v1__vault_envelope__init(&out->env);
    memcpy(out->sender_public_key, self->public_key, sizeof(out->sender_public_key));
    out->env.sender_public_key.data = out->sender_public_key;
    out->env.sender_public_key.len = sizeof(out->sender_public_key);
    out->env.nonce.data = out->nonce;
    out->env.nonce.len = 0;
    out->env.box.data = NULL;
    out->env.box.len = 0;
}

int vault_box_seal(struct vault_box *out, const ProtobufCMessage *inner,
                   const struct identity *self, const uint8_t *peer_public_key)
{
    int rv = -1;
    vault_box_init_env(out, self);
    size_t len = protobuf_c_message_get_packed_size(inner);
    uint8_t *plain = sodium_malloc(len > 0 ? len : 1);
    out->box = malloc(len + crypto_box_MACBYTES);
    if (plain == NULL || out->box == NULL) {
        goto out;
    }
    protobuf_c_message_pack(inner, plain);
    randombytes_buf(out->nonce, sizeof(out->nonce));
    if (crypto_box_easy(out->box, plain, len, out->nonce, peer_public_key, self->secret_key) != 0) {
        goto out;
    }
    out->env.nonce.len = sizeof(out->nonce);
    out->env.box.data = out->box;
    out->env.box.len = len + crypto_box_MACBYTES;
    rv = 0;
out:
    sodium_free(plain);
    if (rv != 0) {
        vault_box_clear(out);
    }
    return rv;
}

void vault_box_unopened(struct vault_box *out, const struct identity *self)
{
    vault_box_init_env(out, self);
}

void vault_box_clear(struct vault_box *b)
{
    free(b->box);
    b->box = NULL;
    b->env.box.data = NULL;
    b->env.box.len = 0;
}

int vault_box_open(const Bcrm__V1__VaultEnvelope *env, const struct identity *self,
                   const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
    *out = NULL;
    if (env->sender_public_key.len != crypto_box_PUBLICKEYBYTES ||
        env->nonce.len != crypto_box_NONCEBYTES || env->box.len <= crypto_box_MACBYTES) {
        return -1;
    }
    size_t len = env->box.len - crypto_box_MACBYTES;
    uint8_t *plain = sodium_malloc(len);
    if (plain == NULL) {
        return -1;
    }
    int rv = -1;
    if (crypto_box_open_easy(plain, env->box.data, env->box.len, env->nonce.data,
                             env->sender_public_key.data, self->secret_key) != 0) {
        goto out;
    }
    *out = protobuf_c_message_unpack(desc, &vault_box_allocator, len, plain);
    rv = *out != NULL ? 0 : -1;
out:
    sodium_free(plain);
    return rv;
}

void vault_box_free_unpacked(ProtobufCMessage *msg)
{
    if (msg != NULL) {
        protobuf_c_message_free_unpacked(msg, &vault_box_allocator);
    }
}
