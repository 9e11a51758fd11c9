/* SPDX-License-Identifier: MIT */
/*
 * compress: block compression through liblz4 and libzstd (see compress.h).
 *
 * Theory of operation.
 *   compress_block() compresses into at most limit = min(dst_cap, src_len - src_len/8) bytes. If
 *   the library reports that the output does not fit, the block is not worth compressing and the
 *   result is 0 ("store raw"), not an error. lz4 uses the raw block format (no frame); zstd writes
 *   one frame (with its content size), so decompression can demand an exact length.
 *
 *   zstd early abort (OpenZFS zstd_earlyabort_pass): for level >= 3 and src_len >= 128 KiB a
 *   cheap lz4 pass, then a zstd-1 pass, are tried first. If neither saves 12.5 % the block is
 *   stored raw without paying for the expensive level; if either does, the requested level runs.
 *
 *   lz4 early abort: on blocks of at least LZ4_SAMPLE_MIN bytes lz4 first compresses the first
 *   LZ4_SAMPLE bytes; if that sample does not save 12.5 % either, the block is taken for
 *   incompressible (random, encrypted or already compressed data) and stored raw at a quarter of
 *   the cost of trying it all. A block whose first 4 KiB are incompressible but whose rest is not
 *   loses its compression: the price of not spending a core on every write of random data.
 *   The sample runs at acceleration LZ4_SAMPLE_ACCEL: 40 % cheaper on fio's random buffers, and
 *   on 64 MiB of executables it decided as the full-speed sample on 4095 blocks of 4096.
 *
 *   zstd contexts and lz4 streams are per thread: created lazily on first use, cached in
 *   thread-local storage and freed by a pthread key destructor when the thread exits (the main
 *   thread's stay reachable until exit). lz4 compresses each block independently with
 *   LZ4_compress_fast_extState on the thread's state, which clears its 16 KiB table every time.
 *   The streaming calls (LZ4_resetStream_fast + LZ4_compress_fast_continue), meant to skip that
 *   clearing, measured 1.3x slower per 4 KiB sample here and several times slower once a
 *   worker had compressed a few gigabytes (a rewrite of a volume spent half the daemon's CPU in
 *   them).
 *
 * Invariants:
 *   1. compress_block() never writes more than dst_cap bytes to dst and returns either 0, a
 *      length in [1, src_len - src_len/8], or a negative errno.
 *   2. decompress_block() never writes more than dst_len bytes and returns 0 only when exactly
 *      dst_len bytes were produced.
 */
#include "core/compress.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "common/assert.h"
#include "common/err.h"

#define EARLY_ABORT_MIN_SIZE  (128u << 10)
#define EARLY_ABORT_MIN_LEVEL 3
#define LZ4_SAMPLE            4096u
#define LZ4_SAMPLE_MIN        (4u * LZ4_SAMPLE)
#define LZ4_SAMPLE_ACCEL      2

/* ---- per-thread zstd contexts ------------------------------------------------------------- */

struct zstd_tls {
    ZSTD_CCtx *cctx;   /* NULL until the thread first compresses */
    ZSTD_DCtx *dctx;   /* NULL until the thread first decompresses */
    LZ4_stream_t *lz4; /* NULL until the thread first uses lz4 */
};

static _Thread_local struct zstd_tls *zstd_tls;
static pthread_once_t zstd_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t zstd_key;
static int zstd_key_err; /* nonzero if pthread_key_create failed */

static void
zstd_tls_destroy(void *arg)
{
    struct zstd_tls *t = arg;

    ZSTD_freeCCtx(t->cctx);
    ZSTD_freeDCtx(t->dctx);
    LZ4_freeStream(t->lz4);
    free(t);
}

static void
zstd_key_init(void)
{
    zstd_key_err = pthread_key_create(&zstd_key, zstd_tls_destroy);
}

/* Returns this thread's context holder, creating it on first use; NULL on allocation failure. */
static struct zstd_tls *
zstd_tls_get(void)
{
    if (zstd_tls != NULL)
        return zstd_tls;
    VERIFY0(pthread_once(&zstd_key_once, zstd_key_init));
    if (zstd_key_err != 0)
        return NULL;
    struct zstd_tls *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    if (pthread_setspecific(zstd_key, t) != 0) {
        free(t);
        return NULL;
    }
    zstd_tls = t;
    return t;
}

static ZSTD_CCtx *
zstd_cctx_get(void)
{
    struct zstd_tls *t = zstd_tls_get();
    if (t == NULL)
        return NULL;
    if (t->cctx == NULL)
        t->cctx = ZSTD_createCCtx();
    return t->cctx;
}

static ZSTD_DCtx *
zstd_dctx_get(void)
{
    struct zstd_tls *t = zstd_tls_get();
    if (t == NULL)
        return NULL;
    if (t->dctx == NULL)
        t->dctx = ZSTD_createDCtx();
    return t->dctx;
}

/* ---- compression -------------------------------------------------------------------------- */

/* lz4 into at most cap bytes: length, or 0 if it does not fit. */
static ssize_t
lz4_compress(const void *src, size_t src_len, void *dst, size_t cap, int accel)
{
    if (src_len > LZ4_MAX_INPUT_SIZE)
        return ERR(-EINVAL);
    if (cap > INT_MAX)
        cap = INT_MAX;
    struct zstd_tls *t = zstd_tls_get();
    if (t != NULL && t->lz4 == NULL)
        t->lz4 = LZ4_createStream();
    int n;
    if (t != NULL && t->lz4 != NULL) {
        /* an independent block: extState starts from a cleared table every time */
        n = LZ4_compress_fast_extState(t->lz4, src, dst, (int)src_len, (int)cap, accel);
    } else {
        n = LZ4_compress_fast(src, dst, (int)src_len, (int)cap, accel);
    }
    return n > 0 ? (ssize_t)n : 0;
}

/* lz4 with the sampled early abort (theory of operation). */
static ssize_t
lz4_compress_sampled(const void *src, size_t src_len, void *dst, size_t cap)
{
    if (src_len >= LZ4_SAMPLE_MIN && cap >= LZ4_SAMPLE) {
        ssize_t n =
            lz4_compress(src, LZ4_SAMPLE, dst, LZ4_SAMPLE - LZ4_SAMPLE / 8, LZ4_SAMPLE_ACCEL);
        if (n <= 0)
            return n; /* the sample does not compress: store raw */
    }
    return lz4_compress(src, src_len, dst, cap, 1);
}

/* zstd at level into at most cap bytes: length, 0 if it does not fit, or a negative errno. */
static ssize_t
zstd_compress(int level, const void *src, size_t src_len, void *dst, size_t cap)
{
    ZSTD_CCtx *cctx = zstd_cctx_get();
    if (cctx == NULL)
        return ERR(-ENOMEM);
    size_t n = ZSTD_compressCCtx(cctx, dst, cap, src, src_len, level);
    if (!ZSTD_isError(n))
        return (ssize_t)n;
    switch (ZSTD_getErrorCode(n)) {
    case ZSTD_error_dstSize_tooSmall:
        return 0;
    case ZSTD_error_memory_allocation:
        return ERR(-ENOMEM);
    default:
        return ERR(-EIO);
    }
}

ssize_t
compress_block(enum compress_alg alg, int level, const void *src, size_t src_len, void *dst,
               size_t dst_cap)
{
    ASSERT(src != NULL || src_len == 0);

    size_t limit = src_len - src_len / 8;
    if (dst_cap < limit)
        limit = dst_cap;

    switch (alg) {
    case COMPRESS_OFF:
        return 0;
    case COMPRESS_LZ4:
        if (limit == 0)
            return 0;
        return lz4_compress_sampled(src, src_len, dst, limit);
    case COMPRESS_ZSTD: {
        if (level < 1 || level > ZSTD_LEVEL_MAX)
            return ERR(-EINVAL);
        if (limit == 0)
            return 0;
        if (level >= EARLY_ABORT_MIN_LEVEL && src_len >= EARLY_ABORT_MIN_SIZE) {
            /* dst is scratch for the trial passes; the final pass overwrites it. */
            ssize_t n = lz4_compress_sampled(src, src_len, dst, limit);
            if (n == 0)
                n = zstd_compress(1, src, src_len, dst, limit);
            if (n <= 0)
                return n;
        }
        return zstd_compress(level, src, src_len, dst, limit);
    }
    case COMPRESS_INHERIT:
    case COMPRESS_ALG_COUNT:
        break;
    }
    return ERR(-EINVAL);
}

/* ---- decompression ------------------------------------------------------------------------ */

int
decompress_block(enum compress_alg alg, const void *src, size_t src_len, void *dst, size_t dst_len)
{
    ASSERT(src != NULL || src_len == 0);
    ASSERT(dst != NULL || dst_len == 0);

    switch (alg) {
    case COMPRESS_OFF:
        if (src_len != dst_len)
            return ERR(-ECORRUPT);
        if (dst_len > 0)
            memcpy(dst, src, dst_len);
        return 0;
    case COMPRESS_LZ4: {
        if (src_len > INT_MAX || dst_len > INT_MAX)
            return ERR(-ECORRUPT);
        int n = LZ4_decompress_safe(src, dst, (int)src_len, (int)dst_len);
        if (n < 0 || (size_t)n != dst_len)
            return ERR(-ECORRUPT);
        return 0;
    }
    case COMPRESS_ZSTD: {
        ZSTD_DCtx *dctx = zstd_dctx_get();
        if (dctx == NULL)
            return ERR(-ENOMEM);
        size_t n = ZSTD_decompressDCtx(dctx, dst, dst_len, src, src_len);
        if (ZSTD_isError(n)) {
            if (ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation)
                return ERR(-ENOMEM);
            return ERR(-ECORRUPT);
        }
        if (n != dst_len)
            return ERR(-ECORRUPT);
        return 0;
    }
    case COMPRESS_INHERIT:
    case COMPRESS_ALG_COUNT:
        break;
    }
    return ERR(-ECORRUPT); /* the algorithm came from disk */
}

/* ---- names -------------------------------------------------------------------------------- */

bool
compress_is_valid(unsigned alg)
{
    return alg >= COMPRESS_OFF && alg < COMPRESS_ALG_COUNT;
}

const char *
compress_name(enum compress_alg alg, int level, char *buf, size_t buflen)
{
    int n;

    switch (alg) {
    case COMPRESS_OFF:
        n = snprintf(buf, buflen, "off");
        break;
    case COMPRESS_LZ4:
        n = snprintf(buf, buflen, "lz4");
        break;
    case COMPRESS_ZSTD:
        if (level < 1 || level > ZSTD_LEVEL_MAX)
            return NULL;
        if (level == ZSTD_LEVEL_DEFAULT)
            n = snprintf(buf, buflen, "zstd");
        else
            n = snprintf(buf, buflen, "zstd-%d", level);
        break;
    default:
        return NULL;
    }
    if (n < 0 || (size_t)n >= buflen)
        return NULL;
    return buf;
}

int
compress_from_name(const char *name, enum compress_alg *alg, int *level)
{
    if (name == NULL)
        return ERR(-EINVAL);
    if (strcmp(name, "off") == 0) {
        *alg = COMPRESS_OFF;
        *level = 0;
        return 0;
    }
    if (strcmp(name, "on") == 0 || strcmp(name, "lz4") == 0) {
        *alg = COMPRESS_LZ4;
        *level = 0;
        return 0;
    }
    if (strcmp(name, "zstd") == 0) {
        *alg = COMPRESS_ZSTD;
        *level = ZSTD_LEVEL_DEFAULT;
        return 0;
    }
    if (strncmp(name, "zstd-", 5) != 0)
        return ERR(-EINVAL);

    /* "zstd-N": one or two decimal digits, no sign, no leading zero, 1..ZSTD_LEVEL_MAX. */
    const char *p = name + 5;
    int v = 0;
    size_t ndigits = 0;
    for (; *p >= '0' && *p <= '9' && ndigits < 3; p++, ndigits++)
        v = v * 10 + (*p - '0');
    if (*p != '\0' || ndigits == 0 || ndigits > 2 || name[5] == '0' || v < 1 || v > ZSTD_LEVEL_MAX)
        return ERR(-EINVAL);
    *alg = COMPRESS_ZSTD;
    *level = v;
    return 0;
}
