/* SPDX-License-Identifier: MIT */
/*
 * assert: the ZFS assertion taxonomy.
 *
 * ASSERT(x)  debug-only (compiled out under NDEBUG); for hot paths and preconditions.
 * VERIFY(x)  always on; for cheap must-never-happen checks.
 * ASSERT3U/3S/3P(a, op, b) and VERIFY3*: print both operands on failure.
 * ASSERT0(x), IMPLY(a, b), EQUIV(a, b), BUG(msg).
 *
 * Never assert on bytes read from the wire or from disk: validate and return an error.
 * No side effects inside ASSERT.
 */
#ifndef LCPFS_COMMON_ASSERT_H
#define LCPFS_COMMON_ASSERT_H

#include <stdint.h>

_Noreturn void assert_fail(const char *expr, const char *file, int line, const char *func);
_Noreturn void assert3_fail(const char *expr, unsigned long long a, unsigned long long b,
                            const char *file, int line, const char *func);

#define VERIFY(x)                                          \
    do {                                                   \
        if (__builtin_expect(!(x), 0))                     \
            assert_fail(#x, __FILE__, __LINE__, __func__); \
    } while (0)

#define VERIFY3_IMPL(a, op, b, type)                                                          \
    do {                                                                                      \
        const type va_ = (type)(a);                                                           \
        const type vb_ = (type)(b);                                                           \
        if (__builtin_expect(!(va_ op vb_), 0))                                               \
            assert3_fail(#a " " #op " " #b, (unsigned long long)va_, (unsigned long long)vb_, \
                         __FILE__, __LINE__, __func__);                                       \
    } while (0)

#define VERIFY3U(a, op, b) VERIFY3_IMPL(a, op, b, uint64_t)
#define VERIFY3S(a, op, b) VERIFY3_IMPL(a, op, b, int64_t)
#define VERIFY3P(a, op, b) VERIFY3_IMPL(a, op, b, uintptr_t)
#define VERIFY0(x)         VERIFY3_IMPL(x, ==, 0, int64_t)
#define BUG(msg)           assert_fail("BUG: " msg, __FILE__, __LINE__, __func__)

#ifdef NDEBUG
#define ASSERT(x)          ((void)0)
#define ASSERT3U(a, op, b) ((void)0)
#define ASSERT3S(a, op, b) ((void)0)
#define ASSERT3P(a, op, b) ((void)0)
#define ASSERT0(x)         ((void)0)
#define IMPLY(a, b)        ((void)0)
#define EQUIV(a, b)        ((void)0)
#else
#define ASSERT(x)          VERIFY(x)
#define ASSERT3U(a, op, b) VERIFY3U(a, op, b)
#define ASSERT3S(a, op, b) VERIFY3S(a, op, b)
#define ASSERT3P(a, op, b) VERIFY3P(a, op, b)
#define ASSERT0(x)         VERIFY0(x)
#define IMPLY(a, b)        VERIFY(!(a) || (b))
#define EQUIV(a, b)        VERIFY(!(a) == !(b))
#endif

#endif
