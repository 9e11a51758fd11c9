/* SPDX-License-Identifier: MIT */
/*
 * The offline verifier: clean pools verify clean (after many commits, punches and a space
 * checkpoint); a flipped bit is reported naming the object and block; a torn newest uberblock
 * is rewound past and the older txg verifies clean.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "core/label.h"
#include "core/objset.h"
#include "core/pool.h"
#include "core/pool_impl.h"
#include "core/verify.h"
#include "test_util.h"

TestSuite(verify, .init = test_tmpdir_setup, .fini = test_tmpdir_teardown, .timeout = 120);

static char last_msg[640];
static int nmsgs;

static void
collect(void *arg, const char *msg)
{
    (void)arg;
    nmsgs++;
    snprintf(last_msg, sizeof(last_msg), "%s", msg);
    fprintf(stderr, "violation: %s\n", msg);
}

static struct verify_report
run_verify(uint64_t rewind)
{
    const char *paths[1] = { test_dev[0] };
    struct verify_opts o = { .rewind_txg = rewind };
    struct verify_report r;
    struct err_msg em = { 0 };
    nmsgs = 0;
    int rc = verify_pool(paths, 1, &o, &r, collect, NULL, &em);
    cr_assert_eq(rc, 0, "verify_pool: %d %s", rc, em.text);
    return r;
}

/* Builds a pool with several objects, punches, truncates and enough commits to checkpoint. */
static uint64_t
build_pool(uint64_t *txgs, int ntxgs)
{
    const char *paths[1] = { test_dev[0] };
    struct pool_opts o = { .create_files = true,
                           .create_size = 128u << 20,
                           .txg_timeout_ms = 60000,
                           .journal_checkpoint_bytes = 4096 };
    struct pool *p;
    struct err_msg em = { 0 };
    cr_assert_eq(pool_create("tank", paths, 1, &o, &p, &em), 0, "%s", em.text);
    struct objset *os = pool_root_objset(p);
    uint8_t *buf = malloc(1 << 20);
    uint64_t objs[4];
    for (int i = 0; i < 4; i++) {
        struct tx tx;
        cr_assert_eq(tx_assign(p, 0, &tx), 0);
        struct obj_create_opts co = { .type = OT_PLAIN,
                                      .blocksize = 4096u << i,
                                      .compress = i % 2 ? COMPRESS_LZ4 : COMPRESS_OFF };
        cr_assert_eq(obj_create(os, &tx, &co, &objs[i]), 0);
        tx_commit(&tx);
    }
    for (int t = 0; t < ntxgs; t++) {
        for (int i = 0; i < 4; i++) {
            for (size_t b = 0; b < (1 << 20); b++)
                buf[b] = (uint8_t)(b * (size_t)(t + 1) >> (i * 3));
            struct tx tx;
            cr_assert_eq(tx_assign(p, 0, &tx), 0);
            cr_assert_eq(obj_write(os, &tx, objs[i], (uint64_t)t * 65536, 300000, buf), 0);
            if (t % 3 == 2)
                cr_assert_eq(obj_punch(os, &tx, objs[i], 10000, 100000), 0);
            if (t % 5 == 4)
                cr_assert_eq(obj_truncate(os, &tx, objs[i], 200000), 0);
            tx_commit(&tx);
        }
        cr_assert_eq(pool_sync(p, &txgs[t]), 0);
    }
    free(buf);
    uint64_t obj = objs[0];
    pool_close(p);
    return obj;
}

Test(verify, clean_pool_verifies_clean_across_commits_and_checkpoints)
{
    uint64_t txgs[12];
    build_pool(txgs, 12);
    struct verify_report r = run_verify(0);
    cr_assert_eq(r.errors, 0, "%llu errors, last: %s", (unsigned long long)r.errors, last_msg);
    cr_assert_eq(r.txg, txgs[11]);
    cr_assert_gt(r.blocks, 20);
    cr_assert_eq(r.allocated_bytes, r.asize_bytes, "allocated %llu reachable %llu",
                 (unsigned long long)r.allocated_bytes, (unsigned long long)r.asize_bytes);
    /* Every older txg still in the ring that was not yet overwritten verifies as well. */
    struct verify_report old = run_verify(txgs[10]);
    cr_assert_eq(old.txg, txgs[10]);
    cr_assert_eq(old.errors, 0, "rewound verify: %s", last_msg);
}

Test(verify, flipped_bit_is_reported_naming_object_and_block)
{
    uint64_t txgs[2];
    uint64_t obj = build_pool(txgs, 2);
    /* Find a data block of obj and damage it. */
    const char *paths[1] = { test_dev[0] };
    struct pool_import_opts io = { .readonly = true };
    struct pool *p;
    struct err_msg em = { 0 };
    cr_assert_eq(pool_import(paths, 1, &io, &p, &em), 0, "%s", em.text);
    struct dnode *dn;
    cr_assert_eq(dnode_hold(pool_root_objset(p), obj, false, &dn), 0);
    struct blkptr l1 = dn->phys.blkptr[0];
    int nlevels = dn->phys.nlevels;
    dnode_rele(dn);
    pool_close(p);
    cr_assert_eq(nlevels, 2, "expected an indirect level");
    cr_assert(!bp_is_hole(&l1));
    int fd = open(test_dev[0], O_RDWR);
    uint8_t byte;
    off_t where = (off_t)(VDEV_DATA_START + l1.dva[0].offset + 5);
    cr_assert_eq(pread(fd, &byte, 1, where), 1);
    byte ^= 0x80;
    cr_assert_eq(pwrite(fd, &byte, 1, where), 1);
    close(fd);
    struct verify_report r = run_verify(0);
    cr_assert_eq(r.cksum_errors, 1, "checksum errors %llu", (unsigned long long)r.cksum_errors);
    char expect[64];
    snprintf(expect, sizeof(expect), "object %llu level 1 block 0", (unsigned long long)obj);
    cr_assert_not_null(strstr(last_msg, expect), "message '%s' lacks '%s'", last_msg, expect);
    cr_assert_not_null(strstr(last_msg, "copy 0 fails its checksum"));
    /* The ditto copy of the indirect block keeps the data reachable: nothing else is wrong. */
    cr_assert_eq(r.errors, 1);
}

Test(verify, torn_uberblock_falls_back_and_older_txg_verifies)
{
    uint64_t txgs[3];
    build_pool(txgs, 3);
    int fd = open(test_dev[0], O_RDWR);
    off_t size = lseek(fd, 0, SEEK_END);
    uint8_t junk[64];
    memset(junk, 0xee, sizeof(junk));
    for (int l = 0; l < LABEL_COUNT; l++) {
        uint64_t off = label_offset((uint64_t)size, l) + LABEL_RING_OFF +
                       (txgs[2] % UB_SLOTS) * UB_SLOT_SIZE + 1000;
        cr_assert_eq(pwrite(fd, junk, sizeof(junk), (off_t)off), (ssize_t)sizeof(junk));
    }
    close(fd);
    struct verify_report r = run_verify(0);
    cr_assert_eq(r.txg, txgs[1]);
    cr_assert_eq(r.errors, 0, "%s", last_msg);
}
