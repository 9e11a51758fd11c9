/* SPDX-License-Identifier: MIT */
/*
 * pool_import: finding a pool on its devices and loading the newest state that verifies.
 *
 * 1. Read the config record of every device; the copy with the highest config txg describes the
 *    pool. Every top-level vdev it names must be among the devices (matched by guid).
 * 2. Collect every uberblock that verifies (checksum trailer, pool guid) from every label of
 *    every device, newest first.
 * 3. For each candidate, try to load: MOS root block, pool directory, space checkpoint and
 *    journal (replayed into a fresh allocator), root dataset record and its object set root
 *    block. The first candidate that loads wins; skipped ones are logged (a torn or damaged
 *    newest txg is rewound past, which the 2-txg deferred free makes safe).
 * 4. The next txg is one past the newest uberblock that verified at all, so anything written
 *    from now on supersedes every uberblock that was rejected.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "core/dsl_impl.h"
#include "core/pool_impl.h"
#include "core/vdev_backend.h"

#define MAX_UBERBLOCKS (UB_SLOTS * 4)

static int
read_object(struct objset *os, uint64_t obj, uint8_t **out, size_t *len)
{
    struct obj_info info;
    int rc = obj_stat(os, obj, &info);
    if (rc != 0)
        return rc;
    if (info.size > GiB(4))
        return ERR(-ECORRUPT);
    *len = (size_t)info.size;
    *out = malloc(*len ? *len : 1);
    if (*out == NULL)
        return -ENOMEM;
    rc = obj_read(os, obj, 0, *len, *out);
    if (rc != 0) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* Drops everything a failed load attempt built. */
static void
unload(struct pool *p)
{
    dsl_unload(p);
    objset_close(p->mos);
    p->mos = NULL;
    alloc_free(p->alloc);
    p->alloc = alloc_new();
    for (uint32_t i = 0; i < p->nvdevs; i++) {
        const struct vdev *vd = p->vdevs[i];
        if (p->alloc != NULL)
            alloc_vdev_add(p->alloc, vd->id, vd->asize, vd->ashift, vd->ms_shift);
    }
}

static int
try_load(struct pool *p, const struct uberblock *ub)
{
    int rc = objset_open(p, &ub->rootbp, 0, &p->mos);
    if (rc != 0)
        return rc;
    uint8_t dir[POOL_DIR_SIZE];
    rc = obj_read(p->mos, POOL_DIR_OBJ, 0, sizeof(dir), dir);
    if (rc == 0)
        rc = pool_dir_decode(p, dir);
    uint8_t *recs = NULL;
    size_t len = 0;
    if (rc == 0 && p->checkpoint_obj != 0) {
        rc = read_object(p->mos, p->checkpoint_obj, &recs, &len);
        if (rc == 0)
            rc = alloc_load_records(p->alloc, recs, len, ub->txg);
        free(recs);
        recs = NULL;
    }
    if (rc == 0) {
        rc = read_object(p->mos, p->journal_obj, &recs, &len);
        if (rc == 0)
            rc = alloc_load_records(p->alloc, recs, len, ub->txg);
        p->journal_bytes = len;
        free(recs);
    }
    if (rc == 0)
        rc = dsl_load(p); /* every dataset, snapshot and bookmark; heads' object sets open */
    return rc;
}

/*
 * After a rewind, the uberblocks newer than the chosen one describe trees whose space the
 * allocator (loaded from the older state) will hand out again. Zero their ring slots and flush
 * before any write, so a crash before the first new commit cannot bring them back.
 */
static int
forget_newer_uberblocks(struct pool *p, const struct uberblock *ubs, size_t nub, uint64_t chosen)
{
    static const uint8_t zero[UB_SLOT_SIZE];
    for (size_t i = 0; i < nub; i++) {
        if (ubs[i].txg <= chosen)
            continue;
        for (uint32_t v = 0; v < p->nvdevs; v++) {
            struct vdev_backend *dev = p->vdevs[v]->dev;
            for (int l = 0; l < LABEL_COUNT; l++) {
                uint64_t off = label_offset(dev->size, l) + LABEL_RING_OFF +
                               (ubs[i].txg % UB_SLOTS) * UB_SLOT_SIZE;
                int rc = vdev_backend_write(dev, off, zero, sizeof(zero));
                if (rc != 0)
                    return rc;
            }
        }
    }
    return vdev_flush_all(p);
}

static int
cmp_ub_desc(const void *a, const void *b)
{
    const struct uberblock *x = a, *y = b;
    return x->txg > y->txg ? -1 : x->txg < y->txg;
}

int
pool_import_backends(struct vdev_backend **devs, size_t n, const struct pool_import_opts *opts,
                     struct pool **out, struct err_msg *em)
{
    struct pool_import_opts none = { 0 };
    if (opts == NULL)
        opts = &none;
    struct pool *p = NULL;
    struct pool_config *cfg = malloc(sizeof(*cfg)), *best = malloc(sizeof(*best));
    struct uberblock *ubs = malloc(MAX_UBERBLOCKS * n * sizeof(*ubs) + sizeof(*ubs));
    bool *used = calloc(n + 1, sizeof(bool));
    int rc = 0;
    if (cfg == NULL || best == NULL || ubs == NULL || used == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    if (n == 0) {
        rc = err_msg_set(em, -EINVAL, "no devices given");
        goto fail;
    }
    /* Step 1. */
    best->txg = 0;
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        unsigned valid = 0;
        int r = label_read_config(devs[i], cfg, &valid);
        if (r != 0) {
            rc = err_msg_set(em, r == -ENOENT ? -ENOENT : r, "no valid LCPFS label on '%s': %s",
                             devs[i]->path, err_str(r));
            goto fail;
        }
        if (found && cfg->pool_guid != best->pool_guid) {
            rc = err_msg_set(em, -EINVAL, "'%s' belongs to pool '%s', not '%s'", devs[i]->path,
                             cfg->name, best->name);
            goto fail;
        }
        if (!found || cfg->txg > best->txg)
            memcpy(best, cfg, sizeof(*cfg));
        found = true;
    }
    if (best->state == POOL_STATE_DESTROYED) {
        rc = err_msg_set(em, -ENOENT, "pool '%s' was destroyed", best->name);
        goto fail;
    }
    p = pool_alloc(&opts->tuning);
    if (p == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    p->readonly = opts->readonly;
    p->guid = best->pool_guid;
    p->create_time = best->create_time;
    p->config_txg = best->txg;
    snprintf(p->name, sizeof(p->name), "%s", best->name);
    uint32_t ntop = 0;
    for (uint32_t v = 1; v < best->nvdevs; v++) {
        const struct config_vdev *e = &best->vdevs[v];
        if (e->parent != 0)
            continue;
        if (e->type != VDEV_TYPE_LEAF || e->id != ntop) {
            rc = err_msg_set(em, -EVERSION, "pool '%s' uses a vdev layout this build lacks",
                             p->name);
            goto fail;
        }
        size_t d;
        for (d = 0; d < n; d++) {
            if (used[d])
                continue;
            unsigned valid = 0;
            if (label_read_config(devs[d], cfg, &valid) == 0 && cfg->leaf_guid == e->guid)
                break;
        }
        if (d == n) {
            rc = err_msg_set(em, -EDEGRADED, "pool '%s' is missing device %llu (last seen at '%s')",
                             p->name, (unsigned long long)e->guid, e->path);
            goto fail;
        }
        used[d] = true;
        if (label_data_size(devs[d]->size) < e->asize) {
            rc = err_msg_set(em, -ECORRUPT, "device '%s' is smaller than its label says",
                             devs[d]->path);
            goto fail;
        }
        rc = pool_vdev_attach(p, devs[d], e->guid, ntop, e->ashift, e->asize, e->ms_shift);
        if (rc != 0)
            goto fail;
        devs[d] = NULL; /* owned by the pool now */
        ntop++;
    }
    if (ntop == 0) {
        rc = err_msg_set(em, -ECORRUPT, "pool '%s' has no top-level vdevs", p->name);
        goto fail;
    }
    /* Step 2. */
    size_t nub = 0;
    for (uint32_t i = 0; i < p->nvdevs; i++) {
        size_t got = 0;
        rc = label_read_uberblocks(p->vdevs[i]->dev, ubs + nub, MAX_UBERBLOCKS, &got);
        if (rc != 0) {
            err_msg_set(em, rc, "cannot read labels of '%s': %s", p->vdevs[i]->path, err_str(rc));
            goto fail;
        }
        nub += got;
    }
    qsort(ubs, nub, sizeof(*ubs), cmp_ub_desc);
    uint64_t newest_seen = 0;
    for (size_t i = 0; i < nub; i++)
        if (ubs[i].pool_guid == p->guid && ubs[i].txg > newest_seen)
            newest_seen = ubs[i].txg;
    /* Step 3. */
    const struct uberblock *chosen = NULL;
    int last_err = -ENOENT;
    for (size_t i = 0; i < nub; i++) {
        const struct uberblock *ub = &ubs[i];
        if (ub->pool_guid != p->guid || (i > 0 && ub->txg == ubs[i - 1].txg))
            continue;
        if (opts->rewind_txg != 0 && ub->txg > opts->rewind_txg)
            continue;
        rc = try_load(p, ub);
        if (rc == 0) {
            chosen = ub;
            break;
        }
        last_err = rc;
        log_warn("pool '%s': cannot load txg %llu (%s); trying an older uberblock", p->name,
                 (unsigned long long)ub->txg, err_str(rc));
        unload(p);
        if (p->alloc == NULL) {
            rc = -ENOMEM;
            goto fail;
        }
    }
    if (chosen == NULL) {
        rc = err_msg_set(em, last_err == -ENOENT ? -ECORRUPT : last_err,
                         "pool '%s': no uberblock loads (%s)", p->name, err_str(last_err));
        goto fail;
    }
    if (chosen->txg != newest_seen) {
        log_warn("pool '%s': rewound to txg %llu (newest seen %llu)", p->name,
                 (unsigned long long)chosen->txg, (unsigned long long)newest_seen);
        if (!p->readonly) {
            rc = forget_newer_uberblocks(p, ubs, nub, chosen->txg);
            if (rc != 0) {
                err_msg_set(em, rc, "pool '%s': cannot retire uberblocks newer than txg %llu: %s",
                            p->name, (unsigned long long)chosen->txg, err_str(rc));
                goto fail;
            }
        }
    }
    /* Step 4. */
    txg_init(p, newest_seen + 1);
    p->synced_txg = chosen->txg;
    if (!p->readonly) {
        rc = txg_start_sync_thread(p);
        if (rc != 0)
            goto fail;
    }
    log_info("imported pool '%s' at txg %llu%s", p->name, (unsigned long long)chosen->txg,
             p->readonly ? " (read-only)" : "");
    free(cfg);
    free(best);
    free(ubs);
    free(used);
    for (size_t i = 0; i < n; i++)
        vdev_backend_close(devs[i]); /* devices not part of the pool */
    *out = p;
    return 0;
fail:
    free(cfg);
    free(best);
    free(ubs);
    free(used);
    for (size_t i = 0; i < n; i++)
        vdev_backend_close(devs[i]);
    pool_free_all(p);
    return rc;
}

int
pool_import(const char *const *paths, size_t n, const struct pool_import_opts *opts,
            struct pool **out, struct err_msg *em)
{
    if (n == 0 || n >= POOL_MAX_TOP_VDEVS)
        return err_msg_set(em, -EINVAL, "give 1 to %d devices", POOL_MAX_TOP_VDEVS - 1);
    struct vdev_backend *devs[POOL_MAX_TOP_VDEVS];
    struct vdev_file_opts fo = { .readonly = opts && opts->readonly,
                                 .direct = opts && opts->tuning.direct_io };
    for (size_t i = 0; i < n; i++) {
        int rc = vdev_file_open(paths[i], &fo, &devs[i]);
        if (rc != 0) {
            for (size_t j = 0; j < i; j++)
                vdev_backend_close(devs[j]);
            return err_msg_set(em, rc, "cannot open '%s': %s", paths[i], err_str(rc));
        }
    }
    return pool_import_backends(devs, n, opts, out, em);
}
