/* SPDX-License-Identifier: MIT */
/*
 * range_tree: a set of disjoint half-open [start, end) uint64 segments, kept coalesced.
 *
 * An AVL tree keyed by start, each node augmented with the largest segment length in its
 * subtree, so that first-fit ("lowest segment at or after cursor with length >= n") is
 * O(log n) and the largest free segment is O(1). Used for metaslab free space, defer lists and
 * dirty-range bookkeeping. Not thread-safe: the owner's lock protects it.
 *
 * Invariants (range_tree_check): segments are disjoint and non-adjacent (adjacent ones are
 * merged), non-empty; space = sum of lengths; AVL balance and max-length augmentation hold.
 */
#ifndef LCPFS_CORE_RANGE_TREE_H
#define LCPFS_CORE_RANGE_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct range_tree;

/* Returns a new empty tree, or NULL on allocation failure. Free with range_tree_free. */
struct range_tree *range_tree_new(void);
void range_tree_free(struct range_tree *rt); /* NULL ok */
void range_tree_clear(struct range_tree *rt);

/* Adds [start, start+len); the range must not overlap existing segments (VERIFY). len > 0. */
int range_tree_add(struct range_tree *rt, uint64_t start, uint64_t len);
/* Removes [start, start+len); the whole range must be present (VERIFY). May split a segment. */
int range_tree_remove(struct range_tree *rt, uint64_t start, uint64_t len);
/* true when all of [start, start+len) is in the tree / when any byte of it is. */
bool range_tree_contains(const struct range_tree *rt, uint64_t start, uint64_t len);
bool range_tree_intersects(const struct range_tree *rt, uint64_t start, uint64_t len);

/*
 * First fit: the lowest segment with start >= cursor (or containing cursor, then from cursor)
 * holding len bytes at an offset aligned to align (power of two). On success sets *out_start
 * and returns true; the range is not removed.
 */
bool range_tree_find_first_fit(const struct range_tree *rt, uint64_t cursor, uint64_t len,
                               uint64_t align, uint64_t *out_start);

uint64_t range_tree_space(const struct range_tree *rt); /* total bytes */
size_t range_tree_count(const struct range_tree *rt);   /* number of segments */
uint64_t range_tree_max_segment(const struct range_tree *rt);

/* Calls fn for every segment in ascending order; stops early when fn returns nonzero (returned). */
typedef int (*range_tree_walk_fn)(void *arg, uint64_t start, uint64_t len);
int range_tree_walk(const struct range_tree *rt, range_tree_walk_fn fn, void *arg);
/* Moves every segment of src into dst (which must not overlap) and empties src. */
int range_tree_vacate_into(struct range_tree *src, struct range_tree *dst);

/* Walks the whole tree and checks every invariant above. */
bool range_tree_check(const struct range_tree *rt);

#endif
