/* reqlog.c: see reqlog.h. */
#include "reqlog.h"

#include "params.h"

#include "bcrm/http.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RAW_PREVIEW_MAX 512 /* bytes of an unreadable body kept in the log */

struct reqlog {
    pthread_mutex_t lock;
    json_t **ring; /* capacity slots; the oldest entry at head */
    size_t capacity;
    size_t head;
    size_t count;
    int64_t next_seq;
    int64_t total;   /* entries ever added */
    int64_t evicted; /* entries pushed out by newer ones since the last reset */
    bool enabled;
};

struct reqlog *reqlog_new(size_t capacity)
{
    struct reqlog *log = calloc(1, sizeof(*log));
    if (log == NULL) {
        return NULL;
    }
    log->ring = calloc(capacity ? capacity : 1, sizeof(*log->ring));
    if (log->ring == NULL) {
        free(log);
        return NULL;
    }
    pthread_mutex_init(&log->lock, NULL);
    log->capacity = capacity;
    log->next_seq = 1;
    log->enabled = capacity > 0;
    return log;
}

static void ring_clear(struct reqlog *log)
{
    for (size_t i = 0; i < log->count; i++) {
        json_decref(log->ring[(log->head + i) % log->capacity]);
    }
    log->head = 0;
    log->count = 0;
}

void reqlog_free(struct reqlog *log)
{
    if (log == NULL) {
        return;
    }
    ring_clear(log);
    pthread_mutex_destroy(&log->lock);
    free(log->ring);
    free(log);
}

bool reqlog_enabled(const struct reqlog *log)
{
    /* A racy read is fine: switching the log is a test's setup step. */
    return log != NULL && __atomic_load_n(&log->enabled, __ATOMIC_RELAXED);
}

void reqlog_set_enabled(struct reqlog *log, bool enabled)
{
    __atomic_store_n(&log->enabled, enabled && log->capacity > 0, __ATOMIC_RELAXED);
}

static bool is_secret(const char *key, const char *const *secret_args)
{
    for (size_t i = 0; secret_args != NULL && secret_args[i] != NULL; i++) {
        if (strcmp(key, secret_args[i]) == 0) {
            return true;
        }
    }
    return false;
}

struct query_ctx {
    json_t *obj;
    const char *const *secret_args;
};

static enum MHD_Result add_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    struct query_ctx *q = cls;
    if (key != NULL) {
        const char *shown = is_secret(key, q->secret_args) ? REQLOG_REDACTED : value ? value : "";
        json_object_set_new(q->obj, key, json_string(shown));
    }
    return MHD_YES;
}

static void redact(json_t *obj, const char *const *secret_args)
{
    if (!json_is_object(obj)) {
        return;
    }
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        if (is_secret(key, secret_args)) {
            json_object_set_new(obj, key, json_string(REQLOG_REDACTED));
        }
    }
}

/* The body as the platform would read it: format and arguments. */
static void add_body(json_t *entry, const struct http_request *req, const char *ctype,
                     const char *const *secret_args)
{
    const char *format = "none";
    json_t *body = json_null();
    if (req->body_len > 0) {
        if (ctype != NULL && strncasecmp(ctype, "application/json", 16) == 0) {
            body = json_loadb(req->body, req->body_len, JSON_DECODE_ANY, NULL);
            format = body != NULL ? "json" : "unreadable";
        } else {
            body = json_object();
            if (body != NULL && params_parse_form(body, req->body, req->body_len) != 0) {
                json_decref(body);
                body = NULL;
            }
            format = body != NULL ? "form" : "unreadable";
        }
        if (body == NULL) {
            size_t n = req->body_len < RAW_PREVIEW_MAX ? req->body_len : RAW_PREVIEW_MAX;
            json_object_set_new(entry, "raw_body", json_stringn_nocheck(req->body, n));
            body = json_null();
        }
        redact(body, secret_args);
    }
    json_object_set_new(entry, "body_format", json_string(format));
    json_object_set_new(entry, "body", body);
}

json_t *reqlog_entry_new(const struct http_request *req, int64_t at_ms,
                         const char *const *secret_args)
{
    json_t *entry = json_object();
    json_t *query = json_object();
    if (entry == NULL || query == NULL) {
        json_decref(entry);
        json_decref(query);
        return NULL;
    }
    struct query_ctx q = {.obj = query, .secret_args = secret_args};
    MHD_get_connection_values(req->impl, MHD_GET_ARGUMENT_KIND, add_query_arg, &q);
    const char *ctype = http_header(req, "Content-Type");
    json_object_set_new(entry, "at_ms", json_integer(at_ms));
    json_object_set_new(entry, "http_method", json_string(req->method));
    json_object_set_new(entry, "path", json_string(req->path));
    json_object_set_new(entry, "content_type", ctype ? json_string(ctype) : json_null());
    json_object_set_new(entry, "query", query);
    add_body(entry, req, ctype, secret_args);

    /* Only the scheme of the Authorization header: never the credential. */
    const char *auth = http_header(req, "Authorization");
    json_t *scheme = json_string("none");
    if (auth != NULL) {
        size_t len = strcspn(auth, " ");
        char lower[32];
        if (len >= sizeof(lower)) {
            len = sizeof(lower) - 1;
        }
        for (size_t i = 0; i < len; i++) {
            char c = auth[i];
            lower[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        lower[len] = '\0';
        json_decref(scheme);
        scheme = json_string(lower);
    }
    json_object_set_new(entry, "auth", scheme);
    return entry;
}

void reqlog_add(struct reqlog *log, json_t *entry)
{
    if (entry == NULL) {
        return;
    }
    json_t *old = NULL;
    pthread_mutex_lock(&log->lock);
    if (!log->enabled) {
        pthread_mutex_unlock(&log->lock);
        json_decref(entry);
        return;
    }
    json_object_set_new(entry, "seq", json_integer(log->next_seq++));
    log->total++;
    if (log->count == log->capacity) {
        old = log->ring[log->head];
        log->ring[log->head] = entry;
        log->head = (log->head + 1) % log->capacity;
        log->evicted++;
    } else {
        log->ring[(log->head + log->count) % log->capacity] = entry;
        log->count++;
    }
    pthread_mutex_unlock(&log->lock);
    json_decref(old); /* outside the lock: freeing a large entry takes a while */
}

json_t *reqlog_list(struct reqlog *log, int64_t since_seq, const char *method, size_t limit)
{
    json_t *arr = json_array();
    if (arr == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&log->lock);
    for (size_t i = 0; i < log->count && (limit == 0 || json_array_size(arr) < limit); i++) {
        json_t *e = log->ring[(log->head + i) % log->capacity];
        if (json_integer_value(json_object_get(e, "seq")) <= since_seq) {
            continue;
        }
        const char *m = json_string_value(json_object_get(e, "method"));
        if (method != NULL && (m == NULL || strcmp(m, method) != 0)) {
            continue;
        }
        /* Entries are never changed once added, so sharing them is safe. */
        json_array_append(arr, e);
    }
    json_t *answer = json_pack("{s:b, s:I, s:I, s:I, s:b, s:I, s:o}", "ok", 1, "count",
                               (json_int_t)json_array_size(arr), "total", (json_int_t)log->total,
                               "evicted", (json_int_t)log->evicted, "enabled", log->enabled,
                               "capacity", (json_int_t)log->capacity, "requests", arr);
    pthread_mutex_unlock(&log->lock);
    return answer;
}

void reqlog_reset(struct reqlog *log)
{
    pthread_mutex_lock(&log->lock);
    ring_clear(log);
    log->total = 0;
    log->evicted = 0;
    pthread_mutex_unlock(&log->lock);
}
