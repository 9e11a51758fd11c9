/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for core/map: the CoW B+tree, over an in-memory node store.
 *
 * The store counts reads, writes and releases, tracks which nodes are live (written and not
 * released since), can fail writes, and in "corrupting" mode flips one byte of one node as it
 * is read. A small decoder of the documented node format (map.c header comment) walks the tree
 * independently to count reachable nodes, so leaks of node numbers are visible.
 *
 * Oracle seeds: set LCPFS_TEST_SEED to replay one; every oracle run logs its seed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "common/endian.h"
#include "common/err.h"
#include "core/map.h"

/* ---- in-memory store --------------------------------------------------------------------- */

#define TS_MAX_NODES (1u << 20)

struct tstore {
    uint32_t node_size;
    uint8_t **node; /* NULL = never written or released (reads as zeros) */
    size_t cap;
    unsigned long reads, writes, releases;
    int fail_writes_after; /* < 0: never; else writes left before every write fails -EIO */
    bool fail_reads;       /* every read fails -EIO */
    bool corrupting;
    uint64_t corrupt_blk;
    uint32_t corrupt_off;
    uint8_t corrupt_xor;
};

static int
ts_read(void *ctx, uint64_t blk, void *buf)
{
    struct tstore *ts = ctx;
    ts->reads++;
    if (ts->fail_reads)
        return -EIO;
    if (blk < ts->cap && ts->node[blk] != NULL)
        memcpy(buf, ts->node[blk], ts->node_size);
    else
        memset(buf, 0, ts->node_size);
    if (ts->corrupting && blk == ts->corrupt_blk)
        ((uint8_t *)buf)[ts->corrupt_off] ^= ts->corrupt_xor;
    return 0;
}

static int
ts_write(void *ctx, uint64_t blk, const void *buf)
{
    struct tstore *ts = ctx;
    if (ts->fail_writes_after == 0)
        return -EIO;
    if (ts->fail_writes_after > 0)
        ts->fail_writes_after--;
    if (blk >= TS_MAX_NODES)
        return -EFBIG; /* a corrupt header's `next` can point anywhere */
    if (blk >= ts->cap) {
        size_t ncap = ts->cap ? ts->cap : 16;
        while (ncap <= blk)
            ncap *= 2;
        ts->node = realloc(ts->node, ncap * sizeof(*ts->node));
        cr_assert_not_null(ts->node);
        memset(ts->node + ts->cap, 0, (ncap - ts->cap) * sizeof(*ts->node));
        ts->cap = ncap;
    }
    if (ts->node[blk] == NULL)
        ts->node[blk] = malloc(ts->node_size);
    cr_assert_not_null(ts->node[blk]);
    memcpy(ts->node[blk], buf, ts->node_size);
    ts->writes++;
    return 0;
}

static int
ts_release(void *ctx, uint64_t blk)
{
    struct tstore *ts = ctx;
    cr_assert(blk != 0, "the header node was released");
    cr_assert(blk < ts->cap && ts->node[blk] != NULL, "release of a dead node %llu",
              (unsigned long long)blk);
    free(ts->node[blk]);
    ts->node[blk] = NULL;
    ts->releases++;
    return 0;
}

static const struct map_store_ops ts_ops = { ts_read, ts_write, ts_release };

static void
ts_init(struct tstore *ts, uint32_t node_size)
{
    memset(ts, 0, sizeof(*ts));
    ts->node_size = node_size;
    ts->fail_writes_after = -1;
}

static void
ts_free(struct tstore *ts)
{
    for (size_t i = 0; i < ts->cap; i++)
        free(ts->node[i]);
    free(ts->node);
    ts->node = NULL;
    ts->cap = 0;
}

static void
ts_clone(struct tstore *dst, const struct tstore *src)
{
    ts_init(dst, src->node_size);
    dst->cap = src->cap;
    dst->node = calloc(src->cap ? src->cap : 1, sizeof(*dst->node));
    cr_assert_not_null(dst->node);
    for (size_t i = 0; i < src->cap; i++) {
        if (src->node[i] == NULL)
            continue;
        dst->node[i] = malloc(src->node_size);
        cr_assert_not_null(dst->node[i]);
        memcpy(dst->node[i], src->node[i], src->node_size);
    }
}

static size_t
ts_live(const struct tstore *ts)
{
    size_t n = 0;
    for (size_t i = 0; i < ts->cap; i++)
        n += ts->node[i] != NULL;
    return n;
}

/* ---- independent decoder of the documented format ---------------------------------------- */

static const uint8_t *
ts_node(const struct tstore *ts, uint64_t blk)
{
    cr_assert(blk < ts->cap && ts->node[blk] != NULL, "node %llu not live",
              (unsigned long long)blk);
    return ts->node[blk];
}

static size_t
walk_count(const struct tstore *ts, uint64_t blk)
{
    const uint8_t *b = ts_node(ts, blk);
    uint32_t level = le16_get(b + 4), n = le16_get(b + 6);
    size_t total = 1;
    if (level == 0)
        return total;
    for (uint32_t i = 0; i < n; i++)
        total += walk_count(ts, le64_get(b + 16 + 24 * i + 16));
    return total;
}

/* Nodes reachable from the header, counting the header itself. */
static size_t
reachable_nodes(const struct tstore *ts)
{
    uint64_t root = le64_get(ts_node(ts, 0) + 16);
    return 1 + (root ? walk_count(ts, root) : 0);
}

static uint64_t
hdr_root(const struct tstore *ts)
{
    return le64_get(ts_node(ts, 0) + 16);
}

static uint32_t
hdr_height(const struct tstore *ts)
{
    return le32_get(ts_node(ts, 0) + 24);
}

static uint64_t
hdr_next(const struct tstore *ts)
{
    return le64_get(ts_node(ts, 0) + 40);
}

/* The first leaf below node blk (leftmost path). */
static uint64_t
first_leaf(const struct tstore *ts, uint64_t blk)
{
    const uint8_t *b = ts_node(ts, blk);
    while (le16_get(b + 4) > 0) {
        blk = le64_get(b + 16 + 16);
        b = ts_node(ts, blk);
    }
    return blk;
}

/* ---- model ------------------------------------------------------------------------------- */

struct ment {
    uint64_t a, b;
    uint32_t gen; /* value content seed */
    uint16_t len;
};

struct model {
    struct ment *e;
    size_t n, cap;
};

static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void
fill_value(uint8_t *v, uint64_t a, uint64_t b, uint32_t gen, size_t len)
{
    uint64_t s = (a * 0x9e3779b97f4a7c15ULL) ^ (b + 0x632be59bd9b4e019ULL) ^ gen;
    for (size_t i = 0; i < len; i++)
        v[i] = (uint8_t)((s >> (8 * (i % 8))) + i * 131);
}

static int
ment_cmp_key(const struct ment *e, uint64_t a, uint64_t b)
{
    if (e->a != a)
        return e->a < a ? -1 : 1;
    if (e->b != b)
        return e->b < b ? -1 : 1;
    return 0;
}

static size_t
model_lower_bound(const struct model *md, uint64_t a, uint64_t b)
{
    size_t lo = 0, hi = md->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ment_cmp_key(&md->e[mid], a, b) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct ment *
model_find(struct model *md, uint64_t a, uint64_t b)
{
    size_t i = model_lower_bound(md, a, b);
    return i < md->n && ment_cmp_key(&md->e[i], a, b) == 0 ? &md->e[i] : NULL;
}

static void
model_put(struct model *md, struct ment e)
{
    size_t i = model_lower_bound(md, e.a, e.b);
    if (i < md->n && ment_cmp_key(&md->e[i], e.a, e.b) == 0) {
        md->e[i] = e;
        return;
    }
    if (md->n == md->cap) {
        md->cap = md->cap ? 2 * md->cap : 256;
        md->e = realloc(md->e, md->cap * sizeof(*md->e));
        cr_assert_not_null(md->e);
    }
    memmove(md->e + i + 1, md->e + i, (md->n - i) * sizeof(*md->e));
    md->e[i] = e;
    md->n++;
}

static void
model_del(struct model *md, uint64_t a, uint64_t b)
{
    size_t i = model_lower_bound(md, a, b);
    cr_assert(i < md->n && ment_cmp_key(&md->e[i], a, b) == 0);
    memmove(md->e + i, md->e + i + 1, (md->n - i - 1) * sizeof(*md->e));
    md->n--;
}

/* ---- helpers over the map ---------------------------------------------------------------- */

static int
put(struct map *m, struct model *md, uint64_t a, uint64_t b, uint32_t gen, size_t len, bool replace)
{
    uint8_t v[MAP_VALUE_MAX];
    fill_value(v, a, b, gen, len);
    int rc = map_insert(m, a, b, v, len, replace);
    if (rc == 0 && md != NULL)
        model_put(md, (struct ment){ a, b, gen, (uint16_t)len });
    return rc;
}

struct collect {
    struct ment *e;
    uint8_t (*val)[MAP_VALUE_MAX];
    size_t n, cap;
    size_t stop_after; /* return 7 after this many entries (0 = never) */
};

static int
collect_fn(void *arg, uint64_t a, uint64_t b, const void *val, size_t len)
{
    struct collect *c = arg;
    cr_assert(len <= MAP_VALUE_MAX);
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->e = realloc(c->e, c->cap * sizeof(*c->e));
        c->val = realloc(c->val, c->cap * sizeof(*c->val));
        cr_assert(c->e != NULL && c->val != NULL);
    }
    c->e[c->n] = (struct ment){ a, b, 0, (uint16_t)len };
    memcpy(c->val[c->n], val, len);
    c->n++;
    return c->stop_after != 0 && c->n == c->stop_after ? 7 : 0;
}

static void
collect_free(struct collect *c)
{
    free(c->e);
    free(c->val);
    memset(c, 0, sizeof(*c));
}

/* Iterates from (a, b) and compares with the model's entries from there on. */
static void
expect_iterate(struct map *m, const struct model *md, uint64_t a, uint64_t b, size_t stop_after,
               uint64_t seed)
{
    struct collect c = { .stop_after = stop_after };
    int rc = map_iterate(m, a, b, collect_fn, &c);
    size_t from = model_lower_bound(md, a, b), avail = md->n - from;
    size_t want = stop_after != 0 && stop_after <= avail ? stop_after : avail;
    cr_assert_eq(rc, stop_after != 0 && stop_after <= avail ? 7 : 0, "seed %llu: rc %d",
                 (unsigned long long)seed, rc);
    cr_assert_eq(c.n, want, "seed %llu: iterate saw %zu entries, model %zu",
                 (unsigned long long)seed, c.n, want);
    uint8_t v[MAP_VALUE_MAX];
    for (size_t i = 0; i < want; i++) {
        const struct ment *e = &md->e[from + i];
        cr_assert(c.e[i].a == e->a && c.e[i].b == e->b && c.e[i].len == e->len,
                  "seed %llu: entry %zu differs", (unsigned long long)seed, i);
        fill_value(v, e->a, e->b, e->gen, e->len);
        cr_assert(memcmp(v, c.val[i], e->len) == 0, "seed %llu: value %zu differs",
                  (unsigned long long)seed, i);
    }
    collect_free(&c);
}

static void
expect_lookup(struct map *m, const struct model *md, uint64_t a, uint64_t b, uint64_t seed)
{
    uint8_t got[MAP_VALUE_MAX], want[MAP_VALUE_MAX];
    size_t len = 9999;
    int rc = map_lookup(m, a, b, got, sizeof(got), &len);
    size_t i = model_lower_bound(md, a, b);
    if (i >= md->n || ment_cmp_key(&md->e[i], a, b) != 0) {
        cr_assert_eq(rc, -ENOENT, "seed %llu: lookup of absent key gave %d",
                     (unsigned long long)seed, rc);
        return;
    }
    const struct ment *e = &md->e[i];
    cr_assert_eq(rc, 0, "seed %llu: lookup gave %d", (unsigned long long)seed, rc);
    cr_assert_eq(len, e->len, "seed %llu: length %zu want %u", (unsigned long long)seed, len,
                 e->len);
    fill_value(want, a, b, e->gen, e->len);
    cr_assert(memcmp(got, want, len) == 0, "seed %llu: value differs", (unsigned long long)seed);
}

/* Full consistency: map_check, count, iteration and no leaked node numbers. */
static void
expect_consistent(struct map *m, const struct model *md, const struct tstore *ts, uint64_t seed)
{
    int rc = map_check(m);
    cr_assert_eq(rc, 0, "seed %llu: map_check gave %d", (unsigned long long)seed, rc);
    cr_assert_eq(map_count(m), md->n, "seed %llu", (unsigned long long)seed);
    expect_iterate(m, md, 0, 0, 0, seed);
    cr_assert_eq(ts_live(ts), reachable_nodes(ts),
                 "seed %llu: %zu live nodes but %zu reachable (leak)", (unsigned long long)seed,
                 ts_live(ts), reachable_nodes(ts));
}

static size_t
random_len(uint64_t *s)
{
    switch (rnd(s) % 10) {
    case 0:
        return 0;
    case 1:
        return MAP_VALUE_MAX;
    case 2:
    case 3:
    case 4:
        return rnd(s) % 33;
    case 5:
    case 6:
    case 7:
        return rnd(s) % 301;
    default:
        return rnd(s) % (MAP_VALUE_MAX + 1);
    }
}

static uint64_t
test_seed(uint64_t dflt)
{
    const char *env = getenv("LCPFS_TEST_SEED");
    return env != NULL ? strtoull(env, NULL, 0) : dflt;
}

/*
 * Random insert/replace/remove/lookup against the sorted-array model: growth-biased first half,
 * shrink-biased third quarter, mixed last quarter; then everything is removed.
 */
static void
run_oracle(uint32_t node_size, unsigned nops, uint64_t seed)
{
    cr_log_info("map oracle: node size %u, %u ops, seed %llu", node_size, nops,
                (unsigned long long)seed);
    struct tstore ts;
    ts_init(&ts, node_size);
    struct map *m;
    cr_assert_eq(map_create(&ts_ops, &ts, node_size, &m), 0);
    struct model md = { 0 };
    uint64_t s = seed | 1;
    uint32_t gen = 0;
    unsigned max_height = 0;
    for (unsigned op = 0; op < nops; op++) {
        unsigned phase = op < nops / 2 ? 0 : op < 3 * nops / 4 ? 1 : 2;
        unsigned r = (unsigned)(rnd(&s) % 100);
        unsigned p_ins = phase == 0 ? 55 : phase == 1 ? 15 : 35;
        unsigned p_rem = phase == 0 ? 15 : phase == 1 ? 60 : 35;
        /* Inserts mostly use fresh keys, the rest mostly existing ones. */
        bool pick_existing = md.n > 0 && rnd(&s) % 100 < (r < p_ins ? 20u : 75u);
        uint64_t a, b;
        if (pick_existing) {
            const struct ment *e = &md.e[rnd(&s) % md.n];
            a = e->a;
            b = e->b;
        } else {
            a = rnd(&s) % 8;
            b = rnd(&s) % 8192;
            if (rnd(&s) % 64 == 0)
                a = rnd(&s) % 2 ? UINT64_MAX : 0;
        }
        bool exists = model_find(&md, a, b) != NULL;
        if (r < p_ins) {
            bool replace = rnd(&s) % 2;
            int rc = put(m, &md, a, b, ++gen, random_len(&s), replace);
            cr_assert_eq(rc, exists && !replace ? -EEXIST : 0, "seed %llu op %u: insert gave %d",
                         (unsigned long long)seed, op, rc);
        } else if (r < p_ins + p_rem) {
            int rc = map_remove(m, a, b);
            cr_assert_eq(rc, exists ? 0 : -ENOENT, "seed %llu op %u: remove gave %d",
                         (unsigned long long)seed, op, rc);
            if (exists)
                model_del(&md, a, b);
        } else if (r < p_ins + p_rem + 15) {
            int rc = put(m, &md, a, b, ++gen, random_len(&s), true); /* replace or insert */
            cr_assert_eq(rc, 0, "seed %llu op %u: replace gave %d", (unsigned long long)seed, op,
                         rc);
        } else {
            expect_lookup(m, &md, a, b, seed);
        }
        cr_assert_eq(map_count(m), md.n, "seed %llu op %u", (unsigned long long)seed, op);
        if (hdr_height(&ts) > max_height)
            max_height = hdr_height(&ts);
        if (op % 400 == 399)
            expect_consistent(m, &md, &ts, seed);
    }
    expect_consistent(m, &md, &ts, seed);
    cr_log_info("map oracle: max height %u, %zu entries left", max_height, md.n);
    cr_assert_geq(max_height, 2, "the oracle run never split the root");

    /* Remove everything in random order. */
    while (md.n > 0) {
        const struct ment e = md.e[rnd(&s) % md.n];
        cr_assert_eq(map_remove(m, e.a, e.b), 0, "seed %llu", (unsigned long long)seed);
        model_del(&md, e.a, e.b);
        if (md.n % 500 == 0)
            expect_consistent(m, &md, &ts, seed);
    }
    cr_assert_eq(map_count(m), 0);
    cr_assert_eq(hdr_root(&ts), 0);
    cr_assert_eq(ts_live(&ts), 1, "seed %llu: nodes leaked after removing all",
                 (unsigned long long)seed);
    map_close(m);
    free(md.e);
    ts_free(&ts);
}

/* ---- tests ------------------------------------------------------------------------------- */

Test(map, matches_sorted_array_model_with_16k_nodes)
{
    run_oracle(MAP_NODE_SIZE_DEFAULT, 20000, test_seed(0x5eed0001));
}

Test(map, matches_sorted_array_model_with_4k_nodes)
{
    run_oracle(MAP_NODE_SIZE_MIN, 20000, test_seed(0x5eed0002));
}

Test(map, create_rejects_bad_node_sizes_and_ops)
{
    struct tstore ts;
    ts_init(&ts, 4096);
    struct map *m = NULL;
    const uint32_t bad[] = { 0, 512, 2048, 4095, 6144, 12288, 262144, 1u << 31 };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(map_create(&ts_ops, &ts, bad[i], &m), -EINVAL, "size %u", bad[i]);
    struct map_store_ops no_release = { ts_read, ts_write, NULL };
    cr_expect_eq(map_create(&no_release, &ts, 4096, &m), -EINVAL);
    cr_expect_eq(map_create(NULL, &ts, 4096, &m), -EINVAL);
    cr_expect_eq(ts.writes, 0);
    map_close(NULL);
    ts_free(&ts);
}

Test(map, empty_map_has_nothing_to_find_remove_or_iterate)
{
    struct tstore ts;
    ts_init(&ts, 4096);
    struct map *m;
    cr_assert_eq(map_create(&ts_ops, &ts, 4096, &m), 0);
    size_t len = 5;
    cr_expect_eq(map_lookup(m, 1, 2, NULL, 0, &len), -ENOENT);
    cr_expect_eq(map_remove(m, 1, 2), -ENOENT);
    struct collect c = { 0 };
    cr_expect_eq(map_iterate(m, 0, 0, collect_fn, &c), 0);
    cr_expect_eq(c.n, 0);
    cr_expect_eq(map_count(m), 0);
    cr_expect_eq(map_check(m), 0);
    map_close(m);
    ts_free(&ts);
}

Test(map, insert_existing_key_is_eexist_unless_replacing)
{
    struct tstore ts;
    ts_init(&ts, 4096);
    struct map *m;
    cr_assert_eq(map_create(&ts_ops, &ts, 4096, &m), 0);
    cr_assert_eq(map_insert(m, 3, 4, "abc", 3, false), 0);
    cr_expect_eq(map_insert(m, 3, 4, "xyz", 3, false), -EEXIST);
    char v[8] = { 0 };
    size_t len = 0;
    cr_assert_eq(map_lookup(m, 3, 4, v, sizeof(v), &len), 0);
    cr_expect(len == 3 && memcmp(v, "abc", 3) == 0);
    cr_assert_eq(map_insert(m, 3, 4, "hello", 5, true), 0);
    cr_assert_eq(map_lookup(m, 3, 4, v, sizeof(v), &len), 0);
    cr_expect(len == 5 && memcmp(v, "hello", 5) == 0);
    cr_expect_eq(map_count(m), 1);
    cr_expect_eq(map_remove(m, 3, 5), -ENOENT);
    cr_expect_eq(map_remove(m, 3, 4), 0);
    cr_expect_eq(map_remove(m, 3, 4), -ENOENT);
    cr_expect_eq(map_check(m), 0);
    map_close(m);
    ts_free(&ts);
}

Test(map, rejects_oversized_value_and_null_value_with_length)
{
    struct tstore ts;
    ts_init(&ts, 4096);
    struct map *m;
    cr_assert_eq(map_create(&ts_ops, &ts, 4096, &m), 0);
    static uint8_t big[MAP_VALUE_MAX + 1];
    unsigned long writes = ts.writes;
    cr_expect_eq(map_insert(m, 1, 1, big, MAP_VALUE_MAX + 1, true), -EINVAL);
    cr_expect_eq(map_insert(m, 1, 1, NULL, 5, true), -EINVAL);
    cr_expect_eq(ts.writes, writes, "a rejected insert wrote");
    cr_expect_eq(map_insert(m, 1, 1, NULL, 0, false), 0);
    cr_expect_eq(map_insert(m, 1, 2, big, MAP_VALUE_MAX, false), 0);
    size_t len = 1;
    cr_expect_eq(map_lookup(m, 1, 1, NULL, 0, &len), 0);
    cr_expect_eq(len, 0);
    cr_expect_eq(map_count(m), 2);
    map_close(m);
    ts_free(&ts);
}

Test(map, lookup_truncates_to_cap_and_reports_full_length)
{
    struct tstore ts;
    ts_init(&ts, 4096);
    struct map *m;
    cr_assert_eq(map_create(&ts_ops, &ts, 4096, &m), 0);
    cr_assert_eq(map_insert(m, 7, 7, "0123456789", 10, false), 0);
    char v[4] = { 'x', 'x', 'x', 'x' };
    size_t len = 0;
    cr_assert_eq(map_lookup(m, 7, 7, v, 3, &len), 0);
    cr_expect_eq(len, 10);
    cr_expect(memcmp(v, "012x", 4) == 0);
    cr_assert_eq(map_lookup(m, 7, 7, NULL, 100, &len), 0);
    cr_expect_eq(len, 10);
    cr_expect_eq(map_lookup(m, 7, 7, NULL, 0, NULL), 0);
    map_close(m);
    ts_free(&ts);
}

Test(map, extreme_keys_order_by_a_then_b)
{
    struct tstore ts;
    ts_init(&ts, 4096);
    struct map *m;
    cr_assert_eq(map_create(&ts_ops, &ts, 4096, &m), 0);
    struct model md = { 0 };
    const uint64_t k[][2] = { { UINT64_MAX, UINT64_MAX }, { 0, 0 }, { 0, UINT64_MAX },
                              { UINT64_MAX, 0 },          { 1, 0 }, { 0, 1 } };
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(put(m, &md, k[i][0], k[i][1], (uint32_t)i, i * 10, false), 0);
    expect_consistent(m, &md, &ts, 0);
    expect_iterate(m, &md, UINT64_MAX, 0, 0, 0);
    expect_iterate(m, &md, UINT64_MAX, UINT64_MAX, 0, 0);
    expect_iterate(m, &md, 0, 2, 0, 0);
    map_close(m);
    free(md.e);
    ts_free(&ts);
}

Test(map, iterate_from_the_middle_starts_at_first_key_not_below)
{
    uint64_t seed = test_seed(0x17e7a7e);
    cr_log_info("map iterate: seed %llu", (unsigned long long)seed);
    struct tstore ts;
    ts_init(&ts, 4096);
    struct map *m;
    cr_assert_eq(map_create(&ts_ops, &ts, 4096, &m), 0);
    struct model md = { 0 };
    uint64_t s = seed;
    for (int i = 0; i < 3000; i++) {
        uint64_t a = rnd(&s) % 4, b = 2 * (rnd(&s) % 100000); /* even: odd keys are absent */
        if (model_find(&md, a, b) == NULL)
            cr_assert_eq(put(m, &md, a, b, (uint32_t)i, rnd(&s) % 600, false), 0);
    }
    cr_assert_geq(hdr_height(&ts), 3);
    expect_consistent(m, &md, &ts, seed);
    for (int i = 0; i < 300; i++) {
        uint64_t a, b;
        if (i % 2 == 0) {
            const struct ment *e = &md.e[rnd(&s) % md.n];
            a = e->a;
            b = e->b;
        } else {
            a = rnd(&s) % 5;
            b = rnd(&s) % 200002;
        }
        size_t stop = i % 3 == 0 ? 0 : 1 + rnd(&s) % 400;
        expect_iterate(m, &md, a, b, stop, seed);
    }
    expect_iterate(m, &md, 4, 0, 0, seed); /* past the end */
    map_close(m);
    free(md.e);
    ts_free(&ts);
}

Test(map, removing_everything_releases_or_recycles_every_node)
{
    uint64_t seed = test_seed(0xe1e7e);
    cr_log_info("map remove-all: seed %llu", (unsigned long long)seed);
    struct tstore ts;
    ts_init(&ts, 4096);
    struct map *m;
    cr_assert_eq(map_create(&ts_ops, &ts, 4096, &m), 0);
    struct model md = { 0 };
    uint64_t s = seed;
    /* Maximal values: ~3 per leaf, > 1000 nodes, so the free list (503 slots) overflows. */
    for (int round = 0; round < 2; round++) {
        for (uint64_t i = 0; i < 3000; i++)
            cr_assert_eq(put(m, &md, i % 7, i, (uint32_t)round, MAP_VALUE_MAX, false), 0);
        expect_consistent(m, &md, &ts, seed);
        uint64_t next_full = hdr_next(&ts);
        while (md.n > 0) {
            const struct ment e = md.e[rnd(&s) % md.n];
            cr_assert_eq(map_remove(m, e.a, e.b), 0);
            model_del(&md, e.a, e.b);
            if (md.n % 700 == 0)
                expect_consistent(m, &md, &ts, seed);
        }
        cr_expect_eq(map_count(m), 0);
        cr_expect_eq(hdr_root(&ts), 0);
        cr_expect_eq(hdr_height(&ts), 0);
        cr_expect_eq(ts_live(&ts), 1, "%zu nodes still live", ts_live(&ts));
        cr_expect_eq(map_check(m), 0);
        cr_expect_eq(hdr_next(&ts), next_full, "remove allocated new node numbers");
    }
    map_close(m);
    free(md.e);
    ts_free(&ts);
}

Test(map, freed_node_numbers_are_recycled)
{
    struct tstore ts;
    ts_init(&ts, 4096);
    struct map *m;
    cr_assert_eq(map_create(&ts_ops, &ts, 4096, &m), 0);
    struct model md = { 0 };
    for (uint64_t i = 0; i < 300; i++)
        cr_assert_eq(put(m, &md, 0, i, 1, 600, false), 0);
    uint64_t next = hdr_next(&ts);
    for (int round = 0; round < 5; round++) {
        for (uint64_t i = 0; i < 300; i++)
            cr_assert_eq(map_remove(m, 0, i), 0);
        for (uint64_t i = 0; i < 300; i++)
            cr_assert_eq(put(m, &md, 0, i, (uint32_t)round, 600, false), 0);
    }
    cr_expect_eq(hdr_next(&ts), next, "node numbers were not recycled (%llu -> %llu)",
                 (unsigned long long)next, (unsigned long long)hdr_next(&ts));
    expect_consistent(m, &md, &ts, 0);
    map_close(m);
    free(md.e);
    ts_free(&ts);
}

Test(map, reopen_sees_the_same_contents)
{
    uint64_t seed = test_seed(0x7e09e7);
    struct tstore ts;
    ts_init(&ts, MAP_NODE_SIZE_DEFAULT);
    struct map *m;
    cr_assert_eq(map_create(&ts_ops, &ts, MAP_NODE_SIZE_DEFAULT, &m), 0);
    struct model md = { 0 };
    uint64_t s = seed;
    for (int i = 0; i < 2000; i++)
        put(m, &md, rnd(&s) % 16, rnd(&s) % 5000, (uint32_t)i, random_len(&s), true);
    for (int i = 0; i < 500; i++) {
        const struct ment e = md.e[rnd(&s) % md.n];
        cr_assert_eq(map_remove(m, e.a, e.b), 0);
        model_del(&md, e.a, e.b);
    }
    map_close(m);
    cr_assert_eq(map_open(&ts_ops, &ts, &m), 0);
    expect_consistent(m, &md, &ts, seed);
    for (size_t i = 0; i < md.n; i += 7)
        expect_lookup(m, &md, md.e[i].a, md.e[i].b, seed);
    /* Keep going after the reopen: the free list and counters came back too. */
    for (int i = 0; i < 1000; i++)
        put(m, &md, rnd(&s) % 16, rnd(&s) % 5000, (uint32_t)i, random_len(&s), true);
    expect_consistent(m, &md, &ts, seed);
    map_close(m);
    cr_assert_eq(map_open(&ts_ops, &ts, &m), 0);
    expect_consistent(m, &md, &ts, seed);
    map_close(m);
    free(md.e);
    ts_free(&ts);
}

Test(map, smallest_node_size_holds_maximal_values)
{
    uint64_t seed = test_seed(0xb16);
    struct tstore ts;
    ts_init(&ts, MAP_NODE_SIZE_MIN);
    struct map *m;
    cr_assert_eq(map_create(&ts_ops, &ts, MAP_NODE_SIZE_MIN, &m), 0);
    struct model md = { 0 };
    uint64_t s = seed;
    for (int i = 0; i < 600; i++) {
        uint64_t b = rnd(&s) % 100000;
        cr_assert_eq(put(m, &md, 1, b, (uint32_t)i, MAP_VALUE_MAX, true), 0);
        if (i % 100 == 99)
            expect_consistent(m, &md, &ts, seed);
    }
    cr_assert_geq(hdr_height(&ts), 3);
    /* Alternate shrinking and growing values in place to force merges and splits. */
    for (int i = 0; i < 600; i++) {
        const struct ment e = md.e[rnd(&s) % md.n];
        size_t len = i % 2 ? 0 : MAP_VALUE_MAX;
        cr_assert_eq(put(m, &md, e.a, e.b, (uint32_t)i, len, true), 0);
    }
    expect_consistent(m, &md, &ts, seed);
    while (md.n > 0) {
        const struct ment e = md.e[rnd(&s) % md.n];
        cr_assert_eq(map_remove(m, e.a, e.b), 0);
        model_del(&md, e.a, e.b);
        if (md.n % 100 == 0)
            expect_consistent(m, &md, &ts, seed);
    }
    cr_expect_eq(ts_live(&ts), 1);
    map_close(m);
    free(md.e);
    ts_free(&ts);
}

Test(map, largest_node_size_with_many_entries_per_node)
{
    struct tstore ts;
    ts_init(&ts, MAP_NODE_SIZE_MAX);
    struct map *m;
    cr_assert_eq(map_create(&ts_ops, &ts, MAP_NODE_SIZE_MAX, &m), 0);
    struct model md = { 0 };
    /* 28-byte entries: ~4700 per node; the first split needs a leaf of > 131056 bytes. */
    for (uint64_t i = 0; i < 5000; i++)
        cr_assert_eq(put(m, &md, 0, i * 3, (uint32_t)i, 10, false), 0);
    cr_assert_geq(hdr_height(&ts), 2);
    expect_consistent(m, &md, &ts, 0);
    for (uint64_t i = 0; i < 5000; i += 2)
        cr_assert_eq(map_remove(m, 0, i * 3), 0);
    for (uint64_t i = 0; i < 5000; i += 2)
        model_del(&md, 0, i * 3);
    expect_consistent(m, &md, &ts, 0);
    map_close(m);
    free(md.e);
    ts_free(&ts);
}

/* Builds a 16 KiB-node map of height >= 2 for the corruption tests. */
static struct map *
build_corruption_fixture(struct tstore *ts, struct model *md)
{
    ts_init(ts, MAP_NODE_SIZE_DEFAULT);
    struct map *m;
    cr_assert_eq(map_create(&ts_ops, ts, MAP_NODE_SIZE_DEFAULT, &m), 0);
    for (uint64_t i = 0; i < 2000; i++)
        cr_assert_eq(put(m, md, 1 + i % 3, i, (uint32_t)i, 100 + i % 200, false), 0);
    cr_assert_geq(hdr_height(ts), 2);
    return m;
}

struct corruption {
    const char *what;
    bool leaf; /* else the root (interior) */
    uint32_t off;
    uint8_t flip; /* xor mask; 0: the byte's own value, i.e. clear it */
};

static const struct corruption corruptions[] = {
    { "leaf magic", true, 0, 0x01 },
    { "leaf level", true, 4, 0x01 },
    { "leaf entry count", true, 6, 0x01 },
    { "leaf bytes used", true, 8, 0x04 },
    { "leaf bytes used beyond node", true, 10, 0x10 },
    { "leaf value length", true, 16 + 17, 0x10 },
    { "leaf first key out of order", true, 16 + 7, 0x80 },
    { "root magic", false, 3, 0x40 },
    { "root level", false, 4, 0x03 },
    { "root entry count", false, 7, 0x01 },
    { "root first key not its lower bound", false, 16 + 8, 0x01 },
    { "root child number out of range", false, 16 + 24 + 16 + 6, 0x20 },
    { "root entry count zero", false, 6, 0 },
    { "root child number zero", false, 16 + 24 + 16, 0 },
};

Test(map, corrupted_node_gives_ecorrupt_and_writes_nothing)
{
    struct tstore ts;
    struct model md = { 0 };
    struct map *m = build_corruption_fixture(&ts, &md);
    uint64_t root = hdr_root(&ts), leaf = first_leaf(&ts, root);
    const uint8_t *lb = ts_node(&ts, leaf);
    uint64_t la = le64_get(lb + 16), lbk = le64_get(lb + 24); /* first key in that leaf */
    for (size_t i = 0; i < sizeof(corruptions) / sizeof(corruptions[0]); i++) {
        const struct corruption *c = &corruptions[i];
        ts.corrupting = true;
        ts.corrupt_blk = c->leaf ? leaf : root;
        ts.corrupt_off = c->off;
        ts.corrupt_xor = c->flip ? c->flip : ts_node(&ts, ts.corrupt_blk)[c->off];
        cr_assert_neq(ts.corrupt_xor, 0, "%s: nothing to flip", c->what);
        unsigned long writes = ts.writes;
        struct collect col = { 0 };
        size_t len;
        cr_expect_eq(map_check(m), -ECORRUPT, "%s: check", c->what);
        cr_expect_eq(map_iterate(m, 0, 0, collect_fn, &col), -ECORRUPT, "%s: iterate", c->what);
        cr_expect_eq(map_lookup(m, la, lbk, NULL, 0, &len), -ECORRUPT, "%s: lookup", c->what);
        cr_expect_eq(map_remove(m, la, lbk), -ECORRUPT, "%s: remove", c->what);
        cr_expect_eq(map_insert(m, la, lbk + 1, "v", 1, true), -ECORRUPT, "%s: insert", c->what);
        cr_expect_eq(ts.writes, writes, "%s: a failed operation wrote", c->what);
        collect_free(&col);
        ts.corrupting = false;
        /* Nothing was damaged and nothing is sticky. */
        cr_expect_eq(map_check(m), 0, "%s", c->what);
        cr_expect_eq(map_count(m), md.n, "%s", c->what);
    }
    expect_consistent(m, &md, &ts, 0);
    map_close(m);
    free(md.e);
    ts_free(&ts);
}

Test(map, corrupted_header_is_refused_at_open)
{
    struct tstore ts;
    struct model md = { 0 };
    struct map *m = build_corruption_fixture(&ts, &md);
    map_close(m);
    const struct {
        uint32_t off;
        uint8_t flip;
        int want;
    } cases[] = {
        { 0, 0x01, -ECORRUPT },  /* magic */
        { 8, 0x02, -EVERSION },  /* version */
        { 13, 0x60, -ECORRUPT }, /* node size 16K -> 8K: disagrees with the store */
        { 13, 0x40, -ECORRUPT }, /* node size 0 */
        { 13, 0xc0, -ECORRUPT }, /* node size 32K: disagrees with the store */
        { 16, 0xff, -ECORRUPT }, /* root number beyond next */
        { 24, 0x40, -ECORRUPT }, /* height above the maximum */
        { 24, 0x01, 0 },         /* height 2 -> 3: only map_check can notice */
        { 28, 0xff, -ECORRUPT }, /* free list longer than its capacity */
        { 32 + 7, 0x80, 0 },     /* count: only map_check can notice */
        { 40, 0, -ECORRUPT },    /* next's low byte cleared: next 0, below the root */
        { 40 + 7, 0xff, 0 },     /* next huge: harmless */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ts.corrupting = true;
        ts.corrupt_blk = 0;
        ts.corrupt_off = cases[i].off;
        ts.corrupt_xor = cases[i].flip ? cases[i].flip : ts.node[0][cases[i].off];
        m = NULL;
        int rc = map_open(&ts_ops, &ts, &m);
        cr_expect_eq(rc, cases[i].want, "case %zu: open gave %d", i, rc);
        if (rc == 0) {
            int crc = map_check(m);
            cr_expect(crc == 0 || crc == -ECORRUPT, "case %zu: check %d", i, crc);
        }
        map_close(m);
    }
    ts.corrupting = false;
    memset(ts.node[0], 0, ts.node_size);
    cr_expect_eq(map_open(&ts_ops, &ts, &m), -ECORRUPT, "zeroed header");
    free(md.e);
    ts_free(&ts);
}

Test(map, detects_wrong_count_and_free_list_overlap_in_check)
{
    struct tstore ts;
    struct model md = { 0 };
    struct map *m = build_corruption_fixture(&ts, &md);
    map_close(m);
    uint8_t *h = ts.node[0];
    le64_put(h + 32, le64_get(h + 32) + 1); /* count off by one */
    cr_assert_eq(map_open(&ts_ops, &ts, &m), 0);
    cr_expect_eq(map_check(m), -ECORRUPT);
    map_close(m);
    le64_put(h + 32, le64_get(h + 32) - 1);
    uint32_t nfree = le32_get(h + 28);
    le64_put(h + 64 + 8 * nfree, first_leaf(&ts, hdr_root(&ts))); /* a live node on the list */
    le32_put(h + 28, nfree + 1);
    cr_assert_eq(map_open(&ts_ops, &ts, &m), 0);
    cr_expect_eq(map_check(m), -ECORRUPT);
    map_close(m);
    free(md.e);
    ts_free(&ts);
}

Test(map, check_finds_an_under_full_leaf)
{
    struct tstore ts;
    struct model md = { 0 };
    struct map *m = build_corruption_fixture(&ts, &md);
    map_close(m);
    /* Cut the first leaf down to its first entry and fix the header count to match. */
    uint8_t *lb = ts.node[first_leaf(&ts, hdr_root(&ts))];
    uint32_t n = le16_get(lb + 6), used = 16 + 18 + le16_get(lb + 16 + 16);
    le16_put(lb + 6, 1);
    memset(lb + used, 0, ts.node_size - used);
    le32_put(lb + 8, used);
    uint8_t *h = ts.node[0];
    le64_put(h + 32, le64_get(h + 32) - (n - 1));
    cr_assert_eq(map_open(&ts_ops, &ts, &m), 0);
    cr_expect_eq(map_check(m), -ECORRUPT);
    size_t len;
    cr_expect_eq(map_lookup(m, md.e[0].a, md.e[0].b, NULL, 0, &len), 0);
    cr_expect_eq(map_lookup(m, md.e[1].a, md.e[1].b, NULL, 0, &len), -ENOENT);
    map_close(m);
    free(md.e);
    ts_free(&ts);
}

Test(map, store_read_error_is_returned_and_not_sticky)
{
    struct tstore ts;
    struct model md = { 0 };
    struct map *m = build_corruption_fixture(&ts, &md);
    struct collect col = { 0 };
    size_t len;
    ts.fail_reads = true;
    unsigned long writes = ts.writes;
    cr_expect_eq(map_lookup(m, md.e[5].a, md.e[5].b, NULL, 0, &len), -EIO);
    cr_expect_eq(map_iterate(m, 0, 0, collect_fn, &col), -EIO);
    cr_expect_eq(map_insert(m, 9, 9, "v", 1, false), -EIO);
    cr_expect_eq(map_remove(m, md.e[5].a, md.e[5].b), -EIO);
    cr_expect_eq(map_check(m), -EIO);
    cr_expect_eq(ts.writes, writes);
    struct map *m2 = NULL;
    cr_expect_eq(map_open(&ts_ops, &ts, &m2), -EIO);
    ts.fail_reads = false;
    expect_consistent(m, &md, &ts, 0);
    collect_free(&col);
    map_close(m);
    free(md.e);
    ts_free(&ts);
}

Test(map, random_byte_flips_never_crash)
{
    uint64_t seed = test_seed(0xf11b);
    cr_log_info("map flips: seed %llu", (unsigned long long)seed);
    struct tstore base;
    ts_init(&base, MAP_NODE_SIZE_MIN);
    struct map *m;
    cr_assert_eq(map_create(&ts_ops, &base, MAP_NODE_SIZE_MIN, &m), 0);
    uint64_t s = seed;
    for (uint64_t i = 0; i < 400; i++)
        cr_assert_eq(put(m, NULL, i % 5, rnd(&s) % 1000, 0, rnd(&s) % 300, true), 0);
    map_close(m);
    for (int iter = 0; iter < 300; iter++) {
        struct tstore ts;
        ts_clone(&ts, &base);
        uint64_t blk;
        do {
            blk = rnd(&s) % ts.cap;
        } while (ts.node[blk] == NULL);
        /* Mostly the structural bytes; sometimes anywhere. */
        uint32_t off = (uint32_t)(rnd(&s) % (rnd(&s) % 4 ? 96 : ts.node_size));
        ts.node[blk][off] ^= (uint8_t)(1 + rnd(&s) % 255);
        int rc = map_open(&ts_ops, &ts, &m);
        if (rc == 0) {
            struct collect col = { 0 };
            int r1 = map_check(m);
            int r2 = map_iterate(m, 0, 0, collect_fn, &col);
            cr_expect(r1 == 0 || r1 == -ECORRUPT, "seed %llu iter %d: check %d",
                      (unsigned long long)seed, iter, r1);
            cr_expect(r2 == 0 || r2 == -ECORRUPT, "seed %llu iter %d: iterate %d",
                      (unsigned long long)seed, iter, r2);
            for (int k = 0; k < 20; k++) {
                uint64_t a = rnd(&s) % 6, b = rnd(&s) % 1000;
                size_t len;
                uint8_t v[MAP_VALUE_MAX] = { 0 };
                rc = map_lookup(m, a, b, v, sizeof(v), &len);
                cr_expect(rc == 0 || rc == -ENOENT || rc == -ECORRUPT || rc == -EFBIG, "lookup %d",
                          rc);
                rc = k % 2 ? map_remove(m, a, b) : map_insert(m, a, b, v, rnd(&s) % 900, true);
                cr_expect(rc == 0 || rc == -ENOENT || rc == -ECORRUPT || rc == -EFBIG, "update %d",
                          rc);
            }
            collect_free(&col);
            map_close(m);
        } else {
            cr_expect(rc == -ECORRUPT || rc == -EVERSION, "open %d", rc);
        }
        ts_free(&ts);
    }
    ts_free(&base);
}

Test(map, failed_store_write_makes_the_map_refuse_further_use)
{
    struct tstore ts;
    ts_init(&ts, 4096);
    struct map *m;
    cr_assert_eq(map_create(&ts_ops, &ts, 4096, &m), 0);
    for (uint64_t i = 0; i < 50; i++)
        cr_assert_eq(map_insert(m, 0, i, "x", 1, false), 0);
    ts.fail_writes_after = 0;
    cr_expect_eq(map_insert(m, 0, 100, "y", 1, false), -EIO);
    ts.fail_writes_after = -1;
    size_t len;
    cr_expect_eq(map_insert(m, 0, 101, "y", 1, false), -EIO);
    cr_expect_eq(map_lookup(m, 0, 1, NULL, 0, &len), -EIO);
    cr_expect_eq(map_check(m), -EIO);
    map_close(m);
    /* The store still holds the last committed tree. */
    cr_assert_eq(map_open(&ts_ops, &ts, &m), 0);
    cr_expect_eq(map_check(m), 0);
    cr_expect_eq(map_count(m), 50);
    map_close(m);
    ts_free(&ts);
}
