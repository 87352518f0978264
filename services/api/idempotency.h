/* idempotency.h: replaying the first answer to a create request that carries an
 * Idempotency-Key (spec/api.md).
 *
 * The key is claimed in idempotency_keys before the handler runs (status 0 means
 * "in progress"), so two concurrent requests with one key cannot both create. A
 * 2xx answer is stored for replay (for 24 hours); any other answer releases the
 * claim so the client may try again.
 */
#ifndef BCRM_API_IDEMPOTENCY_H
#define BCRM_API_IDEMPOTENCY_H

#include "api.h"

struct idem_state {
    bool claimed;
    char key[256];
};

/* 0: go on and run the handler (claimed tells whether a key was claimed);
 * 1: the request has been answered (a replay, a conflict, or an error). */
int idem_begin(struct api_req *r, struct idem_state *st);
/* Stores a 2xx answer for replay, or releases the claim. */
void idem_finish(struct api_req *r, struct idem_state *st);

#endif
