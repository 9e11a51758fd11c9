/* SPDX-License-Identifier: MIT */
/*
 * arc: the adaptive replacement block cache (Megiddo & Modha, "ARC: A Self-Tuning, Low Overhead
 * Replacement Cache", FAST 2003), with byte sizes instead of page counts.
 *
 * Theory of operation
 * -------------------
 * Every key the cache knows about has one header (struct arc_buf) in a chained hash table and on
 * exactly one of four intrusive lists, or, once arc_remove() has dropped it while a reader still
 * holds a reference, on no list and not in the hash ("anonymous"):
 *
 *                arc_put (miss)          arc_get (hit)
 *     (none) -------------------> MRU ------------------> MFU <--+ arc_get (hit)
 *                                  |                     |  |   |
 *                       evict_one  |          evict_one  |  +---+
 *                                  v                     v
 *                              MRU_GHOST              MFU_GHOST
 *                                  |                     |
 *                                  +---- arc_put (ghost hit): adapt p ----> MFU
 *                                  +---- trim_ghosts, arc_remove -------> freed
 *
 *     MRU/MFU --arc_remove, refcnt > 0--> ANON --last arc_buf_unref--> freed
 *     MRU/MFU --arc_remove, refcnt == 0--> freed
 *
 * - MRU (ARC's T1): blocks seen once since they entered the cache. Data present.
 * - MFU (ARC's T2): blocks seen at least twice. Data present.
 * - MRU_GHOST / MFU_GHOST (B1 / B2): keys recently evicted from MRU / MFU; key and length only,
 *   data NULL, never referenced.
 * - ANON: removed from the cache while referenced; data valid until the last unref frees it.
 *
 * Each list runs from head (most recently used) to tail (least recently used). A hit moves the
 * header to the MFU head. Making room (make_room) evicts from the MRU tail while the MRU holds more
 * than the target p (target_mru) and from the MFU tail otherwise, skipping referenced buffers; if
 * every cached buffer is referenced the cache overflows max temporarily and the next unref that
 * finds size > max evicts again. A put whose key sits on a ghost list is a ghost hit: it moves p
 * towards the list that would have kept the block (MRU ghost: p grows by len × max(1, B2/B1);
 * MFU ghost: p shrinks by len × max(1, B1/B2); clamped to [0, max]) and inserts at the MFU head.
 * Ghost lists are trimmed from their tails so that |MRU| + |B1| <= max (while B1 is non-empty)
 * and |B1| + |B2| <= max, ARC's bounds |L1| <= c and |L1| + |L2| <= 2c in bytes.
 *
 * Locking: one mutex (arc->lock) protects everything in struct arc and every header field except
 * data and len, which are immutable while a reference is held (they change only when a ghost
 * header becomes a buffer again, which happens under the lock with refcnt 0). The refcount is
 * protected by the mutex; arc_buf_unref() reaches it through the header's back-pointer.
 *
 * Invariants (checked by arc_check):
 *  1. Every header in the hash is on exactly the list its state names; the list sizes and counts
 *     equal the sums over their members; no anonymous header is in the hash.
 *  2. Ghost headers have data == NULL and refcnt == 0; MRU/MFU headers own their data.
 *  3. mru_size + mfu_size <= max, unless every cached buffer is referenced.
 *  4. mru_ghost_size + mfu_ghost_size <= max; if B1 is non-empty, mru_size + mru_ghost_size <= max.
 *  5. 0 <= p <= max.
 *  6. nanon counts the anonymous (removed but referenced) buffers; arc_free requires it to be 0
 *     and every cached refcnt to be 0.
 */
#include "core/arc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/hash.h"
#include "core/blkbuf.h"

enum arc_state {
    ARC_MRU = 0,
    ARC_MFU = 1,
    ARC_MRU_GHOST = 2,
    ARC_MFU_GHOST = 3,
    ARC_NLISTS = 4,
    ARC_ANON = 4, /* removed while referenced: on no list, not in the hash */
};

struct arc_buf {
    struct arc *arc;           /* back-pointer for arc_buf_unref; the cache outlives all refs */
    struct arc_key key;        /* immutable */
    void *data;                /* owned; NULL on ghost lists; immutable while referenced */
    size_t len;                /* bytes of data (kept on ghost lists for accounting) */
    uint64_t refcnt;           /* external references; under arc->lock */
    enum arc_state state;      /* which list, or ARC_ANON */
    struct arc_buf *prev;      /* towards the list head (more recent) */
    struct arc_buf *next;      /* towards the list tail (less recent) */
    struct arc_buf *hash_next; /* hash chain */
};

struct arc_list {
    struct arc_buf *head; /* most recently used */
    struct arc_buf *tail; /* least recently used */
    uint64_t size;        /* bytes: sum of member len */
    uint64_t count;       /* members */
};

struct arc {
    pthread_mutex_t lock; /* protects everything below and headers (see above) */
    uint64_t max;         /* budget in bytes (ARC's c) */
    uint64_t p;           /* target size of MRU in bytes, 0..max */
    struct arc_list lists[ARC_NLISTS];
    struct arc_buf **buckets; /* hash chains; nbuckets entries */
    size_t nbuckets;          /* power of two */
    size_t nhashed;           /* headers in the hash (= sum of list counts) */
    uint64_t nanon;           /* anonymous headers (invariant 6) */
    uint64_t hits, misses, mru_hits, mfu_hits, mru_ghost_hits, mfu_ghost_hits, evictions;
};

#define ARC_MIN_BUCKETS 64

/* Key hashing */

static size_t
key_hash(const struct arc_key *key)
{
    uint64_t h = hash_mix64(key->vdev ^ 0x9e3779b97f4a7c15ULL);
    h = hash_mix64(h ^ key->offset);
    h = hash_mix64(h ^ key->birth);
    return (size_t)h;
}

static bool
key_eq(const struct arc_key *a, const struct arc_key *b)
{
    return a->vdev == b->vdev && a->offset == b->offset && a->birth == b->birth;
}

static struct arc_buf *
hash_find(const struct arc *arc, const struct arc_key *key)
{
    for (struct arc_buf *b = arc->buckets[key_hash(key) & (arc->nbuckets - 1)]; b != NULL;
         b = b->hash_next) {
        if (key_eq(&b->key, key))
            return b;
    }
    return NULL;
}

/* Doubles the table when the load factor passes 1. Allocation failure just keeps the old table. */
static void
hash_maybe_grow(struct arc *arc)
{
    if (arc->nhashed <= arc->nbuckets)
        return;
    size_t ncap = arc->nbuckets * 2;
    struct arc_buf **nb = calloc(ncap, sizeof(*nb));
    if (nb == NULL)
        return;
    for (size_t i = 0; i < arc->nbuckets; i++) {
        struct arc_buf *b = arc->buckets[i];
        while (b != NULL) {
            struct arc_buf *next = b->hash_next;
            size_t j = key_hash(&b->key) & (ncap - 1);
            b->hash_next = nb[j];
            nb[j] = b;
            b = next;
        }
    }
    free(arc->buckets);
    arc->buckets = nb;
    arc->nbuckets = ncap;
}

static void
hash_insert(struct arc *arc, struct arc_buf *b)
{
    ASSERT(hash_find(arc, &b->key) == NULL);
    size_t i = key_hash(&b->key) & (arc->nbuckets - 1);
    b->hash_next = arc->buckets[i];
    arc->buckets[i] = b;
    arc->nhashed++;
    hash_maybe_grow(arc);
}

static void
hash_remove(struct arc *arc, struct arc_buf *b)
{
    struct arc_buf **pp = &arc->buckets[key_hash(&b->key) & (arc->nbuckets - 1)];
    while (*pp != b) {
        VERIFY(*pp != NULL);
        pp = &(*pp)->hash_next;
    }
    *pp = b->hash_next;
    b->hash_next = NULL;
    ASSERT(arc->nhashed > 0);
    arc->nhashed--;
}

/* Lists */

static void
list_push_head(struct arc *arc, enum arc_state st, struct arc_buf *b)
{
    ASSERT(st < ARC_NLISTS);
    struct arc_list *l = &arc->lists[st];
    b->state = st;
    b->prev = NULL;
    b->next = l->head;
    if (l->head != NULL)
        l->head->prev = b;
    else
        l->tail = b;
    l->head = b;
    l->size += b->len;
    l->count++;
}

static void
list_unlink(struct arc *arc, struct arc_buf *b)
{
    ASSERT(b->state < ARC_NLISTS);
    struct arc_list *l = &arc->lists[b->state];
    if (b->prev != NULL)
        b->prev->next = b->next;
    else
        l->head = b->next;
    if (b->next != NULL)
        b->next->prev = b->prev;
    else
        l->tail = b->prev;
    b->prev = b->next = NULL;
    ASSERT(l->size >= b->len && l->count > 0);
    l->size -= b->len;
    l->count--;
}

static uint64_t
cached_size(const struct arc *arc)
{
    return arc->lists[ARC_MRU].size + arc->lists[ARC_MFU].size;
}

static uint64_t
ghost_size(const struct arc *arc)
{
    return arc->lists[ARC_MRU_GHOST].size + arc->lists[ARC_MFU_GHOST].size;
}

/* Drops a ghost header entirely. */
static void
ghost_drop(struct arc *arc, struct arc_buf *b)
{
    ASSERT(b->state == ARC_MRU_GHOST || b->state == ARC_MFU_GHOST);
    ASSERT(b->data == NULL && b->refcnt == 0);
    list_unlink(arc, b);
    hash_remove(arc, b);
    free(b);
}

/* Trims the ghost lists from their tails to invariant 4. */
static void
trim_ghosts(struct arc *arc)
{
    struct arc_list *b1 = &arc->lists[ARC_MRU_GHOST];
    struct arc_list *b2 = &arc->lists[ARC_MFU_GHOST];
    while (b1->tail != NULL && arc->lists[ARC_MRU].size + b1->size > arc->max)
        ghost_drop(arc, b1->tail);
    while (ghost_size(arc) > arc->max)
        ghost_drop(arc, b2->tail != NULL ? b2->tail : b1->tail);
}

/* Moves an unreferenced cached buffer to the matching ghost list, freeing its data. */
static void
evict_one(struct arc *arc, struct arc_buf *b)
{
    ASSERT(b->state == ARC_MRU || b->state == ARC_MFU);
    ASSERT(b->refcnt == 0);
    enum arc_state ghost = b->state == ARC_MRU ? ARC_MRU_GHOST : ARC_MFU_GHOST;
    list_unlink(arc, b);
    blkbuf_free(b->data);
    b->data = NULL;
    arc->evictions++;
    if (b->len == 0) { /* nothing to remember: a zero-byte ghost would never be trimmed */
        hash_remove(arc, b);
        free(b);
        return;
    }
    list_push_head(arc, ghost, b);
}

/* The least recently used unreferenced buffer at or before *cursor, advancing the cursor past it.
 */
static struct arc_buf *
next_victim(struct arc_buf **cursor)
{
    while (*cursor != NULL && (*cursor)->refcnt > 0)
        *cursor = (*cursor)->prev;
    struct arc_buf *v = *cursor;
    if (v != NULL)
        *cursor = v->prev;
    return v;
}

/*
 * ARC's REPLACE, repeated until need more bytes fit under max: evict from the MRU tail while the
 * MRU is over its target p (or exactly at it when the miss hit the MFU ghost list), else from the
 * MFU tail, falling back to the other list when the chosen one has only referenced buffers.
 * Returns false when everything left is referenced (the caller overflows temporarily).
 */
static bool
make_room(struct arc *arc, uint64_t need, bool mfu_ghost_hit)
{
    struct arc_buf *cur[2] = { arc->lists[ARC_MRU].tail, arc->lists[ARC_MFU].tail };
    while (cached_size(arc) + need > arc->max) {
        uint64_t t1 = arc->lists[ARC_MRU].size;
        bool from_mru = t1 > 0 && (t1 > arc->p || (mfu_ghost_hit && t1 == arc->p));
        struct arc_buf *v = next_victim(&cur[from_mru ? ARC_MRU : ARC_MFU]);
        if (v == NULL)
            v = next_victim(&cur[from_mru ? ARC_MFU : ARC_MRU]);
        if (v == NULL)
            return false;
        evict_one(arc, v);
    }
    return true;
}

/* Frees every header on one list (arc_free). */
static void
free_list(struct arc *arc, enum arc_state st)
{
    struct arc_buf *b = arc->lists[st].head;
    while (b != NULL) {
        struct arc_buf *next = b->next;
        VERIFY3U(b->refcnt, ==, 0);
        blkbuf_free(b->data);
        free(b);
        b = next;
    }
}

/* Public API */

struct arc *
arc_new(size_t max_bytes)
{
    struct arc *arc = calloc(1, sizeof(*arc));
    if (arc == NULL)
        return NULL;
    arc->buckets = calloc(ARC_MIN_BUCKETS, sizeof(*arc->buckets));
    if (arc->buckets == NULL)
        goto fail;
    arc->nbuckets = ARC_MIN_BUCKETS;
    if (pthread_mutex_init(&arc->lock, NULL) != 0)
        goto fail;
    arc->max = max_bytes;
    arc->p = 0;
    return arc;
fail:
    free(arc->buckets);
    free(arc);
    return NULL;
}

void
arc_free(struct arc *arc)
{
    if (arc == NULL)
        return;
    VERIFY3U(arc->nanon, ==, 0);
    for (int st = 0; st < ARC_NLISTS; st++)
        free_list(arc, (enum arc_state)st);
    free(arc->buckets);
    VERIFY0(pthread_mutex_destroy(&arc->lock));
    free(arc);
}

void
arc_set_max(struct arc *arc, size_t max_bytes)
{
    VERIFY0(pthread_mutex_lock(&arc->lock));
    arc->max = max_bytes;
    if (arc->p > arc->max)
        arc->p = arc->max;
    make_room(arc, 0, false);
    trim_ghosts(arc);
    ASSERT(arc->p <= arc->max);
    VERIFY0(pthread_mutex_unlock(&arc->lock));
}

struct arc_buf *
arc_get(struct arc *arc, const struct arc_key *key)
{
    ASSERT(arc != NULL && key != NULL);
    VERIFY0(pthread_mutex_lock(&arc->lock));
    struct arc_buf *b = hash_find(arc, key);
    if (b == NULL || b->state == ARC_MRU_GHOST || b->state == ARC_MFU_GHOST) {
        /* A ghost hit is counted by the arc_put that follows the read. */
        arc->misses++;
        b = NULL;
        goto out;
    }
    arc->hits++;
    if (b->state == ARC_MRU)
        arc->mru_hits++;
    else
        arc->mfu_hits++;
    list_unlink(arc, b);
    list_push_head(arc, ARC_MFU, b);
    b->refcnt++; /* sizes moved from MRU to MFU: invariants 3 and 4 still hold */
out:
    VERIFY0(pthread_mutex_unlock(&arc->lock));
    return b;
}

/* Adapts p for a ghost hit on b (still on its ghost list), per Megiddo-Modha with byte sizes. */
static void
adapt_on_ghost_hit(struct arc *arc, const struct arc_buf *b)
{
    uint64_t b1 = arc->lists[ARC_MRU_GHOST].size;
    uint64_t b2 = arc->lists[ARC_MFU_GHOST].size;
    if (b->state == ARC_MRU_GHOST) {
        ASSERT(b1 >= b->len && b1 > 0);
        uint64_t ratio = b2 / b1 > 1 ? b2 / b1 : 1;
        uint64_t delta = ratio * b->len;
        arc->p = arc->max - arc->p > delta ? arc->p + delta : arc->max;
        arc->mru_ghost_hits++;
    } else {
        ASSERT(b2 >= b->len && b2 > 0);
        uint64_t ratio = b1 / b2 > 1 ? b1 / b2 : 1;
        uint64_t delta = ratio * b->len;
        arc->p = arc->p > delta ? arc->p - delta : 0;
        arc->mfu_ghost_hits++;
    }
}

struct arc_buf *
arc_put(struct arc *arc, const struct arc_key *key, void *data, size_t len)
{
    ASSERT(arc != NULL && key != NULL);
    ASSERT(data != NULL || len == 0);
    VERIFY0(pthread_mutex_lock(&arc->lock));
    struct arc_buf *b = hash_find(arc, key);
    if (b != NULL && (b->state == ARC_MRU || b->state == ARC_MFU)) {
        /* Lost a race with another reader of the same block: same access, no promotion. */
        blkbuf_free(data);
        b->refcnt++;
        goto out;
    }
    bool ghost_hit = b != NULL;
    bool mfu_ghost_hit = false;
    if (ghost_hit) {
        mfu_ghost_hit = b->state == ARC_MFU_GHOST;
        adapt_on_ghost_hit(arc, b);
        list_unlink(arc, b);
        hash_remove(arc, b);
        ASSERT(b->data == NULL && b->refcnt == 0);
    } else {
        b = malloc(sizeof(*b));
        if (b == NULL) {
            blkbuf_free(data);
            goto out;
        }
        b->arc = arc;
        b->key = *key;
        b->refcnt = 0;
    }
    make_room(arc, len, mfu_ghost_hit);
    b->data = data;
    b->len = len;
    b->refcnt = 1;
    b->hash_next = NULL;
    /* A ghost hit means the block was wanted again: it goes straight to MFU (ARC cases II, III). */
    list_push_head(arc, ghost_hit ? ARC_MFU : ARC_MRU, b);
    hash_insert(arc, b);
    trim_ghosts(arc);
out:
    VERIFY0(pthread_mutex_unlock(&arc->lock));
    return b;
}

void
arc_remove(struct arc *arc, const struct arc_key *key)
{
    ASSERT(arc != NULL && key != NULL);
    VERIFY0(pthread_mutex_lock(&arc->lock));
    struct arc_buf *b = hash_find(arc, key);
    if (b == NULL)
        goto out;
    if (b->state == ARC_MRU_GHOST || b->state == ARC_MFU_GHOST) {
        ghost_drop(arc, b);
        goto out;
    }
    list_unlink(arc, b);
    hash_remove(arc, b);
    if (b->refcnt > 0) {
        b->state = ARC_ANON;
        arc->nanon++;
    } else {
        blkbuf_free(b->data);
        free(b);
    }
out:
    VERIFY0(pthread_mutex_unlock(&arc->lock));
}

const void *
arc_buf_data(const struct arc_buf *buf)
{
    ASSERT(buf != NULL);
    return buf->data;
}

size_t
arc_buf_len(const struct arc_buf *buf)
{
    ASSERT(buf != NULL);
    return buf->len;
}

void
arc_buf_unref(struct arc_buf *buf)
{
    if (buf == NULL)
        return;
    struct arc *arc = buf->arc;
    VERIFY0(pthread_mutex_lock(&arc->lock));
    VERIFY3U(buf->refcnt, >, 0);
    ASSERT(buf->state == ARC_MRU || buf->state == ARC_MFU || buf->state == ARC_ANON);
    buf->refcnt--;
    if (buf->refcnt == 0) {
        if (buf->state == ARC_ANON) {
            ASSERT(arc->nanon > 0);
            arc->nanon--;
            blkbuf_free(buf->data);
            free(buf);
        } else if (cached_size(arc) > arc->max) {
            /* An overflow (invariant 3) ends as soon as something becomes evictable. */
            make_room(arc, 0, false);
            trim_ghosts(arc);
        }
    }
    VERIFY0(pthread_mutex_unlock(&arc->lock));
}

void
arc_get_stats(struct arc *arc, struct arc_stats *out)
{
    VERIFY0(pthread_mutex_lock(&arc->lock));
    *out = (struct arc_stats){
        .hits = arc->hits,
        .misses = arc->misses,
        .mru_hits = arc->mru_hits,
        .mfu_hits = arc->mfu_hits,
        .mru_ghost_hits = arc->mru_ghost_hits,
        .mfu_ghost_hits = arc->mfu_ghost_hits,
        .evictions = arc->evictions,
        .size = cached_size(arc),
        .max = arc->max,
        .mru_size = arc->lists[ARC_MRU].size,
        .mfu_size = arc->lists[ARC_MFU].size,
        .target_mru = arc->p,
        .nbufs = arc->lists[ARC_MRU].count + arc->lists[ARC_MFU].count,
    };
    VERIFY0(pthread_mutex_unlock(&arc->lock));
}

/* Walks one list checking links, state, membership in the hash and the size/count totals. */
static bool
check_list(const struct arc *arc, enum arc_state st, bool *unreferenced)
{
    const struct arc_list *l = &arc->lists[st];
    uint64_t size = 0, count = 0;
    const struct arc_buf *prev = NULL;
    for (const struct arc_buf *b = l->head; b != NULL; b = b->next) {
        if (b->prev != prev || b->state != st || b->arc != arc)
            return false;
        if (hash_find(arc, &b->key) != b)
            return false;
        bool ghost = st == ARC_MRU_GHOST || st == ARC_MFU_GHOST;
        if (ghost && (b->data != NULL || b->refcnt != 0 || b->len == 0))
            return false;
        if (!ghost && b->data == NULL && b->len != 0)
            return false;
        if (!ghost && b->refcnt == 0)
            *unreferenced = true;
        size += b->len;
        count++;
        if (count > arc->nhashed)
            return false; /* a cycle */
        prev = b;
    }
    return l->tail == prev && l->size == size && l->count == count;
}

bool
arc_check(struct arc *arc)
{
    VERIFY0(pthread_mutex_lock(&arc->lock));
    bool ok = false;
    bool unreferenced = false;
    /* Invariants 1 and 2. */
    uint64_t members = 0;
    for (int st = 0; st < ARC_NLISTS; st++) {
        if (!check_list(arc, (enum arc_state)st, &unreferenced))
            goto out;
        members += arc->lists[st].count;
    }
    size_t hashed = 0;
    for (size_t i = 0; i < arc->nbuckets; i++) {
        for (const struct arc_buf *b = arc->buckets[i]; b != NULL; b = b->hash_next) {
            if ((key_hash(&b->key) & (arc->nbuckets - 1)) != i || b->state >= ARC_NLISTS)
                goto out;
            if (++hashed > arc->nhashed)
                goto out;
        }
    }
    if (hashed != arc->nhashed || members != hashed)
        goto out;
    /* Invariant 3: overflow only while every cached buffer is referenced. */
    if (cached_size(arc) > arc->max && unreferenced)
        goto out;
    /* Invariant 4. */
    if (ghost_size(arc) > arc->max)
        goto out;
    if (arc->lists[ARC_MRU_GHOST].count > 0 &&
        arc->lists[ARC_MRU].size + arc->lists[ARC_MRU_GHOST].size > arc->max)
        goto out;
    /* Invariant 5. */
    if (arc->p > arc->max)
        goto out;
    ok = true;
out:
    VERIFY0(pthread_mutex_unlock(&arc->lock));
    return ok;
}
