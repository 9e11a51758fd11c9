/* SPDX-License-Identifier: MIT */
/*
 * dsl_impl: the dataset layer's in-memory namespace, shared by dsl*.c (and read by the verifier).
 *
 * Theory of operation
 * -------------------
 * At import every OT_DSL_DATASET record of the MOS is read and linked into a tree of nodes: heads
 * (filesystems, volumes) under their parents, snapshots in creation order and bookmarks under
 * their head, snapshot chains (prev/next), clone origins. The tree is the only authority the open
 * context consults; the MOS records are written by the sync thread, and read again only at the
 * next import.
 *
 * Locking: dsl->lock (rwlock). Open context reads under the read lock and never blocks on a txg
 * while holding it. Only the sync thread changes the tree, under the write lock: sync tasks run
 * with it held, and after each commit the space numbers open context reads are re-published
 * under it. Fields marked "sync" belong to the sync thread alone (no lock).
 *
 * Invariants:
 *   1. Every head has a deadlist and an open object set; every snapshot a deadlist.
 *   2. A head's prev_snap is its newest snapshot, else its origin (clones), else NULL; its
 *      ph.prev_snap_txg is that snapshot's creation txg (0 if none).
 *   3. A snapshot's next_snap is the next snapshot of the same head or NULL (the head is next).
 *   4. A block born after a head's prev_snap_txg is referenced by that head only (until the next
 *      snapshot); a block the head frees is freed if so, else appended to the head's deadlist.
 *   5. Every node's records are written in the txg in which the node changed (hot_dirty /
 *      cold_dirty are clear after every commit).
 */
#ifndef LCPFS_CORE_DSL_IMPL_H
#define LCPFS_CORE_DSL_IMPL_H

#include <pthread.h>

#include "core/deadlist.h"
#include "core/dsl.h"
#include "core/pool_impl.h"
#include "core/props.h"

struct nodevec {
    struct dsl_node **v;
    size_t n, cap;
};

struct dsl_node {
    uint64_t obj; /* MOS object of the records */
    struct dsl_phys ph;
    char *name;              /* component (cold record) */
    struct dsl_node *parent; /* heads: parent head (NULL = root); others: their head */
    struct nodevec children, snaps, bookmarks; /* snaps in creation order */
    struct dsl_node *prev_snap, *next_snap, *origin;
    struct nodevec clones; /* snapshots: heads whose origin this is */
    struct dsl_propent *props;
    size_t nprops;
    struct dsl_holdent *holds;
    size_t nholds;
    struct deadlist *dl; /* sync (after load): heads and snapshots */
    struct objset *os;   /* heads always; snapshots on demand under dsl->os_lock */
    unsigned refs;       /* open handles, atomic */
    bool hot_dirty, cold_dirty;
    uint8_t mark; /* graph walks of one sync task (dsl_ops.c destroy checks) */
    /* sync: space changes of the txg being committed, folded into ph when published */
    int64_t d_asize, d_psize, d_lsize, d_unique;
    int sync_err;
    /* published space (dsl->lock) */
    struct deadlist_space dl_total, dl_after_origin;
    uint64_t snap_unique; /* snapshots: bytes only this snapshot holds */
    uint64_t used, usedbyds, usedbysnaps, usedbychildren, usedbyrefrsv, logicalused, physused;
    uint64_t rsv_unused; /* reservation not yet used by the dataset and its descendants */
    /* heads: bytes of changes assigned to open txgs, per txg slot (atomic) */
    uint64_t pending[TXG_SLOTS];
};

struct dsl_task;
typedef int (*dsl_task_fn)(struct pool *p, uint64_t txg, void *arg, struct err_msg *em);

struct dsl_task {
    dsl_task_fn fn;
    void *arg;
    struct err_msg *em;
    int rc;
    bool done;
    struct dsl_task *next;
};

struct dsl {
    pthread_rwlock_t lock;
    pthread_mutex_t os_lock;   /* lazily opened snapshot object sets */
    pthread_mutex_t task_lock; /* the task queues */
    struct dsl_task *tasks[TXG_SLOTS];
    struct dsl_node *root;
    struct u64map by_obj;      /* MOS object -> node */
    uint64_t rsv_unused_total; /* sum of unused (ref)reservations, published */
    bool space_dirty;          /* something changed: republish the space numbers */
    int fatal; /* a task failed half-way through its changes: this commit must fail */
};

/*
 * Tasks check everything before changing anything and return check errors plainly; an error
 * after the first change goes through DSL_FATAL, which fails the whole commit (the pool is
 * suspended rather than left with half a change).
 */
#define DSL_FATAL(p, rc) ((p)->dsl->fatal = (rc))

/* dsl.c */
int dsl_load(struct pool *p);
void dsl_unload(struct pool *p);
int dsl_create_root(struct pool *p, uint64_t txg);
/* Commits the dataset layer's part of txg (pool_sync.c step 2). */
int dsl_sync(struct pool *p, uint64_t txg);
bool dsl_is_dirty(struct pool *p, uint64_t txg);
/* Runs fn as a sync task in the open txg and waits until that txg is durable. */
int dsl_sync_task(struct pool *p, dsl_task_fn fn, void *arg, struct err_msg *em);
/* The same, retried in a later txg while fn returns -EAGAIN (a dataset with uncommitted
 * changes, or one created in the same txg): up to 8 times, then -EBUSY. */
int dsl_sync_task_retry(struct pool *p, dsl_task_fn fn, void *arg, struct err_msg *em);

/* Name lookup under dsl->lock (read or write). -ENOENT / -EINVAL with a message. */
int dsl_lookup(struct pool *p, const char *name, struct dsl_node **out, struct err_msg *em);
/* Full name of n into buf (always terminated). */
void dsl_node_name(const struct dsl_node *n, char *buf, size_t len);
bool dsl_is_head(const struct dsl_node *n);
int nodevec_add(struct nodevec *v, struct dsl_node *n);
void nodevec_remove(struct nodevec *v, struct dsl_node *n);

/* Sync-context helpers for the tasks (dsl->lock held for writing). */
struct dsl_node *dsl_node_new(void);
void dsl_node_free(struct dsl_node *n);
/* Creates the MOS object of n (records written at the end of the txg). */
int dsl_node_create_obj(struct pool *p, uint64_t txg, struct dsl_node *n);
/* Destroys n's MOS object and deadlist objects and frees n (unlinked by the caller). */
int dsl_node_destroy_obj(struct pool *p, uint64_t txg, struct dsl_node *n);
/* A new empty deadlist for head h with a bucket per snapshot boundary of its lineage. */
int dsl_head_new_deadlist(struct pool *p, uint64_t txg, struct dsl_node *h);
/* Opens (or creates, when root is a hole) the object set of head h and installs the free hook. */
int dsl_head_open_objset(struct pool *p, struct dsl_node *h, const struct blkptr *root,
                         uint32_t os_type);
/* Frees every block of the tree at root born after min_birth (sync). */
int dsl_free_tree(struct pool *p, uint64_t txg, const struct blkptr *root, uint64_t min_birth);
/* The node behind a handle. */
struct dsl_node *ds_node(struct dataset *ds);
/* Number of open handles on n (atomic read). */
unsigned dsl_node_refs(const struct dsl_node *n);

/* dsl_snap.c */
/* Destroys snapshot s (no holds, clones or handles: checked by the caller); *freed = bytes. */
int dsl_snap_destroy(struct pool *p, uint64_t txg, struct dsl_node *s, uint64_t *freed);
/* Parent of a new head `name` (must be a filesystem) and the last component; -EEXIST if taken. */
int dsl_new_head_parent(struct pool *p, const char *name, struct dsl_node **parent,
                        const char **leaf, struct err_msg *em);

/* dsl_ops.c */
/* Validates `name=value` pairs for a dataset of kind (enum dsl_kind) without applying them. */
int dsl_props_check(struct pool *p, uint32_t kind, const struct dsl_prop_set *props, size_t nprops,
                    bool at_create, struct err_msg *em);
/* Pushes the effective checksum/compression/copies of head h (and its children) into its object
 * set and volume object. */
int dsl_apply_effective(struct pool *p, uint64_t txg, struct dsl_node *h);
/* Only the object set defaults of h (memory; at import). */
void dsl_apply_defaults(struct dsl_node *h);

/* dsl_props.c */
/* Resolved numeric value of a native property for node n (dsl->lock held). */
uint64_t dsl_prop_num(const struct dsl_node *n, enum prop_id id);
/* Finds / sets / removes a stored entry by key (dsl->lock held for writing when changing). */
struct dsl_propent *dsl_prop_find(const struct dsl_node *n, const char *key);
int dsl_prop_store_num(struct dsl_node *n, const char *key, uint64_t v);
int dsl_prop_store_str(struct dsl_node *n, const char *key, const char *v);
void dsl_prop_remove(struct dsl_node *n, const char *key);
/* Validates and applies `name=value` pairs to n (sync or creation), at_create for create-only. */
int dsl_props_apply(struct pool *p, uint64_t txg, struct dsl_node *n,
                    const struct dsl_prop_set *props, size_t nprops, bool at_create,
                    struct err_msg *em);
/* Re-derives published space numbers of every node (dsl->lock held for writing). */
void dsl_space_publish(struct pool *p);
/* Pool space available to n (not counting quotas) and after quotas. */
uint64_t dsl_available(struct pool *p, const struct dsl_node *n);
void dsl_fill_info(struct pool *p, const struct dsl_node *n, struct dsl_info *out);

#endif
