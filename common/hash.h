/* SPDX-License-Identifier: MIT */
/*
 * hash: the 64-bit finaliser (MurmurHash3 fmix64) used to spread integer keys over hash tables.
 * Not for checksums: see core/cksum.h for those.
 */
#ifndef LCPFS_COMMON_HASH_H
#define LCPFS_COMMON_HASH_H

#include <stdint.h>

static inline uint64_t
hash_mix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

#endif
