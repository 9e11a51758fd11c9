/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the NBD transmission codec (proto/nbd.h). Input: a 28-byte request
 * header, then the export facts (zero-filled when short):
 *     u64 size, u16 tflags, u8 bits (bit 0 structured), u8 min_block shift (mod 17),
 *     u32 max_block, u8 n_meta, then bytes that drive a BLOCK_STATUS reply (u16 length, u8 status
 *     per extent).
 *
 * Properties (any violation aborts):
 *  - decode(encode(decode(x))) is the identity on the 28 header bytes;
 *  - nbd_request_check returns only 0, EPERM, EINVAL, ENOSPC or EOVERFLOW, and when it accepts
 *    a request (other than DISC) an independent oracle agrees: flags documented for the command
 *    and negotiated, not a write on a read-only export, aligned, within the maximum where it
 *    applies, and offset + length inside the export without wrapping;
 *  - the reply encoders accept the request's cookie and ranges, and a BLOCK_STATUS chunk built
 *    from arbitrary extents is valid: 1..cap descriptors, nonzero lengths, neighbours differ,
 *    sum within the request, exactly one descriptor with REQ_ONE.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/endian.h"
#include "proto/nbd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)     \
    do {             \
        if (!(x))    \
            abort(); \
    } while (0)

#define FACTS_LEN 17

/* The oracle: what the spec says an accepted (non-DISC) request satisfies. */
static void
oracle_accepts(const struct nbd_request *r, const struct nbd_export_facts *ex)
{
    const uint16_t t = r->type, f = r->flags, tf = ex->tflags;
    CHECK(t <= NBD_CMD_BLOCK_STATUS);
    CHECK((f & ~0x1fu) == 0);
    if (f & NBD_CMD_FLAG_FUA)
        CHECK(tf & NBD_FLAG_SEND_FUA);
    if (f & NBD_CMD_FLAG_DF)
        CHECK(t == NBD_CMD_READ && (tf & NBD_FLAG_SEND_DF) && ex->structured);
    if (f & (NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO))
        CHECK(t == NBD_CMD_WRITE_ZEROES);
    if (f & NBD_CMD_FLAG_FAST_ZERO)
        CHECK(tf & NBD_FLAG_SEND_FAST_ZERO);
    if (f & NBD_CMD_FLAG_REQ_ONE)
        CHECK(t == NBD_CMD_BLOCK_STATUS);
    if (t == NBD_CMD_WRITE || t == NBD_CMD_TRIM || t == NBD_CMD_WRITE_ZEROES)
        CHECK(!(tf & NBD_FLAG_READ_ONLY));
    if (t == NBD_CMD_FLUSH) {
        CHECK(tf & NBD_FLAG_SEND_FLUSH);
        CHECK(r->offset == 0 && r->length == 0);
        return;
    }
    if (t == NBD_CMD_TRIM)
        CHECK(tf & NBD_FLAG_SEND_TRIM);
    if (t == NBD_CMD_WRITE_ZEROES)
        CHECK(tf & NBD_FLAG_SEND_WRITE_ZEROES);
    if (t == NBD_CMD_BLOCK_STATUS)
        CHECK(ex->structured && ex->n_meta > 0 && r->length > 0);
    uint32_t min = ex->min_block ? ex->min_block : 1;
    CHECK(r->offset % min == 0 && r->length % min == 0);
    uint64_t max = ex->max_block ? ex->max_block : UINT32_MAX;
    if (t == NBD_CMD_READ || t == NBD_CMD_WRITE || t == NBD_CMD_CACHE ||
        (t == NBD_CMD_WRITE_ZEROES && !(f & NBD_CMD_FLAG_FAST_ZERO)))
        CHECK(r->length <= max);
    CHECK(r->offset <= ex->size);
    CHECK(r->length <= ex->size - r->offset);
}

static void
check_replies(const struct nbd_request *r, const uint8_t *drive, size_t drive_len)
{
    uint8_t buf[64];
    CHECK(nbd_simple_reply_encode(buf, sizeof(buf), NBD_EINVAL, r->cookie) == 16);
    CHECK(be64_get(buf + 8) == r->cookie);
    int n = nbd_chunk_offset_data_encode(buf, sizeof(buf), 0, r->cookie, r->offset, r->length);
    if (r->length == 0)
        CHECK(n == -EINVAL);
    else if (r->length > UINT32_MAX - 8)
        CHECK(n == -EOVERFLOW);
    else
        CHECK(n == 28 && be32_get(buf + 16) == r->length + 8 && be64_get(buf + 20) == r->offset);
    n = nbd_chunk_offset_hole_encode(buf, sizeof(buf), NBD_REPLY_FLAG_DONE, r->cookie, r->offset,
                                     r->length);
    CHECK(r->length == 0 ? n == -EINVAL : n == 32);
    n = nbd_chunk_error_offset_encode(buf, sizeof(buf), 0, r->cookie, NBD_EIO, "e", 1, r->offset);
    CHECK(n == 35 && be64_get(buf + 27) == r->offset);

    /* A BLOCK_STATUS chunk from arbitrary extents. */
    static uint8_t bs[24 + 8 * 40];
    struct nbd_bs_builder b;
    bool req_one = (r->flags & NBD_CMD_FLAG_REQ_ONE) != 0;
    size_t cap = 32 + (drive_len > 0 ? drive[0] % (sizeof(bs) - 31) : 0);
    uint32_t max_desc = drive_len > 1 ? drive[1] % 5 : 0;
    n = nbd_bs_begin(&b, bs, cap, r->cookie, 1, r->length, req_one, max_desc);
    if (r->length == 0) {
        CHECK(n == -EINVAL);
        return;
    }
    CHECK(n == 0);
    int rc = 0;
    for (size_t i = 2; i + 3 <= drive_len && rc == 0; i += 3) {
        uint64_t len = ((uint64_t)drive[i] << 8 | drive[i + 1]) * ((drive[i] & 0x80) ? 65537 : 1);
        rc = nbd_bs_add(&b, len, drive[i + 2] % 4);
        CHECK(len == 0 ? rc == -EINVAL : (rc == 0 || rc == 1));
        if (rc < 0)
            rc = 0;
    }
    if (b.n_desc == 0) {
        CHECK(nbd_bs_finish(&b, 0) == -EINVAL);
        CHECK(nbd_bs_add(&b, 1, 0) >= 0);
    }
    n = nbd_bs_finish(&b, NBD_REPLY_FLAG_DONE);
    CHECK(n >= 32 && (size_t)n <= cap && (n - 24) % 8 == 0);
    uint32_t nd = (uint32_t)(n - 24) / 8;
    CHECK(be32_get(bs + 16) == (uint32_t)n - 20);
    if (req_one)
        CHECK(nd == 1);
    if (max_desc)
        CHECK(nd <= max_desc);
    uint64_t sum = 0;
    uint32_t prev = UINT32_MAX;
    for (uint32_t d = 0; d < nd; d++) {
        uint32_t dl = be32_get(bs + 24 + 8 * d), ds = be32_get(bs + 28 + 8 * d);
        CHECK(dl > 0 && ds != prev);
        sum += dl;
        prev = ds;
    }
    CHECK(sum <= r->length);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nbd_request r;
    int rc = nbd_request_decode(data, size, &r);
    if (size < NBD_REQUEST_LEN) {
        CHECK(rc == -EAGAIN);
        return 0;
    }
    if (rc != 0) {
        CHECK(rc == -EPROTO && be32_get(data) != NBD_MAGIC_REQUEST);
        /* Look at the same bytes with the right magic, so mutations of the rest still count. */
        uint8_t fixed[NBD_REQUEST_LEN];
        memcpy(fixed, data, sizeof(fixed));
        be32_put(fixed, NBD_MAGIC_REQUEST);
        CHECK(nbd_request_decode(fixed, sizeof(fixed), &r) == 0);
    }
    uint8_t again[NBD_REQUEST_LEN];
    CHECK(nbd_request_encode(again, sizeof(again), &r) == NBD_REQUEST_LEN);
    CHECK(memcmp(again + 4, data + 4, NBD_REQUEST_LEN - 4) == 0);
    CHECK(nbd_request_payload_len(&r) == (r.type == NBD_CMD_WRITE ? r.length : 0));

    uint8_t f[FACTS_LEN] = { 0 };
    size_t tail = size - NBD_REQUEST_LEN;
    memcpy(f, data + NBD_REQUEST_LEN, tail < FACTS_LEN ? tail : FACTS_LEN);
    struct nbd_export_facts ex = {
        .size = be64_get(f),
        .tflags = (uint16_t)((f[8] << 8 | f[9]) | NBD_FLAG_HAS_FLAGS),
        .structured = (f[10] & 1) != 0,
        .min_block = 1u << (f[11] % 17),
        .max_block = be32_get(f + 12),
        .n_meta = f[16],
    };
    uint32_t err = nbd_request_check(&r, &ex);
    CHECK(err == 0 || err == NBD_EPERM || err == NBD_EINVAL || err == NBD_ENOSPC ||
          err == NBD_EOVERFLOW);
    if (err == NBD_EOVERFLOW)
        CHECK((r.flags & NBD_CMD_FLAG_DF) && r.length > UINT32_MAX - 8);
    if (err == NBD_ENOSPC)
        CHECK(r.type == NBD_CMD_WRITE || r.type == NBD_CMD_WRITE_ZEROES);
    if (err == NBD_EPERM)
        CHECK(ex.tflags & NBD_FLAG_READ_ONLY);
    if (err == 0 && r.type != NBD_CMD_DISC)
        oracle_accepts(&r, &ex);

    const uint8_t *drive = tail > FACTS_LEN ? data + NBD_REQUEST_LEN + FACTS_LEN : NULL;
    check_replies(&r, drive, tail > FACTS_LEN ? tail - FACTS_LEN : 0);
    return 0;
}
