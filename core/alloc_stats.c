/* SPDX-License-Identifier: MIT */
/*
 * alloc_stats: the allocator's read side (API in core/alloc.h): space and fragmentation numbers,
 * walking the allocated set (the gaps in the union of every free, freeing and deferred tree),
 * and alloc_check, which verifies invariants 1, 2 and 5 of alloc.c. Every call takes a->lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "core/alloc_impl.h"

/* ---- walking the allocated set: gaps in the union of every free-ish tree ---- */

struct gap_walk {
    struct range_tree *uni;
    uint32_t vdev;
    uint64_t prev_end;
    alloc_walk_fn fn;
    void *arg;
};

static int
union_add_fn(void *arg, uint64_t start, uint64_t len)
{
    struct gap_walk *g = arg;
    return range_tree_add(g->uni, start, len);
}

static int
gap_fn(void *arg, uint64_t start, uint64_t len)
{
    struct gap_walk *g = arg;
    int rc = 0;
    if (start > g->prev_end)
        rc = g->fn(g->arg, g->vdev, g->prev_end, start - g->prev_end);
    g->prev_end = start + len;
    return rc;
}

int
alloc_vd_walk_allocated(struct alloc_vdev *vd, alloc_walk_fn fn, void *arg)
{
    struct gap_walk g = { .vdev = vd->id, .prev_end = 0, .fn = fn, .arg = arg };
    g.uni = range_tree_new();
    if (g.uni == NULL)
        return ERR(-ENOMEM);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < vd->nms; i++)
        rc = range_tree_walk(vd->ms[i].free, union_add_fn, &g);
    for (unsigned s = 0; rc == 0 && s < ALLOC_TXG_SLOTS; s++)
        rc = range_tree_walk(vd->freeing[s], union_add_fn, &g);
    for (unsigned s = 0; rc == 0 && s < ALLOC_DEFER_SLOTS; s++)
        rc = range_tree_walk(vd->defer[s], union_add_fn, &g);
    if (rc == 0)
        rc = range_tree_walk(g.uni, gap_fn, &g);
    if (rc == 0 && g.prev_end < vd->asize)
        rc = fn(arg, vd->id, g.prev_end, vd->asize - g.prev_end);
    range_tree_free(g.uni);
    return rc;
}

/* ---- stats and checks ---- */

static int
small_seg_fn(void *arg, uint64_t start, uint64_t len)
{
    (void)start;
    if (len < ALLOC_FRAG_SMALL)
        *(uint64_t *)arg += len;
    return 0;
}

void
alloc_get_stats(struct alloc *a, struct alloc_stats *out)
{
    pthread_mutex_lock(&a->lock);
    uint64_t free_bytes = 0, small = 0;
    unsigned nms = 0;
    for (size_t i = 0; i < a->nvdevs; i++) {
        struct alloc_vdev *vd = a->vdevs[i];
        for (size_t m = 0; m < vd->nms; m++) {
            struct metaslab *ms = &vd->ms[m];
            if (ms->frag_dirty) {
                ms->small_bytes = 0;
                range_tree_walk(ms->free, small_seg_fn, &ms->small_bytes);
                ms->frag_dirty = false;
            }
            small += ms->small_bytes;
            free_bytes += range_tree_space(ms->free);
        }
        nms += (unsigned)vd->nms;
    }
    out->size = a->size;
    out->allocated = a->allocated;
    out->free = a->size - a->allocated;
    out->deferred = a->deferred;
    out->slop = alloc_slop_locked(a);
    out->fragmentation = free_bytes == 0 ? 0 : (unsigned)(small * 100 / free_bytes);
    out->nmetaslabs = nms;
    pthread_mutex_unlock(&a->lock);
}

void
alloc_get_space(struct alloc *a, struct alloc_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&a->lock);
    out->size = a->size;
    out->allocated = a->allocated;
    out->free = a->size - a->allocated;
    out->deferred = a->deferred;
    out->slop = alloc_slop_locked(a);
    pthread_mutex_unlock(&a->lock);
}

uint64_t
alloc_vdev_allocated(struct alloc *a, uint32_t vdev)
{
    pthread_mutex_lock(&a->lock);
    uint64_t v = vdev < a->nvdevs && a->vdevs[vdev] != NULL ? a->vdevs[vdev]->allocated : 0;
    pthread_mutex_unlock(&a->lock);
    return v;
}

int
alloc_walk_allocated(struct alloc *a, alloc_walk_fn fn, void *arg)
{
    pthread_mutex_lock(&a->lock);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < a->nvdevs; i++)
        rc = alloc_vd_walk_allocated(a->vdevs[i], fn, arg);
    pthread_mutex_unlock(&a->lock);
    return rc;
}

struct check_ctx {
    struct range_tree *uni;
    uint64_t lo, hi, mask;
    bool ok;
};

/* Adds a segment to the union, failing on overlap (invariant 1) or out-of-bounds/misalignment. */
static int
check_seg_fn(void *arg, uint64_t start, uint64_t len)
{
    struct check_ctx *c = arg;
    if (start < c->lo || start + len > c->hi || ((start | len) & c->mask) != 0 ||
        range_tree_intersects(c->uni, start, len) || range_tree_add(c->uni, start, len) != 0) {
        c->ok = false;
        return 1;
    }
    return 0;
}

static bool
vd_check(const struct alloc_vdev *vd, uint64_t *deferred_out)
{
    struct check_ctx c = { .uni = range_tree_new(), .mask = vd_unit(vd) - 1, .ok = true };
    if (c.uni == NULL)
        return false;
    uint64_t free_bytes = 0, deferred = 0;
    for (size_t i = 0; c.ok && i < vd->nms; i++) {
        const struct metaslab *ms = &vd->ms[i];
        c.lo = ms->start;
        c.hi = ms->start + ms->size;
        if (!range_tree_check(ms->free))
            c.ok = false;
        else
            range_tree_walk(ms->free, check_seg_fn, &c);
        free_bytes += range_tree_space(ms->free);
    }
    c.lo = 0;
    c.hi = vd->asize;
    for (unsigned s = 0; c.ok && s < ALLOC_TXG_SLOTS; s++) {
        if (!range_tree_check(vd->freeing[s]))
            c.ok = false;
        else if (range_tree_space(vd->freeing[s]) > 0 && vd->freeing_txg[s] % ALLOC_TXG_SLOTS != s)
            c.ok = false; /* invariant 5 */
        else
            range_tree_walk(vd->freeing[s], check_seg_fn, &c);
        deferred += range_tree_space(vd->freeing[s]);
    }
    for (unsigned s = 0; c.ok && s < ALLOC_DEFER_SLOTS; s++) {
        if (!range_tree_check(vd->defer[s]))
            c.ok = false;
        else
            range_tree_walk(vd->defer[s], check_seg_fn, &c);
        deferred += range_tree_space(vd->defer[s]);
    }
    range_tree_free(c.uni);
    if (!c.ok || deferred != vd->deferred || vd->allocated + deferred + free_bytes != vd->asize)
        return false; /* invariant 2 */
    *deferred_out = deferred;
    return true;
}

bool
alloc_check(struct alloc *a)
{
    pthread_mutex_lock(&a->lock);
    bool ok = true;
    uint64_t size = 0, allocated = 0, deferred = 0;
    for (size_t i = 0; ok && i < a->nvdevs; i++) {
        const struct alloc_vdev *vd = a->vdevs[i];
        uint64_t d = 0;
        ok = vd->id == i && vd_check(vd, &d);
        size += vd->asize;
        allocated += vd->allocated;
        deferred += d;
    }
    ok = ok && size == a->size && allocated == a->allocated && deferred == a->deferred;
    ok = ok && (a->nvdevs == 0 || a->rotor < a->nvdevs);
    pthread_mutex_unlock(&a->lock);
    return ok;
}
