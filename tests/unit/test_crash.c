/* SPDX-License-Identifier: MIT */
/*
 * Power loss at every write of a commit: for each k, the k-th device write of the commit and
 * everything after it (writes, flushes, the volatile device cache) is lost. The pool must then
 * import at the previous or the new txg — never anything in between — with exactly that txg's
 * contents, and the verifier must find it clean.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "core/objset.h"
#include "core/pool.h"
#include "core/vdev_backend.h"
#include "core/verify.h"
#include "test_util.h"

TestSuite(crash, .init = test_tmpdir_setup, .fini = test_tmpdir_teardown, .timeout = 600);

#define OBJ_BYTES (600u * 1024)

static void
pattern(uint8_t *buf, size_t len, unsigned gen, unsigned obj)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)((i / 700) * 31 + gen * 7 + obj * 3 + (i % 13 == 0 ? i >> 3 : 0));
}

static void
do_write(struct pool *p, uint64_t obj, uint64_t off, const void *buf, size_t len)
{
    struct tx tx;
    cr_assert_eq(tx_assign(p, len, &tx), 0);
    cr_assert_eq(obj_write(pool_root_objset(p), &tx, obj, off, len, buf), 0);
    tx_commit(&tx);
}

/*
 * Generation A: objects 1 and 2 written and committed. Generation B (the commit that crashes):
 * object 1 overwritten in part, object 2 truncated, object 3 created and written.
 */
struct run_result {
    uint64_t txg_a, txg_b, writes;
};

static struct run_result
run(uint64_t crash_at, uint64_t *objs)
{
    struct vdev_backend *file, *dev_fault;
    struct vdev_file_opts fo = { .create = true, .create_size = 96u << 20 };
    unlink(test_dev[0]);
    cr_assert_eq(vdev_file_open(test_dev[0], &fo, &file), 0);
    cr_assert_eq(vdev_fault_wrap(file, &dev_fault), 0);
    vdev_fault_set_volatile_cache(dev_fault, true);
    struct pool_opts po = { .txg_timeout_ms = 600000, .journal_checkpoint_bytes = 8192 };
    struct pool *p;
    struct err_msg em = { 0 };
    struct vdev_backend *devs[1] = { dev_fault };
    cr_assert_eq(pool_create_backends("tank", devs, 1, &po, &p, &em), 0, "%s", em.text);
    uint8_t *buf = malloc(OBJ_BYTES);
    struct tx tx;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(tx_assign(p, 0, &tx), 0);
        struct obj_create_opts co = { .type = OT_PLAIN,
                                      .blocksize = i == 0 ? 4096 : 16384,
                                      .compress = COMPRESS_LZ4 };
        cr_assert_eq(obj_create(pool_root_objset(p), &tx, &co, &objs[i]), 0);
        tx_commit(&tx);
    }
    for (unsigned o = 0; o < 2; o++) {
        pattern(buf, OBJ_BYTES, 1, o);
        do_write(p, objs[o], 0, buf, OBJ_BYTES);
    }
    struct run_result r = { 0 };
    cr_assert_eq(pool_sync(p, &r.txg_a), 0);

    pattern(buf, OBJ_BYTES, 2, 0);
    do_write(p, objs[0], 100000, buf, 200000);
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    cr_assert_eq(obj_truncate(pool_root_objset(p), &tx, objs[1], 250000), 0);
    tx_commit(&tx);
    pattern(buf, OBJ_BYTES, 2, 2);
    do_write(p, objs[2], 0, buf, OBJ_BYTES / 2);

    struct vdev_fault_stats before, after;
    vdev_fault_get_stats(dev_fault, &before);
    vdev_fault_crash_after_writes(dev_fault, crash_at);
    /*
     * The pool cannot tell that the device lost power; the commit either "succeeds" or fails
     * when it reads back a block that never reached the platter (then the pool suspends). A
     * real machine would simply have stopped. Either way, what is on disk is what counts.
     */
    int rc = pool_sync(p, &r.txg_b);
    cr_assert(rc == 0 || crash_at != 0, "commit without a crash failed: %d", rc);
    if (rc != 0)
        r.txg_b = r.txg_a + 1;
    vdev_fault_get_stats(dev_fault, &after);
    r.writes = after.writes - before.writes;
    pool_close(p); /* closes the wrapper: unflushed writes are gone */
    free(buf);
    return r;
}

static void
expect_generation(struct pool *p, const uint64_t *objs, bool new_gen, uint64_t k)
{
    uint8_t *buf = malloc(OBJ_BYTES), *want = malloc(OBJ_BYTES);
    struct objset *os = pool_root_objset(p);
    struct obj_info info;
    /* object 1 */
    pattern(want, OBJ_BYTES, 1, 0);
    if (new_gen) {
        uint8_t *b2 = malloc(OBJ_BYTES);
        pattern(b2, OBJ_BYTES, 2, 0);
        memcpy(want + 100000, b2, 200000);
        free(b2);
    }
    cr_assert_eq(obj_read(os, objs[0], 0, OBJ_BYTES, buf), 0, "crash at %llu",
                 (unsigned long long)k);
    cr_assert_eq(memcmp(buf, want, OBJ_BYTES), 0, "object 1 mixes generations (crash at %llu)",
                 (unsigned long long)k);
    /* object 2 */
    cr_assert_eq(obj_stat(os, objs[1], &info), 0);
    cr_assert_eq(info.size, new_gen ? 250000 : OBJ_BYTES, "crash at %llu", (unsigned long long)k);
    pattern(want, OBJ_BYTES, 1, 1);
    cr_assert_eq(obj_read(os, objs[1], 0, info.size, buf), 0);
    cr_assert_eq(memcmp(buf, want, info.size), 0);
    /* object 3 */
    cr_assert_eq(obj_stat(os, objs[2], &info), 0);
    cr_assert_eq(info.size, new_gen ? OBJ_BYTES / 2 : 0, "crash at %llu", (unsigned long long)k);
    if (new_gen) {
        pattern(want, OBJ_BYTES, 2, 2);
        cr_assert_eq(obj_read(os, objs[2], 0, OBJ_BYTES / 2, buf), 0);
        cr_assert_eq(memcmp(buf, want, OBJ_BYTES / 2), 0);
    }
    free(buf);
    free(want);
}

Test(crash, power_loss_at_every_write_of_a_commit_leaves_old_or_new_state)
{
    uint64_t objs[3];
    struct run_result full = run(0, objs);
    cr_assert_gt(full.writes, 5);
    unsigned saw_old = 0, saw_new = 0;
    for (uint64_t k = 1; k <= full.writes + 1; k++) {
        struct run_result r = run(k, objs);
        const char *paths[1] = { test_dev[0] };
        struct pool *p;
        struct err_msg em = { 0 };
        struct pool_import_opts io = { .tuning = { .txg_timeout_ms = 600000 } };
        cr_assert_eq(pool_import(paths, 1, &io, &p, &em), 0, "crash at %llu: %s",
                     (unsigned long long)k, em.text);
        struct pool_stats st;
        pool_get_stats(p, &st);
        cr_assert(st.synced_txg == r.txg_a || st.synced_txg == r.txg_b,
                  "crash at write %llu: imported txg %llu, expected %llu or %llu",
                  (unsigned long long)k, (unsigned long long)st.synced_txg,
                  (unsigned long long)r.txg_a, (unsigned long long)r.txg_b);
        bool new_gen = st.synced_txg == r.txg_b;
        expect_generation(p, objs, new_gen, k);
        if (k > full.writes)
            cr_assert(new_gen, "no crash, yet the commit was lost");
        saw_old += !new_gen;
        saw_new += new_gen;
        pool_close(p);
        struct verify_report vr;
        cr_assert_eq(verify_pool(paths, 1, NULL, &vr, NULL, NULL, &em), 0);
        cr_assert_eq(vr.errors, 0, "crash at %llu: verifier found %llu errors",
                     (unsigned long long)k, (unsigned long long)vr.errors);
    }
    cr_log_info("%llu crash points: %u old, %u new", (unsigned long long)full.writes + 1, saw_old,
                saw_new);
    cr_assert_gt(saw_old, 0);
    cr_assert_gt(saw_new, 0);
}
