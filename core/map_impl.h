/* SPDX-License-Identifier: MIT */
/*
 * map_impl: what map.c (operations that change the tree) and map_read.c (lookups, iteration
 * and map_check) share: the format constants, the in-memory structures, key and node accessors,
 * and reading a node. The format and the invariants are described in map.c. Private to the map
 * module.
 */
#ifndef LCPFS_CORE_MAP_IMPL_H
#define LCPFS_CORE_MAP_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/assert.h"
#include "common/endian.h"
#include "core/map.h"

#define MAP_MAGIC      0x4c4350464d415031ULL /* "1PAMFPCL" */
#define MAP_VERSION    1u
#define MAP_NODE_MAGIC 0x4e50414du /* "MAPN" */
#define MAP_HEIGHT_MAX 32u

#define HDR_FREE_OFF  64u /* first free-list slot */
#define HDR_TAIL_SIZE 8u  /* end marker */
#define NODE_HDR_SIZE 16u
#define LEAF_ENT_HDR  18u /* key a, key b, value length */
#define LEAF_ENT_MAX  (LEAF_ENT_HDR + MAP_VALUE_MAX)
#define INT_ENT_SIZE  24u
#define OPEN_SENTINEL 0xa5u

_Static_assert(MAP_NODE_SIZE_MIN - NODE_HDR_SIZE >= 3 * LEAF_ENT_MAX,
               "a minimal node must hold three maximal leaf entries");
_Static_assert(MAP_NODE_SIZE_MAX / LEAF_ENT_HDR < 65536, "entry count must fit a u16");
_Static_assert((MAP_NODE_SIZE_MIN & (MAP_NODE_SIZE_MIN - 1)) == 0, "power of two");
_Static_assert((MAP_NODE_SIZE_MAX & (MAP_NODE_SIZE_MAX - 1)) == 0, "power of two");
_Static_assert(HDR_FREE_OFF + HDR_TAIL_SIZE < MAP_NODE_SIZE_MIN, "header fits");

struct mkey {
    uint64_t a;
    uint64_t b;
};

struct map_hdr {
    uint64_t root;   /* 0 = empty */
    uint64_t count;  /* entries */
    uint64_t next;   /* next never-used node number */
    uint32_t height; /* 0 = empty */
    uint32_t nfree;  /* used slots of map.freelist */
};

struct map {
    const struct map_store_ops *ops; /* borrowed */
    void *ctx;                       /* borrowed */
    uint32_t node_size;              /* bytes, power of two */
    uint32_t free_cap;               /* free-list slots in the header */
    struct map_hdr h;                /* decoded header scalars */
    uint64_t *freelist;              /* free_cap slots, h.nfree in use */
    uint8_t *hdr_buf;                /* node_size bytes for encoding the header */
    int err;                         /* sticky failure (negative) or 0 */
};

/* A node image being worked on. */
struct mnode {
    uint64_t blkid;
    uint8_t *buf;  /* node image, room for node_size + LEAF_ENT_MAX (scratch: twice that) */
    uint32_t *off; /* off[i] = offset of entry i, off[n] = used */
    uint32_t level;
    uint32_t n;     /* entries */
    uint32_t used;  /* bytes: header + entries */
    uint32_t idx;   /* on a path: index of the child followed */
    struct mkey lo; /* subtree bounds: lo <= key < hi (no upper bound if hi_inf) */
    struct mkey hi;
    bool hi_inf;
    bool dirty; /* write at commit */
    bool freed; /* release at commit, never write */
};

/* One mutating operation's working set. */
struct mop {
    struct map *m;
    struct map_hdr saved; /* header scalars at the start, restored on failure */
    uint32_t npath;
    struct mnode path[MAP_HEIGHT_MAX]; /* path[0] = root ... path[npath-1] = leaf */
    uint32_t nextra;
    struct mnode extra[MAP_HEIGHT_MAX + 2]; /* split-off nodes, new root, siblings */
    struct mnode scratch;                   /* concatenation of two nodes */
    uint32_t nfreed;
    uint64_t freed[MAP_HEIGHT_MAX + 2];
};

/* ---- keys and node access ---------------------------------------------------------------- */

static inline int
key_cmp(struct mkey x, struct mkey y)
{
    if (x.a != y.a)
        return x.a < y.a ? -1 : 1;
    if (x.b != y.b)
        return x.b < y.b ? -1 : 1;
    return 0;
}

static inline struct mkey
key_get(const uint8_t *p)
{
    return (struct mkey){ le64_get(p), le64_get(p + 8) };
}

static inline struct mkey
node_key(const struct mnode *nd, uint32_t i)
{
    ASSERT3U(i, <, nd->n);
    return key_get(nd->buf + nd->off[i]);
}

static inline uint64_t
node_child(const struct mnode *nd, uint32_t i)
{
    ASSERT3U(nd->level, >, 0);
    ASSERT3U(i, <, nd->n);
    return le64_get(nd->buf + nd->off[i] + 16);
}

static inline uint32_t
node_payload(const struct mnode *nd)
{
    return nd->used - NODE_HDR_SIZE;
}

static inline uint32_t
node_cap(const struct map *m)
{
    return m->node_size - NODE_HDR_SIZE;
}

static inline uint32_t
node_min_fill(const struct map *m)
{
    return node_cap(m) / 4;
}

/* Index of the first entry with key >= k (n if none); *found if that key equals k. */
static inline uint32_t
node_lower_bound(const struct mnode *nd, struct mkey k, bool *found)
{
    uint32_t lo = 0, hi = nd->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (key_cmp(node_key(nd, mid), k) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < nd->n && key_cmp(node_key(nd, lo), k) == 0;
    return lo;
}

/* Interior node: index of the child whose range holds k (the last entry with key <= k). */
static inline uint32_t
node_child_index(const struct mnode *nd, struct mkey k)
{
    bool found;
    uint32_t i = node_lower_bound(nd, k, &found);
    if (found || i == 0)
        return i;
    return i - 1;
}

/* Sets c's bounds to those of child i of p (c may be p: only p's bounds fields are reused). */
static inline void
child_bounds(const struct mnode *p, uint32_t i, struct mnode *c)
{
    struct mkey lo = node_key(p, i);
    if (i + 1 < p->n) {
        c->hi = node_key(p, i + 1);
        c->hi_inf = false;
    } else {
        c->hi = p->hi;
        c->hi_inf = p->hi_inf;
    }
    c->lo = lo;
}

static inline void
root_bounds(struct mnode *nd)
{
    nd->lo = (struct mkey){ 0, 0 };
    nd->hi = (struct mkey){ 0, 0 };
    nd->hi_inf = true;
}

/* ---- node buffers and reading (map.c) ---------------------------------------------------- */

/* Gives nd a node buffer (scratch: room for two nodes); a no-op if it has one. */
int mnode_alloc(const struct map *m, struct mnode *nd, bool scratch);
/* Frees nd's buffers (nd may have none). */
void mnode_release(struct mnode *nd);
/* Reads node blkid into nd (bounds already set) and validates it as a node of `level`. */
int mnode_read(struct map *m, struct mnode *nd, uint64_t blkid, uint32_t level);
/* Reads root..leaf into path[0..height) following key k; each node's idx is the child taken. */
int mnode_path_descend(struct map *m, struct mnode *path, struct mkey k);
/* Checks the decoded header scalars and free list (invariants 4 and 5, header part). */
int map_hdr_validate(const struct map *m);

#endif
