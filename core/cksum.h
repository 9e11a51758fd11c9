/* SPDX-License-Identifier: MIT */
/*
 * cksum: block checksums. A table of algorithms, each producing up to 32 bytes:
 *   xxh3    XXH3-128 (libxxhash), 16 bytes, zero-padded to 32; the default for data
 *   sha256  SHA-256 (OpenSSL EVP), 32 bytes; labels, dedup, users wanting a cryptographic tree
 *   blake2b BLAKE2b-256 (OpenSSL EVP "BLAKE2B-512" truncated to 32 bytes)
 *   off     all zero; allowed for data only, never metadata
 * Thread-safe, no global state beyond OpenSSL's.
 */
#ifndef LCPFS_CORE_CKSUM_H
#define LCPFS_CORE_CKSUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cksum_alg {
    CKSUM_INHERIT = 0, /* property value only: use the parent's; never stored in a blkptr */
    CKSUM_OFF = 1,
    CKSUM_XXH3 = 2,
    CKSUM_SHA256 = 3,
    CKSUM_BLAKE2B = 4,
    CKSUM_ALG_COUNT
};

/* Computes the checksum of data into out (all 32 bytes written). Returns 0 or -EINVAL. */
int cksum_compute(enum cksum_alg alg, const void *data, size_t len, uint8_t out[static 32]);
/* true when alg's checksum of data equals expected. CKSUM_OFF always matches. */
bool cksum_verify(enum cksum_alg alg, const void *data, size_t len,
                  const uint8_t expected[static 32]);
/* "xxh3", "sha256", ...; NULL for an unknown value. */
const char *cksum_name(enum cksum_alg alg);
/* Parses a name ("on" means xxh3). Returns 0 and sets *out, or -EINVAL. */
int cksum_from_name(const char *name, enum cksum_alg *out);
bool cksum_is_valid(unsigned alg);
/* SHA-256 of (data || offset_le64): the embedded trailer checksum of labels and uberblocks. */
void cksum_sha256_with_offset(const void *data, size_t len, uint64_t offset,
                              uint8_t out[static 32]);

#endif
