/* SPDX-License-Identifier: MIT */
/* Block buffers (core/blkbuf.c): alignment, no overlap, reuse, and memory given back. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "core/blkbuf.h"

static void
fill(uint8_t *p, size_t n, uint8_t v)
{
    memset(p, v, n);
}

static void
check(const uint8_t *p, size_t n, uint8_t v)
{
    size_t i = 0;
    while (i < n && p[i] == v)
        i++;
    cr_assert_eq(i, n, "byte %zu of a %zu-byte buffer changed", i, n);
}

Test(blkbuf, buffers_are_aligned_distinct_and_keep_their_bytes)
{
    /* Slab classes (4 KiB multiples up to BLKBUF_SLAB_MAX) and aligned_alloc sizes mixed. */
    static const size_t sizes[] = { 512,   4096,   12288,  16384, 20000,
                                    65536, 131072, 262144, 1536,  8192 };
    enum { N = 400 };
    uint8_t *buf[N];
    size_t len[N];
    for (int i = 0; i < N; i++) {
        len[i] = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
        buf[i] = i % 3 ? blkbuf_alloc(len[i]) : blkbuf_zalloc(len[i]);
        cr_assert_not_null(buf[i]);
        cr_assert_eq((uintptr_t)buf[i] % BLKBUF_ALIGN, 0);
        if (i % 3 == 0)
            check(buf[i], len[i], 0);
        fill(buf[i], len[i], (uint8_t)(i + 1));
    }
    for (int i = 0; i < N; i++)
        check(buf[i], len[i], (uint8_t)(i + 1)); /* no two live buffers overlap */
    for (int i = 0; i < N; i += 2)
        blkbuf_free(buf[i]);
    for (int i = 0; i < N; i += 2) { /* reuse what was freed */
        buf[i] = blkbuf_alloc(len[i]);
        cr_assert_not_null(buf[i]);
        fill(buf[i], len[i], (uint8_t)(i + 1));
    }
    for (int i = 0; i < N; i++) {
        check(buf[i], len[i], (uint8_t)(i + 1));
        blkbuf_free(buf[i]);
    }
    blkbuf_free(NULL);
}

Test(blkbuf, idle_free_slabs_go_back_to_the_kernel_beyond_what_a_class_keeps)
{
    /* 96 MiB of 16 KiB buffers, then all freed: they stay mapped for the next burst until
     * blkbuf_trim finds them idle long enough; then a class keeps 32 MiB, returns the rest. */
    enum { N = 96 * 64 };
    uint8_t **buf = calloc(N, sizeof(*buf));
    cr_assert_not_null(buf);
    struct blkbuf_stats before, full, freed, young, after, again;
    blkbuf_trim(0);
    blkbuf_get_stats(&before);
    for (int i = 0; i < N; i++) {
        buf[i] = blkbuf_alloc(16384);
        cr_assert_not_null(buf[i]);
        buf[i][0] = 1;
    }
    blkbuf_get_stats(&full);
    cr_assert_geq(full.slab_bytes, before.slab_bytes + (64ull << 20));
    for (int i = 0; i < N; i++)
        blkbuf_free(buf[i]);
    blkbuf_get_stats(&freed);
    cr_assert_eq(freed.slab_bytes, full.slab_bytes, "freeing alone returns nothing");
    cr_assert_eq(freed.slabs_freed, before.slabs_freed);

    /* Reused before they age: allocating again maps nothing new. */
    for (int i = 0; i < N; i++) {
        buf[i] = blkbuf_alloc(16384);
        cr_assert_not_null(buf[i]);
    }
    blkbuf_get_stats(&again);
    cr_assert_eq(again.slab_bytes, full.slab_bytes, "the freed slabs were reused");
    for (int i = 0; i < N; i++)
        blkbuf_free(buf[i]);

    blkbuf_trim(3600u * 1000);
    blkbuf_get_stats(&young);
    cr_assert_eq(young.slab_bytes, full.slab_bytes, "slabs empty for less than an hour stay");

    blkbuf_trim(0);
    blkbuf_get_stats(&after);
    cr_assert_gt(after.slabs_freed, before.slabs_freed);
    cr_assert_leq(after.slab_bytes, before.slab_bytes + (34ull << 20), "%llu bytes still mapped",
                  (unsigned long long)after.slab_bytes);
    free(buf);
}

Test(blkbuf, a_free_gives_back_its_class_idle_slabs_without_a_trim)
{
    /* A process that never calls blkbuf_trim (no pool syncing) still gets memory back: the free
     * that empties a slab scans its class when BLKBUF_IDLE_MS have passed since the last scan. */
    enum { N = 96 * 64 };
    uint8_t **buf = calloc(N, sizeof(*buf));
    cr_assert_not_null(buf);
    struct blkbuf_stats before, freed, after;
    blkbuf_get_stats(&before);
    for (int i = 0; i < N; i++) {
        buf[i] = blkbuf_alloc(16384);
        cr_assert_not_null(buf[i]);
    }
    for (int i = 0; i < N; i++)
        blkbuf_free(buf[i]);
    blkbuf_get_stats(&freed);
    cr_assert_eq(freed.slabs_freed, before.slabs_freed, "nothing idle yet");
    struct timespec idle = { .tv_sec = BLKBUF_IDLE_MS / 1000 + 1, .tv_nsec = 0 };
    nanosleep(&idle, NULL);
    uint8_t *one = blkbuf_alloc(16384); /* from an empty slab, which its free empties again */
    cr_assert_not_null(one);
    blkbuf_free(one);
    blkbuf_get_stats(&after);
    cr_assert_gt(after.slabs_freed, before.slabs_freed);
    cr_assert_leq(after.slab_bytes, before.slab_bytes + (34ull << 20), "%llu bytes still mapped",
                  (unsigned long long)after.slab_bytes);
    free(buf);
}

Test(blkbuf, a_held_spare_stays_mapped_whatever_its_sizes_until_released)
{
    /* 64 MiB of 16 KiB and 64 MiB of 64 KiB buffers, all freed. With 96 MiB held, a trim keeps
     * exactly 96 MiB of empty slabs across the two sizes (the per-size spare alone would keep
     * 64); once released, each size keeps only its own spare. */
    enum { N16 = 64 * 64, N64 = 64 * 16 };
    const uint64_t spare = 96ull << 20;
    uint8_t **buf = calloc(N16 + N64, sizeof(*buf));
    cr_assert_not_null(buf);
    struct blkbuf_stats before, kept, after;
    blkbuf_trim(0);
    blkbuf_get_stats(&before);
    blkbuf_spare_hold(spare);
    for (int i = 0; i < N16 + N64; i++) {
        buf[i] = blkbuf_alloc(i < N16 ? 16384 : 65536);
        cr_assert_not_null(buf[i]);
    }
    for (int i = 0; i < N16 + N64; i++)
        blkbuf_free(buf[i]);
    blkbuf_trim(0);
    blkbuf_get_stats(&kept);
    cr_assert_gt(kept.slabs_freed, before.slabs_freed, "128 MiB were free: some went back");
    cr_assert_eq(kept.slab_bytes, before.slab_bytes + spare, "%llu bytes mapped",
                 (unsigned long long)kept.slab_bytes);

    blkbuf_spare_release(spare);
    blkbuf_trim(0);
    blkbuf_get_stats(&after);
    cr_assert_leq(after.slab_bytes, before.slab_bytes + (64ull << 20) + (4ull << 20),
                  "%llu bytes still mapped", (unsigned long long)after.slab_bytes);
    cr_assert_gt(after.slabs_freed, kept.slabs_freed);
    free(buf);
}

static void *
churn(void *arg)
{
    uintptr_t seed = (uintptr_t)arg;
    uint8_t tag = (uint8_t)(seed * 64); /* each thread's bytes differ from the others' */
    uint8_t *live[64] = { 0 };
    size_t len[64] = { 0 };
    for (int round = 0; round < 20000; round++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int k = (int)((seed >> 33) % 64);
        if (live[k] != NULL) {
            check(live[k], len[k], (uint8_t)(tag + k));
            blkbuf_free(live[k]);
            live[k] = NULL;
        } else {
            len[k] = 4096u * (1 + (unsigned)((seed >> 40) % 32));
            live[k] = blkbuf_alloc(len[k]);
            cr_assert_not_null(live[k]);
            fill(live[k], len[k], (uint8_t)(tag + k));
        }
    }
    for (int k = 0; k < 64; k++)
        blkbuf_free(live[k]);
    return NULL;
}

Test(blkbuf, threads_allocating_and_freeing_never_share_a_buffer)
{
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, churn, (void *)(i + 1)), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
}

Test(blkbuf, a_held_buffer_outlives_its_first_owner)
{
    uint8_t *b = blkbuf_alloc(16384);
    cr_assert_not_null(b);
    fill(b, 16384, 0x5a);
    cr_assert_not(blkbuf_shared(b));
    cr_assert(blkbuf_hold(b));
    cr_assert(blkbuf_shared(b));
    blkbuf_free(b); /* the owner lets go; the holder still reads it */
    cr_assert_not(blkbuf_shared(b));
    check(b, 16384, 0x5a);
    uint8_t *other = blkbuf_alloc(16384);
    cr_assert_neq(other, b, "a held buffer was handed out again");
    blkbuf_free(other);
    blkbuf_free(b);
    /* A buffer that is not from a slab cannot be held: the caller copies. */
    uint8_t *odd = blkbuf_alloc(1000);
    cr_assert_not(blkbuf_hold(odd));
    cr_assert_not(blkbuf_shared(odd));
    blkbuf_free(odd);
}
