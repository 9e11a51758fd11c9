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

#include "core/pool.h"
#include "core/verify.h"

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

/* A one-device pool on test_dev[0] (a sparse file of size bytes) with commits only on request. */
static inline struct pool *
test_pool_create(uint64_t size)
{
    const char *paths[1] = { test_dev[0] };
    /* A small cache: suites run in parallel and the default (RAM / 8) would let a test that
     * writes a GiB hold it all in memory. */
    struct pool_opts po = { .create_files = true,
                            .create_size = size,
                            .txg_timeout_ms = 600000,
                            .arc_max_bytes = 64u << 20 };
    struct pool *p = NULL;
    struct err_msg em = { 0 };
    cr_assert_eq(pool_create("tank", paths, 1, &po, &p, &em), 0, "pool_create: %s", em.text);
    return p;
}

/* Exports p (if not NULL) and imports test_dev[0] again. */
static inline struct pool *
test_pool_reimport(struct pool *p)
{
    const char *paths[1] = { test_dev[0] };
    struct err_msg em = { 0 };
    if (p != NULL)
        cr_assert_eq(pool_export(p), 0);
    struct pool_import_opts io = { .tuning = { .txg_timeout_ms = 600000,
                                               .arc_max_bytes = 64u << 20 } };
    cr_assert_eq(pool_import(paths, 1, &io, &p, &em), 0, "pool_import: %s", em.text);
    return p;
}

static inline void
test_verify_msg(void *arg, const char *msg)
{
    (void)arg;
    fprintf(stderr, "verifier: %s\n", msg);
}

/* Exports p, runs the offline verifier on test_dev[0] (must be clean) and imports again. */
static inline struct pool *
test_pool_verify(struct pool *p)
{
    const char *paths[1] = { test_dev[0] };
    struct err_msg em = { 0 };
    cr_assert_eq(pool_export(p), 0);
    struct verify_report r;
    cr_assert_eq(verify_pool(paths, 1, NULL, &r, test_verify_msg, NULL, &em), 0, "verify: %s",
                 em.text);
    cr_assert_eq(r.errors, 0, "verifier found %llu violations", (unsigned long long)r.errors);
    return test_pool_reimport(NULL);
}

#endif
