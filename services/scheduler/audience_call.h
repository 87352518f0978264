/* audience_call.h: one platform query to a sender (ListUsers, ListChannelMembers),
 * without blocking the loop.
 *
 * A page of users can take seconds (a slow platform, a tier-2 rate limit), and the
 * scheduler is one thread: a blocking call would stop claims and results meanwhile.
 * The query goes out on its own context of the REQ socket through an nng_aio; NNG's
 * callback (on an NNG thread) only stores the outcome and makes an eventfd readable,
 * which is in the loop's poll set. The loop then takes the reply with
 * audience_call_take() and does everything else on its own thread.
 *
 * One call at a time: pages of one run must be read in order anyway, and the platform's
 * tier-2 limit for users.list leaves nothing to gain from parallel pages of several runs.
 */
#ifndef BCRM_SCHEDULER_AUDIENCE_CALL_H
#define BCRM_SCHEDULER_AUDIENCE_CALL_H

#include "bcrm/v1/query.pb-c.h"

#include <nng/nng.h>
#include <stdbool.h>
#include <stdint.h>

struct audience_call;

/* NULL after logging why. */
struct audience_call *audience_call_new(void);
/* Stops a call in flight (waiting for NNG's callback to finish) and frees. */
void audience_call_free(struct audience_call *c);

/* The fd that becomes readable when a call completes (for poll). */
int audience_call_fd(const struct audience_call *c);
bool audience_call_busy(const struct audience_call *c);

/* Sends query (borrowed, packed here) on a new context of sock. tag (copied, up to 63
 * bytes) names what the call is for, to be handed back by take. 0, or an NNG error (then
 * no call is in flight). */
int audience_call_start(struct audience_call *c, nng_socket sock,
                        const Bcrm__V1__PlatformQuery *query, int timeout_ms, const char *tag);

/* When the call has completed: returns true, and sets *rv (0 or an NNG error), *reply
 * (on rv 0: free with protobuf_c_message_free_unpacked(&(*reply)->base, NULL); NULL
 * otherwise) and tag (64 bytes). False while it is still running or when none was
 * started. Clears the fd's readiness. */
bool audience_call_take(struct audience_call *c, int *rv, Bcrm__V1__PlatformReply **reply,
                        char tag[64]);

#endif
