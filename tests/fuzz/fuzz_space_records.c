/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for space-journal replay: arbitrary records are applied to an allocator with
 * two vdevs; replay either succeeds (and the allocator stays consistent) or fails -ECORRUPT.
 */
#include <stdint.h>
#include <stdlib.h>

#include "common/err.h"
#include "core/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct alloc *a = alloc_new();
    if (a == NULL)
        return 0;
    if (alloc_vdev_add(a, 0, 64u << 20, 12, 24) != 0 || alloc_vdev_add(a, 1, 32u << 20, 9, 24) != 0)
        abort();
    int rc = alloc_load_records(a, data, size, 10);
    if (rc != 0 && rc != -ECORRUPT)
        abort();
    if (rc == 0 && !alloc_check(a))
        abort();
    alloc_free(a);
    return 0;
}
