/* http_delay.h: the timer behind http.h's delayed answers (internal to http.c).
 *
 * A handler that sets http_response.delay_ms leaves its connection suspended in
 * libmicrohttpd, which then neither reads nor writes it nor holds a thread for
 * it; this timer resumes the connection when the delay is over, and http.c sends
 * the answer it kept. So a simulator can hold thousands of slow answers with a
 * few threads. One min-heap of due times under one lock, and one thread that
 * sleeps until the earliest is due; the thread starts with the first delayed
 * answer, so a server that never delays one never runs it.
 */
#ifndef BCRM_HTTP_DELAY_H
#define BCRM_HTTP_DELAY_H

#include <stddef.h>

struct MHD_Connection;
struct http_delay;

/* NULL when out of memory. Free with http_delay_free(). */
struct http_delay *http_delay_new(void);
/* Resumes conn (suspended by the caller) in delay_ms milliseconds. Returns 0, or
 * -1 when the timer is flushed (the server is stopping) or out of memory: the
 * caller must then resume conn itself. conn is borrowed until it is resumed. */
int http_delay_add(struct http_delay *d, struct MHD_Connection *conn, int delay_ms);
/* Resumes every waiting connection at once and refuses new ones: the first step
 * of stopping a server, since libmicrohttpd must not stop with a connection
 * suspended. */
void http_delay_flush(struct http_delay *d);
/* The connections waiting for their time. */
size_t http_delay_waiting(struct http_delay *d);
/* Stops the thread and frees everything; call http_delay_flush() first. NULL is
 * fine. */
void http_delay_free(struct http_delay *d);

#endif
