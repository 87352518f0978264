/* due_heap.h: things due at a time, earliest first.
 *
 * A binary min-heap of (due, item); items due at the same time come out in the
 * order they went in. It takes no lock and owns no item: the owner locks it and
 * frees what it pops. Used by the HTTP server's delayed answers and by
 * messenger-sim's receipts.
 */
#ifndef BCRM_DUE_HEAP_H
#define BCRM_DUE_HEAP_H

#include <stddef.h>
#include <stdint.h>

struct due_entry {
    int64_t due;
    uint64_t seq;
    void *item; /* borrowed */
};

struct due_heap {
    struct due_entry *entries;
    size_t count;
    size_t cap;
    uint64_t next_seq;
};

/* Zeroing the struct is the same. */
void due_heap_init(struct due_heap *h);
/* Returns 0, or -1 when out of memory (nothing added). */
int due_heap_push(struct due_heap *h, int64_t due, void *item);
/* The earliest due time; only when count > 0. */
int64_t due_heap_first(const struct due_heap *h);
/* Removes and returns the earliest item; only when count > 0. */
void *due_heap_pop(struct due_heap *h);
/* Frees the entries (not the items) and empties the heap. */
void due_heap_clear(struct due_heap *h);

#endif
