/* buf.h: a growable byte buffer for building response bodies.
 *
 * The simulator answers tens of thousands of requests a second, and most of
 * its large answers (user pages) are concatenations of pre-rendered JSON, so it
 * builds them as text rather than as jansson trees. A buffer that fails to grow
 * remembers the failure; buf_take() then returns NULL and the caller answers 500.
 */
#ifndef SIM_BUF_H
#define SIM_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
    char *data; /* owned; always NUL-terminated when not NULL */
    size_t len;
    size_t cap;
    bool failed;
};

void buf_init(struct buf *b, size_t initial_cap);
void buf_append(struct buf *b, const char *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included. */
void buf_json_str(struct buf *b, const char *s);
/* Hands the data to the caller (free with free()); NULL if any append failed. The
 * buffer is left empty and may be reused. */
char *buf_take(struct buf *b, size_t *len);
void buf_free(struct buf *b);

#endif
