/* SPDX-License-Identifier: MIT */
/*
 * bp: block pointers in memory, and their encoding (ondisk.h, "Block pointer").
 *
 * struct blkptr is the decoded form; bp_encode/bp_decode convert to and from the 128-byte disk
 * form. bp_decode validates every field that a reader would trust (sizes, enum values, unknown
 * flags, DVA sanity) and returns -ECORRUPT instead of asserting: block pointers come from disk.
 */
#ifndef LCPFS_CORE_BP_H
#define LCPFS_CORE_BP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ondisk.h"

struct dva {
    uint32_t vdev;          /* top-level vdev id */
    uint32_t asize_sectors; /* allocated size in 512-byte sectors; 0 = this DVA is unused */
    uint64_t offset;        /* bytes from the start of the vdev's allocatable area */
};

struct blkptr {
    struct dva dva[BP_NDVAS];
    uint32_t lsize; /* logical bytes */
    uint32_t psize; /* physical bytes */
    uint8_t comp;   /* enum compress_alg */
    uint8_t cksum;  /* enum cksum_alg */
    uint8_t type;   /* enum obj_type */
    uint8_t level;
    uint8_t flags; /* enum bp_flags */
    uint8_t comp_level;
    uint64_t birth;      /* logical birth txg */
    uint64_t phys_birth; /* 0 = same as birth */
    uint64_t fill;
    uint8_t cksum_val[BP_CKSUM_LEN];
    uint8_t embedded[BP_EMBED_MAX]; /* payload when BP_FLAG_EMBEDDED; dva/fill/cksum unused */
};

static inline bool
bp_is_embedded(const struct blkptr *bp)
{
    return (bp->flags & BP_FLAG_EMBEDDED) != 0;
}
static inline bool
bp_is_hole(const struct blkptr *bp)
{
    return !bp_is_embedded(bp) && bp->dva[0].asize_sectors == 0;
}
static inline uint64_t
dva_asize(const struct dva *d)
{
    return (uint64_t)d->asize_sectors << SECTOR_SHIFT;
}
/* Number of used DVAs (0 for holes and embedded BPs). */
int bp_ndvas(const struct blkptr *bp);
/* Sum of asize over all DVAs. */
uint64_t bp_asize(const struct blkptr *bp);

/* A hole of lsize logical bytes born at txg (hole birth), type and level kept. */
void bp_make_hole(struct blkptr *bp, uint32_t lsize, uint8_t type, uint8_t level, uint64_t birth);

void bp_encode(const struct blkptr *bp, uint8_t out[static BP_SIZE]);
/*
 * Decodes and validates. Returns 0 or -ECORRUPT (unknown flags/alg/type, psize > lsize, lsize
 * over BLOCK_MAX_SIZE for level 0, embedded psize > BP_EMBED_MAX, DVA with offset not
 * sector-aligned, asize smaller than psize).
 */
int bp_decode(const uint8_t in[static BP_SIZE], struct blkptr *bp);
/* true when two BPs reference the same block (same DVA[0] and birth), or are equal holes. */
bool bp_equal(const struct blkptr *a, const struct blkptr *b);
/* "vdev:offset:asize L<level> T<type> lsize/psize birth=<txg>" into buf, for messages. */
const char *bp_describe(const struct blkptr *bp, char *buf, size_t buflen);

#endif
