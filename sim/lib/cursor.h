/* cursor.h: opaque paging cursors, base64 of "kind:value" the way Slack's look
 * ("dXNlcjpVMDYxTkZUVDI=" is "user:U061NFTT2"). A cursor of another kind, or one
 * that does not decode, is invalid. */
#ifndef SIM_CURSOR_H
#define SIM_CURSOR_H

#include <stddef.h>

/* Free with free(); NULL when out of memory. */
char *cursor_encode(const char *kind, const char *value);
/* Returns 0 and the value in out when cursor is kind's, else -1. */
int cursor_decode(const char *cursor, const char *kind, char *out, size_t outlen);

#endif
