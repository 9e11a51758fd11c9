/* SPDX-License-Identifier: MIT */
/*
 * txg: transaction groups — assignment, the write throttle and the sync thread.
 *
 * Theory of operation
 * -------------------
 *        tx_assign ──► [ open txg T+1 ] ──(sync thread: close)──► [ syncing txg T ] ──► synced
 *
 * There is always exactly one open txg. The sync thread closes it when asked (pool_sync), when
 * txg_timeout_ms passes with dirty data, or when dirty data passes 20 % of dirty_max: new
 * transactions wait while the txg's holds drain (quiesce, normally microseconds), then the next
 * txg opens and the closed one is committed with pool_sync_txg() while writers fill the next.
 *
 * Write throttle: a tx that finds dirty data above 60 % of dirty_max sleeps a little, growing
 * as dirty data approaches dirty_max (ZFS's delay curve); at dirty_max it waits for a commit.
 *
 * Invariants:
 *   1. open_txg - syncing_txg <= 1 while syncing; synced_txg < open_txg always.
 *   2. A txg is committed only after every tx assigned to it has committed (holds == 0).
 *   3. The sync thread is the only thread that writes blocks, labels or uberblocks.
 *   4. Once a commit fails the pool is suspended: no later txg is synced and tx_assign fails.
 *   5. No tx of txg T+1 exists before every tx of T has committed (quiesce), so per-object state
 *      copied into T+1's slot already contains all of T's changes.
 */
#include <stdio.h>
#include <time.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "core/blkbuf.h"
#include "core/dsl_impl.h"
#include "core/pool_impl.h"

#define SYNC_DIRTY_PCT 20
#define DELAY_SCALE_NS 500000ull
#define DELAY_MAX_NS   100000000ull

static void
deadline_after_ms(struct timespec *ts, uint64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)((ms % 1000) * 1000000);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int
txg_init(struct pool *p, uint64_t first_open_txg)
{
    pthread_mutex_init(&p->txg_lock, NULL);
    pthread_cond_init(&p->txg_cv, NULL);
    pthread_cond_init(&p->sync_cv, NULL);
    pthread_mutex_init(&p->sync_lock, NULL);
    p->open_txg = first_open_txg;
    p->synced_txg = first_open_txg - 1;
    p->syncing_txg = 0;
    return 0;
}

void
txg_dirty_add(struct pool *p, uint64_t txg, uint64_t bytes)
{
    pthread_mutex_lock(&p->txg_lock);
    p->dirty_bytes[txg & 1] += bytes;
    p->dirty_total += bytes;
    if (p->dirty_total * 100 >= p->opts.dirty_max_bytes * SYNC_DIRTY_PCT)
        pthread_cond_signal(&p->sync_cv);
    pthread_mutex_unlock(&p->txg_lock);
}

int
txg_reserve_space(struct pool *p, uint64_t txg, uint64_t bytes, const struct objset *os)
{
    struct alloc_stats as;
    alloc_get_space(p->alloc, &as);
    uint64_t usable = as.free > as.slop + as.deferred ? as.free - as.slop - as.deferred : 0;
    /* Space others reserved and have not used is not ours to take (dsl.h reservations). */
    uint64_t others = dsl_rsv_unused_total(p) - __atomic_load_n(&os->rsv_own, __ATOMIC_RELAXED);
    if ((int64_t)others > 0)
        usable = usable > others ? usable - others : 0;
    pthread_mutex_lock(&p->txg_lock);
    uint64_t promised = p->reserved[0] + p->reserved[1];
    int rc = 0;
    if (promised + bytes > usable)
        rc = -ENOSPC;
    else
        p->reserved[txg & 1] += bytes;
    pthread_mutex_unlock(&p->txg_lock);
    return rc;
}

/*
 * The syncing txg turns its promise into allocations as it writes: each allocation retires the
 * same amount of promise, so space is not counted twice (allocated and still promised) while a
 * large txg commits. The remainder of the promise (compression, holes) ends at the commit.
 */
void
txg_space_allocated(struct pool *p, uint64_t txg, uint64_t bytes)
{
    pthread_mutex_lock(&p->txg_lock);
    uint64_t *r = &p->reserved[txg & 1];
    *r -= bytes < *r ? bytes : *r;
    pthread_mutex_unlock(&p->txg_lock);
}

/*
 * Space throttle: when the bytes promised to the open and syncing txgs (worst case) crowd out a
 * new change, wait for commits to turn promises into real allocations (usually far smaller:
 * compression, holes, overwrites) and deferred frees into free space, before letting the write
 * fail with ENOSPC. Called before the tx joins its txg, so waiting for a commit cannot deadlock.
 * space_short_locked says whether a change of estimate bytes would wait, given the space usable
 * by a writer with own_rsv reserved (space_usable) and the promises (txg_lock held).
 */
static uint64_t
space_usable(struct pool *p, uint64_t own_rsv, uint64_t *deferred)
{
    struct alloc_stats as;
    alloc_get_space(p->alloc, &as);
    uint64_t usable = as.free > as.slop + as.deferred ? as.free - as.slop - as.deferred : 0;
    uint64_t others = dsl_rsv_unused_total(p);
    others = others > own_rsv ? others - own_rsv : 0;
    *deferred = as.deferred;
    return usable > others ? usable - others : 0;
}

static bool
space_short_locked(struct pool *p, uint64_t estimate, uint64_t usable, uint64_t deferred)
{
    uint64_t promised = p->reserved[0] + p->reserved[1];
    return promised + estimate + estimate / 32 > usable && (promised != 0 || deferred != 0);
}

static void
wait_for_space(struct pool *p, uint64_t estimate, uint64_t own_rsv)
{
    if (estimate == 0)
        return;
    for (int round = 0; round < TXG_SLOTS + 1; round++) {
        uint64_t deferred, usable = space_usable(p, own_rsv, &deferred);
        pthread_mutex_lock(&p->txg_lock);
        bool short_of_space = space_short_locked(p, estimate, usable, deferred);
        uint64_t open = p->open_txg;
        pthread_mutex_unlock(&p->txg_lock);
        if (!short_of_space || pool_wait_synced(p, open) != 0)
            return;
    }
}

int
tx_assign(struct pool *p, uint64_t dirty_estimate, struct tx *tx)
{
    return tx_assign_rsv(p, dirty_estimate, 0, tx);
}

int
tx_assign_rsv(struct pool *p, uint64_t dirty_estimate, uint64_t own_rsv, struct tx *tx)
{
    if (p->readonly)
        return -EROFS;
    wait_for_space(p, dirty_estimate, own_rsv);
    pthread_mutex_lock(&p->txg_lock);
    for (;;) {
        while (p->quiescing && !p->suspended)
            pthread_cond_wait(&p->txg_cv, &p->txg_lock);
        if (p->suspended) {
            pthread_mutex_unlock(&p->txg_lock);
            return -EIO;
        }
        uint64_t max = p->opts.dirty_max_bytes;
        uint64_t dirty = p->dirty_total + dirty_estimate;
        if (dirty < max * TXG_DELAY_MIN_PCT / 100)
            break;
        pthread_cond_signal(&p->sync_cv);
        if (dirty >= max) {
            /* Hard limit: wait for a commit to retire dirty data. */
            struct timespec ts;
            deadline_after_ms(&ts, 100);
            pthread_cond_timedwait(&p->txg_cv, &p->txg_lock, &ts);
            continue;
        }
        /* Delay curve: scale × (dirty − min) / (max − dirty), capped. */
        uint64_t min = max * TXG_DELAY_MIN_PCT / 100;
        uint64_t ns = DELAY_SCALE_NS * (dirty - min) / (max - dirty);
        if (ns > DELAY_MAX_NS)
            ns = DELAY_MAX_NS;
        pthread_mutex_unlock(&p->txg_lock);
        struct timespec d = { .tv_sec = (time_t)(ns / 1000000000ull),
                              .tv_nsec = (long)(ns % 1000000000ull) };
        nanosleep(&d, NULL);
        pthread_mutex_lock(&p->txg_lock);
        break;
    }
    tx->pool = p;
    tx->txg = p->open_txg;
    p->holds[tx->txg & 1]++;
    pthread_mutex_unlock(&p->txg_lock);
    return 0;
}

int
tx_try_assign_rsv(struct pool *p, uint64_t dirty_estimate, uint64_t own_rsv, struct tx *tx)
{
    if (p->readonly)
        return -EROFS;
    uint64_t deferred, usable = space_usable(p, own_rsv, &deferred);
    if (pthread_mutex_trylock(&p->txg_lock) != 0)
        return -EWOULDBLOCK;
    int rc = -EWOULDBLOCK;
    if (p->suspended) {
        rc = -EIO;
    } else if (!p->quiescing &&
               p->dirty_total + dirty_estimate <
                   p->opts.dirty_max_bytes * TXG_DELAY_MIN_PCT / 100 &&
               (dirty_estimate == 0 || !space_short_locked(p, dirty_estimate, usable, deferred))) {
        tx->pool = p;
        tx->txg = p->open_txg;
        p->holds[tx->txg & 1]++;
        rc = 0;
    }
    pthread_mutex_unlock(&p->txg_lock);
    return rc;
}

void
tx_commit(struct tx *tx)
{
    struct pool *p = tx->pool;
    pthread_mutex_lock(&p->txg_lock);
    VERIFY(p->holds[tx->txg & 1] > 0);
    if (--p->holds[tx->txg & 1] == 0)
        pthread_cond_broadcast(&p->txg_cv);
    pthread_mutex_unlock(&p->txg_lock);
    tx->pool = NULL;
}

/* true when the open txg has anything to commit (txg_lock held). */
static bool
open_txg_has_work(struct pool *p)
{
    return p->dirty_bytes[p->open_txg & 1] > 0 || p->holds[p->open_txg & 1] > 0 ||
           p->config_dirty || objset_is_dirty(p->mos, p->open_txg) ||
           dsl_is_dirty(p, p->open_txg) || __atomic_load_n(&p->scan_dirty, __ATOMIC_RELAXED);
}

static void *
sync_thread_main(void *arg)
{
    struct pool *p = arg;
    pthread_mutex_lock(&p->txg_lock);
    while (!p->stopping || p->sync_requested >= p->open_txg) {
        bool want = p->sync_requested >= p->open_txg ||
                    p->dirty_total * 100 >= p->opts.dirty_max_bytes * SYNC_DIRTY_PCT;
        if (!want) {
            struct timespec ts;
            deadline_after_ms(&ts, p->opts.txg_timeout_ms);
            int w = pthread_cond_timedwait(&p->sync_cv, &p->txg_lock, &ts);
            if (p->stopping && p->sync_requested < p->open_txg)
                break;
            if (w == 0 && !(p->sync_requested >= p->open_txg ||
                            p->dirty_total * 100 >= p->opts.dirty_max_bytes * SYNC_DIRTY_PCT))
                continue; /* spurious or stale wake-up: keep the timeout going */
        }
        if (p->suspended)
            break;
        pthread_mutex_unlock(&p->txg_lock);
        bool work = open_txg_has_work(p);
        if (!work)
            blkbuf_trim(BLKBUF_IDLE_MS); /* idle: give back block memory nobody reused */
        pthread_mutex_lock(&p->txg_lock);
        if (!work && p->sync_requested < p->open_txg)
            continue;
        /*
         * Quiesce: new transactions wait while the open txg's holds drain, and only then does
         * the next txg open (invariant 2 and 5). Opening T+1 before T drained would let a tx in T
         * change an object after a tx in T+1 copied its state, and T+1's commit would undo it.
         */
        uint64_t txg = p->open_txg;
        p->quiescing = true;
        while (p->holds[txg & 1] > 0)
            pthread_cond_wait(&p->txg_cv, &p->txg_lock);
        p->open_txg = txg + 1;
        p->syncing_txg = txg;
        p->quiescing = false;
        pthread_cond_broadcast(&p->txg_cv);
        pthread_mutex_unlock(&p->txg_lock);

        pthread_mutex_lock(&p->sync_lock);
        int rc = pool_sync_txg(p, txg);
        pthread_mutex_unlock(&p->sync_lock);
        blkbuf_trim(BLKBUF_IDLE_MS);

        pthread_mutex_lock(&p->txg_lock);
        if (rc != 0) {
            log_err("commit of txg %llu in pool '%s' failed: %s; pool suspended",
                    (unsigned long long)txg, p->name, err_str(rc));
            p->suspended = rc; /* invariant 4 */
        } else {
            p->synced_txg = txg;
        }
        p->syncing_txg = 0;
        p->dirty_total -= p->dirty_bytes[txg & 1];
        p->dirty_bytes[txg & 1] = 0;
        p->reserved[txg & 1] = 0;
        pthread_cond_broadcast(&p->txg_cv);
        if (rc != 0)
            break;
    }
    p->sync_thread_running = false;
    pthread_cond_broadcast(&p->txg_cv);
    pthread_mutex_unlock(&p->txg_lock);
    return NULL;
}

int
txg_start_sync_thread(struct pool *p)
{
    p->sync_thread_running = true;
    int rc = pthread_create(&p->sync_thread, NULL, sync_thread_main, p);
    if (rc != 0) {
        p->sync_thread_running = false;
        return -rc;
    }
    p->sync_thread_started = true;
    char name[16];
    snprintf(name, sizeof(name), "sync:%.10s", p->name); /* the kernel keeps 15 characters */
    (void)pthread_setname_np(p->sync_thread, name);
    return 0;
}

void
txg_stop_sync_thread(struct pool *p)
{
    pthread_mutex_lock(&p->txg_lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->sync_cv);
    pthread_mutex_unlock(&p->txg_lock);
    if (p->sync_thread_started) /* joined even when it ended itself (suspended pool) */
        pthread_join(p->sync_thread, NULL);
    p->sync_thread_started = false;
}

int
pool_wait_synced(struct pool *p, uint64_t txg)
{
    if (p->readonly)
        return 0;
    pthread_mutex_lock(&p->txg_lock);
    if (txg == 0)
        txg = p->open_txg;
    if (txg > p->sync_requested)
        p->sync_requested = txg;
    pthread_cond_signal(&p->sync_cv);
    int rc = 0;
    while (p->synced_txg < txg) {
        if (p->suspended) {
            rc = -EIO;
            break;
        }
        if (!p->sync_thread_running) {
            rc = -ESHUTDOWN;
            break;
        }
        pthread_cond_wait(&p->txg_cv, &p->txg_lock);
    }
    pthread_mutex_unlock(&p->txg_lock);
    return rc;
}

int
pool_sync(struct pool *p, uint64_t *synced_txg)
{
    int rc = pool_wait_synced(p, 0);
    if (synced_txg != NULL) {
        pthread_mutex_lock(&p->txg_lock);
        *synced_txg = p->synced_txg;
        pthread_mutex_unlock(&p->txg_lock);
    }
    return rc;
}
