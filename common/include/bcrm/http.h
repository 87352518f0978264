/* http.h: a small HTTP/1.1 server on libmicrohttpd, shared by every service's ops
 * port, the api and the simulators.
 *
 * The handler runs on one of the server's threads once the whole body has been
 * read. Bodies over max_body are answered 413 without calling the handler, and
 * idle connections are closed after timeout_s, so a slow or greedy client cannot
 * hold the server. The request and everything it points to is borrowed for the
 * duration of the handler call only.
 *
 * A server started with delayed_answers lets a handler answer late without
 * keeping a thread: the handler builds its answer at once and sets delay_ms; the
 * server keeps the answer, parks the connection (libmicrohttpd's suspend) and a
 * timer thread (http_delay.c) wakes it when the time is up. The simulators'
 * latency faults use it, so thousands of slow answers can wait at once.
 */
#ifndef BCRM_HTTP_H
#define BCRM_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct http_request {
    const char *method;
    const char *path; /* without the query string */
    const char *body; /* NUL-terminated; body_len excludes the NUL */
    size_t body_len;
    void *impl; /* the MHD connection */
};

#define HTTP_MAX_RESPONSE_HEADERS 8

struct http_response {
    int status;
    const char *content_type; /* a literal; defaults to application/json */
    char *body;               /* owned: free()d by the server */
    size_t body_len;
    int header_count;
    char *header_names[HTTP_MAX_RESPONSE_HEADERS]; /* owned */
    char *header_values[HTTP_MAX_RESPONSE_HEADERS];
    /* Set by a handler to close the connection without answering (a simulator's
     * "lost response" fault); the server frees any body and headers set. */
    bool drop;
    /* Set by a handler to send the answer (or close, with drop) this many
     * milliseconds later, holding no thread meanwhile. Only with
     * http_server_opts.delayed_answers; otherwise, and while the server stops,
     * the answer goes at once. */
    int delay_ms;
};

typedef void (*http_handler_fn)(void *ctx, const struct http_request *req,
                                struct http_response *resp);

struct http_server_opts {
    const char *addr;   /* "127.0.0.1:8080", "0.0.0.0:80", "[::1]:8080"; port 0 picks one */
    size_t max_body;    /* bytes; larger bodies get 413 */
    unsigned timeout_s; /* idle connection timeout */
    unsigned threads;   /* worker threads (1 or more) */
    /* Honour http_response.delay_ms (see above). */
    bool delayed_answers;
    /* Open connections at most, delayed ones included; 0 means 4096. Each takes a
     * file descriptor: the process's RLIMIT_NOFILE must allow them. */
    unsigned max_connections;
};

struct http_server;

/* Returns NULL and fills err on failure. */
struct http_server *http_server_start(const struct http_server_opts *opts, http_handler_fn handler,
                                      void *ctx, char *err, size_t errlen);
/* The port actually bound (useful with port 0). */
int http_server_port(const struct http_server *srv);
/* Delayed answers waiting now, and the most that waited at once since the start
 * (or since the last call with reset_max, which starts the count again from now). */
void http_server_held(struct http_server *srv, int *now, int *max, bool reset_max);
/* Stops accepting, sends every delayed answer at once, lets in-flight requests
 * finish (up to drain_ms), then frees. */
void http_server_stop(struct http_server *srv, int drain_ms);

/* Request accessors; the returned strings are borrowed from the request. */
const char *http_query(const struct http_request *req, const char *key);
const char *http_header(const struct http_request *req, const char *name);
const char *http_cookie(const struct http_request *req, const char *name);
/* The peer's address as text, for logs and rate limits. */
void http_peer(const struct http_request *req, char *out, size_t outlen);

/* Response builders. Each replaces any body already set. */
void http_respond(struct http_response *resp, int status, const char *content_type,
                  const char *body, size_t len);
/* Takes ownership of the reference to body (may be NULL for an empty answer). */
void http_respond_json(struct http_response *resp, int status, json_t *body);
/* An RFC 9457 problem: {type, title, status, detail}. */
void http_respond_problem(struct http_response *resp, int status, const char *title,
                          const char *detail_fmt, ...) __attribute__((format(printf, 4, 5)));
void http_add_header(struct http_response *resp, const char *name, const char *value);

/* Splits "host:port" (or "[v6]:port") into its parts. Returns 0 or -1. */
int http_parse_addr(const char *addr, char *host, size_t hostlen, int *port);

#endif
