/* pgarray.c: PostgreSQL array literals (see pgarray.h). */
#include "pgarray.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reserve(struct pgarray *a, size_t more)
{
    if (a->len + more + 2 <= a->cap) {
        return;
    }
    size_t cap = a->cap ? a->cap : 256;
    while (cap < a->len + more + 2) {
        cap *= 2;
    }
    char *buf = realloc(a->buf, cap);
    if (buf == NULL) {
        abort(); /* out of memory: nothing sensible is left to do */
    }
    a->buf = buf;
    a->cap = cap;
}

static void put(struct pgarray *a, const char *s, size_t n)
{
    reserve(a, n);
    memcpy(a->buf + a->len, s, n);
    a->len += n;
    a->buf[a->len] = '\0';
}

void pgarray_init(struct pgarray *a)
{
    memset(a, 0, sizeof(*a));
    pgarray_reset(a);
}

void pgarray_reset(struct pgarray *a)
{
    a->len = 0;
    a->count = 0;
    put(a, "{", 1);
}

static void separator(struct pgarray *a)
{
    if (a->count++ > 0) {
        put(a, ",", 1);
    }
}

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0 if it is not one. */
static size_t utf8_sequence(const unsigned char *s)
{
    if (s[0] < 0x80) {
        return 1;
    }
    size_t n;
    uint32_t cp;
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    static const uint32_t min_for_length[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_length[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return n;
}

void pgarray_add_str(struct pgarray *a, const char *s, size_t max_bytes)
{
    if (s == NULL) {
        pgarray_add_null(a);
        return;
    }
    separator(a);
    size_t n = strlen(s);
    if (max_bytes > 0 && n > max_bytes) {
        n = max_bytes;
    }
    reserve(a, 2 * n + 2);
    a->buf[a->len++] = '"';
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        size_t seq = utf8_sequence(p);
        if (seq == 0 || p + seq > end || *p < 0x20 || *p == 0x7f) {
            a->buf[a->len++] = '?';
            p++;
            continue;
        }
        if (*p == '"' || *p == '\\') {
            a->buf[a->len++] = '\\';
        }
        memcpy(a->buf + a->len, p, seq);
        a->len += seq;
        p += seq;
    }
    a->buf[a->len++] = '"';
    a->buf[a->len] = '\0';
}

void pgarray_add_int(struct pgarray *a, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRId64, v);
    separator(a);
    put(a, num, (size_t)n);
}

void pgarray_add_bool(struct pgarray *a, bool v)
{
    separator(a);
    put(a, v ? "t" : "f", 1);
}

void pgarray_add_null(struct pgarray *a)
{
    separator(a);
    put(a, "NULL", 4);
}

const char *pgarray_text(struct pgarray *a)
{
    put(a, "}", 1);
    a->len--; /* the closing brace is not kept, so adding may continue */
    return a->buf;
}

void pgarray_free(struct pgarray *a)
{
    free(a->buf);
    memset(a, 0, sizeof(*a));
}
