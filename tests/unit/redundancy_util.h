/* SPDX-License-Identifier: MIT */
/*
 * redundancy_util: helpers shared by the redundancy suites (test_redundancy.c, test_vdev_ops.c):
 * a private directory of up to MAXDEV device files, pools on layouts in zpool's words, a test
 * image written into one object and read back, and the block pointers of that object (to inject
 * faults where its columns live).
 */
#ifndef LCPFS_TESTS_REDUNDANCY_UTIL_H
#define LCPFS_TESTS_REDUNDANCY_UTIL_H

#include <errno.h>
#include <fcntl.h>
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

static inline void
setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/lcpfs-rdn-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    for (int i = 0; i < MAXDEV; i++)
        snprintf(devpath[i], sizeof(devpath[i]), "%s/d%d", dir, i);
}

static inline void
teardown(void)
{
    for (int i = 0; i < MAXDEV; i++)
        unlink(devpath[i]);
    rmdir(dir);
}

static inline uint64_t
rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Layout words: kw ("mirror", "raidz2", or NULL for a plain stripe) followed by n devices. */
static inline size_t
layout(const char *kw, int n, const char **words)
{
    size_t k = 0;
    if (kw != NULL)
        words[k++] = kw;
    for (int i = 0; i < n; i++)
        words[k++] = devpath[i];
    return k;
}

static inline struct pool *
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

static inline struct pool *
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

static inline void
fill_image(struct dataset_img *im, uint64_t seed)
{
    im->data = malloc((size_t)im->blksz * (size_t)im->nblk);
    uint64_t s = seed;
    for (size_t i = 0; i < (size_t)im->blksz * (size_t)im->nblk; i++) {
        size_t b = i / im->blksz;
        im->data[i] = (b & 1) || i % im->blksz < im->blksz / 2 ? (uint8_t)rnd(&s) : 0;
    }
}

/* Overwrites im->obj (already created) with im's data, committed. */
static inline void
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

/* Creates im->obj in the root object set and writes im's data into it, committed. */
static inline void
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
    rewrite_image(p, im);
}

/* Reads everything back; returns how many blocks failed (and asserts none is wrong). */
static inline int
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

static inline int
collect(void *arg, const struct traverse_pos *pos, const struct blkptr *bp)
{
    struct bp_list *l = arg;
    if (pos->obj == l->obj && pos->level == 0 && !bp_is_embedded(bp) && l->n < 512) {
        l->blkid[l->n] = pos->blkid;
        l->bp[l->n++] = *bp;
    }
    return 0;
}

static inline void
collect_bps(struct pool *p, struct bp_list *l)
{
    l->n = 0;
    cr_assert_eq(traverse_objset(p, &pool_root_objset(p)->root_bp, 0, collect, l), 0);
    cr_assert_gt(l->n, 0);
}

static inline size_t
dsize_of(struct pool *p, const struct blkptr *bp)
{
    uint64_t unit = 1ull << p->vdevs[0]->ashift;
    return (size_t)((bp->psize + unit - 1) & ~(unit - 1));
}

#endif
