/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the label readers: the input (with a valid trailer recomputed, so the
 * fuzzer reaches the field checks) is decoded as a config record and as an uberblock slot.
 * Neither may crash or read out of bounds; a decoded config re-encodes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/endian.h"
#include "core/cksum.h"
#include "core/label.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t region[LABEL_CONFIG_SIZE];
    uint8_t slot[UB_SLOT_SIZE];
    const uint64_t off = 8192;

    memset(region, 0, sizeof(region));
    memcpy(region, data, size < sizeof(region) ? size : sizeof(region));
    uint8_t *tr = region + LABEL_CONFIG_SIZE - TRAILER_SIZE;
    le64_put(tr, TRAILER_MAGIC);
    cksum_sha256_with_offset(region, LABEL_CONFIG_SIZE - TRAILER_SIZE, off, tr + 8);
    struct pool_config *cfg = malloc(sizeof(*cfg));
    if (cfg == NULL)
        return 0;
    if (config_decode(region, off, cfg) == 0) {
        static uint8_t again[LABEL_CONFIG_SIZE];
        if (config_encode(cfg, again, off) != 0)
            abort();
    }
    free(cfg);

    memset(slot, 0, sizeof(slot));
    memcpy(slot, data, size < sizeof(slot) ? size : sizeof(slot));
    uint8_t *st = slot + UB_SLOT_SIZE - TRAILER_SIZE;
    le64_put(st, TRAILER_MAGIC);
    cksum_sha256_with_offset(slot, UB_SLOT_SIZE - TRAILER_SIZE, off, st + 8);
    struct uberblock ub;
    (void)uberblock_decode(slot, off, &ub);
    return 0;
}
