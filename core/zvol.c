/* SPDX-License-Identifier: MIT */
/*
 * zvol: block volumes on the object layer (see zvol.h).
 *
 * A write is cut into transactions of at most ZVOL_MAX_WRITE_CHUNK bytes, each assigned through
 * the dataset (quota, read-only) and the pool (throttle, space); the object layer copies the data
 * into the txg's dirty buffers and does the read-modify-write of partial blocks. Whole blocks
 * received straight into block buffers (zvol_write_blocks) become the dirty buffers themselves,
 * and an event loop may write them without waiting (ZVOL_NOWAIT) when no lock is busy and the
 * throttles would not delay it. Reads, the
 * extent map and the changed-block query all consult the dirty state first, so they see every
 * write that returned. Flush commits the open txg (the intent-log work will make it cheap).
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

/* One transaction's worth of zvol_write_blocks. Same ownership rules. */
static int
write_blocks_tx(struct zvol *zv, uint64_t fb, uint8_t **bufs, size_t n, bool nowait, uint64_t *txg)
{
    uint32_t bs = zv->blocksize;
    struct tx tx;
    uint64_t bytes = (uint64_t)n * bs;
    int rc = nowait ? ds_tx_try_assign(zv->ds, bytes, &tx) : ds_tx_assign(zv->ds, bytes, &tx);
    if (rc != 0)
        return rc;
    rc = obj_write_blocks(zv->os, &tx, ZVOL_OBJ, fb, bufs, n, bs, nowait);
    if (rc == -EAGAIN) { /* cannot happen to a volume (its block size is fixed); copy anyway */
        rc = 0;
        for (size_t i = 0; i < n; i++) {
            if (rc == 0)
                rc = obj_write(zv->os, &tx, ZVOL_OBJ, (fb + i) * bs, bs, bufs[i]);
            blkbuf_free(bufs[i]);
        }
    }
    *txg = tx.txg;
    tx_commit(&tx);
    return rc;
}

int
zvol_write_blocks(struct zvol *zv, uint64_t off, uint8_t **bufs, size_t n, unsigned flags)
{
    bool nowait = (flags & ZVOL_NOWAIT) != 0;
    uint32_t bs = zv->blocksize;
    uint64_t len = (uint64_t)n * bs;
    if (nowait && ((flags & ZVOL_FUA) || len > ZVOL_MAX_WRITE_CHUNK))
        return -EWOULDBLOCK; /* FUA waits for a commit; a larger write takes several txs */
    int rc = zvol_readonly(zv) ? -EROFS : off % bs != 0 ? -EINVAL : check_range(zv, off, len);
    size_t done = 0;
    uint64_t last_txg = 0;
    while (rc == 0 && done < n) {
        size_t k = n - done < ZVOL_MAX_WRITE_CHUNK / bs ? n - done : ZVOL_MAX_WRITE_CHUNK / bs;
        if (k == 0)
            k = 1; /* a block larger than a chunk */
        rc = write_blocks_tx(zv, off / bs + done, bufs + done, k, nowait, &last_txg);
        if (rc == -EWOULDBLOCK)
            return rc; /* nowait: nothing done, the buffers are still the caller's */
        done += k;
    }
    for (size_t i = done; i < n; i++)
        blkbuf_free(bufs[i]); /* after a failure */
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
