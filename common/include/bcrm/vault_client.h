/* vault_client.h: how the api, the senders and bcrmctl talk to the vault.
 *
 * Every call is boxed from the caller's identity key to the vault's public key
 * (crypto_box_easy), with a fresh request id and timestamp; the reply is boxed
 * back and is only accepted if it opens with the vault's key. A released token
 * is returned in sodium_malloc'd memory: wipe and free it with secret_free() as
 * soon as it is no longer needed.
 *
 * Functions return a Bcrm__V1__VaultCode (0 = VAULT_OK) or -1 when the vault
 * could not be reached or its reply did not authenticate; err names the cause.
 * A client is safe to use from several threads at once.
 */
#ifndef BCRM_VAULT_CLIENT_H
#define BCRM_VAULT_CLIENT_H

#include "bcrm/keys.h"
#include "bcrm/v1/vault.pb-c.h"

#include <stddef.h>
#include <stdint.h>

struct secret {
    uint8_t *data; /* sodium_malloc'd, len bytes plus a NUL */
    size_t len;
};

/* The vault's name for one stored copy of a token (VaultReply.token_ref: the
 * nonce of its ciphertext; not secret). Storing the bot's token again, even the
 * same token, gives another. All zeros when the vault named none. */
#define VAULT_TOKEN_REF_BYTES 24

void secret_free(struct secret *s);

struct vault_client;

/* url: the vault's REP address (BCRM_VAULT_URL). vault_public_key: 32 bytes.
 * self is borrowed and must outlive the client. NULL on failure. */
struct vault_client *vault_client_open(const char *url, const uint8_t *vault_public_key,
                                       const struct identity *self, int timeout_ms, char *err,
                                       size_t errlen);
/* The same from BCRM_VAULT_URL, BCRM_VAULT_PUBLIC_KEY and BCRM_VAULT_TIMEOUT. */
struct vault_client *vault_client_from_env(const struct identity *self, char *err, size_t errlen);
void vault_client_close(struct vault_client *vc);

int vault_store_token(struct vault_client *vc, const char *org_id, const char *bot_id,
                      Bcrm__V1__Platform platform, const uint8_t *token, size_t len, char *err,
                      size_t errlen);
/* A token sealed to the vault's public key (crypto_box_seal) by a sender that
 * exchanged an OAuth code: the caller (the api) cannot open it and forwards it as
 * is; the vault opens and stores it as vault_store_token does. */
int vault_store_sealed_token(struct vault_client *vc, const char *org_id, const char *bot_id,
                             Bcrm__V1__Platform platform, const uint8_t *sealed, size_t len,
                             char *err, size_t errlen);
/* On VAULT_OK, *out holds the token; free it with secret_free(). */
int vault_release_token(struct vault_client *vc, const char *org_id, const char *bot_id,
                        Bcrm__V1__Platform platform, struct secret *out, char *err, size_t errlen);
/* The same, also giving which stored copy was released (ref, VAULT_TOKEN_REF_BYTES;
 * zeros unless VAULT_OK). */
int vault_release_token_ref(struct vault_client *vc, const char *org_id, const char *bot_id,
                            Bcrm__V1__Platform platform, struct secret *out,
                            uint8_t ref[VAULT_TOKEN_REF_BYTES], char *err, size_t errlen);

/* Reconnecting a bot (docs/vault.md, "Staged tokens"). vault_stage_token stores
 * token (borrowed; the caller wipes it) under the staging id of bot_id
 * (token_staging.h), replacing an earlier staged one and leaving the bot's own
 * token alone; staging_id receives that id (for the sender's VerifyBot) and
 * staged_ref the stored copy's ref. vault_promote_token then moves the staged
 * token to the bot, only if the staged copy is still staged_ref (VAULT_NOT_FOUND
 * otherwise: nothing staged, or another staging since). To give up, destroy the
 * staging id with vault_destroy_token (destroying the bot's token removes its
 * staged token too). */
int vault_stage_token(struct vault_client *vc, const char *org_id, const char *bot_id,
                      Bcrm__V1__Platform platform, const uint8_t *token, size_t len,
                      char staging_id[37], uint8_t staged_ref[VAULT_TOKEN_REF_BYTES], char *err,
                      size_t errlen);
int vault_promote_token(struct vault_client *vc, const char *org_id, const char *bot_id,
                        Bcrm__V1__Platform platform,
                        const uint8_t staged_ref[VAULT_TOKEN_REF_BYTES], char *err, size_t errlen);
/* Deletes the token's ciphertext (crypto-shredding), and the bot's staged token
 * if there is one. Idempotent: destroying a token that is not stored also answers
 * VAULT_OK. */
int vault_destroy_token(struct vault_client *vc, const char *org_id, const char *bot_id, char *err,
                        size_t errlen);
/* The vault's state, for the ops role: the number of stored tokens and the
 * current key version. */
int vault_status(struct vault_client *vc, int64_t *token_count, int32_t *key_version, char *err,
                 size_t errlen);

/* Any call, for the ops role's operations (status, rotate, rewrap, config,
 * audit; bcrmctl): fill call's op and leave request_id and issued_at_ms to the
 * client, which sets them (call is borrowed, and its request_id points into the
 * client's stack until this returns). Whenever the vault answered, *reply holds
 * its reply, whatever the code: free it with vault_reply_free(). */
int vault_call_raw(struct vault_client *vc, Bcrm__V1__VaultCall *call, Bcrm__V1__VaultReply **reply,
                   char *err, size_t errlen);
void vault_reply_free(Bcrm__V1__VaultReply *reply);

#endif
