/* SPDX-License-Identifier: MIT */
/*
 * blkbuf: memory for block data that may go to a device — dirty blocks, compressed blocks,
 * indirect blocks, RAID-Z parity, and the block cache's buffers (they are the same memory:
 * a synced dirty block is handed to the cache).
 *
 * Direct I/O (vdev_file.c) needs buffers aligned to the device's memory alignment (512 bytes
 * on the disks and filesystems seen so far, statx STATX_DIOALIGN); an unaligned buffer is
 * bounced through a copy. Allocating block buffers BLKBUF_ALIGN-aligned makes the common
 * case copy-free. The buffers are ordinary heap memory: release them with free().
 */
#ifndef LCPFS_CORE_BLKBUF_H
#define LCPFS_CORE_BLKBUF_H

#include <stdlib.h>
#include <string.h>

#define BLKBUF_ALIGN 512u

/* Returns an uninitialised BLKBUF_ALIGN-aligned buffer of at least len bytes, or NULL. */
static inline void *
blkbuf_alloc(size_t len)
{
    size_t n = len == 0 ? BLKBUF_ALIGN : (len + BLKBUF_ALIGN - 1) & ~(size_t)(BLKBUF_ALIGN - 1);
    return aligned_alloc(BLKBUF_ALIGN, n);
}

/* As blkbuf_alloc, zero-filled. */
static inline void *
blkbuf_zalloc(size_t len)
{
    void *p = blkbuf_alloc(len);
    if (p != NULL)
        memset(p, 0, len);
    return p;
}

#endif /* LCPFS_CORE_BLKBUF_H */
