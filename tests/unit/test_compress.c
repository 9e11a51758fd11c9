/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for core/compress: round trips over data shapes and sizes, the 12.5 % rule and the
 * zstd early abort, robust decompression of truncated, mismatched and garbage input, names.
 * Output buffers carry a canary tail: the libraries are not ASan-instrumented, so overruns by
 * them are caught by checking the canary instead.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <lz4.h>

#include "common/err.h"
#include "core/compress.h"

#define CANARY_LEN  64
#define CANARY_BYTE 0xc5

static uint64_t
xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

enum shape { SHAPE_RANDOM, SHAPE_ZEROS, SHAPE_TEXT, SHAPE_NIBBLES };
static const char *const shape_names[] = { "random", "zeros", "text", "nibbles" };

/* Fills buf with len bytes of the given shape; NIBBLES is random over 16 symbols (no repeats for
 * lz4 to find, but half the entropy of random bytes for zstd's entropy coder). */
static void
fill(enum shape shape, uint8_t *buf, size_t len, uint64_t seed)
{
    static const char *const words[] = { "pool ",  "vdev ",   "txg ",   "block ",  "pointer ",
                                         "dnode ", "object ", "set ",   "the ",    "a ",
                                         "of ",    "sync\n",  "raidz ", "mirror ", "label " };
    uint64_t s = seed | 1;
    size_t i = 0;

    switch (shape) {
    case SHAPE_RANDOM:
        for (; i < len; i++)
            buf[i] = (uint8_t)xorshift(&s);
        break;
    case SHAPE_ZEROS:
        memset(buf, 0, len);
        break;
    case SHAPE_TEXT:
        while (i < len) {
            const char *w = words[xorshift(&s) % (sizeof(words) / sizeof(words[0]))];
            for (; *w != '\0' && i < len; w++)
                buf[i++] = (uint8_t)*w;
        }
        break;
    case SHAPE_NIBBLES:
        for (; i < len; i++)
            buf[i] = (uint8_t)("0123456789abcdef"[xorshift(&s) & 15]);
        break;
    }
}

/* malloc(len + CANARY_LEN) with the canary tail set. */
static uint8_t *
canary_alloc(size_t len)
{
    uint8_t *p = malloc(len + CANARY_LEN);
    cr_assert_not_null(p);
    memset(p + len, CANARY_BYTE, CANARY_LEN);
    return p;
}

static void
canary_check(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < CANARY_LEN; i++)
        cr_assert_eq(p[len + i], CANARY_BYTE, "write past the end at +%zu", i);
}

static size_t
cap_for(size_t len)
{
    return len - len / 8;
}

/*
 * Compresses src and, when compressed, checks the length rule and the round trip. Returns the
 * compressed length (0 = stored raw).
 */
static ssize_t
round_trip(enum compress_alg alg, int level, const uint8_t *src, size_t len, const char *what)
{
    size_t cap = cap_for(len);
    uint8_t *c = canary_alloc(cap);
    ssize_t n = compress_block(alg, level, src, len, c, cap);
    canary_check(c, cap);
    cr_assert_geq(n, 0, "%s: compress returned %zd", what, n);
    cr_assert_leq((size_t)n, cap, "%s", what);
    if (n > 0) {
        uint8_t *d = canary_alloc(len);
        cr_assert_eq(decompress_block(alg, c, (size_t)n, d, len), 0, "%s", what);
        canary_check(d, len);
        cr_assert_eq(memcmp(d, src, len), 0, "%s: round trip differs", what);
        free(d);
    }
    free(c);
    return n;
}

struct algo {
    enum compress_alg alg;
    int level;
};
static const struct algo algos[] = {
    { COMPRESS_LZ4, 0 },
    { COMPRESS_ZSTD, 1 },
    { COMPRESS_ZSTD, 3 },
    { COMPRESS_ZSTD, 19 },
};
#define NALGOS (sizeof(algos) / sizeof(algos[0]))

Test(compress, round_trips_every_shape_size_and_algorithm)
{
    static const size_t sizes[] = { 512, 4096, 128 << 10, 1 << 20 };
    static const enum shape shapes[] = { SHAPE_RANDOM, SHAPE_ZEROS, SHAPE_TEXT, SHAPE_NIBBLES };

    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        uint8_t *src = malloc(sizes[si]);
        cr_assert_not_null(src);
        for (size_t sh = 0; sh < sizeof(shapes) / sizeof(shapes[0]); sh++) {
            fill(shapes[sh], src, sizes[si], 1000 + si * 10 + sh);
            for (size_t a = 0; a < NALGOS; a++) {
                if (algos[a].level == 19 && sizes[si] > (128u << 10))
                    continue; /* level 19 on 1 MiB is slow and adds nothing here */
                char what[96];
                snprintf(what, sizeof(what), "alg %d level %d %s %zu", algos[a].alg, algos[a].level,
                         shape_names[shapes[sh]], sizes[si]);
                ssize_t n = round_trip(algos[a].alg, algos[a].level, src, sizes[si], what);
                if (shapes[sh] == SHAPE_RANDOM)
                    cr_assert_eq(n, 0, "%s: incompressible data must be stored raw", what);
                if (shapes[sh] == SHAPE_ZEROS || shapes[sh] == SHAPE_TEXT)
                    cr_assert_gt(n, 0, "%s: must compress", what);
                if (shapes[sh] == SHAPE_NIBBLES && algos[a].alg == COMPRESS_ZSTD)
                    cr_assert_gt(n, 0, "%s: zstd entropy-codes nibbles", what);
            }
        }
        free(src);
    }
}

Test(compress, off_always_stores_raw)
{
    uint8_t src[4096], dst[4096];
    fill(SHAPE_ZEROS, src, sizeof(src), 1);
    cr_assert_eq(compress_block(COMPRESS_OFF, 0, src, sizeof(src), dst, cap_for(sizeof(src))), 0);
}

Test(compress, rejects_invalid_algorithm_and_level)
{
    uint8_t src[4096], dst[4096];
    fill(SHAPE_TEXT, src, sizeof(src), 2);
    size_t cap = cap_for(sizeof(src));
    cr_assert_eq(compress_block(COMPRESS_INHERIT, 0, src, sizeof(src), dst, cap), -EINVAL);
    cr_assert_eq(compress_block(COMPRESS_ALG_COUNT, 0, src, sizeof(src), dst, cap), -EINVAL);
    static const int bad_levels[] = { -1, 0, 20, 1000 };
    for (size_t i = 0; i < sizeof(bad_levels) / sizeof(bad_levels[0]); i++)
        cr_assert_eq(compress_block(COMPRESS_ZSTD, bad_levels[i], src, sizeof(src), dst, cap),
                     -EINVAL, "level %d", bad_levels[i]);
}

Test(compress, output_that_does_not_fit_means_store_raw)
{
    uint8_t src[4096], dst[64 + CANARY_LEN];
    fill(SHAPE_TEXT, src, sizeof(src), 3);
    for (size_t a = 0; a < NALGOS; a++) {
        memset(dst + 16, CANARY_BYTE, CANARY_LEN);
        cr_assert_eq(compress_block(algos[a].alg, algos[a].level, src, sizeof(src), dst, 16), 0);
        canary_check(dst, 16);
    }
    /* Empty input cannot save anything. */
    for (size_t a = 0; a < NALGOS; a++)
        cr_assert_eq(compress_block(algos[a].alg, algos[a].level, src, 0, dst, 0), 0);
}

Test(compress, saving_less_than_an_eighth_is_stored_raw)
{
    /* 128 KiB where only ~10 % is compressible: every algorithm saves less than 12.5 %. */
    size_t len = 128 << 10;
    uint8_t *src = malloc(len);
    cr_assert_not_null(src);
    fill(SHAPE_RANDOM, src, len, 4);
    memset(src, 0, len / 10);
    for (size_t a = 0; a < NALGOS; a++)
        cr_assert_eq(round_trip(algos[a].alg, algos[a].level, src, len, "tenth"), 0);
    /* ...while a quarter of zeros saves enough for all of them. */
    memset(src, 0, len / 4);
    for (size_t a = 0; a < NALGOS; a++)
        cr_assert_gt(round_trip(algos[a].alg, algos[a].level, src, len, "quarter"), 0);
    free(src);
}

Test(compress, zstd_early_abort_still_compresses_what_zstd1_can)
{
    /* Nibble data defeats lz4 (checked directly) but not zstd-1, so the early abort must fall
     * through to the requested level rather than store the block raw. */
    size_t len = 256 << 10;
    uint8_t *src = malloc(len), *dst = malloc(len);
    cr_assert_not_null(src);
    cr_assert_not_null(dst);
    fill(SHAPE_NIBBLES, src, len, 5);
    cr_assert_eq(LZ4_compress_default((const char *)src, (char *)dst, (int)len, (int)cap_for(len)),
                 0, "premise: lz4 cannot compress nibbles");
    cr_assert_gt(round_trip(COMPRESS_ZSTD, 3, src, len, "nibbles zstd-3"), 0);
    cr_assert_gt(round_trip(COMPRESS_ZSTD, 19, src, len, "nibbles zstd-19"), 0);
    fill(SHAPE_RANDOM, src, len, 6);
    cr_assert_eq(round_trip(COMPRESS_ZSTD, 19, src, len, "random zstd-19"), 0);
    free(src);
    free(dst);
}

/* Compresses a text block with alg; the caller frees *out. */
static size_t
make_stream(enum compress_alg alg, int level, const uint8_t *src, size_t len, uint8_t **out)
{
    *out = malloc(len);
    cr_assert_not_null(*out);
    ssize_t n = compress_block(alg, level, src, len, *out, cap_for(len));
    cr_assert_gt(n, 0);
    return (size_t)n;
}

Test(compress, decompress_rejects_truncated_input_and_wrong_length)
{
    size_t len = 16384;
    uint8_t *src = malloc(len), *d = canary_alloc(len + 1);
    cr_assert_not_null(src);
    fill(SHAPE_TEXT, src, len, 7);
    for (size_t a = 0; a < NALGOS; a++) {
        uint8_t *c;
        size_t n = make_stream(algos[a].alg, algos[a].level, src, len, &c);
        const size_t truncs[] = { n - 1, n / 2, 1, 0 };
        for (size_t t = 0; t < sizeof(truncs) / sizeof(truncs[0]); t++) {
            /* Exact-size copy so that ASan sees any read past the truncated end. */
            uint8_t *tc = malloc(truncs[t] ? truncs[t] : 1);
            cr_assert_not_null(tc);
            memcpy(tc, c, truncs[t]);
            cr_assert_eq(decompress_block(algos[a].alg, tc, truncs[t], d, len), -ECORRUPT,
                         "alg %d level %d truncated to %zu of %zu", algos[a].alg, algos[a].level,
                         truncs[t], n);
            canary_check(d, len + 1);
            free(tc);
        }
        cr_assert_eq(decompress_block(algos[a].alg, c, n, d, len - 1), -ECORRUPT, "short dst");
        canary_check(d, len + 1);
        cr_assert_eq(decompress_block(algos[a].alg, c, n, d, len + 1), -ECORRUPT, "long dst");
        canary_check(d, len + 1);
        cr_assert_eq(decompress_block(algos[a].alg, c, n, d, len), 0);
        cr_assert_eq(memcmp(d, src, len), 0);
        free(c);
    }
    free(src);
    free(d);
}

Test(compress, decompress_rejects_mismatched_algorithms)
{
    uint8_t src[8192], d[8192];
    fill(SHAPE_TEXT, src, sizeof(src), 8);
    uint8_t *c;
    size_t n = make_stream(COMPRESS_ZSTD, 3, src, sizeof(src), &c);
    int rc = decompress_block(COMPRESS_LZ4, c, n, d, sizeof(d));
    cr_assert_eq(rc, -ECORRUPT);
    free(c);
    n = make_stream(COMPRESS_LZ4, 0, src, sizeof(src), &c);
    cr_assert_eq(decompress_block(COMPRESS_ZSTD, c, n, d, sizeof(d)), -ECORRUPT);
    cr_assert_eq(decompress_block(COMPRESS_INHERIT, c, n, d, sizeof(d)), -ECORRUPT);
    cr_assert_eq(decompress_block(COMPRESS_ALG_COUNT, c, n, d, sizeof(d)), -ECORRUPT);
    free(c);
}

Test(compress, decompress_off_copies_exactly_equal_lengths)
{
    uint8_t src[100], d[100 + CANARY_LEN];
    fill(SHAPE_RANDOM, src, sizeof(src), 9);
    memset(d + 100, CANARY_BYTE, CANARY_LEN);
    cr_assert_eq(decompress_block(COMPRESS_OFF, src, 100, d, 100), 0);
    cr_assert_eq(memcmp(src, d, 100), 0);
    cr_assert_eq(decompress_block(COMPRESS_OFF, src, 99, d, 100), -ECORRUPT);
    cr_assert_eq(decompress_block(COMPRESS_OFF, src, 100, d, 99), -ECORRUPT);
    canary_check(d, 100);
}

/* Decompresses src into an exact-size canaried buffer; asserts the result is 0 or -ECORRUPT. */
static void
decompress_survives(enum compress_alg alg, const uint8_t *src, size_t src_len, size_t dst_len,
                    uint64_t seed)
{
    uint8_t *d = canary_alloc(dst_len);
    int rc = decompress_block(alg, src, src_len, d, dst_len);
    cr_assert(rc == 0 || rc == -ECORRUPT, "alg %d seed %llu: rc %d", alg, (unsigned long long)seed,
              rc);
    canary_check(d, dst_len);
    free(d);
}

Test(compress, decompress_of_random_garbage_never_crashes)
{
    static const enum compress_alg algs[] = { COMPRESS_LZ4, COMPRESS_ZSTD };
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    cr_log_info("seed %llu", (unsigned long long)seed);
    uint64_t s = seed;
    for (int iter = 0; iter < 20000; iter++) {
        size_t src_len = xorshift(&s) % 512;
        size_t dst_len = xorshift(&s) % 8192;
        uint8_t *src = malloc(src_len ? src_len : 1);
        cr_assert_not_null(src);
        for (size_t i = 0; i < src_len; i++)
            src[i] = (uint8_t)xorshift(&s);
        /* Half the zstd inputs get a valid magic so the frame parser gets past its first check. */
        if (src_len >= 4 && (iter & 1))
            memcpy(src, "\x28\xb5\x2f\xfd", 4);
        for (size_t a = 0; a < sizeof(algs) / sizeof(algs[0]); a++)
            decompress_survives(algs[a], src, src_len, dst_len, seed + (uint64_t)iter);
        free(src);
    }
}

Test(compress, decompress_of_corrupted_valid_streams_never_crashes)
{
    size_t len = 32768;
    uint8_t *src = malloc(len);
    cr_assert_not_null(src);
    fill(SHAPE_TEXT, src, len, 10);
    uint64_t s = 0xdeadbeefcafef00dULL;
    for (size_t a = 0; a < NALGOS; a++) {
        uint8_t *c;
        size_t n = make_stream(algos[a].alg, algos[a].level, src, len, &c);
        uint8_t *m = malloc(n);
        cr_assert_not_null(m);
        for (int iter = 0; iter < 1500; iter++) {
            memcpy(m, c, n);
            int flips = 1 + (int)(xorshift(&s) % 8);
            for (int f = 0; f < flips; f++)
                m[xorshift(&s) % n] ^= (uint8_t)(1u << (xorshift(&s) % 8));
            decompress_survives(algos[a].alg, m, n, len, (uint64_t)iter);
        }
        free(m);
        free(c);
    }
    free(src);
}

struct thread_arg {
    uint64_t seed;
    int failures;
};

static void *
thread_round_trips(void *arg)
{
    struct thread_arg *ta = arg;
    size_t len = 65536;
    uint8_t *src = malloc(len), *c = malloc(len), *d = malloc(len);
    if (src == NULL || c == NULL || d == NULL) {
        ta->failures++;
        goto out;
    }
    for (int i = 0; i < 20; i++) {
        fill(i % 2 ? SHAPE_TEXT : SHAPE_NIBBLES, src, len, ta->seed + (uint64_t)i);
        int level = 1 + i % 5;
        ssize_t n = compress_block(COMPRESS_ZSTD, level, src, len, c, cap_for(len));
        if (n <= 0 || decompress_block(COMPRESS_ZSTD, c, (size_t)n, d, len) != 0 ||
            memcmp(src, d, len) != 0)
            ta->failures++;
    }
out:
    free(src);
    free(c);
    free(d);
    return NULL;
}

Test(compress, zstd_is_safe_from_concurrent_threads)
{
    /* Per-thread contexts: also checks (under LSan) that they are freed when threads exit. */
    pthread_t th[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){ .seed = 100u * (unsigned)i + 1, .failures = 0 };
        cr_assert_eq(pthread_create(&th[i], NULL, thread_round_trips, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(pthread_join(th[i], NULL), 0);
        cr_assert_eq(args[i].failures, 0, "thread %d", i);
    }
}

Test(compress, names_parse_and_format)
{
    static const struct {
        const char *name;
        enum compress_alg alg;
        int level;
        const char *canonical;
    } good[] = {
        { "off", COMPRESS_OFF, 0, "off" },        { "on", COMPRESS_LZ4, 0, "lz4" },
        { "lz4", COMPRESS_LZ4, 0, "lz4" },        { "zstd", COMPRESS_ZSTD, 3, "zstd" },
        { "zstd-1", COMPRESS_ZSTD, 1, "zstd-1" }, { "zstd-3", COMPRESS_ZSTD, 3, "zstd" },
        { "zstd-9", COMPRESS_ZSTD, 9, "zstd-9" }, { "zstd-19", COMPRESS_ZSTD, 19, "zstd-19" },
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        enum compress_alg alg = COMPRESS_INHERIT;
        int level = -1;
        char buf[16];
        cr_assert_eq(compress_from_name(good[i].name, &alg, &level), 0, "%s", good[i].name);
        cr_assert_eq(alg, good[i].alg, "%s", good[i].name);
        cr_assert_eq(level, good[i].level, "%s", good[i].name);
        cr_assert_str_eq(compress_name(alg, level, buf, sizeof(buf)), good[i].canonical);
    }
    static const char *bad[] = { "",         "inherit", "LZ4",     "zstd-",   "zstd-0",
                                 "zstd-20",  "zstd-03", "zstd-+3", "zstd--3", "zstd-3x",
                                 "zstd-100", "zstd 3",  "gzip",    "zstd3",   "lz4 " };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum compress_alg alg = COMPRESS_OFF;
        int level = 42;
        cr_assert_eq(compress_from_name(bad[i], &alg, &level), -EINVAL, "\"%s\"", bad[i]);
        cr_assert_eq(alg, COMPRESS_OFF, "output untouched on error");
        cr_assert_eq(level, 42);
    }
    enum compress_alg alg;
    int level;
    cr_assert_eq(compress_from_name(NULL, &alg, &level), -EINVAL);
}

Test(compress, name_rejects_invalid_values_and_small_buffers)
{
    char buf[16];
    cr_assert_null(compress_name(COMPRESS_INHERIT, 0, buf, sizeof(buf)));
    cr_assert_null(compress_name(COMPRESS_ALG_COUNT, 0, buf, sizeof(buf)));
    cr_assert_null(compress_name(COMPRESS_ZSTD, 0, buf, sizeof(buf)));
    cr_assert_null(compress_name(COMPRESS_ZSTD, 20, buf, sizeof(buf)));
    cr_assert_null(compress_name(COMPRESS_ZSTD, 19, buf, 7), "\"zstd-19\" needs 8 bytes");
    cr_assert_str_eq(compress_name(COMPRESS_ZSTD, 19, buf, 8), "zstd-19");
    cr_assert_null(compress_name(COMPRESS_OFF, 0, buf, 0));
}

Test(compress, is_valid_accepts_exactly_the_stored_algorithms)
{
    cr_assert_not(compress_is_valid(COMPRESS_INHERIT));
    cr_assert(compress_is_valid(COMPRESS_OFF));
    cr_assert(compress_is_valid(COMPRESS_LZ4));
    cr_assert(compress_is_valid(COMPRESS_ZSTD));
    cr_assert_not(compress_is_valid(COMPRESS_ALG_COUNT));
    cr_assert_not(compress_is_valid(255));
}

/* The lz4 early abort looks at the first 4 KiB of a block of 16 KiB or more. */
Test(compress, lz4_early_abort_judges_by_the_first_4k)
{
    enum { N = 16384 };
    static uint8_t src[N], dst[N];
    uint64_t s = 0x1234567;
    /* Random first 4 KiB, zeros after: taken for incompressible (the documented trade-off). */
    memset(src, 0, sizeof(src));
    for (size_t i = 0; i < 4096; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        src[i] = (uint8_t)s;
    }
    cr_assert_eq(compress_block(COMPRESS_LZ4, 0, src, N, dst, N), 0);
    /* Compressible first 4 KiB, random rest: the whole block is tried (and the 4 KiB of 'a'
     * alone save a quarter). */
    memmove(src + N - 4096, src, 4096);
    memset(src, 'a', 4096);
    for (size_t i = 4096; i < N - 4096; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        src[i] = (uint8_t)s;
    }
    cr_assert_gt(compress_block(COMPRESS_LZ4, 0, src, N, dst, N), 0);
    /* Compressible throughout: compressed, and round-trips. */
    for (size_t i = 0; i < N; i++)
        src[i] = (uint8_t)("lcpfs "[i % 6]);
    ssize_t n = compress_block(COMPRESS_LZ4, 0, src, N, dst, N);
    cr_assert_gt(n, 0);
    static uint8_t back[N];
    cr_assert_eq(decompress_block(COMPRESS_LZ4, dst, (size_t)n, back, N), 0);
    cr_assert(memcmp(src, back, N) == 0);
    /* Small blocks are not sampled. */
    cr_assert_gt(compress_block(COMPRESS_LZ4, 0, src, 8192, dst, 8192), 0);
}
