/* SPDX-License-Identifier: MIT */
/*
 * The dataset layer against an in-memory oracle: random sequences (fixed, printed seeds) of
 * creates, writes/overwrites/punches/truncates of a few objects per dataset, snapshots (several
 * heads at once), snapshot destroys (middle ones too, some with -R), clones, rollbacks (to the
 * latest, and -r), dataset destroys (-r, -R), promotes, and property set/inherit (compression,
 * com.example:tag) on parents and children. The model keeps every head's and snapshot's object
 * contents, per 512-byte sector, as the version of the data last written there, and is compared
 * with what ds_open/obj_read return every few operations: so a snapshot that changed after it
 * was taken shows up as a mismatch. Also checked:
 *   - destroying a snapshot returns at least its `used` to the pool and at most that plus the
 *     MOS metadata of the destroy (192 KiB), pool-wide metadata growth aside (pool_used());
 *   - every property's value and source ("local", "inherited from X", "default") against a
 *     resolution computed from the model, the effective compression of handles and of objects
 *     created with COMPRESS_INHERIT;
 *   - the listing, origins, clone counts, the `used` breakdown, and the expected error of every
 *     request the model predicts to fail;
 *   - every VERIFY_EVERY operations the offline verifier (clean) and a re-import, after which
 *     everything is checked again; at the end everything is destroyed and the space returns.
 * Requests core refuses on purpose (promotes that would make a cycle or a clone of the root)
 * are not made; two tests at the end check the refusals. LCPFS_ORACLE_TRACE=1 prints each
 * operation; LCPFS_ORACLE_SEED (and _OPS) runs one more seed; LCPFS_ORACLE_VERIFY=n verifies every
 * n operations.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/compress.h"
#include "core/dsl.h"
#include "core/objset.h"
#include "core/pool.h"
#include "core/pool_impl.h"
#include "core/props.h"
#include "test_util.h"

TestSuite(dsl_oracle, .init = test_tmpdir_setup, .fini = test_tmpdir_teardown, .timeout = 300);

#undef MiB
#define MiB (1024ull * 1024)

#define SECT         512u
#define OBJ_MAX      (256u * 1024) /* model size limit of an object */
#define NSECT        (OBJ_MAX / SECT)
#define MAXOBJ       4  /* objects per dataset */
#define MAXHEADS     48 /* model slots (reused) */
#define MAXSNAPS     96
#define LIVE_HEADS   12 /* bounds on what lives at once, to bound the checks */
#define LIVE_SNAPS   28
#define MAXDEPTH     3 /* tank/a/b/c */
#define CHECK_EVERY  6
#define VERIFY_EVERY 60
#define MOS_SLACK    (192 * 1024)

static struct err_msg em;
static int cur_op;
static uint64_t cur_seed;

/* Every failure message starts with the seed and operation number: rerun with
 * LCPFS_ORACLE_SEED/LCPFS_ORACLE_OPS and LCPFS_ORACLE_TRACE=1 to see the sequence. */
#define AT  "seed %#llx op %d: "
#define ATV (unsigned long long)cur_seed, cur_op

#define OK(call) cr_assert_eq((call), 0, AT "%s: %s", ATV, #call, em.text)
#define EXPECT_RC(call, want)                                                              \
    do {                                                                                   \
        int rc_ = (call);                                                                  \
        cr_assert_eq(rc_, (want), AT "%s = %d, expected %d (%s)", ATV, #call, rc_, (want), \
                     em.text);                                                             \
    } while (0)

struct mobj {
    uint64_t num, size;
    uint32_t seed[NSECT]; /* data version of each sector; 0 = zeros */
};

struct mset {
    int n;
    struct mobj o[MAXOBJ];
};

struct mhead {
    bool live;
    char name[DSL_NAME_MAX + 1];
    int parent, origin, depth; /* model indexes; -1 = none */
    int snaps[MAXSNAPS];       /* live snapshots, oldest first */
    int nsnaps;
    char comp[16], tag[24]; /* local values; "" = none */
    struct mset c;
};

struct msnap {
    bool live;
    int head;
    char sname[24];
    struct mset c;
};

struct oracle {
    struct pool *p;
    uint64_t rng;
    uint32_t version;
    unsigned names;
    struct mhead h[MAXHEADS];
    struct msnap s[MAXSNAPS];
    bool trace;
    unsigned nops[16], nerr, nchecks, nverify, nfreed_checks;
    bool space_returned; /* the final check that a destroy of everything frees everything ran */
};

/* ---- data ----------------------------------------------------------------------------------- */

/* The bytes of data version v at absolute offsets [off, off+len) (both multiples of 8); 0 = zeros;
 * every third version compresses well. */
static void
fill(uint8_t *buf, uint64_t off, size_t len, uint32_t v)
{
    if (v == 0) {
        memset(buf, 0, len);
        return;
    }
    for (size_t i = 0; i < len; i += 8) {
        uint64_t a = off + i, x;
        if (v % 3 == 0) {
            x = 0x0101010101010101ull * (uint8_t)(v * 7 + (a >> 9));
        } else {
            x = (a >> 3) * 0x9e3779b97f4a7c15ull ^ (v + 1ull) * 0xbf58476d1ce4e5b9ull;
            x ^= x >> 29;
            x *= 0x94d049bb133111ebull;
        }
        for (int b = 0; b < 8; b++)
            buf[i + (size_t)b] = (uint8_t)(x >> (8 * b));
    }
}

static uint64_t
rnd(struct oracle *o)
{
    return test_rnd(&o->rng);
}

static int
pick(struct oracle *o, int n)
{
    return n > 0 ? (int)(rnd(o) % (uint64_t)n) : 0;
}

static void trace(const struct oracle *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
trace(const struct oracle *o, const char *fmt, ...)
{
    if (!o->trace)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%#llx %4d] ", ATV);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void
snap_name(const struct oracle *o, int si, char *buf, size_t len)
{
    snprintf(buf, len, "%s@%s", o->h[o->s[si].head].name, o->s[si].sname);
}

/* ---- model queries -------------------------------------------------------------------------- */

static int
count_live(const struct oracle *o, bool snaps)
{
    int n = 0;
    for (int i = 0; i < (snaps ? MAXSNAPS : MAXHEADS); i++)
        n += snaps ? o->s[i].live : o->h[i].live;
    return n;
}

static int
free_slot(const struct oracle *o, bool snaps)
{
    for (int i = 1; i < (snaps ? MAXSNAPS : MAXHEADS); i++)
        if (!(snaps ? o->s[i].live : o->h[i].live))
            return i;
    return -1;
}

static bool
has_children(const struct oracle *o, int hi)
{
    for (int i = 0; i < MAXHEADS; i++)
        if (o->h[i].live && o->h[i].parent == hi)
            return true;
    return false;
}

static int
nclones(const struct oracle *o, int si)
{
    int n = 0;
    for (int i = 0; i < MAXHEADS; i++)
        n += o->h[i].live && o->h[i].origin == si;
    return n;
}

static bool
name_taken(const struct oracle *o, const char *name)
{
    for (int i = 0; i < MAXHEADS; i++)
        if (o->h[i].live && strcmp(o->h[i].name, name) == 0)
            return true;
    return false;
}

static bool
snap_name_taken(const struct oracle *o, int hi, const char *sname)
{
    for (int k = 0; k < o->h[hi].nsnaps; k++)
        if (strcmp(o->s[o->h[hi].snaps[k]].sname, sname) == 0)
            return true;
    return false;
}

enum want { ANY, PARENT, WITH_OBJS, WITH_SNAPS, CLONE, NOT_ROOT };

/* A random live head of the kind wanted, or -1. */
static int
pick_head(struct oracle *o, enum want w)
{
    int c[MAXHEADS], n = 0;
    for (int i = 0; i < MAXHEADS; i++) {
        const struct mhead *h = &o->h[i];
        bool ok = w == PARENT       ? h->depth < MAXDEPTH
                  : w == WITH_OBJS  ? h->c.n > 0
                  : w == WITH_SNAPS ? h->nsnaps > 0
                  : w == CLONE      ? h->origin >= 0
                  : w == NOT_ROOT   ? i != 0
                                    : true;
        if (h->live && ok)
            c[n++] = i;
    }
    return n == 0 ? -1 : c[pick(o, n)];
}

static int
pick_snap(struct oracle *o)
{
    int c[MAXSNAPS], n = 0;
    for (int i = 0; i < MAXSNAPS; i++)
        if (o->s[i].live)
            c[n++] = i;
    return n == 0 ? -1 : c[pick(o, n)];
}

/* A name for a new head below parent: fresh, or (sometimes) one that a destroyed head had. */
static void
new_head_name(struct oracle *o, int parent, char *buf, size_t len)
{
    if (pick(o, 4) == 0) {
        size_t pl = strlen(o->h[parent].name);
        for (int i = 0; i < MAXHEADS; i++) {
            const char *n = o->h[i].name;
            if (!o->h[i].live && n[0] != 0 && strncmp(n, o->h[parent].name, pl) == 0 &&
                n[pl] == '/' && strchr(n + pl + 1, '/') == NULL && !name_taken(o, n)) {
                snprintf(buf, len, "%s", n);
                return;
            }
        }
    }
    snprintf(buf, len, "%s/d%u", o->h[parent].name, ++o->names);
}

static void
new_snap_name(struct oracle *o, int hi, char *buf, size_t len)
{
    if (pick(o, 5) == 0) {
        int si = pick(o, MAXSNAPS);
        if (!o->s[si].live && o->s[si].sname[0] != 0 && !snap_name_taken(o, hi, o->s[si].sname)) {
            snprintf(buf, len, "%s", o->s[si].sname);
            return;
        }
    }
    snprintf(buf, len, "s%u", ++o->names);
}

static int
add_head(struct oracle *o, const char *name, int parent, int origin)
{
    int hi = free_slot(o, false);
    cr_assert_geq(hi, 1);
    struct mhead *h = &o->h[hi];
    memset(h, 0, sizeof(*h));
    h->live = true;
    snprintf(h->name, sizeof(h->name), "%s", name);
    h->parent = parent;
    h->origin = origin;
    h->depth = o->h[parent].depth + 1;
    if (origin >= 0)
        h->c = o->s[origin].c;
    return hi;
}

static void
kill_snap(struct oracle *o, int si)
{
    struct mhead *h = &o->h[o->s[si].head];
    for (int k = 0; k < h->nsnaps; k++) {
        if (h->snaps[k] == si) {
            memmove(&h->snaps[k], &h->snaps[k + 1], (size_t)(h->nsnaps - k - 1) * sizeof(int));
            h->nsnaps--;
            break;
        }
    }
    o->s[si].live = false;
}

static void
kill_head(struct oracle *o, int hi)
{
    while (o->h[hi].nsnaps > 0)
        kill_snap(o, o->h[hi].snaps[0]);
    o->h[hi].live = false;
}

/*
 * What a destroy of head hi (recursive) or of the clones of a snapshot takes with it: marks the
 * heads reachable by child edges and, with -R, by clone edges (a head's snapshots to their
 * clones). Returns true when that graph has a cycle (possible after a promote), which core's
 * recursive check does not survive (see the disabled test at the end).
 */
static bool
reach(const struct oracle *o, int hi, bool clones, int *state)
{
    if (state[hi] == 1)
        return true;
    if (state[hi] == 2)
        return false;
    state[hi] = 1;
    bool cycle = false;
    for (int i = 0; i < MAXHEADS && !cycle; i++) {
        if (!o->h[i].live)
            continue;
        bool edge = o->h[i].parent == hi;
        for (int k = 0; clones && !edge && k < o->h[hi].nsnaps; k++)
            edge = o->h[i].origin == o->h[hi].snaps[k];
        if (edge)
            cycle = reach(o, i, clones, state);
    }
    state[hi] = 2;
    return cycle;
}

/* ---- properties ----------------------------------------------------------------------------- */

/* Effective value and source of compression (which 0) or com.example:tag (1) of head hi, or
 * (from_snap) of one of its snapshots, from the model's local values. false: not set anywhere. */
static bool
resolve(const struct oracle *o, int hi, int which, bool from_snap, char *val, char *src)
{
    for (int a = hi; a >= 0; a = o->h[a].parent) {
        const char *v = which == 0 ? o->h[a].comp : o->h[a].tag;
        if (v[0] == 0)
            continue;
        strcpy(val, v);
        if (a == hi && !from_snap)
            strcpy(src, "local");
        else
            sprintf(src, "inherited from %s", o->h[a].name);
        return true;
    }
    if (which != 0)
        return false;
    strcpy(val, "lz4");
    strcpy(src, "default");
    return true;
}

static uint64_t
comp_num(const char *v)
{
    if (strcmp(v, "off") == 0)
        return PROPS_COMPRESS(COMPRESS_OFF, 0);
    if (strcmp(v, "lz4") == 0)
        return PROPS_COMPRESS(COMPRESS_LZ4, 0);
    if (strcmp(v, "zstd") == 0)
        return PROPS_COMPRESS(COMPRESS_ZSTD, ZSTD_LEVEL_DEFAULT);
    return PROPS_COMPRESS(COMPRESS_ZSTD, atoi(v + 5));
}

static void
check_prop(struct oracle *o, const char *name, const char *prop, bool want_set, const char *val,
           const char *src)
{
    static struct dsl_prop_out out;
    memset(&out, 0, sizeof(out));
    int rc = dsl_get(o->p, name, prop, false, &out, &em);
    if (!want_set) {
        cr_assert_eq(rc, -ENOENT, AT "%s %s: rc %d value '%s' (%s), expected unset", ATV, name,
                     prop, rc, out.value, out.source);
        return;
    }
    cr_assert_eq(rc, 0, AT "get %s %s: %s", ATV, name, prop, em.text);
    cr_assert(strcmp(out.value, val) == 0 && strcmp(out.source, src) == 0,
              AT "%s %s = '%s' (%s), expected '%s' (%s)", ATV, name, prop, out.value, out.source,
              val, src);
}

static void
check_props(struct oracle *o)
{
    char val[64], src[DSL_NAME_MAX + 32], name[DSL_NAME_MAX + 1];
    for (int i = 0; i < MAXHEADS; i++) {
        if (!o->h[i].live)
            continue;
        resolve(o, i, 0, false, val, src);
        check_prop(o, o->h[i].name, "compression", true, val, src);
        bool set = resolve(o, i, 1, false, val, src);
        check_prop(o, o->h[i].name, "com.example:tag", set, val, src);
    }
    for (int si = 0; si < MAXSNAPS; si++) {
        if (!o->s[si].live)
            continue;
        snap_name(o, si, name, sizeof(name));
        check_prop(o, name, "compression", false, NULL, NULL); /* does not apply */
        bool set = resolve(o, o->s[si].head, 1, true, val, src);
        check_prop(o, name, "com.example:tag", set, val, src);
    }
}

/* ---- contents ------------------------------------------------------------------------------- */

static uint8_t got_buf[OBJ_MAX + SECT], want_buf[OBJ_MAX + SECT];

/* Asserts that dataset/snapshot `name` holds exactly the objects of m (of all object numbers
 * the model knows, the others do not exist) with their sizes and contents. */
static void
check_contents(struct oracle *o, const char *name, const struct mset *m, const uint64_t *nums,
               int nnums, int head)
{
    struct dataset *ds;
    OK(ds_open(o->p, name, &ds, &em));
    struct objset *os = ds_objset(ds);
    for (int i = 0; i < m->n; i++) {
        const struct mobj *ob = &m->o[i];
        struct obj_info oi;
        cr_assert_eq(obj_stat(os, ob->num, &oi), 0, AT "%s obj %llu missing", ATV, name,
                     (unsigned long long)ob->num);
        cr_assert_eq(oi.size, ob->size, AT "%s obj %llu size %llu, expected %llu", ATV, name,
                     (unsigned long long)ob->num, (unsigned long long)oi.size,
                     (unsigned long long)ob->size);
        size_t len = (size_t)(ob->size + SECT - 1) / SECT * SECT + SECT;
        if (len > sizeof(got_buf))
            len = sizeof(got_buf);
        cr_assert_eq(obj_read(os, ob->num, 0, len, got_buf), 0);
        for (size_t s = 0; s < len / SECT; s++)
            fill(want_buf + s * SECT, s * SECT, SECT, s < NSECT ? ob->seed[s] : 0);
        if (memcmp(got_buf, want_buf, len) != 0) {
            size_t off = 0;
            while (got_buf[off] == want_buf[off])
                off++;
            cr_assert_fail(AT "%s obj %llu differs at %zu (sector version %u)", ATV, name,
                           (unsigned long long)ob->num, off,
                           off / SECT < NSECT ? ob->seed[off / SECT] : 0);
        }
    }
    for (int k = 0; k < nnums; k++) {
        bool mine = false;
        for (int i = 0; i < m->n; i++)
            mine |= m->o[i].num == nums[k];
        struct obj_info oi;
        if (!mine)
            cr_assert_eq(obj_stat(os, nums[k], &oi), -ENOENT, AT "%s has object %llu", ATV, name,
                         (unsigned long long)nums[k]);
    }
    if (head >= 0) {
        char val[64], src[DSL_NAME_MAX + 32];
        uint64_t num;
        resolve(o, head, 0, false, val, src);
        OK(ds_prop_num(ds, "compression", &num));
        cr_assert_eq(num, comp_num(val), AT "%s handle compression %#llx, want %s", ATV, name,
                     (unsigned long long)num, val);
    }
    ds_close(ds);
}

struct namelist {
    char v[MAXHEADS + MAXSNAPS][DSL_NAME_MAX + 1];
    int n;
};

static int
collect_name(void *arg, const struct dsl_info *in)
{
    struct namelist *nl = arg;
    cr_assert_lt(nl->n, MAXHEADS + MAXSNAPS);
    snprintf(nl->v[nl->n++], DSL_NAME_MAX + 1, "%s", in->name);
    return 0;
}

static bool
listed(const struct namelist *nl, const char *name)
{
    for (int i = 0; i < nl->n; i++)
        if (strcmp(nl->v[i], name) == 0)
            return true;
    return false;
}

/* Names, origins, clone counts and the used breakdown. */
static void
check_namespace(struct oracle *o)
{
    static struct namelist nl;
    nl.n = 0;
    OK(dsl_list(o->p, NULL, DSL_LIST_RECURSIVE | DSL_LIST_ALL_TYPES, collect_name, &nl, &em));
    int want = count_live(o, false) + count_live(o, true);
    cr_assert_eq(nl.n, want, AT "%d datasets listed, model has %d", ATV, nl.n, want);
    char name[DSL_NAME_MAX + 1], oname[DSL_NAME_MAX + 1];
    for (int i = 0; i < MAXHEADS; i++) {
        if (!o->h[i].live)
            continue;
        cr_assert(listed(&nl, o->h[i].name), AT "%s not listed", ATV, o->h[i].name);
        struct dsl_info in;
        OK(dsl_stat(o->p, o->h[i].name, &in, &em));
        oname[0] = 0;
        if (o->h[i].origin >= 0)
            snap_name(o, o->h[i].origin, oname, sizeof(oname));
        cr_assert_str_eq(in.origin, oname, AT "origin of %s", ATV, o->h[i].name);
        cr_assert_eq(in.used,
                     in.usedbydataset + in.usedbysnapshots + in.usedbychildren +
                         in.usedbyrefreservation,
                     AT "%s: used is not the sum of its parts", ATV, o->h[i].name);
    }
    for (int si = 0; si < MAXSNAPS; si++) {
        if (!o->s[si].live)
            continue;
        snap_name(o, si, name, sizeof(name));
        cr_assert(listed(&nl, name), AT "%s not listed", ATV, name);
        struct dsl_info in;
        OK(dsl_stat(o->p, name, &in, &em));
        cr_assert_eq(in.num_clones, (uint64_t)nclones(o, si), AT "clones of %s", ATV, name);
    }
}

static void
check_all(struct oracle *o)
{
    uint64_t nums[MAXOBJ * (MAXHEADS + MAXSNAPS)];
    int nnums = 0;
    for (int i = 0; i < MAXHEADS + MAXSNAPS; i++) {
        bool head = i < MAXHEADS;
        const struct mset *m = head ? &o->h[i].c : &o->s[i - MAXHEADS].c;
        if (!(head ? o->h[i].live : o->s[i - MAXHEADS].live))
            continue;
        for (int k = 0; k < m->n; k++) {
            bool seen = false;
            for (int j = 0; j < nnums; j++)
                seen |= nums[j] == m->o[k].num;
            if (!seen)
                nums[nnums++] = m->o[k].num;
        }
    }
    check_namespace(o);
    check_props(o);
    char name[DSL_NAME_MAX + 1];
    for (int i = 0; i < MAXHEADS; i++)
        if (o->h[i].live)
            check_contents(o, o->h[i].name, &o->h[i].c, nums, nnums, i);
    for (int si = 0; si < MAXSNAPS; si++) {
        if (!o->s[si].live)
            continue;
        snap_name(o, si, name, sizeof(name));
        check_contents(o, name, &o->s[si].c, nums, nnums, -1);
    }
    o->nchecks++;
}

/*
 * Pool bytes in use, counting frees still deferred as freed (as in test_dsl.c), less the pool-wide
 * metadata that grows whatever a txg did: the space journal and checkpoint (by 32 KiB at times)
 * and the MOS dnode array (a new dnode block when the destroy's new deadlist objects land in a
 * block that held none). Without that, a destroy that frees little seems to allocate.
 */
static uint64_t
pool_used(struct pool *p)
{
    pool_sync(p, NULL);
    pool_sync(p, NULL);
    pool_sync(p, NULL);
    struct pool_stats st;
    pool_get_stats(p, &st);
    uint64_t obj = 0, next, meta = 0;
    while (obj_next(p->mos, obj, &next) == 0) {
        struct obj_info oi;
        OK(obj_stat(p->mos, next, &oi));
        if (oi.type == OT_SPACE_JOURNAL || oi.type == OT_SPACE_CHECKPOINT)
            meta += oi.used_bytes;
        obj = next + 1;
    }
    pthread_mutex_lock(&p->mos->meta->lock);
    meta += p->mos->meta->phys.used_bytes;
    pthread_mutex_unlock(&p->mos->meta->lock);
    cr_assert_geq(st.allocated, meta);
    return st.allocated - meta;
}

/* ---- object operations ---------------------------------------------------------------------- */

enum { OBJ_WRITE, OBJ_PUNCH, OBJ_TRUNCATE };

/* One change to object oi of head hi through a handle, applied to the model too. */
static void
obj_change(struct oracle *o, int hi, int oi, int kind, uint64_t off, uint64_t len)
{
    struct mobj *ob = &o->h[hi].c.o[oi];
    struct dataset *ds;
    OK(ds_open(o->p, o->h[hi].name, &ds, &em));
    struct tx tx;
    OK(ds_tx_assign(ds, kind == OBJ_WRITE ? len : 0, &tx));
    int rc;
    uint32_t v = 0;
    if (kind == OBJ_WRITE) {
        v = ++o->version;
        fill(got_buf, off, (size_t)len, v);
        rc = obj_write(ds_objset(ds), &tx, ob->num, off, (size_t)len, got_buf);
    } else if (kind == OBJ_PUNCH) {
        rc = obj_punch(ds_objset(ds), &tx, ob->num, off, len);
    } else {
        rc = obj_truncate(ds_objset(ds), &tx, ob->num, off);
    }
    tx_commit(&tx);
    ds_close(ds);
    OK(rc);
    if (kind == OBJ_TRUNCATE) {
        for (uint64_t s = off / SECT; s < NSECT; s++)
            ob->seed[s] = 0;
        ob->size = off;
        return;
    }
    for (uint64_t s = off / SECT; s < (off + len) / SECT && s < NSECT; s++)
        ob->seed[s] = v;
    if (kind == OBJ_WRITE && off + len > ob->size)
        ob->size = off + len;
}

/* Creates an object in head hi; one created with COMPRESS_INHERIT must get the effective
 * compression of hi. */
static void
mkobj(struct oracle *o, int hi)
{
    static const uint32_t bs[] = { 4096, 16384, 65536 };
    struct mset *m = &o->h[hi].c;
    if (m->n >= MAXOBJ)
        return;
    bool inherit = pick(o, 4) != 0;
    struct obj_create_opts oc = { .type = OT_PLAIN,
                                  .blocksize = bs[pick(o, 3)],
                                  .compress = inherit ? COMPRESS_INHERIT : COMPRESS_OFF };
    struct dataset *ds;
    OK(ds_open(o->p, o->h[hi].name, &ds, &em));
    struct tx tx;
    OK(ds_tx_assign(ds, 0, &tx));
    uint64_t num;
    int rc = obj_create(ds_objset(ds), &tx, &oc, &num);
    tx_commit(&tx);
    OK(rc);
    struct obj_info oi;
    OK(obj_stat(ds_objset(ds), num, &oi));
    ds_close(ds);
    if (inherit) {
        char val[64], src[DSL_NAME_MAX + 32];
        resolve(o, hi, 0, false, val, src);
        uint64_t want = comp_num(val);
        cr_assert(oi.compress == PROPS_COMPRESS_ALG(want) &&
                      oi.compress_level == PROPS_COMPRESS_LEVEL(want),
                  AT "new object of %s compresses with %u/%u, expected %s (%s)", ATV, o->h[hi].name,
                  oi.compress, oi.compress_level, val, src);
    }
    struct mobj *ob = &m->o[m->n++];
    memset(ob, 0, sizeof(*ob));
    ob->num = num;
    trace(o, "mkobj %s -> %llu", o->h[hi].name, (unsigned long long)num);
}

static void
op_object(struct oracle *o)
{
    int hi = pick_head(o, WITH_OBJS);
    if (hi < 0 || pick(o, 12) == 0) {
        if ((hi = pick_head(o, ANY)) >= 0)
            mkobj(o, hi);
        return;
    }
    int oi = pick(o, o->h[hi].c.n);
    const struct mobj *ob = &o->h[hi].c.o[oi];
    int r = pick(o, 20);
    int kind = r < 14 ? OBJ_WRITE : r < 19 ? OBJ_PUNCH : OBJ_TRUNCATE;
    uint64_t sz = ob->size / SECT;
    uint64_t off = (kind == OBJ_WRITE && sz > 0 && pick(o, 2)) ? (uint64_t)pick(o, (int)sz)
                                                               : (uint64_t)pick(o, NSECT);
    uint64_t len = 1 + (uint64_t)pick(o, pick(o, 8) == 0 ? NSECT : 96);
    if (off + len > NSECT)
        len = NSECT - off;
    if (kind == OBJ_TRUNCATE)
        off = (uint64_t)pick(o, NSECT + 1);
    static const char *kn[] = { "write", "punch", "truncate" };
    trace(o, "%s %s obj %llu off %llu len %llu", kn[kind], o->h[hi].name,
          (unsigned long long)ob->num, (unsigned long long)(off * SECT),
          (unsigned long long)(len * SECT));
    obj_change(o, hi, oi, kind, off * SECT, len * SECT);
    o->nops[0]++;
}

/* ---- namespace operations ------------------------------------------------------------------- */

static const char *const comp_values[] = {
    "off", "lz4", "on", "zstd", "zstd-3", "zstd-7", "zstd-1"
};

/* The canonical (printed) form of a compression value. */
static const char *
comp_canon(const char *v)
{
    if (strcmp(v, "on") == 0)
        return "lz4";
    if (strcmp(v, "zstd-3") == 0)
        return "zstd";
    return v;
}

static void
op_create(struct oracle *o)
{
    int parent = pick_head(o, PARENT);
    if (parent < 0 || count_live(o, false) >= LIVE_HEADS)
        return;
    char name[DSL_NAME_MAX + 1], tag[24] = "";
    const char *comp = pick(o, 4) == 0 ? comp_values[pick(o, 7)] : NULL;
    new_head_name(o, parent, name, sizeof(name));
    struct dsl_prop_set ps[2];
    size_t np = 0;
    if (comp != NULL)
        ps[np++] = (struct dsl_prop_set){ "compression", comp };
    if (pick(o, 6) == 0) {
        snprintf(tag, sizeof(tag), "c%u", ++o->names);
        ps[np++] = (struct dsl_prop_set){ "com.example:tag", tag };
    }
    trace(o, "create %s (%zu props)", name, np);
    OK(dsl_create(o->p, name, DSL_KIND_FS, ps, np, 0, &em));
    int hi = add_head(o, name, parent, -1);
    if (comp != NULL)
        snprintf(o->h[hi].comp, sizeof(o->h[hi].comp), "%s", comp_canon(comp));
    snprintf(o->h[hi].tag, sizeof(o->h[hi].tag), "%s", tag);
    int nobj = 1 + pick(o, 2);
    for (int i = 0; i < nobj; i++) {
        mkobj(o, hi);
        obj_change(o, hi, i, OBJ_WRITE, 0, (uint64_t)(1 + pick(o, NSECT)) * SECT);
    }
    o->nops[1]++;
}

static void
op_snapshot(struct oracle *o)
{
    int k = 1 + pick(o, 3), heads[3], n = 0;
    for (int i = 0; i < k && count_live(o, true) + n < LIVE_SNAPS; i++) {
        int hi = pick_head(o, ANY);
        bool dup = false;
        for (int j = 0; j < n; j++)
            dup |= heads[j] == hi;
        if (!dup)
            heads[n++] = hi;
    }
    if (n == 0)
        return;
    char names[3][DSL_NAME_MAX + 1], snames[3][24];
    const char *v[3];
    for (int i = 0; i < n; i++) {
        new_snap_name(o, heads[i], snames[i], sizeof(snames[i]));
        snprintf(names[i], sizeof(names[i]), "%s@%s", o->h[heads[i]].name, snames[i]);
        v[i] = names[i];
        trace(o, "snapshot %s (%d in one request)", names[i], n);
    }
    OK(dsl_snapshot(o->p, v, (size_t)n, &em));
    for (int i = 0; i < n; i++) {
        int si = free_slot(o, true);
        cr_assert_geq(si, 1);
        struct msnap *s = &o->s[si];
        s->live = true;
        s->head = heads[i];
        snprintf(s->sname, sizeof(s->sname), "%s", snames[i]);
        s->c = o->h[heads[i]].c;
        struct mhead *h = &o->h[heads[i]];
        h->snaps[h->nsnaps++] = si;
    }
    o->nops[2]++;
}

static void
op_destroy_snap(struct oracle *o)
{
    int si = pick_snap(o);
    if (si < 0)
        return;
    bool R = pick(o, 6) == 0;
    char name[DSL_NAME_MAX + 1];
    snap_name(o, si, name, sizeof(name));
    int state[MAXHEADS] = { 0 };
    bool cycle = false;
    for (int i = 0; R && i < MAXHEADS; i++)
        if (o->h[i].live && o->h[i].origin == si)
            cycle |= reach(o, i, true, state);
    if (R && (cycle || state[o->s[si].head] != 0))
        return; /* the clones' tree includes the snapshot's own head: disabled test below */
    int want = !R && nclones(o, si) > 0 ? -EBUSY : 0;
    trace(o, "destroy %s%s", name, R ? " -R" : "");
    if (want != 0) {
        EXPECT_RC(dsl_destroy(o->p, name, 0, &em), want);
        o->nerr++;
        return;
    }
    uint64_t before = 0, used = 0;
    bool measure = nclones(o, si) == 0; /* -R with clones frees theirs too */
    if (measure) {
        before = pool_used(o->p);
        struct dsl_info in;
        OK(dsl_stat(o->p, name, &in, &em));
        used = in.used;
    }
    OK(dsl_destroy(o->p, name, R ? DSL_DESTROY_CLONES : 0, &em));
    if (measure) {
        uint64_t after = pool_used(o->p);
        trace(o, "  freed %lld, used %llu", (long long)(before - after), (unsigned long long)used);
        cr_assert(after <= before && before - after >= used && before - after <= used + MOS_SLACK,
                  AT "destroying %s (used %llu) freed %lld", ATV, name, (unsigned long long)used,
                  (long long)(before - after));
        o->nfreed_checks++;
    }
    for (int i = 0; i < MAXHEADS; i++)
        if (state[i] != 0)
            kill_head(o, i);
    kill_snap(o, si);
    o->nops[3]++;
}

static void
op_clone(struct oracle *o)
{
    int si = pick_snap(o), parent = pick_head(o, PARENT);
    if (si < 0 || parent < 0 || count_live(o, false) >= LIVE_HEADS)
        return;
    char name[DSL_NAME_MAX + 1], sname[DSL_NAME_MAX + 1], tag[24];
    new_head_name(o, parent, name, sizeof(name));
    snap_name(o, si, sname, sizeof(sname));
    struct dsl_prop_set ps[1];
    size_t np = 0;
    if (pick(o, 4) == 0) {
        snprintf(tag, sizeof(tag), "k%u", ++o->names);
        ps[np++] = (struct dsl_prop_set){ "com.example:tag", tag };
    }
    trace(o, "clone %s -> %s", sname, name);
    OK(dsl_clone(o->p, sname, name, ps, np, &em));
    int hi = add_head(o, name, parent, si);
    if (np > 0)
        snprintf(o->h[hi].tag, sizeof(o->h[hi].tag), "%s", tag);
    o->nops[4]++;
}

static void
op_rollback(struct oracle *o)
{
    int hi = pick_head(o, WITH_SNAPS);
    if (hi < 0)
        return;
    struct mhead *h = &o->h[hi];
    int idx = pick(o, 3) != 0 ? h->nsnaps - 1 : pick(o, h->nsnaps);
    bool r = idx < h->nsnaps - 1 && pick(o, 4) != 0, busy = pick(o, 10) == 0;
    int si = h->snaps[idx];
    char name[DSL_NAME_MAX + 1];
    snap_name(o, si, name, sizeof(name));
    int want = 0;
    if (busy)
        want = -EBUSY;
    else if (idx < h->nsnaps - 1 && !r)
        want = -EEXIST;
    for (int k = idx + 1; want == 0 && k < h->nsnaps; k++)
        if (nclones(o, h->snaps[k]) > 0)
            want = -EBUSY;
    trace(o, "rollback %s%s%s", name, r ? " -r" : "", busy ? " (handle open)" : "");
    struct dataset *ds = NULL;
    if (busy)
        OK(ds_open(o->p, h->name, &ds, &em));
    EXPECT_RC(dsl_rollback(o->p, name, r, &em), want);
    ds_close(ds);
    if (want != 0) {
        o->nerr++;
        return;
    }
    while (h->nsnaps > idx + 1)
        kill_snap(o, h->snaps[h->nsnaps - 1]);
    h->c = o->s[si].c;
    o->nops[5]++;
}

static void
op_destroy_head(struct oracle *o)
{
    int hi = pick_head(o, NOT_ROOT);
    if (hi < 0)
        return;
    bool busy_parent = has_children(o, hi) || o->h[hi].nsnaps > 0;
    bool r = busy_parent && pick(o, 5) != 0, R = r && pick(o, 3) == 0;
    int state[MAXHEADS] = { 0 };
    if (reach(o, hi, R, state))
        return; /* a cycle through clone edges: disabled test below */
    int want = 0;
    if (busy_parent && !r)
        want = -ENOTEMPTY;
    for (int i = 0; want == 0 && !R && i < MAXHEADS; i++)
        for (int k = 0; state[i] != 0 && k < o->h[i].nsnaps; k++)
            if (nclones(o, o->h[i].snaps[k]) > 0)
                want = -EBUSY;
    unsigned flags = (r ? DSL_DESTROY_RECURSIVE : 0) | (R ? DSL_DESTROY_CLONES : 0);
    trace(o, "destroy %s%s%s", o->h[hi].name, r ? " -r" : "", R ? " -R" : "");
    EXPECT_RC(dsl_destroy(o->p, o->h[hi].name, flags, &em), want);
    if (want != 0) {
        o->nerr++;
        return;
    }
    for (int i = 0; i < MAXHEADS; i++)
        if (state[i] != 0)
            kill_head(o, i);
    o->nops[6]++;
}

/* Promotes clone ci, predicting the result; returns what dsl_promote returned. */
static int
promote(struct oracle *o, int ci)
{
    int oi = o->h[ci].origin, hi = o->s[oi].head;
    struct mhead *c = &o->h[ci], *h = &o->h[hi];
    int k = 0;
    while (h->snaps[k] != oi)
        k++;
    int want = 0;
    /* Refused: the root would become a clone, or h a clone of its own descendant. */
    if (hi == 0)
        want = -EINVAL;
    for (int a = c->parent; a >= 0 && want == 0; a = o->h[a].parent)
        if (a == hi)
            want = -EINVAL;
    for (int i = 0; i <= k && want == 0; i++)
        if (snap_name_taken(o, ci, o->s[h->snaps[i]].sname))
            want = -EEXIST;
    trace(o, "promote %s (origin head %s)", c->name, h->name);
    EXPECT_RC(dsl_promote(o->p, c->name, &em), want);
    if (want != 0) {
        o->nerr++;
        return want;
    }
    int moved[MAXSNAPS], n = 0;
    for (int i = 0; i <= k; i++)
        moved[n++] = h->snaps[i];
    for (int i = 0; i < c->nsnaps; i++)
        moved[n++] = c->snaps[i];
    memmove(&h->snaps[0], &h->snaps[k + 1], (size_t)(h->nsnaps - k - 1) * sizeof(int));
    h->nsnaps -= k + 1;
    memcpy(c->snaps, moved, (size_t)n * sizeof(int));
    c->nsnaps = n;
    for (int i = 0; i <= k; i++)
        o->s[moved[i]].head = ci;
    c->origin = h->origin;
    h->origin = oi;
    o->nops[7]++;
    return 0;
}

static void
op_promote(struct oracle *o)
{
    int ci = pick_head(o, CLONE);
    if (ci >= 0)
        promote(o, ci);
}

static void
op_props(struct oracle *o)
{
    int hi = pick_head(o, ANY);
    bool tag = pick(o, 2) == 0, inherit = pick(o, 3) == 0;
    const char *prop = tag ? "com.example:tag" : "compression";
    char *local = tag ? o->h[hi].tag : o->h[hi].comp;
    if (inherit) {
        trace(o, "inherit %s %s", o->h[hi].name, prop);
        OK(dsl_inherit(o->p, o->h[hi].name, prop, false, &em));
        local[0] = 0;
    } else {
        char v[24];
        if (tag)
            snprintf(v, sizeof(v), "v%u", ++o->names);
        else
            snprintf(v, sizeof(v), "%s", comp_values[pick(o, 7)]);
        trace(o, "set %s %s=%s", o->h[hi].name, prop, v);
        struct dsl_prop_set ps[] = { { prop, v } };
        OK(dsl_set(o->p, o->h[hi].name, ps, 1, &em));
        snprintf(local, 16, "%s", comp_canon(v));
    }
    check_props(o);
    o->nops[8]++;
}

/* Requests that must fail and change nothing (the next namespace check sees any leftover). */
static void
op_probe(struct oracle *o)
{
    int hi = pick_head(o, ANY), si = pick_snap(o);
    char a[DSL_NAME_MAX + 1], b[DSL_NAME_MAX + 1];
    switch (pick(o, 4)) {
    case 0: { /* two snapshots of one head in one request */
        snprintf(a, sizeof(a), "%s@p%u", o->h[hi].name, ++o->names);
        snprintf(b, sizeof(b), "%s@p%u", o->h[hi].name, ++o->names);
        const char *v[] = { a, b };
        EXPECT_RC(dsl_snapshot(o->p, v, 2, &em), -EINVAL);
        break;
    }
    case 1: /* an existing snapshot name, with a valid one first */
        if (si < 0 || o->s[si].head == hi)
            return;
        snprintf(a, sizeof(a), "%s@p%u", o->h[hi].name, ++o->names);
        snap_name(o, si, b, sizeof(b));
        EXPECT_RC(dsl_snapshot(o->p, (const char *[]){ a, b }, 2, &em), -EEXIST);
        break;
    case 2: /* a clone onto an existing dataset */
        if (si < 0 || hi == 0)
            return;
        snap_name(o, si, a, sizeof(a));
        EXPECT_RC(dsl_clone(o->p, a, o->h[hi].name, NULL, 0, &em), -EEXIST);
        break;
    default:
        snprintf(a, sizeof(a), "%s@nonexistent", o->h[hi].name);
        EXPECT_RC(dsl_destroy(o->p, a, 0, &em), -ENOENT);
        break;
    }
    o->nerr++;
}

/* ---- the runs ------------------------------------------------------------------------------- */

/* Destroys everything the model can destroy (leaves first), then checks the space came back. */
static void
destroy_all(struct oracle *o)
{
    for (int round = 0; round < MAXHEADS; round++) {
        bool progress = false;
        for (int hi = 1; hi < MAXHEADS; hi++) {
            if (!o->h[hi].live || has_children(o, hi))
                continue;
            bool pinned = false;
            for (int k = 0; k < o->h[hi].nsnaps; k++)
                pinned |= nclones(o, o->h[hi].snaps[k]) > 0;
            if (pinned)
                continue;
            OK(dsl_destroy(o->p, o->h[hi].name, DSL_DESTROY_RECURSIVE, &em));
            kill_head(o, hi);
            progress = true;
        }
        /* Stuck on a head that is a clone of its own descendant's snapshot: promote it. */
        for (int hi = 1; hi < MAXHEADS && !progress; hi++) {
            if (!o->h[hi].live || o->h[hi].origin < 0)
                continue;
            int a = o->s[o->h[hi].origin].head;
            while (a > 0 && a != hi)
                a = o->h[a].parent;
            progress = a == hi && promote(o, hi) == 0;
        }
        if (!progress)
            break;
    }
    for (int k = o->h[0].nsnaps - 1; k >= 0; k--) {
        int si = o->h[0].snaps[k];
        char name[DSL_NAME_MAX + 1];
        snap_name(o, si, name, sizeof(name));
        if (nclones(o, si) == 0) {
            OK(dsl_destroy(o->p, name, 0, &em));
            kill_snap(o, si);
        }
    }
    check_all(o);
    o->p = test_pool_verify(o->p);
    check_all(o);
    if (count_live(o, false) == 1 && count_live(o, true) == 0) {
        struct dsl_info in;
        OK(dsl_stat(o->p, "tank", &in, &em));
        uint64_t used = pool_used(o->p);
        cr_assert_leq(used, in.referenced + 2 * MiB,
                      "seed %#llx: everything but tank (%llu referenced) destroyed, %llu allocated",
                      (unsigned long long)cur_seed, (unsigned long long)in.referenced,
                      (unsigned long long)used);
        o->space_returned = true;
    }
}

static void
run_oracle(uint64_t seed, int nops)
{
    static struct oracle oracle; /* one run per test process; static: nothing leaks on failure */
    struct oracle *o = &oracle;
    memset(o, 0, sizeof(*o));
    cur_seed = seed;
    o->rng = seed;
    o->trace = getenv("LCPFS_ORACLE_TRACE") != NULL;
    const char *ve = getenv("LCPFS_ORACLE_VERIFY"); /* verify every N operations instead */
    int verify_every = ve != NULL && atoi(ve) > 0 ? atoi(ve) : VERIFY_EVERY;
    fprintf(stderr, "dsl_oracle: seed %#llx, %d operations\n", (unsigned long long)seed, nops);
    o->p = test_pool_create(256 * MiB);
    o->h[0].live = true;
    o->h[0].parent = o->h[0].origin = -1;
    snprintf(o->h[0].name, sizeof(o->h[0].name), "tank");
    for (cur_op = 1; cur_op <= nops; cur_op++) {
        int r = pick(o, 100);
        if (r < 30)
            op_object(o);
        else if (r < 38)
            op_create(o);
        else if (r < 50)
            op_snapshot(o);
        else if (r < 59)
            op_destroy_snap(o);
        else if (r < 66)
            op_clone(o);
        else if (r < 72)
            op_rollback(o);
        else if (r < 78)
            op_destroy_head(o);
        else if (r < 83)
            op_promote(o);
        else if (r < 96)
            op_props(o);
        else
            op_probe(o);
        if (cur_op % CHECK_EVERY == 0)
            check_all(o);
        if (cur_op % verify_every == 0) {
            o->p = test_pool_verify(o->p);
            o->nverify++;
            check_all(o);
        }
    }
    destroy_all(o);
    fprintf(stderr,
            "dsl_oracle: seed %#llx done: obj %u create %u snap %u snapdestroy %u clone %u "
            "rollback %u destroy %u promote %u props %u expected-errors %u checks %u verify %u "
            "freed-checks %u space-returned %d\n",
            (unsigned long long)seed, o->nops[0], o->nops[1], o->nops[2], o->nops[3], o->nops[4],
            o->nops[5], o->nops[6], o->nops[7], o->nops[8], o->nerr, o->nchecks, o->nverify,
            o->nfreed_checks, o->space_returned);
    pool_export(o->p);
}

/* LCPFS_ORACLE_SEED=0x... [LCPFS_ORACLE_OPS=n]: one more run with that seed. */
Test(dsl_oracle, seed_from_env)
{
    const char *seed = getenv("LCPFS_ORACLE_SEED"), *ops = getenv("LCPFS_ORACLE_OPS");
    if (seed == NULL)
        cr_skip_test("LCPFS_ORACLE_SEED not set");
    run_oracle(strtoull(seed, NULL, 0), ops != NULL ? atoi(ops) : 600);
}

Test(dsl_oracle, seed_1)
{
    run_oracle(0x9e3779b97f4a7c15ull, 700);
}

Test(dsl_oracle, seed_2)
{
    run_oracle(0x243f6a8885a308d3ull, 700);
}

Test(dsl_oracle, seed_3)
{
    run_oracle(0xb7e151628aed2a6bull, 700);
}

Test(dsl_oracle, seed_4)
{
    run_oracle(0x13198a2e03707344ull, 700);
}

/*
 * Found by this oracle: a promote could make a parent a clone of its own child's snapshot
 * (tank/a would become a clone of tank/a/c@s), and recursive destroys then recursed forever.
 * Such a promote is now refused; the same cycle built with a rename instead is refused by
 * destroy with -ELOOP, and the pool stays consistent.
 */
Test(dsl_oracle, promote_into_a_child_is_refused_and_destroy_cycles_are_caught)
{
    struct pool *p = test_pool_create(256 * MiB);
    OK(dsl_create(p, "tank/a", DSL_KIND_FS, NULL, 0, 0, &em));
    const char *s[] = { "tank/a@s" };
    OK(dsl_snapshot(p, s, 1, &em));
    OK(dsl_clone(p, "tank/a@s", "tank/a/c", NULL, 0, &em));
    cr_assert_eq(dsl_promote(p, "tank/a/c", &em), -EINVAL);
    cr_assert(strstr(em.text, "descendant") != NULL, "%s", em.text);

    /* tank/y is a clone of tank/x@s; moving tank/x below tank/y closes a cycle. */
    OK(dsl_create(p, "tank/x", DSL_KIND_FS, NULL, 0, 0, &em));
    const char *xs[] = { "tank/x@s" };
    OK(dsl_snapshot(p, xs, 1, &em));
    OK(dsl_clone(p, "tank/x@s", "tank/y", NULL, 0, &em));
    OK(dsl_rename(p, "tank/x", "tank/y/x", &em));
    cr_assert_eq(dsl_destroy(p, "tank/y", DSL_DESTROY_RECURSIVE | DSL_DESTROY_CLONES, &em), -ELOOP);
    cr_assert_eq(dsl_destroy(p, "tank/y/x@s", DSL_DESTROY_CLONES, &em), -ELOOP);
    p = test_pool_verify(p);
    /* One at a time works: the clone, then its origin. */
    OK(dsl_rename(p, "tank/y/x", "tank/x", &em));
    OK(dsl_destroy(p, "tank/y", DSL_DESTROY_RECURSIVE, &em));
    OK(dsl_destroy(p, "tank/x", DSL_DESTROY_RECURSIVE, &em));
    OK(dsl_destroy(p, "tank/a", DSL_DESTROY_RECURSIVE | DSL_DESTROY_CLONES, &em));
    p = test_pool_verify(p);
    pool_export(p);
}

/*
 * Found by this oracle: promoting a clone of a snapshot of the pool's root dataset made the root
 * a clone, which import rightly refuses, so every later commit was lost to a rewind. The promote
 * is now refused, and nothing is lost.
 */
Test(dsl_oracle, promote_of_a_clone_of_the_root_is_refused)
{
    struct pool *p = test_pool_create(256 * MiB);
    const char *s[] = { "tank@s" };
    OK(dsl_snapshot(p, s, 1, &em));
    OK(dsl_clone(p, "tank@s", "tank/c", NULL, 0, &em));
    cr_assert_eq(dsl_promote(p, "tank/c", &em), -EINVAL);
    OK(dsl_create(p, "tank/after", DSL_KIND_FS, NULL, 0, 0, &em));
    p = test_pool_verify(p);
    struct dsl_info in;
    OK(dsl_stat(p, "tank", &in, &em));
    cr_assert_str_eq(in.origin, "");
    OK(dsl_stat(p, "tank/after", &in, &em));
    pool_export(p);
}
