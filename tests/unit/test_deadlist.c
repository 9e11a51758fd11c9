/* SPDX-License-Identifier: MIT */
/*
 * Deadlists match a model (a plain array of the inserted BPs and the keys at insert time) under
 * random inserts and key additions spread over many txgs, syncs and reimports: space of any
 * (key, key] birth range, bucket sums for arbitrary ranges, iteration order and content, merge
 * with the destination's bucketing, key removal; corrupt objects are refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "core/cksum.h"
#include "core/compress.h"
#include "core/deadlist.h"
#include "core/pool.h"
#include "core/verify.h"
#include "test_util.h"

TestSuite(deadlist, .init = test_tmpdir_setup, .fini = test_tmpdir_teardown, .timeout = 120);

#define MAXBPS  6000
#define MAXKEYS 200

struct model {
    struct blkptr bp[MAXBPS];
    uint64_t bucket[MAXBPS]; /* key the BP was accounted under at insert time */
    size_t n;
    uint64_t key[MAXKEYS];
    size_t nkeys;
};

static struct pool *
create_pool(void)
{
    const char *paths[1] = { test_dev[0] };
    struct pool_opts po = { .create_files = true,
                            .create_size = 128u << 20,
                            .txg_timeout_ms = 60000 };
    struct pool *p;
    struct err_msg em = { 0 };
    cr_assert_eq(pool_create("tank", paths, 1, &po, &p, &em), 0, "%s", em.text);
    return p;
}

static struct pool *
reimport(struct pool *p)
{
    const char *paths[1] = { test_dev[0] };
    struct err_msg em = { 0 };
    cr_assert_eq(pool_export(p), 0);
    struct pool_import_opts io = { .tuning = { .txg_timeout_ms = 60000 } };
    cr_assert_eq(pool_import(paths, 1, &io, &p, &em), 0, "%s", em.text);
    return p;
}

/* The exported pool passes the verifier (the deadlist objects are ordinary objects). */
static void
verify_clean(void)
{
    const char *paths[1] = { test_dev[0] };
    struct err_msg em = { 0 };
    struct verify_report r;
    cr_assert_eq(verify_pool(paths, 1, NULL, &r, NULL, NULL, &em), 0, "%s", em.text);
    cr_assert_eq(r.errors, 0);
}

static void
make_bp(uint64_t *s, uint64_t birth, struct blkptr *bp)
{
    memset(bp, 0, sizeof(*bp));
    bp->lsize = (uint32_t)(1 + test_rnd(s) % 256) * 512u;
    bp->psize = (uint32_t)(1 + test_rnd(s) % (bp->lsize / 512u)) * 512u;
    int ndvas = 1 + (int)(test_rnd(s) % 3);
    for (int d = 0; d < ndvas; d++) {
        bp->dva[d].vdev = 0;
        bp->dva[d].asize_sectors = bp->psize / 512u + (uint32_t)(test_rnd(s) % 8);
        bp->dva[d].offset = (test_rnd(s) % (1u << 20)) * 512u;
    }
    bp->comp = COMPRESS_LZ4;
    bp->cksum = CKSUM_XXH3;
    bp->type = OT_PLAIN;
    bp->level = 0;
    bp->birth = birth;
    bp->fill = 1;
    for (size_t i = 0; i < BP_CKSUM_LEN; i++)
        bp->cksum_val[i] = (uint8_t)test_rnd(s);
}

static void
model_insert(struct model *m, const struct blkptr *bp)
{
    cr_assert_lt(m->n, MAXBPS);
    uint64_t k = 0;
    for (size_t i = 0; i < m->nkeys; i++) {
        if (m->key[i] < bp->birth)
            k = m->key[i];
    }
    m->bp[m->n] = *bp;
    m->bucket[m->n] = k;
    m->n++;
}

static void
space_of(const struct blkptr *bp, struct deadlist_space *sp)
{
    sp->asize_bytes += bp_asize(bp);
    sp->psize_bytes += bp->psize;
    sp->lsize_bytes += bp->lsize;
    sp->count++;
}

static void
assert_space_eq(const struct deadlist_space *a, const struct deadlist_space *b, const char *what,
                uint64_t seed, uint64_t lo, uint64_t hi)
{
    cr_assert(a->asize_bytes == b->asize_bytes && a->psize_bytes == b->psize_bytes &&
                  a->lsize_bytes == b->lsize_bytes && a->count == b->count,
              "%s (%llu, %llu] seed %llu: got %llu/%llu/%llu/%llu want %llu/%llu/%llu/%llu", what,
              (unsigned long long)lo, (unsigned long long)hi, (unsigned long long)seed,
              (unsigned long long)a->asize_bytes, (unsigned long long)a->psize_bytes,
              (unsigned long long)a->lsize_bytes, (unsigned long long)a->count,
              (unsigned long long)b->asize_bytes, (unsigned long long)b->psize_bytes,
              (unsigned long long)b->lsize_bytes, (unsigned long long)b->count);
}

struct iter_state {
    const struct model *m;
    size_t i;
    size_t stop_at; /* return 99 after this many; SIZE_MAX = never */
};

static int
iter_check(void *arg, const struct blkptr *bp)
{
    struct iter_state *st = arg;
    if (st->i == st->stop_at)
        return 99;
    cr_assert_lt(st->i, st->m->n, "iterate produced more BPs than inserted");
    uint8_t a[BP_SIZE], b[BP_SIZE];
    bp_encode(bp, a);
    bp_encode(&st->m->bp[st->i], b);
    cr_assert_eq(memcmp(a, b, BP_SIZE), 0, "BP %zu differs", st->i);
    st->i++;
    return 0;
}

static int
count_bps(void *arg, const struct blkptr *bp)
{
    (void)bp;
    (*(size_t *)arg)++;
    return 0;
}

/* Checks count, totals, iteration and many ranges against the model. */
static void
check_against_model(struct deadlist *dl, const struct model *m, uint64_t *s, uint64_t seed)
{
    cr_assert_eq(deadlist_count(dl), m->n, "seed %llu", (unsigned long long)seed);
    struct deadlist_space got, want = { 0 };
    for (size_t i = 0; i < m->n; i++)
        space_of(&m->bp[i], &want);
    deadlist_space(dl, &got);
    assert_space_eq(&got, &want, "total", seed, 0, UINT64_MAX);

    /* Ranges between keys: exactly the BPs born in (lo, hi]. */
    for (int r = 0; r < 40; r++) {
        size_t i = (size_t)(test_rnd(s) % m->nkeys);
        size_t j = i + 1 + (size_t)(test_rnd(s) % (m->nkeys - i));
        uint64_t lo = m->key[i], hi = j == m->nkeys ? UINT64_MAX : m->key[j];
        want = (struct deadlist_space){ 0 };
        for (size_t k = 0; k < m->n; k++) {
            if (m->bp[k].birth > lo && m->bp[k].birth <= hi)
                space_of(&m->bp[k], &want);
        }
        deadlist_space_range(dl, lo, hi, &got);
        assert_space_eq(&got, &want, "birth range", seed, lo, hi);
    }
    /* Arbitrary bounds: the buckets with lo <= key < hi. */
    uint64_t top = m->key[m->nkeys - 1] + 10;
    for (int r = 0; r < 40; r++) {
        uint64_t lo = test_rnd(s) % top, hi = lo + test_rnd(s) % top;
        want = (struct deadlist_space){ 0 };
        for (size_t k = 0; k < m->n; k++) {
            if (m->bucket[k] >= lo && m->bucket[k] < hi)
                space_of(&m->bp[k], &want);
        }
        deadlist_space_range(dl, lo, hi, &got);
        assert_space_eq(&got, &want, "bucket range", seed, lo, hi);
    }

    struct iter_state st = { .m = m, .i = 0, .stop_at = SIZE_MAX };
    cr_assert_eq(deadlist_iterate(dl, iter_check, &st), 0);
    cr_assert_eq(st.i, m->n);
    if (m->n > 3) {
        st = (struct iter_state){ .m = m, .i = 0, .stop_at = m->n / 2 };
        cr_assert_eq(deadlist_iterate(dl, iter_check, &st), 99);
        cr_assert_eq(st.i, m->n / 2);
    }
}

/*
 * One round of random operations in one tx: inserts born at or before *txg (never after: the
 * caller only frees blocks that exist), occasional holes and embedded BPs, and add_key(*txg)
 * followed by advancing *txg, as snapshots would.
 */
static void
random_round(struct pool *p, struct deadlist *dl, struct model *m, uint64_t *txg, uint64_t *s,
             int ops)
{
    struct tx tx;
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    for (int op = 0; op < ops; op++) {
        unsigned r = (unsigned)(test_rnd(s) % 100);
        struct blkptr bp;
        if (r < 4 && m->nkeys < MAXKEYS) {
            cr_assert_eq(deadlist_add_key(dl, &tx, *txg), 0);
            m->key[m->nkeys++] = *txg;
            *txg += 1 + test_rnd(s) % 5;
        } else if (r < 6) {
            bp_make_hole(&bp, 4096, OT_PLAIN, 0, 1 + test_rnd(s) % *txg);
            cr_assert_eq(deadlist_insert(dl, &tx, &bp), 0);
        } else if (r < 7) {
            memset(&bp, 0, sizeof(bp));
            bp.flags = BP_FLAG_EMBEDDED;
            bp.lsize = 512;
            bp.psize = 40;
            bp.type = OT_PLAIN;
            bp.birth = *txg;
            cr_assert_eq(deadlist_insert(dl, &tx, &bp), 0);
        } else {
            /* mostly recent births, some old */
            uint64_t birth = (test_rnd(s) % 2) ? *txg - test_rnd(s) % 4 : 1 + test_rnd(s) % *txg;
            if (birth == 0)
                birth = 1;
            make_bp(s, birth, &bp);
            cr_assert_eq(deadlist_insert(dl, &tx, &bp), 0);
            model_insert(m, &bp);
        }
    }
    tx_commit(&tx);
}

static struct deadlist *
new_deadlist(struct pool *p, struct deadlist_phys *phys, struct model *m)
{
    struct tx tx;
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    cr_assert_eq(deadlist_create(pool_root_objset(p), &tx, phys), 0);
    tx_commit(&tx);
    struct deadlist *dl;
    cr_assert_eq(deadlist_open(pool_root_objset(p), phys, &dl), 0);
    memset(m, 0, sizeof(*m));
    m->key[0] = 0;
    m->nkeys = 1;
    return dl;
}

Test(deadlist, space_ranges_and_order_match_model_across_sync_and_reimport)
{
    uint64_t seed = 0x5eed0001, s = seed;
    cr_log_info("seed %llu", (unsigned long long)seed);
    struct pool *p = create_pool();
    static struct model m;
    struct deadlist_phys phys;
    struct deadlist *dl = new_deadlist(p, &phys, &m);
    uint64_t txg = 5;
    for (int round = 0; round < 24; round++) {
        random_round(p, dl, &m, &txg, &s, 150);
        if (round % 8 == 7) {
            deadlist_close(dl);
            p = reimport(p);
            cr_assert_eq(deadlist_open(pool_root_objset(p), &phys, &dl), 0);
        } else if (round % 3 == 0) {
            cr_assert_eq(pool_sync(p, NULL), 0);
        }
        check_against_model(dl, &m, &s, seed);
    }
    /* The phys record round-trips. */
    uint8_t raw[DEADLIST_PHYS_SIZE];
    struct deadlist_phys back;
    deadlist_phys_encode(&phys, raw);
    cr_assert_eq(deadlist_phys_decode(raw, &back), 0);
    cr_assert(back.bps_obj == phys.bps_obj && back.summary_obj == phys.summary_obj);
    deadlist_close(dl);
    cr_assert_eq(pool_export(p), 0);
    verify_clean();
}

Test(deadlist, merge_appends_source_with_destination_bucketing)
{
    uint64_t seed = 0x5eed0002, s = seed;
    cr_log_info("seed %llu", (unsigned long long)seed);
    struct pool *p = create_pool();
    static struct model md, ms;
    struct deadlist_phys pd, ps;
    struct deadlist *dst = new_deadlist(p, &pd, &md);
    struct deadlist *src = new_deadlist(p, &ps, &ms);
    uint64_t td = 5, ts = 3;
    for (int round = 0; round < 6; round++) {
        random_round(p, dst, &md, &td, &s, 120);
        random_round(p, src, &ms, &ts, &s, 200);
    }
    cr_assert_eq(pool_sync(p, NULL), 0);
    /* merge: dst's model gets src's BPs, bucketed by dst's keys */
    struct tx tx;
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    cr_assert_eq(deadlist_merge(dst, &tx, src), 0);
    tx_commit(&tx);
    for (size_t i = 0; i < ms.n; i++)
        model_insert(&md, &ms.bp[i]);
    check_against_model(dst, &md, &s, seed);
    check_against_model(src, &ms, &s, seed); /* src unchanged */

    deadlist_close(dst);
    deadlist_close(src);
    p = reimport(p);
    cr_assert_eq(deadlist_open(pool_root_objset(p), &pd, &dst), 0);
    cr_assert_eq(deadlist_open(pool_root_objset(p), &ps, &src), 0);
    check_against_model(dst, &md, &s, seed);
    check_against_model(src, &ms, &s, seed);

    /* destroy src; its objects are gone */
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    deadlist_close(src);
    cr_assert_eq(deadlist_destroy(pool_root_objset(p), &tx, &ps), 0);
    tx_commit(&tx);
    cr_assert_eq(deadlist_open(pool_root_objset(p), &ps, &src), -ENOENT);
    deadlist_close(dst);
    cr_assert_eq(pool_export(p), 0);
    verify_clean();
}

Test(deadlist, keys_must_increase_and_removal_folds_into_previous)
{
    uint64_t s = 42;
    struct pool *p = create_pool();
    static struct model m;
    struct deadlist_phys phys;
    struct deadlist *dl = new_deadlist(p, &phys, &m);
    struct tx tx;
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    cr_assert_eq(deadlist_add_key(dl, &tx, 10), 0);
    cr_assert_eq(deadlist_add_key(dl, &tx, 20), 0);
    cr_assert_eq(deadlist_add_key(dl, &tx, 20), -EEXIST);
    cr_assert_eq(deadlist_add_key(dl, &tx, 10), -EEXIST);
    cr_assert_eq(deadlist_add_key(dl, &tx, 0), -EEXIST);
    cr_assert_eq(deadlist_add_key(dl, &tx, 15), -EINVAL);
    struct blkptr bp;
    make_bp(&s, 0, &bp);
    cr_assert_eq(deadlist_insert(dl, &tx, &bp), -EINVAL);
    uint64_t births[] = { 1, 10, 11, 20, 21, 25 };
    struct deadlist_space b[3] = { { 0 } }; /* buckets 0, 10, 20 */
    for (size_t i = 0; i < 6; i++) {
        make_bp(&s, births[i], &bp);
        cr_assert_eq(deadlist_insert(dl, &tx, &bp), 0);
        space_of(&bp, &b[births[i] <= 10 ? 0 : births[i] <= 20 ? 1 : 2]);
    }
    struct deadlist_space got;
    deadlist_space_range(dl, 10, 20, &got);
    assert_space_eq(&got, &b[1], "bucket 10", 42, 10, 20);
    cr_assert_eq(deadlist_remove_key(dl, &tx, 0), -EINVAL);
    cr_assert_eq(deadlist_remove_key(dl, &tx, 15), -ENOENT);
    cr_assert_eq(deadlist_remove_key(dl, &tx, 20), 0);
    tx_commit(&tx);
    struct deadlist_space fold = b[1];
    fold.asize_bytes += b[2].asize_bytes;
    fold.psize_bytes += b[2].psize_bytes;
    fold.lsize_bytes += b[2].lsize_bytes;
    fold.count += b[2].count;
    deadlist_space_range(dl, 10, UINT64_MAX, &got);
    assert_space_eq(&got, &fold, "after remove", 42, 10, UINT64_MAX);
    deadlist_close(dl);
    p = reimport(p);
    cr_assert_eq(deadlist_open(pool_root_objset(p), &phys, &dl), 0);
    deadlist_space_range(dl, 10, UINT64_MAX, &got);
    assert_space_eq(&got, &fold, "after remove+reimport", 42, 10, UINT64_MAX);
    deadlist_space_range(dl, 0, 10, &got);
    assert_space_eq(&got, &b[0], "bucket 0", 42, 0, 10);
    /* key 20 can be added again (it is above 10, now the largest) */
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    cr_assert_eq(deadlist_add_key(dl, &tx, 20), 0);
    tx_commit(&tx);
    deadlist_close(dl);
    cr_assert_eq(pool_export(p), 0);
}

Test(deadlist, corrupt_objects_are_refused)
{
    uint64_t s = 7;
    struct pool *p = create_pool();
    static struct model m;
    struct deadlist_phys phys;
    struct deadlist *dl = new_deadlist(p, &phys, &m);
    struct tx tx;
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    for (int i = 0; i < 10; i++) {
        struct blkptr bp;
        make_bp(&s, 1 + (uint64_t)i, &bp);
        cr_assert_eq(deadlist_insert(dl, &tx, &bp), 0);
    }
    tx_commit(&tx);
    deadlist_close(dl);
    struct objset *os = pool_root_objset(p);

    /* An entry that fails bp_decode: open succeeds (counts agree), iterate and merge refuse. */
    uint8_t bad[BP_SIZE];
    cr_assert_eq(obj_read(os, phys.bps_obj, 3 * BP_SIZE, BP_SIZE, bad), 0);
    bad[60] = 0xff; /* unknown flags */
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    cr_assert_eq(obj_write(os, &tx, phys.bps_obj, 3 * BP_SIZE, BP_SIZE, bad), 0);
    tx_commit(&tx);
    cr_assert_eq(deadlist_open(os, &phys, &dl), 0);
    size_t seen = 0;
    cr_assert_eq(deadlist_iterate(dl, count_bps, &seen), -ECORRUPT);
    cr_assert_eq(seen, 3, "the entries before the bad one are delivered");
    struct deadlist_phys p2;
    struct deadlist *dl2;
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    cr_assert_eq(deadlist_create(os, &tx, &p2), 0);
    tx_commit(&tx);
    cr_assert_eq(deadlist_open(os, &p2, &dl2), 0);
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    cr_assert_eq(deadlist_merge(dl2, &tx, dl), -ECORRUPT);
    tx_commit(&tx);
    deadlist_close(dl);

    /* A size that is not a whole number of entries. */
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    cr_assert_eq(obj_truncate(os, &tx, phys.bps_obj, 5 * BP_SIZE + 7), 0);
    tx_commit(&tx);
    cr_assert_eq(deadlist_open(os, &phys, &dl), -ECORRUPT);
    /* Whole entries but fewer than the summary counts. */
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    cr_assert_eq(obj_truncate(os, &tx, phys.bps_obj, 5 * BP_SIZE), 0);
    tx_commit(&tx);
    cr_assert_eq(deadlist_open(os, &phys, &dl), -ECORRUPT);
    /* Objects swapped (wrong types). */
    struct deadlist_phys sw = { .bps_obj = phys.summary_obj, .summary_obj = phys.bps_obj };
    cr_assert_eq(deadlist_open(os, &sw, &dl), -ECORRUPT);
    uint8_t zero[DEADLIST_PHYS_SIZE] = { 0 };
    cr_assert_eq(deadlist_phys_decode(zero, &sw), -ECORRUPT);
    deadlist_close(dl2);
    cr_assert_eq(pool_export(p), 0);
}
