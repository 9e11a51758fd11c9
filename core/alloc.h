/* SPDX-License-Identifier: MIT */
/*
 * alloc: space allocation over the pool's top-level vdevs.
 *
 * Each top-level vdev is cut into metaslabs of 2^ms_shift bytes; each metaslab keeps an in-memory
 * range_tree of allocatable space. alloc_allocate() picks a vdev (rotor, biased to free space),
 * then the metaslab with the best weight (largest free segment), then first-fit from a per-metaslab
 * cursor, falling back to the lowest fit when the cursor search fails.
 *
 * Persistence is a journal: every ALLOC and FREE is also appended to a pending record list for
 * its txg (ondisk.h, "Space journal and checkpoint records"); the pool's sync writes those
 * records to the MOS journal object (alloc_take_journal) and periodically a checkpoint of the
 * whole allocated set (alloc_encode_checkpoint). Import replays checkpoint + journal through
 * alloc_load_records().
 *
 * Space states of a byte range, and the transitions:
 *   allocatable --alloc_allocate--> allocated --alloc_free_deferred(T)--> freeing[T]
 *   freeing[T] --alloc_sync_done(T)--> defer[T] --alloc_sync_done(T+2)--> allocatable
 *   allocated --alloc_free_immediate--> allocatable   (only blocks born in the syncing txg)
 * Invariants:
 *   1. The allocatable, freeing, defer and allocated sets partition each vdev's space.
 *   2. A range freed in txg T is not handed out before alloc_sync_done(T + 2): the trees of the
 *      two previous uberblocks stay intact, which is what makes import rewind safe.
 *   3. The persisted view (checkpoint + journal replay) equals "allocated" ∪ nothing else: frees
 * are journaled at the moment they are made, so after replay freeing/defer space counts as free.
 *   4. Normal allocations leave the slop reserve (alloc_slop_bytes) untouched; ALLOC_USE_SLOP
 *      may dip into it (metadata of frees and destroys, so a full pool can still free space).
 *
 * Thread-safe: one internal mutex; calls may come from many sync workers at once.
 */
#ifndef LCPFS_CORE_ALLOC_H
#define LCPFS_CORE_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bp.h"

struct alloc;

/* Returns a new allocator with no vdevs, or NULL on allocation failure. */
struct alloc *alloc_new(void);
void alloc_free(struct alloc *a); /* NULL ok */

/* A metaslab shift for a vdev of asize bytes: ~100-200 metaslabs, between 16 MiB and 16 GiB. */
unsigned alloc_pick_ms_shift(uint64_t asize);

/*
 * Registers top-level vdev `vdev` (ids are dense: 0, 1, ...) with asize allocatable bytes,
 * allocation unit 2^ashift and metaslabs of 2^ms_shift bytes. All of it starts allocatable.
 * Returns 0, -EEXIST, -EINVAL or -ENOMEM.
 */
int alloc_vdev_add(struct alloc *a, uint32_t vdev, uint64_t asize, unsigned ashift,
                   unsigned ms_shift);

/*
 * Replays encoded space records (a checkpoint, then journals in order). FREE records of txg
 * >= current_txg - 1 go to the defer state (invariant 2 across import); older ones become
 * allocatable. Records are not re-journaled. Returns 0, or -ECORRUPT for a malformed record, an
 * unknown vdev, a range outside the vdev, an ALLOC of non-free space or a FREE of free space.
 */
int alloc_load_records(struct alloc *a, const uint8_t *recs, size_t len, uint64_t current_txg);

enum alloc_flags {
    ALLOC_USE_SLOP = 1u << 0, /* may use the slop reserve */
};

/*
 * Makes top-level `vdev` a RAID-Z of width children with nparity parity: allocations on it are
 * inflated by parity and padding (vdev_raidz_alloc_size). Returns 0, -EINVAL or -ENOENT.
 */
int alloc_vdev_set_raidz(struct alloc *a, uint32_t vdev, unsigned width, unsigned nparity);

/*
 * Allocates a block of asize data bytes (a multiple of the vdev's 2^ashift, rounded up if not;
 * RAID-Z vdevs allocate more: parity and padding) in txg, preferring a
 * vdev not in avoid[0..navoid) (ditto copies), and fills *out. Journals an ALLOC record.
 * Returns 0, or -ENOSPC when no vdev has room outside the slop reserve (or at all with
 * ALLOC_USE_SLOP).
 */
int alloc_allocate(struct alloc *a, uint64_t txg, uint64_t asize, unsigned flags,
                   const uint32_t *avoid, size_t navoid, struct dva *out);

/*
 * While held (counted), freed space stays deferred instead of becoming allocatable: a scrub that
 * walks a snapshot of the trees never reads a block that was freed and rewritten meanwhile.
 */
void alloc_hold_frees(struct alloc *a, bool hold);

/* Frees dva in txg (journaled FREE); reusable after alloc_sync_done(txg + 2). */
void alloc_free_deferred(struct alloc *a, uint64_t txg, const struct dva *dva);
/* Frees a dva allocated in this same txg and never referenced by a durable tree: reusable now. */
void alloc_free_immediate(struct alloc *a, uint64_t txg, const struct dva *dva);

/*
 * Hands over the records journaled for txg since the last call, encoded: a TXG marker followed
 * by the ALLOC/FREE records in order. *out is malloc'd (caller frees); *len 0 and *out NULL when
 * nothing happened. Returns 0 or -ENOMEM. May be called several times per txg (sync passes).
 */
int alloc_take_journal(struct alloc *a, uint64_t txg, uint8_t **out, size_t *len);
/* true when records for txg are waiting to be taken. */
bool alloc_has_journal(struct alloc *a, uint64_t txg);

/*
 * Encodes the allocated set as a checkpoint (TXG marker `txg`, then ALLOC records sorted by
 * vdev and offset). Free, freeing and deferred space are all "not allocated". Must be called
 * when no records are pending. *out malloc'd. Returns 0 or -ENOMEM.
 */
int alloc_encode_checkpoint(struct alloc *a, uint64_t txg, uint8_t **out, size_t *len);

/* After txg is durable: freeing[txg] -> defer; defer from txg - 2 -> allocatable. */
void alloc_sync_done(struct alloc *a, uint64_t txg);

struct alloc_stats {
    uint64_t size;          /* sum of vdev asizes */
    uint64_t allocated;     /* allocated bytes (freeing/defer not counted) */
    uint64_t free;          /* size - allocated */
    uint64_t deferred;      /* freed but not yet reusable */
    uint64_t slop;          /* reserve normal allocations may not use */
    unsigned fragmentation; /* 0..100: share of free space in small segments */
    unsigned nmetaslabs;
};
void alloc_get_stats(struct alloc *a, struct alloc_stats *out);
/* The space fields only (size, allocated, free, deferred, slop): O(1), for the write path. */
void alloc_get_space(struct alloc *a, struct alloc_stats *out);
/* Allocated bytes of one vdev (0 for an unknown id). */
uint64_t alloc_vdev_allocated(struct alloc *a, uint32_t vdev);
uint64_t alloc_slop_bytes(struct alloc *a);

/*
 * Calls fn for each allocated extent (persisted view: freeing/defer count as free) in
 * (vdev, offset) order. Stops when fn returns nonzero and returns that value.
 */
typedef int (*alloc_walk_fn)(void *arg, uint32_t vdev, uint64_t offset, uint64_t len);
int alloc_walk_allocated(struct alloc *a, alloc_walk_fn fn, void *arg);

/* Full consistency check of invariant 1 (debug/tests). */
bool alloc_check(struct alloc *a);

#endif
