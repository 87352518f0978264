/* http.c: requests and responses of the platform modules, and the synchronous
 * perform the query threads use. */
#include "bcrm/worker_http.h"

#include "bcrm/clock.h"
#include "bcrm/config.h"
#include "worker_internal.h"

#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void wipe_string(char *s)
{
    if (s != NULL) {
        sodium_memzero(s, strlen(s));
    }
}

void worker_request_free(struct worker_request *req)
{
    wipe_string(req->url);
    free(req->url);
    /* A personalised message carries a person's name. */
    if (req->body != NULL) {
        sodium_memzero(req->body, req->body_len);
    }
    free(req->body);
    for (struct curl_slist *h = req->headers; h != NULL; h = h->next) {
        wipe_string(h->data);
    }
    curl_slist_free_all(req->headers);
    memset(req, 0, sizeof(*req));
}

/* vasprintf into a block of the exact size: vasprintf grows and shrinks its
 * buffer with realloc, which may leave copies of a token in freed blocks. */
static int format_exact(char **out, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    *out = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (*out == NULL) {
        va_end(again);
        return -1;
    }
    vsnprintf(*out, (size_t)n + 1, fmt, again);
    va_end(again);
    return n;
}

int worker_format(char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = format_exact(out, fmt, ap);
    va_end(ap);
    return n;
}

int worker_request_header(struct worker_request *req, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *line = NULL;
    int n = format_exact(&line, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return -1;
    }
    struct curl_slist *next = curl_slist_append(req->headers, line);
    sodium_memzero(line, (size_t)n);
    free(line);
    if (next == NULL) {
        return -1;
    }
    req->headers = next;
    return 0;
}

int worker_request_json(struct worker_request *req, const json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    if (text == NULL) {
        return -1;
    }
    if (req->body != NULL) {
        sodium_memzero(req->body, req->body_len);
    }
    free(req->body);
    req->body = text;
    req->body_len = strlen(text);
    return worker_request_header(req, "Content-Type: application/json; charset=utf-8");
}

int worker_form_add(char **form, const char *name, const char *value)
{
    char *ename = curl_easy_escape(NULL, name, 0);
    char *evalue = curl_easy_escape(NULL, value, 0);
    int rv = -1;
    if (ename == NULL || evalue == NULL) {
        goto out;
    }
    size_t old = *form != NULL ? strlen(*form) : 0;
    size_t add = (old > 0 ? 1 : 0) + strlen(ename) + 1 + strlen(evalue);
    /* Not realloc: the form may already hold a secret (an OAuth code), and the
     * block realloc leaves behind would keep it. */
    char *grown = malloc(old + add + 1);
    if (grown == NULL) {
        goto out;
    }
    if (*form != NULL) {
        memcpy(grown, *form, old);
        sodium_memzero(*form, old);
        free(*form);
    }
    snprintf(grown + old, add + 1, "%s%s=%s", old > 0 ? "&" : "", ename, evalue);
    *form = grown;
    rv = 0;
out:
    if (evalue != NULL) {
        /* The value may be a token (Messenger's access_token). */
        sodium_memzero(evalue, strlen(evalue));
    }
    curl_free(ename);
    curl_free(evalue);
    return rv;
}

int64_t worker_parse_retry_after(const char *value, int64_t now_wall_ms)
{
    while (*value == ' ' || *value == '\t') {
        value++;
    }
    if (*value == '\0') {
        return -1;
    }
    if (*value >= '0' && *value <= '9') {
        char *end;
        long long seconds = strtoll(value, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') {
            end++;
        }
        if (*end != '\0' || seconds < 0 || seconds > 86400LL * 365) {
            return -1;
        }
        return (int64_t)seconds * 1000;
    }
    time_t when = curl_getdate(value, NULL);
    if (when == (time_t)-1) {
        return -1;
    }
    int64_t delta = (int64_t)when * 1000 - now_wall_ms;
    return delta > 0 ? delta : 0;
}

bool worker_classify_transport(const struct worker_response *resp, struct worker_outcome *out)
{
    if (resp->transport == CURLE_OK) {
        return false;
    }
    const char *why;
    switch (resp->transport) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        why = "dns_failed";
        break;
    case CURLE_COULDNT_CONNECT:
        why = "connect_failed";
        break;
    case CURLE_OPERATION_TIMEDOUT:
        why = resp->request_sent ? "timeout" : "connect_timeout";
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        why = "tls_failed";
        break;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_SEND_FAIL_REWIND:
        why = "connection_dropped";
        break;
    case CURLE_WRITE_ERROR:
        why = "response_too_large";
        break;
    default:
        why = "transport_error";
        break;
    }
    worker_outcome_set(out,
                       resp->request_sent ? BCRM__V1__OUTCOME__OUTCOME_UNKNOWN
                                          : BCRM__V1__OUTCOME__OUTCOME_RETRY,
                       why);
    return true;
}

static struct worker_http_limits http_limits;
static pthread_once_t http_limits_once = PTHREAD_ONCE_INIT;

static void http_limits_read(void)
{
    http_limits.connect_timeout_ms = (long)config_duration_ms("BCRM_SENDER_CONNECT_TIMEOUT", 5000);
    http_limits.timeout_ms = (long)config_duration_ms("BCRM_SENDER_TIMEOUT", 30000);
}

const struct worker_http_limits *worker_http_limits(void)
{
    pthread_once(&http_limits_once, http_limits_read);
    return &http_limits;
}

/* The body goes out through a read callback rather than CURLOPT_POSTFIELDS so
 * that it can refuse to be replayed: libcurl silently resends a request when a
 * reused keep-alive connection dies before any answer, and for a send that the
 * platform may already have acted on, that would be a duplicate message. With
 * replay refused the transfer fails instead and is classified UNKNOWN. */
static size_t io_read(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct transfer_io *io = userdata;
    size_t room = size * nitems;
    size_t left = io->req->body_len - io->upload_pos;
    size_t n = left < room ? left : room;
    memcpy(buf, io->req->body + io->upload_pos, n);
    io->upload_pos += n;
    return n;
}

static int io_seek(void *userdata, curl_off_t offset, int origin)
{
    struct transfer_io *io = userdata;
    if (origin != SEEK_SET || offset != 0) {
        return CURL_SEEKFUNC_FAIL;
    }
    if (io->upload_pos > 0 && !io->allow_replay) {
        return CURL_SEEKFUNC_FAIL;
    }
    io->upload_pos = 0;
    return CURL_SEEKFUNC_OK;
}

static size_t io_write(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct transfer_io *io = userdata;
    size_t n = size * nmemb;
    if (io->len + n > io->max) {
        return 0; /* CURLE_WRITE_ERROR: an answer this large is not one we expect */
    }
    if (io->len + n + 1 > io->cap) {
        /* Sized from Content-Length when the platform gave one: a megabyte page
         * then takes one block, not a doubling series of copies (each a moment of
         * twice the memory). Otherwise 1 KiB, which most answers to a send fit. */
        size_t cap = io->cap > 0                       ? io->cap
                     : io->expected >= io->len + n + 1 ? io->expected + 1
                                                       : 1024;
        while (cap < io->len + n + 1) {
            cap *= 2;
        }
        /* Not realloc: an answer may hold a token (oauth.v2.access), and the
         * block realloc leaves behind would keep it. */
        char *grown = malloc(cap);
        if (grown == NULL) {
            return 0;
        }
        if (io->body != NULL) {
            memcpy(grown, io->body, io->len);
            sodium_memzero(io->body, io->cap);
            free(io->body);
        }
        io->body = grown;
        io->cap = cap;
    }
    memcpy(io->body + io->len, data, n);
    io->len += n;
    io->body[io->len] = '\0';
    return n;
}

static size_t io_header(char *data, size_t size, size_t nitems, void *userdata)
{
    struct transfer_io *io = userdata;
    size_t n = size * nitems;
    static const char length[] = "content-length:";
    if (n > sizeof(length) - 1 && n < 64 && strncasecmp(data, length, sizeof(length) - 1) == 0) {
        unsigned long long v = strtoull(data + sizeof(length) - 1, NULL, 10);
        io->expected = v > 0 && v <= io->max ? (size_t)v : 0;
    }
    static const char name[] = "retry-after:";
    if (n > sizeof(name) - 1 && n < 200 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        char value[200];
        memcpy(value, data + sizeof(name) - 1, n - (sizeof(name) - 1));
        value[n - (sizeof(name) - 1)] = '\0';
        io->retry_after_ms = worker_parse_retry_after(value, clock_wall_ms());
    }
    const char *want = io->req->capture_header;
    size_t want_len = want != NULL ? strlen(want) : 0;
    if (want_len > 0 && n > want_len && strncasecmp(data, want, want_len) == 0) {
        size_t start = want_len, end = n;
        while (start < end && (data[start] == ' ' || data[start] == '\t')) {
            start++;
        }
        while (end > start && (data[end - 1] == '\r' || data[end - 1] == '\n' ||
                               data[end - 1] == ' ' || data[end - 1] == '\t')) {
            end--;
        }
        free(io->captured);
        io->captured = strndup(data + start, end - start);
    }
    return n;
}

int transfer_io_setup(CURL *easy, struct transfer_io *io, const struct worker_request *req,
                      size_t max_body, bool allow_replay)
{
    const struct worker_http_limits *limits = worker_http_limits();
    io->req = req;
    io->upload_pos = 0;
    io->len = 0;
    io->max = max_body;
    io->expected = 0;
    io->retry_after_ms = -1;
    io->allow_replay = allow_replay;
    free(io->captured);
    io->captured = NULL;
    if (io->body != NULL) {
        io->body[0] = '\0';
    }
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    if (rc == CURLE_OK) {                                                                          \
        rc = curl_easy_setopt(easy, opt, val);                                                     \
    }
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_CONNECTTIMEOUT_MS, limits->connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, limits->timeout_ms);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_WRITEFUNCTION, io_write);
    SET(CURLOPT_WRITEDATA, io);
    SET(CURLOPT_HEADERFUNCTION, io_header);
    SET(CURLOPT_HEADERDATA, io);
    SET(CURLOPT_HTTPHEADER, req->headers);
    SET(CURLOPT_USERAGENT, "bcrm-sender/1");
    if (strcmp(req->method, "POST") == 0) {
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_READFUNCTION, io_read);
        SET(CURLOPT_READDATA, io);
        SET(CURLOPT_SEEKFUNCTION, io_seek);
        SET(CURLOPT_SEEKDATA, io);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        /* The read callback makes libcurl allocate an upload buffer per handle,
         * 64 KiB by default: with a thousand requests in flight that alone would be
         * 64 MiB. Bodies are a few KiB; the smallest buffer libcurl takes will do. */
        SET(CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
    } else {
        SET(CURLOPT_HTTPGET, 1L);
    }
#undef SET
    return rc == CURLE_OK ? 0 : -1;
}

void transfer_io_response(CURL *easy, CURLcode rc, const struct transfer_io *io,
                          struct worker_response *resp)
{
    long status = 0;
    long request_size = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &request_size);
    resp->transport = rc;
    resp->status = rc == CURLE_OK ? status : 0;
    resp->request_sent = request_size > 0;
    resp->retry_after_ms = io->retry_after_ms;
    resp->body = io->body != NULL ? io->body : "";
    resp->body_len = io->len;
    resp->captured = io->captured;
}

void transfer_io_free(struct transfer_io *io)
{
    if (io->body != NULL) {
        sodium_memzero(io->body, io->cap);
    }
    free(io->body);
    free(io->captured);
    memset(io, 0, sizeof(*io));
}

void worker_http_perform(CURL *easy, const struct worker_request *req, struct worker_response *resp,
                         char **storage)
{
    struct transfer_io io = {0};
    CURLcode rc = CURLE_FAILED_INIT;
    curl_easy_reset(easy);
    if (transfer_io_setup(easy, &io, req, WORKER_QUERY_MAX_BODY, true) == 0) {
        rc = curl_easy_perform(easy);
    }
    transfer_io_response(easy, rc, &io, resp);
    *storage = io.body; /* resp->body points into it */
    if (io.body == NULL) {
        resp->body = "";
    }
    /* The captured header goes with the storage: both are freed with
     * worker_http_storage_free(). */
    if (io.captured != NULL) {
        size_t len = strlen(io.captured);
        char *both = malloc(io.len + 1 + len + 1);
        if (both == NULL) {
            resp->captured = NULL;
        } else {
            memcpy(both, io.body != NULL ? io.body : "", io.len);
            both[io.len] = '\0';
            memcpy(both + io.len + 1, io.captured, len + 1);
            if (io.body != NULL) {
                sodium_memzero(io.body, io.cap);
            }
            free(io.body);
            *storage = both;
            resp->body = both;
            resp->captured = both + io.len + 1;
        }
        free(io.captured);
    }
}

void worker_http_storage_free(char *storage)
{
    if (storage != NULL) {
        sodium_memzero(storage, strlen(storage));
        free(storage);
    }
}
