/* SPDX-License-Identifier: MIT */
/*
 * u64map: an open-addressing hash table from uint64_t keys to non-NULL pointers.
 *
 * Used for dirty-block indexes and handle caches. Not thread-safe: the owner's lock protects it.
 * Values are borrowed; the map never frees them. Iteration order is unspecified; callers that
 * need order collect the keys and sort them.
 */
#ifndef LCPFS_COMMON_U64MAP_H
#define LCPFS_COMMON_U64MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct u64map_slot {
    uint64_t key;
    void *value; /* NULL = empty, U64MAP_TOMBSTONE = deleted */
};

struct u64map {
    struct u64map_slot *slots;
    size_t cap;   /* power of two, or 0 */
    size_t count; /* live entries */
    size_t used;  /* live + tombstones */
};

void u64map_init(struct u64map *m);
/* Frees the table, not the values. */
void u64map_release(struct u64map *m);
void *u64map_get(const struct u64map *m, uint64_t key);
/* Inserts or replaces. value must not be NULL. Returns 0 or -ENOMEM. */
int u64map_put(struct u64map *m, uint64_t key, void *value);
/* Removes key and returns its value, or NULL if absent. */
void *u64map_remove(struct u64map *m, uint64_t key);
size_t u64map_count(const struct u64map *m);

/* Iterate: for (size_t it = 0; u64map_next(m, &it, &k, &v);) ...  Do not modify while iterating. */
bool u64map_next(const struct u64map *m, size_t *iter, uint64_t *key, void **value);

#endif
