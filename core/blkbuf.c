/* SPDX-License-Identifier: MIT */
/*
 * blkbuf: block data buffers (see blkbuf.h for why).
 *
 * Theory of operation. At first use one range of ARENA_BYTES of address space is reserved
 * (PROT_NONE, no memory behind it). It is cut into 2 MiB slabs. A size class (a multiple of
 * 4 KiB up to BLKBUF_SLAB_MAX) takes a slab by mapping it read-write with MAP_POPULATE — all
 * 512 pages in one system call — and carves it lazily into buffers of its size, handed out
 * from the slab's free list (a stack of buffer indexes beside the slab, so that neither taking nor
 * freeing a buffer touches its memory, usually long out of the CPU's caches) or, when that is
 * empty, from the slab's uncarved tail. A freed buffer goes back to its slab, found from its
 * address alone. A class keeps the slabs that have free buffers on a list. A slab whose
 * buffers are all free stays mapped for a while: memory moves in bursts between the writers'
 * dirty blocks and the cache (a txg's worth of blocks evicted at its end, as many allocated by
 * writers filling the next), and giving it back at once only to fault it in again cost as
 * much as the first touch. So a slab goes back to the kernel (PROT_NONE again) only once it has
 * stayed empty for a while, only while its class holds CLASS_KEEP_BYTES free elsewhere, and
 * only while the empty slabs of all classes add up to more than the spare held by the pools
 * (blkbuf_spare_hold: the dirty data a pool's writers may hold, which cycles through the cache
 * once it is full: a txg's blocks enter it and as many old ones leave). blkbuf_trim does that,
 * and a free that empties a slab scans its class too, at most every BLKBUF_IDLE_MS. The address
 * range is reused by the next class that needs a slab. Sizes outside the classes, or any buffer
 * once the arena is full (or could not be reserved), come from aligned_alloc; blkbuf_free tells
 * them apart by address.
 *
 * Locking: one mutex per class (its slabs and their free lists), and arena_lock for taking and
 * returning slabs; a class lock may be held while taking arena_lock, never the reverse.
 *
 * Invariants:
 *   1. A slab is in use (cls != 0) exactly while it is mapped read-write; in_use counts its
 *      buffers handed out; it is on its class's partial list iff it has a free or uncarved
 *      buffer, except between collect_idle and slab_return (empty, reachable by no one, and
 *      already taken out of its class's free_bytes) and between slab_take and its first
 *      partial_push (new, reachable only by the thread that took it).
 *   2. A class's free_bytes is the sum over its slabs of (per_slab - in_use) * size.
 *   3. Every address in a slab that is not in use is PROT_NONE (a stray access faults).
 *   4. refs[i] of an in-use slab is the number of references to its buffer i: 1 from
 *      blkbuf_alloc, +1 per blkbuf_hold, -1 per blkbuf_free; the buffer returns to the free
 *      list when it reaches 0. Updated atomically, without the class lock.
 *   5. empty_slab_bytes is SLAB_BYTES times the number of mapped slabs with in_use == 0: it is
 *      updated, under the slab's class lock, on each transition of in_use to or from 0, when a
 *      new slab is pushed and when collect_idle takes a slab to return it. A slab is taken only
 *      while the empty slabs left would still make up spare_bytes.
 * Under AddressSanitizer free buffers are poisoned, so a use after blkbuf_free is reported as
 * it would be for malloc'd memory.
 */
#include "core/blkbuf.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "common/assert.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define PAGE             4096u
#define SLAB_SHIFT       21
#define SLAB_BYTES       (1u << SLAB_SHIFT)
#define ARENA_BYTES      (32ull << 30) /* address space only: 16384 slabs */
#define NSLABS           ((uint32_t)(ARENA_BYTES >> SLAB_SHIFT))
#define NCLASSES         (BLKBUF_SLAB_MAX / PAGE)
#define CLASS_KEEP_BYTES (32u << 20)
#define NO_SLAB          UINT32_MAX
_Static_assert(SLAB_BYTES / PAGE <= UINT16_MAX + 1, "a buffer index fits the free stack");

struct slab {
    uint16_t *free_idx; /* indexes of freed buffers (a stack of nfree); in refs' block */
    uint32_t nfree;
    uint32_t in_use;          /* buffers handed out */
    uint32_t carved;          /* buffers ever handed out (the rest of the slab is untouched) */
    uint32_t cls;             /* class index + 1 while in use; 0 when unmapped */
    uint32_t next_empty;      /* unmapped slabs ready for reuse (arena_lock) */
    uint64_t empty_since_ms;  /* when in_use last dropped to 0 (class lock) */
    uint32_t *refs;           /* per buffer (invariant 4); while in use */
    struct slab *next, *prev; /* the class's partial list */
};

struct size_class {
    pthread_mutex_t lock;
    uint32_t size, per_slab;
    struct slab *partial;
    uint64_t free_bytes;
    uint64_t last_scan_ms; /* the last collect_idle */
};

static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static uint8_t *arena; /* NULL: no arena, every buffer from aligned_alloc */
static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t arena_next;            /* slabs below this were used at least once */
static uint32_t arena_empty = NO_SLAB; /* unmapped slabs below arena_next */
static uint64_t stat_slab_bytes, stat_slabs_freed;
/* Atomics, read and written without a lock: the bytes of mapped slabs with no buffer in use
 * (counted on a slab's transitions, not per buffer), and the spare the holders asked for. */
static uint64_t empty_slab_bytes, spare_bytes;
static struct slab slabs[NSLABS];
static struct size_class classes[NCLASSES];

static void
arena_init(void)
{
    for (uint32_t c = 0; c < NCLASSES; c++) {
        pthread_mutex_init(&classes[c].lock, NULL);
        classes[c].size = (c + 1) * PAGE;
        classes[c].per_slab = SLAB_BYTES / classes[c].size;
    }
    void *p =
        mmap(NULL, ARENA_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    arena = p == MAP_FAILED ? NULL : p;
}

static uint8_t *
slab_base(const struct slab *s)
{
    return arena + ((uint64_t)(s - slabs) << SLAB_SHIFT);
}

/* A mapped, populated slab for class c, or NULL (arena full, or no memory). */
static struct slab *
slab_take(uint32_t c)
{
    pthread_mutex_lock(&arena_lock);
    uint32_t i = arena_empty;
    if (i != NO_SLAB)
        arena_empty = slabs[i].next_empty;
    else if (arena_next < NSLABS)
        i = arena_next++;
    if (i == NO_SLAB) {
        pthread_mutex_unlock(&arena_lock);
        return NULL;
    }
    struct slab *s = &slabs[i];
    /* refs, then the free stack, in one allocation (per_slab <= 512 fits uint16_t). */
    uint32_t *refs = calloc(classes[c].per_slab, sizeof(*refs) + sizeof(uint16_t));
    if (refs == NULL) {
        s->next_empty = arena_empty;
        arena_empty = i;
        pthread_mutex_unlock(&arena_lock);
        return NULL;
    }
    void *want = slab_base(s);
    void *got = mmap(want, SLAB_BYTES, PROT_READ | PROT_WRITE,
                     MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (got == MAP_FAILED) {
        free(refs);
        s->next_empty = arena_empty; /* still PROT_NONE: retry later */
        arena_empty = i;
        pthread_mutex_unlock(&arena_lock);
        return NULL;
    }
    stat_slab_bytes += SLAB_BYTES;
    pthread_mutex_unlock(&arena_lock);
    *s = (struct slab){ .cls = c + 1,
                        .next_empty = NO_SLAB,
                        .refs = refs,
                        .free_idx = (uint16_t *)(refs + classes[c].per_slab) };
    POISON(want, SLAB_BYTES);
    return s;
}

/* Gives an entirely free slab back to the kernel (s off every list: nobody can reach it). */
static void
slab_return(struct slab *s)
{
    void *base = slab_base(s);
    UNPOISON(base, SLAB_BYTES);
    void *got = mmap(base, SLAB_BYTES, PROT_NONE,
                     MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    VERIFY(got == base); /* replacing our own mapping in place cannot fail for lack of memory */
    free(s->refs);
    pthread_mutex_lock(&arena_lock);
    s->refs = NULL;
    s->cls = 0;
    s->next_empty = arena_empty;
    arena_empty = (uint32_t)(s - slabs);
    stat_slab_bytes -= SLAB_BYTES;
    stat_slabs_freed++;
    pthread_mutex_unlock(&arena_lock);
}

static void
partial_push(struct size_class *k, struct slab *s)
{
    s->prev = NULL;
    s->next = k->partial;
    if (k->partial != NULL)
        k->partial->prev = s;
    k->partial = s;
}

static void
partial_remove(struct size_class *k, struct slab *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        k->partial = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

static void *
class_alloc(uint32_t c)
{
    struct size_class *k = &classes[c];
    pthread_mutex_lock(&k->lock);
    struct slab *s;
    while ((s = k->partial) == NULL) {
        /* Faulting in a slab takes a while: not under the lock every user of the class needs. */
        pthread_mutex_unlock(&k->lock);
        struct slab *fresh = slab_take(c);
        pthread_mutex_lock(&k->lock);
        if (fresh == NULL) {
            pthread_mutex_unlock(&k->lock);
            return NULL;
        }
        partial_push(k, fresh);
        k->free_bytes += (uint64_t)k->per_slab * k->size;
        __atomic_add_fetch(&empty_slab_bytes, SLAB_BYTES, __ATOMIC_RELAXED);
    }
    uint8_t *buf;
    if (s->nfree > 0) {
        buf = slab_base(s) + (size_t)s->free_idx[--s->nfree] * k->size;
    } else {
        buf = slab_base(s) + (size_t)s->carved * k->size;
        s->carved++;
    }
    if (s->in_use++ == 0)
        __atomic_sub_fetch(&empty_slab_bytes, SLAB_BYTES, __ATOMIC_RELAXED);
    __atomic_store_n(&s->refs[(size_t)(buf - slab_base(s)) / k->size], 1, __ATOMIC_RELAXED);
    k->free_bytes -= k->size;
    if (s->nfree == 0 && s->carved == k->per_slab)
        partial_remove(k, s);
    pthread_mutex_unlock(&k->lock);
    UNPOISON(buf, k->size);
    return buf;
}

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Takes off k's partial list its slabs that have been empty since min_idle_ms before now, as
 * long as k keeps CLASS_KEEP_BYTES free without them and the empty slabs of all classes still
 * make up the held spare (k's lock held). Returns them linked through next, off every list and
 * unreachable, for return_slabs to unmap after the unlock.
 */
static struct slab *
collect_idle(struct size_class *k, uint64_t now, unsigned min_idle_ms)
{
    uint64_t slab_free = (uint64_t)k->per_slab * k->size;
    struct slab *idle = NULL, *next;
    for (struct slab *s = k->partial; s != NULL && k->free_bytes >= slab_free + CLASS_KEEP_BYTES;
         s = next) {
        next = s->next;
        /* Not now - since: a slab emptied after `now` was read would underflow that. */
        if (s->in_use != 0 || s->empty_since_ms + min_idle_ms > now)
            continue;
        if (__atomic_load_n(&empty_slab_bytes, __ATOMIC_RELAXED) <
            SLAB_BYTES + __atomic_load_n(&spare_bytes, __ATOMIC_RELAXED))
            break;
        __atomic_sub_fetch(&empty_slab_bytes, SLAB_BYTES, __ATOMIC_RELAXED);
        partial_remove(k, s);
        k->free_bytes -= slab_free;
        s->next = idle;
        idle = s;
    }
    if (now > k->last_scan_ms)
        k->last_scan_ms = now;
    return idle;
}

static void
return_slabs(struct slab *idle)
{
    while (idle != NULL) {
        struct slab *next = idle->next;
        slab_return(idle);
        idle = next;
    }
}

static void
class_free(struct slab *s, uint8_t *buf)
{
    ASSERT(s->cls != 0);
    struct size_class *k = &classes[s->cls - 1];
    ASSERT(((size_t)(buf - slab_base(s)) % k->size) == 0);
    struct slab *idle = NULL;
    pthread_mutex_lock(&k->lock);
    bool was_full = s->nfree == 0 && s->carved == k->per_slab;
    s->free_idx[s->nfree++] = (uint16_t)((size_t)(buf - slab_base(s)) / k->size);
    POISON(buf, k->size);
    s->in_use--;
    k->free_bytes += k->size;
    if (was_full)
        partial_push(k, s);
    if (s->in_use == 0) {
        __atomic_add_fetch(&empty_slab_bytes, SLAB_BYTES, __ATOMIC_RELAXED);
        /* Empty: blkbuf_trim may return it later. Frees also scan their class every
         * BLKBUF_IDLE_MS, so memory goes back without anyone calling blkbuf_trim. */
        uint64_t now = now_ms();
        s->empty_since_ms = now;
        if (now >= k->last_scan_ms + BLKBUF_IDLE_MS)
            idle = collect_idle(k, now, BLKBUF_IDLE_MS);
    }
    pthread_mutex_unlock(&k->lock);
    return_slabs(idle);
}

void
blkbuf_spare_hold(uint64_t bytes)
{
    __atomic_add_fetch(&spare_bytes, bytes, __ATOMIC_RELAXED);
}

void
blkbuf_spare_release(uint64_t bytes)
{
    uint64_t was = __atomic_fetch_sub(&spare_bytes, bytes, __ATOMIC_RELAXED);
    VERIFY(was >= bytes);
}

void
blkbuf_trim(unsigned min_idle_ms)
{
    pthread_once(&arena_once, arena_init);
    if (arena == NULL)
        return;
    uint64_t now = now_ms();
    for (uint32_t c = 0; c < NCLASSES; c++) {
        struct size_class *k = &classes[c];
        pthread_mutex_lock(&k->lock);
        struct slab *idle = collect_idle(k, now, min_idle_ms);
        pthread_mutex_unlock(&k->lock);
        return_slabs(idle); /* unlocked: writers of this class need not wait for the munmaps */
    }
}

/* The slab of a buffer from the arena, or NULL for an aligned_alloc one. */
static struct slab *
slab_of(const void *buf)
{
    const uint8_t *b = buf;
    if (arena == NULL || b < arena || b >= arena + ARENA_BYTES)
        return NULL;
    return &slabs[(uint64_t)(b - arena) >> SLAB_SHIFT];
}

static uint32_t *
buf_ref(const struct slab *s, const void *buf)
{
    ASSERT(s->cls != 0);
    return &s->refs[(size_t)((const uint8_t *)buf - slab_base(s)) / classes[s->cls - 1].size];
}

void *
blkbuf_alloc(size_t len)
{
    pthread_once(&arena_once, arena_init);
    if (arena != NULL && len >= PAGE && len <= BLKBUF_SLAB_MAX && len % PAGE == 0) {
        void *buf = class_alloc((uint32_t)(len / PAGE) - 1);
        if (buf != NULL)
            return buf;
    }
    size_t n = len == 0 ? BLKBUF_ALIGN : (len + BLKBUF_ALIGN - 1) & ~(size_t)(BLKBUF_ALIGN - 1);
    return aligned_alloc(BLKBUF_ALIGN, n);
}

void *
blkbuf_zalloc(size_t len)
{
    void *p = blkbuf_alloc(len);
    if (p != NULL)
        memset(p, 0, len);
    return p;
}

void
blkbuf_free(void *buf)
{
    uint8_t *b = buf;
    if (b == NULL)
        return;
    struct slab *s = slab_of(b);
    if (s == NULL) {
        free(buf);
        return;
    }
    uint32_t left = __atomic_sub_fetch(buf_ref(s, b), 1, __ATOMIC_ACQ_REL);
    ASSERT(left != UINT32_MAX); /* freed more often than held */
    if (left == 0)
        class_free(s, b);
}

bool
blkbuf_hold(void *buf)
{
    struct slab *s = slab_of(buf);
    if (s == NULL)
        return false;
    uint32_t was = __atomic_fetch_add(buf_ref(s, buf), 1, __ATOMIC_RELAXED);
    ASSERT(was > 0); /* holding a freed buffer */
    (void)was;
    return true;
}

bool
blkbuf_shared(const void *buf)
{
    struct slab *s = slab_of(buf);
    return s != NULL && __atomic_load_n(buf_ref(s, buf), __ATOMIC_ACQUIRE) > 1;
}

void
blkbuf_get_stats(struct blkbuf_stats *out)
{
    pthread_once(&arena_once, arena_init);
    memset(out, 0, sizeof(*out));
    for (uint32_t c = 0; c < NCLASSES; c++) {
        pthread_mutex_lock(&classes[c].lock);
        out->free_bytes += classes[c].free_bytes;
        pthread_mutex_unlock(&classes[c].lock);
    }
    pthread_mutex_lock(&arena_lock);
    out->slab_bytes = stat_slab_bytes;
    out->slabs_freed = stat_slabs_freed;
    pthread_mutex_unlock(&arena_lock);
    out->spare_bytes = __atomic_load_n(&spare_bytes, __ATOMIC_RELAXED);
}
