/* SPDX-License-Identifier: MIT */
/*
 * dnode_impl: what dnode.c shares with dnode_map.c (an object's extent map and changed blocks):
 * a snapshot of the published block tree's root, and the lookups in it and in the dirty slots.
 * Internal to core/dnode*.c.
 */
#ifndef LCPFS_CORE_DNODE_IMPL_H
#define LCPFS_CORE_DNODE_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/pool_impl.h"

/* The published tree's root as of one moment (copied under dn->lock, walked without it). */
struct tree_root {
    uint8_t nlevels, nblkptr, indblkshift;
    uint64_t ds_obj, obj;
    struct blkptr blkptr[DNODE_MAX_BLKPTR];
};

/* Copies dn's published root into tr (dn->lock held). */
void tree_root_snapshot(const struct dnode *dn, struct tree_root *tr);

/* The level-0 BP of blkid in a published tree (caller holds tree_lock for read): 0, or -ECORRUPT
 * for an indirect block of the wrong shape, or a read error. A hole is returned as is. */
int tree_lookup(struct pool *p, const struct tree_root *tr, uint64_t blkid, struct blkptr *out);

/*
 * Looks blkid up in the dirty slots, newest first, skipping slot `skip` (may be NULL).
 * Returns the dirty data, or NULL with *zero set when a punch hides older content, or NULL
 * with *zero clear when the tree decides. dn->lock held.
 */
const uint8_t *dirty_lookup(struct dnode *dn, uint64_t blkid, const struct dnode_txg *skip,
                            bool *zero);

#endif
