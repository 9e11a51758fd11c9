/* SPDX-License-Identifier: MIT */
/*
 * stress_ds: dataset operations for lcpfs-stress (theory of operation in lcpfs_stress.c,
 * "Datasets").
 *
 * Heads live in fixed slots with fixed names below the root dataset, so a record names a head by
 * its slot and both sides of the pipe agree without strings:
 *
 *   slot 0 stress   1 stress/a   2 stress/b   3 stress/a/x   4 stress/b/y   5 stress/k1
 *   6 stress/k2     7 stress/a/k3
 *
 * Any free slot whose parent exists can be created or cloned into. Snapshots are named
 * `head@s<sid in hex>`; the sid is unique over the whole session ((round + 1) << 32 | op number
 * << 3 | index in the call), so names never collide, not even when promote moves snapshots, and sid
 * order is creation order.
 *
 * dsm_expect() is the model's prediction of the engine's answer to an operation; the child only
 * reports operations predicted to succeed and checks that the ones predicted to fail (a few
 * deliberate ones) fail with the predicted error and change nothing.
 */
#include "tests/stress/stress_ds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/assert.h"
#include "common/err.h"
#include "core/dsl.h"

static const char *const head_names[DS_HEADS] = { "", "a", "b", "a/x", "b/y", "k1", "k2", "a/k3" };
static const int head_parent[DS_HEADS] = { -1, 0, 0, 1, 2, 0, 0, 1 };
static const char *const hold_tags[2] = { "t0", "t1" };

#define BIT(i) (1u << (i))

/* ---- names ----------------------------------------------------------------------------------- */

static void
head_name(unsigned slot, char *buf, size_t len)
{
    if (slot == 0)
        snprintf(buf, len, "%s", POOL_NAME);
    else
        snprintf(buf, len, "%s/%s", POOL_NAME, head_names[slot]);
}

static void
snap_name(unsigned head, uint64_t sid, char *buf, size_t len)
{
    char h[DSL_NAME_MAX + 1];
    head_name(head, h, sizeof(h));
    snprintf(buf, len, "%s@s%llx", h, (unsigned long long)sid);
}

/* ---- the model ------------------------------------------------------------------------------- */

void
dsm_init(struct dsmodel *dm, bool hashing)
{
    memset(dm, 0, sizeof(*dm));
    dm->hashing = hashing;
    model_init(&dm->heads[0].m, MAX_OBJS, OBJ_MAX);
    dm->heads[0].live = true;
    for (unsigned i = 1; i < DS_HEADS; i++)
        model_init(&dm->heads[i].m, DS_MAX_OBJS, DS_OBJ_MAX);
    for (unsigned i = 0; i < DS_SNAPS; i++)
        model_init(&dm->snaps[i].m, DS_MAX_OBJS, DS_OBJ_MAX);
}

void
dsm_reset(struct dsmodel *dm)
{
    for (unsigned i = 0; i < DS_HEADS; i++)
        model_reset(&dm->heads[i].m);
    for (unsigned i = 0; i < DS_SNAPS; i++)
        model_reset(&dm->snaps[i].m);
    dsm_init(dm, dm->hashing);
}

int
dsm_copy(struct dsmodel *dst, const struct dsmodel *src)
{
    dsm_reset(dst);
    dst->hashing = src->hashing;
    for (unsigned i = 0; i < DS_HEADS; i++) {
        struct model m = dst->heads[i].m;
        dst->heads[i] = src->heads[i];
        dst->heads[i].m = m;
        if (model_copy(&dst->heads[i].m, &src->heads[i].m) != 0)
            return -ENOMEM;
    }
    for (unsigned i = 0; i < DS_SNAPS; i++) {
        struct model m = dst->snaps[i].m;
        dst->snaps[i] = src->snaps[i];
        dst->snaps[i].m = m;
        if (model_copy(&dst->snaps[i].m, &src->snaps[i].m) != 0)
            return -ENOMEM;
    }
    return 0;
}

unsigned
dsm_nheads(const struct dsmodel *dm)
{
    unsigned n = 0;
    for (unsigned i = 0; i < DS_HEADS; i++)
        n += dm->heads[i].live;
    return n;
}

unsigned
dsm_nsnaps(const struct dsmodel *dm)
{
    unsigned n = 0;
    for (unsigned i = 0; i < DS_SNAPS; i++)
        n += dm->snaps[i].live;
    return n;
}

static int
find_snap(const struct dsmodel *dm, uint64_t sid)
{
    for (unsigned i = 0; i < DS_SNAPS; i++)
        if (dm->snaps[i].live && dm->snaps[i].sid == sid)
            return (int)i;
    return -1;
}

static bool
has_children(const struct dsmodel *dm, unsigned h)
{
    for (unsigned i = 1; i < DS_HEADS; i++)
        if (dm->heads[i].live && head_parent[i] == (int)h)
            return true;
    return false;
}

static unsigned
count_snaps(const struct dsmodel *dm, unsigned h)
{
    unsigned n = 0;
    for (unsigned i = 0; i < DS_SNAPS; i++)
        n += dm->snaps[i].live && dm->snaps[i].head == h;
    return n;
}

/* Bit per head slot of the clones of snapshot sid. */
static unsigned
clones_of(const struct dsmodel *dm, uint64_t sid)
{
    unsigned m = 0;
    for (unsigned i = 1; i < DS_HEADS; i++)
        if (dm->heads[i].live && dm->heads[i].origin == sid)
            m |= BIT(i);
    return m;
}

/* The newest snapshot of head h, or -1. */
static int
latest_snap(const struct dsmodel *dm, unsigned h)
{
    int best = -1;
    for (unsigned i = 0; i < DS_SNAPS; i++)
        if (dm->snaps[i].live && dm->snaps[i].head == h &&
            (best < 0 || dm->snaps[i].sid > dm->snaps[best].sid))
            best = (int)i;
    return best;
}

/* What a destroy takes with it: bit per head slot and per snapshot slot. */
struct closure {
    unsigned heads, snaps;
};

static int closure_head(const struct dsmodel *dm, unsigned h, unsigned flags, unsigned onstack,
                        struct closure *cl);

/*
 * Snapshot slot s and, with DSOP_CLONES, its clones' trees (the engine's check_snapshot). A
 * clone reached again while it is being visited is a cycle, which the engine refuses (-ELOOP).
 */
static int
closure_snap(const struct dsmodel *dm, unsigned s, unsigned flags, unsigned onstack,
             struct closure *cl)
{
    cl->snaps |= BIT(s);
    if (dm->snaps[s].holds != 0)
        return -EBUSY;
    unsigned clones = clones_of(dm, dm->snaps[s].sid);
    if (clones != 0 && !(flags & DSOP_CLONES))
        return -EBUSY;
    for (unsigned k = 1; k < DS_HEADS; k++) {
        if (!(clones & BIT(k)))
            continue;
        int rc = closure_head(dm, k, flags | DSOP_RECURSIVE, onstack, cl);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Head h with its snapshots and children (the engine's check_head_tree). */
static int
closure_head(const struct dsmodel *dm, unsigned h, unsigned flags, unsigned onstack,
             struct closure *cl)
{
    if (h == 0)
        return -EINVAL;
    if (onstack & BIT(h))
        return -ELOOP;
    if (cl->heads & BIT(h))
        return 0; /* reached twice without a cycle: checked already */
    cl->heads |= BIT(h);
    onstack |= BIT(h);
    if (!(flags & DSOP_RECURSIVE) && (has_children(dm, h) || count_snaps(dm, h) > 0))
        return -ENOTEMPTY;
    for (unsigned i = 0; i < DS_SNAPS; i++) {
        if (!dm->snaps[i].live || dm->snaps[i].head != h)
            continue;
        int rc = closure_snap(dm, i, flags, onstack, cl);
        if (rc != 0)
            return rc;
    }
    for (unsigned i = 1; i < DS_HEADS; i++) {
        if (!dm->heads[i].live || head_parent[i] != (int)h)
            continue;
        int rc = closure_head(dm, i, flags, onstack, cl);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/*
 * The engine's answer to namespace op r as the model predicts it: 0, or the errno a refusal
 * returns (-EEXIST, -ENOENT, -EBUSY, -ENOTEMPTY; -ELOOP and -EINVAL for ops the tool never
 * attempts). cl receives what a destroy would take.
 */
static int
dsm_expect(const struct dsmodel *dm, const struct rec *r, struct closure *cl)
{
    *cl = (struct closure){ 0 };
    int s = REC_IS_NS(r->type) && r->type != REC_DS_CREATE && r->type != REC_DS_SNAPSHOT &&
                    r->type != REC_DS_DESTROY && r->type != REC_DS_PROMOTE
                ? find_snap(dm, r->sid)
                : -1;
    switch (r->type) {
    case REC_DS_CREATE:
    case REC_DS_CLONE:
        if (r->ds == 0 || r->ds >= DS_HEADS || !dm->heads[head_parent[r->ds]].live)
            return -EINVAL;
        if (dm->heads[r->ds].live)
            return -EEXIST;
        if (r->type == REC_DS_CLONE && (s < 0 || dm->snaps[s].head == 0))
            return -EINVAL; /* root snapshots keep no contents to clone */
        return 0;
    case REC_DS_SNAPSHOT: {
        unsigned n = 0, nroot = 0, free_slots = DS_SNAPS - dsm_nsnaps(dm);
        if (r->mask == 0 || r->mask >= BIT(DS_HEADS))
            return -EINVAL;
        for (unsigned i = 0; i < DS_HEADS; i++) {
            if (!(r->mask & BIT(i)))
                continue;
            if (!dm->heads[i].live)
                return -ENOENT;
            n++;
        }
        if (r->mask & BIT(0))
            nroot = count_snaps(dm, 0) + 1;
        return n > free_slots || nroot > DS_ROOT_SNAPS ? -ENOSPC : 0;
    }
    case REC_DS_DESTROY:
        if (r->ds == 0 || r->ds >= DS_HEADS || !dm->heads[r->ds].live)
            return -EINVAL;
        return closure_head(dm, r->ds, r->attr, 0, cl);
    case REC_DS_DESTROY_SNAP:
        return s < 0 ? -ENOENT : closure_snap(dm, (unsigned)s, r->attr, 0, cl);
    case REC_DS_ROLLBACK: {
        if (s < 0 || dm->snaps[s].head == 0)
            return -EINVAL;
        for (unsigned i = 0; i < DS_SNAPS; i++) {
            const struct msnap *l = &dm->snaps[i];
            if (!l->live || l->head != dm->snaps[s].head || l->sid <= r->sid)
                continue;
            if (!(r->attr & DSOP_LATER))
                return -EEXIST;
            if (l->holds != 0 || clones_of(dm, l->sid) != 0)
                return -EBUSY;
            cl->snaps |= BIT(i);
        }
        return 0;
    }
    case REC_DS_PROMOTE: {
        if (r->ds == 0 || r->ds >= DS_HEADS || !dm->heads[r->ds].live)
            return -EINVAL;
        int o = dm->heads[r->ds].origin != 0 ? find_snap(dm, dm->heads[r->ds].origin) : -1;
        if (o < 0)
            return -EINVAL;
        /* Refused: the root would become a clone, or the origin's head a clone of its own
         * descendant (the engine's promote_task). */
        unsigned oh = dm->snaps[o].head;
        if (oh == 0)
            return -EINVAL;
        for (int a = head_parent[r->ds]; a >= 0; a = head_parent[a])
            if ((unsigned)a == oh)
                return -EINVAL;
        return 0;
    }
    case REC_DS_HOLD:
    case REC_DS_RELEASE: {
        if (s < 0)
            return -ENOENT;
        bool held = (dm->snaps[s].holds & BIT(DSOP_TAG(r->attr))) != 0;
        return r->type == REC_DS_HOLD ? (held ? -EEXIST : 0) : (held ? 0 : -ENOENT);
    }
    default:
        return -EINVAL;
    }
}

static void
kill_head(struct dsmodel *dm, unsigned h)
{
    model_reset(&dm->heads[h].m);
    dm->heads[h].live = false;
    dm->heads[h].origin = 0;
}

static void
kill_snap(struct dsmodel *dm, unsigned s)
{
    model_reset(&dm->snaps[s].m);
    dm->snaps[s] = (struct msnap){ .m = dm->snaps[s].m };
}

static int
apply_snapshot(struct dsmodel *dm, const struct rec *r)
{
    unsigned k = 0;
    for (unsigned h = 0; h < DS_HEADS; h++) {
        if (!(r->mask & BIT(h)))
            continue;
        unsigned s = 0;
        while (dm->snaps[s].live)
            s++; /* dsm_expect checked there is room */
        struct msnap *sn = &dm->snaps[s];
        sn->live = true;
        sn->head = h;
        sn->sid = r->sid + k++;
        sn->holds = 0;
        sn->hashed = dm->hashing;
        sn->hash = dm->hashing ? model_hash(&dm->heads[h].m) : 0;
        if (h != 0 && model_copy(&sn->m, &dm->heads[h].m) != 0)
            return -ENOMEM;
    }
    return 0;
}

static void
apply_promote(struct dsmodel *dm, unsigned c)
{
    int o = find_snap(dm, dm->heads[c].origin);
    unsigned h = dm->snaps[o].head;
    uint64_t osid = dm->snaps[o].sid;
    /* Snapshots of h up to and including the origin move to c; c takes h's origin. */
    for (unsigned i = 0; i < DS_SNAPS; i++)
        if (dm->snaps[i].live && dm->snaps[i].head == h && dm->snaps[i].sid <= osid)
            dm->snaps[i].head = c;
    dm->heads[c].origin = dm->heads[h].origin;
    dm->heads[h].origin = osid;
}

int
dsm_apply(struct dsmodel *dm, const struct rec *r, char *why, size_t whylen)
{
    if (!REC_IS_NS(r->type)) {
        if (r->ds >= DS_HEADS || !dm->heads[r->ds].live) {
            snprintf(why, whylen, "op %llu on dataset slot %u which does not exist",
                     (unsigned long long)r->opno, r->ds);
            return -EINVAL;
        }
        return model_apply(&dm->heads[r->ds].m, r, why, whylen);
    }
    struct closure cl;
    int rc = dsm_expect(dm, r, &cl);
    if (rc != 0) {
        char what[600];
        dsm_describe(dm, r, what, sizeof(what));
        snprintf(why, whylen, "op %llu (%s) cannot succeed: the model expects %s",
                 (unsigned long long)r->opno, what, err_str(rc));
        return -EINVAL;
    }
    int s = find_snap(dm, r->sid);
    switch (r->type) {
    case REC_DS_CREATE:
        dm->heads[r->ds].live = true;
        dm->heads[r->ds].origin = 0;
        model_reset(&dm->heads[r->ds].m);
        break;
    case REC_DS_SNAPSHOT:
        rc = apply_snapshot(dm, r);
        break;
    case REC_DS_DESTROY:
    case REC_DS_DESTROY_SNAP:
    case REC_DS_ROLLBACK:
        for (unsigned i = 0; i < DS_SNAPS; i++)
            if (cl.snaps & BIT(i))
                kill_snap(dm, i);
        for (unsigned i = 1; i < DS_HEADS; i++)
            if (cl.heads & BIT(i))
                kill_head(dm, i);
        if (r->type == REC_DS_ROLLBACK)
            rc = model_copy(&dm->heads[dm->snaps[s].head].m, &dm->snaps[s].m);
        break;
    case REC_DS_CLONE:
        dm->heads[r->ds].live = true;
        dm->heads[r->ds].origin = r->sid;
        rc = model_copy(&dm->heads[r->ds].m, &dm->snaps[s].m);
        break;
    case REC_DS_PROMOTE:
        apply_promote(dm, r->ds);
        break;
    case REC_DS_HOLD:
        dm->snaps[s].holds |= BIT(DSOP_TAG(r->attr));
        break;
    case REC_DS_RELEASE:
        dm->snaps[s].holds &= ~BIT(DSOP_TAG(r->attr));
        break;
    default:
        BUG("not a namespace op");
    }
    if (rc != 0)
        snprintf(why, whylen, "out of memory");
    return rc;
}

void
dsm_describe(const struct dsmodel *dm, const struct rec *r, char *buf, size_t len)
{
    char a[DSL_NAME_MAX + 1] = "", b[DSL_NAME_MAX + 1] = "";
    int s = find_snap(dm, r->sid);
    if (s >= 0)
        snap_name(dm->snaps[s].head, r->sid, b, sizeof(b));
    else
        snprintf(b, sizeof(b), "@s%llx", (unsigned long long)r->sid);
    if (r->ds < DS_HEADS)
        head_name(r->ds, a, sizeof(a));
    switch (r->type) {
    case REC_DS_CREATE:
    case REC_DS_PROMOTE:
        snprintf(buf, len, "%s %s", rec_name(r->type), a);
        break;
    case REC_DS_SNAPSHOT: {
        size_t l = (size_t)snprintf(buf, len, "snapshot");
        for (unsigned h = 0, k = 0; h < DS_HEADS && l < len; h++) {
            if (!(r->mask & BIT(h)))
                continue;
            snap_name(h, r->sid + k++, b, sizeof(b));
            l += (size_t)snprintf(buf + l, len - l, " %s", b);
        }
        break;
    }
    case REC_DS_DESTROY:
        snprintf(buf, len, "destroy%s%s %s", r->attr & DSOP_RECURSIVE ? " -r" : "",
                 r->attr & DSOP_CLONES ? " -R" : "", a);
        break;
    case REC_DS_DESTROY_SNAP:
        snprintf(buf, len, "destroy%s %s", r->attr & DSOP_CLONES ? " -R" : "", b);
        break;
    case REC_DS_CLONE:
        snprintf(buf, len, "clone %s %s", b, a);
        break;
    case REC_DS_ROLLBACK:
        snprintf(buf, len, "rollback%s %s", r->attr & DSOP_LATER ? " -r" : "", b);
        break;
    case REC_DS_HOLD:
    case REC_DS_RELEASE:
        snprintf(buf, len, "%s %s %s", rec_name(r->type), hold_tags[DSOP_TAG(r->attr)], b);
        break;
    default:
        snprintf(buf, len, "%s", rec_name(r->type));
        break;
    }
}

/* ---- the child ------------------------------------------------------------------------------- */

/* Calls the engine for namespace op r. */
static int
ds_call(struct child *c, const struct rec *r, struct err_msg *em)
{
    const struct dsmodel *dm = c->dm;
    char a[DSL_NAME_MAX + 1], b[DSL_NAME_MAX + 1];
    int s = find_snap(dm, r->sid);
    if (s >= 0)
        snap_name(dm->snaps[s].head, r->sid, b, sizeof(b));
    head_name(r->ds < DS_HEADS ? r->ds : 0, a, sizeof(a));
    unsigned flags = (r->attr & DSOP_RECURSIVE ? DSL_DESTROY_RECURSIVE : 0) |
                     (r->attr & DSOP_CLONES ? DSL_DESTROY_CLONES : 0);
    switch (r->type) {
    case REC_DS_CREATE:
        return dsl_create(c->pool, a, DSL_KIND_FS, NULL, 0, 0, em);
    case REC_DS_SNAPSHOT: {
        char names[DS_HEADS][DSL_NAME_MAX + 1];
        const char *v[DS_HEADS];
        size_t n = 0;
        for (unsigned h = 0; h < DS_HEADS; h++) {
            if (!(r->mask & BIT(h)))
                continue;
            snap_name(h, r->sid + n, names[n], sizeof(names[n]));
            v[n] = names[n];
            n++;
        }
        return dsl_snapshot(c->pool, v, n, em);
    }
    case REC_DS_DESTROY:
        return dsl_destroy(c->pool, a, flags, em);
    case REC_DS_DESTROY_SNAP:
        return dsl_destroy(c->pool, b, flags, em);
    case REC_DS_CLONE:
        return dsl_clone(c->pool, b, a, NULL, 0, em);
    case REC_DS_ROLLBACK:
        return dsl_rollback(c->pool, b, (r->attr & DSOP_LATER) != 0, em);
    case REC_DS_PROMOTE:
        return dsl_promote(c->pool, a, em);
    case REC_DS_HOLD:
        return dsl_hold(c->pool, b, hold_tags[DSOP_TAG(r->attr)], em);
    case REC_DS_RELEASE:
        return dsl_release(c->pool, b, hold_tags[DSOP_TAG(r->attr)], em);
    default:
        BUG("not a namespace op");
    }
}

/*
 * Runs namespace op r. Predicted to succeed: report INTENT, call, report DONE with the synced txg
 * (the op is durable on return, so its txg is at most that), update the model. Predicted to fail:
 * no report (nothing may change), and the engine must refuse it with the predicted error.
 */
static int
ds_run(struct child *c, struct rec *r)
{
    struct closure cl;
    int expect = dsm_expect(c->dm, r, &cl);
    char what[600];
    dsm_describe(c->dm, r, what, sizeof(what));
    r->opno = c->opno++;
    r->txg = 0;
    r->attr = (r->attr & ~(DSOP_INTENT | DSOP_DONE)) | (expect == 0 ? DSOP_INTENT : 0);
    if (expect == 0 && child_send(c, r) != 0)
        return -1;
    struct err_msg em = { 0 };
    int rc = ds_call(c, r, &em);
    if (rc != expect)
        return child_fail(c, "op %llu: %s: %s (%s), expected %s", (unsigned long long)r->opno, what,
                          err_str(rc), em.text, expect == 0 ? "success" : err_str(expect));
    if (expect != 0)
        return 0;
    /* A slow reporter now and then: widens the window in which the op happened but DONE was not
     * sent, so the parent's decision from the pool sees both outcomes. */
    if (rnd(&c->rng) % 4 == 0)
        nanosleep(&(struct timespec){ 0, (long)rnd_range(&c->rng, 1, 10) * 1000000 }, NULL);
    struct pool_stats ps;
    pool_get_stats(c->pool, &ps);
    r->txg = ps.synced_txg;
    r->attr = (r->attr & ~DSOP_INTENT) | DSOP_DONE;
    if (child_send(c, r) != 0)
        return -1;
    char why[700];
    if (dsm_apply(c->dm, r, why, sizeof(why)) != 0)
        return child_fail(c, "%s", why);
    return 0;
}

/* A random live snapshot slot (not of the root when contents are needed), or -1. */
static int
pick_snap(struct child *c, bool need_contents)
{
    int v[DS_SNAPS];
    unsigned n = 0;
    for (unsigned i = 0; i < DS_SNAPS; i++)
        if (c->dm->snaps[i].live && (!need_contents || c->dm->snaps[i].head != 0))
            v[n++] = (int)i;
    return n == 0 ? -1 : v[rnd(&c->rng) % n];
}

/* A random live head slot other than the root (clones_only: clones), or 0. */
static unsigned
pick_head(struct child *c, bool clones_only)
{
    unsigned v[DS_HEADS], n = 0;
    for (unsigned i = 1; i < DS_HEADS; i++)
        if (c->dm->heads[i].live && (!clones_only || c->dm->heads[i].origin != 0))
            v[n++] = i;
    return n == 0 ? 0 : v[rnd(&c->rng) % n];
}

/* A random free slot whose parent exists (to create or clone into), or 0. */
static unsigned
pick_free_slot(struct child *c)
{
    unsigned v[DS_HEADS], n = 0;
    for (unsigned i = 1; i < DS_HEADS; i++)
        if (!c->dm->heads[i].live && c->dm->heads[head_parent[i]].live)
            v[n++] = i;
    return n == 0 ? 0 : v[rnd(&c->rng) % n];
}

/*
 * Builds a random namespace op into r. Returns false when the chosen kind has nothing to act on.
 * The flags of destroys and rollbacks are the ones that make the op succeed, except for the
 * deliberate refusals (about one op in twelve).
 */
static bool
ds_pick_op(struct child *c, struct rec *r)
{
    struct dsmodel *dm = c->dm;
    struct closure cl;
    uint64_t sid = (uint64_t)(c->round + 1) << 32 | c->opno << 3; /* never 0: "no origin" */
    unsigned k = (unsigned)(rnd(&c->rng) % 100);
    bool refuse = rnd(&c->rng) % 12 == 0;
    /* Keep room: when the slots are (nearly) full, destroy more often. */
    if (dsm_nsnaps(dm) + 2 >= DS_SNAPS && rnd(&c->rng) % 2 == 0)
        k = 36 + (unsigned)(rnd(&c->rng) % 16);
    else if (dsm_nheads(dm) + 1 >= DS_HEADS && rnd(&c->rng) % 3 == 0)
        k = 74 + (unsigned)(rnd(&c->rng) % 12);
    int s;
    *r = (struct rec){ 0 };
    if (k < 12) {
        *r = (struct rec){ .type = REC_DS_CREATE, .ds = pick_free_slot(c) };
        return r->ds != 0 && dsm_expect(dm, r, &cl) == 0;
    }
    if (k < 36) {
        /* One to three heads in one call; the root only while it has few snapshots. */
        unsigned want = (unsigned)rnd_range(&c->rng, 1, 3);
        r->type = REC_DS_SNAPSHOT;
        r->sid = sid;
        for (unsigned t = 0; t < 8 && want > 0; t++) {
            unsigned h = (unsigned)(rnd(&c->rng) % DS_HEADS);
            if (dm->heads[h].live && !(r->mask & BIT(h)) && (h != 0 || rnd(&c->rng) % 3 == 0)) {
                r->mask |= BIT(h);
                want--;
            }
        }
        return r->mask != 0 && dsm_expect(dm, r, &cl) == 0;
    }
    if (k < 52) {
        if ((s = pick_snap(c, false)) < 0)
            return false;
        *r = (struct rec){ .type = REC_DS_DESTROY_SNAP, .sid = dm->snaps[s].sid };
        if (refuse)
            return dsm_expect(dm, r, &cl) == -EBUSY; /* held, or has clones */
        if (dsm_expect(dm, r, &cl) != 0)
            r->attr = DSOP_CLONES;
        return dsm_expect(dm, r, &cl) == 0;
    }
    if (k < 62) {
        if ((s = pick_snap(c, true)) < 0)
            return false;
        *r = (struct rec){ .type = REC_DS_CLONE, .sid = dm->snaps[s].sid, .ds = pick_free_slot(c) };
        return r->ds != 0 && dsm_expect(dm, r, &cl) == 0;
    }
    if (k < 74) {
        unsigned h = pick_head(c, false);
        int latest = h != 0 ? latest_snap(dm, h) : -1;
        if (latest < 0)
            return false;
        /* Mostly the newest snapshot; sometimes an older one with -r. */
        s = latest;
        if (rnd(&c->rng) % 3 == 0) {
            int v[DS_SNAPS];
            unsigned n = 0;
            for (unsigned i = 0; i < DS_SNAPS; i++)
                if (dm->snaps[i].live && dm->snaps[i].head == h)
                    v[n++] = (int)i;
            s = v[rnd(&c->rng) % n];
        }
        *r = (struct rec){ .type = REC_DS_ROLLBACK, .sid = dm->snaps[s].sid };
        if (refuse)
            return dsm_expect(dm, r, &cl) == -EEXIST;
        if (dsm_expect(dm, r, &cl) == -EEXIST)
            r->attr = DSOP_LATER;
        return dsm_expect(dm, r, &cl) == 0;
    }
    if (k < 86) {
        *r = (struct rec){ .type = REC_DS_DESTROY, .ds = pick_head(c, false) };
        if (r->ds == 0)
            return false;
        if (refuse)
            return dsm_expect(dm, r, &cl) == -ENOTEMPTY;
        if (dsm_expect(dm, r, &cl) != 0)
            r->attr = DSOP_RECURSIVE;
        if (dsm_expect(dm, r, &cl) == -EBUSY)
            r->attr |= DSOP_CLONES;
        return dsm_expect(dm, r, &cl) == 0; /* never -ELOOP: see closure_snap */
    }
    if (k < 90) {
        *r = (struct rec){ .type = REC_DS_PROMOTE, .ds = pick_head(c, true) };
        return r->ds != 0 && dsm_expect(dm, r, &cl) == 0;
    }
    if ((s = pick_snap(c, false)) < 0)
        return false;
    unsigned tag = (unsigned)(rnd(&c->rng) % 2);
    bool held = (dm->snaps[s].holds & BIT(tag)) != 0;
    *r = (struct rec){ .type = held ? REC_DS_RELEASE : REC_DS_HOLD,
                       .sid = dm->snaps[s].sid,
                       .attr = tag ? DSOP_TAG1 : 0 };
    return dsm_expect(dm, r, &cl) == 0;
}

/* Reads a random object range of a snapshot and compares it with the snapshot's model. */
static int
ds_check_snapshot(struct child *c)
{
    int s = pick_snap(c, true);
    if (s < 0 || c->dm->snaps[s].m.nlive == 0)
        return 0;
    const struct msnap *sn = &c->dm->snaps[s];
    char name[DSL_NAME_MAX + 1];
    snap_name(sn->head, sn->sid, name, sizeof(name));
    struct dataset *ds;
    struct err_msg em = { 0 };
    int rc = ds_open(c->pool, name, &ds, &em);
    if (rc != 0)
        return child_fail(c, "ds_open %s: %s", name, em.text);
    struct tx tx;
    rc = ds_tx_assign(ds, 1, &tx);
    if (rc != -EROFS) {
        if (rc == 0)
            tx_commit(&tx);
        ds_close(ds);
        return child_fail(c, "ds_tx_assign on snapshot %s: %s, expected -EROFS", name, err_str(rc));
    }
    const struct mobj *v[DS_MAX_OBJS];
    unsigned n = 0;
    for (unsigned i = 0; i < sn->m.max_objs; i++)
        if (sn->m.objs[i].live)
            v[n++] = &sn->m.objs[i];
    rc = child_check_read(c, ds_objset(ds), v[rnd(&c->rng) % n], sn->m.obj_max, name);
    ds_close(ds);
    return rc;
}

int
ds_child_step(struct child *c)
{
    unsigned pick = (unsigned)(rnd(&c->rng) % 100);
    unsigned h = pick_head(c, false);
    if (h != 0 && pick < 66) {
        char name[DSL_NAME_MAX + 1];
        head_name(h, name, sizeof(name));
        struct dataset *ds;
        struct err_msg em = { 0 };
        int rc = ds_open(c->pool, name, &ds, &em);
        if (rc != 0)
            return child_fail(c, "ds_open %s: %s", name, em.text);
        rc = child_obj_step(c, h, ds, ds_objset(ds));
        ds_close(ds);
        return rc;
    }
    if (pick < 74)
        return ds_check_snapshot(c);
    struct rec r;
    for (int tries = 0; tries < 4; tries++) {
        if (!ds_pick_op(c, &r))
            continue;
        /* Sometimes commit the writes first: a kill in the op then leaves both outcomes possible
         * (else the op usually shares its txg with uncommitted writes). */
        if (rnd(&c->rng) % 3 == 0) {
            uint64_t txg = 0;
            int rc = pool_sync(c->pool, &txg);
            if (rc != 0)
                return child_fail(c, "pool_sync: %s", err_str(rc));
            struct rec sy = { .type = REC_SYNCED, .txg = txg, .opno = c->opno };
            if (child_send(c, &sy) != 0)
                return -1;
        }
        return ds_run(c, &r);
    }
    return 0;
}

/* ---- the parent's check ---------------------------------------------------------------------- */

struct listed {
    char name[DSL_NAME_MAX + 1];
    enum dsl_kind kind;
    char origin[DSL_NAME_MAX + 1];
    uint64_t userrefs, num_clones;
    bool matched;
};

struct listing {
    struct listed v[64];
    size_t n, dropped;
};

static int
list_one(void *arg, const struct dsl_info *in)
{
    struct listing *ls = arg;
    if (ls->n == sizeof(ls->v) / sizeof(ls->v[0])) {
        ls->dropped++;
        return 0;
    }
    struct listed *e = &ls->v[ls->n++];
    snprintf(e->name, sizeof(e->name), "%s", in->name);
    snprintf(e->origin, sizeof(e->origin), "%s", in->origin);
    e->kind = in->kind;
    e->userrefs = in->userrefs;
    e->num_clones = in->num_clones;
    e->matched = false;
    return 0;
}

static struct listed *
listed_find(struct listing *ls, const char *name)
{
    for (size_t i = 0; i < ls->n; i++)
        if (strcmp(ls->v[i].name, name) == 0)
            return &ls->v[i];
    return NULL;
}

static int
hold_bit(void *arg, const char *tag, uint64_t time)
{
    (void)time;
    unsigned *bits = arg;
    for (unsigned i = 0; i < 2; i++)
        if (strcmp(tag, hold_tags[i]) == 0)
            *bits |= BIT(i);
    if (strcmp(tag, hold_tags[0]) != 0 && strcmp(tag, hold_tags[1]) != 0)
        *bits |= BIT(7);
    return 0;
}

/* A head's listing entry: kind, origin, contents. */
static void
check_head(struct checker *ck, struct pool *p, const struct dsmodel *dm, unsigned h,
           const struct listed *e)
{
    const struct mhead *mh = &dm->heads[h];
    char want_origin[DSL_NAME_MAX + 1] = "";
    int o = mh->origin != 0 ? find_snap(dm, mh->origin) : -1;
    if (o >= 0)
        snap_name(dm->snaps[o].head, mh->origin, want_origin, sizeof(want_origin));
    if (e->kind != DSL_KIND_FS)
        check_fail(ck, "dataset '%s' has kind %u, expected a filesystem", e->name, e->kind);
    if (strcmp(e->origin, want_origin) != 0)
        check_fail(ck, "dataset '%s' has origin '%s', expected '%s'", e->name, e->origin,
                   want_origin);
    if (h == 0 || (ck->quiet && ck->nfail > 0))
        return; /* the root's contents are compared by the caller */
    struct dataset *ds;
    struct err_msg em = { 0 };
    int rc = ds_open(p, e->name, &ds, &em);
    if (rc != 0) {
        check_fail(ck, "ds_open '%s': %s", e->name, em.text);
        return;
    }
    model_compare(ck, ds_objset(ds), &mh->m, e->name, h);
    ds_close(ds);
}

/* A snapshot's listing entry: holds, clones and (deep) contents against the recorded hash. */
static void
check_snap(struct checker *ck, struct pool *p, const struct dsmodel *dm, unsigned s,
           const struct listed *e, bool deep)
{
    const struct msnap *sn = &dm->snaps[s];
    unsigned nclones = (unsigned)__builtin_popcount(clones_of(dm, sn->sid));
    unsigned bits = 0;
    struct err_msg em = { 0 };
    int rc = dsl_holds(p, e->name, hold_bit, &bits, &em);
    if (rc != 0)
        check_fail(ck, "dsl_holds '%s': %s", e->name, em.text);
    else if (bits != sn->holds || e->userrefs != (uint64_t)__builtin_popcount(sn->holds))
        check_fail(ck, "snapshot '%s' has holds %#x (%llu), expected %#x", e->name, bits,
                   (unsigned long long)e->userrefs, sn->holds);
    if (e->kind != DSL_KIND_SNAP || e->num_clones != nclones)
        check_fail(ck, "snapshot '%s': kind %u, %llu clones, expected a snapshot with %u", e->name,
                   e->kind, (unsigned long long)e->num_clones, nclones);
    if (!deep || (ck->quiet && ck->nfail > 0))
        return;
    if (sn->hashed && sn->head != 0 && model_hash(&sn->m) != sn->hash)
        check_fail(ck, "stress tool bug: the model of snapshot '%s' changed", e->name);
    struct dataset *ds;
    rc = ds_open(p, e->name, &ds, &em);
    if (rc != 0) {
        check_fail(ck, "ds_open '%s': %s", e->name, em.text);
        return;
    }
    uint64_t hash = 0;
    rc = objset_hash(ds_objset(ds), ck->buf, &hash);
    if (rc != 0)
        check_fail(ck, "snapshot '%s': reading its contents: %s", e->name, err_str(rc));
    else if (sn->hashed && hash != sn->hash)
        check_fail(ck, "snapshot '%s' changed: content hash %016llx, recorded %016llx at creation",
                   e->name, (unsigned long long)hash, (unsigned long long)sn->hash);
    if (sn->head != 0 && (rc != 0 || !sn->hashed || hash != sn->hash))
        model_compare(ck, ds_objset(ds), &sn->m, e->name, DS_HEADS); /* the details */
    ds_close(ds);
}

void
dsm_check(struct checker *ck, struct pool *p, const struct dsmodel *dm, bool deep)
{
    struct listing *ls = calloc(1, sizeof(*ls));
    VERIFY(ls != NULL);
    struct err_msg em = { 0 };
    int rc = dsl_list(p, NULL, DSL_LIST_RECURSIVE | DSL_LIST_ALL_TYPES, list_one, ls, &em);
    if (rc != 0) {
        check_fail(ck, "dsl_list: %s", em.text);
        free(ls);
        return;
    }
    if (ls->dropped > 0)
        check_fail(ck, "the pool lists %zu datasets, more than there can be", ls->n + ls->dropped);
    char name[DSL_NAME_MAX + 1];
    for (unsigned h = 0; h < DS_HEADS; h++) {
        if (!dm->heads[h].live)
            continue;
        head_name(h, name, sizeof(name));
        struct listed *e = listed_find(ls, name);
        if (e == NULL) {
            check_fail(ck, "dataset '%s' is missing", name);
            continue;
        }
        e->matched = true;
        check_head(ck, p, dm, h, e);
    }
    for (unsigned s = 0; s < DS_SNAPS; s++) {
        if (!dm->snaps[s].live)
            continue;
        snap_name(dm->snaps[s].head, dm->snaps[s].sid, name, sizeof(name));
        struct listed *e = listed_find(ls, name);
        if (e == NULL) {
            check_fail(ck, "snapshot '%s' is missing", name);
            continue;
        }
        e->matched = true;
        check_snap(ck, p, dm, s, e, deep);
    }
    /* Nothing else exists, and each head's snapshots are listed in creation (sid) order. */
    uint64_t last_sid[DS_HEADS] = { 0 };
    for (size_t i = 0; i < ls->n; i++) {
        const struct listed *e = &ls->v[i];
        if (!e->matched) {
            check_fail(ck, "'%s' exists but the model has no such dataset", e->name);
            continue;
        }
        const char *at = strchr(e->name, '@');
        if (at == NULL)
            continue;
        uint64_t sid = strtoull(at + 2, NULL, 16);
        int s = find_snap(dm, sid);
        unsigned h = s >= 0 ? dm->snaps[s].head : 0;
        if (sid < last_sid[h])
            check_fail(ck, "'%s' is listed after a newer snapshot of its dataset", e->name);
        last_sid[h] = sid;
    }
    free(ls);
}
