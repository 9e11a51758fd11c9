/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of core/vdev_backend.h: the memory, file and fault-injecting backends.
 * File tests use mkstemp names in /tmp and remove them.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "core/ondisk.h"
#include "core/vdev_backend.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static uint64_t
rng_next(uint64_t *s)
{
    /* splitmix64: tiny, seedable, good enough for test data */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void
fill_pattern(uint8_t *buf, size_t len, uint64_t seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)rng_next(&seed);
}

static bool
is_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != 0)
            return false;
    }
    return true;
}

/* The file a test made; removed by unlink_temp (run by Criterion even when the test fails). */
static char temp_file[64];

static void
unlink_temp(void)
{
    if (temp_file[0] != '\0')
        unlink(temp_file);
}

/* A fresh, unique, non-existent path in /tmp (the mkstemp file is removed again). */
static void
temp_path(char path[64])
{
    snprintf(path, 64, "/tmp/lcpfs-test-vdev-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0, "mkstemp: %s", strerror(errno));
    close(fd);
    unlink(path);
    memcpy(temp_file, path, sizeof(temp_file));
}

/* Writes len pattern bytes at off and reads them back through b. */
static void
check_round_trip(struct vdev_backend *b, uint64_t off, size_t len, uint64_t seed)
{
    uint8_t *w = malloc(len), *r = malloc(len);
    cr_assert(w != NULL && r != NULL);
    fill_pattern(w, len, seed);
    cr_assert_eq(vdev_backend_write(b, off, w, len), 0, "write off=%llu len=%zu",
                 (unsigned long long)off, len);
    memset(r, 0xa5, len);
    cr_assert_eq(vdev_backend_read(b, off, r, len), 0, "read off=%llu len=%zu",
                 (unsigned long long)off, len);
    cr_assert(memcmp(w, r, len) == 0, "data differs at off=%llu len=%zu", (unsigned long long)off,
              len);
    free(w);
    free(r);
}

static void
check_past_end_rejected(struct vdev_backend *b)
{
    uint8_t buf[1024] = { 0 };
    uint64_t size = b->size;
    cr_assert_eq(vdev_backend_read(b, size, buf, 1), -EINVAL);
    cr_assert_eq(vdev_backend_read(b, size - 512, buf, 1024), -EINVAL);
    cr_assert_eq(vdev_backend_write(b, size - 512, buf, 1024), -EINVAL);
    cr_assert_eq(vdev_backend_read(b, UINT64_MAX - 10, buf, 512), -EINVAL); /* no wrap-around */
    cr_assert_eq(vdev_backend_write(b, UINT64_MAX - 10, buf, 512), -EINVAL);
    cr_assert_eq(vdev_backend_read(b, size - 1024, buf, 1024), 0); /* the last bytes are fine */
}

/* ---- memory backend ----------------------------------------------------------------------- */

Test(vdev, mem_device_starts_zeroed_and_round_trips_data)
{
    struct vdev_backend *b;
    cr_assert_eq(vdev_mem_open(MiB(64), &b), 0);
    cr_assert_eq(b->size, MiB(64));
    cr_assert_str_eq(b->path, "");

    uint8_t buf[8192];
    cr_assert_eq(vdev_backend_read(b, MiB(10) + 3, buf, sizeof(buf)), 0);
    cr_assert(is_zero(buf, sizeof(buf)));

    check_round_trip(b, 0, 4096, 1);
    check_round_trip(b, 12345, 777, 2);                 /* unaligned */
    check_round_trip(b, MiB(64) - 8192, 8192, 3);       /* the very end */
    check_round_trip(b, MiB(1) - 100, MiB(1) + 200, 4); /* large */
    cr_assert_eq(vdev_backend_flush(b), 0);
    cr_assert_eq(vdev_backend_read(b, 0, buf, 0), 0); /* empty transfer */
    check_past_end_rejected(b);
    vdev_backend_close(b);
    vdev_backend_close(NULL); /* no-op */
}

struct mem_thread_arg {
    struct vdev_backend *b;
    int id;
    int errors;
};

static void *
mem_thread(void *p)
{
    struct mem_thread_arg *a = p;
    uint8_t w[4096], r[4096];
    for (int i = 0; i < 200; i++) {
        uint64_t off = ((uint64_t)a->id * 256 + (uint64_t)(i % 256)) * sizeof(w);
        fill_pattern(w, sizeof(w), (uint64_t)a->id * 1000 + (uint64_t)i);
        if (vdev_backend_write(a->b, off, w, sizeof(w)) != 0 ||
            vdev_backend_read(a->b, off, r, sizeof(r)) != 0 || memcmp(w, r, sizeof(w)) != 0)
            a->errors++;
    }
    return NULL;
}

Test(vdev, mem_device_serves_concurrent_threads)
{
    struct vdev_backend *b;
    cr_assert_eq(vdev_mem_open(MiB(8), &b), 0);
    pthread_t t[4];
    struct mem_thread_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (struct mem_thread_arg){ .b = b, .id = i };
        cr_assert_eq(pthread_create(&t[i], NULL, mem_thread, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(a[i].errors, 0, "thread %d saw %d errors", i, a[i].errors);
    }
    vdev_backend_close(b);
}

/* ---- file backend ------------------------------------------------------------------------- */

Test(vdev, file_create_makes_sparse_file_that_round_trips_and_persists, .fini = unlink_temp)
{
    char path[64];
    temp_path(path);
    struct vdev_file_opts o = { .create = true, .create_size = MiB(256) };
    struct vdev_backend *b;
    cr_assert_eq(vdev_file_open(path, &o, &b), 0);
    cr_assert_eq(b->size, MiB(256));
    cr_assert_str_eq(b->path, path);

    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq((uint64_t)st.st_size, MiB(256));
    cr_assert_lt((uint64_t)st.st_blocks * 512, MiB(1), "created file is not sparse: %llu bytes",
                 (unsigned long long)st.st_blocks * 512);

    check_round_trip(b, 0, 4096, 10);
    check_round_trip(b, MiB(100) + 17, 100000, 11);
    check_round_trip(b, MiB(256) - 4096, 4096, 12);
    cr_assert_eq(vdev_backend_flush(b), 0);
    check_past_end_rejected(b);
    vdev_backend_close(b);

    /* reopen without create: same size, data kept */
    struct vdev_file_opts plain = { 0 };
    cr_assert_eq(vdev_file_open(path, &plain, &b), 0);
    cr_assert_eq(b->size, MiB(256));
    uint8_t w[4096], r[4096];
    fill_pattern(w, sizeof(w), 10);
    cr_assert_eq(vdev_backend_read(b, 0, r, sizeof(r)), 0);
    cr_assert(memcmp(w, r, sizeof(w)) == 0);
    vdev_backend_close(b);

    /* create on an existing file opens it as is */
    o.create_size = MiB(512);
    cr_assert_eq(vdev_file_open(path, &o, &b), 0);
    cr_assert_eq(b->size, MiB(256));
    vdev_backend_close(b);
}

Test(vdev, file_missing_without_create_is_enoent, .fini = unlink_temp)
{
    char path[64];
    temp_path(path);
    struct vdev_backend *b = (struct vdev_backend *)&b;
    cr_assert_eq(vdev_file_open(path, NULL, &b), -ENOENT);
    cr_assert_null(b);
}

Test(vdev, file_smaller_than_minimum_is_rejected, .fini = unlink_temp)
{
    char path[64];
    temp_path(path);
    struct vdev_backend *b;

    /* creating one too small: refused, nothing left behind */
    struct vdev_file_opts o = { .create = true, .create_size = VDEV_MIN_SIZE - 1 };
    cr_assert_eq(vdev_file_open(path, &o, &b), -EINVAL);
    cr_assert_neq(access(path, F_OK), 0);

    /* an existing small file */
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    cr_assert(fd >= 0);
    cr_assert_eq(ftruncate(fd, (off_t)(VDEV_MIN_SIZE - 512)), 0);
    close(fd);
    cr_assert_eq(vdev_file_open(path, NULL, &b), -EINVAL);
    struct vdev_file_opts d = { .direct = VDEV_DIRECT_ALL };
    cr_assert_eq(vdev_file_open(path, &d, &b), -EINVAL);

    /* exactly the minimum is fine */
    cr_assert_eq(truncate(path, (off_t)VDEV_MIN_SIZE), 0);
    cr_assert_eq(vdev_file_open(path, NULL, &b), 0);
    cr_assert_eq(b->size, VDEV_MIN_SIZE);
    vdev_backend_close(b);
}

Test(vdev, file_readonly_reads_but_refuses_writes, .fini = unlink_temp)
{
    char path[64];
    temp_path(path);
    struct vdev_file_opts o = { .create = true, .create_size = MiB(64) };
    struct vdev_backend *b;
    cr_assert_eq(vdev_file_open(path, &o, &b), 0);
    check_round_trip(b, 8192, 4096, 20);
    vdev_backend_close(b);

    struct vdev_file_opts ro = { .readonly = true };
    cr_assert_eq(vdev_file_open(path, &ro, &b), 0);
    uint8_t w[4096], r[4096];
    fill_pattern(w, sizeof(w), 20);
    cr_assert_eq(vdev_backend_read(b, 8192, r, sizeof(r)), 0);
    cr_assert(memcmp(w, r, sizeof(w)) == 0);
    cr_assert_eq(vdev_backend_write(b, 8192, r, sizeof(r)), -EROFS);
    cr_assert_eq(vdev_backend_flush(b), 0);
    vdev_backend_close(b);

    /* a file we may not write can still be opened read-only */
    if (geteuid() != 0) {
        cr_assert_eq(chmod(path, 0400), 0);
        cr_assert_eq(vdev_file_open(path, NULL, &b), -EACCES);
        cr_assert_eq(vdev_file_open(path, &ro, &b), 0);
        vdev_backend_close(b);
    }
    struct vdev_file_opts bad = { .readonly = true, .create = true, .create_size = MiB(64) };
    cr_assert_eq(vdev_file_open(path, &bad, &b), -EINVAL);
}

Test(vdev, file_direct_handles_unaligned_buffers_offsets_and_lengths, .fini = unlink_temp)
{
    char path[64];
    temp_path(path);
    struct vdev_file_opts o = { .create = true, .create_size = MiB(64), .direct = VDEV_DIRECT_ALL };
    struct vdev_backend *b;
    cr_assert_eq(vdev_file_open(path, &o, &b), 0);

    uint8_t *big = malloc(MiB(3) + 4096 + 1);
    cr_assert(big != NULL);
    uint8_t *aligned = (uint8_t *)(((uintptr_t)big + 4095) & ~(uintptr_t)4095);

    /* aligned everything: the direct path proper */
    fill_pattern(aligned, 65536, 30);
    cr_assert_eq(vdev_backend_write(b, MiB(1), aligned, 65536), 0);
    /* aligned range, unaligned buffer: bounced; bigger than one bounce buffer */
    fill_pattern(aligned + 1, MiB(3), 31);
    cr_assert_eq(vdev_backend_write(b, MiB(8), aligned + 1, MiB(3)), 0);
    /* unaligned offset and length: buffered fallback */
    check_round_trip(b, MiB(20) + 3, 1001, 32);
    check_round_trip(b, MiB(21) + 512, 512, 33);

    /* read each back through both paths (direct-capable and buffered) */
    uint8_t *r = malloc(MiB(3) + 1);
    cr_assert(r != NULL);
    cr_assert_eq(vdev_backend_read(b, MiB(8), r + 1, MiB(3)), 0);
    cr_assert(memcmp(r + 1, aligned + 1, MiB(3)) == 0);
    cr_assert_eq(vdev_backend_read(b, MiB(8) + 1, r, 4095), 0);
    cr_assert(memcmp(r, aligned + 2, 4095) == 0);
    fill_pattern(aligned, 65536, 30);
    cr_assert_eq(vdev_backend_read(b, MiB(1), r, 65536), 0);
    cr_assert(memcmp(r, aligned, 65536) == 0);
    cr_assert_eq(vdev_backend_read(b, MiB(1) + 7, r, 100), 0);
    cr_assert(memcmp(r, aligned + 7, 100) == 0);
    cr_assert_eq(vdev_backend_flush(b), 0);
    check_past_end_rejected(b);
    vdev_backend_close(b);

    /* what went through O_DIRECT is what a buffered open sees */
    cr_assert_eq(vdev_file_open(path, NULL, &b), 0);
    cr_assert_eq(vdev_backend_read(b, MiB(1), r, 65536), 0);
    cr_assert(memcmp(r, aligned, 65536) == 0);
    vdev_backend_close(b);
    free(r);
    free(big);
}

/*
 * VDEV_DIRECT_WRITES: writes bypass the page cache, reads go through it. A block read (so
 * cached), then overwritten in place (as a repair or a reused extent is), must read back new.
 */
Test(vdev, file_direct_writes_keep_buffered_reads_coherent, .fini = unlink_temp)
{
    char path[64];
    temp_path(path);
    struct vdev_file_opts o = { .create = true,
                                .create_size = MiB(64),
                                .direct = VDEV_DIRECT_WRITES };
    struct vdev_backend *b;
    cr_assert_eq(vdev_file_open(path, &o, &b), 0);
    uint8_t *w = aligned_alloc(4096, 65536 + 4096), *r = aligned_alloc(4096, 65536);
    cr_assert(w != NULL && r != NULL);
    /* round 1: an unaligned range (buffered); round 2: an unaligned buffer (bounced) */
    static const struct {
        uint64_t off;
        size_t len, buf_off;
    } rounds[] = {
        { MiB(2), 65536, 0 }, { MiB(2) + 512, 1000, 0 }, { MiB(2), 65536, 1 }, { MiB(2), 65536, 0 }
    };
    for (unsigned i = 0; i < sizeof(rounds) / sizeof(rounds[0]); i++) {
        uint8_t *src = w + rounds[i].buf_off;
        fill_pattern(src, rounds[i].len, 40 + i);
        cr_assert_eq(vdev_backend_write(b, rounds[i].off, src, rounds[i].len), 0);
        cr_assert_eq(vdev_backend_read(b, rounds[i].off, r, rounds[i].len), 0);
        cr_assert(memcmp(r, src, rounds[i].len) == 0, "round %u read stale data", i);
    }
    cr_assert_eq(vdev_backend_flush(b), 0);
    vdev_backend_close(b);
    free(w);
    free(r);
}

/*
 * A merged write (vdev_backend_writev) lands like the writes of its segments, whether it goes out
 * as one direct pwritev or falls back segment by segment (an unaligned buffer, length or offset).
 */
Test(vdev, file_writev_matches_segment_writes_in_every_mode, .fini = unlink_temp)
{
    static const enum vdev_direct modes[] = { VDEV_DIRECT_OFF, VDEV_DIRECT_WRITES,
                                              VDEV_DIRECT_ALL };
    uint8_t *mem = aligned_alloc(4096, 4 * 65536 + 4096), *r = aligned_alloc(4096, 4 * 65536);
    cr_assert(mem != NULL && r != NULL);
    for (size_t m = 0; m < 3; m++) {
        char path[64];
        temp_path(path);
        struct vdev_file_opts o = { .create = true, .create_size = MiB(64), .direct = modes[m] };
        struct vdev_backend *b;
        cr_assert_eq(vdev_file_open(path, &o, &b), 0);
        /* aligned segments; one at an odd address; one of an odd length; an odd offset */
        struct {
            uint64_t off;
            size_t shift, len0;
        } cases[] = { { MiB(1), 0, 65536 },
                      { MiB(2), 1, 65536 },
                      { MiB(3), 0, 65535 },
                      { MiB(4) + 512, 0, 65536 } };
        for (size_t k = 0; k < 4; k++) {
            uint8_t *base = mem + cases[k].shift;
            fill_pattern(base, 4 * 65536, 50 + m * 4 + k);
            struct iovec iov[3] = { { base, cases[k].len0 },
                                    { base + cases[k].len0, 65536 },
                                    { base + cases[k].len0 + 65536, 2 * 65536 } };
            size_t total = cases[k].len0 + 3 * 65536;
            cr_assert_eq(vdev_backend_writev(b, cases[k].off, iov, 3), 0, "mode %zu case %zu", m,
                         k);
            cr_assert_eq(vdev_backend_read(b, cases[k].off, r, total), 0);
            cr_assert(memcmp(r, base, total) == 0, "mode %zu case %zu reads back wrong", m, k);
        }
        struct iovec past = { mem, 65536 };
        cr_assert_eq(vdev_backend_writev(b, MiB(64) - 4096, &past, 1), -EINVAL);
        vdev_backend_close(b);
        unlink(path);
    }
    free(mem);
    free(r);
}

Test(vdev, file_that_is_a_directory_is_refused)
{
    struct vdev_backend *b;
    cr_assert_lt(vdev_file_open("/tmp", NULL, &b), 0);
    struct vdev_file_opts ro = { .readonly = true };
    cr_assert_eq(vdev_file_open("/tmp", &ro, &b), -EINVAL);
}

/* ---- fault wrapper ------------------------------------------------------------------------ */

static struct vdev_backend *
fault_dev(uint64_t size, struct vdev_backend **inner)
{
    struct vdev_backend *m, *f;
    cr_assert_eq(vdev_mem_open(size, &m), 0);
    cr_assert_eq(vdev_fault_wrap(m, &f), 0);
    cr_assert_eq(f->size, size);
    if (inner != NULL)
        *inner = m; /* borrowed: the wrapper owns it */
    return f;
}

Test(vdev, fault_wrapper_passes_data_through)
{
    struct vdev_backend *f = fault_dev(MiB(4), NULL);
    check_round_trip(f, 0, 8192, 40);
    check_round_trip(f, 999, 3333, 41);
    cr_assert_eq(vdev_backend_flush(f), 0);
    check_past_end_rejected(f);
    vdev_backend_close(f); /* closes the inner device too (ASan checks the leak) */
}

Test(vdev, fault_fail_nth_read_fails_exactly_once)
{
    struct vdev_backend *f = fault_dev(MiB(1), NULL);
    uint8_t buf[512];
    vdev_fault_fail_nth_read(f, 3);
    cr_assert_eq(vdev_backend_read(f, 0, buf, sizeof(buf)), 0);
    cr_assert_eq(vdev_backend_write(f, 0, buf, sizeof(buf)), 0); /* writes don't count */
    cr_assert_eq(vdev_backend_read(f, 0, buf, sizeof(buf)), 0);
    cr_assert_eq(vdev_backend_read(f, 0, buf, sizeof(buf)), -EIO);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(vdev_backend_read(f, 0, buf, sizeof(buf)), 0);

    vdev_fault_fail_nth_read(f, 1);
    cr_assert_eq(vdev_backend_read(f, 0, buf, sizeof(buf)), -EIO);
    cr_assert_eq(vdev_backend_read(f, 0, buf, sizeof(buf)), 0);

    vdev_fault_fail_nth_read(f, 2);
    vdev_fault_fail_nth_read(f, 0); /* disarm */
    for (int i = 0; i < 5; i++)
        cr_assert_eq(vdev_backend_read(f, 0, buf, sizeof(buf)), 0);

    struct vdev_fault_stats st;
    vdev_fault_get_stats(f, &st);
    cr_assert_eq(st.injected_read_errors, 2);
    cr_assert_eq(st.injected_write_errors, 0);
    vdev_backend_close(f);
}

Test(vdev, fault_fail_nth_write_fails_exactly_once_and_leaves_data_alone)
{
    struct vdev_backend *f = fault_dev(MiB(1), NULL);
    uint8_t old[512], neu[512], r[512];
    fill_pattern(old, sizeof(old), 50);
    fill_pattern(neu, sizeof(neu), 51);
    cr_assert_eq(vdev_backend_write(f, 4096, old, sizeof(old)), 0);

    vdev_fault_fail_nth_write(f, 2);
    cr_assert_eq(vdev_backend_write(f, 0, neu, sizeof(neu)), 0);
    cr_assert_eq(vdev_backend_read(f, 0, r, sizeof(r)), 0); /* reads don't count */
    cr_assert_eq(vdev_backend_write(f, 4096, neu, sizeof(neu)), -EIO);
    cr_assert_eq(vdev_backend_read(f, 4096, r, sizeof(r)), 0);
    cr_assert(memcmp(r, old, sizeof(r)) == 0, "a failed write changed the data");
    for (int i = 0; i < 5; i++)
        cr_assert_eq(vdev_backend_write(f, 4096, neu, sizeof(neu)), 0);
    cr_assert_eq(vdev_backend_read(f, 4096, r, sizeof(r)), 0);
    cr_assert(memcmp(r, neu, sizeof(r)) == 0);
    vdev_backend_close(f);
}

Test(vdev, fault_fail_all_toggles_on_and_off)
{
    struct vdev_backend *f = fault_dev(MiB(1), NULL);
    uint8_t buf[512] = { 0 };
    vdev_fault_fail_all_reads(f, true);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(vdev_backend_read(f, 0, buf, sizeof(buf)), -EIO);
    cr_assert_eq(vdev_backend_write(f, 0, buf, sizeof(buf)), 0);
    vdev_fault_fail_all_reads(f, false);
    cr_assert_eq(vdev_backend_read(f, 0, buf, sizeof(buf)), 0);

    vdev_fault_fail_all_writes(f, true);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(vdev_backend_write(f, 0, buf, sizeof(buf)), -EIO);
    cr_assert_eq(vdev_backend_read(f, 0, buf, sizeof(buf)), 0);
    vdev_fault_fail_all_writes(f, false);
    cr_assert_eq(vdev_backend_write(f, 0, buf, sizeof(buf)), 0);

    struct vdev_fault_stats st;
    vdev_fault_get_stats(f, &st);
    cr_assert_eq(st.injected_read_errors, 3);
    cr_assert_eq(st.injected_write_errors, 4);
    vdev_backend_close(f);
}

Test(vdev, fault_flip_is_visible_through_read)
{
    struct vdev_backend *inner;
    struct vdev_backend *f = fault_dev(MiB(1), &inner);
    enum { LEN = 200000 };
    uint8_t *w = malloc(LEN), *r = malloc(LEN);
    cr_assert(w != NULL && r != NULL);
    fill_pattern(w, LEN, 60);
    cr_assert_eq(vdev_backend_write(f, 1000, w, LEN), 0);

    cr_assert_eq(vdev_fault_flip(f, 1000 + 5000, 100000, 0x81), 0); /* spans chunks */
    cr_assert_eq(vdev_backend_read(f, 1000, r, LEN), 0);
    for (size_t i = 0; i < LEN; i++) {
        uint8_t want = (i >= 5000 && i < 105000) ? (uint8_t)(w[i] ^ 0x81) : w[i];
        cr_assert_eq(r[i], want, "byte %zu", i);
    }
    /* flipping again restores; the inner device holds the same bytes */
    cr_assert_eq(vdev_fault_flip(f, 1000 + 5000, 100000, 0x81), 0);
    cr_assert_eq(vdev_backend_read(inner, 1000, r, LEN), 0);
    cr_assert(memcmp(r, w, LEN) == 0);

    cr_assert_eq(vdev_fault_flip(f, 0, 10, 0), -EINVAL);
    cr_assert_eq(vdev_fault_flip(f, MiB(1) - 5, 10, 1), -EINVAL);

    struct vdev_fault_stats st;
    vdev_fault_get_stats(f, &st);
    cr_assert_eq(st.reads, 1); /* flips are not I/O the wrapper's user made */
    cr_assert_eq(st.writes, 1);
    free(w);
    free(r);
    vdev_backend_close(f);
}

Test(vdev, fault_power_cut_loses_exactly_the_unflushed_writes)
{
    struct vdev_backend *inner;
    struct vdev_backend *f = fault_dev(MiB(1), &inner);
    uint8_t a[8192], bb[3000], c[100], r[8192], zero[8192] = { 0 };
    fill_pattern(a, sizeof(a), 70);
    fill_pattern(bb, sizeof(bb), 71);
    fill_pattern(c, sizeof(c), 72);

    /* before the cache: a is on the medium */
    cr_assert_eq(vdev_backend_write(f, 0, a, sizeof(a)), 0);
    vdev_fault_set_volatile_cache(f, true);

    /* flushed: survives */
    cr_assert_eq(vdev_backend_write(f, 65536 + 10, bb, sizeof(bb)), 0);
    cr_assert_eq(vdev_backend_read(inner, 65536 + 10, r, sizeof(bb)), 0);
    cr_assert(memcmp(r, zero, sizeof(bb)) == 0, "write reached the medium before flush");
    cr_assert_eq(vdev_backend_flush(f), 0);
    cr_assert_eq(vdev_backend_read(inner, 65536 + 10, r, sizeof(bb)), 0);
    cr_assert(memcmp(r, bb, sizeof(bb)) == 0, "flush did not write through");

    /* unflushed partial-sector overwrite of a and a fresh region: visible until the cut */
    cr_assert_eq(vdev_backend_write(f, 700, c, sizeof(c)), 0);
    cr_assert_eq(vdev_backend_write(f, 200000, bb, sizeof(bb)), 0);
    cr_assert_eq(vdev_backend_read(f, 0, r, sizeof(a)), 0);
    cr_assert(memcmp(r, a, 700) == 0 && memcmp(r + 700, c, sizeof(c)) == 0 &&
              memcmp(r + 800, a + 800, sizeof(a) - 800) == 0);
    cr_assert_eq(vdev_backend_read(f, 200000, r, sizeof(bb)), 0);
    cr_assert(memcmp(r, bb, sizeof(bb)) == 0);

    vdev_fault_power_cut(f);
    cr_assert_eq(vdev_backend_read(f, 0, r, sizeof(a)), 0);
    cr_assert(memcmp(r, a, sizeof(a)) == 0, "unflushed overwrite survived the cut");
    cr_assert_eq(vdev_backend_read(f, 200000, r, sizeof(bb)), 0);
    cr_assert(memcmp(r, zero, sizeof(bb)) == 0, "unflushed write survived the cut");
    cr_assert_eq(vdev_backend_read(f, 65536 + 10, r, sizeof(bb)), 0);
    cr_assert(memcmp(r, bb, sizeof(bb)) == 0, "flushed write lost");

    /* still buffering after the cut; disarming writes the buffer through */
    cr_assert_eq(vdev_backend_write(f, 300000, c, sizeof(c)), 0);
    cr_assert_eq(vdev_backend_read(inner, 300000, r, sizeof(c)), 0);
    cr_assert(memcmp(r, zero, sizeof(c)) == 0);
    vdev_fault_set_volatile_cache(f, false);
    cr_assert_eq(vdev_backend_read(inner, 300000, r, sizeof(c)), 0);
    cr_assert(memcmp(r, c, sizeof(c)) == 0);
    vdev_fault_power_cut(f); /* nothing buffered now: a no-op */
    cr_assert_eq(vdev_backend_read(f, 300000, r, sizeof(c)), 0);
    cr_assert(memcmp(r, c, sizeof(c)) == 0);
    vdev_backend_close(f);
}

/*
 * Oracle: random writes, reads, flushes and power cuts against two byte arrays (what reads
 * should see, and what the medium holds). Odd device size exercises the short last sector.
 */
Test(vdev, fault_volatile_cache_matches_model)
{
    const uint64_t size = KiB(256) + 300;
    const uint64_t seed = 0x5eed0001;
    uint64_t s = seed;
    struct vdev_backend *inner;
    struct vdev_backend *f = fault_dev(size, &inner);
    uint8_t *visible = calloc(1, size), *durable = calloc(1, size), *buf = malloc(KiB(16));
    cr_assert(visible != NULL && durable != NULL && buf != NULL);
    vdev_fault_set_volatile_cache(f, true);

    for (int op = 0; op < 3000; op++) {
        uint64_t kind = rng_next(&s) % 100;
        size_t len = (size_t)(rng_next(&s) % KiB(16)) + 1;
        uint64_t off = rng_next(&s) % (size - len + 1);
        if (kind < 50) {
            fill_pattern(buf, len, rng_next(&s));
            cr_assert_eq(vdev_backend_write(f, off, buf, len), 0);
            memcpy(visible + off, buf, len);
        } else if (kind < 85) {
            cr_assert_eq(vdev_backend_read(f, off, buf, len), 0);
            cr_assert(memcmp(buf, visible + off, len) == 0,
                      "seed %#llx op %d: read off=%llu len=%zu differs", (unsigned long long)seed,
                      op, (unsigned long long)off, len);
        } else if (kind < 93) {
            cr_assert_eq(vdev_backend_flush(f), 0);
            memcpy(durable, visible, size);
        } else {
            vdev_fault_power_cut(f);
            memcpy(visible, durable, size);
        }
    }
    vdev_fault_power_cut(f);
    memcpy(visible, durable, size);
    uint8_t *all = malloc(size);
    cr_assert(all != NULL);
    cr_assert_eq(vdev_backend_read(f, 0, all, size), 0);
    cr_assert(memcmp(all, durable, size) == 0, "seed %#llx: device differs from model",
              (unsigned long long)seed);
    cr_assert_eq(vdev_backend_read(inner, 0, all, size), 0);
    cr_assert(memcmp(all, durable, size) == 0, "seed %#llx: medium differs from model",
              (unsigned long long)seed);
    free(all);
    free(buf);
    free(durable);
    free(visible);
    vdev_backend_close(f);
}

Test(vdev, fault_stats_count_operations)
{
    struct vdev_backend *f = fault_dev(MiB(1), NULL);
    uint8_t buf[512] = { 0 };
    for (int i = 0; i < 5; i++)
        cr_assert_eq(vdev_backend_read(f, 0, buf, sizeof(buf)), 0);
    for (int i = 0; i < 7; i++)
        cr_assert_eq(vdev_backend_write(f, 0, buf, sizeof(buf)), 0);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(vdev_backend_flush(f), 0);
    vdev_fault_fail_nth_read(f, 1);
    vdev_fault_fail_nth_write(f, 1);
    cr_assert_eq(vdev_backend_read(f, 0, buf, sizeof(buf)), -EIO);
    cr_assert_eq(vdev_backend_write(f, 0, buf, sizeof(buf)), -EIO);

    struct vdev_fault_stats st;
    vdev_fault_get_stats(f, &st);
    cr_assert_eq(st.reads, 6);
    cr_assert_eq(st.writes, 8);
    cr_assert_eq(st.flushes, 2);
    cr_assert_eq(st.injected_read_errors, 1);
    cr_assert_eq(st.injected_write_errors, 1);
    vdev_backend_close(f);
}

Test(vdev, fault_wrapper_over_file_backend, .fini = unlink_temp)
{
    char path[64];
    temp_path(path);
    struct vdev_file_opts o = { .create = true, .create_size = MiB(64) };
    struct vdev_backend *b, *f;
    cr_assert_eq(vdev_file_open(path, &o, &b), 0);
    cr_assert_eq(vdev_fault_wrap(b, &f), 0);
    cr_assert_str_eq(f->path, path);
    vdev_fault_set_volatile_cache(f, true);
    check_round_trip(f, MiB(5) + 1, 10000, 80);
    cr_assert_eq(vdev_backend_flush(f), 0);
    vdev_fault_power_cut(f);
    vdev_backend_close(f);

    cr_assert_eq(vdev_file_open(path, NULL, &b), 0);
    uint8_t w[10000], r[10000];
    fill_pattern(w, sizeof(w), 80);
    cr_assert_eq(vdev_backend_read(b, MiB(5) + 1, r, sizeof(r)), 0);
    cr_assert(memcmp(w, r, sizeof(r)) == 0);
    vdev_backend_close(b);
}

Test(vdev, fault_flush_writes_large_cached_extents_through)
{
    struct vdev_backend *inner;
    struct vdev_backend *f = fault_dev(MiB(8), &inner);
    const size_t len = MiB(3) + 1000;
    uint8_t *w = malloc(len), *r = malloc(len);
    cr_assert(w != NULL && r != NULL);
    fill_pattern(w, len, 90);
    vdev_fault_set_volatile_cache(f, true);
    cr_assert_eq(vdev_backend_write(f, MiB(1) + 7, w, len), 0);
    cr_assert_eq(vdev_backend_flush(f), 0);
    vdev_fault_power_cut(f);
    cr_assert_eq(vdev_backend_read(inner, MiB(1) + 7, r, len), 0);
    cr_assert(memcmp(w, r, len) == 0);
    free(w);
    free(r);
    vdev_backend_close(f);
}
