/* reqlog.h: the requests a simulator received, as it understood them.
 *
 * The message record (record.h) keeps what was sent; this log keeps how it was
 * asked for: the HTTP method, the content type, every argument with the type it
 * arrived in (a JSON body keeps its numbers, arrays and objects; a form or a
 * query string gives strings), where the token was, and what the simulator
 * answered. A system test reads it over GET /_sim/requests and checks every
 * request bcrm made against the platform's documented parameters.
 *
 * Adding a request must cost little, since the benchmarks run with the log on:
 * reqlog_add() copies the raw request (path, content type, query pairs, body)
 * into one allocation under one short lock, and the JSON is only built when a
 * test lists the log. The log is a bounded ring: past its capacity the oldest
 * entries go, and the count of those evicted says so. Tokens are never listed:
 * secret arguments show as "[redacted]", an Authorization header only by its
 * scheme.
 */
#ifndef SIM_REQLOG_H
#define SIM_REQLOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_request;
struct reqlog;

#define REQLOG_REDACTED "[redacted]"
#define REQLOG_BODY_MAX (256 * 1024) /* bytes of a body kept; larger ones are cut */

/* The outcome of a call, as the simulator saw it. Strings are borrowed and
 * copied (method, error and auth may be literals, space any string). */
struct reqlog_call {
    int64_t at_ms;
    const char *method; /* the Web API method or Graph call; NULL: unknown */
    int status;         /* HTTP status answered */
    const char *error;  /* the platform's error code (Slack), or NULL */
    int error_code;     /* the platform's numeric error code (Graph), or 0 */
    const char *space;  /* team id or page id the token belongs to, or NULL */
    const char *auth;   /* how the token came when not by a header, e.g.
                           "token_argument"; NULL: the Authorization scheme or "none" */
    bool dropped;       /* the answer was dropped on purpose (a fault) */
};

/* capacity 0 gives a log that is switched off. space_key names the space in the
 * listing ("team_id", "page_id"); secret_args (NULL-terminated) are the argument
 * names whose values are never listed. Both borrowed for the log's lifetime.
 * NULL when out of memory. Free with reqlog_free(). */
struct reqlog *reqlog_new(size_t capacity, const char *space_key, const char *const *secret_args);
void reqlog_free(struct reqlog *log);
bool reqlog_enabled(const struct reqlog *log);
void reqlog_set_enabled(struct reqlog *log, bool enabled);

/* Copies req (borrowed) and call into the ring; gives it the next sequence
 * number (from 1). Does nothing when the log is off. */
void reqlog_add(struct reqlog *log, const struct http_request *req, const struct reqlog_call *call);

/* New reference: {"ok":true, "count", "total", "evicted", "enabled", "capacity",
 * "requests":[...]}, the entries of seq > since_seq, oldest first, at most limit
 * of them (0: all), and only those of the given method when it is not NULL. An
 * entry: {seq, at_ms, http_method, path, content_type, query, body_format
 * ("none", "form", "json" or "unreadable"), body, auth, method, status, ok,
 * error, error_code, <space_key>, dropped} (plus body_truncated, raw_body when
 * they apply). NULL when out of memory. */
json_t *reqlog_list(struct reqlog *log, int64_t since_seq, const char *method, size_t limit);

/* Forgets every entry; sequence numbers go on from where they were. */
void reqlog_reset(struct reqlog *log);

#endif
