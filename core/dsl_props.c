/* SPDX-License-Identifier: MIT */
/*
 * dsl_props: stored properties of datasets and their resolution (through core/props.c), the
 * space numbers (pool-format.md §6 "Space accounting"), `get`, `set`, `inherit`, `list`.
 *
 * Space, for a head H with snapshots S1..Sn (oldest first) and origin O (clones):
 *   referenced          bytes reachable from H (kept in H's record, changed at every commit)
 *   usedbydataset       bytes H references that were born after its origin (all of referenced
 *                       for a non-clone): what destroying H would free once its snapshots are
 *                       gone. For a clone: referenced - (O's referenced - the bytes of O that
 *                       H's lineage killed, i.e. its deadlist bytes born up to O's txg)
 *   written             bytes born after H's newest snapshot that H still references (its
 *                       unique bytes, kept in the record)
 *   usedbysnapshots     sum over H and its snapshots of their deadlist bytes born after O: every
 *                       block dead in H's lineage sits on exactly one deadlist
 *   usedbychildren      sum of max(used, reservation) of the child heads
 *   usedbyrefreservation  max(0, refreservation - usedbydataset)
 *   used                the sum of the four
 * For a snapshot S with predecessor P and successor N (a snapshot or the head): used = the
 * bytes only S holds = N's deadlist bytes born in (P.txg, S.txg]; written = bytes of S born
 * after P. Logical (uncompressed) and physical sizes follow the same sums.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "core/dsl_impl.h"

#define CHAIN_MAX 160 /* > DSL_NAME_MAX / 2: the deepest possible ancestry */

/* ---- stored entries ---------------------------------------------------------------------------
 */

struct dsl_propent *
dsl_prop_find(const struct dsl_node *n, const char *key)
{
    for (size_t i = 0; i < n->nprops; i++)
        if (strcmp(n->props[i].key, key) == 0)
            return &n->props[i];
    return NULL;
}

static struct dsl_propent *
prop_slot(struct dsl_node *n, const char *key)
{
    struct dsl_propent *e = dsl_prop_find(n, key);
    if (e != NULL) {
        free(e->str);
        e->str = NULL;
        return e;
    }
    if (n->nprops >= DSL_PROPS_MAX)
        return NULL;
    struct dsl_propent *np = realloc(n->props, (n->nprops + 1) * sizeof(*np));
    if (np == NULL)
        return NULL;
    n->props = np;
    e = &n->props[n->nprops];
    memset(e, 0, sizeof(*e));
    if ((e->key = strdup(key)) == NULL)
        return NULL;
    n->nprops++;
    return e;
}

int
dsl_prop_store_num(struct dsl_node *n, const char *key, uint64_t v)
{
    struct dsl_propent *e = prop_slot(n, key);
    if (e == NULL)
        return -ENOMEM;
    e->is_num = true;
    e->num = v;
    n->cold_dirty = true;
    return 0;
}

int
dsl_prop_store_str(struct dsl_node *n, const char *key, const char *v)
{
    struct dsl_propent *e = prop_slot(n, key);
    char *s = strdup(v);
    if (e == NULL || s == NULL) {
        free(s);
        return -ENOMEM;
    }
    e->is_num = false;
    e->str = s;
    n->cold_dirty = true;
    return 0;
}

void
dsl_prop_remove(struct dsl_node *n, const char *key)
{
    struct dsl_propent *e = dsl_prop_find(n, key);
    if (e == NULL)
        return;
    free(e->key);
    free(e->str);
    size_t i = (size_t)(e - n->props);
    memmove(&n->props[i], &n->props[i + 1], (n->nprops - i - 1) * sizeof(*e));
    n->nprops--;
    n->cold_dirty = true;
}

/* ---- resolution ----------------------------------------------------------------------------- */

static unsigned
prop_kind(const struct dsl_node *n)
{
    return n->ph.kind == DSL_KIND_VOL    ? PROP_VOL
           : n->ph.kind == DSL_KIND_SNAP ? PROP_SNAP
                                         : PROP_FS;
}

static void
entry_val(const struct dsl_propent *e, struct prop_val *v)
{
    v->num = e->is_num ? e->num : 0;
    v->str = e->is_num ? NULL : e->str;
}

/* The read-only statistics of the dataset being resolved. */
struct stat_vals {
    uint64_t num[PROP_COUNT];
    const char *str[PROP_COUNT];
    bool have[PROP_COUNT];
};

struct lookup_arg {
    const struct dsl_node *n;
    const struct stat_vals *st; /* NULL: statistics not available */
};

static int
lookup_stored(void *arg, const char *name, struct props_stored *out)
{
    struct lookup_arg *la = arg;
    enum prop_id id;
    if (props_from_name(name, &id) == 0 && props_desc(id)->readonly) {
        if (la->st != NULL && la->st->have[id]) {
            out->has_local = true;
            out->local.num = la->st->num[id];
            out->local.str = la->st->str[id];
        }
        return 0;
    }
    char key[PROPS_NAME_MAX + 16];
    const struct dsl_propent *e = dsl_prop_find(la->n, name);
    if (e != NULL) {
        out->has_local = true;
        entry_val(e, &out->local);
    }
    snprintf(key, sizeof(key), "%s$recvd", name);
    if ((e = dsl_prop_find(la->n, key)) != NULL) {
        out->has_received = true;
        entry_val(e, &out->received);
    }
    snprintf(key, sizeof(key), "%s$inherit", name);
    out->inherit_override = dsl_prop_find(la->n, key) != NULL;
    return 0;
}

/* Builds the resolution chain of n; names only when with_names (into names[]). */
static size_t
build_chain(const struct dsl_node *n, struct props_ds *ds, struct lookup_arg *args,
            char (*names)[DSL_NAME_MAX + 1])
{
    size_t len = 0;
    for (const struct dsl_node *a = n; a != NULL && len < CHAIN_MAX; a = a->parent, len++) {
        args[len].n = a;
        args[len].st = NULL;
        if (names != NULL)
            dsl_node_name(a, names[len], sizeof(names[len]));
        ds[len] = (struct props_ds){ .name = names ? names[len] : "",
                                     .kind = prop_kind(a),
                                     .lookup = lookup_stored,
                                     .arg = &args[len] };
    }
    return len;
}

uint64_t
dsl_prop_num(const struct dsl_node *n, enum prop_id id)
{
    struct props_ds ds[CHAIN_MAX];
    struct lookup_arg args[CHAIN_MAX];
    size_t len = build_chain(n, ds, args, NULL);
    struct prop_value v;
    const struct prop_desc *pd = props_desc(id);
    if (props_resolve(pd->name, &(struct props_chain){ ds, len }, &v) != 0)
        return pd->default_num;
    return v.val.num;
}

/* ---- space ---------------------------------------------------------------------------------- */

static uint64_t
lineage_origin_txg(const struct dsl_node *head)
{
    return head->origin != NULL ? head->origin->ph.create_txg : 0;
}

static void
sp_add(struct deadlist_space *a, const struct deadlist_space *b)
{
    a->asize_bytes += b->asize_bytes;
    a->psize_bytes += b->psize_bytes;
    a->lsize_bytes += b->lsize_bytes;
    a->count += b->count;
}

static uint64_t
sub0(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* Publishes the space numbers of head h and everything below it; returns h's charge to its
 * parent (max(used, reservation)). */
static uint64_t
publish_head(struct pool *p, struct dsl_node *h, uint64_t *rsv_total)
{
    uint64_t otxg = lineage_origin_txg(h);
    struct deadlist_space snaps = { 0 }, killed_of_origin = { 0 }, part;
    deadlist_space(h->dl, &h->dl_total);
    deadlist_space_range(h->dl, otxg, UINT64_MAX, &h->dl_after_origin);
    sp_add(&snaps, &h->dl_after_origin);
    deadlist_space_range(h->dl, 0, otxg, &part);
    sp_add(&killed_of_origin, &part);
    for (size_t i = 0; i < h->snaps.n; i++) {
        struct dsl_node *s = h->snaps.v[i];
        deadlist_space(s->dl, &s->dl_total);
        deadlist_space_range(s->dl, otxg, UINT64_MAX, &s->dl_after_origin);
        sp_add(&snaps, &s->dl_after_origin);
        deadlist_space_range(s->dl, 0, otxg, &part);
        sp_add(&killed_of_origin, &part);
        struct dsl_node *next = s->next_snap != NULL ? s->next_snap : h;
        struct deadlist_space u;
        deadlist_space_range(next->dl, s->ph.prev_snap_txg, s->ph.create_txg, &u);
        s->snap_unique = u.asize_bytes;
        s->used = u.asize_bytes;
        s->logicalused = u.lsize_bytes;
        s->physused = u.psize_bytes;
    }
    uint64_t children = 0, children_l = 0, children_p = 0;
    for (size_t i = 0; i < h->children.n; i++) {
        struct dsl_node *c = h->children.v[i];
        children += publish_head(p, c, rsv_total);
        children_l += c->logicalused;
        children_p += c->physused;
    }
    uint64_t refrsv = dsl_prop_num(h, PROP_REFRESERVATION);
    uint64_t rsv = dsl_prop_num(h, PROP_RESERVATION);
    uint64_t shared = 0; /* bytes of the origin H still references */
    if (h->origin != NULL)
        shared = sub0(h->origin->ph.ref_asize, killed_of_origin.asize_bytes);
    h->usedbyds = sub0(h->ph.ref_asize, shared);
    h->usedbysnaps = snaps.asize_bytes;
    h->usedbychildren = children;
    h->usedbyrefrsv = sub0(refrsv, h->usedbyds);
    h->used = h->usedbyds + h->usedbysnaps + h->usedbychildren + h->usedbyrefrsv;
    h->logicalused = h->ph.ref_lsize + snaps.lsize_bytes + children_l;
    h->physused = h->ph.ref_psize + snaps.psize_bytes + children_p;
    h->rsv_unused = sub0(rsv, h->used);
    *rsv_total += h->usedbyrefrsv + h->rsv_unused;
    return h->used > rsv ? h->used : rsv;
}

/*
 * What a head's writers may take from the space withheld for reservations: its own unused
 * refreservation, and the unused reservation of itself and every ancestor (a reservation covers
 * the dataset and its descendants). Top-down, after publish_head.
 */
static void
publish_rsv_own(struct dsl_node *h, uint64_t inherited)
{
    uint64_t tree = inherited + h->rsv_unused;
    __atomic_store_n(&h->os->rsv_own, h->usedbyrefrsv + tree, __ATOMIC_RELAXED);
    for (size_t i = 0; i < h->children.n; i++)
        publish_rsv_own(h->children.v[i], tree);
}

void
dsl_space_publish(struct pool *p)
{
    uint64_t total = 0;
    publish_head(p, p->dsl->root, &total);
    publish_rsv_own(p->dsl->root, 0);
    __atomic_store_n(&p->dsl->rsv_unused_total, total, __ATOMIC_RELAXED);
}

uint64_t
dsl_available(struct pool *p, const struct dsl_node *n)
{
    const struct dsl_node *h = dsl_is_head(n) ? n : n->parent;
    struct alloc_stats as;
    alloc_get_stats(p->alloc, &as);
    uint64_t usable = sub0(as.free, as.slop + as.deferred);
    uint64_t others = sub0(p->dsl->rsv_unused_total, h->os->rsv_own);
    uint64_t avail = sub0(usable, others);
    uint64_t refquota = dsl_prop_num(h, PROP_REFQUOTA);
    if (refquota != 0 && sub0(refquota, h->ph.ref_asize) < avail)
        avail = sub0(refquota, h->ph.ref_asize);
    for (const struct dsl_node *a = h; a != NULL; a = a->parent) {
        uint64_t quota = dsl_prop_num(a, PROP_QUOTA);
        if (quota != 0 && sub0(quota, a->used) < avail)
            avail = sub0(quota, a->used);
    }
    return avail;
}

static unsigned
ratio(uint64_t logical, uint64_t physical)
{
    if (physical == 0 || logical <= physical)
        return 100;
    uint64_t r = logical * 100 / physical;
    return r > 100000 ? 100000 : (unsigned)r;
}

void
dsl_fill_info(struct pool *p, const struct dsl_node *n, struct dsl_info *out)
{
    memset(out, 0, sizeof(*out));
    dsl_node_name(n, out->name, sizeof(out->name));
    out->kind = (enum dsl_kind)n->ph.kind;
    out->guid = n->ph.guid;
    out->create_txg = n->ph.create_txg;
    out->create_time = n->ph.create_time;
    out->referenced = n->ph.ref_asize;
    out->logicalreferenced = n->ph.ref_lsize;
    if (dsl_is_head(n)) {
        out->used = n->used;
        out->usedbydataset = n->usedbyds;
        out->usedbysnapshots = n->usedbysnaps;
        out->usedbychildren = n->usedbychildren;
        out->usedbyrefreservation = n->usedbyrefrsv;
        out->written = n->ph.unique_asize;
        out->available = dsl_available(p, n);
        out->logicalused = n->logicalused;
        out->compressratio = ratio(n->logicalused, n->physused);
        if (n->origin != NULL)
            dsl_node_name(n->origin, out->origin, sizeof(out->origin));
        if (n->ph.kind == DSL_KIND_VOL) {
            out->volsize = dsl_prop_num(n, PROP_VOLSIZE);
            out->volblocksize = dsl_prop_num(n, PROP_VOLBLOCKSIZE);
        }
    } else if (n->ph.kind == DSL_KIND_SNAP) {
        out->used = n->snap_unique;
        out->usedbydataset = n->snap_unique;
        out->logicalused = n->logicalused;
        out->compressratio = ratio(n->ph.ref_lsize, n->ph.ref_psize);
        uint64_t shared = 0;
        if (n->prev_snap != NULL)
            shared = sub0(n->prev_snap->ph.ref_asize, n->dl_total.asize_bytes);
        out->written = sub0(n->ph.ref_asize, shared);
        out->userrefs = n->nholds;
        out->num_clones = n->clones.n;
    }
}

/* ---- get --------------------------------------------------------------------------------------
 */

/* Statistics of n as the props module's lookup expects them. */
static void
fill_stats(struct pool *p, const struct dsl_node *n, struct stat_vals *st, char *origin,
           size_t origin_len)
{
    struct dsl_info in;
    dsl_fill_info(p, n, &in);
    memset(st, 0, sizeof(*st));
#define STAT(id, v)          \
    do {                     \
        st->num[id] = (v);   \
        st->have[id] = true; \
    } while (0)
    STAT(PROP_CREATION, in.create_time);
    STAT(PROP_REFERENCED, in.referenced);
    STAT(PROP_USED, in.used);
    STAT(PROP_CREATETXG, in.create_txg);
    STAT(PROP_GUID, in.guid);
    STAT(PROP_LOGICALREFERENCED, in.logicalreferenced);
    STAT(PROP_LOGICALUSED, in.logicalused);
    STAT(PROP_COMPRESSRATIO, in.compressratio);
    STAT(PROP_REFCOMPRESSRATIO, ratio(n->ph.ref_lsize, n->ph.ref_psize));
    STAT(PROP_WRITTEN, in.written);
    if (dsl_is_head(n)) {
        STAT(PROP_AVAILABLE, in.available);
        STAT(PROP_USEDBYSNAPSHOTS, in.usedbysnapshots);
        STAT(PROP_USEDBYDATASET, in.usedbydataset);
        STAT(PROP_USEDBYCHILDREN, in.usedbychildren);
        STAT(PROP_USEDBYREFRESERVATION, in.usedbyrefreservation);
    }
    if (in.origin[0] != 0) {
        snprintf(origin, origin_len, "%s", in.origin);
        st->str[PROP_ORIGIN] = origin;
        st->have[PROP_ORIGIN] = true;
    }
#undef STAT
}

static int
get_locked(struct pool *p, const struct dsl_node *n, const char *prop, bool parsable,
           struct dsl_prop_out *out, struct err_msg *em)
{
    static __thread struct props_ds ds[CHAIN_MAX];
    static __thread struct lookup_arg args[CHAIN_MAX];
    static __thread char names[CHAIN_MAX][DSL_NAME_MAX + 1];
    static __thread struct stat_vals st;
    char origin[DSL_NAME_MAX + 1];
    size_t len = build_chain(n, ds, args, names);
    fill_stats(p, n, &st, origin, sizeof(origin));
    args[0].st = &st;
    struct prop_value v;
    int rc = props_resolve(prop, &(struct props_chain){ ds, len }, &v);
    if (rc != 0)
        return err_msg_set(em, rc,
                           rc == -EINVAL ? "bad property '%s'" : "property '%s' is not set on '%s'",
                           prop, names[0]);
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", prop);
    props_source_format(&v, out->source, sizeof(out->source));
    enum prop_id id;
    if (props_from_name(prop, &id) == 0 && props_desc(id)->type != PROP_VAL_STRING) {
        out->is_num = true;
        out->num = v.val.num;
        rc = props_format(id, v.val.num, parsable, out->value, sizeof(out->value));
        if (rc != 0)
            snprintf(out->value, sizeof(out->value), "%llu", (unsigned long long)v.val.num);
    } else {
        snprintf(out->value, sizeof(out->value), "%s", v.val.str ? v.val.str : "-");
    }
    return 0;
}

int
dsl_get(struct pool *p, const char *name, const char *prop, bool parsable, struct dsl_prop_out *out,
        struct err_msg *em)
{
    pthread_rwlock_rdlock(&p->dsl->lock);
    struct dsl_node *n;
    int rc = dsl_lookup(p, name, &n, em);
    if (rc == 0 && n->ph.kind == DSL_KIND_BOOKMARK) {
        /* Bookmarks carry only a few facts. */
        memset(out, 0, sizeof(*out));
        snprintf(out->name, sizeof(out->name), "%s", prop);
        snprintf(out->source, sizeof(out->source), "-");
        out->is_num = true;
        if (strcmp(prop, "createtxg") == 0)
            out->num = n->ph.create_txg;
        else if (strcmp(prop, "guid") == 0)
            out->num = n->ph.guid;
        else if (strcmp(prop, "creation") == 0)
            out->num = n->ph.create_time;
        else if (strcmp(prop, "referenced") == 0)
            out->num = n->ph.ref_asize;
        else
            rc = err_msg_set(em, -ENOENT, "property '%s' does not apply to bookmarks", prop);
        if (rc == 0) {
            enum prop_id id;
            props_from_name(prop, &id);
            props_format(id, out->num, parsable, out->value, sizeof(out->value));
        }
    } else if (rc == 0) {
        rc = get_locked(p, n, prop, parsable, out, em);
    }
    pthread_rwlock_unlock(&p->dsl->lock);
    return rc;
}

int
dsl_get_all(struct pool *p, const char *name, bool parsable, dsl_prop_fn fn, void *arg,
            struct err_msg *em)
{
    /* Collect under the lock, call fn without it (fn may call back into the pool). */
    struct dsl_prop_out *outs = calloc(PROP_COUNT + DSL_PROPS_MAX, sizeof(*outs));
    if (outs == NULL)
        return -ENOMEM;
    size_t n_out = 0;
    pthread_rwlock_rdlock(&p->dsl->lock);
    struct dsl_node *n;
    int rc = dsl_lookup(p, name, &n, em);
    if (rc == 0 && n->ph.kind == DSL_KIND_BOOKMARK)
        rc = err_msg_set(em, -EINVAL, "'%s' is a bookmark: use get with a property name", name);
    for (unsigned id = 0; rc == 0 && id < PROP_COUNT; id++) {
        if (!props_applies((enum prop_id)id, prop_kind(n)))
            continue;
        struct err_msg ign = { 0 };
        if (get_locked(p, n, props_name((enum prop_id)id), parsable, &outs[n_out], &ign) == 0)
            n_out++;
    }
    /* User properties set here or on an ancestor, each once. */
    for (const struct dsl_node *a = n; rc == 0 && a != NULL; a = a->parent) {
        for (size_t i = 0; i < a->nprops; i++) {
            const char *key = a->props[i].key;
            if (!props_is_user_name(key))
                continue;
            bool seen = false;
            for (size_t j = 0; j < n_out && !seen; j++)
                seen = strcmp(outs[j].name, key) == 0;
            struct err_msg ign = { 0 };
            if (!seen && n_out < PROP_COUNT + DSL_PROPS_MAX &&
                get_locked(p, n, key, parsable, &outs[n_out], &ign) == 0)
                n_out++;
        }
    }
    pthread_rwlock_unlock(&p->dsl->lock);
    for (size_t i = 0; rc == 0 && i < n_out; i++)
        rc = fn(arg, &outs[i]);
    free(outs);
    return rc;
}

/* ---- list / stat ------------------------------------------------------------------------------
 */

static unsigned
kind_bit(const struct dsl_node *n)
{
    switch (n->ph.kind) {
    case DSL_KIND_FS:
        return DSL_LIST_FS;
    case DSL_KIND_VOL:
        return DSL_LIST_VOL;
    case DSL_KIND_SNAP:
        return DSL_LIST_SNAP;
    default:
        return DSL_LIST_BOOKMARK;
    }
}

struct infovec {
    struct dsl_info *v;
    size_t n, cap;
};

static int
collect(struct pool *p, const struct dsl_node *n, unsigned flags, struct infovec *iv, bool top)
{
    unsigned types = flags & DSL_LIST_ALL_TYPES;
    if (types == 0)
        types = DSL_LIST_FS | DSL_LIST_VOL;
    if ((kind_bit(n) & types) || (top && !dsl_is_head(n))) {
        if (iv->n == iv->cap) {
            size_t cap = iv->cap ? iv->cap * 2 : 16;
            struct dsl_info *nv = realloc(iv->v, cap * sizeof(*nv));
            if (nv == NULL)
                return -ENOMEM;
            iv->v = nv;
            iv->cap = cap;
        }
        dsl_fill_info(p, n, &iv->v[iv->n++]);
    }
    if (!dsl_is_head(n) || (!top && !(flags & DSL_LIST_RECURSIVE)) ||
        (top && !(flags & DSL_LIST_RECURSIVE)))
        return 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n->snaps.n; i++)
        rc = collect(p, n->snaps.v[i], flags, iv, false);
    for (size_t i = 0; rc == 0 && i < n->bookmarks.n; i++)
        rc = collect(p, n->bookmarks.v[i], flags, iv, false);
    for (size_t i = 0; rc == 0 && i < n->children.n; i++)
        rc = collect(p, n->children.v[i], flags, iv, false);
    return rc;
}

int
dsl_list(struct pool *p, const char *name, unsigned flags, dsl_list_fn fn, void *arg,
         struct err_msg *em)
{
    struct infovec iv = { 0 };
    pthread_rwlock_rdlock(&p->dsl->lock);
    struct dsl_node *n = p->dsl->root;
    int rc = 0;
    if (name == NULL)
        flags |= DSL_LIST_RECURSIVE;
    else
        rc = dsl_lookup(p, name, &n, em);
    if (rc == 0)
        rc = collect(p, n, flags, &iv, true);
    pthread_rwlock_unlock(&p->dsl->lock);
    for (size_t i = 0; rc == 0 && i < iv.n; i++)
        rc = fn(arg, &iv.v[i]);
    free(iv.v);
    return rc;
}

int
dsl_stat(struct pool *p, const char *name, struct dsl_info *out, struct err_msg *em)
{
    pthread_rwlock_rdlock(&p->dsl->lock);
    struct dsl_node *n;
    int rc = dsl_lookup(p, name, &n, em);
    if (rc == 0)
        dsl_fill_info(p, n, out);
    pthread_rwlock_unlock(&p->dsl->lock);
    return rc;
}
