/* SPDX-License-Identifier: MIT */
/*
 * label: the four labels of a leaf device — the config record and the uberblock ring
 * (ondisk.h, "Leaf device layout", "Config record", "Uberblock").
 *
 * This module encodes, decodes and verifies those structures and does their I/O on a
 * vdev_backend. It decides nothing about which uberblock wins or when to write: pool.c does.
 * Every region carries an embedded SHA-256 trailer mixed with its absolute device offset, so a
 * torn, stale-misplaced or bit-rotted region is rejected (-ECKSUM/-ECORRUPT), never trusted.
 */
#ifndef LCPFS_CORE_LABEL_H
#define LCPFS_CORE_LABEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bp.h"
#include "core/ondisk.h"

struct vdev_backend;

struct config_vdev {
    uint64_t guid;
    uint32_t parent; /* index into pool_config.vdevs, CONFIG_NO_PARENT for the root */
    uint32_t id;     /* index among its parent's children */
    uint8_t type;    /* enum vdev_type_ondisk */
    uint8_t nparity;
    uint8_t ashift;
    uint8_t state; /* enum vdev_state_ondisk */
    uint32_t nchildren;
    uint64_t asize;
    uint32_t ms_shift;
    uint64_t expansion_txg;   /* reserved, 0 */
    uint64_t expansion_width; /* reserved, 0 */
    uint64_t missed_since;    /* leaves: oldest txg the device may lack (0 = none) */
    char path[VDEV_PATH_MAX + 1];
};

struct pool_config {
    uint64_t pool_guid;
    uint64_t txg;       /* config txg */
    uint32_t state;     /* enum pool_state_ondisk */
    uint64_t leaf_guid; /* the device this copy was written to */
    uint64_t guid_sum;
    uint64_t create_time;
    char name[POOL_NAME_MAX + 1];
    uint32_t nvdevs;
    struct config_vdev vdevs[CONFIG_MAX_VDEVS]; /* pre-order; vdevs[0] is the root */
};

struct uberblock {
    uint64_t version;
    uint64_t txg;
    uint64_t guid_sum;
    uint64_t timestamp;
    uint64_t software_version;
    struct blkptr rootbp;
    uint64_t config_txg;
    uint64_t checkpoint_txg;
    uint64_t reflow_offset;
    uint64_t pool_guid;
};

/* Byte offset of label l (0..3) on a device of dev_size bytes (rounded down to LABEL_SIZE). */
uint64_t label_offset(uint64_t dev_size, int l);
/* Allocatable bytes of a leaf of dev_size bytes: from VDEV_DATA_START up to the end labels. */
uint64_t label_data_size(uint64_t dev_size);

/* Encodes cfg into buf (LABEL_CONFIG_SIZE bytes, zero-padded, trailer at its end) for dev_off. */
int config_encode(const struct pool_config *cfg, uint8_t *buf, uint64_t dev_off);
/* Verifies the trailer and decodes. -ECKSUM (trailer), -ECORRUPT (fields), -EVERSION. */
int config_decode(const uint8_t *buf, uint64_t dev_off, struct pool_config *cfg);

void uberblock_encode(const struct uberblock *ub, uint8_t slot[static UB_SLOT_SIZE],
                      uint64_t dev_off);
/* -ENOENT for an all-zero (never written) slot, -ECKSUM, -ECORRUPT, -EVERSION. */
int uberblock_decode(const uint8_t slot[static UB_SLOT_SIZE], uint64_t dev_off,
                     struct uberblock *ub);

/*
 * Writes cfg (with cfg->leaf_guid as given) into the labels in mask (bit l = label l).
 * Does not flush. Returns 0 or the first I/O error.
 */
int label_write_config(struct vdev_backend *dev, const struct pool_config *cfg, unsigned mask);
/* Writes ub into slot ub->txg % UB_SLOTS of the labels in mask. Does not flush. */
int label_write_uberblock(struct vdev_backend *dev, const struct uberblock *ub, unsigned mask);
/*
 * Reads the config of the four labels and returns the valid one with the highest txg.
 * *valid_mask gets a bit per label that verified. -ENOENT when no label verifies.
 * cfg is large (about 120 KiB): allocate it on the heap.
 */
int label_read_config(struct vdev_backend *dev, struct pool_config *cfg, unsigned *valid_mask);
/*
 * Collects every verifying uberblock of the four rings into out[0..cap), one per txg (the copy
 * with the newest timestamp wins), sorted by txg descending. *n = number found. Returns 0 or an
 * I/O error; bad slots are skipped, not errors.
 */
int label_read_uberblocks(struct vdev_backend *dev, struct uberblock *out, size_t cap, size_t *n);
/* Zeroes all four labels (pool destroy, tests). */
int label_clear(struct vdev_backend *dev);

#endif
