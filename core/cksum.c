/* SPDX-License-Identifier: MIT */
/*
 * cksum: block checksums (see cksum.h for the algorithm table).
 *
 * Theory of operation. Each algorithm writes exactly 32 bytes; shorter digests are zero-padded so
 * that a blkptr's checksum field can always be compared as 32 bytes:
 *   xxh3     XXH3-128 stored little-endian, low 64 bits then high 64 bits, then 16 zero bytes
 *   sha256   the 32-byte SHA-256 digest
 *   blake2b  the first 32 bytes of BLAKE2b-512 (OpenSSL has no BLAKE2b-256 in its default provider)
 *   off      32 zero bytes
 * The OpenSSL digests use the static method objects EVP_sha256()/EVP_blake2b512() rather than an
 * EVP_MD_fetch() per call. The module keeps no state of its own, so it is thread-safe.
 */
#include "core/cksum.h"

#include <string.h>

#include <openssl/evp.h>
#include <xxhash.h>
#if defined(LCPFS_HAVE_XXH_DISPATCH)
/* The library's run-time dispatcher (XXH3_128bits becomes XXH3_128bits_dispatch): it picks the
 * library's AVX2 or AVX-512 code on CPUs that have them, three times the speed of the SSE2
 * build that the plain symbol is (14 -> 45 GB/s on 16 KiB blocks here); the same hash. */
#include <xxh_x86dispatch.h>
#endif

#include "common/assert.h"
#include "common/endian.h"
#include "common/err.h"

_Static_assert(CKSUM_ALG_COUNT == 5, "update the name table");

static const char *const cksum_names[CKSUM_ALG_COUNT] = {
    [CKSUM_INHERIT] = NULL,    [CKSUM_OFF] = "off",         [CKSUM_XXH3] = "xxh3",
    [CKSUM_SHA256] = "sha256", [CKSUM_BLAKE2B] = "blake2b",
};

bool
cksum_is_valid(unsigned alg)
{
    return alg >= CKSUM_OFF && alg < CKSUM_ALG_COUNT;
}

/* One-shot OpenSSL digest of data into out[0..32), truncating longer digests. */
static int
evp_digest32(const EVP_MD *md, const void *data, size_t len, uint8_t out[static 32])
{
    uint8_t full[EVP_MAX_MD_SIZE];
    unsigned int full_len = 0;

    if (EVP_Digest(data, len, full, &full_len, md, NULL) != 1)
        return ERR(-ENOMEM); /* only allocation can fail with a built-in method */
    VERIFY3U(full_len, >=, 32);
    memcpy(out, full, 32);
    return 0;
}

int
cksum_compute(enum cksum_alg alg, const void *data, size_t len, uint8_t out[static 32])
{
    ASSERT(data != NULL || len == 0);

    switch (alg) {
    case CKSUM_OFF:
        memset(out, 0, 32);
        return 0;
    case CKSUM_XXH3: {
        XXH128_hash_t h = XXH3_128bits(data, len);
        le64_put(out, h.low64);
        le64_put(out + 8, h.high64);
        memset(out + 16, 0, 16);
        return 0;
    }
    case CKSUM_SHA256:
        return evp_digest32(EVP_sha256(), data, len, out);
    case CKSUM_BLAKE2B:
        return evp_digest32(EVP_blake2b512(), data, len, out);
    case CKSUM_INHERIT:
    case CKSUM_ALG_COUNT:
        break;
    }
    return ERR(-EINVAL);
}

bool
cksum_verify(enum cksum_alg alg, const void *data, size_t len, const uint8_t expected[static 32])
{
    uint8_t actual[32];

    if (alg == CKSUM_OFF)
        return true;
    if (cksum_compute(alg, data, len, actual) != 0)
        return false;
    return memcmp(actual, expected, sizeof(actual)) == 0;
}

const char *
cksum_name(enum cksum_alg alg)
{
    if ((unsigned)alg >= CKSUM_ALG_COUNT)
        return NULL;
    return cksum_names[alg];
}

int
cksum_from_name(const char *name, enum cksum_alg *out)
{
    if (name == NULL)
        return ERR(-EINVAL);
    if (strcmp(name, "on") == 0) {
        *out = CKSUM_XXH3;
        return 0;
    }
    for (unsigned i = 0; i < CKSUM_ALG_COUNT; i++) {
        if (cksum_names[i] != NULL && strcmp(name, cksum_names[i]) == 0) {
            *out = (enum cksum_alg)i;
            return 0;
        }
    }
    return ERR(-EINVAL);
}

void
cksum_sha256_with_offset(const void *data, size_t len, uint64_t offset, uint8_t out[static 32])
{
    uint8_t off_le[8];
    unsigned int out_len = 0;

    ASSERT(data != NULL || len == 0);
    le64_put(off_le, offset);

    /* Labels and uberblocks only: an allocation failure here is not worth an error path. */
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    VERIFY(ctx != NULL);
    VERIFY(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1);
    VERIFY(EVP_DigestUpdate(ctx, data, len) == 1);
    VERIFY(EVP_DigestUpdate(ctx, off_le, sizeof(off_le)) == 1);
    VERIFY(EVP_DigestFinal_ex(ctx, out, &out_len) == 1);
    VERIFY3U(out_len, ==, 32);
    EVP_MD_CTX_free(ctx);
}
