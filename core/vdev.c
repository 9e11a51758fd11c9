/* SPDX-License-Identifier: MIT */
/*
 * vdev: routing of block I/O from a DVA to the device that holds it.
 *
 * Format 1 top-level vdevs are single leaf devices: DVA offset o of vdev v lives at byte
 * VDEV_DATA_START + o of that device. Mirrors and RAID-Z slot in here (the config already
 * describes trees of vdevs). Error counters are kept per top-level vdev for `pool status`.
 */
#include <stdatomic.h>

#include "common/assert.h"
#include "common/err.h"
#include "core/pool_impl.h"
#include "core/vdev_backend.h"

static struct vdev *
vdev_lookup(struct pool *p, const struct dva *dva, size_t len)
{
    if (dva->vdev >= p->nvdevs)
        return NULL;
    struct vdev *vd = p->vdevs[dva->vdev];
    if (vd == NULL || dva->offset > vd->asize || len > vd->asize - dva->offset)
        return NULL;
    return vd;
}

int
vdev_read(struct pool *p, const struct dva *dva, void *buf, size_t len)
{
    struct vdev *vd = vdev_lookup(p, dva, len);
    if (vd == NULL)
        return ERR(-ECORRUPT); /* a DVA outside every vdev came from a corrupt parent */
    int rc = vdev_backend_read(vd->dev, VDEV_DATA_START + dva->offset, buf, len);
    if (rc != 0)
        atomic_fetch_add((_Atomic uint64_t *)&vd->read_errors, 1);
    return rc;
}

int
vdev_write(struct pool *p, const struct dva *dva, const void *buf, size_t len)
{
    struct vdev *vd = vdev_lookup(p, dva, len);
    VERIFY(vd != NULL); /* we allocated this DVA ourselves */
    int rc = vdev_backend_write(vd->dev, VDEV_DATA_START + dva->offset, buf, len);
    if (rc != 0)
        atomic_fetch_add((_Atomic uint64_t *)&vd->write_errors, 1);
    return rc;
}

int
vdev_flush_all(struct pool *p)
{
    int first = 0;
    for (uint32_t i = 0; i < p->nvdevs; i++) {
        int rc = vdev_backend_flush(p->vdevs[i]->dev);
        if (rc != 0 && first == 0)
            first = rc;
    }
    return first;
}
