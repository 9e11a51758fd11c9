/* SPDX-License-Identifier: MIT */
/*
 * dsl_handle: dataset handles (API in core/dsl.h): ds_open/ds_close, the accessors, and the
 * transactions that check a dataset's read-only property and quotas before joining a txg
 * (ds_tx_assign, which may wait, and ds_tx_try_run, which never does). A handle holds its node
 * and its object set open; the dataset layer's structures are described in dsl_impl.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "core/dsl_impl.h"
#include "core/props.h"

struct dataset {
    struct pool *pool;
    struct dsl_node *node;
    struct objset *os;
};

int
ds_open(struct pool *p, const char *name, struct dataset **out, struct err_msg *em)
{
    struct dataset *ds = calloc(1, sizeof(*ds));
    if (ds == NULL)
        return -ENOMEM;
    struct dsl *d = p->dsl;
    pthread_rwlock_rdlock(&d->lock);
    struct dsl_node *n = NULL;
    int rc = dsl_lookup(p, name, &n, em);
    if (rc == 0 && n->ph.kind == DSL_KIND_BOOKMARK)
        rc = err_msg_set(em, -EINVAL, "'%s' is a bookmark, it has no data", name);
    if (rc == 0 && n->os == NULL) {
        pthread_mutex_lock(&d->os_lock);
        if (n->os == NULL) {
            struct objset *os = NULL;
            rc = objset_open(p, &n->ph.root, n->obj, &os);
            if (rc == 0) {
                os->readonly = true; /* snapshots never change */
                __atomic_store_n(&n->os, os, __ATOMIC_RELEASE);
            } else
                err_msg_set(em, rc, "cannot open snapshot '%s': %s", name, err_str(rc));
        }
        pthread_mutex_unlock(&d->os_lock);
    }
    if (rc == 0) {
        __atomic_add_fetch(&n->refs, 1, __ATOMIC_ACQ_REL);
        ds->pool = p;
        ds->node = n;
        ds->os = n->os;
    }
    pthread_rwlock_unlock(&d->lock);
    if (rc != 0) {
        free(ds);
        return rc;
    }
    *out = ds;
    return 0;
}

void
ds_close(struct dataset *ds)
{
    if (ds == NULL)
        return;
    __atomic_sub_fetch(&ds->node->refs, 1, __ATOMIC_ACQ_REL);
    free(ds);
}

struct dsl_node *
ds_node(struct dataset *ds)
{
    return ds->node;
}

struct objset *
ds_objset(struct dataset *ds)
{
    return ds->os;
}

struct pool *
ds_pool(struct dataset *ds)
{
    return ds->pool;
}

enum dsl_kind
ds_kind(const struct dataset *ds)
{
    return (enum dsl_kind)ds->node->ph.kind;
}

bool
ds_readonly(const struct dataset *ds)
{
    if (ds->node->ph.kind == DSL_KIND_SNAP || ds->pool->readonly)
        return true;
    pthread_rwlock_rdlock(&ds->pool->dsl->lock);
    bool ro = dsl_prop_num(ds->node, PROP_READONLY) != 0;
    pthread_rwlock_unlock(&ds->pool->dsl->lock);
    return ro;
}

const char *
ds_name(struct dataset *ds, char *buf, size_t len)
{
    pthread_rwlock_rdlock(&ds->pool->dsl->lock);
    dsl_node_name(ds->node, buf, len);
    pthread_rwlock_unlock(&ds->pool->dsl->lock);
    return buf;
}

int
ds_prop_num(struct dataset *ds, const char *prop, uint64_t *out)
{
    enum prop_id id;
    int rc = props_from_name(prop, &id);
    if (rc != 0)
        return rc;
    const struct prop_desc *pd = props_desc(id);
    if (pd->type == PROP_VAL_STRING)
        return -EINVAL;
    pthread_rwlock_rdlock(&ds->pool->dsl->lock);
    *out = dsl_prop_num(ds->node, id);
    pthread_rwlock_unlock(&ds->pool->dsl->lock);
    return 0;
}

/* -EDQUOT when bytes more would push n or an ancestor over a quota (dsl->lock held). */
static int
check_quotas(const struct dsl_node *n, uint64_t bytes)
{
    uint64_t refquota = dsl_prop_num(n, PROP_REFQUOTA);
    uint64_t pend = n->pending[0] + n->pending[1];
    if (refquota != 0 && n->ph.ref_asize + pend + bytes > refquota)
        return -EDQUOT;
    for (const struct dsl_node *a = n; a != NULL; a = a->parent) {
        uint64_t quota = dsl_prop_num(a, PROP_QUOTA);
        uint64_t apend = a->pending[0] + a->pending[1];
        if (quota != 0 && a->used + apend + bytes > quota)
            return -EDQUOT;
    }
    return 0;
}

int
ds_tx_assign(struct dataset *ds, uint64_t bytes, struct tx *tx)
{
    struct pool *p = ds->pool;
    if (ds->node->ph.kind == DSL_KIND_SNAP)
        return -EROFS;
    pthread_rwlock_rdlock(&p->dsl->lock);
    int rc = dsl_prop_num(ds->node, PROP_READONLY) != 0 ? -EROFS : check_quotas(ds->node, bytes);
    pthread_rwlock_unlock(&p->dsl->lock);
    if (rc != 0)
        return rc;
    /* Never with dsl->lock held: it may wait for a commit. */
    rc = tx_assign_rsv(p, bytes, __atomic_load_n(&ds->os->rsv_own, __ATOMIC_RELAXED), tx);
    if (rc != 0)
        return rc;
    pthread_rwlock_rdlock(&p->dsl->lock);
    for (struct dsl_node *a = ds->node; a != NULL; a = a->parent)
        __atomic_add_fetch(&a->pending[tx->txg & 1], bytes, __ATOMIC_RELAXED);
    pthread_rwlock_unlock(&p->dsl->lock);
    return 0;
}

/*
 * The read lock is held from the quota check to the charge: nothing waits while holding it
 * (every step is a try), and the charge comes after fn, so a give-up leaves nothing behind.
 */
int
ds_tx_try_run(struct dataset *ds, uint64_t bytes, ds_tx_fn fn, void *arg)
{
    struct pool *p = ds->pool;
    if (ds->node->ph.kind == DSL_KIND_SNAP)
        return -EROFS;
    if (pthread_rwlock_tryrdlock(&p->dsl->lock) != 0)
        return -EWOULDBLOCK;
    int rc = dsl_prop_num(ds->node, PROP_READONLY) != 0 ? -EROFS : check_quotas(ds->node, bytes);
    struct tx tx;
    if (rc == 0)
        rc = tx_try_assign_rsv(p, bytes, __atomic_load_n(&ds->os->rsv_own, __ATOMIC_RELAXED), &tx);
    if (rc == 0) {
        rc = fn(arg, &tx);
        if (rc != -EWOULDBLOCK)
            for (struct dsl_node *a = ds->node; a != NULL; a = a->parent)
                __atomic_add_fetch(&a->pending[tx.txg & 1], bytes, __ATOMIC_RELAXED);
        tx_commit(&tx); /* after -EWOULDBLOCK an empty tx: fn changed nothing */
    }
    pthread_rwlock_unlock(&p->dsl->lock);
    return rc;
}
