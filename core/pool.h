/* SPDX-License-Identifier: MIT */
/*
 * pool: the public face of the pool engine — create, import, export, add devices, statistics,
 * transactions and commits. Blocking and thread-safe; no sockets, no protocols.
 *
 * A pool is a set of top-level vdevs (leaf devices, mirrors and RAID-Z groups: core/vdev.h), a
 * meta object set (MOS) reachable from the newest uberblock, and object sets (datasets) described
 * in the MOS.
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
#include "core/vdev_backend.h"

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
    enum vdev_direct direct_io;        /* O_DIRECT on file vdevs (vdev_backend.h) */
    bool create_files; /* pool_create: make missing vdev files of create_size bytes */
    uint64_t create_size;
};

struct pool_import_opts {
    bool readonly;       /* never write: no txgs are synced, tx_assign fails with -EROFS */
    uint64_t rewind_txg; /* 0 = newest valid; else the newest valid uberblock with txg <= this */
    bool force;          /* import a pool that was not exported (always allowed in format 1) */
    struct pool_opts tuning;
};

/* The most words (devices and group keywords) a layout may have. */
#define POOL_MAX_LAYOUT_WORDS 256

/*
 * Creates pool `name` on the layout given in zpool's words and imports it. A device (file or
 * block device path) on its own is a top-level vdev; "mirror" followed by 2..32 devices is a
 * mirror; "raidz" (= "raidz1"), "raidz2" or "raidz3" followed by nparity+1..32 devices is a RAID-Z
 * group: `a b`, `mirror a b mirror c d`, `raidz2 a b c d e f`. Every device is labelled; existing
 * LCPFS labels are refused with -EEXIST unless the pool they name is destroyed. Returns 0 and the
 * pool in *out (close with pool_export or pool_close), or a negative errno with the reason in em.
 */
int pool_create(const char *name, const char *const *words, size_t nwords,
                const struct pool_opts *opts, struct pool **out, struct err_msg *em);
/*
 * The same over already-open backends (memory and fault devices in tests): devs[i] is the i-th
 * device word of the layout (the words' text is not used for devices). Takes the backends.
 */
int pool_create_layout(const char *name, const char *const *words, size_t nwords,
                       struct vdev_backend **devs, size_t ndevs, const struct pool_opts *opts,
                       struct pool **out, struct err_msg *em);
/* A stripe of devs[0..n). Takes the backends. */
int pool_create_backends(const char *name, struct vdev_backend **devs, size_t n,
                         const struct pool_opts *opts, struct pool **out, struct err_msg *em);
/* Whether word is a layout keyword (mirror, raidz, raidz1..3) rather than a device. */
bool pool_layout_is_keyword(const char *word);

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
/* Adds the top-level vdevs of a layout in pool_create's words ("mirror c d"); committed. */
int pool_add(struct pool *p, const char *const *words, size_t nwords, struct err_msg *em);
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
    int health; /* enum vdev_health (core/vdev.h): ONLINE, DEGRADED or UNAVAIL */
    bool readonly, suspended;
};
void pool_get_stats(struct pool *p, struct pool_stats *out);

/* One vdev of the tree: a top-level, or a child of a mirror or RAID-Z top-level. */
struct pool_vdev_stats {
    char path[VDEV_PATH_MAX + 1]; /* leaves: the device; interior: "mirror-N", "raidzP-N" */
    uint8_t type;                 /* enum vdev_type_ondisk */
    uint8_t nparity;
    uint32_t nchildren;
    int health; /* enum vdev_health (core/vdev.h) */
    uint64_t guid, size, allocated;
    uint64_t read_errors, write_errors, cksum_errors, repaired_bytes;
};
/* Fills out for top-level vdev i (0 .. nvdevs-1); -ENOENT past the end. */
int pool_get_vdev(struct pool *p, uint32_t i, struct pool_vdev_stats *out);
/* Fills out for child c of top-level vdev i; -ENOENT past the end. */
int pool_get_vdev_child(struct pool *p, uint32_t i, uint32_t c, struct pool_vdev_stats *out);

/* ---- devices of a live pool (core/pool_vdev.c); a device is named by path or guid ---- */
/*
 * Takes a device of a mirror or raidz out of service (persistent across imports). Refused with
 * -EBUSY when its vdev would be left without enough devices to serve every block.
 */
int pool_vdev_offline(struct pool *p, const char *name, struct err_msg *em);
/* Brings an offline device back; run pool_resilver to give it what it missed. */
int pool_vdev_online(struct pool *p, const char *name, struct err_msg *em);
/*
 * Replaces a device of a mirror or raidz with the device or file at path (created when the pool
 * was opened with create_files); run pool_resilver to fill it. -EBUSY when the vdev lacks the
 * redundancy to rebuild it, -EINVAL when the new device is too small, -EEXIST when it is in use.
 */
int pool_vdev_replace(struct pool *p, const char *old, const char *path, struct err_msg *em);
/*
 * Adds the device at path as another copy of `existing`: a plain device becomes a two-way mirror,
 * a mirror gets one more side. Run pool_resilver to fill it. -ENOTSUP inside a raidz.
 */
int pool_vdev_attach(struct pool *p, const char *existing, const char *path, struct err_msg *em);
/*
 * Removes a device from its mirror (a two-way mirror becomes a plain device). -EBUSY unless the
 * devices that stay are online and fully resilvered.
 */
int pool_vdev_detach(struct pool *p, const char *name, struct err_msg *em);
/*
 * Zeroes the error counters (of one device, or every device and the error list: name NULL) and
 * brings FAULTED devices back online; run pool_resilver to give them what they missed.
 */
int pool_clear(struct pool *p, const char *name, struct err_msg *em);

/* ---- scrub (core/scrub.c) ---- */
enum pool_scan_state {
    POOL_SCAN_NONE = 0,
    POOL_SCAN_RUNNING,
    POOL_SCAN_FINISHED,
    POOL_SCAN_CANCELED,
    POOL_SCAN_FAILED,
    POOL_SCAN_PAUSED, /* by pool_scrub_pause, or interrupted by an export or a crash */
};
enum pool_scan_kind { POOL_SCAN_SCRUB = 0, POOL_SCAN_RESILVER = 1 };
struct pool_scan_stats {
    int state;                     /* enum pool_scan_state */
    int kind;                      /* enum pool_scan_kind */
    uint64_t min_birth;            /* resilver: blocks born after this txg */
    uint64_t max_txg;              /* blocks born after this txg (the start) are not scanned */
    uint64_t start_time, end_time; /* seconds since the epoch */
    uint64_t to_examine;           /* bytes allocated when the scrub started */
    uint64_t examined;             /* bytes of copies read so far */
    uint64_t blocks;               /* blocks examined */
    uint64_t repaired_bytes;       /* bytes rewritten (set when the scrub ends) */
    uint64_t errors;               /* blocks no copy of which could be recovered */
    bool interrupted;              /* PAUSED by an export or a crash, not by the administrator */
};
/*
 * Reads every allocated block of the pool, every copy and every RAID-Z column, checks it against
 * its checksum and rewrites what is damaged. Blocks until done. A paused or interrupted scrub
 * (state PAUSED, also after an export or a crash: progress is committed every few seconds)
 * resumes where it stopped. Returns 0 when the scrub finished (unrecoverable blocks are counted in
 * errors and listed by pool_get_errors), -EBUSY when one is running, -ECANCELED after
 * pool_scrub_cancel, -EINTR after pool_scrub_pause, -EROFS on a read-only import.
 */
int pool_scrub(struct pool *p, struct err_msg *em);
/*
 * Rewrites onto every device what it missed (offline, missing at import, failed writes, a new
 * replacement): a scrub of only the blocks born since the oldest missed txg. Returns 0 at once
 * when no device missed anything; otherwise like pool_scrub.
 */
int pool_resilver(struct pool *p, struct err_msg *em);
/*
 * Requests to the running scan (no effect on a scan not yet started): cancel forgets it (a paused
 * one too: state CANCELED); pause stops it keeping its place (PAUSED: pool_scrub or pool_resilver
 * resume it); interrupt is a pause that marks it `interrupted`, for an export: whoever imports the
 * pool next should resume it.
 */
void pool_scrub_cancel(struct pool *p);
void pool_scrub_pause(struct pool *p);
void pool_scrub_interrupt(struct pool *p);
/* Whether a usable device misses writes (pool_resilver has work). */
bool pool_needs_resilver(struct pool *p);
/* The running or last scrub of this import. */
void pool_get_scan(struct pool *p, struct pool_scan_stats *out);

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
