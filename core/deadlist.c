/* SPDX-License-Identifier: MIT */
/*
 * deadlist: an append-only BP array plus a per-mintxg space summary (see deadlist.h).
 *
 * Theory of operation
 *
 * The array object holds encoded BPs back to back; its size is the only record of how many there
 * are, so appending is one obj_write at the end. The summary map holds one entry per bucket key;
 * the handle keeps a sorted in-memory copy of it (there is one bucket per snapshot boundary, so
 * it is small) which answers space queries without I/O and finds a BP's bucket by binary search
 * (the largest key < birth). Every change writes the array first and then the touched summary
 * entries through the objmap bound to the caller's tx; if a summary write fails the array is
 * truncated back and already-rewritten entries are restored, so memory and objects agree.
 *
 * Appends are batched: deadlist_merge decodes a chunk of src, then appends the whole chunk with
 * one array write and one summary write per touched bucket.
 *
 * Invariants (checked by deadlist_open against the objects):
 *   1. Bucket keys strictly increase and the first is 0.
 *   2. The array size is nbps * BP_SIZE, and every entry decodes to a non-hole, non-embedded BP.
 *   3. The sum of bucket counts is nbps; each BP is accounted in the bucket with the largest
 *      key < its birth at the time it was appended (keys only grow, removal folds a bucket into
 *      its predecessor).
 *   4. The in-memory buckets equal the summary map's entries.
 */
#include "core/deadlist.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/endian.h"
#include "common/err.h"
#include "core/objmap.h"

#define DEADLIST_BLOCKSIZE  32768u
#define DEADLIST_NODE_SIZE  4096u
#define DEADLIST_CHUNK_BPS  256u /* BPs per read/append batch */
#define DEADLIST_CHUNK_SIZE (DEADLIST_CHUNK_BPS * BP_SIZE)

struct dl_bucket {
    uint64_t key;
    struct deadlist_space sp;
};

struct deadlist {
    struct objset *os;
    struct deadlist_phys phys;
    struct objmap *om;
    uint64_t nbps;
    struct dl_bucket *b; /* sorted by key; b[0].key == 0 */
    size_t nb, cap;
};

void
deadlist_phys_encode(const struct deadlist_phys *p, uint8_t out[static DEADLIST_PHYS_SIZE])
{
    le64_put(out, p->bps_obj);
    le64_put(out + 8, p->summary_obj);
}

int
deadlist_phys_decode(const uint8_t in[static DEADLIST_PHYS_SIZE], struct deadlist_phys *p)
{
    p->bps_obj = le64_get(in);
    p->summary_obj = le64_get(in + 8);
    if (p->bps_obj == 0 || p->summary_obj == 0 || p->bps_obj == p->summary_obj)
        return ERR(-ECORRUPT);
    return 0;
}

static void
summary_encode(const struct deadlist_space *sp, uint8_t out[static DEADLIST_SUMMARY_SIZE])
{
    le64_put(out, sp->asize_bytes);
    le64_put(out + 8, sp->psize_bytes);
    le64_put(out + 16, sp->lsize_bytes);
    le64_put(out + 24, sp->count);
}

static void
summary_decode(const uint8_t in[static DEADLIST_SUMMARY_SIZE], struct deadlist_space *sp)
{
    sp->asize_bytes = le64_get(in);
    sp->psize_bytes = le64_get(in + 8);
    sp->lsize_bytes = le64_get(in + 16);
    sp->count = le64_get(in + 24);
}

static void
space_add(struct deadlist_space *dst, const struct deadlist_space *src)
{
    dst->asize_bytes += src->asize_bytes;
    dst->psize_bytes += src->psize_bytes;
    dst->lsize_bytes += src->lsize_bytes;
    dst->count += src->count;
}

/* Writes bucket (key -> sp) to the summary map in tx. */
static int
summary_put(struct deadlist *dl, struct tx *tx, uint64_t key, const struct deadlist_space *sp,
            bool replace)
{
    uint8_t v[DEADLIST_SUMMARY_SIZE];
    summary_encode(sp, v);
    objmap_begin(dl->om, tx);
    int rc = map_insert(objmap_map(dl->om), key, 0, v, sizeof(v), replace);
    objmap_end(dl->om);
    return rc;
}

int
deadlist_create(struct objset *os, struct tx *tx, struct deadlist_phys *out)
{
    struct obj_create_opts o = { .type = OT_DEADLIST, .blocksize = DEADLIST_BLOCKSIZE };
    struct deadlist_phys p = { 0 };
    struct objmap *om = NULL;
    int rc = obj_create(os, tx, &o, &p.bps_obj);
    if (rc != 0)
        return rc;
    rc = objmap_create(os, tx, DEADLIST_NODE_SIZE, &p.summary_obj);
    if (rc != 0)
        goto fail_bps;
    rc = objmap_open(os, p.summary_obj, &om);
    if (rc != 0)
        goto fail_map;
    uint8_t v[DEADLIST_SUMMARY_SIZE] = { 0 };
    objmap_begin(om, tx);
    rc = map_insert(objmap_map(om), 0, 0, v, sizeof(v), false);
    objmap_end(om);
    objmap_close(om);
    if (rc != 0)
        goto fail_map;
    *out = p;
    return 0;
fail_map:
    (void)obj_destroy(os, tx, p.summary_obj);
fail_bps:
    (void)obj_destroy(os, tx, p.bps_obj);
    return rc;
}

int
deadlist_destroy(struct objset *os, struct tx *tx, const struct deadlist_phys *phys)
{
    int rc = obj_destroy(os, tx, phys->bps_obj);
    int rc2 = obj_destroy(os, tx, phys->summary_obj);
    return rc != 0 ? rc : rc2;
}

static int
bucket_reserve(struct deadlist *dl, size_t n)
{
    if (n <= dl->cap)
        return 0;
    size_t cap = dl->cap == 0 ? 8 : dl->cap;
    while (cap < n)
        cap *= 2;
    struct dl_bucket *nb = realloc(dl->b, cap * sizeof(*nb));
    if (nb == NULL)
        return ERR(-ENOMEM);
    dl->b = nb;
    dl->cap = cap;
    return 0;
}

static int
load_bucket(void *arg, uint64_t a, uint64_t b, const void *val, size_t len)
{
    struct deadlist *dl = arg;
    if (b != 0 || len != DEADLIST_SUMMARY_SIZE)
        return ERR(-ECORRUPT);
    if (dl->nb == 0 ? a != 0 : a <= dl->b[dl->nb - 1].key)
        return ERR(-ECORRUPT);
    int rc = bucket_reserve(dl, dl->nb + 1);
    if (rc != 0)
        return rc;
    dl->b[dl->nb].key = a;
    summary_decode(val, &dl->b[dl->nb].sp);
    dl->nb++;
    return 0;
}

int
deadlist_open(struct objset *os, const struct deadlist_phys *phys, struct deadlist **out)
{
    struct obj_info bi, si;
    int rc = obj_stat(os, phys->bps_obj, &bi);
    if (rc != 0)
        return rc;
    rc = obj_stat(os, phys->summary_obj, &si);
    if (rc != 0)
        return rc;
    if (bi.type != OT_DEADLIST || si.type != OT_MAP || bi.size % BP_SIZE != 0)
        return ERR(-ECORRUPT);
    struct deadlist *dl = calloc(1, sizeof(*dl));
    if (dl == NULL)
        return ERR(-ENOMEM);
    dl->os = os;
    dl->phys = *phys;
    dl->nbps = bi.size / BP_SIZE;
    rc = objmap_open(os, phys->summary_obj, &dl->om);
    if (rc != 0)
        goto fail;
    rc = map_iterate(objmap_map(dl->om), 0, 0, load_bucket, dl);
    if (rc != 0)
        goto fail;
    uint64_t count = 0;
    for (size_t i = 0; i < dl->nb; i++) {
        if (dl->b[i].sp.count > UINT64_MAX - count) {
            rc = ERR(-ECORRUPT);
            goto fail;
        }
        count += dl->b[i].sp.count;
    }
    if (dl->nb == 0 || count != dl->nbps) {
        rc = ERR(-ECORRUPT);
        goto fail;
    }
    *out = dl;
    return 0;
fail:
    deadlist_close(dl);
    return rc;
}

void
deadlist_close(struct deadlist *dl)
{
    if (dl == NULL)
        return;
    objmap_close(dl->om);
    free(dl->b);
    free(dl);
}

/* Index of the bucket with the largest key < birth (birth >= 1, so bucket 0 qualifies). */
static size_t
bucket_for_birth(const struct deadlist *dl, uint64_t birth)
{
    ASSERT(dl->nb > 0 && birth > 0);
    size_t lo = 0, hi = dl->nb; /* answer in [lo, hi) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (dl->b[mid].key < birth)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Finds key exactly; returns its index or dl->nb. */
static size_t
bucket_find(const struct deadlist *dl, uint64_t key)
{
    if (key == UINT64_MAX)
        return dl->nb;
    size_t i = bucket_for_birth(dl, key + 1);
    return dl->b[i].key == key ? i : dl->nb;
}

int
deadlist_add_key(struct deadlist *dl, struct tx *tx, uint64_t mintxg)
{
    uint64_t last = dl->b[dl->nb - 1].key;
    if (mintxg == last)
        return ERR(-EEXIST);
    if (mintxg < last) {
        return bucket_find(dl, mintxg) < dl->nb ? ERR(-EEXIST) : ERR(-EINVAL);
    }
    int rc = bucket_reserve(dl, dl->nb + 1);
    if (rc != 0)
        return rc;
    struct deadlist_space zero = { 0 };
    rc = summary_put(dl, tx, mintxg, &zero, false);
    if (rc != 0)
        return rc;
    dl->b[dl->nb].key = mintxg;
    dl->b[dl->nb].sp = zero;
    dl->nb++;
    return 0;
}

int
deadlist_remove_key(struct deadlist *dl, struct tx *tx, uint64_t mintxg)
{
    if (mintxg == 0)
        return ERR(-EINVAL);
    size_t i = bucket_find(dl, mintxg);
    if (i == dl->nb)
        return ERR(-ENOENT);
    struct deadlist_space merged = dl->b[i - 1].sp;
    space_add(&merged, &dl->b[i].sp);
    int rc = summary_put(dl, tx, dl->b[i - 1].key, &merged, true);
    if (rc != 0)
        return rc;
    objmap_begin(dl->om, tx);
    rc = map_remove(objmap_map(dl->om), mintxg, 0);
    objmap_end(dl->om);
    if (rc != 0) {
        (void)summary_put(dl, tx, dl->b[i - 1].key, &dl->b[i - 1].sp, true);
        return rc;
    }
    dl->b[i - 1].sp = merged;
    memmove(&dl->b[i], &dl->b[i + 1], (dl->nb - i - 1) * sizeof(dl->b[0]));
    dl->nb--;
    return 0;
}

/*
 * Appends bps[0..n) (all non-hole, non-embedded, birth >= 1; enc is their encoding) with one
 * array write and one summary write per touched bucket. All or nothing, unless rollback fails.
 */
static int
append_batch(struct deadlist *dl, struct tx *tx, const struct blkptr *bps, size_t n,
             const uint8_t *enc)
{
    if (n == 0)
        return 0;
    struct deadlist_space *delta = calloc(dl->nb, sizeof(*delta));
    if (delta == NULL)
        return ERR(-ENOMEM);
    for (size_t i = 0; i < n; i++) {
        struct deadlist_space one = { .asize_bytes = bp_asize(&bps[i]),
                                      .psize_bytes = bps[i].psize,
                                      .lsize_bytes = bps[i].lsize,
                                      .count = 1 };
        space_add(&delta[bucket_for_birth(dl, bps[i].birth)], &one);
    }
    uint64_t off = dl->nbps * BP_SIZE;
    int rc = obj_write(dl->os, tx, dl->phys.bps_obj, off, n * BP_SIZE, enc);
    if (rc != 0)
        goto out;
    size_t done = 0;
    for (; done < dl->nb; done++) {
        if (delta[done].count == 0)
            continue;
        struct deadlist_space sp = dl->b[done].sp;
        space_add(&sp, &delta[done]);
        rc = summary_put(dl, tx, dl->b[done].key, &sp, true);
        if (rc != 0)
            break;
    }
    if (rc != 0) {
        for (size_t i = 0; i < done; i++) {
            if (delta[i].count != 0)
                (void)summary_put(dl, tx, dl->b[i].key, &dl->b[i].sp, true);
        }
        (void)obj_truncate(dl->os, tx, dl->phys.bps_obj, off);
        goto out;
    }
    for (size_t i = 0; i < dl->nb; i++)
        space_add(&dl->b[i].sp, &delta[i]);
    dl->nbps += n;
out:
    free(delta);
    return rc;
}

int
deadlist_insert(struct deadlist *dl, struct tx *tx, const struct blkptr *bp)
{
    if (bp_is_hole(bp) || bp_is_embedded(bp))
        return 0;
    if (bp->birth == 0)
        return ERR(-EINVAL);
    uint8_t enc[BP_SIZE];
    bp_encode(bp, enc);
    return append_batch(dl, tx, bp, 1, enc);
}

void
deadlist_space_range(const struct deadlist *dl, uint64_t mintxg, uint64_t maxtxg,
                     struct deadlist_space *out)
{
    *out = (struct deadlist_space){ 0 };
    for (size_t i = 0; i < dl->nb; i++) {
        if (dl->b[i].key >= mintxg && dl->b[i].key < maxtxg)
            space_add(out, &dl->b[i].sp);
    }
}

void
deadlist_space(const struct deadlist *dl, struct deadlist_space *out)
{
    deadlist_space_range(dl, 0, UINT64_MAX, out);
}

uint64_t
deadlist_count(const struct deadlist *dl)
{
    return dl->nbps;
}

/* Decodes entry raw into bp and checks it is one a deadlist may hold. */
static int
entry_decode(const uint8_t *raw, struct blkptr *bp)
{
    if (bp_decode(raw, bp) != 0 || bp_is_hole(bp) || bp_is_embedded(bp) || bp->birth == 0)
        return ERR(-ECORRUPT);
    return 0;
}

/* Reads entries [first, first+n) raw into buf (n <= DEADLIST_CHUNK_BPS). */
static int
read_chunk(struct deadlist *dl, uint64_t first, size_t n, uint8_t *buf)
{
    return obj_read(dl->os, dl->phys.bps_obj, first * BP_SIZE, n * BP_SIZE, buf);
}

int
deadlist_iterate(struct deadlist *dl, deadlist_iter_fn fn, void *arg)
{
    uint8_t *buf = malloc(DEADLIST_CHUNK_SIZE);
    struct blkptr *bps = malloc(sizeof(*bps));
    int rc = 0;
    if (buf == NULL || bps == NULL) {
        rc = ERR(-ENOMEM);
        goto out;
    }
    for (uint64_t first = 0; first < dl->nbps && rc == 0; first += DEADLIST_CHUNK_BPS) {
        uint64_t left = dl->nbps - first;
        size_t n = left < DEADLIST_CHUNK_BPS ? (size_t)left : DEADLIST_CHUNK_BPS;
        rc = read_chunk(dl, first, n, buf);
        for (size_t i = 0; i < n && rc == 0; i++) {
            rc = entry_decode(buf + i * BP_SIZE, &bps[0]);
            if (rc == 0)
                rc = fn(arg, &bps[0]);
        }
    }
out:
    free(bps);
    free(buf);
    return rc;
}

int
deadlist_merge(struct deadlist *dst, struct tx *tx, struct deadlist *src)
{
    VERIFY(dst != src);
    uint8_t *buf = malloc(DEADLIST_CHUNK_SIZE);
    struct blkptr *bps = malloc(DEADLIST_CHUNK_BPS * sizeof(*bps));
    int rc = 0;
    if (buf == NULL || bps == NULL) {
        rc = ERR(-ENOMEM);
        goto out;
    }
    uint64_t total = src->nbps;
    for (uint64_t first = 0; first < total && rc == 0; first += DEADLIST_CHUNK_BPS) {
        uint64_t left = total - first;
        size_t n = left < DEADLIST_CHUNK_BPS ? (size_t)left : DEADLIST_CHUNK_BPS;
        rc = read_chunk(src, first, n, buf);
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = entry_decode(buf + i * BP_SIZE, &bps[i]);
        if (rc == 0)
            rc = append_batch(dst, tx, bps, n, buf);
    }
out:
    free(bps);
    free(buf);
    return rc;
}
