/* worker_http.h: the HTTP pieces the platform modules share: the request a module
 * builds, the response it classifies, and a synchronous perform for queries.
 *
 * Requests may carry a bot token (a header for Slack, the URL for Messenger) and
 * a person's name (a personalised message), so worker_request_free() wipes the
 * URL, the headers and the body before freeing them.
 */
#ifndef BCRM_WORKER_HTTP_H
#define BCRM_WORKER_HTTP_H

#include "bcrm/worker_outcome.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct worker_request {
    const char *method; /* "GET" or "POST" (a literal, borrowed) */
    char *url;          /* owned */
    char *body;         /* owned; NULL for none */
    size_t body_len;
    struct curl_slist *headers; /* owned */
    /* Optional: the name of one response header to keep, lower case with its
     * colon ("x-oauth-scopes:"); a literal, borrowed. */
    const char *capture_header;
    /* Optional: the largest answer accepted, bytes; 0 for the default (a send's
     * answer: 1 MiB). A page of 1000 Slack members needs more. */
    size_t max_body;
};

/* Wipes and frees everything the request owns and zeroes it. */
void worker_request_free(struct worker_request *req);
/* Appends one "Name: value" header built from a printf format. 0 or -1. */
int worker_request_header(struct worker_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Like asprintf, into a malloc'd block of the exact size (never realloc'd, so no
 * copy of what it holds is left behind: use it for anything holding a token).
 * Returns the length, or -1 with *out NULL. */
int worker_format(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets the body to the compact JSON text of body (borrowed) with a JSON content
 * type. 0 or -1. */
int worker_request_json(struct worker_request *req, const json_t *body);
/* Appends "name=value" (both URL-escaped, joined by '&') to *form, a malloc'd
 * string or NULL; used for query strings and form bodies. 0 or -1. */
int worker_form_add(char **form, const char *name, const char *value);

/* What came back. body is NUL-terminated and borrowed from whoever performed the
 * request. */
struct worker_response {
    CURLcode transport;     /* CURLE_OK when an HTTP answer arrived */
    bool request_sent;      /* some of the request reached the wire */
    long status;            /* HTTP status, 0 without an answer */
    int64_t retry_after_ms; /* from Retry-After, -1 when absent */
    const char *body;
    size_t body_len;
    const char *captured; /* the value of req->capture_header, NULL when absent */
};

/* Retry-After is either delay-seconds or an HTTP date. Returns milliseconds from
 * now_wall_ms (0 for a date in the past), or -1 for a value that is neither. */
int64_t worker_parse_retry_after(const char *value, int64_t now_wall_ms);

/* When no HTTP answer arrived, fills out and returns true: a request that never
 * reached the wire (refused, DNS, connect timeout) is RETRY, one that did and then
 * timed out or lost its connection is UNKNOWN, because the platform may have acted
 * on it. Returns false (out untouched) when there is an answer to classify. */
bool worker_classify_transport(const struct worker_response *resp, struct worker_outcome *out);

/* Timeouts and limits of every platform request (BCRM_SENDER_CONNECT_TIMEOUT,
 * BCRM_SENDER_TIMEOUT), read from the environment on first use. */
struct worker_http_limits {
    long connect_timeout_ms;
    long timeout_ms;
};
const struct worker_http_limits *worker_http_limits(void);

/* Performs req on easy and waits for the answer; used by the query threads. The
 * response body (and the captured header) is kept in *storage: free it with
 * worker_http_storage_free(), which wipes it, since an answer may hold a token
 * (oauth.v2.access). */
void worker_http_perform(CURL *easy, const struct worker_request *req, struct worker_response *resp,
                         char **storage);
void worker_http_storage_free(char *storage);

#endif
