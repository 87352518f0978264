/* buf.c: growable byte buffer (see buf.h). */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t initial_cap)
{
    b->len = 0;
    b->failed = false;
    b->cap = initial_cap ? initial_cap : 256;
    b->data = malloc(b->cap);
    if (b->data == NULL) {
        b->cap = 0;
        b->failed = true;
    } else {
        b->data[0] = '\0';
    }
}

static bool buf_reserve(struct buf *b, size_t extra)
{
    if (b->failed) {
        return false;
    }
    if (b->len + extra + 1 <= b->cap) {
        return true;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        cap *= 2;
    }
    char *nd = realloc(b->data, cap);
    if (nd == NULL) {
        b->failed = true;
        return false;
    }
    b->data = nd;
    b->cap = cap;
    return true;
}

void buf_append(struct buf *b, const char *data, size_t len)
{
    if (!buf_reserve(b, len)) {
        return;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0 || !buf_reserve(b, (size_t)need)) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)need + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)need;
}

void buf_json_str(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    buf_append(b, "\"", 1);
    const char *run = s;
    for (const char *p = s; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        buf_append(b, run, (size_t)(p - run));
        run = p + 1;
        switch (c) {
        case '"':
            buf_append(b, "\\\"", 2);
            break;
        case '\\':
            buf_append(b, "\\\\", 2);
            break;
        case '\n':
            buf_append(b, "\\n", 2);
            break;
        case '\r':
            buf_append(b, "\\r", 2);
            break;
        case '\t':
            buf_append(b, "\\t", 2);
            break;
        default: {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_append(b, esc, sizeof(esc));
        }
        }
    }
    buf_append(b, run, strlen(run));
    buf_append(b, "\"", 1);
}

char *buf_take(struct buf *b, size_t *len)
{
    char *out = b->failed ? NULL : b->data;
    if (out == NULL) {
        free(b->data);
    }
    if (len != NULL) {
        *len = out ? b->len : 0;
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = false;
    return out;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
