/* SPDX-License-Identifier: MIT */
/*
 * traverse: walking committed block trees, pruned by birth txg (pool-format.md §6).
 *
 * Every BP's birth is at least the births of everything below it (a changed child rewrites its
 * parent), so a walk that only wants blocks born after txg m skips every subtree whose BP was
 * born at or before m: the cost is proportional to what changed since m, not to the data. That
 * one rule drives dataset destroy and rollback (free what was born after the previous snapshot),
 * the changed-block query (incremental send, NBD dirty bitmaps) and, later, scrub.
 *
 * Reads go through the ARC and verify checksums (self-healing like any read). Nothing here
 * changes a tree; callers that free blocks from fn are safe because frees are deferred (a block
 * freed in the syncing txg is never reused in that txg unless it was born in it).
 */
#ifndef LCPFS_CORE_TRAVERSE_H
#define LCPFS_CORE_TRAVERSE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/bp.h"
#include "core/pool.h"

struct dnode_phys;

/* Where a BP sits: object (0 = the meta-dnode), level (-1 = the object set root) and block id. */
struct traverse_pos {
    uint64_t obj;
    int level;
    uint64_t blkid;
};

/* Return nonzero to stop the walk; the walk returns that value. bp is borrowed for the call. */
typedef int (*traverse_fn)(void *arg, const struct traverse_pos *pos, const struct blkptr *bp);

/*
 * Visits every allocated BP (not holes, not embedded) reachable from the object set root `root`
 * with birth > min_birth, children before their parent and the root last. Returns 0, fn's
 * nonzero value, or a read/format error (-ECKSUM, -EIO, -ECORRUPT) — on an error the walk stops.
 */
int traverse_objset(struct pool *p, const struct blkptr *root, uint64_t min_birth, traverse_fn fn,
                    void *arg);

/*
 * Visits the BPs of one object's committed tree (dp) with birth > min_birth, pre-order. With
 * holes, holes born after min_birth are reported too (a punch after min_birth); level-L BPs
 * stand for blocks [blkid << (L * shift), (blkid + 1) << (L * shift)), shift = indblkshift - 7.
 * Embedded BPs are reported as level-0 data. Descends below every allocated indirect visited.
 */
int traverse_object(struct pool *p, uint64_t obj, const struct dnode_phys *dp, uint64_t min_birth,
                    bool holes, traverse_fn fn, void *arg);

#endif
