/* SPDX-License-Identifier: MIT */
/*
 * zio_agg: the device writes of prepared blocks (zio_write_issue, pool_impl.h), merged.
 *
 * Theory of operation. A txg's blocks are allocated close together, mostly back to back, but
 * each is a separate write: with direct I/O (vdev_file.c) every one is a round trip to the
 * device, and with buffered I/O a system call and a page-cache copy of its own. So the copies
 * to write are listed as extents (vdev, offset, block, copy), sorted, and cut into runs of
 * extents that follow each other on one plain or mirror top-level vdev, each block filling its
 * allocation exactly (no padding between them), up to ZIO_AGG_MAX bytes and VDEV_IOV_MAX
 * blocks. Each run is one vdev_writev, the runs spread over the taskq. zio_issue_start only
 * starts them there, so that the sync thread can prepare the next part of a txg while this
 * one is written; zio_issue_finish waits, then handles the failures.
 *
 * Errors. A run that fails is not retried as a whole: after all runs, each of its extents is
 * written again alone, on the calling thread, so a device error lands only on the blocks it
 * concerns, and a copy that still fails is moved once to newly allocated space (another vdev
 * when there is one) exactly as a single zio_write would. A block with a copy that could not
 * be stored fails: its rc is set and, unless its DVAs are reused ones, they are freed.
 *
 * Invariants:
 *   1. Every extent of a block with ncopies > 0 is written exactly once successfully, or the
 *      block's rc is nonzero.
 *   2. A run's extents are contiguous: extent k+1 starts where extent k's allocation ends,
 *      and each allocation is exactly its block's dsize, so the merged write lays every block
 *      where its DVA says.
 *   3. DVAs change only in the sequential retry phase (no races on bp between runs).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "common/assert.h"
#include "common/err.h"
#include "core/blkbuf.h"
#include "core/pool_impl.h"
#include "core/taskq.h"

struct agg_ext {
    uint64_t off;
    uint32_t vdev;
    uint32_t block;
    uint8_t copy;
    bool failed; /* its run's write failed: rewritten alone afterwards */
};

struct agg_run {
    size_t first, n;
};

static int
ext_cmp(const void *a, const void *b)
{
    const struct agg_ext *x = a, *y = b;
    if (x->vdev != y->vdev)
        return x->vdev < y->vdev ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

/*
 * Writes copy c of d alone. A fresh copy that fails is moved once to new space, avoiding the
 * vdevs of the block's other copies and the one that failed (zio_write's rule since the start).
 */
static int
write_copy(struct pool *p, uint64_t txg, struct zio_deferred *d, unsigned c)
{
    struct blkptr *bp = d->bp;
    int rc = vdev_write(p, &bp->dva[c], txg, d->src, d->dsize);
    if (rc == 0 || d->reused)
        return rc;
    uint32_t used[BP_NDVAS];
    for (unsigned o = 0; o < d->ncopies; o++)
        used[o] = bp->dva[o].vdev;
    struct dva moved;
    unsigned flags = d->metadata ? ALLOC_USE_SLOP : 0;
    rc = alloc_allocate(p->alloc, txg, d->dsize, flags, used, d->ncopies, &moved);
    if (rc != 0)
        return rc;
    rc = vdev_write(p, &moved, txg, d->src, d->dsize);
    if (rc != 0) {
        alloc_free_immediate(p->alloc, txg, &moved);
        return rc;
    }
    alloc_free_immediate(p->alloc, txg, &bp->dva[c]);
    bp->dva[c] = moved;
    return 0;
}

/* One run: a merged write, or a single block written (and moved on failure) at once. */
static void
issue_run(void *arg, size_t r)
{
    struct zio_issue *a = arg;
    const struct agg_run *run = &a->runs[r];
    struct agg_ext *e = &a->ext[run->first];
    if (run->n == 1) {
        struct zio_deferred *d = &a->d[e->block];
        e->failed = vdev_write(a->p, &d->bp->dva[e->copy], a->txg, d->src, d->dsize) != 0;
        return;
    }
    struct iovec iov[VDEV_IOV_MAX];
    for (size_t i = 0; i < run->n; i++) {
        const struct zio_deferred *d = &a->d[e[i].block];
        iov[i] = (struct iovec){ .iov_base = (void *)(uintptr_t)d->src, .iov_len = d->dsize };
    }
    if (vdev_writev(a->p, e->vdev, e->off, iov, (int)run->n, a->txg) != 0)
        for (size_t i = 0; i < run->n; i++)
            e[i].failed = true;
}

/* Lists the extents to write, sorted. Returns their number, or -ENOMEM. */
static ssize_t
list_extents(struct zio_deferred *d, size_t n, struct agg_ext **out)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += d[i].rc == 0 ? d[i].ncopies : 0;
    struct agg_ext *ext = malloc((count ? count : 1) * sizeof(*ext));
    if (ext == NULL)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (unsigned c = 0; d[i].rc == 0 && c < d[i].ncopies; c++)
            ext[k++] = (struct agg_ext){ .off = d[i].bp->dva[c].offset,
                                         .vdev = d[i].bp->dva[c].vdev,
                                         .block = (uint32_t)i,
                                         .copy = (uint8_t)c };
    qsort(ext, count, sizeof(*ext), ext_cmp);
    *out = ext;
    return (ssize_t)count;
}

/* Cuts the sorted extents into runs (invariant 2). Returns the number of runs. */
static size_t
cut_runs(struct pool *p, const struct zio_deferred *d, const struct agg_ext *ext, size_t count,
         struct agg_run *runs)
{
    size_t nruns = 0;
    for (size_t i = 0; i < count;) {
        const struct zio_deferred *first = &d[ext[i].block];
        uint64_t asize = dva_asize(&first->bp->dva[ext[i].copy]);
        uint64_t end = ext[i].off + asize, bytes = first->dsize;
        bool merge = asize == first->dsize && vdev_can_writev(p, ext[i].vdev);
        size_t j = i + 1;
        while (merge && j < count && j - i < VDEV_IOV_MAX && ext[j].vdev == ext[i].vdev &&
               ext[j].off == end) {
            const struct zio_deferred *next = &d[ext[j].block];
            uint64_t next_asize = dva_asize(&next->bp->dva[ext[j].copy]);
            if (next_asize != next->dsize || bytes + next->dsize > ZIO_AGG_MAX)
                break;
            end += next_asize;
            bytes += next->dsize;
            j++;
        }
        runs[nruns++] = (struct agg_run){ .first = i, .n = j - i };
        i = j;
    }
    return nruns;
}

void
zio_issue_start(struct zio_issue *zi, struct pool *p, uint64_t txg, struct zio_deferred *d,
                size_t n, struct taskq *tq)
{
    *zi = (struct zio_issue){ .p = p, .txg = txg, .d = d, .n = n, .tq = tq };
    zi->count = list_extents(d, n, &zi->ext);
    if (zi->count >= 0)
        zi->runs = malloc(((size_t)zi->count ? (size_t)zi->count : 1) * sizeof(*zi->runs));
    if (zi->runs == NULL)
        return; /* zio_issue_finish writes every copy alone */
    size_t nruns = cut_runs(p, d, zi->ext, (size_t)zi->count, zi->runs);
    if (tq != NULL && nruns > 1) {
        taskq_start(tq, nruns, issue_run, zi);
        zi->started = true;
    } else {
        for (size_t r = 0; r < nruns; r++)
            issue_run(zi, r);
    }
}

int
zio_issue_finish(struct zio_issue *zi)
{
    struct pool *p = zi->p;
    uint64_t txg = zi->txg;
    struct zio_deferred *d = zi->d;
    size_t n = zi->n;
    if (zi->started)
        taskq_wait(zi->tq);
    if (zi->runs != NULL) {
        /* Failed runs, extent by extent, sequentially (invariant 3). */
        for (ssize_t k = 0; k < zi->count; k++) {
            struct zio_deferred *b = &d[zi->ext[k].block];
            int rc = zi->ext[k].failed ? write_copy(p, txg, b, zi->ext[k].copy) : 0;
            if (rc != 0 && b->rc == 0)
                b->rc = rc;
        }
    } else {
        /* No memory for the lists: every copy alone, as zio_write once did. */
        for (size_t i = 0; i < n; i++)
            for (unsigned c = 0; d[i].rc == 0 && c < d[i].ncopies; c++)
                d[i].rc = write_copy(p, txg, &d[i], c);
    }
    free(zi->runs);
    free(zi->ext);
    zi->runs = NULL;
    zi->ext = NULL;

    int first_rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (d[i].rc != 0 && !d[i].reused) {
            for (unsigned c = 0; c < d[i].ncopies; c++) {
                alloc_free_immediate(p->alloc, txg, &d[i].bp->dva[c]);
                memset(&d[i].bp->dva[c], 0, sizeof(d[i].bp->dva[c]));
            }
        }
        if (d[i].rc != 0 && first_rc == 0)
            first_rc = d[i].rc;
        blkbuf_free(d[i].owned);
        d[i].owned = NULL;
    }
    return first_rc;
}

int
zio_write_issue(struct pool *p, uint64_t txg, struct zio_deferred *d, size_t n, struct taskq *tq)
{
    struct zio_issue zi;
    zio_issue_start(&zi, p, txg, d, n, tq);
    return zio_issue_finish(&zi);
}
