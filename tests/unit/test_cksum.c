/* SPDX-License-Identifier: MIT */
/* Unit tests for core/cksum: known answers, bit-flip detection, names, the offset trailer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <xxhash.h>

#include "common/endian.h"
#include "common/err.h"
#include "core/cksum.h"

static void
hex_to_bytes(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static const uint8_t zero32[32];

Test(cksum, sha256_matches_known_answers)
{
    static const struct {
        const char *msg;
        const char *hex;
    } cases[] = {
        { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
        { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
        { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t want[32], got[32];
        hex_to_bytes(cases[i].hex, want, 32);
        cr_assert_eq(cksum_compute(CKSUM_SHA256, cases[i].msg, strlen(cases[i].msg), got), 0);
        cr_assert_arr_eq(got, want, 32, "sha256 of \"%s\"", cases[i].msg);
    }
}

Test(cksum, blake2b_is_first_half_of_blake2b512)
{
    /* BLAKE2b-512("abc") from RFC 7693 appendix A, first 32 bytes. */
    uint8_t want[32], got[32];
    hex_to_bytes("ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1", want, 32);
    cr_assert_eq(cksum_compute(CKSUM_BLAKE2B, "abc", 3, got), 0);
    cr_assert_arr_eq(got, want, 32);
}

Test(cksum, xxh3_stores_128_bits_little_endian_then_zeros)
{
    static const char *msgs[] = { "", "abc", "the quick brown fox jumps over the lazy dog" };
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        size_t len = strlen(msgs[i]);
        XXH128_hash_t h = XXH3_128bits(msgs[i], len);
        uint8_t want[32] = { 0 }, got[32];
        le64_put(want, h.low64);
        le64_put(want + 8, h.high64);
        memset(got, 0xa5, sizeof(got));
        cr_assert_eq(cksum_compute(CKSUM_XXH3, msgs[i], len, got), 0);
        cr_assert_arr_eq(got, want, 32, "xxh3 of \"%s\"", msgs[i]);
    }
    /* Pinned value for the empty input, so a library change cannot go unnoticed. */
    uint8_t got[32];
    cr_assert_eq(cksum_compute(CKSUM_XXH3, NULL, 0, got), 0);
    cr_assert_eq(le64_get(got), 0x6001c324468d497fULL);
    cr_assert_eq(le64_get(got + 8), 0x99aa06d3014798d8ULL);
}

Test(cksum, off_writes_zeros_and_always_verifies)
{
    uint8_t got[32], junk[32];
    memset(got, 0xff, sizeof(got));
    memset(junk, 0x5a, sizeof(junk));
    cr_assert_eq(cksum_compute(CKSUM_OFF, "abc", 3, got), 0);
    cr_assert_arr_eq(got, zero32, 32);
    cr_assert(cksum_verify(CKSUM_OFF, "abc", 3, junk));
}

Test(cksum, compute_rejects_invalid_algorithms)
{
    uint8_t out[32];
    cr_assert_eq(cksum_compute(CKSUM_INHERIT, "abc", 3, out), -EINVAL);
    cr_assert_eq(cksum_compute(CKSUM_ALG_COUNT, "abc", 3, out), -EINVAL);
    cr_assert_eq(cksum_compute((enum cksum_alg)200, "abc", 3, out), -EINVAL);
    cr_assert_not(cksum_verify(CKSUM_INHERIT, "abc", 3, zero32));
}

Test(cksum, verify_rejects_any_single_bit_change)
{
    static const enum cksum_alg algs[] = { CKSUM_XXH3, CKSUM_SHA256, CKSUM_BLAKE2B };
    unsigned seed = 0x12345u;
    uint8_t data[257];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)rand_r(&seed);

    for (size_t a = 0; a < sizeof(algs) / sizeof(algs[0]); a++) {
        uint8_t sum[32];
        cr_assert_eq(cksum_compute(algs[a], data, sizeof(data), sum), 0);
        cr_assert(cksum_verify(algs[a], data, sizeof(data), sum));
        /* Flip every bit of the data once, and a bit of the expected value. */
        for (size_t bit = 0; bit < sizeof(data) * 8; bit++) {
            data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            cr_assert_not(cksum_verify(algs[a], data, sizeof(data), sum), "alg %s bit %zu",
                          cksum_name(algs[a]), bit);
            data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        size_t used = algs[a] == CKSUM_XXH3 ? 16 : 32;
        for (size_t bit = 0; bit < used * 8; bit++) {
            uint8_t bad[32];
            memcpy(bad, sum, 32);
            bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            cr_assert_not(cksum_verify(algs[a], data, sizeof(data), bad));
        }
        /* A shorter input is a different input. */
        cr_assert_not(cksum_verify(algs[a], data, sizeof(data) - 1, sum));
    }
}

Test(cksum, xxh3_padding_is_part_of_the_compared_value)
{
    uint8_t sum[32];
    cr_assert_eq(cksum_compute(CKSUM_XXH3, "abc", 3, sum), 0);
    sum[31] ^= 1;
    cr_assert_not(cksum_verify(CKSUM_XXH3, "abc", 3, sum));
}

Test(cksum, names_round_trip)
{
    for (unsigned a = CKSUM_OFF; a < CKSUM_ALG_COUNT; a++) {
        const char *name = cksum_name((enum cksum_alg)a);
        cr_assert_not_null(name);
        enum cksum_alg back = CKSUM_INHERIT;
        cr_assert_eq(cksum_from_name(name, &back), 0);
        cr_assert_eq((unsigned)back, a);
    }
    cr_assert_str_eq(cksum_name(CKSUM_OFF), "off");
    cr_assert_str_eq(cksum_name(CKSUM_XXH3), "xxh3");
    cr_assert_str_eq(cksum_name(CKSUM_SHA256), "sha256");
    cr_assert_str_eq(cksum_name(CKSUM_BLAKE2B), "blake2b");
    cr_assert_null(cksum_name(CKSUM_INHERIT));
    cr_assert_null(cksum_name(CKSUM_ALG_COUNT));
    cr_assert_null(cksum_name((enum cksum_alg)99));
}

Test(cksum, on_parses_to_xxh3_and_unknown_names_are_rejected)
{
    enum cksum_alg alg = CKSUM_INHERIT;
    cr_assert_eq(cksum_from_name("on", &alg), 0);
    cr_assert_eq(alg, CKSUM_XXH3);

    static const char *bad[] = { "",        "inherit",     "SHA256",   "xxh",
                                 "sha256 ", "blake2b-512", "fletcher4" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        alg = CKSUM_SHA256;
        cr_assert_eq(cksum_from_name(bad[i], &alg), -EINVAL, "name \"%s\"", bad[i]);
        cr_assert_eq(alg, CKSUM_SHA256, "output untouched on error");
    }
    cr_assert_eq(cksum_from_name(NULL, &alg), -EINVAL);
}

Test(cksum, is_valid_accepts_exactly_the_stored_algorithms)
{
    cr_assert_not(cksum_is_valid(CKSUM_INHERIT));
    for (unsigned a = CKSUM_OFF; a < CKSUM_ALG_COUNT; a++)
        cr_assert(cksum_is_valid(a));
    cr_assert_not(cksum_is_valid(CKSUM_ALG_COUNT));
    cr_assert_not(cksum_is_valid(255));
    cr_assert_not(cksum_is_valid(~0u));
}

Test(cksum, sha256_with_offset_hashes_data_then_le64_offset)
{
    static const uint64_t offsets[] = { 0, 1, 0x40000, 0x0123456789abcdefULL, UINT64_MAX };
    uint8_t data[300];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + 3);

    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        uint8_t concat[sizeof(data) + 8], want[32], got[32];
        memcpy(concat, data, sizeof(data));
        le64_put(concat + sizeof(data), offsets[i]);
        cr_assert_eq(cksum_compute(CKSUM_SHA256, concat, sizeof(concat), want), 0);
        cksum_sha256_with_offset(data, sizeof(data), offsets[i], got);
        cr_assert_arr_eq(got, want, 32, "offset %#llx", (unsigned long long)offsets[i]);
    }

    uint8_t a[32], b[32];
    cksum_sha256_with_offset(data, sizeof(data), 0x40000, a);
    cksum_sha256_with_offset(data, sizeof(data), 0x80000, b);
    cr_assert_arr_neq(a, b, 32, "a region copied elsewhere must not verify");

    /* Empty data: SHA-256 of the eight offset bytes alone. */
    uint8_t off_le[8], want[32];
    le64_put(off_le, 42);
    cr_assert_eq(cksum_compute(CKSUM_SHA256, off_le, 8, want), 0);
    cksum_sha256_with_offset(NULL, 0, 42, a);
    cr_assert_arr_eq(a, want, 32);
}

Test(cksum, xxh3_of_block_sized_data_matches_the_portable_code)
{
    /* cksum.c calls the library's dispatcher (AVX2/AVX-512 where the CPU has them); this file
     * calls the portable XXH3_128bits. Long inputs take the vector paths: they must agree. */
    static const size_t lens[] = { 241, 1024, 4096, 16384, 131072, 131072 + 17 };
    uint8_t *buf = malloc(131072 + 17);
    cr_assert_not_null(buf);
    uint64_t s = 42;
    for (size_t i = 0; i < 131072 + 17; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (uint8_t)(s >> 56);
    }
    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        XXH128_hash_t h = XXH3_128bits(buf, lens[k]);
        uint8_t want[32] = { 0 }, got[32];
        le64_put(want, h.low64);
        le64_put(want + 8, h.high64);
        cr_assert_eq(cksum_compute(CKSUM_XXH3, buf, lens[k], got), 0);
        cr_assert_arr_eq(got, want, 32, "xxh3 of %zu bytes", lens[k]);
    }
    free(buf);
}
