/* SPDX-License-Identifier: MIT */
#include "common/u64map.h"

#include <errno.h>
#include <stdlib.h>

#include "common/hash.h"

static char tombstone_marker;
#define U64MAP_TOMBSTONE ((void *)&tombstone_marker)

static inline size_t
hash_u64(uint64_t k)
{
    return (size_t)hash_mix64(k);
}

void
u64map_init(struct u64map *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
    m->used = 0;
}

void
u64map_release(struct u64map *m)
{
    free(m->slots);
    u64map_init(m);
}

static struct u64map_slot *
find_slot(const struct u64map *m, uint64_t key)
{
    if (m->cap == 0)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = hash_u64(key) & mask;; i = (i + 1) & mask) {
        struct u64map_slot *s = &m->slots[i];
        if (s->value == NULL)
            return NULL;
        if (s->value != U64MAP_TOMBSTONE && s->key == key)
            return s;
    }
}

void *
u64map_get(const struct u64map *m, uint64_t key)
{
    struct u64map_slot *s = find_slot(m, key);
    return s ? s->value : NULL;
}

static int
grow(struct u64map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    if (m->count * 4 < m->cap) /* mostly tombstones: rehash at the same size */
        ncap = m->cap;
    struct u64map_slot *ns = calloc(ncap, sizeof(*ns));
    if (ns == NULL)
        return -ENOMEM;
    size_t mask = ncap - 1;
    for (size_t i = 0; i < m->cap; i++) {
        struct u64map_slot *s = &m->slots[i];
        if (s->value == NULL || s->value == U64MAP_TOMBSTONE)
            continue;
        size_t j = hash_u64(s->key) & mask;
        while (ns[j].value != NULL)
            j = (j + 1) & mask;
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    m->used = m->count;
    return 0;
}

int
u64map_put(struct u64map *m, uint64_t key, void *value)
{
    struct u64map_slot *s = find_slot(m, key);
    if (s != NULL) {
        s->value = value;
        return 0;
    }
    if ((m->used + 1) * 4 > m->cap * 3) {
        int rc = grow(m);
        if (rc != 0)
            return rc;
    }
    size_t mask = m->cap - 1;
    size_t i = hash_u64(key) & mask;
    while (m->slots[i].value != NULL && m->slots[i].value != U64MAP_TOMBSTONE)
        i = (i + 1) & mask;
    if (m->slots[i].value == NULL)
        m->used++;
    m->slots[i].key = key;
    m->slots[i].value = value;
    m->count++;
    return 0;
}

void *
u64map_remove(struct u64map *m, uint64_t key)
{
    struct u64map_slot *s = find_slot(m, key);
    if (s == NULL)
        return NULL;
    void *v = s->value;
    s->value = U64MAP_TOMBSTONE;
    m->count--;
    return v;
}

size_t
u64map_count(const struct u64map *m)
{
    return m->count;
}

bool
u64map_next(const struct u64map *m, size_t *iter, uint64_t *key, void **value)
{
    for (size_t i = *iter; i < m->cap; i++) {
        struct u64map_slot *s = &m->slots[i];
        if (s->value != NULL && s->value != U64MAP_TOMBSTONE) {
            *key = s->key;
            *value = s->value;
            *iter = i + 1;
            return true;
        }
    }
    *iter = m->cap;
    return false;
}
