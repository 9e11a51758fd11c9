/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/u64map: an oracle test against a plain array model, iteration, growth,
 * and tombstone reuse under insert/remove churn.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "common/u64map.h"

static uint64_t
xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* Values are addresses inside this array: distinct, non-NULL, and easy to check. */
static char values[4096];

/* ---- model: a fixed universe of keys, each present or not ---------------------------------- */

#define NKEYS 512

struct model {
    uint64_t keys[NKEYS]; /* distinct; includes 0 and UINT64_MAX */
    void *val[NKEYS];     /* NULL = absent */
    size_t count;
};

static void
model_init(struct model *mo, uint64_t *s)
{
    memset(mo, 0, sizeof(*mo));
    mo->keys[0] = 0;
    mo->keys[1] = UINT64_MAX;
    for (size_t i = 2; i < NKEYS; i++) {
        /* Mix small dense keys (clustered hashes are not guaranteed, but dense keys are the
         * common case: block ids) with random 64-bit ones. */
        mo->keys[i] = (i % 2) ? i : xorshift(s);
        for (size_t j = 0; j < i; j++) {
            if (mo->keys[j] == mo->keys[i]) {
                mo->keys[i] = i * 1000003u; /* vanishingly rare; keep keys distinct */
                break;
            }
        }
    }
}

/* Checks that the map holds exactly the model, by lookups and by a full iteration. */
static void
check_equal(const struct u64map *m, const struct model *mo, uint64_t seed, int step)
{
    cr_assert_eq(u64map_count(m), mo->count, "seed %llu step %d: count", (unsigned long long)seed,
                 step);
    for (size_t i = 0; i < NKEYS; i++)
        cr_assert_eq(u64map_get(m, mo->keys[i]), mo->val[i], "seed %llu step %d: key %llu",
                     (unsigned long long)seed, step, (unsigned long long)mo->keys[i]);

    bool seen[NKEYS] = { false };
    size_t visited = 0;
    uint64_t k;
    void *v;
    for (size_t it = 0; u64map_next(m, &it, &k, &v);) {
        size_t i = 0;
        while (i < NKEYS && mo->keys[i] != k)
            i++;
        cr_assert_lt(i, NKEYS, "seed %llu step %d: iteration yields unknown key %llu",
                     (unsigned long long)seed, step, (unsigned long long)k);
        cr_assert_not(seen[i], "seed %llu step %d: key %llu visited twice",
                      (unsigned long long)seed, step, (unsigned long long)k);
        seen[i] = true;
        cr_assert_eq(v, mo->val[i]);
        visited++;
    }
    cr_assert_eq(visited, mo->count, "seed %llu step %d: iteration visits each key once",
                 (unsigned long long)seed, step);
}

Test(u64map, matches_array_model_under_random_operations)
{
    static const uint64_t seeds[] = { 1, 0x5eed, 0xdeadbeef, 0x123456789abcdefULL };
    for (size_t si = 0; si < sizeof(seeds) / sizeof(seeds[0]); si++) {
        uint64_t seed = seeds[si], s = seed;
        cr_log_info("seed %llu", (unsigned long long)seed);
        struct model mo;
        struct u64map m;
        model_init(&mo, &s);
        u64map_init(&m);

        for (int step = 0; step < 40000; step++) {
            size_t i = xorshift(&s) % NKEYS;
            uint64_t key = mo.keys[i];
            /* Bias towards puts early and removes late so the size sweeps up and down. */
            unsigned op = (unsigned)(xorshift(&s) % 10);
            bool growing = (step / 5000) % 2 == 0;
            if (op < (growing ? 5u : 2u)) {
                void *v = &values[xorshift(&s) % sizeof(values)];
                cr_assert_eq(u64map_put(&m, key, v), 0);
                if (mo.val[i] == NULL)
                    mo.count++;
                mo.val[i] = v;
            } else if (op < 7) {
                void *got = u64map_remove(&m, key);
                cr_assert_eq(got, mo.val[i], "seed %llu step %d: remove %llu",
                             (unsigned long long)seed, step, (unsigned long long)key);
                if (mo.val[i] != NULL)
                    mo.count--;
                mo.val[i] = NULL;
            } else {
                cr_assert_eq(u64map_get(&m, key), mo.val[i], "seed %llu step %d: get %llu",
                             (unsigned long long)seed, step, (unsigned long long)key);
            }
            cr_assert_eq(u64map_count(&m), mo.count);
            if (step % 997 == 0)
                check_equal(&m, &mo, seed, step);
            cr_assert_leq(m.count, m.used);
            cr_assert_leq(m.used * 4, m.cap * 3, "load factor stays at most 3/4");
        }
        check_equal(&m, &mo, seed, -1);
        u64map_release(&m);
    }
}

Test(u64map, empty_map_behaves)
{
    struct u64map m;
    u64map_init(&m);
    cr_assert_eq(u64map_count(&m), 0);
    cr_assert_null(u64map_get(&m, 0));
    cr_assert_null(u64map_get(&m, 42));
    cr_assert_null(u64map_remove(&m, 42));
    size_t it = 0;
    uint64_t k;
    void *v;
    cr_assert_not(u64map_next(&m, &it, &k, &v));
    u64map_release(&m);
    u64map_release(&m); /* release leaves an empty, reusable map */
    cr_assert_eq(u64map_put(&m, 7, &values[7]), 0);
    cr_assert_eq(u64map_get(&m, 7), &values[7]);
    u64map_release(&m);
}

Test(u64map, put_replaces_without_changing_count)
{
    struct u64map m;
    u64map_init(&m);
    cr_assert_eq(u64map_put(&m, 5, &values[1]), 0);
    cr_assert_eq(u64map_put(&m, 5, &values[2]), 0);
    cr_assert_eq(u64map_count(&m), 1);
    cr_assert_eq(u64map_get(&m, 5), &values[2]);
    cr_assert_eq(u64map_remove(&m, 5), &values[2]);
    cr_assert_null(u64map_remove(&m, 5), "second remove finds nothing");
    cr_assert_eq(u64map_count(&m), 0);
    u64map_release(&m);
}

Test(u64map, grows_to_hold_many_keys)
{
    struct u64map m;
    u64map_init(&m);
    const size_t n = 100000;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(u64map_put(&m, i * 0x9e3779b97f4a7c15ULL, &values[i % sizeof(values)]), 0);
        if ((i & (i + 1)) == 0) /* at each power of two - 1, the table is large enough */
            cr_assert_leq(m.used * 4, m.cap * 3);
    }
    cr_assert_eq(u64map_count(&m), n);
    cr_assert_eq(m.cap & (m.cap - 1), 0, "cap is a power of two");
    cr_assert_leq(m.cap, 4 * n, "growth doubles, it does not explode");
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(u64map_get(&m, i * 0x9e3779b97f4a7c15ULL), &values[i % sizeof(values)],
                     "key #%zu", i);
    size_t visited = 0;
    uint64_t k;
    void *v;
    for (size_t it = 0; u64map_next(&m, &it, &k, &v);)
        visited++;
    cr_assert_eq(visited, n);
    u64map_release(&m);
}

Test(u64map, churn_reuses_tombstones_instead_of_growing)
{
    struct u64map m;
    u64map_init(&m);
    /* One live key at a time, a million distinct keys: the table must stay at its first size. */
    for (uint64_t i = 0; i < 1000000; i++) {
        cr_assert_eq(u64map_put(&m, i, &values[i % sizeof(values)]), 0);
        cr_assert_eq(u64map_remove(&m, i), &values[i % sizeof(values)]);
    }
    cr_assert_eq(u64map_count(&m), 0);
    cr_assert_leq(m.cap, 16, "cap %zu after churn", m.cap);

    /* A live set of 200 with churn: bounded by the live set, not by the number of operations. */
    uint64_t s = 77;
    uint64_t live[200];
    for (size_t i = 0; i < 200; i++) {
        live[i] = 1000000000u + i;
        cr_assert_eq(u64map_put(&m, live[i], &values[i]), 0);
    }
    for (uint64_t next = 2000000000u; next < 2000000000u + 200000; next++) {
        size_t i = xorshift(&s) % 200;
        cr_assert_eq(u64map_remove(&m, live[i]), &values[i]);
        live[i] = next;
        cr_assert_eq(u64map_put(&m, live[i], &values[i]), 0);
    }
    cr_assert_eq(u64map_count(&m), 200);
    cr_assert_leq(m.cap, 1024, "cap %zu after churn with 200 live keys", m.cap);
    for (size_t i = 0; i < 200; i++)
        cr_assert_eq(u64map_get(&m, live[i]), &values[i]);
    u64map_release(&m);
}

Test(u64map, removed_key_can_be_put_back)
{
    struct u64map m;
    u64map_init(&m);
    for (uint64_t k = 0; k < 64; k++)
        cr_assert_eq(u64map_put(&m, k, &values[k]), 0);
    size_t used = m.used;
    for (uint64_t k = 0; k < 64; k += 2)
        cr_assert_eq(u64map_remove(&m, k), &values[k]);
    /* Lookups of surviving keys must probe past the tombstones. */
    for (uint64_t k = 1; k < 64; k += 2)
        cr_assert_eq(u64map_get(&m, k), &values[k]);
    for (uint64_t k = 0; k < 64; k += 2) {
        cr_assert_null(u64map_get(&m, k));
        cr_assert_eq(u64map_put(&m, k, &values[100 + k]), 0);
    }
    cr_assert_eq(u64map_count(&m), 64);
    cr_assert_leq(m.used, used, "re-inserting reuses tombstones (or rehashes), never adds slots");
    for (uint64_t k = 0; k < 64; k++)
        cr_assert_eq(u64map_get(&m, k), (k % 2) ? &values[k] : &values[100 + k]);
    u64map_release(&m);
}
