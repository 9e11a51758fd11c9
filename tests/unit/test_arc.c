/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for core/arc: the adaptive replacement block cache.
 *
 * Every buffer's data starts with its own key, followed by a pattern derived from it, so any test
 * can tell whether a buffer returned for a key is the right one and is still intact.
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/arc.h"

#define BLK 1024

static uint64_t
splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static struct arc_key
key_of(uint64_t vdev, uint64_t offset, uint64_t birth)
{
    return (struct arc_key){ .vdev = vdev, .offset = offset, .birth = birth };
}

static uint8_t
pattern_byte(const struct arc_key *k, size_t i)
{
    return (uint8_t)(i * 31 + k->vdev * 131 + k->offset * 7 + k->birth * 13);
}

/* Returns new malloc'd data of len bytes (len >= sizeof(*k)) naming key k. */
static void *
make_data(const struct arc_key *k, size_t len)
{
    cr_assert_geq(len, sizeof(*k));
    uint8_t *d = malloc(len);
    cr_assert_not_null(d);
    memcpy(d, k, sizeof(*k));
    for (size_t i = sizeof(*k); i < len; i++)
        d[i] = pattern_byte(k, i);
    return d;
}

static bool
data_ok(const struct arc_buf *b, const struct arc_key *k, size_t len)
{
    if (arc_buf_len(b) != len)
        return false;
    const uint8_t *d = arc_buf_data(b);
    if (memcmp(d, k, sizeof(*k)) != 0)
        return false;
    for (size_t i = sizeof(*k); i < len; i++) {
        if (d[i] != pattern_byte(k, i))
            return false;
    }
    return true;
}

/* Inserts key (offset off) with BLK bytes and drops the reference. */
static void
put_unref(struct arc *arc, uint64_t off, size_t len)
{
    struct arc_key k = key_of(0, off, 1);
    struct arc_buf *b = arc_put(arc, &k, make_data(&k, len), len);
    cr_assert_not_null(b);
    arc_buf_unref(b);
}

/* Touches key (offset off): returns whether it was cached. */
static bool
touch(struct arc *arc, uint64_t off)
{
    struct arc_key k = key_of(0, off, 1);
    struct arc_buf *b = arc_get(arc, &k);
    if (b == NULL)
        return false;
    arc_buf_unref(b);
    return true;
}

static struct arc_stats
stats(struct arc *arc)
{
    struct arc_stats s;
    arc_get_stats(arc, &s);
    return s;
}

Test(arc, put_then_get_returns_the_same_data)
{
    struct arc *arc = arc_new(64 * BLK);
    cr_assert_not_null(arc);
    struct arc_key k = key_of(1, 4096, 7);
    struct arc_buf *p = arc_put(arc, &k, make_data(&k, BLK), BLK);
    cr_assert_not_null(p);
    cr_assert(data_ok(p, &k, BLK));
    struct arc_buf *g = arc_get(arc, &k);
    cr_assert_eq(g, p, "a cached key returns the buffer that was put");
    cr_assert(data_ok(g, &k, BLK));
    arc_buf_unref(g);
    arc_buf_unref(p);
    struct arc_stats s = stats(arc);
    cr_assert_eq(s.hits, 1);
    cr_assert_eq(s.mru_hits, 1);
    cr_assert_eq(s.misses, 0);
    cr_assert_eq(s.size, BLK);
    cr_assert_eq(s.nbufs, 1);
    cr_assert_eq(s.max, 64 * BLK);
    cr_assert(arc_check(arc));
    arc_free(arc);
}

Test(arc, get_of_missing_key_counts_a_miss)
{
    struct arc *arc = arc_new(64 * BLK);
    struct arc_key k = key_of(0, 0, 1);
    cr_assert_null(arc_get(arc, &k));
    cr_assert_null(arc_get(arc, &k));
    struct arc_stats s = stats(arc);
    cr_assert_eq(s.misses, 2);
    cr_assert_eq(s.hits, 0);
    cr_assert(arc_check(arc));
    arc_free(arc);
}

Test(arc, keys_differing_only_in_birth_are_distinct_blocks)
{
    struct arc *arc = arc_new(64 * BLK);
    struct arc_key old = key_of(0, 8192, 5), new = key_of(0, 8192, 6);
    arc_buf_unref(arc_put(arc, &old, make_data(&old, BLK), BLK));
    cr_assert_null(arc_get(arc, &new), "a rewritten location must not return the old block");
    arc_buf_unref(arc_put(arc, &new, make_data(&new, 2 * BLK), 2 * BLK));
    struct arc_buf *b = arc_get(arc, &new);
    cr_assert(data_ok(b, &new, 2 * BLK));
    arc_buf_unref(b);
    b = arc_get(arc, &old);
    cr_assert(data_ok(b, &old, BLK));
    arc_buf_unref(b);
    arc_free(arc);
}

Test(arc, put_of_cached_key_returns_existing_buffer_and_frees_new_data)
{
    struct arc *arc = arc_new(64 * BLK);
    struct arc_key k = key_of(0, 1, 1);
    struct arc_buf *a = arc_put(arc, &k, make_data(&k, BLK), BLK);
    struct arc_buf *b = arc_put(arc, &k, make_data(&k, BLK), BLK); /* LSan catches a leak */
    cr_assert_eq(a, b);
    arc_buf_unref(a);
    cr_assert(data_ok(b, &k, BLK), "the second put holds its own reference");
    arc_buf_unref(b);
    cr_assert_eq(stats(arc).nbufs, 1);
    cr_assert(arc_check(arc));
    arc_free(arc);
}

Test(arc, null_cache_and_null_buffer_are_accepted)
{
    arc_free(NULL);
    arc_buf_unref(NULL);
}

Test(arc, zero_length_block_is_cached_and_evicted_without_a_ghost)
{
    struct arc *arc = arc_new(2 * BLK);
    struct arc_key z = key_of(9, 0, 1);
    struct arc_buf *b = arc_put(arc, &z, NULL, 0);
    cr_assert_not_null(b);
    cr_assert_eq(arc_buf_len(b), 0);
    arc_buf_unref(b);
    put_unref(arc, 1, BLK);
    put_unref(arc, 2, BLK); /* full: the next put evicts from the MRU tail, z first */
    put_unref(arc, 3, BLK);
    cr_assert(arc_check(arc));
    cr_assert_null(arc_get(arc, &z));
    arc_buf_unref(arc_put(arc, &z, NULL, 0));
    struct arc_stats s = stats(arc);
    cr_assert_eq(s.mru_ghost_hits + s.mfu_ghost_hits, 0, "no ghost is kept for an empty block");
    cr_assert(arc_check(arc));
    arc_free(arc);
}

Test(arc, eviction_keeps_size_within_max)
{
    struct arc *arc = arc_new(16 * BLK);
    for (uint64_t i = 0; i < 200; i++) {
        put_unref(arc, i, BLK + (i % 5) * 100);
        struct arc_stats s = stats(arc);
        cr_assert_leq(s.size, s.max, "after put %llu", (unsigned long long)i);
        cr_assert_eq(s.size, s.mru_size + s.mfu_size);
        cr_assert(arc_check(arc));
    }
    cr_assert_gt(stats(arc).evictions, 150);
    cr_assert(touch(arc, 199), "the newest block is still cached");
    cr_assert_not(touch(arc, 0), "the oldest block was evicted");
    arc_free(arc);
}

Test(arc, referenced_buffer_is_never_evicted_and_its_data_stays_valid)
{
    struct arc *arc = arc_new(8 * BLK);
    struct arc_key k = key_of(2, 99, 3);
    struct arc_buf *held = arc_put(arc, &k, make_data(&k, BLK), BLK);
    for (uint64_t i = 0; i < 500; i++) {
        put_unref(arc, 1000 + i, BLK);
        if (i % 50 == 0)
            touch(arc, 1000 + i); /* push some into MFU too */
    }
    cr_assert(data_ok(held, &k, BLK));
    struct arc_buf *again = arc_get(arc, &k);
    cr_assert_eq(again, held);
    arc_buf_unref(again);
    arc_buf_unref(held);
    cr_assert(arc_check(arc));
    arc_free(arc);
}

Test(arc, overflows_while_everything_is_referenced_and_recovers_on_unref)
{
    struct arc *arc = arc_new(2 * BLK);
    struct arc_buf *held[3];
    for (uint64_t i = 0; i < 3; i++) {
        struct arc_key k = key_of(0, i, 1);
        held[i] = arc_put(arc, &k, make_data(&k, BLK), BLK);
        cr_assert_not_null(held[i]);
        cr_assert(arc_check(arc));
    }
    struct arc_stats s = stats(arc);
    cr_assert_eq(s.size, 3 * BLK, "temporary overflow shows as size > max");
    cr_assert_gt(s.size, s.max);
    for (uint64_t i = 0; i < 3; i++) {
        struct arc_key k = key_of(0, i, 1);
        cr_assert(data_ok(held[i], &k, BLK));
        arc_buf_unref(held[i]);
        cr_assert(arc_check(arc));
    }
    cr_assert_leq(stats(arc).size, 2 * BLK);
    arc_free(arc);
}

Test(arc, set_max_shrink_evicts_down_to_the_new_budget)
{
    struct arc *arc = arc_new(32 * BLK);
    for (uint64_t i = 0; i < 32; i++)
        put_unref(arc, i, BLK);
    cr_assert_eq(stats(arc).size, 32 * BLK);
    arc_set_max(arc, 4 * BLK);
    struct arc_stats s = stats(arc);
    cr_assert_leq(s.size, 4 * BLK);
    cr_assert_eq(s.max, 4 * BLK);
    cr_assert_leq(s.target_mru, s.max);
    cr_assert(arc_check(arc));
    arc_free(arc);
}

/*
 * Scan resistance: a hot set seen twice lives in MFU, and a one-time stream of 10 × max cold blocks
 * only cycles through MRU. The control run (hot set seen once) shows the stream does evict
 * blocks that were not re-referenced, so the first result is not an accident of sizing.
 */
static unsigned
hot_survivors_after_scan(int touches)
{
    enum { MAXBLKS = 64, HOT = 16, BS = 4096 };
    struct arc *arc = arc_new(MAXBLKS * BS);
    for (uint64_t i = 0; i < HOT; i++)
        put_unref(arc, i, BS);
    for (int t = 0; t < touches; t++) {
        for (uint64_t i = 0; i < HOT; i++)
            cr_assert(touch(arc, i));
    }
    for (uint64_t i = 0; i < 10 * MAXBLKS; i++) {
        put_unref(arc, 100000 + i, BS);
        cr_assert_leq(stats(arc).size, MAXBLKS * BS);
    }
    cr_assert(arc_check(arc));
    unsigned survivors = 0;
    for (uint64_t i = 0; i < HOT; i++)
        survivors += touch(arc, i);
    arc_free(arc);
    return survivors;
}

Test(arc, hot_set_touched_twice_survives_a_one_time_scan)
{
    cr_assert_eq(hot_survivors_after_scan(2), 16);
    cr_assert_eq(hot_survivors_after_scan(0), 0, "control: an untouched set is scanned out");
}

/*
 * Ghost hits, worked by hand (max = 4 blocks of BLK, p starts at 0):
 *   put a b c d; get c d        T1 = {b a}      T2 = {d c}
 *   put e  -> evict a           T1 = {e b}      T2 = {d c}      B1 = {a}
 *   put a  -> B1 hit, p = BLK, evict b (T1 > p); a to MFU
 *                               T1 = {e}        T2 = {a d c}    B1 = {b}
 *   put f  -> T1 == p: evict c from T2
 *                               T1 = {f e}      T2 = {a d}      B1 = {b}  B2 = {c}
 *   put c  -> B2 hit, p = 0 (delta BLK × max(1, |B1|/|B2|)); evict e; c to MFU
 */
Test(arc, ghost_hits_adapt_target_mru_in_both_directions)
{
    struct arc *arc = arc_new(4 * BLK);
    enum { A, B, C, D, E, F };
    for (uint64_t i = A; i <= D; i++)
        put_unref(arc, i, BLK);
    cr_assert(touch(arc, C));
    cr_assert(touch(arc, D));
    put_unref(arc, E, BLK);
    cr_assert(arc_check(arc));
    cr_assert_eq(stats(arc).target_mru, 0);

    put_unref(arc, A, BLK);
    struct arc_stats s = stats(arc);
    cr_assert_eq(s.mru_ghost_hits, 1);
    cr_assert_eq(s.target_mru, BLK, "an MRU-ghost hit grows p by one block");
    cr_assert_eq(s.mru_size, BLK);
    cr_assert_eq(s.mfu_size, 3 * BLK, "the ghost-hit block goes to MFU");
    cr_assert(arc_check(arc));

    put_unref(arc, F, BLK);
    s = stats(arc);
    cr_assert_eq(s.target_mru, BLK);
    cr_assert_eq(s.mfu_ghost_hits, 0);
    cr_assert(arc_check(arc));

    put_unref(arc, C, BLK);
    s = stats(arc);
    cr_assert_eq(s.mfu_ghost_hits, 1);
    cr_assert_eq(s.target_mru, 0, "an MFU-ghost hit shrinks p by one block");
    cr_assert_eq(s.mru_size, BLK);
    cr_assert_eq(s.mfu_size, 3 * BLK);
    cr_assert_not(touch(arc, B));
    cr_assert_not(touch(arc, E));
    cr_assert(touch(arc, A) && touch(arc, C) && touch(arc, D) && touch(arc, F));
    cr_assert(arc_check(arc));
    arc_free(arc);
}

Test(arc, mru_ghost_hit_growth_scales_with_mfu_ghost_size)
{
    /* max 8 blocks: put 4 blocks on B2 and 1 on B1; an MRU-ghost hit then moves p by 4 blocks. */
    struct arc *arc = arc_new(8 * BLK);
    for (uint64_t i = 0; i < 8; i++) {
        put_unref(arc, i, BLK);
        cr_assert(touch(arc, i)); /* all MFU, LRU first */
    }
    arc_set_max(arc, 4 * BLK); /* evicts 0..3 from MFU to B2 */
    arc_set_max(arc, 8 * BLK);
    for (uint64_t i = 8; i < 12; i++)
        put_unref(arc, i, BLK); /* fills T1 without evicting */
    put_unref(arc, 12, BLK);    /* T1 > p = 0: evicts 8 to B1 */
    struct arc_stats s = stats(arc);
    cr_assert_eq(s.mru_size, 4 * BLK);
    cr_assert_eq(s.mfu_size, 4 * BLK);
    cr_assert_eq(s.target_mru, 0);
    put_unref(arc, 8, BLK); /* B1 hit with |B2| / |B1| = 4 */
    s = stats(arc);
    cr_assert_eq(s.mru_ghost_hits, 1);
    cr_assert_eq(s.target_mru, 4 * BLK);
    cr_assert(arc_check(arc));
    put_unref(arc, 0, BLK); /* B2 hit with |B1| / |B2| < 1: p shrinks by one block */
    s = stats(arc);
    cr_assert_eq(s.mfu_ghost_hits, 1);
    cr_assert_eq(s.target_mru, 3 * BLK);
    cr_assert(arc_check(arc));
    arc_free(arc);
}

Test(arc, remove_with_outstanding_reference_keeps_data_until_last_unref)
{
    struct arc *arc = arc_new(64 * BLK);
    struct arc_key k = key_of(3, 77, 9);
    struct arc_buf *r1 = arc_put(arc, &k, make_data(&k, BLK), BLK);
    struct arc_buf *r2 = arc_get(arc, &k);
    cr_assert_eq(r1, r2);
    arc_remove(arc, &k);
    cr_assert(arc_check(arc));
    cr_assert_null(arc_get(arc, &k), "a removed key is gone from the cache");
    struct arc_stats s = stats(arc);
    cr_assert_eq(s.size, 0);
    cr_assert_eq(s.nbufs, 0);
    cr_assert(data_ok(r1, &k, BLK), "removed buffers stay valid while referenced");

    struct arc_buf *r3 = arc_put(arc, &k, make_data(&k, 2 * BLK), 2 * BLK);
    cr_assert_neq(r3, r1, "a put after remove makes a new buffer");
    arc_buf_unref(r1);
    cr_assert(data_ok(r2, &k, BLK));
    arc_buf_unref(r2); /* last reference: freed here (ASan/LSan check) */
    cr_assert(data_ok(r3, &k, 2 * BLK));
    arc_buf_unref(r3);
    cr_assert(arc_check(arc));
    arc_remove(arc, &k); /* unreferenced: freed at once */
    arc_remove(arc, &k); /* absent: no-op */
    cr_assert_eq(stats(arc).nbufs, 0);
    arc_free(arc);
}

Test(arc, remove_drops_ghost_entries)
{
    struct arc *arc = arc_new(4 * BLK);
    put_unref(arc, 0, BLK);
    put_unref(arc, 1, BLK);
    cr_assert(touch(arc, 1));
    put_unref(arc, 2, BLK);
    put_unref(arc, 3, BLK);
    put_unref(arc, 4, BLK); /* evicts 0 to B1 */
    struct arc_key k0 = key_of(0, 0, 1);
    arc_remove(arc, &k0);
    cr_assert(arc_check(arc));
    put_unref(arc, 0, BLK);
    cr_assert_eq(stats(arc).mru_ghost_hits, 0, "the ghost entry was removed");
    arc_free(arc);
}

Test(arc, free_with_a_referenced_buffer_aborts, .signal = SIGABRT)
{
    struct arc *arc = arc_new(4 * BLK);
    struct arc_key k = key_of(0, 0, 1);
    struct arc_buf *b = arc_put(arc, &k, make_data(&k, BLK), BLK);
    cr_assert_not_null(b);
    arc_free(arc);
}

/*
 * Oracle: random get/put/remove/unref/set_max against a model. The model's `maybe` set is a
 * superset of the cache: get() may miss anything, but whatever it returns must be in the set and
 * carry its own key. A key with a reference held since its last put must always hit. Held
 * buffers (including removed ones) must keep their data. arc_check runs after every step.
 */
enum { NKEYS = 300, MAXHELD = 12 };

struct held {
    struct arc_buf *buf;
    unsigned key;
    uint64_t gen; /* model generation of the key when the reference was taken */
};

static struct arc_key
model_key(unsigned i)
{
    return key_of(i % 3, (uint64_t)i * 4096, 1 + i % 2);
}

static size_t
model_len(unsigned i)
{
    uint64_t s = i;
    return sizeof(struct arc_key) + splitmix64(&s) % 2000;
}

static void
run_oracle(uint64_t seed)
{
    uint64_t rng = seed;
    struct arc *arc = arc_new(16 * BLK);
    bool maybe[NKEYS] = { false };
    uint64_t gen[NKEYS] = { 0 };
    struct held held[MAXHELD];
    unsigned nheld = 0;

    for (unsigned step = 0; step < 20000; step++) {
        uint64_t r = splitmix64(&rng);
        unsigned ki = (unsigned)((r >> 8) % NKEYS);
        struct arc_key k = model_key(ki);
        size_t len = model_len(ki);
        struct arc_buf *b = NULL;
        unsigned op = (unsigned)(r % 16);
        if (op <= 5) { /* get */
            b = arc_get(arc, &k);
            if (b != NULL) {
                cr_assert(maybe[ki], "seed %llu step %u: get of uncached key %u hit",
                          (unsigned long long)seed, step, ki);
                cr_assert(data_ok(b, &k, len), "seed %llu step %u: wrong data for key %u",
                          (unsigned long long)seed, step, ki);
            }
            for (unsigned h = 0; h < nheld; h++) {
                cr_assert(b != NULL || held[h].key != ki || held[h].gen != gen[ki],
                          "seed %llu step %u: referenced key %u was evicted",
                          (unsigned long long)seed, step, ki);
            }
        } else if (op <= 10) { /* put */
            b = arc_put(arc, &k, make_data(&k, len), len);
            cr_assert_not_null(b);
            cr_assert(data_ok(b, &k, len), "seed %llu step %u: put returned wrong data",
                      (unsigned long long)seed, step);
            maybe[ki] = true;
        } else if (op == 11) {
            arc_remove(arc, &k);
            maybe[ki] = false;
            gen[ki]++;
        } else if (op <= 14) { /* drop a held reference */
            if (nheld > 0) {
                unsigned h = (unsigned)((r >> 20) % nheld);
                struct arc_key hk = model_key(held[h].key);
                cr_assert(data_ok(held[h].buf, &hk, model_len(held[h].key)),
                          "seed %llu step %u: held buffer changed", (unsigned long long)seed, step);
                arc_buf_unref(held[h].buf);
                held[h] = held[--nheld];
            }
        } else if ((r >> 40) % 8 == 0) {
            arc_set_max(arc, (size_t)(2 + (r >> 44) % 40) * BLK);
        }
        if (b != NULL) {
            if (nheld < MAXHELD && (r >> 50) % 3 == 0)
                held[nheld++] = (struct held){ .buf = b, .key = ki, .gen = gen[ki] };
            else
                arc_buf_unref(b);
        }
        cr_assert(arc_check(arc), "seed %llu step %u: arc_check failed", (unsigned long long)seed,
                  step);
    }
    for (unsigned h = 0; h < nheld; h++)
        arc_buf_unref(held[h].buf);
    struct arc_stats s = stats(arc);
    cr_assert_leq(s.size, s.max);
    cr_assert_gt(s.hits, 0);
    cr_assert_gt(s.evictions, 0);
    cr_assert_gt(s.mru_ghost_hits + s.mfu_ghost_hits, 0);
    arc_free(arc);
}

Test(arc, random_operations_agree_with_a_superset_model)
{
    static const uint64_t seeds[] = { 1, 42, 0xdeadbeef, 20240601 };
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
        run_oracle(seeds[i]);
}

/* Two threads share a small cache: get, put on miss, verify, unref, with some removes. */
struct worker_arg {
    struct arc *arc;
    uint64_t seed;
    unsigned bad;
};

static void *
worker(void *p)
{
    struct worker_arg *w = p;
    uint64_t rng = w->seed;
    struct arc_buf *kept = NULL;
    unsigned kept_key = 0;
    for (unsigned i = 0; i < 30000; i++) {
        uint64_t r = splitmix64(&rng);
        unsigned ki = (unsigned)((r >> 8) % 128);
        struct arc_key k = model_key(ki);
        size_t len = model_len(ki);
        if (r % 32 == 0) {
            arc_remove(w->arc, &k);
            continue;
        }
        struct arc_buf *b = arc_get(w->arc, &k);
        if (b == NULL)
            b = arc_put(w->arc, &k, make_data(&k, len), len);
        if (b == NULL || !data_ok(b, &k, len))
            w->bad++;
        if (r % 64 == 1) { /* hold one reference across iterations */
            if (kept != NULL) {
                struct arc_key kk = model_key(kept_key);
                if (!data_ok(kept, &kk, model_len(kept_key)))
                    w->bad++;
                arc_buf_unref(kept);
            }
            kept = b;
            kept_key = ki;
        } else {
            arc_buf_unref(b);
        }
        if (i % 1000 == 0 && !arc_check(w->arc))
            w->bad++;
    }
    arc_buf_unref(kept);
    return NULL;
}

Test(arc, concurrent_get_put_unref_from_two_threads)
{
    struct arc *arc = arc_new(24 * BLK);
    struct worker_arg args[2] = { { .arc = arc, .seed = 11 }, { .arc = arc, .seed = 12 } };
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_join(th[i], NULL), 0);
    cr_assert_eq(args[0].bad, 0);
    cr_assert_eq(args[1].bad, 0);
    cr_assert(arc_check(arc));
    struct arc_stats s = stats(arc);
    cr_assert_leq(s.size, s.max);
    cr_assert_gt(s.hits, 0);
    cr_assert_gt(s.evictions, 0);
    arc_free(arc);
}
