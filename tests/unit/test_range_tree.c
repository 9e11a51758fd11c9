/* SPDX-License-Identifier: MIT */
/*
 * range_tree unit tests: table cases for coalescing and splitting, and an oracle test that runs
 * random operations against a plain bitmap (one bit per unit) and compares every observable
 * result, calling range_tree_check() after each mutation.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/range_tree.h"

struct seg {
    uint64_t start, len;
};

struct collect {
    struct seg segs[64];
    size_t n;
};

static int
collect_fn(void *arg, uint64_t start, uint64_t len)
{
    struct collect *c = arg;
    cr_assert_lt(c->n, 64);
    c->segs[c->n].start = start;
    c->segs[c->n].len = len;
    c->n++;
    return 0;
}

static void
expect_segs(const struct range_tree *rt, const struct seg *want, size_t n)
{
    struct collect c = { .n = 0 };
    cr_assert_eq(range_tree_walk(rt, collect_fn, &c), 0);
    cr_assert_eq(c.n, n, "segments: got %zu want %zu", c.n, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(c.segs[i].start, want[i].start, "seg %zu start", i);
        cr_assert_eq(c.segs[i].len, want[i].len, "seg %zu len", i);
    }
    cr_assert_eq(range_tree_count(rt), n);
    cr_assert(range_tree_check(rt));
}

Test(range_tree, empty_tree_has_nothing)
{
    struct range_tree *rt = range_tree_new();
    cr_assert_not_null(rt);
    uint64_t out;
    cr_assert_eq(range_tree_space(rt), 0);
    cr_assert_eq(range_tree_count(rt), 0);
    cr_assert_eq(range_tree_max_segment(rt), 0);
    cr_assert_not(range_tree_find_first_fit(rt, 0, 1, 1, &out));
    cr_assert_not(range_tree_intersects(rt, 0, UINT64_MAX));
    cr_assert(range_tree_check(rt));
    range_tree_free(rt);
    range_tree_free(NULL);
}

Test(range_tree, add_coalesces_with_both_neighbours)
{
    struct range_tree *rt = range_tree_new();
    cr_assert_eq(range_tree_add(rt, 100, 10), 0);
    cr_assert_eq(range_tree_add(rt, 130, 10), 0);
    expect_segs(rt, (struct seg[]){ { 100, 10 }, { 130, 10 } }, 2);
    cr_assert_eq(range_tree_add(rt, 110, 5), 0); /* touches left only */
    expect_segs(rt, (struct seg[]){ { 100, 15 }, { 130, 10 } }, 2);
    cr_assert_eq(range_tree_add(rt, 125, 5), 0); /* touches right only */
    expect_segs(rt, (struct seg[]){ { 100, 15 }, { 125, 15 } }, 2);
    cr_assert_eq(range_tree_add(rt, 115, 10), 0); /* bridges both */
    expect_segs(rt, (struct seg[]){ { 100, 40 } }, 1);
    cr_assert_eq(range_tree_space(rt), 40);
    cr_assert_eq(range_tree_max_segment(rt), 40);
    cr_assert_eq(range_tree_add(rt, 0, 50), 0); /* separate, before */
    expect_segs(rt, (struct seg[]){ { 0, 50 }, { 100, 40 } }, 2);
    range_tree_free(rt);
}

Test(range_tree, remove_trims_and_splits)
{
    struct range_tree *rt = range_tree_new();
    cr_assert_eq(range_tree_add(rt, 0, 100), 0);
    cr_assert_eq(range_tree_remove(rt, 0, 10), 0);
    expect_segs(rt, (struct seg[]){ { 10, 90 } }, 1);
    cr_assert_eq(range_tree_remove(rt, 90, 10), 0);
    expect_segs(rt, (struct seg[]){ { 10, 80 } }, 1);
    cr_assert_eq(range_tree_remove(rt, 40, 10), 0);
    expect_segs(rt, (struct seg[]){ { 10, 30 }, { 50, 40 } }, 2);
    cr_assert_eq(range_tree_max_segment(rt), 40);
    cr_assert_eq(range_tree_remove(rt, 10, 30), 0);
    expect_segs(rt, (struct seg[]){ { 50, 40 } }, 1);
    cr_assert_eq(range_tree_space(rt), 40);
    range_tree_free(rt);
}

Test(range_tree, contains_and_intersects_at_edges)
{
    struct range_tree *rt = range_tree_new();
    cr_assert_eq(range_tree_add(rt, 100, 100), 0);
    cr_assert(range_tree_contains(rt, 100, 100));
    cr_assert(range_tree_contains(rt, 150, 50));
    cr_assert_not(range_tree_contains(rt, 150, 51));
    cr_assert_not(range_tree_contains(rt, 99, 2));
    cr_assert(range_tree_intersects(rt, 99, 2));
    cr_assert(range_tree_intersects(rt, 199, 10));
    cr_assert_not(range_tree_intersects(rt, 200, 10));
    cr_assert_not(range_tree_intersects(rt, 0, 100));
    cr_assert(range_tree_intersects(rt, 0, UINT64_MAX));
    range_tree_free(rt);
}

Test(range_tree, first_fit_honours_cursor_and_alignment)
{
    struct range_tree *rt = range_tree_new();
    cr_assert_eq(range_tree_add(rt, 4097, 8191), 0); /* [4097, 12288) */
    cr_assert_eq(range_tree_add(rt, 20000, 100), 0);
    uint64_t out = 0;
    cr_assert(range_tree_find_first_fit(rt, 0, 4096, 4096, &out));
    cr_assert_eq(out, 8192);
    cr_assert_not(range_tree_find_first_fit(rt, 0, 8191, 4096, &out));
    cr_assert(range_tree_find_first_fit(rt, 0, 8191, 1, &out));
    cr_assert_eq(out, 4097);
    cr_assert(range_tree_find_first_fit(rt, 5000, 100, 1, &out)); /* from the cursor */
    cr_assert_eq(out, 5000);
    cr_assert(range_tree_find_first_fit(rt, 12200, 100, 1, &out)); /* cursor segment too short */
    cr_assert_eq(out, 20000);
    cr_assert_not(range_tree_find_first_fit(rt, 20001, 100, 1, &out));
    range_tree_free(rt);
}

Test(range_tree, vacate_moves_everything_and_merges)
{
    struct range_tree *a = range_tree_new(), *b = range_tree_new();
    cr_assert_eq(range_tree_add(a, 0, 10), 0);
    cr_assert_eq(range_tree_add(a, 20, 10), 0);
    cr_assert_eq(range_tree_add(b, 10, 10), 0);
    cr_assert_eq(range_tree_add(b, 40, 10), 0);
    cr_assert_eq(range_tree_vacate_into(a, b), 0);
    cr_assert_eq(range_tree_space(a), 0);
    expect_segs(b, (struct seg[]){ { 0, 30 }, { 40, 10 } }, 2);
    cr_assert_eq(range_tree_vacate_into(b, a), 0); /* into an empty tree */
    expect_segs(a, (struct seg[]){ { 0, 30 }, { 40, 10 } }, 2);
    cr_assert_eq(range_tree_count(b), 0);
    range_tree_clear(a);
    cr_assert_eq(range_tree_space(a), 0);
    cr_assert(range_tree_check(a));
    range_tree_free(a);
    range_tree_free(b);
}

static int
stop_at_second(void *arg, uint64_t start, uint64_t len)
{
    (void)start;
    (void)len;
    int *n = arg;
    return ++*n == 2 ? 42 : 0;
}

Test(range_tree, walk_stops_early_with_callback_value)
{
    struct range_tree *rt = range_tree_new();
    for (uint64_t i = 0; i < 10; i++)
        cr_assert_eq(range_tree_add(rt, i * 10, 5), 0);
    int n = 0;
    cr_assert_eq(range_tree_walk(rt, stop_at_second, &n), 42);
    cr_assert_eq(n, 2);
    range_tree_free(rt);
}

/* ---- oracle ---- */

#define UNIVERSE 2048u

static uint64_t rng_state;

static uint64_t
rng_next(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t
rng_below(uint64_t n)
{
    return rng_next() % n;
}

struct oracle {
    uint8_t bit[UNIVERSE];
    uint64_t base; /* tree offsets are base + unit */
    uint64_t seed;
};

/* Lowest aligned x >= cursor with bit[x..x+len) all set, computed the slow way. */
static bool
oracle_first_fit(const struct oracle *o, uint64_t cursor, uint64_t len, uint64_t align,
                 uint64_t *out)
{
    static uint32_t run[UNIVERSE + 1]; /* run[i] = set bits starting at i */
    run[UNIVERSE] = 0;
    for (size_t i = UNIVERSE; i-- > 0;)
        run[i] = o->bit[i] ? run[i + 1] + 1 : 0;
    for (uint64_t x = cursor; x < UNIVERSE; x++) {
        if (((o->base + x) & (align - 1)) == 0 && run[x] >= len) {
            *out = x;
            return true;
        }
    }
    return false;
}

static void
oracle_compare(const struct oracle *o, const struct range_tree *rt, unsigned step)
{
    uint64_t space = 0, maxrun = 0, run = 0;
    size_t count = 0;
    for (size_t i = 0; i < UNIVERSE; i++) {
        if (o->bit[i]) {
            space++;
            if (run++ == 0)
                count++;
            if (run > maxrun)
                maxrun = run;
        } else {
            run = 0;
        }
    }
    cr_assert(range_tree_check(rt), "seed %llu step %u: check failed", (unsigned long long)o->seed,
              step);
    cr_assert_eq(range_tree_space(rt), space, "seed %llu step %u: space",
                 (unsigned long long)o->seed, step);
    cr_assert_eq(range_tree_count(rt), count, "seed %llu step %u: count",
                 (unsigned long long)o->seed, step);
    cr_assert_eq(range_tree_max_segment(rt), maxrun, "seed %llu step %u: max segment",
                 (unsigned long long)o->seed, step);
}

static void
oracle_run(uint64_t seed, uint64_t base, unsigned steps)
{
    struct oracle *o = calloc(1, sizeof(*o));
    cr_assert_not_null(o);
    o->seed = seed;
    o->base = base;
    rng_state = seed;
    struct range_tree *rt = range_tree_new();
    cr_assert_not_null(rt);

    for (unsigned step = 0; step < steps; step++) {
        unsigned op = (unsigned)rng_below(100);
        uint64_t pos = rng_below(UNIVERSE);
        uint64_t maxlen = 1 + rng_below(rng_below(4) == 0 ? 300 : 24);
        if (op < 35) {
            /* add a run of clear bits starting at pos */
            uint64_t n = 0;
            while (pos + n < UNIVERSE && !o->bit[pos + n] && n < maxlen)
                n++;
            if (n == 0)
                continue;
            cr_assert_eq(range_tree_add(rt, base + pos, n), 0);
            memset(o->bit + pos, 1, n);
        } else if (op < 65) {
            /* remove a run of set bits starting at pos */
            uint64_t n = 0;
            while (pos + n < UNIVERSE && o->bit[pos + n] && n < maxlen)
                n++;
            if (n == 0)
                continue;
            cr_assert_eq(range_tree_remove(rt, base + pos, n), 0);
            memset(o->bit + pos, 0, n);
        } else if (op < 80) {
            uint64_t n = 1 + rng_below(40);
            if (pos + n > UNIVERSE)
                n = UNIVERSE - pos;
            bool all = true, any = false;
            for (uint64_t i = 0; i < n; i++) {
                all = all && o->bit[pos + i];
                any = any || o->bit[pos + i];
            }
            cr_assert_eq(range_tree_contains(rt, base + pos, n), all,
                         "seed %llu step %u: contains(%llu, %llu)", (unsigned long long)seed, step,
                         (unsigned long long)pos, (unsigned long long)n);
            cr_assert_eq(range_tree_intersects(rt, base + pos, n), any,
                         "seed %llu step %u: intersects(%llu, %llu)", (unsigned long long)seed,
                         step, (unsigned long long)pos, (unsigned long long)n);
        } else {
            uint64_t len = 1 + rng_below(rng_below(3) == 0 ? 200 : 16);
            uint64_t align = 1ull << rng_below(6);
            uint64_t want = 0, got = 0;
            bool w = oracle_first_fit(o, pos, len, align, &want);
            bool g = range_tree_find_first_fit(rt, base + pos, len, align, &got);
            cr_assert_eq(g, w, "seed %llu step %u: first_fit(%llu, %llu, %llu) found %d want %d",
                         (unsigned long long)seed, step, (unsigned long long)pos,
                         (unsigned long long)len, (unsigned long long)align, g, w);
            if (w)
                cr_assert_eq(got - base, want,
                             "seed %llu step %u: first_fit(%llu, %llu, %llu) = %llu want %llu",
                             (unsigned long long)seed, step, (unsigned long long)pos,
                             (unsigned long long)len, (unsigned long long)align,
                             (unsigned long long)(got - base), (unsigned long long)want);
        }
        oracle_compare(o, rt, step);
    }
    range_tree_free(rt);
    free(o);
}

Test(range_tree, oracle_matches_bitmap)
{
    for (uint64_t seed = 1; seed <= 8; seed++) {
        cr_log_info("range_tree oracle seed %llu", (unsigned long long)seed);
        oracle_run(seed, 0, 6000);
    }
}

Test(range_tree, oracle_matches_bitmap_at_high_offsets)
{
    /* Offsets near the top of the 64-bit space, aligned so alignment results stay comparable. */
    for (uint64_t seed = 100; seed < 104; seed++) {
        cr_log_info("range_tree oracle seed %llu (high)", (unsigned long long)seed);
        oracle_run(seed, UINT64_MAX - (1ull << 20) + 1, 6000);
    }
}
