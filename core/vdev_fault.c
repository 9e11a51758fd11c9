/* SPDX-License-Identifier: MIT */
/*
 * vdev_fault: a fault-injecting wrapper around another backend, for tests.
 *
 * Theory of operation. Every read and write first takes the mutex, counts itself, and decides
 * whether to fail: fail_all_* fails every call, fail_nth_* counts down and fails exactly the call
 * that brings the countdown to zero (then it is disarmed). An injected failure returns -EIO
 * without touching the inner device.
 *
 * Volatile cache. While armed, a write does not reach the inner device: it is split into
 * sectors (SECTOR_SIZE bytes, keyed by sector number in a u64map) that live in memory. A write
 * that covers only part of a sector first loads the rest of it (from the cache, else the inner
 * device). Reads go to the inner device and then overlay the cached sectors, as a drive's cache
 * would. Flush writes the cached sectors through in ascending order, coalescing adjacent ones,
 * then flushes the inner device. vdev_fault_power_cut() drops the cache: the inner device holds
 * exactly the writes that completed before the last successful flush. Disarming writes the cache
 * through (no flush), so nothing completed is lost by turning the mode off.
 *
 *      cache off --set_volatile_cache(true)--> cache on (writes buffered)
 *      cache on  --flush--> cache on, empty           (buffered writes reach inner, then flush)
 *      cache on  --power_cut--> cache on, empty       (buffered writes discarded)
 *      cache on  --set_volatile_cache(false)--> cache off (buffered writes reach inner)
 *
 * Flip XORs bytes of the inner device directly (read, modify, write under the mutex): it models
 * rot on the medium, so a cached sector over the same range still hides it until power_cut.
 * Flushes are never failed by the write knobs: they only make completed writes durable.
 *
 * Locking: lock protects every field below it in struct fault_backend. With the cache off, the
 * inner I/O runs without the lock so calls stay concurrent; with it on, reads and writes hold the
 * lock across the inner I/O so the cache and the inner device change together.
 *
 * Invariants:
 *  1. cache is empty whenever volatile_cache is false.
 *  2. Each cache value is a malloc'd SECTOR_SIZE buffer holding the newest bytes of that sector.
 *  3. stats.injected_* <= stats.reads / stats.writes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "common/u64map.h"
#include "core/ondisk.h"
#include "core/vdev_backend.h"

#define FLUSH_RUN_MAX MiB(1)  /* largest write-through issued by a flush */
#define FLIP_CHUNK    KiB(64) /* bytes read-modified-written at a time by flip */

struct fault_backend {
    struct vdev_backend base;   /* first: the ops cast between the two */
    struct vdev_backend *inner; /* owned */
    pthread_mutex_t lock;
    uint64_t read_countdown;  /* fail the read that brings this to 0; 0 = disarmed */
    uint64_t write_countdown; /* same for writes */
    bool fail_reads;
    bool fail_writes;
    unsigned read_delay_us; /* every read first sleeps this long (a slow device) */
    bool volatile_cache;
    uint64_t crash_countdown; /* the write that brings this to 0 is the first one lost */
    bool crashed;             /* power is off: writes and flushes vanish */
    struct u64map cache;      /* sector number -> uint8_t[SECTOR_SIZE] (invariants 1, 2) */
    struct vdev_fault_stats stats;
};

static const struct vdev_backend_ops fault_ops;

static struct fault_backend *
fault_of(struct vdev_backend *b)
{
    VERIFY(b->ops == &fault_ops); /* the vdev_fault_* calls need a wrapper */
    return (struct fault_backend *)b;
}

static bool
fault_range_ok(const struct fault_backend *f, uint64_t off, uint64_t len)
{
    return off <= f->base.size && len <= f->base.size - off;
}

/* Counts one call and decides whether it fails. Called with the lock held. */
static bool
fault_should_fail(bool all, uint64_t *countdown)
{
    if (all)
        return true;
    if (*countdown > 0 && --*countdown == 0)
        return true;
    return false;
}

static void
cache_drop(struct fault_backend *f)
{
    uint64_t key;
    void *val;
    for (size_t it = 0; u64map_next(&f->cache, &it, &key, &val);)
        free(val);
    u64map_release(&f->cache); /* leaves it empty and reusable */
}

/* Copies the cached sectors overlapping [off, off+len) over buf. Lock held. */
static void
cache_overlay(struct fault_backend *f, uint64_t off, uint8_t *buf, size_t len)
{
    if (u64map_count(&f->cache) == 0 || len == 0)
        return;
    uint64_t end = off + len;
    for (uint64_t s = off >> SECTOR_SHIFT; (s << SECTOR_SHIFT) < end; s++) {
        const uint8_t *sec = u64map_get(&f->cache, s);
        if (sec == NULL)
            continue;
        uint64_t sbeg = s << SECTOR_SHIFT;
        uint64_t lo = sbeg > off ? sbeg : off;
        uint64_t hi = sbeg + SECTOR_SIZE < end ? sbeg + SECTOR_SIZE : end;
        memcpy(buf + (lo - off), sec + (lo - sbeg), (size_t)(hi - lo));
    }
}

/* Buffers a write in the cache, sector by sector. Lock held. */
static int
cache_write(struct fault_backend *f, uint64_t off, const uint8_t *buf, size_t len)
{
    uint64_t end = off + len;
    for (uint64_t s = off >> SECTOR_SHIFT; (s << SECTOR_SHIFT) < end; s++) {
        uint64_t sbeg = s << SECTOR_SHIFT;
        uint64_t lo = sbeg > off ? sbeg : off;
        uint64_t hi = sbeg + SECTOR_SIZE < end ? sbeg + SECTOR_SIZE : end;
        uint8_t *sec = u64map_get(&f->cache, s);
        if (sec == NULL) {
            sec = malloc(SECTOR_SIZE);
            if (sec == NULL)
                return ERR(-ENOMEM);
            if (hi - lo < SECTOR_SIZE) {
                /* partial sector: the rest comes from the medium (the last sector of an odd-sized
                 * device may be short) */
                uint64_t avail = f->base.size - sbeg;
                size_t n = avail < SECTOR_SIZE ? (size_t)avail : SECTOR_SIZE;
                memset(sec, 0, SECTOR_SIZE);
                int rc = vdev_backend_read(f->inner, sbeg, sec, n);
                if (rc != 0) {
                    free(sec);
                    return rc;
                }
            }
            int rc = u64map_put(&f->cache, s, sec);
            if (rc != 0) {
                free(sec);
                return rc;
            }
        }
        memcpy(sec + (lo - sbeg), buf + (lo - off), (size_t)(hi - lo));
    }
    return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/*
 * Writes every cached sector to the inner device, in ascending order, adjacent sectors coalesced
 * into runs of up to FLUSH_RUN_MAX bytes; each run leaves the cache once written. On error the
 * sectors not yet written stay cached. Lock held.
 */
static int
cache_write_through(struct fault_backend *f)
{
    size_t n = u64map_count(&f->cache);
    if (n == 0)
        return 0;
    uint64_t *keys = malloc(n * sizeof(*keys));
    uint8_t *run = malloc(FLUSH_RUN_MAX);
    int rc = 0;
    if (keys == NULL || run == NULL) {
        rc = ERR(-ENOMEM);
        goto out;
    }
    size_t k = 0;
    uint64_t key;
    void *val;
    for (size_t it = 0; u64map_next(&f->cache, &it, &key, &val);)
        keys[k++] = key;
    ASSERT3U(k, ==, n);
    qsort(keys, n, sizeof(*keys), cmp_u64);

    for (size_t i = 0; i < n && rc == 0;) {
        size_t j = i;
        while (j < n && (j == i || keys[j] == keys[j - 1] + 1) &&
               (j - i + 1) * SECTOR_SIZE <= FLUSH_RUN_MAX) {
            memcpy(run + (j - i) * SECTOR_SIZE, u64map_get(&f->cache, keys[j]), SECTOR_SIZE);
            j++;
        }
        uint64_t off = keys[i] << SECTOR_SHIFT;
        uint64_t len = (uint64_t)(j - i) * SECTOR_SIZE;
        if (len > f->base.size - off)
            len = f->base.size - off; /* short last sector of an odd-sized device */
        rc = vdev_backend_write(f->inner, off, run, (size_t)len);
        if (rc == 0) {
            for (size_t x = i; x < j; x++)
                free(u64map_remove(&f->cache, keys[x]));
        }
        i = j;
    }
out:
    free(run);
    free(keys);
    return rc;
}

static int
fault_read(struct vdev_backend *b, uint64_t off, void *buf, size_t len)
{
    struct fault_backend *f = fault_of(b);

    unsigned delay = __atomic_load_n(&f->read_delay_us, __ATOMIC_RELAXED);
    if (delay != 0)
        usleep(delay);
    VERIFY0(pthread_mutex_lock(&f->lock));
    f->stats.reads++;
    if (fault_should_fail(f->fail_reads, &f->read_countdown)) {
        f->stats.injected_read_errors++;
        VERIFY0(pthread_mutex_unlock(&f->lock));
        return ERR(-EIO);
    }
    if (!f->volatile_cache) {
        VERIFY0(pthread_mutex_unlock(&f->lock));
        return vdev_backend_read(f->inner, off, buf, len);
    }
    int rc =
        fault_range_ok(f, off, len) ? vdev_backend_read(f->inner, off, buf, len) : ERR(-EINVAL);
    if (rc == 0)
        cache_overlay(f, off, buf, len);
    VERIFY0(pthread_mutex_unlock(&f->lock));
    return rc;
}

static int
fault_write(struct vdev_backend *b, uint64_t off, const void *buf, size_t len)
{
    struct fault_backend *f = fault_of(b);

    VERIFY0(pthread_mutex_lock(&f->lock));
    f->stats.writes++;
    if (f->crash_countdown != 0 && --f->crash_countdown == 0) {
        f->crashed = true;
        cache_drop(f); /* what the device cache held dies with the power */
    }
    if (f->crashed) {
        VERIFY0(pthread_mutex_unlock(&f->lock));
        return 0;
    }
    if (fault_should_fail(f->fail_writes, &f->write_countdown)) {
        f->stats.injected_write_errors++;
        VERIFY0(pthread_mutex_unlock(&f->lock));
        return ERR(-EIO);
    }
    if (!f->volatile_cache) {
        VERIFY0(pthread_mutex_unlock(&f->lock));
        return vdev_backend_write(f->inner, off, buf, len);
    }
    int rc = fault_range_ok(f, off, len) ? cache_write(f, off, buf, len) : ERR(-EINVAL);
    VERIFY0(pthread_mutex_unlock(&f->lock));
    return rc;
}

static int
fault_flush(struct vdev_backend *b)
{
    struct fault_backend *f = fault_of(b);

    VERIFY0(pthread_mutex_lock(&f->lock));
    f->stats.flushes++;
    if (f->crashed) {
        VERIFY0(pthread_mutex_unlock(&f->lock));
        return 0;
    }
    if (!f->volatile_cache) {
        VERIFY0(pthread_mutex_unlock(&f->lock));
        return vdev_backend_flush(f->inner);
    }
    int rc = cache_write_through(f);
    if (rc == 0)
        rc = vdev_backend_flush(f->inner);
    VERIFY0(pthread_mutex_unlock(&f->lock));
    return rc;
}

static void
fault_close(struct vdev_backend *b)
{
    struct fault_backend *f = fault_of(b);

    cache_drop(f); /* unflushed writes die with the wrapper, as in a power cut */
    vdev_backend_close(f->inner);
    VERIFY0(pthread_mutex_destroy(&f->lock));
    free(f);
}

static const struct vdev_backend_ops fault_ops = {
    .read = fault_read,
    .write = fault_write,
    .flush = fault_flush,
    .close = fault_close,
};

int
vdev_fault_wrap(struct vdev_backend *inner, struct vdev_backend **out)
{
    ASSERT(inner != NULL);
    ASSERT(out != NULL);
    *out = NULL;

    struct fault_backend *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        vdev_backend_close(inner); /* ownership was taken even on failure */
        return ERR(-ENOMEM);
    }
    if (pthread_mutex_init(&f->lock, NULL) != 0) {
        free(f);
        vdev_backend_close(inner);
        return ERR(-ENOMEM);
    }
    f->base.ops = &fault_ops;
    f->base.size = inner->size;
    memcpy(f->base.path, inner->path, sizeof(f->base.path));
    f->base.path[sizeof(f->base.path) - 1] = '\0';
    f->inner = inner;
    u64map_init(&f->cache);
    *out = &f->base;
    return 0;
}

void
vdev_fault_fail_nth_read(struct vdev_backend *b, uint64_t n)
{
    struct fault_backend *f = fault_of(b);
    VERIFY0(pthread_mutex_lock(&f->lock));
    f->read_countdown = n;
    VERIFY0(pthread_mutex_unlock(&f->lock));
}

void
vdev_fault_fail_nth_write(struct vdev_backend *b, uint64_t n)
{
    struct fault_backend *f = fault_of(b);
    VERIFY0(pthread_mutex_lock(&f->lock));
    f->write_countdown = n;
    VERIFY0(pthread_mutex_unlock(&f->lock));
}

void
vdev_fault_fail_all_reads(struct vdev_backend *b, bool on)
{
    struct fault_backend *f = fault_of(b);
    VERIFY0(pthread_mutex_lock(&f->lock));
    f->fail_reads = on;
    VERIFY0(pthread_mutex_unlock(&f->lock));
}

void
vdev_fault_set_read_delay(struct vdev_backend *b, unsigned usec)
{
    __atomic_store_n(&fault_of(b)->read_delay_us, usec, __ATOMIC_RELAXED);
}

void
vdev_fault_fail_all_writes(struct vdev_backend *b, bool on)
{
    struct fault_backend *f = fault_of(b);
    VERIFY0(pthread_mutex_lock(&f->lock));
    f->fail_writes = on;
    VERIFY0(pthread_mutex_unlock(&f->lock));
}

int
vdev_fault_flip(struct vdev_backend *b, uint64_t off, uint64_t len, uint8_t mask)
{
    struct fault_backend *f = fault_of(b);

    if (mask == 0 || !fault_range_ok(f, off, len))
        return ERR(-EINVAL);
    if (len == 0)
        return 0;
    size_t cap = len < FLIP_CHUNK ? (size_t)len : (size_t)FLIP_CHUNK;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return ERR(-ENOMEM);
    int rc = 0;
    VERIFY0(pthread_mutex_lock(&f->lock));
    while (len > 0 && rc == 0) {
        size_t n = len < cap ? (size_t)len : cap;
        rc = vdev_backend_read(f->inner, off, buf, n);
        if (rc != 0)
            break;
        for (size_t i = 0; i < n; i++)
            buf[i] ^= mask;
        rc = vdev_backend_write(f->inner, off, buf, n);
        off += n;
        len -= n;
    }
    VERIFY0(pthread_mutex_unlock(&f->lock));
    free(buf);
    return rc;
}

void
vdev_fault_set_volatile_cache(struct vdev_backend *b, bool on)
{
    struct fault_backend *f = fault_of(b);

    VERIFY0(pthread_mutex_lock(&f->lock));
    if (!on && f->volatile_cache) {
        int rc = cache_write_through(f);
        if (rc != 0) {
            log_warn("write back volatile cache of '%s' at disarm failed: %s; dropping it",
                     f->base.path, err_str(rc));
        }
        cache_drop(f); /* invariant 1 */
    }
    f->volatile_cache = on;
    VERIFY0(pthread_mutex_unlock(&f->lock));
}

void
vdev_fault_power_cut(struct vdev_backend *b)
{
    struct fault_backend *f = fault_of(b);

    VERIFY0(pthread_mutex_lock(&f->lock));
    cache_drop(f);
    VERIFY0(pthread_mutex_unlock(&f->lock));
}

void
vdev_fault_get_stats(struct vdev_backend *b, struct vdev_fault_stats *out)
{
    struct fault_backend *f = fault_of(b);

    VERIFY0(pthread_mutex_lock(&f->lock));
    *out = f->stats;
    VERIFY0(pthread_mutex_unlock(&f->lock));
}

void
vdev_fault_crash_after_writes(struct vdev_backend *b, uint64_t n)
{
    struct fault_backend *f = fault_of(b);
    VERIFY0(pthread_mutex_lock(&f->lock));
    f->crash_countdown = n;
    f->crashed = false;
    VERIFY0(pthread_mutex_unlock(&f->lock));
}
