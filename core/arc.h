/* SPDX-License-Identifier: MIT */
/*
 * arc: the adaptive replacement block cache, with a fixed memory budget.
 *
 * Caches verified, decompressed (logical) blocks keyed by (vdev, offset, birth) of the block's
 * first DVA, so a block shared by snapshots and clones is cached once and a rewritten location
 * (new birth) never returns stale data. Replacement follows Megiddo-Modha ARC: lists MRU (seen
 * once) and MFU (seen twice or more) with ghost lists of recently evicted keys; a ghost hit
 * moves the MRU target p. Buffers are refcounted: a referenced buffer is never evicted or
 * freed, so readers use the data without copying it.
 *
 * Invariants: |MRU| + |MFU| bytes <= max except while all are referenced; ghost lists hold keys
 * only; total ghost keys <= 2 × cached block count bound (ARC's c); every buffer is on exactly
 * one list. Thread-safe (one mutex; buffer data is immutable once inserted).
 */
#ifndef LCPFS_CORE_ARC_H
#define LCPFS_CORE_ARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arc;
struct arc_buf;

struct arc_key {
    uint64_t vdev;
    uint64_t offset;
    uint64_t birth;
};

/* Returns a new cache that holds at most max_bytes of block data, or NULL. */
struct arc *arc_new(size_t max_bytes);
/* Frees the cache; every buffer must have been unreferenced. NULL ok. */
void arc_free(struct arc *arc);
void arc_set_max(struct arc *arc, size_t max_bytes);

/* Returns the cached buffer with a new reference (release with arc_buf_unref), or NULL. */
struct arc_buf *arc_get(struct arc *arc, const struct arc_key *key);
/*
 * Inserts a block. Takes ownership of data (malloc'd, len bytes) in every case. If the key is
 * already cached, data is freed and the existing buffer is returned. Returns a referenced
 * buffer, or NULL on allocation failure (data freed).
 */
struct arc_buf *arc_put(struct arc *arc, const struct arc_key *key, void *data, size_t len);
/* Drops the key from the cache (and its ghost entries); referenced buffers stay valid. */
void arc_remove(struct arc *arc, const struct arc_key *key);

const void *arc_buf_data(const struct arc_buf *buf);
size_t arc_buf_len(const struct arc_buf *buf);
void arc_buf_unref(struct arc_buf *buf); /* NULL ok */

struct arc_stats {
    uint64_t hits, misses, mru_hits, mfu_hits, mru_ghost_hits, mfu_ghost_hits, evictions;
    uint64_t size;                           /* bytes of cached data */
    uint64_t max;                            /* budget */
    uint64_t mru_size, mfu_size, target_mru; /* ARC's p */
    uint64_t nbufs;
};
void arc_get_stats(struct arc *arc, struct arc_stats *out);
bool arc_check(struct arc *arc);

#endif
