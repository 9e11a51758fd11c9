/* SPDX-License-Identifier: MIT */
/*
 * blkbuf: memory for block data — dirty blocks, compressed blocks, indirect blocks, RAID-Z
 * parity, and the block cache's buffers (the same memory: a synced dirty block is handed to
 * the cache, and the cache frees it when it evicts the block).
 *
 * Two reasons not to take this memory from malloc one block at a time:
 *   - Direct I/O (vdev_file.c) needs buffers aligned to the device's memory alignment (512
 *     bytes on the disks and filesystems seen so far, statx STATX_DIOALIGN); an unaligned one
 *     is bounced through a copy. Every blkbuf is BLKBUF_ALIGN-aligned.
 *   - A cache that grows by a gigabyte touches a gigabyte of fresh memory, and faulting it in a
 *     page at a time (a trap, a page-table lock and a cgroup charge per 4 KiB, contended by
 *     every writer thread) cost a quarter of the daemon's CPU while writing. Buffers whose size
 *     is a multiple of 4 KiB up to BLKBUF_SLAB_MAX come from 2 MiB slabs populated in one call
 *     and are recycled through per-size free lists, so memory is faulted once, in bulk.
 * Other sizes come from aligned_alloc. Release every blkbuf with blkbuf_free (never free()).
 *
 * Slab buffers are reference counted, so a reader can borrow a buffer that its owner may drop
 * meanwhile (a dirty block lent to an NBD reply while the block is synced or overwritten):
 * blkbuf_hold takes a reference, blkbuf_free drops one and the buffer is recycled with the
 * last. Someone about to change a buffer in place must first check blkbuf_shared.
 */
#ifndef LCPFS_CORE_BLKBUF_H
#define LCPFS_CORE_BLKBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLKBUF_ALIGN    512u
#define BLKBUF_SLAB_MAX (128u << 10)

/* Returns an uninitialised BLKBUF_ALIGN-aligned buffer of at least len bytes, or NULL. */
void *blkbuf_alloc(size_t len);
/* As blkbuf_alloc, zero-filled. */
void *blkbuf_zalloc(size_t len);
/* Drops a reference to a blkbuf (the only one, unless held); NULL is a no-op. */
void blkbuf_free(void *buf);
/* Takes another reference to buf (from blkbuf_alloc, not yet freed). False, and nothing taken,
 * for a buffer that is not reference counted (not from a slab): copy it instead. */
bool blkbuf_hold(void *buf);
/* Whether a reference other than the caller's exists (then do not write to it: copy it). */
bool blkbuf_shared(const void *buf);

/*
 * Block memory that stays mapped across idle periods, summed over the holders: empty slabs are
 * given back only beyond it. A pool holds the dirty data its writers may keep before the write
 * throttle, so that each burst of writes reuses the memory the last one left in the cache
 * instead of faulting it in again (12 % of a 2 GiB copy's CPU here). Release what was held.
 */
void blkbuf_spare_hold(uint64_t bytes);
void blkbuf_spare_release(uint64_t bytes);

/* Gives back to the kernel the slabs that have been entirely free for at least min_idle_ms,
 * beyond a small spare per size and the spare held. Pools' sync threads call it after every commit
 * and when idle (BLKBUF_IDLE_MS), pool export with 0; a free that empties a slab also scans its own
 * class, at most every BLKBUF_IDLE_MS, so memory goes back without any caller too. */
#define BLKBUF_IDLE_MS 2000u
void blkbuf_trim(unsigned min_idle_ms);

struct blkbuf_stats {
    uint64_t slab_bytes;  /* mapped in slabs */
    uint64_t free_bytes;  /* of which on free lists */
    uint64_t slabs_freed; /* slabs given back to the kernel */
    uint64_t spare_bytes; /* held by blkbuf_spare_hold */
};
void blkbuf_get_stats(struct blkbuf_stats *out);

#endif /* LCPFS_CORE_BLKBUF_H */
