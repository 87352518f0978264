/* strmap.h: an open-addressing hash map from strings to pointers.
 *
 * Keys are borrowed: the caller keeps each key alive (usually inside the value)
 * for as long as it is in the map. The map does no locking; the population's
 * maps are built once and then only read, and the record guards its maps with
 * one lock per shard.
 */
#ifndef SIM_STRMAP_H
#define SIM_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap;

struct strmap *strmap_new(size_t expected);
/* Frees the map only; keys and values stay with their owners. */
void strmap_free(struct strmap *m);
void *strmap_get(const struct strmap *m, const char *key);
/* Inserts or replaces. Returns 0, or -1 when out of memory. */
int strmap_put(struct strmap *m, const char *key, void *value);
size_t strmap_size(const struct strmap *m);
/* Calls fn for every entry, in no particular order. */
void strmap_foreach(const struct strmap *m, void (*fn)(void *ctx, const char *key, void *value),
                    void *ctx);
/* Empties the map, keeping its storage. */
void strmap_clear(struct strmap *m);

/* 64-bit FNV-1a, also used to pick shards. */
uint64_t strmap_hash(const char *key);

#endif
