/* SPDX-License-Identifier: MIT */
/*
 * label: encoding, verification and I/O of the four labels of a leaf device.
 *
 * Theory of operation. A label is LABEL_SIZE bytes; two sit at the front of the device and two
 * at the end (device size rounded down to LABEL_SIZE). Each holds a config record region
 * (LABEL_CONFIG_SIZE bytes at LABEL_CONFIG_OFF) and a ring of UB_SLOTS uberblock slots
 * (UB_SLOT_SIZE bytes each at LABEL_RING_OFF). Every region and every slot ends with a trailer:
 * TRAILER_MAGIC and SHA-256 over (the bytes before the trailer || u64le absolute device offset).
 * Binding the offset into the checksum is what rejects a region that a misdirected write put in
 * the wrong place, and a torn write fails the checksum, so a reader never trusts either.
 *
 * Each region is written with one write call, so the device sees it as one request; the slot
 * write (4 KiB, 4 KiB aligned) is as atomic as the device's physical sector allows, and a torn
 * one merely fails verification and is skipped. This module keeps no state: choosing the
 * uberblock or the config and ordering writes and flushes is pool.c's job.
 *
 * Invariants (what a decoder guarantees to its caller; encoders refuse to produce anything else):
 *  1. A decoded region had a valid trailer for exactly the offset it was read from.
 *  2. A decoded config has 1..CONFIG_MAX_VDEVS vdevs, all inside the record length; vdevs[0] is
 *     the root (type ROOT, parent CONFIG_NO_PARENT) and the only ROOT; every other vdev's parent
 *     has a smaller index and is not a leaf; each vdev's nchildren equals the number of vdevs
 *     naming it as parent; every type and state is known; every string is NUL-terminated.
 *  3. A decoded uberblock has a known version and a root block pointer that bp_decode accepted.
 */
#include "core/label.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/endian.h"
#include "common/err.h"
#include "common/log.h"
#include "core/bp.h"
#include "core/cksum.h"
#include "core/ondisk.h"
#include "core/vdev_backend.h"

#define LABEL_RING_SIZE (LABEL_SIZE - LABEL_RING_OFF)
#define LABEL_IO_ALIGN  4096u /* buffers are page-aligned so O_DIRECT backends need no bounce */

/* Config record header (ondisk.h "Config record"). */
#define CFG_MAGIC          0
#define CFG_VERSION        8
#define CFG_LENGTH         12
#define CFG_POOL_GUID      16
#define CFG_TXG            24
#define CFG_STATE          32
#define CFG_NVDEVS         36
#define CFG_LEAF_GUID      40
#define CFG_GUID_SUM       48
#define CFG_CREATE_TIME    56
#define CFG_NAME           64
/* Vdev entry. */
#define VE_GUID            0
#define VE_PARENT          8
#define VE_ID              12
#define VE_TYPE            16
#define VE_NPARITY         17
#define VE_ASHIFT          18
#define VE_STATE           19
#define VE_NCHILDREN       20
#define VE_ASIZE           24
#define VE_MS_SHIFT        32
#define VE_EXP_TXG         40
#define VE_EXP_WIDTH       48
#define VE_MISSED_SINCE    56
#define VE_PATH            64
#define VE_PATH_FIELD      (CONFIG_VDEV_ENTRY_SIZE - VE_PATH)
/* Uberblock slot. */
#define UBO_MAGIC          0
#define UBO_VERSION        8
#define UBO_TXG            16
#define UBO_GUID_SUM       24
#define UBO_TIMESTAMP      32
#define UBO_SW_VERSION     40
#define UBO_CONFIG_TXG     176
#define UBO_CHECKPOINT_TXG 184
#define UBO_REFLOW_OFFSET  192
#define UBO_POOL_GUID      200
#define UBO_END            208

_Static_assert((LABEL_SIZE & (LABEL_SIZE - 1)) == 0, "LABEL_SIZE must be a power of two");
_Static_assert(LABEL_CONFIG_OFF + LABEL_CONFIG_SIZE <= LABEL_RING_OFF, "config overlaps ring");
_Static_assert(UB_SLOTS *UB_SLOT_SIZE == LABEL_RING_SIZE, "ring must fill the label's tail");
_Static_assert(UB_OFF_ROOTBP + BP_SIZE == UBO_CONFIG_TXG, "uberblock layout");
_Static_assert(UBO_END <= UB_SLOT_SIZE - TRAILER_SIZE, "uberblock overlaps its trailer");
_Static_assert(CFG_NAME + POOL_NAME_MAX + 1 == CONFIG_HEADER_SIZE, "config header layout");
_Static_assert(VE_PATH_FIELD == VDEV_PATH_MAX + 1, "vdev entry layout");
_Static_assert(CONFIG_HEADER_SIZE + CONFIG_MAX_VDEVS * CONFIG_VDEV_ENTRY_SIZE <=
                   LABEL_CONFIG_SIZE - TRAILER_SIZE,
               "config record overlaps its trailer");
_Static_assert(VDEV_DATA_START % LABEL_SIZE == 0 && VDEV_DATA_START >= 2 * LABEL_SIZE,
               "front labels must fit before the data area");

/* ---- layout ------------------------------------------------------------------------------- */

static uint64_t
label_rounded(uint64_t dev_size)
{
    return dev_size & ~(LABEL_SIZE - 1);
}

/* true when the device can hold its four labels and the reserved front area. */
static bool
label_dev_ok(const struct vdev_backend *dev)
{
    return label_rounded(dev->size) >= VDEV_DATA_START + 2 * LABEL_SIZE;
}

uint64_t
label_offset(uint64_t dev_size, int l)
{
    uint64_t size = label_rounded(dev_size);

    ASSERT(l >= 0 && l < LABEL_COUNT);
    ASSERT3U(size, >=, LABEL_COUNT * LABEL_SIZE);
    switch (l) {
    case 0:
        return 0;
    case 1:
        return LABEL_SIZE;
    case 2:
        return size - 2 * LABEL_SIZE;
    default:
        return size - LABEL_SIZE;
    }
}

uint64_t
label_data_size(uint64_t dev_size)
{
    uint64_t size = label_rounded(dev_size);

    if (size < VDEV_DATA_START + 2 * LABEL_SIZE)
        return 0;
    return size - VDEV_DATA_START - 2 * LABEL_SIZE;
}

/* ---- trailers ----------------------------------------------------------------------------- */

/* Seals region[0, size) for device offset dev_off: the trailer fills its last TRAILER_SIZE. */
static void
trailer_put(uint8_t *region, size_t size, uint64_t dev_off)
{
    uint8_t *t = region + size - TRAILER_SIZE;

    le64_put(t, TRAILER_MAGIC);
    cksum_sha256_with_offset(region, size - TRAILER_SIZE, dev_off, t + 8);
}

static bool
trailer_ok(const uint8_t *region, size_t size, uint64_t dev_off)
{
    const uint8_t *t = region + size - TRAILER_SIZE;
    uint8_t sum[32];

    if (le64_get(t) != TRAILER_MAGIC)
        return false;
    cksum_sha256_with_offset(region, size - TRAILER_SIZE, dev_off, sum);
    return memcmp(sum, t + 8, sizeof(sum)) == 0;
}

static bool
all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != 0)
            return false;
    }
    return true;
}

/* ---- config record ------------------------------------------------------------------------ */

static bool
pool_state_known(uint32_t s)
{
    return s == POOL_STATE_ACTIVE || s == POOL_STATE_EXPORTED || s == POOL_STATE_DESTROYED;
}

static bool
vdev_type_known(uint8_t t)
{
    return t >= VDEV_TYPE_ROOT && t <= VDEV_TYPE_RAIDZ;
}

static bool
vdev_state_known(uint8_t s)
{
    return s == VDEV_STATE_ONLINE || s == VDEV_STATE_OFFLINE || s == VDEV_STATE_REMOVED;
}

/* Checks the structural rules of invariant 2 (strings aside) on a decoded or caller config. */
static bool
config_tree_ok(const struct pool_config *cfg)
{
    uint32_t nchildren[CONFIG_MAX_VDEVS];

    if (cfg->nvdevs == 0 || cfg->nvdevs > CONFIG_MAX_VDEVS || !pool_state_known(cfg->state))
        return false;
    if (cfg->vdevs[0].type != VDEV_TYPE_ROOT || cfg->vdevs[0].parent != CONFIG_NO_PARENT)
        return false;
    memset(nchildren, 0, sizeof(nchildren));
    for (uint32_t i = 0; i < cfg->nvdevs; i++) {
        const struct config_vdev *v = &cfg->vdevs[i];
        if (!vdev_type_known(v->type) || !vdev_state_known(v->state))
            return false;
        if (i == 0)
            continue;
        if (v->type == VDEV_TYPE_ROOT || v->parent >= i) /* pre-order: parent first */
            return false;
        if (cfg->vdevs[v->parent].type == VDEV_TYPE_LEAF)
            return false;
        nchildren[v->parent]++;
    }
    for (uint32_t i = 0; i < cfg->nvdevs; i++) {
        if (cfg->vdevs[i].nchildren != nchildren[i])
            return false;
    }
    return true;
}

/* Copies a string into a NUL-padded field of field bytes (at most field-1 characters). */
static void
str_put(uint8_t *dst, const char *src, size_t field)
{
    size_t n = strnlen(src, field - 1);
    memcpy(dst, src, n);
    memset(dst + n, 0, field - n);
}

/* Copies a field of field bytes into dst[field], forcing termination in its last byte. */
static void
str_get(char *dst, const uint8_t *src, size_t field)
{
    memcpy(dst, src, field);
    dst[field - 1] = '\0';
}

int
config_encode(const struct pool_config *cfg, uint8_t *buf, uint64_t dev_off)
{
    ASSERT(cfg != NULL && buf != NULL);
    if (!config_tree_ok(cfg))
        return ERR(-EINVAL);

    uint32_t length = CONFIG_HEADER_SIZE + cfg->nvdevs * CONFIG_VDEV_ENTRY_SIZE;
    memset(buf, 0, LABEL_CONFIG_SIZE);
    le64_put(buf + CFG_MAGIC, CONFIG_MAGIC);
    le32_put(buf + CFG_VERSION, (uint32_t)LCPFS_FORMAT_VERSION);
    le32_put(buf + CFG_LENGTH, length);
    le64_put(buf + CFG_POOL_GUID, cfg->pool_guid);
    le64_put(buf + CFG_TXG, cfg->txg);
    le32_put(buf + CFG_STATE, cfg->state);
    le32_put(buf + CFG_NVDEVS, cfg->nvdevs);
    le64_put(buf + CFG_LEAF_GUID, cfg->leaf_guid);
    le64_put(buf + CFG_GUID_SUM, cfg->guid_sum);
    le64_put(buf + CFG_CREATE_TIME, cfg->create_time);
    str_put(buf + CFG_NAME, cfg->name, POOL_NAME_MAX + 1);

    for (uint32_t i = 0; i < cfg->nvdevs; i++) {
        const struct config_vdev *v = &cfg->vdevs[i];
        uint8_t *e = buf + CONFIG_HEADER_SIZE + (size_t)i * CONFIG_VDEV_ENTRY_SIZE;
        le64_put(e + VE_GUID, v->guid);
        le32_put(e + VE_PARENT, v->parent);
        le32_put(e + VE_ID, v->id);
        e[VE_TYPE] = v->type;
        e[VE_NPARITY] = v->nparity;
        e[VE_ASHIFT] = v->ashift;
        e[VE_STATE] = v->state;
        le32_put(e + VE_NCHILDREN, v->nchildren);
        le64_put(e + VE_ASIZE, v->asize);
        le32_put(e + VE_MS_SHIFT, v->ms_shift);
        le64_put(e + VE_EXP_TXG, v->expansion_txg);
        le64_put(e + VE_EXP_WIDTH, v->expansion_width);
        le64_put(e + VE_MISSED_SINCE, v->missed_since);
        str_put(e + VE_PATH, v->path, VE_PATH_FIELD);
    }
    trailer_put(buf, LABEL_CONFIG_SIZE, dev_off);
    return 0;
}

int
config_decode(const uint8_t *buf, uint64_t dev_off, struct pool_config *cfg)
{
    ASSERT(cfg != NULL && buf != NULL);
    if (!trailer_ok(buf, LABEL_CONFIG_SIZE, dev_off))
        return ERR(-ECKSUM);
    if (le64_get(buf + CFG_MAGIC) != CONFIG_MAGIC)
        return ERR(-ECORRUPT);
    uint32_t version = le32_get(buf + CFG_VERSION);
    if (version == 0)
        return ERR(-ECORRUPT);
    if (version > LCPFS_FORMAT_VERSION)
        return ERR(-EVERSION);
    uint32_t length = le32_get(buf + CFG_LENGTH);
    uint32_t nvdevs = le32_get(buf + CFG_NVDEVS);
    if (length < CONFIG_HEADER_SIZE || length > LABEL_CONFIG_SIZE - TRAILER_SIZE)
        return ERR(-ECORRUPT);
    if (nvdevs == 0 || nvdevs > CONFIG_MAX_VDEVS ||
        CONFIG_HEADER_SIZE + (uint64_t)nvdevs * CONFIG_VDEV_ENTRY_SIZE > length)
        return ERR(-ECORRUPT);

    memset(cfg, 0, sizeof(*cfg));
    cfg->pool_guid = le64_get(buf + CFG_POOL_GUID);
    cfg->txg = le64_get(buf + CFG_TXG);
    cfg->state = le32_get(buf + CFG_STATE);
    cfg->nvdevs = nvdevs;
    cfg->leaf_guid = le64_get(buf + CFG_LEAF_GUID);
    cfg->guid_sum = le64_get(buf + CFG_GUID_SUM);
    cfg->create_time = le64_get(buf + CFG_CREATE_TIME);
    str_get(cfg->name, buf + CFG_NAME, POOL_NAME_MAX + 1);

    for (uint32_t i = 0; i < nvdevs; i++) {
        struct config_vdev *v = &cfg->vdevs[i];
        const uint8_t *e = buf + CONFIG_HEADER_SIZE + (size_t)i * CONFIG_VDEV_ENTRY_SIZE;
        v->guid = le64_get(e + VE_GUID);
        v->parent = le32_get(e + VE_PARENT);
        v->id = le32_get(e + VE_ID);
        v->type = e[VE_TYPE];
        v->nparity = e[VE_NPARITY];
        v->ashift = e[VE_ASHIFT];
        v->state = e[VE_STATE];
        v->nchildren = le32_get(e + VE_NCHILDREN);
        v->asize = le64_get(e + VE_ASIZE);
        v->ms_shift = le32_get(e + VE_MS_SHIFT);
        v->expansion_txg = le64_get(e + VE_EXP_TXG);
        v->expansion_width = le64_get(e + VE_EXP_WIDTH);
        v->missed_since = le64_get(e + VE_MISSED_SINCE);
        str_get(v->path, e + VE_PATH, VE_PATH_FIELD);
    }
    if (!config_tree_ok(cfg))
        return ERR(-ECORRUPT);
    return 0;
}

/* ---- uberblock ---------------------------------------------------------------------------- */

void
uberblock_encode(const struct uberblock *ub, uint8_t slot[static UB_SLOT_SIZE], uint64_t dev_off)
{
    ASSERT(ub != NULL);
    ASSERT(ub->version >= 1 && ub->version <= LCPFS_FORMAT_VERSION);

    memset(slot, 0, UB_SLOT_SIZE);
    le64_put(slot + UBO_MAGIC, UB_MAGIC);
    le64_put(slot + UBO_VERSION, ub->version);
    le64_put(slot + UBO_TXG, ub->txg);
    le64_put(slot + UBO_GUID_SUM, ub->guid_sum);
    le64_put(slot + UBO_TIMESTAMP, ub->timestamp);
    le64_put(slot + UBO_SW_VERSION, ub->software_version);
    bp_encode(&ub->rootbp, slot + UB_OFF_ROOTBP);
    le64_put(slot + UBO_CONFIG_TXG, ub->config_txg);
    le64_put(slot + UBO_CHECKPOINT_TXG, ub->checkpoint_txg);
    le64_put(slot + UBO_REFLOW_OFFSET, ub->reflow_offset);
    le64_put(slot + UBO_POOL_GUID, ub->pool_guid);
    trailer_put(slot, UB_SLOT_SIZE, dev_off);
}

int
uberblock_decode(const uint8_t slot[static UB_SLOT_SIZE], uint64_t dev_off, struct uberblock *ub)
{
    ASSERT(ub != NULL);
    if (all_zero(slot, UB_SLOT_SIZE))
        return -ENOENT; /* never written: normal, not worth an error trace */
    if (!trailer_ok(slot, UB_SLOT_SIZE, dev_off))
        return ERR(-ECKSUM);
    if (le64_get(slot + UBO_MAGIC) != UB_MAGIC)
        return ERR(-ECORRUPT);
    uint64_t version = le64_get(slot + UBO_VERSION);
    if (version == 0)
        return ERR(-ECORRUPT);
    if (version > LCPFS_FORMAT_VERSION)
        return ERR(-EVERSION);

    memset(ub, 0, sizeof(*ub));
    int rc = bp_decode(slot + UB_OFF_ROOTBP, &ub->rootbp);
    if (rc != 0)
        return rc;
    ub->version = version;
    ub->txg = le64_get(slot + UBO_TXG);
    ub->guid_sum = le64_get(slot + UBO_GUID_SUM);
    ub->timestamp = le64_get(slot + UBO_TIMESTAMP);
    ub->software_version = le64_get(slot + UBO_SW_VERSION);
    ub->config_txg = le64_get(slot + UBO_CONFIG_TXG);
    ub->checkpoint_txg = le64_get(slot + UBO_CHECKPOINT_TXG);
    ub->reflow_offset = le64_get(slot + UBO_REFLOW_OFFSET);
    ub->pool_guid = le64_get(slot + UBO_POOL_GUID);
    return 0;
}

/* ---- I/O ---------------------------------------------------------------------------------- */

static uint8_t *
label_buf_alloc(size_t len)
{
    return aligned_alloc(LABEL_IO_ALIGN, len); /* every len used here is a multiple of 4 KiB */
}

int
label_write_config(struct vdev_backend *dev, const struct pool_config *cfg, unsigned mask)
{
    ASSERT(dev != NULL && cfg != NULL);
    ASSERT0(mask & ~((1u << LABEL_COUNT) - 1));
    if (!label_dev_ok(dev))
        return ERR(-EINVAL);

    uint8_t *buf = label_buf_alloc(LABEL_CONFIG_SIZE);
    if (buf == NULL)
        return ERR(-ENOMEM);
    int rc = config_encode(cfg, buf, 0); /* the trailer is resealed per label below */
    if (rc != 0)
        goto out;
    for (int l = 0; l < LABEL_COUNT; l++) {
        if (!(mask & (1u << l)))
            continue;
        uint64_t off = label_offset(dev->size, l) + LABEL_CONFIG_OFF;
        trailer_put(buf, LABEL_CONFIG_SIZE, off);
        int wrc = vdev_backend_write(dev, off, buf, LABEL_CONFIG_SIZE);
        if (wrc != 0 && rc == 0)
            rc = wrc; /* keep writing the other copies: more good labels is better */
    }
out:
    free(buf);
    return rc;
}

int
label_write_uberblock(struct vdev_backend *dev, const struct uberblock *ub, unsigned mask)
{
    ASSERT(dev != NULL && ub != NULL);
    ASSERT0(mask & ~((1u << LABEL_COUNT) - 1));
    if (!label_dev_ok(dev))
        return ERR(-EINVAL);

    uint8_t *slot = label_buf_alloc(UB_SLOT_SIZE);
    if (slot == NULL)
        return ERR(-ENOMEM);
    uint64_t slot_off = LABEL_RING_OFF + (ub->txg % UB_SLOTS) * UB_SLOT_SIZE;
    int rc = 0;
    for (int l = 0; l < LABEL_COUNT; l++) {
        if (!(mask & (1u << l)))
            continue;
        uint64_t off = label_offset(dev->size, l) + slot_off;
        uberblock_encode(ub, slot, off);
        int wrc = vdev_backend_write(dev, off, slot, UB_SLOT_SIZE);
        if (wrc != 0 && rc == 0)
            rc = wrc;
    }
    free(slot);
    return rc;
}

int
label_read_config(struct vdev_backend *dev, struct pool_config *cfg, unsigned *valid_mask)
{
    ASSERT(dev != NULL && cfg != NULL);
    if (valid_mask != NULL)
        *valid_mask = 0;
    if (!label_dev_ok(dev))
        return ERR(-EINVAL);

    uint8_t *buf = label_buf_alloc(LABEL_CONFIG_SIZE);
    struct pool_config *tmp = malloc(sizeof(*tmp));
    int rc = 0;
    if (buf == NULL || tmp == NULL) {
        rc = ERR(-ENOMEM);
        goto out;
    }
    unsigned mask = 0;
    int io_err = 0;
    bool newer_version = false;
    for (int l = 0; l < LABEL_COUNT; l++) {
        uint64_t off = label_offset(dev->size, l) + LABEL_CONFIG_OFF;
        int lrc = vdev_backend_read(dev, off, buf, LABEL_CONFIG_SIZE);
        if (lrc != 0) {
            if (io_err == 0)
                io_err = lrc;
            continue;
        }
        lrc = config_decode(buf, off, tmp);
        if (lrc != 0) {
            newer_version |= lrc == -EVERSION;
            log_debug("skip config of label %d of '%s': %s", l, dev->path, err_str(lrc));
            continue;
        }
        if (mask == 0 || tmp->txg > cfg->txg)
            memcpy(cfg, tmp, sizeof(*cfg));
        mask |= 1u << l;
    }
    if (valid_mask != NULL)
        *valid_mask = mask;
    if (mask == 0) {
        /* most telling reason first: a newer pool, then a failing device, then no pool */
        rc = newer_version ? ERR(-EVERSION) : io_err != 0 ? io_err : -ENOENT;
    }
out:
    free(tmp);
    free(buf);
    return rc;
}

/* Descending by txg. */
static int
ub_cmp_txg_desc(const void *a, const void *b)
{
    const struct uberblock *x = a, *y = b;
    return (x->txg < y->txg) - (x->txg > y->txg);
}

int
label_read_uberblocks(struct vdev_backend *dev, struct uberblock *out, size_t cap, size_t *n)
{
    ASSERT(dev != NULL && n != NULL);
    ASSERT(cap == 0 || out != NULL);
    *n = 0;
    if (!label_dev_ok(dev))
        return ERR(-EINVAL);

    uint8_t *ring = label_buf_alloc(LABEL_RING_SIZE);
    /* one spare entry: each slot decodes into found[nfound] before it is kept or dropped */
    struct uberblock *found = malloc((LABEL_COUNT * UB_SLOTS + 1) * sizeof(*found));
    int rc = 0;
    if (ring == NULL || found == NULL) {
        rc = ERR(-ENOMEM);
        goto out;
    }
    size_t nfound = 0;
    int io_err = 0, nread = 0;
    for (int l = 0; l < LABEL_COUNT; l++) {
        uint64_t ring_off = label_offset(dev->size, l) + LABEL_RING_OFF;
        int lrc = vdev_backend_read(dev, ring_off, ring, LABEL_RING_SIZE);
        if (lrc != 0) {
            if (io_err == 0)
                io_err = lrc;
            continue;
        }
        nread++;
        for (uint32_t i = 0; i < UB_SLOTS; i++) {
            struct uberblock *ub = &found[nfound];
            uint64_t off = ring_off + (uint64_t)i * UB_SLOT_SIZE;
            lrc = uberblock_decode(ring + (size_t)i * UB_SLOT_SIZE, off, ub);
            if (lrc == 0 && ub->txg % UB_SLOTS != i)
                lrc = ERR(-ECORRUPT); /* verifies but sits in another txg's slot */
            if (lrc != 0) {
                if (lrc != -ENOENT)
                    log_debug("skip uberblock slot %u of label %d of '%s': %s", i, l, dev->path,
                              err_str(lrc));
                continue;
            }
            size_t j = 0;
            while (j < nfound && found[j].txg != ub->txg)
                j++;
            if (j == nfound)
                nfound++; /* first copy of this txg: keep it in place */
            else if (ub->timestamp > found[j].timestamp)
                found[j] = *ub; /* same txg written twice (e.g. rewound pool): newest wins */
        }
    }
    if (nread == 0) {
        rc = io_err;
        goto out;
    }
    qsort(found, nfound, sizeof(*found), ub_cmp_txg_desc);
    *n = nfound < cap ? nfound : cap;
    if (*n > 0)
        memcpy(out, found, *n * sizeof(*out));
out:
    free(found);
    free(ring);
    return rc;
}

int
label_clear(struct vdev_backend *dev)
{
    ASSERT(dev != NULL);
    if (!label_dev_ok(dev))
        return ERR(-EINVAL);

    uint8_t *zero = label_buf_alloc(LABEL_SIZE);
    if (zero == NULL)
        return ERR(-ENOMEM);
    memset(zero, 0, LABEL_SIZE);
    int rc = 0;
    for (int l = 0; l < LABEL_COUNT; l++) {
        int wrc = vdev_backend_write(dev, label_offset(dev->size, l), zero, LABEL_SIZE);
        if (wrc != 0 && rc == 0)
            rc = wrc;
    }
    free(zero);
    return rc;
}
