/* SPDX-License-Identifier: MIT */
/*
 * pool: creating, exporting, closing and growing pools; statistics and the error log.
 * Import (choosing an uberblock, loading the MOS) is pool_import.c; commits are pool_sync.c.
 *
 * Pool states:
 *     pool_create / pool_import ──► ACTIVE ──pool_export──► EXPORTED (labels say so) ──► closed
 *                                     │  └──commit fails──► SUSPENDED (tx_assign: -EIO)
 *                                     └──pool_close──► closed (like a crash after the last commit)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "core/blkbuf.h"
#include "core/dsl_impl.h"
#include "core/pool_impl.h"
#include "core/taskq.h"
#include "core/vdev_backend.h"

uint64_t
pool_random_guid(void)
{
    uint64_t g = 0;
    while (g == 0) {
        if (getrandom(&g, sizeof(g), 0) != (ssize_t)sizeof(g))
            g = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
    }
    return g;
}

static uint64_t
default_dirty_max(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    uint64_t ram = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : GiB(1);
    uint64_t m = ram / 10;
    if (m > GiB(4))
        m = GiB(4);
    return m;
}

struct pool *
pool_alloc(const struct pool_opts *opts)
{
    struct pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    if (opts != NULL)
        p->opts = *opts;
    if (p->opts.ashift == 0)
        p->opts.ashift = 12;
    if (p->opts.dirty_max_bytes == 0)
        p->opts.dirty_max_bytes = default_dirty_max();
    if (p->opts.dirty_max_bytes < MiB(16))
        p->opts.dirty_max_bytes = MiB(16);
    if (p->opts.txg_timeout_ms == 0)
        p->opts.txg_timeout_ms = 5000;
    if (p->opts.arc_max_bytes == 0) {
        /* An eighth of the memory, 256 MiB .. 8 GiB: the cache that serves reads (and recent
         * writes) without a device read or a copy. */
        long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        uint64_t ram = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
        uint64_t want = ram / 8;
        if (want < MiB(256))
            want = MiB(256);
        if (want > (8ull << 30))
            want = 8ull << 30;
        p->opts.arc_max_bytes = (size_t)want;
    }
    if (p->opts.journal_checkpoint_bytes == 0)
        p->opts.journal_checkpoint_bytes = MiB(8);
    p->alloc = alloc_new();
    p->arc = arc_new(p->opts.arc_max_bytes);
    p->taskq = taskq_new(0, "zio-cpu");
    p->io_taskq = taskq_new(SYNC_IO_THREADS, "zio-io");
    pthread_rwlock_init(&p->tree_lock, NULL);
    pthread_mutex_init(&p->scan_lock, NULL);
    pthread_mutex_init(&p->err_lock, NULL);
    if (p->alloc == NULL || p->arc == NULL || p->taskq == NULL || p->io_taskq == NULL) {
        pool_free_all(p);
        return NULL;
    }
    p->blkbuf_spare = p->opts.dirty_max_bytes * TXG_DELAY_MIN_PCT / 100;
    blkbuf_spare_hold(p->blkbuf_spare);
    return p;
}

void
pool_free_all(struct pool *p)
{
    if (p == NULL)
        return;
    dsl_unload(p);
    objset_close(p->mos);
    for (uint32_t i = 0; i < p->nvdevs; i++)
        vdev_free(p->vdevs[i]);
    for (size_t i = 0; i < p->nretired; i++)
        vdev_free(p->retired[i]);
    free(p->retired);
    taskq_free(p->taskq);
    taskq_free(p->io_taskq);
    alloc_free(p->alloc);
    arc_free(p->arc);
    blkbuf_spare_release(p->blkbuf_spare);
    blkbuf_trim(0); /* the cache's memory, now free, goes back to the kernel */
    pthread_rwlock_destroy(&p->tree_lock);
    pthread_mutex_destroy(&p->scan_lock);
    pthread_mutex_destroy(&p->err_lock);
    free(p);
}

int
pool_alloc_register(struct pool *p, const struct vdev *top)
{
    int rc = alloc_vdev_add(p->alloc, top->id, top->asize, top->ashift, top->ms_shift);
    if (rc == 0 && top->type == VDEV_TYPE_RAIDZ)
        rc = alloc_vdev_set_raidz(p->alloc, top->id, top->nchildren, top->nparity);
    return rc;
}

int
pool_top_attach(struct pool *p, struct vdev *top)
{
    if (top->id != p->nvdevs || top->id >= POOL_MAX_TOP_VDEVS || top->asize == 0)
        return ERR(-EINVAL);
    if (top->ms_shift == 0)
        top->ms_shift = alloc_pick_ms_shift(top->asize);
    int rc = pool_alloc_register(p, top);
    if (rc != 0)
        return rc;
    p->vdevs[top->id] = top;
    p->nvdevs++;
    return 0;
}

/*
 * The groups of a layout in zpool's words: "mirror", "raidz"/"raidz1", "raidz2" and "raidz3" start
 * a group of the devices that follow; a device outside any group is a top-level of its own.
 */
struct layout_group {
    uint8_t type, nparity;
    uint32_t first, ndevs; /* device indices */
};

static bool
layout_keyword(const char *w, uint8_t *type, uint8_t *nparity)
{
    static const struct {
        const char *word;
        uint8_t type, nparity;
    } kw[] = { { "mirror", VDEV_TYPE_MIRROR, 0 },
               { "raidz", VDEV_TYPE_RAIDZ, 1 },
               { "raidz1", VDEV_TYPE_RAIDZ, 1 },
               { "raidz2", VDEV_TYPE_RAIDZ, 2 },
               { "raidz3", VDEV_TYPE_RAIDZ, 3 } };
    for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++) {
        if (strcmp(w, kw[i].word) == 0) {
            *type = kw[i].type;
            *nparity = kw[i].nparity;
            return true;
        }
    }
    return false;
}

bool
pool_layout_is_keyword(const char *word)
{
    uint8_t t, np;
    return layout_keyword(word, &t, &np);
}

static int
layout_parse(const char *const *words, size_t nwords, struct layout_group *g, uint32_t *ngroups,
             size_t *ndevs, struct err_msg *em)
{
    uint32_t n = 0;
    size_t dev = 0;
    for (size_t i = 0; i < nwords; i++) {
        uint8_t type, nparity;
        if (n == POOL_MAX_TOP_VDEVS - 1)
            return err_msg_set(em, -EINVAL, "a pool has at most %d top-level vdevs",
                               POOL_MAX_TOP_VDEVS - 1);
        if (layout_keyword(words[i], &type, &nparity)) {
            g[n] = (struct layout_group){ type, nparity, (uint32_t)dev, 0 };
            while (i + 1 < nwords && !pool_layout_is_keyword(words[i + 1])) {
                g[n].ndevs++;
                dev++;
                i++;
            }
            uint32_t need = type == VDEV_TYPE_MIRROR ? 2 : nparity + 1u;
            if (g[n].ndevs < need || g[n].ndevs > VDEV_MAX_CHILDREN)
                return err_msg_set(em, -EINVAL, "%s needs %u to %d devices, got %u",
                                   words[i - g[n].ndevs], need, VDEV_MAX_CHILDREN, g[n].ndevs);
        } else {
            g[n] = (struct layout_group){ VDEV_TYPE_LEAF, 0, (uint32_t)dev++, 1 };
        }
        n++;
    }
    if (n == 0)
        return err_msg_set(em, -EINVAL, "a pool needs at least one device");
    *ngroups = n;
    *ndevs = dev;
    return 0;
}

/* Builds top-level `id` of group g over devs (taken, also on failure). */
static int
build_top(struct pool *p, const struct layout_group *g, struct vdev_backend **devs, uint32_t id,
          struct err_msg *em)
{
    struct vdev *leaves[VDEV_MAX_CHILDREN] = { 0 }, *top = NULL;
    int rc = 0;
    for (uint32_t i = 0; i < g->ndevs; i++) {
        leaves[i] = vdev_new_leaf(pool_random_guid(), devs[g->first + i], NULL);
        devs[g->first + i] = NULL;
        if (leaves[i] == NULL)
            rc = -ENOMEM;
    }
    if (rc == 0 && g->type == VDEV_TYPE_LEAF)
        top = leaves[0];
    else if (rc == 0)
        rc = vdev_new_interior(g->type, g->nparity, pool_random_guid(), leaves, g->ndevs, &top);
    if (rc != 0) {
        for (uint32_t i = 0; i < g->ndevs; i++)
            vdev_free(leaves[i]);
        return err_msg_set(em, rc, "cannot build vdev %u: %s", id, err_str(rc));
    }
    vdev_make_top(top, id, p->opts.ashift);
    rc = pool_top_attach(p, top);
    if (rc != 0) {
        vdev_free(top);
        return err_msg_set(em, rc, "cannot add vdev %u: %s", id, err_str(rc));
    }
    return 0;
}

static int
open_paths(const char *const *paths, size_t n, const struct vdev_file_opts *fo,
           struct vdev_backend **devs, struct err_msg *em)
{
    for (size_t i = 0; i < n; i++) {
        int rc = vdev_file_open(paths[i], fo, &devs[i]);
        if (rc != 0) {
            for (size_t j = 0; j < i; j++)
                vdev_backend_close(devs[j]);
            return err_msg_set(em, rc, "cannot open '%s': %s", paths[i], err_str(rc));
        }
    }
    return 0;
}

int
pool_create_layout(const char *name, const char *const *words, size_t nwords,
                   struct vdev_backend **devs, size_t ndevs, const struct pool_opts *opts,
                   struct pool **out, struct err_msg *em)
{
    int rc;
    struct pool *p = NULL;
    struct layout_group *groups = calloc(POOL_MAX_TOP_VDEVS, sizeof(*groups));
    uint32_t ngroups = 0;
    size_t nlayout = 0;
    if (groups == NULL) {
        rc = -ENOMEM;
        goto fail_devs;
    }
    if (name == NULL || name[0] == '\0' || strlen(name) > POOL_NAME_MAX || strchr(name, '/') ||
        strchr(name, '@')) {
        rc = err_msg_set(em, -EINVAL, "invalid pool name '%s'", name ? name : "");
        goto fail_devs;
    }
    rc = layout_parse(words, nwords, groups, &ngroups, &nlayout, em);
    if (rc != 0)
        goto fail_devs;
    if (nlayout != ndevs) {
        rc = err_msg_set(em, -EINVAL, "the layout names %zu devices, %zu given", nlayout, ndevs);
        goto fail_devs;
    }
    struct pool_config *cfg = malloc(sizeof(*cfg));
    if (cfg == NULL) {
        rc = -ENOMEM;
        goto fail_devs;
    }
    for (size_t i = 0; i < ndevs; i++) {
        unsigned valid = 0;
        if (devs[i]->size < VDEV_MIN_SIZE) {
            free(cfg);
            rc = err_msg_set(em, -EINVAL, "device '%s' is smaller than %llu MiB", devs[i]->path,
                             (unsigned long long)(VDEV_MIN_SIZE >> 20));
            goto fail_devs;
        }
        if (label_read_config(devs[i], cfg, &valid) == 0 && cfg->state != POOL_STATE_DESTROYED) {
            rc = err_msg_set(em, -EEXIST, "device '%s' is part of pool '%s'", devs[i]->path,
                             cfg->name);
            free(cfg);
            goto fail_devs;
        }
    }
    free(cfg);
    p = pool_alloc(opts);
    if (p == NULL) {
        rc = -ENOMEM;
        goto fail_devs;
    }
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->guid = pool_random_guid();
    p->create_time = (uint64_t)time(NULL);
    for (size_t i = 0; i < ndevs; i++)
        label_clear(devs[i]);
    for (uint32_t g = 0; g < ngroups; g++) {
        rc = build_top(p, &groups[g], devs, g, em);
        if (rc != 0) {
            for (size_t j = 0; j < ndevs; j++)
                vdev_backend_close(devs[j]);
            goto fail;
        }
    }

    /* Build the initial MOS and root dataset in txg 1, then commit it synchronously. */
    const uint64_t txg = 1;
    txg_init(p, txg + 1);
    p->create_txg = txg;
    p->config_dirty = true;
    struct obj_create_opts dir = { .type = OT_POOL_DIRECTORY, .blocksize = POOL_DIR_SIZE };
    struct obj_create_opts jo = { .type = OT_SPACE_JOURNAL,
                                  .blocksize = 16 * 1024,
                                  .compress = COMPRESS_OFF };
    uint64_t dir_obj = 0;
    rc = objset_create_new(p, OBJSET_TYPE_MOS, 0, &p->mos);
    if (rc == 0)
        rc = objset_obj_create_synctx(p->mos, txg, &dir, &dir_obj);
    if (rc == 0 && dir_obj != POOL_DIR_OBJ)
        rc = -EINVAL;
    if (rc == 0)
        rc = objset_obj_create_synctx(p->mos, txg, &jo, &p->journal_obj);
    if (rc == 0)
        rc = dsl_create_root(p, txg); /* the root dataset, named like the pool */
    if (rc == 0) {
        uint8_t buf[POOL_DIR_SIZE];
        pool_dir_encode(p, buf);
        rc = obj_write_synctx(p->mos, txg, POOL_DIR_OBJ, 0, POOL_DIR_SIZE, buf);
    }
    if (rc == 0)
        rc = pool_sync_txg(p, txg);
    if (rc != 0) {
        err_msg_set(em, rc, "cannot create pool '%s': %s", name, err_str(rc));
        goto fail;
    }
    p->synced_txg = txg;
    p->dirty_total = 0;
    p->dirty_bytes[txg & 1] = 0;
    rc = txg_start_sync_thread(p);
    if (rc != 0)
        goto fail;
    log_info("created pool '%s' on %zu device(s) in %u top-level vdev(s)", name, ndevs, ngroups);
    free(groups);
    *out = p;
    return 0;
fail_devs:
    for (size_t i = 0; i < ndevs; i++)
        vdev_backend_close(devs[i]);
    free(groups);
    return rc;
fail:
    free(groups);
    pool_free_all(p);
    return rc;
}

int
pool_create_backends(const char *name, struct vdev_backend **devs, size_t n,
                     const struct pool_opts *opts, struct pool **out, struct err_msg *em)
{
    const char *words[POOL_MAX_TOP_VDEVS];
    if (n == 0 || n >= POOL_MAX_TOP_VDEVS) {
        for (size_t i = 0; i < n; i++)
            vdev_backend_close(devs[i]);
        return err_msg_set(em, -EINVAL, "a pool needs 1 to %d devices", POOL_MAX_TOP_VDEVS - 1);
    }
    for (size_t i = 0; i < n; i++)
        words[i] = devs[i]->path;
    return pool_create_layout(name, words, n, devs, n, opts, out, em);
}

int
pool_create(const char *name, const char *const *words, size_t nwords, const struct pool_opts *opts,
            struct pool **out, struct err_msg *em)
{
    if (nwords == 0 || nwords > POOL_MAX_LAYOUT_WORDS)
        return err_msg_set(em, -EINVAL, "a pool layout has 1 to %d words", POOL_MAX_LAYOUT_WORDS);
    struct vdev_backend *devs[POOL_MAX_LAYOUT_WORDS];
    struct vdev_file_opts fo = {
        .create = opts && opts->create_files,
        .create_size = opts ? opts->create_size : 0,
        .direct = opts ? opts->direct_io : VDEV_DIRECT_OFF,
    };
    size_t ndevs = 0;
    for (size_t i = 0; i < nwords; i++) {
        if (pool_layout_is_keyword(words[i]))
            continue;
        int rc = vdev_file_open(words[i], &fo, &devs[ndevs]);
        if (rc != 0) {
            for (size_t j = 0; j < ndevs; j++)
                vdev_backend_close(devs[j]);
            return err_msg_set(em, rc, "cannot open '%s': %s", words[i], err_str(rc));
        }
        ndevs++;
    }
    return pool_create_layout(name, words, nwords, devs, ndevs, opts, out, em);
}

void
pool_close(struct pool *p)
{
    if (p == NULL)
        return;
    txg_stop_sync_thread(p);
    pool_free_all(p);
}

int
pool_export(struct pool *p)
{
    int rc = p->readonly ? 0 : pool_sync(p, NULL);
    txg_stop_sync_thread(p);
    if (rc == 0 && !p->readonly) {
        pthread_mutex_lock(&p->sync_lock);
        rc = pool_write_config(p, p->synced_txg, POOL_STATE_EXPORTED, 0xf);
        if (rc == 0)
            rc = vdev_flush_all(p);
        pthread_mutex_unlock(&p->sync_lock);
    }
    if (rc == 0)
        log_info("exported pool '%s'", p->name);
    pool_free_all(p);
    return rc;
}

int
pool_add_backend(struct pool *p, struct vdev_backend *dev, struct err_msg *em)
{
    if (p->readonly) {
        vdev_backend_close(dev);
        return err_msg_set(em, -EROFS, "pool '%s' is imported read-only", p->name);
    }
    if (dev->size < VDEV_MIN_SIZE) {
        vdev_backend_close(dev);
        return err_msg_set(em, -EINVAL, "device '%s' is too small", dev->path);
    }
    pthread_mutex_lock(&p->sync_lock);
    int rc = 0;
    if (p->nvdevs + 1 >= POOL_MAX_TOP_VDEVS) {
        rc = err_msg_set(em, -ENOSPC, "pool '%s' has the maximum number of vdevs", p->name);
        vdev_backend_close(dev);
    } else {
        label_clear(dev);
        struct vdev *top = vdev_new_leaf(pool_random_guid(), dev, NULL);
        if (top == NULL) {
            rc = -ENOMEM;
        } else {
            vdev_make_top(top, p->nvdevs, p->vdevs[0]->ashift);
            rc = pool_top_attach(p, top);
            if (rc != 0)
                vdev_free(top);
            else
                p->config_dirty = true;
        }
    }
    pthread_mutex_unlock(&p->sync_lock);
    if (rc == 0)
        rc = pool_sync(p, NULL);
    if (rc == 0)
        log_info("added device '%s' to pool '%s'", p->vdevs[p->nvdevs - 1]->path, p->name);
    return rc;
}

int
pool_add_vdev(struct pool *p, const char *path, struct err_msg *em)
{
    struct vdev_backend *dev;
    struct vdev_file_opts fo = { .create = p->opts.create_files,
                                 .create_size = p->opts.create_size,
                                 .direct = p->opts.direct_io };
    int rc = open_paths(&path, 1, &fo, &dev, em);
    if (rc != 0)
        return rc;
    return pool_add_backend(p, dev, em);
}

uint64_t
pool_worst_alloc_size(struct pool *p, uint64_t dsize)
{
    uint64_t worst = 0;
    for (uint32_t i = 0; i < p->nvdevs; i++) {
        uint64_t a = vdev_alloc_size(p->vdevs[i], dsize);
        if (a > worst)
            worst = a;
    }
    return worst;
}

int
pool_add(struct pool *p, const char *const *words, size_t nwords, struct err_msg *em)
{
    if (p->readonly)
        return err_msg_set(em, -EROFS, "pool '%s' is imported read-only", p->name);
    if (nwords == 0 || nwords > POOL_MAX_LAYOUT_WORDS)
        return err_msg_set(em, -EINVAL, "a layout has 1 to %d words", POOL_MAX_LAYOUT_WORDS);
    struct layout_group *groups = calloc(POOL_MAX_TOP_VDEVS, sizeof(*groups));
    struct vdev_backend **devs = calloc(nwords, sizeof(*devs));
    uint32_t ngroups = 0;
    size_t ndevs = 0, opened = 0;
    int rc = groups == NULL || devs == NULL ? -ENOMEM : 0;
    if (rc == 0)
        rc = layout_parse(words, nwords, groups, &ngroups, &ndevs, em);
    struct vdev_file_opts fo = { .create = p->opts.create_files,
                                 .create_size = p->opts.create_size,
                                 .direct = p->opts.direct_io };
    for (size_t i = 0; i < nwords && rc == 0; i++) {
        if (pool_layout_is_keyword(words[i]))
            continue;
        rc = vdev_file_open(words[i], &fo, &devs[opened]);
        if (rc != 0) {
            err_msg_set(em, rc, "cannot open '%s': %s", words[i], err_str(rc));
            break;
        }
        if (devs[opened++]->size < VDEV_MIN_SIZE)
            rc = err_msg_set(em, -EINVAL, "device '%s' is too small", words[i]);
    }
    if (rc == 0) {
        pthread_mutex_lock(&p->sync_lock);
        if (p->nvdevs + ngroups >= POOL_MAX_TOP_VDEVS)
            rc = err_msg_set(em, -ENOSPC, "pool '%s' would exceed %d vdevs", p->name,
                             POOL_MAX_TOP_VDEVS - 1);
        for (size_t i = 0; i < opened && rc == 0; i++)
            label_clear(devs[i]);
        /* build_top takes the devices it uses (NULLs them), also on failure. */
        uint32_t built = 0;
        for (; built < ngroups && rc == 0; built++)
            rc = build_top(p, &groups[built], devs, p->nvdevs, em);
        if (built > 0)
            p->config_dirty = true;
        pthread_mutex_unlock(&p->sync_lock);
        int src = built > 0 ? pool_sync(p, NULL) : 0;
        if (rc == 0)
            rc = src;
        if (rc == 0)
            log_info("added %u vdev(s) to pool '%s'", ngroups, p->name);
    }
    for (size_t i = 0; i < opened; i++)
        vdev_backend_close(devs[i]); /* those not taken */
    free(devs);
    free(groups);
    return rc;
}

static void
add_repaired(struct vdev *leaf, void *arg)
{
    *(uint64_t *)arg += __atomic_load_n(&leaf->repaired_bytes, __ATOMIC_RELAXED);
}

uint64_t
pool_repaired_bytes(struct pool *p)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < p->nvdevs; i++)
        vdev_walk_leaves(p->vdevs[i], add_repaired, &sum);
    return sum;
}

static void
add_leaf_errors(struct vdev *leaf, void *arg)
{
    struct pool_stats *out = arg;
    out->cksum_errors += __atomic_load_n(&leaf->cksum_errors, __ATOMIC_RELAXED);
    out->read_errors += __atomic_load_n(&leaf->read_errors, __ATOMIC_RELAXED);
    out->write_errors += __atomic_load_n(&leaf->write_errors, __ATOMIC_RELAXED);
}

void
pool_get_stats(struct pool *p, struct pool_stats *out)
{
    memset(out, 0, sizeof(*out));
    struct alloc_stats as;
    alloc_get_stats(p->alloc, &as);
    out->guid = p->guid;
    out->size = as.size;
    out->allocated = as.allocated;
    out->free = as.free;
    out->deferred = as.deferred;
    out->slop = as.slop;
    out->fragmentation = as.fragmentation;
    struct arc_stats ast;
    arc_get_stats(p->arc, &ast);
    out->arc_hits = ast.hits;
    out->arc_misses = ast.misses;
    out->arc_size = ast.size;
    out->arc_max = ast.max;
    pthread_mutex_lock(&p->txg_lock);
    out->open_txg = p->open_txg;
    out->synced_txg = p->synced_txg;
    out->dirty_bytes = p->dirty_total;
    out->dirty_max_bytes = p->opts.dirty_max_bytes;
    out->suspended = p->suspended != 0;
    pthread_mutex_unlock(&p->txg_lock);
    out->health = VDEV_ONLINE;
    for (uint32_t i = 0; i < p->nvdevs; i++) {
        vdev_walk_leaves(p->vdevs[i], add_leaf_errors, out);
        if (p->vdevs[i]->type != VDEV_TYPE_LEAF) /* blocks lost despite redundancy */
            out->cksum_errors += __atomic_load_n(&p->vdevs[i]->cksum_errors, __ATOMIC_RELAXED);
        enum vdev_health h = vdev_health(p->vdevs[i]);
        if (h != VDEV_ONLINE && out->health != VDEV_UNAVAIL)
            out->health = h == VDEV_DEGRADED ? VDEV_DEGRADED : VDEV_UNAVAIL;
    }
    out->nvdevs = p->nvdevs;
    out->readonly = p->readonly;
}

static void
fill_vdev_stats(const struct vdev *vd, struct pool_vdev_stats *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->path, sizeof(out->path), "%s", vd->path);
    if (vd->type == VDEV_TYPE_RAIDZ)
        snprintf(out->path, sizeof(out->path), "raidz%u-%u", vd->nparity, vd->id);
    else if (vd->type == VDEV_TYPE_MIRROR)
        snprintf(out->path, sizeof(out->path), "mirror-%u", vd->id);
    out->type = vd->type;
    out->nparity = vd->nparity;
    out->nchildren = vd->nchildren;
    out->health = vdev_health(vd);
    out->guid = vd->guid;
    out->size = vd->asize;
    out->read_errors = __atomic_load_n(&vd->read_errors, __ATOMIC_RELAXED);
    out->write_errors = __atomic_load_n(&vd->write_errors, __ATOMIC_RELAXED);
    out->cksum_errors = __atomic_load_n(&vd->cksum_errors, __ATOMIC_RELAXED);
    out->repaired_bytes = __atomic_load_n(&vd->repaired_bytes, __ATOMIC_RELAXED);
}

int
pool_get_vdev(struct pool *p, uint32_t i, struct pool_vdev_stats *out)
{
    if (i >= p->nvdevs)
        return -ENOENT;
    const struct vdev *vd = p->vdevs[i];
    fill_vdev_stats(vd, out);
    out->allocated = alloc_vdev_allocated(p->alloc, vd->id);
    return 0;
}

int
pool_get_vdev_child(struct pool *p, uint32_t i, uint32_t c, struct pool_vdev_stats *out)
{
    if (i >= p->nvdevs || c >= p->vdevs[i]->nchildren)
        return -ENOENT;
    fill_vdev_stats(p->vdevs[i]->child[c], out);
    return 0;
}

uint64_t
pool_get_errors(struct pool *p, pool_error_fn fn, void *arg)
{
    struct pool_error_info list[POOL_ERRLOG_MAX];
    pthread_mutex_lock(&p->err_lock);
    unsigned n = p->nerrors;
    uint64_t total = p->errors_total;
    for (unsigned i = 0; i < n; i++) {
        const struct pool_error *e = &p->errlog[(total - 1 - i) % POOL_ERRLOG_MAX];
        list[i] = (struct pool_error_info){ e->ds_obj, e->obj, e->blkid, e->level, e->err };
    }
    pthread_mutex_unlock(&p->err_lock);
    for (unsigned i = 0; fn != NULL && i < n; i++)
        fn(arg, &list[i]);
    return total;
}

const char *
pool_name(const struct pool *p)
{
    return p->name;
}

uint64_t
pool_guid(const struct pool *p)
{
    return p->guid;
}

struct objset *
pool_root_objset(struct pool *p)
{
    return p->root_os;
}

void
pool_record_error(struct pool *p, uint64_t ds_obj, uint64_t obj, int level, uint64_t blkid,
                  const struct blkptr *bp, int err)
{
    if (err == -EWOULDBLOCK)
        return; /* not an error: a reader asked not to wait for a device */
    pthread_mutex_lock(&p->err_lock);
    struct pool_error *e = &p->errlog[p->errors_total % POOL_ERRLOG_MAX];
    *e = (struct pool_error){
        .ds_obj = ds_obj, .obj = obj, .blkid = blkid, .level = level, .err = err, .bp = *bp
    };
    p->errors_total++;
    if (p->nerrors < POOL_ERRLOG_MAX)
        p->nerrors++;
    pthread_mutex_unlock(&p->err_lock);
    char desc[160];
    log_warn("pool '%s': %s in dataset %llu object %llu level %d block %llu (%s)", p->name,
             err_str(err), (unsigned long long)ds_obj, (unsigned long long)obj, level,
             (unsigned long long)blkid, bp_describe(bp, desc, sizeof(desc)));
}
