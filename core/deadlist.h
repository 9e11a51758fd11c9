/* SPDX-License-Identifier: MIT */
/*
 * deadlist: the blocks a dataset stopped referencing that an earlier snapshot still references
 * (the birth-time rule, docs/DESIGN.md §11; pool-format.md §6 "Deadlists"), bucketed by mintxg so
 * the space of dead blocks born in any (mintxg, maxtxg] range is known without reading them.
 *
 * Storage: two objects of one object set, named by struct deadlist_phys (the caller stores it):
 *   bps_obj      OT_DEADLIST: an append-only
 *                array of BP_SIZE-byte encoded block pointers; entry i is at offset i * BP_SIZE.
 *   summary_obj  an objmap keyed (mintxg, 0) -> DEADLIST_SUMMARY_SIZE bytes
 *                { u64 asize bytes, u64 psize bytes, u64 lsize bytes, u64 count } (LE).
 * A BP born at txg b is accounted in the bucket with the largest key < b. Key 0 always exists.
 *
 * Owns the two objects' contents; does not free blocks or decide what is dead (the caller's
 * free hook does). Not thread-safe: the owner serializes calls on one handle. Changes happen
 * inside the caller's transaction; reads see uncommitted changes (like every object read).
 */
#ifndef LCPFS_CORE_DEADLIST_H
#define LCPFS_CORE_DEADLIST_H

#include <stdint.h>

#include "core/bp.h"
#include "core/objset.h"

#define DEADLIST_PHYS_SIZE    16u /* u64 bps_obj, u64 summary_obj */
#define DEADLIST_SUMMARY_SIZE 32u /* u64 asize, u64 psize, u64 lsize, u64 count */

struct deadlist_phys {
    uint64_t bps_obj;
    uint64_t summary_obj;
};

/* Space of a set of dead blocks: allocated (sum of DVA asizes), physical and logical bytes. */
struct deadlist_space {
    uint64_t asize_bytes;
    uint64_t psize_bytes;
    uint64_t lsize_bytes;
    uint64_t count;
};

struct deadlist;

void deadlist_phys_encode(const struct deadlist_phys *p, uint8_t out[static DEADLIST_PHYS_SIZE]);
/* Returns 0 or -ECORRUPT (an object number of 0, which is the meta-dnode). */
int deadlist_phys_decode(const uint8_t in[static DEADLIST_PHYS_SIZE], struct deadlist_phys *p);

/* Creates an empty deadlist (both objects and bucket 0) in tx; *out gets the object numbers. */
int deadlist_create(struct objset *os, struct tx *tx, struct deadlist_phys *out);
/* Destroys both objects in tx (their blocks are freed at commit). The BPs listed are NOT freed. */
int deadlist_destroy(struct objset *os, struct tx *tx, const struct deadlist_phys *phys);

/*
 * Opens a deadlist. Borrows os and phys (os must outlive the handle). Loads the bucket summary
 * and checks it against the array: returns 0, -ENOENT, -ECORRUPT (wrong object type, array size
 * not a multiple of BP_SIZE, bad summary entry, no bucket 0, counts not matching the array),
 * -ENOMEM or a read error. Returns new in *out; free with deadlist_close.
 */
int deadlist_open(struct objset *os, const struct deadlist_phys *phys, struct deadlist **out);
void deadlist_close(struct deadlist *dl); /* NULL ok; writes nothing */

/*
 * Adds a bucket boundary: BPs inserted from now on with birth > mintxg go to it. Called when a
 * snapshot is taken at txg mintxg. Keys must increase: -EEXIST if mintxg is a key, -EINVAL if it
 * is below the largest key.
 */
int deadlist_add_key(struct deadlist *dl, struct tx *tx, uint64_t mintxg);
/*
 * Removes bucket mintxg, folding its space into the previous bucket (snapshot destroy). The BPs
 * stay in the array. -ENOENT if no such key, -EINVAL for key 0.
 */
int deadlist_remove_key(struct deadlist *dl, struct tx *tx, uint64_t mintxg);

/*
 * Appends bp (borrowed) and accounts it in the bucket with the largest key < bp->birth. Holes and
 * embedded BPs own no space and are ignored (return 0). -EINVAL for a BP born at txg 0.
 * On an error the deadlist is left as it was, unless the rollback itself failed.
 */
int deadlist_insert(struct deadlist *dl, struct tx *tx, const struct blkptr *bp);

/* Sum of the buckets with mintxg <= key < maxtxg: with both bounds keys (or maxtxg UINT64_MAX),
 * the space of the BPs born in (mintxg, maxtxg]. Never fails (the summary is in memory). */
void deadlist_space_range(const struct deadlist *dl, uint64_t mintxg, uint64_t maxtxg,
                          struct deadlist_space *out);
/* Sum of all buckets. */
void deadlist_space(const struct deadlist *dl, struct deadlist_space *out);
/* Number of BPs in the array. */
uint64_t deadlist_count(const struct deadlist *dl);

/*
 * Calls fn for every BP in append order (bp borrowed for the call). Stops when fn returns nonzero
 * and returns that value; returns 0 after the last, -ECORRUPT for an entry that fails bp_decode
 * or is a hole/embedded, or a read error. fn must not modify dl.
 */
typedef int (*deadlist_iter_fn)(void *arg, const struct blkptr *bp);
int deadlist_iterate(struct deadlist *dl, deadlist_iter_fn fn, void *arg);

/*
 * Appends all of src's BPs (in src's order) to dst, bucketed by dst's keys. src is unchanged
 * (the caller destroys it if it was moved). dst != src. Errors as deadlist_insert/_iterate; on an
 * error dst keeps the BPs merged before it (its summary stays consistent with its array).
 */
int deadlist_merge(struct deadlist *dst, struct tx *tx, struct deadlist *src);

#endif
