/* SPDX-License-Identifier: MIT */
/*
 * zvol: block volumes on the object layer (see zvol.h).
 *
 * A write is cut into transactions of at most ZVOL_MAX_WRITE_CHUNK bytes, each assigned through
 * the dataset (quota, read-only) and the pool (throttle, space); the object layer copies the data
 * into the txg's dirty buffers and does the read-modify-write of partial blocks. Whole blocks
 * received straight into block buffers (zvol_write_blocks) become the dirty buffers themselves,
 * and an event loop may write them without waiting (ZVOL_NOWAIT) when no lock is busy and the
 * throttles would not delay it. Reads, the extent map and the changed-block query all consult
 * the dirty state first, so they see every write that returned. Flush commits the open txg
 * (the intent-log work will make it cheap).
 */
#include "core/zvol.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/blkbuf.h"
#include "core/dsl.h"
#include "core/objset.h"
#include "core/pool_impl.h"

struct zvol {
    struct dataset *ds;
    struct objset *os;
    struct pool *pool;
    struct dnode *dn; /* the volume object, held while the handle lives (no reload per I/O) */
    uint32_t blocksize;
    bool readonly;
};

int
zvol_open(struct pool *p, const char *name, struct zvol **out, struct err_msg *em)
{
    struct zvol *zv = calloc(1, sizeof(*zv));
    if (zv == NULL)
        return -ENOMEM;
    int rc = ds_open(p, name, &zv->ds, em);
    if (rc != 0) {
        free(zv);
        return rc;
    }
    zv->os = ds_objset(zv->ds);
    zv->pool = p;
    struct obj_info oi;
    rc = obj_stat(zv->os, ZVOL_OBJ, &oi);
    if (rc != 0 || oi.type != OT_ZVOL) {
        rc = err_msg_set(em, -EINVAL, "'%s' is not a volume", name);
        zvol_close(zv);
        return rc;
    }
    zv->blocksize = oi.blocksize;
    zv->readonly = ds_readonly(zv->ds);
    rc = dnode_hold(zv->os, ZVOL_OBJ, false, &zv->dn);
    if (rc != 0) {
        err_msg_set(em, rc, "cannot open '%s': %s", name, err_str(rc));
        zvol_close(zv);
        return rc;
    }
    *out = zv;
    return 0;
}

void
zvol_close(struct zvol *zv)
{
    if (zv == NULL)
        return;
    if (zv->dn != NULL)
        dnode_rele(zv->dn);
    ds_close(zv->ds);
    free(zv);
}

uint64_t
zvol_size(struct zvol *zv)
{
    pthread_mutex_lock(&zv->dn->lock);
    uint64_t size = zv->dn->latest.size;
    pthread_mutex_unlock(&zv->dn->lock);
    return size;
}

uint32_t
zvol_blocksize(const struct zvol *zv)
{
    return zv->blocksize;
}

bool
zvol_readonly(const struct zvol *zv)
{
    return zv->readonly || ds_readonly(zv->ds);
}

struct dataset *
zvol_dataset(struct zvol *zv)
{
    return zv->ds;
}

static int
check_range(struct zvol *zv, uint64_t off, uint64_t len)
{
    uint64_t size = zvol_size(zv);
    if (off > size || len > size - off)
        return -EINVAL;
    return 0;
}

int
zvol_read(struct zvol *zv, uint64_t off, size_t len, void *buf)
{
    int rc = check_range(zv, off, len);
    if (rc != 0)
        return rc;
    return dnode_read(zv->dn, off, len, buf);
}

int
zvol_read_pieces(struct zvol *zv, uint64_t off, size_t len, struct obj_piece *pv, size_t max,
                 size_t *n)
{
    int rc = check_range(zv, off, len);
    if (rc != 0)
        return rc;
    return dnode_read_pieces(zv->dn, off, len, pv, max, n);
}

int
zvol_read_pieces_nowait(struct zvol *zv, uint64_t off, size_t len, struct obj_piece *pv, size_t max,
                        size_t *n)
{
    if (pthread_mutex_trylock(&zv->dn->lock) != 0)
        return -EWOULDBLOCK;
    uint64_t size = zv->dn->latest.size;
    pthread_mutex_unlock(&zv->dn->lock);
    if (off > size || len > size - off)
        return -EINVAL;
    return dnode_read_pieces_nowait(zv->dn, off, len, pv, max, n);
}

/* Runs op for [off, off+len) in chunks, each in its own transaction; FUA waits for the last. */
typedef int (*chunk_fn)(struct zvol *zv, struct tx *tx, uint64_t off, uint64_t len,
                        const uint8_t *buf);

static int
in_chunks(struct zvol *zv, uint64_t off, uint64_t len, const uint8_t *buf, bool charges,
          unsigned flags, chunk_fn op)
{
    if (zvol_readonly(zv))
        return -EROFS;
    int rc = check_range(zv, off, len);
    uint64_t last_txg = 0;
    while (rc == 0 && len > 0) {
        uint64_t n = len < ZVOL_MAX_WRITE_CHUNK ? len : ZVOL_MAX_WRITE_CHUNK;
        struct tx tx;
        rc = ds_tx_assign(zv->ds, charges ? n : 0, &tx);
        if (rc != 0)
            break;
        rc = op(zv, &tx, off, n, buf);
        last_txg = tx.txg;
        tx_commit(&tx);
        off += n;
        len -= n;
        if (buf != NULL)
            buf += n;
    }
    if (rc == 0 && (flags & ZVOL_FUA) && last_txg != 0)
        rc = pool_wait_synced(zv->pool, last_txg);
    return rc;
}

static int
write_chunk(struct zvol *zv, struct tx *tx, uint64_t off, uint64_t len, const uint8_t *buf)
{
    return obj_write(zv->os, tx, ZVOL_OBJ, off, (size_t)len, buf);
}

static int
punch_chunk(struct zvol *zv, struct tx *tx, uint64_t off, uint64_t len, const uint8_t *buf)
{
    (void)buf;
    return obj_punch(zv->os, tx, ZVOL_OBJ, off, len);
}

int
zvol_write(struct zvol *zv, uint64_t off, size_t len, const void *buf, unsigned flags)
{
    return in_chunks(zv, off, len, buf, true, flags, write_chunk);
}

uint8_t *
zvol_block_alloc(const struct zvol *zv)
{
    return blkbuf_alloc(zv->blocksize);
}

void
zvol_block_free(uint8_t *block)
{
    blkbuf_free(block);
}

struct nowait_write {
    struct zvol *zv;
    uint64_t fb;
    uint8_t **bufs;
    size_t n;
    bool consumed; /* the buffers were taken over (or freed) */
};

static int
nowait_write_fn(void *arg, struct tx *tx)
{
    struct nowait_write *w = arg;
    int rc =
        dnode_write_blocks_dirty(w->zv->dn, tx->txg, w->fb, w->bufs, w->n, w->zv->blocksize, true);
    w->consumed = rc != -EWOULDBLOCK;
    return rc;
}

/*
 * The ZVOL_NOWAIT path: the range checked under a try-locked dnode lock, then one transaction
 * in which every lock is try-locked (ds_tx_try_run, dnode_write_blocks_dirty). The read-only
 * state of the dataset is checked by ds_tx_try_run, without waiting for the dataset lock.
 */
static int
write_blocks_nowait(struct zvol *zv, uint64_t off, uint8_t **bufs, size_t n)
{
    uint64_t len = (uint64_t)n * zv->blocksize;
    if (len > ZVOL_MAX_WRITE_CHUNK)
        return -EWOULDBLOCK; /* several transactions: a worker's job */
    if (pthread_mutex_trylock(&zv->dn->lock) != 0)
        return -EWOULDBLOCK;
    uint64_t size = zv->dn->latest.size;
    pthread_mutex_unlock(&zv->dn->lock);
    int rc = zv->readonly                     ? -EROFS
             : off % zv->blocksize != 0       ? -EINVAL
             : off > size || len > size - off ? -EINVAL
                                              : 0;
    if (rc == 0) {
        struct nowait_write w = { .zv = zv, .fb = off / zv->blocksize, .bufs = bufs, .n = n };
        rc = ds_tx_try_run(zv->ds, len, nowait_write_fn, &w);
        if (rc == -EWOULDBLOCK || w.consumed)
            return rc; /* nothing done (the buffers still the caller's), or written */
    }
    for (size_t i = 0; i < n; i++) /* refused before the write: consume them all the same */
        blkbuf_free(bufs[i]);
    return rc;
}

int
zvol_write_blocks(struct zvol *zv, uint64_t off, uint8_t **bufs, size_t n, unsigned flags)
{
    if (flags & ZVOL_NOWAIT)
        return (flags & ZVOL_FUA) ? -EWOULDBLOCK /* waits for a commit */
                                  : write_blocks_nowait(zv, off, bufs, n);
    uint32_t bs = zv->blocksize;
    uint64_t len = (uint64_t)n * bs;
    int rc = zvol_readonly(zv) ? -EROFS : off % bs != 0 ? -EINVAL : check_range(zv, off, len);
    size_t done = 0, per_tx = ZVOL_MAX_WRITE_CHUNK / bs ? ZVOL_MAX_WRITE_CHUNK / bs : 1;
    uint64_t last_txg = 0;
    while (rc == 0 && done < n) {
        size_t k = n - done < per_tx ? n - done : per_tx;
        struct tx tx;
        rc = ds_tx_assign(zv->ds, (uint64_t)k * bs, &tx);
        if (rc != 0)
            break;
        /* Consumes bufs[done, done + k) whatever it returns (it never gives up here). */
        rc = dnode_write_blocks_dirty(zv->dn, tx.txg, off / bs + done, bufs + done, k, bs, false);
        last_txg = tx.txg;
        tx_commit(&tx);
        done += k;
    }
    for (size_t i = done; i < n; i++)
        blkbuf_free(bufs[i]); /* not written: refused, or after a failure */
    if (rc == 0 && (flags & ZVOL_FUA) && last_txg != 0)
        rc = pool_wait_synced(zv->pool, last_txg);
    return rc;
}

int
zvol_trim(struct zvol *zv, uint64_t off, uint64_t len, unsigned flags)
{
    return in_chunks(zv, off, len, NULL, false, flags, punch_chunk);
}

int
zvol_write_zeroes(struct zvol *zv, uint64_t off, uint64_t len, unsigned flags)
{
    /* All-zero blocks are holes in this pool (zvol.h), so zeroing is deallocating. */
    return in_chunks(zv, off, len, NULL, false, flags, punch_chunk);
}

int
zvol_flush(struct zvol *zv)
{
    if (zvol_readonly(zv))
        return 0;
    return pool_wait_synced(zv->pool, 0);
}

int
zvol_extents(struct zvol *zv, uint64_t off, uint64_t len, zvol_extent_fn fn, void *arg)
{
    int rc = check_range(zv, off, len);
    if (rc != 0)
        return rc;
    return obj_extents(zv->os, ZVOL_OBJ, off, len, fn, arg);
}

int
zvol_changed(struct zvol *zv, const char *since, zvol_changed_fn fn, void *arg, struct err_msg *em)
{
    return ds_changed_blocks(zv->ds, ZVOL_OBJ, since, fn, arg, em);
}

uint64_t
zvol_thick_reservation(uint64_t volsize, uint32_t volblocksize, unsigned copies)
{
    if (volblocksize == 0)
        volblocksize = ZVOL_DEFAULT_BLOCKSIZE;
    if (copies == 0)
        copies = 1;
    /* Data, plus every level of 128 KiB indirect blocks (1024 pointers each), which are
     * metadata and carry one more copy than the data (up to 3). */
    uint64_t rsv = volsize * copies;
    unsigned mcopies = copies < 3 ? copies + 1 : 3;
    uint64_t blocks = (volsize + volblocksize - 1) / volblocksize;
    const uint64_t ind = 1ull << INDIRECT_SHIFT_DEFAULT, per = ind / BP_SIZE;
    do {
        blocks = (blocks + per - 1) / per;
        rsv += blocks * ind * mcopies;
    } while (blocks > 1);
    return rsv;
}
