/* SPDX-License-Identifier: MIT */
/*
 * dsl: the namespace in memory, its load at import, the commit of the dataset layer's part of a
 * txg, and sync tasks (theory of operation in dsl_impl.h). Dataset handles are in dsl_handle.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "core/dsl_impl.h"
#include "core/props.h"
#include "core/traverse.h"

#define DSL_RECORD_BLOCKSIZE 4096u

/* ---- small helpers ----------------------------------------------------------------------------
 */

int
nodevec_add(struct nodevec *v, struct dsl_node *n)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        struct dsl_node **nv = realloc(v->v, cap * sizeof(*nv));
        if (nv == NULL)
            return -ENOMEM;
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = n;
    return 0;
}

void
nodevec_remove(struct nodevec *v, struct dsl_node *n)
{
    for (size_t i = 0; i < v->n; i++) {
        if (v->v[i] == n) {
            memmove(&v->v[i], &v->v[i + 1], (v->n - i - 1) * sizeof(v->v[0]));
            v->n--;
            return;
        }
    }
}

bool
dsl_is_head(const struct dsl_node *n)
{
    return n->ph.kind == DSL_KIND_FS || n->ph.kind == DSL_KIND_VOL;
}

struct dsl_node *
dsl_node_new(void)
{
    return calloc(1, sizeof(struct dsl_node));
}

void
dsl_node_free(struct dsl_node *n)
{
    if (n == NULL)
        return;
    deadlist_close(n->dl);
    objset_close(n->os);
    free(n->children.v);
    free(n->snaps.v);
    free(n->bookmarks.v);
    free(n->clones.v);
    struct dsl_cold c = { .name = n->name,
                          .props = n->props,
                          .nprops = n->nprops,
                          .holds = n->holds,
                          .nholds = n->nholds };
    dsl_cold_release(&c);
    free(n);
}

unsigned
dsl_node_refs(const struct dsl_node *n)
{
    return __atomic_load_n(&n->refs, __ATOMIC_ACQUIRE);
}

uint64_t
dsl_rsv_unused_total(struct pool *p)
{
    return p->dsl ? __atomic_load_n(&p->dsl->rsv_unused_total, __ATOMIC_RELAXED) : 0;
}

void
dsl_node_name(const struct dsl_node *n, char *buf, size_t len)
{
    if (len == 0)
        return;
    if (!dsl_is_head(n)) {
        dsl_node_name(n->parent, buf, len);
        size_t l = strlen(buf);
        snprintf(buf + l, len - l, "%c%s", n->ph.kind == DSL_KIND_SNAP ? '@' : '#', n->name);
        return;
    }
    if (n->parent == NULL) {
        snprintf(buf, len, "%s", n->name);
        return;
    }
    dsl_node_name(n->parent, buf, len);
    size_t l = strlen(buf);
    snprintf(buf + l, len - l, "/%s", n->name);
}

static struct dsl_node *
find_in(const struct nodevec *v, const char *name, size_t len)
{
    for (size_t i = 0; i < v->n; i++)
        if (strlen(v->v[i]->name) == len && memcmp(v->v[i]->name, name, len) == 0)
            return v->v[i];
    return NULL;
}

int
dsl_lookup(struct pool *p, const char *name, struct dsl_node **out, struct err_msg *em)
{
    size_t total = strlen(name);
    if (total == 0 || total > DSL_NAME_MAX)
        return err_msg_set(em, -EINVAL, "invalid dataset name '%s'", name);
    const char *sep = strpbrk(name, "@#");
    size_t head_len = sep ? (size_t)(sep - name) : total;
    struct dsl_node *n = NULL;
    const char *s = name;
    while (s < name + head_len) {
        const char *slash = memchr(s, '/', (size_t)(name + head_len - s));
        size_t clen = slash ? (size_t)(slash - s) : (size_t)(name + head_len - s);
        if (!dsl_component_valid(s, clen))
            return err_msg_set(em, -EINVAL, "invalid dataset name '%s'", name);
        if (n == NULL) {
            struct dsl_node *r = p->dsl->root;
            if (strlen(r->name) != clen || memcmp(r->name, s, clen) != 0)
                return err_msg_set(em, -ENOENT, "no pool named '%.*s'", (int)clen, s);
            n = r;
        } else {
            n = find_in(&n->children, s, clen);
            if (n == NULL)
                return err_msg_set(em, -ENOENT, "dataset '%s' does not exist", name);
        }
        s += clen + (slash ? 1 : 0);
        if (slash && s == name + head_len)
            return err_msg_set(em, -EINVAL, "invalid dataset name '%s'", name);
    }
    if (n == NULL)
        return err_msg_set(em, -EINVAL, "invalid dataset name '%s'", name);
    if (sep != NULL) {
        size_t slen = total - head_len - 1;
        if (!dsl_component_valid(sep + 1, slen) || strpbrk(sep + 1, "@#/") != NULL)
            return err_msg_set(em, -EINVAL, "invalid %s name '%s'",
                               *sep == '@' ? "snapshot" : "bookmark", name);
        n = find_in(*sep == '@' ? &n->snaps : &n->bookmarks, sep + 1, slen);
        if (n == NULL)
            return err_msg_set(em, -ENOENT, "%s '%s' does not exist",
                               *sep == '@' ? "snapshot" : "bookmark", name);
    }
    *out = n;
    return 0;
}

/* ---- the free hook: the birth-time rule ---------------------------------------------------- */

static void
head_free_block(struct objset *os, uint64_t txg, const struct blkptr *bp)
{
    struct dsl_node *h = os->owner;
    if (bp->birth > h->ph.prev_snap_txg) { /* invariant 4: only this head has it */
        zio_free(os->pool, txg, bp);
        return;
    }
    struct tx tx = { .pool = os->pool, .txg = txg };
    int rc = deadlist_insert(h->dl, &tx, bp);
    if (rc != 0 && h->sync_err == 0)
        h->sync_err = rc;
    h->d_unique += (int64_t)bp_asize(bp); /* accounted as freed, but it was not unique */
}

int
dsl_head_open_objset(struct pool *p, struct dsl_node *h, const struct blkptr *root,
                     uint32_t os_type)
{
    struct objset *os = NULL;
    int rc;
    if (bp_is_hole(root)) {
        rc = objset_create_new(p, os_type, h->obj, &os);
    } else {
        rc = objset_open(p, root, h->obj, &os);
        if (rc == 0 && os->type != os_type)
            rc = ERR(-ECORRUPT);
    }
    if (rc != 0) {
        objset_close(os);
        return rc;
    }
    os->owner = h;
    os->free_fn = head_free_block;
    objset_close(h->os);
    h->os = os;
    if (h->parent == NULL)
        p->root_os = os; /* pool_root_objset() follows a rollback of the root dataset */
    return 0;
}

static uint32_t
objset_type_of(const struct dsl_node *h)
{
    return h->ph.kind == DSL_KIND_VOL ? OBJSET_TYPE_ZVOL : OBJSET_TYPE_FS;
}

/* ---- records -------------------------------------------------------------------------------- */

int
dsl_node_create_obj(struct pool *p, uint64_t txg, struct dsl_node *n)
{
    struct obj_create_opts o = { .type = OT_DSL_DATASET,
                                 .blocksize = DSL_RECORD_BLOCKSIZE,
                                 .bonuslen = DSL_RECORD_SIZE };
    int rc = objset_obj_create_synctx(p->mos, txg, &o, &n->obj);
    if (rc != 0)
        return rc;
    rc = u64map_put(&p->dsl->by_obj, n->obj, n);
    n->hot_dirty = n->cold_dirty = true;
    return rc;
}

int
dsl_head_new_deadlist(struct pool *p, uint64_t txg, struct dsl_node *h)
{
    struct tx tx = { .pool = p, .txg = txg };
    struct deadlist_phys dp;
    int rc = deadlist_create(p->mos, &tx, &dp);
    if (rc != 0)
        return rc;
    struct deadlist *dl = NULL;
    rc = deadlist_open(p->mos, &dp, &dl);
    /* Buckets: blocks shared with the origin, then one per snapshot boundary of this head. */
    if (rc == 0 && h->origin != NULL)
        rc = deadlist_add_key(dl, &tx, h->origin->ph.create_txg);
    for (size_t i = 0; rc == 0 && i < h->snaps.n; i++)
        rc = deadlist_add_key(dl, &tx, h->snaps.v[i]->ph.create_txg);
    if (rc != 0) {
        deadlist_close(dl);
        deadlist_destroy(p->mos, &tx, &dp);
        return rc;
    }
    deadlist_close(h->dl);
    h->dl = dl;
    h->ph.dl_bps_obj = dp.bps_obj;
    h->ph.dl_summary_obj = dp.summary_obj;
    h->hot_dirty = true;
    return 0;
}

int
dsl_node_destroy_obj(struct pool *p, uint64_t txg, struct dsl_node *n)
{
    struct tx tx = { .pool = p, .txg = txg };
    int rc = 0;
    if (n->ph.dl_bps_obj != 0) {
        struct deadlist_phys dp = { n->ph.dl_bps_obj, n->ph.dl_summary_obj };
        rc = deadlist_destroy(p->mos, &tx, &dp);
    }
    if (rc == 0)
        rc = obj_destroy_synctx(p->mos, txg, n->obj);
    u64map_remove(&p->dsl->by_obj, n->obj);
    dsl_node_free(n);
    return rc;
}

static int
write_records(struct pool *p, uint64_t txg, struct dsl_node *n)
{
    int rc = 0;
    if (n->hot_dirty) {
        uint8_t rec[DSL_RECORD_SIZE];
        dsl_phys_encode(&n->ph, rec);
        rc = obj_bonus_write_synctx(p->mos, txg, n->obj, rec, sizeof(rec));
        n->hot_dirty = false;
    }
    if (rc == 0 && n->cold_dirty) {
        struct dsl_cold c = { .name = n->name,
                              .props = n->props,
                              .nprops = n->nprops,
                              .holds = n->holds,
                              .nholds = n->nholds };
        uint8_t *buf = NULL;
        size_t len = 0;
        rc = dsl_cold_encode(&c, &buf, &len);
        if (rc == 0)
            rc = obj_write_synctx(p->mos, txg, n->obj, 0, len, buf);
        if (rc == 0) {
            struct tx tx = { .pool = p, .txg = txg };
            rc = obj_truncate(p->mos, &tx, n->obj, len);
        }
        free(buf);
        n->cold_dirty = false;
    }
    return rc;
}

/* Calls fn for every node below and including n (children before nothing: pre-order). */
typedef int (*node_fn)(struct pool *p, uint64_t txg, struct dsl_node *n);
static int
for_each_node(struct pool *p, uint64_t txg, struct dsl_node *n, node_fn fn)
{
    int rc = fn(p, txg, n);
    for (size_t i = 0; rc == 0 && i < n->snaps.n; i++)
        rc = fn(p, txg, n->snaps.v[i]);
    for (size_t i = 0; rc == 0 && i < n->bookmarks.n; i++)
        rc = fn(p, txg, n->bookmarks.v[i]);
    for (size_t i = 0; rc == 0 && i < n->children.n; i++)
        rc = for_each_node(p, txg, n->children.v[i], fn);
    return rc;
}

/* ---- load -------------------------------------------------------------------------------------
 */

static int
load_node(struct pool *p, uint64_t obj, struct dsl_node **out)
{
    struct obj_info info;
    int rc = obj_stat(p->mos, obj, &info);
    if (rc != 0)
        return rc;
    if (info.bonuslen != DSL_RECORD_SIZE || info.size == 0 || info.size > 16u << 20)
        return ERR(-ECORRUPT);
    struct dsl_node *n = dsl_node_new();
    uint8_t *buf = malloc(info.size);
    if (n == NULL || buf == NULL) {
        free(buf);
        free(n);
        return -ENOMEM;
    }
    n->obj = obj;
    uint8_t rec[DSL_RECORD_SIZE];
    rc = obj_bonus_read(p->mos, obj, rec, sizeof(rec));
    rc = rc == (int)sizeof(rec) ? 0 : rc < 0 ? rc : ERR(-ECORRUPT);
    if (rc == 0) {
        rc = dsl_phys_decode(rec, &n->ph);
        if (rc != 0)
            log_err("pool '%s': dataset record in MOS object %llu is damaged", p->name,
                    (unsigned long long)obj);
    }
    if (rc == 0)
        rc = obj_read(p->mos, obj, 0, info.size, buf);
    struct dsl_cold c;
    if (rc == 0)
        rc = dsl_cold_decode(buf, info.size, &c);
    free(buf);
    if (rc != 0) {
        free(n);
        return rc;
    }
    n->name = c.name;
    n->props = c.props;
    n->nprops = c.nprops;
    n->holds = c.holds;
    n->nholds = c.nholds;
    *out = n;
    return 0;
}

static int
cmp_snap_txg(const void *a, const void *b)
{
    const struct dsl_node *x = *(struct dsl_node *const *)a, *y = *(struct dsl_node *const *)b;
    return x->ph.create_txg < y->ph.create_txg ? -1 : x->ph.create_txg > y->ph.create_txg;
}

static struct dsl_node *
node_of(struct dsl *d, uint64_t obj)
{
    return obj == 0 ? NULL : u64map_get(&d->by_obj, obj);
}

/* Links every loaded node and checks the namespace's shape (invariants 1-3). */
static int
link_nodes(struct pool *p)
{
    struct dsl *d = p->dsl;
    size_t it = 0;
    uint64_t key;
    void *v;
    while (u64map_next(&d->by_obj, &it, &key, &v)) {
        struct dsl_node *n = v;
        if (n->obj == p->root_ds_obj) {
            if (!dsl_is_head(n) || n->ph.parent_obj != 0 || n->ph.origin_obj != 0)
                return ERR(-ECORRUPT);
            d->root = n;
            continue;
        }
        struct dsl_node *parent = node_of(d, n->ph.parent_obj);
        if (parent == NULL || !dsl_is_head(parent) || parent == n)
            return ERR(-ECORRUPT);
        n->parent = parent;
        struct nodevec *list = dsl_is_head(n)                ? &parent->children
                               : n->ph.kind == DSL_KIND_SNAP ? &parent->snaps
                                                             : &parent->bookmarks;
        if (find_in(list, n->name, strlen(n->name)) != NULL)
            return ERR(-ECORRUPT); /* two siblings with one name */
        int rc = nodevec_add(list, n);
        if (rc != 0)
            return rc;
    }
    if (d->root == NULL)
        return ERR(-ECORRUPT);
    it = 0;
    while (u64map_next(&d->by_obj, &it, &key, &v)) {
        struct dsl_node *n = v;
        if (n->ph.kind == DSL_KIND_BOOKMARK)
            continue;
        if (n->ph.prev_snap_obj != 0) {
            n->prev_snap = node_of(d, n->ph.prev_snap_obj);
            if (n->prev_snap == NULL || n->prev_snap->ph.kind != DSL_KIND_SNAP ||
                n->prev_snap->ph.create_txg != n->ph.prev_snap_txg)
                return ERR(-ECORRUPT);
        }
        if (n->ph.origin_obj != 0) {
            n->origin = node_of(d, n->ph.origin_obj);
            if (n->origin == NULL || n->origin->ph.kind != DSL_KIND_SNAP)
                return ERR(-ECORRUPT);
            int rc = nodevec_add(&n->origin->clones, n);
            if (rc != 0)
                return rc;
        }
        if (n->ph.kind == DSL_KIND_SNAP && n->ph.next_snap_obj != 0) {
            n->next_snap = node_of(d, n->ph.next_snap_obj);
            if (n->next_snap == NULL || n->next_snap->parent != n->parent ||
                n->next_snap->ph.kind != DSL_KIND_SNAP)
                return ERR(-ECORRUPT);
        }
    }
    /* Snapshot chains: sorted by txg, each linked to the one before (or the origin). */
    it = 0;
    while (u64map_next(&d->by_obj, &it, &key, &v)) {
        struct dsl_node *h = v;
        if (!dsl_is_head(h))
            continue;
        if (h->snaps.n > 1)
            qsort(h->snaps.v, h->snaps.n, sizeof(h->snaps.v[0]), cmp_snap_txg);
        struct dsl_node *prev = h->origin;
        for (size_t i = 0; i < h->snaps.n; i++) {
            struct dsl_node *s = h->snaps.v[i];
            struct dsl_node *next = i + 1 < h->snaps.n ? h->snaps.v[i + 1] : NULL;
            if (s->prev_snap != prev || s->next_snap != next)
                return ERR(-ECORRUPT);
            prev = s;
        }
        if (h->prev_snap != prev)
            return ERR(-ECORRUPT);
        if (h->origin != NULL && h->snaps.n > 0 &&
            h->snaps.v[0]->ph.create_txg <= h->origin->ph.create_txg)
            return ERR(-ECORRUPT);
    }
    /* No cycles in the head tree: every head reaches the root. */
    it = 0;
    while (u64map_next(&d->by_obj, &it, &key, &v)) {
        struct dsl_node *n = v;
        size_t depth = 0;
        while (n != NULL && n != d->root && depth++ <= u64map_count(&d->by_obj))
            n = n->parent;
        if (n != d->root)
            return ERR(-ECORRUPT);
    }
    return 0;
}

static int
open_node(struct pool *p, uint64_t txg, struct dsl_node *n)
{
    (void)txg;
    int rc = 0;
    if (n->ph.kind != DSL_KIND_BOOKMARK) {
        struct deadlist_phys dp = { n->ph.dl_bps_obj, n->ph.dl_summary_obj };
        rc = deadlist_open(p->mos, &dp, &n->dl);
    }
    if (rc == 0 && dsl_is_head(n)) {
        if (bp_is_hole(&n->ph.root))
            return ERR(-ECORRUPT);
        rc = dsl_head_open_objset(p, n, &n->ph.root, objset_type_of(n));
        if (rc == 0)
            dsl_apply_defaults(n);
    }
    if (rc != 0) {
        char name[DSL_NAME_MAX + 1];
        dsl_node_name(n, name, sizeof(name));
        log_err("pool '%s': cannot load dataset '%s' (MOS object %llu): %s", p->name, name,
                (unsigned long long)n->obj, err_str(rc));
    }
    return rc;
}

static struct dsl *
dsl_alloc(void)
{
    struct dsl *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    pthread_rwlock_init(&d->lock, NULL);
    pthread_mutex_init(&d->os_lock, NULL);
    pthread_mutex_init(&d->task_lock, NULL);
    u64map_init(&d->by_obj);
    return d;
}

int
dsl_load(struct pool *p)
{
    struct dsl *d = dsl_alloc();
    if (d == NULL)
        return -ENOMEM;
    p->dsl = d;
    int rc = 0;
    for (uint64_t obj = 1;; obj++) {
        uint64_t next;
        rc = obj_next(p->mos, obj, &next);
        if (rc == -ENOENT) {
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        obj = next;
        struct obj_info info;
        rc = obj_stat(p->mos, obj, &info);
        if (rc != 0)
            break;
        if (info.type != OT_DSL_DATASET)
            continue;
        struct dsl_node *n = NULL;
        rc = load_node(p, obj, &n);
        if (rc == 0 && (rc = u64map_put(&d->by_obj, obj, n)) != 0)
            dsl_node_free(n);
        if (rc != 0)
            break;
    }
    if (rc == 0)
        rc = link_nodes(p);
    if (rc == 0)
        rc = for_each_node(p, 0, d->root, open_node);
    if (rc == 0) {
        p->root_os = d->root->os;
        pthread_rwlock_wrlock(&d->lock);
        dsl_space_publish(p);
        pthread_rwlock_unlock(&d->lock);
    }
    return rc;
}

void
dsl_unload(struct pool *p)
{
    struct dsl *d = p->dsl;
    if (d == NULL)
        return;
    size_t it = 0;
    uint64_t key;
    void *v;
    while (u64map_next(&d->by_obj, &it, &key, &v))
        dsl_node_free(v);
    u64map_release(&d->by_obj);
    pthread_rwlock_destroy(&d->lock);
    pthread_mutex_destroy(&d->os_lock);
    pthread_mutex_destroy(&d->task_lock);
    free(d);
    p->dsl = NULL;
    p->root_os = NULL;
}

int
dsl_create_root(struct pool *p, uint64_t txg)
{
    struct dsl *d = dsl_alloc();
    if (d == NULL)
        return -ENOMEM;
    p->dsl = d;
    struct dsl_node *r = dsl_node_new();
    if (r == NULL || (r->name = strdup(p->name)) == NULL) {
        free(r);
        return -ENOMEM;
    }
    d->root = r;
    r->ph.kind = DSL_KIND_FS;
    r->ph.create_txg = txg;
    r->ph.create_time = (uint64_t)time(NULL);
    r->ph.guid = pool_random_guid();
    bp_make_hole(&r->ph.root, OBJSET_PHYS_SIZE, OT_OBJSET, 0, 0);
    int rc = dsl_node_create_obj(p, txg, r);
    if (rc == 0)
        rc = dsl_head_new_deadlist(p, txg, r);
    if (rc == 0)
        rc = dsl_head_open_objset(p, r, &r->ph.root, OBJSET_TYPE_FS);
    if (rc == 0) {
        /* An empty root object set is written in txg 1 like any other change. */
        pthread_mutex_lock(&r->os->meta->lock);
        rc = dnode_attrs_dirty_locked(r->os->meta, txg);
        pthread_mutex_unlock(&r->os->meta->lock);
    }
    p->root_ds_obj = r->obj;
    p->root_os = r->os;
    return rc;
}

/* ---- commit -----------------------------------------------------------------------------------
 */

static int
sync_head(struct pool *p, uint64_t txg, struct dsl_node *n)
{
    (void)p;
    if (!dsl_is_head(n) || !objset_is_dirty(n->os, txg))
        return 0;
    struct blkptr root;
    int rc = objset_sync(n->os, txg, 1, &root);
    if (rc == 0)
        rc = n->sync_err;
    n->sync_err = 0;
    return rc;
}

/* Folds a head's space changes of txg into its record (dsl->lock held for writing). */
static int
fold_head(struct pool *p, uint64_t txg, struct dsl_node *n)
{
    (void)txg;
    if (!dsl_is_head(n))
        return 0;
    struct objset *os = n->os;
    if (os->acct_asize == 0 && os->acct_psize == 0 && os->acct_lsize == 0 && n->d_unique == 0 &&
        bp_equal(&os->root_bp, &n->ph.root))
        return 0;
    int64_t ref = (int64_t)n->ph.ref_asize + os->acct_asize;
    int64_t refp = (int64_t)n->ph.ref_psize + os->acct_psize;
    int64_t refl = (int64_t)n->ph.ref_lsize + os->acct_lsize;
    int64_t uniq = (int64_t)n->ph.unique_asize + os->acct_asize + n->d_unique;
    if (ref < 0 || refp < 0 || refl < 0 || uniq < 0) {
        char name[DSL_NAME_MAX + 1];
        dsl_node_name(n, name, sizeof(name));
        log_err("pool '%s': space accounting of '%s' went negative", p->name, name);
        return ERR(-ECORRUPT);
    }
    n->ph.ref_asize = (uint64_t)ref;
    n->ph.ref_psize = (uint64_t)refp;
    n->ph.ref_lsize = (uint64_t)refl;
    n->ph.unique_asize = (uint64_t)uniq;
    n->ph.root = os->root_bp;
    os->acct_asize = os->acct_psize = os->acct_lsize = 0;
    n->d_unique = 0;
    n->hot_dirty = true;
    p->dsl->space_dirty = true;
    return 0;
}

/* The changes assigned to txg are now accounted in the records (quota checks). */
static int
clear_pending(struct pool *p, uint64_t txg, struct dsl_node *n)
{
    (void)p;
    __atomic_store_n(&n->pending[txg & 1], 0, __ATOMIC_RELAXED);
    return 0;
}

static int
write_node(struct pool *p, uint64_t txg, struct dsl_node *n)
{
    if (n->hot_dirty || n->cold_dirty)
        p->dsl->space_dirty = true;
    return write_records(p, txg, n);
}

static void
finish_tasks(struct dsl *d, struct dsl_task *t)
{
    pthread_mutex_lock(&d->task_lock);
    for (; t != NULL; t = t->next)
        t->done = true;
    pthread_mutex_unlock(&d->task_lock);
}

int
dsl_sync(struct pool *p, uint64_t txg)
{
    struct dsl *d = p->dsl;
    int rc = for_each_node(p, txg, d->root, sync_head); /* step 1: data of this txg */
    if (rc == 0) { /* tasks see the heads as of the end of this txg's writes */
        pthread_rwlock_wrlock(&d->lock);
        rc = for_each_node(p, txg, d->root, fold_head);
        pthread_rwlock_unlock(&d->lock);
    }

    pthread_mutex_lock(&d->task_lock);
    struct dsl_task *tasks = d->tasks[txg & 1];
    d->tasks[txg & 1] = NULL;
    pthread_mutex_unlock(&d->task_lock);
    for (struct dsl_task *t = tasks; t != NULL && rc == 0; t = t->next) {
        pthread_rwlock_wrlock(&d->lock);
        t->rc = t->fn(p, txg, t->arg, t->em);
        pthread_rwlock_unlock(&d->lock);
        if (d->fatal != 0)
            rc = d->fatal; /* a task failed while applying its changes: fail the commit */
    }
    finish_tasks(d, tasks);

    if (rc == 0) /* step 3: object sets created or changed by the tasks */
        rc = for_each_node(p, txg, d->root, sync_head);
    pthread_rwlock_wrlock(&d->lock);
    if (rc == 0)
        rc = for_each_node(p, txg, d->root, fold_head);
    if (rc == 0)
        rc = for_each_node(p, txg, d->root, write_node);
    if (rc == 0)
        for_each_node(p, txg, d->root, clear_pending);
    if (rc == 0 && d->space_dirty) {
        dsl_space_publish(p);
        d->space_dirty = false;
    }
    pthread_rwlock_unlock(&d->lock);
    return rc;
}

static int
dirty_head(struct pool *p, uint64_t txg, struct dsl_node *n)
{
    (void)p;
    return dsl_is_head(n) && objset_is_dirty(n->os, txg);
}

bool
dsl_is_dirty(struct pool *p, uint64_t txg)
{
    struct dsl *d = p->dsl;
    if (d == NULL)
        return false;
    pthread_mutex_lock(&d->task_lock);
    bool tasks = d->tasks[txg & 1] != NULL;
    pthread_mutex_unlock(&d->task_lock);
    return tasks || for_each_node(p, txg, d->root, dirty_head) != 0;
}

int
dsl_sync_task(struct pool *p, dsl_task_fn fn, void *arg, struct err_msg *em)
{
    struct dsl *d = p->dsl;
    struct tx tx;
    int rc = tx_assign(p, 0, &tx);
    if (rc != 0)
        return err_msg_set(em, rc, "pool '%s' is %s", p->name,
                           rc == -EROFS ? "read-only" : "suspended after an I/O error");
    struct dsl_task t = { .fn = fn, .arg = arg, .em = em, .rc = -EINPROGRESS };
    pthread_mutex_lock(&d->task_lock);
    struct dsl_task **tail = &d->tasks[tx.txg & 1];
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = &t;
    pthread_mutex_unlock(&d->task_lock);
    uint64_t txg = tx.txg;
    tx_commit(&tx);
    int wrc = pool_wait_synced(p, txg);

    /* The task may still be queued (the pool stopped) or running (the commit failed). */
    pthread_mutex_lock(&d->task_lock);
    bool queued = false;
    for (struct dsl_task **pp = &d->tasks[txg & 1]; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == &t) {
            *pp = t.next;
            queued = true;
            break;
        }
    }
    pthread_mutex_unlock(&d->task_lock);
    while (!queued) {
        pthread_mutex_lock(&d->task_lock);
        bool done = t.done;
        pthread_mutex_unlock(&d->task_lock);
        if (done)
            break;
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    if (wrc != 0 && (queued || t.rc == 0))
        return err_msg_set(em, wrc, "pool '%s': the change was not committed: %s", p->name,
                           err_str(wrc));
    return t.rc;
}

int
dsl_sync_task_retry(struct pool *p, dsl_task_fn fn, void *arg, struct err_msg *em)
{
    int rc = -EAGAIN;
    for (int tries = 0; rc == -EAGAIN && tries < 8; tries++) {
        if (tries > 0)
            pool_sync(p, NULL);
        rc = dsl_sync_task(p, fn, arg, em);
    }
    if (rc == -EAGAIN)
        return err_msg_set(em, -EBUSY, "the datasets involved keep changing; stop their writers");
    return rc;
}

/* ---- freeing a tree ----------------------------------------------------------------------- */

struct free_ctx {
    struct pool *p;
    uint64_t txg;
};

static int
free_one(void *arg, const struct traverse_pos *pos, const struct blkptr *bp)
{
    (void)pos;
    struct free_ctx *fc = arg;
    zio_free(fc->p, fc->txg, bp);
    return 0;
}

int
dsl_free_tree(struct pool *p, uint64_t txg, const struct blkptr *root, uint64_t min_birth)
{
    struct free_ctx fc = { p, txg };
    return traverse_objset(p, root, min_birth, free_one, &fc);
}

int
dsl_name_of_record(struct pool *p, uint64_t record, char *buf, size_t len)
{
    pthread_rwlock_rdlock(&p->dsl->lock);
    struct dsl_node *n = u64map_get(&p->dsl->by_obj, record);
    if (n != NULL)
        dsl_node_name(n, buf, len);
    pthread_rwlock_unlock(&p->dsl->lock);
    return n != NULL ? 0 : -ENOENT;
}
