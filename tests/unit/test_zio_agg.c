/* SPDX-License-Identifier: MIT */
/*
 * Merged device writes (core/zio_agg.c): blocks allocated back to back go to the device as one
 * write, and must land exactly where their DVAs say, through O_DIRECT and the page cache, on
 * plain devices and mirrors; a merged write that fails is redone block by block.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/blkbuf.h"
#include "core/objset.h"
#include "core/pool.h"
#include "core/pool_impl.h"
#include "core/vdev_backend.h"
#include "core/verify.h"
#include "test_util.h"

TestSuite(zio_agg, .init = test_tmpdir_setup, .fini = test_tmpdir_teardown, .timeout = 240);

#define BLK         16384u
#define NBLKS       600 /* > VDEV_IOV_MAX blocks and several ZIO_AGG_MAX runs in one txg */
/* More than one SYNC_ISSUE_CHUNK_BYTES part: the second is prepared while the first is written. */
#define NBLKS_PARTS (SYNC_ISSUE_CHUNK_BYTES / BLK + 552)

/* Block b of the image: random, half random half zero (compressed: another size), or zero. */
static void
fill_block(uint8_t *buf, unsigned b, uint64_t seed)
{
    uint64_t s = seed * 1000003u + b;
    for (unsigned i = 0; i < BLK; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (uint8_t)(s >> 56);
    }
    if (b % 3 == 1)
        memset(buf + BLK / 2, 0, BLK / 2);
    else if (b % 17 == 5)
        memset(buf, 0, BLK); /* a hole in the middle of a run */
}

static uint64_t
write_image(struct pool *p, uint64_t seed, unsigned nblks)
{
    struct tx tx;
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    struct obj_create_opts o = {
        .type = OT_PLAIN, .blocksize = BLK, .checksum = CKSUM_INHERIT, .compress = COMPRESS_INHERIT
    };
    uint64_t obj;
    cr_assert_eq(obj_create(pool_root_objset(p), &tx, &o, &obj), 0);
    tx_commit(&tx);
    uint8_t *buf = malloc(BLK);
    cr_assert(buf != NULL);
    for (unsigned b = 0; b < nblks; b++) {
        fill_block(buf, b, seed);
        cr_assert_eq(tx_assign(p, BLK, &tx), 0);
        cr_assert_eq(obj_write(pool_root_objset(p), &tx, obj, (uint64_t)b * BLK, BLK, buf), 0);
        tx_commit(&tx);
    }
    free(buf);
    cr_assert_eq(pool_sync(p, NULL), 0);
    return obj;
}

static void
check_image(struct pool *p, uint64_t obj, uint64_t seed, unsigned nblks)
{
    uint8_t *want = malloc(BLK), *got = malloc(BLK);
    cr_assert(want != NULL && got != NULL);
    for (unsigned b = 0; b < nblks; b++) {
        fill_block(want, b, seed);
        cr_assert_eq(obj_read(pool_root_objset(p), obj, (uint64_t)b * BLK, BLK, got), 0, "block %u",
                     b);
        cr_assert(memcmp(want, got, BLK) == 0, "block %u differs", b);
    }
    free(want);
    free(got);
}

static void
verify_clean(const char *const *paths, size_t n)
{
    struct verify_report r;
    struct err_msg em = { 0 };
    cr_assert_eq(verify_pool(paths, n, NULL, &r, NULL, NULL, &em), 0, "%s", em.text);
    cr_assert_eq(r.errors, 0, "%llu verifier errors", (unsigned long long)r.errors);
}

/* Written with each direct-I/O mode, read back through another, on a stripe and a mirror. */
static void
round_trip(const char *const *words, size_t nwords, const char *const *paths, size_t npaths,
           unsigned nblks)
{
    static const enum vdev_direct modes[] = { VDEV_DIRECT_WRITES, VDEV_DIRECT_OFF,
                                              VDEV_DIRECT_ALL };
    for (size_t m = 0; m < 3; m++) {
        for (size_t i = 0; i < npaths; i++)
            unlink(paths[i]);
        struct pool_opts o = { .create_files = true,
                               .create_size = 128ull << 20,
                               .txg_timeout_ms = 600000,
                               .dirty_max_bytes = 1ull << 30, /* one txg, whatever the RAM */
                               .arc_max_bytes = 8u << 20,
                               .direct_io = modes[m] };
        struct pool *p = NULL;
        struct err_msg em = { 0 };
        struct blkbuf_stats closed;
        blkbuf_get_stats(&closed);
        cr_assert_eq(pool_create("tank", words, nwords, &o, &p, &em), 0, "%s", em.text);
        uint64_t obj = write_image(p, m + 1, nblks);
        check_image(p, obj, m + 1, nblks);
        struct blkbuf_stats before, after;
        blkbuf_get_stats(&before);
        /* An open pool holds the dirty data its writers may keep (60 % of dirty_max) as spare
         * block memory, and export releases it. */
        cr_assert_eq(before.spare_bytes, closed.spare_bytes + o.dirty_max_bytes * 60 / 100);
        cr_assert_eq(pool_export(p), 0);
        blkbuf_get_stats(&after);
        cr_assert_eq(after.spare_bytes, closed.spare_bytes);
        /* The blocks went through 40 MiB of dirty buffers, more than a size keeps spare: the
         * export gives what it freed back to the kernel at once, without waiting for it to idle. */
        if (nblks == NBLKS_PARTS)
            cr_assert_gt(after.slabs_freed, before.slabs_freed, "mode %zu", m);

        struct pool_import_opts io = { .tuning = { .arc_max_bytes = 8u << 20,
                                                   .direct_io = modes[(m + 1) % 3] } };
        cr_assert_eq(pool_import(paths, npaths, &io, &p, &em), 0, "%s", em.text);
        check_image(p, obj, m + 1, nblks);
        cr_assert_eq(pool_export(p), 0);
        verify_clean(paths, npaths);
    }
}

Test(zio_agg, merged_writes_land_where_each_dva_says_on_a_stripe)
{
    const char *paths[] = { test_dev[0], test_dev[1] };
    round_trip(paths, 2, paths, 2, NBLKS);
}

Test(zio_agg, a_txg_of_several_parts_lands_whole)
{
    const char *paths[] = { test_dev[0], test_dev[1] };
    round_trip(paths, 2, paths, 2, NBLKS_PARTS);
}

Test(zio_agg, merged_writes_land_where_each_dva_says_on_a_mirror)
{
    const char *words[] = { "mirror", test_dev[0], test_dev[1] };
    const char *paths[] = { test_dev[0], test_dev[1] };
    round_trip(words, 3, paths, 2, NBLKS);
}

/* Writes nblks blocks over a device whose nth segment write fails once; all must read back. */
static void
write_through_one_failure(unsigned nblks, unsigned nth)
{
    struct vdev_backend *mem, *fault, *dev;
    cr_assert_eq(vdev_mem_open(128ull << 20, &mem), 0);
    cr_assert_eq(vdev_fault_wrap(mem, &fault), 0);
    dev = fault; /* pool_create_layout takes it (and clears dev) */
    const char *words[] = { "mem0" };
    struct pool_opts o = { .txg_timeout_ms = 600000,
                           .dirty_max_bytes = 1ull << 30, /* one txg, whatever the RAM */
                           .arc_max_bytes = 8u << 20 };
    struct pool *p = NULL;
    struct err_msg em = { 0 };
    cr_assert_eq(pool_create_layout("tank", words, 1, &dev, 1, &o, &p, &em), 0, "%s", em.text);
    /* The fault wrapper writes a merged vector segment by segment. */
    vdev_fault_fail_nth_write(fault, nth);
    uint64_t obj = write_image(p, 7, nblks);
    struct pool_vdev_stats vs;
    cr_assert_eq(pool_get_vdev(p, 0, &vs), 0);
    cr_assert_eq(vs.write_errors, 1);
    arc_set_max(p->arc, 0); /* drop the cache: reads go to the device */
    arc_set_max(p->arc, 8u << 20);
    check_image(p, obj, 7, nblks);
    cr_assert_eq(pool_export(p), 0);
}

Test(zio_agg, a_failed_merged_write_is_redone_block_by_block)
{
    write_through_one_failure(NBLKS, 40); /* in the middle of a run */
}

Test(zio_agg, a_failed_write_in_a_later_part_is_redone_too)
{
    /* The first part's 2,048 blocks make about 1,930 segment writes (every 17th block is a
     * hole), all finished before the second part's start: the 2,200th is in the second part. */
    write_through_one_failure(NBLKS_PARTS, 2200);
}
