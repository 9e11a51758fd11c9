/* SPDX-License-Identifier: MIT */
/*
 * map_read: the map's read-only operations (API in core/map.h): map_lookup, map_iterate and
 * map_check, which walks the whole tree and verifies invariants 1-6 of map.c. None of them
 * writes; every node they read is validated as it is read (mnode_read), so a corrupt tree gives
 * -ECORRUPT, never a crash. Not thread-safe (see map.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "core/map_impl.h"

int
map_lookup(struct map *m, uint64_t a, uint64_t b, void *val, size_t cap, size_t *len)
{
    VERIFY(m != NULL);
    if (m->err != 0)
        return m->err;
    if (m->h.root == 0)
        return ERR(-ENOENT);
    struct mkey k = { a, b };
    struct mnode nd = { 0 };
    int rc = mnode_alloc(m, &nd, false);
    if (rc != 0)
        return rc;
    root_bounds(&nd);
    uint64_t blk = m->h.root;
    for (uint32_t level = m->h.height - 1;; level--) {
        rc = mnode_read(m, &nd, blk, level);
        if (rc != 0)
            goto out;
        if (level == 0)
            break;
        uint32_t ci = node_child_index(&nd, k);
        blk = node_child(&nd, ci);
        child_bounds(&nd, ci, &nd);
    }
    bool found;
    uint32_t i = node_lower_bound(&nd, k, &found);
    if (!found) {
        rc = ERR(-ENOENT);
        goto out;
    }
    const uint8_t *p = nd.buf + nd.off[i];
    size_t vlen = le16_get(p + 16);
    if (val != NULL && cap > 0)
        memcpy(val, p + LEAF_ENT_HDR, cap < vlen ? cap : vlen);
    if (len != NULL)
        *len = vlen;
out:
    mnode_release(&nd);
    return rc;
}

int
map_iterate(struct map *m, uint64_t a, uint64_t b, map_iter_fn fn, void *arg)
{
    VERIFY(m != NULL && fn != NULL);
    if (m->err != 0)
        return m->err;
    if (m->h.root == 0)
        return 0;
    uint32_t h = m->h.height;
    struct mnode *path = calloc(h, sizeof(*path));
    if (path == NULL)
        return ERR(-ENOMEM);
    struct mkey k = { a, b };
    int rc = mnode_path_descend(m, path, k);
    if (rc != 0)
        goto out;
    struct mnode *leaf = &path[h - 1];
    bool found;
    uint32_t i = node_lower_bound(leaf, k, &found);
    for (;;) {
        for (; i < leaf->n; i++) {
            const uint8_t *p = leaf->buf + leaf->off[i];
            rc = fn(arg, le64_get(p), le64_get(p + 8), p + LEAF_ENT_HDR, le16_get(p + 16));
            if (rc != 0)
                goto out;
        }
        /* Climb to the nearest ancestor with a next child, then take leftmost children. */
        uint32_t d = h - 1;
        while (d > 0 && path[d - 1].idx + 1 >= path[d - 1].n)
            d--;
        if (d == 0)
            break;
        path[d - 1].idx++;
        for (; d < h; d++) {
            struct mnode *p = &path[d - 1];
            child_bounds(p, p->idx, &path[d]);
            rc = mnode_read(m, &path[d], node_child(p, p->idx), h - 1 - d);
            if (rc != 0)
                goto out;
        }
        i = 0;
    }
    rc = 0;
out:
    for (uint32_t d = 0; d < h; d++)
        mnode_release(&path[d]);
    free(path);
    return rc;
}

/* ---- map_check --------------------------------------------------------------------------- */

struct check_ctx {
    struct map *m;
    struct mnode *path; /* one buffer per depth */
    uint64_t count;     /* leaf entries seen */
    uint64_t *nodes;    /* reachable node numbers */
    size_t nnodes, cap;
    struct mkey last; /* last key of the previous leaf */
    bool have_last;
};

static int
check_node(struct check_ctx *cc, uint32_t depth, uint64_t blkid)
{
    struct map *m = cc->m;
    struct mnode *nd = &cc->path[depth];
    int rc = mnode_read(m, nd, blkid, m->h.height - 1 - depth);
    if (rc != 0)
        return rc;
    if (cc->nnodes == cc->cap) {
        size_t ncap = cc->cap ? 2 * cc->cap : 64;
        uint64_t *p = realloc(cc->nodes, ncap * sizeof(*p));
        if (p == NULL)
            return ERR(-ENOMEM);
        cc->nodes = p;
        cc->cap = ncap;
    }
    cc->nodes[cc->nnodes++] = blkid;
    if (depth > 0 ? node_payload(nd) < node_min_fill(m) : nd->n < (nd->level > 0 ? 2u : 1u))
        return ERR(-ECORRUPT); /* invariant 4 */
    if (nd->level == 0) {
        if (nd->n > 0 && cc->have_last && key_cmp(node_key(nd, 0), cc->last) <= 0)
            return ERR(-ECORRUPT); /* invariant 1 across leaves */
        if (nd->n > 0) {
            cc->last = node_key(nd, nd->n - 1);
            cc->have_last = true;
        }
        cc->count += nd->n;
        return 0;
    }
    for (uint32_t i = 0; i < nd->n; i++) {
        rc = mnode_alloc(m, &cc->path[depth + 1], false);
        if (rc != 0)
            return rc;
        child_bounds(nd, i, &cc->path[depth + 1]);
        rc = check_node(cc, depth + 1, node_child(nd, i));
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int
u64_cmp(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* Invariant 5: reachable nodes and free-list entries are pairwise distinct. */
static int
check_numbers(struct check_ctx *cc)
{
    struct map *m = cc->m;
    size_t total = cc->nnodes + m->h.nfree;
    uint64_t *all = malloc((total ? total : 1) * sizeof(*all));
    if (all == NULL)
        return ERR(-ENOMEM);
    if (cc->nnodes > 0)
        memcpy(all, cc->nodes, cc->nnodes * sizeof(*all));
    if (m->h.nfree > 0)
        memcpy(all + cc->nnodes, m->freelist, m->h.nfree * sizeof(*all));
    qsort(all, total, sizeof(*all), u64_cmp);
    int rc = 0;
    for (size_t i = 1; i < total; i++) {
        if (all[i] == all[i - 1]) {
            rc = ERR(-ECORRUPT);
            break;
        }
    }
    free(all);
    return rc;
}

int
map_check(struct map *m)
{
    VERIFY(m != NULL);
    if (m->err != 0)
        return m->err;
    int rc = map_hdr_validate(m);
    if (rc != 0)
        return rc;
    struct check_ctx cc = { .m = m };
    uint32_t h = m->h.height;
    if (h > 0) {
        cc.path = calloc(h, sizeof(*cc.path));
        if (cc.path == NULL)
            return ERR(-ENOMEM);
        rc = mnode_alloc(m, &cc.path[0], false);
        if (rc == 0) {
            root_bounds(&cc.path[0]);
            rc = check_node(&cc, 0, m->h.root);
        }
    }
    if (rc == 0 && cc.count != m->h.count)
        rc = ERR(-ECORRUPT); /* invariant 6 */
    if (rc == 0)
        rc = check_numbers(&cc);
    for (uint32_t d = 0; d < h; d++)
        mnode_release(&cc.path[d]);
    free(cc.path);
    free(cc.nodes);
    return rc;
}
