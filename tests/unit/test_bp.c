/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for core/bp: encode/decode round trips of random valid BPs of every kind, the exact
 * disk layout, one table-driven rejection case per validation rule (plus boundary acceptances),
 * garbage decoding, and the helpers (ndvas, asize, equal, describe, make_hole).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "common/endian.h"
#include "common/err.h"
#include "core/bp.h"
#include "core/cksum.h"
#include "core/compress.h"

static uint64_t
xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* Field-by-field comparison (struct padding is not compared). */
static void
assert_bp_same(const struct blkptr *a, const struct blkptr *b, const char *what)
{
    for (int i = 0; i < BP_NDVAS; i++) {
        cr_assert_eq(a->dva[i].vdev, b->dva[i].vdev, "%s: dva[%d].vdev", what, i);
        cr_assert_eq(a->dva[i].asize_sectors, b->dva[i].asize_sectors, "%s: dva[%d].asize", what,
                     i);
        cr_assert_eq(a->dva[i].offset, b->dva[i].offset, "%s: dva[%d].offset", what, i);
    }
    cr_assert_eq(a->lsize, b->lsize, "%s: lsize", what);
    cr_assert_eq(a->psize, b->psize, "%s: psize", what);
    cr_assert_eq(a->comp, b->comp, "%s: comp", what);
    cr_assert_eq(a->cksum, b->cksum, "%s: cksum", what);
    cr_assert_eq(a->type, b->type, "%s: type", what);
    cr_assert_eq(a->level, b->level, "%s: level", what);
    cr_assert_eq(a->flags, b->flags, "%s: flags", what);
    cr_assert_eq(a->comp_level, b->comp_level, "%s: comp_level", what);
    cr_assert_eq(a->birth, b->birth, "%s: birth", what);
    cr_assert_eq(a->phys_birth, b->phys_birth, "%s: phys_birth", what);
    cr_assert_eq(a->fill, b->fill, "%s: fill", what);
    cr_assert_arr_eq(a->cksum_val, b->cksum_val, BP_CKSUM_LEN, "%s: cksum_val", what);
    cr_assert_arr_eq(a->embedded, b->embedded, BP_EMBED_MAX, "%s: embedded", what);
}

static uint32_t
lsize_max(uint8_t level, uint8_t type)
{
    return (level > 0 && type != OT_OBJSET) ? 1u << INDIRECT_SHIFT_MAX : BLOCK_MAX_SIZE;
}

/* A random BP that bp_decode must accept, in the form bp_decode would produce. */
static void
random_valid_bp(uint64_t *s, struct blkptr *bp)
{
    memset(bp, 0, sizeof(*bp));
    uint8_t type = (uint8_t)(xorshift(s) % OT_TYPE_COUNT);
    uint8_t level = (uint8_t)(xorshift(s) % 11);
    uint32_t max = lsize_max(level, type);

    switch (xorshift(s) % 3) {
    case 0: /* hole */
        bp_make_hole(bp, (uint32_t)(xorshift(s) % (max + 1)), type, level, xorshift(s));
        return;
    case 1: /* embedded */
        bp->flags = BP_FLAG_EMBEDDED;
        bp->fill = 1; /* implied by the format */
        bp->psize = (uint32_t)(xorshift(s) % (BP_EMBED_MAX + 1));
        bp->lsize = bp->psize + (uint32_t)(xorshift(s) % (max - bp->psize + 1));
        for (size_t i = 0; i < BP_EMBED_MAX; i++)
            bp->embedded[i] = (uint8_t)xorshift(s);
        break;
    default: { /* normal, 1..3 DVAs */
        bp->lsize = (uint32_t)(1 + xorshift(s) % max);
        bp->psize = (uint32_t)(1 + xorshift(s) % bp->lsize);
        int ndvas = 1 + (int)(xorshift(s) % BP_NDVAS);
        uint32_t min_sectors = (bp->psize + SECTOR_SIZE - 1) / SECTOR_SIZE;
        for (int i = 0; i < ndvas; i++) {
            bp->dva[i].vdev = (uint32_t)xorshift(s);
            bp->dva[i].asize_sectors = min_sectors + (uint32_t)(xorshift(s) % 64);
            bp->dva[i].offset = xorshift(s) & ~(uint64_t)(SECTOR_SIZE - 1);
        }
        bp->fill = xorshift(s);
        for (size_t i = 0; i < BP_CKSUM_LEN; i++)
            bp->cksum_val[i] = (uint8_t)xorshift(s);
        break;
    }
    }
    bp->comp = (uint8_t)(COMPRESS_OFF + xorshift(s) % (COMPRESS_ALG_COUNT - COMPRESS_OFF));
    bp->cksum = (uint8_t)(CKSUM_OFF + xorshift(s) % (CKSUM_ALG_COUNT - CKSUM_OFF));
    bp->type = type;
    bp->level = level;
    bp->comp_level = (uint8_t)xorshift(s);
    bp->birth = xorshift(s);
    bp->phys_birth = xorshift(s) % 4 == 0 ? 0 : xorshift(s);
}

Test(bp, random_valid_bps_round_trip)
{
    uint64_t seed = 0x0123456789abcdefULL, s = seed;
    cr_log_info("seed %llu", (unsigned long long)seed);
    int kinds[3] = { 0 };
    for (int iter = 0; iter < 20000; iter++) {
        struct blkptr bp, back;
        uint8_t enc[BP_SIZE], enc2[BP_SIZE];
        char what[64];
        snprintf(what, sizeof(what), "seed %llu iter %d", (unsigned long long)seed, iter);

        random_valid_bp(&s, &bp);
        kinds[bp_is_embedded(&bp) ? 1 : bp_is_hole(&bp) ? 0 : 2]++;
        bp_encode(&bp, enc);
        cr_assert_eq(bp_decode(enc, &back), 0, "%s", what);
        assert_bp_same(&bp, &back, what);
        bp_encode(&back, enc2);
        cr_assert_arr_eq(enc, enc2, BP_SIZE, "%s", what);
    }
    for (int k = 0; k < 3; k++)
        cr_assert_gt(kinds[k], 1000, "every kind generated");
}

Test(bp, encoding_follows_the_ondisk_table)
{
    struct blkptr bp;
    memset(&bp, 0, sizeof(bp));
    bp.dva[0] = (struct dva){ .vdev = 0x01020304, .asize_sectors = 0x05060708, .offset = 0x200 };
    bp.dva[1] = (struct dva){ .vdev = 7, .asize_sectors = 9, .offset = 0x1122334455667600ULL };
    bp.lsize = 0x20000;
    bp.psize = 0x1200;
    bp.comp = COMPRESS_ZSTD;
    bp.cksum = CKSUM_SHA256;
    bp.type = OT_DNODE;
    bp.level = 2;
    bp.comp_level = 19;
    bp.birth = 0xa1a2a3a4a5a6a7a8ULL;
    bp.phys_birth = 77;
    bp.fill = 0xf0f1f2f3f4f5f6f7ULL;
    for (int i = 0; i < 32; i++)
        bp.cksum_val[i] = (uint8_t)(0x80 + i);

    uint8_t e[BP_SIZE];
    bp_encode(&bp, e);
    cr_assert_eq(le32_get(e + 0), 0x01020304u);
    cr_assert_eq(le32_get(e + 4), 0x05060708u);
    cr_assert_eq(le64_get(e + 8), 0x200u);
    cr_assert_eq(le32_get(e + 16), 7u);
    cr_assert_eq(le32_get(e + 20), 9u);
    cr_assert_eq(le64_get(e + 24), 0x1122334455667600ULL);
    for (int i = 32; i < 48; i++)
        cr_assert_eq(e[i], 0, "unused dva[2] byte %d", i);
    cr_assert_eq(le32_get(e + 48), 0x20000u);
    cr_assert_eq(le32_get(e + 52), 0x1200u);
    cr_assert_eq(e[56], COMPRESS_ZSTD);
    cr_assert_eq(e[57], CKSUM_SHA256);
    cr_assert_eq(e[58], OT_DNODE);
    cr_assert_eq(e[59], 2);
    cr_assert_eq(e[60], 0);
    cr_assert_eq(e[61], 19);
    cr_assert_eq(le16_get(e + 62), 0, "reserved");
    cr_assert_eq(le64_get(e + 64), 0xa1a2a3a4a5a6a7a8ULL);
    cr_assert_eq(le64_get(e + 72), 77u);
    cr_assert_eq(le64_get(e + 80), 0xf0f1f2f3f4f5f6f7ULL);
    cr_assert_eq(le64_get(e + 88), 0, "reserved");
    cr_assert_arr_eq(e + 96, bp.cksum_val, 32);
}

Test(bp, embedded_payload_is_split_around_the_common_fields)
{
    struct blkptr bp;
    memset(&bp, 0, sizeof(bp));
    bp.flags = BP_FLAG_EMBEDDED;
    bp.fill = 1;
    bp.lsize = 512;
    bp.psize = BP_EMBED_MAX;
    bp.comp = COMPRESS_LZ4;
    bp.cksum = CKSUM_XXH3;
    bp.type = OT_PLAIN;
    bp.birth = 42;
    for (size_t i = 0; i < BP_EMBED_MAX; i++)
        bp.embedded[i] = (uint8_t)(i + 1);

    uint8_t e[BP_SIZE];
    bp_encode(&bp, e);
    for (size_t i = 0; i < 48; i++)
        cr_assert_eq(e[i], i + 1, "payload byte %zu at disk %zu", i, i);
    for (size_t i = 48; i < BP_EMBED_MAX; i++)
        cr_assert_eq(e[80 + i - 48], i + 1, "payload byte %zu at disk %zu", i, 80 + i - 48);
    cr_assert_eq(le32_get(e + 48), 512u);
    cr_assert_eq(le32_get(e + 52), BP_EMBED_MAX);
    cr_assert_eq(e[60], BP_FLAG_EMBEDDED);
    cr_assert_eq(le64_get(e + 64), 42u);

    struct blkptr back;
    cr_assert_eq(bp_decode(e, &back), 0);
    assert_bp_same(&bp, &back, "embedded");
    cr_assert_eq(bp_ndvas(&back), 0);
    cr_assert_eq(bp_asize(&back), 0);
    cr_assert_not(bp_is_hole(&back));
}

Test(bp, all_zero_bytes_decode_to_a_hole_born_at_txg_0)
{
    uint8_t zero[BP_SIZE] = { 0 };
    struct blkptr bp;
    memset(&bp, 0xff, sizeof(bp));
    cr_assert_eq(bp_decode(zero, &bp), 0);
    cr_assert(bp_is_hole(&bp));
    cr_assert_not(bp_is_embedded(&bp));
    cr_assert_eq(bp.birth, 0);
    cr_assert_eq(bp.lsize, 0);
    cr_assert_eq(bp_ndvas(&bp), 0);
    cr_assert_eq(bp_asize(&bp), 0);
    uint8_t again[BP_SIZE];
    bp_encode(&bp, again);
    cr_assert_arr_eq(again, zero, BP_SIZE);
}

Test(bp, make_hole_keeps_size_type_level_and_birth)
{
    struct blkptr bp;
    memset(&bp, 0xab, sizeof(bp));
    bp_make_hole(&bp, 131072, OT_PLAIN, 1, 99);
    cr_assert(bp_is_hole(&bp));
    cr_assert_eq(bp.lsize, 131072);
    cr_assert_eq(bp.psize, 0);
    cr_assert_eq(bp.type, OT_PLAIN);
    cr_assert_eq(bp.level, 1);
    cr_assert_eq(bp.birth, 99);
    cr_assert_eq(bp.phys_birth, 0);
    cr_assert_eq(bp.fill, 0);
    cr_assert_eq(bp.flags, 0);
    cr_assert_eq(bp.comp, COMPRESS_OFF);
    cr_assert_eq(bp.cksum, CKSUM_OFF);
    for (int i = 0; i < BP_NDVAS; i++)
        cr_assert_eq(bp.dva[i].asize_sectors, 0);

    uint8_t e[BP_SIZE];
    struct blkptr back;
    bp_encode(&bp, e);
    cr_assert_eq(bp_decode(e, &back), 0);
    assert_bp_same(&bp, &back, "hole");
}

/* ---- table-driven validation ------------------------------------------------------------- */

enum base { BASE_NORMAL, BASE_EMBEDDED, BASE_HOLE };

struct poke {
    uint8_t off;
    uint8_t width; /* 1, 4 or 8; 0 = unused entry */
    uint64_t value;
};

struct vcase {
    const char *rule;
    enum base base;
    struct poke pokes[3];
};

/*
 * Normal base: lsize 4096, psize 2048, lz4, xxh3, OT_PLAIN, level 0, birth 10,
 * dva[0] = 1:0x10000:8 sectors, dva[1] = 2:0x20000:8 sectors, dva[2] unused.
 */
static void
encode_base(enum base base, uint8_t e[BP_SIZE])
{
    struct blkptr bp;
    memset(&bp, 0, sizeof(bp));
    switch (base) {
    case BASE_NORMAL:
        bp.dva[0] = (struct dva){ .vdev = 1, .asize_sectors = 8, .offset = 0x10000 };
        bp.dva[1] = (struct dva){ .vdev = 2, .asize_sectors = 8, .offset = 0x20000 };
        bp.lsize = 4096;
        bp.psize = 2048;
        bp.fill = 1;
        memset(bp.cksum_val, 0x3c, sizeof(bp.cksum_val));
        break;
    case BASE_EMBEDDED:
        bp.flags = BP_FLAG_EMBEDDED;
        bp.fill = 1;
        bp.lsize = 4096;
        bp.psize = 50;
        memset(bp.embedded, 0x77, sizeof(bp.embedded));
        break;
    case BASE_HOLE:
        bp_make_hole(&bp, 4096, OT_PLAIN, 0, 10);
        break;
    }
    if (base != BASE_HOLE) {
        bp.comp = COMPRESS_LZ4;
        bp.cksum = CKSUM_XXH3;
        bp.type = OT_PLAIN;
        bp.birth = 10;
    }
    bp_encode(&bp, e);
    struct blkptr check;
    cr_assert_eq(bp_decode(e, &check), 0, "base %d must be valid", base);
}

static void
apply_pokes(uint8_t e[BP_SIZE], const struct poke *pokes)
{
    for (int i = 0; i < 3 && pokes[i].width != 0; i++) {
        switch (pokes[i].width) {
        case 1:
            e[pokes[i].off] = (uint8_t)pokes[i].value;
            break;
        case 4:
            le32_put(e + pokes[i].off, (uint32_t)pokes[i].value);
            break;
        case 8:
            le64_put(e + pokes[i].off, pokes[i].value);
            break;
        default:
            cr_assert_fail("bad poke width");
        }
    }
}

#define OFF_DVA(i)     ((uint8_t)(16 * (i)))
#define OFF_DVA_ASZ(i) ((uint8_t)(16 * (i) + 4))
#define OFF_DVA_OFF(i) ((uint8_t)(16 * (i) + 8))
#define OFF_LSIZE      48
#define OFF_PSIZE      52
#define OFF_COMP       56
#define OFF_CKSUM      57
#define OFF_TYPE       58
#define OFF_LEVEL      59
#define OFF_FLAGS      60

static const struct vcase rejects[] = {
    { "unknown flag: encrypted", BASE_NORMAL, { { OFF_FLAGS, 1, BP_FLAG_ENCRYPTED } } },
    { "unknown flag: dedup", BASE_NORMAL, { { OFF_FLAGS, 1, BP_FLAG_DEDUP } } },
    { "unknown flag: gang", BASE_NORMAL, { { OFF_FLAGS, 1, BP_FLAG_GANG } } },
    { "unknown flag: high bit", BASE_NORMAL, { { OFF_FLAGS, 1, 0x80 } } },
    { "unknown flag next to embedded", BASE_EMBEDDED, { { OFF_FLAGS, 1, 0x11 } } },
    { "unknown flag on a hole", BASE_HOLE, { { OFF_FLAGS, 1, 0x40 } } },
    { "cksum inherit in a block", BASE_NORMAL, { { OFF_CKSUM, 1, CKSUM_INHERIT } } },
    { "cksum past the table", BASE_NORMAL, { { OFF_CKSUM, 1, CKSUM_ALG_COUNT } } },
    { "cksum 255", BASE_NORMAL, { { OFF_CKSUM, 1, 255 } } },
    { "cksum inherit when embedded", BASE_EMBEDDED, { { OFF_CKSUM, 1, CKSUM_INHERIT } } },
    { "cksum past the table in a hole", BASE_HOLE, { { OFF_CKSUM, 1, CKSUM_ALG_COUNT } } },
    { "comp inherit in a block", BASE_NORMAL, { { OFF_COMP, 1, COMPRESS_INHERIT } } },
    { "comp past the table", BASE_NORMAL, { { OFF_COMP, 1, COMPRESS_ALG_COUNT } } },
    { "comp inherit when embedded", BASE_EMBEDDED, { { OFF_COMP, 1, COMPRESS_INHERIT } } },
    { "comp past the table in a hole", BASE_HOLE, { { OFF_COMP, 1, 200 } } },
    { "type past the table", BASE_NORMAL, { { OFF_TYPE, 1, OT_TYPE_COUNT } } },
    { "type 255 in a hole", BASE_HOLE, { { OFF_TYPE, 1, 255 } } },
    { "type past the table when embedded", BASE_EMBEDDED, { { OFF_TYPE, 1, OT_TYPE_COUNT } } },
    { "psize > lsize", BASE_NORMAL, { { OFF_LSIZE, 4, 2047 } } },
    { "psize > lsize when embedded", BASE_EMBEDDED, { { OFF_LSIZE, 4, 49 } } },
    { "psize > lsize in a hole", BASE_HOLE, { { OFF_PSIZE, 4, 4097 } } },
    { "level 0 lsize over BLOCK_MAX_SIZE", BASE_NORMAL, { { OFF_LSIZE, 4, BLOCK_MAX_SIZE + 1 } } },
    { "level 0 lsize 4 GiB - 1", BASE_HOLE, { { OFF_LSIZE, 4, UINT32_MAX } } },
    { "indirect lsize over 128 KiB",
      BASE_NORMAL,
      { { OFF_LEVEL, 1, 1 }, { OFF_LSIZE, 4, (1u << INDIRECT_SHIFT_MAX) + 1 } } },
    { "objset indirect lsize over BLOCK_MAX_SIZE",
      BASE_NORMAL,
      { { OFF_LEVEL, 1, 1 }, { OFF_TYPE, 1, OT_OBJSET }, { OFF_LSIZE, 4, BLOCK_MAX_SIZE + 1 } } },
    { "level 11", BASE_NORMAL, { { OFF_LEVEL, 1, 11 } } },
    { "level 255 in a hole", BASE_HOLE, { { OFF_LEVEL, 1, 255 } } },
    { "embedded psize over BP_EMBED_MAX", BASE_EMBEDDED, { { OFF_PSIZE, 4, BP_EMBED_MAX + 1 } } },
    { "dva[0] offset not sector-aligned", BASE_NORMAL, { { OFF_DVA_OFF(0), 8, 0x10001 } } },
    { "dva[1] offset not sector-aligned", BASE_NORMAL, { { OFF_DVA_OFF(1), 8, 0x20100 } } },
    { "dva[0] asize below psize", BASE_NORMAL, { { OFF_DVA_ASZ(0), 4, 3 } } },
    { "dva[1] asize below psize", BASE_NORMAL, { { OFF_DVA_ASZ(1), 4, 1 } } },
    { "used dva after an unused one",
      BASE_NORMAL,
      { { OFF_DVA_ASZ(1), 4, 0 }, { OFF_DVA_ASZ(2), 4, 8 } } },
    { "hole with a used dva[1]", BASE_NORMAL, { { OFF_DVA_ASZ(0), 4, 0 } } },
    { "hole with a used dva[2]", BASE_HOLE, { { OFF_DVA_ASZ(2), 4, 1 } } },
    { "dva[2] unaligned", BASE_NORMAL, { { OFF_DVA_ASZ(2), 4, 8 }, { OFF_DVA_OFF(2), 8, 1 } } },
};

static const struct vcase accepts[] = {
    { "psize == lsize == asize", BASE_NORMAL, { { OFF_PSIZE, 4, 4096 } } },
    { "level 0 lsize == BLOCK_MAX_SIZE", BASE_NORMAL, { { OFF_LSIZE, 4, BLOCK_MAX_SIZE } } },
    { "indirect lsize == 128 KiB",
      BASE_NORMAL,
      { { OFF_LEVEL, 1, 1 }, { OFF_LSIZE, 4, 1u << INDIRECT_SHIFT_MAX } } },
    { "objset at level 1 may exceed 128 KiB",
      BASE_NORMAL,
      { { OFF_LEVEL, 1, 1 }, { OFF_TYPE, 1, OT_OBJSET }, { OFF_LSIZE, 4, BLOCK_MAX_SIZE } } },
    { "level 10", BASE_NORMAL, { { OFF_LEVEL, 1, 10 } } },
    { "last object type", BASE_NORMAL, { { OFF_TYPE, 1, OT_TYPE_COUNT - 1 } } },
    { "three dvas", BASE_NORMAL, { { OFF_DVA_ASZ(2), 4, 4 }, { OFF_DVA_OFF(2), 8, 0x400 } } },
    { "one dva", BASE_NORMAL, { { OFF_DVA_ASZ(1), 4, 0 } } },
    { "unused dva may carry stale vdev/offset",
      BASE_NORMAL,
      { { OFF_DVA(2), 4, 9 }, { OFF_DVA_OFF(2), 8, 3 } } },
    { "last cksum and comp",
      BASE_NORMAL,
      { { OFF_CKSUM, 1, CKSUM_ALG_COUNT - 1 }, { OFF_COMP, 1, COMPRESS_ALG_COUNT - 1 } } },
    { "cksum off", BASE_NORMAL, { { OFF_CKSUM, 1, CKSUM_OFF } } },
    { "embedded psize == BP_EMBED_MAX", BASE_EMBEDDED, { { OFF_PSIZE, 4, BP_EMBED_MAX } } },
    { "embedded payload looks like a bad dva",
      BASE_EMBEDDED,
      { { OFF_DVA_OFF(0), 8, 1 }, { OFF_DVA_ASZ(1), 4, 0 }, { OFF_DVA_ASZ(2), 4, 1 } } },
    { "hole with inherit cksum and comp",
      BASE_HOLE,
      { { OFF_CKSUM, 1, CKSUM_INHERIT }, { OFF_COMP, 1, COMPRESS_INHERIT } } },
    { "hole with a real cksum", BASE_HOLE, { { OFF_CKSUM, 1, CKSUM_SHA256 } } },
    { "hole with stale dva[0] offset", BASE_HOLE, { { OFF_DVA_OFF(0), 8, 7 } } },
    { "indirect hole of 128 KiB",
      BASE_HOLE,
      { { OFF_LEVEL, 1, 3 }, { OFF_LSIZE, 4, 1u << INDIRECT_SHIFT_MAX } } },
};

Test(bp, decode_rejects_each_invalid_field)
{
    for (size_t i = 0; i < sizeof(rejects) / sizeof(rejects[0]); i++) {
        uint8_t e[BP_SIZE];
        struct blkptr bp, untouched;
        encode_base(rejects[i].base, e);
        apply_pokes(e, rejects[i].pokes);
        memset(&bp, 0x5a, sizeof(bp));
        memset(&untouched, 0x5a, sizeof(untouched));
        cr_assert_eq(bp_decode(e, &bp), -ECORRUPT, "should reject: %s", rejects[i].rule);
        cr_assert_eq(memcmp(&bp, &untouched, sizeof(bp)), 0, "output untouched: %s",
                     rejects[i].rule);
    }
}

Test(bp, decode_accepts_boundary_values)
{
    for (size_t i = 0; i < sizeof(accepts) / sizeof(accepts[0]); i++) {
        uint8_t e[BP_SIZE], again[BP_SIZE];
        struct blkptr bp, bp2;
        encode_base(accepts[i].base, e);
        apply_pokes(e, accepts[i].pokes);
        cr_assert_eq(bp_decode(e, &bp), 0, "should accept: %s", accepts[i].rule);
        bp_encode(&bp, again);
        cr_assert_eq(bp_decode(again, &bp2), 0, "re-encoded: %s", accepts[i].rule);
        assert_bp_same(&bp, &bp2, accepts[i].rule);
    }
}

/* Decodes in; when accepted, checks that re-encoding is stable. Returns bp_decode's result. */
static int
decode_and_check(const uint8_t in[BP_SIZE], const char *what)
{
    struct blkptr bp, bp2;
    uint8_t e1[BP_SIZE], e2[BP_SIZE];
    int rc = bp_decode(in, &bp);
    cr_assert(rc == 0 || rc == -ECORRUPT, "%s: rc %d", what, rc);
    if (rc != 0)
        return rc;
    bp_encode(&bp, e1);
    cr_assert_eq(bp_decode(e1, &bp2), 0, "%s: re-encoding must decode", what);
    bp_encode(&bp2, e2);
    cr_assert_arr_eq(e1, e2, BP_SIZE, "%s", what);
    assert_bp_same(&bp, &bp2, what);
    return 0;
}

Test(bp, decode_of_garbage_never_crashes)
{
    uint64_t seed = 0xfeedfacecafebeefULL, s = seed;
    cr_log_info("seed %llu", (unsigned long long)seed);
    int accepted = 0;
    for (int iter = 0; iter < 100000; iter++) {
        uint8_t in[BP_SIZE];
        for (size_t i = 0; i < BP_SIZE; i++)
            in[i] = (uint8_t)xorshift(&s);
        if (iter & 1) {
            /* Nudge each field towards validity with high probability, so that every check is
             * the deciding one in some iterations. */
            if (xorshift(&s) % 8)
                in[OFF_FLAGS] &= BP_FLAGS_KNOWN;
            if (xorshift(&s) % 8)
                in[OFF_COMP] = (uint8_t)(xorshift(&s) % COMPRESS_ALG_COUNT);
            if (xorshift(&s) % 8)
                in[OFF_CKSUM] = (uint8_t)(xorshift(&s) % CKSUM_ALG_COUNT);
            if (xorshift(&s) % 8)
                in[OFF_TYPE] = (uint8_t)(xorshift(&s) % OT_TYPE_COUNT);
            if (xorshift(&s) % 8)
                in[OFF_LEVEL] = (uint8_t)(xorshift(&s) % 12);
            if (xorshift(&s) % 8)
                le32_put(in + OFF_LSIZE, (uint32_t)(xorshift(&s) % (BLOCK_MAX_SIZE + 2)));
            if (xorshift(&s) % 8)
                le32_put(in + OFF_PSIZE, (uint32_t)(xorshift(&s) % 256));
            for (int d = 0; d < BP_NDVAS; d++) {
                if (xorshift(&s) % 8)
                    le32_put(in + OFF_DVA_ASZ(d), (uint32_t)(xorshift(&s) % 3));
                if (xorshift(&s) % 8)
                    in[OFF_DVA_OFF(d)] = 0;
                if (xorshift(&s) % 8)
                    in[OFF_DVA_OFF(d) + 1] &= 0xfe;
            }
        }
        char what[64];
        snprintf(what, sizeof(what), "seed %llu iter %d", (unsigned long long)seed, iter);
        if (decode_and_check(in, what) == 0)
            accepted++;
    }
    cr_log_info("accepted %d of 100000", accepted);
    cr_assert_gt(accepted, 100, "the nudged half must produce valid BPs");
}

/* ---- helpers ------------------------------------------------------------------------------- */

static void
decode_base(enum base base, struct blkptr *bp)
{
    uint8_t e[BP_SIZE];
    encode_base(base, e);
    cr_assert_eq(bp_decode(e, bp), 0);
}

Test(bp, ndvas_and_asize_count_used_dvas_only)
{
    struct blkptr bp;
    decode_base(BASE_NORMAL, &bp);
    cr_assert_eq(bp_ndvas(&bp), 2);
    cr_assert_eq(bp_asize(&bp), 2 * 8 * 512);
    bp.dva[2] = (struct dva){ .vdev = 3, .asize_sectors = 16, .offset = 0 };
    cr_assert_eq(bp_ndvas(&bp), 3);
    cr_assert_eq(bp_asize(&bp), (8 + 8 + 16) * 512);

    /* asize is 32-bit sectors: large values must not overflow. */
    bp.dva[0].asize_sectors = UINT32_MAX;
    cr_assert_eq(bp_asize(&bp), ((uint64_t)UINT32_MAX + 24) * 512);

    decode_base(BASE_HOLE, &bp);
    cr_assert_eq(bp_ndvas(&bp), 0);
    cr_assert_eq(bp_asize(&bp), 0);

    decode_base(BASE_EMBEDDED, &bp);
    bp.dva[0].asize_sectors = 8; /* in-memory dva is meaningless for embedded BPs */
    cr_assert_eq(bp_ndvas(&bp), 0);
    cr_assert_eq(bp_asize(&bp), 0);
}

Test(bp, equal_compares_dva0_and_birth)
{
    struct blkptr a, b;
    decode_base(BASE_NORMAL, &a);
    b = a;
    cr_assert(bp_equal(&a, &b));
    b.cksum_val[0] ^= 1; /* same block, same birth */
    b.dva[1].offset += 512;
    cr_assert(bp_equal(&a, &b));
    b = a;
    b.birth++;
    cr_assert_not(bp_equal(&a, &b));
    b = a;
    b.dva[0].offset += 512;
    cr_assert_not(bp_equal(&a, &b));
    b = a;
    b.dva[0].vdev++;
    cr_assert_not(bp_equal(&a, &b));

    struct blkptr h1, h2;
    bp_make_hole(&h1, 4096, OT_PLAIN, 0, 5);
    bp_make_hole(&h2, 4096, OT_PLAIN, 0, 5);
    cr_assert(bp_equal(&h1, &h2));
    cr_assert_not(bp_equal(&h1, &a));
    cr_assert_not(bp_equal(&a, &h1));
    bp_make_hole(&h2, 4096, OT_PLAIN, 0, 6);
    cr_assert_not(bp_equal(&h1, &h2), "holes of different births");

    struct blkptr e1, e2;
    decode_base(BASE_EMBEDDED, &e1);
    e2 = e1;
    cr_assert(bp_equal(&e1, &e2));
    e2.embedded[e2.psize] ^= 1; /* past the payload: ignored */
    cr_assert(bp_equal(&e1, &e2));
    e2.embedded[0] ^= 1;
    cr_assert_not(bp_equal(&e1, &e2));
    cr_assert_not(bp_equal(&e1, &h1));
    cr_assert_not(bp_equal(&a, &e1));
}

Test(bp, describe_formats_dvas_and_fields)
{
    struct blkptr bp;
    char buf[160];
    decode_base(BASE_NORMAL, &bp);
    cr_assert_str_eq(bp_describe(&bp, buf, sizeof(buf)),
                     "1:10000:1000,2:20000:1000 L0 T7 4096/2048 birth=10");
    decode_base(BASE_HOLE, &bp);
    cr_assert_str_eq(bp_describe(&bp, buf, sizeof(buf)), "hole L0 T7 4096/0 birth=10");
    decode_base(BASE_EMBEDDED, &bp);
    cr_assert_str_eq(bp_describe(&bp, buf, sizeof(buf)), "embedded L0 T7 4096/50 birth=10");

    /* Small buffers truncate and stay NUL-terminated. */
    decode_base(BASE_NORMAL, &bp);
    for (size_t len = 1; len < 60; len++) {
        char small[64];
        memset(small, 'x', sizeof(small));
        cr_assert_eq(bp_describe(&bp, small, len), small);
        cr_assert_lt(strlen(small), len);
        cr_assert_eq(small[len], 'x', "no write past buflen %zu", len);
    }
}
