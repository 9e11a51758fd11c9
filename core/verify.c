/* SPDX-License-Identifier: MIT */
/*
 * verify: the offline verifier (see verify.h for what it checks).
 *
 * The walk reads every copy of every reachable block itself (not through the ARC or the
 * self-healing read path), so a damaged copy is reported even when another copy is fine. Each
 * DVA is recorded in a per-vdev range tree of reachable space; adding a range that is already
 * there is an overlap. At the end the reachable trees are compared with the allocator's view
 * replayed from the space checkpoint and journal.
 */
#include "core/verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/endian.h"
#include "core/cksum.h"
#include "core/compress.h"
#include "core/dsl_impl.h"
#include "core/pool_impl.h"

struct where {
    uint64_t ds_obj; /* 0 = MOS */
    uint64_t obj;
    int level;
    uint64_t blkid;
};

struct vctx {
    struct pool *p;
    struct verify_report *r;
    verify_msg_fn msg;
    void *arg;
    struct range_tree *reach[POOL_MAX_TOP_VDEVS];
    uint64_t window;       /* allocated bytes walked in the current dataset's birth window */
    struct u64map windows; /* dataset record object -> window bytes + 1 (0 = not walked) */
};

static void report(struct vctx *v, uint64_t *counter, const struct where *w,
                   const struct blkptr *bp, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
report(struct vctx *v, uint64_t *counter, const struct where *w, const struct blkptr *bp,
       const char *fmt, ...)
{
    (*counter)++;
    v->r->errors++;
    if (v->msg == NULL)
        return;
    char what[256], line[640], desc[160] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (bp != NULL)
        bp_describe(bp, desc, sizeof(desc));
    if (w != NULL) {
        char os[32];
        if (w->ds_obj == 0)
            snprintf(os, sizeof(os), "MOS");
        else
            snprintf(os, sizeof(os), "dataset %llu", (unsigned long long)w->ds_obj);
        snprintf(line, sizeof(line), "%s object %llu level %d block %llu: %s%s%s%s", os,
                 (unsigned long long)w->obj, w->level, (unsigned long long)w->blkid, what,
                 desc[0] ? " [" : "", desc, desc[0] ? "]" : "");
    } else {
        snprintf(line, sizeof(line), "%s", what);
    }
    v->msg(v->arg, line);
}

/* Records a DVA as reachable; reports DVAs outside their vdev and overlaps. */
static void
claim_dva(struct vctx *v, const struct where *w, const struct blkptr *bp, const struct dva *d)
{
    uint64_t asize = dva_asize(d);
    if (d->vdev >= v->p->nvdevs || d->offset > v->p->vdevs[d->vdev]->asize ||
        asize > v->p->vdevs[d->vdev]->asize - d->offset) {
        report(v, &v->r->structure_errors, w, bp, "DVA outside its vdev");
        return;
    }
    struct range_tree *rt = v->reach[d->vdev];
    if (range_tree_intersects(rt, d->offset, asize)) {
        v->r->overlap_bytes += asize;
        report(v, &v->r->structure_errors, w, bp, "block overlaps another reachable block");
        return;
    }
    range_tree_add(rt, d->offset, asize);
    v->r->asize_bytes += asize;
}

/*
 * Verifies one block: birth against the parent, every copy's checksum; claims its DVAs.
 * When out is not NULL and some copy verified, *out gets the logical bytes (malloc'd).
 * Returns false when no copy could be read and verified.
 */
static bool
verify_block(struct vctx *v, const struct blkptr *bp, uint64_t parent_birth, const struct where *w,
             uint8_t **out)
{
    if (out != NULL)
        *out = NULL;
    if (bp->birth > parent_birth)
        report(v, &v->r->birth_errors, w, bp, "born at txg %llu after its parent (txg %llu)",
               (unsigned long long)bp->birth, (unsigned long long)parent_birth);
    if (bp_is_hole(bp)) {
        v->r->holes++;
        if (out != NULL)
            *out = calloc(1, bp->lsize ? bp->lsize : 1);
        return true;
    }
    v->r->blocks++;
    v->r->lsize_bytes += bp->lsize;
    uint8_t *logical = malloc(bp->lsize ? bp->lsize : 1);
    if (logical == NULL)
        return false;
    if (bp_is_embedded(bp)) {
        v->r->embedded++;
        if (zio_read(v->p, bp, logical) != 0) {
            report(v, &v->r->structure_errors, w, bp, "embedded block does not decode");
            free(logical);
            return false;
        }
        if (out != NULL)
            *out = logical;
        else
            free(logical);
        return true;
    }
    bool good = false;
    uint64_t dsize = (bp->psize + (1ull << v->p->vdevs[0]->ashift) - 1) &
                     ~((1ull << v->p->vdevs[0]->ashift) - 1);
    uint8_t *phys = malloc(dsize ? dsize : 1);
    for (int c = 0; c < bp_ndvas(bp) && phys != NULL; c++) {
        const struct dva *d = &bp->dva[c];
        claim_dva(v, w, bp, d);
        if (d->vdev >= v->p->nvdevs ||
            dva_asize(d) != vdev_alloc_size(v->p->vdevs[d->vdev], dsize)) {
            report(v, &v->r->structure_errors, w, bp, "copy %d has the wrong size", c);
            continue;
        }
        /* vdev_scrub reads every mirror side and RAID-Z column (parity too) and verifies the
         * checksum through the redundancy; on this read-only import it repairs nothing, and the
         * pieces it found damaged are counted on their devices (reported at the end). */
        int rc = vdev_scrub(v->p, d, bp, phys, dsize);
        if (rc == -ECKSUM) {
            report(v, &v->r->cksum_errors, w, bp, "copy %d fails its checksum", c);
            continue;
        }
        if (rc != 0) {
            report(v, &v->r->io_errors, w, bp, "copy %d cannot be read", c);
            continue;
        }
        if (good)
            continue;
        rc = bp->comp == COMPRESS_OFF
                 ? (bp->psize == bp->lsize ? (memcpy(logical, phys, bp->lsize), 0) : -ECORRUPT)
                 : decompress_block(bp->comp, phys, bp->psize, logical, bp->lsize);
        if (rc != 0)
            report(v, &v->r->structure_errors, w, bp, "copy %d does not decompress", c);
        else
            good = true;
    }
    free(phys);
    if (good && out != NULL)
        *out = logical;
    else
        free(logical);
    return good;
}

static void walk_objset(struct vctx *v, const struct blkptr *root, uint64_t parent_birth,
                        uint64_t ds_obj, uint64_t min_birth);

/* Visits one object's tree; returns the allocated bytes under it (for the used-bytes check). */
struct obj_walk {
    struct vctx *v;
    uint64_t ds_obj, obj;
    const struct dnode_phys *dp;
    unsigned shift;
    uint64_t used;
    bool is_meta; /* L0 blocks are dnode arrays: walk the objects in them */
    bool is_mos;
    uint64_t min_birth; /* blocks born at or before were walked with an earlier snapshot */
    bool pruned;        /* a subtree was skipped: used bytes cannot be checked */
};

static void walk_dnode_block(struct obj_walk *ow, uint64_t blkid, const uint8_t *data);
static void walk_dataset(struct vctx *v, uint64_t obj, const struct dnode_phys *dp,
                         uint64_t parent_birth);

/* Walks the subtree at (level, index) whose BP is bp; returns its fill as counted. */
static uint64_t
walk_tree(struct obj_walk *ow, const struct blkptr *bp, int level, uint64_t index,
          uint64_t parent_birth)
{
    struct vctx *v = ow->v;
    struct where w = { ow->ds_obj, ow->obj, level, index };
    if (bp_is_hole(bp)) {
        verify_block(v, bp, parent_birth, &w, NULL);
        return 0;
    }
    if (bp->level != level) {
        report(v, &v->r->structure_errors, &w, bp, "level %u where %d was expected", bp->level,
               level);
        return bp->fill;
    }
    if (bp->birth <= ow->min_birth) {
        /* Shared with an earlier snapshot (birth-time rule), verified there. */
        if (bp->birth > parent_birth)
            report(v, &v->r->structure_errors, &w, bp, "born after its parent (txg %llu)",
                   (unsigned long long)parent_birth);
        ow->pruned = true;
        return level == 0 ? 1 : bp->fill;
    }
    ow->used += bp_asize(bp);
    v->window += bp_asize(bp);
    bool need_data = level > 0 || ow->is_meta;
    uint8_t *data = NULL;
    if (!verify_block(v, bp, parent_birth, &w, need_data ? &data : NULL) || !need_data) {
        free(data);
        return level == 0 ? 1 : bp->fill;
    }
    if (level == 0) {
        walk_dnode_block(ow, index, data);
        free(data);
        return 1;
    }
    uint32_t indsz = 1u << ow->dp->a.indblkshift;
    if (bp->lsize != indsz) {
        report(v, &v->r->structure_errors, &w, bp, "indirect block of %u bytes, expected %u",
               bp->lsize, indsz);
        free(data);
        return bp->fill;
    }
    uint64_t fill = 0;
    for (uint64_t i = 0; i < (1ull << ow->shift); i++) {
        struct blkptr child;
        uint64_t cindex = (index << ow->shift) | i;
        if (bp_decode(data + i * BP_SIZE, &child) != 0) {
            struct where cw = { ow->ds_obj, ow->obj, level - 1, cindex };
            report(v, &v->r->structure_errors, &cw, NULL, "undecodable block pointer");
            continue;
        }
        fill += walk_tree(ow, &child, level - 1, cindex, bp->birth);
    }
    if (fill != bp->fill)
        report(v, &v->r->fill_errors, &w, bp, "fill %llu but children hold %llu",
               (unsigned long long)bp->fill, (unsigned long long)fill);
    free(data);
    return fill;
}

static void
walk_object(struct vctx *v, uint64_t ds_obj, uint64_t obj, const struct dnode_phys *dp,
            uint64_t parent_birth, bool is_meta, uint64_t min_birth)
{
    struct obj_walk ow = { .v = v,
                           .ds_obj = ds_obj,
                           .obj = obj,
                           .dp = dp,
                           .shift = dp->a.indblkshift - 7u,
                           .is_meta = is_meta,
                           .is_mos = ds_obj == 0,
                           .min_birth = min_birth };
    v->r->objects++;
    for (unsigned i = 0; i < dp->a.nblkptr; i++)
        walk_tree(&ow, &dp->blkptr[i], dp->nlevels - 1, i, parent_birth);
    if (!ow.pruned && ow.used != dp->used_bytes) {
        struct where w = { ds_obj, obj, -1, 0 };
        report(v, &v->r->structure_errors, &w, NULL,
               "dnode says %llu bytes used, its blocks take %llu",
               (unsigned long long)dp->used_bytes, (unsigned long long)ow.used);
    }
    if (ds_obj == 0 && dp->a.type == OT_DSL_DATASET)
        walk_dataset(v, obj, dp, parent_birth);
}

static void
walk_dnode_block(struct obj_walk *ow, uint64_t blkid, const uint8_t *data)
{
    for (unsigned s = 0; s < DNODES_PER_BLOCK; s++) {
        uint64_t obj = blkid * DNODES_PER_BLOCK + s;
        if (obj == 0)
            continue;
        struct dnode_phys dp;
        if (dnode_phys_decode(data + s * DNODE_SIZE, &dp) != 0) {
            struct where w = { ow->ds_obj, obj, -1, 0 };
            report(ow->v, &ow->v->r->structure_errors, &w, NULL, "undecodable dnode");
            continue;
        }
        if (dp.a.type != OT_NONE)
            walk_object(ow->v, ow->ds_obj, obj, &dp, ow->v->r->txg, false, ow->min_birth);
    }
}

static void
walk_objset(struct vctx *v, const struct blkptr *root, uint64_t parent_birth, uint64_t ds_obj,
            uint64_t min_birth)
{
    struct where w = { ds_obj, 0, -1, 0 };
    uint8_t *data = NULL;
    v->r->objsets++;
    if (root->type != OT_OBJSET || root->lsize != OBJSET_PHYS_SIZE) {
        report(v, &v->r->structure_errors, &w, root, "not an object set root");
        return;
    }
    if (root->birth <= min_birth)
        return; /* unchanged since the previous snapshot: walked with it */
    if (!verify_block(v, root, parent_birth, &w, &data))
        return;
    v->window += bp_asize(root);
    struct dnode_phys meta;
    if (dnode_phys_decode(data, &meta) != 0 || meta.a.type != OT_DNODE) {
        report(v, &v->r->structure_errors, &w, root, "bad meta-dnode");
        free(data);
        return;
    }
    free(data);
    walk_object(v, ds_obj, 0, &meta, root->birth, true, min_birth);
}

/*
 * A dataset record: walk the object set of a head or snapshot over its birth window (after its
 * previous snapshot), so every block of the pool is visited once, and remember the window's
 * allocated bytes for the accounting check.
 */
static void
walk_dataset(struct vctx *v, uint64_t obj, const struct dnode_phys *dp, uint64_t parent_birth)
{
    struct dsl_phys ph;
    struct where w = { 0, obj, -1, 0 };
    if (dp->a.bonuslen != DSL_RECORD_SIZE || dsl_phys_decode(dp->a.bonus, &ph) != 0) {
        report(v, &v->r->structure_errors, &w, NULL, "bad dataset record");
        return;
    }
    if (ph.kind == DSL_KIND_BOOKMARK || bp_is_hole(&ph.root))
        return;
    uint64_t saved = v->window;
    v->window = 0;
    walk_objset(v, &ph.root, parent_birth, obj, ph.prev_snap_txg);
    u64map_put(&v->windows, obj, (void *)(uintptr_t)(v->window + 1));
    v->window = saved;
}

struct dl_check {
    struct vctx *v;
    const struct dsl_node *n;
    uint64_t max_birth;
};

static int
check_dead_bp(void *arg, const struct blkptr *bp)
{
    struct dl_check *dc = arg;
    struct vctx *v = dc->v;
    struct where w = { dc->n->obj, 0, -1, 0 };
    if (bp->birth > dc->max_birth)
        report(v, &v->r->structure_errors, &w, bp,
               "deadlist entry born after the previous snapshot (txg %llu)",
               (unsigned long long)dc->max_birth);
    for (int d = 0; d < bp_ndvas(bp); d++) {
        const struct dva *dva = &bp->dva[d];
        if (dva->vdev >= v->p->nvdevs ||
            !range_tree_contains(v->reach[dva->vdev], dva->offset, dva_asize(dva)))
            report(v, &v->r->structure_errors, &w, bp,
                   "deadlist entry not held by any earlier snapshot");
    }
    return 0;
}

/*
 * Accounting and deadlists, once every block was walked: referenced = previous snapshot's
 * referenced - what died since it (the deadlist) + what was born since it (the window); a head's
 * unique bytes = its window; every deadlist entry is older than the previous snapshot and held
 * by some earlier snapshot's tree.
 */
static void
check_datasets(struct vctx *v)
{
    struct dsl *d = v->p->dsl;
    size_t it = 0;
    uint64_t key;
    void *val;
    while (u64map_next(&d->by_obj, &it, &key, &val)) {
        const struct dsl_node *n = val;
        if (n->ph.kind == DSL_KIND_BOOKMARK)
            continue;
        struct where w = { n->obj, 0, -1, 0 };
        char name[DSL_NAME_MAX + 1];
        dsl_node_name(n, name, sizeof(name));
        uintptr_t wv = (uintptr_t)u64map_get(&v->windows, n->obj);
        if (wv == 0) {
            report(v, &v->r->structure_errors, &w, NULL, "dataset '%s' was not walked", name);
            continue;
        }
        uint64_t window = wv - 1;
        struct deadlist_space dead;
        deadlist_space(n->dl, &dead);
        uint64_t prev_ref = n->prev_snap != NULL ? n->prev_snap->ph.ref_asize : 0;
        if (prev_ref + window < dead.asize_bytes ||
            prev_ref - dead.asize_bytes + window != n->ph.ref_asize)
            report(v, &v->r->accounting_errors, &w, NULL,
                   "'%s' records %llu bytes referenced, its blocks take %llu", name,
                   (unsigned long long)n->ph.ref_asize,
                   (unsigned long long)(prev_ref + window - dead.asize_bytes));
        if (dsl_is_head(n) && n->ph.unique_asize != window)
            report(v, &v->r->accounting_errors, &w, NULL,
                   "'%s' records %llu unique bytes, %llu were born since its last snapshot", name,
                   (unsigned long long)n->ph.unique_asize, (unsigned long long)window);
        struct dl_check dc = { v, n, n->ph.prev_snap_txg };
        int rc = deadlist_iterate(n->dl, check_dead_bp, &dc);
        if (rc != 0)
            report(v, &v->r->structure_errors, &w, NULL, "deadlist of '%s' unreadable: %s", name,
                   err_str(rc));
    }
}

struct extent_list {
    uint64_t (*e)[3]; /* vdev, offset, len */
    size_t n, cap;
};

static int
collect_alloc(void *arg, uint32_t vdev, uint64_t offset, uint64_t len)
{
    struct extent_list *l = arg;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 256;
        void *ne = realloc(l->e, ncap * sizeof(*l->e));
        if (ne == NULL)
            return -ENOMEM;
        l->e = ne;
        l->cap = ncap;
    }
    l->e[l->n][0] = vdev;
    l->e[l->n][1] = offset;
    l->e[l->n][2] = len;
    l->n++;
    return 0;
}

struct cmp_ctx {
    struct vctx *v;
    struct range_tree *alloc;
    uint32_t vdev;
};

/* Reachable space that the allocator considers free. */
static int
check_reachable_allocated(void *arg, uint64_t start, uint64_t len)
{
    struct cmp_ctx *c = arg;
    for (uint64_t off = start; off < start + len; off += SECTOR_SIZE) {
        if (!range_tree_contains(c->alloc, off, SECTOR_SIZE)) {
            c->v->r->free_but_reachable_bytes += SECTOR_SIZE;
        }
    }
    return 0;
}

static void
compare_allocation(struct vctx *v)
{
    struct extent_list l = { 0 };
    if (alloc_walk_allocated(v->p->alloc, collect_alloc, &l) != 0) {
        report(v, &v->r->structure_errors, NULL, NULL, "cannot walk the space maps");
        free(l.e);
        return;
    }
    for (uint32_t vd = 0; vd < v->p->nvdevs; vd++) {
        struct range_tree *a = range_tree_new();
        for (size_t i = 0; i < l.n; i++)
            if (l.e[i][0] == vd)
                range_tree_add(a, l.e[i][1], l.e[i][2]);
        v->r->allocated_bytes += range_tree_space(a);
        uint64_t before_free = v->r->free_but_reachable_bytes;
        struct cmp_ctx c = { v, a, vd };
        range_tree_walk(v->reach[vd], check_reachable_allocated, &c);
        /* Allocated but unreachable: allocated - (reachable ∩ allocated). */
        uint64_t reach_alloc =
            range_tree_space(v->reach[vd]) - (v->r->free_but_reachable_bytes - before_free);
        uint64_t leaked = range_tree_space(a) - reach_alloc;
        if (v->r->free_but_reachable_bytes != before_free)
            report(v, &v->r->structure_errors, NULL, NULL,
                   "vdev %u: %llu reachable bytes are free in the space maps", vd,
                   (unsigned long long)(v->r->free_but_reachable_bytes - before_free));
        if (leaked != 0) {
            v->r->leaked_bytes += leaked;
            report(v, &v->r->structure_errors, NULL, NULL,
                   "vdev %u: %llu allocated bytes are not reachable (leaked)", vd,
                   (unsigned long long)leaked);
        }
        range_tree_free(a);
    }
    free(l.e);
}

/*
 * Pieces of blocks (mirror sides, RAID-Z columns) that were unreadable or wrong although the block
 * itself was recovered: the pool is readable, but its redundancy is not whole until a scrub.
 */
static void
report_damaged_pieces(struct vctx *v, struct vdev *top)
{
    if (top->type == VDEV_TYPE_LEAF)
        return; /* a plain device's damage is already a failed copy */
    for (uint32_t c = 0; c < top->nchildren; c++) {
        const struct vdev *leaf = top->child[c];
        uint64_t bad = leaf->cksum_errors + leaf->read_errors;
        if (bad > 0)
            report(v, &v->r->damaged_pieces, NULL, NULL,
                   "device '%s': %llu damaged or unreadable pieces of blocks the redundancy "
                   "still recovers (run a scrub)",
                   leaf->path, (unsigned long long)bad);
    }
}

int
verify_pool(const char *const *paths, size_t n, const struct verify_opts *opts,
            struct verify_report *r, verify_msg_fn msg, void *arg, struct err_msg *em)
{
    memset(r, 0, sizeof(*r));
    struct pool_import_opts io = { .readonly = true,
                                   .rewind_txg = opts ? opts->rewind_txg : 0,
                                   .tuning = { .arc_max_bytes = 16u << 20 } };
    struct pool *p = NULL;
    int rc = pool_import(paths, n, &io, &p, em);
    if (rc != 0)
        return rc;
    struct vctx v = { .p = p, .r = r, .msg = msg, .arg = arg };
    r->txg = p->synced_txg;
    for (uint32_t i = 0; i < p->nvdevs; i++) {
        v.reach[i] = range_tree_new();
        if (v.reach[i] == NULL) {
            rc = -ENOMEM;
            goto out;
        }
    }
    u64map_init(&v.windows);
    walk_objset(&v, &p->mos->root_bp, r->txg, 0, 0);
    check_datasets(&v);
    compare_allocation(&v);
    for (uint32_t i = 0; i < p->nvdevs; i++)
        report_damaged_pieces(&v, p->vdevs[i]);
    u64map_release(&v.windows);
out:
    for (uint32_t i = 0; i < p->nvdevs; i++)
        range_tree_free(v.reach[i]);
    pool_close(p);
    return rc;
}
