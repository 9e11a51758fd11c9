/* SPDX-License-Identifier: MIT */
/*
 * pool_import: finding a pool on its devices and loading the newest state that verifies.
 *
 * 1. Read the config record of every device; the copy with the highest config txg describes the
 *    pool and its vdev tree. Leaves are matched to devices by guid; a missing leaf is allowed
 *    where redundancy covers it (a mirror keeps one child, a raidz all but nparity), and the
 *    pool then runs DEGRADED.
 * 2. Collect every uberblock that verifies (checksum trailer, pool guid) from every label of
 *    every present leaf, newest first. A leaf whose newest uberblock is older than the chosen
 *    one missed the txgs in between (its missed window, for resilver).
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
    for (uint32_t i = 0; i < p->nvdevs && p->alloc != NULL; i++)
        pool_alloc_register(p, p->vdevs[i]);
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
struct forget {
    const struct uberblock *ubs;
    size_t nub;
    uint64_t chosen;
    int rc;
};

static void
forget_on_leaf(struct vdev *leaf, void *arg)
{
    static const uint8_t zero[UB_SLOT_SIZE];
    struct forget *f = arg;
    if (!vdev_leaf_usable(leaf) || f->rc != 0)
        return;
    for (size_t i = 0; i < f->nub; i++) {
        if (f->ubs[i].txg <= f->chosen)
            continue;
        for (int l = 0; l < LABEL_COUNT; l++) {
            uint64_t off = label_offset(leaf->dev->size, l) + LABEL_RING_OFF +
                           (f->ubs[i].txg % UB_SLOTS) * UB_SLOT_SIZE;
            int rc = vdev_backend_write(leaf->dev, off, zero, sizeof(zero));
            if (rc != 0) {
                f->rc = rc;
                return;
            }
        }
    }
}

/*
 * After a rewind, the uberblocks newer than the chosen one describe trees whose space the
 * allocator (loaded from the older state) will hand out again. Zero their ring slots and flush
 * before any write, so a crash before the first new commit cannot bring them back.
 */
static int
forget_newer_uberblocks(struct pool *p, const struct uberblock *ubs, size_t nub, uint64_t chosen)
{
    struct forget f = { ubs, nub, chosen, 0 };
    for (uint32_t v = 0; v < p->nvdevs && f.rc == 0; v++)
        vdev_walk_leaves(p->vdevs[v], forget_on_leaf, &f);
    return f.rc != 0 ? f.rc : vdev_flush_all(p);
}

static int
cmp_ub_desc(const void *a, const void *b)
{
    const struct uberblock *x = a, *y = b;
    return x->txg > y->txg ? -1 : x->txg < y->txg;
}

/*
 * The device at the config's path hint, if it carries leaf `guid` of this pool: a device that
 * joined by replace or attach after the caller's list of paths was written still imports.
 */
static struct vdev_backend *
open_by_hint(const struct pool *p, const struct config_vdev *e)
{
    if (e->path[0] != '/')
        return NULL;
    struct vdev_file_opts fo = { .readonly = p->readonly, .direct = p->opts.direct_io };
    struct vdev_backend *dev = NULL;
    if (vdev_file_open(e->path, &fo, &dev) != 0)
        return NULL;
    struct pool_config *cfg = malloc(sizeof(*cfg));
    unsigned valid = 0;
    bool ours = cfg != NULL && label_read_config(dev, cfg, &valid) == 0 &&
                cfg->pool_guid == p->guid && cfg->leaf_guid == e->guid;
    free(cfg);
    if (!ours) {
        vdev_backend_close(dev);
        return NULL;
    }
    log_info("pool '%s': found device %llu at '%s' (its path in the labels)", p->name,
             (unsigned long long)e->guid, e->path);
    return dev;
}

/* A leaf for config entry e, with its device if one of devs[] carries that guid (taken). */
static struct vdev *
import_leaf(const struct pool *p, const struct config_vdev *e, struct vdev_backend **devs,
            const uint64_t *dev_guid, size_t n)
{
    struct vdev_backend *dev = NULL;
    for (size_t d = 0; d < n && dev == NULL; d++) {
        if (devs[d] != NULL && dev_guid[d] == e->guid) {
            dev = devs[d];
            devs[d] = NULL;
        }
    }
    if (dev == NULL)
        dev = open_by_hint(p, e);
    struct vdev *leaf = vdev_new_leaf(e->guid, dev, dev != NULL ? NULL : e->path);
    if (leaf == NULL)
        return NULL;
    if (dev == NULL)
        leaf->asize = e->asize;
    if (e->state == VDEV_STATE_OFFLINE)
        leaf->health = VDEV_OFFLINE;
    leaf->missed_since_cfg = e->missed_since;
    return leaf;
}

static int
missing_error(struct pool *p, const struct vdev *top, struct err_msg *em)
{
    char list[512] = "";
    size_t at = 0;
    for (uint32_t c = 0; c < top->nchildren; c++) {
        const struct vdev *leaf = top->type == VDEV_TYPE_LEAF ? top : top->child[c];
        if (leaf->dev == NULL && at < sizeof(list))
            at += (size_t)snprintf(list + at, sizeof(list) - at, "%s'%s'", at ? ", " : "",
                                   leaf->path);
    }
    if (top->type == VDEV_TYPE_LEAF)
        snprintf(list, sizeof(list), "'%s'", top->path);
    return err_msg_set(em, -EDEGRADED, "pool '%s' cannot be imported: vdev %u is missing %s",
                       p->name, top->id, list);
}

/*
 * Builds the top-level vdevs the config describes over the devices found (step 1). A stripe
 * member must be present; a mirror needs one child, a raidz all but nparity children.
 */
static int
import_tree(struct pool *p, const struct pool_config *cfg, struct vdev_backend **devs,
            const uint64_t *dev_guid, size_t n, struct err_msg *em)
{
    uint32_t ntop = 0;
    for (uint32_t v = 1; v < cfg->nvdevs; v++) {
        const struct config_vdev *e = &cfg->vdevs[v];
        if (e->parent != 0)
            continue;
        if (e->id != ntop || ntop >= POOL_MAX_TOP_VDEVS - 1)
            return err_msg_set(em, -ECORRUPT, "pool '%s': top-level vdev ids are not dense",
                               p->name);
        struct vdev *top = NULL;
        int rc = 0;
        if (e->type == VDEV_TYPE_LEAF) {
            if (e->nchildren != 0)
                return err_msg_set(em, -ECORRUPT, "pool '%s': a leaf with children", p->name);
            top = import_leaf(p, e, devs, dev_guid, n);
            if (top == NULL)
                return -ENOMEM;
        } else if (e->type == VDEV_TYPE_MIRROR || e->type == VDEV_TYPE_RAIDZ) {
            struct vdev *leaves[VDEV_MAX_CHILDREN];
            uint32_t nl = 0;
            for (uint32_t c = v + 1; c < cfg->nvdevs && rc == 0; c++) {
                const struct config_vdev *ce = &cfg->vdevs[c];
                if (ce->parent != v)
                    continue;
                if (ce->type != VDEV_TYPE_LEAF || ce->id != nl || nl == VDEV_MAX_CHILDREN) {
                    rc = ERR(-ECORRUPT);
                    break;
                }
                leaves[nl] = import_leaf(p, ce, devs, dev_guid, n);
                if (leaves[nl] == NULL)
                    rc = -ENOMEM;
                else
                    nl++;
            }
            if (rc == 0)
                rc = vdev_new_interior(e->type, e->nparity, e->guid, leaves, nl, &top);
            if (rc != 0) {
                for (uint32_t c = 0; c < nl; c++)
                    vdev_free(leaves[c]);
                return err_msg_set(em, rc == -ENOMEM ? rc : -ECORRUPT,
                                   "pool '%s': vdev %u is malformed in the config", p->name, ntop);
            }
        } else {
            return err_msg_set(em, -EVERSION, "pool '%s' uses a vdev type (%u) this build lacks",
                               p->name, e->type);
        }
        top->id = ntop;
        top->ashift = e->ashift;
        top->asize = e->asize;
        top->ms_shift = e->ms_shift;
        for (uint32_t c = 0; c < top->nchildren; c++) {
            top->child[c]->top = top;
            top->child[c]->ashift = e->ashift;
        }
        if (top->type == VDEV_TYPE_LEAF ? top->dev == NULL : vdev_health(top) == VDEV_UNAVAIL) {
            rc = missing_error(p, top, em);
            vdev_free(top);
            return rc;
        }
        /* Each present device must still hold its share of the address space. */
        uint64_t share = top->type == VDEV_TYPE_RAIDZ ? top->asize / top->nchildren : top->asize;
        for (uint32_t c = 0; c < (top->nchildren ? top->nchildren : 1); c++) {
            const struct vdev *leaf = top->nchildren ? top->child[c] : top;
            if (leaf->dev != NULL && label_data_size(leaf->dev->size) < share) {
                rc = err_msg_set(em, -ECORRUPT, "device '%s' is smaller than its label says",
                                 leaf->path);
                vdev_free(top);
                return rc;
            }
        }
        rc = pool_top_attach(p, top);
        if (rc != 0) {
            vdev_free(top);
            return err_msg_set(em, rc, "pool '%s': vdev %u: %s", p->name, ntop, err_str(rc));
        }
        if (vdev_health(top) != VDEV_ONLINE)
            log_warn("pool '%s': vdev %u (%s) is %s", p->name, ntop, top->path,
                     vdev_health_name(vdev_health(top)));
        ntop++;
    }
    if (ntop == 0)
        return err_msg_set(em, -ECORRUPT, "pool '%s' has no top-level vdevs", p->name);
    return 0;
}

static void
count_leaf(struct vdev *leaf, void *arg)
{
    (void)leaf;
    (*(size_t *)arg)++;
}

struct ub_collect {
    struct uberblock *ubs;
    size_t nub;
    int rc;
    struct vdev *failed_leaf;
};

static void
collect_leaf_uberblocks(struct vdev *leaf, void *arg)
{
    struct ub_collect *uc = arg;
    if (!vdev_leaf_usable(leaf) || uc->rc != 0)
        return;
    size_t got = 0;
    int rc = label_read_uberblocks(leaf->dev, uc->ubs + uc->nub, MAX_UBERBLOCKS, &got);
    if (rc != 0) {
        uc->rc = rc;
        uc->failed_leaf = leaf;
        return;
    }
    /* A leaf whose newest commit is older than the pool's may have missed the txgs in between
     * (it was away) — or only the end of a commit torn by a crash (uberblocks are written after
     * all data): a suspicion for resilver, not a reason to avoid it (settle_missed). */
    uint64_t newest = 0;
    for (size_t i = 0; i < got; i++)
        if (uc->ubs[uc->nub + i].txg > newest)
            newest = uc->ubs[uc->nub + i].txg;
    leaf->suspect_txg_min = newest + 1; /* provisional: trimmed to the chosen txg below */
    uc->nub += got;
}

/*
 * A leaf's windows after import, both ending at the chosen txg:
 *   - missed (reads avoid the leaf for blocks born in it): what the config records (offline,
 *     replaced), or everything for a missing leaf;
 *   - suspect (resilver only): since its newest uberblock, when that is older than the pool's.
 *     A torn commit leaves exactly that on leaves whose data is complete, so avoiding them could
 *     lose blocks that are there; reads try them and checksums judge.
 */
static void
settle_missed(struct vdev *leaf, void *arg)
{
    uint64_t chosen = *(const uint64_t *)arg;
    uint64_t lo = leaf->missed_since_cfg <= chosen ? leaf->missed_since_cfg : 0;
    if (leaf->dev == NULL)
        lo = 1;
    leaf->missed_txg_min = lo;
    leaf->missed_txg_max = lo != 0 ? chosen : 0;
    uint64_t s = leaf->suspect_txg_min <= chosen ? leaf->suspect_txg_min : 0;
    leaf->suspect_txg_min = s;
    leaf->suspect_txg_max = s != 0 ? chosen : 0;
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
    uint64_t *dev_guid = calloc(n + 1, sizeof(uint64_t));
    int rc = 0;
    if (cfg == NULL || best == NULL || ubs == NULL || dev_guid == NULL) {
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
        dev_guid[i] = cfg->leaf_guid;
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
    rc = import_tree(p, best, devs, dev_guid, n, em);
    if (rc != 0)
        goto fail;
    /* Step 2 (leaves found by their path hints may outnumber the devices given). */
    size_t nleaves = 0;
    for (uint32_t i = 0; i < p->nvdevs; i++)
        vdev_walk_leaves(p->vdevs[i], count_leaf, &nleaves);
    if (nleaves > n) {
        struct uberblock *more = realloc(ubs, MAX_UBERBLOCKS * nleaves * sizeof(*ubs));
        if (more == NULL) {
            rc = -ENOMEM;
            goto fail;
        }
        ubs = more;
    }
    struct ub_collect uc = { .ubs = ubs };
    for (uint32_t i = 0; i < p->nvdevs && uc.rc == 0; i++)
        vdev_walk_leaves(p->vdevs[i], collect_leaf_uberblocks, &uc);
    if (uc.rc != 0) {
        rc = err_msg_set(em, uc.rc, "cannot read labels of '%s': %s", uc.failed_leaf->path,
                         err_str(uc.rc));
        goto fail;
    }
    size_t nub = uc.nub;
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
    uint64_t chosen_txg = chosen->txg;
    for (uint32_t i = 0; i < p->nvdevs; i++)
        vdev_walk_leaves(p->vdevs[i], settle_missed, &chosen_txg);
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
    free(dev_guid);
    for (size_t i = 0; i < n; i++)
        vdev_backend_close(devs[i]); /* devices not part of the pool */
    *out = p;
    return 0;
fail:
    free(cfg);
    free(best);
    free(ubs);
    free(dev_guid);
    for (size_t i = 0; i < n; i++)
        vdev_backend_close(devs[i]);
    pool_free_all(p);
    return rc;
}

int
pool_import(const char *const *paths, size_t n, const struct pool_import_opts *opts,
            struct pool **out, struct err_msg *em)
{
    if (n == 0 || n > POOL_MAX_LAYOUT_WORDS)
        return err_msg_set(em, -EINVAL, "give 1 to %d devices", POOL_MAX_LAYOUT_WORDS);
    struct vdev_backend *devs[POOL_MAX_LAYOUT_WORDS];
    struct vdev_file_opts fo = { .readonly = opts && opts->readonly,
                                 .direct = opts ? opts->tuning.direct_io : VDEV_DIRECT_OFF };
    size_t ndevs = 0;
    for (size_t i = 0; i < n; i++) {
        if (pool_layout_is_keyword(paths[i]))
            continue; /* a layout as given to pool_create: only the devices matter */
        int rc = vdev_file_open(paths[i], &fo, &devs[ndevs]);
        if (rc == -ENOENT && n > 1) {
            log_warn("device '%s' is missing", paths[i]);
            continue; /* redundancy may cover it: import_tree decides */
        }
        if (rc != 0) {
            for (size_t j = 0; j < ndevs; j++)
                vdev_backend_close(devs[j]);
            return err_msg_set(em, rc, "cannot open '%s': %s", paths[i], err_str(rc));
        }
        ndevs++;
    }
    if (ndevs == 0)
        return err_msg_set(em, -ENOENT, "none of the devices exists");
    return pool_import_backends(devs, ndevs, opts, out, em);
}
