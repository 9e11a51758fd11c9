/* SPDX-License-Identifier: MIT */
/*
 * Volumes: a 1 TiB sparse volume on a 1 GiB pool (writes until ENOSPC lose nothing written
 * before), unaligned read-modify-write, trim and write-zeroes as holes, the data/hole map and
 * the changed-block map (uncommitted changes included, across snapshots, bookmarks and clones),
 * resize, read-only snapshots and refreservation guaranteeing a thick volume its space.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/blkbuf.h"
#include "core/dsl.h"
#include "core/dsl_impl.h" /* dsl->lock, held to make a nowait write meet a busy lock */
#include "core/objset.h"
#include "core/pool.h"
#include "core/pool_impl.h" /* txg_lock and objset.lock, the same */
#include "core/zvol.h"
#include "test_util.h"

TestSuite(zvol, .init = test_tmpdir_setup, .fini = test_tmpdir_teardown, .timeout = 300);

#undef MiB
#define MiB (1024ull * 1024)
#undef GiB
#define GiB (1024ull * MiB)
#define TiB (1024ull * GiB)

static struct err_msg em;

#define OK(call) cr_assert_eq((call), 0, "%s: %s", #call, em.text)

/* Bytes of pattern `seed` at absolute offsets [off, off+len). */
static void
pattern(uint8_t *buf, uint64_t off, size_t len, uint64_t seed)
{
    for (size_t i = 0; i < len; i++) {
        uint64_t x = ((off + i) >> 3) * 0x9e3779b97f4a7c15ull ^ (seed + 1) * 0xbf58476d1ce4e5b9ull;
        x ^= x >> 31;
        x *= 0x94d049bb133111ebull;
        buf[i] = (uint8_t)(x >> (8 * ((off + i) & 7)));
    }
}

static void
mkvol(struct pool *p, const char *name, const char *size, bool sparse)
{
    struct dsl_prop_set props[] = { { "volsize", size }, { "volblocksize", "16K" } };
    OK(dsl_create(p, name, DSL_KIND_VOL, props, 2, sparse ? DSL_CREATE_SPARSE : 0, &em));
}

static void
expect(struct zvol *zv, uint64_t off, size_t len, uint64_t seed)
{
    uint8_t *want = malloc(len), *got = malloc(len);
    if (seed == 0)
        memset(want, 0, len);
    else
        pattern(want, off, len, seed);
    cr_assert_eq(zvol_read(zv, off, len, got), 0);
    size_t i = 0;
    while (i < len && want[i] == got[i])
        i++;
    cr_assert_eq(i, len, "byte %llu differs", (unsigned long long)(off + i));
    free(want);
    free(got);
}

static int
put(struct zvol *zv, uint64_t off, size_t len, uint64_t seed, unsigned flags)
{
    uint8_t *buf = malloc(len);
    pattern(buf, off, len, seed);
    int rc = zvol_write(zv, off, len, buf, flags);
    free(buf);
    return rc;
}

struct ranges {
    uint64_t r[64][3];
    int n;
};

static int
add_extent(void *arg, uint64_t off, uint64_t len, bool is_data)
{
    struct ranges *rs = arg;
    cr_assert_lt(rs->n, 64);
    rs->r[rs->n][0] = off;
    rs->r[rs->n][1] = len;
    rs->r[rs->n][2] = is_data;
    rs->n++;
    return 0;
}

static int
add_changed(void *arg, uint64_t off, uint64_t len)
{
    return add_extent(arg, off, len, true);
}

Test(zvol, a_1tib_sparse_volume_on_a_1gib_pool_fills_to_enospc_losing_nothing)
{
    struct pool *p = test_pool_create(1 * GiB);
    mkvol(p, "tank/big", "1T", true);
    struct zvol *zv;
    OK(zvol_open(p, "tank/big", &zv, &em));
    cr_assert_eq(zvol_size(zv), 1 * TiB);
    /* Scattered writes across the whole terabyte, then the map shows exactly them. */
    const uint64_t spots[] = { 0, 3 * GiB, 512 * GiB + 16384, 1 * TiB - 65536 };
    for (int i = 0; i < 4; i++)
        OK(put(zv, spots[i], 65536, 10 + (uint64_t)i, 0));
    struct ranges rs = { .n = 0 };
    OK(zvol_extents(zv, 0, 1 * TiB, add_extent, &rs));
    int data = 0;
    for (int i = 0; i < rs.n; i++)
        data += rs.r[i][2] ? 1 : 0;
    cr_assert_eq(data, 4, "four data runs in a sparse terabyte, got %d", data);
    cr_assert_eq(zvol_write(zv, 1 * TiB - 4096, 8192, "x", 0), -EINVAL); /* past the end */

    /* Fill until the pool is full; ENOSPC comes from the write, not from a commit. */
    int rc = 0;
    uint64_t off = 8 * GiB;
    const size_t chunk = 4 * MiB;
    while (rc == 0) {
        rc = put(zv, off, chunk, off / chunk, 0);
        if (rc == 0)
            off += chunk;
    }
    cr_assert_eq(rc, -ENOSPC, "filling ended with %d", rc);
    fprintf(stderr, "filled %llu MiB of a 1 GiB pool before ENOSPC\n",
            (unsigned long long)((off - 8 * GiB) / MiB));
    cr_assert_gt(off - 8 * GiB, 900 * MiB, "wrote only %llu MiB",
                 (unsigned long long)((off - 8 * GiB) / MiB));
    OK(zvol_flush(zv));
    zvol_close(zv);
    p = test_pool_verify(p);
    OK(zvol_open(p, "tank/big", &zv, &em));
    for (int i = 0; i < 4; i++)
        expect(zv, spots[i], 65536, 10 + (uint64_t)i);
    for (uint64_t o = 8 * GiB; o < off; o += chunk)
        expect(zv, o, chunk, o / chunk);
    /* Trimming gives the space back. */
    OK(zvol_trim(zv, 8 * GiB, off - 8 * GiB, 0));
    OK(zvol_flush(zv));
    OK(put(zv, 8 * GiB, chunk, 99, ZVOL_FUA));
    zvol_close(zv);
    pool_export(p);
}

Test(zvol, unaligned_writes_trim_zeroes_and_the_extent_map)
{
    struct pool *p = test_pool_create(256 * MiB);
    mkvol(p, "tank/v", "64M", false);
    struct zvol *zv;
    OK(zvol_open(p, "tank/v", &zv, &em));
    cr_assert_eq(zvol_blocksize(zv), 16384);
    OK(put(zv, 0, 1 * MiB, 1, 0));
    OK(put(zv, 1000, 3000, 2, 0));            /* inside one block */
    OK(put(zv, 16384 - 7, 16384 + 14, 3, 0)); /* across three blocks */
    expect(zv, 0, 1000, 1);
    expect(zv, 1000, 3000, 2);
    expect(zv, 4000, 16384 - 7 - 4000, 1);
    expect(zv, 16384 - 7, 16384 + 14, 3);
    expect(zv, 2 * 16384 + 7, 1 * MiB - 2 * 16384 - 7, 1);

    OK(zvol_trim(zv, 256 * 1024, 256 * 1024, 0));
    OK(zvol_write_zeroes(zv, 600 * 1024 + 100, 100 * 1024, 0)); /* unaligned edges */
    expect(zv, 256 * 1024, 256 * 1024, 0);
    expect(zv, 600 * 1024 + 100, 100 * 1024, 0);
    expect(zv, 600 * 1024, 100, 1);
    expect(zv, 700 * 1024 + 100, 16384, 1);
    /* The map sees the uncommitted trim (whole blocks only). */
    struct ranges rs = { .n = 0 };
    OK(zvol_extents(zv, 0, 64 * MiB, add_extent, &rs));
    cr_assert_eq(rs.r[0][0], 0);
    cr_assert_eq(rs.r[0][1], 256 * 1024);
    cr_assert(rs.r[0][2]);
    cr_assert_eq(rs.r[1][0], 256 * 1024);
    cr_assert_eq(rs.r[1][1], 256 * 1024);
    cr_assert(!rs.r[1][2]);
    OK(zvol_flush(zv));
    struct ranges rs2 = { .n = 0 };
    OK(zvol_extents(zv, 0, 64 * MiB, add_extent, &rs2));
    cr_assert_eq(rs2.n, rs.n);
    cr_assert(memcmp(rs.r, rs2.r, sizeof(rs.r[0]) * (size_t)rs.n) == 0);
    cr_assert_eq(zvol_read(zv, 64 * MiB - 4096, 8192, (uint8_t[8192]){ 0 }), -EINVAL);
    zvol_close(zv);

    /* Resize: growing exposes zeros, shrinking drops the tail. */
    struct dsl_prop_set grow[] = { { "volsize", "128M" } };
    OK(dsl_set(p, "tank/v", grow, 1, &em));
    OK(zvol_open(p, "tank/v", &zv, &em));
    cr_assert_eq(zvol_size(zv), 128 * MiB);
    expect(zv, 100 * MiB, 65536, 0);
    zvol_close(zv);
    struct dsl_prop_set shrink[] = { { "volsize", "512K" } };
    OK(dsl_set(p, "tank/v", shrink, 1, &em));
    struct dsl_prop_set odd[] = { { "volsize", "1000" } };
    cr_assert_eq(dsl_set(p, "tank/v", odd, 1, &em), -EINVAL);
    p = test_pool_verify(p);
    OK(zvol_open(p, "tank/v", &zv, &em));
    cr_assert_eq(zvol_size(zv), 512 * 1024);
    expect(zv, 1000, 3000, 2);
    zvol_close(zv);
    struct dsl_info in;
    OK(dsl_stat(p, "tank/v", &in, &em));
    cr_assert_eq(in.volsize, 512 * 1024);
    pool_export(p);
}

/* Sorted, merged list of changed ranges must equal want[] (pairs of off, len). */
static void
expect_changed(struct zvol *zv, const char *since, const uint64_t *want, int nwant)
{
    struct ranges rs = { .n = 0 };
    OK(zvol_changed(zv, since, add_changed, &rs, &em));
    cr_assert_eq(rs.n, nwant, "%d changed ranges since %s, want %d", rs.n, since, nwant);
    for (int i = 0; i < nwant; i++) {
        cr_assert_eq(rs.r[i][0], want[2 * i], "range %d starts at %llu", i,
                     (unsigned long long)rs.r[i][0]);
        cr_assert_eq(rs.r[i][1], want[2 * i + 1], "range %d is %llu long", i,
                     (unsigned long long)rs.r[i][1]);
    }
}

Test(zvol, changed_blocks_since_a_snapshot_or_bookmark)
{
    struct pool *p = test_pool_create(256 * MiB);
    mkvol(p, "tank/v", "1G", true);
    struct zvol *zv;
    OK(zvol_open(p, "tank/v", &zv, &em));
    OK(put(zv, 0, 8 * MiB, 1, 0));
    const char *s[] = { "tank/v@base" };
    OK(dsl_snapshot(p, s, 1, &em));
    OK(dsl_bookmark(p, "tank/v@base", "tank/v#base", &em));
    expect_changed(zv, "tank/v@base", NULL, 0);

    /* Uncommitted: a write, an unaligned write and a trim. */
    OK(put(zv, 1 * MiB, 16384, 2, 0));
    OK(put(zv, 3 * MiB + 100, 10, 3, 0));
    OK(zvol_trim(zv, 6 * MiB, 2 * MiB, 0));
    OK(put(zv, 512 * MiB, 4096, 4, 0));
    const uint64_t want[] = { 1 * MiB, 16384, 3 * MiB, 16384, 6 * MiB, 2 * MiB, 512 * MiB, 16384 };
    expect_changed(zv, "tank/v@base", want, 4);
    OK(zvol_flush(zv));
    expect_changed(zv, "tank/v@base", want, 4);
    expect_changed(zv, "tank/v#base", want, 4);

    /* After the snapshot is gone the bookmark still answers. */
    const char *s2[] = { "tank/v@two" };
    OK(dsl_snapshot(p, s2, 1, &em));
    zvol_close(zv);
    OK(dsl_destroy(p, "tank/v@base", 0, &em));
    OK(zvol_open(p, "tank/v", &zv, &em));
    expect_changed(zv, "tank/v#base", want, 4);
    expect_changed(zv, "tank/v@two", NULL, 0);
    zvol_close(zv);

    /* A snapshot answers relative to an older one; a clone relative to its origin's. */
    OK(zvol_open(p, "tank/v@two", &zv, &em));
    cr_assert(zvol_readonly(zv));
    cr_assert_eq(put(zv, 0, 4096, 5, 0), -EROFS);
    expect_changed(zv, "tank/v#base", want, 4);
    struct ranges rs = { .n = 0 };
    cr_assert_eq(zvol_changed(zv, "tank/v@two", add_changed, &rs, &em), -EXDEV);
    zvol_close(zv);
    OK(dsl_clone(p, "tank/v@two", "tank/c", NULL, 0, &em));
    OK(zvol_open(p, "tank/c", &zv, &em));
    OK(put(zv, 100 * MiB, 4096, 6, 0));
    const uint64_t want_c[] = { 100 * MiB, 16384 };
    expect_changed(zv, "tank/v@two", want_c, 1);
    cr_assert_eq(zvol_changed(zv, "tank/nope@x", add_changed, &rs, &em), -ENOENT);
    zvol_close(zv);
    p = test_pool_verify(p);
    pool_export(p);
}

Test(zvol, refreservation_guarantees_a_thick_volume_its_space)
{
    struct pool *p = test_pool_create(512 * MiB);
    mkvol(p, "tank/thick", "128M", false);
    struct dsl_info in;
    OK(dsl_stat(p, "tank/thick", &in, &em));
    cr_assert_geq(in.usedbyrefreservation, 128 * MiB);
    cr_assert_geq(in.used, 128 * MiB);
    struct dsl_prop_out o;
    OK(dsl_get(p, "tank/thick", "refreservation", true, &o, &em));
    cr_assert_geq(o.num, 128 * MiB);

    /* Another dataset fills the rest of the pool... */
    OK(dsl_create(p, "tank/fill", DSL_KIND_VOL, (struct dsl_prop_set[]){ { "volsize", "1T" } }, 1,
                  DSL_CREATE_SPARSE, &em));
    struct zvol *fill;
    OK(zvol_open(p, "tank/fill", &fill, &em));
    int rc = 0;
    uint64_t off = 0;
    while (rc == 0) {
        rc = put(fill, off, 4 * MiB, 7, 0);
        off += 4 * MiB;
    }
    cr_assert_eq(rc, -ENOSPC);
    OK(zvol_flush(fill));
    zvol_close(fill);

    /* ...and the thick volume can still be written completely. */
    struct zvol *zv;
    OK(zvol_open(p, "tank/thick", &zv, &em));
    for (uint64_t o2 = 0; o2 < 128 * MiB; o2 += 4 * MiB)
        OK(put(zv, o2, 4 * MiB, 8, 0));
    OK(zvol_flush(zv));
    OK(dsl_stat(p, "tank/thick", &in, &em));
    /* Written in full: what stays reserved is only the unused part of the metadata estimate. */
    cr_assert_leq(in.usedbyrefreservation, o.num - 128 * MiB, "fully written: %llu",
                  (unsigned long long)in.usedbyrefreservation);
    cr_assert_geq(in.usedbydataset, 128 * MiB);
    expect(zv, 0, 128 * MiB, 8);
    zvol_close(zv);
    p = test_pool_verify(p);
    pool_export(p);
}

Test(zvol, a_reservation_keeps_space_for_a_filesystem_and_its_children)
{
    struct pool *p = test_pool_create(512 * MiB);
    struct dsl_prop_set rsv[] = { { "reservation", "96M" } };
    OK(dsl_create(p, "tank/db", DSL_KIND_FS, rsv, 1, 0, &em));
    OK(dsl_create(p, "tank/db/wal", DSL_KIND_VOL, (struct dsl_prop_set[]){ { "volsize", "1G" } }, 1,
                  DSL_CREATE_SPARSE, &em));
    struct dsl_info in;
    OK(dsl_stat(p, "tank", &in, &em));
    cr_assert_geq(in.usedbychildren, 96 * MiB, "the reservation counts as used by the parent");
    /* Another dataset cannot take the reserved space... */
    OK(dsl_create(p, "tank/fill", DSL_KIND_VOL, (struct dsl_prop_set[]){ { "volsize", "1T" } }, 1,
                  DSL_CREATE_SPARSE, &em));
    struct zvol *zv;
    OK(zvol_open(p, "tank/fill", &zv, &em));
    int rc = 0;
    for (uint64_t off = 0; rc == 0; off += 4 * MiB)
        rc = put(zv, off, 4 * MiB, 1, 0);
    cr_assert_eq(rc, -ENOSPC);
    OK(zvol_flush(zv));
    zvol_close(zv);
    /* ...which the reserving dataset's children can still fill. */
    OK(zvol_open(p, "tank/db/wal", &zv, &em));
    for (uint64_t off = 0; off < 88 * MiB; off += 4 * MiB)
        OK(put(zv, off, 4 * MiB, 2, 0));
    OK(zvol_flush(zv));
    expect(zv, 0, 88 * MiB, 2);
    zvol_close(zv);
    p = test_pool_verify(p);
    pool_export(p);
}

/* Zero-copy reads give the same bytes as copying reads, across committed, uncommitted and
 * punched blocks and unaligned edges; the lent data does not change when the volume does. */
Test(zvol, read_pieces_match_read_and_stay_stable)
{
    struct pool *p = test_pool_create(256 * MiB);
    mkvol(p, "tank/v", "64M", true);
    struct zvol *zv;
    OK(zvol_open(p, "tank/v", &zv, &em));
    OK(put(zv, 0, 2 * MiB, 1, 0));
    OK(zvol_flush(zv));
    OK(put(zv, 100000, 50000, 2, 0)); /* uncommitted, unaligned */
    OK(zvol_trim(zv, 1 * MiB, 256 * 1024, 0));
    const uint64_t off = 12345;
    const size_t len = 3 * MiB;
    uint8_t *want = malloc(len), *got = malloc(len);
    cr_assert_eq(zvol_read(zv, off, len, want), 0);
    size_t max = len / zvol_blocksize(zv) + 2, n = 0;
    struct obj_piece *pv = calloc(max, sizeof(*pv));
    cr_assert_eq(zvol_read_pieces(zv, off, len, pv, max, &n), 0);
    struct obj_piece few[3];
    cr_assert_eq(zvol_read_pieces(zv, off, len, few, 3, &(size_t){ 0 }), -E2BIG);
    /* Change the lent dirty blocks in place (a partial write copies a held block first), then
     * everything, commit, and only then look at the pieces. */
    OK(put(zv, 100001, 1000, 4, 0));
    OK(put(zv, 0, 4 * MiB, 3, 0));
    OK(zvol_flush(zv));
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert_leq(pos + pv[i].len, len);
        memcpy(got + pos, pv[i].data, pv[i].len);
        pos += pv[i].len;
        obj_piece_release(&pv[i]);
    }
    cr_assert_eq(pos, len);
    cr_assert(memcmp(want, got, len) == 0, "pieces differ from a copying read");
    free(pv);
    free(want);
    free(got);
    zvol_close(zv);
    pool_export(p);
}

/* The event-loop read never waits: cache hits are served, a miss says -EWOULDBLOCK and records
 * no error, and after a normal read has filled the cache the same range is served. */
Test(zvol, nowait_reads_serve_cache_hits_only)
{
    struct pool *p = test_pool_create(256 * MiB);
    mkvol(p, "tank/v", "64M", true);
    struct zvol *zv;
    OK(zvol_open(p, "tank/v", &zv, &em));
    OK(put(zv, 0, 1 * MiB, 5, 0));
    OK(zvol_flush(zv)); /* committed, and in the cache (write-through) */
    struct obj_piece pv[80];
    size_t n = 0;
    cr_assert_eq(zvol_read_pieces_nowait(zv, 4096, 256 * 1024, pv, 80, &n), 0);
    for (size_t i = 0; i < n; i++)
        obj_piece_release(&pv[i]);
    zvol_close(zv);
    p = test_pool_reimport(p); /* cold cache */
    OK(zvol_open(p, "tank/v", &zv, &em));
    cr_assert_eq(zvol_read_pieces_nowait(zv, 4096, 256 * 1024, pv, 80, &n), -EWOULDBLOCK);
    cr_assert_eq(zvol_read_pieces_nowait(zv, 64 * MiB - 4096, 8192, pv, 80, &n), -EINVAL);
    expect(zv, 0, 1 * MiB, 5); /* fills the cache */
    cr_assert_eq(zvol_read_pieces_nowait(zv, 4096, 256 * 1024, pv, 80, &n), 0);
    uint8_t *want = malloc(256 * 1024);
    pattern(want, 4096, 256 * 1024, 5);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert(memcmp(want + pos, pv[i].data, pv[i].len) == 0);
        pos += pv[i].len;
        obj_piece_release(&pv[i]);
    }
    cr_assert_eq(pos, 256 * 1024);
    free(want);
    struct pool_stats st;
    pool_get_stats(p, &st);
    cr_assert_eq(st.cksum_errors + st.read_errors, 0);
    zvol_close(zv);
    pool_export(p);
}

/* n block buffers of the volume, holding pattern seed for the blocks from off on. */
static uint8_t **
blocks_of(struct zvol *zv, uint64_t off, size_t n, uint64_t seed)
{
    uint32_t bs = zvol_blocksize(zv);
    uint8_t **bufs = calloc(n, sizeof(*bufs));
    for (size_t i = 0; i < n; i++) {
        bufs[i] = zvol_block_alloc(zv);
        cr_assert_not_null(bufs[i]);
        pattern(bufs[i], off + i * bs, bs, seed);
    }
    return bufs;
}

/* Block buffer bytes in use: slab memory is mmapped, so LeakSanitizer cannot see a lost one. */
static uint64_t
blocks_in_use(void)
{
    struct blkbuf_stats st;
    blkbuf_get_stats(&st);
    return st.slab_bytes - st.free_bytes;
}

/* n new blocks at off written with flags must fail with want, consuming its buffers unless
 * want is -EWOULDBLOCK (then they are freed here). */
static void
refused(struct zvol *zv, uint64_t off, size_t n, unsigned flags, int want)
{
    uint64_t before = blocks_in_use();
    uint8_t **b = blocks_of(zv, off, n, 9);
    cr_assert_eq(zvol_write_blocks(zv, off, b, n, flags), want);
    if (want == -EWOULDBLOCK)
        for (size_t i = 0; i < n; i++)
            zvol_block_free(b[i]);
    free(b);
    cr_assert_eq(blocks_in_use(), before, "a refused write kept %lld bytes of buffers",
                 (long long)(blocks_in_use() - before));
}

Test(zvol, whole_blocks_are_taken_over_and_nowait_never_waits)
{
    struct pool *p = test_pool_create(256 * MiB);
    mkvol(p, "tank/v", "64M", true);
    struct zvol *zv;
    OK(zvol_open(p, "tank/v", &zv, &em));
    const uint64_t bs = 16384;
    cr_assert_eq(zvol_blocksize(zv), bs);

    /* Written, then partly overwritten without waiting; reads see both at once. */
    uint8_t **b = blocks_of(zv, 1 * MiB, 4, 1);
    OK(zvol_write_blocks(zv, 1 * MiB, b, 4, 0));
    free(b);
    b = blocks_of(zv, 1 * MiB + bs, 2, 2);
    OK(zvol_write_blocks(zv, 1 * MiB + bs, b, 2, ZVOL_NOWAIT));
    free(b);
    expect(zv, 1 * MiB, bs, 1);
    expect(zv, 1 * MiB + bs, 2 * bs, 2);
    expect(zv, 1 * MiB + 3 * bs, bs, 1);

    /* Refusals consume the buffers and change nothing. */
    refused(zv, 1 * MiB + 512, 2, 0, -EINVAL);
    refused(zv, 1 * MiB + 512, 2, ZVOL_NOWAIT, -EINVAL);
    refused(zv, 64 * MiB - bs, 2, 0, -EINVAL);
    refused(zv, 64 * MiB - bs, 2, ZVOL_NOWAIT, -EINVAL);
    expect(zv, 1 * MiB, bs, 1);
    expect(zv, 64 * MiB - bs, bs, 0);

    /* What would wait is refused with the buffers still the caller's, to write the slow way:
     * FUA, more than one transaction, a busy txg lock (the throttle's and quiesce's lock). */
    b = blocks_of(zv, 2 * MiB, 2, 4);
    cr_assert_eq(zvol_write_blocks(zv, 2 * MiB, b, 2, ZVOL_NOWAIT | ZVOL_FUA), -EWOULDBLOCK);
    OK(zvol_write_blocks(zv, 2 * MiB, b, 2, ZVOL_FUA));
    free(b);
    size_t big = ZVOL_MAX_WRITE_CHUNK / bs * 3 / 2;
    b = blocks_of(zv, 4 * MiB, big, 5);
    cr_assert_eq(zvol_write_blocks(zv, 4 * MiB, b, big, ZVOL_NOWAIT), -EWOULDBLOCK);
    OK(zvol_write_blocks(zv, 4 * MiB, b, big, 0));
    free(b);
    b = blocks_of(zv, 8 * MiB, 1, 6);
    pthread_mutex_lock(&p->txg_lock);
    cr_assert_eq(zvol_write_blocks(zv, 8 * MiB, b, 1, ZVOL_NOWAIT), -EWOULDBLOCK);
    pthread_mutex_unlock(&p->txg_lock);
    /* The dataset lock (held for writing by the sync thread around dataset changes) and the
     * object set's lock (held across object lookups): busy, and the write gives up. */
    pthread_rwlock_wrlock(&p->dsl->lock);
    cr_assert_eq(zvol_write_blocks(zv, 8 * MiB, b, 1, ZVOL_NOWAIT), -EWOULDBLOCK);
    pthread_rwlock_unlock(&p->dsl->lock);
    struct objset *os = ds_objset(zvol_dataset(zv));
    pthread_mutex_lock(&os->lock);
    cr_assert_eq(zvol_write_blocks(zv, 8 * MiB, b, 1, ZVOL_NOWAIT), -EWOULDBLOCK);
    pthread_mutex_unlock(&os->lock);
    OK(zvol_write_blocks(zv, 8 * MiB, b, 1, ZVOL_NOWAIT));
    free(b);

    /* Over a quota, both ways refuse and consume the buffers; a give-up charges nothing, so
     * what fits still fits. */
    struct dsl_prop_set q[] = { { "quota", "1M" } };
    OK(dsl_create(p, "tank/q", DSL_KIND_FS, q, 1, 0, &em));
    mkvol(p, "tank/q/v", "8M", true);
    struct zvol *qv;
    OK(zvol_open(p, "tank/q/v", &qv, &em));
    refused(qv, 0, 128, 0, -EDQUOT); /* 2 MiB: the first transaction already over */
    refused(qv, 0, 64 + 8, ZVOL_NOWAIT, -EWOULDBLOCK); /* more than one transaction */
    pthread_mutex_lock(&p->txg_lock);                  /* gives up before joining the txg */
    refused(qv, 0, 32, ZVOL_NOWAIT, -EWOULDBLOCK);
    pthread_mutex_unlock(&p->txg_lock);
    struct objset *qos = ds_objset(zvol_dataset(qv));
    pthread_mutex_lock(&qos->lock); /* gives up inside the txg, after the quota check */
    refused(qv, 0, 32, ZVOL_NOWAIT, -EWOULDBLOCK);
    refused(qv, 0, 32, ZVOL_NOWAIT, -EWOULDBLOCK);
    pthread_mutex_unlock(&qos->lock);
    b = blocks_of(qv, 0, 32, 8); /* 512 KiB fits under 1 MiB: the give-ups charged nothing */
    OK(zvol_write_blocks(qv, 0, b, 32, ZVOL_NOWAIT));
    free(b);
    refused(qv, 512 * 1024, 48, ZVOL_NOWAIT, -EDQUOT); /* 768 KiB more does not */
    expect(qv, 0, 512 * 1024, 8);
    zvol_close(qv);

    /* A read-only volume refuses, consuming the buffers. */
    struct zvol *snapv;
    const char *snap[] = { "tank/v@s" };
    OK(dsl_snapshot(p, snap, 1, &em));
    OK(zvol_open(p, "tank/v@s", &snapv, &em));
    b = blocks_of(snapv, 0, 1, 7);
    cr_assert_eq(zvol_write_blocks(snapv, 0, b, 1, ZVOL_NOWAIT), -EROFS);
    free(b);
    zvol_close(snapv);

    /* All of it is on disk after a re-import, and the pool checks clean. */
    zvol_close(zv);
    p = test_pool_verify(p);
    OK(zvol_open(p, "tank/v", &zv, &em));
    expect(zv, 1 * MiB, bs, 1);
    expect(zv, 1 * MiB + bs, 2 * bs, 2);
    expect(zv, 1 * MiB + 3 * bs, bs, 1);
    expect(zv, 2 * MiB, 2 * bs, 4);
    expect(zv, 4 * MiB, big * bs, 5);
    expect(zv, 8 * MiB, bs, 6);
    expect(zv, 0, 1 * MiB, 0);
    zvol_close(zv);
    pool_export(p);
}
