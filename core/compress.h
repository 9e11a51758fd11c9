/* SPDX-License-Identifier: MIT */
/*
 * compress: block compression through liblz4 and libzstd.
 *   off, lz4 (default), zstd with level 1..19.
 * A block is stored compressed only when that saves at least 12.5 % (COMPRESS_MIN_SAVING):
 * compress_block() returns the compressed length only in that case, else 0 ("store raw").
 * For zstd levels >= 3 on blocks >= 128 KiB an early abort first tries lz4 and then zstd-1, and
 * compresses at the requested level only if either saved enough (the OpenZFS heuristic). lz4
 * on blocks >= 16 KiB first tries the first 4 KiB and stores the block raw if even that does not
 * compress (compress.c).
 * Thread-safe (zstd contexts are per call or per thread).
 */
#ifndef LCPFS_CORE_COMPRESS_H
#define LCPFS_CORE_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum compress_alg {
    COMPRESS_INHERIT = 0, /* property value only */
    COMPRESS_OFF = 1,
    COMPRESS_LZ4 = 2,
    COMPRESS_ZSTD = 3,
    COMPRESS_ALG_COUNT
};
#define ZSTD_LEVEL_DEFAULT 3
#define ZSTD_LEVEL_MAX     19

/*
 * Compresses src[0..src_len) into dst (capacity dst_cap; pass dst_cap = src_len - src_len/8).
 * Returns the compressed length (> 0) if it is <= src_len - src_len/8, 0 if the block should be
 * stored uncompressed (also for COMPRESS_OFF), or a negative errno.
 */
ssize_t compress_block(enum compress_alg alg, int level, const void *src, size_t src_len, void *dst,
                       size_t dst_cap);
/*
 * Decompresses exactly dst_len bytes. Returns 0, or -ECORRUPT when the input is malformed or does
 * not decode to exactly dst_len bytes (never reads or writes out of bounds).
 */
int decompress_block(enum compress_alg alg, const void *src, size_t src_len, void *dst,
                     size_t dst_len);
const char *compress_name(enum compress_alg alg, int level, char *buf, size_t buflen);
/* Parses "off", "on" (lz4), "lz4", "zstd", "zstd-N". Returns 0 or -EINVAL. */
int compress_from_name(const char *name, enum compress_alg *alg, int *level);
bool compress_is_valid(unsigned alg);

#endif
