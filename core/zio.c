/* SPDX-License-Identifier: MIT */
/*
 * zio: the block pipeline between logical blocks and devices.
 *
 * Write: zero detection -> compression (12.5 % rule) -> embedding (<= BP_EMBED_MAX bytes) ->
 * checksum of the physical bytes -> allocation of `copies` DVAs -> device writes. Read: for each
 * DVA in order, read -> verify the checksum from the parent BP -> decompress; a copy that fails
 * is skipped and, when a later copy verifies, rewritten from it (self-heal).
 *
 * Invariants:
 *   1. A BP's checksum covers exactly psize physical bytes; the allocated tail is zero.
 *   2. A block is never written over a DVA that a committed tree references: new blocks go to
 *      freshly allocated space, and in-place rewrite is limited to blocks born in the syncing txg
 *      (which no durable uberblock can reach).
 *   3. The ARC key (vdev, offset, birth) of a rewritten-in-place block is invalidated before the
 *      write, so a cached copy never outlives its bytes.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "core/blkbuf.h"
#include "core/cksum.h"
#include "core/compress.h"
#include "core/pool_impl.h"

static bool
is_all_zero(const void *data, size_t len)
{
    const uint8_t *b = data;
    /* First byte zero and every byte equal to its successor: one vectorised memcmp pass. */
    if (len == 0)
        return true;
    if (b[0] != 0)
        return false;
    return memcmp(b, b + 1, len - 1) == 0;
}

static uint64_t
roundup_u64(uint64_t x, uint64_t align)
{
    return (x + align - 1) & ~(align - 1);
}

static unsigned
pool_ashift(const struct pool *p, uint32_t vdev)
{
    return p->vdevs[vdev]->ashift;
}

void
arc_key_of(const struct blkptr *bp, struct arc_key *k)
{
    k->vdev = bp->dva[0].vdev;
    k->offset = bp->dva[0].offset;
    k->birth = bp->birth;
}

/*
 * Allocates `copies` DVAs of dsize bytes into bp, on distinct vdevs when possible. On a nearly
 * full pool a ditto copy that finds no space is dropped (fewer copies beat failing the commit).
 * Returns 0, or a negative errno with nothing left allocated.
 */
static int
alloc_copies(struct pool *p, uint64_t txg, size_t dsize, unsigned copies, bool metadata,
             struct blkptr *bp)
{
    uint32_t used[BP_NDVAS];
    unsigned flags = metadata ? ALLOC_USE_SLOP : 0;
    for (unsigned c = 0; c < copies; c++) {
        struct dva dva;
        /* The allocator adds what the chosen vdev's layout needs (RAID-Z parity, padding). */
        int rc = alloc_allocate(p->alloc, txg, dsize, flags, used, c, &dva);
        if (rc == -ENOSPC && c == 0 && !(flags & ALLOC_USE_SLOP)) {
            /* Space was promised at write time (txg_reserve_space); fragmentation or estimate
             * error may still leave normal space short: the slop reserve covers that. */
            rc = alloc_allocate(p->alloc, txg, dsize, flags | ALLOC_USE_SLOP, used, c, &dva);
        }
        if (rc == -ENOSPC && c > 0)
            return 0;
        if (rc != 0) {
            for (unsigned o = 0; o < c; o++) {
                alloc_free_immediate(p->alloc, txg, &bp->dva[o]);
                memset(&bp->dva[o], 0, sizeof(bp->dva[o]));
            }
            return rc;
        }
        bp->dva[c] = dva;
        used[c] = dva.vdev;
        txg_space_allocated(p, txg, dva_asize(&dva));
    }
    return 0;
}

int
zio_write_prepare(struct pool *p, uint64_t txg, const void *data, uint32_t lsize,
                  const struct zio_props *zp, const struct blkptr *old, struct blkptr *out,
                  struct zio_deferred *d)
{
    ASSERT(lsize >= SECTOR_SIZE && lsize <= BLOCK_MAX_SIZE);
    ASSERT(zp->copies >= 1 && zp->copies <= BP_NDVAS);
    memset(out, 0, sizeof(*out));
    memset(d, 0, sizeof(*d));
    d->bp = out;

    if (is_all_zero(data, lsize)) {
        bp_make_hole(out, lsize, zp->type, zp->level, txg);
        return 0;
    }

    /* Compress into a buffer with room for the whole block rounded to the allocation unit. */
    size_t unit = 1u << pool_ashift(p, 0);
    size_t cap = roundup_u64(lsize, unit);
    uint8_t *phys = blkbuf_alloc(cap);
    if (phys == NULL)
        return -ENOMEM;
    ssize_t clen = 0;
    if (zp->compress != COMPRESS_OFF) {
        clen = compress_block(zp->compress, zp->comp_level, data, lsize, phys, lsize - lsize / 8);
        if (clen < 0) {
            blkbuf_free(phys);
            return (int)clen;
        }
    }
    uint32_t psize;
    const uint8_t *src = phys; /* the bytes written: phys, or data itself when stored raw */
    if (clen > 0) {
        psize = (uint32_t)clen;
        out->comp = zp->compress;
        out->comp_level = zp->comp_level;
    } else {
        /* Stored raw: a block that fills whole allocation units is written from the caller's
         * buffer (no copy); only a ragged tail needs the zero-padded copy. */
        if (lsize % unit == 0)
            src = data;
        else
            memcpy(phys, data, lsize);
        psize = lsize;
        out->comp = COMPRESS_OFF;
    }
    out->lsize = lsize;
    out->psize = psize;
    out->type = zp->type;
    out->level = zp->level;
    out->birth = txg;
    out->fill = 1;

    if (clen > 0 && psize <= BP_EMBED_MAX && zp->level == 0) {
        out->flags |= BP_FLAG_EMBEDDED;
        out->cksum = CKSUM_OFF;
        memcpy(out->embedded, phys, psize);
        blkbuf_free(phys);
        return 0;
    }

    uint8_t ck = zp->checksum;
    if (ck == CKSUM_OFF && zp->metadata)
        ck = CKSUM_XXH3; /* metadata is always checksummed */
    out->cksum = ck;
    size_t dsize = roundup_u64(psize, unit);
    if (src == phys) {
        memset(phys + psize, 0, dsize - psize);
    } else {
        blkbuf_free(phys);
        phys = NULL;
    }
    int rc = cksum_compute(ck, src, psize, out->cksum_val);
    if (rc != 0)
        goto fail;
    d->src = src;
    d->owned = phys;
    d->dsize = (uint32_t)dsize;
    d->metadata = zp->metadata;

    /* Rewrite in place: same txg, same shape (invariant 2). */
    if (old != NULL && !bp_is_hole(old) && !bp_is_embedded(old) && old->birth == txg &&
        bp_ndvas(old) == zp->copies) {
        bool same = true;
        for (int c = 0; c < bp_ndvas(old); c++) {
            const struct dva *dv = &old->dva[c];
            same = same && dv->vdev < p->nvdevs &&
                   dva_asize(dv) == vdev_alloc_size(p->vdevs[dv->vdev], dsize);
        }
        if (same) {
            struct arc_key key;
            arc_key_of(old, &key);
            arc_remove(p->arc, &key); /* invariant 3 */
            for (int c = 0; c < bp_ndvas(old); c++)
                out->dva[c] = old->dva[c];
            d->ncopies = (uint8_t)bp_ndvas(old);
            d->reused = true;
            return 0;
        }
    }
    rc = alloc_copies(p, txg, dsize, zp->copies, zp->metadata, out);
    if (rc != 0)
        goto fail;
    d->ncopies = (uint8_t)bp_ndvas(out);
    return 0;
fail:
    blkbuf_free(phys);
    memset(d, 0, sizeof(*d));
    d->bp = out;
    return rc;
}

int
zio_write(struct pool *p, uint64_t txg, const void *data, uint32_t lsize,
          const struct zio_props *zp, const struct blkptr *old, struct blkptr *out, bool *reused)
{
    struct zio_deferred d;
    int rc = zio_write_prepare(p, txg, data, lsize, zp, old, out, &d);
    if (rc == 0)
        rc = zio_write_issue(p, txg, &d, 1, NULL);
    *reused = rc == 0 && d.reused;
    return rc;
}

/* Decompresses one physical copy (verified by vdev_read) into out. */
static int
decode_phys(const struct blkptr *bp, const uint8_t *phys, void *out)
{
    if (bp->comp == COMPRESS_OFF) {
        if (bp->psize != bp->lsize)
            return -ECORRUPT;
        memcpy(out, phys, bp->lsize);
        return 0;
    }
    return decompress_block(bp->comp, phys, bp->psize, out, bp->lsize);
}

int
zio_read(struct pool *p, const struct blkptr *bp, void *out)
{
    if (bp_is_hole(bp)) {
        memset(out, 0, bp->lsize);
        return 0;
    }
    if (bp_is_embedded(bp)) {
        if (bp->comp == COMPRESS_OFF) {
            if (bp->psize != bp->lsize || bp->psize > BP_EMBED_MAX)
                return ERR(-ECORRUPT);
            memcpy(out, bp->embedded, bp->psize);
            return 0;
        }
        return decompress_block(bp->comp, bp->embedded, bp->psize, out, bp->lsize);
    }
    int ndvas = bp_ndvas(bp);
    uint64_t dsize = roundup_u64(bp->psize, 1ull << pool_ashift(p, 0));
    /* A block stored raw in exactly its allocated size is read straight into out and verified
     * there: no bounce buffer, no copy (most random data, written with lz4 on, is stored so). */
    bool direct = bp->comp == COMPRESS_OFF && bp->psize == bp->lsize && dsize == bp->lsize;
    uint8_t *phys = direct ? out : blkbuf_alloc(dsize);
    if (phys == NULL)
        return -ENOMEM;
    int rc = -EIO, bad_mask = 0;
    for (int c = 0; c < ndvas; c++) {
        /* The vdev verifies the checksum, using its own redundancy first (vdev.h). */
        rc = vdev_read(p, &bp->dva[c], bp, phys, dsize);
        if (rc == 0 && !direct)
            rc = decode_phys(bp, phys, out);
        if (rc == 0)
            break;
        bad_mask |= 1 << c;
    }
    if (rc == 0 && bad_mask != 0 && !p->readonly) {
        /* Self-heal across ditto copies: the good physical bytes are in phys. */
        for (int c = 0; c < ndvas; c++) {
            if ((bad_mask & (1 << c)) == 0 || bp->dva[c].vdev >= p->nvdevs ||
                dva_asize(&bp->dva[c]) != vdev_alloc_size(p->vdevs[bp->dva[c].vdev], dsize))
                continue;
            char desc[128];
            if (vdev_write(p, &bp->dva[c], 0, phys, dsize) == 0)
                log_warn("repaired damaged copy %d of block %s", c,
                         bp_describe(bp, desc, sizeof(desc)));
        }
    }
    if (!direct)
        blkbuf_free(phys);
    return rc == -ECORRUPT ? -ECKSUM : rc;
}

/* Set by zio_cache_only(): reads that would go to a device fail with -EWOULDBLOCK instead. */
static _Thread_local bool cache_only;

bool
zio_cache_only(bool on)
{
    bool old = cache_only;
    cache_only = on;
    return old;
}

int
zio_read_ref(struct pool *p, const struct blkptr *bp, struct blockref *ref)
{
    memset(ref, 0, sizeof(*ref));
    ref->len = bp->lsize;
    struct arc_key key;
    bool cacheable = !bp_is_hole(bp) && !bp_is_embedded(bp);
    if (cacheable) {
        arc_key_of(bp, &key);
        ref->ab = arc_get(p->arc, &key);
        if (ref->ab != NULL) {
            if (arc_buf_len(ref->ab) == bp->lsize) {
                ref->data = arc_buf_data(ref->ab);
                return 0;
            }
            arc_buf_unref(ref->ab); /* a stale entry of another size: never trust it */
            ref->ab = NULL;
            arc_remove(p->arc, &key);
        }
        if (cache_only)
            return -EWOULDBLOCK;
    }
    uint8_t *data = blkbuf_alloc(bp->lsize);
    if (data == NULL)
        return -ENOMEM;
    int rc = zio_read(p, bp, data);
    if (rc != 0) {
        blkbuf_free(data);
        return rc;
    }
    if (!cacheable) {
        /* Holes and embedded blocks cost nothing to rebuild; keep them out of the cache. */
        ref->owned = data;
        ref->data = data;
        return 0;
    }
    ref->ab = arc_put(p->arc, &key, data, bp->lsize);
    if (ref->ab == NULL)
        return -ENOMEM;
    ref->data = arc_buf_data(ref->ab);
    return 0;
}

void
blockref_release(struct blockref *ref)
{
    arc_buf_unref(ref->ab);
    blkbuf_free(ref->owned);
    memset(ref, 0, sizeof(*ref));
}

void
zio_free(struct pool *p, uint64_t txg, const struct blkptr *bp)
{
    if (bp_is_hole(bp) || bp_is_embedded(bp))
        return;
    struct arc_key key;
    arc_key_of(bp, &key);
    arc_remove(p->arc, &key);
    for (int c = 0; c < bp_ndvas(bp); c++) {
        if (bp->birth == txg)
            alloc_free_immediate(p->alloc, txg, &bp->dva[c]);
        else
            alloc_free_deferred(p->alloc, txg, &bp->dva[c]);
    }
}
