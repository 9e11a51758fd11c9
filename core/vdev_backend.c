/* SPDX-License-Identifier: MIT */
/*
 * vdev_backend: the one backend-independent entry point. Every implementation (vdev_file.c,
 * vdev_mem.c, vdev_fault.c) frees itself in its close op; this only dispatches.
 */
#include "core/vdev_backend.h"

#include <stddef.h>

void
vdev_backend_close(struct vdev_backend *b)
{
    if (b == NULL)
        return;
    b->ops->close(b);
}
