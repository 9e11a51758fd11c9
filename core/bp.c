/* SPDX-License-Identifier: MIT */
/*
 * bp: block pointer encoding, decoding and validation (layout: ondisk.h, "Block pointer").
 *
 * Theory of operation. A BP is one of three kinds, told apart by its flags and first DVA:
 *   embedded  flags & BP_FLAG_EMBEDDED: payload in disk bytes [0,48) and [80,128); in memory the
 *             payload is bp->embedded[0..96) and dva/fill/cksum_val are zero after decode
 *   hole      not embedded and dva[0].asize_sectors == 0; birth is when the hole was made
 *   normal    everything else: 1..3 DVAs, fill and a checksum
 * Bytes 48..79 (sizes, enums, flags, birth, physical birth) are common to all kinds. The reserved
 * fields (bytes 62..63 and 88..95) are written as zero and ignored on decode.
 *
 * Invariants a successfully decoded BP satisfies (and bp_encode expects):
 *   1. flags has no bit outside BP_FLAGS_KNOWN.
 *   2. comp and cksum are valid algorithms; a hole may also carry 0 (INHERIT) in either.
 *   3. type < OT_TYPE_COUNT, level <= BP_LEVEL_MAX, psize <= lsize.
 *   4. lsize <= BLOCK_MAX_SIZE, and <= 1 << INDIRECT_SHIFT_MAX for indirect blocks (level > 0,
 *      any type but OT_OBJSET).
 *   5. embedded: psize <= BP_EMBED_MAX.
 *   6. not embedded: the used DVAs (asize_sectors != 0) form a prefix of dva[]; each used DVA
 *      has a sector-aligned offset and asize >= psize. A hole therefore has no used DVA.
 */
#include "core/bp.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "common/endian.h"
#include "common/err.h"
#include "core/cksum.h"
#include "core/compress.h"

#define BP_LEVEL_MAX      10
#define BP_INDIRECT_MAX   (1u << INDIRECT_SHIFT_MAX)
#define BP_EMBED_HEAD     48u /* payload bytes stored in [0,48) */
#define BP_OFF_LSIZE      48
#define BP_OFF_PSIZE      52
#define BP_OFF_COMP       56
#define BP_OFF_CKSUM      57
#define BP_OFF_TYPE       58
#define BP_OFF_LEVEL      59
#define BP_OFF_FLAGS      60
#define BP_OFF_COMP_LEVEL 61
#define BP_OFF_BIRTH      64
#define BP_OFF_PHYS_BIRTH 72
#define BP_OFF_FILL       80
#define BP_OFF_CKSUM_VAL  96
#define BP_DVA_SIZE       16u
#define BP_EMBED_TAIL_OFF 80u

_Static_assert(BP_NDVAS *BP_DVA_SIZE == BP_EMBED_HEAD, "DVAs fill the embedded head");
_Static_assert(BP_EMBED_HEAD + (BP_SIZE - BP_EMBED_TAIL_OFF) == BP_EMBED_MAX,
               "embedded payload is [0,48) + [80,128)");
_Static_assert(BP_OFF_CKSUM_VAL + BP_CKSUM_LEN == BP_SIZE, "checksum ends the BP");
_Static_assert(BLOCK_MAX_SIZE >= BP_INDIRECT_MAX, "indirect blocks are blocks");

int
bp_ndvas(const struct blkptr *bp)
{
    if (bp_is_embedded(bp))
        return 0;
    int n = 0;
    for (int i = 0; i < BP_NDVAS; i++)
        n += bp->dva[i].asize_sectors != 0;
    return n;
}

uint64_t
bp_asize(const struct blkptr *bp)
{
    if (bp_is_embedded(bp))
        return 0;
    uint64_t sum = 0;
    for (int i = 0; i < BP_NDVAS; i++)
        sum += dva_asize(&bp->dva[i]);
    return sum;
}

void
bp_make_hole(struct blkptr *bp, uint32_t lsize, uint8_t type, uint8_t level, uint64_t birth)
{
    memset(bp, 0, sizeof(*bp));
    bp->lsize = lsize;
    bp->type = type;
    bp->level = level;
    bp->birth = birth;
    bp->comp = COMPRESS_OFF;
    bp->cksum = CKSUM_OFF;
}

void
bp_encode(const struct blkptr *bp, uint8_t out[static BP_SIZE])
{
    ASSERT3U(bp->flags & ~BP_FLAGS_KNOWN, ==, 0);
    ASSERT3U(bp->psize, <=, bp->lsize);
    IMPLY(bp_is_embedded(bp), bp->psize <= BP_EMBED_MAX);

    memset(out, 0, BP_SIZE);
    if (bp_is_embedded(bp)) {
        memcpy(out, bp->embedded, BP_EMBED_HEAD);
        memcpy(out + BP_EMBED_TAIL_OFF, bp->embedded + BP_EMBED_HEAD, BP_EMBED_MAX - BP_EMBED_HEAD);
    } else {
        for (int i = 0; i < BP_NDVAS; i++) {
            uint8_t *d = out + (size_t)i * BP_DVA_SIZE;
            le32_put(d, bp->dva[i].vdev);
            le32_put(d + 4, bp->dva[i].asize_sectors);
            le64_put(d + 8, bp->dva[i].offset);
        }
        le64_put(out + BP_OFF_FILL, bp->fill);
        memcpy(out + BP_OFF_CKSUM_VAL, bp->cksum_val, BP_CKSUM_LEN);
    }
    le32_put(out + BP_OFF_LSIZE, bp->lsize);
    le32_put(out + BP_OFF_PSIZE, bp->psize);
    out[BP_OFF_COMP] = bp->comp;
    out[BP_OFF_CKSUM] = bp->cksum;
    out[BP_OFF_TYPE] = bp->type;
    out[BP_OFF_LEVEL] = bp->level;
    out[BP_OFF_FLAGS] = bp->flags;
    out[BP_OFF_COMP_LEVEL] = bp->comp_level;
    le64_put(out + BP_OFF_BIRTH, bp->birth);
    le64_put(out + BP_OFF_PHYS_BIRTH, bp->phys_birth);
}

/* Invariant 6 for a non-embedded BP. */
static bool
bp_dvas_are_valid(const struct blkptr *bp)
{
    bool seen_unused = false;

    for (int i = 0; i < BP_NDVAS; i++) {
        const struct dva *d = &bp->dva[i];
        if (d->asize_sectors == 0) {
            seen_unused = true;
            continue;
        }
        if (seen_unused)
            return false;
        if (d->offset % SECTOR_SIZE != 0)
            return false;
        if (dva_asize(d) < bp->psize)
            return false;
    }
    return true;
}

/* Invariants 1..6; see the module comment. */
static bool
bp_is_valid(const struct blkptr *bp)
{
    bool hole = bp_is_hole(bp);

    if ((bp->flags & ~BP_FLAGS_KNOWN) != 0)
        return false;
    if (!cksum_is_valid(bp->cksum) && !(hole && bp->cksum == CKSUM_INHERIT))
        return false;
    if (!compress_is_valid(bp->comp) && !(hole && bp->comp == COMPRESS_INHERIT))
        return false;
    if (bp->type >= OT_TYPE_COUNT || bp->level > BP_LEVEL_MAX || bp->psize > bp->lsize)
        return false;
    uint32_t lsize_max =
        (bp->level > 0 && bp->type != OT_OBJSET) ? BP_INDIRECT_MAX : BLOCK_MAX_SIZE;
    if (bp->lsize > lsize_max)
        return false;
    if (bp_is_embedded(bp))
        return bp->psize <= BP_EMBED_MAX;
    return bp_dvas_are_valid(bp);
}

int
bp_decode(const uint8_t in[static BP_SIZE], struct blkptr *bp)
{
    struct blkptr d;

    memset(&d, 0, sizeof(d));
    d.lsize = le32_get(in + BP_OFF_LSIZE);
    d.psize = le32_get(in + BP_OFF_PSIZE);
    d.comp = in[BP_OFF_COMP];
    d.cksum = in[BP_OFF_CKSUM];
    d.type = in[BP_OFF_TYPE];
    d.level = in[BP_OFF_LEVEL];
    d.flags = in[BP_OFF_FLAGS];
    d.comp_level = in[BP_OFF_COMP_LEVEL];
    d.birth = le64_get(in + BP_OFF_BIRTH);
    d.phys_birth = le64_get(in + BP_OFF_PHYS_BIRTH);
    if (d.flags & BP_FLAG_EMBEDDED) {
        memcpy(d.embedded, in, BP_EMBED_HEAD);
        memcpy(d.embedded + BP_EMBED_HEAD, in + BP_EMBED_TAIL_OFF, BP_EMBED_MAX - BP_EMBED_HEAD);
        d.fill = 1; /* an embedded BP is one data block by definition (ondisk.h) */
    } else {
        for (int i = 0; i < BP_NDVAS; i++) {
            const uint8_t *p = in + (size_t)i * BP_DVA_SIZE;
            d.dva[i].vdev = le32_get(p);
            d.dva[i].asize_sectors = le32_get(p + 4);
            d.dva[i].offset = le64_get(p + 8);
        }
        d.fill = le64_get(in + BP_OFF_FILL);
        memcpy(d.cksum_val, in + BP_OFF_CKSUM_VAL, BP_CKSUM_LEN);
    }
    if (!bp_is_valid(&d))
        return ERR(-ECORRUPT);
    *bp = d;
    return 0;
}

bool
bp_equal(const struct blkptr *a, const struct blkptr *b)
{
    if (bp_is_embedded(a) || bp_is_embedded(b)) {
        /* Embedded BPs reference no block: equal when they hold the same payload. */
        return bp_is_embedded(a) && bp_is_embedded(b) && a->birth == b->birth &&
               a->lsize == b->lsize && a->psize == b->psize && a->comp == b->comp &&
               a->type == b->type && a->level == b->level &&
               memcmp(a->embedded, b->embedded, a->psize <= BP_EMBED_MAX ? a->psize : 0) == 0;
    }
    if (bp_is_hole(a) || bp_is_hole(b)) {
        return bp_is_hole(a) && bp_is_hole(b) && a->birth == b->birth && a->lsize == b->lsize &&
               a->type == b->type && a->level == b->level;
    }
    return a->birth == b->birth && a->dva[0].vdev == b->dva[0].vdev &&
           a->dva[0].offset == b->dva[0].offset &&
           a->dva[0].asize_sectors == b->dva[0].asize_sectors;
}

const char *
bp_describe(const struct blkptr *bp, char *buf, size_t buflen)
{
    size_t pos = 0;
    int n;

    if (buflen == 0)
        return buf;
    buf[0] = '\0';
    if (bp_is_embedded(bp)) {
        n = snprintf(buf, buflen, "embedded");
    } else if (bp_is_hole(bp)) {
        n = snprintf(buf, buflen, "hole");
    } else {
        n = 0;
        for (int i = 0; i < BP_NDVAS && bp->dva[i].asize_sectors != 0; i++) {
            int m = snprintf(buf + pos, buflen - pos, "%s%" PRIu32 ":%" PRIx64 ":%" PRIx64,
                             i > 0 ? "," : "", bp->dva[i].vdev, bp->dva[i].offset,
                             dva_asize(&bp->dva[i]));
            if (m < 0 || (size_t)m >= buflen - pos)
                return buf; /* truncated */
            pos += (size_t)m;
        }
    }
    pos += n > 0 ? (size_t)n : 0;
    if (pos >= buflen)
        return buf;
    snprintf(buf + pos, buflen - pos, " L%u T%u %" PRIu32 "/%" PRIu32 " birth=%" PRIu64,
             (unsigned)bp->level, (unsigned)bp->type, bp->lsize, bp->psize, bp->birth);
    return buf;
}
