/* SPDX-License-Identifier: MIT */
/*
 * vdev_mem: a memory-backed leaf device for tests.
 *
 * The bytes live in one anonymous private mapping (MAP_NORESERVE), so a large device costs only
 * the pages actually written and starts zero-filled. A reader-writer lock makes concurrent calls
 * safe: reads share it, writes take it exclusively, so no read ever sees half of a write.
 *
 * Invariants:
 *  1. data maps exactly base.size bytes (data == NULL iff base.size == 0).
 *  2. Every access is range-checked against base.size before touching data.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/assert.h"
#include "common/err.h"
#include "core/vdev_backend.h"

struct mem_backend {
    struct vdev_backend base; /* first: the ops cast between the two */
    uint8_t *data;            /* base.size bytes (invariant 1); contents protected by lock */
    pthread_rwlock_t lock;    /* readers share, writers exclusive */
};

static struct mem_backend *
mem_of(struct vdev_backend *b)
{
    return (struct mem_backend *)b;
}

/* true when [off, off+len) lies inside the device (overflow-safe). */
static bool
mem_range_ok(const struct mem_backend *m, uint64_t off, size_t len)
{
    return off <= m->base.size && len <= m->base.size - off;
}

static int
mem_read(struct vdev_backend *b, uint64_t off, void *buf, size_t len)
{
    struct mem_backend *m = mem_of(b);

    if (!mem_range_ok(m, off, len))
        return ERR(-EINVAL);
    if (len == 0)
        return 0;
    VERIFY0(pthread_rwlock_rdlock(&m->lock));
    memcpy(buf, m->data + off, len);
    VERIFY0(pthread_rwlock_unlock(&m->lock));
    return 0;
}

static int
mem_write(struct vdev_backend *b, uint64_t off, const void *buf, size_t len)
{
    struct mem_backend *m = mem_of(b);

    if (!mem_range_ok(m, off, len))
        return ERR(-EINVAL);
    if (len == 0)
        return 0;
    VERIFY0(pthread_rwlock_wrlock(&m->lock));
    memcpy(m->data + off, buf, len);
    VERIFY0(pthread_rwlock_unlock(&m->lock));
    return 0;
}

static int
mem_flush(struct vdev_backend *b)
{
    (void)b; /* memory is as durable as it gets */
    return 0;
}

static void
mem_close(struct vdev_backend *b)
{
    struct mem_backend *m = mem_of(b);

    if (m->data != NULL)
        VERIFY0(munmap(m->data, (size_t)m->base.size));
    VERIFY0(pthread_rwlock_destroy(&m->lock));
    free(m);
}

static const struct vdev_backend_ops mem_ops = {
    .read = mem_read,
    .write = mem_write,
    .flush = mem_flush,
    .close = mem_close,
};

int
vdev_mem_open(uint64_t size, struct vdev_backend **out)
{
    ASSERT(out != NULL);
    *out = NULL;
    if (size > SIZE_MAX)
        return ERR(-ENOMEM);

    struct mem_backend *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return ERR(-ENOMEM);
    if (size > 0) {
        void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            free(m);
            return ERR(-ENOMEM);
        }
        m->data = p;
    }
    if (pthread_rwlock_init(&m->lock, NULL) != 0) {
        if (m->data != NULL)
            VERIFY0(munmap(m->data, (size_t)size));
        free(m);
        return ERR(-ENOMEM);
    }
    m->base.ops = &mem_ops;
    m->base.size = size;
    m->base.path[0] = '\0'; /* no path hint: nothing to find this device by */
    *out = &m->base;
    return 0;
}
