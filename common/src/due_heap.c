/* due_heap.c: see due_heap.h. */
#include "bcrm/due_heap.h"

#include <stdbool.h>
#include <stdlib.h>

void due_heap_init(struct due_heap *h)
{
    *h = (struct due_heap){0};
}

static bool before(const struct due_entry *a, const struct due_entry *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void swap(struct due_entry *v, size_t i, size_t j)
{
    struct due_entry t = v[i];
    v[i] = v[j];
    v[j] = t;
}

int due_heap_push(struct due_heap *h, int64_t due, void *item)
{
    if (h->count == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 256;
        struct due_entry *grown = realloc(h->entries, cap * sizeof(*grown));
        if (grown == NULL) {
            return -1;
        }
        h->entries = grown;
        h->cap = cap;
    }
    size_t i = h->count++;
    h->entries[i] = (struct due_entry){.due = due, .seq = h->next_seq++, .item = item};
    while (i > 0 && before(&h->entries[i], &h->entries[(i - 1) / 2])) {
        swap(h->entries, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    return 0;
}

int64_t due_heap_first(const struct due_heap *h)
{
    return h->entries[0].due;
}

void *due_heap_pop(struct due_heap *h)
{
    struct due_entry *v = h->entries;
    void *item = v[0].item;
    v[0] = v[--h->count];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, min = i;
        if (l < h->count && before(&v[l], &v[min])) {
            min = l;
        }
        if (r < h->count && before(&v[r], &v[min])) {
            min = r;
        }
        if (min == i) {
            return item;
        }
        swap(v, i, min);
        i = min;
    }
}

void due_heap_clear(struct due_heap *h)
{
    free(h->entries);
    due_heap_init(h);
}
