/* SPDX-License-Identifier: MIT */
/*
 * Device management on live redundant pools: offline/online with a resilver of only what was
 * missed, replace (also of a missing device), attach/detach between plain devices and mirrors,
 * adding a mirror, RAID-Z volblocksize checks and parity-aware reservations, and scrubs paused,
 * exported and resumed where they stopped.
 */
#include <pthread.h>

#include "redundancy_util.h"

TestSuite(vdev_ops, .init = setup, .fini = teardown, .timeout = 240);

Test(vdev_ops, offline_online_resilvers_only_what_was_missed)
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

Test(vdev_ops, replace_rebuilds_the_new_device)
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

Test(vdev_ops, a_missing_device_is_replaced_and_the_pool_is_whole_again)
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

Test(vdev_ops, a_mirror_is_added_to_a_live_pool)
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

Test(vdev_ops, small_volblocksize_on_raidz_is_refused_and_reservations_count_parity)
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

/* Imports devpath[0..n) behind fault wrappers that delay every read by usec. */
static struct pool *
import_slow(int n, unsigned usec)
{
    struct vdev_backend *devs[MAXDEV];
    struct vdev_file_opts fo = { 0 };
    for (int i = 0; i < n; i++) {
        struct vdev_backend *f;
        cr_assert_eq(vdev_file_open(devpath[i], &fo, &f), 0);
        cr_assert_eq(vdev_fault_wrap(f, &devs[i]), 0);
        vdev_fault_set_read_delay(devs[i], usec);
    }
    struct pool_import_opts io = { .tuning = { .txg_timeout_ms = 600000,
                                               .arc_max_bytes = 32u << 20 } };
    struct pool *p = NULL;
    struct err_msg em = { 0 };
    cr_assert_eq(pool_import_backends(devs, (size_t)n, &io, &p, &em), 0, "%s", em.text);
    return p;
}

/*
 * Waits until the scrub just started has examined `blocks` blocks. The state read before it
 * begins is the previous scan's (FINISHED): only an end after it was seen running is a failure.
 */
static void
wait_scrub_at(struct pool *p, uint64_t blocks, struct pool_scan_stats *sc)
{
    bool seen_running = false;
    for (;;) {
        usleep(2000);
        pool_get_scan(p, sc);
        if (sc->state == POOL_SCAN_RUNNING) {
            seen_running = true;
            if (sc->blocks >= blocks)
                return;
        } else {
            cr_assert(!seen_running, "the scrub ended before it could be paused");
        }
    }
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

Test(vdev_ops, a_paused_scrub_resumes_after_export_where_it_stopped)
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
    /* Pause one part way through, on devices slowed down so that the pause always comes in
     * time however loaded the machine is (the whole scrub takes a few seconds). */
    cr_assert_eq(pool_export(p), 0);
    p = import_slow(4, 250);
    struct scrub_thread t = { p, 1 };
    pthread_t tid;
    cr_assert_eq(pthread_create(&tid, NULL, scrub_main, &t), 0);
    struct pool_scan_stats sc;
    wait_scrub_at(p, full.blocks / 2, &sc);
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
    cr_assert_eq(pool_export(p), 0);
    p = import_slow(4, 250);
    t = (struct scrub_thread){ p, 1 };
    cr_assert_eq(pthread_create(&tid, NULL, scrub_main, &t), 0);
    wait_scrub_at(p, 10, &sc);
    pool_scrub_pause(p);
    pthread_join(tid, NULL);
    pool_scrub_cancel(p);
    pool_get_scan(p, &sc);
    cr_assert_eq(sc.state, POOL_SCAN_CANCELED);
    cr_assert_eq(check_image(p, &im), 0);
    cr_assert_eq(pool_export(p), 0);
    free(im.data);
}

Test(vdev_ops, attach_makes_a_mirror_and_detach_undoes_it)
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

Test(vdev_ops, writes_a_device_missed_are_remembered_across_a_crash)
{
    struct vdev_backend *devs[2], *faults[2];
    struct vdev_file_opts fo = { .create = true, .create_size = DEV_SIZE };
    for (int i = 0; i < 2; i++) {
        struct vdev_backend *f;
        cr_assert_eq(vdev_file_open(devpath[i], &fo, &f), 0);
        cr_assert_eq(vdev_fault_wrap(f, &faults[i]), 0);
        devs[i] = faults[i];
    }
    const char *words[] = { "mirror", devpath[0], devpath[1] };
    struct pool_opts po = { .txg_timeout_ms = 600000, .arc_max_bytes = 16u << 20 };
    struct pool *p = NULL;
    struct err_msg em = { 0 };
    cr_assert_eq(pool_create_layout("tank", words, 3, devs, 2, &po, &p, &em), 0, "%s", em.text);
    struct dataset_img im = { .blksz = 65536, .nblk = 32 };
    fill_image(&im, 81);
    /* The second side fails the writes of these txgs, then works again (and takes the newest
     * uberblocks, so nothing at import would suspect it). */
    vdev_fault_fail_all_writes(faults[1], true);
    write_image(p, &im);
    vdev_fault_fail_all_writes(faults[1], false);
    cr_assert_eq(pool_clear(p, NULL, &em), 0);
    cr_assert_eq(pool_sync(p, NULL), 0);
    /* A crash now: the pool is closed without an export. */
    pool_close(p);
    p = import(2, 0);
    cr_assert(pool_needs_resilver(p), "the missed writes were forgotten");
    /* Reads avoid the side that lacks them; the resilver gives it what it missed. */
    cr_assert_eq(check_image(p, &im), 0);
    struct pool_vdev_stats vs;
    cr_assert_eq(pool_get_vdev_child(p, 0, 1, &vs), 0);
    cr_assert_eq(vs.cksum_errors, 0, "a read trusted the side that missed the writes");
    cr_assert_eq(pool_resilver(p, &em), 0, "%s", em.text);
    struct pool_scan_stats rs;
    pool_get_scan(p, &rs);
    cr_assert_geq(rs.repaired_bytes, (uint64_t)im.blksz * (uint64_t)im.nblk / 2);
    cr_assert(!pool_needs_resilver(p));
    cr_assert_eq(pool_scrub(p, &em), 0, "%s", em.text);
    pool_get_scan(p, &rs);
    cr_assert_eq(rs.repaired_bytes, 0);
    cr_assert_eq(pool_export(p), 0);
    free(im.data);
}
