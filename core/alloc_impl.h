/* SPDX-License-Identifier: MIT */
/*
 * alloc_impl: what alloc.c (allocating, freeing, the journal) and alloc_stats.c (space numbers,
 * walking the allocated set, alloc_check) share: the allocator's structures and limits. The
 * theory of operation, the invariants and the locking are described in alloc.c. Private to the
 * allocator.
 */
#ifndef LCPFS_CORE_ALLOC_IMPL_H
#define LCPFS_CORE_ALLOC_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/alloc.h"
#include "core/range_tree.h"

#define ALLOC_TXG_SLOTS    4u             /* freeing trees and pending journals: txg % 4 */
#define ALLOC_DEFER_SLOTS  2u             /* defer trees: txg % 2 */
#define ALLOC_ALIQUOT      (1ull << 20)   /* bytes per rotor turn for an average vdev */
#define ALLOC_FRAG_SMALL   (128ull << 10) /* free segments below this count as fragments */
#define ALLOC_MS_TARGET    128u           /* metaslabs per vdev alloc_pick_ms_shift aims for */
#define ALLOC_MS_SHIFT_MIN 24u
#define ALLOC_MS_SHIFT_MAX 34u
#define ALLOC_ASHIFT_MAX   24u
#define ALLOC_MS_MAX       (1u << 20) /* metaslabs per vdev: sanity bound */
#define REC_KIND_SHIFT     62
#define REC_VDEV_SHIFT     40
#define REC_VDEV_MAX       ((1u << 22) - 1)
#define REC_SECTORS_MAX    ((1ull << 40) - 1)
#define ALLOC_SLOP_MIN     (4ull << 20)
#define ALLOC_SLOP_MAX     (128ull << 30)

_Static_assert(SPACE_REC_SIZE == 16, "space records are two u64 words");
_Static_assert((ALLOC_TXG_SLOTS & (ALLOC_TXG_SLOTS - 1)) == 0, "slots are a power of two");

struct metaslab {
    uint64_t start;          /* byte offset in the vdev, multiple of 2^ms_shift */
    uint64_t size;           /* bytes; 2^ms_shift except maybe the last */
    struct range_tree *free; /* allocatable space, within [start, start + size) */
    uint64_t cursor;         /* first-fit cursor: end of the last allocation here */
    uint64_t small_bytes;    /* cached: free bytes in segments < ALLOC_FRAG_SMALL */
    bool frag_dirty;         /* small_bytes is stale */
};

struct alloc_vdev {
    uint32_t id;
    uint64_t asize; /* bytes, multiple of 2^ashift */
    unsigned ashift;
    unsigned ms_shift;
    unsigned rz_width, rz_nparity; /* RAID-Z inflation (alloc_vdev_set_raidz); 0 = none */
    struct metaslab *ms;
    size_t nms;
    size_t cur_ms; /* current metaslab (locality); valid when have_cur */
    bool have_cur;
    struct range_tree *freeing[ALLOC_TXG_SLOTS]; /* freed in freeing_txg[s], not yet synced */
    uint64_t freeing_txg[ALLOC_TXG_SLOTS];
    struct range_tree *defer[ALLOC_DEFER_SLOTS]; /* freed in defer_txg[s], synced */
    uint64_t defer_txg[ALLOC_DEFER_SLOTS];
    uint64_t allocated;      /* bytes allocated (not free, freeing or deferred) */
    uint64_t deferred;       /* bytes in freeing + defer trees */
    struct range_tree *born; /* load only: ALLOCs replayed under the current TXG marker */
};

struct alloc_journal {
    uint64_t txg; /* meaningful when len > 0 */
    uint8_t *buf; /* record 0 is reserved for the TXG marker */
    size_t len;   /* bytes used including the marker slot; 0 = nothing pending */
    size_t cap;
};

struct alloc {
    pthread_mutex_t lock;
    struct alloc_vdev **vdevs; /* index = vdev id */
    size_t nvdevs;
    size_t vdevs_cap;
    uint64_t size;        /* sum of vdev asizes */
    uint64_t allocated;   /* sum of vd->allocated */
    uint64_t deferred;    /* sum of vd->deferred */
    size_t rotor;         /* vdev index taking allocations */
    unsigned frees_held;  /* alloc_hold_frees count: defer slots are not released */
    uint64_t rotor_bytes; /* bytes the rotor vdev took this turn */
    struct alloc_journal journal[ALLOC_TXG_SLOTS];
    bool load_have_txg; /* a TXG marker was seen by alloc_load_records */
    uint64_t load_txg;  /* the last one */
};

static inline uint64_t
vd_unit(const struct alloc_vdev *vd)
{
    return 1ull << vd->ashift;
}

static inline uint64_t
min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* The slop space kept back from ordinary allocations (a->lock held). */
uint64_t alloc_slop_locked(const struct alloc *a);
/*
 * Calls fn for each maximal allocated extent of vd in offset order (a->lock held). Returns fn's
 * first nonzero value, or -ENOMEM building the temporary union tree.
 */
int alloc_vd_walk_allocated(struct alloc_vdev *vd, alloc_walk_fn fn, void *arg);

#endif
