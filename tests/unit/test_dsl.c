/* SPDX-License-Identifier: MIT */
/*
 * The dataset layer: hierarchy (create, rename, destroy), snapshots that never change, the
 * birth-time rule's space numbers, snapshot destroy freeing exactly its unique bytes, clones,
 * rollback, promote, holds, bookmarks, property inheritance and quotas. Every test ends with the
 * offline verifier (accounting recomputed from the blocks) and most with a re-import.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/dsl.h"
#include "core/objset.h"
#include "core/pool.h"
#include "test_util.h"

TestSuite(dsl, .init = test_tmpdir_setup, .fini = test_tmpdir_teardown, .timeout = 300);

#undef MiB
#define MiB (1024ull * 1024)

static struct err_msg em;

#define OK(call) cr_assert_eq((call), 0, "%s: %s", #call, em.text)

static void
mkfs(struct pool *p, const char *name)
{
    OK(dsl_create(p, name, DSL_KIND_FS, NULL, 0, 0, &em));
}

/* The bytes of "seed" at absolute offsets [off, off+len): any sub-range can be checked. */
static void
fill(uint8_t *buf, uint64_t off, size_t len, uint64_t seed)
{
    for (size_t i = 0; i < len; i++) {
        uint64_t x = ((off + i) >> 3) * 0x9e3779b97f4a7c15ull ^ (seed + 1) * 0xbf58476d1ce4e5b9ull;
        x ^= x >> 29;
        x *= 0x94d049bb133111ebull;
        buf[i] = (uint8_t)(x >> (8 * ((off + i) & 7)));
    }
}

/* Creates object 1.. in dataset `name` (plain, 16K blocks, no compression). Returns its number. */
static uint64_t
mkobj(struct pool *p, const char *name)
{
    struct dataset *ds;
    OK(ds_open(p, name, &ds, &em));
    struct tx tx;
    cr_assert_eq(ds_tx_assign(ds, 0, &tx), 0);
    struct obj_create_opts o = { .type = OT_PLAIN, .blocksize = 16384, .compress = COMPRESS_OFF };
    uint64_t obj;
    cr_assert_eq(obj_create(ds_objset(ds), &tx, &o, &obj), 0);
    tx_commit(&tx);
    ds_close(ds);
    return obj;
}

static int
wr(struct pool *p, const char *name, uint64_t obj, uint64_t off, size_t len, uint64_t seed)
{
    struct dataset *ds;
    OK(ds_open(p, name, &ds, &em));
    uint8_t *buf = malloc(len);
    fill(buf, off, len, seed);
    struct tx tx;
    int rc = ds_tx_assign(ds, len, &tx);
    if (rc == 0) {
        rc = obj_write(ds_objset(ds), &tx, obj, off, len, buf);
        tx_commit(&tx);
    }
    free(buf);
    ds_close(ds);
    return rc;
}

/* Asserts that [off, off+len) of obj in dataset/snapshot `name` holds the data of seed. */
static void
check(struct pool *p, const char *name, uint64_t obj, uint64_t off, size_t len, uint64_t seed)
{
    struct dataset *ds;
    OK(ds_open(p, name, &ds, &em));
    uint8_t *want = malloc(len), *got = malloc(len);
    fill(want, off, len, seed);
    cr_assert_eq(obj_read(ds_objset(ds), obj, off, len, got), 0);
    cr_assert(memcmp(want, got, len) == 0, "%s: data at %llu differs", name,
              (unsigned long long)off);
    free(want);
    free(got);
    ds_close(ds);
}

static struct dsl_info
info(struct pool *p, const char *name)
{
    struct dsl_info in;
    OK(dsl_stat(p, name, &in, &em));
    return in;
}

/* Pool bytes in use, counting frees still deferred as freed. */
static uint64_t
pool_used(struct pool *p)
{
    pool_sync(p, NULL);
    pool_sync(p, NULL);
    pool_sync(p, NULL);
    struct pool_stats st;
    pool_get_stats(p, &st);
    return st.allocated;
}

/*
 * Space freed by a destroy, as the pool sees it, is the predicted data plus the destroyed
 * records and deadlist objects in the MOS (metadata, three copies), less what the MOS grew
 * meanwhile (the space journal, the dnode array): within a few blocks either way. The exact
 * check is on the dataset accounting (root used), which the verifier recomputes from blocks.
 */
static void
assert_freed(uint64_t freed, uint64_t predicted)
{
    cr_assert_geq(freed + 64 * 1024, predicted, "freed %llu, predicted %llu",
                  (unsigned long long)freed, (unsigned long long)predicted);
    cr_assert_leq(freed, predicted + 192 * 1024, "freed %llu, predicted %llu",
                  (unsigned long long)freed, (unsigned long long)predicted);
}

struct names {
    char v[32][DSL_NAME_MAX + 1];
    int n;
};

static int
collect_name(void *arg, const struct dsl_info *in)
{
    struct names *nm = arg;
    if (nm->n < 32)
        snprintf(nm->v[nm->n++], sizeof(nm->v[0]), "%s", in->name);
    return 0;
}

static struct names
list(struct pool *p, const char *name, unsigned flags)
{
    struct names nm = { .n = 0 };
    OK(dsl_list(p, name, flags, collect_name, &nm, &em));
    return nm;
}

Test(dsl, hierarchy_create_rename_destroy)
{
    struct pool *p = test_pool_create(256 * MiB);
    mkfs(p, "tank/a");
    mkfs(p, "tank/a/b");
    struct dsl_prop_set vs[] = { { "volsize", "64M" } };
    OK(dsl_create(p, "tank/v", DSL_KIND_VOL, vs, 1, 0, &em));
    cr_assert_eq(dsl_create(p, "tank/a", DSL_KIND_FS, NULL, 0, 0, &em), -EEXIST);
    cr_assert_eq(dsl_create(p, "tank/x/y", DSL_KIND_FS, NULL, 0, 0, &em), -ENOENT);
    cr_assert_eq(dsl_create(p, "tank/bad name", DSL_KIND_FS, NULL, 0, 0, &em), -EINVAL);
    cr_assert_eq(dsl_create(p, "tank/v/child", DSL_KIND_FS, NULL, 0, 0, &em), -EINVAL);
    cr_assert_eq(dsl_create(p, "other/a", DSL_KIND_FS, NULL, 0, 0, &em), -ENOENT);
    cr_assert_eq(dsl_create(p, "tank/novol", DSL_KIND_VOL, NULL, 0, 0, &em), -EINVAL);
    OK(dsl_create(p, "tank/x/y/z", DSL_KIND_FS, NULL, 0, DSL_CREATE_PARENTS, &em));

    struct names nm = list(p, NULL, 0);
    cr_assert_eq(nm.n, 7);
    cr_assert_str_eq(nm.v[0], "tank");
    cr_assert_str_eq(nm.v[1], "tank/a");
    cr_assert_str_eq(nm.v[2], "tank/a/b");
    cr_assert_eq(info(p, "tank/v").kind, DSL_KIND_VOL);
    cr_assert_eq(info(p, "tank/v").volsize, 64 * MiB);

    OK(dsl_rename(p, "tank/a/b", "tank/x/b", &em));
    cr_assert_eq(dsl_stat(p, "tank/a/b", &(struct dsl_info){ 0 }, &em), -ENOENT);
    cr_assert_eq(dsl_rename(p, "tank/x", "tank/x/y/x2", &em), -EINVAL); /* below itself */
    cr_assert_eq(dsl_rename(p, "tank", "tank2", &em), -EINVAL);
    cr_assert_eq(dsl_destroy(p, "tank/x", 0, &em), -ENOTEMPTY);
    cr_assert_eq(dsl_destroy(p, "tank", DSL_DESTROY_RECURSIVE, &em), -EINVAL);

    p = test_pool_verify(p);
    cr_assert_eq(info(p, "tank/x/b").kind, DSL_KIND_FS);
    cr_assert_eq(info(p, "tank/v").volsize, 64 * MiB);
    OK(dsl_destroy(p, "tank/x", DSL_DESTROY_RECURSIVE, &em));
    OK(dsl_destroy(p, "tank/v", 0, &em));
    nm = list(p, NULL, 0);
    cr_assert_eq(nm.n, 2, "left: %d", nm.n);
    p = test_pool_verify(p);
    pool_export(p);
}

Test(dsl, snapshots_never_change)
{
    struct pool *p = test_pool_create(256 * MiB);
    mkfs(p, "tank/fs");
    uint64_t obj = mkobj(p, "tank/fs");
    OK(wr(p, "tank/fs", obj, 0, 1 * MiB, 1));
    const char *s1[] = { "tank/fs@one" };
    OK(dsl_snapshot(p, s1, 1, &em));
    OK(wr(p, "tank/fs", obj, 64 * 1024, 256 * 1024, 2)); /* overwrite the middle, uncommitted */
    const char *s2[] = { "tank/fs@two" };
    OK(dsl_snapshot(p, s2, 1, &em));
    OK(wr(p, "tank/fs", obj, 0, 1 * MiB, 3));
    cr_assert_eq(dsl_snapshot(p, s1, 1, &em), -EEXIST);

    check(p, "tank/fs@one", obj, 0, 1 * MiB, 1);
    check(p, "tank/fs@two", obj, 0, 64 * 1024, 1);
    check(p, "tank/fs@two", obj, 64 * 1024, 256 * 1024, 2);
    check(p, "tank/fs", obj, 0, 1 * MiB, 3);
    /* Snapshots are read-only. */
    struct dataset *ds;
    OK(ds_open(p, "tank/fs@one", &ds, &em));
    struct tx tx;
    cr_assert_eq(ds_tx_assign(ds, 1, &tx), -EROFS);
    cr_assert(ds_readonly(ds));
    /* Even a caller that bypasses the dataset cannot change a snapshot's object set. */
    cr_assert_eq(tx_assign(p, 1, &tx), 0);
    cr_assert_eq(obj_write(ds_objset(ds), &tx, obj, 0, 1, "x"), -EROFS);
    cr_assert_eq(obj_punch(ds_objset(ds), &tx, obj, 0, 4096), -EROFS);
    tx_commit(&tx);
    ds_close(ds);

    p = test_pool_verify(p);
    check(p, "tank/fs@one", obj, 0, 1 * MiB, 1);
    check(p, "tank/fs@two", obj, 64 * 1024, 256 * 1024, 2);
    check(p, "tank/fs", obj, 0, 1 * MiB, 3);
    pool_export(p);
}

Test(dsl, birth_time_rule_space_numbers)
{
    struct pool *p = test_pool_create(256 * MiB);
    mkfs(p, "tank/fs");
    uint64_t obj = mkobj(p, "tank/fs");
    OK(wr(p, "tank/fs", obj, 0, 4 * MiB, 1));
    pool_sync(p, NULL);
    struct dsl_info a = info(p, "tank/fs");
    cr_assert_geq(a.referenced, 4 * MiB);
    cr_assert_eq(a.usedbysnapshots, 0);
    cr_assert_eq(a.usedbydataset, a.referenced);
    cr_assert_eq(a.written, a.referenced);

    const char *s[] = { "tank/fs@s" };
    OK(dsl_snapshot(p, s, 1, &em));
    struct dsl_info sn = info(p, "tank/fs@s");
    cr_assert_eq(sn.referenced, a.referenced);
    cr_assert_eq(sn.used, 0);

    OK(wr(p, "tank/fs", obj, 0, 1 * MiB, 2)); /* 64 data blocks die in the head */
    pool_sync(p, NULL);
    struct dsl_info b = info(p, "tank/fs");
    sn = info(p, "tank/fs@s");
    cr_assert_geq(sn.used, 1 * MiB, "snapshot holds the overwritten MiB: %llu",
                  (unsigned long long)sn.used);
    cr_assert_lt(sn.used, 1 * MiB + 256 * 1024); /* plus a few indirect/dnode blocks */
    cr_assert_eq(b.usedbysnapshots, sn.used);
    cr_assert_eq(b.usedbydataset, b.referenced); /* freed if the snapshots went first */
    cr_assert_lt(b.written, b.referenced);
    cr_assert_eq(b.used,
                 b.usedbydataset + b.usedbysnapshots + b.usedbychildren + b.usedbyrefreservation);
    cr_assert_geq(b.written, 1 * MiB);

    /* Destroying the snapshot frees exactly what it alone held. */
    uint64_t before = pool_used(p);
    uint64_t root_before = info(p, "tank").used;
    uint64_t predicted = sn.used;
    OK(dsl_destroy(p, "tank/fs@s", 0, &em));
    uint64_t after = pool_used(p);
    assert_freed(before - after, predicted);
    /* Exactly, in the accounting the verifier recomputes from the blocks: */
    cr_assert_eq(root_before - info(p, "tank").used, predicted);
    cr_assert_eq(info(p, "tank/fs").usedbysnapshots, 0);
    p = test_pool_verify(p);
    check(p, "tank/fs", obj, 0, 1 * MiB, 2);
    check(p, "tank/fs", obj, 1 * MiB, 3 * MiB, 1);
    pool_export(p);
}

Test(dsl, destroying_a_middle_snapshot_frees_its_unique_blocks)
{
    struct pool *p = test_pool_create(256 * MiB);
    mkfs(p, "tank/fs");
    uint64_t obj = mkobj(p, "tank/fs");
    OK(wr(p, "tank/fs", obj, 0, 8 * MiB, 1));
    const char *s1[] = { "tank/fs@1" }, *s2[] = { "tank/fs@2" }, *s3[] = { "tank/fs@3" };
    OK(dsl_snapshot(p, s1, 1, &em));
    OK(wr(p, "tank/fs", obj, 1 * MiB, 2 * MiB, 2)); /* born between 1 and 2 */
    OK(dsl_snapshot(p, s2, 1, &em));
    OK(wr(p, "tank/fs", obj, 2 * MiB, 2 * MiB, 3)); /* kills half of what @2 alone had */
    OK(dsl_snapshot(p, s3, 1, &em));
    OK(wr(p, "tank/fs", obj, 0, 8 * MiB, 4));
    pool_sync(p, NULL);

    struct dsl_info i2 = info(p, "tank/fs@2");
    cr_assert_geq(i2.used, 1 * MiB); /* [2M,3M) of seed 2 is only in @2 */
    uint64_t before = pool_used(p);
    uint64_t root_before = info(p, "tank").used;
    OK(dsl_destroy(p, "tank/fs@2", 0, &em));
    uint64_t after = pool_used(p);
    assert_freed(before - after, i2.used);
    cr_assert_eq(root_before - info(p, "tank").used, i2.used);
    check(p, "tank/fs@1", obj, 0, 8 * MiB, 1);
    check(p, "tank/fs@3", obj, 1 * MiB, 1 * MiB, 2);
    check(p, "tank/fs@3", obj, 2 * MiB, 2 * MiB, 3);
    check(p, "tank/fs", obj, 0, 8 * MiB, 4);
    p = test_pool_verify(p);

    /* Destroying the rest returns the pool to the head's own space. */
    OK(dsl_destroy(p, "tank/fs@1", 0, &em));
    OK(dsl_destroy(p, "tank/fs@3", 0, &em));
    struct dsl_info h = info(p, "tank/fs");
    cr_assert_eq(h.usedbysnapshots, 0);
    cr_assert_eq(h.usedbydataset, h.referenced);
    p = test_pool_verify(p);
    check(p, "tank/fs", obj, 0, 8 * MiB, 4);
    pool_export(p);
}

Test(dsl, clones_share_blocks_and_pin_their_origin)
{
    struct pool *p = test_pool_create(256 * MiB);
    mkfs(p, "tank/gold");
    uint64_t obj = mkobj(p, "tank/gold");
    OK(wr(p, "tank/gold", obj, 0, 4 * MiB, 1));
    const char *s[] = { "tank/gold@base" };
    OK(dsl_snapshot(p, s, 1, &em));
    uint64_t before = pool_used(p);
    OK(dsl_clone(p, "tank/gold@base", "tank/vm1", NULL, 0, &em));
    cr_assert_lt(pool_used(p) - before, 256 * 1024, "a clone costs no data");
    cr_assert_str_eq(info(p, "tank/vm1").origin, "tank/gold@base");
    struct dsl_info c0 = info(p, "tank/vm1");
    cr_assert_eq(c0.referenced, info(p, "tank/gold@base").referenced);
    cr_assert_eq(c0.usedbydataset, 0, "a new clone uses nothing: %llu",
                 (unsigned long long)c0.usedbydataset);
    check(p, "tank/vm1", obj, 0, 4 * MiB, 1);
    OK(wr(p, "tank/vm1", obj, 0, 1 * MiB, 2));
    pool_sync(p, NULL);
    struct dsl_info c1 = info(p, "tank/vm1");
    cr_assert_geq(c1.usedbydataset, 1 * MiB);
    cr_assert_lt(c1.usedbydataset, 1 * MiB + 256 * 1024, "%llu",
                 (unsigned long long)c1.usedbydataset);
    cr_assert_eq(c1.usedbysnapshots, 0); /* the killed blocks belong to the origin */
    cr_assert_eq(c1.used, c1.usedbydataset);
    OK(wr(p, "tank/gold", obj, 3 * MiB, 1 * MiB, 3));
    check(p, "tank/vm1", obj, 0, 1 * MiB, 2);
    check(p, "tank/vm1", obj, 1 * MiB, 3 * MiB, 1);
    check(p, "tank/gold@base", obj, 0, 4 * MiB, 1);
    check(p, "tank/gold", obj, 3 * MiB, 1 * MiB, 3);
    cr_assert_eq(info(p, "tank/gold@base").num_clones, 1);

    cr_assert_eq(dsl_destroy(p, "tank/gold@base", 0, &em), -EBUSY);
    cr_assert_eq(dsl_destroy(p, "tank/gold", DSL_DESTROY_RECURSIVE, &em), -EBUSY);
    p = test_pool_verify(p);
    check(p, "tank/vm1", obj, 0, 1 * MiB, 2);
    OK(dsl_destroy(p, "tank/vm1", 0, &em));
    OK(dsl_destroy(p, "tank/gold@base", 0, &em));
    p = test_pool_verify(p);
    check(p, "tank/gold", obj, 0, 3 * MiB, 1);

    /* -R destroys the clones with the snapshot. */
    OK(dsl_snapshot(p, s, 1, &em));
    OK(dsl_clone(p, "tank/gold@base", "tank/vm2", NULL, 0, &em));
    OK(wr(p, "tank/vm2", obj, 0, 1 * MiB, 5));
    OK(dsl_destroy(p, "tank/gold", DSL_DESTROY_RECURSIVE | DSL_DESTROY_CLONES, &em));
    cr_assert_eq(list(p, NULL, 0).n, 1);
    p = test_pool_verify(p);
    struct pool_stats st;
    pool_get_stats(p, &st);
    cr_assert_lt(st.allocated, 2 * MiB, "everything was freed: %llu",
                 (unsigned long long)st.allocated);
    pool_export(p);
}

Test(dsl, rollback_restores_the_snapshot_and_frees_what_came_after)
{
    struct pool *p = test_pool_create(256 * MiB);
    mkfs(p, "tank/fs");
    uint64_t obj = mkobj(p, "tank/fs");
    OK(wr(p, "tank/fs", obj, 0, 2 * MiB, 1));
    const char *a[] = { "tank/fs@a" }, *b[] = { "tank/fs@b" };
    OK(dsl_snapshot(p, a, 1, &em));
    uint64_t at_a = pool_used(p);
    OK(wr(p, "tank/fs", obj, 0, 2 * MiB, 2));
    OK(dsl_snapshot(p, b, 1, &em));
    OK(wr(p, "tank/fs", obj, 2 * MiB, 2 * MiB, 3));

    OK(dsl_rollback(p, "tank/fs@b", false, &em));
    check(p, "tank/fs", obj, 0, 2 * MiB, 2);
    struct obj_info oi;
    struct dataset *ds;
    OK(ds_open(p, "tank/fs", &ds, &em));
    cr_assert_eq(obj_stat(ds_objset(ds), obj, &oi), 0);
    cr_assert_eq(oi.size, 2 * MiB);
    /* A rollback of a dataset in use is refused. */
    cr_assert_eq(dsl_rollback(p, "tank/fs@b", false, &em), -EBUSY);
    ds_close(ds);

    cr_assert_eq(dsl_rollback(p, "tank/fs@a", false, &em), -EEXIST);
    OK(dsl_rollback(p, "tank/fs@a", true, &em));
    check(p, "tank/fs", obj, 0, 2 * MiB, 1);
    cr_assert_eq(dsl_stat(p, "tank/fs@b", &(struct dsl_info){ 0 }, &em), -ENOENT);
    cr_assert_eq(pool_used(p), at_a, "everything after @a was freed");
    p = test_pool_verify(p);
    check(p, "tank/fs", obj, 0, 2 * MiB, 1);
    OK(wr(p, "tank/fs", obj, 0, 1 * MiB, 4));
    check(p, "tank/fs@a", obj, 0, 2 * MiB, 1);
    p = test_pool_verify(p);
    pool_export(p);
}

Test(dsl, promote_lets_the_origin_go)
{
    struct pool *p = test_pool_create(256 * MiB);
    mkfs(p, "tank/old");
    uint64_t obj = mkobj(p, "tank/old");
    OK(wr(p, "tank/old", obj, 0, 2 * MiB, 1));
    const char *s0[] = { "tank/old@s0" }, *s1[] = { "tank/old@s1" }, *s2[] = { "tank/old@s2" };
    OK(dsl_snapshot(p, s0, 1, &em));
    OK(wr(p, "tank/old", obj, 0, 1 * MiB, 2));
    OK(dsl_snapshot(p, s1, 1, &em));
    OK(wr(p, "tank/old", obj, 1 * MiB, 1 * MiB, 3));
    OK(dsl_snapshot(p, s2, 1, &em));
    OK(dsl_clone(p, "tank/old@s1", "tank/new", NULL, 0, &em));
    OK(wr(p, "tank/new", obj, 0, 512 * 1024, 4));
    const char *n1[] = { "tank/new@n1" };
    OK(dsl_snapshot(p, n1, 1, &em));

    OK(dsl_promote(p, "tank/new", &em));
    cr_assert_str_eq(info(p, "tank/old").origin, "tank/new@s1");
    cr_assert_str_eq(info(p, "tank/new").origin, "");
    struct names nm = list(p, "tank/new", DSL_LIST_RECURSIVE | DSL_LIST_FS | DSL_LIST_SNAP);
    cr_assert_eq(nm.n, 4, "tank/new and @s0 @s1 @n1: %d", nm.n);
    check(p, "tank/new@s0", obj, 0, 2 * MiB, 1);
    check(p, "tank/new@s1", obj, 0, 1 * MiB, 2);
    p = test_pool_verify(p);

    OK(dsl_destroy(p, "tank/old", DSL_DESTROY_RECURSIVE, &em));
    check(p, "tank/new", obj, 0, 512 * 1024, 4);
    check(p, "tank/new", obj, 512 * 1024, 512 * 1024, 2);
    check(p, "tank/new", obj, 1 * MiB, 1 * MiB, 1);
    p = test_pool_verify(p);
    OK(dsl_destroy(p, "tank/new", DSL_DESTROY_RECURSIVE, &em));
    p = test_pool_verify(p);
    struct pool_stats st;
    pool_get_stats(p, &st);
    cr_assert_lt(st.allocated, 2 * MiB);
    pool_export(p);
}

static int
count_hold(void *arg, const char *tag, uint64_t time)
{
    (void)tag;
    (void)time;
    (*(int *)arg)++;
    return 0;
}

Test(dsl, holds_and_bookmarks)
{
    struct pool *p = test_pool_create(256 * MiB);
    mkfs(p, "tank/fs");
    uint64_t obj = mkobj(p, "tank/fs");
    OK(wr(p, "tank/fs", obj, 0, 1 * MiB, 1));
    const char *s[] = { "tank/fs@s" };
    OK(dsl_snapshot(p, s, 1, &em));
    OK(dsl_hold(p, "tank/fs@s", "backup", &em));
    cr_assert_eq(dsl_hold(p, "tank/fs@s", "backup", &em), -EEXIST);
    OK(dsl_hold(p, "tank/fs@s", "repl", &em));
    cr_assert_eq(dsl_destroy(p, "tank/fs@s", 0, &em), -EBUSY);
    cr_assert(strstr(em.text, "hold") != NULL, "message: %s", em.text);
    OK(dsl_bookmark(p, "tank/fs@s", "tank/fs#mark", &em));
    cr_assert_eq(dsl_bookmark(p, "tank/fs@s", "tank/other#mark", &em), -EINVAL);
    p = test_pool_verify(p);
    int n = 0;
    OK(dsl_holds(p, "tank/fs@s", count_hold, &n, &em));
    cr_assert_eq(n, 2);
    OK(dsl_release(p, "tank/fs@s", "backup", &em));
    cr_assert_eq(dsl_release(p, "tank/fs@s", "backup", &em), -ENOENT);
    OK(dsl_release(p, "tank/fs@s", "repl", &em));
    struct dsl_info si = info(p, "tank/fs@s");
    OK(dsl_destroy(p, "tank/fs@s", 0, &em));
    struct dsl_info bi = info(p, "tank/fs#mark");
    cr_assert_eq(bi.kind, DSL_KIND_BOOKMARK);
    cr_assert_eq(bi.guid, si.guid);
    cr_assert_eq(bi.create_txg, si.create_txg);
    cr_assert_eq(dsl_clone(p, "tank/fs#mark", "tank/c", NULL, 0, &em), -EINVAL);
    p = test_pool_verify(p);
    OK(dsl_destroy(p, "tank/fs#mark", 0, &em));
    p = test_pool_verify(p);
    pool_export(p);
}

struct all_props {
    int n;
    bool saw_user, saw_used;
};

static int
count_prop(void *arg, const struct dsl_prop_out *o)
{
    struct all_props *ap = arg;
    ap->n++;
    ap->saw_user |= strcmp(o->name, "com.example:owner") == 0 && strcmp(o->value, "ops") == 0;
    ap->saw_used |= strcmp(o->name, "used") == 0 && strcmp(o->source, "-") == 0;
    return 0;
}

Test(dsl, properties_inherit_and_persist)
{
    struct pool *p = test_pool_create(256 * MiB);
    mkfs(p, "tank/a");
    mkfs(p, "tank/a/b");
    struct dsl_prop_set set[] = { { "compression", "zstd-3" }, { "com.example:owner", "ops" } };
    OK(dsl_set(p, "tank/a", set, 2, &em));
    struct dsl_prop_out o;
    OK(dsl_get(p, "tank/a/b", "compression", false, &o, &em));
    cr_assert_str_eq(o.value, "zstd"); /* zstd-3 is zstd's default level */
    cr_assert_str_eq(o.source, "inherited from tank/a");
    OK(dsl_get(p, "tank/a", "compression", false, &o, &em));
    cr_assert_str_eq(o.source, "local");
    OK(dsl_get(p, "tank/a/b", "com.example:owner", false, &o, &em));
    cr_assert_str_eq(o.value, "ops");
    OK(dsl_get(p, "tank", "compression", false, &o, &em));
    cr_assert_str_eq(o.source, "default");
    cr_assert_str_eq(o.value, "lz4");
    struct dsl_prop_set bad[] = { { "compression", "zip" } };
    cr_assert_eq(dsl_set(p, "tank/a", bad, 1, &em), -EINVAL);
    struct dsl_prop_set ro[] = { { "used", "5" } };
    cr_assert_eq(dsl_set(p, "tank/a", ro, 1, &em), -EROFS);
    struct dsl_prop_set vbs[] = { { "volblocksize", "8K" } };
    cr_assert_neq(dsl_set(p, "tank/a", vbs, 1, &em), 0);

    p = test_pool_verify(p);
    OK(dsl_get(p, "tank/a/b", "compression", true, &o, &em));
    cr_assert_str_eq(o.value, "zstd");
    /* New objects of tank/a/b use the inherited compression. */
    struct dataset *ds;
    OK(ds_open(p, "tank/a/b", &ds, &em));
    struct tx tx;
    cr_assert_eq(ds_tx_assign(ds, 0, &tx), 0);
    struct obj_create_opts oc = { .type = OT_PLAIN };
    uint64_t obj;
    cr_assert_eq(obj_create(ds_objset(ds), &tx, &oc, &obj), 0);
    tx_commit(&tx);
    struct obj_info oi;
    cr_assert_eq(obj_stat(ds_objset(ds), obj, &oi), 0);
    cr_assert_eq(oi.compress, COMPRESS_ZSTD);
    cr_assert_eq(oi.compress_level, 3);
    ds_close(ds);

    OK(dsl_inherit(p, "tank/a", "compression", false, &em));
    OK(dsl_get(p, "tank/a/b", "compression", false, &o, &em));
    cr_assert_str_eq(o.source, "default");
    struct all_props ap = { 0 };
    OK(dsl_get_all(p, "tank/a/b", false, count_prop, &ap, &em));
    cr_assert_gt(ap.n, 20);
    cr_assert(ap.saw_user && ap.saw_used);
    pool_export(p);
}

Test(dsl, quotas_give_edquot_and_keep_what_was_written)
{
    struct pool *p = test_pool_create(256 * MiB);
    struct dsl_prop_set q[] = { { "quota", "8M" } };
    OK(dsl_create(p, "tank/q", DSL_KIND_FS, q, 1, 0, &em));
    mkfs(p, "tank/q/child");
    uint64_t obj = mkobj(p, "tank/q/child");
    int rc = 0;
    uint64_t written = 0;
    for (int i = 0; i < 64 && rc == 0; i++) {
        rc = wr(p, "tank/q/child", obj, written, 512 * 1024, 100 + (uint64_t)i);
        if (rc == 0)
            written += 512 * 1024;
        pool_sync(p, NULL);
    }
    cr_assert_eq(rc, -EDQUOT);
    cr_assert_geq(written, 6 * MiB);
    cr_assert_leq(written, 8 * MiB);
    for (uint64_t off = 0; off < written; off += 512 * 1024)
        check(p, "tank/q/child", obj, off, 512 * 1024, 100 + off / (512 * 1024));
    struct dsl_prop_set rq[] = { { "refquota", "1M" } };
    OK(dsl_set(p, "tank/q/child", rq, 1, &em));
    cr_assert_eq(wr(p, "tank/q/child", obj, 0, 4096, 9), -EDQUOT);
    p = test_pool_verify(p);
    pool_export(p);
}
