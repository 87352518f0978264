/* segments.h: what campaigns.c needs of segments. */
#ifndef BCRM_API_SEGMENTS_H
#define BCRM_API_SEGMENTS_H

#include "api.h"
#include "jsonv.h"

/* Looks up segment_id in the request's org for a campaign of bot_id. 0 with *filter
 * set to a new reference of the segment's filter; 0 with *filter NULL and v failed
 * (on audience.segment_id) when there is no such segment or it is another bot's;
 * -1 when the database failed (nothing answered). */
int segments_resolve(struct api_req *r, PGconn *conn, const char *segment_id, const char *bot_id,
                     json_t **filter, struct jv *v);

#endif
