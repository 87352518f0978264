/* simutil.c: see simutil.h. */
#include "simutil.h"

#include "buf.h"
#include "record.h"
#include "rng.h"

#include "bcrm/http.h"
#include "bcrm/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

int sim_latency_draw(int latency_ms, int jitter_ms)
{
    int jitter = jitter_ms > 0 ? (int)(rng_thread_u64() % (uint64_t)(jitter_ms + 1)) : 0;
    return latency_ms + jitter;
}

void sim_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            getrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    log_info("open files limit", "{s:I}", "nofile", (json_int_t)rl.rlim_cur);
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

int sim_json_choice(json_t *obj, const char *key, const int *choices, int *out, char *err,
                    size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        return 0;
    }
    for (size_t i = 0; json_is_integer(v) && choices[i] != 0; i++) {
        if (json_integer_value(v) == choices[i]) {
            *out = choices[i];
            return 0;
        }
    }
    size_t o = (size_t)snprintf(err, errlen, "%s must be one of", key);
    for (size_t i = 0; choices[i] != 0 && o < errlen; i++) {
        o += (size_t)snprintf(err + o, errlen - o, "%s %d", i ? "," : "", choices[i]);
    }
    return -1;
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

void sim_respond_messages(struct http_response *resp, struct record *r, const char *space,
                          const char *recipient, const char *channel, int64_t since_seq)
{
    size_t len = 0;
    size_t count = 0;
    char *arr = record_messages_text(r, space, recipient, channel, since_seq, &len, &count);
    struct buf b;
    buf_init(&b, len + 64);
    buf_printf(&b, "{\"ok\":true,\"count\":%zu,\"messages\":", count);
    if (arr != NULL) {
        buf_append(&b, arr, len);
    }
    buf_puts(&b, "}");
    free(arr);
    size_t body_len;
    char *body = buf_take(&b, &body_len);
    if (arr == NULL || body == NULL) {
        free(body);
        http_respond_problem(resp, 500, "Internal Server Error", "out of memory");
        return;
    }
    free(resp->body);
    resp->status = 200;
    resp->content_type = "application/json";
    resp->body = body;
    resp->body_len = body_len;
}
