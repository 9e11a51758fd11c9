/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for bp_decode: any 128 bytes either fail with -ECORRUPT or decode to a BP whose
 * encoding is a fixed point (encode(decode(encode(decode(x)))) == encode(decode(x))).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "core/bp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t in[BP_SIZE], e1[BP_SIZE], e2[BP_SIZE];
    struct blkptr bp, bp2;

    if (size < BP_SIZE)
        return 0;
    memcpy(in, data, BP_SIZE); /* a fixed-size copy: bp_decode takes exactly BP_SIZE bytes */

    int rc = bp_decode(in, &bp);
    if (rc == -ECORRUPT)
        return 0;
    if (rc != 0)
        abort();
    bp_encode(&bp, e1);
    if (bp_decode(e1, &bp2) != 0)
        abort();
    bp_encode(&bp2, e2);
    if (memcmp(e1, e2, BP_SIZE) != 0)
        abort();
    return 0;
}
