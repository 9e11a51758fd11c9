/* SPDX-License-Identifier: MIT */
/*
 * vdev_mirror: a top-level whose children each hold the whole address space.
 *
 * Writes go to every usable child and succeed when one child took them (the others have the txg
 * in their missed window for resilver). Reads start at a child chosen by the 16 MiB region of the
 * address space (sequential streams keep read-ahead, different regions spread over devices), and
 * move to the next child on an I/O error or a checksum failure; the first copy that verifies is
 * returned and written back over every copy that failed.
 */
#include <stdlib.h>

#include "common/err.h"
#include "core/bp.h"
#include "core/cksum.h"
#include "core/pool_impl.h"
#include "core/vdev.h"

#define MIRROR_REGION_SHIFT 24

int
vdev_mirror_read(struct pool *p, struct vdev *vd, uint64_t off, const struct blkptr *bp, void *buf,
                 size_t dsize)
{
    uint32_t n = vd->nchildren;
    /* Spread by 16 MiB regions of the address space: a sequential stream stays on one device
     * for a while (its read-ahead keeps working), different regions go to different devices. */
    uint32_t start = (uint32_t)((off >> MIRROR_REGION_SHIFT) % n);
    uint64_t failed = 0; /* bit per child index */
    int good = -1;
    bool any_read = false;
    for (uint32_t i = 0; i < n && good < 0; i++) {
        uint32_t c = (start + i) % n;
        struct vdev *leaf = vd->child[c];
        if (!vdev_leaf_usable(leaf))
            continue; /* nothing to repair there either */
        if (vdev_leaf_lacks(leaf, bp->birth)) {
            failed |= 1ull << c; /* missed that txg: rewrite it from the good copy */
            continue;
        }
        if (vdev_leaf_read(leaf, off, buf, dsize) != 0) {
            failed |= 1ull << c;
            continue;
        }
        any_read = true;
        if (cksum_verify(bp->cksum, buf, bp->psize, bp->cksum_val)) {
            good = (int)c;
            break;
        }
        vdev_count_cksum(leaf);
        failed |= 1ull << c;
    }
    if (good < 0) {
        vdev_count_cksum(vd);
        return any_read ? -ECKSUM : -EIO;
    }
    for (uint32_t c = 0; c < n; c++)
        if (failed & (1ull << c))
            vdev_leaf_repair(p, vd->child[c], off, buf, dsize);
    return 0;
}

int
vdev_mirror_write(struct vdev *vd, uint64_t off, const void *buf, size_t dsize, uint64_t txg)
{
    uint32_t stored = 0;
    for (uint32_t c = 0; c < vd->nchildren; c++)
        if (vdev_leaf_write(vd->child[c], off, buf, dsize, txg) == 0)
            stored++;
    return stored > 0 ? 0 : -EIO;
}

int
vdev_mirror_scrub(struct pool *p, struct vdev *vd, uint64_t off, const struct blkptr *bp, void *buf,
                  size_t dsize)
{
    uint64_t failed = 0;
    bool have_good = false, any_read = false;
    uint8_t *probe = malloc(dsize);
    if (probe == NULL)
        return -ENOMEM;
    for (uint32_t c = 0; c < vd->nchildren; c++) {
        struct vdev *leaf = vd->child[c];
        if (!vdev_leaf_usable(leaf))
            continue;
        if (vdev_leaf_lacks(leaf, bp->birth)) {
            failed |= 1ull << c;
            continue;
        }
        uint8_t *into = have_good ? probe : buf;
        if (vdev_leaf_read(leaf, off, into, dsize) != 0) {
            failed |= 1ull << c;
            continue;
        }
        any_read = true;
        if (cksum_verify(bp->cksum, into, bp->psize, bp->cksum_val)) {
            have_good = true;
            continue;
        }
        vdev_count_cksum(leaf);
        failed |= 1ull << c;
    }
    free(probe);
    if (!have_good) {
        vdev_count_cksum(vd);
        return any_read ? -ECKSUM : -EIO;
    }
    for (uint32_t c = 0; c < vd->nchildren; c++)
        if (failed & (1ull << c))
            vdev_leaf_repair(p, vd->child[c], off, buf, dsize);
    return 0;
}
