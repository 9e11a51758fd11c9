/* SPDX-License-Identifier: MIT */
/*
 * map: the generic copy-on-write B+tree for keyed metadata (directories, properties, snapshot
 * and child-dataset names, bookmarks, dedup table).
 *
 * Keys are (a, b) pairs of uint64 ordered lexicographically; values are 0..MAP_VALUE_MAX bytes.
 * The tree lives in the blocks of one object: node n is block n of that object (block 0 is the
 * header), read and written through map_store_ops, so every node is an ordinary CoW block with a
 * checksum in its parent, a birth txg, compression and snapshot sharing — the map itself knows
 * nothing of transactions. Freed node numbers are recycled through a free list in the header.
 *
 * Node format (little-endian; docs/FORMAT.md "Map nodes"):
 *   header block: magic, version, node size, root node, tree height, entry count, next never-used
 *   node number, free-list of node numbers.
 *   node: magic, level (0 = leaf), nkeys, then sorted entries (leaf: key, value length, value;
 *   interior: key, child node number).
 * Every node read is validated (magic, level, bounds, key order) and a bad one gives -ECORRUPT.
 *
 * Not thread-safe: the owner serializes calls on one map.
 */
#ifndef LCPFS_CORE_MAP_H
#define LCPFS_CORE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAP_VALUE_MAX         1024u
#define MAP_NODE_SIZE_MIN     4096u
#define MAP_NODE_SIZE_MAX     131072u
#define MAP_NODE_SIZE_DEFAULT 16384u

struct map_store_ops {
    /* Reads node `blkid` into buf (node_size bytes); a never-written node reads as zeros. */
    int (*read)(void *ctx, uint64_t blkid, void *buf);
    /* Writes node `blkid` from buf (node_size bytes). */
    int (*write)(void *ctx, uint64_t blkid, const void *buf);
    /* Node `blkid` is no longer used (its block may be punched). */
    int (*release)(void *ctx, uint64_t blkid);
};

struct map;

/*
 * Formats an empty map (writes the header node 0) and opens it. ops and ctx are borrowed and
 * must outlive the map. node_size is a power of two in [MIN, MAX]. Returns 0, -EINVAL, -ENOMEM
 * or a store error.
 */
int map_create(const struct map_store_ops *ops, void *ctx, uint32_t node_size, struct map **out);
/* Opens an existing map. Returns 0, -ECORRUPT for a bad header, -ENOMEM or a store error. */
int map_open(const struct map_store_ops *ops, void *ctx, struct map **out);
void map_close(struct map *m); /* NULL ok; writes nothing */

/* Inserts (a,b) -> val. -EEXIST if present and !replace; -EINVAL if len > MAP_VALUE_MAX. */
int map_insert(struct map *m, uint64_t a, uint64_t b, const void *val, size_t len, bool replace);
/* Copies up to cap bytes of the value into val (may be NULL), sets *len to its full length.
 * -ENOENT. */
int map_lookup(struct map *m, uint64_t a, uint64_t b, void *val, size_t cap, size_t *len);
/* Removes (a,b). -ENOENT if absent. Nodes that empty are merged or released. */
int map_remove(struct map *m, uint64_t a, uint64_t b);

/*
 * Calls fn for each entry with key >= (a, b) in ascending order. Stops when fn returns nonzero
 * and returns that value; returns 0 after the last entry, or a negative store/-ECORRUPT error.
 * The map must not be modified from fn.
 */
typedef int (*map_iter_fn)(void *arg, uint64_t a, uint64_t b, const void *val, size_t len);
int map_iterate(struct map *m, uint64_t a, uint64_t b, map_iter_fn fn, void *arg);

uint64_t map_count(const struct map *m);
/* Walks every node and checks order, fill, height and count. Returns 0 or -ECORRUPT. */
int map_check(struct map *m);

#endif
