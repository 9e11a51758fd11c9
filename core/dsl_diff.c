/* SPDX-License-Identifier: MIT */
/*
 * dsl_diff: the changed-block query — which blocks of an object changed after a snapshot or
 * bookmark, from birth txgs alone (no data is read). Incremental send and the NBD dirty-bitmap
 * context are built on it.
 *
 * A block (or hole) born after txg t was written (or punched) after t; a subtree whose BP was
 * born at or before t holds nothing newer (core/traverse.h). For a head, writes and punches not
 * yet committed are added from the object's dirty state, so the answer is exact "as of now".
 */
#include <errno.h>
#include <string.h>

#include "core/dsl_impl.h"

/* true when `since` (a snapshot or bookmark) is an ancestor state of head h's data up to txg
 * `upto`: a snapshot/bookmark of h older than upto, or of h's origin lineage older than the
 * origin. */
static bool
in_lineage(const struct dsl_node *h, uint64_t upto, const struct dsl_node *since)
{
    for (size_t depth = 0; h != NULL && depth < 4096; depth++) {
        if (since->parent == h)
            return since->ph.create_txg < upto;
        if (h->origin == NULL)
            return false;
        upto = h->origin->ph.create_txg + 1;
        h = h->origin->parent;
    }
    return false;
}

int
ds_changed_blocks(struct dataset *ds, uint64_t obj, const char *since, ds_changed_fn fn, void *arg,
                  struct err_msg *em)
{
    struct pool *p = ds_pool(ds);
    uint64_t since_txg = 0;
    int rc = 0;
    if (since != NULL) {
        pthread_rwlock_rdlock(&p->dsl->lock);
        struct dsl_node *s;
        rc = dsl_lookup(p, since, &s, em);
        if (rc == 0 && dsl_is_head(s))
            rc = err_msg_set(em, -EINVAL, "'%s' is not a snapshot or bookmark", since);
        if (rc == 0) {
            const struct dsl_node *n = ds_node(ds);
            const struct dsl_node *h = dsl_is_head(n) ? n : n->parent;
            uint64_t upto = dsl_is_head(n) ? UINT64_MAX : n->ph.create_txg;
            if (!in_lineage(h, upto, s)) {
                char name[DSL_NAME_MAX + 1];
                dsl_node_name(n, name, sizeof(name));
                rc = err_msg_set(em, -EXDEV, "'%s' is not an earlier snapshot or bookmark of '%s'",
                                 since, name);
            }
            since_txg = s->ph.create_txg;
        }
        pthread_rwlock_unlock(&p->dsl->lock);
        if (rc != 0)
            return rc;
    }
    struct dnode *dn;
    rc = dnode_hold(ds_objset(ds), obj, false, &dn);
    if (rc != 0)
        return err_msg_set(em, rc, "object %llu: %s", (unsigned long long)obj, err_str(rc));
    pthread_mutex_lock(&dn->lock);
    uint32_t blksz = dn->latest.datablksz;
    uint64_t size = dn->latest.size;
    pthread_mutex_unlock(&dn->lock);
    struct blk_ranges set;
    rc = dnode_changed(dn, since_txg, &set);
    dnode_rele(dn);
    if (rc != 0)
        return err_msg_set(em, rc, "reading the block tree: %s", err_str(rc));
    for (size_t i = 0; rc == 0 && i < set.n; i++) {
        uint64_t b0 = set.r[i][0], b1 = set.r[i][1];
        uint64_t off = b0 > size / blksz ? size : b0 * blksz;
        uint64_t end = b1 > size / blksz + 1 ? size : b1 * blksz;
        if (end > size)
            end = size;
        if (end > off)
            rc = fn(arg, off, end - off);
    }
    blk_ranges_release(&set);
    return rc;
}
