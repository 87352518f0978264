/* pgarray.h: PostgreSQL array literals ('{1,2,"a\"b",NULL}') built in one growing
 * buffer, so that a whole batch of rows travels as a few text parameters of one
 * statement (unnest($1::bigint[], ...)) instead of one round trip per row.
 *
 * Strings are quoted and escaped; bytes that are not valid UTF-8 and control
 * characters become '?' (a platform's error text must not make PostgreSQL refuse a
 * whole batch of results). The array owns its buffer: free with pgarray_free().
 */
#ifndef BCRM_SCHEDULER_PGARRAY_H
#define BCRM_SCHEDULER_PGARRAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pgarray {
    char *buf;
    size_t len, cap;
    int count;
};

void pgarray_init(struct pgarray *a);
/* s may be NULL (an SQL NULL). At most max_bytes of s are kept (0: no limit). */
void pgarray_add_str(struct pgarray *a, const char *s, size_t max_bytes);
void pgarray_add_int(struct pgarray *a, int64_t v);
void pgarray_add_bool(struct pgarray *a, bool v);
void pgarray_add_null(struct pgarray *a);
/* The literal, valid until the next add or free. */
const char *pgarray_text(struct pgarray *a);
/* Empties the array for reuse, keeping its buffer. */
void pgarray_reset(struct pgarray *a);
void pgarray_free(struct pgarray *a);

#endif
