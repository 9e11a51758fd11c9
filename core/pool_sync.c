/* SPDX-License-Identifier: MIT */
/*
 * pool_sync: committing one transaction group — the life of a txg on disk.
 *
 * Theory of operation
 * -------------------
 * pool_sync_txg(T), on the sync thread, with every tx of T committed:
 *   1. If the space journal has grown past journal_checkpoint_bytes, write a checkpoint of the
 *      allocated set as of the end of T-1 into a new object, start a new empty journal, and
 *      destroy the old journal and checkpoint (their frees land in the new journal, in T).
 *   2. The dataset layer's part (dsl_sync): sync every dirty dataset object set (data,
 *      indirect and dnode blocks, root block), run the queued sync tasks (snapshots, creates,
 *      destroys...), sync what they created, and write every changed dataset record to the MOS.
 *   3. Passes over the MOS until it converges: append the allocator's records for T to the
 *      journal object, then sync the MOS. Each pass allocates less than the previous one, because
 *      MOS blocks born in T are rewritten in place (zio invariant 2) and MOS blocks are never
 *      compressed (so their size does not change between passes).
 *   4. Flush every device (barrier 1): everything the new uberblock references is durable.
 *   5. If the config changed: write it to the even labels (0, 2) first.
 *   6. Write the uberblock for T into slot T % UB_SLOTS of all four labels of every device, flush
 *      (barrier 2). This is the commit point: one durable copy of the new uberblock.
 *   7. If the config changed: write the odd labels (1, 3) and flush.
 *   8. Under tree_lock (write): the allocator moves T's frees to the defer list and releases
 *      T-2's frees for reuse (alloc invariant 2).
 *
 * Invariants:
 *   1. Every block referenced by uberblock T was durable before uberblock T was written.
 *   2. After a commit the journal + checkpoint reachable from uberblock T describe exactly the
 *      allocations of the tree of T (no pending records remain for T).
 *   3. A crash between any two steps leaves uberblock T-1 (or T) intact and fully verifiable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/assert.h"
#include "common/endian.h"
#include "common/err.h"
#include "common/log.h"
#include "core/dsl_impl.h"
#include "core/pool_impl.h"
#include "core/vdev_backend.h"

#define MAX_SYNC_PASSES 64

void
pool_dir_encode(struct pool *p, uint8_t out[static POOL_DIR_SIZE])
{
    memset(out, 0, POOL_DIR_SIZE);
    le64_put(out + 0, POOL_DIR_MAGIC);
    le64_put(out + 8, 1);
    le64_put(out + 16, p->journal_obj);
    le64_put(out + 24, p->checkpoint_obj);
    le64_put(out + 32, p->checkpoint_txg);
    le64_put(out + 40, p->root_ds_obj);
    le64_put(out + 48, p->create_txg);
    /* The scan state (scrub.c): resumable after an export or a crash. */
    pthread_mutex_lock(&p->scan_lock);
    const struct pool_scan_stats *sc = &p->scan;
    /* An interrupted scan is stored as running: the next import resumes it (and says so). */
    int state = sc->state == POOL_SCAN_PAUSED && sc->interrupted ? POOL_SCAN_RUNNING : sc->state;
    const uint64_t scan[] = { (uint64_t)state, (uint64_t)sc->kind, sc->min_birth,  sc->max_txg,
                              sc->start_time,  sc->end_time,       sc->to_examine, sc->examined,
                              sc->blocks,      sc->repaired_bytes, sc->errors,     p->scan_bm_ds,
                              p->scan_bm_obj,  p->scan_bm_blkid };
    for (size_t i = 0; i < sizeof(scan) / sizeof(scan[0]); i++)
        le64_put(out + POOL_DIR_SCAN_OFF + 8 * i, scan[i]);
    pthread_mutex_unlock(&p->scan_lock);
}

int
pool_dir_decode(struct pool *p, const uint8_t in[static POOL_DIR_SIZE])
{
    if (le64_get(in) != POOL_DIR_MAGIC)
        return ERR(-ECORRUPT);
    if (le64_get(in + 8) != 1)
        return ERR(-EVERSION);
    p->journal_obj = le64_get(in + 16);
    p->checkpoint_obj = le64_get(in + 24);
    p->checkpoint_txg = le64_get(in + 32);
    p->root_ds_obj = le64_get(in + 40);
    p->create_txg = le64_get(in + 48);
    if (p->journal_obj == 0 || p->root_ds_obj == 0)
        return ERR(-ECORRUPT);
    uint64_t scan[14];
    for (size_t i = 0; i < 14; i++)
        scan[i] = le64_get(in + POOL_DIR_SCAN_OFF + 8 * i);
    if (scan[0] > POOL_SCAN_PAUSED || scan[1] > POOL_SCAN_RESILVER)
        return ERR(-ECORRUPT);
    struct pool_scan_stats *sc = &p->scan;
    /* A scan that was running when the pool went away resumes from its bookmark. */
    sc->state = scan[0] == POOL_SCAN_RUNNING ? POOL_SCAN_PAUSED : (int)scan[0];
    sc->interrupted = scan[0] == POOL_SCAN_RUNNING;
    sc->kind = (int)scan[1];
    sc->min_birth = scan[2];
    sc->max_txg = scan[3];
    sc->start_time = scan[4];
    sc->end_time = scan[5];
    sc->to_examine = scan[6];
    sc->examined = scan[7];
    sc->blocks = scan[8];
    sc->repaired_bytes = scan[9];
    sc->errors = scan[10];
    p->scan_bm_ds = scan[11];
    p->scan_bm_obj = scan[12];
    p->scan_bm_blkid = scan[13];
    return 0;
}

static int
write_pool_dir(struct pool *p, uint64_t txg)
{
    uint8_t buf[POOL_DIR_SIZE];
    pool_dir_encode(p, buf);
    return obj_write_synctx(p->mos, txg, POOL_DIR_OBJ, 0, sizeof(buf), buf);
}

/* Step 1. */
static int
maybe_checkpoint(struct pool *p, uint64_t txg)
{
    if (p->journal_bytes < p->opts.journal_checkpoint_bytes)
        return 0;
    uint8_t *recs = NULL;
    size_t len = 0;
    int rc = alloc_encode_checkpoint(p->alloc, txg - 1, &recs, &len);
    if (rc != 0)
        return rc;
    struct obj_create_opts cp = { .type = OT_SPACE_CHECKPOINT,
                                  .blocksize = 128 * 1024,
                                  .checksum = CKSUM_XXH3,
                                  .compress = COMPRESS_OFF };
    struct obj_create_opts jo = { .type = OT_SPACE_JOURNAL,
                                  .blocksize = 16 * 1024,
                                  .checksum = CKSUM_XXH3,
                                  .compress = COMPRESS_OFF };
    uint64_t new_cp = 0, new_journal = 0;
    rc = objset_obj_create_synctx(p->mos, txg, &cp, &new_cp);
    if (rc == 0)
        rc = obj_write_synctx(p->mos, txg, new_cp, 0, len, recs);
    free(recs);
    if (rc == 0)
        rc = objset_obj_create_synctx(p->mos, txg, &jo, &new_journal);
    if (rc == 0 && p->checkpoint_obj != 0)
        rc = obj_destroy_synctx(p->mos, txg, p->checkpoint_obj);
    if (rc == 0)
        rc = obj_destroy_synctx(p->mos, txg, p->journal_obj);
    if (rc != 0)
        return rc;
    log_debug("pool '%s': space checkpoint of txg %llu (%zu bytes), journal was %llu bytes",
              p->name, (unsigned long long)(txg - 1), len, (unsigned long long)p->journal_bytes);
    p->checkpoint_obj = new_cp;
    p->checkpoint_txg = txg - 1;
    p->journal_obj = new_journal;
    p->journal_bytes = 0;
    return write_pool_dir(p, txg);
}

/* Step 3. */
static int
sync_mos(struct pool *p, uint64_t txg)
{
    for (unsigned pass = 1;; pass++) {
        if (pass > MAX_SYNC_PASSES)
            return ERR(-EAGAIN); /* never converged: a bug, but do not write a bad uberblock */
        uint8_t *recs = NULL;
        size_t len = 0;
        int rc = alloc_take_journal(p->alloc, txg, &recs, &len);
        if (rc != 0)
            return rc;
        if (len > 0) {
            rc = obj_write_synctx(p->mos, txg, p->journal_obj, p->journal_bytes, len, recs);
            free(recs);
            if (rc != 0)
                return rc;
            p->journal_bytes += len;
        }
        if (!objset_is_dirty(p->mos, txg))
            return 0;
        struct blkptr root;
        rc = objset_sync(p->mos, txg, pass, &root);
        if (rc != 0)
            return rc;
    }
}

static void
add_guid(struct vdev *leaf, void *arg)
{
    *(uint64_t *)arg += leaf->guid;
}

/* Sum of the guids of every vdev but the root (stripe pools: the leaves). */
static uint64_t
guid_sum(struct pool *p)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < p->nvdevs; i++) {
        if (p->vdevs[i]->type != VDEV_TYPE_LEAF)
            sum += p->vdevs[i]->guid;
        vdev_walk_leaves(p->vdevs[i], add_guid, &sum);
    }
    return sum;
}

struct label_write {
    const void *rec; /* struct uberblock or struct pool_config */
    bool config;
    unsigned mask;
    int written, first_err;
};

static void
write_leaf_label(struct vdev *leaf, void *arg)
{
    struct label_write *lw = arg;
    if (!vdev_leaf_usable(leaf))
        return;
    int rc;
    if (lw->config) {
        struct pool_config *cfg = (struct pool_config *)lw->rec;
        cfg->leaf_guid = leaf->guid;
        rc = label_write_config(leaf->dev, cfg, lw->mask);
    } else {
        rc = label_write_uberblock(leaf->dev, lw->rec, lw->mask);
    }
    if (rc == 0) {
        lw->written++;
    } else {
        __atomic_fetch_add(&leaf->write_errors, 1, __ATOMIC_RELAXED);
        if (lw->first_err == 0)
            lw->first_err = rc;
    }
}

/* Writes a label record to every usable leaf: it is enough that one leaf took it. */
static int
write_labels(struct pool *p, struct label_write *lw)
{
    for (uint32_t i = 0; i < p->nvdevs; i++)
        vdev_walk_leaves(p->vdevs[i], write_leaf_label, lw);
    if (lw->written == 0)
        return lw->first_err ? lw->first_err : -EIO;
    return 0;
}

int
pool_write_uberblocks(struct pool *p, uint64_t txg)
{
    struct uberblock ub = {
        .version = LCPFS_FORMAT_VERSION,
        .txg = txg,
        .timestamp = (uint64_t)time(NULL),
        .software_version = LCPFS_SOFTWARE_VERSION,
        .rootbp = p->mos->root_bp,
        .config_txg = p->config_txg,
        .pool_guid = p->guid,
        .guid_sum = guid_sum(p),
    };
    struct label_write lw = { .rec = &ub, .mask = 0xf };
    return write_labels(p, &lw);
}

static void
config_entry(struct config_vdev *e, const struct vdev *vd, uint32_t parent)
{
    e->guid = vd->guid;
    e->parent = parent;
    e->id = vd->id;
    e->type = vd->type;
    e->nparity = vd->nparity;
    e->ashift = (uint8_t)vd->ashift;
    e->asize = vd->asize;
    e->ms_shift = vd->parent == NULL ? vd->ms_shift : 0;
    e->nchildren = vd->nchildren;
    int h = vd->type == VDEV_TYPE_LEAF ? __atomic_load_n(&vd->health, __ATOMIC_RELAXED) : 0;
    e->state = h == VDEV_OFFLINE ? VDEV_STATE_OFFLINE : VDEV_STATE_ONLINE;
    if (vd->type == VDEV_TYPE_LEAF)
        e->missed_since = __atomic_load_n(&vd->missed_txg_min, __ATOMIC_RELAXED);
    snprintf(e->path, sizeof(e->path), "%s", vd->path);
}

int
pool_write_config(struct pool *p, uint64_t txg, uint32_t state, unsigned label_mask)
{
    struct pool_config *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return -ENOMEM;
    cfg->pool_guid = p->guid;
    cfg->txg = txg;
    cfg->state = state;
    cfg->create_time = p->create_time;
    snprintf(cfg->name, sizeof(cfg->name), "%s", p->name);
    struct config_vdev *root = &cfg->vdevs[0];
    root->guid = p->guid;
    root->parent = CONFIG_NO_PARENT;
    root->type = VDEV_TYPE_ROOT;
    root->nchildren = p->nvdevs;
    uint32_t n = 1;
    for (uint32_t i = 0; i < p->nvdevs; i++) {
        const struct vdev *top = p->vdevs[i];
        if (n + 1 + top->nchildren > CONFIG_MAX_VDEVS) {
            free(cfg);
            return ERR(-E2BIG);
        }
        uint32_t top_index = n;
        config_entry(&cfg->vdevs[n++], top, 0);
        for (uint32_t c = 0; c < top->nchildren; c++)
            config_entry(&cfg->vdevs[n++], top->child[c], top_index);
    }
    cfg->nvdevs = n;
    cfg->guid_sum = guid_sum(p);
    struct label_write lw = { .rec = cfg, .config = true, .mask = label_mask };
    int rc = write_labels(p, &lw);
    free(cfg);
    return rc;
}

int
pool_sync_txg(struct pool *p, uint64_t txg)
{
    int rc = maybe_checkpoint(p, txg);
    if (rc == 0 && __atomic_exchange_n(&p->scan_dirty, false, __ATOMIC_RELAXED))
        rc = write_pool_dir(p, txg);
    if (rc == 0)
        rc = dsl_sync(p, txg);
    if (rc == 0)
        rc = sync_mos(p, txg);
    if (rc != 0)
        return rc;
    ASSERT(!alloc_has_journal(p->alloc, txg)); /* invariant 2 */

    bool config = p->config_dirty;
    if (config)
        p->config_txg = txg;
    rc = vdev_flush_all(p); /* barrier 1 */
    if (rc == 0 && config)
        rc = pool_write_config(p, txg, POOL_STATE_ACTIVE, 0x5); /* even labels */
    if (rc == 0)
        rc = pool_write_uberblocks(p, txg);
    if (rc == 0)
        rc = vdev_flush_all(p); /* barrier 2: the commit point */
    if (rc == 0 && config) {
        rc = pool_write_config(p, txg, POOL_STATE_ACTIVE, 0xa); /* odd labels */
        if (rc == 0)
            rc = vdev_flush_all(p);
        if (rc == 0)
            p->config_dirty = false;
    }
    if (rc != 0)
        return rc;

    pthread_rwlock_wrlock(&p->tree_lock);
    alloc_sync_done(p->alloc, txg);
    pthread_rwlock_unlock(&p->tree_lock);
    return 0;
}
