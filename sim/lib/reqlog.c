/* reqlog.c: see reqlog.h. */
#include "reqlog.h"

#include "params.h"

#include "bcrm/http.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RAW_PREVIEW_MAX 512 /* bytes of an unreadable body shown in the listing */

/* One request, copied: every string points into data. */
struct reqlog_entry {
    int64_t seq;
    int64_t at_ms;
    int status;
    int error_code;
    bool dropped;
    bool body_truncated;
    const char *method; /* NULL: unknown */
    const char *error;  /* NULL: none */
    const char *space;  /* NULL: none */
    const char *auth;
    const char *http_method;
    const char *path;
    const char *content_type; /* NULL: no header */
    const char *query;        /* "key\0value\0" pairs */
    size_t query_len;
    const char *body;
    size_t body_len;
    char data[];
};

struct reqlog {
    pthread_mutex_t lock;
    struct reqlog_entry **ring; /* capacity slots; the oldest entry at head */
    size_t capacity;
    size_t head;
    size_t count;
    int64_t next_seq;
    int64_t total;   /* entries added since the last reset */
    int64_t evicted; /* entries pushed out by newer ones since the last reset */
    bool enabled;
    const char *space_key;
    const char *const *secret_args;
};

struct reqlog *reqlog_new(size_t capacity, const char *space_key, const char *const *secret_args)
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
    log->space_key = space_key;
    log->secret_args = secret_args;
    return log;
}

static void ring_clear(struct reqlog *log)
{
    for (size_t i = 0; i < log->count; i++) {
        free(log->ring[(log->head + i) % log->capacity]);
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
    /* A relaxed read is enough: switching the log is a test's setup step. */
    return log != NULL && __atomic_load_n(&log->enabled, __ATOMIC_RELAXED);
}

void reqlog_set_enabled(struct reqlog *log, bool enabled)
{
    __atomic_store_n(&log->enabled, enabled && log->capacity > 0, __ATOMIC_RELAXED);
}

/* Query pairs are gathered in two passes over MHD's table: sizes, then copies. */
struct query_copy {
    char *out; /* NULL in the sizing pass */
    size_t len;
};

static enum MHD_Result copy_query_pair(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    (void)kind;
    struct query_copy *q = cls;
    if (key == NULL) {
        return MHD_YES;
    }
    const char *v = value ? value : "";
    size_t klen = strlen(key) + 1;
    size_t vlen = strlen(v) + 1;
    if (q->out != NULL) {
        memcpy(q->out + q->len, key, klen);
        memcpy(q->out + q->len + klen, v, vlen);
    }
    q->len += klen + vlen;
    return MHD_YES;
}

/* Copies s (NULL stays NULL) to *at, advancing it. */
static const char *put_str(char **at, const char *s)
{
    if (s == NULL) {
        return NULL;
    }
    size_t len = strlen(s) + 1;
    char *dst = *at;
    memcpy(dst, s, len);
    *at += len;
    return dst;
}

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

/* The Authorization header's scheme, lower-cased, into out; "none" without one. */
static void auth_scheme(const struct http_request *req, char *out, size_t outlen)
{
    const char *auth = http_header(req, "Authorization");
    if (auth == NULL) {
        snprintf(out, outlen, "none");
        return;
    }
    size_t len = strcspn(auth, " ");
    if (len >= outlen) {
        len = outlen - 1;
    }
    for (size_t i = 0; i < len; i++) {
        char c = auth[i];
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    out[len] = '\0';
}

void reqlog_add(struct reqlog *log, const struct http_request *req, const struct reqlog_call *call)
{
    if (!reqlog_enabled(log)) {
        return;
    }
    char scheme[24];
    if (call->auth == NULL) {
        auth_scheme(req, scheme, sizeof(scheme));
    }
    const char *auth = call->auth ? call->auth : scheme;
    const char *ctype = http_header(req, "Content-Type");
    struct query_copy q = {0};
    MHD_get_connection_values(req->impl, MHD_GET_ARGUMENT_KIND, copy_query_pair, &q);
    size_t body_len = req->body_len < REQLOG_BODY_MAX ? req->body_len : REQLOG_BODY_MAX;
    size_t size = str_size(call->method) + str_size(call->error) + str_size(call->space) +
                  str_size(auth) + str_size(req->method) + str_size(req->path) + str_size(ctype) +
                  q.len + body_len + 1;
    struct reqlog_entry *e = malloc(sizeof(*e) + size);
    if (e == NULL) {
        return; /* the log is a test aid: a lost entry is better than a lost answer */
    }
    char *at = e->data;
    e->at_ms = call->at_ms;
    e->status = call->status;
    e->error_code = call->error_code;
    e->dropped = call->dropped;
    e->body_truncated = body_len < req->body_len;
    e->method = put_str(&at, call->method);
    e->error = put_str(&at, call->error);
    e->space = put_str(&at, call->space);
    e->auth = put_str(&at, auth);
    e->http_method = put_str(&at, req->method);
    e->path = put_str(&at, req->path);
    e->content_type = put_str(&at, ctype);
    struct query_copy fill = {.out = at};
    MHD_get_connection_values(req->impl, MHD_GET_ARGUMENT_KIND, copy_query_pair, &fill);
    e->query = at;
    e->query_len = fill.len < q.len ? fill.len : q.len;
    at += q.len;
    memcpy(at, req->body, body_len);
    at[body_len] = '\0';
    e->body = at;
    e->body_len = body_len;

    struct reqlog_entry *old = NULL;
    pthread_mutex_lock(&log->lock);
    e->seq = log->next_seq++;
    log->total++;
    if (log->count == log->capacity) {
        old = log->ring[log->head];
        log->ring[log->head] = e;
        log->head = (log->head + 1) % log->capacity;
        log->evicted++;
    } else {
        log->ring[(log->head + log->count) % log->capacity] = e;
        log->count++;
    }
    pthread_mutex_unlock(&log->lock);
    free(old);
}

static bool is_secret(const struct reqlog *log, const char *key)
{
    for (size_t i = 0; log->secret_args != NULL && log->secret_args[i] != NULL; i++) {
        if (strcmp(key, log->secret_args[i]) == 0) {
            return true;
        }
    }
    return false;
}

static void redact(const struct reqlog *log, json_t *obj)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        if (is_secret(log, key)) {
            json_object_set_new(obj, key, json_string(REQLOG_REDACTED));
        }
    }
}

/* Adds body_format and body (and raw_body when unreadable) to o. */
static void body_json(const struct reqlog *log, const struct reqlog_entry *e, json_t *o)
{
    const char *format = "none";
    json_t *body = NULL;
    if (e->body_len > 0) {
        bool is_json =
            e->content_type != NULL && strncasecmp(e->content_type, "application/json", 16) == 0;
        if (is_json) {
            body = json_loadb(e->body, e->body_len, JSON_DECODE_ANY, NULL);
        } else if ((body = json_object()) != NULL &&
                   params_parse_form(body, e->body, e->body_len) != 0) {
            json_decref(body);
            body = NULL;
        }
        format = body == NULL ? "unreadable" : is_json ? "json" : "form";
        if (body == NULL) {
            /* Printable ASCII only: the body may be anything, JSON text may not. */
            char preview[RAW_PREVIEW_MAX + 1];
            size_t n = e->body_len < RAW_PREVIEW_MAX ? e->body_len : RAW_PREVIEW_MAX;
            for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)e->body[i];
                preview[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
            }
            preview[n] = '\0';
            json_object_set_new(o, "raw_body", json_string(preview));
        } else if (json_is_object(body)) {
            redact(log, body);
        }
    }
    json_object_set_new(o, "body_format", json_string(format));
    json_object_set_new(o, "body", body ? body : json_null());
    if (e->body_truncated) {
        json_object_set_new(o, "body_truncated", json_true());
    }
}

static json_t *entry_json(const struct reqlog *log, const struct reqlog_entry *e)
{
    json_t *query = json_object();
    for (size_t at = 0; at < e->query_len;) {
        const char *key = e->query + at;
        const char *value = key + strlen(key) + 1;
        at = (size_t)(value - e->query) + strlen(value) + 1;
        json_object_set_new(query, key, json_string(is_secret(log, key) ? REQLOG_REDACTED : value));
    }
    json_t *o = json_pack(
        "{s:I, s:I, s:s, s:s, s:o, s:o, s:s, s:i, s:b, s:b}", "seq", (json_int_t)e->seq, "at_ms",
        (json_int_t)e->at_ms, "http_method", e->http_method, "path", e->path, "content_type",
        e->content_type ? json_string(e->content_type) : json_null(), "query", query, "auth",
        e->auth, "status", e->status, "ok",
        e->status == 200 && e->error == NULL && e->error_code == 0, "dropped", e->dropped);
    if (o == NULL) {
        return NULL;
    }
    json_object_set_new(o, "method", e->method ? json_string(e->method) : json_null());
    json_object_set_new(o, "error", e->error ? json_string(e->error) : json_null());
    json_object_set_new(o, "error_code", e->error_code ? json_integer(e->error_code) : json_null());
    json_object_set_new(o, log->space_key, e->space ? json_string(e->space) : json_null());
    body_json(log, e, o);
    return o;
}

json_t *reqlog_list(struct reqlog *log, int64_t since_seq, const char *method, size_t limit)
{
    json_t *arr = json_array();
    if (arr == NULL) {
        return NULL;
    }
    /* Built under the lock: entries are freed by reqlog_add() once evicted. The
     * listing is a test's read, rare next to the calls it slows down. */
    pthread_mutex_lock(&log->lock);
    for (size_t i = 0; i < log->count && (limit == 0 || json_array_size(arr) < limit); i++) {
        const struct reqlog_entry *e = log->ring[(log->head + i) % log->capacity];
        if (e->seq <= since_seq ||
            (method != NULL && (e->method == NULL || strcmp(e->method, method) != 0))) {
            continue;
        }
        json_array_append_new(arr, entry_json(log, e));
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
