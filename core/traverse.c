/* SPDX-License-Identifier: MIT */
/*
 * traverse: birth-pruned walks of committed block trees (see traverse.h).
 *
 * Recursion depth is bounded by the tree height (at most a handful of indirect levels per object,
 * plus one level for the meta-dnode's objects), so plain recursion is fine.
 */
#include "core/traverse.h"

#include <errno.h>
#include <string.h>

#include "common/err.h"
#include "core/pool_impl.h"

struct walk {
    struct pool *p;
    uint64_t min_birth;
    bool holes, post_order, objects; /* objects: L0 blocks of obj 0 are dnode arrays to enter */
    traverse_fn fn;
    void *arg;
};

static int walk_object(struct walk *w, uint64_t obj, const struct dnode_phys *dp);

static int
walk_dnode_block(struct walk *w, uint64_t blkid, const uint8_t *data, size_t len)
{
    for (size_t s = 0; s < len / DNODE_SIZE; s++) {
        uint64_t obj = blkid * DNODES_PER_BLOCK + s;
        if (obj == 0)
            continue;
        struct dnode_phys dp;
        int rc = dnode_phys_decode(data + s * DNODE_SIZE, &dp);
        if (rc != 0)
            return rc;
        if (dp.a.type == OT_NONE)
            continue;
        rc = walk_object(w, obj, &dp);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int
walk_tree(struct walk *w, uint64_t obj, const struct dnode_phys *dp, const struct blkptr *bp,
          int level, uint64_t index)
{
    if (bp->birth <= w->min_birth)
        return 0;
    struct traverse_pos pos = { .obj = obj, .level = level, .blkid = index };
    if (bp_is_hole(bp))
        return w->holes ? w->fn(w->arg, &pos, bp) : 0;
    if (bp_is_embedded(bp)) {
        if (level != 0)
            return ERR(-ECORRUPT);
        return w->holes ? w->fn(w->arg, &pos, bp) : 0; /* owns no space: only for queries */
    }
    if (bp->level != level)
        return ERR(-ECORRUPT);
    int rc = 0;
    if (!w->post_order && (rc = w->fn(w->arg, &pos, bp)) != 0)
        return rc;
    bool enter_dnodes = level == 0 && obj == 0 && w->objects;
    if (level > 0 || enter_dnodes) {
        struct blockref ref;
        rc = zio_read_ref(w->p, bp, &ref);
        if (rc != 0)
            return rc;
        if (enter_dnodes) {
            rc = walk_dnode_block(w, index, ref.data, ref.len);
        } else if (ref.len != (1u << dp->a.indblkshift)) {
            rc = ERR(-ECORRUPT);
        } else {
            unsigned shift = dp->a.indblkshift - 7u;
            for (uint64_t i = 0; i < (1ull << shift) && rc == 0; i++) {
                struct blkptr child;
                rc = bp_decode(ref.data + i * BP_SIZE, &child);
                if (rc == 0 && child.birth > bp->birth)
                    rc = ERR(-ECORRUPT); /* a child born after its parent: damaged tree */
                if (rc == 0)
                    rc = walk_tree(w, obj, dp, &child, level - 1, (index << shift) | i);
            }
        }
        blockref_release(&ref);
        if (rc != 0)
            return rc;
    }
    if (w->post_order)
        rc = w->fn(w->arg, &pos, bp);
    return rc;
}

static int
walk_object(struct walk *w, uint64_t obj, const struct dnode_phys *dp)
{
    if (dp->nlevels == 0 || dp->a.indblkshift < INDIRECT_SHIFT_MIN ||
        dp->a.indblkshift > INDIRECT_SHIFT_MAX)
        return ERR(-ECORRUPT);
    for (unsigned i = 0; i < dp->a.nblkptr; i++) {
        int rc = walk_tree(w, obj, dp, &dp->blkptr[i], dp->nlevels - 1, i);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int
traverse_objset(struct pool *p, const struct blkptr *root, uint64_t min_birth, traverse_fn fn,
                void *arg)
{
    if (bp_is_hole(root) || root->birth <= min_birth)
        return 0;
    if (root->type != OT_OBJSET || root->lsize != OBJSET_PHYS_SIZE)
        return ERR(-ECORRUPT);
    uint8_t buf[OBJSET_PHYS_SIZE];
    int rc = zio_read(p, root, buf);
    if (rc != 0)
        return rc;
    struct dnode_phys meta;
    rc = dnode_phys_decode(buf, &meta);
    if (rc == 0 && meta.a.type != OT_DNODE)
        rc = ERR(-ECORRUPT);
    struct walk w = {
        .p = p, .min_birth = min_birth, .post_order = true, .objects = true, .fn = fn, .arg = arg
    };
    if (rc == 0)
        rc = walk_object(&w, 0, &meta);
    if (rc == 0 && !bp_is_embedded(root)) /* an embedded root owns no space */
        rc = fn(arg, &(struct traverse_pos){ .obj = 0, .level = -1, .blkid = 0 }, root);
    return rc;
}

int
traverse_object(struct pool *p, uint64_t obj, const struct dnode_phys *dp, uint64_t min_birth,
                bool holes, traverse_fn fn, void *arg)
{
    struct walk w = { .p = p, .min_birth = min_birth, .holes = holes, .fn = fn, .arg = arg };
    return walk_object(&w, obj, dp);
}
