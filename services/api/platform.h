/* platform.h: how api handlers ask a platform sender something live (PlatformQuery
 * over the REQ sockets of struct api_ctx) and turn the answer into HTTP.
 *
 * The senders are the only processes that speak to Slack and Messenger; what they
 * report about a bot's users lives in this process for one request only and is
 * never stored.
 */
#ifndef BCRM_API_PLATFORM_H
#define BCRM_API_PLATFORM_H

#include "api.h"
#include "bcrm/v1/query.pb-c.h"
#include "bcrm/v1/send.pb-c.h"

#include <stdbool.h>

/* "slack" or "messenger" as the bus enum. */
Bcrm__V1__Platform platform_enum_of(const char *platform);

/* Starts q as a question about bot_id of org_id, under a fresh request id written
 * into request_id: q borrows all three, which must outlive it. The caller sets the
 * query case. */
void platform_query_init(Bcrm__V1__PlatformQuery *q, char request_id[33], const char *org_id,
                         const char *bot_id);

/* Asks a sender of platform. 0 with *reply set whatever its status (free it with
 * protobuf_c_message_free_unpacked(&(*reply)->base, NULL)), or -1 after answering 503
 * because no sender answered in time. q is borrowed. */
int platform_call(struct api_req *r, const char *platform, Bcrm__V1__PlatformQuery *q,
                  Bcrm__V1__PlatformReply **reply);

/* Answers a reply that is not QUERY_OK: 429 with Retry-After, 503, 502, or (while
 * verifying a new token, whose refusal is the client's input) 422. */
void platform_answer_failure(struct api_req *r, const char *platform,
                             const Bcrm__V1__PlatformReply *rep, bool verifying);

/* A platform user as the API shows it ({id, name, real_name, first_name, tz, ...}).
 * New reference. */
json_t *platform_user_json(const Bcrm__V1__PlatformUser *u);

/* Marks a bot token_invalid after the platform refused its token, and pauses its
 * scheduled and running campaigns, telling the scheduler (NOTIFY), in one
 * statement (bots_token_invalid, db/migrations/0011), as the scheduler does when a
 * send finds out. 0, or -1 (the database unreachable, answered 503; or the
 * statement failed). */
int platform_mark_token_invalid(struct api_req *r, const char *bot_id);

/* Answers a live read's reply that is not QUERY_OK (platform_answer_failure, not
 * verifying), first marking the bot token_invalid when the sender found its token
 * revoked. */
void platform_answer_read_failure(struct api_req *r, const char *platform, const char *bot_id,
                                  const Bcrm__V1__PlatformReply *rep);

#endif
