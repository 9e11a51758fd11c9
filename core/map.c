/* SPDX-License-Identifier: MIT */
/*
 * map: the generic copy-on-write B+tree (API in core/map.h).
 *
 * Theory of operation
 * -------------------
 * Node n of the tree is block n of one object, read and written whole through map_store_ops.
 * The object layer makes every write copy-on-write, so the map simply rewrites nodes in place by
 * number; it keeps no node cache (the store caches) and holds in memory only the decoded header
 * (scalars plus the free list). An operation works on private node buffers:
 *
 *   descend (read + validate root..leaf) -> modify leaf in memory -> split up / merge up
 *   (reading siblings as needed) -> commit: write dirty nodes, release freed nodes, write header
 *
 * Every read and every validation of an operation happens before its first write, so a corrupt
 * node, a read error or -ENOMEM leaves the tree untouched (the header scalars are restored).
 * A failed write or release during commit leaves the tree in an unknown state: the map records
 * the error and every later call except map_count/map_close returns it (sticky failure); the
 * owner must discard the transaction group.
 *
 * Separators are lower bounds: interior entry i = (key_i, child_i) and every key in child_i's
 * subtree lies in [key_i, key_{i+1}) (the last child's range ends at the node's own upper bound).
 * An interior node's first key equals its own lower bound, so merging two siblings is plain
 * concatenation and the separator after a split or redistribution is the right node's first key.
 *
 * Space: a node of size S has a payload capacity C = S - 16. Insert splits a node whose payload
 * exceeds C (by bytes, values vary) into two halves chosen to minimise the larger one; remove
 * (and a shrinking replace) fixes a non-root node whose payload fell below C/4 by merging it
 * with a sibling when both fit in C, else redistributing the pair evenly and updating the
 * parent's separator. A root interior node left with one child is collapsed; a root leaf left
 * empty is freed (empty tree: root 0, height 0). Because C >= 3 * (largest leaf entry), each
 * half of a split or redistribution holds >= (C - largest entry) / 2 >= C/4 and <= C.
 * Memory per operation is O(height * node size) (map_check also keeps one u64 per node).
 * Four maximal entries (4 * 1042 bytes) cannot fit the 4 KiB minimum node; three always do,
 * which is what the split bounds above need.
 *
 * Store contract: map_open does not know the node size before reading the header, so it reads
 * block 0 into a MAP_NODE_SIZE_MAX-byte buffer pre-filled with a sentinel; the store writes its
 * own block size there. The header's zero end marker (below) must then sit exactly at the
 * header's node size and the sentinel must survive after it, or map_open fails with -ECORRUPT:
 * the store's block size must equal the map's node size. map_open returns -EVERSION for a
 * header with the right magic and an unknown version.
 *
 * Invariants (map_check verifies 1-6; tests refer to them by number)
 *  1. Keys are strictly ascending within a node; every key of child i's subtree lies in
 *     [key_i, key_{i+1}) (upper bound of the last child: the node's own bound; root: none).
 *  2. An interior node's first key equals its lower bound ((0,0) for the root).
 *  3. Node level = height - 1 - depth: every leaf is at depth height - 1.
 *  4. Every non-root node holds >= C/4 payload bytes; a root interior node has >= 2 children, a
 *     root leaf >= 1 entry; root == 0 <=> height == 0 <=> count == 0.
 *  5. Reachable node numbers and free-list entries are distinct, nonzero and < next.
 *  6. The header's count equals the number of leaf entries.
 *  7. No write happens before every read of the same operation succeeded (see above).
 *
 * On-disk format (little-endian; docs/FORMAT.md "Map nodes"). Node size S is a power of two in
 * [4 KiB, 128 KiB]; every node, including the header, is exactly S bytes.
 *
 * Header node (block 0):
 *   0     u64  magic MAP_MAGIC 0x4c4350464d415031 (bytes "1PAMFPCL")
 *   8     u32  version (1)
 *   12    u32  node size S in bytes
 *   16    u64  root node number (0 = empty tree)
 *   24    u32  height (0 = empty; 1 = the root is a leaf)
 *   28    u32  free-list length F (<= (S - 72) / 8)
 *   32    u64  entry count
 *   40    u64  next never-used node number (>= 1)
 *   48    16   reserved, 0
 *   64    u64  free[F]: released node numbers to recycle, pushed and popped at the end
 *   ...   0    up to S - 8
 *   S-8   u64  0 (end marker: lets map_open detect a header whose node size disagrees with the
 *              store's block size)
 * A node freed by remove is always passed to ops->release (its block may be punched) and its
 * number is pushed on the free list for reuse; when the free list is full the number is only
 * released and never recycled (the object keeps a hole there and `next` keeps growing).
 *
 * Tree node (block >= 1):
 *   0     u32  magic MAP_NODE_MAGIC 0x4e50414d (bytes "MAPN")
 *   4     u16  level (0 = leaf)
 *   6     u16  number of entries n
 *   8     u32  bytes used U (16 + sum of entry sizes; <= S)
 *   12    u32  reserved, 0
 *   16    entries, packed, keys strictly ascending ((a, b) unsigned, a first); bytes U..S are 0
 * Leaf entry (18 + len bytes):
 *   0  u64 key a;  8  u64 key b;  16  u16 value length len (<= 1024);  18  len value bytes
 * Interior entry (24 bytes):
 *   0  u64 key a;  8  u64 key b;  16  u64 child node number
 *
 * Lookups, iteration and map_check are in map_read.c; what both files share is in map_impl.h.
 * Not thread-safe (see map.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "core/map_impl.h"

/* ---- keys and node access ---------------------------------------------------------------- */

static uint32_t
entry_size_at(const uint8_t *p, uint32_t level)
{
    return level == 0 ? LEAF_ENT_HDR + le16_get(p + 16) : INT_ENT_SIZE;
}

/* Rebuilds off[] from content this module wrote or already validated. */
static void
node_reindex(struct mnode *nd)
{
    uint32_t pos = NODE_HDR_SIZE;
    for (uint32_t i = 0; i < nd->n; i++) {
        nd->off[i] = pos;
        pos += entry_size_at(nd->buf + pos, nd->level);
    }
    nd->off[nd->n] = pos;
    ASSERT3U(pos, ==, nd->used);
}

static void
node_init_empty(struct mnode *nd, uint64_t blkid, uint32_t level)
{
    nd->blkid = blkid;
    nd->level = level;
    nd->n = 0;
    nd->used = NODE_HDR_SIZE;
    nd->off[0] = NODE_HDR_SIZE;
    nd->idx = 0;
    nd->dirty = true;
    nd->freed = false;
}

/* Inserts the encoded entry ent (len bytes) at index i. The buffer has room (see mnode.buf). */
static void
node_insert(struct mnode *nd, uint32_t i, const uint8_t *ent, uint32_t len)
{
    ASSERT3U(i, <=, nd->n);
    uint32_t at = nd->off[i];
    memmove(nd->buf + at + len, nd->buf + at, nd->used - at);
    memcpy(nd->buf + at, ent, len);
    nd->n++;
    nd->used += len;
    node_reindex(nd);
    nd->dirty = true;
}

static void
node_delete(struct mnode *nd, uint32_t i)
{
    ASSERT3U(i, <, nd->n);
    uint32_t at = nd->off[i], end = nd->off[i + 1];
    memmove(nd->buf + at, nd->buf + end, nd->used - end);
    nd->n--;
    nd->used -= end - at;
    node_reindex(nd);
    nd->dirty = true;
}

static void
node_set_key(struct mnode *nd, uint32_t i, struct mkey k)
{
    uint8_t *p = nd->buf + nd->off[i];
    le64_put(p, k.a);
    le64_put(p + 8, k.b);
    nd->dirty = true;
}

static uint32_t
leaf_entry_encode(uint8_t *ent, struct mkey k, const void *val, size_t len)
{
    le64_put(ent, k.a);
    le64_put(ent + 8, k.b);
    le16_put(ent + 16, (uint16_t)len);
    if (len > 0)
        memcpy(ent + LEAF_ENT_HDR, val, len);
    return LEAF_ENT_HDR + (uint32_t)len;
}

static void
int_entry_encode(uint8_t *ent, struct mkey k, uint64_t child)
{
    le64_put(ent, k.a);
    le64_put(ent + 8, k.b);
    le64_put(ent + 16, child);
}

/* ---- node buffers, reading, validation, writing ------------------------------------------ */

int
mnode_alloc(const struct map *m, struct mnode *nd, bool scratch)
{
    if (nd->buf != NULL)
        return 0;
    size_t bytes = (scratch ? 2 * (size_t)m->node_size : m->node_size) + LEAF_ENT_MAX;
    nd->buf = malloc(bytes);
    nd->off = malloc((bytes / LEAF_ENT_HDR + 2) * sizeof(*nd->off));
    if (nd->buf == NULL || nd->off == NULL) {
        free(nd->buf);
        free(nd->off);
        nd->buf = NULL;
        nd->off = NULL;
        return ERR(-ENOMEM);
    }
    return 0;
}

void
mnode_release(struct mnode *nd)
{
    free(nd->buf);
    free(nd->off);
    nd->buf = NULL;
    nd->off = NULL;
}

/*
 * Validates the image in nd->buf as a node of `level` whose keys lie in nd's bounds, and builds
 * off[]. Never trusts a byte of it: returns -ECORRUPT on any inconsistency (invariants 1, 2).
 */
static int
node_parse(const struct map *m, struct mnode *nd, uint32_t level)
{
    const uint8_t *b = nd->buf;
    if (le32_get(b) != MAP_NODE_MAGIC || le16_get(b + 4) != level)
        return ERR(-ECORRUPT);
    uint32_t n = le16_get(b + 6), used = le32_get(b + 8);
    uint32_t min_ent = level == 0 ? LEAF_ENT_HDR : INT_ENT_SIZE;
    if (used < NODE_HDR_SIZE || used > m->node_size || n > (used - NODE_HDR_SIZE) / min_ent)
        return ERR(-ECORRUPT);
    if (level > 0 && n == 0)
        return ERR(-ECORRUPT);

    uint32_t pos = NODE_HDR_SIZE;
    struct mkey prev = { 0, 0 };
    for (uint32_t i = 0; i < n; i++) {
        if (used - pos < min_ent)
            return ERR(-ECORRUPT);
        uint32_t sz = entry_size_at(b + pos, level);
        if (sz > used - pos || (level == 0 && sz - LEAF_ENT_HDR > MAP_VALUE_MAX))
            return ERR(-ECORRUPT);
        struct mkey k = key_get(b + pos);
        if (i == 0) {
            int c = key_cmp(k, nd->lo);
            if (level > 0 ? c != 0 : c < 0)
                return ERR(-ECORRUPT);
        } else if (key_cmp(k, prev) <= 0) {
            return ERR(-ECORRUPT);
        }
        if (!nd->hi_inf && key_cmp(k, nd->hi) >= 0)
            return ERR(-ECORRUPT);
        if (level > 0) {
            uint64_t child = le64_get(b + pos + 16);
            if (child == 0 || child >= m->h.next)
                return ERR(-ECORRUPT);
        }
        nd->off[i] = pos;
        pos += sz;
        prev = k;
    }
    if (pos != used)
        return ERR(-ECORRUPT);
    nd->off[n] = pos;
    nd->n = n;
    nd->used = used;
    nd->level = level;
    return 0;
}

/* Reads node blkid into nd (bounds already set) and validates it as a node of `level`. */
int
mnode_read(struct map *m, struct mnode *nd, uint64_t blkid, uint32_t level)
{
    ASSERT(nd->buf != NULL);
    if (blkid == 0 || blkid >= m->h.next)
        return ERR(-ECORRUPT);
    int rc = m->ops->read(m->ctx, blkid, nd->buf);
    if (rc != 0)
        return rc < 0 ? rc : ERR(-EIO);
    nd->blkid = blkid;
    nd->idx = 0;
    nd->dirty = false;
    nd->freed = false;
    return node_parse(m, nd, level);
}

static int
node_write(struct map *m, struct mnode *nd)
{
    ASSERT3U(nd->used, <=, m->node_size);
    ASSERT3U(nd->blkid, !=, 0);
    uint8_t *b = nd->buf;
    le32_put(b, MAP_NODE_MAGIC);
    le16_put(b + 4, (uint16_t)nd->level);
    le16_put(b + 6, (uint16_t)nd->n);
    le32_put(b + 8, nd->used);
    le32_put(b + 12, 0);
    memset(b + nd->used, 0, m->node_size - nd->used);
    return m->ops->write(m->ctx, nd->blkid, b);
}

/* ---- header ------------------------------------------------------------------------------ */

static uint32_t
hdr_free_cap(uint32_t node_size)
{
    return (node_size - HDR_FREE_OFF - HDR_TAIL_SIZE) / 8;
}

static bool
node_size_valid(uint32_t node_size)
{
    return node_size >= MAP_NODE_SIZE_MIN && node_size <= MAP_NODE_SIZE_MAX &&
           (node_size & (node_size - 1)) == 0;
}

/* Checks the decoded header scalars and free list (invariants 4 and 5, header part). */
int
map_hdr_validate(const struct map *m)
{
    const struct map_hdr *h = &m->h;
    bool empty = h->root == 0;
    if (empty != (h->height == 0) || empty != (h->count == 0))
        return ERR(-ECORRUPT);
    if (h->height > MAP_HEIGHT_MAX || h->next == 0 || h->root >= h->next)
        return ERR(-ECORRUPT);
    if (h->nfree > m->free_cap)
        return ERR(-ECORRUPT);
    for (uint32_t i = 0; i < h->nfree; i++) {
        if (m->freelist[i] == 0 || m->freelist[i] >= h->next || m->freelist[i] == h->root)
            return ERR(-ECORRUPT);
    }
    return 0;
}

static int
hdr_write(struct map *m)
{
    uint8_t *b = m->hdr_buf;
    memset(b, 0, m->node_size);
    le64_put(b, MAP_MAGIC);
    le32_put(b + 8, MAP_VERSION);
    le32_put(b + 12, m->node_size);
    le64_put(b + 16, m->h.root);
    le32_put(b + 24, m->h.height);
    le32_put(b + 28, m->h.nfree);
    le64_put(b + 32, m->h.count);
    le64_put(b + 40, m->h.next);
    for (uint32_t i = 0; i < m->h.nfree; i++)
        le64_put(b + HDR_FREE_OFF + 8 * i, m->freelist[i]);
    return m->ops->write(m->ctx, 0, b);
}

static bool
hdr_equal(const struct map_hdr *x, const struct map_hdr *y)
{
    return x->root == y->root && x->count == y->count && x->next == y->next &&
           x->height == y->height && x->nfree == y->nfree;
}

static int
map_alloc(const struct map_store_ops *ops, void *ctx, uint32_t node_size, struct map **out)
{
    struct map *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return ERR(-ENOMEM);
    m->ops = ops;
    m->ctx = ctx;
    m->node_size = node_size;
    m->free_cap = hdr_free_cap(node_size);
    m->freelist = calloc(m->free_cap, sizeof(*m->freelist));
    m->hdr_buf = malloc(node_size);
    if (m->freelist == NULL || m->hdr_buf == NULL) {
        map_close(m);
        return ERR(-ENOMEM);
    }
    *out = m;
    return 0;
}

static bool
ops_valid(const struct map_store_ops *ops)
{
    return ops != NULL && ops->read != NULL && ops->write != NULL && ops->release != NULL;
}

int
map_create(const struct map_store_ops *ops, void *ctx, uint32_t node_size, struct map **out)
{
    if (out == NULL || !ops_valid(ops) || !node_size_valid(node_size))
        return ERR(-EINVAL);
    struct map *m;
    int rc = map_alloc(ops, ctx, node_size, &m);
    if (rc != 0)
        return rc;
    m->h = (struct map_hdr){ .root = 0, .count = 0, .next = 1, .height = 0, .nfree = 0 };
    rc = hdr_write(m);
    if (rc != 0) {
        map_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

int
map_open(const struct map_store_ops *ops, void *ctx, struct map **out)
{
    if (out == NULL || !ops_valid(ops))
        return ERR(-EINVAL);
    /*
     * The node size is only known after reading the header, so read into a maximal buffer
     * pre-filled with a sentinel; the store writes its own block size. The zero end marker
     * must be at the header's node size and the sentinel must survive right after it,
     * otherwise the header's node size disagrees with the store's (and a smaller claimed size
     * would let later reads overrun their buffers).
     */
    uint8_t *b = malloc(MAP_NODE_SIZE_MAX + HDR_TAIL_SIZE);
    if (b == NULL)
        return ERR(-ENOMEM);
    memset(b, OPEN_SENTINEL, MAP_NODE_SIZE_MAX + HDR_TAIL_SIZE);
    struct map *m = NULL;
    int rc = ops->read(ctx, 0, b);
    if (rc != 0) {
        rc = rc < 0 ? rc : ERR(-EIO);
        goto out;
    }
    uint32_t node_size = le32_get(b + 12);
    if (le64_get(b) != MAP_MAGIC || !node_size_valid(node_size)) {
        rc = ERR(-ECORRUPT);
        goto out;
    }
    if (le32_get(b + 8) != MAP_VERSION) {
        rc = ERR(-EVERSION);
        goto out;
    }
    if (le64_get(b + node_size - HDR_TAIL_SIZE) != 0) {
        rc = ERR(-ECORRUPT);
        goto out;
    }
    for (uint32_t i = 0; i < HDR_TAIL_SIZE; i++) {
        if (b[node_size + i] != OPEN_SENTINEL) {
            rc = ERR(-ECORRUPT);
            goto out;
        }
    }
    rc = map_alloc(ops, ctx, node_size, &m);
    if (rc != 0)
        goto out;
    m->h.root = le64_get(b + 16);
    m->h.height = le32_get(b + 24);
    m->h.nfree = le32_get(b + 28);
    m->h.count = le64_get(b + 32);
    m->h.next = le64_get(b + 40);
    if (m->h.nfree > m->free_cap) {
        rc = ERR(-ECORRUPT);
        goto out;
    }
    for (uint32_t i = 0; i < m->h.nfree; i++)
        m->freelist[i] = le64_get(b + HDR_FREE_OFF + 8 * i);
    rc = map_hdr_validate(m);
out:
    free(b);
    if (rc != 0) {
        map_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

void
map_close(struct map *m)
{
    if (m == NULL)
        return;
    free(m->freelist);
    free(m->hdr_buf);
    free(m);
}

uint64_t
map_count(const struct map *m)
{
    return m->h.count;
}

/* ---- paths and operations ---------------------------------------------------------------- */

/* Reads root..leaf into path[0..height) following key k; each node's idx is the child taken. */
int
mnode_path_descend(struct map *m, struct mnode *path, struct mkey k)
{
    uint32_t h = m->h.height;
    VERIFY(h >= 1 && h <= MAP_HEIGHT_MAX);
    uint64_t blk = m->h.root;
    for (uint32_t d = 0; d < h; d++) {
        struct mnode *nd = &path[d];
        int rc = mnode_alloc(m, nd, false);
        if (rc != 0)
            return rc;
        if (d == 0)
            root_bounds(nd);
        else
            child_bounds(&path[d - 1], path[d - 1].idx, nd);
        rc = mnode_read(m, nd, blk, h - 1 - d);
        if (rc != 0)
            return rc;
        if (nd->level > 0) {
            nd->idx = node_child_index(nd, k);
            blk = node_child(nd, nd->idx);
        }
    }
    return 0;
}

/* Returns a new working set for one operation on m (free with op_end), or NULL. */
static struct mop *
op_begin(struct map *m)
{
    struct mop *op = calloc(1, sizeof(*op));
    if (op != NULL) {
        op->m = m;
        op->saved = m->h;
    }
    return op;
}

/* Ends op; on failure before commit restores the header scalars (invariant 7). */
static void
op_end(struct mop *op, int rc)
{
    if (rc != 0 && op->m->err == 0)
        op->m->h = op->saved;
    for (uint32_t i = 0; i < MAP_HEIGHT_MAX; i++)
        mnode_release(&op->path[i]);
    for (uint32_t i = 0; i < op->nextra; i++)
        mnode_release(&op->extra[i]);
    mnode_release(&op->scratch);
    free(op);
}

static int
op_extra(struct mop *op, struct mnode **out)
{
    VERIFY3U(op->nextra, <, MAP_HEIGHT_MAX + 2);
    struct mnode *nd = &op->extra[op->nextra];
    int rc = mnode_alloc(op->m, nd, false);
    if (rc != 0)
        return rc;
    op->nextra++;
    *out = nd;
    return 0;
}

/* A new empty node of `level` with a number from the free list, else a never-used one. */
static int
op_new_node(struct mop *op, uint32_t level, struct mnode **out)
{
    struct map *m = op->m;
    struct mnode *nd;
    int rc = op_extra(op, &nd);
    if (rc != 0)
        return rc;
    uint64_t blkid = m->h.nfree > 0 ? m->freelist[--m->h.nfree] : m->h.next++;
    node_init_empty(nd, blkid, level);
    *out = nd;
    return 0;
}

static void
op_free(struct mop *op, struct mnode *nd)
{
    VERIFY3U(op->nfreed, <, MAP_HEIGHT_MAX + 2);
    nd->freed = true;
    nd->dirty = false;
    op->freed[op->nfreed++] = nd->blkid;
}

/*
 * Redistributes the entries of l and r (adjacent siblings, same level, l first): all into l
 * when merge, else split evenly by bytes (minimising the larger half, both non-empty).
 */
static int
op_distribute(struct mop *op, struct mnode *l, struct mnode *r, bool merge)
{
    struct map *m = op->m;
    struct mnode *s = &op->scratch;
    int rc = mnode_alloc(m, s, true);
    if (rc != 0)
        return rc;
    ASSERT3U(l->level, ==, r->level);
    uint32_t lp = node_payload(l), rp = node_payload(r);
    memcpy(s->buf + NODE_HDR_SIZE, l->buf + NODE_HDR_SIZE, lp);
    memcpy(s->buf + NODE_HDR_SIZE + lp, r->buf + NODE_HDR_SIZE, rp);
    s->level = l->level;
    s->n = l->n + r->n;
    s->used = NODE_HDR_SIZE + lp + rp;
    node_reindex(s);

    uint32_t split = s->n;
    if (!merge) {
        VERIFY3U(s->n, >=, 2);
        uint32_t best = UINT32_MAX;
        for (uint32_t i = 1; i < s->n; i++) {
            uint32_t left = s->off[i] - NODE_HDR_SIZE, right = s->used - s->off[i];
            uint32_t larger = left > right ? left : right;
            if (larger < best) {
                best = larger;
                split = i;
            }
        }
    }
    l->n = split;
    l->used = s->off[split];
    memcpy(l->buf + NODE_HDR_SIZE, s->buf + NODE_HDR_SIZE, l->used - NODE_HDR_SIZE);
    node_reindex(l);
    r->n = s->n - split;
    r->used = NODE_HDR_SIZE + s->used - s->off[split];
    memcpy(r->buf + NODE_HDR_SIZE, s->buf + s->off[split], r->used - NODE_HDR_SIZE);
    node_reindex(r);
    l->dirty = r->dirty = true;
    VERIFY3U(l->used, <=, m->node_size);
    VERIFY3U(r->used, <=, m->node_size);
    return 0;
}

/* path[d] overflowed: split it and insert the new separator into its parent, up to the root. */
static int
op_split_up(struct mop *op, uint32_t d)
{
    struct map *m = op->m;
    uint8_t ent[INT_ENT_SIZE];
    for (;;) {
        struct mnode *nd = &op->path[d], *r = NULL;
        if (nd->used <= m->node_size)
            return 0;
        int rc = op_new_node(op, nd->level, &r);
        if (rc == 0)
            rc = op_distribute(op, nd, r, false);
        if (rc != 0)
            return rc;
        struct mkey sep = node_key(r, 0);
        if (d == 0) {
            if (m->h.height >= MAP_HEIGHT_MAX)
                return ERR(-EOVERFLOW);
            struct mnode *root = NULL;
            rc = op_new_node(op, nd->level + 1, &root);
            if (rc != 0)
                return rc;
            int_entry_encode(ent, nd->lo, nd->blkid);
            node_insert(root, 0, ent, INT_ENT_SIZE);
            int_entry_encode(ent, sep, r->blkid);
            node_insert(root, 1, ent, INT_ENT_SIZE);
            m->h.root = root->blkid;
            m->h.height++;
            return 0;
        }
        struct mnode *p = &op->path[d - 1];
        int_entry_encode(ent, sep, r->blkid);
        node_insert(p, p->idx + 1, ent, INT_ENT_SIZE);
        d--;
    }
}

/*
 * path[d] may have fallen below the minimum fill: merge it with a sibling or redistribute,
 * repeating on the parent after a merge; then collapse or free the root as needed.
 */
static int
op_merge_up(struct mop *op, uint32_t d)
{
    struct map *m = op->m;
    for (; d > 0; d--) {
        struct mnode *nd = &op->path[d], *p = &op->path[d - 1], *sib = NULL;
        if (node_payload(nd) >= node_min_fill(m))
            return 0;
        if (p->n < 2)
            return ERR(-ECORRUPT); /* a non-root interior node with one child */
        bool sib_left = p->idx > 0;
        uint32_t si = sib_left ? p->idx - 1 : p->idx + 1;
        int rc = op_extra(op, &sib);
        if (rc != 0)
            return rc;
        child_bounds(p, si, sib);
        rc = mnode_read(m, sib, node_child(p, si), nd->level);
        if (rc != 0)
            return rc;
        struct mnode *l = sib_left ? sib : nd, *r = sib_left ? nd : sib;
        uint32_t ri = sib_left ? p->idx : si;
        if (node_payload(l) + node_payload(r) <= node_cap(m)) {
            rc = op_distribute(op, l, r, true);
            if (rc != 0)
                return rc;
            op_free(op, r);
            node_delete(p, ri);
            continue;
        }
        rc = op_distribute(op, l, r, false);
        if (rc != 0)
            return rc;
        node_set_key(p, ri, node_key(r, 0));
        return 0;
    }
    struct mnode *root = &op->path[0];
    if (root->level > 0 && root->n == 1) {
        op_free(op, root);
        m->h.root = node_child(root, 0);
        m->h.height--;
    } else if (root->level == 0 && root->n == 0) {
        op_free(op, root);
        m->h.root = 0;
        m->h.height = 0;
    }
    return 0;
}

static int
op_commit_nodes(struct mop *op, struct mnode *nodes, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        if (nodes[i].buf == NULL || !nodes[i].dirty || nodes[i].freed)
            continue;
        int rc = node_write(op->m, &nodes[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Writes dirty nodes, releases freed ones, writes the header. Failure is sticky. */
static int
op_commit(struct mop *op)
{
    struct map *m = op->m;
    int rc = op_commit_nodes(op, op->path, op->npath);
    if (rc == 0)
        rc = op_commit_nodes(op, op->extra, op->nextra);
    for (uint32_t i = 0; rc == 0 && i < op->nfreed; i++) {
        rc = m->ops->release(m->ctx, op->freed[i]);
        if (rc == 0 && m->h.nfree < m->free_cap)
            m->freelist[m->h.nfree++] = op->freed[i];
    }
    if (rc == 0 && (op->nfreed > 0 || !hdr_equal(&m->h, &op->saved)))
        rc = hdr_write(m);
    if (rc != 0)
        m->err = rc < 0 ? rc : ERR(-EIO);
    return m->err;
}

/* After the leaf path[d] changed size: split or merge up as needed. */
static int
op_rebalance(struct mop *op, uint32_t d)
{
    if (op->path[d].used > op->m->node_size)
        return op_split_up(op, d);
    return op_merge_up(op, d);
}

int
map_insert(struct map *m, uint64_t a, uint64_t b, const void *val, size_t len, bool replace)
{
    VERIFY(m != NULL);
    if (m->err != 0)
        return m->err;
    if (len > MAP_VALUE_MAX || (len > 0 && val == NULL))
        return ERR(-EINVAL);
    struct mop *op = op_begin(m);
    if (op == NULL)
        return ERR(-ENOMEM);
    int rc;
    struct mkey k = { a, b };
    uint8_t ent[LEAF_ENT_MAX];
    uint32_t elen = leaf_entry_encode(ent, k, val, len);
    if (m->h.root == 0) {
        struct mnode *nd = NULL;
        rc = op_new_node(op, 0, &nd);
        if (rc != 0)
            goto out;
        node_insert(nd, 0, ent, elen);
        m->h.root = nd->blkid;
        m->h.height = 1;
        m->h.count = 1;
    } else {
        rc = mnode_path_descend(m, op->path, k);
        op->npath = m->h.height;
        if (rc != 0)
            goto out;
        uint32_t d = m->h.height - 1;
        struct mnode *leaf = &op->path[d];
        bool found;
        uint32_t i = node_lower_bound(leaf, k, &found);
        if (found && !replace) {
            rc = ERR(-EEXIST);
            goto out;
        }
        if (found)
            node_delete(leaf, i);
        else
            m->h.count++;
        node_insert(leaf, i, ent, elen);
        rc = op_rebalance(op, d);
        if (rc != 0)
            goto out;
    }
    rc = op_commit(op);
out:
    op_end(op, rc);
    return rc;
}

int
map_remove(struct map *m, uint64_t a, uint64_t b)
{
    VERIFY(m != NULL);
    if (m->err != 0)
        return m->err;
    if (m->h.root == 0)
        return ERR(-ENOENT);
    struct mop *op = op_begin(m);
    if (op == NULL)
        return ERR(-ENOMEM);
    int rc;
    struct mkey k = { a, b };
    rc = mnode_path_descend(m, op->path, k);
    op->npath = m->h.height;
    if (rc != 0)
        goto out;
    uint32_t d = m->h.height - 1;
    bool found;
    uint32_t i = node_lower_bound(&op->path[d], k, &found);
    if (!found) {
        rc = ERR(-ENOENT);
        goto out;
    }
    if (m->h.count == 0) {
        rc = ERR(-ECORRUPT); /* header count disagrees with the tree */
        goto out;
    }
    node_delete(&op->path[d], i);
    m->h.count--;
    rc = op_rebalance(op, d);
    if (rc == 0)
        rc = op_commit(op);
out:
    op_end(op, rc);
    return rc;
}
