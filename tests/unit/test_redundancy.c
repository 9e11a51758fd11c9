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
#include "redundancy_util.h"

TestSuite(redundancy, .init = setup, .fini = teardown, .timeout = 240);

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

    /* The offline verifier sees the damage (and that redundancy still recovers every block). */
    struct verify_report vr;
    cr_assert_eq(verify_pool(paths, (size_t)ndev, NULL, &vr, NULL, NULL, &em), 0, "%s", em.text);
    cr_assert_gt(vr.damaged_pieces, 0);
    cr_assert_eq(vr.cksum_errors + vr.io_errors, 0, "a block was lost to recoverable damage");
    cr_assert_eq(vr.errors, vr.damaged_pieces);
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
    /* Adjacent blocks go to the devices as one merged write (zio_agg.c), one I/O error when it
     * fails: rewrite until each failing child has seen its 16 errors in a row. */
    struct pool_vdev_stats vs;
    for (int round = 0; round < 32; round++) {
        struct pool_vdev_stats a, b;
        cr_assert_eq(pool_get_vdev_child(p, 0, 1, &a), 0);
        cr_assert_eq(pool_get_vdev_child(p, 1, 1, &b), 0);
        if (a.health == VDEV_FAULTED && b.health == VDEV_FAULTED)
            break;
        rewrite_image(p, &im);
    }
    vdev_fault_fail_all_writes(faults[1], false);
    vdev_fault_fail_all_writes(faults[3], false);
    struct pool_stats st;
    pool_get_stats(p, &st);
    cr_assert_gt(st.write_errors, 0);
    /* A run of failed writes faulted both: they take no more I/O, the pool runs degraded. */
    cr_assert_eq(st.health, VDEV_DEGRADED);
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
