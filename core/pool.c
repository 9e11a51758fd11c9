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
    p->taskq = taskq_new(0);
    pthread_rwlock_init(&p->tree_lock, NULL);
    pthread_mutex_init(&p->err_lock, NULL);
    if (p->alloc == NULL || p->arc == NULL || p->taskq == NULL) {
        pool_free_all(p);
        return NULL;
    }
    return p;
}

void
pool_free_all(struct pool *p)
{
    if (p == NULL)
        return;
    dsl_unload(p);
    objset_close(p->mos);
    for (uint32_t i = 0; i < p->nvdevs; i++) {
        if (p->vdevs[i] != NULL)
            vdev_backend_close(p->vdevs[i]->dev);
        free(p->vdevs[i]);
    }
    taskq_free(p->taskq);
    alloc_free(p->alloc);
    arc_free(p->arc);
    pthread_rwlock_destroy(&p->tree_lock);
    pthread_mutex_destroy(&p->err_lock);
    free(p);
}

int
pool_vdev_attach(struct pool *p, struct vdev_backend *dev, uint64_t guid, uint32_t id,
                 unsigned ashift, uint64_t asize, unsigned ms_shift)
{
    if (id != p->nvdevs || id >= POOL_MAX_TOP_VDEVS)
        return -EINVAL;
    struct vdev *vd = calloc(1, sizeof(*vd));
    if (vd == NULL)
        return -ENOMEM;
    vd->guid = guid;
    vd->id = id;
    vd->type = VDEV_TYPE_LEAF;
    vd->ashift = ashift;
    vd->asize = asize;
    vd->ms_shift = ms_shift;
    vd->dev = dev;
    snprintf(vd->path, sizeof(vd->path), "%s", dev->path);
    int rc = alloc_vdev_add(p->alloc, id, asize, ashift, ms_shift);
    if (rc != 0) {
        free(vd);
        return rc;
    }
    p->vdevs[id] = vd;
    p->nvdevs++;
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

/* Usable allocatable size of a leaf: the data area rounded down to the allocation unit. */
static uint64_t
leaf_asize(const struct vdev_backend *dev, unsigned ashift)
{
    return label_data_size(dev->size) & ~((1ull << ashift) - 1);
}

int
pool_create_backends(const char *name, struct vdev_backend **devs, size_t n,
                     const struct pool_opts *opts, struct pool **out, struct err_msg *em)
{
    int rc;
    struct pool *p = NULL;
    if (name == NULL || name[0] == '\0' || strlen(name) > POOL_NAME_MAX || strchr(name, '/') ||
        strchr(name, '@')) {
        rc = err_msg_set(em, -EINVAL, "invalid pool name '%s'", name ? name : "");
        goto fail_devs;
    }
    if (n == 0 || n >= POOL_MAX_TOP_VDEVS) {
        rc = err_msg_set(em, -EINVAL, "a pool needs 1 to %d devices", POOL_MAX_TOP_VDEVS - 1);
        goto fail_devs;
    }
    struct pool_config *cfg = malloc(sizeof(*cfg));
    if (cfg == NULL) {
        rc = -ENOMEM;
        goto fail_devs;
    }
    for (size_t i = 0; i < n; i++) {
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
    unsigned ashift = p->opts.ashift;
    for (size_t i = 0; i < n; i++) {
        uint64_t asize = leaf_asize(devs[i], ashift);
        rc = pool_vdev_attach(p, devs[i], pool_random_guid(), (uint32_t)i, ashift, asize,
                              alloc_pick_ms_shift(asize));
        if (rc != 0) {
            for (size_t j = i; j < n; j++)
                vdev_backend_close(devs[j]);
            goto fail;
        }
        label_clear(devs[i]);
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
    log_info("created pool '%s' on %zu device(s)", name, n);
    *out = p;
    return 0;
fail_devs:
    for (size_t i = 0; i < n; i++)
        vdev_backend_close(devs[i]);
    return rc;
fail:
    pool_free_all(p);
    return rc;
}

int
pool_create(const char *name, const char *const *paths, size_t n, const struct pool_opts *opts,
            struct pool **out, struct err_msg *em)
{
    if (n == 0 || n >= POOL_MAX_TOP_VDEVS)
        return err_msg_set(em, -EINVAL, "a pool needs 1 to %d devices", POOL_MAX_TOP_VDEVS - 1);
    struct vdev_backend *devs[POOL_MAX_TOP_VDEVS];
    struct vdev_file_opts fo = {
        .create = opts && opts->create_files,
        .create_size = opts ? opts->create_size : 0,
        .direct = opts && opts->direct_io,
    };
    int rc = open_paths(paths, n, &fo, devs, em);
    if (rc != 0)
        return rc;
    return pool_create_backends(name, devs, n, opts, out, em);
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
        unsigned ashift = p->vdevs[0]->ashift;
        uint64_t asize = leaf_asize(dev, ashift);
        label_clear(dev);
        rc = pool_vdev_attach(p, dev, pool_random_guid(), p->nvdevs, ashift, asize,
                              alloc_pick_ms_shift(asize));
        if (rc != 0)
            vdev_backend_close(dev);
        else
            p->config_dirty = true;
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
    for (uint32_t i = 0; i < p->nvdevs; i++) {
        out->cksum_errors += __atomic_load_n(&p->vdevs[i]->cksum_errors, __ATOMIC_RELAXED);
        out->read_errors += __atomic_load_n(&p->vdevs[i]->read_errors, __ATOMIC_RELAXED);
        out->write_errors += __atomic_load_n(&p->vdevs[i]->write_errors, __ATOMIC_RELAXED);
    }
    out->nvdevs = p->nvdevs;
    out->readonly = p->readonly;
}

int
pool_get_vdev(struct pool *p, uint32_t i, struct pool_vdev_stats *out)
{
    if (i >= p->nvdevs)
        return -ENOENT;
    const struct vdev *vd = p->vdevs[i];
    memset(out, 0, sizeof(*out));
    snprintf(out->path, sizeof(out->path), "%s", vd->path);
    out->guid = vd->guid;
    out->size = vd->asize;
    out->allocated = alloc_vdev_allocated(p->alloc, vd->id);
    out->read_errors = __atomic_load_n(&vd->read_errors, __ATOMIC_RELAXED);
    out->write_errors = __atomic_load_n(&vd->write_errors, __ATOMIC_RELAXED);
    out->cksum_errors = __atomic_load_n(&vd->cksum_errors, __ATOMIC_RELAXED);
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
