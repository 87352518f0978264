/* simutil.c: see simutil.h. */
#include "simutil.h"

#include "rng.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void sim_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

void sim_sleep_latency(int latency_ms, int jitter_ms)
{
    int jitter = jitter_ms > 0 ? (int)(rng_thread_u64() % (uint64_t)(jitter_ms + 1)) : 0;
    if (latency_ms + jitter > 0) {
        sim_sleep_ms(latency_ms + jitter);
    }
}

int sim_json_int(json_t *obj, const char *key, int min, int max, int *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(err, errlen, "%s must be an integer from %d to %d", key, min, max);
        return -1;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

int sim_json_rate(json_t *obj, const char *key, double *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        return 0;
    }
    if (!json_is_number(v) || json_number_value(v) < 0.0 || json_number_value(v) > 1.0) {
        snprintf(err, errlen, "%s must be a number from 0 to 1", key);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

int sim_json_bool(json_t *obj, const char *key, bool *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        return 0;
    }
    if (!json_is_boolean(v)) {
        snprintf(err, errlen, "%s must be true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

int sim_json_positive(json_t *obj, const char *key, double max, double *out, char *err,
                      size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        return 0;
    }
    if (!json_is_number(v) || json_number_value(v) <= 0.0 || json_number_value(v) > max) {
        snprintf(err, errlen, "%s must be a positive number up to %g", key, max);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

int sim_json_known_fields(json_t *obj, const char *const *known, char *err, size_t errlen)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        bool found = false;
        for (size_t i = 0; known[i] != NULL && !found; i++) {
            found = strcmp(key, known[i]) == 0;
        }
        if (!found) {
            snprintf(err, errlen, "unknown field \"%s\"", key);
            return -1;
        }
    }
    return 0;
}
