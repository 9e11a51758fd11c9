/* SPDX-License-Identifier: MIT */
/*
 * dnode_sync: folds one txg's changes to an object into a new copy-on-write block tree.
 *
 * Theory of operation
 * -------------------
 * For object O and syncing txg T (slot = O's changes in T, frozen since T closed):
 *   1. Grow the tree (add levels on top) until it can address the highest dirty block.
 *   2. Apply the slot's punched ranges: every BP under them is freed and replaced by a hole born
 *      at T (hole birth: incremental send can tell when a range became empty).
 *   3. Write every dirty data block (zio: compress, checksum, allocate, write) and set its BP.
 *   4. Write the touched indirect blocks bottom-up: each gets the new BPs of its children, a
 *      fill count (sum of children's), and is itself written as a new block; an indirect whose
 *      children are all holes becomes a hole.
 *   5. Publish: under dn->lock the new root BPs, level count and sizes replace dn->phys, then the
 *      slot is emptied (dnode.c invariant 3).
 * Every replaced BP is handed to the object set's free function (the dataset layer decides
 * between freeing and keeping it for snapshots); BPs born in T itself are rewritten in place
 * when the shape allows (sync passes >= 2 converge that way) or freed at once.
 *
 * Indirect blocks touched during one dnode_sync are kept in `struct sync_ctx.cache`, keyed by
 * (level, index), as modifiable encoded copies along with the BP they were read from.
 *
 * Invariants:
 *   1. birth(child) <= birth(parent) <= T for every BP this writes.
 *   2. fill(indirect) = sum of fill(children); fill(L0) = 1 for data, 0 for holes.
 *   3. used_bytes changes by exactly sum(asize(new)) - sum(asize(old)) over replaced BPs.
 */
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "core/blkbuf.h"
#include "core/pool_impl.h"
#include "core/taskq.h"

struct ind_block {
    uint8_t *data;       /* encoded BP array, 1 << indblkshift bytes */
    struct blkptr oldbp; /* what the parent pointed to before this sync */
    bool dirty;
};

struct sync_ctx {
    struct dnode *dn;
    struct pool *p;
    uint64_t txg;
    struct dnode_phys work; /* tree being built */
    unsigned shift;         /* log2(BPs per indirect) */
    uint32_t indsz;
    struct u64map cache; /* (level << 58 | index) -> struct ind_block* */
    int64_t used_delta;
    /* data blocks written, handed to the block cache when the tree is published */
    struct written {
        uint64_t blkid;
        struct blkptr bp;
    } * written;
    size_t nwritten;
};

static uint64_t
cache_key(int level, uint64_t index)
{
    return ((uint64_t)level << 58) | index;
}

/* Blocks addressable with the current number of levels. */
static uint64_t
capacity(const struct sync_ctx *sc)
{
    unsigned bits = sc->shift * (sc->work.nlevels - 1u);
    if (bits >= 58)
        return UINT64_MAX;
    return (uint64_t)sc->work.a.nblkptr << bits;
}

static void
free_bp(struct sync_ctx *sc, const struct blkptr *bp)
{
    if (bp_is_hole(bp))
        return;
    sc->used_delta -= (int64_t)bp_asize(bp);
    objset_free_bp(sc->dn->os, sc->txg, bp);
}

static struct zio_props
props_for(const struct sync_ctx *sc, int level)
{
    const struct dnode_attrs *a = &sc->work.a;
    struct zio_props zp = {
        .type = a->type,
        .level = (uint8_t)level,
        .checksum = a->checksum,
        .compress = a->compress,
        .comp_level = a->comp_level,
        .copies = a->copies,
        .metadata = level > 0 || sc->dn->os->is_mos || a->type == OT_DNODE,
    };
    if (zp.metadata && zp.copies < 2)
        zp.copies = 2; /* metadata keeps a ditto copy */
    if (zp.metadata && zp.compress == COMPRESS_OFF) {
        zp.compress = COMPRESS_LZ4; /* indirect and dnode blocks are mostly zeros */
        zp.comp_level = 0;
    }
    if (zp.metadata && zp.checksum == CKSUM_OFF)
        zp.checksum = CKSUM_XXH3;
    if (sc->dn->os->is_mos)
        zp.compress = COMPRESS_OFF; /* fixed sizes let sync passes >= 2 rewrite in place */
    return zp;
}

/* Returns the cached indirect block (level >= 1, index), loading it from the tree if needed. */
static int get_ind(struct sync_ctx *sc, int level, uint64_t index, struct ind_block **out);

/* The current BP of the node at (level, index): from the dnode or from its parent block. */
static int
get_bp(struct sync_ctx *sc, int level, uint64_t index, struct blkptr *out)
{
    if (level == sc->work.nlevels - 1) {
        if (index >= sc->work.a.nblkptr) {
            bp_make_hole(out, 0, sc->work.a.type, (uint8_t)level, 0);
            return 0;
        }
        *out = sc->work.blkptr[index];
        return 0;
    }
    struct ind_block *parent;
    int rc = get_ind(sc, level + 1, index >> sc->shift, &parent);
    if (rc != 0)
        return rc;
    return bp_decode(parent->data + (index & ((1ull << sc->shift) - 1)) * BP_SIZE, out);
}

static int
get_ind(struct sync_ctx *sc, int level, uint64_t index, struct ind_block **out)
{
    ASSERT(level >= 1 && level < sc->work.nlevels);
    struct ind_block *ib = u64map_get(&sc->cache, cache_key(level, index));
    if (ib != NULL) {
        *out = ib;
        return 0;
    }
    struct blkptr bp;
    int rc = get_bp(sc, level, index, &bp);
    if (rc != 0)
        return rc;
    ib = calloc(1, sizeof(*ib));
    uint8_t *data = blkbuf_zalloc(sc->indsz);
    if (ib == NULL || data == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    ib->data = data;
    ib->oldbp = bp;
    if (!bp_is_hole(&bp)) {
        if (bp.level != level || bp.lsize != sc->indsz) {
            rc = ERR(-ECORRUPT);
            goto fail;
        }
        struct blockref ref;
        pthread_rwlock_rdlock(&sc->p->tree_lock);
        rc = zio_read_ref(sc->p, &bp, &ref);
        pthread_rwlock_unlock(&sc->p->tree_lock);
        if (rc != 0) {
            pool_record_error(sc->p, sc->dn->os->ds_obj, sc->dn->obj, level, index, &bp, rc);
            goto fail;
        }
        memcpy(data, ref.data, sc->indsz);
        blockref_release(&ref);
    }
    rc = u64map_put(&sc->cache, cache_key(level, index), ib);
    if (rc != 0)
        goto fail;
    *out = ib;
    return 0;
fail:
    blkbuf_free(data);
    free(ib);
    return rc;
}

/* Points the parent slot of node (level, index) at bp. Frees nothing. */
static int
set_bp(struct sync_ctx *sc, int level, uint64_t index, const struct blkptr *bp)
{
    if (level == sc->work.nlevels - 1) {
        VERIFY3U(index, <, sc->work.a.nblkptr);
        sc->work.blkptr[index] = *bp;
        return 0;
    }
    struct ind_block *parent;
    int rc = get_ind(sc, level + 1, index >> sc->shift, &parent);
    if (rc != 0)
        return rc;
    bp_encode(bp, parent->data + (index & ((1ull << sc->shift) - 1)) * BP_SIZE);
    parent->dirty = true;
    return 0;
}

/* Adds levels on top until blkid is addressable (step 1). */
static int
grow_levels(struct sync_ctx *sc, uint64_t blkid)
{
    while (blkid >= capacity(sc)) {
        /* The new top block 0 adopts the old top BPs as its first entries. */
        struct ind_block *ib = calloc(1, sizeof(*ib));
        uint8_t *data = blkbuf_zalloc(sc->indsz);
        if (ib == NULL || data == NULL) {
            free(ib);
            blkbuf_free(data);
            return -ENOMEM;
        }
        bool any = false;
        for (unsigned i = 0; i < sc->work.a.nblkptr; i++) {
            bp_encode(&sc->work.blkptr[i], data + i * BP_SIZE);
            any = any || !bp_is_hole(&sc->work.blkptr[i]);
        }
        int newlevel = sc->work.nlevels;
        /* Cached blocks keep their (level, index) keys: adding a level on top changes no index. */
        ib->data = data;
        bp_make_hole(&ib->oldbp, 0, sc->work.a.type, (uint8_t)newlevel, 0);
        ib->dirty = any;
        int rc = u64map_put(&sc->cache, cache_key(newlevel, 0), ib);
        if (rc != 0) {
            blkbuf_free(data);
            free(ib);
            return rc;
        }
        for (unsigned i = 0; i < sc->work.a.nblkptr; i++)
            bp_make_hole(&sc->work.blkptr[i], 0, sc->work.a.type, (uint8_t)newlevel, 0);
        sc->work.nlevels++;
    }
    return 0;
}

/* Frees bp and everything below it, reading indirect blocks from disk. */
static int
free_subtree_disk(struct sync_ctx *sc, const struct blkptr *bp)
{
    if (bp_is_hole(bp))
        return 0;
    if (bp->level > 0) {
        if (bp->lsize != sc->indsz)
            return ERR(-ECORRUPT);
        struct blockref ref;
        pthread_rwlock_rdlock(&sc->p->tree_lock);
        int rc = zio_read_ref(sc->p, bp, &ref);
        pthread_rwlock_unlock(&sc->p->tree_lock);
        if (rc != 0)
            return rc;
        for (uint64_t i = 0; i < (1ull << sc->shift) && rc == 0; i++) {
            struct blkptr child;
            rc = bp_decode(ref.data + i * BP_SIZE, &child);
            if (rc == 0 && !bp_is_hole(&child)) {
                if (child.level != bp->level - 1 || child.birth > bp->birth)
                    rc = ERR(-ECORRUPT);
                else
                    rc = free_subtree_disk(sc, &child);
            }
        }
        blockref_release(&ref);
        if (rc != 0)
            return rc;
    }
    free_bp(sc, bp);
    return 0;
}

/* Frees the node (level, index) whose current BP is bp, including cached modifications. */
static int
free_node(struct sync_ctx *sc, int level, uint64_t index, const struct blkptr *bp)
{
    if (level == 0)
        return free_subtree_disk(sc, bp);
    struct ind_block *ib = u64map_remove(&sc->cache, cache_key(level, index));
    if (ib == NULL)
        return free_subtree_disk(sc, bp);
    int rc = 0;
    for (uint64_t i = 0; i < (1ull << sc->shift) && rc == 0; i++) {
        struct blkptr child;
        rc = bp_decode(ib->data + i * BP_SIZE, &child);
        if (rc == 0 && !bp_is_hole(&child))
            rc = free_node(sc, level - 1, (index << sc->shift) | i, &child);
    }
    if (rc == 0)
        free_bp(sc, &ib->oldbp);
    blkbuf_free(ib->data);
    free(ib);
    return rc;
}

/* Step 2: punches L0 range [b0, b1) under node (level, index). */
static int
free_range(struct sync_ctx *sc, int level, uint64_t index, uint64_t b0, uint64_t b1)
{
    unsigned span_bits = sc->shift * (unsigned)level;
    uint64_t first = span_bits >= 64 ? 0 : index << span_bits;
    uint64_t last = span_bits >= 64 ? UINT64_MAX : first + ((1ull << span_bits) - 1);
    if (last < b0 || first >= b1)
        return 0;
    struct blkptr bp;
    int rc = get_bp(sc, level, index, &bp);
    if (rc != 0)
        return rc;
    /* A node may exist only in the cache (a top block grow_levels just made, whose pointer in
     * the dnode is still a hole until step 4): the cache decides before the BP does. */
    bool cached = level > 0 && u64map_get(&sc->cache, cache_key(level, index)) != NULL;
    if (bp_is_hole(&bp) && !cached)
        return 0;
    if (first >= b0 && last < b1) {
        rc = free_node(sc, level, index, &bp);
        if (rc != 0)
            return rc;
        struct blkptr hole;
        bp_make_hole(&hole, level == 0 ? sc->work.a.datablksz : sc->indsz, sc->work.a.type,
                     (uint8_t)level, sc->txg);
        return set_bp(sc, level, index, &hole);
    }
    struct ind_block *ib;
    rc = get_ind(sc, level, index, &ib);
    if (rc != 0)
        return rc;
    ib->dirty = true;
    for (uint64_t i = 0; i < (1ull << sc->shift) && rc == 0; i++)
        rc = free_range(sc, level - 1, (index << sc->shift) | i, b0, b1);
    return rc;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Collects the keys of a u64map sorted ascending. *out malloc'd. */
static int
sorted_keys(const struct u64map *m, uint64_t **out, size_t *n)
{
    *n = u64map_count(m);
    *out = malloc((*n ? *n : 1) * sizeof(uint64_t));
    if (*out == NULL)
        return -ENOMEM;
    size_t it = 0, i = 0;
    uint64_t key;
    void *v;
    while (u64map_next(m, &it, &key, &v))
        (*out)[i++] = key;
    qsort(*out, *n, sizeof(uint64_t), cmp_u64);
    return 0;
}

/* Replaces the BP at (level, index) with a newly written one (steps 3 and 4). */
static int
replace_bp(struct sync_ctx *sc, int level, uint64_t index, const struct blkptr *oldbp,
           const struct blkptr *newbp, bool reused)
{
    if (bp_is_hole(oldbp) && bp_is_hole(newbp))
        return 0; /* nothing changes: keep the old hole and its birth */
    if (!reused) {
        free_bp(sc, oldbp);
    } else {
        sc->used_delta -= (int64_t)bp_asize(oldbp);
        objset_account(sc->dn->os, oldbp, -1);
    }
    sc->used_delta += (int64_t)bp_asize(newbp);
    objset_account(sc->dn->os, newbp, +1);
    return set_bp(sc, level, index, newbp);
}

/*
 * Write-through caching: the data of the blocks just written moves into the block cache under
 * the keys of their new BPs, so reading what was just written costs no device read (the page
 * cache does the same for the peers of the NBD benchmark). The buffers are handed over, not
 * copied, under dn->lock at publish time: until then readers may still use them through the
 * dirty slot, and after the slot is cleared they find them in the cache.
 */
static void
cache_written(struct sync_ctx *sc, struct dnode_txg *slot)
{
    for (size_t i = 0; i < sc->nwritten; i++) {
        struct dirty_block *db = u64map_get(&slot->blocks, sc->written[i].blkid);
        const struct blkptr *bp = &sc->written[i].bp;
        if (db == NULL || db->data == NULL || bp->lsize != sc->work.a.datablksz)
            continue;
        struct arc_key key;
        arc_key_of(bp, &key);
        struct arc_buf *ab = arc_put(sc->p->arc, &key, db->data, bp->lsize);
        db->data = NULL; /* the cache owns it (arc_put frees it when it cannot keep it) */
        if (ab != NULL)
            arc_buf_unref(ab);
    }
}

/* An indirect block just written goes into the block cache too (a copy: the sync context keeps
 * its own until the end of the txg), so reads of fresh data find their tree in memory. */
static void
cache_indirect(struct sync_ctx *sc, const struct blkptr *bp, const uint8_t *data)
{
    uint8_t *copy = blkbuf_alloc(sc->indsz);
    if (copy == NULL)
        return; /* only a cache: the next read fetches it */
    memcpy(copy, data, sc->indsz);
    struct arc_key key;
    arc_key_of(bp, &key);
    struct arc_buf *ab = arc_put(sc->p->arc, &key, copy, sc->indsz);
    if (ab != NULL)
        arc_buf_unref(ab);
}

/* One data block of the parallel write phase (step 3). */
struct data_job {
    struct sync_ctx *sc;
    const struct zio_props *zp;
    uint64_t blkid;
    const uint8_t *data;
    struct blkptr oldbp, newbp;
    struct zio_deferred *dw; /* this block's entry in the issue array */
    bool reused;
    int rc;
};

static void
prepare_one(void *arg, size_t i)
{
    struct data_job *j = &((struct data_job *)arg)[i];
    struct sync_ctx *sc = j->sc;
    j->rc = zio_write_prepare(sc->p, sc->txg, j->data, sc->work.a.datablksz, j->zp, &j->oldbp,
                              &j->newbp, j->dw);
}

/*
 * Step 3, a part at a time (SYNC_ISSUE_CHUNK_BYTES): the tree is read sequentially to find each
 * block's old BP, the blocks are compressed, checksummed and allocated in parallel on the pool's
 * taskq, then their device writes start in the background (zio_issue_start on io_taskq, blocks
 * adjacent on a device merged into one write, zio_agg.c) while the next part is prepared: the
 * cores and the devices work at the same time. When every part is written, the BPs are set
 * sequentially (the indirect cache is single-threaded).
 */
static int
write_data_blocks(struct sync_ctx *sc, struct dnode_txg *slot)
{
    uint64_t *keys;
    size_t n;
    int rc = sorted_keys(&slot->blocks, &keys, &n);
    if (rc != 0)
        return rc;
    struct data_job *jobs = calloc(n ? n : 1, sizeof(*jobs));
    struct zio_deferred *dws = calloc(n ? n : 1, sizeof(*dws));
    if (jobs == NULL || dws == NULL) {
        free(jobs);
        free(dws);
        free(keys);
        return -ENOMEM;
    }
    struct zio_props zp = props_for(sc, 0);
    /* Best effort: without this array the written blocks are simply not cached. */
    sc->written = malloc((n ? n : 1) * sizeof(*sc->written));
    sc->nwritten = 0;
    size_t part = SYNC_ISSUE_CHUNK_BYTES / sc->work.a.datablksz;
    if (part < 64)
        part = 64;
    struct zio_issue inflight;
    bool writing = false;
    for (size_t first = 0; first < n && rc == 0; first += part) {
        size_t count = n - first < part ? n - first : part;
        for (size_t i = first; i < first + count && rc == 0; i++) {
            struct dirty_block *db = u64map_get(&slot->blocks, keys[i]);
            jobs[i] = (struct data_job){
                .sc = sc, .zp = &zp, .blkid = keys[i], .data = db->data, .dw = &dws[i]
            };
            rc = get_bp(sc, 0, keys[i], &jobs[i].oldbp);
        }
        if (rc != 0)
            break;
        taskq_run(sc->p->taskq, count, prepare_one, jobs + first);
        if (writing)
            (void)zio_issue_finish(&inflight); /* each block's rc is in its dws entry */
        zio_issue_start(&inflight, sc->p, sc->txg, dws + first, count, sc->p->io_taskq);
        writing = true;
    }
    if (writing)
        (void)zio_issue_finish(&inflight);
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].rc == 0)
            jobs[i].rc = dws[i].rc;
        jobs[i].reused = jobs[i].rc == 0 && dws[i].reused;
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = jobs[i].rc;
    for (size_t i = 0; i < n; i++) {
        if (rc != 0) {
            /* Undo the allocations of the blocks that were written: the commit is failing.
             * (Blocks never prepared have a zeroed newbp: a hole, nothing to free.) */
            if (jobs[i].rc == 0 && !jobs[i].reused)
                zio_free(sc->p, sc->txg, &jobs[i].newbp);
            continue;
        }
        rc = replace_bp(sc, 0, keys[i], &jobs[i].oldbp, &jobs[i].newbp, jobs[i].reused);
        if (rc == 0 && keys[i] + 1 > sc->work.nblocks)
            sc->work.nblocks = keys[i] + 1;
        if (rc == 0 && !bp_is_hole(&jobs[i].newbp) && !bp_is_embedded(&jobs[i].newbp) &&
            sc->written != NULL)
            sc->written[sc->nwritten++] = (struct written){ keys[i], jobs[i].newbp };
    }
    free(dws);
    free(jobs);
    free(keys);
    return rc;
}

/* Step 4: writes dirty indirect blocks level by level, bottom-up. */
static int
write_indirects(struct sync_ctx *sc)
{
    int rc = 0;
    for (int level = 1; level < sc->work.nlevels && rc == 0; level++) {
        uint64_t *keys;
        size_t n;
        rc = sorted_keys(&sc->cache, &keys, &n);
        if (rc != 0)
            return rc;
        struct zio_props zp = props_for(sc, level);
        for (size_t i = 0; i < n && rc == 0; i++) {
            if ((int)(keys[i] >> 58) != level)
                continue;
            struct ind_block *ib = u64map_get(&sc->cache, keys[i]);
            if (!ib->dirty)
                continue;
            uint64_t index = keys[i] & ((1ull << 58) - 1);
            uint64_t fill = 0;
            uint64_t max_birth = 0;
            for (uint64_t e = 0; e < (1ull << sc->shift); e++) {
                struct blkptr child;
                rc = bp_decode(ib->data + e * BP_SIZE, &child);
                if (rc != 0)
                    break;
                fill += child.fill;
                if (!bp_is_hole(&child) && child.birth > max_birth)
                    max_birth = child.birth;
            }
            if (rc != 0)
                break;
            struct blkptr newbp;
            bool reused = false;
            if (fill == 0) {
                bp_make_hole(&newbp, sc->indsz, sc->work.a.type, (uint8_t)level, sc->txg);
            } else {
                rc = zio_write(sc->p, sc->txg, ib->data, sc->indsz, &zp, &ib->oldbp, &newbp,
                               &reused);
                newbp.fill = fill;
                if (rc == 0 && max_birth > newbp.birth)
                    rc = ERR(-ECORRUPT); /* a child from disk claims a future birth */
            }
            if (rc == 0)
                rc = replace_bp(sc, level, index, &ib->oldbp, &newbp, reused);
            if (rc == 0 && !bp_is_hole(&newbp))
                cache_indirect(sc, &newbp, ib->data);
            ib->dirty = false;
        }
        free(keys);
    }
    return rc;
}

static void
cache_release(struct sync_ctx *sc)
{
    size_t it = 0;
    uint64_t key;
    void *v;
    while (u64map_next(&sc->cache, &it, &key, &v)) {
        struct ind_block *ib = v;
        blkbuf_free(ib->data);
        free(ib);
    }
    u64map_release(&sc->cache);
}

int
dnode_sync(struct dnode *dn, uint64_t txg, unsigned pass)
{
    (void)pass;
    struct dnode_txg *slot = &dn->txg[txg & 1];
    if (slot->txg != txg)
        return 0;
    struct sync_ctx sc = { .dn = dn, .p = dn->os->pool, .txg = txg };
    u64map_init(&sc.cache);
    pthread_mutex_lock(&dn->lock);
    sc.work = dn->phys;
    pthread_mutex_unlock(&dn->lock);
    int rc = 0;

    if (slot->attrs.type == OT_NONE) {
        /* Destroyed: free the whole tree. */
        if (sc.work.a.type != OT_NONE) {
            sc.shift = sc.work.a.indblkshift - 7u;
            sc.indsz = 1u << sc.work.a.indblkshift;
            for (unsigned i = 0; i < sc.work.a.nblkptr && rc == 0; i++)
                rc = free_subtree_disk(&sc, &sc.work.blkptr[i]);
        }
        if (rc != 0)
            goto out;
        memset(&sc.work, 0, sizeof(sc.work));
        goto publish;
    }
    if (sc.work.a.type == OT_NONE || sc.work.a.gen != slot->attrs.gen) {
        /* Newly created in this txg: an empty one-level tree. */
        memset(&sc.work, 0, sizeof(sc.work));
        sc.work.nlevels = 1;
        for (unsigned i = 0; i < DNODE_MAX_BLKPTR; i++)
            bp_make_hole(&sc.work.blkptr[i], slot->attrs.datablksz, slot->attrs.type, 0, 0);
    }
    sc.work.a = slot->attrs;
    sc.shift = sc.work.a.indblkshift - 7u;
    sc.indsz = 1u << sc.work.a.indblkshift;

    /* Grow for data only: a punch past the tree's reach has nothing to free. */
    uint64_t max_dirty = 0, key;
    bool any_dirty = false;
    void *v;
    for (size_t it = 0; u64map_next(&slot->blocks, &it, &key, &v);) {
        any_dirty = true;
        if (key > max_dirty)
            max_dirty = key;
    }
    if (any_dirty)
        rc = grow_levels(&sc, max_dirty);
    for (size_t i = 0; i < slot->freed.n && rc == 0; i++) {
        uint64_t b0 = slot->freed.r[i][0], b1 = slot->freed.r[i][1];
        for (unsigned t = 0; t < sc.work.a.nblkptr && rc == 0; t++)
            rc = free_range(&sc, sc.work.nlevels - 1, t, b0, b1);
        if (b1 >= sc.work.nblocks && b0 < sc.work.nblocks)
            sc.work.nblocks = b0;
    }
    if (rc == 0)
        rc = write_data_blocks(&sc, slot);
    if (rc == 0)
        rc = write_indirects(&sc);
    if (rc != 0)
        goto out;
    sc.work.used_bytes = (uint64_t)((int64_t)sc.work.used_bytes + sc.used_delta);
    /* Shrink nblocks past trailing punched blocks only when the object was truncated. */
    uint64_t size_blocks = (sc.work.a.size + sc.work.a.datablksz - 1) / sc.work.a.datablksz;
    if (sc.work.nblocks > size_blocks && slot->freed.n > 0)
        sc.work.nblocks = size_blocks;

publish:
    pthread_mutex_lock(&dn->lock); /* dnode.c invariant 3 */
    dn->phys = sc.work;
    cache_written(&sc, slot);
    dnode_slot_clear(slot);
    pthread_mutex_unlock(&dn->lock);
out:
    free(sc.written);
    cache_release(&sc);
    return rc;
}
