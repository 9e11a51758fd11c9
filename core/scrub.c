/* SPDX-License-Identifier: MIT */
/*
 * scrub: read every allocated block of the pool, every copy and every RAID-Z column, verify it
 * against its checksum and rewrite whatever is damaged (pool.h pool_scrub).
 *
 * Theory of operation
 *   1. The walk covers the MOS, then every head and snapshot over its birth window (blocks born
 *      after the previous snapshot or origin), so each block is read once; the trees are the
 *      ones committed when the walk of that dataset starts.
 *   2. While a scrub runs, freed space stays deferred (alloc_hold_frees): a block of a tree being
 *      walked may be freed by a newer txg, but never reused and rewritten before the walk ends,
 *      so a read never mistakes new data for damage and a repair never overwrites live data.
 *   3. A copy that cannot be recovered from its own vdev is rewritten from another copy (ditto
 *      blocks) when one verifies; a block no copy of which verifies is an error, logged in the
 *      pool's error list with where it lives.
 *   4. One scan at a time; progress is published under p->scan_lock for pool_get_scan.
 *   6. Blocks born after the scan started (max_txg) are skipped: they were written to every
 *      usable device. So a scan resumed later, over newer trees, still covers exactly the blocks
 *      that existed when it started.
 *   7. Resuming: the MOS and the datasets are walked in a fixed order (MOS, then dataset records
 *      by object number) and each walk visits objects in ascending order; the bookmark is the
 *      last data block scanned (dataset, object, block id). Datasets before it are skipped,
 *      and in its dataset the data blocks up to it; indirect and meta-dnode blocks are scanned
 *      again (a small fraction). The bookmark and counters go to the pool directory with the
 *      next txg (the scan marks it dirty), so a crash or an export loses a few seconds of work.
 *
 *   5. A resilver is the same walk pruned to blocks born after the oldest txg some device missed
 *      (birth-time rule: a subtree born earlier is skipped whole). Reads skip a device for blocks
 *      born inside its missed window and rewrite it there; when the walk ends, windows that end
 *      by the txg it started from are forgotten.
 *
 *   8. Blocks are read in sorted batches (up to SCAN_BATCH_BYTES of copies, one dataset at a
 *      time) in (vdev, offset) order of their first copy, so a scan reads devices mostly
 *      sequentially; the bookmark moves only when a whole batch is done.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "core/dsl_impl.h"
#include "core/pool_impl.h"
#include "core/traverse.h"

/* A sorted batch: up to this many bytes of copies, or entries, are read in disk order. */
#define SCAN_BATCH_BYTES (32ull << 20)
#define SCAN_BATCH_MAX   4096

struct scan_item {
    struct blkptr bp;
    struct traverse_pos pos;
};

struct scrub_ctx {
    struct pool *p;
    uint64_t ds_obj;
    uint64_t max_txg;
    bool resuming;             /* in the bookmark's dataset, before the bookmark */
    uint64_t bm_obj, bm_blkid; /* the bookmark within this dataset */
    struct scan_item *batch;   /* invariant 8 */
    size_t nbatch;
    uint64_t batch_bytes;
    bool batch_bm; /* the batch holds a data block: its last one becomes the bookmark */
    uint64_t batch_bm_obj, batch_bm_blkid;
    uint8_t *buf;
    size_t cap;
};

/* Whether a resumed scan already did this block (invariant 7). */
static bool
done_before(struct scrub_ctx *sc, const struct traverse_pos *pos)
{
    if (!sc->resuming || pos->obj == 0 || pos->level != 0)
        return false;
    if (pos->obj < sc->bm_obj || (pos->obj == sc->bm_obj && pos->blkid <= sc->bm_blkid))
        return true;
    sc->resuming = false; /* past the bookmark: objects come in ascending order */
    return false;
}

/* Scrubs every copy of one block (invariant 3). Returns 0 or -ENOMEM; *errors 1 if lost. */
static int
scrub_one(struct scrub_ctx *sc, const struct scan_item *it, uint64_t *examined, uint64_t *errors)
{
    struct pool *p = sc->p;
    const struct blkptr *bp = &it->bp;
    uint64_t unit = 1ull << p->vdevs[0]->ashift;
    size_t dsize = (size_t)((bp->psize + unit - 1) & ~(unit - 1));
    if (dsize > sc->cap) {
        uint8_t *nb = realloc(sc->buf, dsize);
        if (nb == NULL)
            return -ENOMEM;
        sc->buf = nb;
        sc->cap = dsize;
    }
    int ndvas = bp_ndvas(bp), good = -1;
    unsigned bad = 0;
    *examined = 0;
    *errors = 0;
    for (int c = 0; c < ndvas; c++) {
        *examined += dva_asize(&bp->dva[c]);
        int rc = vdev_scrub(p, &bp->dva[c], bp, sc->buf, dsize);
        if (rc == -ENOMEM)
            return rc;
        if (rc != 0)
            bad |= 1u << c;
        else if (good < 0)
            good = c;
    }
    if (good < 0) {
        *errors = 1;
        pool_record_error(p, sc->ds_obj, it->pos.obj, it->pos.level, it->pos.blkid, bp, -ECKSUM);
    } else if (bad != 0 && !p->readonly) {
        /* The buffer holds the verified copy of the last DVA read that verified: reread it. */
        if (vdev_read(p, &bp->dva[good], bp, sc->buf, dsize) == 0) {
            for (int c = 0; c < ndvas; c++)
                if (bad & (1u << c))
                    vdev_write(p, &bp->dva[c], 0, sc->buf, dsize);
        }
    }
    return 0;
}

static int
cmp_disk_order(const void *a, const void *b)
{
    const struct dva *x = &((const struct scan_item *)a)->bp.dva[0];
    const struct dva *y = &((const struct scan_item *)b)->bp.dva[0];
    if (x->vdev != y->vdev)
        return x->vdev < y->vdev ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int
stop_requested(struct pool *p)
{
    if (__atomic_load_n(&p->scan_cancel, __ATOMIC_RELAXED))
        return -ECANCELED;
    if (__atomic_load_n(&p->scan_pause, __ATOMIC_RELAXED) ||
        __atomic_load_n(&p->scan_interrupt, __ATOMIC_RELAXED))
        return -EINTR;
    return 0;
}

/*
 * Issues the batch in disk order, then moves the bookmark to its last data block in walk order
 * (invariant 8): a scan stopped inside a batch redoes that batch, never skips part of it.
 */
static int
flush_batch(struct scrub_ctx *sc)
{
    struct pool *p = sc->p;
    qsort(sc->batch, sc->nbatch, sizeof(*sc->batch), cmp_disk_order);
    for (size_t i = 0; i < sc->nbatch; i++) {
        int rc = stop_requested(p);
        uint64_t examined = 0, errors = 0;
        if (rc == 0)
            rc = scrub_one(sc, &sc->batch[i], &examined, &errors);
        if (rc != 0)
            return rc;
        pthread_mutex_lock(&p->scan_lock);
        p->scan.examined += examined;
        p->scan.blocks++;
        p->scan.errors += errors;
        pthread_mutex_unlock(&p->scan_lock);
    }
    pthread_mutex_lock(&p->scan_lock);
    if (sc->batch_bm) {
        p->scan_bm_ds = sc->ds_obj;
        p->scan_bm_obj = sc->batch_bm_obj;
        p->scan_bm_blkid = sc->batch_bm_blkid;
        __atomic_store_n(&p->scan_dirty, true, __ATOMIC_RELAXED); /* invariant 7 */
    }
    pthread_mutex_unlock(&p->scan_lock);
    sc->nbatch = 0;
    sc->batch_bytes = 0;
    sc->batch_bm = false;
    return 0;
}

/* Walk callback: queues one block for the sorted batch. */
static int
scrub_bp(void *arg, const struct traverse_pos *pos, const struct blkptr *bp)
{
    struct scrub_ctx *sc = arg;
    int rc = stop_requested(sc->p);
    if (rc != 0)
        return rc;
    if (bp->birth > sc->max_txg || done_before(sc, pos))
        return 0; /* invariants 6 and 7 */
    sc->batch[sc->nbatch++] = (struct scan_item){ *bp, *pos };
    sc->batch_bytes += bp_asize(bp);
    if (pos->level == 0 && pos->obj != 0) {
        sc->batch_bm = true;
        sc->batch_bm_obj = pos->obj;
        sc->batch_bm_blkid = pos->blkid;
    }
    if (sc->nbatch == SCAN_BATCH_MAX || sc->batch_bytes >= SCAN_BATCH_BYTES)
        return flush_batch(sc);
    return 0;
}

struct walk_item {
    uint64_t obj, min_birth;
    struct blkptr root;
};

static int
cmp_item(const void *a, const void *b)
{
    const struct walk_item *x = a, *y = b;
    return x->obj < y->obj ? -1 : x->obj > y->obj;
}

/* The heads and snapshots to walk, with their windows (invariant 1), under dsl->lock. */
static int
collect_datasets(struct pool *p, struct walk_item **out, size_t *n)
{
    struct dsl *d = p->dsl;
    pthread_rwlock_rdlock(&d->lock);
    size_t cap = u64map_count(&d->by_obj) + 1, k = 0;
    struct walk_item *items = calloc(cap, sizeof(*items));
    if (items == NULL) {
        pthread_rwlock_unlock(&d->lock);
        return -ENOMEM;
    }
    size_t it = 0;
    uint64_t key;
    void *val;
    while (u64map_next(&d->by_obj, &it, &key, &val) && k < cap) {
        const struct dsl_node *node = val;
        if (node->ph.kind == DSL_KIND_BOOKMARK || bp_is_hole(&node->ph.root))
            continue;
        items[k++] = (struct walk_item){ node->obj, node->ph.prev_snap_txg, node->ph.root };
    }
    pthread_rwlock_unlock(&d->lock);
    qsort(items, k, sizeof(*items), cmp_item); /* invariant 7 */
    *out = items;
    *n = k;
    return 0;
}

struct window {
    uint64_t min;
};

static void
leaf_window(struct vdev *leaf, void *arg)
{
    struct window *w = arg;
    if (!vdev_leaf_usable(leaf))
        return; /* nothing can be written to it now: its window waits for it */
    uint64_t lo = __atomic_load_n(&leaf->missed_txg_min, __ATOMIC_RELAXED);
    if (lo != 0 && (w->min == 0 || lo < w->min))
        w->min = lo;
    lo = leaf->suspect_txg_min;
    if (lo != 0 && (w->min == 0 || lo < w->min))
        w->min = lo;
}

/*
 * Which leaves the walk repairs from its start (invariant 5): those usable now, and on a resume
 * in this import those usable through every part of it. A device brought online in the middle
 * missed the repairs of what was walked before, so its window is not settled.
 */
struct cover {
    bool resume;
};

static void
leaf_cover(struct vdev *leaf, void *arg)
{
    const struct cover *cv = arg;
    leaf->scan_covered = vdev_leaf_usable(leaf) && (!cv->resume || leaf->scan_covered);
}

struct settle {
    uint64_t upto;
    bool changed;
};

static void
leaf_settle(struct vdev *leaf, void *arg)
{
    struct settle *st = arg;
    if (!vdev_leaf_usable(leaf) || !leaf->scan_covered ||
        (leaf->missed_txg_min == 0 && leaf->suspect_txg_min == 0))
        return;
    bool had_missed = leaf->missed_txg_min != 0;
    vdev_leaf_clear_missed(leaf, st->upto);
    st->changed = st->changed || (had_missed && leaf->missed_txg_min == 0); /* in the config */
}

/* Sets up a new scan or resumes a paused one of the same kind (scan_lock held). */
static int
scan_begin(struct pool *p, int kind, bool *resume, uint64_t *repaired_base)
{
    uint64_t min_birth = 0;
    if (kind == POOL_SCAN_RESILVER) {
        struct window w = { 0 };
        for (uint32_t i = 0; i < p->nvdevs; i++)
            vdev_walk_leaves(p->vdevs[i], leaf_window, &w);
        if (w.min == 0)
            return -EALREADY; /* no device missed anything */
        min_birth = w.min - 1;
    }
    /* A paused resilver resumes unless a device now misses older txgs than it covers. */
    *resume = p->scan.state == POOL_SCAN_PAUSED && p->scan.kind == kind &&
              (kind != POOL_SCAN_RESILVER || min_birth >= p->scan.min_birth);
    struct cover cv = { *resume && p->scan_cover_valid };
    for (uint32_t i = 0; i < p->nvdevs; i++)
        vdev_walk_leaves(p->vdevs[i], leaf_cover, &cv);
    p->scan_cover_valid = true;
    if (!*resume) {
        struct alloc_stats as;
        alloc_get_stats(p->alloc, &as);
        memset(&p->scan, 0, sizeof(p->scan));
        p->scan.kind = kind;
        p->scan.min_birth = min_birth;
        p->scan.start_time = (uint64_t)time(NULL);
        p->scan.to_examine = as.allocated;
        p->scan_bm_ds = p->scan_bm_obj = p->scan_bm_blkid = 0;
    }
    p->scan.state = POOL_SCAN_RUNNING;
    p->scan.end_time = 0;
    p->scan.interrupted = false;
    p->scan_cancel = p->scan_pause = p->scan_interrupt = false; /* requests act on a run */
    /* repaired_bytes counts from the scan's first start: subtract what was done before. */
    *repaired_base = pool_repaired_bytes(p) - p->scan.repaired_bytes;
    return 0;
}

/* The walk itself: MOS, then datasets in order, skipping what a resumed scan did (inv. 7). */
static int
scan_walk(struct pool *p, struct scrub_ctx *sc, const struct blkptr *mos_root,
          const struct walk_item *items, size_t n, uint64_t min_birth, bool resume)
{
    uint64_t bm_ds = resume ? p->scan_bm_ds : 0;
    for (size_t i = 0; i <= n; i++) {
        uint64_t ds = i == 0 ? 0 : items[i - 1].obj;
        if (ds < bm_ds)
            continue;
        sc->ds_obj = ds;
        sc->resuming = resume && ds == bm_ds;
        sc->bm_obj = p->scan_bm_obj;
        sc->bm_blkid = p->scan_bm_blkid;
        int rc;
        if (i == 0) {
            rc = traverse_objset(p, mos_root, min_birth, scrub_bp, sc);
        } else {
            uint64_t from = items[i - 1].min_birth > min_birth ? items[i - 1].min_birth : min_birth;
            rc = traverse_objset(p, &items[i - 1].root, from, scrub_bp, sc);
        }
        if (rc == 0)
            rc = flush_batch(sc); /* a batch never spans datasets: the bookmark names one */
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* A scrub (every block) or a resilver (blocks born since the oldest missed txg). */
static int
scan(struct pool *p, int kind, struct err_msg *em)
{
    const char *what = kind == POOL_SCAN_RESILVER ? "resilver" : "scrub";
    if (p->readonly)
        return err_msg_set(em, -EROFS, "pool '%s' is imported read-only", p->name);
    pthread_mutex_lock(&p->scan_lock);
    if (p->scan.state == POOL_SCAN_RUNNING) {
        pthread_mutex_unlock(&p->scan_lock);
        return err_msg_set(em, -EBUSY, "pool '%s' is already being %s", p->name,
                           p->scan.kind == POOL_SCAN_RESILVER ? "resilvered" : "scrubbed");
    }
    bool resume;
    uint64_t repaired_base;
    int rc = scan_begin(p, kind, &resume, &repaired_base);
    uint64_t min_birth = p->scan.min_birth;
    pthread_mutex_unlock(&p->scan_lock);
    if (rc == -EALREADY)
        return 0;
    log_info("pool '%s': %s %s%s", p->name, what, resume ? "resumed" : "started",
             kind == POOL_SCAN_RESILVER ? " (blocks born after a device missed writes)" : "");

    alloc_hold_frees(p->alloc, true); /* invariant 2 */
    struct scrub_ctx sc = { .p = p, .batch = malloc(SCAN_BATCH_MAX * sizeof(struct scan_item)) };
    struct walk_item *items = NULL;
    size_t n = 0;
    /* The trees as last committed: pool_sync first so the walk sees what was written before. */
    uint64_t synced = 0;
    rc = sc.batch != NULL ? pool_sync(p, &synced) : -ENOMEM;
    struct blkptr mos_root;
    if (rc == 0) {
        pthread_mutex_lock(&p->scan_lock);
        if (!resume)
            p->scan.max_txg = synced; /* invariant 6 */
        sc.max_txg = p->scan.max_txg;
        pthread_mutex_unlock(&p->scan_lock);
        pthread_mutex_lock(&p->sync_lock);
        mos_root = p->mos->root_bp;
        pthread_mutex_unlock(&p->sync_lock);
        rc = collect_datasets(p, &items, &n);
    }
    if (rc == 0)
        rc = scan_walk(p, &sc, &mos_root, items, n, min_birth, resume);
    /* Every block born up to max_txg is now on every usable device: forget the missed windows
     * that end there, in the labels too. */
    struct settle st = { sc.max_txg, false };
    for (uint32_t i = 0; i < p->nvdevs && rc == 0; i++)
        vdev_walk_leaves(p->vdevs[i], leaf_settle, &st);
    if (st.changed) {
        pthread_mutex_lock(&p->sync_lock);
        p->config_dirty = true;
        pthread_mutex_unlock(&p->sync_lock);
    }
    free(items);
    free(sc.buf);
    free(sc.batch);
    alloc_hold_frees(p->alloc, false);

    pthread_mutex_lock(&p->scan_lock);
    p->scan.repaired_bytes = pool_repaired_bytes(p) - repaired_base;
    p->scan.state = rc == -ECANCELED ? POOL_SCAN_CANCELED
                    : rc == -EINTR   ? POOL_SCAN_PAUSED
                    : rc == 0        ? POOL_SCAN_FINISHED
                                     : POOL_SCAN_FAILED;
    if (rc != -EINTR)
        p->scan.end_time = (uint64_t)time(NULL);
    p->scan.interrupted = rc == -EINTR && p->scan_interrupt;
    p->scan_cancel = p->scan_pause = p->scan_interrupt = false;
    struct pool_scan_stats done = p->scan;
    __atomic_store_n(&p->scan_dirty, true, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&p->scan_lock);
    int src = pool_sync(p, NULL); /* the final state and, if changed, the labels */
    if (rc == 0)
        rc = src;
    if (rc == -ECANCELED || rc == -EINTR) {
        log_info("pool '%s': %s %s", p->name, what, rc == -EINTR ? "paused" : "canceled");
        return err_msg_set(em, rc, "%s of pool '%s' was %s", what, p->name,
                           rc == -EINTR ? "paused" : "canceled");
    }
    if (rc != 0) {
        log_err("pool '%s': %s stopped: %s", p->name, what, err_str(rc));
        return err_msg_set(em, rc, "%s of pool '%s' stopped: %s", what, p->name, err_str(rc));
    }
    log_info("pool '%s': %s repaired %llu bytes in %llu blocks with %llu errors", p->name, what,
             (unsigned long long)done.repaired_bytes, (unsigned long long)done.blocks,
             (unsigned long long)done.errors);
    return 0;
}

int
pool_scrub(struct pool *p, struct err_msg *em)
{
    return scan(p, POOL_SCAN_SCRUB, em);
}

int
pool_resilver(struct pool *p, struct err_msg *em)
{
    return scan(p, POOL_SCAN_RESILVER, em);
}

void
pool_scrub_cancel(struct pool *p)
{
    pthread_mutex_lock(&p->scan_lock);
    if (p->scan.state == POOL_SCAN_PAUSED) {
        p->scan.state = POOL_SCAN_CANCELED; /* nothing runs: forget the paused one */
        p->scan.interrupted = false;
        p->scan.end_time = (uint64_t)time(NULL);
        __atomic_store_n(&p->scan_dirty, true, __ATOMIC_RELAXED);
    } else if (p->scan.state == POOL_SCAN_RUNNING) {
        __atomic_store_n(&p->scan_cancel, true, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&p->scan_lock);
}

static void
request(struct pool *p, bool *flag)
{
    pthread_mutex_lock(&p->scan_lock);
    if (p->scan.state == POOL_SCAN_RUNNING)
        __atomic_store_n(flag, true, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&p->scan_lock);
}

void
pool_scrub_pause(struct pool *p)
{
    request(p, &p->scan_pause);
}

void
pool_scrub_interrupt(struct pool *p)
{
    request(p, &p->scan_interrupt);
}

bool
pool_needs_resilver(struct pool *p)
{
    struct window w = { 0 };
    for (uint32_t i = 0; i < p->nvdevs; i++)
        vdev_walk_leaves(p->vdevs[i], leaf_window, &w);
    return w.min != 0;
}

void
pool_get_scan(struct pool *p, struct pool_scan_stats *out)
{
    pthread_mutex_lock(&p->scan_lock);
    *out = p->scan;
    pthread_mutex_unlock(&p->scan_lock);
}
