/* SPDX-License-Identifier: MIT */
/*
 * test_util: helpers shared by the pool-level unit suites — a private temp directory with up to
 * four device paths, created per test and removed with whatever device files the test left, and
 * the xorshift generator the oracle tests draw from (seeds are printed by the tests).
 */
#ifndef LCPFS_TESTS_TEST_UTIL_H
#define LCPFS_TESTS_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <criterion/criterion.h>

static char test_dir[64];
static char test_dev[4][128];

static inline void
test_tmpdir_setup(void)
{
    snprintf(test_dir, sizeof(test_dir), "/tmp/lcpfs-test-XXXXXX");
    cr_assert_not_null(mkdtemp(test_dir));
    for (int i = 0; i < 4; i++)
        snprintf(test_dev[i], sizeof(test_dev[i]), "%s/dev%d", test_dir, i);
}

static inline void
test_tmpdir_teardown(void)
{
    for (int i = 0; i < 4; i++)
        unlink(test_dev[i]);
    rmdir(test_dir);
}

static inline uint64_t
test_rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

#endif
