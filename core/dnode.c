/* SPDX-License-Identifier: MIT */
/*
 * dnode: one object in memory — its dirty state per txg and its reads, writes and punches in
 * open context. Writing a txg's changes into the block tree is dnode_sync.c; the extent map and
 * changed blocks are dnode_map.c.
 *
 * Theory of operation
 * -------------------
 * An object's content "now" is the composition, newest first, of:
 *     txg slot of the open txg   (dirty blocks + punched ranges)
 *     txg slot of the syncing txg
 *     the published block tree  (dn->phys: blkptrs rooted in the dnode)
 * A block found dirty in a slot is taken from there; a block inside a punched range of a slot
 * (and not dirty in that slot) reads as zeros; otherwise the next layer decides.
 *
 *   open context:  dnode_write / dnode_punch  --->  slot[txg & 1]
 *   sync thread:   dnode_sync(T) folds slot[T & 1] into a new tree, publishes it in dn->phys
 *                  under dn->lock, then empties the slot.
 *
 * Invariants:
 *   1. At most two slots are live: the open txg and the syncing txg (pool invariant: open -
 *      syncing <= 1), so slot index txg & 1 never collides.
 *   2. A slot is written only by its own txg's transactions, and by the sync thread while it
 *      syncs that txg (sync-context changes to MOS objects); once a txg closes, only the sync
 *      thread touches its slot.
 *   3. Publishing a new tree and emptying the slot happen under dn->lock in that order, so a
 *      reader sees the slot's data either in the slot or in the tree, never neither.
 *   4. A reader that took the published root walks blocks that stay intact: frees are deferred
 *      two txgs and released only under the pool's tree_lock (write), readers hold it (read).
 */
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "core/blkbuf.h"
#include "core/dnode_impl.h"
#include "core/pool_impl.h"

#define READ_RUN_MAX (8u << 20) /* bytes read from the tree per dnode-lock round */

/* ---- block-id range sets ----------------------------------------------------------------------
 */

int
blk_ranges_add(struct blk_ranges *s, uint64_t start, uint64_t end)
{
    if (start >= end)
        return 0;
    /* Merge every range overlapping or adjacent to [start, end). */
    size_t i = 0;
    while (i < s->n && s->r[i][1] < start)
        i++;
    size_t j = i;
    while (j < s->n && s->r[j][0] <= end) {
        if (s->r[j][0] < start)
            start = s->r[j][0];
        if (s->r[j][1] > end)
            end = s->r[j][1];
        j++;
    }
    if (j == i) { /* insert at i */
        if (s->n == s->cap) {
            size_t ncap = s->cap ? s->cap * 2 : 4;
            void *nr = realloc(s->r, ncap * sizeof(*s->r));
            if (nr == NULL)
                return -ENOMEM;
            s->r = nr;
            s->cap = ncap;
        }
        memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(*s->r));
        s->n++;
    } else if (j > i + 1) { /* collapse r[i..j) into r[i] */
        memmove(&s->r[i + 1], &s->r[j], (s->n - j) * sizeof(*s->r));
        s->n -= j - i - 1;
    }
    s->r[i][0] = start;
    s->r[i][1] = end;
    return 0;
}

bool
blk_ranges_contains(const struct blk_ranges *s, uint64_t blkid)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->r[mid][1] <= blkid)
            lo = mid + 1;
        else if (s->r[mid][0] > blkid)
            hi = mid;
        else
            return true;
    }
    return false;
}

void
blk_ranges_release(struct blk_ranges *s)
{
    free(s->r);
    memset(s, 0, sizeof(*s));
}

/* ---- handles ----------------------------------------------------------------------------------
 */

struct dnode *
dnode_new(struct objset *os, uint64_t obj)
{
    struct dnode *dn = calloc(1, sizeof(*dn));
    if (dn == NULL)
        return NULL;
    dn->os = os;
    dn->obj = obj;
    pthread_mutex_init(&dn->lock, NULL);
    for (int i = 0; i < TXG_SLOTS; i++)
        u64map_init(&dn->txg[i].blocks);
    return dn;
}

void
dnode_slot_clear(struct dnode_txg *slot)
{
    size_t it = 0;
    uint64_t key;
    void *v;
    while (u64map_next(&slot->blocks, &it, &key, &v)) {
        struct dirty_block *db = v;
        blkbuf_free(db->data);
        free(db);
    }
    u64map_release(&slot->blocks);
    blk_ranges_release(&slot->freed);
    slot->txg = 0;
    slot->attrs_dirty = false;
    slot->max_blkid_plus1 = 0;
}

void
dnode_destroy_handle(struct dnode *dn)
{
    if (dn == NULL)
        return;
    for (int i = 0; i < TXG_SLOTS; i++)
        dnode_slot_clear(&dn->txg[i]);
    pthread_mutex_destroy(&dn->lock);
    free(dn);
}

bool
dnode_is_dirty(struct dnode *dn)
{
    pthread_mutex_lock(&dn->lock);
    bool dirty = dn->txg[0].txg != 0 || dn->txg[1].txg != 0;
    pthread_mutex_unlock(&dn->lock);
    return dirty;
}

/* Slot for txg, initialised on first use (dn->lock held). */
static struct dnode_txg *
slot_get(struct dnode *dn, uint64_t txg)
{
    struct dnode_txg *slot = &dn->txg[txg & 1];
    if (slot->txg != txg) {
        VERIFY3U(slot->txg, ==, 0); /* invariant 1 */
        slot->txg = txg;
        slot->attrs = dn->latest;
    }
    return slot;
}

int
dnode_attrs_dirty_locked(struct dnode *dn, uint64_t txg)
{
    struct dnode_txg *slot = slot_get(dn, txg);
    slot->attrs = dn->latest;
    slot->attrs_dirty = true;
    return 0;
}

/* ---- reading the published tree ----------------------------------------------------------------
 */

void
tree_root_snapshot(const struct dnode *dn, struct tree_root *tr)
{
    tr->nlevels = dn->phys.nlevels;
    tr->nblkptr = dn->phys.a.nblkptr;
    tr->indblkshift = dn->phys.a.indblkshift;
    tr->ds_obj = dn->os->ds_obj;
    tr->obj = dn->obj;
    memcpy(tr->blkptr, dn->phys.blkptr, sizeof(tr->blkptr));
}

/*
 * Finds the BP at level `target` (0 = data) above blkid in a published tree (caller holds
 * tree_lock for read). Validates every indirect block's shape; a bad one is -ECORRUPT. A hole on
 * the way is returned as is.
 */
static int
tree_walk_to(struct pool *p, const struct tree_root *tr, uint64_t blkid, int target,
             struct blkptr *out)
{
    if (tr->nlevels == 0) {
        bp_make_hole(out, 0, OT_NONE, 0, 0);
        return 0;
    }
    unsigned shift = tr->indblkshift - 7; /* log2(BPs per indirect block) */
    unsigned top_shift = shift * (tr->nlevels - 1u);
    if (top_shift < 64 && (blkid >> top_shift) >= tr->nblkptr) {
        bp_make_hole(out, 0, OT_NONE, 0, 0);
        return 0;
    }
    struct blkptr bp = tr->blkptr[top_shift < 64 ? blkid >> top_shift : 0];
    for (int level = tr->nlevels - 1; level > target; level--) {
        if (bp_is_hole(&bp))
            break;
        if (bp.level != level || bp.lsize != (1u << tr->indblkshift)) {
            pool_record_error(p, tr->ds_obj, tr->obj, level, blkid >> (shift * level), &bp,
                              -ECORRUPT);
            return ERR(-ECORRUPT);
        }
        struct blockref ref;
        int rc = zio_read_ref(p, &bp, &ref);
        if (rc != 0) {
            pool_record_error(p, tr->ds_obj, tr->obj, level, blkid >> (shift * level), &bp, rc);
            return rc;
        }
        uint64_t idx = (blkid >> (shift * (unsigned)(level - 1))) & ((1ull << shift) - 1);
        rc = bp_decode(ref.data + idx * BP_SIZE, &bp);
        blockref_release(&ref);
        if (rc != 0)
            return rc;
    }
    *out = bp;
    return 0;
}

int
tree_lookup(struct pool *p, const struct tree_root *tr, uint64_t blkid, struct blkptr *out)
{
    return tree_walk_to(p, tr, blkid, 0, out);
}

/*
 * A lookup cursor for runs of consecutive blocks: it keeps the level-1 indirect block of the
 * last lookup referenced, so the 1024 data BPs under one indirect block cost one cache lookup
 * instead of one walk each. Used under tree_lock like tree_lookup.
 */
struct tree_cursor {
    const struct tree_root *tr;
    struct blockref l1;
    uint64_t l1_index; /* blkid >> shift of l1 */
    bool has_l1;
};

static void
cursor_release(struct tree_cursor *c)
{
    if (c->has_l1)
        blockref_release(&c->l1);
    c->has_l1 = false;
}

static int
tree_lookup_cursor(struct pool *p, struct tree_cursor *c, uint64_t blkid, struct blkptr *out)
{
    const struct tree_root *tr = c->tr;
    unsigned shift = tr->indblkshift - 7;
    if (tr->nlevels < 2)
        return tree_lookup(p, tr, blkid, out);
    uint64_t idx = blkid & ((1ull << shift) - 1);
    if (!c->has_l1 || c->l1_index != blkid >> shift) {
        cursor_release(c);
        /* Walk down to the level-1 BP, then keep its block. */
        struct blkptr l1bp;
        int rc = tree_walk_to(p, tr, blkid, 1, &l1bp);
        if (rc != 0)
            return rc;
        if (bp_is_hole(&l1bp)) {
            bp_make_hole(out, 0, OT_NONE, 0, 0);
            return 0;
        }
        if (l1bp.level != 1 || l1bp.lsize != (1u << tr->indblkshift)) {
            pool_record_error(p, tr->ds_obj, tr->obj, 1, blkid >> shift, &l1bp, -ECORRUPT);
            return ERR(-ECORRUPT);
        }
        rc = zio_read_ref(p, &l1bp, &c->l1);
        if (rc != 0) {
            pool_record_error(p, tr->ds_obj, tr->obj, 1, blkid >> shift, &l1bp, rc);
            return rc;
        }
        c->has_l1 = true;
        c->l1_index = blkid >> shift;
    }
    return bp_decode(c->l1.data + idx * BP_SIZE, out);
}

/*
 * Copies [boff, boff+len) of block blkid from the published tree into buf. The caller holds
 * tree_lock for reading, taken before it let go of the dnode lock under which it copied the
 * tree root (dnode.c invariant 4): otherwise three commits could free and reuse the blocks of
 * that root before the read starts.
 */
static int
tree_read_block_cursor(struct pool *p, struct tree_cursor *c, uint32_t blksz, uint64_t blkid,
                       uint32_t boff, size_t len, uint8_t *buf)
{
    const struct tree_root *tr = c->tr;
    struct blkptr bp;
    int rc = tree_lookup_cursor(p, c, blkid, &bp);
    if (rc != 0)
        goto out;
    if (bp_is_hole(&bp)) {
        memset(buf, 0, len);
        goto out;
    }
    if (bp.level != 0 || bp.lsize != blksz) {
        pool_record_error(p, tr->ds_obj, tr->obj, 0, blkid, &bp, -ECORRUPT);
        rc = ERR(-ECORRUPT);
        goto out;
    }
    struct blockref ref;
    rc = zio_read_ref(p, &bp, &ref);
    if (rc != 0) {
        pool_record_error(p, tr->ds_obj, tr->obj, 0, blkid, &bp, rc);
        goto out;
    }
    memcpy(buf, ref.data + boff, len);
    blockref_release(&ref);
out:
    return rc;
}

static int
tree_read_block_locked(struct pool *p, const struct tree_root *tr, uint32_t blksz, uint64_t blkid,
                       uint32_t boff, size_t len, uint8_t *buf)
{
    struct tree_cursor c = { .tr = tr };
    int rc = tree_read_block_cursor(p, &c, blksz, blkid, boff, len, buf);
    cursor_release(&c);
    return rc;
}

/* (dnode_impl.h) */
const uint8_t *
dirty_lookup(struct dnode *dn, uint64_t blkid, const struct dnode_txg *skip, bool *zero)
{
    struct dnode_txg *order[TXG_SLOTS] = { &dn->txg[0], &dn->txg[1] };
    if (order[1]->txg > order[0]->txg) {
        order[0] = &dn->txg[1];
        order[1] = &dn->txg[0];
    }
    *zero = false;
    for (int i = 0; i < TXG_SLOTS; i++) {
        struct dnode_txg *s = order[i];
        if (s->txg == 0 || s == skip)
            continue;
        struct dirty_block *db = u64map_get(&s->blocks, blkid);
        if (db != NULL)
            return db->data;
        if (blk_ranges_contains(&s->freed, blkid)) {
            *zero = true;
            return NULL;
        }
    }
    return NULL;
}

/*
 * Bytes of [blkid's first n bytes .. len) that come from the tree in one run: blkid (not dirty,
 * checked by the caller) and the following blocks up to the first dirty or punched one, at most
 * READ_RUN_MAX. dn->lock held.
 */
static size_t
tree_run_len(struct dnode *dn, uint64_t blkid, size_t n, size_t len, uint32_t blksz)
{
    size_t run = n;
    bool zero;
    for (uint64_t b = blkid + 1; run < len && run < READ_RUN_MAX; b++) {
        if (dirty_lookup(dn, b, NULL, &zero) != NULL || zero)
            break;
        run += len - run < blksz ? len - run : blksz;
    }
    return run;
}

int
dnode_read(struct dnode *dn, uint64_t off, size_t len, void *buf)
{
    struct pool *p = dn->os->pool;
    if (len > UINT64_MAX - off)
        return -EINVAL;
    uint8_t *out = buf;
    while (len > 0) {
        pthread_mutex_lock(&dn->lock);
        if (dn->latest.type == OT_NONE) {
            pthread_mutex_unlock(&dn->lock);
            return -ENOENT;
        }
        uint32_t blksz = dn->latest.datablksz;
        uint64_t blkid = off / blksz;
        uint32_t boff = (uint32_t)(off % blksz);
        size_t n = blksz - boff < len ? blksz - boff : len;
        bool zero;
        const uint8_t *d = dirty_lookup(dn, blkid, NULL, &zero);
        if (d != NULL || zero) {
            if (d != NULL)
                memcpy(out, d + boff, n);
            else
                memset(out, 0, n);
            pthread_mutex_unlock(&dn->lock);
            off += n;
            out += n;
            len -= n;
            continue;
        }
        /*
         * A run of blocks the dirty state does not cover comes from the tree: find how far it
         * goes under the dnode lock, then read it with one cursor (one indirect-block lookup per
         * 1024 blocks) under tree_lock only.
         */
        size_t run = tree_run_len(dn, blkid, n, len, blksz);
        struct tree_root tr;
        tree_root_snapshot(dn, &tr);
        pthread_rwlock_rdlock(&p->tree_lock);
        pthread_mutex_unlock(&dn->lock);
        struct tree_cursor c = { .tr = &tr };
        int rc = 0;
        while (run > 0 && rc == 0) {
            rc = tree_read_block_cursor(p, &c, blksz, blkid, boff, n, out);
            off += n;
            out += n;
            len -= n;
            run -= n;
            blkid++;
            boff = 0;
            n = run < blksz ? run : blksz;
        }
        cursor_release(&c);
        pthread_rwlock_unlock(&p->tree_lock);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- zero-copy reads ---------------------------------------------------------------------- */

static const uint8_t zero_block[BLOCK_MAX_SIZE];

static void
pieces_release(struct obj_piece *pv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        obj_piece_release(&pv[i]);
}

/* A piece of a block from the published tree (tree_lock held, see tree_read_block_cursor). */
static int
tree_piece_cursor(struct pool *p, struct tree_cursor *c, uint32_t blksz, uint64_t blkid,
                  uint32_t boff, size_t len, struct obj_piece *pc)
{
    const struct tree_root *tr = c->tr;
    struct blkptr bp;
    int rc = tree_lookup_cursor(p, c, blkid, &bp);
    if (rc != 0)
        return rc;
    if (bp_is_hole(&bp)) {
        *pc = (struct obj_piece){ .data = zero_block, .len = len };
        return 0;
    }
    if (bp.level != 0 || bp.lsize != blksz) {
        pool_record_error(p, tr->ds_obj, tr->obj, 0, blkid, &bp, -ECORRUPT);
        return ERR(-ECORRUPT);
    }
    struct blockref ref;
    rc = zio_read_ref(p, &bp, &ref);
    if (rc != 0) {
        pool_record_error(p, tr->ds_obj, tr->obj, 0, blkid, &bp, rc);
        return rc;
    }
    *pc = (struct obj_piece){
        .data = ref.data + boff, .len = len, .cache_ref = ref.ab, .owned = ref.owned
    };
    return 0;
}

/*
 * dnode_read without the copy of committed data: the same walk (dirty state first, then runs of
 * tree blocks under one cursor), producing pieces instead of filling a buffer.
 */
static int
read_pieces(struct dnode *dn, uint64_t off, size_t len, struct obj_piece *pv, size_t max,
            size_t *npieces, bool nowait)
{
    struct pool *p = dn->os->pool;
    size_t np = 0;
    if (len > UINT64_MAX - off)
        return -EINVAL;
    while (len > 0) {
        if (np == max) {
            pieces_release(pv, np);
            return -E2BIG;
        }
        if (!nowait) {
            pthread_mutex_lock(&dn->lock);
        } else if (pthread_mutex_trylock(&dn->lock) != 0) {
            pieces_release(pv, np);
            return -EWOULDBLOCK;
        }
        if (dn->latest.type == OT_NONE) {
            pthread_mutex_unlock(&dn->lock);
            pieces_release(pv, np);
            return -ENOENT;
        }
        uint32_t blksz = dn->latest.datablksz;
        uint64_t blkid = off / blksz;
        uint32_t boff = (uint32_t)(off % blksz);
        size_t n = blksz - boff < len ? blksz - boff : len;
        bool zero;
        const uint8_t *d = dirty_lookup(dn, blkid, NULL, &zero);
        if (d != NULL || zero) {
            /* Uncommitted data: lend the dirty buffer itself, held (writers copy a held buffer
             * before changing it, dirty_block_get), or copy it if it cannot be held. */
            struct obj_piece *pc = &pv[np];
            *pc = (struct obj_piece){ .data = zero_block, .len = n };
            if (d != NULL && blkbuf_hold((void *)(uintptr_t)d)) {
                pc->data = d + boff;
                pc->owned = (uint8_t *)(uintptr_t)d; /* released by blkbuf_free */
            } else if (d != NULL) {
                uint8_t *copy = malloc(n);
                if (copy == NULL) {
                    pthread_mutex_unlock(&dn->lock);
                    pieces_release(pv, np);
                    return -ENOMEM;
                }
                memcpy(copy, d + boff, n);
                pc->data = copy;
                pc->owned = copy;
            }
            pthread_mutex_unlock(&dn->lock);
            np++;
            off += n;
            len -= n;
            continue;
        }
        size_t run = tree_run_len(dn, blkid, n, len, blksz);
        struct tree_root tr;
        tree_root_snapshot(dn, &tr);
        if (!nowait) {
            pthread_rwlock_rdlock(&p->tree_lock);
        } else if (pthread_rwlock_tryrdlock(&p->tree_lock) != 0) {
            pthread_mutex_unlock(&dn->lock);
            pieces_release(pv, np);
            return -EWOULDBLOCK;
        }
        pthread_mutex_unlock(&dn->lock);
        struct tree_cursor c = { .tr = &tr };
        int rc = 0;
        bool was = zio_cache_only(nowait);
        while (run > 0 && rc == 0) {
            if (np == max) {
                rc = -E2BIG;
                break;
            }
            rc = tree_piece_cursor(p, &c, blksz, blkid, boff, n, &pv[np]);
            if (rc != 0)
                break;
            np++;
            off += n;
            len -= n;
            run -= n;
            blkid++;
            boff = 0;
            n = run < blksz ? run : blksz;
        }
        zio_cache_only(was);
        cursor_release(&c);
        pthread_rwlock_unlock(&p->tree_lock);
        if (rc != 0) {
            pieces_release(pv, np);
            return rc;
        }
    }
    *npieces = np;
    return 0;
}

int
dnode_read_pieces(struct dnode *dn, uint64_t off, size_t len, struct obj_piece *pv, size_t max,
                  size_t *npieces)
{
    return read_pieces(dn, off, len, pv, max, npieces, false);
}

int
dnode_read_pieces_nowait(struct dnode *dn, uint64_t off, size_t len, struct obj_piece *pv,
                         size_t max, size_t *npieces)
{
    return read_pieces(dn, off, len, pv, max, npieces, true);
}

/* The current content of a block, as seen by a writer in slot `self` (dn->lock held). */
static int
fill_current(struct dnode *dn, const struct dnode_txg *self, uint64_t blkid, uint8_t *data)
{
    uint32_t blksz = dn->latest.datablksz;
    if (blk_ranges_contains(&self->freed, blkid)) {
        memset(data, 0, blksz);
        return 0;
    }
    bool zero;
    const uint8_t *d = dirty_lookup(dn, blkid, self, &zero);
    if (d != NULL) {
        memcpy(data, d, blksz);
        return 0;
    }
    if (zero) {
        memset(data, 0, blksz);
        return 0;
    }
    struct tree_root tr;
    tree_root_snapshot(dn, &tr);
    struct pool *p = dn->os->pool;
    pthread_rwlock_rdlock(&p->tree_lock);
    int rc = tree_read_block_locked(p, &tr, blksz, blkid, 0, blksz, data);
    pthread_rwlock_unlock(&p->tree_lock);
    return rc;
}

/*
 * Makes `data` (blksz bytes, a blkbuf the slot now owns) the slot's dirty copy of blkid. A copy
 * already there is handed back in *replaced for the caller to free (after dropping the lock);
 * a new one reserves its space and counts as dirty. dn->lock held.
 */
static int
dirty_block_adopt(struct dnode *dn, struct dnode_txg *slot, uint64_t blkid, uint8_t *data,
                  uint8_t **replaced)
{
    *replaced = NULL;
    struct dirty_block *db = u64map_get(&slot->blocks, blkid);
    if (db != NULL) {
        *replaced = db->data;
        db->data = data;
        return 0;
    }
    uint32_t blksz = dn->latest.datablksz;
    if (!dn->os->is_mos && !dn->special) {
        /* Worst case: stored uncompressed, every copy, plus 1/32 for indirect blocks. */
        uint64_t need = (uint64_t)blksz * dn->latest.copies;
        int rc = txg_reserve_space(dn->os->pool, slot->txg, need + need / 32, dn->os);
        if (rc != 0)
            return rc;
    }
    db = malloc(sizeof(*db));
    if (db == NULL)
        return -ENOMEM;
    db->data = data;
    int rc = u64map_put(&slot->blocks, blkid, db);
    if (rc != 0) {
        free(db);
        return rc;
    }
    if (blkid + 1 > slot->max_blkid_plus1)
        slot->max_blkid_plus1 = blkid + 1;
    txg_dirty_add(dn->os->pool, slot->txg, blksz);
    return 0;
}

/* Returns the slot's dirty copy of blkid, creating it (with the current content if partial). */
static int
dirty_block_get(struct dnode *dn, struct dnode_txg *slot, uint64_t blkid, bool whole, uint8_t **out)
{
    struct dirty_block *db = u64map_get(&slot->blocks, blkid);
    if (db != NULL && blkbuf_shared(db->data)) {
        /* Lent to a reader (read_pieces): change a copy, the reader keeps the old bytes. */
        uint8_t *copy = blkbuf_alloc(dn->latest.datablksz);
        if (copy == NULL)
            return -ENOMEM;
        memcpy(copy, db->data, dn->latest.datablksz);
        blkbuf_free(db->data);
        db->data = copy;
    }
    if (db != NULL) {
        *out = db->data;
        return 0;
    }
    uint32_t blksz = dn->latest.datablksz;
    uint8_t *data = blkbuf_alloc(blksz), *none;
    if (data == NULL)
        return -ENOMEM;
    int rc = whole ? 0 : fill_current(dn, slot, blkid, data);
    if (rc == 0)
        rc = dirty_block_adopt(dn, slot, blkid, data, &none);
    if (rc != 0) {
        blkbuf_free(data);
        return rc;
    }
    ASSERT(none == NULL);
    *out = data;
    return 0;
}

static int
write_locked(struct dnode *dn, struct dnode_txg *slot, uint64_t off, size_t len, const void *buf)
{
    uint32_t blksz = dn->latest.datablksz;
    const uint8_t *in = buf;
    while (len > 0) {
        uint64_t blkid = off / blksz;
        uint32_t boff = (uint32_t)(off % blksz);
        size_t n = blksz - boff < len ? blksz - boff : len;
        uint8_t *data;
        int rc = dirty_block_get(dn, slot, blkid, n == blksz, &data);
        if (rc != 0)
            return rc;
        if (in != NULL)
            memcpy(data + boff, in, n);
        else
            memset(data + boff, 0, n);
        off += n;
        if (in != NULL)
            in += n;
        len -= n;
    }
    return 0;
}

/* Whole blocks per batch of write_prepared; larger writes take several batches. */
#define PREPARED_BATCH 64

/*
 * Writes [off, off + len) where the whole blocks in it, at most PREPARED_BATCH, were copied
 * into bufs[0..nbufs) (first whole block fb) before the lock was taken: the copy, and the
 * first touch of freshly allocated memory, are most of a write's cost and would serialise
 * every writer of the object under dn->lock. Takes and drops dn->lock. Buffers not adopted
 * are freed. Returns -EAGAIN (nothing written) if the block size changed meanwhile.
 */
static int
write_prepared(struct dnode *dn, uint64_t txg, uint64_t off, size_t len, const uint8_t *buf,
               uint32_t blksz, uint64_t fb, uint8_t **bufs, size_t nbufs)
{
    uint8_t *replaced[PREPARED_BATCH];
    size_t nreplaced = 0, adopted = 0;
    pthread_mutex_lock(&dn->lock);
    int rc = -ENOENT;
    if (dn->latest.type == OT_NONE)
        goto out;
    rc = -EAGAIN;
    if (dn->latest.datablksz != blksz)
        goto out;
    struct dnode_txg *slot = slot_get(dn, txg);
    uint64_t head_end = fb * blksz, tail_off = (fb + nbufs) * blksz;
    rc = write_locked(dn, slot, off, (size_t)(head_end - off), buf);
    for (; rc == 0 && adopted < nbufs; adopted++) {
        uint8_t *old;
        rc = dirty_block_adopt(dn, slot, fb + adopted, bufs[adopted], &old);
        if (rc == 0 && old != NULL)
            replaced[nreplaced++] = old;
    }
    if (rc == 0)
        rc = write_locked(dn, slot, tail_off, (size_t)(off + len - tail_off),
                          buf + (tail_off - off));
    if (rc == 0 && off + len > dn->latest.size) {
        dn->latest.size = off + len;
        dnode_attrs_dirty_locked(dn, txg);
    }
out:
    pthread_mutex_unlock(&dn->lock);
    for (size_t i = 0; i < nreplaced; i++)
        blkbuf_free(replaced[i]);
    for (size_t i = adopted; i < nbufs; i++)
        blkbuf_free(bufs[i]);
    return rc;
}

/* The whole-block path of dnode_write, one batch of at most PREPARED_BATCH blocks at a time. */
static int
write_whole_blocks(struct dnode *dn, uint64_t txg, uint64_t off, size_t len, const uint8_t *buf,
                   uint32_t blksz)
{
    while (len > 0) {
        uint64_t fb = (off + blksz - 1) / blksz, end = off + len;
        uint64_t nwhole = end / blksz > fb ? end / blksz - fb : 0;
        if (nwhole > PREPARED_BATCH)
            nwhole = PREPARED_BATCH;
        /* This batch: up to the end of its last whole block (or everything, if none). */
        uint64_t batch_end = nwhole == PREPARED_BATCH ? (fb + nwhole) * blksz : end;
        uint8_t *bufs[PREPARED_BATCH];
        size_t n = 0;
        for (; n < nwhole; n++) {
            bufs[n] = blkbuf_alloc(blksz);
            if (bufs[n] == NULL)
                break;
            memcpy(bufs[n], buf + ((fb + n) * blksz - off), blksz);
        }
        if (n < nwhole) {
            while (n > 0)
                blkbuf_free(bufs[--n]);
            return -ENOMEM;
        }
        int rc = write_prepared(dn, txg, off, (size_t)(batch_end - off), buf, blksz, fb, bufs, n);
        if (rc != 0)
            return rc;
        buf += batch_end - off;
        len -= (size_t)(batch_end - off);
        off = batch_end;
    }
    return 0;
}

int
dnode_write_blocks(struct dnode *dn, uint64_t txg, uint64_t fb, uint8_t **bufs, size_t n,
                   uint32_t bufsz, bool nowait)
{
    size_t adopted = 0;
    int rc = -EFBIG;
    if (fb > INT64_MAX / bufsz || n > INT64_MAX / bufsz - fb)
        goto free_rest;
    if (!nowait)
        pthread_mutex_lock(&dn->lock);
    else if (pthread_mutex_trylock(&dn->lock) != 0)
        return -EWOULDBLOCK;
    rc = -ENOENT;
    if (dn->latest.type == OT_NONE)
        goto out;
    struct dnode_txg *slot = slot_get(dn, txg);
    if (dn->latest.datablksz != bufsz) {
        /* Not the object's block size (a one-block object that grew): copy, which may read
         * partial blocks, so never without waiting. */
        if (nowait) {
            pthread_mutex_unlock(&dn->lock);
            return -EWOULDBLOCK;
        }
        rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = write_locked(dn, slot, (fb + i) * bufsz, bufsz, bufs[i]);
        if (rc == 0 && (fb + n) * bufsz > dn->latest.size) {
            dn->latest.size = (fb + n) * bufsz;
            dnode_attrs_dirty_locked(dn, txg);
        }
        goto out;
    }
    /* Each adopted buffer's slot in bufs takes the copy it replaced (or NULL); what is left in
     * bufs is freed after the lock is dropped. */
    for (rc = 0; adopted < n; adopted++) {
        uint8_t *old;
        rc = dirty_block_adopt(dn, slot, fb + adopted, bufs[adopted], &old);
        if (rc != 0)
            break;
        bufs[adopted] = old;
    }
    uint64_t end = (fb + adopted) * bufsz;
    if (adopted > 0 && end > dn->latest.size) {
        dn->latest.size = end;
        dnode_attrs_dirty_locked(dn, txg);
    }
out:
    pthread_mutex_unlock(&dn->lock);
free_rest:
    for (size_t i = 0; i < n; i++)
        blkbuf_free(bufs[i]);
    return rc;
}

int
dnode_write(struct dnode *dn, uint64_t txg, uint64_t off, size_t len, const void *buf)
{
    if (off > INT64_MAX || len > INT64_MAX - off)
        return -EFBIG;
    pthread_mutex_lock(&dn->lock);
    uint32_t blksz = dn->latest.datablksz;
    pthread_mutex_unlock(&dn->lock);
    /* A write of a whole block or more copies its whole blocks outside the lock; if the block
     * size changes meanwhile (a one-block object growing), it starts over under the lock. */
    if (buf != NULL && len >= blksz) {
        int rc = write_whole_blocks(dn, txg, off, len, buf, blksz);
        if (rc != -EAGAIN)
            return rc;
    }
    pthread_mutex_lock(&dn->lock);
    int rc = -ENOENT;
    if (dn->latest.type == OT_NONE)
        goto out;
    struct dnode_txg *slot = slot_get(dn, txg);
    rc = write_locked(dn, slot, off, len, buf);
    if (rc == 0 && off + len > dn->latest.size) {
        dn->latest.size = off + len;
        dnode_attrs_dirty_locked(dn, txg);
    }
out:
    pthread_mutex_unlock(&dn->lock);
    return rc;
}

/* Highest block id that can hold data now, + 1 (dn->lock held). */
static uint64_t
block_limit(const struct dnode *dn)
{
    uint64_t lim = dn->phys.nblocks;
    for (int i = 0; i < TXG_SLOTS; i++)
        if (dn->txg[i].txg != 0 && dn->txg[i].max_blkid_plus1 > lim)
            lim = dn->txg[i].max_blkid_plus1;
    uint32_t blksz = dn->latest.datablksz;
    uint64_t by_size = dn->latest.size / blksz + 1;
    return lim > by_size ? lim : by_size;
}

int
dnode_punch(struct dnode *dn, uint64_t txg, uint64_t off, uint64_t len)
{
    pthread_mutex_lock(&dn->lock);
    int rc = -ENOENT;
    if (dn->latest.type == OT_NONE)
        goto out;
    struct dnode_txg *slot = slot_get(dn, txg);
    uint32_t blksz = dn->latest.datablksz;
    uint64_t blocks = block_limit(dn);
    uint64_t limit_bytes = blocks > UINT64_MAX / blksz ? UINT64_MAX : blocks * blksz;
    uint64_t end = len > UINT64_MAX - off ? UINT64_MAX : off + len;
    if (end > limit_bytes)
        end = limit_bytes;
    rc = 0;
    if (off >= end)
        goto out;
    uint64_t first_full = (off + blksz - 1) / blksz;
    uint64_t end_full = end / blksz;
    if (first_full >= end_full) { /* within one block, or two partial ones */
        rc = write_locked(dn, slot, off, (size_t)(end - off), NULL);
        goto out;
    }
    if (off % blksz != 0)
        rc = write_locked(dn, slot, off, (size_t)(first_full * blksz - off), NULL);
    if (rc == 0 && end % blksz != 0)
        rc = write_locked(dn, slot, end_full * blksz, (size_t)(end - end_full * blksz), NULL);
    if (rc != 0)
        goto out;
    /* Drop this txg's dirty copies inside the punched whole blocks, then record the range. */
    size_t it = 0;
    uint64_t key;
    void *v;
    uint64_t *doomed = NULL;
    size_t ndoomed = 0;
    while (u64map_next(&slot->blocks, &it, &key, &v)) {
        if (key >= first_full && key < end_full) {
            uint64_t *nd = realloc(doomed, (ndoomed + 1) * sizeof(*doomed));
            if (nd == NULL) {
                free(doomed);
                rc = -ENOMEM;
                goto out;
            }
            doomed = nd;
            doomed[ndoomed++] = key;
        }
    }
    for (size_t i = 0; i < ndoomed; i++) {
        struct dirty_block *db = u64map_remove(&slot->blocks, doomed[i]);
        blkbuf_free(db->data);
        free(db);
    }
    free(doomed);
    rc = blk_ranges_add(&slot->freed, first_full, end_full);
    if (end_full > slot->max_blkid_plus1)
        slot->max_blkid_plus1 = end_full;
    slot->attrs_dirty = true;
out:
    pthread_mutex_unlock(&dn->lock);
    return rc;
}
