/* SPDX-License-Identifier: MIT */
/*
 * dsl: the dataset layer — named filesystems and volumes in a hierarchy (`tank/a/b`), their
 * snapshots (`tank/a@monday`), bookmarks (`tank/a#monday`), clones, rollback, promote, user
 * holds, properties with inheritance, and space accounting. docs/DESIGN.md §11 explains it;
 * docs/FORMAT.md "Datasets" has the records.
 *
 * Every change to the namespace is a sync task: it is checked in the caller's thread, queued on
 * the open txg, applied by the sync thread while that txg commits, and the call returns once the
 * txg is durable. So every operation is atomic (several snapshots taken by one call share one
 * txg) and durable on return, and a crash leaves either all of it or none.
 *
 * Snapshots cost O(1) and never change. Blocks are shared without reference counts by the
 * birth-time rule: a head freeing a block born after its newest snapshot frees it, an older one
 * goes on its deadlist (core/deadlist.h). Destroying a snapshot reads only the next dataset's
 * deadlist; destroying a filesystem reads only the blocks it alone owns.
 *
 * Names: "pool" is the root dataset (a filesystem created with the pool); components are
 * [A-Za-z0-9_.:-]; at most DSL_NAME_MAX bytes. Errors are 0 or a negative errno with a message
 * in em: -ENOENT (no such dataset), -EEXIST, -EINVAL (bad name or property), -EBUSY (open
 * handles, holds, clones), -ENOTEMPTY (children or snapshots without `recursive`), -EDQUOT,
 * -ENOSPC, -EROFS (read-only pool), -EXDEV (rename across parents of a snapshot).
 *
 * Thread-safe. Handles (struct dataset) give access to a dataset's object set; a dataset with
 * open handles cannot be destroyed, rolled back or renamed away from under them (-EBUSY).
 */
#ifndef LCPFS_CORE_DSL_H
#define LCPFS_CORE_DSL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "core/dsl_record.h"
#include "core/pool.h"

struct dataset;
struct objset;

/* A `name=value` property assignment. */
struct dsl_prop_set {
    const char *name;
    const char *value;
};

/* ---- namespace operations (sync tasks) ------------------------------------------------------ */

enum {
    DSL_CREATE_PARENTS = 1u << 0, /* create missing parent filesystems (-p) */
    DSL_CREATE_SPARSE = 1u << 1,  /* volumes: no refreservation (-s) */
};
/*
 * Creates a filesystem (kind DSL_KIND_FS) or volume (DSL_KIND_VOL) named name with the given
 * properties. A volume needs volsize; volblocksize defaults to 16K (more on RAID-Z where 16K
 * would spend most of each allocation on parity; such explicit values are refused there);
 * refreservation is set to volsize plus metadata (and RAID-Z parity) unless DSL_CREATE_SPARSE. The
 * volume's data object is created empty (sparse).
 */
int dsl_create(struct pool *p, const char *name, enum dsl_kind kind,
               const struct dsl_prop_set *props, size_t nprops, unsigned flags, struct err_msg *em);

enum {
    DSL_DESTROY_RECURSIVE = 1u << 0, /* -r: children, snapshots (and snapshots of children) */
    DSL_DESTROY_CLONES = 1u << 1,    /* -R: also clones of the snapshots destroyed */
};
/*
 * Destroys a filesystem, volume, snapshot or bookmark. Refused with -ENOTEMPTY when a head has
 * children or snapshots and -r is not given, -EBUSY when a snapshot has holds, clones (without
 * -R) or anything destroyed has open handles. The space freed is returned to the pool at once.
 */
int dsl_destroy(struct pool *p, const char *name, unsigned flags, struct err_msg *em);

/* Renames a head (may move it under another parent) or a snapshot/bookmark (same head). */
int dsl_rename(struct pool *p, const char *from, const char *to, struct err_msg *em);

/* Takes snapshots (full names `ds@snap`, any heads, no two of the same head) in one txg. */
int dsl_snapshot(struct pool *p, const char *const *names, size_t n, struct err_msg *em);

/* Creates a writable clone `name` of snapshot `snap`, sharing its blocks. */
int dsl_clone(struct pool *p, const char *snap, const char *name, const struct dsl_prop_set *props,
              size_t nprops, struct err_msg *em);

/*
 * Rolls the head of snapshot `snap` back to it. Refused with -EEXIST when later snapshots exist
 * unless destroy_later (-r), which destroys them (they must have no holds or clones).
 */
int dsl_rollback(struct pool *p, const char *snap, bool destroy_later, struct err_msg *em);

/*
 * Promotes clone `name`: the snapshots of its origin's head up to and including the origin move
 * to the clone, and the former head becomes a clone of the origin. Afterwards the former head
 * can be destroyed without losing the clone.
 */
int dsl_promote(struct pool *p, const char *name, struct err_msg *em);

/* User holds on snapshots: a held snapshot cannot be destroyed. -EEXIST / -ENOENT for the tag. */
int dsl_hold(struct pool *p, const char *snap, const char *tag, struct err_msg *em);
int dsl_release(struct pool *p, const char *snap, const char *tag, struct err_msg *em);
typedef int (*dsl_hold_fn)(void *arg, const char *tag, uint64_t time);
int dsl_holds(struct pool *p, const char *snap, dsl_hold_fn fn, void *arg, struct err_msg *em);

/* Bookmarks `ds#name` from a snapshot `ds@s` (or another bookmark `ds#b`) of the same head. */
int dsl_bookmark(struct pool *p, const char *source, const char *bookmark, struct err_msg *em);

/* ---- properties -------------------------------------------------------------------------------
 */

/* Sets native or user properties on a dataset (all or none). volsize resizes a volume. */
int dsl_set(struct pool *p, const char *name, const struct dsl_prop_set *props, size_t n,
            struct err_msg *em);
/* `inherit [-S] prop`: clears the local value (revert_received: the received one applies). */
int dsl_inherit(struct pool *p, const char *name, const char *prop, bool revert_received,
                struct err_msg *em);

/* One resolved property, formatted. */
struct dsl_prop_out {
    char name[256];
    char value[8200];
    char source[300]; /* "-", "default", "local", "received", "inherited from tank/a" */
    uint64_t num;     /* numeric properties */
    bool is_num;
};
/*
 * Gets one property (native or user) of any dataset, formatted human or parsable (`-p`).
 * -ENOENT when the dataset does not exist or the property does not apply / is unset.
 */
int dsl_get(struct pool *p, const char *name, const char *prop, bool parsable,
            struct dsl_prop_out *out, struct err_msg *em);
/* Calls fn for every property that applies to the dataset (`get all`), then its user props. */
typedef int (*dsl_prop_fn)(void *arg, const struct dsl_prop_out *prop);
int dsl_get_all(struct pool *p, const char *name, bool parsable, dsl_prop_fn fn, void *arg,
                struct err_msg *em);

/* ---- listing ----------------------------------------------------------------------------------
 */

/* What `list` shows of one dataset (space in allocated bytes). */
struct dsl_info {
    char name[DSL_NAME_MAX + 1];
    enum dsl_kind kind;
    uint64_t guid, create_txg, create_time;
    uint64_t used, available, referenced, written;
    uint64_t usedbydataset, usedbysnapshots, usedbychildren, usedbyrefreservation;
    uint64_t logicalused, logicalreferenced;
    unsigned compressratio;         /* x 100 */
    uint64_t volsize, volblocksize; /* volumes */
    char origin[DSL_NAME_MAX + 1];  /* clones: origin snapshot */
    uint64_t userrefs;              /* snapshots: number of holds */
    uint64_t num_clones;
};

enum {
    DSL_LIST_RECURSIVE = 1u << 0,
    DSL_LIST_FS = 1u << 1,
    DSL_LIST_VOL = 1u << 2,
    DSL_LIST_SNAP = 1u << 3,
    DSL_LIST_BOOKMARK = 1u << 4,
    DSL_LIST_ALL_TYPES = DSL_LIST_FS | DSL_LIST_VOL | DSL_LIST_SNAP | DSL_LIST_BOOKMARK,
};
/*
 * Lists `name` (NULL = the whole pool, recursively) and, with DSL_LIST_RECURSIVE, everything
 * below it, depth first, snapshots after their head in creation order; only the kinds in the
 * type mask (0 = filesystems and volumes). fn's nonzero return stops the listing.
 */
typedef int (*dsl_list_fn)(void *arg, const struct dsl_info *info);
int dsl_list(struct pool *p, const char *name, unsigned flags, dsl_list_fn fn, void *arg,
             struct err_msg *em);
int dsl_stat(struct pool *p, const char *name, struct dsl_info *out, struct err_msg *em);

/* ---- handles ----------------------------------------------------------------------------------
 */

/*
 * Opens a filesystem, volume or snapshot. Snapshot handles are read-only. Returns 0 and a new
 * handle, -ENOENT, -EINVAL (a bookmark), -ENOMEM or a read error of the snapshot's root.
 */
int ds_open(struct pool *p, const char *name, struct dataset **out, struct err_msg *em);
void ds_close(struct dataset *ds); /* NULL ok */
/* The object set (borrowed, valid until ds_close). Write to it only through ds_tx_assign. */
struct objset *ds_objset(struct dataset *ds);
struct pool *ds_pool(struct dataset *ds);
enum dsl_kind ds_kind(const struct dataset *ds);
bool ds_readonly(const struct dataset *ds); /* a snapshot, readonly=on, or a read-only pool */
/* The full name as of now (renames show). Copies into buf; returns buf. */
const char *ds_name(struct dataset *ds, char *buf, size_t len);

/*
 * Joins the open txg to change the dataset, with `bytes` as the worst-case space the change will
 * allocate: -EROFS (read-only dataset or pool), -EDQUOT (quota or refquota of the dataset or an
 * ancestor would be exceeded), or tx_assign's errors. The pool's own space check (ENOSPC, with
 * reservations honoured) happens in the write itself.
 */
int ds_tx_assign(struct dataset *ds, uint64_t bytes, struct tx *tx);
/*
 * A change made without waiting, for event-loop threads: joins the open txg as ds_tx_assign
 * would, but returns -EWOULDBLOCK wherever that would wait (a busy lock, a quiesce, the write or
 * space throttle: pool_impl.h tx_try_assign_rsv), and runs fn(arg, tx) in it. fn must not wait
 * either: it returns -EWOULDBLOCK, having changed nothing, to give up. The space charge is made
 * only when fn did not give up, so the caller can retry the waiting way without counting twice.
 * Returns fn's result, or the assignment's error (fn not run).
 */
typedef int (*ds_tx_fn)(void *arg, struct tx *tx);
int ds_tx_try_run(struct dataset *ds, uint64_t bytes, ds_tx_fn fn, void *arg);

/*
 * Changed blocks of object obj of the head or snapshot ds since snapshot or bookmark `since`
 * (a full name of an earlier snapshot/bookmark of ds's lineage; NULL = since creation): calls fn
 * for maximal ranges of blocks written, punched or zeroed after it, in byte offsets. For a head
 * the answer includes changes not yet committed. Reads only metadata.
 */
typedef int (*ds_changed_fn)(void *arg, uint64_t off, uint64_t len);
int ds_changed_blocks(struct dataset *ds, uint64_t obj, const char *since, ds_changed_fn fn,
                      void *arg, struct err_msg *em);

/* Name of the dataset whose record is MOS object `record` (error reports). -ENOENT. */
int dsl_name_of_record(struct pool *p, uint64_t record, char *buf, size_t len);

/* A property's effective numeric value for a handle (compression, checksum, copies, ...). */
int ds_prop_num(struct dataset *ds, const char *prop, uint64_t *out);

#endif
