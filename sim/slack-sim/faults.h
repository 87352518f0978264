/* faults.h: the faults and rate limits a test switches on through /_sim/faults.
 *
 * One process-wide setting, read by every request (a copy under a read lock) and
 * changed rarely. Revoked tokens are not here: they are a flag on the workspace.
 */
#ifndef SIM_FAULTS_H
#define SIM_FAULTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_TIERS 5 /* Slack's tiers 1-4; index 0 means "not limited" */

struct sim_limits {
    bool enabled;
    int post_per_minute;       /* chat.postMessage per workspace */
    double channel_per_second; /* chat.postMessage per channel */
    int channel_burst;
    int tier_per_minute[SIM_TIERS];
};

/* The codes error_rate may answer with (sim_error_codes[error_code]). */
extern const char *const sim_error_codes[];

struct sim_faults {
    int latency_ms;
    int jitter_ms;
    double error_rate;         /* answer error_status before doing anything */
    int error_status;          /* 500-599, or 200 (Slack's ok:false with HTTP 200) */
    int error_code;            /* index into sim_error_codes: internal_error by default */
    double drop_rate;          /* chat.postMessage: record, then close without answering */
    int64_t storm_until_ms;    /* wall clock; every call is rate limited until then */
    bool short_pages;          /* list pages (users, conversations, members) shorter than asked */
    bool refuse_user_id_posts; /* chat.postMessage to a user id: channel_not_found */
    double empty_page_rate;    /* list pages with nothing in them (not at the end) */
    struct sim_limits limits;
};

/* The starting point, also restored by POST /_sim/reset. Copied. */
void faults_init(const struct sim_faults *defaults);
void faults_get(struct sim_faults *out);
void faults_set(const struct sim_faults *in);
void faults_restore_defaults(void);

/* Applies the fields of a /_sim/faults request to f. Returns 0, or -1 with a
 * message in err naming the bad field. */
int faults_update_from_json(struct sim_faults *f, json_t *req, int64_t now_ms, char *err,
                            size_t errlen);
/* New reference. */
json_t *faults_to_json(const struct sim_faults *f, int64_t now_ms);

#endif
