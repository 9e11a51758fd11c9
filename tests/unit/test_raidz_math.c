/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for core/raidz_math: parity generation against a byte-at-a-time GF(2^8) oracle for
 * every width 2..16 and parity 1..3 with mixed column lengths, reconstruction of every
 * combination of up to nparity missing columns, guard bytes past every column, argument errors,
 * wide stripes, and concurrent first use of the table cache. Seeds come from LCPFS_TEST_SEED
 * (default below) and are printed. LCPFS_RAIDZ_BENCH=1 enables the throughput test.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "core/raidz_math.h"

#define MAX_COLS    (RAIDZ_MAX_PARITY + RAIDZ_MAX_DATA)
#define GUARD_BYTES 24

static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t
base_seed(const char *test)
{
    const char *env = getenv("LCPFS_TEST_SEED");
    uint64_t seed = env != NULL ? strtoull(env, NULL, 0) : 0x5eed0f7a1d2c3b4aull;
    if (seed == 0)
        seed = 1;
    fprintf(stderr, "raidz_math.%s: seed 0x%llx\n", test, (unsigned long long)seed);
    return seed;
}

static uint64_t
mix_seed(uint64_t base, unsigned a, unsigned b, unsigned c)
{
    uint64_t s = base ^ ((uint64_t)a << 40) ^ ((uint64_t)b << 20) ^ c;
    s = (s ^ (s >> 31)) * 0x9e3779b97f4a7c15ull;
    return s != 0 ? s : 1;
}

/* The oracle: multiply by 2 in GF(2^8) mod x^8+x^4+x^3+x^2+1. */
static uint8_t
ref_mul2(uint8_t x)
{
    return (uint8_t)((x << 1) ^ ((x & 0x80) ? 0x1d : 0));
}

/* A stripe under test: cols is what the code under test sees; want is the expected content of
 * each whole buffer (column bytes plus GUARD_BYTES guard bytes after the column's length). */
struct stripe {
    unsigned nparity, ndata, width;
    uint8_t *cols[MAX_COLS];
    uint8_t *want[MAX_COLS];
    size_t lens[MAX_COLS];
    size_t maxlen;
};

static void
fill_random(uint8_t *p, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rnd(s) >> 24);
}

/* Fills want[0..nparity) with the oracle's P, Q, R over [0, maxlen), by Horner per byte. */
static void
ref_parity(struct stripe *st)
{
    for (size_t b = 0; b < st->maxlen; b++) {
        uint8_t p = 0, q = 0, r = 0;
        for (unsigned i = 0; i < st->ndata; i++) {
            unsigned c = st->nparity + i;
            uint8_t d = b < st->lens[c] ? st->want[c][b] : 0;
            p ^= d;
            q = ref_mul2(q) ^ d;
            r = ref_mul2(ref_mul2(r)) ^ d;
        }
        const uint8_t v[3] = { p, q, r };
        for (unsigned j = 0; j < st->nparity; j++)
            st->want[j][b] = v[j];
    }
}

/* A stripe with random data of the given data lengths, random guard bytes, garbage parity. */
static void
stripe_init(struct stripe *st, unsigned nparity, unsigned ndata, const size_t *dlens, uint64_t *s)
{
    memset(st, 0, sizeof(*st));
    st->nparity = nparity;
    st->ndata = ndata;
    st->width = nparity + ndata;
    for (unsigned i = 0; i < ndata; i++) {
        st->lens[nparity + i] = dlens[i];
        if (dlens[i] > st->maxlen)
            st->maxlen = dlens[i];
    }
    for (unsigned p = 0; p < nparity; p++)
        st->lens[p] = st->maxlen;
    for (unsigned c = 0; c < st->width; c++) {
        size_t cap = st->lens[c] + GUARD_BYTES;
        st->cols[c] = malloc(cap);
        st->want[c] = malloc(cap);
        cr_assert(st->cols[c] != NULL && st->want[c] != NULL);
        fill_random(st->want[c], cap, s);
        memcpy(st->cols[c], st->want[c], cap);
    }
    ref_parity(st);
}

static void
stripe_release(struct stripe *st)
{
    for (unsigned c = 0; c < st->width; c++) {
        free(st->cols[c]);
        free(st->want[c]);
    }
}

/* Asserts every buffer (column and guard) equals its expected content. */
static void
stripe_check(const struct stripe *st, const char *what, uint64_t seed)
{
    for (unsigned c = 0; c < st->width; c++) {
        size_t cap = st->lens[c] + GUARD_BYTES;
        if (memcmp(st->cols[c], st->want[c], cap) == 0)
            continue;
        size_t off = 0;
        while (st->cols[c][off] == st->want[c][off])
            off++;
        cr_assert_fail("%s: nparity %u ndata %u seed 0x%llx: column %u (len %zu) differs at byte "
                       "%zu%s: got 0x%02x want 0x%02x",
                       what, st->nparity, st->ndata, (unsigned long long)seed, c, st->lens[c], off,
                       off >= st->lens[c] ? " (guard)" : "", st->cols[c][off], st->want[c][off]);
    }
}

static unsigned long n_generated, n_reconstructed; /* per test process, for the log */

/* Scribbles the missing columns, reconstructs, and checks every byte of every buffer. */
static void
check_reconstruct(struct stripe *st, const unsigned *missing, unsigned nmissing, uint64_t *s,
                  uint64_t seed)
{
    for (unsigned m = 0; m < nmissing; m++)
        fill_random(st->cols[missing[m]], st->lens[missing[m]], s);
    int rc = raidz_reconstruct(st->nparity, st->ndata, st->cols, st->lens, missing, nmissing);
    char what[96];
    int n = snprintf(what, sizeof(what), "reconstruct missing");
    for (unsigned m = 0; m < nmissing; m++)
        n += snprintf(what + n, sizeof(what) - (size_t)n, " %u", missing[m]);
    cr_assert_eq(rc, 0, "%s: nparity %u ndata %u: rc %d", what, st->nparity, st->ndata, rc);
    stripe_check(st, what, seed);
    n_reconstructed++;
}

/* Generates parity, compares with the oracle, then reconstructs every set of 1..nparity missing
 * columns (given in ascending or descending order). */
static void
check_stripe_exhaustive(unsigned nparity, unsigned ndata, const size_t *dlens, uint64_t seed)
{
    uint64_t s = seed;
    struct stripe st;
    stripe_init(&st, nparity, ndata, dlens, &s);
    cr_assert_eq(raidz_generate(nparity, ndata, st.cols, st.lens), 0);
    stripe_check(&st, "generate", seed);
    n_generated++;
    for (uint32_t mask = 1; mask < (1u << st.width); mask++) {
        unsigned nm = (unsigned)__builtin_popcount(mask);
        if (nm > nparity)
            continue;
        unsigned missing[RAIDZ_MAX_PARITY], k = 0;
        for (unsigned c = 0; c < st.width; c++) {
            if (mask & (1u << c))
                missing[k++] = c;
        }
        if (((mask * 2654435761u) >> 31) != 0) { /* give about half the sets in descending order */
            for (unsigned i = 0; i < nm / 2; i++) {
                unsigned t = missing[i];
                missing[i] = missing[nm - 1 - i];
                missing[nm - 1 - i] = t;
            }
        }
        check_reconstruct(&st, missing, nm, &s, seed);
    }
    stripe_release(&st);
}

enum len_shape {
    SHAPE_EQUAL,    /* every data column q sectors */
    SHAPE_BIGSMALL, /* the first nbig data columns q+1 sectors, the rest q (q may be 0) */
    SHAPE_SCATTER,  /* random columns q+1 sectors, the rest q */
    SHAPE_ODD,      /* arbitrary lengths 0..3*sector, at least one nonzero */
};

static void
make_lens(enum len_shape shape, unsigned ndata, size_t sector, uint64_t *s, size_t *dlens)
{
    size_t q = rnd(s) % 3;
    unsigned nbig = (unsigned)(rnd(s) % (ndata + 1));
    if (q == 0 && nbig == 0)
        nbig = 1;
    for (unsigned i = 0; i < ndata; i++) {
        switch (shape) {
        case SHAPE_EQUAL:
            dlens[i] = (q + 1) * sector;
            break;
        case SHAPE_BIGSMALL:
            dlens[i] = (i < nbig ? q + 1 : q) * sector;
            break;
        case SHAPE_SCATTER:
            dlens[i] = (rnd(s) % 2 ? q + 1 : q) * sector;
            break;
        case SHAPE_ODD:
            dlens[i] = rnd(s) % (3 * sector + 1);
            break;
        }
    }
    if (shape == SHAPE_SCATTER || shape == SHAPE_ODD)
        dlens[rnd(s) % ndata] = 3 * sector - (shape == SHAPE_ODD ? 1 : 0);
}

static void
run_all_widths(const char *name, size_t sector, const enum len_shape *shapes, unsigned nshapes,
               unsigned runs)
{
    uint64_t base = base_seed(name);
    for (unsigned width = 2; width <= 16; width++) {
        for (unsigned nparity = 1; nparity <= 3 && nparity < width; nparity++) {
            unsigned ndata = width - nparity;
            for (unsigned sh = 0; sh < nshapes; sh++) {
                for (unsigned run = 0; run < runs; run++) {
                    uint64_t seed = mix_seed(base, width * 4 + nparity, shapes[sh], run);
                    uint64_t s = seed;
                    size_t dlens[16];
                    make_lens(shapes[sh], ndata, sector, &s, dlens);
                    check_stripe_exhaustive(nparity, ndata, dlens, seed);
                }
            }
        }
    }
    fprintf(stderr, "raidz_math.%s: %lu stripes generated, %lu reconstructions checked\n", name,
            n_generated, n_reconstructed);
}

Test(raidz_math, generate_matches_known_answers)
{
    /* D0 = 0x80, D1 = 0x01: P = 0x81, Q = 2*0x80 ^ 1 = 0x1c, R = 4*0x80 ^ 1 = 0x3b. */
    uint8_t p[2], q[2], r[2], d0[2] = { 0x80, 0x02 }, d1[1] = { 0x01 };
    uint8_t *cols[5] = { p, q, r, d0, d1 };
    size_t lens[5] = { 2, 2, 2, 2, 1 };
    cr_assert_eq(raidz_generate(3, 2, cols, lens), 0);
    /* byte 1: D0 = 0x02, D1 short (reads as 0): P = 2, Q = 4, R = 8 */
    uint8_t wp[2] = { 0x81, 0x02 }, wq[2] = { 0x1c, 0x04 }, wr[2] = { 0x3b, 0x08 };
    cr_assert_arr_eq(p, wp, 2);
    cr_assert_arr_eq(q, wq, 2);
    cr_assert_arr_eq(r, wr, 2);
}

Test(raidz_math, all_widths_64_byte_sectors_every_missing_set)
{
    static const enum len_shape shapes[] = { SHAPE_EQUAL, SHAPE_BIGSMALL, SHAPE_SCATTER };
    run_all_widths("all_widths_64_byte_sectors_every_missing_set", 64, shapes, 3, 2);
}

Test(raidz_math, all_widths_odd_lengths_every_missing_set)
{
    static const enum len_shape shapes[] = { SHAPE_ODD };
    run_all_widths("all_widths_odd_lengths_every_missing_set", 41, shapes, 1, 3);
}

Test(raidz_math, all_widths_4k_sectors_every_missing_set)
{
    static const enum len_shape shapes[] = { SHAPE_BIGSMALL };
    run_all_widths("all_widths_4k_sectors_every_missing_set", 4096, shapes, 1, 1);
}

/* Wide stripes: random missing sets, including the first and last columns of each kind. */
static void
check_wide(unsigned nparity, unsigned ndata, size_t sector, unsigned nsets, uint64_t seed)
{
    uint64_t s = seed;
    size_t *dlens = calloc(ndata, sizeof(*dlens));
    cr_assert_not_null(dlens);
    unsigned nbig = 1 + (unsigned)(rnd(&s) % ndata);
    for (unsigned i = 0; i < ndata; i++)
        dlens[i] = (i < nbig ? 2 : 1) * sector;
    struct stripe st;
    stripe_init(&st, nparity, ndata, dlens, &s);
    free(dlens);
    cr_assert_eq(raidz_generate(nparity, ndata, st.cols, st.lens), 0);
    stripe_check(&st, "generate", seed);
    n_generated++;
    unsigned w = st.width;
    const unsigned fixed[][3] = { { 0, 1, 2 },
                                  { nparity, w - 1, w - 2 },
                                  { 0, nparity, w - 1 },
                                  { nparity + nbig - 1, nparity + nbig % ndata, 1 } };
    for (unsigned f = 0; f < 4; f++) {
        unsigned missing[3], nm = 0;
        for (unsigned i = 0; i < nparity; i++) {
            unsigned c = fixed[f][i] % w;
            bool dup = false;
            for (unsigned j = 0; j < nm; j++)
                dup |= missing[j] == c;
            if (!dup)
                missing[nm++] = c;
        }
        check_reconstruct(&st, missing, nm, &s, seed);
    }
    for (unsigned set = 0; set < nsets; set++) {
        unsigned nm = 1 + (unsigned)(rnd(&s) % nparity), missing[3];
        for (unsigned i = 0; i < nm; i++) {
            bool dup;
            do {
                missing[i] = (unsigned)(rnd(&s) % w);
                dup = false;
                for (unsigned j = 0; j < i; j++)
                    dup |= missing[j] == missing[i];
            } while (dup);
        }
        check_reconstruct(&st, missing, nm, &s, seed);
    }
    stripe_release(&st);
}

Test(raidz_math, wide_stripe_60_plus_3)
{
    uint64_t base = base_seed("wide_stripe_60_plus_3");
    check_wide(3, 60, 512, 40, mix_seed(base, 3, 60, 0));
    check_wide(2, 60, 100, 40, mix_seed(base, 2, 60, 0));
    cr_assert_eq(n_reconstructed, 2 * (4 + 40));
}

Test(raidz_math, widest_stripe_max_data)
{
    uint64_t base = base_seed("widest_stripe_max_data");
    for (unsigned nparity = 1; nparity <= 3; nparity++)
        check_wide(nparity, RAIDZ_MAX_DATA, 64, 20, mix_seed(base, nparity, RAIDZ_MAX_DATA, 1));
    cr_assert_eq(n_reconstructed, 3 * (4 + 20));
}

Test(raidz_math, rejects_bad_arguments)
{
    uint8_t b[6][8] = { { 0 } };
    uint8_t *cols[6] = { b[0], b[1], b[2], b[3], b[4], b[5] };
    size_t lens[6] = { 8, 8, 8, 8, 8, 4 };
    /* raidz2, 4 data columns: P Q D0 D1 D2 D3 */
    cr_assert_eq(raidz_generate(2, 4, cols, lens), 0);
    cr_assert_eq(raidz_generate(0, 4, cols, lens), -EINVAL);
    cr_assert_eq(raidz_generate(4, 2, cols, lens), -EINVAL);
    cr_assert_eq(raidz_generate(2, 0, cols, lens), -EINVAL);
    cr_assert_eq(raidz_generate(1, RAIDZ_MAX_DATA + 1, cols, lens), -EINVAL);
    cr_assert_eq(raidz_generate(2, 4, NULL, lens), -EINVAL);
    cr_assert_eq(raidz_generate(2, 4, cols, NULL), -EINVAL);

    unsigned m3[3] = { 0, 2, 3 };
    cr_assert_eq(raidz_reconstruct(2, 4, cols, lens, m3, 3), -EINVAL, "nmissing > nparity");
    unsigned oob[2] = { 1, 6 };
    cr_assert_eq(raidz_reconstruct(2, 4, cols, lens, oob, 2), -EINVAL, "index out of range");
    unsigned dup[2] = { 3, 3 };
    cr_assert_eq(raidz_reconstruct(2, 4, cols, lens, dup, 2), -EINVAL, "duplicate index");
    cr_assert_eq(raidz_reconstruct(2, 4, cols, lens, NULL, 1), -EINVAL);
    cr_assert_eq(raidz_reconstruct(2, 4, cols, lens, NULL, 0), 0, "nothing missing is a no-op");

    /* parity must be exactly as long as the longest data column */
    size_t bad_p[6] = { 8, 7, 8, 8, 8, 4 };
    cr_assert_eq(raidz_generate(2, 4, cols, bad_p), -EINVAL);
    unsigned one[1] = { 2 };
    cr_assert_eq(raidz_reconstruct(2, 4, cols, bad_p, one, 1), -EINVAL);
    size_t long_p[6] = { 8, 8, 5, 6, 6, 4 }; /* longest data column is 6 */
    cr_assert_eq(raidz_generate(2, 4, cols, long_p), -EINVAL);
    /* a NULL column of nonzero length */
    uint8_t *ncols[6] = { b[0], b[1], b[2], NULL, b[4], b[5] };
    cr_assert_eq(raidz_generate(2, 4, ncols, lens), -EINVAL);
    cr_assert_eq(raidz_reconstruct(2, 4, ncols, lens, one, 1), -EINVAL);
}

Test(raidz_math, empty_columns)
{
    /* All data empty: nothing to do, NULL columns allowed. */
    uint8_t *cols[4] = { NULL, NULL, NULL, NULL };
    size_t lens[4] = { 0, 0, 0, 0 };
    cr_assert_eq(raidz_generate(2, 2, cols, lens), 0);
    unsigned m[2] = { 0, 3 };
    cr_assert_eq(raidz_reconstruct(2, 2, cols, lens, m, 2), 0);

    /* One empty data column among others, and it missing along with a data column. */
    uint64_t s = 0x1234567;
    size_t dlens[3] = { 100, 0, 37 };
    struct stripe st;
    stripe_init(&st, 2, 3, dlens, &s);
    cr_assert_eq(raidz_generate(2, 3, st.cols, st.lens), 0);
    stripe_check(&st, "generate", 0x1234567);
    unsigned m1[2] = { 3, 2 }, m2[1] = { 3 }, m3[2] = { 3, 4 };
    check_reconstruct(&st, m1, 2, &s, 0x1234567);
    check_reconstruct(&st, m2, 1, &s, 0x1234567);
    check_reconstruct(&st, m3, 2, &s, 0x1234567);
    stripe_release(&st);
}

struct race_arg {
    struct stripe *st;
    int rc;
};

static void *
race_generate(void *p)
{
    struct race_arg *a = p;
    a->rc = 0;
    for (int i = 0; i < 20 && a->rc == 0; i++)
        a->rc = raidz_generate(a->st->nparity, a->st->ndata, a->st->cols, a->st->lens);
    return NULL;
}

Test(raidz_math, concurrent_first_use_of_table_cache)
{
    uint64_t base = base_seed("concurrent_first_use_of_table_cache");
    enum { NTHREADS = 4 };
    struct stripe st[NTHREADS];
    struct race_arg arg[NTHREADS];
    pthread_t th[NTHREADS];
    size_t dlens[37];
    for (unsigned i = 0; i < 37; i++)
        dlens[i] = i < 5 ? 1024 : 960;
    for (unsigned t = 0; t < NTHREADS; t++) {
        uint64_t s = mix_seed(base, t, 37, 2);
        stripe_init(&st[t], 3, 37, dlens, &s);
        arg[t].st = &st[t];
    }
    for (unsigned t = 0; t < NTHREADS; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, race_generate, &arg[t]), 0);
    for (unsigned t = 0; t < NTHREADS; t++) {
        cr_assert_eq(pthread_join(th[t], NULL), 0);
        cr_assert_eq(arg[t].rc, 0);
        stripe_check(&st[t], "concurrent generate", base);
        stripe_release(&st[t]);
    }
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Throughput of 8+2 with 128 KiB blocks (16 KiB per data column); LCPFS_RAIDZ_BENCH=1 only. */
Test(raidz_math, bench_generate_8_plus_2_128k)
{
    if (getenv("LCPFS_RAIDZ_BENCH") == NULL)
        cr_skip_test("LCPFS_RAIDZ_BENCH not set");
    uint64_t s = 42;
    size_t dlens[8];
    for (unsigned i = 0; i < 8; i++)
        dlens[i] = 16384;
    struct stripe st;
    stripe_init(&st, 2, 8, dlens, &s);
    enum { ITERS = 20000 };
    double t0 = now_s();
    for (int i = 0; i < ITERS; i++)
        cr_assert_eq(raidz_generate(2, 8, st.cols, st.lens), 0);
    double t1 = now_s();
    stripe_check(&st, "bench generate", 42);
    unsigned missing[2] = { 3, 7 };
    for (int i = 0; i < ITERS; i++)
        cr_assert_eq(raidz_reconstruct(2, 8, st.cols, st.lens, missing, 2), 0);
    double t2 = now_s();
    stripe_check(&st, "bench reconstruct", 42);
    double mib = (double)ITERS * 128.0 / 1024.0;
    fprintf(stderr,
            "raidz_math bench 8+2 128 KiB: generate %.0f MiB/s of data (%.2f us/block), "
            "reconstruct 2 data %.0f MiB/s (%.2f us/block)\n",
            mib / (t1 - t0), (t1 - t0) * 1e6 / ITERS, mib / (t2 - t1), (t2 - t1) * 1e6 / ITERS);
    stripe_release(&st);
}
