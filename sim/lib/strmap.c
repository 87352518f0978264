/* strmap.c: linear-probing hash map (see strmap.h). The table stays at most
 * half full, so probes are short and a miss ends at the first empty slot. */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

struct strmap_slot {
    const char *key; /* NULL: empty */
    uint64_t hash;
    void *value;
};

struct strmap {
    struct strmap_slot *slots;
    size_t cap; /* a power of two */
    size_t size;
};

uint64_t strmap_hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

struct strmap *strmap_new(size_t expected)
{
    struct strmap *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    m->cap = 16;
    while (m->cap < expected * 2) {
        m->cap *= 2;
    }
    m->slots = calloc(m->cap, sizeof(*m->slots));
    if (m->slots == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void strmap_free(struct strmap *m)
{
    if (m != NULL) {
        free(m->slots);
        free(m);
    }
}

static struct strmap_slot *strmap_find(const struct strmap *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct strmap_slot *s = &m->slots[i];
        if (s->key == NULL || (s->hash == h && strcmp(s->key, key) == 0)) {
            return s;
        }
    }
}

void *strmap_get(const struct strmap *m, const char *key)
{
    struct strmap_slot *s = strmap_find(m, key, strmap_hash(key));
    return s->key ? s->value : NULL;
}

static int strmap_grow(struct strmap *m)
{
    struct strmap old = *m;
    m->cap *= 2;
    m->slots = calloc(m->cap, sizeof(*m->slots));
    if (m->slots == NULL) {
        *m = old;
        return -1;
    }
    for (size_t i = 0; i < old.cap; i++) {
        if (old.slots[i].key != NULL) {
            *strmap_find(m, old.slots[i].key, old.slots[i].hash) = old.slots[i];
        }
    }
    free(old.slots);
    return 0;
}

int strmap_put(struct strmap *m, const char *key, void *value)
{
    if ((m->size + 1) * 2 > m->cap && strmap_grow(m) != 0) {
        return -1;
    }
    uint64_t h = strmap_hash(key);
    struct strmap_slot *s = strmap_find(m, key, h);
    if (s->key == NULL) {
        m->size++;
    }
    s->key = key;
    s->hash = h;
    s->value = value;
    return 0;
}

size_t strmap_size(const struct strmap *m)
{
    return m->size;
}

void strmap_foreach(const struct strmap *m, void (*fn)(void *ctx, const char *key, void *value),
                    void *ctx)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key != NULL) {
            fn(ctx, m->slots[i].key, m->slots[i].value);
        }
    }
}

void strmap_clear(struct strmap *m)
{
    memset(m->slots, 0, m->cap * sizeof(*m->slots));
    m->size = 0;
}
