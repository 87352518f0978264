/* token_staging.c: the staging id of a bot (see token_staging.h). */
#include "bcrm/token_staging.h"

#include <ctype.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The label keeps these hashes apart from any other use of BLAKE2b on bot ids. */
static const char STAGING_LABEL[] = "bcrm.token.staging.v1";

int token_staging_id(const char *bot_id, char out[TOKEN_STAGING_ID_LEN + 1])
{
    char canon[TOKEN_STAGING_ID_LEN + 1];
    if (bot_id == NULL || strlen(bot_id) != TOKEN_STAGING_ID_LEN) {
        return -1;
    }
    for (int i = 0; i < TOKEN_STAGING_ID_LEN; i++) {
        unsigned char c = (unsigned char)bot_id[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-' : !isxdigit(c)) {
            return -1;
        }
        canon[i] = (char)tolower(c);
    }
    canon[TOKEN_STAGING_ID_LEN] = '\0';

    uint8_t h[16];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    crypto_generichash_update(&st, (const uint8_t *)STAGING_LABEL, sizeof(STAGING_LABEL));
    crypto_generichash_update(&st, (const uint8_t *)canon, TOKEN_STAGING_ID_LEN);
    crypto_generichash_final(&st, h, sizeof(h));
    h[6] = (uint8_t)((h[6] & 0x0f) | 0x80); /* version 8: custom (RFC 9562) */
    h[8] = (uint8_t)((h[8] & 0x3f) | 0x80); /* the RFC variant */
    snprintf(out, TOKEN_STAGING_ID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", h[0], h[1],
             h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13], h[14],
             h[15]);
    return 0;
}
