/* SPDX-License-Identifier: MIT */
/*
 * Many writers, readers and the sync thread at once: four threads write, punch and read back
 * their own stripes of one shared object and their own private objects while commits run
 * continuously; every read must see the thread's own latest writes, and after export and import
 * everything must match and verify clean.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "core/objset.h"
#include "core/pool.h"
#include "core/verify.h"
#include "test_util.h"

TestSuite(concurrency, .init = test_tmpdir_setup, .fini = test_tmpdir_teardown, .timeout = 300);

#define NTHREADS 4
#define STRIPE   (256u * 1024) /* each thread owns one stripe of the shared object */
#define PRIVATE  (512u * 1024)
#define OPS      400

struct worker {
    struct pool *p;
    uint64_t shared, mine;
    unsigned id;
    uint64_t seed;
    uint8_t shared_model[STRIPE];
    uint8_t private_model[PRIVATE];
    char failure[256];
};

static void *
work(void *arg)
{
    struct worker *w = arg;
    struct objset *os = pool_root_objset(w->p);
    uint8_t buf[64 * 1024], got[64 * 1024];
    for (int op = 0; op < OPS && !w->failure[0]; op++) {
        bool shared = test_rnd(&w->seed) % 2;
        uint64_t obj = shared ? w->shared : w->mine;
        uint64_t span = shared ? STRIPE : PRIVATE;
        uint64_t base = shared ? (uint64_t)w->id * STRIPE : 0;
        uint8_t *model = shared ? w->shared_model : w->private_model;
        uint64_t off = test_rnd(&w->seed) % span;
        size_t len = 1 + test_rnd(&w->seed) % sizeof(buf);
        if (off + len > span)
            len = span - off;
        struct tx tx;
        if (tx_assign(w->p, len, &tx) != 0) {
            snprintf(w->failure, sizeof(w->failure), "tx_assign failed");
            break;
        }
        int rc;
        if (test_rnd(&w->seed) % 5 == 0) {
            rc = obj_punch(os, &tx, obj, base + off, len);
            memset(model + off, 0, len);
        } else {
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)(test_rnd(&w->seed) % 4 == 0 ? 0 : (w->id * 50 + op + i / 100));
            rc = obj_write(os, &tx, obj, base + off, len, buf);
            memcpy(model + off, buf, len);
        }
        tx_commit(&tx);
        if (rc != 0) {
            snprintf(w->failure, sizeof(w->failure), "op %d failed: %d", op, rc);
            break;
        }
        uint64_t roff = test_rnd(&w->seed) % span;
        size_t rlen = 1 + test_rnd(&w->seed) % sizeof(got);
        if (roff + rlen > span)
            rlen = span - roff;
        rc = obj_read(os, obj, base + roff, rlen, got);
        if (rc != 0 || memcmp(got, model + roff, rlen) != 0)
            snprintf(w->failure, sizeof(w->failure), "thread %u op %d: read back differs (rc %d)",
                     w->id, op, rc);
    }
    return NULL;
}

static void
check_all(struct pool *p, struct worker *ws)
{
    struct objset *os = pool_root_objset(p);
    uint8_t *buf = malloc(PRIVATE);
    for (unsigned t = 0; t < NTHREADS; t++) {
        cr_assert_eq(obj_read(os, ws[t].shared, (uint64_t)t * STRIPE, STRIPE, buf), 0);
        cr_assert_eq(memcmp(buf, ws[t].shared_model, STRIPE), 0, "shared stripe %u differs", t);
        cr_assert_eq(obj_read(os, ws[t].mine, 0, PRIVATE, buf), 0);
        cr_assert_eq(memcmp(buf, ws[t].private_model, PRIVATE), 0, "private object %u differs", t);
    }
    free(buf);
}

Test(concurrency, writers_readers_and_commits_agree)
{
    const char *paths[1] = { test_dev[0] };
    struct pool_opts po = { .create_files = true,
                            .create_size = 256u << 20,
                            .txg_timeout_ms = 1,
                            .journal_checkpoint_bytes = 16384,
                            .arc_max_bytes = 4u << 20 };
    struct pool *p;
    struct err_msg em = { 0 };
    cr_assert_eq(pool_create("tank", paths, 1, &po, &p, &em), 0, "%s", em.text);
    static struct worker ws[NTHREADS];
    struct tx tx;
    uint64_t shared;
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    struct obj_create_opts co = { .type = OT_PLAIN, .blocksize = 4096 };
    cr_assert_eq(obj_create(pool_root_objset(p), &tx, &co, &shared), 0);
    for (unsigned t = 0; t < NTHREADS; t++) {
        memset(&ws[t], 0, sizeof(ws[t]));
        ws[t].p = p;
        ws[t].shared = shared;
        ws[t].id = t;
        ws[t].seed = 1000 + t;
        struct obj_create_opts o = { .type = OT_PLAIN,
                                     .blocksize = 512u << (t * 2),
                                     .compress = t % 2 ? COMPRESS_LZ4 : COMPRESS_OFF };
        cr_assert_eq(obj_create(pool_root_objset(p), &tx, &o, &ws[t].mine), 0);
    }
    tx_commit(&tx);
    pthread_t th[NTHREADS];
    for (unsigned t = 0; t < NTHREADS; t++)
        pthread_create(&th[t], NULL, work, &ws[t]);
    for (unsigned t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    for (unsigned t = 0; t < NTHREADS; t++)
        cr_assert_eq(ws[t].failure[0], 0, "%s", ws[t].failure);
    check_all(p, ws);
    cr_assert_eq(pool_export(p), 0);
    struct pool_import_opts io = { .tuning = { .txg_timeout_ms = 60000 } };
    cr_assert_eq(pool_import(paths, 1, &io, &p, &em), 0, "%s", em.text);
    check_all(p, ws);
    pool_close(p);
    struct verify_report r;
    cr_assert_eq(verify_pool(paths, 1, NULL, &r, NULL, NULL, &em), 0);
    cr_assert_eq(r.errors, 0);
}

/* ---- a tx of txg T that outlives the start of T's commit ---------------------------------- */

struct late {
    struct pool *p;
    uint64_t x;
    atomic_bool assigned;
    uint64_t txg;
};

static void *
syncer(void *arg)
{
    pool_sync(arg, NULL);
    return NULL;
}

static void *
late_writer(void *arg)
{
    struct late *l = arg;
    struct tx tx;
    cr_assert_eq(tx_assign(l->p, 0, &tx), 0);
    atomic_store(&l->assigned, true);
    l->txg = tx.txg;
    cr_assert_eq(obj_write(pool_root_objset(l->p), &tx, l->x, 0, 5, "hello"), 0);
    tx_commit(&tx);
    return NULL;
}

Test(concurrency, next_txg_opens_only_after_the_closing_one_drained)
{
    struct pool *p = test_pool_create(128u << 20);
    struct objset *os = pool_root_objset(p);
    struct tx a;
    uint64_t x, y;
    cr_assert_eq(tx_assign(p, 0, &a), 0);
    struct obj_create_opts co = { .type = OT_PLAIN, .blocksize = 4096 };
    cr_assert_eq(obj_create(os, &a, &co, &x), 0);
    cr_assert_eq(obj_create(os, &a, &co, &y), 0);
    tx_commit(&a);
    cr_assert_eq(pool_sync(p, NULL), 0);

    cr_assert_eq(tx_assign(p, 0, &a), 0); /* A joins txg T and stays */
    pthread_t s, b;
    static struct late l;
    l.p = p;
    l.x = x;
    atomic_store(&l.assigned, false);
    pthread_create(&s, NULL, syncer, p); /* T starts closing */
    usleep(20000);
    pthread_create(&b, NULL, late_writer, &l); /* B wants the next txg */
    usleep(50000);
    cr_assert(!atomic_load(&l.assigned), "a tx joined txg %llu while txg %llu had holds",
              (unsigned long long)l.txg, (unsigned long long)a.txg);
    cr_assert_eq(obj_write(os, &a, x, 1 << 20, 5, "world"), 0);
    cr_assert_eq(obj_destroy(os, &a, y), 0);
    tx_commit(&a);
    pthread_join(b, NULL);
    pthread_join(s, NULL);
    cr_assert_gt(l.txg, a.txg);
    p = test_pool_reimport(p);
    struct obj_info info;
    cr_assert_eq(obj_stat(pool_root_objset(p), x, &info), 0);
    cr_assert_eq(info.size, (1u << 20) + 5, "A's write was undone by the later txg");
    cr_assert_eq(obj_stat(pool_root_objset(p), y, &info), -ENOENT, "A's destroy was undone");
    char buf[5];
    cr_assert_eq(obj_read(pool_root_objset(p), x, 0, 5, buf), 0);
    cr_assert_eq(memcmp(buf, "hello", 5), 0);
    pool_close(p);
}
