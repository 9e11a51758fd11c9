/* SPDX-License-Identifier: MIT */
/*
 * The data/hole query: after a commit it reports data exactly where blocks hold non-zero bytes;
 * uncommitted writes and punches show immediately; a sparse 1 TiB object is walked in O(data).
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/objset.h"
#include "core/pool.h"
#include "test_util.h"

TestSuite(extents, .init = test_tmpdir_setup, .fini = test_tmpdir_teardown, .timeout = 120);

struct runs {
    uint64_t off[4096], len[4096];
    bool data[4096];
    unsigned n;
};

static int
collect(void *arg, uint64_t off, uint64_t len, bool is_data)
{
    struct runs *r = arg;
    cr_assert_lt(r->n, 4096);
    if (r->n > 0)
        cr_assert_neq(r->data[r->n - 1], is_data, "adjacent runs of the same kind");
    r->off[r->n] = off;
    r->len[r->n] = len;
    r->data[r->n] = is_data;
    r->n++;
    return 0;
}

static uint64_t
make_obj(struct pool *p, uint32_t bs)
{
    struct tx tx;
    uint64_t obj;
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    struct obj_create_opts co = { .type = OT_PLAIN, .blocksize = bs };
    cr_assert_eq(obj_create(pool_root_objset(p), &tx, &co, &obj), 0);
    tx_commit(&tx);
    return obj;
}

Test(extents, committed_data_is_exactly_the_nonzero_blocks)
{
    struct pool *p = test_pool_create(256u << 20);
    const uint32_t bs = 4096;
    const unsigned nblocks = 1500;
    uint64_t obj = make_obj(p, bs);
    static uint8_t model[1500 * 4096];
    memset(model, 0, sizeof(model));
    uint64_t s = 42;
    uint8_t buf[3 * 4096];
    for (int op = 0; op < 300; op++) {
        uint64_t off = test_rnd(&s) % (sizeof(model) - sizeof(buf));
        size_t len = 1 + test_rnd(&s) % sizeof(buf);
        struct tx tx;
        cr_assert_eq(tx_assign(p, len, &tx), 0);
        if (test_rnd(&s) % 4 == 0) {
            cr_assert_eq(obj_punch(pool_root_objset(p), &tx, obj, off, len), 0);
            memset(model + off, 0, len);
        } else {
            bool zeros = test_rnd(&s) % 5 == 0;
            for (size_t i = 0; i < len; i++)
                buf[i] = zeros ? 0 : (uint8_t)(1 + (op + i) % 250);
            cr_assert_eq(obj_write(pool_root_objset(p), &tx, obj, off, len, buf), 0);
            memcpy(model + off, buf, len);
        }
        tx_commit(&tx);
        if (op % 50 == 49)
            cr_assert_eq(pool_sync(p, NULL), 0);
    }
    cr_assert_eq(pool_sync(p, NULL), 0);
    static struct runs r;
    r.n = 0;
    cr_assert_eq(obj_extents(pool_root_objset(p), obj, 0, sizeof(model), collect, &r), 0);
    uint64_t covered = 0;
    for (unsigned i = 0; i < r.n; i++) {
        cr_assert_eq(r.off[i], covered);
        covered += r.len[i];
        for (uint64_t b = r.off[i] / bs; b < (r.off[i] + r.len[i]) / bs; b++) {
            bool nonzero = false;
            for (uint32_t k = 0; k < bs && !nonzero; k++)
                nonzero = model[b * bs + k] != 0;
            cr_assert_eq(nonzero, r.data[i], "block %llu: data %d but non-zero %d",
                         (unsigned long long)b, r.data[i], nonzero);
        }
    }
    cr_assert_eq(covered, (uint64_t)nblocks * bs);
    pool_close(p);
}

Test(extents, uncommitted_writes_and_punches_show_at_once)
{
    struct pool *p = test_pool_create(256u << 20);
    uint64_t obj = make_obj(p, 16384);
    uint8_t buf[16384];
    memset(buf, 7, sizeof(buf));
    struct tx tx;
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    cr_assert_eq(obj_write(pool_root_objset(p), &tx, obj, 10 * 16384, sizeof(buf), buf), 0);
    cr_assert_eq(obj_write(pool_root_objset(p), &tx, obj, 20 * 16384, sizeof(buf), buf), 0);
    tx_commit(&tx);
    static struct runs r;
    r.n = 0;
    cr_assert_eq(obj_extents(pool_root_objset(p), obj, 0, 32 * 16384, collect, &r), 0);
    cr_assert_eq(r.n, 5);
    cr_assert(!r.data[0] && r.data[1] && !r.data[2] && r.data[3] && !r.data[4]);
    cr_assert_eq(r.off[1], 10 * 16384);
    cr_assert_eq(r.off[3], 20 * 16384);
    cr_assert_eq(pool_sync(p, NULL), 0);
    /* A punch of committed data shows before the next commit. */
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    cr_assert_eq(obj_punch(pool_root_objset(p), &tx, obj, 10 * 16384, 16384), 0);
    tx_commit(&tx);
    r.n = 0;
    cr_assert_eq(obj_extents(pool_root_objset(p), obj, 0, 32 * 16384, collect, &r), 0);
    cr_assert_eq(r.n, 3);
    cr_assert(!r.data[0] && r.data[1] && !r.data[2]);
    cr_assert_eq(r.off[1], 20 * 16384);
    pool_close(p);
}

Test(extents, sparse_terabyte_object_is_walked_quickly)
{
    struct pool *p = test_pool_create(256u << 20);
    uint64_t obj = make_obj(p, 16384);
    const uint64_t tib = 1ull << 40;
    uint8_t buf[16384];
    memset(buf, 9, sizeof(buf));
    uint64_t where[] = { 0, 1ull << 30, 777ull << 30, tib - 16384 };
    struct tx tx;
    for (unsigned i = 0; i < 4; i++) {
        cr_assert_eq(tx_assign(p, 0, &tx), 0);
        cr_assert_eq(obj_write(pool_root_objset(p), &tx, obj, where[i], sizeof(buf), buf), 0);
        tx_commit(&tx);
    }
    cr_assert_eq(pool_sync(p, NULL), 0);
    static struct runs r;
    r.n = 0;
    struct pool_stats before, after;
    pool_get_stats(p, &before);
    cr_assert_eq(obj_extents(pool_root_objset(p), obj, 0, tib, collect, &r), 0);
    pool_get_stats(p, &after);
    /* Block reads (cache hits + misses) measure the work: O(data), not O(size). */
    uint64_t reads = after.arc_hits + after.arc_misses - before.arc_hits - before.arc_misses;
    cr_assert_eq(r.n, 7);
    for (unsigned i = 0; i < 4; i++) {
        cr_assert(r.data[2 * i]);
        cr_assert_eq(r.off[2 * i], where[i]);
        cr_assert_eq(r.len[2 * i], 16384);
    }
    cr_assert_lt(reads, 200, "walking a sparse 1 TiB object read %llu blocks",
                 (unsigned long long)reads);
    pool_close(p);
}
