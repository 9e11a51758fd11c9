/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of core/label.h: layout, config record and uberblock encoding, verification and
 * the label I/O on memory devices.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "common/endian.h"
#include "common/err.h"
#include "core/bp.h"
#include "core/cksum.h"
#include "core/compress.h"
#include "core/label.h"
#include "core/ondisk.h"
#include "core/vdev_backend.h"

#define DEV_SIZE MiB(64)

/* ---- helpers ------------------------------------------------------------------------------ */

static struct vdev_backend *
mem_dev(uint64_t size)
{
    struct vdev_backend *b;
    cr_assert_eq(vdev_mem_open(size, &b), 0);
    return b;
}

/* root -> mirror(leaf, leaf) + leaf ... : nvdevs entries, a valid tree. */
static struct pool_config *
make_cfg(uint32_t nvdevs, uint64_t txg)
{
    cr_assert(nvdevs >= 4 && nvdevs <= CONFIG_MAX_VDEVS);
    struct pool_config *cfg = calloc(1, sizeof(*cfg));
    cr_assert(cfg != NULL);
    cfg->pool_guid = 0x1122334455667788ULL;
    cfg->txg = txg;
    cfg->state = POOL_STATE_EXPORTED;
    cfg->leaf_guid = 0xabcdef;
    cfg->guid_sum = 0x12345;
    cfg->create_time = 1700000000;
    snprintf(cfg->name, sizeof(cfg->name), "tank");
    cfg->nvdevs = nvdevs;
    cfg->vdevs[0] = (struct config_vdev){
        .guid = 1, .parent = CONFIG_NO_PARENT, .type = VDEV_TYPE_ROOT, .nchildren = nvdevs - 3
    };
    cfg->vdevs[1] = (struct config_vdev){ .guid = 2,
                                          .parent = 0,
                                          .id = 0,
                                          .type = VDEV_TYPE_MIRROR,
                                          .ashift = 12,
                                          .nchildren = 2,
                                          .asize = GiB(1),
                                          .ms_shift = 24 };
    for (uint32_t i = 2; i < nvdevs; i++) {
        struct config_vdev *v = &cfg->vdevs[i];
        v->guid = 100 + i;
        v->parent = i < 4 ? 1 : 0;
        v->id = i < 4 ? i - 2 : i - 3;
        v->type = VDEV_TYPE_LEAF;
        v->ashift = 12;
        v->state = i % 3 == 0 ? VDEV_STATE_OFFLINE : VDEV_STATE_ONLINE;
        v->asize = GiB(2) + i;
        v->ms_shift = i < 4 ? 0 : 25;
        snprintf(v->path, sizeof(v->path), "/dev/disk/by-id/disk-%u", i);
    }
    cfg->vdevs[5 < nvdevs ? 5 : 2].expansion_txg = 77;
    cfg->vdevs[5 < nvdevs ? 5 : 2].expansion_width = 5;
    return cfg;
}

static void
assert_cfg_eq(const struct pool_config *a, const struct pool_config *b)
{
    cr_assert_eq(a->pool_guid, b->pool_guid);
    cr_assert_eq(a->txg, b->txg);
    cr_assert_eq(a->state, b->state);
    cr_assert_eq(a->leaf_guid, b->leaf_guid);
    cr_assert_eq(a->guid_sum, b->guid_sum);
    cr_assert_eq(a->create_time, b->create_time);
    cr_assert_str_eq(a->name, b->name);
    cr_assert_eq(a->nvdevs, b->nvdevs);
    for (uint32_t i = 0; i < a->nvdevs; i++) {
        const struct config_vdev *x = &a->vdevs[i], *y = &b->vdevs[i];
        cr_assert(x->guid == y->guid && x->parent == y->parent && x->id == y->id &&
                      x->type == y->type && x->nparity == y->nparity && x->ashift == y->ashift &&
                      x->state == y->state && x->nchildren == y->nchildren &&
                      x->asize == y->asize && x->ms_shift == y->ms_shift &&
                      x->expansion_txg == y->expansion_txg &&
                      x->expansion_width == y->expansion_width,
                  "vdev %u differs", i);
        cr_assert_str_eq(x->path, y->path, "vdev %u path", i);
    }
}

static struct uberblock
make_ub(uint64_t txg)
{
    struct uberblock ub = {
        .version = LCPFS_FORMAT_VERSION,
        .txg = txg,
        .guid_sum = 0x5555,
        .timestamp = 1700000000 + txg,
        .software_version = LCPFS_SOFTWARE_VERSION,
        .config_txg = txg > 3 ? txg - 3 : 1,
        .checkpoint_txg = 0,
        .reflow_offset = 0,
        .pool_guid = 0x1122334455667788ULL,
    };
    struct blkptr *bp = &ub.rootbp;
    bp->dva[0] = (struct dva){ .vdev = 0, .asize_sectors = 8, .offset = 4096 * txg };
    bp->dva[1] = (struct dva){ .vdev = 1, .asize_sectors = 8, .offset = 8192 * txg };
    bp->lsize = OBJSET_PHYS_SIZE;
    bp->psize = OBJSET_PHYS_SIZE;
    bp->comp = COMPRESS_OFF;
    bp->cksum = CKSUM_SHA256;
    bp->type = OT_OBJSET;
    bp->birth = txg;
    bp->fill = 42;
    for (int i = 0; i < (int)BP_CKSUM_LEN; i++)
        bp->cksum_val[i] = (uint8_t)(i * 7 + txg);
    return ub;
}

static void
assert_ub_eq(const struct uberblock *a, const struct uberblock *b)
{
    cr_assert_eq(a->version, b->version);
    cr_assert_eq(a->txg, b->txg);
    cr_assert_eq(a->guid_sum, b->guid_sum);
    cr_assert_eq(a->timestamp, b->timestamp);
    cr_assert_eq(a->software_version, b->software_version);
    cr_assert_eq(a->config_txg, b->config_txg);
    cr_assert_eq(a->checkpoint_txg, b->checkpoint_txg);
    cr_assert_eq(a->reflow_offset, b->reflow_offset);
    cr_assert_eq(a->pool_guid, b->pool_guid);
    uint8_t x[BP_SIZE], y[BP_SIZE];
    bp_encode(&a->rootbp, x);
    bp_encode(&b->rootbp, y);
    cr_assert(memcmp(x, y, BP_SIZE) == 0, "rootbp differs");
}

static uint8_t *
cfg_buf(void)
{
    uint8_t *buf = malloc(LABEL_CONFIG_SIZE);
    cr_assert(buf != NULL);
    return buf;
}

/* Recomputes the trailer of a tampered region so only the field checks can catch it. */
static void
reseal(uint8_t *region, size_t size, uint64_t dev_off)
{
    le64_put(region + size - TRAILER_SIZE, TRAILER_MAGIC);
    cksum_sha256_with_offset(region, size - TRAILER_SIZE, dev_off,
                             region + size - TRAILER_SIZE + 8);
}

static uint64_t
slot_off(uint64_t dev_size, int l, uint64_t txg)
{
    return label_offset(dev_size, l) + LABEL_RING_OFF + (txg % UB_SLOTS) * UB_SLOT_SIZE;
}

/* ---- layout ------------------------------------------------------------------------------- */

Test(label, offsets_follow_the_layout_table)
{
    static const struct {
        uint64_t size, l2, l3, data;
    } cases[] = {
        { MiB(64), MiB(64) - KiB(512), MiB(64) - KiB(256), MiB(64) - MiB(4) - KiB(512) },
        { MiB(64) + KiB(100), MiB(64) - KiB(512), MiB(64) - KiB(256), MiB(60) - KiB(512) },
        { MiB(64) + KiB(256), MiB(64) - KiB(256), MiB(64), MiB(60) - KiB(256) },
        { GiB(10) + 1, GiB(10) - KiB(512), GiB(10) - KiB(256), GiB(10) - MiB(4) - KiB(512) },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(label_offset(cases[i].size, 0), 0);
        cr_assert_eq(label_offset(cases[i].size, 1), LABEL_SIZE);
        cr_assert_eq(label_offset(cases[i].size, 2), cases[i].l2, "case %zu", i);
        cr_assert_eq(label_offset(cases[i].size, 3), cases[i].l3, "case %zu", i);
        cr_assert_eq(label_data_size(cases[i].size), cases[i].data, "case %zu", i);
    }
    cr_assert_eq(label_data_size(MiB(1)), 0); /* too small: nothing allocatable */
}

/* ---- config record ------------------------------------------------------------------------ */

Test(label, config_round_trips)
{
    struct pool_config *cfg = make_cfg(9, 17), *out = malloc(sizeof(*out));
    uint8_t *buf = cfg_buf();
    cr_assert_eq(config_encode(cfg, buf, KiB(8)), 0);
    cr_assert_eq(le64_get(buf), CONFIG_MAGIC);
    cr_assert_eq(le32_get(buf + 12), CONFIG_HEADER_SIZE + 9 * CONFIG_VDEV_ENTRY_SIZE);
    cr_assert_eq(config_decode(buf, KiB(8), out), 0);
    assert_cfg_eq(cfg, out);
    /* zero padding after the record */
    for (size_t i = CONFIG_HEADER_SIZE + 9 * CONFIG_VDEV_ENTRY_SIZE;
         i < LABEL_CONFIG_SIZE - TRAILER_SIZE; i++)
        cr_assert_eq(buf[i], 0, "byte %zu", i);
    free(buf);
    free(out);
    free(cfg);
}

Test(label, config_with_most_vdevs_round_trips)
{
    struct pool_config *cfg = make_cfg(CONFIG_MAX_VDEVS, 3), *out = malloc(sizeof(*out));
    uint8_t *buf = cfg_buf();
    /* longest strings: truncated to their fields, still terminated */
    memset(cfg->name, 'n', sizeof(cfg->name) - 1);
    memset(cfg->vdevs[7].path, 'p', sizeof(cfg->vdevs[7].path) - 1);
    cr_assert_eq(config_encode(cfg, buf, 7 * 4096), 0);
    cr_assert_eq(config_decode(buf, 7 * 4096, out), 0);
    assert_cfg_eq(cfg, out);
    cr_assert_eq(strlen(out->name), POOL_NAME_MAX);
    cr_assert_eq(strlen(out->vdevs[7].path), VDEV_PATH_MAX);

    cfg->nvdevs = CONFIG_MAX_VDEVS + 1;
    cr_assert_eq(config_encode(cfg, buf, 0), -EINVAL);
    free(buf);
    free(out);
    free(cfg);
}

Test(label, config_flipped_bit_anywhere_is_rejected)
{
    struct pool_config *cfg = make_cfg(6, 5), *out = malloc(sizeof(*out));
    uint8_t *buf = cfg_buf();
    cr_assert_eq(config_encode(cfg, buf, KiB(8)), 0);
    /* every byte of the header, the entries and the trailer; a stride through the padding */
    const size_t rec = CONFIG_HEADER_SIZE + 6 * CONFIG_VDEV_ENTRY_SIZE;
    const size_t trailer = LABEL_CONFIG_SIZE - TRAILER_SIZE;
    size_t tested = 0;
    for (size_t i = 0; i < LABEL_CONFIG_SIZE; i += (i < rec || i >= trailer) ? 1 : 251) {
        for (int bit = (int)(i % 3); bit < 8; bit += 3) {
            buf[i] ^= (uint8_t)(1u << bit);
            int rc = config_decode(buf, KiB(8), out);
            buf[i] ^= (uint8_t)(1u << bit);
            cr_assert_eq(rc, -ECKSUM, "flip of byte %zu bit %d gave %d", i, bit, rc);
            tested++;
        }
    }
    cr_assert_gt(tested, 5000, "tested %zu", tested);
    cr_assert_eq(config_decode(buf, KiB(8), out), 0);
    free(buf);
    free(out);
    free(cfg);
}

Test(label, config_at_another_offset_is_rejected)
{
    struct pool_config *cfg = make_cfg(4, 5), *out = malloc(sizeof(*out));
    uint8_t *buf = cfg_buf();
    uint64_t l1 = label_offset(DEV_SIZE, 1) + LABEL_CONFIG_OFF;
    cr_assert_eq(config_encode(cfg, buf, l1), 0);
    cr_assert_eq(config_decode(buf, l1, out), 0);
    for (int l = 0; l < LABEL_COUNT; l++) {
        if (l != 1)
            cr_assert_eq(config_decode(buf, label_offset(DEV_SIZE, l) + LABEL_CONFIG_OFF, out),
                         -ECKSUM);
    }
    /* and on a device: a copy of label 1's region placed into label 0 does not verify there */
    struct vdev_backend *d = mem_dev(DEV_SIZE);
    cr_assert_eq(vdev_backend_write(d, LABEL_CONFIG_OFF, buf, LABEL_CONFIG_SIZE), 0);
    unsigned mask;
    cr_assert_eq(label_read_config(d, out, &mask), -ENOENT);
    cr_assert_eq(mask, 0);
    vdev_backend_close(d);
    free(buf);
    free(out);
    free(cfg);
}

/* One way of breaking a sealed config record, and the code decode must answer. */
struct cfg_tamper {
    const char *what;
    size_t off; /* byte offset in the record */
    int width;  /* 1, 4 or 8 */
    uint64_t value;
    int want;
};

#define ENTRY(i, f) (CONFIG_HEADER_SIZE + (i)*CONFIG_VDEV_ENTRY_SIZE + (f))

Test(label, config_with_bad_fields_and_good_checksum_is_rejected)
{
    static const struct cfg_tamper cases[] = {
        { "magic", 0, 8, 0x1234, -ECORRUPT },
        { "version 0", 8, 4, 0, -ECORRUPT },
        { "newer version", 8, 4, LCPFS_FORMAT_VERSION + 1, -EVERSION },
        { "length below header", 12, 4, CONFIG_HEADER_SIZE - 1, -ECORRUPT },
        { "length into trailer", 12, 4, LABEL_CONFIG_SIZE - TRAILER_SIZE + 1, -ECORRUPT },
        { "length shorter than entries", 12, 4, CONFIG_HEADER_SIZE + 5 * 256, -ECORRUPT },
        { "pool state", 32, 4, 3, -ECORRUPT },
        { "no vdevs", 36, 4, 0, -ECORRUPT },
        { "too many vdevs", 36, 4, CONFIG_MAX_VDEVS + 1, -ECORRUPT },
        { "huge nvdevs", 36, 4, 0xffffffffu, -ECORRUPT },
        { "root type", ENTRY(0, 16), 1, VDEV_TYPE_MIRROR, -ECORRUPT },
        { "root parent", ENTRY(0, 8), 4, 0, -ECORRUPT },
        { "parent after child", ENTRY(2, 8), 4, 3, -ECORRUPT },
        { "parent is itself", ENTRY(2, 8), 4, 2, -ECORRUPT },
        { "parent is a leaf", ENTRY(3, 8), 4, 2, -ECORRUPT },
        { "no parent below root", ENTRY(4, 8), 4, CONFIG_NO_PARENT, -ECORRUPT },
        { "second root", ENTRY(4, 16), 1, VDEV_TYPE_ROOT, -ECORRUPT },
        { "type 0", ENTRY(2, 16), 1, 0, -ECORRUPT },
        { "type unknown", ENTRY(2, 16), 1, VDEV_TYPE_RAIDZ + 1, -ECORRUPT },
        { "vdev state", ENTRY(2, 19), 1, 3, -ECORRUPT },
        { "nchildren", ENTRY(1, 20), 4, 3, -ECORRUPT },
        { "leaf with children", ENTRY(4, 20), 4, 1, -ECORRUPT },
        /* what decode must accept */
        { "longer length", 12, 4, CONFIG_HEADER_SIZE + 7 * 256, 0 },
        { "destroyed pool state", 32, 4, POOL_STATE_DESTROYED, 0 },
    };
    struct pool_config *cfg = make_cfg(6, 5), *out = malloc(sizeof(*out));
    uint8_t *buf = cfg_buf();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct cfg_tamper *c = &cases[i];
        cr_assert_eq(config_encode(cfg, buf, 4096), 0);
        if (c->width == 1)
            buf[c->off] = (uint8_t)c->value;
        else if (c->width == 4)
            le32_put(buf + c->off, (uint32_t)c->value);
        else
            le64_put(buf + c->off, c->value);
        reseal(buf, LABEL_CONFIG_SIZE, 4096);
        int rc = config_decode(buf, 4096, out);
        cr_assert_eq(rc, c->want, "%s: got %d (%s), want %d", c->what, rc, err_str(rc), c->want);
    }
    free(buf);
    free(out);
    free(cfg);
}

Test(label, config_decode_terminates_unterminated_strings)
{
    struct pool_config *cfg = make_cfg(4, 5), *out = malloc(sizeof(*out));
    uint8_t *buf = cfg_buf();
    cr_assert_eq(config_encode(cfg, buf, 0), 0);
    memset(buf + 64, 'x', 64);            /* pool name fills its field */
    memset(buf + ENTRY(3, 64), 'y', 192); /* so does a path */
    reseal(buf, LABEL_CONFIG_SIZE, 0);
    cr_assert_eq(config_decode(buf, 0, out), 0);
    cr_assert_eq(strlen(out->name), POOL_NAME_MAX);
    cr_assert_eq(strlen(out->vdevs[3].path), VDEV_PATH_MAX);
    free(buf);
    free(out);
    free(cfg);
}

Test(label, config_encode_refuses_invalid_trees)
{
    struct pool_config *cfg = make_cfg(5, 5);
    uint8_t *buf = cfg_buf();
    cfg->vdevs[3].parent = 4;
    cr_assert_eq(config_encode(cfg, buf, 0), -EINVAL);
    cfg->vdevs[3].parent = 1;
    cfg->vdevs[1].nchildren = 1;
    cr_assert_eq(config_encode(cfg, buf, 0), -EINVAL);
    cfg->vdevs[1].nchildren = 2;
    cfg->nvdevs = 0;
    cr_assert_eq(config_encode(cfg, buf, 0), -EINVAL);
    cfg->nvdevs = 5;
    cr_assert_eq(config_encode(cfg, buf, 0), 0);
    free(buf);
    free(cfg);
}

/* ---- uberblock ---------------------------------------------------------------------------- */

Test(label, uberblock_round_trips)
{
    uint8_t slot[UB_SLOT_SIZE];
    struct uberblock ub = make_ub(12345), out;
    uberblock_encode(&ub, slot, 999 * 4096);
    cr_assert_eq(le64_get(slot), UB_MAGIC);
    cr_assert_eq(le64_get(slot + 16), 12345);
    cr_assert_eq(uberblock_decode(slot, 999 * 4096, &out), 0);
    assert_ub_eq(&ub, &out);
    for (size_t i = 208; i < UB_SLOT_SIZE - TRAILER_SIZE; i++)
        cr_assert_eq(slot[i], 0, "byte %zu", i);

    /* a hole root (brand-new pool) round trips too */
    memset(&ub.rootbp, 0, sizeof(ub.rootbp));
    uberblock_encode(&ub, slot, 0);
    cr_assert_eq(uberblock_decode(slot, 0, &out), 0);
    assert_ub_eq(&ub, &out);
}

Test(label, uberblock_flipped_bit_anywhere_is_rejected)
{
    uint8_t slot[UB_SLOT_SIZE];
    struct uberblock ub = make_ub(77), out;
    uberblock_encode(&ub, slot, MiB(3));
    for (size_t i = 0; i < UB_SLOT_SIZE; i++) {
        for (int bit = 0; bit < 8; bit++) {
            slot[i] ^= (uint8_t)(1u << bit);
            int rc = uberblock_decode(slot, MiB(3), &out);
            slot[i] ^= (uint8_t)(1u << bit);
            cr_assert_eq(rc, -ECKSUM, "flip of byte %zu bit %d gave %d", i, bit, rc);
        }
    }
    cr_assert_eq(uberblock_decode(slot, MiB(3), &out), 0);
}

Test(label, uberblock_slot_checks)
{
    uint8_t slot[UB_SLOT_SIZE] = { 0 };
    struct uberblock ub = make_ub(5), out;
    cr_assert_eq(uberblock_decode(slot, 0, &out), -ENOENT);

    uberblock_encode(&ub, slot, 8192);
    cr_assert_eq(uberblock_decode(slot, 8192 + UB_SLOT_SIZE, &out), -ECKSUM); /* moved */
    cr_assert_eq(uberblock_decode(slot, 8192 - UB_SLOT_SIZE, &out), -ECKSUM);

    le64_put(slot + 8, LCPFS_FORMAT_VERSION + 1);
    reseal(slot, UB_SLOT_SIZE, 8192);
    cr_assert_eq(uberblock_decode(slot, 8192, &out), -EVERSION);
    le64_put(slot + 8, 0);
    reseal(slot, UB_SLOT_SIZE, 8192);
    cr_assert_eq(uberblock_decode(slot, 8192, &out), -ECORRUPT);
    le64_put(slot + 8, LCPFS_FORMAT_VERSION);
    le64_put(slot, UB_MAGIC + 1);
    reseal(slot, UB_SLOT_SIZE, 8192);
    cr_assert_eq(uberblock_decode(slot, 8192, &out), -ECORRUPT);
    le64_put(slot, UB_MAGIC);
    le32_put(slot + UB_OFF_ROOTBP + 52, OBJSET_PHYS_SIZE + 1); /* rootbp psize > lsize */
    reseal(slot, UB_SLOT_SIZE, 8192);
    cr_assert_eq(uberblock_decode(slot, 8192, &out), -ECORRUPT);
    le32_put(slot + UB_OFF_ROOTBP + 52, OBJSET_PHYS_SIZE);
    reseal(slot, UB_SLOT_SIZE, 8192);
    cr_assert_eq(uberblock_decode(slot, 8192, &out), 0);
}

/* ---- label I/O ---------------------------------------------------------------------------- */

Test(label, ring_keeps_the_32_newest_sorted)
{
    struct vdev_backend *d = mem_dev(DEV_SIZE + KiB(100)); /* not a multiple of LABEL_SIZE */
    for (uint64_t txg = 1; txg <= 40; txg++) {
        struct uberblock ub = make_ub(txg);
        cr_assert_eq(label_write_uberblock(d, &ub, 0xf), 0);
    }
    struct uberblock out[64];
    size_t n = 0;
    cr_assert_eq(label_read_uberblocks(d, out, 64, &n), 0);
    cr_assert_eq(n, UB_SLOTS);
    for (size_t i = 0; i < n; i++) {
        struct uberblock want = make_ub(40 - i);
        assert_ub_eq(&out[i], &want);
    }
    /* a short output array gets the newest */
    cr_assert_eq(label_read_uberblocks(d, out, 5, &n), 0);
    cr_assert_eq(n, 5);
    cr_assert_eq(out[0].txg, 40);
    cr_assert_eq(out[4].txg, 36);
    cr_assert_eq(label_read_uberblocks(d, NULL, 0, &n), 0);
    cr_assert_eq(n, 0);
    vdev_backend_close(d);
}

Test(label, torn_newest_slot_is_skipped)
{
    struct vdev_backend *d = mem_dev(DEV_SIZE);
    for (uint64_t txg = 1; txg <= 10; txg++) {
        struct uberblock ub = make_ub(txg);
        cr_assert_eq(label_write_uberblock(d, &ub, 0xf), 0);
    }
    /* txg 10's slot: the first half made it, the rest is garbage, in every label */
    uint8_t junk[UB_SLOT_SIZE / 2];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 131 + 7);
    for (int l = 0; l < LABEL_COUNT; l++)
        cr_assert_eq(
            vdev_backend_write(d, slot_off(DEV_SIZE, l, 10) + UB_SLOT_SIZE / 2, junk, sizeof(junk)),
            0);
    struct uberblock out[UB_SLOTS];
    size_t n = 0;
    cr_assert_eq(label_read_uberblocks(d, out, UB_SLOTS, &n), 0);
    cr_assert_eq(n, 9);
    cr_assert_eq(out[0].txg, 9);
    cr_assert_eq(out[8].txg, 1);
    vdev_backend_close(d);
}

Test(label, slot_copied_to_another_slot_is_rejected)
{
    struct vdev_backend *d = mem_dev(DEV_SIZE);
    struct uberblock ub = make_ub(3);
    cr_assert_eq(label_write_uberblock(d, &ub, 0x1), 0);
    /* copy the slot of txg 3 over the (empty) slot of txg 4 and into label 2's slot 3 */
    uint8_t slot[UB_SLOT_SIZE];
    cr_assert_eq(vdev_backend_read(d, slot_off(DEV_SIZE, 0, 3), slot, sizeof(slot)), 0);
    cr_assert_eq(vdev_backend_write(d, slot_off(DEV_SIZE, 0, 4), slot, sizeof(slot)), 0);
    cr_assert_eq(vdev_backend_write(d, slot_off(DEV_SIZE, 2, 3), slot, sizeof(slot)), 0);
    /* and wipe the original: nothing left that verifies */
    memset(slot, 0, sizeof(slot));
    cr_assert_eq(vdev_backend_write(d, slot_off(DEV_SIZE, 0, 3), slot, sizeof(slot)), 0);
    struct uberblock out[4];
    size_t n = 99;
    cr_assert_eq(label_read_uberblocks(d, out, 4, &n), 0);
    cr_assert_eq(n, 0);

    /* sealed for its place but in the wrong ring slot for its txg (a buggy writer): skipped */
    uberblock_encode(&ub, slot, slot_off(DEV_SIZE, 1, 4));
    cr_assert_eq(vdev_backend_write(d, slot_off(DEV_SIZE, 1, 4), slot, sizeof(slot)), 0);
    cr_assert_eq(label_read_uberblocks(d, out, 4, &n), 0);
    cr_assert_eq(n, 0);
    vdev_backend_close(d);
}

Test(label, same_txg_twice_keeps_the_newer_timestamp)
{
    struct vdev_backend *d = mem_dev(DEV_SIZE);
    struct uberblock a = make_ub(5), b = make_ub(5);
    a.timestamp = 100;
    b.timestamp = 200;
    b.guid_sum = 0x7777;
    cr_assert_eq(label_write_uberblock(d, &a, 0x9), 0);
    cr_assert_eq(label_write_uberblock(d, &b, 0x2), 0);
    struct uberblock older = make_ub(4);
    cr_assert_eq(label_write_uberblock(d, &older, 0x4), 0);
    struct uberblock out[4];
    size_t n;
    cr_assert_eq(label_read_uberblocks(d, out, 4, &n), 0);
    cr_assert_eq(n, 2);
    assert_ub_eq(&out[0], &b);
    assert_ub_eq(&out[1], &older);
    vdev_backend_close(d);
}

Test(label, read_config_survives_three_labels_destroyed)
{
    struct pool_config *cfg = make_cfg(7, 9), *out = malloc(sizeof(*out));
    uint8_t *junk = malloc(LABEL_SIZE);
    cr_assert(out != NULL && junk != NULL);
    memset(junk, 0x5a, LABEL_SIZE);
    for (int keep = 0; keep < LABEL_COUNT; keep++) {
        struct vdev_backend *d = mem_dev(DEV_SIZE);
        cr_assert_eq(label_write_config(d, cfg, 0xf), 0);
        for (int l = 0; l < LABEL_COUNT; l++) {
            if (l != keep)
                cr_assert_eq(vdev_backend_write(d, label_offset(DEV_SIZE, l), junk, LABEL_SIZE), 0);
        }
        unsigned mask = 0;
        cr_assert_eq(label_read_config(d, out, &mask), 0, "keep %d", keep);
        cr_assert_eq(mask, 1u << keep);
        assert_cfg_eq(cfg, out);
        vdev_backend_close(d);
    }
    free(junk);
    free(out);
    free(cfg);
}

Test(label, read_config_returns_the_newest_valid_copy)
{
    struct vdev_backend *d = mem_dev(DEV_SIZE);
    struct pool_config *cfg = make_cfg(5, 5), *out = malloc(sizeof(*out));
    unsigned mask = 0xff;
    cr_assert_eq(label_read_config(d, out, &mask), -ENOENT);
    cr_assert_eq(mask, 0);

    cr_assert_eq(label_write_config(d, cfg, 0xf), 0);
    cfg->txg = 6;
    snprintf(cfg->name, sizeof(cfg->name), "renamed");
    cr_assert_eq(label_write_config(d, cfg, 0xa), 0); /* newest only in the odd labels */
    cr_assert_eq(label_read_config(d, out, &mask), 0);
    cr_assert_eq(mask, 0xf);
    cr_assert_eq(out->txg, 6);
    cr_assert_str_eq(out->name, "renamed");
    cr_assert_eq(label_read_config(d, out, NULL), 0);
    vdev_backend_close(d);
    free(out);
    free(cfg);
}

Test(label, read_reports_io_errors_only_when_no_label_is_readable)
{
    struct vdev_backend *m = mem_dev(DEV_SIZE), *d;
    cr_assert_eq(vdev_fault_wrap(m, &d), 0);
    struct pool_config *cfg = make_cfg(4, 5), *out = malloc(sizeof(*out));
    struct uberblock ub = make_ub(8), ubs[4];
    size_t n;
    unsigned mask;
    cr_assert_eq(label_write_config(d, cfg, 0xf), 0);
    cr_assert_eq(label_write_uberblock(d, &ub, 0xf), 0);

    vdev_fault_fail_nth_read(d, 1); /* label 0 unreadable: the others serve */
    cr_assert_eq(label_read_config(d, out, &mask), 0);
    cr_assert_eq(mask, 0xe);
    vdev_fault_fail_nth_read(d, 4);
    cr_assert_eq(label_read_uberblocks(d, ubs, 4, &n), 0);
    cr_assert_eq(n, 1);

    vdev_fault_fail_all_reads(d, true);
    cr_assert_eq(label_read_config(d, out, &mask), -EIO);
    cr_assert_eq(mask, 0);
    cr_assert_eq(label_read_uberblocks(d, ubs, 4, &n), -EIO);
    cr_assert_eq(n, 0);
    vdev_fault_fail_all_reads(d, false);

    /* a failed write is reported, and the other labels are still written */
    cfg->txg = 6;
    vdev_fault_fail_nth_write(d, 2);
    cr_assert_eq(label_write_config(d, cfg, 0xf), -EIO);
    cr_assert_eq(label_read_config(d, out, &mask), 0);
    cr_assert_eq(out->txg, 6);
    cr_assert_eq(mask, 0xf);
    vdev_backend_close(d);
    free(out);
    free(cfg);
}

Test(label, writes_touch_only_their_regions)
{
    struct vdev_backend *m = mem_dev(DEV_SIZE), *d;
    cr_assert_eq(vdev_fault_wrap(m, &d), 0);
    struct pool_config *cfg = make_cfg(4, 5);
    struct uberblock ub = make_ub(33);
    cr_assert_eq(label_write_config(d, cfg, 0x3), 0);
    cr_assert_eq(label_write_uberblock(d, &ub, 0xc), 0);
    struct vdev_fault_stats st;
    vdev_fault_get_stats(d, &st);
    cr_assert_eq(st.writes, 4); /* one write per region */

    uint8_t *buf = malloc(LABEL_SIZE);
    cr_assert(buf != NULL);
    for (int l = 0; l < LABEL_COUNT; l++) {
        cr_assert_eq(vdev_backend_read(d, label_offset(DEV_SIZE, l), buf, LABEL_SIZE), 0);
        for (size_t i = 0; i < LABEL_SIZE; i++) {
            bool cfg_part = i >= LABEL_CONFIG_OFF && i < LABEL_CONFIG_OFF + LABEL_CONFIG_SIZE;
            bool slot_part = i >= LABEL_RING_OFF + 1 * UB_SLOT_SIZE &&
                             i < LABEL_RING_OFF + 2 * UB_SLOT_SIZE; /* 33 % 32 */
            bool may = (l < 2 && cfg_part) || (l >= 2 && slot_part);
            if (!may)
                cr_assert_eq(buf[i], 0, "label %d byte %zu written", l, i);
        }
    }
    free(buf);
    free(cfg);
    vdev_backend_close(d);
}

Test(label, clear_wipes_every_label)
{
    struct vdev_backend *d = mem_dev(DEV_SIZE);
    struct pool_config *cfg = make_cfg(4, 5), *out = malloc(sizeof(*out));
    for (uint64_t txg = 1; txg <= 3; txg++) {
        struct uberblock ub = make_ub(txg);
        cr_assert_eq(label_write_uberblock(d, &ub, 0xf), 0);
    }
    cr_assert_eq(label_write_config(d, cfg, 0xf), 0);
    uint8_t data[4096];
    memset(data, 0xee, sizeof(data));
    cr_assert_eq(vdev_backend_write(d, VDEV_DATA_START, data, sizeof(data)), 0);

    cr_assert_eq(label_clear(d), 0);
    unsigned mask;
    cr_assert_eq(label_read_config(d, out, &mask), -ENOENT);
    struct uberblock ubs[4];
    size_t n;
    cr_assert_eq(label_read_uberblocks(d, ubs, 4, &n), 0);
    cr_assert_eq(n, 0);
    uint8_t *buf = malloc(LABEL_SIZE);
    for (int l = 0; l < LABEL_COUNT; l++) {
        cr_assert_eq(vdev_backend_read(d, label_offset(DEV_SIZE, l), buf, LABEL_SIZE), 0);
        for (size_t i = 0; i < LABEL_SIZE; i++)
            cr_assert_eq(buf[i], 0, "label %d byte %zu", l, i);
    }
    uint8_t r[4096];
    cr_assert_eq(vdev_backend_read(d, VDEV_DATA_START, r, sizeof(r)), 0);
    cr_assert(memcmp(r, data, sizeof(r)) == 0, "label_clear touched the data area");
    free(buf);
    free(out);
    free(cfg);
    vdev_backend_close(d);
}

Test(label, too_small_device_is_refused)
{
    struct vdev_backend *d = mem_dev(MiB(4));
    struct pool_config *cfg = make_cfg(4, 5);
    struct uberblock ub = make_ub(1), out[1];
    size_t n;
    cr_assert_eq(label_write_config(d, cfg, 0xf), -EINVAL);
    cr_assert_eq(label_write_uberblock(d, &ub, 0xf), -EINVAL);
    cr_assert_eq(label_read_uberblocks(d, out, 1, &n), -EINVAL);
    cr_assert_eq(label_clear(d), -EINVAL);
    free(cfg);
    vdev_backend_close(d);
}
