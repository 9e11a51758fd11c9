/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the dataset records (core/dsl_record.h): the first DSL_RECORD_SIZE bytes
 * (zero-padded when shorter) are decoded as a hot record and the rest as a cold record. Either
 * decoder may fail with -ECORRUPT (the cold one also -ENOMEM); neither may crash or read out of
 * bounds. A record that decodes must round-trip:
 *   hot   encode(decode(x)) keeps bytes 128.. of x exactly (the block pointer is normalised by
 *         bp_encode, so only it may differ), decodes again to the same fields, and its encoding
 *         is a fixed point;
 *   cold  the format is canonical (exact length, no slack), so encode(decode(x)) == x byte for
 *         byte, and it decodes again to the same fields.
 * Any mismatch aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "core/dsl_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool
phys_fields_eq(const struct dsl_phys *a, const struct dsl_phys *b)
{
    return a->create_txg == b->create_txg && a->guid == b->guid && a->kind == b->kind &&
           a->flags == b->flags && a->parent_obj == b->parent_obj &&
           a->prev_snap_obj == b->prev_snap_obj && a->prev_snap_txg == b->prev_snap_txg &&
           a->next_snap_obj == b->next_snap_obj && a->origin_obj == b->origin_obj &&
           a->dl_bps_obj == b->dl_bps_obj && a->dl_summary_obj == b->dl_summary_obj &&
           a->ref_asize == b->ref_asize && a->ref_psize == b->ref_psize &&
           a->ref_lsize == b->ref_lsize && a->unique_asize == b->unique_asize &&
           a->create_time == b->create_time && a->num_clones == b->num_clones;
}

static void
fuzz_hot(const uint8_t *data, size_t size)
{
    uint8_t in[DSL_RECORD_SIZE], e1[DSL_RECORD_SIZE], e2[DSL_RECORD_SIZE];
    struct dsl_phys ph, ph2;

    memset(in, 0, sizeof(in));
    if (size > 0)
        memcpy(in, data, size < sizeof(in) ? size : sizeof(in));
    int rc = dsl_phys_decode(in, &ph);
    if (rc == -ECORRUPT)
        return;
    if (rc != 0)
        abort();
    dsl_phys_encode(&ph, e1);
    if (memcmp(e1 + BP_SIZE, in + BP_SIZE, DSL_RECORD_SIZE - BP_SIZE) != 0)
        abort(); /* every field after the root BP is stored verbatim */
    if (dsl_phys_decode(e1, &ph2) != 0)
        abort();
    if (!phys_fields_eq(&ph, &ph2))
        abort();
    dsl_phys_encode(&ph2, e2);
    if (memcmp(e1, e2, DSL_RECORD_SIZE) != 0)
        abort();
}

static bool
cold_eq(const struct dsl_cold *a, const struct dsl_cold *b)
{
    if (!str_eq(a->name, b->name) || a->nprops != b->nprops || a->nholds != b->nholds)
        return false;
    for (size_t i = 0; i < a->nprops; i++) {
        const struct dsl_propent *x = &a->props[i], *y = &b->props[i];
        if (!str_eq(x->key, y->key) || x->is_num != y->is_num)
            return false;
        if (x->is_num ? x->num != y->num : !str_eq(x->str, y->str))
            return false;
    }
    for (size_t i = 0; i < a->nholds; i++)
        if (!str_eq(a->holds[i].tag, b->holds[i].tag) || a->holds[i].time != b->holds[i].time)
            return false;
    return true;
}

static void
fuzz_cold(const uint8_t *data, size_t size)
{
    struct dsl_cold c, c2;
    uint8_t *enc = NULL;
    size_t len = 0;

    int rc = dsl_cold_decode(data, size, &c);
    if (rc == -ECORRUPT || rc == -ENOMEM)
        return;
    if (rc != 0)
        abort();
    if (c.name == NULL || !dsl_component_valid(c.name, strlen(c.name)))
        abort(); /* the decoder promised a valid component */
    if (dsl_cold_encode(&c, &enc, &len) != 0)
        abort(); /* everything the decoder accepts is encodable */
    if (len != size || memcmp(enc, data, size) != 0)
        abort(); /* canonical format: the same bytes again */
    rc = dsl_cold_decode(enc, len, &c2);
    if (rc == -ENOMEM) {
        free(enc);
        dsl_cold_release(&c);
        return;
    }
    if (rc != 0 || !cold_eq(&c, &c2))
        abort();
    dsl_cold_release(&c2);
    dsl_cold_release(&c);
    free(enc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_hot(data, size);
    if (size > DSL_RECORD_SIZE)
        fuzz_cold(data + DSL_RECORD_SIZE, size - DSL_RECORD_SIZE);
    else
        fuzz_cold(data, 0); /* the empty cold record is always corrupt */
    return 0;
}
