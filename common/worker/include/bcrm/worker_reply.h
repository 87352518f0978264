/* worker_reply.h: building a PlatformReply whose every string and array is
 * malloc'd, and freeing it again with worker_reply_clear().
 */
#ifndef BCRM_WORKER_REPLY_H
#define BCRM_WORKER_REPLY_H

#include "bcrm/v1/query.pb-c.h"

#include <jansson.h>
#include <stdint.h>

/* Sets status and error (copied; NULL for none). */
void worker_reply_status(Bcrm__V1__PlatformReply *reply, Bcrm__V1__QueryStatus status,
                         const char *error);
/* A new zeroed user or channel appended to the reply, NULL when out of memory. */
Bcrm__V1__PlatformUser *worker_reply_add_user(Bcrm__V1__PlatformReply *reply);
Bcrm__V1__PlatformChannel *worker_reply_add_channel(Bcrm__V1__PlatformReply *reply);
/* Appends a copy of id to member_ids. 0 or -1. */
int worker_reply_add_member_id(Bcrm__V1__PlatformReply *reply, const char *id);
/* The identity, created on first use. */
Bcrm__V1__BotIdentity *worker_reply_identity(Bcrm__V1__PlatformReply *reply);
/* A malloc'd copy of a JSON string member of obj, or NULL when it is absent, not a
 * string, or empty. */
char *worker_json_strdup(const json_t *obj, const char *key);
/* Frees everything the reply owns (request_id and a malloc'd sealed_token
 * included) and re-initialises it. */
void worker_reply_clear(Bcrm__V1__PlatformReply *reply);

#endif
