/* SPDX-License-Identifier: MIT */
/*
 * pool: the public face of the pool engine — create, import, export, add devices, statistics,
 * transactions and commits. Blocking and thread-safe; no sockets, no protocols.
 *
 * A pool is a set of top-level vdevs (format 1 builds them from leaf devices; mirrors and RAID-Z
 * arrive with the redundancy work and the config already has room for them), a meta object set
 * (MOS) reachable from the newest uberblock, and object sets (datasets) described in the MOS.
 *
 * Writers bracket their changes in a transaction (tx_assign .. tx_commit). Every change made
 * under a tx belongs to its transaction group (txg); a txg is committed atomically by the sync
 * thread: all new blocks are written to free space, devices are flushed, then the uberblock is
 * written to every label and devices are flushed again (docs/DESIGN.md "Life of a txg").
 * pool_sync() forces a commit and waits for it.
 *
 * Errors: 0 or a negative errno. A failed commit (device errors on every copy) suspends the pool:
 * every later tx_assign fails with -EIO until the pool is closed; nothing acknowledged is lost
 * because nothing after the last durable uberblock was acknowledged.
 */
#ifndef LCPFS_CORE_POOL_H
#define LCPFS_CORE_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "core/cksum.h"
#include "core/compress.h"
#include "core/ondisk.h"

struct pool;
struct objset;
struct vdev_backend;

struct pool_opts {
    unsigned ashift;          /* allocation unit 2^ashift; 0 = 12 (4 KiB) */
    uint64_t dirty_max_bytes; /* write throttle limit; 0 = min(10 % RAM, 4 GiB), >= 16 MiB */
    uint64_t txg_timeout_ms;  /* commit at least this often when dirty; 0 = 5000 */
    size_t arc_max_bytes;     /* block cache budget; 0 = RAM / 8, within 256 MiB .. 8 GiB */
    uint64_t journal_checkpoint_bytes; /* rewrite the space checkpoint past this journal size; 0 = 8
                                          MiB */
    bool direct_io;                    /* O_DIRECT on file vdevs */
    bool create_files; /* pool_create: make missing vdev files of create_size bytes */
    uint64_t create_size;
};

struct pool_import_opts {
    bool readonly;       /* never write: no txgs are synced, tx_assign fails with -EROFS */
    uint64_t rewind_txg; /* 0 = newest valid; else the newest valid uberblock with txg <= this */
    bool force;          /* import a pool that was not exported (always allowed in format 1) */
    struct pool_opts tuning;
};

/*
 * Creates pool `name` striped over the devices at paths[0..n) (files or block devices) and
 * imports it. Every device is labelled; existing LCPFS labels are refused with -EEXIST unless the
 * pool they name is destroyed. Returns 0 and the pool in *out (close with pool_export or
 * pool_close), or a negative errno with the reason in em.
 */
int pool_create(const char *name, const char *const *paths, size_t n, const struct pool_opts *opts,
                struct pool **out, struct err_msg *em);
/* The same over already-open backends (memory and fault devices in tests). Takes the backends. */
int pool_create_backends(const char *name, struct vdev_backend **devs, size_t n,
                         const struct pool_opts *opts, struct pool **out, struct err_msg *em);

/*
 * Imports the pool whose devices are at paths[0..n). Selects the newest uberblock whose
 * checksum verifies and whose root tree loads (MOS, pool directory, space maps, root object
 * set), falling back to older ones (rewind) and logging each skipped txg. Returns 0, -ENOENT (no
 * labels), -EDEGRADED (a top-level vdev is missing), -ECKSUM/-ECORRUPT (no usable uberblock), or
 * another negative errno; em says which device and why.
 */
int pool_import(const char *const *paths, size_t n, const struct pool_import_opts *opts,
                struct pool **out, struct err_msg *em);
int pool_import_backends(struct vdev_backend **devs, size_t n, const struct pool_import_opts *opts,
                         struct pool **out, struct err_msg *em);

/* Commits everything, marks the pool exported in its labels, closes it. Returns the first error. */
int pool_export(struct pool *p);
/*
 * Closes without exporting (like a crash after the last commit, but clean in memory): waits for
 * the sync thread, drops uncommitted changes. NULL ok.
 */
void pool_close(struct pool *p);

/* Adds a leaf device as a new top-level vdev (online). The addition is committed before return. */
int pool_add_vdev(struct pool *p, const char *path, struct err_msg *em);
int pool_add_backend(struct pool *p, struct vdev_backend *dev, struct err_msg *em);

/* Forces a commit of everything assigned so far and waits until it is durable. Returns the txg. */
int pool_sync(struct pool *p, uint64_t *synced_txg);
/* Waits until txg is durable (0 = the currently open txg). */
int pool_wait_synced(struct pool *p, uint64_t txg);

struct pool_stats {
    uint64_t guid;
    uint64_t size, allocated, free, deferred, slop;
    unsigned fragmentation;
    uint64_t open_txg, synced_txg;
    uint64_t dirty_bytes, dirty_max_bytes;
    uint64_t arc_hits, arc_misses, arc_size, arc_max;
    uint64_t cksum_errors, read_errors, write_errors;
    uint32_t nvdevs;
    bool readonly, suspended;
};
void pool_get_stats(struct pool *p, struct pool_stats *out);

/* One top-level vdev (format 1: a leaf device). */
struct pool_vdev_stats {
    char path[VDEV_PATH_MAX + 1];
    uint64_t guid, size, allocated;
    uint64_t read_errors, write_errors, cksum_errors;
};
/* Fills out for top-level vdev i (0 .. nvdevs-1); -ENOENT past the end. */
int pool_get_vdev(struct pool *p, uint32_t i, struct pool_vdev_stats *out);

/* The newest permanent errors (blocks no copy of which could be read), newest first. */
struct pool_error_info {
    uint64_t ds_obj, obj, blkid; /* dataset record (0 = MOS), object, block */
    int level;
    int err;
};
/* Calls fn for each remembered error (at most POOL_ERRLOG_MAX); returns the total ever seen. */
typedef void (*pool_error_fn)(void *arg, const struct pool_error_info *e);
uint64_t pool_get_errors(struct pool *p, pool_error_fn fn, void *arg);
const char *pool_name(const struct pool *p);
uint64_t pool_guid(const struct pool *p);

/* The pool's root object set (dataset `name`). Borrowed; valid until the pool closes. */
struct objset *pool_root_objset(struct pool *p);

/* ---- transactions ---------------------------------------------------------------------------- */
struct tx {
    struct pool *pool;
    uint64_t txg;
};

/*
 * Joins the open txg, first waiting while dirty data is over the throttle (a short delay from
 * 60 % of dirty_max, a hard wait at 100 %). dirty_estimate is the bytes the caller will dirty.
 * Returns 0, -EROFS (read-only import) or -EIO (pool suspended).
 */
int tx_assign(struct pool *p, uint64_t dirty_estimate, struct tx *tx);
/* Leaves the txg; the changes commit with it. */
void tx_commit(struct tx *tx);

#endif
