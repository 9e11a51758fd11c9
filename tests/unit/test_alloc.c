/* SPDX-License-Identifier: MIT */
/*
 * alloc unit tests. The oracle tests drive random allocate / free_deferred / free_immediate /
 * sync_done sequences over many txgs against a per-sector state array (free, allocated, or
 * freed in txg T and not yet released) and check that no allocation ever overlaps allocated or
 * unreleased space, that the counters match, and that journals and checkpoints replayed into a
 * fresh allocator reproduce the live allocated set. Seeds are printed with every failure.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "common/endian.h"
#include "common/err.h"
#include "core/alloc.h"
#include "core/ondisk.h"

/* ---- small helpers ---- */

static struct alloc *
new_one_vdev(uint64_t asize, unsigned ashift, unsigned ms_shift)
{
    struct alloc *a = alloc_new();
    cr_assert_not_null(a);
    cr_assert_eq(alloc_vdev_add(a, 0, asize, ashift, ms_shift), 0);
    return a;
}

struct bytes {
    uint8_t *buf;
    size_t len, cap;
};

static void
bytes_append(struct bytes *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap < b->len + n)
            ncap *= 2;
        b->buf = realloc(b->buf, ncap);
        cr_assert_not_null(b->buf);
        b->cap = ncap;
    }
    memcpy(b->buf + b->len, p, n);
    b->len += n;
}

static void
rec(struct bytes *b, uint64_t kind, uint32_t vdev, uint64_t len_bytes, uint64_t w1)
{
    uint8_t r[16];
    le64_put(r, kind << 62 | (uint64_t)vdev << 40 | (len_bytes >> 9));
    le64_put(r + 8, w1);
    bytes_append(b, r, 16);
}

static void
take_into(struct alloc *a, uint64_t txg, struct bytes *log)
{
    uint8_t *j = NULL;
    size_t n = 0;
    cr_assert_eq(alloc_take_journal(a, txg, &j, &n), 0);
    if (n > 0)
        bytes_append(log, j, n);
    free(j);
    cr_assert_not(alloc_has_journal(a, txg));
}

/* Stands in for the pool's sync: the journal is taken, then the txg is durable. */
static void
sync_txg(struct alloc *a, uint64_t txg)
{
    uint8_t *j = NULL;
    size_t n = 0;
    cr_assert_eq(alloc_take_journal(a, txg, &j, &n), 0);
    free(j);
    alloc_sync_done(a, txg);
}

struct ext {
    uint32_t vdev;
    uint64_t off, len;
};

struct ext_list {
    struct ext *e;
    size_t n, cap;
};

static int
ext_collect_fn(void *arg, uint32_t vdev, uint64_t off, uint64_t len)
{
    struct ext_list *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->e = realloc(l->e, l->cap * sizeof(*l->e));
        cr_assert_not_null(l->e);
    }
    l->e[l->n++] = (struct ext){ vdev, off, len };
    return 0;
}

static void
ext_collect(struct alloc *a, struct ext_list *l)
{
    l->n = 0;
    cr_assert_eq(alloc_walk_allocated(a, ext_collect_fn, l), 0);
}

static void
ext_expect_equal(const struct ext_list *x, const struct ext_list *y, uint64_t seed)
{
    cr_assert_eq(x->n, y->n, "seed %llu: %zu extents vs %zu", (unsigned long long)seed, x->n, y->n);
    for (size_t i = 0; i < x->n; i++)
        cr_assert(x->e[i].vdev == y->e[i].vdev && x->e[i].off == y->e[i].off &&
                      x->e[i].len == y->e[i].len,
                  "seed %llu: extent %zu differs: %u:%llu+%llu vs %u:%llu+%llu",
                  (unsigned long long)seed, i, x->e[i].vdev, (unsigned long long)x->e[i].off,
                  (unsigned long long)x->e[i].len, y->e[i].vdev, (unsigned long long)y->e[i].off,
                  (unsigned long long)y->e[i].len);
}

/* ---- table tests ---- */

Test(alloc, pick_ms_shift_aims_for_about_128_metaslabs)
{
    static const struct {
        uint64_t asize;
        unsigned shift;
    } cases[] = {
        { 0, 24 },          { MiB(64), 24 },          { 1ull << 31, 24 },
        { 1ull << 32, 25 }, { (1ull << 40) - 1, 32 }, { 1ull << 40, 33 },
        { 1ull << 41, 34 }, { 1ull << 50, 34 },       { UINT64_MAX, 34 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert_eq(alloc_pick_ms_shift(cases[i].asize), cases[i].shift, "asize %llu",
                     (unsigned long long)cases[i].asize);
}

Test(alloc, slop_is_one_32nd_clamped)
{
    static const struct {
        uint64_t size, slop;
    } cases[] = {
        { MiB(8), MiB(2) },            /* at most a quarter */
        { MiB(64), MiB(4) },           /* at least 4 MiB */
        { 1ull << 40, 32ull << 30 },   /* size / 32 */
        { 16ull << 40, 128ull << 30 }, /* at most 128 GiB */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct alloc *a = new_one_vdev(cases[i].size, 12, alloc_pick_ms_shift(cases[i].size));
        cr_assert_eq(alloc_slop_bytes(a), cases[i].slop, "size %llu",
                     (unsigned long long)cases[i].size);
        alloc_free(a);
    }
}

Test(alloc, vdev_add_rejects_bad_arguments)
{
    struct alloc *a = alloc_new();
    cr_assert_eq(alloc_vdev_add(a, 1, MiB(64), 12, 24), -EINVAL);   /* not dense */
    cr_assert_eq(alloc_vdev_add(a, 0, MiB(64), 8, 24), -EINVAL);    /* ashift below a sector */
    cr_assert_eq(alloc_vdev_add(a, 0, MiB(64), 12, 11), -EINVAL);   /* ms smaller than unit */
    cr_assert_eq(alloc_vdev_add(a, 0, 100, 12, 24), -EINVAL);       /* less than one unit */
    cr_assert_eq(alloc_vdev_add(a, 0, 1ull << 40, 9, 12), -EINVAL); /* 2^28 metaslabs */
    cr_assert_eq(alloc_vdev_add(a, 0, MiB(64), 12, 24), 0);
    cr_assert_eq(alloc_vdev_add(a, 0, MiB(64), 12, 24), -EEXIST);
    cr_assert_eq(alloc_vdev_add(a, 1, MiB(40) + 5, 12, 24), 0); /* tail rounded away */
    struct alloc_stats st;
    alloc_get_stats(a, &st);
    cr_assert_eq(st.size, MiB(104));
    cr_assert_eq(st.nmetaslabs, 4 + 3);
    cr_assert(alloc_check(a));
    alloc_free(a);
    alloc_free(NULL);
}

Test(alloc, journal_records_use_the_ondisk_layout)
{
    struct alloc *a = new_one_vdev(MiB(64), 12, 24);
    struct dva d;
    cr_assert_not(alloc_has_journal(a, 7));
    cr_assert_eq(alloc_allocate(a, 7, 5000, 0, NULL, 0, &d), 0);
    cr_assert_eq(d.vdev, 0);
    cr_assert_eq(d.asize_sectors, 16); /* rounded up to 8 KiB */
    cr_assert_eq(d.offset % 4096, 0);
    cr_assert(alloc_has_journal(a, 7));
    cr_assert_not(alloc_has_journal(a, 8));

    uint8_t *j;
    size_t n;
    cr_assert_eq(alloc_take_journal(a, 8, &j, &n), 0);
    cr_assert_null(j);
    cr_assert_eq(n, 0);
    cr_assert_eq(alloc_take_journal(a, 7, &j, &n), 0);
    cr_assert_eq(n, 32);
    cr_assert_eq(le64_get(j), (uint64_t)SPACE_REC_TXG << 62);
    cr_assert_eq(le64_get(j + 8), 7);
    cr_assert_eq(le64_get(j + 16), (uint64_t)SPACE_REC_ALLOC << 62 | 16);
    cr_assert_eq(le64_get(j + 24), d.offset);
    free(j);
    cr_assert_not(alloc_has_journal(a, 7));

    alloc_free_deferred(a, 8, &d);
    cr_assert_eq(alloc_take_journal(a, 8, &j, &n), 0);
    cr_assert_eq(n, 32);
    cr_assert_eq(le64_get(j + 8), 8);
    cr_assert_eq(le64_get(j + 16), (uint64_t)SPACE_REC_FREE << 62 | 16);
    cr_assert_eq(le64_get(j + 24), d.offset);
    free(j);
    alloc_free(a);
}

Test(alloc, never_reuses_space_freed_within_two_txgs)
{
    struct alloc *a = new_one_vdev(MiB(16), 12, 24);
    struct dva d[16], x;
    for (int i = 0; i < 16; i++)
        cr_assert_eq(alloc_allocate(a, 1, MiB(1), ALLOC_USE_SLOP, NULL, 0, &d[i]), 0);
    cr_assert_eq(alloc_allocate(a, 1, 4096, ALLOC_USE_SLOP, NULL, 0, &x), -ENOSPC);
    sync_txg(a, 1);

    const uint64_t T = 5;
    alloc_free_deferred(a, T, &d[3]);
    cr_assert_eq(alloc_allocate(a, T, 4096, ALLOC_USE_SLOP, NULL, 0, &x), -ENOSPC);
    sync_txg(a, T);
    cr_assert_eq(alloc_allocate(a, T + 1, 4096, ALLOC_USE_SLOP, NULL, 0, &x), -ENOSPC);
    sync_txg(a, T + 1);
    cr_assert_eq(alloc_allocate(a, T + 2, 4096, ALLOC_USE_SLOP, NULL, 0, &x), -ENOSPC);
    struct alloc_stats st;
    alloc_get_stats(a, &st);
    cr_assert_eq(st.deferred, MiB(1));
    cr_assert_eq(st.allocated, MiB(15));
    sync_txg(a, T + 2);
    alloc_get_stats(a, &st);
    cr_assert_eq(st.deferred, 0);
    cr_assert_eq(alloc_allocate(a, T + 3, MiB(1), ALLOC_USE_SLOP, NULL, 0, &x), 0);
    cr_assert_eq(x.offset, d[3].offset);
    cr_assert(alloc_check(a));
    alloc_free(a);
}

Test(alloc, normal_allocations_leave_the_slop_reserve)
{
    struct alloc *a = new_one_vdev(MiB(64), 12, 24);
    cr_assert_eq(alloc_slop_bytes(a), MiB(4));
    struct dva d[64], x;
    int n = 0;
    int rc;
    while ((rc = alloc_allocate(a, 1, MiB(1), 0, NULL, 0, &d[n])) == 0)
        n++;
    cr_assert_eq(rc, -ENOSPC);
    cr_assert_eq(n, 60);
    for (; n < 64; n++)
        cr_assert_eq(alloc_allocate(a, 1, MiB(1), ALLOC_USE_SLOP, NULL, 0, &d[n]), 0);
    cr_assert_eq(alloc_allocate(a, 1, 4096, ALLOC_USE_SLOP, NULL, 0, &x), -ENOSPC);
    sync_txg(a, 1);

    /* Freed space still counts against the reserve until it is released. */
    alloc_free_deferred(a, 2, &d[10]);
    alloc_free_deferred(a, 2, &d[20]);
    alloc_free_deferred(a, 2, &d[30]);
    alloc_free_deferred(a, 2, &d[40]);
    alloc_free_deferred(a, 2, &d[50]);
    alloc_free_deferred(a, 2, &d[60]);
    cr_assert_eq(alloc_allocate(a, 2, MiB(1), ALLOC_USE_SLOP, NULL, 0, &x), -ENOSPC);
    for (uint64_t t = 2; t <= 4; t++)
        sync_txg(a, t);
    /* 58 MiB allocated: 2 MiB usable outside the 4 MiB reserve. */
    cr_assert_eq(alloc_allocate(a, 5, MiB(1), 0, NULL, 0, &x), 0);
    cr_assert_eq(alloc_allocate(a, 5, MiB(1), 0, NULL, 0, &x), 0);
    cr_assert_eq(alloc_allocate(a, 5, MiB(1), 0, NULL, 0, &x), -ENOSPC);
    cr_assert_eq(alloc_allocate(a, 5, MiB(1), ALLOC_USE_SLOP, NULL, 0, &x), 0);
    struct alloc_stats st;
    alloc_get_stats(a, &st);
    cr_assert_eq(st.allocated, MiB(61));
    cr_assert_eq(st.free, MiB(3));
    cr_assert_eq(st.slop, MiB(4));
    cr_assert(alloc_check(a));
    alloc_free(a);
}

Test(alloc, avoid_list_prefers_other_vdevs)
{
    struct alloc *a = alloc_new();
    cr_assert_eq(alloc_vdev_add(a, 0, MiB(256), 12, 24), 0);
    cr_assert_eq(alloc_vdev_add(a, 1, MiB(256), 12, 24), 0);
    cr_assert_eq(alloc_vdev_add(a, 2, MiB(16), 12, 24), 0);
    unsigned used[3] = { 0 };
    for (int i = 0; i < 200; i++) {
        struct dva d1, d2, d3;
        cr_assert_eq(alloc_allocate(a, 1, KiB(128), 0, NULL, 0, &d1), 0);
        cr_assert_eq(alloc_allocate(a, 1, KiB(128), 0, &d1.vdev, 1, &d2), 0);
        cr_assert_neq(d2.vdev, d1.vdev, "iteration %d", i);
        uint32_t avoid[2] = { d1.vdev, d2.vdev };
        cr_assert_eq(alloc_allocate(a, 1, 4096, 0, avoid, 2, &d3), 0);
        if (i < 20) /* while every vdev has room the third copy goes to the third vdev */
            cr_assert(d3.vdev != d1.vdev && d3.vdev != d2.vdev, "iteration %d", i);
        used[d1.vdev]++;
    }
    cr_assert(used[0] > 0 && used[1] > 0, "rotor spread: %u %u %u", used[0], used[1], used[2]);

    /* Fill vdev 2; then an allocation avoiding 0 and 1 falls back to them. */
    sync_txg(a, 1);
    uint32_t avoid01[2] = { 0, 1 };
    struct dva d;
    for (;;) {
        cr_assert_eq(alloc_allocate(a, 2, MiB(1), ALLOC_USE_SLOP, avoid01, 2, &d), 0);
        if (d.vdev != 2)
            break;
    }
    cr_assert(d.vdev == 0 || d.vdev == 1);
    cr_assert(alloc_check(a));
    alloc_free(a);
}

Test(alloc, free_immediate_is_reusable_now_and_replays_to_free)
{
    struct alloc *a = new_one_vdev(MiB(16), 12, 24);
    struct dva d[16], x;
    for (int i = 0; i < 16; i++)
        cr_assert_eq(alloc_allocate(a, 3, MiB(1), ALLOC_USE_SLOP, NULL, 0, &d[i]), 0);
    alloc_free_immediate(a, 3, &d[7]);
    struct alloc_stats st;
    alloc_get_stats(a, &st);
    cr_assert_eq(st.allocated, MiB(15));
    cr_assert_eq(st.deferred, 0);
    cr_assert_eq(alloc_allocate(a, 3, MiB(1), ALLOC_USE_SLOP, NULL, 0, &x), 0);
    cr_assert_eq(x.offset, d[7].offset);
    alloc_free_immediate(a, 3, &x);

    struct bytes log = { 0 };
    take_into(a, 3, &log);
    cr_assert_eq(log.len, 16 * (1 + 16 + 1 + 1 + 1));
    struct alloc *b = new_one_vdev(MiB(16), 12, 24);
    cr_assert_eq(alloc_load_records(b, log.buf, log.len, 3), 0);
    struct ext_list la = { 0 }, lb = { 0 };
    ext_collect(a, &la);
    ext_collect(b, &lb);
    ext_expect_equal(&la, &lb, 0);
    cr_assert_eq(la.n, 2); /* [0, 7 MiB) and [8 MiB, 16 MiB) */
    alloc_get_stats(b, &st);
    cr_assert_eq(st.allocated, MiB(15));
    cr_assert(alloc_check(b));
    free(la.e);
    free(lb.e);
    free(log.buf);
    alloc_free(a);
    alloc_free(b);
}

Test(alloc, fragmentation_counts_free_space_in_small_segments)
{
    struct alloc *a = new_one_vdev(MiB(64), 12, 24);
    struct alloc_stats st;
    alloc_get_stats(a, &st);
    cr_assert_eq(st.fragmentation, 0);
    cr_assert_eq(st.nmetaslabs, 4);
    cr_assert_eq(st.free, MiB(64));
    struct dva d[256];
    for (int i = 0; i < 256; i++) {
        cr_assert_eq(alloc_allocate(a, 1, KiB(64), 0, NULL, 0, &d[i]), 0);
        cr_assert_eq(d[i].offset, (uint64_t)i * KiB(64)); /* sequential within a metaslab */
    }
    for (int i = 0; i < 256; i += 2)
        alloc_free_immediate(a, 1, &d[i]);
    alloc_get_stats(a, &st);
    /* 128 holes of 64 KiB = 8 MiB small out of 56 MiB free. */
    cr_assert_eq(st.fragmentation, 8 * 100 / 56);
    alloc_free(a);
}

/* ---- load ---- */

static int
load_one_buffer(const struct bytes *b, uint64_t current_txg)
{
    struct alloc *a = alloc_new();
    cr_assert_eq(alloc_vdev_add(a, 0, MiB(16), 12, 24), 0);
    int rc = alloc_load_records(a, b->buf, b->len, current_txg);
    if (rc == 0)
        cr_assert(alloc_check(a));
    alloc_free(a);
    return rc;
}

Test(alloc, load_rejects_corrupt_records)
{
    enum { A = SPACE_REC_ALLOC, F = SPACE_REC_FREE, T = SPACE_REC_TXG };
    struct bytes b = { 0 };

    rec(&b, T, 0, 0, 1);
    rec(&b, A, 0, MiB(1), 0);
    rec(&b, F, 0, KiB(64), 0);
    cr_assert_eq(load_one_buffer(&b, 1), 0, "valid records");
    b.len -= 1;
    cr_assert_eq(load_one_buffer(&b, 1), -ECORRUPT, "length not a multiple of 16");

#define CASE(what, ...)                                         \
    do {                                                        \
        b.len = 0;                                              \
        __VA_ARGS__;                                            \
        cr_assert_eq(load_one_buffer(&b, 10), -ECORRUPT, what); \
    } while (0)

    CASE("kind 3", rec(&b, T, 0, 0, 1); rec(&b, 3, 0, 4096, 0));
    CASE("record before any txg marker", rec(&b, A, 0, 4096, 0));
    CASE("txg marker with a length", rec(&b, T, 0, 4096, 1));
    CASE("txg marker with a vdev", rec(&b, T, 1, 0, 1));
    CASE("unknown vdev", rec(&b, T, 0, 0, 1); rec(&b, A, 1, 4096, 0));
    CASE("past the end", rec(&b, T, 0, 0, 1); rec(&b, A, 0, 8192, MiB(16) - 4096));
    CASE("offset overflow", rec(&b, T, 0, 0, 1); rec(&b, A, 0, 8192, UINT64_MAX - 4095));
    CASE("misaligned offset", rec(&b, T, 0, 0, 1); rec(&b, A, 0, 4096, 512));
    CASE("misaligned length", rec(&b, T, 0, 0, 1); rec(&b, A, 0, 4096 + 512, 0));
    CASE("zero length", rec(&b, T, 0, 0, 1); rec(&b, A, 0, 0, 0));
    CASE("double alloc", rec(&b, T, 0, 0, 1); rec(&b, A, 0, MiB(1), 0);
         rec(&b, A, 0, MiB(1), MiB(1) / 2));
    CASE("free of free", rec(&b, T, 0, 0, 1); rec(&b, F, 0, 4096, 0));
    CASE("free of partly free", rec(&b, T, 0, 0, 1); rec(&b, A, 0, KiB(64), 0);
         rec(&b, F, 0, KiB(128), 0));
    CASE("double free into defer", rec(&b, T, 0, 0, 9); rec(&b, A, 0, MiB(1), 0);
         rec(&b, T, 0, 0, 10); rec(&b, F, 0, 4096, 0); rec(&b, F, 0, 4096, 0));
    CASE("alloc of deferred space", rec(&b, T, 0, 0, 9); rec(&b, A, 0, MiB(1), 0);
         rec(&b, T, 0, 0, 10); rec(&b, F, 0, 4096, 0); rec(&b, A, 0, 4096, 0));
#undef CASE
    free(b.buf);
}

Test(alloc, load_accepts_reuse_of_space_freed_immediately_in_the_same_txg)
{
    enum { A = SPACE_REC_ALLOC, F = SPACE_REC_FREE, T = SPACE_REC_TXG };
    struct bytes b = { 0 };
    rec(&b, T, 0, 0, 10);
    rec(&b, A, 0, MiB(1), 0);
    rec(&b, F, 0, MiB(1), 0); /* alloc_free_immediate */
    rec(&b, T, 0, 0, 10);     /* a second sync pass of the same txg */
    rec(&b, A, 0, MiB(2), 0); /* reuses it together with never-used space */
    struct alloc *a = new_one_vdev(MiB(16), 12, 24);
    cr_assert_eq(alloc_load_records(a, b.buf, 48, 10), 0);
    cr_assert_eq(alloc_load_records(a, b.buf + 48, b.len - 48, 10), 0);
    struct alloc_stats st;
    alloc_get_stats(a, &st);
    cr_assert_eq(st.allocated, MiB(2));
    cr_assert_eq(st.deferred, 0);
    cr_assert(alloc_check(a));
    alloc_free(a);
    free(b.buf);
}

Test(alloc, frees_in_the_last_two_txgs_stay_deferred_across_load)
{
    enum { A = SPACE_REC_ALLOC, F = SPACE_REC_FREE, T = SPACE_REC_TXG };
    struct bytes b = { 0 };
    rec(&b, T, 0, 0, 1);
    rec(&b, A, 0, MiB(16), 0);
    rec(&b, T, 0, 0, 3);
    rec(&b, F, 0, MiB(1), MiB(2)); /* old: allocatable at once */
    rec(&b, T, 0, 0, 9);
    rec(&b, F, 0, MiB(1), 0); /* current_txg - 1: reusable after sync_done(11) */
    rec(&b, T, 0, 0, 10);
    rec(&b, F, 0, MiB(1), MiB(1)); /* current_txg: reusable after sync_done(12) */

    struct alloc *a = new_one_vdev(MiB(16), 12, 24);
    /* Split across calls: the TXG marker state carries over. */
    cr_assert_eq(alloc_load_records(a, b.buf, 64, 10), 0);
    cr_assert_eq(alloc_load_records(a, b.buf + 64, b.len - 64, 10), 0);
    cr_assert(alloc_check(a));
    struct alloc_stats st;
    alloc_get_stats(a, &st);
    cr_assert_eq(st.allocated, MiB(13));
    cr_assert_eq(st.deferred, MiB(2));

    struct dva x;
    cr_assert_eq(alloc_allocate(a, 11, MiB(1), ALLOC_USE_SLOP, NULL, 0, &x), 0);
    cr_assert_eq(x.offset, MiB(2));
    cr_assert_eq(alloc_allocate(a, 11, 4096, ALLOC_USE_SLOP, NULL, 0, &x), -ENOSPC);
    alloc_sync_done(a, 11);
    cr_assert_eq(alloc_allocate(a, 12, MiB(1), ALLOC_USE_SLOP, NULL, 0, &x), 0);
    cr_assert_eq(x.offset, 0);
    cr_assert_eq(alloc_allocate(a, 12, 4096, ALLOC_USE_SLOP, NULL, 0, &x), -ENOSPC);
    alloc_sync_done(a, 12);
    cr_assert_eq(alloc_allocate(a, 13, MiB(1), ALLOC_USE_SLOP, NULL, 0, &x), 0);
    cr_assert_eq(x.offset, MiB(1));
    cr_assert(alloc_check(a));
    alloc_free(a);
    free(b.buf);
}

Test(alloc, checkpoint_splits_extents_longer_than_40_bits_of_sectors)
{
    const uint64_t max = ((1ull << 40) - 1) << 9 & ~4095ull; /* largest unit-aligned record */
    struct bytes b = { 0 };
    rec(&b, SPACE_REC_TXG, 0, 0, 1);
    rec(&b, SPACE_REC_ALLOC, 0, max, 0);
    rec(&b, SPACE_REC_ALLOC, 0, MiB(5), max);
    struct alloc *a = new_one_vdev(1ull << 50, 12, 40);
    cr_assert_eq(alloc_load_records(a, b.buf, b.len, 1), 0);
    struct ext_list l = { 0 };
    ext_collect(a, &l);
    cr_assert_eq(l.n, 1);
    cr_assert_eq(l.e[0].len, max + MiB(5));

    uint8_t *ck;
    size_t n;
    cr_assert_eq(alloc_encode_checkpoint(a, 2, &ck, &n), 0);
    cr_assert_eq(n, 3 * 16);
    cr_assert_eq(le64_get(ck + 8), 2);
    uint64_t pos = 0;
    for (size_t i = 16; i < n; i += 16) {
        uint64_t w0 = le64_get(ck + i);
        cr_assert_eq(w0 >> 62, SPACE_REC_ALLOC);
        cr_assert_eq(le64_get(ck + i + 8), pos);
        cr_assert_eq(le64_get(ck + i + 8) % 4096, 0);
        pos += (w0 & ((1ull << 40) - 1)) << 9;
    }
    cr_assert_eq(pos, max + MiB(5));

    struct alloc *c = new_one_vdev(1ull << 50, 12, 40);
    cr_assert_eq(alloc_load_records(c, ck, n, 2), 0);
    struct ext_list lc = { 0 };
    ext_collect(c, &lc);
    ext_expect_equal(&l, &lc, 0);
    free(ck);
    free(l.e);
    free(lc.e);
    free(b.buf);
    alloc_free(a);
    alloc_free(c);
}

static int
stop_after_two(void *arg, uint32_t vdev, uint64_t off, uint64_t len)
{
    (void)vdev;
    (void)off;
    (void)len;
    return ++*(int *)arg == 2 ? 7 : 0;
}

Test(alloc, walk_allocated_is_ordered_and_stops_early)
{
    struct alloc *a = alloc_new();
    cr_assert_eq(alloc_vdev_add(a, 0, MiB(64), 12, 22), 0);
    cr_assert_eq(alloc_vdev_add(a, 1, MiB(64), 9, 22), 0);
    struct dva d[40];
    for (int i = 0; i < 40; i++)
        cr_assert_eq(alloc_allocate(a, 1, MiB(2), 0, NULL, 0, &d[i]), 0);
    sync_txg(a, 1);
    for (int i = 0; i < 40; i += 3)
        alloc_free_deferred(a, 2, &d[i]);
    struct ext_list l = { 0 };
    ext_collect(a, &l);
    uint64_t total = 0;
    for (size_t i = 0; i < l.n; i++) {
        total += l.e[i].len;
        if (i > 0 && l.e[i].vdev == l.e[i - 1].vdev)
            cr_assert_gt(l.e[i].off, l.e[i - 1].off + l.e[i - 1].len); /* maximal, ordered */
        if (i > 0)
            cr_assert_geq(l.e[i].vdev, l.e[i - 1].vdev);
    }
    struct alloc_stats st;
    alloc_get_stats(a, &st);
    cr_assert_eq(total, st.allocated);
    cr_assert_eq(st.allocated, (40 - 14) * MiB(2));
    int calls = 0;
    cr_assert_eq(alloc_walk_allocated(a, stop_after_two, &calls), 7);
    cr_assert_eq(calls, 2);
    free(l.e);
    alloc_free(a);
}

/* ---- threads ---- */

static void *
thread_worker(void *arg)
{
    struct alloc *a = arg;
    struct dva d[16];
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 16; i++)
            if (alloc_allocate(a, 1, 4096 * (uint64_t)(1 + i), 0, NULL, 0, &d[i]) != 0)
                return (void *)1;
        for (int i = 0; i < 16; i++)
            alloc_free_immediate(a, 1, &d[i]);
    }
    return NULL;
}

Test(alloc, concurrent_callers_keep_the_books_straight)
{
    struct alloc *a = alloc_new();
    cr_assert_eq(alloc_vdev_add(a, 0, MiB(128), 12, 24), 0);
    cr_assert_eq(alloc_vdev_add(a, 1, MiB(128), 12, 24), 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, thread_worker, a), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        cr_assert_eq(pthread_join(t[i], &r), 0);
        cr_assert_null(r);
    }
    struct alloc_stats st;
    alloc_get_stats(a, &st);
    cr_assert_eq(st.allocated, 0);
    cr_assert(alloc_check(a));
    uint8_t *j;
    size_t n;
    cr_assert_eq(alloc_take_journal(a, 1, &j, &n), 0);
    cr_assert_eq(n, 16 * (1 + 4 * 200 * 16 * 2));
    free(j);
    alloc_free(a);
}

/* ---- oracle ---- */

#define SIM_NVDEV  2
#define SIM_SECTOR 512u
#define ST_FREE    0u
#define ST_ALLOC   UINT32_MAX /* else: freed in txg (value - 1), not yet released */

static const struct {
    uint64_t asize;
    unsigned ashift, ms_shift;
} sim_vdevs[SIM_NVDEV] = { { MiB(48), 9, 20 }, { MiB(32), 12, 21 } };

struct live {
    struct dva d;
    uint64_t birth;
};

struct pending {
    struct dva d;
    uint64_t txg;
};

struct sim {
    struct alloc *a;
    uint64_t seed, rng;
    uint64_t txg; /* last synced */
    uint32_t *st[SIM_NVDEV];
    struct live *live;
    size_t nlive, live_cap;
    struct pending *pend;
    size_t npend, pend_cap;
    uint64_t allocated, deferred, size;
    struct bytes log; /* journals taken since the start or the last checkpoint */
    unsigned enospc;
};

static uint64_t
sim_rand(struct sim *s, uint64_t n)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (z ^ (z >> 31)) % n;
}

static struct alloc *
sim_new_alloc(void)
{
    struct alloc *a = alloc_new();
    cr_assert_not_null(a);
    for (uint32_t v = 0; v < SIM_NVDEV; v++)
        cr_assert_eq(
            alloc_vdev_add(a, v, sim_vdevs[v].asize, sim_vdevs[v].ashift, sim_vdevs[v].ms_shift),
            0);
    return a;
}

static void
sim_init(struct sim *s, uint64_t seed)
{
    memset(s, 0, sizeof(*s));
    s->seed = seed;
    s->rng = seed;
    s->a = sim_new_alloc();
    for (int v = 0; v < SIM_NVDEV; v++) {
        s->st[v] = calloc(sim_vdevs[v].asize / SIM_SECTOR, sizeof(uint32_t));
        cr_assert_not_null(s->st[v]);
        s->size += sim_vdevs[v].asize;
    }
    s->live_cap = s->pend_cap = 1 << 16;
    s->live = malloc(s->live_cap * sizeof(*s->live));
    s->pend = malloc(s->pend_cap * sizeof(*s->pend));
    cr_assert(s->live && s->pend);
    s->txg = 3;
}

static void
sim_release(struct sim *s)
{
    alloc_free(s->a);
    for (int v = 0; v < SIM_NVDEV; v++)
        free(s->st[v]);
    free(s->live);
    free(s->pend);
    free(s->log.buf);
}

static void
sim_set(struct sim *s, const struct dva *d, uint32_t state)
{
    uint64_t first = d->offset / SIM_SECTOR, n = d->asize_sectors;
    for (uint64_t i = 0; i < n; i++)
        s->st[d->vdev][first + i] = state;
}

static void
sim_allocate(struct sim *s, uint64_t txg)
{
    uint64_t size = SIM_SECTOR * (1 + sim_rand(s, sim_rand(s, 8) == 0 ? 2048 : 256));
    unsigned flags = sim_rand(s, 10) == 0 ? ALLOC_USE_SLOP : 0;
    uint32_t avoid = (uint32_t)sim_rand(s, SIM_NVDEV);
    size_t navoid = sim_rand(s, 5) == 0 ? 1 : 0;
    struct dva d;
    int rc = alloc_allocate(s->a, txg, size, flags, &avoid, navoid, &d);
    if (rc == -ENOSPC) {
        s->enospc++;
        return;
    }
    cr_assert_eq(rc, 0, "seed %llu txg %llu: allocate: %d", (unsigned long long)s->seed,
                 (unsigned long long)txg, rc);
    cr_assert_lt(d.vdev, SIM_NVDEV);
    uint64_t unit = 1ull << sim_vdevs[d.vdev].ashift;
    uint64_t want = (size + unit - 1) / unit * unit;
    uint64_t len = dva_asize(&d);
    cr_assert_eq(len, want, "seed %llu: size %llu rounded to %llu", (unsigned long long)s->seed,
                 (unsigned long long)size, (unsigned long long)len);
    cr_assert_eq(d.offset % unit, 0);
    cr_assert_leq(d.offset + len, sim_vdevs[d.vdev].asize);
    uint64_t first = d.offset / SIM_SECTOR;
    for (uint64_t i = 0; i < d.asize_sectors; i++) {
        uint32_t st = s->st[d.vdev][first + i];
        cr_assert_eq(st, ST_FREE,
                     "seed %llu txg %llu: allocation %u:%llu+%llu overlaps sector %llu in state "
                     "%s (freed in txg %u)",
                     (unsigned long long)s->seed, (unsigned long long)txg, d.vdev,
                     (unsigned long long)d.offset, (unsigned long long)len,
                     (unsigned long long)(first + i), st == ST_ALLOC ? "allocated" : "deferred",
                     st - 1);
    }
    sim_set(s, &d, ST_ALLOC);
    s->allocated += len;
    if (!(flags & ALLOC_USE_SLOP))
        cr_assert_leq(s->allocated + s->deferred, s->size - alloc_slop_bytes(s->a),
                      "seed %llu: normal allocation dipped into the slop",
                      (unsigned long long)s->seed);
    cr_assert_lt(s->nlive, s->live_cap);
    s->live[s->nlive++] = (struct live){ d, txg };
}

static void
sim_free(struct sim *s, uint64_t txg)
{
    if (s->nlive == 0)
        return;
    size_t i = sim_rand(s, s->nlive);
    struct live l = s->live[i];
    s->live[i] = s->live[--s->nlive];
    uint64_t len = dva_asize(&l.d);
    s->allocated -= len;
    if (l.birth == txg) { /* as zio_free does */
        alloc_free_immediate(s->a, txg, &l.d);
        sim_set(s, &l.d, ST_FREE);
    } else {
        alloc_free_deferred(s->a, txg, &l.d);
        sim_set(s, &l.d, (uint32_t)txg + 1);
        s->deferred += len;
        cr_assert_lt(s->npend, s->pend_cap);
        s->pend[s->npend++] = (struct pending){ l.d, txg };
    }
}

/* The model's own sync_done: frees of txg T are released by sync_done(T + 2). */
static void
sim_sync_done(struct sim *s, uint64_t txg)
{
    alloc_sync_done(s->a, txg);
    for (size_t i = 0; i < s->npend;) {
        if (s->pend[i].txg + 2 <= txg) {
            sim_set(s, &s->pend[i].d, ST_FREE);
            s->deferred -= dva_asize(&s->pend[i].d);
            s->pend[i] = s->pend[--s->npend];
        } else {
            i++;
        }
    }
}

static void
sim_check_stats(struct sim *s)
{
    struct alloc_stats st;
    alloc_get_stats(s->a, &st);
    cr_assert_eq(st.size, s->size);
    cr_assert_eq(st.allocated, s->allocated, "seed %llu txg %llu: allocated %llu want %llu",
                 (unsigned long long)s->seed, (unsigned long long)s->txg,
                 (unsigned long long)st.allocated, (unsigned long long)s->allocated);
    cr_assert_eq(st.deferred, s->deferred, "seed %llu txg %llu: deferred %llu want %llu",
                 (unsigned long long)s->seed, (unsigned long long)s->txg,
                 (unsigned long long)st.deferred, (unsigned long long)s->deferred);
    cr_assert_eq(st.free, s->size - s->allocated);
    cr_assert_leq(st.fragmentation, 100);
    cr_assert(alloc_check(s->a), "seed %llu txg %llu: alloc_check", (unsigned long long)s->seed,
              (unsigned long long)s->txg);
}

/* The model's allocated set as maximal extents (freeing/deferred count as free). */
static void
sim_extents(struct sim *s, struct ext_list *l)
{
    l->n = 0;
    for (uint32_t v = 0; v < SIM_NVDEV; v++) {
        uint64_t n = sim_vdevs[v].asize / SIM_SECTOR;
        for (uint64_t i = 0; i < n;) {
            if (s->st[v][i] != ST_ALLOC) {
                i++;
                continue;
            }
            uint64_t j = i;
            while (j < n && s->st[v][j] == ST_ALLOC)
                j++;
            ext_collect_fn(l, v, i * SIM_SECTOR, (j - i) * SIM_SECTOR);
            i = j;
        }
    }
}

static void
sim_compare_walk(struct sim *s)
{
    struct ext_list got = { 0 }, want = { 0 };
    ext_collect(s->a, &got);
    sim_extents(s, &want);
    ext_expect_equal(&got, &want, s->seed);
    free(got.e);
    free(want.e);
}

/* Runs ntxg txgs of random work; phases alternate between filling and draining the pool. */
static void
sim_run(struct sim *s, unsigned ntxg)
{
    for (unsigned k = 0; k < ntxg; k++) {
        uint64_t txg = ++s->txg;
        unsigned alloc_pct = (txg / 25) % 2 == 0 ? 75 : 35;
        unsigned nops = 5 + (unsigned)sim_rand(s, 60);
        for (unsigned op = 0; op < nops; op++) {
            if (sim_rand(s, 100) < alloc_pct)
                sim_allocate(s, txg);
            else
                sim_free(s, txg);
            if (sim_rand(s, 40) == 0)
                take_into(s->a, txg, &s->log); /* an extra sync pass */
        }
        take_into(s->a, txg, &s->log);
        sim_sync_done(s, txg);
        sim_check_stats(s);
        if (k % 40 == 0)
            sim_compare_walk(s);
    }
    sim_compare_walk(s);
}

Test(alloc, oracle_never_overlaps_allocated_or_unreleased_space)
{
    for (uint64_t seed = 1; seed <= 4; seed++) {
        cr_log_info("alloc oracle seed %llu", (unsigned long long)seed);
        struct sim s;
        sim_init(&s, seed);
        sim_run(&s, 250);
        cr_assert_gt(s.enospc, 0, "seed %llu: the run never filled the pool",
                     (unsigned long long)seed);
        sim_release(&s);
    }
}

/* Replays buffers into a fresh allocator and checks it matches the live one, then and after
 * two more sync_done calls on both (deferred frees released at the same time). */
static void
sim_expect_replay_equal(struct sim *s, const uint8_t *ck, size_t cklen)
{
    struct alloc *b = sim_new_alloc();
    if (ck != NULL)
        cr_assert_eq(alloc_load_records(b, ck, cklen, s->txg), 0, "seed %llu: load checkpoint",
                     (unsigned long long)s->seed);
    cr_assert_eq(alloc_load_records(b, s->log.buf, s->log.len, s->txg), 0,
                 "seed %llu: load journal", (unsigned long long)s->seed);
    cr_assert(alloc_check(b));
    for (int round = 0; round < 3; round++) {
        struct ext_list la = { 0 }, lb = { 0 };
        ext_collect(s->a, &la);
        ext_collect(b, &lb);
        ext_expect_equal(&la, &lb, s->seed);
        free(la.e);
        free(lb.e);
        struct alloc_stats sa, sb;
        alloc_get_stats(s->a, &sa);
        alloc_get_stats(b, &sb);
        cr_assert_eq(sa.allocated, sb.allocated, "seed %llu", (unsigned long long)s->seed);
        cr_assert_eq(sa.deferred, sb.deferred, "seed %llu round %d: deferred %llu vs %llu",
                     (unsigned long long)s->seed, round, (unsigned long long)sa.deferred,
                     (unsigned long long)sb.deferred);
        cr_assert_eq(sa.free, sb.free);
        s->txg++;
        sim_sync_done(s, s->txg);
        alloc_sync_done(b, s->txg);
    }
    cr_assert_eq(s->deferred, 0);
    cr_assert(alloc_check(b));
    alloc_free(b);
}

Test(alloc, journal_replay_reproduces_allocated_set)
{
    for (uint64_t seed = 11; seed <= 13; seed++) {
        cr_log_info("alloc journal replay seed %llu", (unsigned long long)seed);
        struct sim s;
        sim_init(&s, seed);
        sim_run(&s, 150);
        sim_expect_replay_equal(&s, NULL, 0);
        sim_release(&s);
    }
}

Test(alloc, checkpoint_plus_later_journals_replays_live_state)
{
    for (uint64_t seed = 21; seed <= 23; seed++) {
        cr_log_info("alloc checkpoint replay seed %llu", (unsigned long long)seed);
        struct sim s;
        sim_init(&s, seed);
        sim_run(&s, 80);
        uint8_t *ck;
        size_t cklen;
        cr_assert_eq(alloc_encode_checkpoint(s.a, s.txg, &ck, &cklen), 0);
        cr_assert_eq(cklen % 16, 0);
        cr_assert_eq(le64_get(ck) >> 62, SPACE_REC_TXG);
        cr_assert_eq(le64_get(ck + 8), s.txg);
        s.log.len = 0;
        sim_run(&s, 60);
        sim_expect_replay_equal(&s, ck, cklen);
        free(ck);
        sim_release(&s);
    }
}
