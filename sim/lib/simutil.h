/* simutil.h: small helpers both simulators' control endpoints and request paths
 * share. */
#ifndef SIM_SIMUTIL_H
#define SIM_SIMUTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The latency fault's delay for one call: latency_ms plus a uniform draw from 0
 * to jitter_ms. The call is handled on arrival and its answer held that long
 * (http_response.delay_ms), so no thread sleeps. */
int sim_latency_draw(int latency_ms, int jitter_ms);
/* Raises the soft limit on open files to the hard one: each connection held by a
 * latency fault keeps its descriptor. Logs what it got. */
void sim_raise_fd_limit(void);

/* Readers of one optional field of a /_sim/ request body. Each leaves *out alone
 * when the field is absent, and returns -1 with a message in err naming the field
 * when it is present but wrong. */
int sim_json_int(json_t *obj, const char *key, int min, int max, int *out, char *err,
                 size_t errlen);
/* A probability: a number from 0 to 1. */
int sim_json_rate(json_t *obj, const char *key, double *out, char *err, size_t errlen);
int sim_json_bool(json_t *obj, const char *key, bool *out, char *err, size_t errlen);
/* A positive number up to max. */
int sim_json_positive(json_t *obj, const char *key, double max, double *out, char *err,
                      size_t errlen);
/* An integer from choices (0-terminated). */
int sim_json_choice(json_t *obj, const char *key, const int *choices, int *out, char *err,
                    size_t errlen);
/* Fails (naming it) on the first field of obj not in known (NULL-terminated), so
 * a typo in a test is reported rather than ignored. */
int sim_json_known_fields(json_t *obj, const char *const *known, char *err, size_t errlen);

struct http_response;
struct record;

/* Answers GET /_sim/messages: {"ok":true,"count":N,"messages":[...]} from the
 * record, with the filters given (each may be NULL). */
void sim_respond_messages(struct http_response *resp, struct record *r, const char *space,
                          const char *recipient, const char *channel, int64_t since_seq);

#endif
