/* SPDX-License-Identifier: MIT */
/*
 * vdev_raidz: RAID-Z1/2/3 top-levels (pool-format.md §8, docs/FORMAT.md "RAID-Z").
 *
 * Each block is its own stripe, so there is no read-modify-write and no write hole. For a block
 * of s data sectors at top-level sector b on a vdev of `width` children with nparity parity:
 *   - the first column is child b % width at child sector b / width; the next columns take the
 *     next children, wrapping to the following sector row past the last child;
 *   - q = s / (width - nparity) full rows, r = s % (width - nparity) sectors left over; the first
 *     bc = r ? r + nparity : 0 columns are "big" (q + 1 sectors), the others have q; when q == 0
 *     only the bc big columns exist;
 *   - columns 0..nparity-1 hold P, Q, R (raidz_math.h), the rest hold the data column by column:
 *     consecutive data sectors go down one child, so each child gets one contiguous I/O;
 *   - the allocation is padded to a multiple of nparity + 1 sectors (vdev_raidz_alloc_size), so a
 *     freed stripe can always hold a minimal one. Padding sectors are never read or written.
 *
 * Reads fetch only the data columns. When a column cannot be read, parity rebuilds it. When the
 * data does not verify and no device reported an error, combinatorial reconstruction assumes 1,
 * then 2, ... up to nparity columns are lying, rebuilds them from the rest and keeps the
 * combination that verifies; the lying children are charged a checksum error and rewritten.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "core/blkbuf.h"
#include "core/bp.h"
#include "core/cksum.h"
#include "core/pool_impl.h"
#include "core/raidz_math.h"
#include "core/vdev.h"

struct rz_col {
    struct vdev *leaf;
    uint64_t off; /* byte offset in the leaf's data area */
    size_t size;
    uint8_t *data; /* data columns: inside the caller's buffer; parity: map->parity */
    bool bad;      /* could not be read (or not written) */
};

struct rz_map {
    unsigned ncols, nparity, ndata;
    struct rz_col col[VDEV_MAX_CHILDREN];
    uint8_t *parity; /* nparity * col[0].size bytes */
};

/* Lays out the block of dsize bytes at top-level offset off (see the header comment). */
static int
map_build(const struct vdev *vd, uint64_t off, uint8_t *buf, size_t dsize, struct rz_map *m)
{
    unsigned width = vd->nchildren, np = vd->nparity, ashift = vd->ashift;
    uint64_t b = off >> ashift, s = (uint64_t)dsize >> ashift;
    uint64_t q = s / (width - np), r = s % (width - np);
    unsigned bc = r != 0 ? (unsigned)r + np : 0;
    unsigned ncols = q == 0 ? bc : width;
    uint64_t first = b % width, row = b / width;
    m->ncols = ncols;
    m->nparity = np;
    m->ndata = ncols - np;
    size_t psize = (size_t)((bc != 0 ? q + 1 : q) << ashift);
    m->parity = blkbuf_alloc((size_t)np * psize);
    if (m->parity == NULL)
        return -ENOMEM;
    size_t data_off = 0;
    for (unsigned c = 0; c < ncols; c++) {
        struct rz_col *col = &m->col[c];
        uint64_t child = first + c, crow = row;
        if (child >= width) {
            child -= width;
            crow++;
        }
        col->leaf = vd->child[child];
        col->off = crow << ashift;
        col->size = (size_t)((c < bc ? q + 1 : q) << ashift);
        col->bad = false;
        if (c < np) {
            col->data = m->parity + (size_t)c * psize;
        } else {
            col->data = buf + data_off;
            data_off += col->size;
        }
    }
    return 0;
}

static void
map_lens(const struct rz_map *m, size_t *lens, uint8_t **cols)
{
    for (unsigned c = 0; c < m->ncols; c++) {
        lens[c] = m->col[c].size;
        cols[c] = m->col[c].data;
    }
}

static bool
verifies(const struct blkptr *bp, const void *buf)
{
    return cksum_verify(bp->cksum, buf, bp->psize, bp->cksum_val);
}

/* Rebuilds the columns in missing[0..n) from the others; true when the data then verifies. */
static bool
try_rebuild(struct rz_map *m, const unsigned *missing, unsigned n, const struct blkptr *bp,
            const uint8_t *buf)
{
    size_t lens[VDEV_MAX_CHILDREN];
    uint8_t *cols[VDEV_MAX_CHILDREN];
    map_lens(m, lens, cols);
    if (raidz_reconstruct(m->nparity, m->ndata, cols, lens, missing, n) != 0)
        return false;
    return verifies(bp, buf);
}

/* Next k-combination of {0..n-1} in idx (lexicographic); false after the last. */
static bool
next_combination(unsigned *idx, unsigned k, unsigned n)
{
    for (int i = (int)k - 1; i >= 0; i--) {
        if (idx[i] < n - k + (unsigned)i) {
            idx[i]++;
            for (unsigned j = (unsigned)i + 1; j < k; j++)
                idx[j] = idx[j - 1] + 1;
            return true;
        }
    }
    return false;
}

/*
 * The data does not verify with the columns known bad (known[0..nknown)) rebuilt: try every set
 * of 1..nparity-nknown further columns as liars. On success *liars gets their bit mask.
 */
static int
combinatorial(struct rz_map *m, const unsigned *known, unsigned nknown, const struct blkptr *bp,
              uint8_t *buf, uint64_t *liars)
{
    unsigned cand[VDEV_MAX_CHILDREN], ncand = 0;
    uint64_t known_mask = 0;
    for (unsigned i = 0; i < nknown; i++)
        known_mask |= 1ull << known[i];
    for (unsigned c = 0; c < m->ncols; c++)
        if (!(known_mask & (1ull << c)))
            cand[ncand++] = c;
    /* Saved contents of every column, to undo a failed attempt. */
    size_t total = 0;
    for (unsigned c = 0; c < m->ncols; c++)
        total += m->col[c].size;
    uint8_t *saved = malloc(total);
    if (saved == NULL)
        return -ENOMEM;
    size_t at = 0;
    for (unsigned c = 0; c < m->ncols; c++) {
        memcpy(saved + at, m->col[c].data, m->col[c].size);
        at += m->col[c].size;
    }
    int rc = -ECKSUM;
    for (unsigned k = 1; k + nknown <= m->nparity && k <= ncand && rc != 0; k++) {
        unsigned idx[VDEV_MAX_PARITY];
        for (unsigned i = 0; i < k; i++)
            idx[i] = i;
        do {
            unsigned missing[VDEV_MAX_PARITY];
            bool has_data = false;
            for (unsigned i = 0; i < nknown; i++)
                has_data = has_data || known[i] >= m->nparity;
            for (unsigned i = 0; i < k; i++) {
                missing[i] = cand[idx[i]];
                has_data = has_data || missing[i] >= m->nparity;
            }
            for (unsigned i = 0; i < nknown; i++)
                missing[k + i] = known[i];
            if (!has_data)
                continue; /* only parity rebuilt: the data is what already failed */
            if (try_rebuild(m, missing, k + nknown, bp, buf)) {
                *liars = 0;
                for (unsigned i = 0; i < k; i++)
                    *liars |= 1ull << missing[i];
                rc = 0;
                break;
            }
            at = 0;
            for (unsigned c = 0; c < m->ncols; c++) {
                memcpy(m->col[c].data, saved + at, m->col[c].size);
                at += m->col[c].size;
            }
        } while (next_combination(idx, k, ncand));
    }
    free(saved);
    return rc;
}

/* Parity regenerated from verified data that differs from what the disk returned: a liar. */
static int
check_parity(struct rz_map *m, uint64_t *liars)
{
    size_t psize = m->col[0].size;
    uint8_t *fresh = blkbuf_alloc((size_t)m->nparity * psize);
    if (fresh == NULL)
        return -ENOMEM;
    uint8_t *saved[VDEV_MAX_PARITY];
    for (unsigned c = 0; c < m->nparity; c++) {
        saved[c] = m->col[c].data;
        m->col[c].data = fresh + (size_t)c * psize;
    }
    size_t lens[VDEV_MAX_CHILDREN];
    uint8_t *cols[VDEV_MAX_CHILDREN];
    map_lens(m, lens, cols);
    int rc = raidz_generate(m->nparity, m->ndata, cols, lens);
    for (unsigned c = 0; c < m->nparity && rc == 0; c++) {
        if (!m->col[c].bad && !(*liars & (1ull << c)) && memcmp(saved[c], m->col[c].data, psize))
            *liars |= 1ull << c;
        memcpy(saved[c], m->col[c].data, psize); /* what the repair writes */
    }
    for (unsigned c = 0; c < m->nparity; c++)
        m->col[c].data = saved[c];
    blkbuf_free(fresh);
    return rc;
}

/* A read (scrub = false: data columns, parity only when needed) or a scrub of every column. */
static int
raidz_io(struct pool *p, struct vdev *vd, uint64_t off, const struct blkptr *bp, void *buf,
         size_t dsize, bool scrub)
{
    struct rz_map m;
    int rc = map_build(vd, off, buf, dsize, &m);
    if (rc != 0)
        return rc;
    unsigned known[VDEV_MAX_PARITY + 1], nknown = 0;
    for (unsigned c = scrub ? 0 : m.nparity; c < m.ncols; c++) {
        struct rz_col *col = &m.col[c];
        if (vdev_leaf_lacks(col->leaf, bp->birth) ||
            vdev_leaf_read(col->leaf, col->off, col->data, col->size) != 0) {
            col->bad = true;
            if (nknown <= m.nparity)
                known[nknown] = c;
            nknown++;
        }
    }
    uint64_t liars = 0;
    bool ok = nknown == 0 && verifies(bp, buf);
    if (ok && !scrub)
        goto out;
    if (nknown > m.nparity)
        goto fail_io;
    /* Redundancy is needed: read the parity too (a scrub has it already). */
    for (unsigned c = 0; c < m.nparity && !scrub; c++) {
        struct rz_col *col = &m.col[c];
        if (vdev_leaf_lacks(col->leaf, bp->birth) ||
            vdev_leaf_read(col->leaf, col->off, col->data, col->size) != 0) {
            col->bad = true;
            if (nknown == m.nparity)
                goto fail_io;
            known[nknown++] = c;
        }
    }
    if (!ok)
        ok = nknown > 0 && try_rebuild(&m, known, nknown, bp, buf);
    if (!ok) {
        rc = combinatorial(&m, known, nknown, bp, buf, &liars);
        if (rc == -ENOMEM)
            goto out;
        ok = rc == 0;
    }
    if (!ok) {
        vdev_count_cksum(vd);
        rc = -ECKSUM;
        goto out;
    }
    if (scrub) {
        rc = check_parity(&m, &liars);
        if (rc != 0)
            goto out;
    }
    for (unsigned c = 0; c < m.ncols; c++) {
        struct rz_col *col = &m.col[c];
        if (liars & (1ull << c))
            vdev_count_cksum(col->leaf);
        if ((liars & (1ull << c)) || col->bad)
            vdev_leaf_repair(p, col->leaf, col->off, col->data, col->size);
    }
    rc = 0;
    goto out;
fail_io:
    vdev_count_cksum(vd);
    rc = -EIO;
out:
    blkbuf_free(m.parity);
    return rc;
}

unsigned
vdev_block_columns(const struct vdev *top, uint64_t off, size_t dsize, struct vdev_column *cols)
{
    if (top->type == VDEV_TYPE_LEAF) {
        cols[0] = (struct vdev_column){ 0, off, dsize, false };
        return 1;
    }
    if (top->type == VDEV_TYPE_MIRROR) {
        for (uint32_t c = 0; c < top->nchildren; c++)
            cols[c] = (struct vdev_column){ c, off, dsize, false };
        return top->nchildren;
    }
    struct rz_map m;
    static uint8_t none;
    if (map_build(top, off, &none, dsize, &m) != 0)
        return 0;
    for (unsigned c = 0; c < m.ncols; c++)
        cols[c] =
            (struct vdev_column){ m.col[c].leaf->id, m.col[c].off, m.col[c].size, c < m.nparity };
    blkbuf_free(m.parity);
    return m.ncols;
}

int
vdev_raidz_read(struct pool *p, struct vdev *vd, uint64_t off, const struct blkptr *bp, void *buf,
                size_t dsize)
{
    return raidz_io(p, vd, off, bp, buf, dsize, false);
}

int
vdev_raidz_scrub(struct pool *p, struct vdev *vd, uint64_t off, const struct blkptr *bp, void *buf,
                 size_t dsize)
{
    return raidz_io(p, vd, off, bp, buf, dsize, true);
}

int
vdev_raidz_write(struct vdev *vd, uint64_t off, const void *buf, size_t dsize, uint64_t txg)
{
    struct rz_map m;
    /* The data columns are only read: raidz_generate writes the parity columns alone. */
    int rc = map_build(vd, off, (uint8_t *)(uintptr_t)buf, dsize, &m);
    if (rc != 0)
        return rc;
    size_t lens[VDEV_MAX_CHILDREN];
    uint8_t *cols[VDEV_MAX_CHILDREN];
    map_lens(&m, lens, cols);
    rc = raidz_generate(m.nparity, m.ndata, cols, lens);
    if (rc == 0) {
        unsigned failed = 0;
        for (unsigned c = 0; c < m.ncols; c++) {
            struct rz_col *col = &m.col[c];
            if (vdev_leaf_write(col->leaf, col->off, col->data, col->size, txg) != 0)
                failed++;
        }
        rc = failed <= m.nparity ? 0 : -EIO;
    }
    blkbuf_free(m.parity);
    return rc;
}
