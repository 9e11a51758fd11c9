/* SPDX-License-Identifier: MIT */
/*
 * dnode_map: which blocks of an object hold data — the extent map (dnode_extents) and the
 * blocks changed since a txg (dnode_changed) — from the dirty slots and the published tree
 * (the layering of dnode.c's theory of operation).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "core/dnode_impl.h"
#include "core/traverse.h"

/*
 * The smallest block id >= start under bp (a node at `level` whose first block is `base`) that
 * is not a hole, using fill counts to skip empty subtrees. *found stays false if none.
 * Caller holds tree_lock for read.
 */
static int
subtree_next_data(struct pool *p, const struct tree_root *tr, const struct blkptr *bp, int level,
                  uint64_t base, uint64_t start, uint64_t *out, bool *found)
{
    if (bp_is_hole(bp) || bp->fill == 0)
        return 0;
    if (level == 0) {
        if (base >= start) {
            *out = base;
            *found = true;
        }
        return 0;
    }
    if (bp->level != level || bp->lsize != (1u << tr->indblkshift))
        return ERR(-ECORRUPT);
    unsigned shift = tr->indblkshift - 7u;
    unsigned child_bits = shift * (unsigned)(level - 1);
    struct blockref ref;
    int rc = zio_read_ref(p, bp, &ref);
    if (rc != 0)
        return rc;
    uint64_t first = start > base ? (start - base) >> child_bits : 0;
    for (uint64_t i = first; i < (1ull << shift) && rc == 0 && !*found; i++) {
        struct blkptr child;
        rc = bp_decode(ref.data + i * BP_SIZE, &child);
        if (rc == 0)
            rc = subtree_next_data(p, tr, &child, level - 1, base + (i << child_bits), start, out,
                                   found);
    }
    blockref_release(&ref);
    return rc;
}

/* The first block id >= start that holds data in the published tree, or UINT64_MAX.
 * Caller holds tree_lock for reading. */
static int
tree_next_data(struct pool *p, const struct tree_root *tr, uint64_t start, uint64_t *out)
{
    *out = UINT64_MAX;
    if (tr->nlevels == 0)
        return 0;
    unsigned top_bits = (tr->indblkshift - 7u) * (tr->nlevels - 1u);
    if (top_bits >= 64)
        return ERR(-ECORRUPT);
    bool found = false;
    int rc = 0;
    for (uint64_t t = start >> top_bits; t < tr->nblkptr && rc == 0 && !found; t++)
        rc = subtree_next_data(p, tr, &tr->blkptr[t], tr->nlevels - 1, t << top_bits, start, out,
                               &found);
    return rc;
}

/* The smallest dirty block id > blkid in any slot, or UINT64_MAX (dn->lock held). */
static uint64_t
next_dirty_block(const struct dnode *dn, uint64_t blkid)
{
    uint64_t best = UINT64_MAX, key;
    void *v;
    for (int i = 0; i < TXG_SLOTS; i++) {
        if (dn->txg[i].txg == 0)
            continue;
        for (size_t it = 0; u64map_next(&dn->txg[i].blocks, &it, &key, &v);) {
            if (key > blkid && key < best)
                best = key;
            if (best == blkid + 1)
                return best; /* nothing can come earlier */
        }
    }
    return best;
}

/* true when dn's published tree is still the one tr was taken from (dn->lock held). */
static bool
tree_root_unchanged(const struct dnode *dn, const struct tree_root *tr)
{
    if (dn->phys.nlevels != tr->nlevels || dn->phys.a.nblkptr != tr->nblkptr)
        return false;
    for (unsigned i = 0; i < tr->nblkptr; i++)
        if (!bp_equal(&dn->phys.blkptr[i], &tr->blkptr[i]))
            return false;
    return true;
}

/* The end of the punched range covering blkid in the newest slot that has one (dn->lock held). */
static uint64_t
freed_range_end(const struct dnode *dn, uint64_t blkid)
{
    uint64_t end = blkid + 1;
    for (int i = 0; i < TXG_SLOTS; i++) {
        const struct blk_ranges *r = &dn->txg[i].freed;
        for (size_t k = 0; k < r->n; k++)
            if (r->r[k][0] <= blkid && blkid < r->r[k][1] && r->r[k][1] > end)
                end = r->r[k][1];
    }
    return end;
}

/*
 * Data/hole runs as of now. A block's kind is decided exactly as a read decides it (dirty
 * slots first, then the tree); runs of holes are skipped in one step to the next block that may
 * hold data (next dirty block, next non-hole in the tree by fill counts), so a sparse 1 TiB
 * object costs O(data) rather than O(size).
 */
int
dnode_extents(struct dnode *dn, uint64_t off, uint64_t len, obj_extent_fn fn, void *arg)
{
    struct pool *p = dn->os->pool;
    uint64_t end = len > UINT64_MAX - off ? UINT64_MAX : off + len;
    uint64_t run_start = off;
    int run_kind = -1; /* -1 none, 0 hole, 1 data */
    int rc = 0;
    for (uint64_t pos = off; pos < end;) {
        pthread_mutex_lock(&dn->lock);
        if (dn->latest.type == OT_NONE) {
            pthread_mutex_unlock(&dn->lock);
            return -ENOENT;
        }
        uint32_t blksz = dn->latest.datablksz;
        uint64_t blkid = pos / blksz;
        uint64_t next_blk = blkid + 1;
        bool zero;
        int kind;
        const uint8_t *d = dirty_lookup(dn, blkid, NULL, &zero);
        if (d != NULL) {
            kind = 1;
            pthread_mutex_unlock(&dn->lock);
        } else if (zero) {
            kind = 0;
            uint64_t fe = freed_range_end(dn, blkid), nd = next_dirty_block(dn, blkid);
            next_blk = fe < nd ? fe : nd;
            pthread_mutex_unlock(&dn->lock);
        } else {
            struct tree_root tr;
            tree_root_snapshot(dn, &tr);
            pthread_rwlock_rdlock(&p->tree_lock);
            pthread_mutex_unlock(&dn->lock);
            struct blkptr bp;
            uint64_t nt = 0;
            rc = tree_lookup(p, &tr, blkid, &bp);
            kind = bp_is_hole(&bp) ? 0 : 1;
            if (rc == 0 && kind == 0)
                rc = tree_next_data(p, &tr, blkid + 1, &nt);
            pthread_rwlock_unlock(&p->tree_lock);
            if (rc != 0)
                return rc;
            if (kind == 0) {
                /*
                 * A hole in the tree runs to the next data block or the next dirty block. The
                 * dirty set is scanned only here, not for every data block (a scan costs a walk
                 * of every uncommitted block). If meanwhile the tree was republished or this
                 * block got written, look again from the same position.
                 */
                pthread_mutex_lock(&dn->lock);
                bool dirty_now = dirty_lookup(dn, blkid, NULL, &zero) != NULL || zero;
                bool same = tree_root_unchanged(dn, &tr);
                uint64_t nd = next_dirty_block(dn, blkid);
                pthread_mutex_unlock(&dn->lock);
                if (dirty_now || !same)
                    continue;
                next_blk = nt < nd ? nt : nd;
            }
        }
        uint64_t next = next_blk > UINT64_MAX / blksz ? end : next_blk * blksz;
        if (next > end || next <= pos)
            next = end;
        if (kind != run_kind) {
            if (run_kind >= 0 && (rc = fn(arg, run_start, pos - run_start, run_kind == 1)) != 0)
                return rc;
            run_start = pos;
            run_kind = kind;
        }
        pos = next;
    }
    if (run_kind >= 0)
        rc = fn(arg, run_start, end - run_start, run_kind == 1);
    return rc;
}

/* ---- changed blocks ---------------------------------------------------------------------------
 */

struct changed_walk {
    struct blk_ranges *set;
    unsigned shift;
};

static int
changed_bp(void *arg, const struct traverse_pos *pos, const struct blkptr *bp)
{
    struct changed_walk *cw = arg;
    unsigned bits = cw->shift * (unsigned)pos->level;
    if (pos->level == 0 || bp_is_hole(bp)) {
        uint64_t first = bits >= 64 ? 0 : pos->blkid << bits;
        uint64_t last = bits >= 64 || (pos->blkid + 1) > (UINT64_MAX >> bits)
                            ? UINT64_MAX
                            : (pos->blkid + 1) << bits;
        return blk_ranges_add(cw->set, first, last);
    }
    return 0; /* an indirect: its changed children are reported one by one */
}

/*
 * Block ranges of the object changed after since_txg: committed blocks and holes born after it
 * (a pre-order walk pruned by birth) plus every block written or punched in the open and syncing
 * txgs. Sorted and merged; *out is owned by the caller (blk_ranges_release).
 */
int
dnode_changed(struct dnode *dn, uint64_t since_txg, struct blk_ranges *out)
{
    struct pool *p = dn->os->pool;
    memset(out, 0, sizeof(*out));
    int rc = 0;
    pthread_mutex_lock(&dn->lock);
    for (int s = 0; s < TXG_SLOTS && rc == 0; s++) {
        const struct dnode_txg *slot = &dn->txg[s];
        if (slot->txg == 0)
            continue;
        size_t it = 0;
        uint64_t key;
        void *v;
        while (rc == 0 && u64map_next(&slot->blocks, &it, &key, &v))
            rc = blk_ranges_add(out, key, key + 1);
        for (size_t i = 0; rc == 0 && i < slot->freed.n; i++)
            rc = blk_ranges_add(out, slot->freed.r[i][0], slot->freed.r[i][1]);
    }
    struct dnode_phys dp = dn->phys;
    pthread_rwlock_rdlock(&p->tree_lock);
    pthread_mutex_unlock(&dn->lock);
    struct changed_walk cw = { out, dp.a.indblkshift - 7u };
    if (rc == 0 && dp.nlevels > 0)
        rc = traverse_object(p, dn->obj, &dp, since_txg, true, changed_bp, &cw);
    pthread_rwlock_unlock(&p->tree_lock);
    if (rc != 0)
        blk_ranges_release(out);
    return rc;
}
