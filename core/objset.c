/* SPDX-License-Identifier: MIT */
/*
 * objset: object sets — the dnode array, object handles, the public object API, and the sync
 * of a whole object set into a new root block.
 *
 * Theory of operation
 * -------------------
 * Object 0 is the meta-dnode, whose data blocks are the array of dnodes; its own dnode lives in
 * the object set's root block. An object's handle (struct dnode) is created on first hold from
 * its slot in the meta-dnode and lives while it is held or dirty.
 *
 * objset_sync(T): every dnode dirty in T is synced (dnode_sync.c) and its encoded dnode written
 * into the meta-dnode's slot for T; then the meta-dnode is synced, then the root block is written.
 * Dnodes dirtied while this runs (sync-context changes, only in the MOS) are picked up by the
 * next pass.
 *
 * Invariants:
 *   1. An object number is reused only when its handle is neither held nor dirty, so a txg never
 *      holds both the destruction of an object and the creation of its successor.
 *   2. Every handle in dirty[s] holds one reference (dropped after the sync of that txg).
 */
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/endian.h"
#include "common/err.h"
#include "core/blkbuf.h"
#include "core/pool_impl.h"

#define OBJSET_MAX_OBJ (1ull << 48)

struct pool *
objset_pool(const struct objset *os)
{
    return os->pool;
}

void
objset_set_defaults(struct objset *os, uint8_t checksum, uint8_t compress, uint8_t level)
{
    pthread_mutex_lock(&os->lock);
    os->def_checksum = checksum;
    os->def_compress = compress;
    os->def_comp_level = level;
    pthread_mutex_unlock(&os->lock);
}

static void
meta_attrs_init(struct dnode_attrs *a, uint64_t gen)
{
    memset(a, 0, sizeof(*a));
    a->type = OT_DNODE;
    a->nblkptr = DNODE_MAX_BLKPTR;
    a->indblkshift = INDIRECT_SHIFT_DEFAULT;
    a->checksum = CKSUM_XXH3;
    a->compress = COMPRESS_LZ4;
    a->copies = 2;
    a->datablksz = 1u << DNODE_BLOCK_SHIFT;
    a->gen = gen;
}

static void
free_now(struct objset *os, uint64_t txg, const struct blkptr *bp)
{
    zio_free(os->pool, txg, bp);
}

void
objset_account(struct objset *os, const struct blkptr *bp, int sign)
{
    if (bp_is_hole(bp) || bp_is_embedded(bp))
        return;
    os->acct_asize += sign * (int64_t)bp_asize(bp);
    os->acct_psize += sign * (int64_t)bp->psize;
    os->acct_lsize += sign * (int64_t)bp->lsize;
}

void
objset_free_bp(struct objset *os, uint64_t txg, const struct blkptr *bp)
{
    if (bp_is_hole(bp) || bp_is_embedded(bp))
        return;
    objset_account(os, bp, -1);
    os->free_fn(os, txg, bp);
}

static struct objset *
objset_alloc(struct pool *p, uint64_t ds_obj)
{
    struct objset *os = calloc(1, sizeof(*os));
    if (os == NULL)
        return NULL;
    os->pool = p;
    os->ds_obj = ds_obj;
    os->is_mos = ds_obj == 0;
    pthread_mutex_init(&os->lock, NULL);
    u64map_init(&os->handles);
    for (int i = 0; i < TXG_SLOTS; i++)
        u64map_init(&os->dirty[i]);
    os->next_obj_hint = 1;
    os->free_fn = free_now;
    os->def_checksum = CKSUM_XXH3;
    os->def_compress = COMPRESS_LZ4;
    os->meta = dnode_new(os, 0);
    if (os->meta == NULL) {
        free(os);
        return NULL;
    }
    os->meta->special = true;
    return os;
}

int
objset_create_new(struct pool *p, uint32_t type, uint64_t ds_obj, struct objset **out)
{
    struct objset *os = objset_alloc(p, ds_obj);
    if (os == NULL)
        return -ENOMEM;
    os->type = type;
    struct dnode *m = os->meta;
    meta_attrs_init(&m->latest, 0);
    m->phys.a = m->latest;
    m->phys.nlevels = 1;
    for (unsigned i = 0; i < DNODE_MAX_BLKPTR; i++)
        bp_make_hole(&m->phys.blkptr[i], m->latest.datablksz, OT_DNODE, 0, 0);
    bp_make_hole(&os->root_bp, OBJSET_PHYS_SIZE, OT_OBJSET, 0, 0);
    *out = os;
    return 0;
}

int
objset_open(struct pool *p, const struct blkptr *root, uint64_t ds_obj, struct objset **out)
{
    if (bp_is_hole(root) || root->type != OT_OBJSET || root->lsize != OBJSET_PHYS_SIZE ||
        root->level != 0)
        return ERR(-ECORRUPT);
    uint8_t buf[OBJSET_PHYS_SIZE];
    int rc = zio_read(p, root, buf);
    if (rc != 0)
        return rc;
    struct objset *os = objset_alloc(p, ds_obj);
    if (os == NULL)
        return -ENOMEM;
    rc = dnode_phys_decode(buf, &os->meta->phys);
    if (rc == 0 && (os->meta->phys.a.type != OT_DNODE ||
                    os->meta->phys.a.datablksz != (1u << DNODE_BLOCK_SHIFT)))
        rc = ERR(-ECORRUPT);
    os->type = le32_get(buf + DNODE_SIZE);
    if (rc == 0 && (os->type < OBJSET_TYPE_MOS || os->type > OBJSET_TYPE_ZVOL))
        rc = ERR(-ECORRUPT);
    if (rc != 0) {
        objset_close(os);
        return rc;
    }
    os->meta->latest = os->meta->phys.a;
    os->root_bp = *root;
    *out = os;
    return 0;
}

void
objset_close(struct objset *os)
{
    if (os == NULL)
        return;
    size_t it = 0;
    uint64_t key;
    void *v;
    while (u64map_next(&os->handles, &it, &key, &v))
        dnode_destroy_handle(v);
    u64map_release(&os->handles);
    for (int i = 0; i < TXG_SLOTS; i++)
        u64map_release(&os->dirty[i]);
    dnode_destroy_handle(os->meta);
    pthread_mutex_destroy(&os->lock);
    free(os);
}

/* ---- handles ----------------------------------------------------------------------------------
 */

/* Reads dnode `obj` from the meta-dnode (os->lock held). */
static int
load_dnode_phys(struct objset *os, uint64_t obj, struct dnode_phys *dp)
{
    uint8_t buf[DNODE_SIZE];
    int rc = dnode_read(os->meta, obj * DNODE_SIZE, DNODE_SIZE, buf);
    if (rc != 0)
        return rc;
    return dnode_phys_decode(buf, dp);
}

int
dnode_hold(struct objset *os, uint64_t obj, bool allow_free, struct dnode **out)
{
    if (obj == 0 || obj >= OBJSET_MAX_OBJ)
        return -ENOENT;
    pthread_mutex_lock(&os->lock);
    struct dnode *dn = u64map_get(&os->handles, obj);
    int rc = 0;
    if (dn == NULL) {
        dn = dnode_new(os, obj);
        if (dn == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        rc = load_dnode_phys(os, obj, &dn->phys);
        if (rc == 0)
            rc = u64map_put(&os->handles, obj, dn);
        if (rc != 0) {
            dnode_destroy_handle(dn);
            goto out;
        }
        dn->latest = dn->phys.a;
    }
    pthread_mutex_lock(&dn->lock);
    bool is_free = dn->latest.type == OT_NONE;
    pthread_mutex_unlock(&dn->lock);
    if (is_free && !allow_free) {
        rc = -ENOENT;
        if (dn->refs == 0 && !dnode_is_dirty(dn)) {
            u64map_remove(&os->handles, obj);
            dnode_destroy_handle(dn);
        }
        goto out;
    }
    dn->refs++;
    *out = dn;
out:
    pthread_mutex_unlock(&os->lock);
    return rc;
}

/* os->lock held. */
static void
rele_locked(struct dnode *dn)
{
    struct objset *os = dn->os;
    VERIFY(dn->refs > 0);
    if (--dn->refs == 0 && !dnode_is_dirty(dn)) {
        u64map_remove(&os->handles, dn->obj);
        dnode_destroy_handle(dn);
    }
}

void
dnode_rele(struct dnode *dn)
{
    struct objset *os = dn->os;
    pthread_mutex_lock(&os->lock);
    rele_locked(dn);
    pthread_mutex_unlock(&os->lock);
}

/* Records dn as dirty in txg (invariant 2); os->lock held. */
static int
mark_dirty_locked(struct dnode *dn, uint64_t txg)
{
    struct objset *os = dn->os;
    int rc = 0;
    struct u64map *d = &os->dirty[txg & 1];
    if (os->dirty_txg[txg & 1] != txg) {
        VERIFY3U(u64map_count(d), ==, 0);
        os->dirty_txg[txg & 1] = txg;
    }
    if (u64map_get(d, dn->obj) == NULL) {
        rc = u64map_put(d, dn->obj, dn);
        if (rc == 0)
            dn->refs++;
    }
    return rc;
}

static int
mark_dirty(struct dnode *dn, uint64_t txg)
{
    pthread_mutex_lock(&dn->os->lock);
    int rc = mark_dirty_locked(dn, txg);
    pthread_mutex_unlock(&dn->os->lock);
    return rc;
}

/* ---- object API -------------------------------------------------------------------------------
 */

static int
obj_alloc_number(struct objset *os, uint64_t txg, const struct dnode_attrs *attrs, uint64_t *obj)
{
    pthread_mutex_lock(&os->lock);
    int rc = 0;
    struct dnode *created = NULL; /* our reference keeps it alive after the lock drops */
    for (uint64_t n = os->next_obj_hint;; n++) {
        if (n >= OBJSET_MAX_OBJ) {
            rc = -ENOSPC;
            break;
        }
        struct dnode *dn = u64map_get(&os->handles, n);
        if (dn != NULL)
            continue; /* held or dirty: invariant 1 */
        struct dnode_phys dp;
        rc = load_dnode_phys(os, n, &dp);
        if (rc != 0)
            break;
        if (dp.a.type != OT_NONE)
            continue;
        dn = dnode_new(os, n);
        if (dn == NULL) {
            rc = -ENOMEM;
            break;
        }
        dn->phys = dp;
        dn->latest = *attrs;
        dn->latest.gen = txg;
        rc = u64map_put(&os->handles, n, dn);
        if (rc != 0) {
            dnode_destroy_handle(dn);
            break;
        }
        dn->refs = 1;
        pthread_mutex_lock(&dn->lock);
        dnode_attrs_dirty_locked(dn, txg);
        pthread_mutex_unlock(&dn->lock);
        os->next_obj_hint = n + 1;
        *obj = n;
        created = dn;
        break;
    }
    pthread_mutex_unlock(&os->lock);
    if (rc != 0)
        return rc;
    rc = mark_dirty(created, txg);
    dnode_rele(created);
    return rc;
}

static int
attrs_from_opts(const struct objset *os, const struct obj_create_opts *o, struct dnode_attrs *a)
{
    memset(a, 0, sizeof(*a));
    uint32_t bs = o->blocksize ? o->blocksize : 128 * 1024;
    if (o->type == OT_NONE || o->type >= OT_TYPE_COUNT || bs < SECTOR_SIZE || bs > BLOCK_MAX_SIZE ||
        (bs & (bs - 1)) != 0 || o->copies > BP_NDVAS || o->bonuslen > DNODE_BONUS_MAX(1) ||
        (o->indblkshift &&
         (o->indblkshift < INDIRECT_SHIFT_MIN || o->indblkshift > INDIRECT_SHIFT_MAX)) ||
        (o->checksum != CKSUM_INHERIT && !cksum_is_valid(o->checksum)) ||
        (o->compress != COMPRESS_INHERIT && !compress_is_valid(o->compress)))
        return -EINVAL;
    a->type = o->type;
    a->datablksz = bs;
    a->nblkptr = o->bonuslen > DNODE_BONUS_MAX(3) ? 1 : DNODE_MAX_BLKPTR;
    a->indblkshift = o->indblkshift ? o->indblkshift : INDIRECT_SHIFT_DEFAULT;
    a->checksum = o->checksum != CKSUM_INHERIT ? o->checksum : os->def_checksum;
    a->compress = o->compress != COMPRESS_INHERIT ? o->compress : os->def_compress;
    a->comp_level = o->compress != COMPRESS_INHERIT ? o->compress_level : os->def_comp_level;
    a->copies = o->copies ? o->copies : 1;
    a->bonuslen = o->bonuslen;
    return 0;
}

int
obj_create(struct objset *os, struct tx *tx, const struct obj_create_opts *opts, uint64_t *obj)
{
    struct dnode_attrs a;
    int rc = attrs_from_opts(os, opts, &a);
    if (rc != 0)
        return rc;
    if (os->readonly)
        return -EROFS;
    return obj_alloc_number(os, tx->txg, &a, obj);
}

int
objset_obj_create_synctx(struct objset *os, uint64_t txg, const struct obj_create_opts *o,
                         uint64_t *obj)
{
    struct dnode_attrs a;
    int rc = attrs_from_opts(os, o, &a);
    if (rc != 0)
        return rc;
    return obj_alloc_number(os, txg, &a, obj);
}

/* Holds obj, marks it dirty in txg and runs op under the hold. */
static int
with_dirty(struct objset *os, uint64_t txg, uint64_t obj, struct dnode **dnp)
{
    if (os->readonly)
        return -EROFS;
    int rc = dnode_hold(os, obj, false, dnp);
    if (rc != 0)
        return rc;
    rc = mark_dirty(*dnp, txg);
    if (rc != 0)
        dnode_rele(*dnp);
    return rc;
}

int
obj_write(struct objset *os, struct tx *tx, uint64_t obj, uint64_t off, size_t len, const void *buf)
{
    return obj_write_synctx(os, tx->txg, obj, off, len, buf);
}

int
dnode_write_blocks_dirty(struct dnode *dn, uint64_t txg, uint64_t fb, uint8_t **bufs, size_t n,
                         uint32_t bufsz, bool nowait)
{
    int rc;
    if (!nowait) {
        rc = mark_dirty(dn, txg);
    } else if (pthread_mutex_trylock(&dn->os->lock) != 0) {
        return -EWOULDBLOCK;
    } else {
        rc = mark_dirty_locked(dn, txg);
        pthread_mutex_unlock(&dn->os->lock);
    }
    if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            blkbuf_free(bufs[i]);
        return rc;
    }
    return dnode_write_blocks(dn, txg, fb, bufs, n, bufsz, nowait);
}

int
obj_write_synctx(struct objset *os, uint64_t txg, uint64_t obj, uint64_t off, size_t len,
                 const void *buf)
{
    struct dnode *dn;
    int rc = with_dirty(os, txg, obj, &dn);
    if (rc != 0)
        return rc;
    rc = dnode_write(dn, txg, off, len, buf);
    dnode_rele(dn);
    return rc;
}

int
obj_read(struct objset *os, uint64_t obj, uint64_t off, size_t len, void *buf)
{
    struct dnode *dn;
    int rc = dnode_hold(os, obj, false, &dn);
    if (rc != 0)
        return rc;
    rc = dnode_read(dn, off, len, buf);
    dnode_rele(dn);
    return rc;
}

int
obj_read_pieces(struct objset *os, uint64_t obj, uint64_t off, size_t len, struct obj_piece *pv,
                size_t max, size_t *n)
{
    struct dnode *dn;
    int rc = dnode_hold(os, obj, false, &dn);
    if (rc != 0)
        return rc;
    rc = dnode_read_pieces(dn, off, len, pv, max, n);
    dnode_rele(dn);
    return rc;
}

void
obj_piece_release(struct obj_piece *pc)
{
    struct blockref ref = {
        .data = pc->data, .len = pc->len, .ab = pc->cache_ref, .owned = pc->owned
    };
    blockref_release(&ref);
    memset(pc, 0, sizeof(*pc));
}

int
obj_punch(struct objset *os, struct tx *tx, uint64_t obj, uint64_t off, uint64_t len)
{
    struct dnode *dn;
    int rc = with_dirty(os, tx->txg, obj, &dn);
    if (rc != 0)
        return rc;
    rc = dnode_punch(dn, tx->txg, off, len);
    dnode_rele(dn);
    return rc;
}

int
obj_truncate(struct objset *os, struct tx *tx, uint64_t obj, uint64_t size)
{
    if (size > INT64_MAX)
        return -EFBIG;
    struct dnode *dn;
    int rc = with_dirty(os, tx->txg, obj, &dn);
    if (rc != 0)
        return rc;
    rc = dnode_punch(dn, tx->txg, size, UINT64_MAX);
    if (rc == 0) {
        pthread_mutex_lock(&dn->lock);
        dn->latest.size = size;
        dnode_attrs_dirty_locked(dn, tx->txg);
        pthread_mutex_unlock(&dn->lock);
    }
    dnode_rele(dn);
    return rc;
}

static int
destroy_in(struct objset *os, uint64_t txg, uint64_t obj)
{
    struct dnode *dn;
    int rc = with_dirty(os, txg, obj, &dn);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&dn->lock);
    memset(&dn->latest, 0, sizeof(dn->latest));
    dnode_attrs_dirty_locked(dn, txg);
    pthread_mutex_unlock(&dn->lock);
    pthread_mutex_lock(&os->lock);
    if (obj < os->next_obj_hint)
        os->next_obj_hint = obj;
    rele_locked(dn);
    pthread_mutex_unlock(&os->lock);
    return 0;
}

int
obj_destroy(struct objset *os, struct tx *tx, uint64_t obj)
{
    return destroy_in(os, tx->txg, obj);
}

int
obj_destroy_synctx(struct objset *os, uint64_t txg, uint64_t obj)
{
    return destroy_in(os, txg, obj);
}

int
obj_stat(struct objset *os, uint64_t obj, struct obj_info *out)
{
    struct dnode *dn;
    int rc = dnode_hold(os, obj, false, &dn);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&dn->lock);
    const struct dnode_attrs *a = &dn->latest;
    *out = (struct obj_info){
        .type = a->type,
        .blocksize = a->datablksz,
        .size = a->size,
        .nblocks = dn->phys.nblocks,
        .used_bytes = dn->phys.used_bytes,
        .checksum = a->checksum,
        .compress = a->compress,
        .compress_level = a->comp_level,
        .copies = a->copies,
        .nlevels = dn->phys.nlevels,
        .gen = a->gen,
        .bonuslen = a->bonuslen,
    };
    pthread_mutex_unlock(&dn->lock);
    dnode_rele(dn);
    return 0;
}

int
obj_set_props(struct objset *os, struct tx *tx, uint64_t obj, uint8_t checksum, uint8_t compress,
              uint8_t compress_level, uint8_t copies)
{
    if (!cksum_is_valid(checksum) || !compress_is_valid(compress) || copies < 1 ||
        copies > BP_NDVAS || (compress == COMPRESS_ZSTD && compress_level > ZSTD_LEVEL_MAX))
        return -EINVAL;
    struct dnode *dn;
    int rc = with_dirty(os, tx->txg, obj, &dn);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&dn->lock);
    dn->latest.checksum = checksum;
    dn->latest.compress = compress;
    dn->latest.comp_level = compress_level;
    dn->latest.copies = copies;
    dnode_attrs_dirty_locked(dn, tx->txg);
    pthread_mutex_unlock(&dn->lock);
    dnode_rele(dn);
    return 0;
}

int
obj_bonus_read(struct objset *os, uint64_t obj, void *buf, size_t cap)
{
    struct dnode *dn;
    int rc = dnode_hold(os, obj, false, &dn);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&dn->lock);
    size_t n = dn->latest.bonuslen < cap ? dn->latest.bonuslen : cap;
    memcpy(buf, dn->latest.bonus, n);
    pthread_mutex_unlock(&dn->lock);
    dnode_rele(dn);
    return (int)n;
}

static int
bonus_write_in(struct objset *os, uint64_t txg, uint64_t obj, const void *buf, size_t len)
{
    struct dnode *dn;
    int rc = with_dirty(os, txg, obj, &dn);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&dn->lock);
    if (len > dn->latest.bonuslen) {
        rc = -EINVAL;
    } else {
        memcpy(dn->latest.bonus, buf, len);
        dnode_attrs_dirty_locked(dn, txg);
    }
    pthread_mutex_unlock(&dn->lock);
    dnode_rele(dn);
    return rc;
}

int
obj_bonus_write(struct objset *os, struct tx *tx, uint64_t obj, const void *buf, size_t len)
{
    return bonus_write_in(os, tx->txg, obj, buf, len);
}

int
obj_bonus_write_synctx(struct objset *os, uint64_t txg, uint64_t obj, const void *buf, size_t len)
{
    return bonus_write_in(os, txg, obj, buf, len);
}

int
obj_extents(struct objset *os, uint64_t obj, uint64_t off, uint64_t len, obj_extent_fn fn,
            void *arg)
{
    struct dnode *dn;
    int rc = dnode_hold(os, obj, false, &dn);
    if (rc != 0)
        return rc;
    rc = dnode_extents(dn, off, len, fn, arg);
    dnode_rele(dn);
    return rc;
}

int
obj_next(struct objset *os, uint64_t start, uint64_t *next)
{
    /* Scan the dnode array: upper bound is the meta-dnode's size, plus in-memory handles. */
    pthread_mutex_lock(&os->meta->lock);
    uint64_t limit = os->meta->latest.size / DNODE_SIZE;
    pthread_mutex_unlock(&os->meta->lock);
    pthread_mutex_lock(&os->lock);
    size_t it = 0;
    uint64_t key;
    void *v;
    while (u64map_next(&os->handles, &it, &key, &v))
        if (key + 1 > limit)
            limit = key + 1;
    pthread_mutex_unlock(&os->lock);
    for (uint64_t n = start ? start : 1; n < limit; n++) {
        struct dnode *dn;
        int rc = dnode_hold(os, n, false, &dn);
        if (rc == -ENOENT)
            continue;
        if (rc != 0)
            return rc;
        dnode_rele(dn);
        *next = n;
        return 0;
    }
    return -ENOENT;
}

/* ---- sync -------------------------------------------------------------------------------------
 */

bool
objset_is_dirty(struct objset *os, uint64_t txg)
{
    pthread_mutex_lock(&os->lock);
    bool dirty = os->dirty_txg[txg & 1] == txg && u64map_count(&os->dirty[txg & 1]) > 0;
    pthread_mutex_unlock(&os->lock);
    if (!dirty) {
        pthread_mutex_lock(&os->meta->lock);
        dirty = os->meta->txg[txg & 1].txg == txg;
        pthread_mutex_unlock(&os->meta->lock);
    }
    return dirty;
}

static int
cmp_dnode_obj(const void *a, const void *b)
{
    const struct dnode *x = *(struct dnode *const *)a, *y = *(struct dnode *const *)b;
    return x->obj < y->obj ? -1 : x->obj > y->obj;
}

int
objset_sync(struct objset *os, uint64_t txg, unsigned pass, struct blkptr *root)
{
    /* Take this txg's dirty list; changes made while we run land in a fresh one. */
    pthread_mutex_lock(&os->lock);
    struct u64map taken = os->dirty[txg & 1];
    u64map_init(&os->dirty[txg & 1]);
    pthread_mutex_unlock(&os->lock);

    size_t n = u64map_count(&taken), i = 0;
    struct dnode **list = malloc((n ? n : 1) * sizeof(*list));
    int rc = list ? 0 : -ENOMEM;
    size_t it = 0;
    uint64_t key;
    void *v;
    while (list && u64map_next(&taken, &it, &key, &v))
        list[i++] = v;
    if (list)
        qsort(list, n, sizeof(*list), cmp_dnode_obj);
    for (i = 0; i < n && rc == 0; i++) {
        struct dnode *dn = list[i];
        rc = dnode_sync(dn, txg, pass);
        if (rc != 0)
            break;
        uint8_t enc[DNODE_SIZE];
        pthread_mutex_lock(&dn->lock);
        dnode_phys_encode(&dn->phys, enc);
        pthread_mutex_unlock(&dn->lock);
        rc = dnode_write(os->meta, txg, dn->obj * DNODE_SIZE, DNODE_SIZE, enc);
    }
    for (i = 0; list && i < n; i++)
        dnode_rele(list[i]); /* invariant 2 */
    free(list);
    u64map_release(&taken);
    if (rc != 0)
        return rc;

    rc = dnode_sync(os->meta, txg, pass);
    if (rc != 0)
        return rc;
    uint8_t buf[OBJSET_PHYS_SIZE];
    memset(buf, 0, sizeof(buf));
    pthread_mutex_lock(&os->meta->lock);
    dnode_phys_encode(&os->meta->phys, buf);
    pthread_mutex_unlock(&os->meta->lock);
    le32_put(buf + DNODE_SIZE, os->type);
    struct zio_props zp = { .type = OT_OBJSET,
                            .level = 0,
                            .checksum = CKSUM_XXH3,
                            .compress = os->is_mos ? COMPRESS_OFF : COMPRESS_LZ4,
                            .copies = os->is_mos ? 3 : 2,
                            .metadata = true };
    struct blkptr newbp;
    bool reused;
    rc = zio_write(os->pool, txg, buf, OBJSET_PHYS_SIZE, &zp, &os->root_bp, &newbp, &reused);
    if (rc != 0)
        return rc;
    if (!reused)
        objset_free_bp(os, txg, &os->root_bp);
    else
        objset_account(os, &os->root_bp, -1);
    objset_account(os, &newbp, +1);
    newbp.fill = 1;
    os->root_bp = newbp;
    *root = newbp;
    return 0;
}
