/* cursor.c: see cursor.h. */
#include "cursor.h"

#include <stdlib.h>
#include <string.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *cursor_encode(const char *kind, const char *value)
{
    size_t klen = strlen(kind);
    size_t vlen = strlen(value);
    size_t len = klen + 1 + vlen;
    unsigned char *raw = malloc(len);
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (raw == NULL || out == NULL) {
        free(raw);
        free(out);
        return NULL;
    }
    memcpy(raw, kind, klen);
    raw[klen] = ':';
    memcpy(raw + klen + 1, value, vlen);
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)raw[i] << 16;
        if (i + 1 < len) {
            v |= (unsigned)raw[i + 1] << 8;
        }
        if (i + 2 < len) {
            v |= raw[i + 2];
        }
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64[v & 63] : '=';
    }
    out[o] = '\0';
    free(raw);
    return out;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

int cursor_decode(const char *cursor, const char *kind, char *out, size_t outlen)
{
    size_t len = strlen(cursor);
    if (len == 0 || len % 4 != 0 || len / 4 * 3 >= 256) {
        return -1;
    }
    char raw[256];
    size_t r = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            v[k] = cursor[i + k] == '=' && i + 4 == len && k >= 2 ? 0 : b64_value(cursor[i + k]);
            if (v[k] < 0) {
                return -1;
            }
        }
        unsigned bits = (unsigned)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
        raw[r++] = (char)(bits >> 16);
        if (cursor[i + 2] != '=') {
            raw[r++] = (char)(bits >> 8);
        }
        if (cursor[i + 3] != '=') {
            raw[r++] = (char)bits;
        }
    }
    raw[r] = '\0';
    size_t klen = strlen(kind);
    if (memchr(raw, '\0', r) != NULL || r <= klen || strncmp(raw, kind, klen) != 0 ||
        raw[klen] != ':' || r - klen - 1 >= outlen) {
        return -1;
    }
    memcpy(out, raw + klen + 1, r - klen);
    return 0;
}
