/* SPDX-License-Identifier: MIT */
/*
 * dnode_phys: encoding and validation of the 512-byte dnode (ondisk.h, "Dnodes").
 */
#include <string.h>

#include "common/endian.h"
#include "common/err.h"
#include "core/cksum.h"
#include "core/compress.h"
#include "core/pool_impl.h"

_Static_assert(DNODE_SIZE == 512, "dnode size is part of the format");
_Static_assert(DNODE_CORE_SIZE + DNODE_MAX_BLKPTR * BP_SIZE + 64 == DNODE_SIZE, "dnode layout");
_Static_assert(sizeof(((struct dnode_attrs *)0)->bonus) == DNODE_BONUS_MAX(1), "bonus room");

void
dnode_phys_encode(const struct dnode_phys *dp, uint8_t out[static DNODE_SIZE])
{
    memset(out, 0, DNODE_SIZE);
    const struct dnode_attrs *a = &dp->a;
    if (a->type == OT_NONE)
        return;
    out[0] = a->type;
    out[1] = dp->nlevels;
    out[2] = a->nblkptr;
    out[3] = a->indblkshift;
    out[4] = a->checksum;
    out[5] = a->compress;
    out[6] = a->comp_level;
    out[7] = a->copies;
    le32_put(out + 8, a->datablksz);
    le16_put(out + 12, a->bonuslen);
    out[14] = a->bonustype;
    le64_put(out + 16, dp->nblocks);
    le64_put(out + 24, dp->used_bytes);
    le64_put(out + 32, a->size);
    le64_put(out + 40, a->gen);
    for (unsigned i = 0; i < a->nblkptr; i++)
        bp_encode(&dp->blkptr[i], out + DNODE_CORE_SIZE + i * BP_SIZE);
    memcpy(out + DNODE_CORE_SIZE + a->nblkptr * BP_SIZE, a->bonus, a->bonuslen);
}

static bool
is_pow2(uint64_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

int
dnode_phys_decode(const uint8_t in[static DNODE_SIZE], struct dnode_phys *dp)
{
    memset(dp, 0, sizeof(*dp));
    struct dnode_attrs *a = &dp->a;
    a->type = in[0];
    if (a->type == OT_NONE)
        return 0;
    dp->nlevels = in[1];
    a->nblkptr = in[2];
    a->indblkshift = in[3];
    a->checksum = in[4];
    a->compress = in[5];
    a->comp_level = in[6];
    a->copies = in[7];
    a->datablksz = le32_get(in + 8);
    a->bonuslen = le16_get(in + 12);
    a->bonustype = in[14];
    dp->nblocks = le64_get(in + 16);
    dp->used_bytes = le64_get(in + 24);
    a->size = le64_get(in + 32);
    a->gen = le64_get(in + 40);
    if (a->type >= OT_TYPE_COUNT || a->nblkptr < 1 || a->nblkptr > DNODE_MAX_BLKPTR ||
        a->indblkshift < INDIRECT_SHIFT_MIN || a->indblkshift > INDIRECT_SHIFT_MAX ||
        dp->nlevels < 1 || dp->nlevels > 20 || !cksum_is_valid(a->checksum) ||
        !compress_is_valid(a->compress) || a->copies < 1 || a->copies > BP_NDVAS ||
        !is_pow2(a->datablksz) || a->datablksz < SECTOR_SIZE || a->datablksz > BLOCK_MAX_SIZE ||
        a->bonuslen > DNODE_BONUS_MAX(a->nblkptr) || a->size > INT64_MAX ||
        dp->nblocks > (UINT64_MAX >> SECTOR_SHIFT) / 2)
        return ERR(-ECORRUPT);
    for (unsigned i = 0; i < a->nblkptr; i++) {
        int rc = bp_decode(in + DNODE_CORE_SIZE + i * BP_SIZE, &dp->blkptr[i]);
        if (rc != 0)
            return rc;
    }
    memcpy(a->bonus, in + DNODE_CORE_SIZE + a->nblkptr * BP_SIZE, a->bonuslen);
    return 0;
}
