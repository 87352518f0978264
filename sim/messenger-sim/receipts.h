/* receipts.h: delivery and read events after Send API deliveries, on their own.
 *
 * On Messenger a page learns that a message arrived from a delivery event
 * ({"delivery":{"mids":[...],"watermark":ms}}) and that it was seen from a read
 * event ({"read":{"watermark":ms}}: everything sent up to then was read). With
 * receipts switched on, each message the Send API records is followed,
 * delivery_delay_ms later, by a delivery event naming its message id, and, for
 * the people who read, by a read event read_delay_ms after that, its watermark
 * the time of reading. Who reads is fixed per person (msim_person.read_draw below
 * read_fraction), so a test knows in advance (GET /_sim/users: "reads"). One
 * thread posts the events to the webhook, signed with the app secret as Meta
 * signs them, and puts the items due together for one page in one POST (several
 * mids for one person in one delivery item, one read item per person), as Meta
 * batches them. A dropped
 * answer (drop_rate) is delivered all the same: the message did arrive.
 *
 * Switched at run time by POST /_sim/receipts (off by default, or
 * MESSENGER_SIM_RECEIPTS). Switching off drops what is waiting. The thread
 * borrows the population, which outlives it.
 */
#ifndef MSIM_RECEIPTS_H
#define MSIM_RECEIPTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct msim_person;
struct msim_receipts;

struct msim_receipts_config {
    bool enabled;
    int delivery_delay_ms; /* from the send to its delivery event */
    int read_delay_ms;     /* from the delivery event to the read event */
    double read_fraction;  /* the share of people who read, 0 to 1 */
    char url[1024];        /* "" for MESSENGER_SIM_WEBHOOK_URL */
};

/* Starts the sender thread; defaults are copied (also what /_sim/reset brings
 * back). NULL when out of memory or threads. Free with msim_receipts_stop(). */
struct msim_receipts *msim_receipts_start(const struct msim_receipts_config *defaults);
/* Drops what is waiting, stops the thread, frees. NULL is fine. */
void msim_receipts_stop(struct msim_receipts *r);

/* A message the Send API just recorded for person: queues its receipts when
 * they are on. mid is copied. */
void msim_receipts_sent(struct msim_receipts *r, const struct msim_person *person, const char *mid);
/* Whether person reads, under the current read_fraction. */
bool msim_receipts_reads(struct msim_receipts *r, const struct msim_person *person);

/* GET /_sim/receipts: the settings and counters, a new object. */
json_t *msim_receipts_json(struct msim_receipts *r);
/* POST /_sim/receipts {enabled?, delivery_delay_ms?, read_delay_ms?,
 * read_fraction?, url?}. Returns 0, or -1 with err naming the bad field (nothing
 * is changed then). */
int msim_receipts_update(struct msim_receipts *r, json_t *body, char *err, size_t errlen);
/* /_sim/reset: drops what is waiting, zeroes the counters, and brings the
 * settings back to the defaults unless keep_settings. */
void msim_receipts_reset(struct msim_receipts *r, bool keep_settings);

#endif
