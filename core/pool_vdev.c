/* SPDX-License-Identifier: MIT */
/*
 * pool_vdev: changing the devices of a live pool — offline, online, replace, attach, detach,
 * clear.
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

/*
 * The start of every change: refuses read-only pools, takes sync_lock and finds the leaf named
 * by path or guid. Returns it with sync_lock held, or NULL with the lock released and *rc set.
 */
static struct vdev *
lock_leaf(struct pool *p, const char *name, struct vdev **top, uint32_t *c, int *rc,
          struct err_msg *em)
{
    if (p->readonly) {
        *rc = err_msg_set(em, -EROFS, "pool '%s' is imported read-only", p->name);
        return NULL;
    }
    pthread_mutex_lock(&p->sync_lock);
    struct vdev *leaf = find_leaf(p, name, top, c);
    if (leaf == NULL) {
        pthread_mutex_unlock(&p->sync_lock);
        *rc = err_msg_set(em, -ENOENT, "no device '%s' in pool '%s'", name, p->name);
    }
    return leaf;
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
    struct vdev *top;
    uint32_t c;
    int rc = 0;
    struct vdev *leaf = lock_leaf(p, name, &top, &c, &rc, em);
    if (leaf == NULL)
        return rc;
    if (vdev_health(leaf) != VDEV_OFFLINE && !vdev_can_lose(top, leaf))
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
    struct vdev *top;
    uint32_t c;
    int rc = 0;
    struct vdev *leaf = lock_leaf(p, name, &top, &c, &rc, em);
    if (leaf == NULL)
        return rc;
    if (leaf->dev == NULL) {
        pthread_mutex_unlock(&p->sync_lock);
        return err_msg_set(em, -ENXIO, "device '%s' is not present: replace it", leaf->path);
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

/* Opens the device joining the pool; refuses one that belongs to a pool that is not destroyed. */
static int
open_new_device(struct pool *p, const char *path, struct vdev_backend **out, struct err_msg *em)
{
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
    *out = dev;
    return 0;
}

/* Keeps vd until the pool closes (vdev.h invariant 1). */
static int
retire(struct pool *p, struct vdev *vd)
{
    struct vdev **r = realloc(p->retired, (p->nretired + 1) * sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    p->retired = r;
    p->retired[p->nretired++] = vd;
    return 0;
}

/*
 * A new leaf for dev (taken, also on failure) in top's child slot c: it holds nothing written up
 * to the last commit, so reads avoid it there until a resilver fills it.
 */
static struct vdev *
new_child(struct pool *p, struct vdev *top, uint32_t c, struct vdev_backend *dev)
{
    label_clear(dev);
    struct vdev *nl = vdev_new_leaf(pool_random_guid(), dev, NULL);
    if (nl == NULL)
        return NULL;
    nl->parent = top;
    nl->top = top;
    nl->id = c;
    nl->ashift = top->ashift;
    nl->asize = vdev_leaf_asize(dev->size, top->ashift);
    nl->missed_txg_min = 1;
    nl->missed_txg_max = p->synced_txg;
    return nl;
}

int
pool_vdev_attach(struct pool *p, const char *existing, const char *path, struct err_msg *em)
{
    if (p->readonly)
        return err_msg_set(em, -EROFS, "pool '%s' is imported read-only", p->name);
    struct vdev_backend *dev = NULL;
    int rc = open_new_device(p, path, &dev, em);
    if (rc != 0)
        return rc;
    struct vdev *top, *mirror = NULL;
    uint32_t c;
    struct vdev *leaf = lock_leaf(p, existing, &top, &c, &rc, em);
    if (leaf == NULL) {
        vdev_backend_close(dev);
        return rc;
    }
    if (top->type == VDEV_TYPE_RAIDZ)
        rc = err_msg_set(em, -ENOTSUP,
                         "'%s' is in a raidz: attach works on plain devices and "
                         "mirrors (use replace)",
                         leaf->path);
    else if (top->type == VDEV_TYPE_MIRROR && top->nchildren == VDEV_MAX_CHILDREN)
        rc = err_msg_set(em, -ENOSPC, "mirror of '%s' already has %d devices", leaf->path,
                         VDEV_MAX_CHILDREN);
    else if (vdev_leaf_asize(dev->size, top->ashift) < top->asize)
        rc = err_msg_set(em, -EINVAL, "'%s' is smaller than '%s'", path, leaf->path);
    if (rc == 0 && top->type == VDEV_TYPE_LEAF) {
        /* A plain device becomes a two-way mirror with the same id, size and metaslabs. */
        struct vdev *kids[1] = { leaf };
        struct vdev *m = calloc(1, sizeof(*m));
        struct vdev **ch = calloc(VDEV_MAX_CHILDREN, sizeof(*ch));
        if (m == NULL || ch == NULL) {
            free(m);
            free(ch);
            rc = -ENOMEM;
        } else {
            m->guid = pool_random_guid();
            m->type = VDEV_TYPE_MIRROR;
            m->id = top->id;
            m->ashift = top->ashift;
            m->asize = top->asize;
            m->ms_shift = top->ms_shift;
            m->top = m;
            m->child = ch;
            snprintf(m->path, sizeof(m->path), "mirror");
            ch[0] = kids[0];
            m->nchildren = 1;
            mirror = m;
        }
    } else if (rc == 0) {
        mirror = top;
    }
    struct vdev *nl = NULL;
    if (rc == 0) {
        nl = new_child(p, mirror, mirror->nchildren, dev);
        dev = NULL; /* taken, also on failure */
        if (nl == NULL)
            rc = -ENOMEM;
    }
    if (rc != 0) {
        pthread_mutex_unlock(&p->sync_lock);
        if (mirror != NULL && mirror != top) {
            free(mirror->child);
            free(mirror);
        }
        vdev_backend_close(dev);
        vdev_free(nl);
        return rc;
    }
    if (mirror != top) {
        leaf->parent = mirror;
        leaf->top = mirror;
        leaf->id = 0;
        leaf->asize = vdev_leaf_asize(leaf->dev != NULL ? leaf->dev->size : 0, top->ashift);
    }
    __atomic_store_n(&mirror->child[mirror->nchildren], nl, __ATOMIC_RELEASE);
    __atomic_store_n(&mirror->nchildren, mirror->nchildren + 1, __ATOMIC_RELEASE);
    if (mirror != top)
        __atomic_store_n(&p->vdevs[top->id], mirror, __ATOMIC_RELEASE);
    log_info("pool '%s': attached '%s' to '%s'", p->name, path, leaf->path);
    return commit_config(p);
}

int
pool_vdev_detach(struct pool *p, const char *name, struct err_msg *em)
{
    struct vdev *top;
    uint32_t c;
    int rc = 0;
    struct vdev *leaf = lock_leaf(p, name, &top, &c, &rc, em);
    if (leaf == NULL)
        return rc;
    if (top->type != VDEV_TYPE_MIRROR) {
        rc = err_msg_set(em, -ENOTSUP, "only devices of a mirror can be detached");
    } else {
        /* What stays must hold every block: usable and with nothing left to resilver. */
        for (uint32_t k = 0; k < top->nchildren && rc == 0; k++) {
            const struct vdev *o = top->child[k];
            if (o != leaf && (!vdev_leaf_usable(o) || o->missed_txg_min != 0))
                rc = err_msg_set(em, -EBUSY,
                                 "cannot detach '%s': '%s' is %s; resilver or replace it first",
                                 leaf->path, o->path,
                                 vdev_leaf_usable(o) ? "not fully resilvered"
                                                     : vdev_health_name(vdev_health(o)));
        }
    }
    if (rc == 0)
        rc = retire(p, leaf);
    if (rc == 0 && top->nchildren == 2 && (rc = retire(p, top)) != 0)
        p->nretired--; /* keep the leaf live: nothing changed */
    if (rc != 0) {
        pthread_mutex_unlock(&p->sync_lock);
        return rc;
    }
    __atomic_store_n(&leaf->health, VDEV_REMOVED, __ATOMIC_RELAXED);
    if (top->nchildren == 2) {
        /* The survivor becomes the top-level itself, with the mirror's id, size and metaslabs. */
        struct vdev *keep = top->child[c == 0 ? 1 : 0];
        keep->parent = NULL;
        keep->top = keep;
        keep->id = top->id;
        keep->asize = top->asize;
        keep->ms_shift = top->ms_shift;
        top->shell = true;
        __atomic_store_n(&p->vdevs[top->id], keep, __ATOMIC_RELEASE);
    } else {
        /* Shift the later children down; a reader racing with this may skip one child or see
         * one twice, which only changes which copy it reads. */
        for (uint32_t k = c; k + 1 < top->nchildren; k++) {
            __atomic_store_n(&top->child[k], top->child[k + 1], __ATOMIC_RELEASE);
            top->child[k]->id = k;
        }
        __atomic_store_n(&top->nchildren, top->nchildren - 1, __ATOMIC_RELEASE);
    }
    log_info("pool '%s': detached '%s'", p->name, leaf->path);
    return commit_config(p);
}

int
pool_vdev_replace(struct pool *p, const char *old, const char *path, struct err_msg *em)
{
    if (p->readonly)
        return err_msg_set(em, -EROFS, "pool '%s' is imported read-only", p->name);
    struct vdev_backend *dev = NULL;
    int rc = open_new_device(p, path, &dev, em);
    if (rc != 0)
        return rc;
    struct vdev *top;
    uint32_t c;
    struct vdev *leaf = lock_leaf(p, old, &top, &c, &rc, em);
    if (leaf == NULL) {
        vdev_backend_close(dev);
        return rc;
    }
    uint64_t share = 0;
    if (top->type == VDEV_TYPE_LEAF) {
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
    struct vdev *nl = new_child(p, top, c, dev); /* takes dev, also on failure */
    if (nl == NULL || retire(p, leaf) != 0) {
        pthread_mutex_unlock(&p->sync_lock);
        vdev_free(nl);
        return -ENOMEM;
    }
    __atomic_store_n(&leaf->health, VDEV_REMOVED, __ATOMIC_RELAXED);
    __atomic_store_n(&top->child[c], nl, __ATOMIC_RELEASE);
    log_info("pool '%s': replacing '%s' with '%s'", p->name, leaf->path, path);
    return commit_config(p);
}
