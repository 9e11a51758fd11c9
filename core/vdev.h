/* SPDX-License-Identifier: MIT */
/*
 * vdev: the tree of virtual devices under a pool and the routing of block I/O through it.
 *
 * A pool has top-level vdevs (p->vdevs[], ids 0..n-1); each is one of
 *   - a leaf: one file or block device (the "stripe" layout: the top-level is its own leaf);
 *   - a mirror of 2..VDEV_MAX_CHILDREN leaves: every leaf holds the whole address space;
 *   - a raidz1/2/3 of nparity+1..VDEV_MAX_CHILDREN leaves: each block is its own stripe of
 *     parity columns then data columns (vdev_raidz.c, pool-format.md §8).
 * DVA offsets are in the top-level's address space; leaves are addressed from VDEV_DATA_START.
 *
 * Reads are verified here, not above: vdev_read() checks each candidate (a mirror child, a
 * RAID-Z reconstruction) against the block's checksum, so redundancy can be used to find the
 * good copy. When a read succeeds only through redundancy, the damaged child is rewritten
 * (self-healing, unless the pool is read-only) and its counter is charged: an I/O error to
 * read_errors, wrong data to cksum_errors.
 *
 * Theory of operation
 *   1. Readers walk the tree without locks. Changes (pool_vdev.c, under sync_lock) only publish
 *      new pointers: a child array has room for VDEV_MAX_CHILDREN and never moves, and replaced
 *      or detached vdevs are retired, not freed, until the pool closes. Leaf state and counters
 *      change concurrently (atomics).
 *   2. A leaf whose device is missing or that is OFFLINE/REMOVED/FAULTED takes no I/O; reads
 *      treat it as an I/O error, writes skip it. A write succeeds while the top-level can still
 *      return the data: a mirror when one child took it, a raidz when at most nparity did not.
 *   3. Writes that a leaf missed are remembered as the txg in its missed_txg_min/max window (the
 *      dirty time log resilver reads); reads skip a leaf for blocks born inside its window, and
 *      repair it there. It is persisted in the config (offline, replaced, failed writes). A leaf
 *      whose newest uberblock is older than the pool's at import gets a *suspect* window instead:
 *      resilver walks it, reads do not avoid the leaf (a torn commit looks the same).
 *   4. Every read returns verified data or an error, never unverified bytes.
 *   5. A leaf of a mirror or raidz whose last VDEV_FAULT_AFTER I/Os all failed is FAULTED (if its
 *      vdev can spare it): it takes no more I/O until `pool_clear` or `pool_vdev_online`.
 */
#ifndef LCPFS_CORE_VDEV_H
#define LCPFS_CORE_VDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/ondisk.h"

struct pool;
struct dva;
struct blkptr;
struct vdev_backend;

#define VDEV_MAX_CHILDREN 32
#define VDEV_MAX_PARITY   3
#define VDEV_FAULT_AFTER  16 /* consecutive failed I/Os that fault a redundant leaf */

/* Runtime health of a vdev (zpool status vocabulary). */
enum vdev_health {
    VDEV_ONLINE = 0,
    VDEV_DEGRADED, /* interior: works with less redundancy */
    VDEV_FAULTED,  /* leaf: too many errors to use */
    VDEV_OFFLINE,  /* leaf: taken offline by the administrator */
    VDEV_REMOVED,  /* leaf: the device went away while open */
    VDEV_UNAVAIL,  /* leaf: could not be opened; interior: not enough children to serve I/O */
};
const char *vdev_health_name(enum vdev_health h);

struct vdev {
    uint64_t guid;
    uint32_t id;  /* top-level id for top-levels, index among the parent's children otherwise */
    uint8_t type; /* enum vdev_type_ondisk: LEAF, MIRROR or RAIDZ */
    uint8_t nparity;
    unsigned ashift;
    uint64_t asize; /* top-levels: allocatable bytes; leaves: their own data area */
    unsigned ms_shift;
    struct vdev *parent; /* NULL for top-levels */
    struct vdev *top;    /* the top-level this vdev belongs to (itself for top-levels) */
    struct vdev **child;
    uint32_t nchildren;
    struct vdev_backend *dev; /* leaves: the device, NULL when missing */
    char path[VDEV_PATH_MAX + 1];
    int health;                                       /* leaves: enum vdev_health (atomic) */
    uint64_t read_errors, write_errors, cksum_errors; /* atomics */
    uint64_t repaired_bytes;                          /* atomic: bytes rewritten by self-heal */
    uint64_t missed_txg_min, missed_txg_max;          /* invariant 3 (atomics) */
    uint64_t missed_since_cfg;                        /* import: the config's missed_since */
    uint64_t suspect_txg_min, suspect_txg_max;        /* resilver only (invariant 3) */
    bool missed_new;    /* atomic: the missed window just started; the config must record it */
    uint32_t error_run; /* atomic: failed I/Os since the last success (invariant 5) */
    bool shell;         /* a retired interior vdev: vdev_free leaves its children alone */
    bool scan_covered;  /* usable since the running scan began (scrub.c, scan_lock) */
};

/* ---- tree ---- */

/* A leaf for dev (may be NULL: missing). Takes dev. NULL on allocation failure. */
struct vdev *vdev_new_leaf(uint64_t guid, struct vdev_backend *dev, const char *path);
/* An interior (mirror or raidz) vdev over children[0..n). Takes the children on success. */
int vdev_new_interior(uint8_t type, uint8_t nparity, uint64_t guid, struct vdev **children,
                      uint32_t n, struct vdev **out);
/* Frees vd and its subtree, closing devices. NULL ok. */
void vdev_free(struct vdev *vd);
/* Makes vd top-level `id`: sets top pointers, ashift, and asize from the children's sizes. */
void vdev_make_top(struct vdev *vd, uint32_t id, unsigned ashift);
/* Allocatable bytes a leaf device of dev_size bytes offers (label_data_size, unit-aligned). */
uint64_t vdev_leaf_asize(uint64_t dev_size, unsigned ashift);

/* Current health of vd (computed for interior vdevs from their children). */
enum vdev_health vdev_health(const struct vdev *vd);
/* Calls fn on every leaf under vd, in child order. */
void vdev_walk_leaves(struct vdev *vd, void (*fn)(struct vdev *leaf, void *arg), void *arg);

/*
 * Bytes allocated on top-level vd for a block of dsize data bytes (unit multiple): dsize itself
 * for leaves and mirrors; RAID-Z adds parity sectors and pads to a multiple of nparity+1 sectors.
 */
uint64_t vdev_alloc_size(const struct vdev *vd, uint64_t dsize);
/* The same from layout parameters (the allocator computes it without the tree). */
uint64_t vdev_raidz_alloc_size(unsigned width, unsigned nparity, unsigned ashift, uint64_t dsize);

/* Where one piece of a block lives: child `child` of the top-level (0 for a leaf top-level). */
struct vdev_column {
    uint32_t child;
    uint64_t off; /* byte offset in the leaf's data area (after VDEV_DATA_START) */
    size_t size;
    bool parity;
};
/*
 * The pieces the block of dsize data bytes at top-level offset off is stored as: every child for
 * a mirror, the parity then data columns for RAID-Z, the top-level itself for a leaf. Fills
 * cols[0..n) and returns n (at most VDEV_MAX_CHILDREN). For tools and tests (damage injection).
 */
unsigned vdev_block_columns(const struct vdev *top, uint64_t off, size_t dsize,
                            struct vdev_column *cols);

/* ---- I/O ---- */

/*
 * Reads the dsize data bytes of the block at dva into buf and verifies them against bp's
 * checksum (over bp->psize bytes), using the top-level's redundancy to find data that verifies
 * and repairing what was damaged (invariant 4). Returns 0, -ECKSUM (nothing verifies), -EIO
 * (too many devices failed), or -ECORRUPT (dva is outside the pool or has the wrong size).
 */
int vdev_read(struct pool *p, const struct dva *dva, const struct blkptr *bp, void *buf,
              size_t dsize);
/*
 * Scrubs one copy: like vdev_read, but reads every child or column (parity included), checks
 * each against the verified data and rewrites every one that differs. Returns 0 when the block
 * verifies (after any repair), -ECKSUM or -EIO when it cannot be recovered from this copy.
 */
int vdev_scrub(struct pool *p, const struct dva *dva, const struct blkptr *bp, void *buf,
               size_t dsize);
/*
 * Writes dsize bytes of buf as the block at dva (allocated in txg) to every device of its
 * top-level (invariant 2). Returns 0 or -EIO when the top-level could not store it.
 */
int vdev_write(struct pool *p, const struct dva *dva, uint64_t txg, const void *buf, size_t dsize);
/*
 * Write aggregation (zio_write_issue): whether top-level vdev takes vdev_writev, which writes
 * the blocks of iov[0..n) (n <= VDEV_IOV_MAX), allocated back to back from byte off, in one
 * device write per leaf. Plain devices and mirrors can; RAID-Z (a block is a set of columns)
 * cannot. Same result as vdev_write of each block.
 */
bool vdev_can_writev(const struct pool *p, uint32_t vdev);
int vdev_writev(struct pool *p, uint32_t vdev, uint64_t off, const struct iovec *iov, int n,
                uint64_t txg);
/* Flushes every reachable leaf; fails only if a top-level lost the ability to hold its data. */
int vdev_flush_all(struct pool *p);

/* ---- leaf I/O, shared by the layouts (vdev.c) ---- */

/* Reads from leaf at byte off of its data area; counts errors. -ENXIO when it takes no I/O. */
int vdev_leaf_read(struct vdev *leaf, uint64_t off, void *buf, size_t len);
/* Writes; a failure counts a write error and records txg as missed (invariant 3). */
int vdev_leaf_write(struct vdev *leaf, uint64_t off, const void *buf, size_t len, uint64_t txg);
int vdev_leaf_writev(struct vdev *leaf, uint64_t off, const struct iovec *iov, int n, uint64_t txg);
/* Rewrites a damaged range during a read (self-heal): skipped on read-only pools. */
void vdev_leaf_repair(struct pool *p, struct vdev *leaf, uint64_t off, const void *buf, size_t len);
/* Whether the leaf missed the txg a block was born in (invariant 3): its copy is not there. */
bool vdev_leaf_lacks(const struct vdev *leaf, uint64_t birth);
/* Forgets the leaf's missed and suspect windows that end at or before txg `upto` (a resilver
 * covered them). */
void vdev_leaf_clear_missed(struct vdev *leaf, uint64_t upto);
/* Whether top could still serve every block without leaf (and the leaves already down). */
bool vdev_can_lose(const struct vdev *top, const struct vdev *leaf);
/* Whether the leaf takes I/O now. */
bool vdev_leaf_usable(const struct vdev *leaf);
/* Counts a checksum error on vd (a leaf that returned wrong data, or a top-level that failed). */
void vdev_count_cksum(struct vdev *vd);

/* The layouts (vdev_mirror.c, vdev_raidz.c). */
int vdev_mirror_read(struct pool *p, struct vdev *vd, uint64_t off, const struct blkptr *bp,
                     void *buf, size_t dsize);
int vdev_mirror_scrub(struct pool *p, struct vdev *vd, uint64_t off, const struct blkptr *bp,
                      void *buf, size_t dsize);
int vdev_mirror_write(struct vdev *vd, uint64_t off, const void *buf, size_t dsize, uint64_t txg);
int vdev_raidz_read(struct pool *p, struct vdev *vd, uint64_t off, const struct blkptr *bp,
                    void *buf, size_t dsize);
int vdev_raidz_scrub(struct pool *p, struct vdev *vd, uint64_t off, const struct blkptr *bp,
                     void *buf, size_t dsize);
int vdev_raidz_write(struct vdev *vd, uint64_t off, const void *buf, size_t dsize, uint64_t txg);

#endif
