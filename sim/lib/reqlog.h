/* reqlog.h: the requests a simulator received, as it understood them.
 *
 * The message record (record.h) keeps what was sent; this log keeps how it was
 * asked for: the HTTP method, the content type, every argument with the type it
 * arrived in (a JSON body keeps its numbers, arrays and objects; a form or a
 * query string gives strings), where the token was, and what the simulator
 * answered. A system test reads it over GET /_sim/requests and checks every
 * request bcrm made against the platform's documented parameters.
 *
 * The log is a bounded ring: past its capacity the oldest entries go, and the
 * count of those evicted says so. Tokens are never kept: a token argument is
 * listed with the value "[redacted]", an Authorization header only by its scheme.
 * One mutex guards the ring; adding an entry holds it for a pointer swap.
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

/* capacity 0 gives a log that is switched off (reqlog_enabled() false). Free
 * with reqlog_free(). NULL when out of memory. */
struct reqlog *reqlog_new(size_t capacity);
void reqlog_free(struct reqlog *log);
bool reqlog_enabled(const struct reqlog *log);
void reqlog_set_enabled(struct reqlog *log, bool enabled);

/* A new entry for req: {at_ms, http_method, path, content_type, query, body_format,
 * body, auth}. body_format is "none", "form", "json" or "unreadable"; body is the
 * body's arguments (an object) or, for a JSON body that is not an object, the
 * value itself. The arguments named in secret_args (NULL-terminated) are
 * redacted wherever they appear. auth is "bearer", "basic" or another scheme
 * from the Authorization header, else "none"; the caller may change it (e.g. to
 * "token_argument"). New reference, or NULL when out of memory. */
json_t *reqlog_entry_new(const struct http_request *req, int64_t at_ms,
                         const char *const *secret_args);

/* Takes entry; gives it the next sequence number ("seq", from 1). */
void reqlog_add(struct reqlog *log, json_t *entry);

/* New reference: {"ok":true, "count", "total", "evicted", "enabled", "requests":[...]}
 * with the entries of seq > since_seq, oldest first, at most limit of them (0:
 * all), and only those whose field "method" equals method when it is not NULL. */
json_t *reqlog_list(struct reqlog *log, int64_t since_seq, const char *method, size_t limit);

/* Forgets every entry; sequence numbers go on from where they were. */
void reqlog_reset(struct reqlog *log);

#endif
