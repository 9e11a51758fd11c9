/* SPDX-License-Identifier: MIT */
/*
 * dsl_ops: create, destroy, rename, bookmarks, holds, set and inherit — the namespace operations
 * other than snapshots (dsl_snap.c). Each public function validates what it can in the caller's
 * thread and runs the rest as a sync task (dsl.h); every task checks all its preconditions before
 * its first change.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "core/dsl_impl.h"
#include "core/objset.h"
#include "core/zvol.h"

static unsigned
props_kind_of(uint32_t kind)
{
    return kind == DSL_KIND_VOL ? PROP_VOL : kind == DSL_KIND_SNAP ? PROP_SNAP : PROP_FS;
}

/* ---- properties ------------------------------------------------------------------------------ */

int
dsl_props_check(struct pool *p, uint32_t kind, const struct dsl_prop_set *props, size_t nprops,
                bool at_create, struct err_msg *em)
{
    (void)p;
    for (size_t i = 0; i < nprops; i++) {
        char err[256];
        int rc = props_validate_set(props[i].name, props[i].value, props_kind_of(kind), at_create,
                                    NULL, err, sizeof(err));
        if (rc != 0)
            return err_msg_set(em, rc, "%s", err);
        for (size_t j = 0; j < i; j++)
            if (strcmp(props[i].name, props[j].name) == 0)
                return err_msg_set(em, -EINVAL, "property '%s' given twice", props[i].name);
    }
    return 0;
}

/* The stored state of one property of n, and writing a changed state back (one code path for
 * every transition: props_stored_apply). */
static void
stored_load(const struct dsl_node *n, const char *name, struct props_stored *st)
{
    char key[PROPS_NAME_MAX + 16];
    memset(st, 0, sizeof(*st));
    const struct dsl_propent *e = dsl_prop_find(n, name);
    if (e != NULL) {
        st->has_local = true;
        st->local = (struct prop_val){ e->num, e->is_num ? NULL : e->str };
    }
    snprintf(key, sizeof(key), "%s$recvd", name);
    if ((e = dsl_prop_find(n, key)) != NULL) {
        st->has_received = true;
        st->received = (struct prop_val){ e->num, e->is_num ? NULL : e->str };
    }
    snprintf(key, sizeof(key), "%s$inherit", name);
    st->inherit_override = dsl_prop_find(n, key) != NULL;
}

static int
store_val(struct dsl_node *n, const char *key, bool present, const struct prop_val *v, bool is_str)
{
    if (!present) {
        dsl_prop_remove(n, key);
        return 0;
    }
    return is_str ? dsl_prop_store_str(n, key, v->str ? v->str : "")
                  : dsl_prop_store_num(n, key, v->num);
}

static int
stored_apply(struct dsl_node *n, const char *name, enum props_op op, const struct prop_val *v,
             bool is_str)
{
    struct props_stored st;
    stored_load(n, name, &st);
    /* Copy strings: the stored entries they point into are rewritten below. */
    char *ls = st.local.str ? strdup(st.local.str) : NULL;
    char *rs = st.received.str ? strdup(st.received.str) : NULL;
    st.local.str = ls;
    st.received.str = rs;
    props_stored_apply(&st, op, v);
    char key[PROPS_NAME_MAX + 16];
    int rc = store_val(n, name, st.has_local, &st.local, is_str);
    snprintf(key, sizeof(key), "%s$recvd", name);
    if (rc == 0)
        rc = store_val(n, key, st.has_received, &st.received, is_str);
    snprintf(key, sizeof(key), "%s$inherit", name);
    if (rc == 0)
        rc = store_val(n, key, st.inherit_override, &(struct prop_val){ 1, NULL }, false);
    free(ls);
    free(rs);
    return rc;
}

/*
 * What a thick volume reserves: zvol_thick_reservation's logical worst case, with every data block
 * counted at what the pool's most expensive top-level allocates for it (RAID-Z parity and padding:
 * a 4 KiB block on a raidz2 takes 12 KiB), so the reservation is real space, not a promise.
 */
static uint64_t
thick_reservation(struct pool *p, uint64_t volsize, uint32_t volblocksize, unsigned copies)
{
    uint64_t rsv = zvol_thick_reservation(volsize, volblocksize, copies);
    if (volblocksize == 0)
        volblocksize = ZVOL_DEFAULT_BLOCKSIZE;
    uint64_t worst = pool_worst_alloc_size(p, volblocksize);
    if (worst > volblocksize) {
        uint64_t blocks = (volsize + volblocksize - 1) / volblocksize;
        rsv += blocks * (worst - volblocksize) * (copies ? copies : 1);
    }
    return rsv;
}

/*
 * Refuses a volblocksize for which some top-level would spend most of every allocation on parity
 * and padding (RAID-Z with small blocks, pool-format.md §14.6), naming the smallest that does not.
 */
static int
check_volblocksize(struct pool *p, uint64_t vbs, struct err_msg *em)
{
    uint64_t worst = pool_worst_alloc_size(p, vbs);
    if (worst <= 2 * vbs)
        return 0;
    uint64_t good = vbs;
    while (good < BLOCK_MAX_SIZE && pool_worst_alloc_size(p, good) > 2 * good)
        good *= 2;
    return err_msg_set(em, -EINVAL,
                       "volblocksize %lluK would take %lluK on this pool's RAID-Z (%.1fx: more "
                       "parity and padding than data); use volblocksize=%lluK or larger",
                       (unsigned long long)(vbs >> 10), (unsigned long long)(worst >> 10),
                       (double)worst / (double)vbs, (unsigned long long)(good >> 10));
}

int
dsl_props_apply(struct pool *p, uint64_t txg, struct dsl_node *n, const struct dsl_prop_set *props,
                size_t nprops, bool at_create, struct err_msg *em)
{
    (void)txg;
    int rc = dsl_props_check(p, n->ph.kind, props, nprops, at_create, em);
    for (size_t i = 0; rc == 0 && i < nprops; i++) {
        uint64_t num = 0;
        rc = props_validate_set(props[i].name, props[i].value, props_kind_of(n->ph.kind), at_create,
                                &num, NULL, 0);
        if (rc != 0)
            break;
        enum prop_id id;
        bool is_str =
            props_from_name(props[i].name, &id) != 0 || props_desc(id)->type == PROP_VAL_STRING;
        if (!is_str && id == PROP_REFRESERVATION && num == PROPS_REFRESERV_AUTO) {
            uint64_t vs = dsl_prop_num(n, PROP_VOLSIZE);
            num = thick_reservation(p, vs, (uint32_t)dsl_prop_num(n, PROP_VOLBLOCKSIZE),
                                    (unsigned)dsl_prop_num(n, PROP_COPIES));
        }
        struct prop_val v = { .num = num, .str = is_str ? props[i].value : NULL };
        rc = stored_apply(n, props[i].name, PROPS_OP_SET, &v, is_str);
    }
    return rc;
}

void
dsl_apply_defaults(struct dsl_node *h)
{
    uint64_t comp = dsl_prop_num(h, PROP_COMPRESSION);
    objset_set_defaults(h->os, (uint8_t)dsl_prop_num(h, PROP_CHECKSUM),
                        (uint8_t)PROPS_COMPRESS_ALG(comp), (uint8_t)PROPS_COMPRESS_LEVEL(comp));
}

int
dsl_apply_effective(struct pool *p, uint64_t txg, struct dsl_node *h)
{
    uint64_t comp = dsl_prop_num(h, PROP_COMPRESSION);
    uint8_t cks = (uint8_t)dsl_prop_num(h, PROP_CHECKSUM);
    uint8_t alg = (uint8_t)PROPS_COMPRESS_ALG(comp), lvl = (uint8_t)PROPS_COMPRESS_LEVEL(comp);
    uint8_t copies = (uint8_t)dsl_prop_num(h, PROP_COPIES);
    dsl_apply_defaults(h);
    int rc = 0;
    if (h->ph.kind == DSL_KIND_VOL) {
        struct obj_info oi;
        rc = obj_stat(h->os, ZVOL_OBJ, &oi);
        if (rc == 0 && (oi.checksum != cks || oi.compress != alg || oi.compress_level != lvl ||
                        oi.copies != copies)) {
            struct tx tx = { .pool = p, .txg = txg };
            rc = obj_set_props(h->os, &tx, ZVOL_OBJ, cks, alg, lvl, copies);
        }
    }
    for (size_t i = 0; rc == 0 && i < h->children.n; i++)
        rc = dsl_apply_effective(p, txg, h->children.v[i]);
    return rc;
}

/* ---- create --------------------------------------------------------------------------------- */

struct create_args {
    const char *name;
    enum dsl_kind kind;
    const struct dsl_prop_set *props;
    size_t nprops;
    unsigned flags;
    uint64_t volsize, volblocksize;
};

static struct dsl_node *
new_head(struct pool *p, uint64_t txg, struct dsl_node *parent, const char *leaf, size_t len,
         enum dsl_kind kind, int *rcp)
{
    struct dsl_node *n = dsl_node_new();
    if (n == NULL || (n->name = strndup(leaf, len)) == NULL) {
        free(n);
        *rcp = -ENOMEM;
        return NULL;
    }
    n->ph.kind = kind;
    n->ph.create_txg = txg;
    n->ph.create_time = (uint64_t)time(NULL);
    n->ph.guid = pool_random_guid();
    n->ph.parent_obj = parent->obj;
    bp_make_hole(&n->ph.root, OBJSET_PHYS_SIZE, OT_OBJSET, 0, 0);
    n->parent = parent;
    int rc = dsl_node_create_obj(p, txg, n);
    if (rc == 0)
        rc = nodevec_add(&parent->children, n);
    if (rc == 0)
        rc = dsl_head_new_deadlist(p, txg, n);
    if (rc == 0)
        rc = dsl_head_open_objset(p, n, &n->ph.root,
                                  kind == DSL_KIND_VOL ? OBJSET_TYPE_ZVOL : OBJSET_TYPE_FS);
    if (rc == 0) {
        /* The empty object set is written in this txg (step 3 of dsl_sync). */
        pthread_mutex_lock(&n->os->meta->lock);
        rc = dnode_attrs_dirty_locked(n->os->meta, txg);
        pthread_mutex_unlock(&n->os->meta->lock);
    }
    *rcp = rc;
    return n;
}

static int
create_task(struct pool *p, uint64_t txg, void *arg, struct err_msg *em)
{
    struct create_args *a = arg;
    struct dsl_node *parent = NULL;
    const char *leaf = NULL;
    /* With -p, find the deepest existing ancestor; every missing one becomes a filesystem. */
    char path[DSL_NAME_MAX + 1];
    snprintf(path, sizeof(path), "%s", a->name);
    int rc = dsl_new_head_parent(p, a->name, &parent, &leaf, em);
    size_t first_missing = 0;
    if (rc == -ENOENT && (a->flags & DSL_CREATE_PARENTS)) {
        struct err_msg ign = { 0 };
        char *slash = strrchr(path, '/');
        while (slash != NULL) {
            *slash = 0;
            struct dsl_node *anc;
            if (dsl_lookup(p, path, &anc, &ign) == 0) {
                if (anc->ph.kind != DSL_KIND_FS)
                    return err_msg_set(em, -EINVAL, "'%s' is not a filesystem", path);
                parent = anc;
                first_missing = strlen(path) + 1;
                break;
            }
            slash = strrchr(path, '/');
        }
        if (parent == NULL)
            return err_msg_set(em, -ENOENT, "no pool named like '%s'", a->name);
        for (const char *s = a->name + first_missing;;) {
            const char *sl = strchr(s, '/');
            size_t len = sl ? (size_t)(sl - s) : strlen(s);
            if (!dsl_component_valid(s, len) || strpbrk(a->name, "@#") != NULL)
                return err_msg_set(em, -EINVAL, "invalid dataset name '%s'", a->name);
            if (sl == NULL)
                break;
            s = sl + 1;
        }
        rc = 0;
        leaf = NULL;
    }
    if (rc != 0)
        return rc;
    /* Create the missing parents, then the dataset. */
    if (leaf == NULL) {
        const char *s = a->name + first_missing;
        for (;;) {
            const char *slash = strchr(s, '/');
            if (slash == NULL) {
                leaf = s;
                break;
            }
            struct dsl_node *n = new_head(p, txg, parent, s, (size_t)(slash - s), DSL_KIND_FS, &rc);
            if (rc != 0)
                return DSL_FATAL(p, rc);
            rc = dsl_apply_effective(p, txg, n);
            if (rc != 0)
                return DSL_FATAL(p, rc);
            parent = n;
            s = slash + 1;
        }
    }
    struct dsl_node *n = new_head(p, txg, parent, leaf, strlen(leaf), a->kind, &rc);
    if (rc == 0)
        rc = dsl_props_apply(p, txg, n, a->props, a->nprops, true, em);
    if (rc == 0 && a->kind == DSL_KIND_VOL) {
        rc = dsl_prop_store_num(n, "volsize", a->volsize);
        if (rc == 0)
            rc = dsl_prop_store_num(n, "volblocksize", a->volblocksize);
        if (rc == 0 && !(a->flags & DSL_CREATE_SPARSE) &&
            dsl_prop_find(n, "refreservation") == NULL)
            rc = dsl_prop_store_num(n, "refreservation",
                                    thick_reservation(p, a->volsize, (uint32_t)a->volblocksize,
                                                      (unsigned)dsl_prop_num(n, PROP_COPIES)));
        struct obj_create_opts o = { .type = OT_ZVOL,
                                     .blocksize = (uint32_t)a->volblocksize,
                                     .checksum = CKSUM_INHERIT,
                                     .compress = COMPRESS_INHERIT,
                                     .copies = (uint8_t)dsl_prop_num(n, PROP_COPIES) };
        uint64_t obj = 0;
        if (rc == 0)
            rc = objset_obj_create_synctx(n->os, txg, &o, &obj);
        if (rc == 0 && obj != ZVOL_OBJ)
            rc = -EINVAL;
        if (rc == 0) {
            struct tx tx = { .pool = p, .txg = txg };
            rc = obj_truncate(n->os, &tx, ZVOL_OBJ, a->volsize);
        }
    }
    if (rc == 0)
        rc = dsl_apply_effective(p, txg, n);
    return rc != 0 ? DSL_FATAL(p, rc) : 0;
}

int
dsl_create(struct pool *p, const char *name, enum dsl_kind kind, const struct dsl_prop_set *props,
           size_t nprops, unsigned flags, struct err_msg *em)
{
    if (kind != DSL_KIND_FS && kind != DSL_KIND_VOL)
        return err_msg_set(em, -EINVAL, "only filesystems and volumes can be created");
    struct create_args a = { name, kind, props, nprops, flags, 0, ZVOL_DEFAULT_BLOCKSIZE };
    int rc = dsl_props_check(p, kind, props, nprops, true, em);
    if (rc != 0)
        return rc;
    bool have_size = false, have_vbs = false;
    for (size_t i = 0; i < nprops; i++) {
        if (strcmp(props[i].name, "volsize") == 0) {
            props_parse(PROP_VOLSIZE, props[i].value, &a.volsize, NULL, 0);
            have_size = true;
        } else if (strcmp(props[i].name, "volblocksize") == 0) {
            props_parse(PROP_VOLBLOCKSIZE, props[i].value, &a.volblocksize, NULL, 0);
            have_vbs = true;
        }
    }
    /* Unless told otherwise, a volume on RAID-Z gets the smallest block size, from the default
     * up, that does not spend most of each allocation on parity and padding. */
    while (kind == DSL_KIND_VOL && !have_vbs && a.volblocksize < BLOCK_MAX_SIZE &&
           pool_worst_alloc_size(p, a.volblocksize) > 2 * a.volblocksize)
        a.volblocksize *= 2;
    if (kind == DSL_KIND_VOL) {
        char err[256];
        if (!have_size)
            return err_msg_set(em, -EINVAL, "a volume needs a size (volsize)");
        if ((rc = props_validate_volsize(a.volsize, a.volblocksize, err, sizeof(err))) != 0)
            return err_msg_set(em, rc, "%s", err);
        if ((rc = check_volblocksize(p, a.volblocksize, em)) != 0)
            return rc;
    } else if (have_size) {
        return err_msg_set(em, -EINVAL, "volsize applies to volumes only");
    }
    /* volsize / volblocksize are stored by the task itself. */
    struct dsl_prop_set *rest = calloc(nprops ? nprops : 1, sizeof(*rest));
    if (rest == NULL)
        return -ENOMEM;
    size_t nrest = 0;
    for (size_t i = 0; i < nprops; i++)
        if (strcmp(props[i].name, "volsize") != 0 && strcmp(props[i].name, "volblocksize") != 0)
            rest[nrest++] = props[i];
    a.props = rest;
    a.nprops = nrest;
    rc = dsl_sync_task(p, create_task, &a, em);
    free(rest);
    return rc;
}

/* ---- destroy -------------------------------------------------------------------------------- */

struct destroy_args {
    const char *name;
    unsigned flags;
    uint64_t txg;
};

static int check_head_tree(struct dsl_node *h, unsigned flags, uint64_t txg, struct err_msg *em,
                           unsigned depth);
static int check_head_one(struct dsl_node *h, unsigned flags, uint64_t txg, struct err_msg *em,
                          unsigned depth);

/*
 * The checks walk child and clone edges depth first with marks (1 = on the current path, 2 =
 * checked): meeting a node on the path means the edges form a cycle (a rename or promote can
 * make one), which a recursive destroy could not order, so it is refused.
 */
static void
clear_marks(struct pool *p)
{
    size_t it = 0;
    uint64_t key;
    void *v;
    while (u64map_next(&p->dsl->by_obj, &it, &key, &v))
        ((struct dsl_node *)v)->mark = 0;
}

static int
cycle_error(struct err_msg *em)
{
    return err_msg_set(em, -ELOOP,
                       "clones and children depend on each other in a cycle; "
                       "destroy them one at a time");
}

static int
check_snapshot(struct dsl_node *s, unsigned flags, uint64_t txg, struct err_msg *em, unsigned depth)
{
    (void)depth;
    char name[DSL_NAME_MAX + 1];
    dsl_node_name(s, name, sizeof(name));
    if (s->nholds > 0)
        return err_msg_set(em, -EBUSY, "snapshot '%s' has %zu hold(s) (first: '%s')", name,
                           s->nholds, s->holds[0].tag);
    if (dsl_node_refs(s) > 0)
        return err_msg_set(em, -EBUSY, "snapshot '%s' is in use", name);
    if (s->clones.n > 0 && !(flags & DSL_DESTROY_CLONES)) {
        char cname[DSL_NAME_MAX + 1];
        dsl_node_name(s->clones.v[0], cname, sizeof(cname));
        return err_msg_set(em, -EBUSY, "snapshot '%s' has dependent clones (e.g. '%s'); use -R",
                           name, cname);
    }
    for (size_t i = 0; i < s->clones.n; i++) {
        int rc = check_head_tree(s->clones.v[i], flags | DSL_DESTROY_RECURSIVE, txg, em, depth + 1);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int
check_head_tree(struct dsl_node *h, unsigned flags, uint64_t txg, struct err_msg *em,
                unsigned depth)
{
    if (h->mark == 1)
        return cycle_error(em);
    if (h->mark == 2)
        return 0;
    h->mark = 1;
    int rc = check_head_one(h, flags, txg, em, depth);
    h->mark = 2;
    return rc;
}

static int
check_head_one(struct dsl_node *h, unsigned flags, uint64_t txg, struct err_msg *em, unsigned depth)
{
    char name[DSL_NAME_MAX + 1];
    dsl_node_name(h, name, sizeof(name));
    if (h->parent == NULL)
        return err_msg_set(em, -EINVAL, "'%s' is the pool's root dataset", name);
    if (!(flags & DSL_DESTROY_RECURSIVE) && h->children.n > 0)
        return err_msg_set(em, -ENOTEMPTY, "'%s' has children; use -r", name);
    if (!(flags & DSL_DESTROY_RECURSIVE) && h->snaps.n > 0)
        return err_msg_set(em, -ENOTEMPTY, "'%s' has snapshots; use -r", name);
    if (dsl_node_refs(h) > 0)
        return err_msg_set(em, -EBUSY, "'%s' is in use (%u open handles)", name, dsl_node_refs(h));
    if (objset_is_dirty(h->os, txg + 1))
        return -EAGAIN;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < h->snaps.n; i++)
        rc = check_snapshot(h->snaps.v[i], flags, txg, em, depth + 1);
    for (size_t i = 0; rc == 0 && i < h->children.n; i++)
        rc = check_head_tree(h->children.v[i], flags, txg, em, depth + 1);
    return rc;
}

struct free_dead_ctx {
    struct pool *p;
    uint64_t txg, after;
};

static int
free_dead(void *arg, const struct blkptr *bp)
{
    struct free_dead_ctx *fc = arg;
    if (bp->birth > fc->after)
        zio_free(fc->p, fc->txg, bp);
    return 0;
}

static void
unlink_head(struct dsl_node *h)
{
    nodevec_remove(&h->parent->children, h);
    if (h->origin != NULL) {
        nodevec_remove(&h->origin->clones, h);
        h->origin->ph.num_clones--;
        h->origin->hot_dirty = true;
    }
}

/* Destroys head h with everything below it and its snapshots' clones (checked beforehand). */
static int
destroy_head_tree(struct pool *p, uint64_t txg, struct dsl_node *h)
{
    int rc = 0;
    while (rc == 0 && h->children.n > 0)
        rc = destroy_head_tree(p, txg, h->children.v[h->children.n - 1]);
    for (size_t i = 0; rc == 0 && i < h->snaps.n; i++)
        while (rc == 0 && h->snaps.v[i]->clones.n > 0)
            rc = destroy_head_tree(p, txg, h->snaps.v[i]->clones.v[0]);
    if (rc != 0)
        return rc;
    /* Every block of the lineage born after its origin is in the head's tree or on exactly one
     * deadlist (dsl_snap.c): free both sets, walk nothing else. */
    uint64_t after = h->origin != NULL ? h->origin->ph.create_txg : 0;
    rc = dsl_free_tree(p, txg, &h->os->root_bp, after);
    struct free_dead_ctx fc = { p, txg, after };
    if (rc == 0)
        rc = deadlist_iterate(h->dl, free_dead, &fc);
    for (size_t i = 0; rc == 0 && i < h->snaps.n; i++)
        rc = deadlist_iterate(h->snaps.v[i]->dl, free_dead, &fc);
    while (rc == 0 && h->snaps.n > 0) {
        struct dsl_node *s = h->snaps.v[--h->snaps.n];
        rc = dsl_node_destroy_obj(p, txg, s);
    }
    while (rc == 0 && h->bookmarks.n > 0)
        rc = dsl_node_destroy_obj(p, txg, h->bookmarks.v[--h->bookmarks.n]);
    if (rc != 0)
        return DSL_FATAL(p, rc);
    unlink_head(h);
    rc = dsl_node_destroy_obj(p, txg, h);
    return rc != 0 ? DSL_FATAL(p, rc) : 0;
}

/* Snapshots named `snapname` of h and (recursive) of every head below it. */
static int
collect_snaps(struct dsl_node *h, const char *snapname, bool recursive, struct nodevec *out)
{
    int rc = 0;
    for (size_t i = 0; i < h->snaps.n && rc == 0; i++)
        if (strcmp(h->snaps.v[i]->name, snapname) == 0)
            rc = nodevec_add(out, h->snaps.v[i]);
    for (size_t i = 0; recursive && i < h->children.n && rc == 0; i++)
        rc = collect_snaps(h->children.v[i], snapname, true, out);
    return rc;
}

static int
destroy_task(struct pool *p, uint64_t txg, void *arg, struct err_msg *em)
{
    struct destroy_args *a = arg;
    struct dsl_node *n;
    const char *at = strchr(a->name, '@');
    bool recursive = (a->flags & DSL_DESTROY_RECURSIVE) != 0;
    if (at != NULL && recursive) {
        /* `destroy -r fs@snap`: that snapshot of fs and of every descendant that has it. */
        char head[DSL_NAME_MAX + 1];
        snprintf(head, sizeof(head), "%.*s", (int)(at - a->name), a->name);
        int rc = dsl_lookup(p, head, &n, em);
        if (rc != 0)
            return rc;
        struct nodevec snaps = { 0 };
        rc = collect_snaps(n, at + 1, true, &snaps);
        if (rc == 0 && snaps.n == 0)
            rc = err_msg_set(em, -ENOENT, "snapshot '%s' does not exist", a->name);
        clear_marks(p);
        for (size_t i = 0; i < snaps.n; i++)
            snaps.v[i]->parent->mark = 1; /* a clone tree reaching back here is a cycle */
        for (size_t i = 0; rc == 0 && i < snaps.n; i++)
            rc = check_snapshot(snaps.v[i], a->flags, txg, em, 0);
        for (size_t i = 0; rc == 0 && i < snaps.n; i++) {
            struct dsl_node *s = snaps.v[i];
            while (rc == 0 && s->clones.n > 0)
                rc = destroy_head_tree(p, txg, s->clones.v[0]);
            if (rc == 0)
                rc = dsl_snap_destroy(p, txg, s, NULL);
        }
        free(snaps.v);
        return rc;
    }
    int rc = dsl_lookup(p, a->name, &n, em);
    if (rc != 0)
        return rc;
    switch (n->ph.kind) {
    case DSL_KIND_BOOKMARK:
        nodevec_remove(&n->parent->bookmarks, n);
        rc = dsl_node_destroy_obj(p, txg, n);
        return rc != 0 ? DSL_FATAL(p, rc) : 0;
    case DSL_KIND_SNAP:
        clear_marks(p);
        n->parent->mark = 1; /* a clone tree reaching back to the head is a cycle */
        rc = check_snapshot(n, a->flags, txg, em, 0);
        while (rc == 0 && n->clones.n > 0)
            rc = destroy_head_tree(p, txg, n->clones.v[0]);
        if (rc == 0)
            rc = dsl_snap_destroy(p, txg, n, NULL);
        return rc;
    default:
        clear_marks(p);
        rc = check_head_tree(n, a->flags, txg, em, 0);
        if (rc == 0)
            rc = destroy_head_tree(p, txg, n);
        return rc;
    }
}

int
dsl_destroy(struct pool *p, const char *name, unsigned flags, struct err_msg *em)
{
    struct destroy_args a = { name, flags, 0 };
    return dsl_sync_task_retry(p, destroy_task, &a, em);
}

/* ---- rename --------------------------------------------------------------------------------- */

struct rename_args {
    const char *from, *to;
};

static int
rename_task(struct pool *p, uint64_t txg, void *arg, struct err_msg *em)
{
    (void)txg;
    struct rename_args *a = arg;
    struct dsl_node *n;
    int rc = dsl_lookup(p, a->from, &n, em);
    if (rc != 0)
        return rc;
    char *newname;
    if (!dsl_is_head(n)) {
        char sep = n->ph.kind == DSL_KIND_SNAP ? '@' : '#';
        const char *fs = strchr(a->from, sep), *ts = strchr(a->to, sep);
        if (ts == NULL || (size_t)(ts - a->to) != (size_t)(fs - a->from) ||
            memcmp(a->to, a->from, (size_t)(fs - a->from)) != 0)
            return err_msg_set(em, -EXDEV, "a %s can only be renamed within its dataset",
                               sep == '@' ? "snapshot" : "bookmark");
        if (!dsl_component_valid(ts + 1, strlen(ts + 1)) || strpbrk(ts + 1, "@#/"))
            return err_msg_set(em, -EINVAL, "invalid name '%s'", a->to);
        struct dsl_node *other;
        struct err_msg ign = { 0 };
        if (dsl_lookup(p, a->to, &other, &ign) == 0)
            return err_msg_set(em, -EEXIST, "'%s' already exists", a->to);
        if ((newname = strdup(ts + 1)) == NULL)
            return -ENOMEM;
    } else {
        if (n->parent == NULL)
            return err_msg_set(em, -EINVAL, "the pool's root dataset cannot be renamed");
        struct dsl_node *parent;
        const char *leaf;
        rc = dsl_new_head_parent(p, a->to, &parent, &leaf, em);
        if (rc != 0)
            return rc;
        for (struct dsl_node *x = parent; x != NULL; x = x->parent)
            if (x == n)
                return err_msg_set(em, -EINVAL, "cannot move '%s' below itself", a->from);
        if ((newname = strdup(leaf)) == NULL)
            return -ENOMEM;
        if (parent != n->parent) {
            rc = nodevec_add(&parent->children, n);
            if (rc != 0) {
                free(newname);
                return rc;
            }
            nodevec_remove(&n->parent->children, n);
            n->parent = parent;
            n->ph.parent_obj = parent->obj;
            n->hot_dirty = true;
        }
    }
    free(n->name);
    n->name = newname;
    n->cold_dirty = true;
    p->dsl->space_dirty = true;
    return 0;
}

static int apply_effective_open(struct pool *p, const char *name);

int
dsl_rename(struct pool *p, const char *from, const char *to, struct err_msg *em)
{
    struct rename_args a = { from, to };
    int rc = dsl_sync_task(p, rename_task, &a, em);
    if (rc == 0 && strpbrk(to, "@#") == NULL)
        rc = apply_effective_open(p, to); /* inherited properties follow the new parent */
    return rc;
}

/* ---- bookmarks and holds -------------------------------------------------------------------- */

struct bookmark_args {
    const char *source, *name;
};

static int
bookmark_task(struct pool *p, uint64_t txg, void *arg, struct err_msg *em)
{
    struct bookmark_args *a = arg;
    struct dsl_node *src;
    int rc = dsl_lookup(p, a->source, &src, em);
    if (rc != 0)
        return rc;
    if (dsl_is_head(src))
        return err_msg_set(em, -EINVAL, "'%s' is not a snapshot or bookmark", a->source);
    const char *hash = strchr(a->name, '#');
    char head[DSL_NAME_MAX + 1];
    dsl_node_name(src->parent, head, sizeof(head));
    if (hash == NULL || strlen(head) != (size_t)(hash - a->name) ||
        memcmp(head, a->name, strlen(head)) != 0)
        return err_msg_set(em, -EINVAL, "bookmark '%s' must be named '%s#name'", a->name, head);
    if (!dsl_component_valid(hash + 1, strlen(hash + 1)) || strpbrk(hash + 1, "@#/"))
        return err_msg_set(em, -EINVAL, "invalid bookmark name '%s'", a->name);
    struct dsl_node *other;
    struct err_msg ign = { 0 };
    if (dsl_lookup(p, a->name, &other, &ign) == 0)
        return err_msg_set(em, -EEXIST, "bookmark '%s' already exists", a->name);
    struct dsl_node *b = dsl_node_new();
    if (b == NULL || (b->name = strdup(hash + 1)) == NULL) {
        free(b);
        return -ENOMEM;
    }
    b->ph.kind = DSL_KIND_BOOKMARK;
    b->ph.create_txg = src->ph.create_txg;
    b->ph.guid = src->ph.guid;
    b->ph.create_time = src->ph.create_time;
    b->ph.parent_obj = src->parent->obj;
    b->ph.ref_asize = src->ph.ref_asize;
    b->ph.ref_psize = src->ph.ref_psize;
    b->ph.ref_lsize = src->ph.ref_lsize;
    bp_make_hole(&b->ph.root, OBJSET_PHYS_SIZE, OT_OBJSET, 0, 0);
    b->parent = src->parent;
    rc = dsl_node_create_obj(p, txg, b);
    if (rc == 0)
        rc = nodevec_add(&src->parent->bookmarks, b);
    if (rc != 0) {
        dsl_node_free(b);
        return DSL_FATAL(p, rc);
    }
    return 0;
}

int
dsl_bookmark(struct pool *p, const char *source, const char *bookmark, struct err_msg *em)
{
    struct bookmark_args a = { source, bookmark };
    return dsl_sync_task(p, bookmark_task, &a, em);
}

struct hold_args {
    const char *snap, *tag;
    bool release;
};

static int
hold_task(struct pool *p, uint64_t txg, void *arg, struct err_msg *em)
{
    (void)txg;
    struct hold_args *a = arg;
    struct dsl_node *s;
    int rc = dsl_lookup(p, a->snap, &s, em);
    if (rc == 0 && s->ph.kind != DSL_KIND_SNAP)
        rc = err_msg_set(em, -EINVAL, "'%s' is not a snapshot", a->snap);
    if (rc != 0)
        return rc;
    size_t i = 0;
    while (i < s->nholds && strcmp(s->holds[i].tag, a->tag) != 0)
        i++;
    if (a->release) {
        if (i == s->nholds)
            return err_msg_set(em, -ENOENT, "no hold '%s' on '%s'", a->tag, a->snap);
        free(s->holds[i].tag);
        memmove(&s->holds[i], &s->holds[i + 1], (s->nholds - i - 1) * sizeof(s->holds[0]));
        s->nholds--;
    } else {
        if (i < s->nholds)
            return err_msg_set(em, -EEXIST, "hold '%s' already exists on '%s'", a->tag, a->snap);
        if (s->nholds >= DSL_HOLDS_MAX)
            return err_msg_set(em, -ENOSPC, "too many holds on '%s'", a->snap);
        struct dsl_holdent *nh = realloc(s->holds, (s->nholds + 1) * sizeof(*nh));
        if (nh == NULL)
            return -ENOMEM;
        s->holds = nh;
        if ((nh[s->nholds].tag = strdup(a->tag)) == NULL)
            return -ENOMEM;
        nh[s->nholds++].time = (uint64_t)time(NULL);
    }
    s->cold_dirty = true;
    return 0;
}

static int
hold_common(struct pool *p, const char *snap, const char *tag, bool release, struct err_msg *em)
{
    size_t n = tag ? strlen(tag) : 0;
    if (n == 0 || n > DSL_TAG_MAX || memchr(tag, '\n', n))
        return err_msg_set(em, -EINVAL, "invalid hold tag");
    struct hold_args a = { snap, tag, release };
    return dsl_sync_task(p, hold_task, &a, em);
}

int
dsl_hold(struct pool *p, const char *snap, const char *tag, struct err_msg *em)
{
    return hold_common(p, snap, tag, false, em);
}

int
dsl_release(struct pool *p, const char *snap, const char *tag, struct err_msg *em)
{
    return hold_common(p, snap, tag, true, em);
}

int
dsl_holds(struct pool *p, const char *snap, dsl_hold_fn fn, void *arg, struct err_msg *em)
{
    pthread_rwlock_rdlock(&p->dsl->lock);
    struct dsl_node *s;
    int rc = dsl_lookup(p, snap, &s, em);
    if (rc == 0 && s->ph.kind != DSL_KIND_SNAP)
        rc = err_msg_set(em, -EINVAL, "'%s' is not a snapshot", snap);
    struct dsl_holdent *copy = NULL;
    size_t n = 0;
    if (rc == 0 && s->nholds > 0) {
        copy = calloc(s->nholds, sizeof(*copy));
        for (size_t i = 0; copy != NULL && i < s->nholds; i++) {
            copy[i].tag = strdup(s->holds[i].tag);
            copy[i].time = s->holds[i].time;
            n++;
        }
        if (copy == NULL)
            rc = -ENOMEM;
    }
    pthread_rwlock_unlock(&p->dsl->lock);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && copy[i].tag != NULL)
            rc = fn(arg, copy[i].tag, copy[i].time);
        free(copy[i].tag);
    }
    free(copy);
    return rc;
}

/* ---- set / inherit -------------------------------------------------------------------------- */

struct set_args {
    const char *name;
    const struct dsl_prop_set *props;
    size_t n;
    const char *inherit;
    bool revert;
};

static int
set_task(struct pool *p, uint64_t txg, void *arg, struct err_msg *em)
{
    struct set_args *a = arg;
    struct dsl_node *n;
    int rc = dsl_lookup(p, a->name, &n, em);
    if (rc == 0 && n->ph.kind == DSL_KIND_BOOKMARK)
        rc = err_msg_set(em, -EINVAL, "bookmarks have no settable properties");
    if (rc != 0)
        return rc;
    if (a->inherit != NULL) {
        char err[256];
        rc = props_validate_inherit(a->inherit, props_kind_of(n->ph.kind), a->revert, err,
                                    sizeof(err));
        if (rc != 0)
            return err_msg_set(em, rc, "%s", err);
        enum prop_id id;
        bool is_str =
            props_from_name(a->inherit, &id) != 0 || props_desc(id)->type == PROP_VAL_STRING;
        rc = stored_apply(n, a->inherit, a->revert ? PROPS_OP_REVERT : PROPS_OP_INHERIT, NULL,
                          is_str);
    } else {
        rc = dsl_props_check(p, n->ph.kind, a->props, a->n, false, em);
        if (rc != 0)
            return rc;
        rc = dsl_props_apply(p, txg, n, a->props, a->n, false, em);
    }
    if (rc != 0)
        return DSL_FATAL(p, rc);
    p->dsl->space_dirty = true; /* reservations and quotas change what is available */
    return 0;
}

/* Pushes effective properties into the object sets of `name` and below, in open context (so
 * the change is ordered with the writers' transactions). */
static int
apply_effective_open(struct pool *p, const char *name)
{
    struct tx tx;
    int rc = tx_assign(p, 0, &tx);
    if (rc != 0)
        return rc;
    pthread_rwlock_rdlock(&p->dsl->lock);
    struct dsl_node *n;
    struct err_msg ign = { 0 };
    rc = dsl_lookup(p, name, &n, &ign);
    if (rc == 0 && !dsl_is_head(n))
        n = NULL;
    if (rc == 0 && n != NULL)
        rc = dsl_apply_effective(p, tx.txg, n);
    pthread_rwlock_unlock(&p->dsl->lock);
    tx_commit(&tx);
    return rc;
}

static int
resize_volume(struct pool *p, const char *name, uint64_t size, struct err_msg *em)
{
    struct dataset *ds;
    int rc = ds_open(p, name, &ds, em);
    if (rc != 0)
        return rc;
    struct tx tx;
    if (ds_kind(ds) != DSL_KIND_VOL)
        rc = err_msg_set(em, -EINVAL, "volsize applies to volumes only");
    else if ((rc = ds_tx_assign(ds, 0, &tx)) != 0)
        err_msg_set(em, rc, "cannot resize '%s': %s", name, err_str(rc));
    if (rc == 0) {
        rc = obj_truncate(ds_objset(ds), &tx, ZVOL_OBJ, size);
        tx_commit(&tx);
    }
    ds_close(ds);
    return rc;
}

int
dsl_set(struct pool *p, const char *name, const struct dsl_prop_set *props, size_t n,
        struct err_msg *em)
{
    struct set_args a = { .name = name, .props = props, .n = n };
    /* Resizing touches the volume's data: validated here, done in open context first. */
    for (size_t i = 0; i < n; i++) {
        if (strcmp(props[i].name, "volsize") != 0)
            continue;
        struct dsl_info info;
        int rc = dsl_stat(p, name, &info, em);
        if (rc != 0)
            return rc;
        char err[256];
        uint64_t size;
        rc =
            props_validate_set("volsize", props[i].value, PROP_VOL, false, &size, err, sizeof(err));
        if (rc == 0)
            rc = props_validate_volsize(size, info.volblocksize, err, sizeof(err));
        if (rc != 0)
            return err_msg_set(em, rc, "%s", err);
        rc = resize_volume(p, name, size, em);
        if (rc != 0)
            return rc;
    }
    int rc = dsl_sync_task(p, set_task, &a, em);
    if (rc == 0)
        rc = apply_effective_open(p, name);
    return rc;
}

int
dsl_inherit(struct pool *p, const char *name, const char *prop, bool revert_received,
            struct err_msg *em)
{
    struct set_args a = { .name = name, .inherit = prop, .revert = revert_received };
    int rc = dsl_sync_task(p, set_task, &a, em);
    if (rc == 0)
        rc = apply_effective_open(p, name);
    return rc;
}
