/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for dnode decoding: any 512 bytes decode or fail with -ECORRUPT; a decoded
 * dnode re-encodes to a fixed point.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "core/pool_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t in[DNODE_SIZE] = { 0 }, e1[DNODE_SIZE], e2[DNODE_SIZE];
    memcpy(in, data, size < sizeof(in) ? size : sizeof(in));
    struct dnode_phys dp, dp2;
    int rc = dnode_phys_decode(in, &dp);
    if (rc != 0) {
        if (rc != -ECORRUPT)
            abort();
        return 0;
    }
    dnode_phys_encode(&dp, e1);
    if (dnode_phys_decode(e1, &dp2) != 0)
        abort();
    dnode_phys_encode(&dp2, e2);
    if (memcmp(e1, e2, sizeof(e1)) != 0)
        abort();
    return 0;
}
