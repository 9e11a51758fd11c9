/* SPDX-License-Identifier: MIT */
/*
 * Mirrors and RAID-Z on file vdevs: layouts, self-healing reads under damage within the parity
 * budget, scrub repairing everything it finds, damage beyond the budget giving errors (never
 * wrong data), and pools importing degraded with devices missing.
 *
 * Damage is injected into the vdev files of an exported pool at the exact places the blocks'
 * columns live (vdev_block_columns), so every injected fault is a real fault the pool must find:
 * the checksum error counters must add up to the number injected.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "core/dsl.h"
#include "core/objset.h"
#include "core/pool.h"
#include "core/pool_impl.h"
#include "core/traverse.h"
#include "core/vdev_backend.h"
#include "core/verify.h"

#define MAXDEV   8
#define DEV_SIZE (128ull << 20)

static char dir[64];
static char devpath[MAXDEV][128];

static void
setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/lcpfs-rdn-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    for (int i = 0; i < MAXDEV; i++)
        snprintf(devpath[i], sizeof(devpath[i]), "%s/d%d", dir, i);
}

static void
teardown(void)
{
    for (int i = 0; i < MAXDEV; i++)
        unlink(devpath[i]);
    rmdir(dir);
}

TestSuite(redundancy, .init = setup, .fini = teardown, .timeout = 240);

static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Layout words: kw ("mirror", "raidz2", or NULL for a plain stripe) followed by n devices. */
static size_t
layout(const char *kw, int n, const char **words)
{
    size_t k = 0;
    if (kw != NULL)
        words[k++] = kw;
    for (int i = 0; i < n; i++)
        words[k++] = devpath[i];
    return k;
}

static struct pool *
create(const char *kw, int n)
{
    const char *words[MAXDEV + 1];
    size_t k = layout(kw, n, words);
    struct pool_opts po = { .create_files = true,
                            .create_size = DEV_SIZE,
                            .txg_timeout_ms = 600000,
                            .arc_max_bytes = 32u << 20 };
    struct pool *p = NULL;
    struct err_msg em = { 0 };
    cr_assert_eq(pool_create("tank", words, k, &po, &p, &em), 0, "create: %s", em.text);
    return p;
}

static struct pool *
import(int n, int expect_rc)
{
    const char *paths[MAXDEV];
    for (int i = 0; i < n; i++)
        paths[i] = devpath[i];
    struct pool_import_opts io = { .tuning = { .txg_timeout_ms = 600000,
                                               .arc_max_bytes = 32u << 20 } };
    struct pool *p = NULL;
    struct err_msg em = { 0 };
    int rc = pool_import(paths, (size_t)n, &io, &p, &em);
    cr_assert_eq(rc, expect_rc, "import: %d %s", rc, em.text);
    if (rc == 0)
        fprintf(stderr, "imported\n");
    else
        fprintf(stderr, "import refused as expected: %s\n", em.text);
    return p;
}

/* The test data: nblk blocks of blksz bytes; odd blocks random, even blocks half random and half
 * zeros (lz4 stores them in about half the sectors: RAID-Z stripes of another width). */
struct dataset_img {
    uint64_t obj;
    uint32_t blksz;
    int nblk;
    uint8_t *data;
};

static void
fill_image(struct dataset_img *im, uint64_t seed)
{
    im->data = malloc((size_t)im->blksz * (size_t)im->nblk);
    uint64_t s = seed;
    for (size_t i = 0; i < (size_t)im->blksz * (size_t)im->nblk; i++) {
        size_t b = i / im->blksz;
        im->data[i] = (b & 1) || i % im->blksz < im->blksz / 2 ? (uint8_t)rnd(&s) : 0;
    }
}

static void
write_image(struct pool *p, struct dataset_img *im)
{
    struct tx tx;
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    struct obj_create_opts o = { .type = OT_PLAIN,
                                 .blocksize = im->blksz,
                                 .checksum = CKSUM_INHERIT,
                                 .compress = COMPRESS_INHERIT };
    cr_assert_eq(obj_create(pool_root_objset(p), &tx, &o, &im->obj), 0);
    tx_commit(&tx);
    for (int b = 0; b < im->nblk; b++) {
        cr_assert_eq(tx_assign(p, im->blksz, &tx), 0);
        cr_assert_eq(obj_write(pool_root_objset(p), &tx, im->obj, (uint64_t)b * im->blksz,
                               im->blksz, im->data + (size_t)b * im->blksz),
                     0);
        tx_commit(&tx);
    }
    cr_assert_eq(pool_sync(p, NULL), 0);
}

/* Overwrites im->obj (already created) with im's data, committed. */
static void
rewrite_image(struct pool *p, struct dataset_img *im)
{
    struct tx tx;
    for (int b = 0; b < im->nblk; b++) {
        cr_assert_eq(tx_assign(p, im->blksz, &tx), 0);
        cr_assert_eq(obj_write(pool_root_objset(p), &tx, im->obj, (uint64_t)b * im->blksz,
                               im->blksz, im->data + (size_t)b * im->blksz),
                     0);
        tx_commit(&tx);
    }
    cr_assert_eq(pool_sync(p, NULL), 0);
}

/* Reads everything back; returns how many blocks failed (and asserts none is wrong). */
static int
check_image(struct pool *p, const struct dataset_img *im)
{
    int failed = 0;
    uint8_t *buf = malloc(im->blksz);
    for (int b = 0; b < im->nblk; b++) {
        int rc = obj_read(pool_root_objset(p), im->obj, (uint64_t)b * im->blksz, im->blksz, buf);
        if (rc != 0) {
            cr_assert(rc == -ECKSUM || rc == -EIO, "block %d: unexpected error %d", b, rc);
            failed++;
            continue;
        }
        cr_assert_eq(memcmp(buf, im->data + (size_t)b * im->blksz, im->blksz), 0,
                     "block %d returned wrong data", b);
    }
    free(buf);
    return failed;
}

struct bp_list {
    uint64_t obj;
    struct blkptr bp[512];
    uint64_t blkid[512];
    int n;
};

static int
collect(void *arg, const struct traverse_pos *pos, const struct blkptr *bp)
{
    struct bp_list *l = arg;
    if (pos->obj == l->obj && pos->level == 0 && !bp_is_embedded(bp) && l->n < 512) {
        l->blkid[l->n] = pos->blkid;
        l->bp[l->n++] = *bp;
    }
    return 0;
}

static void
collect_bps(struct pool *p, struct bp_list *l)
{
    l->n = 0;
    cr_assert_eq(traverse_objset(p, &pool_root_objset(p)->root_bp, 0, collect, l), 0);
    cr_assert_gt(l->n, 0);
}

static size_t
dsize_of(struct pool *p, const struct blkptr *bp)
{
    uint64_t unit = 1ull << p->vdevs[0]->ashift;
    return (size_t)((bp->psize + unit - 1) & ~(unit - 1));
}

/* One fault on the device file: 4 kinds, as named in the issue. Always changes the bytes. */
static void
damage(int dev, uint64_t off, size_t size, int kind, uint64_t *s)
{
    int fd = open(devpath[dev], O_RDWR);
    cr_assert_geq(fd, 0);
    uint8_t *b = malloc(size), *orig = malloc(size);
    off += VDEV_DATA_START;
    cr_assert_eq(pread(fd, b, size, (off_t)off), (ssize_t)size);
    memcpy(orig, b, size);
    switch (kind) {
    case 0: /* one bit flip */
        b[rnd(s) % size] ^= (uint8_t)(1u << (rnd(s) % 8));
        break;
    case 1: /* a zeroed sector */
        memset(b + (rnd(s) % (size / 4096)) * 4096, 0, 4096);
        break;
    case 2: /* garbage */
        for (size_t i = 0; i < size; i++)
            b[i] = (uint8_t)rnd(s);
        break;
    default: /* stale: what the device held one sector later (another block's bytes) */
        cr_assert_eq(pread(fd, b, size, (off_t)(off + 4096 * 37)), (ssize_t)size);
        b[0] ^= 0x5a; /* never equal by chance */
        break;
    }
    if (memcmp(b, orig, size) == 0)
        b[0] ^= 1;
    cr_assert_eq(pwrite(fd, b, size, (off_t)off), (ssize_t)size);
    close(fd);
    free(b);
    free(orig);
}

/* A stale fault: the older version's bytes (from the snapshot's block) over the current one. */
static void
stale_copy(int from_dev, uint64_t from_off, int to_dev, uint64_t to_off, size_t size)
{
    uint8_t *b = malloc(size), *cur = malloc(size);
    int fd = open(devpath[from_dev], O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, b, size, (off_t)(from_off + VDEV_DATA_START)), (ssize_t)size);
    close(fd);
    fd = open(devpath[to_dev], O_RDWR);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, cur, size, (off_t)(to_off + VDEV_DATA_START)), (ssize_t)size);
    if (memcmp(b, cur, size) == 0)
        b[0] ^= 1; /* never a no-op */
    cr_assert_eq(pwrite(fd, b, size, (off_t)(to_off + VDEV_DATA_START)), (ssize_t)size);
    close(fd);
    free(b);
    free(cur);
}

struct counts {
    uint64_t cksum, read, write, top_cksum, repaired;
};

static void
get_counts(struct pool *p, struct counts *c)
{
    memset(c, 0, sizeof(*c));
    struct pool_vdev_stats vs;
    cr_assert_eq(pool_get_vdev(p, 0, &vs), 0);
    c->top_cksum = vs.cksum_errors;
    for (uint32_t i = 0; pool_get_vdev_child(p, 0, i, &vs) == 0; i++) {
        c->cksum += vs.cksum_errors;
        c->read += vs.read_errors;
        c->write += vs.write_errors;
        c->repaired += vs.repaired_bytes;
    }
}

/*
 * The acceptance scenario for one layout: 200 faults within the budget, every read right during
 * the damage, one scrub repairs all, a second finds nothing, counters equal what was injected.
 */
static void
damage_and_heal(const char *kw, int ndev, unsigned budget, uint64_t seed)
{
    fprintf(stderr, "%s x%d, budget %u columns per block, seed %llu\n", kw, ndev, budget,
            (unsigned long long)seed);
    struct pool *p = create(kw, ndev);
    /* An older version of every block, kept by a snapshot: the "stale" faults put its bytes
     * where the current version lives (what a device that lost recent writes would return). */
    struct dataset_img old = { .blksz = 16384, .nblk = 400 };
    fill_image(&old, seed + 1000);
    write_image(p, &old);
    struct bp_list *lold = calloc(1, sizeof(*lold));
    lold->obj = old.obj;
    collect_bps(p, lold);
    struct err_msg em = { 0 };
    const char *snap[] = { "tank@old" };
    cr_assert_eq(dsl_snapshot(p, snap, 1, &em), 0, "%s", em.text);
    struct dataset_img im = { .blksz = 16384, .nblk = 400, .obj = old.obj };
    fill_image(&im, seed);
    rewrite_image(p, &im);
    cr_assert_eq(pool_export(p), 0);
    p = import(ndev, 0);
    struct bp_list *l = calloc(1, sizeof(*l));
    l->obj = im.obj;
    collect_bps(p, l);
    cr_assert_eq(pool_export(p), 0);

    /* Choose 200 distinct (block, column) faults, at most `budget` per block. */
    uint64_t s = seed;
    unsigned *per_block = calloc((size_t)l->n, sizeof(unsigned));
    uint64_t *hit = calloc((size_t)l->n, sizeof(uint64_t)); /* column bit mask */
    int injected = 0, tries = 0;
    struct pool *probe = NULL;
    (void)probe;
    /* The column map needs the vdev tree: rebuild it from a read-only import. */
    const char *paths[MAXDEV];
    for (int i = 0; i < ndev; i++)
        paths[i] = devpath[i];
    struct pool_import_opts ro = { .readonly = true, .tuning = { .arc_max_bytes = 16u << 20 } };
    cr_assert_eq(pool_import(paths, (size_t)ndev, &ro, &probe, &em), 0, "%s", em.text);
    struct {
        int dev, stale_dev;
        uint64_t off, stale_off;
        size_t size;
    } *faults = calloc(200, sizeof(*faults));
    while (injected < 200 && tries++ < 100000) {
        int b = (int)(rnd(&s) % (uint64_t)l->n);
        if (per_block[b] >= budget)
            continue;
        const struct blkptr *bp = &l->bp[b];
        struct vdev_column cols[VDEV_MAX_CHILDREN];
        unsigned nc = vdev_block_columns(probe->vdevs[bp->dva[0].vdev], bp->dva[0].offset,
                                         dsize_of(probe, bp), cols);
        cr_assert_gt(nc, 1);
        unsigned c = (unsigned)(rnd(&s) % nc);
        if (hit[b] & (1ull << c))
            continue;
        /* The same column of the block's older version, when it has one that large. */
        int stale_dev = -1;
        uint64_t stale_off = 0;
        for (int k = 0; k < lold->n; k++) {
            if (lold->blkid[k] != l->blkid[b])
                continue;
            const struct blkptr *ob = &lold->bp[k];
            struct vdev_column oc[VDEV_MAX_CHILDREN];
            unsigned on = vdev_block_columns(probe->vdevs[ob->dva[0].vdev], ob->dva[0].offset,
                                             dsize_of(probe, ob), oc);
            if (c < on && oc[c].size >= cols[c].size) {
                stale_dev = (int)oc[c].child;
                stale_off = oc[c].off;
            }
        }
        hit[b] |= 1ull << c;
        per_block[b]++;
        faults[injected].dev = (int)cols[c].child;
        faults[injected].off = cols[c].off;
        faults[injected].size = cols[c].size;
        faults[injected].stale_dev = stale_dev;
        faults[injected].stale_off = stale_off;
        injected++;
    }
    pool_close(probe);
    cr_assert_eq(injected, 200);
    int stale = 0;
    for (int i = 0; i < injected; i++) {
        if (i % 4 == 3 && faults[i].stale_dev >= 0) {
            stale_copy(faults[i].stale_dev, faults[i].stale_off, faults[i].dev, faults[i].off,
                       faults[i].size);
            stale++;
        } else {
            damage(faults[i].dev, faults[i].off, faults[i].size, i % 3, &s);
        }
    }
    fprintf(stderr, "%d of the faults are stale older versions of the block\n", stale);
    cr_assert_gt(stale, 20);

    /* Every read returns the right data while the damage is there. */
    p = import(ndev, 0);
    cr_assert_eq(check_image(p, &im), 0, "a read failed within the parity budget");
    struct counts after_read, after_scrub, after_second;
    get_counts(p, &after_read);
    fprintf(stderr, "after reads: %llu checksum errors found and repaired\n",
            (unsigned long long)after_read.cksum);

    /* One scrub finds and repairs the rest; the counters add up to what was injected. */
    cr_assert_eq(pool_scrub(p, &em), 0, "%s", em.text);
    struct pool_scan_stats scan;
    pool_get_scan(p, &scan);
    cr_assert_eq(scan.state, POOL_SCAN_FINISHED);
    cr_assert_eq(scan.errors, 0);
    get_counts(p, &after_scrub);
    fprintf(stderr, "after scrub: %llu checksum errors, %llu bytes repaired (scrub %llu)\n",
            (unsigned long long)after_scrub.cksum, (unsigned long long)after_scrub.repaired,
            (unsigned long long)scan.repaired_bytes);
    cr_assert_eq(after_scrub.cksum, 200, "checksum errors %llu, injected 200",
                 (unsigned long long)after_scrub.cksum);
    cr_assert_eq(after_scrub.top_cksum, 0);
    cr_assert_eq(after_scrub.read + after_scrub.write, 0);
    cr_assert_gt(scan.repaired_bytes, 0);

    /* A second scrub finds nothing. */
    cr_assert_eq(pool_scrub(p, &em), 0, "%s", em.text);
    pool_get_scan(p, &scan);
    get_counts(p, &after_second);
    cr_assert_eq(after_second.cksum, after_scrub.cksum, "second scrub found more damage");
    cr_assert_eq(scan.repaired_bytes, 0);
    cr_assert_eq(check_image(p, &im), 0);
    cr_assert_eq(pool_export(p), 0);

    /* And the offline verifier agrees the pool is whole. */
    struct verify_report r;
    cr_assert_eq(verify_pool(paths, (size_t)ndev, NULL, &r, NULL, NULL, &em), 0, "%s", em.text);
    cr_assert_eq(r.errors, 0, "verifier: %llu errors", (unsigned long long)r.errors);
    free(faults);
    free(per_block);
    free(hit);
    free(l);
    free(lold);
    free(im.data);
    free(old.data);
}

Test(redundancy, mirror2_heals_200_faults)
{
    damage_and_heal("mirror", 2, 1, 11);
}
Test(redundancy, mirror3_heals_200_faults)
{
    damage_and_heal("mirror", 3, 2, 12);
}
Test(redundancy, raidz1_heals_200_faults)
{
    damage_and_heal("raidz1", 4, 1, 13);
}
Test(redundancy, raidz2_heals_200_faults)
{
    damage_and_heal("raidz2", 5, 2, 14);
}
Test(redundancy, raidz3_heals_200_faults)
{
    damage_and_heal("raidz3", 7, 3, 15);
}

Test(redundancy, layouts_are_checked)
{
    const char *bad[][4] = {
        { "mirror", devpath[0], NULL },
        { "raidz2", devpath[0], devpath[1], NULL },
        { "raidz3", devpath[0], devpath[1], devpath[2] },
    };
    size_t nbad[] = { 2, 3, 4 };
    for (int i = 0; i < 3; i++) {
        struct pool_opts po = { .create_files = true, .create_size = DEV_SIZE };
        struct pool *p = NULL;
        struct err_msg em = { 0 };
        cr_assert_eq(pool_create("tank", bad[i], nbad[i], &po, &p, &em), -EINVAL);
        fprintf(stderr, "refused: %s\n", em.text);
        cr_assert_neq(em.text[0], '\0');
    }
    /* A mixed layout works and reports its tree. */
    const char *words[] = { "mirror",   devpath[0], devpath[1], "raidz1",
                            devpath[2], devpath[3], devpath[4] };
    struct pool_opts po = { .create_files = true, .create_size = DEV_SIZE };
    struct pool *p = NULL;
    struct err_msg em = { 0 };
    cr_assert_eq(pool_create("tank", words, 7, &po, &p, &em), 0, "%s", em.text);
    struct pool_vdev_stats vs;
    cr_assert_eq(pool_get_vdev(p, 0, &vs), 0);
    cr_assert_eq(vs.type, VDEV_TYPE_MIRROR);
    cr_assert_str_eq(vs.path, "mirror-0");
    cr_assert_eq(vs.nchildren, 2);
    cr_assert_eq(pool_get_vdev(p, 1, &vs), 0);
    cr_assert_eq(vs.type, VDEV_TYPE_RAIDZ);
    cr_assert_str_eq(vs.path, "raidz1-1");
    cr_assert_eq(vs.nchildren, 3);
    /* raidz1 of three 128 MiB devices: about 3 x 124 MiB of raw space. */
    cr_assert_gt(vs.size, 3 * (120ull << 20));
    cr_assert_eq(pool_get_vdev_child(p, 1, 2, &vs), 0);
    cr_assert_str_eq(vs.path, devpath[4]);
    cr_assert_eq(pool_export(p), 0);
}

static void
beyond_budget(const char *kw, int ndev, unsigned ndamage)
{
    struct pool *p = create(kw, ndev);
    struct dataset_img im = { .blksz = 16384, .nblk = 8 };
    fill_image(&im, 99);
    write_image(p, &im);
    struct bp_list *l = calloc(1, sizeof(*l));
    l->obj = im.obj;
    collect_bps(p, l);
    /* Damage block 3 (random data: stored raw, every column in use) on ndamage columns. */
    const struct blkptr *bp = NULL;
    for (int i = 0; i < l->n; i++)
        if (l->blkid[i] == 3)
            bp = &l->bp[i];
    cr_assert_not_null(bp);
    struct vdev_column cols[VDEV_MAX_CHILDREN];
    unsigned nc =
        vdev_block_columns(p->vdevs[bp->dva[0].vdev], bp->dva[0].offset, dsize_of(p, bp), cols);
    cr_assert_geq(nc, ndamage);
    cr_assert_eq(pool_export(p), 0);
    uint64_t s = 5;
    for (unsigned c = 0; c < ndamage; c++)
        damage((int)cols[nc - 1 - c].child, cols[nc - 1 - c].off, cols[nc - 1 - c].size, 2, &s);
    p = import(ndev, 0);
    uint8_t *buf = malloc(im.blksz);
    int rc = obj_read(pool_root_objset(p), im.obj, 3ull * im.blksz, im.blksz, buf);
    cr_assert_eq(rc, -ECKSUM, "read beyond the budget gave %d", rc);
    cr_assert_eq(check_image(p, &im), 1, "only the damaged block fails");
    /* The damaged object is named in the error list; a scrub counts it, the rest is intact. */
    struct err_msg em = { 0 };
    cr_assert_eq(pool_scrub(p, &em), 0, "%s", em.text);
    struct pool_scan_stats scan;
    pool_get_scan(p, &scan);
    cr_assert_eq(scan.errors, 1);
    struct pool_vdev_stats vs;
    cr_assert_eq(pool_get_vdev(p, 0, &vs), 0);
    cr_assert_gt(vs.cksum_errors, 0);
    cr_assert_gt(pool_get_errors(p, NULL, NULL), 0);
    free(buf);
    free(l);
    free(im.data);
    cr_assert_eq(pool_export(p), 0);
}

Test(redundancy, damage_beyond_the_budget_is_an_error_never_wrong_data)
{
    beyond_budget("raidz1", 4, 2);
    teardown();
    setup();
    beyond_budget("mirror", 2, 2);
    teardown();
    setup();
    beyond_budget("raidz2", 5, 3);
}

Test(redundancy, missing_devices_import_degraded_within_the_budget)
{
    struct pool *p = create("raidz2", 5);
    struct dataset_img im = { .blksz = 16384, .nblk = 64 };
    fill_image(&im, 7);
    write_image(p, &im);
    cr_assert_eq(pool_export(p), 0);
    /* Two of five gone: still importable, DEGRADED, everything reads. */
    char keep[2][160];
    for (int i = 0; i < 2; i++) {
        snprintf(keep[i], sizeof(keep[i]), "%s.away", devpath[1 + 2 * i]);
        cr_assert_eq(rename(devpath[1 + 2 * i], keep[i]), 0);
    }
    p = import(5, 0);
    struct pool_stats st;
    pool_get_stats(p, &st);
    cr_assert_eq(st.health, VDEV_DEGRADED);
    struct pool_vdev_stats vs;
    cr_assert_eq(pool_get_vdev_child(p, 0, 1, &vs), 0);
    cr_assert_eq(vs.health, VDEV_UNAVAIL);
    cr_assert_eq(check_image(p, &im), 0);
    /* Writes keep working degraded, and are readable after another import. */
    struct dataset_img im2 = { .blksz = 16384, .nblk = 32 };
    fill_image(&im2, 8);
    write_image(p, &im2);
    cr_assert_eq(pool_export(p), 0);
    p = import(5, 0);
    cr_assert_eq(check_image(p, &im), 0);
    cr_assert_eq(check_image(p, &im2), 0);
    cr_assert_eq(pool_export(p), 0);
    /* A third missing device is beyond raidz2: refused, naming what is missing. */
    char third[160];
    snprintf(third, sizeof(third), "%s.away", devpath[0]);
    cr_assert_eq(rename(devpath[0], third), 0);
    import(5, -EDEGRADED);
    /* Devices back: the pool is whole again (the returning devices missed txgs). */
    cr_assert_eq(rename(third, devpath[0]), 0);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(rename(keep[i], devpath[1 + 2 * i]), 0);
    p = import(5, 0);
    pool_get_stats(p, &st);
    cr_assert_eq(st.health, VDEV_ONLINE);
    cr_assert_eq(check_image(p, &im), 0);
    cr_assert_eq(check_image(p, &im2), 0);
    /* The returning devices lack im2's columns: reads rebuilt them; a scrub fixes the rest. */
    struct err_msg em = { 0 };
    cr_assert_eq(pool_scrub(p, &em), 0, "%s", em.text);
    struct pool_scan_stats scan;
    pool_get_scan(p, &scan);
    cr_assert_eq(scan.errors, 0);
    cr_assert_eq(pool_scrub(p, &em), 0, "%s", em.text);
    pool_get_scan(p, &scan);
    cr_assert_eq(scan.repaired_bytes, 0, "second scrub repaired %llu bytes",
                 (unsigned long long)scan.repaired_bytes);
    cr_assert_eq(pool_export(p), 0);
    free(im.data);
    free(im2.data);
}

Test(redundancy, failing_devices_under_io_keep_the_data)
{
    /* Memory devices behind fault injectors: one mirror child and one raidz1 column fail. */
    struct vdev_backend *devs[5], *faults[5];
    for (int i = 0; i < 5; i++) {
        struct vdev_backend *m;
        cr_assert_eq(vdev_mem_open(DEV_SIZE, &m), 0);
        cr_assert_eq(vdev_fault_wrap(m, &faults[i]), 0);
        devs[i] = faults[i];
    }
    const char *words[] = { "mirror", "a", "b", "raidz1", "c", "d", "e" };
    struct pool_opts po = { .txg_timeout_ms = 600000, .arc_max_bytes = 16u << 20 };
    struct pool *p = NULL;
    struct err_msg em = { 0 };
    cr_assert_eq(pool_create_layout("tank", words, 7, devs, 5, &po, &p, &em), 0, "%s", em.text);
    struct dataset_img im = { .blksz = 65536, .nblk = 64 };
    fill_image(&im, 3);
    /* Writes while one child of each top-level fails every write. */
    vdev_fault_fail_all_writes(faults[1], true);
    vdev_fault_fail_all_writes(faults[3], true);
    write_image(p, &im);
    vdev_fault_fail_all_writes(faults[1], false);
    vdev_fault_fail_all_writes(faults[3], false);
    struct pool_stats st;
    pool_get_stats(p, &st);
    cr_assert_gt(st.write_errors, 0);
    /* A run of failed writes faulted both: they take no more I/O, the pool runs degraded. */
    cr_assert_eq(st.health, VDEV_DEGRADED);
    struct pool_vdev_stats vs;
    cr_assert_eq(pool_get_vdev_child(p, 0, 1, &vs), 0);
    cr_assert_eq(vs.health, VDEV_FAULTED);
    cr_assert_eq(pool_get_vdev_child(p, 1, 1, &vs), 0);
    cr_assert_eq(vs.health, VDEV_FAULTED);
    arc_set_max(p->arc, 0); /* drop the cache: reads go to the devices */
    arc_set_max(p->arc, 16u << 20);
    cr_assert_eq(check_image(p, &im), 0);
    /* Cleared (the device was fixed), they are resilvered with what they missed... */
    cr_assert_eq(pool_clear(p, NULL, &em), 0);
    pool_get_stats(p, &st);
    cr_assert_eq(st.health, VDEV_ONLINE);
    cr_assert_eq(pool_resilver(p, &em), 0, "%s", em.text);
    struct pool_scan_stats rs;
    pool_get_scan(p, &rs);
    cr_assert_gt(rs.repaired_bytes, 0);
    /* ...and a scrub finds whatever else is missing (blocks written before the fault). */
    cr_assert_eq(pool_scrub(p, &em), 0, "%s", em.text);
    struct pool_scan_stats scan;
    pool_get_scan(p, &scan);
    cr_assert_eq(scan.errors, 0);
    cr_assert_eq(pool_scrub(p, &em), 0, "%s", em.text);
    pool_get_scan(p, &scan);
    cr_assert_eq(scan.repaired_bytes, 0);
    /* ...so now the other children may fail every read: the repaired ones serve the data. */
    arc_set_max(p->arc, 0);
    arc_set_max(p->arc, 16u << 20);
    vdev_fault_fail_all_reads(faults[0], true);
    vdev_fault_fail_all_reads(faults[4], true);
    cr_assert_eq(check_image(p, &im), 0);
    vdev_fault_fail_all_reads(faults[0], false);
    vdev_fault_fail_all_reads(faults[4], false);
    pool_get_stats(p, &st);
    cr_assert_gt(st.read_errors, 0);
    pool_close(p);
    free(im.data);
}

Test(redundancy, offline_online_resilvers_only_what_was_missed)
{
    struct pool *p = create("raidz2", 5);
    struct dataset_img im = { .blksz = 16384, .nblk = 256 };
    fill_image(&im, 21);
    write_image(p, &im);
    struct err_msg em = { 0 };
    cr_assert_eq(pool_vdev_offline(p, devpath[1], &em), 0, "%s", em.text);
    cr_assert_eq(pool_vdev_offline(p, devpath[2], &em), 0, "%s", em.text);
    /* A third would leave raidz2 unable to serve: refused. */
    cr_assert_eq(pool_vdev_offline(p, devpath[3], &em), -EBUSY);
    fprintf(stderr, "refused: %s\n", em.text);
    struct pool_stats st;
    pool_get_stats(p, &st);
    cr_assert_eq(st.health, VDEV_DEGRADED);
    /* Writes while two devices are offline; the offline state survives an export. */
    struct dataset_img im2 = { .blksz = 16384, .nblk = 32 };
    fill_image(&im2, 22);
    write_image(p, &im2);
    cr_assert_eq(pool_export(p), 0);
    p = import(5, 0);
    struct pool_vdev_stats vs;
    cr_assert_eq(pool_get_vdev_child(p, 0, 1, &vs), 0);
    cr_assert_eq(vs.health, VDEV_OFFLINE);
    cr_assert_eq(check_image(p, &im), 0);
    cr_assert_eq(check_image(p, &im2), 0);
    /* Online again: the resilver walks only the blocks born while they were away. */
    cr_assert_eq(pool_vdev_online(p, devpath[1], &em), 0, "%s", em.text);
    cr_assert_eq(pool_vdev_online(p, devpath[2], &em), 0, "%s", em.text);
    cr_assert_eq(pool_resilver(p, &em), 0, "%s", em.text);
    struct pool_scan_stats rs, sc;
    pool_get_scan(p, &rs);
    cr_assert_eq(rs.kind, POOL_SCAN_RESILVER);
    cr_assert_eq(rs.errors, 0);
    cr_assert_gt(rs.repaired_bytes, 0);
    pool_get_stats(p, &st);
    cr_assert_eq(st.health, VDEV_ONLINE);
    /* Nothing is left to resilver; a scrub finds all of it in place. */
    cr_assert_eq(pool_resilver(p, &em), 0);
    cr_assert_eq(pool_scrub(p, &em), 0, "%s", em.text);
    pool_get_scan(p, &sc);
    fprintf(stderr, "resilver examined %llu bytes in %llu blocks, scrub %llu in %llu\n",
            (unsigned long long)rs.examined, (unsigned long long)rs.blocks,
            (unsigned long long)sc.examined, (unsigned long long)sc.blocks);
    cr_assert_lt(rs.examined * 3, sc.examined, "the resilver walked more than what changed");
    cr_assert_eq(sc.repaired_bytes, 0);
    cr_assert_eq(sc.errors, 0);
    /* The two devices now hold their columns: two others may fail and everything reads. */
    cr_assert_eq(pool_vdev_offline(p, devpath[0], &em), 0, "%s", em.text);
    cr_assert_eq(pool_vdev_offline(p, devpath[4], &em), 0, "%s", em.text);
    arc_set_max(p->arc, 0);
    arc_set_max(p->arc, 32u << 20);
    cr_assert_eq(check_image(p, &im), 0);
    cr_assert_eq(check_image(p, &im2), 0);
    cr_assert_eq(pool_export(p), 0);
    free(im.data);
    free(im2.data);
}

Test(redundancy, replace_rebuilds_the_new_device)
{
    struct pool *p = create("mirror", 2);
    struct dataset_img im = { .blksz = 65536, .nblk = 64 };
    fill_image(&im, 31);
    write_image(p, &im);
    struct err_msg em = { 0 };
    /* A device of another pool, or too small, is refused. */
    cr_assert_eq(pool_vdev_replace(p, devpath[1], devpath[0], &em), -EEXIST);
    cr_assert_eq(pool_vdev_replace(p, "nonesuch", devpath[5], &em), -ENOENT);
    cr_assert_eq(pool_vdev_replace(p, devpath[1], devpath[5], &em), 0, "%s", em.text);
    cr_assert_eq(pool_resilver(p, &em), 0, "%s", em.text);
    struct pool_scan_stats rs;
    pool_get_scan(p, &rs);
    cr_assert_eq(rs.errors, 0);
    cr_assert_geq(rs.repaired_bytes, (uint64_t)im.blksz * (uint64_t)im.nblk / 2);
    /* The old healthy side may go: the new device alone serves everything. */
    cr_assert_eq(pool_vdev_offline(p, devpath[0], &em), 0, "%s", em.text);
    arc_set_max(p->arc, 0);
    arc_set_max(p->arc, 32u << 20);
    cr_assert_eq(check_image(p, &im), 0);
    cr_assert_eq(pool_vdev_online(p, devpath[0], &em), 0, "%s", em.text);
    cr_assert_eq(pool_export(p), 0);
    /* The replaced file is no longer part of the pool; an import given the old list of devices
     * finds the new one by the path in the labels. */
    unlink(devpath[1]);
    const char *paths[] = { devpath[0], devpath[1] };
    struct pool_import_opts io = { .tuning = { .arc_max_bytes = 32u << 20 } };
    cr_assert_eq(pool_import(paths, 2, &io, &p, &em), 0, "%s", em.text);
    struct pool_stats st;
    pool_get_stats(p, &st);
    cr_assert_eq(st.health, VDEV_ONLINE);
    cr_assert_eq(check_image(p, &im), 0);
    cr_assert_eq(pool_scrub(p, &em), 0, "%s", em.text);
    pool_get_scan(p, &rs);
    cr_assert_eq(rs.repaired_bytes, 0);
    cr_assert_eq(pool_export(p), 0);
    free(im.data);
}

Test(redundancy, a_missing_device_is_replaced_and_the_pool_is_whole_again)
{
    struct pool *p = create("raidz1", 4);
    struct dataset_img im = { .blksz = 16384, .nblk = 128 };
    fill_image(&im, 41);
    write_image(p, &im);
    cr_assert_eq(pool_export(p), 0);
    unlink(devpath[2]);
    p = import(4, 0);
    struct pool_stats st;
    pool_get_stats(p, &st);
    cr_assert_eq(st.health, VDEV_DEGRADED);
    struct err_msg em = { 0 };
    /* The pool was opened without create_files: make the new file first. */
    int fd = open(devpath[6], O_CREAT | O_RDWR, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)DEV_SIZE), 0);
    close(fd);
    cr_assert_eq(pool_vdev_replace(p, devpath[2], devpath[6], &em), 0, "%s", em.text);
    cr_assert_eq(pool_resilver(p, &em), 0, "%s", em.text);
    pool_get_stats(p, &st);
    cr_assert_eq(st.health, VDEV_ONLINE);
    cr_assert_eq(check_image(p, &im), 0);
    cr_assert_eq(pool_export(p), 0);
    const char *paths[] = { devpath[0], devpath[1], devpath[6], devpath[3] };
    struct pool_import_opts io = { .tuning = { .arc_max_bytes = 32u << 20 } };
    cr_assert_eq(pool_import(paths, 4, &io, &p, &em), 0, "%s", em.text);
    pool_get_stats(p, &st);
    cr_assert_eq(st.health, VDEV_ONLINE);
    cr_assert_eq(pool_scrub(p, &em), 0, "%s", em.text);
    struct pool_scan_stats sc;
    pool_get_scan(p, &sc);
    cr_assert_eq(sc.repaired_bytes, 0);
    cr_assert_eq(sc.errors, 0);
    cr_assert_eq(pool_export(p), 0);
    free(im.data);
}

Test(redundancy, a_mirror_is_added_to_a_live_pool)
{
    struct pool *p = create("raidz1", 3);
    struct dataset_img im = { .blksz = 65536, .nblk = 32 };
    fill_image(&im, 51);
    write_image(p, &im);
    for (int i = 3; i < 5; i++) {
        int fd = open(devpath[i], O_CREAT | O_RDWR, 0600);
        cr_assert_geq(fd, 0);
        cr_assert_eq(ftruncate(fd, (off_t)DEV_SIZE), 0);
        close(fd);
    }
    const char *bad[] = { "mirror", devpath[3] };
    struct err_msg em = { 0 };
    cr_assert_eq(pool_add(p, bad, 2, &em), -EINVAL);
    const char *words[] = { "mirror", devpath[3], devpath[4] };
    cr_assert_eq(pool_add(p, words, 3, &em), 0, "%s", em.text);
    struct pool_vdev_stats vs;
    cr_assert_eq(pool_get_vdev(p, 1, &vs), 0);
    cr_assert_eq(vs.type, VDEV_TYPE_MIRROR);
    struct dataset_img im2 = { .blksz = 65536, .nblk = 64 };
    fill_image(&im2, 52);
    write_image(p, &im2);
    cr_assert_gt(vs.size, 0);
    cr_assert_eq(pool_export(p), 0);
    p = import(5, 0);
    cr_assert_eq(check_image(p, &im), 0);
    cr_assert_eq(check_image(p, &im2), 0);
    cr_assert_eq(pool_get_vdev(p, 1, &vs), 0);
    cr_assert_gt(vs.allocated, 0, "the new mirror took no writes");
    cr_assert_eq(pool_export(p), 0);
    free(im.data);
    free(im2.data);
}

Test(redundancy, small_volblocksize_on_raidz_is_refused_and_reservations_count_parity)
{
    struct pool *p = create("raidz2", 6);
    struct err_msg em = { 0 };
    struct dsl_prop_set small[] = { { "volsize", "64M" }, { "volblocksize", "4K" } };
    cr_assert_eq(dsl_create(p, "tank/v4k", DSL_KIND_VOL, small, 2, 0, &em), -EINVAL);
    fprintf(stderr, "refused: %s\n", em.text);
    cr_assert_not_null(strstr(em.text, "use volblocksize=16K"));
    /* The default (16K: 4 data + 2 parity sectors, 1.5x) is fine; its thick reservation counts
     * the parity it will really allocate. */
    struct dsl_prop_set ok[] = { { "volsize", "64M" } };
    cr_assert_eq(dsl_create(p, "tank/v16k", DSL_KIND_VOL, ok, 1, 0, &em), 0, "%s", em.text);
    struct dsl_prop_out out;
    cr_assert_eq(dsl_get(p, "tank/v16k", "refreservation", true, &out, &em), 0, "%s", em.text);
    uint64_t rsv = strtoull(out.value, NULL, 10);
    fprintf(stderr, "refreservation of a 64M volume on raidz2 x6: %llu\n", (unsigned long long)rsv);
    cr_assert_geq(rsv, (64ull << 20) * 3 / 2);
    cr_assert_lt(rsv, (64ull << 20) * 17 / 10);
    cr_assert_eq(pool_export(p), 0);
    /* On a raidz2 of five, 16K would take 36K (2.25x): a volume created without volblocksize
     * gets 32K instead. */
    teardown();
    setup();
    p = create("raidz2", 5);
    cr_assert_eq(dsl_create(p, "tank/v", DSL_KIND_VOL, ok, 1, 0, &em), 0, "%s", em.text);
    cr_assert_eq(dsl_get(p, "tank/v", "volblocksize", true, &out, &em), 0, "%s", em.text);
    cr_assert_str_eq(out.value, "32768");
    cr_assert_eq(pool_export(p), 0);
}

struct scrub_thread {
    struct pool *p;
    int rc;
};

static void *
scrub_main(void *arg)
{
    struct scrub_thread *t = arg;
    struct err_msg em = { 0 };
    t->rc = pool_scrub(t->p, &em);
    return NULL;
}

Test(redundancy, a_paused_scrub_resumes_after_export_where_it_stopped)
{
    struct pool *p = create("raidz1", 4);
    struct dataset_img im = { .blksz = 16384, .nblk = 3000 };
    fill_image(&im, 61);
    write_image(p, &im);
    struct err_msg em = { 0 };
    /* A full scrub for reference. */
    cr_assert_eq(pool_scrub(p, &em), 0, "%s", em.text);
    struct pool_scan_stats full;
    pool_get_scan(p, &full);
    /* Pause one part way through. */
    struct scrub_thread t = { p, 1 };
    pthread_t tid;
    cr_assert_eq(pthread_create(&tid, NULL, scrub_main, &t), 0);
    struct pool_scan_stats sc;
    do {
        usleep(2000);
        pool_get_scan(p, &sc);
    } while (sc.state != POOL_SCAN_RUNNING || sc.blocks < full.blocks * 6 / 10);
    pool_scrub_pause(p);
    pthread_join(tid, NULL);
    cr_assert_eq(t.rc, -EINTR);
    pool_get_scan(p, &sc);
    cr_assert_eq(sc.state, POOL_SCAN_PAUSED);
    cr_assert_lt(sc.blocks, full.blocks);
    uint64_t at_pause = sc.blocks;
    /* The pause is committed: after an export and import the scrub is still paused there. */
    cr_assert_eq(pool_export(p), 0);
    p = import(4, 0);
    pool_get_scan(p, &sc);
    cr_assert_eq(sc.state, POOL_SCAN_PAUSED);
    cr_assert_eq(sc.blocks, at_pause);
    cr_assert_eq(pool_scrub(p, &em), 0, "%s", em.text);
    pool_get_scan(p, &sc);
    cr_assert_eq(sc.state, POOL_SCAN_FINISHED);
    fprintf(stderr, "full scrub %llu blocks; paused at %llu, finished at %llu\n",
            (unsigned long long)full.blocks, (unsigned long long)at_pause,
            (unsigned long long)sc.blocks);
    /* The resumed part did not start over: it continued from the last finished batch (scans
     * read in sorted batches of 32 MiB; the one in progress at the pause is done again). */
    cr_assert_lt(sc.blocks - at_pause, full.blocks);
    cr_assert_geq(sc.blocks, full.blocks);
    /* Cancel forgets a paused scrub. */
    t = (struct scrub_thread){ p, 1 };
    cr_assert_eq(pthread_create(&tid, NULL, scrub_main, &t), 0);
    do {
        usleep(2000);
        pool_get_scan(p, &sc);
    } while (sc.state != POOL_SCAN_RUNNING || sc.blocks < 10);
    pool_scrub_pause(p);
    pthread_join(tid, NULL);
    pool_scrub_cancel(p);
    pool_get_scan(p, &sc);
    cr_assert_eq(sc.state, POOL_SCAN_CANCELED);
    cr_assert_eq(check_image(p, &im), 0);
    cr_assert_eq(pool_export(p), 0);
    free(im.data);
}

Test(redundancy, attach_makes_a_mirror_and_detach_undoes_it)
{
    struct pool *p = create(NULL, 1);
    struct dataset_img im = { .blksz = 65536, .nblk = 48 };
    fill_image(&im, 71);
    write_image(p, &im);
    for (int i = 1; i < 3; i++) {
        int fd = open(devpath[i], O_CREAT | O_RDWR, 0600);
        cr_assert_geq(fd, 0);
        cr_assert_eq(ftruncate(fd, (off_t)DEV_SIZE), 0);
        close(fd);
    }
    struct err_msg em = { 0 };
    /* A plain device becomes a mirror, then a three-way mirror. */
    cr_assert_eq(pool_vdev_attach(p, devpath[0], devpath[1], &em), 0, "%s", em.text);
    struct pool_vdev_stats vs;
    cr_assert_eq(pool_get_vdev(p, 0, &vs), 0);
    cr_assert_eq(vs.type, VDEV_TYPE_MIRROR);
    cr_assert_eq(vs.nchildren, 2);
    cr_assert_eq(pool_vdev_attach(p, devpath[0], devpath[2], &em), 0, "%s", em.text);
    cr_assert_eq(pool_get_vdev(p, 0, &vs), 0);
    cr_assert_eq(vs.nchildren, 3);
    /* Detaching a side that still lacks data is refused until the resilver ran. */
    cr_assert_eq(pool_vdev_detach(p, devpath[0], &em), -EBUSY);
    fprintf(stderr, "refused: %s\n", em.text);
    cr_assert_eq(pool_resilver(p, &em), 0, "%s", em.text);
    struct pool_scan_stats rs;
    pool_get_scan(p, &rs);
    cr_assert_geq(rs.repaired_bytes, 2ull * 48 * 65536 / 2);
    /* The original device goes; the attached ones hold everything. */
    cr_assert_eq(pool_vdev_detach(p, devpath[0], &em), 0, "%s", em.text);
    cr_assert_eq(pool_get_vdev(p, 0, &vs), 0);
    cr_assert_eq(vs.nchildren, 2);
    cr_assert_eq(pool_vdev_detach(p, devpath[1], &em), 0, "%s", em.text);
    cr_assert_eq(pool_get_vdev(p, 0, &vs), 0);
    cr_assert_eq(vs.type, VDEV_TYPE_LEAF);
    cr_assert_str_eq(vs.path, devpath[2]);
    arc_set_max(p->arc, 0);
    arc_set_max(p->arc, 32u << 20);
    cr_assert_eq(check_image(p, &im), 0);
    struct dataset_img im2 = { .blksz = 65536, .nblk = 16 };
    fill_image(&im2, 72);
    write_image(p, &im2);
    cr_assert_eq(pool_export(p), 0);
    const char *paths[] = { devpath[2] };
    struct pool_import_opts io = { .tuning = { .arc_max_bytes = 32u << 20 } };
    cr_assert_eq(pool_import(paths, 1, &io, &p, &em), 0, "%s", em.text);
    cr_assert_eq(check_image(p, &im), 0);
    cr_assert_eq(check_image(p, &im2), 0);
    cr_assert_eq(pool_scrub(p, &em), 0, "%s", em.text);
    pool_get_scan(p, &rs);
    cr_assert_eq(rs.errors, 0);
    cr_assert_eq(pool_export(p), 0);
    free(im.data);
    free(im2.data);
}
