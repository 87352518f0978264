/* vault_box.h: the envelope of the vault protocol (proto/bcrm/v1/vault.proto),
 * shared by the vault and its clients so that both box and open the same way.
 *
 * A VaultCall or VaultReply is packed in locked memory, boxed with
 * crypto_box_easy from the sender's identity key to the recipient's public key
 * under a random nonce, and the plaintext is wiped. Opening unpacks into locked
 * memory too (vault_box_allocator), so a token inside never sits in ordinary heap
 * memory; free such a message with vault_box_free_unpacked(), which wipes it.
 *
 * An envelope whose box is empty is the vault's answer to a call it could not
 * open (a caller that boxed to the wrong vault key): there is no key to box an
 * answer to, so it says only "not opened", and carries no authentication.
 */
#ifndef BCRM_VAULT_BOX_H
#define BCRM_VAULT_BOX_H

#include "bcrm/keys.h"
#include "bcrm/v1/vault.pb-c.h"

#include <protobuf-c/protobuf-c.h>

struct vault_box {
    Bcrm__V1__VaultEnvelope env; /* its fields point into this struct and box */
    uint8_t sender_public_key[crypto_box_PUBLICKEYBYTES];
    uint8_t nonce[crypto_box_NONCEBYTES];
    uint8_t *box; /* malloc'd; ciphertext only */
};

/* Boxes inner from self to peer_public_key (32 bytes) into out. 0, or -1 when
 * memory ran out. Release out with vault_box_clear(). */
int vault_box_seal(struct vault_box *out, const ProtobufCMessage *inner,
                   const struct identity *self, const uint8_t *peer_public_key);
/* An envelope from self with an empty box: "your call did not open". */
void vault_box_unopened(struct vault_box *out, const struct identity *self);
void vault_box_clear(struct vault_box *b);

/* Opens env, which must be addressed to self, with the sender key it names, and
 * unpacks the plaintext as desc into *out (locked memory; free with
 * vault_box_free_unpacked()). 0, or -1 when the envelope is malformed, does not
 * authenticate or does not unpack. The sender key is env->sender_public_key:
 * compare it with the key you expect before trusting the content. */
int vault_box_open(const Bcrm__V1__VaultEnvelope *env, const struct identity *self,
                   const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out);
void vault_box_free_unpacked(ProtobufCMessage *msg);

/* The protobuf-c allocator behind vault_box_open: sodium_malloc / sodium_free. */
extern ProtobufCAllocator vault_box_allocator;

#endif
