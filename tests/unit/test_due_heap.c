/* test_due_heap.c: common's due_heap, the timers' queue (bcrm/due_heap.h). */
#include "check.h"

#include "bcrm/due_heap.h"

#include <stdint.h>

/* Earliest first, ties in the order they went in, through growth and reuse. */
static void test_due_heap(void)
{
    struct due_heap h;
    due_heap_init(&h);
    static int items[1000];
    for (int i = 0; i < 1000; i++) {
        items[i] = i;
        CHECK(due_heap_push(&h, (int64_t)((i * 7919) % 100), &items[i]) == 0);
    }
    int64_t last_due = -1;
    int last_item = -1;
    size_t popped = 0;
    while (h.count > 0) {
        int64_t due = due_heap_first(&h);
        int *item = due_heap_pop(&h);
        CHECK(due == (int64_t)((*item * 7919) % 100));
        CHECK(due > last_due || (due == last_due && *item > last_item));
        last_due = due;
        last_item = *item;
        popped++;
    }
    CHECK(popped == 1000);
    CHECK(due_heap_push(&h, 5, &items[1]) == 0 && due_heap_push(&h, 5, &items[0]) == 0);
    CHECK(due_heap_pop(&h) == &items[1]);
    due_heap_clear(&h);
    CHECK(h.count == 0 && h.entries == NULL);
}

int main(void)
{
    test_due_heap();
    CHECK_DONE();
}
