/* member_set.c: a bounded set of user ids (see member_set.h).
 *
 * The ids live back to back, NUL-terminated, in one arena that doubles when full; the
 * table holds arena offsets plus one (0: an empty slot) and doubles when half full,
 * so a probe sequence stays short. Nothing is ever removed, which keeps linear
 * probing simple.
 */
#include "member_set.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_SLOTS 1024
#define INITIAL_ARENA 8192

struct member_set {
    char *arena;
    size_t arena_used, arena_cap;
    uint32_t *slots;   /* offset + 1 into arena, or 0 */
    size_t slot_count; /* a power of two */
    size_t count, max;
};

static uint64_t hash_id(const char *id, size_t len)
{
    /* FNV-1a: ids are short and random enough that nothing stronger pays off. */
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)id[i];
        h *= 1099511628211ULL;
    }
    return h;
}

struct member_set *member_set_new(size_t max_members)
{
    struct member_set *set = calloc(1, sizeof(*set));
    if (set == NULL) {
        return NULL;
    }
    set->max = max_members > 0 ? max_members : 1;
    set->slot_count = INITIAL_SLOTS;
    set->slots = calloc(set->slot_count, sizeof(*set->slots));
    set->arena_cap = INITIAL_ARENA;
    set->arena = malloc(set->arena_cap);
    if (set->slots == NULL || set->arena == NULL) {
        member_set_free(set);
        return NULL;
    }
    return set;
}

void member_set_free(struct member_set *set)
{
    if (set == NULL) {
        return;
    }
    free(set->arena);
    free(set->slots);
    free(set);
}

/* The slot that holds id, or the empty slot where it would go. */
static size_t find_slot(const struct member_set *set, const char *id, size_t len)
{
    size_t mask = set->slot_count - 1;
    size_t i = (size_t)hash_id(id, len) & mask;
    while (set->slots[i] != 0 && strcmp(set->arena + set->slots[i] - 1, id) != 0) {
        i = (i + 1) & mask;
    }
    return i;
}

static int grow_table(struct member_set *set)
{
    size_t new_count = set->slot_count * 2;
    uint32_t *slots = calloc(new_count, sizeof(*slots));
    if (slots == NULL) {
        return -1;
    }
    size_t mask = new_count - 1;
    for (size_t i = 0; i < set->slot_count; i++) {
        uint32_t off = set->slots[i];
        if (off == 0) {
            continue;
        }
        const char *id = set->arena + off - 1;
        size_t j = (size_t)hash_id(id, strlen(id)) & mask;
        while (slots[j] != 0) {
            j = (j + 1) & mask;
        }
        slots[j] = off;
    }
    free(set->slots);
    set->slots = slots;
    set->slot_count = new_count;
    return 0;
}

static int reserve_arena(struct member_set *set, size_t need)
{
    if (set->arena_used + need <= set->arena_cap) {
        return 0;
    }
    size_t cap = set->arena_cap;
    while (set->arena_used + need > cap) {
        cap *= 2;
    }
    if (cap > UINT32_MAX) {
        return -1; /* offsets are 32 bits; max_members keeps us far from this */
    }
    char *arena = realloc(set->arena, cap);
    if (arena == NULL) {
        return -1;
    }
    set->arena = arena;
    set->arena_cap = cap;
    return 0;
}

enum member_add member_set_add(struct member_set *set, const char *id)
{
    size_t len = id != NULL ? strnlen(id, MEMBER_ID_MAX + 1) : 0;
    if (len == 0 || len > MEMBER_ID_MAX) {
        return MEMBER_BAD_ID;
    }
    size_t slot = find_slot(set, id, len);
    if (set->slots[slot] != 0) {
        return MEMBER_PRESENT;
    }
    if (set->count >= set->max) {
        return MEMBER_FULL;
    }
    if ((set->count + 1) * 2 > set->slot_count) {
        if (grow_table(set) != 0) {
            return MEMBER_NO_MEMORY;
        }
        slot = find_slot(set, id, len);
    }
    if (reserve_arena(set, len + 1) != 0) {
        return MEMBER_NO_MEMORY;
    }
    memcpy(set->arena + set->arena_used, id, len + 1);
    set->slots[slot] = (uint32_t)(set->arena_used + 1);
    set->arena_used += len + 1;
    set->count++;
    return MEMBER_ADDED;
}

bool member_set_has(const struct member_set *set, const char *id)
{
    size_t len = id != NULL ? strnlen(id, MEMBER_ID_MAX + 1) : 0;
    if (set == NULL || len == 0 || len > MEMBER_ID_MAX) {
        return false;
    }
    return set->slots[find_slot(set, id, len)] != 0;
}

size_t member_set_count(const struct member_set *set)
{
    return set->count;
}

size_t member_set_max(const struct member_set *set)
{
    return set->max;
}
