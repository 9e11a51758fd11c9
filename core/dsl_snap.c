/* SPDX-License-Identifier: MIT */
/*
 * dsl_snap: snapshots, their destruction, clones, rollback and promote — the birth-time rule at
 * work (pool-format.md §6). All functions here run as sync tasks (dsl->lock held for writing)
 * except the public wrappers, which validate names and queue the task.
 *
 * Where a dead block lives: a head H frees block b (birth t) while its newest snapshot is P:
 * t > P.txg: nobody else has b, it is freed; otherwise b goes on H's deadlist. Taking snapshot S
 * hands H's deadlist to S (the blocks that died between S's predecessor and S) and gives H an
 * empty one. So every dead block of a lineage sits on exactly one deadlist: the one of the first
 * dataset (snapshot or head) that no longer has it.
 *
 * Destroying snapshot S (predecessor P, successor N): the blocks on N's deadlist born after P
 * were born after P and died before N: only S had them, they are freed. The rest of N's deadlist
 * stays (P still has them) and S's own deadlist is merged in (P has those too).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "core/dsl_impl.h"

/* A new deadlist for n (a head or a snapshot of head h) with a key per boundary of h's lineage
 * older than `before` (n's own creation for snapshots, UINT64_MAX for the head), skipping `skip`.
 */
static int
new_deadlist(struct pool *p, uint64_t txg, struct dsl_node *h, uint64_t before,
             const struct dsl_node *skip, struct deadlist **out, struct deadlist_phys *dp)
{
    struct tx tx = { .pool = p, .txg = txg };
    int rc = deadlist_create(p->mos, &tx, dp);
    if (rc != 0)
        return rc;
    struct deadlist *dl = NULL;
    rc = deadlist_open(p->mos, dp, &dl);
    if (rc == 0 && h->origin != NULL && h->origin->ph.create_txg < before)
        rc = deadlist_add_key(dl, &tx, h->origin->ph.create_txg);
    for (size_t i = 0; rc == 0 && i < h->snaps.n; i++) {
        const struct dsl_node *s = h->snaps.v[i];
        if (s != skip && s->ph.create_txg < before)
            rc = deadlist_add_key(dl, &tx, s->ph.create_txg);
    }
    if (rc != 0) {
        deadlist_close(dl);
        return rc;
    }
    *out = dl;
    return 0;
}

static void
set_deadlist(struct dsl_node *n, struct deadlist *dl, const struct deadlist_phys *dp)
{
    deadlist_close(n->dl);
    n->dl = dl;
    n->ph.dl_bps_obj = dp->bps_obj;
    n->ph.dl_summary_obj = dp->summary_obj;
    n->hot_dirty = true;
}

static int
destroy_deadlist_objs(struct pool *p, uint64_t txg, struct dsl_node *n)
{
    struct tx tx = { .pool = p, .txg = txg };
    struct deadlist_phys dp = { n->ph.dl_bps_obj, n->ph.dl_summary_obj };
    return deadlist_destroy(p->mos, &tx, &dp);
}

/* ---- snapshot destroy ---------------------------------------------------------------------- */

struct split_ctx {
    struct pool *p;
    struct tx tx;
    struct deadlist *keep;
    uint64_t after; /* free entries born after this txg */
    uint64_t freed_asize;
};

static int
split_entry(void *arg, const struct blkptr *bp)
{
    struct split_ctx *sc = arg;
    if (bp->birth > sc->after) {
        sc->freed_asize += bp_asize(bp);
        zio_free(sc->p, sc->tx.txg, bp);
        return 0;
    }
    return deadlist_insert(sc->keep, &sc->tx, bp);
}

int
dsl_snap_destroy(struct pool *p, uint64_t txg, struct dsl_node *s, uint64_t *freed)
{
    struct dsl_node *h = s->parent;
    struct dsl_node *P = s->prev_snap; /* may be the origin (another head's snapshot) */
    struct dsl_node *N = s->next_snap != NULL ? s->next_snap : h;
    uint64_t ptxg = s->ph.prev_snap_txg;
    uint64_t before = N == h ? UINT64_MAX : N->ph.create_txg;

    /* Bytes of S born after P (S's "written"), before anything changes. */
    uint64_t p_ref = P != NULL ? P->ph.ref_asize : 0;
    struct deadlist_space s_dead;
    deadlist_space(s->dl, &s_dead);
    uint64_t written =
        s->ph.ref_asize - (p_ref > s_dead.asize_bytes ? p_ref - s_dead.asize_bytes : 0);
    if (s->ph.ref_asize < written)
        written = 0;

    struct deadlist *dl = NULL;
    struct deadlist_phys dp;
    int rc = new_deadlist(p, txg, h, before, s, &dl, &dp);
    if (rc != 0)
        return rc; /* nothing changed yet but a new empty object pair: freed with the txg */
    struct split_ctx sc = { .p = p, .tx = { .pool = p, .txg = txg }, .keep = dl, .after = ptxg };
    rc = deadlist_iterate(N->dl, split_entry, &sc);
    if (rc == 0)
        rc = deadlist_merge(dl, &sc.tx, s->dl);
    if (rc == 0)
        rc = destroy_deadlist_objs(p, txg, N);
    if (rc != 0) {
        deadlist_close(dl);
        return DSL_FATAL(p, rc);
    }
    set_deadlist(N, dl, &dp);

    /* Relink the chain around S. */
    if (P != NULL && P->parent == h) {
        P->next_snap = N == h ? NULL : N;
        P->ph.next_snap_obj = N == h ? 0 : N->obj;
        P->hot_dirty = true;
    }
    N->prev_snap = P;
    N->ph.prev_snap_obj = P != NULL ? P->obj : 0;
    N->ph.prev_snap_txg = ptxg;
    N->hot_dirty = true;
    if (N == h) {
        /* What S had born after P and the head still has is now the head's alone. */
        uint64_t live = written > sc.freed_asize ? written - sc.freed_asize : 0;
        h->ph.unique_asize += live;
    }
    nodevec_remove(&h->snaps, s);
    if (freed != NULL)
        *freed = sc.freed_asize;
    rc = dsl_node_destroy_obj(p, txg, s);
    return rc != 0 ? DSL_FATAL(p, rc) : 0;
}

/* ---- snapshot create ------------------------------------------------------------------------ */

struct snap_args {
    const char *const *names;
    size_t n;
};

static int
snapshot_check(struct pool *p, const struct snap_args *a, struct dsl_node **heads,
               struct err_msg *em)
{
    for (size_t i = 0; i < a->n; i++) {
        const char *at = strchr(a->names[i], '@');
        if (at == NULL || strchr(at + 1, '@') || strchr(a->names[i], '#'))
            return err_msg_set(em, -EINVAL, "'%s' is not a snapshot name (dataset@name)",
                               a->names[i]);
        if (!dsl_component_valid(at + 1, strlen(at + 1)))
            return err_msg_set(em, -EINVAL, "invalid snapshot name '%s'", a->names[i]);
        char head[DSL_NAME_MAX + 1];
        snprintf(head, sizeof(head), "%.*s", (int)(at - a->names[i]), a->names[i]);
        struct dsl_node *h;
        int rc = dsl_lookup(p, head, &h, em);
        if (rc != 0)
            return rc;
        for (size_t j = 0; j < h->snaps.n; j++)
            if (strcmp(h->snaps.v[j]->name, at + 1) == 0)
                return err_msg_set(em, -EEXIST, "snapshot '%s' already exists", a->names[i]);
        for (size_t j = 0; j < i; j++)
            if (heads[j] == h)
                return err_msg_set(em, -EINVAL, "two snapshots of '%s' in one request", head);
        /* Created or changed by an earlier task of this txg: its root is not final yet. */
        if (bp_is_hole(&h->ph.root) || objset_is_dirty(h->os, p->syncing_txg))
            return -EAGAIN;
        heads[i] = h;
    }
    return 0;
}

static int
snapshot_one(struct pool *p, uint64_t txg, struct dsl_node *h, const char *name)
{
    struct dsl_node *s = dsl_node_new();
    if (s == NULL || (s->name = strdup(name)) == NULL) {
        free(s);
        return -ENOMEM;
    }
    s->ph = h->ph; /* root, space, deadlist, previous snapshot: the head's as of now */
    s->ph.kind = DSL_KIND_SNAP;
    s->ph.create_txg = txg;
    s->ph.create_time = (uint64_t)time(NULL);
    s->ph.guid = pool_random_guid();
    s->ph.parent_obj = h->obj;
    s->ph.next_snap_obj = 0;
    s->ph.origin_obj = 0;
    s->ph.unique_asize = 0;
    s->ph.num_clones = 0;
    s->parent = h;
    s->prev_snap = h->prev_snap;
    int rc = dsl_node_create_obj(p, txg, s);
    if (rc == 0)
        rc = nodevec_add(&h->snaps, s);
    if (rc != 0) {
        dsl_node_free(s);
        return DSL_FATAL(p, rc);
    }
    s->dl = h->dl; /* the head's deadlist becomes the snapshot's */
    h->dl = NULL;
    if (s->prev_snap != NULL && s->prev_snap->parent == h) {
        s->prev_snap->next_snap = s;
        s->prev_snap->ph.next_snap_obj = s->obj;
        s->prev_snap->hot_dirty = true;
    }
    h->prev_snap = s;
    h->ph.prev_snap_obj = s->obj;
    h->ph.prev_snap_txg = txg;
    h->ph.unique_asize = 0;
    h->hot_dirty = true;
    struct deadlist *dl;
    struct deadlist_phys dp;
    rc = new_deadlist(p, txg, h, UINT64_MAX, NULL, &dl, &dp);
    if (rc != 0)
        return DSL_FATAL(p, rc);
    set_deadlist(h, dl, &dp);
    return 0;
}

static int
snapshot_task(struct pool *p, uint64_t txg, void *arg, struct err_msg *em)
{
    struct snap_args *a = arg;
    struct dsl_node **heads = calloc(a->n, sizeof(*heads));
    if (heads == NULL)
        return -ENOMEM;
    int rc = snapshot_check(p, a, heads, em);
    for (size_t i = 0; rc == 0 && i < a->n; i++)
        rc = snapshot_one(p, txg, heads[i], strchr(a->names[i], '@') + 1);
    free(heads);
    return rc;
}

int
dsl_snapshot(struct pool *p, const char *const *names, size_t n, struct err_msg *em)
{
    if (n == 0)
        return err_msg_set(em, -EINVAL, "no snapshot names given");
    struct snap_args a = { names, n };
    return dsl_sync_task_retry(p, snapshot_task, &a, em);
}

/* ---- clone ---------------------------------------------------------------------------------- */

struct clone_args {
    const char *snap, *name;
    const struct dsl_prop_set *props;
    size_t nprops;
};

/* Finds the parent of a new head `name` and checks the name is free. */
int
dsl_new_head_parent(struct pool *p, const char *name, struct dsl_node **parent, const char **leaf,
                    struct err_msg *em)
{
    if (strpbrk(name, "@#") != NULL)
        return err_msg_set(em, -EINVAL, "'%s' is not a filesystem or volume name", name);
    const char *slash = strrchr(name, '/');
    if (slash == NULL)
        return err_msg_set(em, -EINVAL, "'%s' must be below the pool's root dataset", name);
    if (!dsl_component_valid(slash + 1, strlen(slash + 1)) || strlen(name) > DSL_NAME_MAX)
        return err_msg_set(em, -EINVAL, "invalid dataset name '%s'", name);
    char pname[DSL_NAME_MAX + 1];
    snprintf(pname, sizeof(pname), "%.*s", (int)(slash - name), name);
    struct dsl_node *pn;
    int rc = dsl_lookup(p, pname, &pn, em);
    if (rc != 0)
        return rc == -ENOENT ? err_msg_set(em, -ENOENT, "parent '%s' does not exist", pname) : rc;
    if (pn->ph.kind != DSL_KIND_FS)
        return err_msg_set(em, -EINVAL, "parent '%s' is not a filesystem", pname);
    for (size_t i = 0; i < pn->children.n; i++)
        if (strcmp(pn->children.v[i]->name, slash + 1) == 0)
            return err_msg_set(em, -EEXIST, "dataset '%s' already exists", name);
    *parent = pn;
    *leaf = slash + 1;
    return 0;
}

static int
clone_task(struct pool *p, uint64_t txg, void *arg, struct err_msg *em)
{
    struct clone_args *a = arg;
    struct dsl_node *s, *parent;
    const char *leaf;
    int rc = dsl_lookup(p, a->snap, &s, em);
    if (rc == 0 && s->ph.kind != DSL_KIND_SNAP)
        rc = err_msg_set(em, -EINVAL, "'%s' is not a snapshot", a->snap);
    if (rc == 0 && s->ph.create_txg == txg)
        rc = -EAGAIN; /* its blocks born in this txg must not be rewritten in place */
    if (rc == 0)
        rc = dsl_new_head_parent(p, a->name, &parent, &leaf, em);
    if (rc == 0)
        rc = dsl_props_check(p, s->parent->ph.kind, a->props, a->nprops, false, em);
    if (rc != 0)
        return rc;
    struct dsl_node *c = dsl_node_new();
    if (c == NULL || (c->name = strdup(leaf)) == NULL) {
        free(c);
        return -ENOMEM;
    }
    c->ph = s->ph;
    c->ph.kind = s->parent->ph.kind;
    c->ph.create_txg = txg;
    c->ph.create_time = (uint64_t)time(NULL);
    c->ph.guid = pool_random_guid();
    c->ph.parent_obj = parent->obj;
    c->ph.prev_snap_obj = s->obj;
    c->ph.prev_snap_txg = s->ph.create_txg;
    c->ph.next_snap_obj = 0;
    c->ph.origin_obj = s->obj;
    c->ph.unique_asize = 0;
    c->ph.num_clones = 0;
    c->parent = parent;
    c->origin = s;
    c->prev_snap = s;
    rc = dsl_node_create_obj(p, txg, c);
    if (rc == 0)
        rc = nodevec_add(&parent->children, c);
    if (rc == 0)
        rc = nodevec_add(&s->clones, c);
    if (rc == 0)
        rc = dsl_head_new_deadlist(p, txg, c);
    if (rc == 0)
        rc = dsl_head_open_objset(p, c, &s->ph.root,
                                  c->ph.kind == DSL_KIND_VOL ? OBJSET_TYPE_ZVOL : OBJSET_TYPE_FS);
    if (rc == 0) {
        /* A clone of a volume starts with its origin's size. */
        const struct dsl_propent *vs = dsl_prop_find(s->parent, "volsize");
        if (vs != NULL && vs->is_num)
            rc = dsl_prop_store_num(c, "volsize", vs->num);
    }
    if (rc == 0)
        rc = dsl_props_apply(p, txg, c, a->props, a->nprops, false, em);
    if (rc == 0) {
        s->ph.num_clones++;
        s->hot_dirty = true;
        rc = dsl_apply_effective(p, txg, c);
    }
    return rc != 0 ? DSL_FATAL(p, rc) : 0;
}

int
dsl_clone(struct pool *p, const char *snap, const char *name, const struct dsl_prop_set *props,
          size_t nprops, struct err_msg *em)
{
    struct clone_args a = { snap, name, props, nprops };
    return dsl_sync_task_retry(p, clone_task, &a, em);
}

/* ---- rollback ------------------------------------------------------------------------------- */

struct rollback_args {
    const char *snap;
    bool destroy_later;
};

static int
rollback_task(struct pool *p, uint64_t txg, void *arg, struct err_msg *em)
{
    struct rollback_args *a = arg;
    struct dsl_node *s;
    int rc = dsl_lookup(p, a->snap, &s, em);
    if (rc == 0 && s->ph.kind != DSL_KIND_SNAP)
        rc = err_msg_set(em, -EINVAL, "'%s' is not a snapshot", a->snap);
    if (rc != 0)
        return rc;
    struct dsl_node *h = s->parent;
    if (dsl_node_refs(h) > 0)
        return err_msg_set(em, -EBUSY, "'%s' is in use (%u open handles)", a->snap,
                           dsl_node_refs(h));
    if (objset_is_dirty(h->os, txg + 1) || s->ph.create_txg == txg)
        return -EAGAIN; /* changes after the caller's commit: retried by the caller */
    size_t idx = 0;
    while (h->snaps.v[idx] != s)
        idx++;
    for (size_t i = idx + 1; i < h->snaps.n; i++) {
        struct dsl_node *later = h->snaps.v[i];
        if (!a->destroy_later)
            return err_msg_set(em, -EEXIST,
                               "'%s' is not the most recent snapshot ('%s' is newer); use -r "
                               "to destroy the newer ones",
                               a->snap, later->name);
        if (later->nholds > 0 || later->clones.n > 0 || dsl_node_refs(later) > 0)
            return err_msg_set(em, -EBUSY, "newer snapshot '%s' has %s", later->name,
                               later->nholds     ? "holds"
                               : later->clones.n ? "clones"
                                                 : "open handles");
    }
    while (h->snaps.n > idx + 1) {
        rc = dsl_snap_destroy(p, txg, h->snaps.v[h->snaps.n - 1], NULL);
        if (rc != 0)
            return rc;
    }
    /* Free what the head has born since s; its deadlist entries are s's blocks again. */
    rc = dsl_free_tree(p, txg, &h->os->root_bp, s->ph.create_txg);
    struct deadlist *dl = NULL;
    struct deadlist_phys dp;
    if (rc == 0)
        rc = destroy_deadlist_objs(p, txg, h);
    if (rc == 0)
        rc = new_deadlist(p, txg, h, UINT64_MAX, NULL, &dl, &dp);
    if (rc == 0) {
        set_deadlist(h, dl, &dp);
        rc = dsl_head_open_objset(p, h, &s->ph.root,
                                  h->ph.kind == DSL_KIND_VOL ? OBJSET_TYPE_ZVOL : OBJSET_TYPE_FS);
    }
    if (rc != 0)
        return DSL_FATAL(p, rc);
    h->ph.root = s->ph.root;
    h->ph.ref_asize = s->ph.ref_asize;
    h->ph.ref_psize = s->ph.ref_psize;
    h->ph.ref_lsize = s->ph.ref_lsize;
    h->ph.unique_asize = 0;
    h->hot_dirty = true;
    rc = dsl_apply_effective(p, txg, h);
    return rc != 0 ? DSL_FATAL(p, rc) : 0;
}

int
dsl_rollback(struct pool *p, const char *snap, bool destroy_later, struct err_msg *em)
{
    struct rollback_args a = { snap, destroy_later };
    return dsl_sync_task_retry(p, rollback_task, &a, em);
}

/* ---- promote -------------------------------------------------------------------------------- */

/* Rebuilds n's deadlist (n: c or one of c's snapshots) with the buckets of c's lineage. */
static int
rekey_deadlist(struct pool *p, uint64_t txg, struct dsl_node *c, struct dsl_node *n)
{
    uint64_t before = n == c ? UINT64_MAX : n->ph.create_txg;
    struct deadlist *dl;
    struct deadlist_phys dp;
    int rc = new_deadlist(p, txg, c, before, NULL, &dl, &dp);
    if (rc != 0)
        return rc;
    struct tx tx = { .pool = p, .txg = txg };
    rc = deadlist_merge(dl, &tx, n->dl);
    if (rc == 0)
        rc = destroy_deadlist_objs(p, txg, n);
    if (rc != 0) {
        deadlist_close(dl);
        return rc;
    }
    set_deadlist(n, dl, &dp);
    return 0;
}

static int
promote_task(struct pool *p, uint64_t txg, void *arg, struct err_msg *em)
{
    const char *name = arg;
    struct dsl_node *c;
    int rc = dsl_lookup(p, name, &c, em);
    if (rc != 0)
        return rc;
    if (!dsl_is_head(c) || c->origin == NULL)
        return err_msg_set(em, -EINVAL, "'%s' is not a clone", name);
    struct dsl_node *o = c->origin, *h = o->parent;
    if (h->parent == NULL)
        return err_msg_set(em, -EINVAL,
                           "cannot promote '%s': its origin belongs to the pool's root dataset, "
                           "which cannot become a clone",
                           name);
    for (const struct dsl_node *a = c->parent; a != NULL; a = a->parent)
        if (a == h)
            return err_msg_set(em, -EINVAL,
                               "cannot promote '%s': it is below its origin's dataset, which "
                               "would become a clone of its own descendant",
                               name);
    size_t k = 0; /* snapshots h->snaps[0..k] move */
    while (h->snaps.v[k] != o)
        k++;
    for (size_t i = 0; i <= k; i++)
        for (size_t j = 0; j < c->snaps.n; j++)
            if (strcmp(h->snaps.v[i]->name, c->snaps.v[j]->name) == 0)
                return err_msg_set(em, -EEXIST,
                                   "snapshot name '%s' exists in both '%s' and its origin",
                                   c->snaps.v[j]->name, name);

    struct dsl_node *old_origin = h->origin;
    /* Move snapshots [0..k] to c, in front of c's own. */
    struct nodevec moved = { 0 };
    for (size_t i = 0; i <= k && rc == 0; i++)
        rc = nodevec_add(&moved, h->snaps.v[i]);
    for (size_t i = 0; i < c->snaps.n && rc == 0; i++)
        rc = nodevec_add(&moved, c->snaps.v[i]);
    if (rc != 0) {
        free(moved.v);
        return rc;
    }
    memmove(&h->snaps.v[0], &h->snaps.v[k + 1], (h->snaps.n - k - 1) * sizeof(h->snaps.v[0]));
    h->snaps.n -= k + 1;
    free(c->snaps.v);
    c->snaps = moved;
    for (size_t i = 0; i <= k; i++) {
        c->snaps.v[i]->parent = c;
        c->snaps.v[i]->ph.parent_obj = c->obj;
        c->snaps.v[i]->hot_dirty = true;
    }
    /* o's successor in c's chain is c's first own snapshot (or c); in h's, o is now the origin. */
    struct dsl_node *o_next = k + 1 < c->snaps.n ? c->snaps.v[k + 1] : NULL;
    o->next_snap = o_next;
    o->ph.next_snap_obj = o_next ? o_next->obj : 0;
    o->hot_dirty = true;

    /* Origins swap: c takes h's, h becomes a clone of o. */
    nodevec_remove(&o->clones, c);
    rc = nodevec_add(&o->clones, h);
    if (rc == 0 && old_origin != NULL) {
        nodevec_remove(&old_origin->clones, h);
        rc = nodevec_add(&old_origin->clones, c);
    }
    if (rc != 0)
        return DSL_FATAL(p, rc);
    c->origin = old_origin;
    c->ph.origin_obj = old_origin ? old_origin->obj : 0;
    h->origin = o;
    h->ph.origin_obj = o->obj;
    c->hot_dirty = h->hot_dirty = true;

    /* c's deadlists need the buckets of its new, longer lineage for exact space numbers. */
    for (size_t i = k + 1; i < c->snaps.n && rc == 0; i++)
        rc = rekey_deadlist(p, txg, c, c->snaps.v[i]);
    if (rc == 0)
        rc = rekey_deadlist(p, txg, c, c);
    return rc != 0 ? DSL_FATAL(p, rc) : 0;
}

int
dsl_promote(struct pool *p, const char *name, struct err_msg *em)
{
    return dsl_sync_task(p, promote_task, (void *)name, em);
}
