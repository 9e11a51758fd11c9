/* SPDX-License-Identifier: MIT */
/*
 * objset: object sets and the objects in them — the object layer (ZFS's DMU, simplified).
 *
 * An object set is an array of dnodes (the meta-dnode's data); object n is dnode slot n. Each
 * object is a sparse array of equal-sized data blocks addressed through a radix tree of indirect
 * blocks hanging off the dnode (pure arithmetic: no key compare). Every block is written
 * copy-on-write at txg commit, checksummed in its parent.
 *
 * Reads see every change made so far, committed or not (open and syncing txgs are consulted
 * before the tree), so "what is on the object now" is always answered exactly — the extent query
 * depends on that. Writes are copied into per-txg dirty buffers and cost no I/O unless a partial
 * block must be read first.
 *
 * Thread-safe: each object has its own lock; the object set's handle table has another.
 */
#ifndef LCPFS_CORE_OBJSET_H
#define LCPFS_CORE_OBJSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ondisk.h"
#include "core/pool.h"

struct obj_create_opts {
    uint8_t type;       /* enum obj_type, not OT_NONE */
    uint32_t blocksize; /* power of two, 512 .. BLOCK_MAX_SIZE; 0 = 128 KiB */
    uint8_t checksum;   /* enum cksum_alg; CKSUM_INHERIT = object set default */
    uint8_t compress;   /* enum compress_alg; COMPRESS_INHERIT = object set default */
    uint8_t compress_level;
    uint8_t copies;      /* 1..3; 0 = 1 */
    uint16_t bonuslen;   /* bytes of bonus area (<= DNODE_BONUS_MAX(1)) */
    uint8_t indblkshift; /* 0 = INDIRECT_SHIFT_DEFAULT */
};

struct obj_info {
    uint8_t type;
    uint32_t blocksize;
    uint64_t size;       /* logical length in bytes */
    uint64_t nblocks;    /* highest addressed block + 1 (as of the last commit) */
    uint64_t used_bytes; /* allocated bytes (as of the last commit) */
    uint8_t checksum, compress, compress_level, copies, nlevels;
    uint64_t gen; /* creation txg */
    uint16_t bonuslen;
};

/* Creates an object in tx. *obj receives its number. -EINVAL for bad options, -ENOSPC when the
 * object set is full (2^48 objects). */
int obj_create(struct objset *os, struct tx *tx, const struct obj_create_opts *opts, uint64_t *obj);
/* Destroys an object and frees its blocks at commit. -ENOENT. */
int obj_destroy(struct objset *os, struct tx *tx, uint64_t obj);
/* Writes len bytes at off; the object grows to off+len if shorter. -ENOENT, -EFBIG past 2^63. */
int obj_write(struct objset *os, struct tx *tx, uint64_t obj, uint64_t off, size_t len,
              const void *buf);
/*
 * Reads len bytes at off into buf. Bytes past the object's size read as zeros (callers bound
 * reads by size themselves). Returns 0, -ENOENT, -ECKSUM (every copy of some block failed its
 * checksum; the error is recorded with object, level and block id), -EIO.
 */
int obj_read(struct objset *os, uint64_t obj, uint64_t off, size_t len, void *buf);
/*
 * Zero-copy read: [off, off+len) as a list of read-only pieces in order, each lent by the block
 * cache (committed data), a private copy (uncommitted data) or a shared zero buffer (holes).
 * Fills pv[0..*n) (at most max; max = len / blocksize + 2 always suffices) and returns 0, or
 * -E2BIG (max too small), or obj_read's errors (nothing is lent then). Release every piece with
 * obj_piece_release, from any thread, in any order; until then the data stays valid and
 * unchanged.
 */
struct obj_piece {
    const uint8_t *data;
    size_t len;
    void *cache_ref; /* opaque */
    void *owned;     /* opaque */
};
int obj_read_pieces(struct objset *os, uint64_t obj, uint64_t off, size_t len, struct obj_piece *pv,
                    size_t max, size_t *n);
void obj_piece_release(struct obj_piece *pc);

/* Frees [off, off+len): whole blocks become holes, partial blocks are zeroed. Size unchanged. */
int obj_punch(struct objset *os, struct tx *tx, uint64_t obj, uint64_t off, uint64_t len);
/* Sets the size; shrinking frees everything past it. */
int obj_truncate(struct objset *os, struct tx *tx, uint64_t obj, uint64_t size);
int obj_stat(struct objset *os, uint64_t obj, struct obj_info *out);
/* Changes the checksum/compression/copies used for blocks written from now on. */
int obj_set_props(struct objset *os, struct tx *tx, uint64_t obj, uint8_t checksum,
                  uint8_t compress, uint8_t compress_level, uint8_t copies);
/* Bonus area (small per-object record): read copies min(cap, bonuslen) bytes. */
int obj_bonus_read(struct objset *os, uint64_t obj, void *buf, size_t cap);
int obj_bonus_write(struct objset *os, struct tx *tx, uint64_t obj, const void *buf, size_t len);

/*
 * Data/hole query: calls fn for maximal runs of [off, off+len) that are data (is_data) or holes,
 * as of now, including uncommitted writes and punches. Granularity is the object's block size.
 */
typedef int (*obj_extent_fn)(void *arg, uint64_t off, uint64_t len, bool is_data);
int obj_extents(struct objset *os, uint64_t obj, uint64_t off, uint64_t len, obj_extent_fn fn,
                void *arg);

/* Iterates allocated object numbers >= start (as of now); *next gets the next one or -ENOENT. */
int obj_next(struct objset *os, uint64_t start, uint64_t *next);

/* Default checksum/compression for objects created with INHERIT. */
void objset_set_defaults(struct objset *os, uint8_t checksum, uint8_t compress,
                         uint8_t compress_level);
struct pool *objset_pool(const struct objset *os);

#endif
