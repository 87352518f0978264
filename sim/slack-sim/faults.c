/* faults.c: see faults.h. */
#include "faults.h"

#include "simutil.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

const char *const sim_error_codes[] = {"internal_error", "fatal_error", "service_unavailable",
                                       "request_timeout", NULL};

static pthread_rwlock_t faults_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct sim_faults faults_current;
static struct sim_faults faults_defaults;

void faults_init(const struct sim_faults *defaults)
{
    pthread_rwlock_wrlock(&faults_lock);
    faults_defaults = *defaults;
    faults_current = *defaults;
    pthread_rwlock_unlock(&faults_lock);
}

void faults_get(struct sim_faults *out)
{
    pthread_rwlock_rdlock(&faults_lock);
    *out = faults_current;
    pthread_rwlock_unlock(&faults_lock);
}

void faults_set(const struct sim_faults *in)
{
    pthread_rwlock_wrlock(&faults_lock);
    faults_current = *in;
    pthread_rwlock_unlock(&faults_lock);
}

void faults_restore_defaults(void)
{
    pthread_rwlock_wrlock(&faults_lock);
    faults_current = faults_defaults;
    pthread_rwlock_unlock(&faults_lock);
}

/* The fields this module understands; control.c handles revoke_token and
 * restore_token itself. Anything else is a typo worth reporting. */
static const char *const fault_fields[] = {
    "latency_ms",
    "jitter_ms",
    "error_rate",
    "error_status",
    "error_code",
    "drop_rate",
    "ratelimit_storm_seconds",
    "short_pages",
    "empty_page_rate",
    "refuse_user_id_posts",
    "limits",
    "post_per_minute",
    "channel_per_second",
    "channel_burst",
    "tier1_per_minute",
    "tier2_per_minute",
    "tier3_per_minute",
    "tier4_per_minute",
    "revoke_token",
    "restore_token",
    "revoke_as",
    "clear",
    NULL,
};

/* error_code: one of sim_error_codes, by name. */
static int error_code_from_json(json_t *req, int *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(req, "error_code");
    if (v == NULL) {
        return 0;
    }
    for (int i = 0; json_is_string(v) && sim_error_codes[i] != NULL; i++) {
        if (strcmp(json_string_value(v), sim_error_codes[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    snprintf(err, errlen,
             "error_code: want internal_error, fatal_error, service_unavailable or "
             "request_timeout");
    return -1;
}

int faults_update_from_json(struct sim_faults *f, json_t *req, int64_t now_ms, char *err,
                            size_t errlen)
{
    if (!json_is_object(req)) {
        snprintf(err, errlen, "the body must be a JSON object");
        return -1;
    }
    if (sim_json_known_fields(req, fault_fields, err, errlen) != 0) {
        return -1;
    }
    bool clear = false;
    if (sim_json_bool(req, "clear", &clear, err, errlen) != 0) {
        return -1;
    }
    if (clear) {
        /* Clears the injected faults but keeps the limits as they are. */
        struct sim_limits keep = f->limits;
        memset(f, 0, sizeof(*f));
        f->error_status = 500;
        f->limits = keep;
    }
    int storm_s = -1;
    if (sim_json_int(req, "latency_ms", 0, 60000, &f->latency_ms, err, errlen) != 0 ||
        sim_json_int(req, "jitter_ms", 0, 60000, &f->jitter_ms, err, errlen) != 0 ||
        sim_json_rate(req, "error_rate", &f->error_rate, err, errlen) != 0 ||
        sim_json_int(req, "error_status", 200, 599, &f->error_status, err, errlen) != 0 ||
        error_code_from_json(req, &f->error_code, err, errlen) != 0 ||
        sim_json_bool(req, "refuse_user_id_posts", &f->refuse_user_id_posts, err, errlen) != 0 ||
        sim_json_rate(req, "drop_rate", &f->drop_rate, err, errlen) != 0 ||
        sim_json_int(req, "ratelimit_storm_seconds", 0, 86400, &storm_s, err, errlen) != 0 ||
        sim_json_bool(req, "short_pages", &f->short_pages, err, errlen) != 0 ||
        sim_json_rate(req, "empty_page_rate", &f->empty_page_rate, err, errlen) != 0 ||
        sim_json_bool(req, "limits", &f->limits.enabled, err, errlen) != 0 ||
        sim_json_int(req, "post_per_minute", 1, 1000000, &f->limits.post_per_minute, err, errlen) !=
            0 ||
        sim_json_int(req, "channel_burst", 1, 1000000, &f->limits.channel_burst, err, errlen) !=
            0 ||
        sim_json_int(req, "tier1_per_minute", 1, 1000000, &f->limits.tier_per_minute[1], err,
                     errlen) != 0 ||
        sim_json_int(req, "tier2_per_minute", 1, 1000000, &f->limits.tier_per_minute[2], err,
                     errlen) != 0 ||
        sim_json_int(req, "tier3_per_minute", 1, 1000000, &f->limits.tier_per_minute[3], err,
                     errlen) != 0 ||
        sim_json_int(req, "tier4_per_minute", 1, 1000000, &f->limits.tier_per_minute[4], err,
                     errlen) != 0) {
        return -1;
    }
    if (sim_json_positive(req, "channel_per_second", 1e6, &f->limits.channel_per_second, err,
                          errlen) != 0) {
        return -1;
    }
    if (f->error_status != 200 && f->error_status < 500) {
        snprintf(err, errlen, "error_status: want 200 or 500 to 599");
        return -1;
    }
    if (storm_s >= 0) {
        f->storm_until_ms = storm_s > 0 ? now_ms + (int64_t)storm_s * 1000 : 0;
    }
    return 0;
}

json_t *faults_to_json(const struct sim_faults *f, int64_t now_ms)
{
    int64_t storm_left_ms = f->storm_until_ms > now_ms ? f->storm_until_ms - now_ms : 0;
    return json_pack(
        "{s:i, s:i, s:f, s:i, s:s, s:b, s:f, s:I, s:b, s:f, s:b, s:i, s:f, s:i, s:i, s:i, s:i, "
        "s:i}",
        "latency_ms", f->latency_ms, "jitter_ms", f->jitter_ms, "error_rate", f->error_rate,
        "error_status", f->error_status, "error_code", sim_error_codes[f->error_code],
        "refuse_user_id_posts", f->refuse_user_id_posts, "drop_rate", f->drop_rate,
        "ratelimit_storm_seconds", (json_int_t)((storm_left_ms + 999) / 1000), "short_pages",
        f->short_pages, "empty_page_rate", f->empty_page_rate, "limits", f->limits.enabled,
        "post_per_minute", f->limits.post_per_minute, "channel_per_second",
        f->limits.channel_per_second, "channel_burst", f->limits.channel_burst, "tier1_per_minute",
        f->limits.tier_per_minute[1], "tier2_per_minute", f->limits.tier_per_minute[2],
        "tier3_per_minute", f->limits.tier_per_minute[3], "tier4_per_minute",
        f->limits.tier_per_minute[4]);
}
