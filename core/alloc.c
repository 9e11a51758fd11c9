/* SPDX-License-Identifier: MIT */
/*
 * alloc: metaslab space allocation, deferred frees and the space journal.
 *
 * Theory of operation
 *
 * Each top-level vdev (struct alloc_vdev) covers [0, asize), asize rounded down to the allocation
 * unit 2^ashift. It is cut into metaslabs of 2^ms_shift bytes (the last one may be shorter); each
 * metaslab owns a range_tree of *allocatable* space inside its bounds and a first-fit cursor.
 * Space that is neither allocatable, freeing nor deferred is *allocated*; no tree records it.
 *
 *                alloc_allocate                    alloc_free_deferred(T)
 *   allocatable ----------------> allocated ----------------------------> freeing[T % 4]
 *        ^  ^                        |                                         |
 *        |  +------------------------+ alloc_free_immediate                    | sync_done(T)
 *        |                                                                     v
 *        +------------------------ alloc_sync_done(T + 2) ------------- defer[T % 2]
 *
 *   - allocatable: in exactly one metaslab's tree; handed out by first fit.
 *   - freeing[s]: per-vdev tree of space freed in txg freeing_txg[s] (slot s = txg % 4; at most
 *     three txgs are in flight, so slots never collide: VERIFY'd).
 *   - defer[s]: per-vdev tree of space freed in txg defer_txg[s], which is synced; it becomes
 *     allocatable at alloc_sync_done(defer_txg[s] + 2). sync_done(T) first releases every defer
 *     slot with tag <= T - 2 (this empties slot T % 2 in the normal one-txg-at-a-time cadence),
 *     then moves freeing slots tagged <= T into defer[T % 2] tagged T. If that slot still holds
 *     younger space (only after a load or skipped txgs) the two merge under the larger tag, which
 *     only ever delays reuse.
 *   - load (alloc_load_records) makes ALLOC records allocated and FREE records either
 *     allocatable or, for txg >= current_txg - 1, defer[txg % 2] tagged txg (merged the same way).
 *     A FREE of a range ALLOC'd under the same TXG marker txg (tracked in vd->born, reset when
 *     the marker txg changes) is an alloc_free_immediate: it becomes allocatable at once, so
 *     that later records of that txg may reuse it exactly as the live allocator did. (Such a
 *     block was never referenced by a durable tree, so this is safe even for blocks the live
 *     allocator freed with alloc_free_deferred.)
 *
 * Selection: a rotor over vdevs; the rotor vdev takes allocations until it has received an
 * aliquot (ALLOC_ALIQUOT scaled by its share of the pool's free space, so emptier vdevs take
 * more), then the rotor moves on. Vdevs in the caller's avoid list are tried only when no other
 * vdev can satisfy the request. Within a vdev the current metaslab is kept while its largest free
 * segment fits the request (a txg's writes stay sequential); otherwise the metaslab with the
 * largest free segment (lowest index on ties) becomes current. First fit runs from the
 * metaslab's cursor, then from its start. Because every tree segment is unit-aligned (all inputs
 * are validated or VERIFY'd to be), "largest segment >= size" guarantees a fit.
 *
 * Journal: every ALLOC/FREE appends a 16-byte record to the pending buffer of its txg (slot
 * txg % 4, with a reserved first record that alloc_take_journal fills with the TXG marker).
 * Ranges longer than 2^40 - 1 sectors are split into unit-aligned pieces.
 *
 * Invariants (alloc_check verifies 1, 2 and 5):
 *   1. Per vdev, metaslab trees, freeing[0..3] and defer[0..1] are pairwise disjoint, stay inside
 *      [0, asize) (each metaslab tree inside its metaslab), and hold only unit-aligned segments.
 *   2. vd->allocated + vd->deferred + sum(metaslab space) = vd->asize, where vd->deferred is the
 *      space of freeing and defer trees; the pool counters are the sums over vdevs.
 *   3. Space freed in txg T is in freeing/defer, never allocatable, until alloc_sync_done(T + 2).
 *   4. Pending journal records, replayed in order after what was already taken, turn the
 *      persisted allocated set into the current allocated set (freeing/defer counted as free).
 *   5. A non-empty freeing slot s holds a txg with txg % 4 == s.
 *
 * Errors: mutating calls that return void (frees, sync_done) VERIFY that their small internal
 * allocations (tree nodes, journal growth) succeed, as with xmalloc. alloc_allocate is atomic:
 * on -ENOMEM nothing changed. alloc_load_records on any error leaves the allocator internally
 * consistent (invariants 1, 2 hold) but with an unspecified prefix of the records applied; the
 * caller must discard it (alloc_free).
 *
 * Locking: a->lock protects everything in struct alloc and below. alloc_walk_allocated calls its
 * callback with the lock held, so the callback must not call back into this allocator.
 *
 * The read side (space numbers, walking the allocated set, alloc_check) is in alloc_stats.c;
 * what both files share is in alloc_impl.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/endian.h"
#include "common/err.h"
#include "core/alloc_impl.h"
#include "core/ondisk.h"
#include "core/vdev.h"

/* ---- records ---- */

static void
rec_put(uint8_t *p, uint64_t kind, uint32_t vdev, uint64_t sectors, uint64_t word1)
{
    ASSERT(vdev <= REC_VDEV_MAX && sectors <= REC_SECTORS_MAX);
    le64_put(p, kind << REC_KIND_SHIFT | (uint64_t)vdev << REC_VDEV_SHIFT | sectors);
    le64_put(p + 8, word1);
}

/* Largest record length in bytes for this vdev: 40 bits of sectors, kept unit-aligned. */
static uint64_t
rec_max_bytes(const struct alloc_vdev *vd)
{
    return (REC_SECTORS_MAX << SECTOR_SHIFT) & ~(vd_unit(vd) - 1);
}

static size_t
rec_count(const struct alloc_vdev *vd, uint64_t len)
{
    uint64_t max = rec_max_bytes(vd);
    return (size_t)(len / max + (len % max != 0));
}

/* Grows *buf (capacity *cap) to hold need bytes. */
static int
buf_reserve(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap != 0 ? *cap : 16 * SPACE_REC_SIZE;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return ERR(-ENOMEM);
        ncap *= 2;
    }
    uint8_t *nb = realloc(*buf, ncap);
    if (nb == NULL)
        return ERR(-ENOMEM);
    *buf = nb;
    *cap = ncap;
    return 0;
}

/* Writes records of `kind` covering [off, off + len) at p (room for rec_count records). */
static uint8_t *
rec_put_range(uint8_t *p, const struct alloc_vdev *vd, uint64_t kind, uint64_t off, uint64_t len)
{
    uint64_t max = rec_max_bytes(vd);
    while (len > 0) {
        uint64_t n = min_u64(len, max);
        rec_put(p, kind, vd->id, n >> SECTOR_SHIFT, off);
        p += SPACE_REC_SIZE;
        off += n;
        len -= n;
    }
    return p;
}

/* Appends ALLOC/FREE records for txg. All or nothing: returns 0 or -ENOMEM. */
static int
journal_append(struct alloc *a, uint64_t txg, const struct alloc_vdev *vd, uint64_t kind,
               uint64_t off, uint64_t len)
{
    struct alloc_journal *j = &a->journal[txg % ALLOC_TXG_SLOTS];
    if (j->len > 0)
        VERIFY3U(j->txg, ==, txg); /* more than ALLOC_TXG_SLOTS txgs in flight */
    size_t base = j->len > 0 ? j->len : SPACE_REC_SIZE;
    size_t n = rec_count(vd, len);
    int rc = buf_reserve(&j->buf, &j->cap, base + n * SPACE_REC_SIZE);
    if (rc != 0)
        return rc;
    rec_put_range(j->buf + base, vd, kind, off, len);
    j->txg = txg;
    j->len = base + n * SPACE_REC_SIZE;
    return 0;
}

/* ---- per-vdev range helpers: ranges may span metaslab boundaries ---- */

enum ms_op { MS_ADD, MS_REMOVE, MS_CONTAINS, MS_INTERSECTS };

/*
 * Applies op to [off, off + len) split at metaslab boundaries. For MS_CONTAINS returns 1 when
 * every piece is allocatable, for MS_INTERSECTS 1 when any byte is; else 0 or a negative errno.
 * A failed MS_ADD/MS_REMOVE may have applied a prefix of the pieces: *done (if not NULL) gets
 * the bytes applied, so the caller can keep its counters exact.
 */
static int
vd_ms_apply(struct alloc_vdev *vd, enum ms_op op, uint64_t off, uint64_t len, uint64_t *done)
{
    ASSERT(off + len <= vd->asize && off + len >= off);
    if (done != NULL)
        *done = 0;
    while (len > 0) {
        struct metaslab *ms = &vd->ms[off >> vd->ms_shift];
        uint64_t n = min_u64(len, ms->start + ms->size - off);
        int rc = 0;
        switch (op) {
        case MS_ADD:
            rc = range_tree_add(ms->free, off, n);
            ms->frag_dirty = true;
            break;
        case MS_REMOVE:
            rc = range_tree_remove(ms->free, off, n);
            ms->frag_dirty = true;
            break;
        case MS_CONTAINS:
            if (!range_tree_contains(ms->free, off, n))
                return 0;
            break;
        case MS_INTERSECTS:
            if (range_tree_intersects(ms->free, off, n))
                return 1;
            break;
        }
        if (rc != 0)
            return rc;
        if (done != NULL)
            *done += n;
        off += n;
        len -= n;
    }
    return op == MS_CONTAINS ? 1 : 0;
}

/* true when any byte of the range is allocatable, freeing or deferred (i.e. not allocated). */
static bool
vd_range_has_free(struct alloc_vdev *vd, uint64_t off, uint64_t len)
{
    if (vd_ms_apply(vd, MS_INTERSECTS, off, len, NULL) == 1)
        return true;
    for (unsigned s = 0; s < ALLOC_TXG_SLOTS; s++)
        if (range_tree_intersects(vd->freeing[s], off, len))
            return true;
    for (unsigned s = 0; s < ALLOC_DEFER_SLOTS; s++)
        if (range_tree_intersects(vd->defer[s], off, len))
            return true;
    return false;
}

/* true when [off, off + len) lies in the vdev, is non-empty and unit-aligned. */
static bool
vd_range_valid(const struct alloc_vdev *vd, uint64_t off, uint64_t len)
{
    uint64_t mask = vd_unit(vd) - 1;
    return len > 0 && (off & mask) == 0 && (len & mask) == 0 && off <= vd->asize &&
           len <= vd->asize - off;
}

static int
release_seg_fn(void *arg, uint64_t start, uint64_t len)
{
    return vd_ms_apply(arg, MS_ADD, start, len, NULL);
}

/* Defer slot s becomes allocatable. */
static void
vd_release_defer(struct alloc *a, struct alloc_vdev *vd, unsigned s)
{
    uint64_t space = range_tree_space(vd->defer[s]);
    VERIFY0(range_tree_walk(vd->defer[s], release_seg_fn, vd));
    range_tree_clear(vd->defer[s]);
    vd->deferred -= space;
    a->deferred -= space;
}

/* Puts [off, off + len) of txg into defer[txg % 2], merging tags as described above. */
static int
vd_defer_add(struct alloc_vdev *vd, uint64_t txg, uint64_t off, uint64_t len)
{
    unsigned d = (unsigned)(txg % ALLOC_DEFER_SLOTS);
    int rc = range_tree_add(vd->defer[d], off, len);
    if (rc != 0)
        return rc;
    if (range_tree_space(vd->defer[d]) == len || vd->defer_txg[d] < txg)
        vd->defer_txg[d] = txg;
    return 0;
}

static void
vd_free(struct alloc_vdev *vd)
{
    if (vd == NULL)
        return;
    for (size_t i = 0; vd->ms != NULL && i < vd->nms; i++)
        range_tree_free(vd->ms[i].free);
    free(vd->ms);
    for (unsigned s = 0; s < ALLOC_TXG_SLOTS; s++)
        range_tree_free(vd->freeing[s]);
    for (unsigned s = 0; s < ALLOC_DEFER_SLOTS; s++)
        range_tree_free(vd->defer[s]);
    range_tree_free(vd->born);
    free(vd);
}

/* ---- lifecycle ---- */

struct alloc *
alloc_new(void)
{
    struct alloc *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    if (pthread_mutex_init(&a->lock, NULL) != 0) {
        free(a);
        return NULL;
    }
    return a;
}

void
alloc_free(struct alloc *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->nvdevs; i++)
        vd_free(a->vdevs[i]);
    free(a->vdevs);
    for (unsigned s = 0; s < ALLOC_TXG_SLOTS; s++)
        free(a->journal[s].buf);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

unsigned
alloc_pick_ms_shift(uint64_t asize)
{
    uint64_t q = asize / ALLOC_MS_TARGET;
    unsigned shift = q == 0 ? 0 : 63u - (unsigned)__builtin_clzll(q);
    if (shift < ALLOC_MS_SHIFT_MIN)
        shift = ALLOC_MS_SHIFT_MIN;
    if (shift > ALLOC_MS_SHIFT_MAX)
        shift = ALLOC_MS_SHIFT_MAX;
    return shift;
}

int
alloc_vdev_add(struct alloc *a, uint32_t vdev, uint64_t asize, unsigned ashift, unsigned ms_shift)
{
    if (ashift < SECTOR_SHIFT || ashift > ALLOC_ASHIFT_MAX || ms_shift < ashift || ms_shift > 62 ||
        vdev > REC_VDEV_MAX)
        return ERR(-EINVAL);
    asize &= ~((1ull << ashift) - 1);
    if (asize == 0 || ((asize - 1) >> ms_shift) >= ALLOC_MS_MAX)
        return ERR(-EINVAL);

    int rc = 0;
    struct alloc_vdev *vd = NULL;
    pthread_mutex_lock(&a->lock);
    if (vdev < a->nvdevs) {
        rc = ERR(-EEXIST);
        goto out;
    }
    if (vdev != a->nvdevs || a->size > UINT64_MAX - asize) {
        rc = ERR(-EINVAL);
        goto out;
    }
    if (a->nvdevs == a->vdevs_cap) {
        size_t ncap = a->vdevs_cap != 0 ? a->vdevs_cap * 2 : 4;
        struct alloc_vdev **nv = realloc(a->vdevs, ncap * sizeof(*nv));
        if (nv == NULL) {
            rc = ERR(-ENOMEM);
            goto out;
        }
        a->vdevs = nv;
        a->vdevs_cap = ncap;
    }

    rc = ERR(-ENOMEM);
    vd = calloc(1, sizeof(*vd));
    if (vd == NULL)
        goto out;
    vd->id = vdev;
    vd->asize = asize;
    vd->ashift = ashift;
    vd->ms_shift = ms_shift;
    vd->nms = (size_t)(((asize - 1) >> ms_shift) + 1);
    vd->ms = calloc(vd->nms, sizeof(*vd->ms));
    if (vd->ms == NULL)
        goto out;
    for (unsigned s = 0; s < ALLOC_TXG_SLOTS; s++)
        if ((vd->freeing[s] = range_tree_new()) == NULL)
            goto out;
    for (unsigned s = 0; s < ALLOC_DEFER_SLOTS; s++)
        if ((vd->defer[s] = range_tree_new()) == NULL)
            goto out;
    if ((vd->born = range_tree_new()) == NULL)
        goto out;
    for (size_t i = 0; i < vd->nms; i++) {
        struct metaslab *ms = &vd->ms[i];
        ms->start = (uint64_t)i << ms_shift;
        ms->size = min_u64(1ull << ms_shift, asize - ms->start);
        ms->cursor = ms->start;
        ms->frag_dirty = true;
        if ((ms->free = range_tree_new()) == NULL)
            goto out;
        if (range_tree_add(ms->free, ms->start, ms->size) != 0)
            goto out;
    }
    a->vdevs[a->nvdevs++] = vd;
    a->size += asize;
    vd = NULL;
    rc = 0;
out:
    pthread_mutex_unlock(&a->lock);
    vd_free(vd);
    return rc;
}

void
alloc_hold_frees(struct alloc *a, bool hold)
{
    pthread_mutex_lock(&a->lock);
    if (hold)
        a->frees_held++;
    else
        a->frees_held--;
    pthread_mutex_unlock(&a->lock);
}

int
alloc_vdev_set_raidz(struct alloc *a, uint32_t vdev, unsigned width, unsigned nparity)
{
    if (nparity == 0 || nparity > VDEV_MAX_PARITY || width <= nparity || width > VDEV_MAX_CHILDREN)
        return ERR(-EINVAL);
    pthread_mutex_lock(&a->lock);
    int rc = 0;
    if (vdev >= a->nvdevs) {
        rc = ERR(-ENOENT);
    } else {
        a->vdevs[vdev]->rz_width = width;
        a->vdevs[vdev]->rz_nparity = nparity;
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

/* ---- allocation ---- */

uint64_t
alloc_slop_locked(const struct alloc *a)
{
    uint64_t slop = a->size / 32;
    if (slop < ALLOC_SLOP_MIN)
        slop = ALLOC_SLOP_MIN;
    if (slop > ALLOC_SLOP_MAX)
        slop = ALLOC_SLOP_MAX;
    if (slop > a->size / 4)
        slop = a->size / 4;
    return slop;
}

uint64_t
alloc_slop_bytes(struct alloc *a)
{
    pthread_mutex_lock(&a->lock);
    uint64_t slop = alloc_slop_locked(a);
    pthread_mutex_unlock(&a->lock);
    return slop;
}

/* Bytes the rotor vdev takes before moving on: the aliquot scaled by its share of free space. */
static uint64_t
vd_aliquot(const struct alloc *a, const struct alloc_vdev *vd)
{
    uint64_t pool_free = a->size - a->allocated - a->deferred;
    uint64_t vd_free_bytes = vd->asize - vd->allocated - vd->deferred;
    if (pool_free == 0)
        return ALLOC_ALIQUOT;
    double share = (double)vd_free_bytes / (double)pool_free * (double)a->nvdevs;
    double q = (double)ALLOC_ALIQUOT * share;
    if (q < (double)(ALLOC_ALIQUOT / 8))
        return ALLOC_ALIQUOT / 8;
    if (q > (double)(ALLOC_ALIQUOT * 64))
        return ALLOC_ALIQUOT * 64;
    return (uint64_t)q;
}

/* The metaslab to allocate size bytes from, or NULL when no free segment is large enough. */
static struct metaslab *
vd_pick_ms(struct alloc_vdev *vd, uint64_t size)
{
    if (vd->have_cur && range_tree_max_segment(vd->ms[vd->cur_ms].free) >= size)
        return &vd->ms[vd->cur_ms];
    size_t best = 0;
    uint64_t best_weight = 0;
    for (size_t i = 0; i < vd->nms; i++) {
        uint64_t w = range_tree_max_segment(vd->ms[i].free);
        if (w > best_weight) {
            best_weight = w;
            best = i;
        }
    }
    if (best_weight < size)
        return NULL;
    vd->cur_ms = best;
    vd->have_cur = true;
    return &vd->ms[best];
}

/* Allocates size bytes (unit multiple) on vd in txg. Returns 0, -ENOSPC or -ENOMEM (no change). */
static int
vd_allocate(struct alloc *a, struct alloc_vdev *vd, uint64_t txg, uint64_t size, uint64_t *out)
{
    ASSERT((size & (vd_unit(vd) - 1)) == 0);
    struct metaslab *ms = vd_pick_ms(vd, size);
    if (ms == NULL)
        return -ENOSPC;
    uint64_t off;
    if (!range_tree_find_first_fit(ms->free, ms->cursor, size, vd_unit(vd), &off) &&
        !range_tree_find_first_fit(ms->free, ms->start, size, vd_unit(vd), &off))
        BUG("largest segment fits but first fit failed: misaligned segment");

    struct alloc_journal *j = &a->journal[txg % ALLOC_TXG_SLOTS];
    size_t old_len = j->len;
    int rc = journal_append(a, txg, vd, SPACE_REC_ALLOC, off, size);
    if (rc != 0)
        return rc;
    rc = range_tree_remove(ms->free, off, size);
    if (rc != 0) {
        j->len = old_len;
        return rc;
    }
    ms->frag_dirty = true;
    ms->cursor = off + size;
    vd->allocated += size;
    a->allocated += size;
    *out = off;
    return 0;
}

static bool
is_avoided(uint32_t id, const uint32_t *avoid, size_t navoid)
{
    for (size_t i = 0; i < navoid; i++)
        if (avoid[i] == id)
            return true;
    return false;
}

int
alloc_allocate(struct alloc *a, uint64_t txg, uint64_t asize, unsigned flags, const uint32_t *avoid,
               size_t navoid, struct dva *out)
{
    if (asize == 0)
        return ERR(-EINVAL);
    pthread_mutex_lock(&a->lock);
    int rc = -ENOSPC;
    size_t n = a->nvdevs;
    uint64_t slop = alloc_slop_locked(a);
    bool rotor_avoided = n > 0 && is_avoided(a->vdevs[a->rotor]->id, avoid, navoid);

    for (unsigned pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            size_t idx = (a->rotor + i) % n;
            struct alloc_vdev *vd = a->vdevs[idx];
            if (is_avoided(vd->id, avoid, navoid) != (pass == 1))
                continue;
            uint64_t mask = vd_unit(vd) - 1;
            if (asize > (UINT64_MAX >> 2) - mask)
                continue;
            uint64_t size = vd->rz_width != 0 ? vdev_raidz_alloc_size(vd->rz_width, vd->rz_nparity,
                                                                      vd->ashift, asize)
                                              : (asize + mask) & ~mask;
            if ((size >> SECTOR_SHIFT) > UINT32_MAX)
                continue; /* a DVA cannot describe it */
            if (!(flags & ALLOC_USE_SLOP) && a->allocated + a->deferred + size > a->size - slop)
                continue;
            uint64_t off = 0;
            rc = vd_allocate(a, vd, txg, size, &off);
            if (rc == -ENOSPC)
                continue;
            if (rc != 0)
                goto out;
            out->vdev = vd->id;
            out->asize_sectors = (uint32_t)(size >> SECTOR_SHIFT);
            out->offset = off;
            if (idx != a->rotor && !rotor_avoided) {
                a->rotor = idx; /* the rotor vdev was full: move on */
                a->rotor_bytes = 0;
            }
            if (idx == a->rotor) {
                a->rotor_bytes += size;
                if (a->rotor_bytes >= vd_aliquot(a, vd)) {
                    a->rotor = (idx + 1) % n;
                    a->rotor_bytes = 0;
                }
            }
            goto out;
        }
    }
    rc = ERR(-ENOSPC);
out:
    pthread_mutex_unlock(&a->lock);
    return rc;
}

/* The vdev and byte range of a DVA being freed; VERIFYs it is allocated (no double free). */
static struct alloc_vdev *
free_lookup(struct alloc *a, const struct dva *dva, uint64_t *off, uint64_t *len)
{
    VERIFY3U(dva->vdev, <, a->nvdevs);
    struct alloc_vdev *vd = a->vdevs[dva->vdev];
    *off = dva->offset;
    *len = dva_asize(dva);
    VERIFY(vd_range_valid(vd, *off, *len));
    VERIFY(!vd_range_has_free(vd, *off, *len));
    return vd;
}

void
alloc_free_deferred(struct alloc *a, uint64_t txg, const struct dva *dva)
{
    pthread_mutex_lock(&a->lock);
    uint64_t off, len;
    struct alloc_vdev *vd = free_lookup(a, dva, &off, &len);
    unsigned s = (unsigned)(txg % ALLOC_TXG_SLOTS);
    if (range_tree_space(vd->freeing[s]) > 0)
        VERIFY3U(vd->freeing_txg[s], ==, txg); /* invariant 5 */
    VERIFY0(journal_append(a, txg, vd, SPACE_REC_FREE, off, len));
    VERIFY0(range_tree_add(vd->freeing[s], off, len));
    vd->freeing_txg[s] = txg;
    vd->allocated -= len;
    vd->deferred += len;
    a->allocated -= len;
    a->deferred += len;
    pthread_mutex_unlock(&a->lock);
}

void
alloc_free_immediate(struct alloc *a, uint64_t txg, const struct dva *dva)
{
    pthread_mutex_lock(&a->lock);
    uint64_t off, len;
    struct alloc_vdev *vd = free_lookup(a, dva, &off, &len);
    VERIFY0(journal_append(a, txg, vd, SPACE_REC_FREE, off, len));
    VERIFY0(vd_ms_apply(vd, MS_ADD, off, len, NULL));
    vd->allocated -= len;
    a->allocated -= len;
    pthread_mutex_unlock(&a->lock);
}

void
alloc_sync_done(struct alloc *a, uint64_t txg)
{
    pthread_mutex_lock(&a->lock);
    unsigned d = (unsigned)(txg % ALLOC_DEFER_SLOTS);
    for (size_t i = 0; i < a->nvdevs; i++) {
        struct alloc_vdev *vd = a->vdevs[i];
        range_tree_clear(vd->born); /* loading is over once txgs sync */
        /* Freed in txg - 2 or earlier: both older uberblocks no longer need it (invariant 3).
         * A scrub in progress holds them (alloc_hold_frees). */
        for (unsigned s = 0; s < ALLOC_DEFER_SLOTS && a->frees_held == 0; s++)
            if (range_tree_space(vd->defer[s]) > 0 && vd->defer_txg[s] + 2 <= txg)
                vd_release_defer(a, vd, s);
        for (unsigned s = 0; s < ALLOC_TXG_SLOTS; s++) {
            if (range_tree_space(vd->freeing[s]) == 0 || vd->freeing_txg[s] > txg)
                continue;
            if (range_tree_space(vd->defer[d]) == 0 || vd->defer_txg[d] < txg)
                vd->defer_txg[d] = txg;
            VERIFY0(range_tree_vacate_into(vd->freeing[s], vd->defer[d]));
        }
    }
    pthread_mutex_unlock(&a->lock);
}

/* ---- journal and checkpoint ---- */

int
alloc_take_journal(struct alloc *a, uint64_t txg, uint8_t **out, size_t *len)
{
    pthread_mutex_lock(&a->lock);
    struct alloc_journal *j = &a->journal[txg % ALLOC_TXG_SLOTS];
    *out = NULL;
    *len = 0;
    if (j->len > 0 && j->txg == txg) {
        rec_put(j->buf, SPACE_REC_TXG, 0, 0, txg);
        *out = j->buf;
        *len = j->len;
        j->buf = NULL;
        j->len = 0;
        j->cap = 0;
    }
    pthread_mutex_unlock(&a->lock);
    return 0;
}

bool
alloc_has_journal(struct alloc *a, uint64_t txg)
{
    pthread_mutex_lock(&a->lock);
    const struct alloc_journal *j = &a->journal[txg % ALLOC_TXG_SLOTS];
    bool has = j->len > 0 && j->txg == txg;
    pthread_mutex_unlock(&a->lock);
    return has;
}

struct ckpt_out {
    struct alloc *a;
    uint8_t *buf;
    size_t len;
    size_t cap;
};

static int
ckpt_extent_fn(void *arg, uint32_t vdev, uint64_t offset, uint64_t len)
{
    struct ckpt_out *c = arg;
    const struct alloc_vdev *vd = c->a->vdevs[vdev];
    size_t n = rec_count(vd, len);
    int rc = buf_reserve(&c->buf, &c->cap, c->len + n * SPACE_REC_SIZE);
    if (rc != 0)
        return rc;
    rec_put_range(c->buf + c->len, vd, SPACE_REC_ALLOC, offset, len);
    c->len += n * SPACE_REC_SIZE;
    return 0;
}

int
alloc_encode_checkpoint(struct alloc *a, uint64_t txg, uint8_t **out, size_t *len)
{
    pthread_mutex_lock(&a->lock);
    for (unsigned s = 0; s < ALLOC_TXG_SLOTS; s++)
        VERIFY3U(a->journal[s].len, ==, 0); /* records pending: the checkpoint would repeat them */
    struct ckpt_out c = { .a = a };
    int rc = buf_reserve(&c.buf, &c.cap, SPACE_REC_SIZE);
    if (rc != 0)
        goto out;
    rec_put(c.buf, SPACE_REC_TXG, 0, 0, txg);
    c.len = SPACE_REC_SIZE;
    for (size_t i = 0; rc == 0 && i < a->nvdevs; i++)
        rc = alloc_vd_walk_allocated(a->vdevs[i], ckpt_extent_fn, &c);
out:
    pthread_mutex_unlock(&a->lock);
    if (rc != 0) {
        free(c.buf);
        *out = NULL;
        *len = 0;
        return rc;
    }
    *out = c.buf;
    *len = c.len;
    return 0;
}

/* Applies one ALLOC or FREE record; -ECORRUPT when the range is not in the expected state. */
static int
load_one(struct alloc *a, uint64_t kind, uint32_t vdev, uint64_t off, uint64_t len,
         uint64_t current_txg)
{
    if (vdev >= a->nvdevs)
        return ERR(-ECORRUPT);
    struct alloc_vdev *vd = a->vdevs[vdev];
    if (!vd_range_valid(vd, off, len))
        return ERR(-ECORRUPT);
    int rc;
    uint64_t done = 0;
    if (kind == SPACE_REC_ALLOC) {
        if (vd_ms_apply(vd, MS_CONTAINS, off, len, NULL) != 1)
            return ERR(-ECORRUPT); /* some of it is allocated, freeing or deferred */
        rc = vd_ms_apply(vd, MS_REMOVE, off, len, &done);
        vd->allocated += done; /* exact even after a partial -ENOMEM (invariant 2) */
        a->allocated += done;
        if (rc == 0)
            rc = range_tree_add(vd->born, off, len);
        return rc;
    }
    if (vd_range_has_free(vd, off, len))
        return ERR(-ECORRUPT); /* double free */
    if (range_tree_contains(vd->born, off, len)) {
        /* Born and freed in the same txg (alloc_free_immediate): no durable tree refers to
         * it, and later records of this txg may reuse it, as they did live. */
        rc = range_tree_remove(vd->born, off, len);
        if (rc == 0)
            rc = vd_ms_apply(vd, MS_ADD, off, len, &done);
    } else if (a->load_txg + 1 >= current_txg) {
        /* Freed in one of the last two txgs: an older uberblock may still use it (inv. 3). */
        rc = vd_defer_add(vd, a->load_txg, off, len);
        done = rc == 0 ? len : 0;
        vd->deferred += done;
        a->deferred += done;
    } else {
        rc = vd_ms_apply(vd, MS_ADD, off, len, &done);
    }
    vd->allocated -= done;
    a->allocated -= done;
    return rc;
}

int
alloc_load_records(struct alloc *a, const uint8_t *recs, size_t len, uint64_t current_txg)
{
    if (len % SPACE_REC_SIZE != 0)
        return ERR(-ECORRUPT);
    pthread_mutex_lock(&a->lock);
    int rc = 0;
    for (size_t i = 0; i < len; i += SPACE_REC_SIZE) {
        uint64_t w0 = le64_get(recs + i), w1 = le64_get(recs + i + 8);
        uint64_t kind = w0 >> REC_KIND_SHIFT;
        uint32_t vdev = (uint32_t)((w0 >> REC_VDEV_SHIFT) & REC_VDEV_MAX);
        uint64_t sectors = w0 & REC_SECTORS_MAX;
        if (kind == SPACE_REC_TXG) {
            if (vdev != 0 || sectors != 0) {
                rc = ERR(-ECORRUPT);
                break;
            }
            if (!a->load_have_txg || a->load_txg != w1)
                for (size_t v = 0; v < a->nvdevs; v++)
                    range_tree_clear(a->vdevs[v]->born);
            a->load_have_txg = true;
            a->load_txg = w1;
            continue;
        }
        if ((kind != SPACE_REC_ALLOC && kind != SPACE_REC_FREE) || !a->load_have_txg) {
            rc = ERR(-ECORRUPT);
            break;
        }
        rc = load_one(a, kind, vdev, w1, sectors << SECTOR_SHIFT, current_txg);
        if (rc != 0)
            break;
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}
