/* SPDX-License-Identifier: MIT */
/*
 * pool_impl: the engine's internal structures, shared by pool*.c, vdev.c, zio.c, dnode.c,
 * objset.c and txg.c. Nothing outside core/ includes this header (the verifier does, read-only).
 *
 * Lock order (outer first):
 *   pool->sync_lock (sync thread only, held for a whole txg commit; admin ops that restructure)
 *   objset->lock  (handle table, dirty-dnode lists)
 *   dnode->lock   (dirty records, attributes, published tree root)
 *   pool->tree_lock (read while walking a committed tree; write to release deferred frees)
 *   pool->txg_lock (txg numbers, holds, dirty byte counts)
 *   alloc and arc internal mutexes (leaves)
 */
#ifndef LCPFS_CORE_POOL_IMPL_H
#define LCPFS_CORE_POOL_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/u64map.h"
#include "core/alloc.h"
#include "core/arc.h"
#include "core/bp.h"
#include "core/label.h"
#include "core/objset.h"
#include "core/pool.h"
#include "core/range_tree.h"
#include "core/vdev.h"

struct dsl;
#define POOL_MAX_TOP_VDEVS 64
#define TXG_SLOTS          2 /* open + syncing */
/* Writers are delayed once dirty data passes this share of dirty_max (txg.c). */
#define TXG_DELAY_MIN_PCT  60

/* ---- vdevs: core/vdev.h ---- */

/* ---- dnodes ---------------------------------------------------------------------------------- */
/* The attributes of an object that open context changes (all but the block tree). */
struct dnode_attrs {
    uint8_t type, nblkptr, indblkshift, checksum, compress, comp_level, copies, bonustype;
    uint32_t datablksz;
    uint16_t bonuslen;
    uint64_t size, gen;
    uint8_t bonus[DNODE_SIZE - DNODE_CORE_SIZE - BP_SIZE];
};

/* Decoded dnode: attributes + the block tree (changed only by the sync thread). */
struct dnode_phys {
    struct dnode_attrs a;
    uint8_t nlevels;
    uint64_t nblocks, used_bytes;
    struct blkptr blkptr[DNODE_MAX_BLKPTR];
};

void dnode_phys_encode(const struct dnode_phys *dp, uint8_t out[static DNODE_SIZE]);
/* Validates every field; -ECORRUPT. An all-zero slot decodes as a free dnode (type OT_NONE). */
int dnode_phys_decode(const uint8_t in[static DNODE_SIZE], struct dnode_phys *dp);

struct dirty_block {
    uint8_t *data; /* datablksz bytes */
};

/* A small sorted set of disjoint, non-adjacent [start, end) block-id ranges. */
struct blk_ranges {
    uint64_t (*r)[2];
    size_t n, cap;
};
int blk_ranges_add(struct blk_ranges *s, uint64_t start, uint64_t end);
bool blk_ranges_contains(const struct blk_ranges *s, uint64_t blkid);
void blk_ranges_release(struct blk_ranges *s);

/* Changes made to one object in one txg. */
struct dnode_txg {
    uint64_t txg;             /* 0 = slot unused */
    struct dnode_attrs attrs; /* attributes as of the end of this txg's changes */
    struct u64map blocks;     /* blkid -> struct dirty_block* */
    struct blk_ranges freed;  /* blkid ranges punched in this txg (before any later writes) */
    uint64_t max_blkid_plus1; /* highest dirty or freed block id + 1 */
    bool attrs_dirty;
};

struct dnode {
    struct objset *os;
    uint64_t obj;
    unsigned refs; /* under os->lock */
    pthread_mutex_t lock;
    struct dnode_phys phys;    /* last published tree + attrs (committed or being committed) */
    struct dnode_attrs latest; /* newest attributes, open context */
    struct dnode_txg txg[TXG_SLOTS];
    bool special; /* the meta-dnode: its phys lives in the objset root block */
};

/* ---- object sets ----------------------------------------------------------------------------- */
/*
 * Called (sync thread) for every block an object set stops referencing in txg. The default frees
 * it (zio_free); the dataset layer installs the birth-time rule here: a block born after the
 * dataset's newest snapshot is freed, an older one goes to the deadlist.
 */
typedef void (*objset_free_fn)(struct objset *os, uint64_t txg, const struct blkptr *bp);
/* Frees bp through os->free_fn (sync thread). Holes and embedded BPs are ignored. */
void objset_free_bp(struct objset *os, uint64_t txg, const struct blkptr *bp);

struct objset {
    struct pool *pool;
    uint64_t ds_obj; /* MOS object holding this objset's dataset record; 0 for the MOS */
    uint32_t type;   /* enum objset_type */
    pthread_mutex_t lock;
    struct dnode *meta;             /* object 0: the meta-dnode */
    struct u64map handles;          /* obj -> struct dnode* (held or dirty) */
    struct u64map dirty[TXG_SLOTS]; /* obj -> struct dnode*, dnodes dirty in txg slot */
    uint64_t dirty_txg[TXG_SLOTS];
    struct blkptr root_bp; /* last committed root block */
    uint64_t next_obj_hint;
    uint8_t def_checksum, def_compress, def_comp_level;
    bool is_mos;
    objset_free_fn free_fn; /* never NULL; zio_free by default */
    void *owner;            /* the dataset layer's node (dsl_node), NULL for the MOS */
    bool readonly;          /* a snapshot's object set: every change fails with -EROFS */
    /* sync thread: allocated/physical/logical bytes born minus freed since the owner took them */
    int64_t acct_asize, acct_psize, acct_lsize;
    /* the owner's unused space reservation: its own writes may use it (atomic) */
    uint64_t rsv_own;
};
/* Space accounting of blocks born / rewritten in place (sync thread). */
void objset_account(struct objset *os, const struct blkptr *bp, int sign);

int objset_open(struct pool *p, const struct blkptr *root, uint64_t ds_obj, struct objset **out);
int objset_create_new(struct pool *p, uint32_t type, uint64_t ds_obj, struct objset **out);
void objset_close(struct objset *os);
bool objset_is_dirty(struct objset *os, uint64_t txg);
/* Writes every dirty object and the root block for txg; *root gets the new root BP. */
int objset_sync(struct objset *os, uint64_t txg, unsigned pass, struct blkptr *root);
/* Sync-context helpers (the sync thread changing an object inside the syncing txg). */
int objset_obj_create_synctx(struct objset *os, uint64_t txg, const struct obj_create_opts *o,
                             uint64_t *obj);
int obj_write_synctx(struct objset *os, uint64_t txg, uint64_t obj, uint64_t off, size_t len,
                     const void *buf);
int obj_bonus_write_synctx(struct objset *os, uint64_t txg, uint64_t obj, const void *buf,
                           size_t len);
int obj_destroy_synctx(struct objset *os, uint64_t txg, uint64_t obj);

/* Holds / releases an object's in-memory handle. -ENOENT if the object is free (unless create). */
int dnode_hold(struct objset *os, uint64_t obj, bool allow_free, struct dnode **out);
void dnode_rele(struct dnode *dn);
struct dnode *dnode_new(struct objset *os, uint64_t obj);
void dnode_destroy_handle(struct dnode *dn);
/* Frees a slot's dirty blocks and ranges and marks it unused. */
void dnode_slot_clear(struct dnode_txg *slot);

int dnode_read(struct dnode *dn, uint64_t off, size_t len, void *buf);
int dnode_write(struct dnode *dn, uint64_t txg, uint64_t off, size_t len, const void *buf);
/*
 * Writes whole blocks without copying them: bufs[i] (bufsz bytes from blkbuf_alloc) becomes
 * block fb + i of the object. Every buffer is consumed — adopted, or freed — except when nowait
 * returns -EWOULDBLOCK (dn->lock busy, or bufsz is not the object's block size, which needs a
 * copy that may read): then bufs are untouched and still the caller's. After a failure part-way
 * the blocks before the failing one are written. dnode_write_blocks_dirty (objset.c) marks dn
 * dirty in txg first (os->lock try-locked with nowait), with the same rules.
 */
int dnode_write_blocks(struct dnode *dn, uint64_t txg, uint64_t fb, uint8_t **bufs, size_t n,
                       uint32_t bufsz, bool nowait);
int dnode_write_blocks_dirty(struct dnode *dn, uint64_t txg, uint64_t fb, uint8_t **bufs, size_t n,
                             uint32_t bufsz, bool nowait);
int dnode_punch(struct dnode *dn, uint64_t txg, uint64_t off, uint64_t len);
/* Marks the attributes dirty in txg after the caller changed dn->latest (dn->lock held). */
int dnode_attrs_dirty_locked(struct dnode *dn, uint64_t txg);
int dnode_sync(struct dnode *dn, uint64_t txg, unsigned pass);
bool dnode_is_dirty(struct dnode *dn);
int dnode_extents(struct dnode *dn, uint64_t off, uint64_t len, obj_extent_fn fn, void *arg);
int dnode_read_pieces(struct dnode *dn, uint64_t off, size_t len, struct obj_piece *pv, size_t max,
                      size_t *n);
/* The same without ever waiting: -EWOULDBLOCK when a lock is busy or a block is not cached. */
int dnode_read_pieces_nowait(struct dnode *dn, uint64_t off, size_t len, struct obj_piece *pv,
                             size_t max, size_t *n);
/* Block ranges changed after since_txg, uncommitted changes included (see dnode.c). */
int dnode_changed(struct dnode *dn, uint64_t since_txg, struct blk_ranges *out);
/* Reads the committed block tree: calls fn for every non-hole BP (any level). For the verifier. */
typedef int (*bp_visit_fn)(void *arg, const struct blkptr *bp, uint64_t parent_birth, int level,
                           uint64_t blkid);

/* ---- zio ------------------------------------------------------------------------------------- */
struct zio_props {
    uint8_t type, level, checksum, compress, comp_level, copies;
    bool metadata;
};
/*
 * Writes one logical block for txg: all-zero data becomes a hole, small compressed data an
 * embedded BP, anything else is compressed (when it saves 12.5 %), checksummed, allocated
 * (copies DVAs on distinct vdevs when possible) and written. If old was born in this same txg
 * with the same allocated size, its DVAs are rewritten in place and *reused is set (the caller
 * must then not free old). fill is set to 1 for data blocks (callers fix indirect fill).
 */
int zio_write(struct pool *p, uint64_t txg, const void *data, uint32_t lsize,
              const struct zio_props *zp, const struct blkptr *old, struct blkptr *out,
              bool *reused);
/*
 * zio_write in two steps, so that a txg's data blocks can be prepared in parallel and their
 * device writes merged (zio_agg.c): zio_write_prepare does everything but the device writes
 * (zero detection, compression, checksum, allocation or in-place reuse) and fills *d;
 * zio_write_issue then writes the copies of d[0..n), merging blocks allocated back to back
 * on a plain or mirror vdev into single writes of up to ZIO_AGG_MAX bytes, in parallel on tq
 * (NULL: on the calling thread). A copy whose write fails is written again alone and, if it
 * still fails, moved once to new space as zio_write always did. zio_write_issue sets each
 * d[i].rc, frees the DVAs of blocks that failed (unless reused) and every owned buffer, and
 * returns the first error. Between the two calls the caller keeps `data` alive.
 */
struct zio_deferred {
    struct blkptr *bp;  /* the BP being built (prepare's out); a moved copy updates its DVA */
    const uint8_t *src; /* dsize bytes to write: owned, or the caller's data */
    uint8_t *owned;     /* freed by zio_write_issue; NULL when src is the caller's */
    uint32_t dsize;
    uint8_t ncopies; /* DVAs to write; 0 for holes, embedded BPs and failed prepares */
    bool reused;     /* the DVAs are old's, rewritten in place */
    bool metadata;
    int rc;
};
#define ZIO_AGG_MAX            (1u << 20)
/* Device writes of a txg in flight at once (zio_issue_start on io_taskq): a device, even a
 * virtual disk or a file, completes a few large writes in parallel faster than one by one. */
#define SYNC_IO_THREADS        4
/* The part of a txg's data blocks prepared while the previous part is written. */
#define SYNC_ISSUE_CHUNK_BYTES (32u << 20)
struct taskq;
int zio_write_prepare(struct pool *p, uint64_t txg, const void *data, uint32_t lsize,
                      const struct zio_props *zp, const struct blkptr *old, struct blkptr *out,
                      struct zio_deferred *d);
int zio_write_issue(struct pool *p, uint64_t txg, struct zio_deferred *d, size_t n,
                    struct taskq *tq);
/*
 * zio_write_issue in two halves: zio_issue_start lists and merges the writes and starts them on
 * tq's workers (taskq_start; NULL or a single write: done before it returns); the caller may
 * then work on other blocks, but not use tq, until zio_issue_finish waits for the writes, redoes
 * the failed ones and returns what zio_write_issue would. zi is the caller's storage for the
 * batch in flight; d must stay alive and unchanged until the finish.
 */
struct agg_ext;
struct agg_run;
struct zio_issue {
    struct pool *p;
    uint64_t txg;
    struct zio_deferred *d;
    size_t n;
    struct taskq *tq;
    struct agg_ext *ext; /* the copies to write, sorted by device and offset */
    ssize_t count;       /* entries in ext, or -ENOMEM */
    struct agg_run *runs;
    bool started; /* runs are on tq's workers */
};
void zio_issue_start(struct zio_issue *zi, struct pool *p, uint64_t txg, struct zio_deferred *d,
                     size_t n, struct taskq *tq);
int zio_issue_finish(struct zio_issue *zi);
/* Reads and verifies a block into out (bp->lsize bytes), trying every copy. -ECKSUM, -EIO. */
int zio_read(struct pool *p, const struct blkptr *bp, void *out);
/* A read-only view of a block's logical bytes: from the ARC, or private for holes/embedded. */
struct blockref {
    const uint8_t *data; /* len bytes, valid until blockref_release */
    size_t len;
    struct arc_buf *ab;
    uint8_t *owned;
};
/* While on (this thread only), zio_read_ref serves cache hits, holes and embedded blocks and
 * returns -EWOULDBLOCK instead of reading a device. Returns the previous setting. */
bool zio_cache_only(bool on);
/* Reads bp through the ARC. Returns 0 with ref filled, -ECKSUM, -EIO, -ENOMEM. */
int zio_read_ref(struct pool *p, const struct blkptr *bp, struct blockref *ref);
void blockref_release(struct blockref *ref);
/* The block cache key of bp (its first DVA and birth). */
void arc_key_of(const struct blkptr *bp, struct arc_key *k);
/* Frees bp's DVAs in txg: immediately if born in txg, else deferred by two txgs. */
void zio_free(struct pool *p, uint64_t txg, const struct blkptr *bp);

/* ---- errors ---------------------------------------------------------------------------------- */
struct pool_error {
    uint64_t ds_obj, obj, blkid;
    int level;
    int err;
    struct blkptr bp;
};
#define POOL_ERRLOG_MAX 64
void pool_record_error(struct pool *p, uint64_t ds_obj, uint64_t obj, int level, uint64_t blkid,
                       const struct blkptr *bp, int err);

/* ---- the pool -------------------------------------------------------------------------------- */
struct pool {
    char name[POOL_NAME_MAX + 1];
    uint64_t guid;
    uint64_t create_time;
    struct pool_opts opts;
    bool readonly;

    /* vdevs: index = top-level id */
    struct vdev *vdevs[POOL_MAX_TOP_VDEVS];
    uint32_t nvdevs;
    uint64_t config_txg;

    struct alloc *alloc;
    struct arc *arc;
    uint64_t blkbuf_spare;  /* block memory held mapped between bursts (blkbuf_spare_hold) */
    struct taskq *taskq;    /* sync-thread workers: compress, checksum, allocate */
    struct taskq *io_taskq; /* sync-thread device writes, in the background (zio_issue_start) */
    pthread_rwlock_t tree_lock;
    struct vdev **retired; /* leaves replaced while open (pool_vdev.c): freed at close */
    size_t nretired;
    /* scrub (scrub.c) */
    pthread_mutex_t scan_lock;
    struct pool_scan_stats scan;
    uint64_t scan_bm_ds, scan_bm_obj, scan_bm_blkid; /* last data block scanned (bookmark) */
    bool scan_cover_valid; /* leaves' scan_covered describe this import's scan (scrub.c) */
    bool scan_cancel, scan_pause, scan_interrupt; /* requests to the running scan (atomics) */
    bool scan_dirty; /* atomic: the scan state changed; the next txg writes the pool directory */

    struct objset *mos;
    struct objset *root_os;
    uint64_t root_ds_obj;
    struct dsl *dsl; /* the dataset layer (core/dsl_impl.h) */
    /* pool directory (MOS object 1) in memory */
    uint64_t journal_obj, checkpoint_obj, checkpoint_txg, create_txg;
    uint64_t journal_bytes; /* size of the journal object */

    /* txg state, under txg_lock */
    pthread_mutex_t txg_lock;
    pthread_cond_t txg_cv;  /* holds drained, txg synced, dirty space freed */
    pthread_cond_t sync_cv; /* wakes the sync thread */
    uint64_t open_txg;
    uint64_t syncing_txg; /* 0 when idle */
    uint64_t synced_txg;
    uint64_t sync_requested; /* highest txg someone waits for */
    unsigned holds[TXG_SLOTS];
    uint64_t dirty_bytes[TXG_SLOTS];
    uint64_t dirty_total;
    uint64_t reserved[TXG_SLOTS]; /* space promised to dirty data of each txg (worst case) */
    int suspended;                /* sticky error of a failed commit, 0 if healthy */
    bool quiescing;               /* the open txg is closing: tx_assign waits */
    bool stopping;
    bool config_dirty;
    pthread_t sync_thread;
    bool sync_thread_running; /* under txg_lock: the thread still serves commits */
    bool sync_thread_started; /* owner only: a thread exists that must be joined */
    pthread_mutex_t sync_lock;

    /* error log */
    pthread_mutex_t err_lock;
    struct pool_error errlog[POOL_ERRLOG_MAX];
    unsigned nerrors;
    uint64_t errors_total;
};

/* txg.c */
int txg_init(struct pool *p, uint64_t first_open_txg);
int txg_start_sync_thread(struct pool *p);
void txg_stop_sync_thread(struct pool *p);
void txg_dirty_add(struct pool *p, uint64_t txg, uint64_t bytes);
/*
 * Promises `bytes` of allocatable space to txg's dirty data (worst case: uncompressed, every copy,
 * indirect overhead). -ENOSPC when the pool, less slop, deferred frees and the promises already
 * made, cannot hold it. Promises end when the txg commits.
 */
int txg_reserve_space(struct pool *p, uint64_t txg, uint64_t bytes, const struct objset *os);
/* The syncing txg allocated `bytes`: that much of its promise is now real (txg.c). */
void txg_space_allocated(struct pool *p, uint64_t txg, uint64_t bytes);
/*
 * tx_assign for a writer whose own unused space reservation is own_rsv bytes: when the pool is
 * short of space it first waits (at most three commits) for promised and deferred space to
 * settle, so ENOSPC means the pool is really full (txg.c).
 */
int tx_assign_rsv(struct pool *p, uint64_t dirty_estimate, uint64_t own_rsv, struct tx *tx);
/*
 * tx_assign_rsv for a caller that must not block (an event loop thread): -EWOULDBLOCK, with
 * nothing assigned, wherever tx_assign_rsv would wait (a quiesce, a busy txg lock, the write
 * throttle's delay, or the space throttle). The caller then does it the waiting way elsewhere.
 */
int tx_try_assign_rsv(struct pool *p, uint64_t dirty_estimate, uint64_t own_rsv, struct tx *tx);
/* dsl.c: sum of the unused space reservations of all datasets (atomic read). */
uint64_t dsl_rsv_unused_total(struct pool *p);
/* pool_sync.c: commits txg (called by the sync thread with sync_lock held). */
int pool_sync_txg(struct pool *p, uint64_t txg);
int pool_write_config(struct pool *p, uint64_t txg, uint32_t state, unsigned label_mask);
int pool_write_uberblocks(struct pool *p, uint64_t txg);
void pool_dir_encode(struct pool *p, uint8_t out[static POOL_DIR_SIZE]);
int pool_dir_decode(struct pool *p, const uint8_t in[static POOL_DIR_SIZE]);
/* pool.c: shared by create and import */
struct pool *pool_alloc(const struct pool_opts *opts);
void pool_free_all(struct pool *p);
/* The most any top-level allocates for a block of dsize data bytes (RAID-Z parity, padding). */
uint64_t pool_worst_alloc_size(struct pool *p, uint64_t dsize);
/* Bytes rewritten by self-healing on every leaf since import (pool.c). */
uint64_t pool_repaired_bytes(struct pool *p);
/* Registers top-level `top` (made with vdev_make_top, id == nvdevs) with the pool and allocator. */
int pool_top_attach(struct pool *p, struct vdev *top);
/* Registers top's space with the allocator (pool_top_attach, and again after a failed load). */
int pool_alloc_register(struct pool *p, const struct vdev *top);
uint64_t pool_random_guid(void);

#endif
