/* SPDX-License-Identifier: MIT */
/*
 * pool_vdev: changing the devices of a live pool — offline, online, replace, clear.
 *
 * Every change is made under p->sync_lock (no txg is being written while the tree changes) and
 * committed before the call returns, so the labels on every device describe the new tree.
 *
 * A replaced leaf is retired, not freed: readers walk the tree without locks (vdev.h invariant
 * 1), so the old leaf and its device stay valid, marked REMOVED, until the pool closes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "core/pool_impl.h"
#include "core/vdev_backend.h"

/* The leaf named by path or decimal guid, with its top-level and child index. */
static struct vdev *
find_leaf(struct pool *p, const char *name, struct vdev **top, uint32_t *child)
{
    char *end;
    unsigned long long guid = strtoull(name, &end, 10);
    bool by_guid = *name != '\0' && *end == '\0';
    for (uint32_t i = 0; i < p->nvdevs; i++) {
        struct vdev *t = p->vdevs[i];
        uint32_t n = t->type == VDEV_TYPE_LEAF ? 1 : t->nchildren;
        for (uint32_t c = 0; c < n; c++) {
            struct vdev *leaf = t->type == VDEV_TYPE_LEAF ? t : t->child[c];
            if ((by_guid && leaf->guid == guid) || strcmp(leaf->path, name) == 0) {
                *top = t;
                *child = c;
                return leaf;
            }
        }
    }
    return NULL;
}

/* Commits the config change made under sync_lock. */
static int
commit_config(struct pool *p)
{
    p->config_dirty = true;
    pthread_mutex_unlock(&p->sync_lock);
    return pool_sync(p, NULL);
}

int
pool_vdev_offline(struct pool *p, const char *name, struct err_msg *em)
{
    if (p->readonly)
        return err_msg_set(em, -EROFS, "pool '%s' is imported read-only", p->name);
    pthread_mutex_lock(&p->sync_lock);
    struct vdev *top;
    uint32_t c;
    struct vdev *leaf = find_leaf(p, name, &top, &c);
    int rc = 0;
    if (leaf == NULL)
        rc = err_msg_set(em, -ENOENT, "no device '%s' in pool '%s'", name, p->name);
    else if (vdev_health(leaf) == VDEV_OFFLINE)
        rc = 0;
    else if (!vdev_can_lose(top, leaf))
        rc = err_msg_set(em, -EBUSY, "cannot take '%s' offline: no valid replicas would remain",
                         leaf->path);
    if (rc != 0 || vdev_health(leaf) == VDEV_OFFLINE) {
        pthread_mutex_unlock(&p->sync_lock);
        return rc;
    }
    __atomic_store_n(&leaf->health, VDEV_OFFLINE, __ATOMIC_RELAXED);
    log_info("pool '%s': device '%s' is offline", p->name, leaf->path);
    return commit_config(p);
}

int
pool_vdev_online(struct pool *p, const char *name, struct err_msg *em)
{
    if (p->readonly)
        return err_msg_set(em, -EROFS, "pool '%s' is imported read-only", p->name);
    pthread_mutex_lock(&p->sync_lock);
    struct vdev *top;
    uint32_t c;
    struct vdev *leaf = find_leaf(p, name, &top, &c);
    int rc = 0;
    if (leaf == NULL)
        rc = err_msg_set(em, -ENOENT, "no device '%s' in pool '%s'", name, p->name);
    else if (leaf->dev == NULL)
        rc = err_msg_set(em, -ENXIO, "device '%s' is not present: replace it", leaf->path);
    if (rc != 0) {
        pthread_mutex_unlock(&p->sync_lock);
        return rc;
    }
    __atomic_store_n(&leaf->error_run, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&leaf->health, VDEV_ONLINE, __ATOMIC_RELAXED);
    log_info("pool '%s': device '%s' is online%s", p->name, leaf->path,
             leaf->missed_txg_min != 0 ? "; it needs a resilver" : "");
    return commit_config(p);
}

static void
clear_counters(struct vdev *vd)
{
    __atomic_store_n(&vd->read_errors, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&vd->write_errors, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&vd->cksum_errors, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&vd->error_run, 0, __ATOMIC_RELAXED);
    int faulted = VDEV_FAULTED;
    __atomic_compare_exchange_n(&vd->health, &faulted, VDEV_ONLINE, false, __ATOMIC_RELAXED,
                                __ATOMIC_RELAXED);
}

int
pool_clear(struct pool *p, const char *name, struct err_msg *em)
{
    struct vdev *top;
    uint32_t c;
    if (name != NULL) {
        struct vdev *leaf = find_leaf(p, name, &top, &c);
        if (leaf == NULL)
            return err_msg_set(em, -ENOENT, "no device '%s' in pool '%s'", name, p->name);
        clear_counters(leaf);
        return 0;
    }
    for (uint32_t i = 0; i < p->nvdevs; i++) {
        clear_counters(p->vdevs[i]);
        for (uint32_t k = 0; k < p->vdevs[i]->nchildren; k++)
            clear_counters(p->vdevs[i]->child[k]);
    }
    pthread_mutex_lock(&p->err_lock);
    p->nerrors = 0;
    pthread_mutex_unlock(&p->err_lock);
    return 0;
}

int
pool_vdev_replace(struct pool *p, const char *old, const char *path, struct err_msg *em)
{
    if (p->readonly)
        return err_msg_set(em, -EROFS, "pool '%s' is imported read-only", p->name);
    struct vdev_backend *dev = NULL;
    struct vdev_file_opts fo = { .create = p->opts.create_files,
                                 .create_size = p->opts.create_size,
                                 .direct = p->opts.direct_io };
    int rc = vdev_file_open(path, &fo, &dev);
    if (rc != 0)
        return err_msg_set(em, rc, "cannot open '%s': %s", path, err_str(rc));
    struct pool_config *cfg = malloc(sizeof(*cfg));
    unsigned valid = 0;
    if (cfg == NULL) {
        vdev_backend_close(dev);
        return -ENOMEM;
    }
    rc = label_read_config(dev, cfg, &valid) == 0 && cfg->state != POOL_STATE_DESTROYED
             ? err_msg_set(em, -EEXIST, "device '%s' is part of pool '%s'", path, cfg->name)
             : 0;
    free(cfg);
    if (rc != 0) {
        vdev_backend_close(dev);
        return rc;
    }
    pthread_mutex_lock(&p->sync_lock);
    struct vdev *top;
    uint32_t c;
    struct vdev *leaf = find_leaf(p, old, &top, &c);
    uint64_t share = 0;
    if (leaf == NULL) {
        rc = err_msg_set(em, -ENOENT, "no device '%s' in pool '%s'", old, p->name);
    } else if (top->type == VDEV_TYPE_LEAF) {
        rc = err_msg_set(em, -ENOTSUP, "'%s' has no redundancy to rebuild from: add a mirror",
                         leaf->path);
    } else if (!vdev_can_lose(top, leaf)) {
        rc = err_msg_set(em, -EBUSY,
                         "cannot replace '%s': its vdev has no redundancy left to "
                         "rebuild the new device from",
                         leaf->path);
    } else {
        share = top->type == VDEV_TYPE_RAIDZ ? top->asize / top->nchildren : top->asize;
        if (vdev_leaf_asize(dev->size, top->ashift) < share)
            rc =
                err_msg_set(em, -EINVAL, "'%s' is smaller than '%s' (%llu < %llu bytes)", path,
                            leaf->path, (unsigned long long)vdev_leaf_asize(dev->size, top->ashift),
                            (unsigned long long)share);
    }
    if (rc != 0) {
        pthread_mutex_unlock(&p->sync_lock);
        vdev_backend_close(dev);
        return rc;
    }
    label_clear(dev);
    struct vdev *nl = vdev_new_leaf(pool_random_guid(), dev, NULL);
    struct vdev **retired = realloc(p->retired, (p->nretired + 1) * sizeof(*retired));
    if (nl == NULL || retired == NULL) {
        pthread_mutex_unlock(&p->sync_lock);
        if (retired != NULL)
            p->retired = retired;
        vdev_free(nl);
        return -ENOMEM;
    }
    p->retired = retired;
    nl->parent = top;
    nl->top = top;
    nl->id = c;
    nl->ashift = top->ashift;
    nl->asize = vdev_leaf_asize(dev->size, top->ashift);
    /* It holds nothing written so far: reads avoid it below the next txg, resilver fills it. */
    nl->missed_txg_min = 1;
    nl->missed_txg_max = p->synced_txg;
    __atomic_store_n(&leaf->health, VDEV_REMOVED, __ATOMIC_RELAXED);
    p->retired[p->nretired++] = leaf;
    __atomic_store_n(&top->child[c], nl, __ATOMIC_RELEASE);
    log_info("pool '%s': replacing '%s' with '%s'", p->name, leaf->path, path);
    return commit_config(p);
}
