/* keys.h: service identity key pairs and hex helpers.
 *
 * Each service has an X25519 key pair (crypto_box). The secret key lives in a
 * file of 64 hex characters that only the service's user may read: loading
 * refuses a file that the group or others can read. Secret bytes are kept in
 * sodium_malloc'd memory (guard pages, locked, wiped on free).
 */
#ifndef BCRM_KEYS_H
#define BCRM_KEYS_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

struct identity {
    uint8_t public_key[crypto_box_PUBLICKEYBYTES];
    uint8_t *secret_key; /* crypto_box_SECRETKEYBYTES, sodium_malloc'd */
};

/* 0, or -1 with err filled ("key file /x: readable by group or others (mode 0644)"). */
int identity_load(const char *path, struct identity *id, char *err, size_t errlen);
/* Writes a new secret key to path with mode 0600 (fails if it exists). */
int identity_generate(const char *path, struct identity *id, char *err, size_t errlen);
void identity_free(struct identity *id);

/* Reads a file holding exactly n bytes as 2n hex characters (a trailing newline
 * allowed) into out, refusing group- or world-readable files. 0 or -1. */
int secret_file_read(const char *path, uint8_t *out, size_t n, char *err, size_t errlen);

/* Hex of n bytes into out (2n+1 bytes). */
void hex_encode(char *out, const uint8_t *in, size_t n);
/* Exactly n bytes from 2n hex characters. 0 or -1. */
int hex_decode(uint8_t *out, size_t n, const char *hex);

#endif
