/* SPDX-License-Identifier: MIT */
/*
 * Corrupt disks: random damage to a pool's metadata and data areas and labels must give clear
 * errors (import refusal, -ECKSUM/-ECORRUPT reads, verifier violations) and never a crash, an
 * assertion or a sanitizer report; data that is returned must be correct.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "core/objset.h"
#include "core/pool.h"
#include "core/verify.h"
#include "test_util.h"

TestSuite(corrupt, .init = test_tmpdir_setup, .fini = test_tmpdir_teardown, .timeout = 300);

#define NOBJ 3
#define SZ   (300u * 1024)

static void
content(uint8_t *buf, size_t len, unsigned obj)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i / 37 + obj * 11);
}

static void
copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = open(to, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    cr_assert(in >= 0 && out >= 0);
    struct stat st;
    cr_assert_eq(fstat(in, &st), 0);
    cr_assert_eq(ftruncate(out, st.st_size), 0);
    static uint8_t buf[1 << 20];
    for (off_t off = 0; off < st.st_size; off += sizeof(buf)) {
        ssize_t n = pread(in, buf, sizeof(buf), off);
        cr_assert_gt(n, 0);
        bool zero = buf[0] == 0 && memcmp(buf, buf + 1, (size_t)n - 1) == 0;
        if (!zero) /* keep the copy sparse */
            cr_assert_eq(pwrite(out, buf, (size_t)n, off), n);
    }
    close(in);
    close(out);
}

Test(corrupt, random_damage_never_crashes_and_never_returns_wrong_data)
{
    const char *golden = test_dev[1], *work = test_dev[0];
    const char *gp[1] = { golden };
    struct pool_opts po = { .create_files = true,
                            .create_size = 64u << 20,
                            .txg_timeout_ms = 600000,
                            .journal_checkpoint_bytes = 4096 };
    struct pool *p;
    struct err_msg em = { 0 };
    cr_assert_eq(pool_create("tank", gp, 1, &po, &p, &em), 0, "%s", em.text);
    uint64_t objs[NOBJ];
    uint8_t *buf = malloc(SZ), *want = malloc(SZ);
    for (unsigned o = 0; o < NOBJ; o++) {
        struct tx tx;
        cr_assert_eq(tx_assign(p, 0, &tx), 0);
        struct obj_create_opts co = { .type = OT_PLAIN,
                                      .blocksize = 4096u << o,
                                      .compress = o == 1 ? COMPRESS_OFF : COMPRESS_LZ4 };
        cr_assert_eq(obj_create(pool_root_objset(p), &tx, &co, &objs[o]), 0);
        content(buf, SZ, o);
        cr_assert_eq(obj_write(pool_root_objset(p), &tx, objs[o], 0, SZ, buf), 0);
        tx_commit(&tx);
        cr_assert_eq(pool_sync(p, NULL), 0);
    }
    struct pool_stats st;
    pool_get_stats(p, &st);
    uint64_t span = st.allocated * 4; /* allocations sit low on a fresh pool */
    cr_assert_eq(pool_export(p), 0);

    uint64_t s = 1234;
    unsigned imported = 0, refused = 0, read_errors = 0;
    for (int iter = 0; iter < 60; iter++) {
        copy_file(golden, work);
        int fd = open(work, O_RDWR);
        off_t devsize = lseek(fd, 0, SEEK_END);
        for (int hit = 0; hit < 1 + (int)(test_rnd(&s) % 6); hit++) {
            uint64_t where;
            if (test_rnd(&s) % 4 == 0) /* a label */
                where = (test_rnd(&s) % 2 ? 0 : (uint64_t)devsize - (512u << 10)) +
                        test_rnd(&s) % (512u << 10);
            else
                where = (4u << 20) + test_rnd(&s) % span;
            uint8_t junk[512];
            for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = (uint8_t)test_rnd(&s);
            size_t len = 1 + test_rnd(&s) % sizeof(junk);
            cr_assert_eq(pwrite(fd, junk, len, (off_t)where), (ssize_t)len);
        }
        close(fd);
        const char *wp[1] = { work };
        struct pool_import_opts io = { .readonly = test_rnd(&s) % 2 == 0,
                                       .tuning = { .txg_timeout_ms = 600000 } };
        if (pool_import(wp, 1, &io, &p, &em) != 0) {
            refused++;
            continue;
        }
        imported++;
        for (unsigned o = 0; o < NOBJ; o++) {
            content(want, SZ, o);
            int rc = obj_read(pool_root_objset(p), objs[o], 0, SZ, buf);
            if (rc != 0) {
                cr_assert(rc == -ECKSUM || rc == -ECORRUPT || rc == -EIO || rc == -ENOENT,
                          "unexpected error %d", rc);
                read_errors++;
                continue;
            }
            cr_assert_eq(memcmp(buf, want, SZ), 0, "iteration %d: object %u read wrong data", iter,
                         o);
        }
        pool_close(p);
        struct verify_report vr;
        (void)verify_pool(wp, 1, NULL, &vr, NULL, NULL, &em);
    }
    cr_log_info("imported %u, refused %u, read errors %u", imported, refused, read_errors);
    cr_assert_gt(imported, 0);
    free(buf);
    free(want);
}
