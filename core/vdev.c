/* SPDX-License-Identifier: MIT */
/*
 * vdev: the vdev tree, leaf I/O with error accounting, and the routing of a DVA to its
 * top-level's layout (vdev.h has the theory of operation). Mirrors live in vdev_mirror.c,
 * RAID-Z in vdev_raidz.c.
 */
#include "core/vdev.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "core/label.h"
#include "core/pool_impl.h"
#include "core/vdev_backend.h"

#define ATOMIC_INC(x) atomic_fetch_add((_Atomic uint64_t *)&(x), 1)

const char *
vdev_health_name(enum vdev_health h)
{
    switch (h) {
    case VDEV_ONLINE:
        return "ONLINE";
    case VDEV_DEGRADED:
        return "DEGRADED";
    case VDEV_FAULTED:
        return "FAULTED";
    case VDEV_OFFLINE:
        return "OFFLINE";
    case VDEV_REMOVED:
        return "REMOVED";
    case VDEV_UNAVAIL:
        return "UNAVAIL";
    }
    return "UNKNOWN";
}

/* ---- tree ---- */

struct vdev *
vdev_new_leaf(uint64_t guid, struct vdev_backend *dev, const char *path)
{
    struct vdev *vd = calloc(1, sizeof(*vd));
    if (vd == NULL) {
        vdev_backend_close(dev);
        return NULL;
    }
    vd->guid = guid;
    vd->type = VDEV_TYPE_LEAF;
    vd->dev = dev;
    vd->top = vd;
    vd->health = dev != NULL ? VDEV_ONLINE : VDEV_UNAVAIL;
    snprintf(vd->path, sizeof(vd->path), "%s", path != NULL ? path : dev ? dev->path : "");
    if (dev != NULL)
        vd->asize = label_data_size(dev->size);
    return vd;
}

int
vdev_new_interior(uint8_t type, uint8_t nparity, uint64_t guid, struct vdev **children, uint32_t n,
                  struct vdev **out)
{
    if (type == VDEV_TYPE_MIRROR && (n < 2 || n > VDEV_MAX_CHILDREN || nparity != 0))
        return ERR(-EINVAL);
    if (type == VDEV_TYPE_RAIDZ &&
        (nparity < 1 || nparity > VDEV_MAX_PARITY || n < nparity + 1u || n > VDEV_MAX_CHILDREN))
        return ERR(-EINVAL);
    if (type != VDEV_TYPE_MIRROR && type != VDEV_TYPE_RAIDZ)
        return ERR(-EINVAL);
    struct vdev *vd = calloc(1, sizeof(*vd));
    /* Room for every child a mirror may ever get: attach appends without moving the array that
     * readers walk without locks (invariant 1). */
    struct vdev **ch = calloc(VDEV_MAX_CHILDREN, sizeof(*ch));
    if (vd == NULL || ch == NULL) {
        free(vd);
        free(ch);
        return -ENOMEM;
    }
    vd->guid = guid;
    vd->type = type;
    vd->nparity = nparity;
    vd->child = ch;
    vd->nchildren = n;
    vd->top = vd;
    snprintf(vd->path, sizeof(vd->path), "%s", type == VDEV_TYPE_MIRROR ? "mirror" : "raidz");
    for (uint32_t i = 0; i < n; i++) {
        ch[i] = children[i];
        ch[i]->parent = vd;
        ch[i]->id = i;
    }
    *out = vd;
    return 0;
}

void
vdev_free(struct vdev *vd)
{
    if (vd == NULL)
        return;
    for (uint32_t i = 0; i < vd->nchildren && !vd->shell; i++)
        vdev_free(vd->child[i]);
    free(vd->child);
    vdev_backend_close(vd->dev);
    free(vd);
}

uint64_t
vdev_leaf_asize(uint64_t dev_size, unsigned ashift)
{
    return label_data_size(dev_size) & ~((1ull << ashift) - 1);
}

void
vdev_make_top(struct vdev *vd, uint32_t id, unsigned ashift)
{
    vd->id = id;
    vd->ashift = ashift;
    vd->top = vd;
    if (vd->type == VDEV_TYPE_LEAF) {
        if (vd->dev != NULL)
            vd->asize = vdev_leaf_asize(vd->dev->size, ashift);
        return;
    }
    /* The smallest present child bounds every child's share (asize was set at import when a
     * child is missing). */
    uint64_t least = UINT64_MAX;
    for (uint32_t i = 0; i < vd->nchildren; i++) {
        struct vdev *c = vd->child[i];
        c->top = vd;
        c->ashift = ashift;
        if (c->dev != NULL) {
            c->asize = vdev_leaf_asize(c->dev->size, ashift);
            if (c->asize < least)
                least = c->asize;
        }
    }
    if (least == UINT64_MAX)
        return;
    vd->asize = vd->type == VDEV_TYPE_MIRROR ? least : least * vd->nchildren;
}

enum vdev_health
vdev_health(const struct vdev *vd)
{
    if (vd->type == VDEV_TYPE_LEAF)
        return (enum vdev_health)__atomic_load_n(&vd->health, __ATOMIC_RELAXED);
    uint32_t bad = 0;
    for (uint32_t i = 0; i < vd->nchildren; i++)
        if (!vdev_leaf_usable(vd->child[i]))
            bad++;
    uint32_t tolerable = vd->type == VDEV_TYPE_MIRROR ? vd->nchildren - 1 : vd->nparity;
    if (bad == 0)
        return VDEV_ONLINE;
    return bad <= tolerable ? VDEV_DEGRADED : VDEV_UNAVAIL;
}

void
vdev_walk_leaves(struct vdev *vd, void (*fn)(struct vdev *leaf, void *arg), void *arg)
{
    if (vd->type == VDEV_TYPE_LEAF) {
        fn(vd, arg);
        return;
    }
    for (uint32_t i = 0; i < vd->nchildren; i++)
        vdev_walk_leaves(vd->child[i], fn, arg);
}

uint64_t
vdev_raidz_alloc_size(unsigned width, unsigned nparity, unsigned ashift, uint64_t dsize)
{
    uint64_t s = (dsize + (1ull << ashift) - 1) >> ashift;
    uint64_t ndata = width - nparity;
    uint64_t rows = (s + ndata - 1) / ndata;
    uint64_t tot = s + nparity * rows;
    uint64_t unit = nparity + 1;
    return ((tot + unit - 1) / unit * unit) << ashift;
}

uint64_t
vdev_alloc_size(const struct vdev *vd, uint64_t dsize)
{
    if (vd->type == VDEV_TYPE_RAIDZ)
        return vdev_raidz_alloc_size(vd->nchildren, vd->nparity, vd->ashift, dsize);
    uint64_t mask = (1ull << vd->ashift) - 1;
    return (dsize + mask) & ~mask;
}

/* ---- leaf I/O ---- */

bool
vdev_leaf_usable(const struct vdev *leaf)
{
    return leaf->dev != NULL &&
           __atomic_load_n(&leaf->health, __ATOMIC_RELAXED) == (int)VDEV_ONLINE;
}

bool
vdev_leaf_lacks(const struct vdev *leaf, uint64_t birth)
{
    uint64_t lo = __atomic_load_n(&leaf->missed_txg_min, __ATOMIC_RELAXED);
    uint64_t hi = __atomic_load_n(&leaf->missed_txg_max, __ATOMIC_RELAXED);
    return lo != 0 && birth >= lo && birth <= hi;
}

void
vdev_leaf_clear_missed(struct vdev *leaf, uint64_t upto)
{
    /* Only a window wholly covered by the resilver that just finished is forgotten: misses
     * after it started (the device failed again) stay for the next one. */
    uint64_t hi = __atomic_load_n(&leaf->missed_txg_max, __ATOMIC_RELAXED);
    if (hi != 0 && hi <= upto) {
        __atomic_store_n(&leaf->missed_txg_min, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&leaf->missed_txg_max, 0, __ATOMIC_RELAXED);
    }
    if (leaf->suspect_txg_max != 0 && leaf->suspect_txg_max <= upto)
        leaf->suspect_txg_min = leaf->suspect_txg_max = 0; /* scan_lock (scrub.c) */
}

static void
note_missed(struct vdev *leaf, uint64_t txg)
{
    if (txg == 0)
        return;
    uint64_t cur = __atomic_load_n(&leaf->missed_txg_min, __ATOMIC_RELAXED);
    if (cur == 0)
        __atomic_store_n(&leaf->missed_new, true, __ATOMIC_RELAXED); /* vdev_write persists it */
    while ((cur == 0 || txg < cur) &&
           !__atomic_compare_exchange_n(&leaf->missed_txg_min, &cur, txg, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
        ;
    cur = __atomic_load_n(&leaf->missed_txg_max, __ATOMIC_RELAXED);
    while (txg > cur && !__atomic_compare_exchange_n(&leaf->missed_txg_max, &cur, txg, false,
                                                     __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

bool
vdev_can_lose(const struct vdev *top, const struct vdev *leaf)
{
    if (top->type == VDEV_TYPE_LEAF)
        return false;
    uint32_t down = 0;
    for (uint32_t c = 0; c < top->nchildren; c++)
        if (top->child[c] != leaf && !vdev_leaf_usable(top->child[c]))
            down++;
    uint32_t tolerable = top->type == VDEV_TYPE_MIRROR ? top->nchildren - 1 : top->nparity;
    return down < tolerable;
}

/*
 * I/O outcome bookkeeping (invariant 5): a run of VDEV_FAULT_AFTER failed operations without a
 * success faults a redundant leaf, so a dead device stops costing every read a failed attempt.
 */
static void
io_outcome(struct vdev *leaf, int rc)
{
    if (rc == 0) {
        if (__atomic_load_n(&leaf->error_run, __ATOMIC_RELAXED) != 0)
            __atomic_store_n(&leaf->error_run, 0, __ATOMIC_RELAXED);
        return;
    }
    uint32_t run = __atomic_add_fetch(&leaf->error_run, 1, __ATOMIC_RELAXED);
    if (run != VDEV_FAULT_AFTER || leaf->parent == NULL || !vdev_can_lose(leaf->parent, leaf))
        return;
    int online = VDEV_ONLINE;
    if (__atomic_compare_exchange_n(&leaf->health, &online, VDEV_FAULTED, false, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
        log_err("device '%s' (guid %llu) faulted after %u I/O errors in a row (%s); its vdev "
                "runs degraded until it is replaced, or cleared and resilvered",
                leaf->path, (unsigned long long)leaf->guid, run, err_str(rc));
}

int
vdev_leaf_read(struct vdev *leaf, uint64_t off, void *buf, size_t len)
{
    if (!vdev_leaf_usable(leaf))
        return -ENXIO;
    int rc = vdev_backend_read(leaf->dev, VDEV_DATA_START + off, buf, len);
    if (rc != 0)
        ATOMIC_INC(leaf->read_errors);
    io_outcome(leaf, rc);
    return rc;
}

/* The bookkeeping after a leaf write (or a skipped one: -ENXIO). */
static int
leaf_write_done(struct vdev *leaf, int rc, uint64_t txg)
{
    if (rc == -ENXIO) {
        note_missed(leaf, txg);
        return rc;
    }
    if (rc != 0) {
        ATOMIC_INC(leaf->write_errors);
        note_missed(leaf, txg);
    }
    io_outcome(leaf, rc);
    return rc;
}

int
vdev_leaf_write(struct vdev *leaf, uint64_t off, const void *buf, size_t len, uint64_t txg)
{
    if (!vdev_leaf_usable(leaf))
        return leaf_write_done(leaf, -ENXIO, txg);
    return leaf_write_done(leaf, vdev_backend_write(leaf->dev, VDEV_DATA_START + off, buf, len),
                           txg);
}

int
vdev_leaf_writev(struct vdev *leaf, uint64_t off, const struct iovec *iov, int n, uint64_t txg)
{
    if (!vdev_leaf_usable(leaf))
        return leaf_write_done(leaf, -ENXIO, txg);
    return leaf_write_done(leaf, vdev_backend_writev(leaf->dev, VDEV_DATA_START + off, iov, n),
                           txg);
}

void
vdev_leaf_repair(struct pool *p, struct vdev *leaf, uint64_t off, const void *buf, size_t len)
{
    if (p->readonly || !vdev_leaf_usable(leaf))
        return;
    if (vdev_backend_write(leaf->dev, VDEV_DATA_START + off, buf, len) != 0) {
        ATOMIC_INC(leaf->write_errors);
        return;
    }
    atomic_fetch_add((_Atomic uint64_t *)&leaf->repaired_bytes, len);
    log_warn("pool '%s': repaired %zu bytes at offset %llu of '%s'", p->name, len,
             (unsigned long long)off, leaf->path);
}

void
vdev_count_cksum(struct vdev *vd)
{
    ATOMIC_INC(vd->cksum_errors);
}

/* ---- routing ---- */

static struct vdev *
lookup(struct pool *p, const struct dva *dva, size_t dsize)
{
    if (dva->vdev >= p->nvdevs)
        return NULL;
    struct vdev *vd = p->vdevs[dva->vdev];
    uint64_t asize = dva_asize(dva);
    if (vd == NULL || dva->offset > vd->asize || asize > vd->asize - dva->offset ||
        vdev_alloc_size(vd, dsize) != asize)
        return NULL;
    return vd;
}

int
vdev_read(struct pool *p, const struct dva *dva, const struct blkptr *bp, void *buf, size_t dsize)
{
    struct vdev *vd = lookup(p, dva, dsize);
    if (vd == NULL)
        return ERR(-ECORRUPT); /* a DVA outside every vdev came from a corrupt parent */
    switch (vd->type) {
    case VDEV_TYPE_MIRROR:
        return vdev_mirror_read(p, vd, dva->offset, bp, buf, dsize);
    case VDEV_TYPE_RAIDZ:
        return vdev_raidz_read(p, vd, dva->offset, bp, buf, dsize);
    default:
        break;
    }
    int rc = vdev_leaf_read(vd, dva->offset, buf, dsize);
    if (rc != 0)
        return rc == -ENXIO ? -EIO : rc;
    if (!cksum_verify(bp->cksum, buf, bp->psize, bp->cksum_val)) {
        vdev_count_cksum(vd);
        return -ECKSUM;
    }
    return 0;
}

int
vdev_scrub(struct pool *p, const struct dva *dva, const struct blkptr *bp, void *buf, size_t dsize)
{
    struct vdev *vd = lookup(p, dva, dsize);
    if (vd == NULL)
        return ERR(-ECORRUPT);
    if (vd->type == VDEV_TYPE_MIRROR)
        return vdev_mirror_scrub(p, vd, dva->offset, bp, buf, dsize);
    if (vd->type == VDEV_TYPE_RAIDZ)
        return vdev_raidz_scrub(p, vd, dva->offset, bp, buf, dsize);
    return vdev_read(p, dva, bp, buf, dsize);
}

/* A child that just started missing writes: the config written with this txg records it (its
 * `missed since`), so the window survives a restart (invariant 3). Block writes with a txg run in
 * the sync thread, before the config is written. */
static void
note_new_missed(struct pool *p, struct vdev *top)
{
    for (uint32_t c = 0; c < top->nchildren; c++)
        if (__atomic_exchange_n(&top->child[c]->missed_new, false, __ATOMIC_RELAXED))
            p->config_dirty = true;
}

int
vdev_write(struct pool *p, const struct dva *dva, uint64_t txg, const void *buf, size_t dsize)
{
    struct vdev *vd = lookup(p, dva, dsize);
    VERIFY(vd != NULL); /* we allocated this DVA ourselves */
    int rc;
    switch (vd->type) {
    case VDEV_TYPE_MIRROR:
        rc = vdev_mirror_write(vd, dva->offset, buf, dsize, txg);
        break;
    case VDEV_TYPE_RAIDZ:
        rc = vdev_raidz_write(vd, dva->offset, buf, dsize, txg);
        break;
    default:
        rc = vdev_leaf_write(vd, dva->offset, buf, dsize, txg);
        return rc == -ENXIO ? -EIO : rc;
    }
    note_new_missed(p, vd);
    return rc;
}

bool
vdev_can_writev(const struct pool *p, uint32_t vdev)
{
    return vdev < p->nvdevs && p->vdevs[vdev] != NULL &&
           (p->vdevs[vdev]->type == VDEV_TYPE_LEAF || p->vdevs[vdev]->type == VDEV_TYPE_MIRROR);
}

int
vdev_writev(struct pool *p, uint32_t vdev, uint64_t off, const struct iovec *iov, int n,
            uint64_t txg)
{
    VERIFY(vdev_can_writev(p, vdev)); /* callers aggregate only on these */
    struct vdev *vd = p->vdevs[vdev];
    if (vd->type == VDEV_TYPE_LEAF) {
        int rc = vdev_leaf_writev(vd, off, iov, n, txg);
        return rc == -ENXIO ? -EIO : rc;
    }
    uint32_t stored = 0;
    for (uint32_t c = 0; c < vd->nchildren; c++)
        if (vdev_leaf_writev(vd->child[c], off, iov, n, txg) == 0)
            stored++;
    note_new_missed(p, vd);
    return stored > 0 ? 0 : -EIO;
}

struct flush_state {
    uint32_t failed;
};

static void
flush_leaf(struct vdev *leaf, void *arg)
{
    struct flush_state *fs = arg;
    if (!vdev_leaf_usable(leaf)) {
        fs->failed++;
        return;
    }
    if (vdev_backend_flush(leaf->dev) != 0) {
        ATOMIC_INC(leaf->write_errors);
        fs->failed++;
    }
}

int
vdev_flush_all(struct pool *p)
{
    int rc = 0;
    for (uint32_t i = 0; i < p->nvdevs; i++) {
        struct vdev *vd = p->vdevs[i];
        struct flush_state fs = { 0 };
        vdev_walk_leaves(vd, flush_leaf, &fs);
        uint32_t tolerable = vd->type == VDEV_TYPE_MIRROR  ? vd->nchildren - 1
                             : vd->type == VDEV_TYPE_RAIDZ ? vd->nparity
                                                           : 0;
        if (fs.failed > tolerable && rc == 0)
            rc = -EIO;
    }
    return rc;
}
