/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for core/map's on-disk readers: the input is cut into up to FUZZ_NODES
 * nodes of MAP_NODE_SIZE_MIN bytes (node 0 = the header; short or missing nodes are zero
 * filled, as a never-written node reads), then map_open, map_check, map_iterate, a few
 * lookups and one insert and remove run over it. Every call must return, never crash: the
 * only acceptable failures are -ECORRUPT, -EVERSION, -ENOENT, and -EFBIG from this store.
 *
 * To shrink inputs, zero runs are encoded: byte 0xff followed by a count n >= 1 expands to
 * 16 * n zero bytes (so a sparse 4 KiB node costs a few bytes); 0xff 0x00 is a literal 0xff.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "core/map.h"

#define FUZZ_NODES     8u
#define FUZZ_NODE_SIZE MAP_NODE_SIZE_MIN
#define FUZZ_STORE     (FUZZ_NODES + 8u) /* room for nodes the insert allocates */

struct fuzz_store {
    uint8_t node[FUZZ_STORE][FUZZ_NODE_SIZE];
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
fs_read(void *ctx, uint64_t blk, void *buf)
{
    struct fuzz_store *fs = ctx;
    if (blk >= FUZZ_STORE)
        memset(buf, 0, FUZZ_NODE_SIZE);
    else
        memcpy(buf, fs->node[blk], FUZZ_NODE_SIZE);
    return 0;
}

static int
fs_write(void *ctx, uint64_t blk, const void *buf)
{
    struct fuzz_store *fs = ctx;
    if (blk >= FUZZ_STORE)
        return -EFBIG;
    memcpy(fs->node[blk], buf, FUZZ_NODE_SIZE);
    return 0;
}

static int
fs_release(void *ctx, uint64_t blk)
{
    struct fuzz_store *fs = ctx;
    if (blk < FUZZ_STORE)
        memset(fs->node[blk], 0, FUZZ_NODE_SIZE);
    return 0;
}

static const struct map_store_ops fs_ops = { fs_read, fs_write, fs_release };

static int
count_fn(void *arg, uint64_t a, uint64_t b, const void *val, size_t len)
{
    uint64_t *sum = arg;
    const uint8_t *v = val;
    *sum += a ^ b ^ len;
    if (len > MAP_VALUE_MAX)
        abort();
    if (len > 0)
        *sum += v[0] + v[len - 1];
    return 0;
}

static void
check_rc(int rc)
{
    if (rc != 0 && rc != -ECORRUPT && rc != -EVERSION && rc != -ENOENT && rc != -EFBIG)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_store *fs = calloc(1, sizeof(*fs));
    if (fs == NULL)
        return 0;
    uint8_t *flat = &fs->node[0][0];
    size_t pos = 0, limit = (size_t)FUZZ_NODES * FUZZ_NODE_SIZE;
    for (size_t i = 0; i < size && pos < limit; i++) {
        if (data[i] == 0xff && i + 1 < size && data[i + 1] != 0) {
            size_t zeros = 16 * (size_t)data[++i];
            pos += zeros < limit - pos ? zeros : limit - pos;
        } else if (data[i] == 0xff && i + 1 < size) {
            flat[pos++] = data[i++];
        } else {
            flat[pos++] = data[i];
        }
    }

    struct map *m = NULL;
    int rc = map_open(&fs_ops, fs, &m);
    check_rc(rc);
    if (rc == 0) {
        uint64_t sum = 0;
        check_rc(map_check(m));
        check_rc(map_iterate(m, 0, 0, count_fn, &sum));
        uint64_t a = size > 0 ? data[0] : 0, b = size > 1 ? data[size - 1] : 0;
        check_rc(map_iterate(m, a, b, count_fn, &sum));
        uint8_t v[MAP_VALUE_MAX];
        size_t len = 0;
        check_rc(map_lookup(m, a, b, v, sizeof(v), &len));
        check_rc(map_lookup(m, 0, 0, v, sizeof(v), &len));
        memset(v, 0x5a, sizeof(v));
        check_rc(map_insert(m, a, b, v, (size_t)(sum % (MAP_VALUE_MAX + 1)), true));
        check_rc(map_remove(m, b, a));
        check_rc(map_check(m));
        map_close(m);
    }
    free(fs);
    return 0;
}
