/* SPDX-License-Identifier: MIT */
/*
 * nbd_cmd: the transmission half of the NBD codec — request header, request validation, host
 * errno to wire error mapping, simple replies, structured reply chunks and the BLOCK_STATUS
 * chunk builder (see nbd.h for the conventions).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "common/assert.h"
#include "common/endian.h"
#include "common/err.h"
#include "proto/nbd.h"

_Static_assert(NBD_REQUEST_LEN == 4 + 2 + 2 + 8 + 8 + 4, "request layout");
_Static_assert(NBD_SIMPLE_REPLY_LEN == 4 + 4 + 8, "simple reply layout");
_Static_assert(NBD_CHUNK_HEADER_LEN == 4 + 2 + 2 + 8 + 4, "chunk header layout");
_Static_assert(NBD_REPLY_TYPE_ERROR == 32769u && NBD_REPLY_TYPE_ERROR_OFFSET == 32770u,
               "proto.md: 2^15 + 1, 2^15 + 2");

/* ---- requests ------------------------------------------------------------------------------ */

int
nbd_request_decode(const uint8_t *buf, size_t len, struct nbd_request *req)
{
    if (len < NBD_REQUEST_LEN)
        return -EAGAIN;
    if (be32_get(buf) != NBD_MAGIC_REQUEST)
        return ERR(-EPROTO);
    req->flags = be16_get(buf + 4);
    req->type = be16_get(buf + 6);
    req->cookie = be64_get(buf + 8);
    req->offset = be64_get(buf + 16);
    req->length = be32_get(buf + 24);
    return 0;
}

int
nbd_request_encode(uint8_t *buf, size_t cap, const struct nbd_request *req)
{
    if (cap < NBD_REQUEST_LEN)
        return ERR(-ENOSPC);
    be32_put(buf, NBD_MAGIC_REQUEST);
    be16_put(buf + 4, req->flags);
    be16_put(buf + 6, req->type);
    be64_put(buf + 8, req->cookie);
    be64_put(buf + 16, req->offset);
    be32_put(buf + 24, req->length);
    return NBD_REQUEST_LEN;
}

uint32_t
nbd_request_payload_len(const struct nbd_request *req)
{
    return req->type == NBD_CMD_WRITE ? req->length : 0;
}

/* The command flags proto.md documents for each command ("Command flags"); 0xffff = unknown
 * command. FUA "is valid for all commands" (subject to SEND_FUA, checked separately). */
static uint16_t
cmd_allowed_flags(uint16_t type)
{
    switch (type) {
    case NBD_CMD_READ:
        return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_DF;
    case NBD_CMD_WRITE:
    case NBD_CMD_FLUSH:
    case NBD_CMD_TRIM:
    case NBD_CMD_CACHE:
        return NBD_CMD_FLAG_FUA;
    case NBD_CMD_WRITE_ZEROES:
        return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
    case NBD_CMD_BLOCK_STATUS:
        return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_REQ_ONE;
    default:
        return 0xffff;
    }
}

uint32_t
nbd_request_check(const struct nbd_request *req, const struct nbd_export_facts *ex)
{
    const uint16_t type = req->type;
    const uint16_t flags = req->flags;
    const uint16_t tf = ex->tflags;

    /* 1. Command type ("Error values": EINVAL for an unknown command). */
    if (type == NBD_CMD_DISC)
        return 0;
    uint16_t allowed = cmd_allowed_flags(type);
    if (allowed == 0xffff)
        return NBD_EINVAL;

    /* 2. Flags: unknown or not documented for this command, or not negotiated. */
    if ((flags & ~allowed) != 0)
        return NBD_EINVAL;
    if ((flags & NBD_CMD_FLAG_FUA) && !(tf & NBD_FLAG_SEND_FUA))
        return NBD_EINVAL;
    if ((flags & NBD_CMD_FLAG_DF) && (!(tf & NBD_FLAG_SEND_DF) || !ex->structured))
        return NBD_EINVAL;
    if ((flags & NBD_CMD_FLAG_FAST_ZERO) && !(tf & NBD_FLAG_SEND_FAST_ZERO))
        return NBD_EINVAL;

    /* 3. Read-only export: EPERM for write, trim and write zeroes. */
    const bool writes =
        type == NBD_CMD_WRITE || type == NBD_CMD_TRIM || type == NBD_CMD_WRITE_ZEROES;
    if (writes && (tf & NBD_FLAG_READ_ONLY))
        return NBD_EPERM;

    /* 4. Commands the export did not expose. */
    switch (type) {
    case NBD_CMD_FLUSH:
        if (!(tf & NBD_FLAG_SEND_FLUSH))
            return NBD_EINVAL;
        break;
    case NBD_CMD_TRIM:
        if (!(tf & NBD_FLAG_SEND_TRIM))
            return NBD_EINVAL;
        break;
    case NBD_CMD_WRITE_ZEROES:
        if (!(tf & NBD_FLAG_SEND_WRITE_ZEROES))
            return NBD_EINVAL;
        break;
    case NBD_CMD_BLOCK_STATUS:
        /* "Metadata querying": EINVAL without a selected context (which needs structured). */
        if (!ex->structured || ex->n_meta == 0)
            return NBD_EINVAL;
        break;
    default:
        break;
    }

    /* 5. Reserved fields and requests with no valid reply. */
    if (type == NBD_CMD_FLUSH)
        return (req->offset == 0 && req->length == 0) ? 0 : NBD_EINVAL;
    if (type == NBD_CMD_BLOCK_STATUS && req->length == 0)
        return NBD_EINVAL;

    /* 6. Alignment to the enforced minimum block size. */
    uint32_t min = ex->min_block == 0 ? 1 : ex->min_block;
    ASSERT((min & (min - 1)) == 0);
    if ((req->offset & (min - 1)) != 0 || (req->length & (min - 1)) != 0)
        return NBD_EINVAL;

    /* 7. Maximum block size ("Block size constraints"; EINVAL) for the requests whose data goes
     * over the wire or through a buffer: READ, WRITE, CACHE. The spec lets a server refuse a
     * longer WRITE_ZEROES too, but clients (nbdcopy, qemu-img) send whole-disk zero requests and
     * punching any length is cheap for us, so we accept them, like TRIM and BLOCK_STATUS. */
    uint32_t max = ex->max_block == 0 ? UINT32_MAX : ex->max_block;
    const bool bounded = type == NBD_CMD_READ || type == NBD_CMD_WRITE || type == NBD_CMD_CACHE;
    if (bounded && req->length > max)
        return NBD_EINVAL;

    /* 8. DF: the whole read must fit one OFFSET_DATA chunk (u32 length = 8 + data). */
    if ((flags & NBD_CMD_FLAG_DF) && req->length > UINT32_MAX - 8)
        return NBD_EOVERFLOW;

    /* 9. Range within the export, without wrap-around. */
    if (req->offset > ex->size || req->length > ex->size - req->offset) {
        if (type == NBD_CMD_WRITE || type == NBD_CMD_WRITE_ZEROES)
            return NBD_ENOSPC;
        return NBD_EINVAL;
    }
    return 0;
}

uint32_t
nbd_errno_to_wire(int err)
{
    if (err < 0)
        err = -err;
    switch (err) {
    case 0:
        return 0;
    case EPERM:
    case EACCES:
    case EROFS:
        return NBD_EPERM;
    case EIO:
    case ECKSUM:
    case ECORRUPT:
    case EDEGRADED:
        return NBD_EIO;
    case ENOMEM:
        return NBD_ENOMEM;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return NBD_ENOSPC;
    case EOVERFLOW:
        return NBD_EOVERFLOW;
    case ENOTSUP:
#if EOPNOTSUPP != ENOTSUP
    case EOPNOTSUPP:
#endif
        return NBD_ENOTSUP;
    case ESHUTDOWN:
        return NBD_ESHUTDOWN;
    default:
        return NBD_EINVAL;
    }
}

/* ---- replies ------------------------------------------------------------------------------- */

int
nbd_simple_reply_encode(uint8_t *buf, size_t cap, uint32_t error, uint64_t cookie)
{
    if (cap < NBD_SIMPLE_REPLY_LEN)
        return ERR(-ENOSPC);
    be32_put(buf, NBD_MAGIC_SIMPLE_REPLY);
    be32_put(buf + 4, error);
    be64_put(buf + 8, cookie);
    return NBD_SIMPLE_REPLY_LEN;
}

static void
chunk_header(uint8_t *buf, uint16_t flags, uint16_t type, uint64_t cookie, uint32_t length)
{
    be32_put(buf, NBD_MAGIC_STRUCT_REPLY);
    be16_put(buf + 4, flags);
    be16_put(buf + 6, type);
    be64_put(buf + 8, cookie);
    be32_put(buf + 16, length);
}

int
nbd_chunk_header_encode(uint8_t *buf, size_t cap, uint16_t flags, uint16_t type, uint64_t cookie,
                        uint32_t length)
{
    if (cap < NBD_CHUNK_HEADER_LEN)
        return ERR(-ENOSPC);
    chunk_header(buf, flags, type, cookie, length);
    return NBD_CHUNK_HEADER_LEN;
}

int
nbd_chunk_none_encode(uint8_t *buf, size_t cap, uint64_t cookie)
{
    return nbd_chunk_header_encode(buf, cap, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, cookie, 0);
}

int
nbd_chunk_offset_data_encode(uint8_t *buf, size_t cap, uint16_t flags, uint64_t cookie,
                             uint64_t offset, uint32_t data_len)
{
    if (data_len == 0)
        return ERR(-EINVAL);
    if (data_len > UINT32_MAX - 8)
        return ERR(-EOVERFLOW);
    if (cap < NBD_CHUNK_HEADER_LEN + 8)
        return ERR(-ENOSPC);
    chunk_header(buf, flags, NBD_REPLY_TYPE_OFFSET_DATA, cookie, data_len + 8);
    be64_put(buf + 20, offset);
    return NBD_CHUNK_HEADER_LEN + 8;
}

int
nbd_chunk_offset_hole_encode(uint8_t *buf, size_t cap, uint16_t flags, uint64_t cookie,
                             uint64_t offset, uint32_t hole_len)
{
    if (hole_len == 0)
        return ERR(-EINVAL);
    if (cap < NBD_CHUNK_HEADER_LEN + 12)
        return ERR(-ENOSPC);
    chunk_header(buf, flags, NBD_REPLY_TYPE_OFFSET_HOLE, cookie, 12);
    be64_put(buf + 20, offset);
    be32_put(buf + 28, hole_len);
    return NBD_CHUNK_HEADER_LEN + 12;
}

/* ERROR and ERROR_OFFSET share the prefix: u32 error, u16 message length, message. */
static int
chunk_error(uint8_t *buf, size_t cap, uint16_t flags, uint16_t type, uint64_t cookie,
            uint32_t error, const char *msg, size_t msg_len, const uint64_t *offset)
{
    if (error == 0)
        return ERR(-EINVAL);
    if (msg_len > NBD_MAX_STRING)
        return ERR(-EOVERFLOW);
    size_t payload = 6 + msg_len + (offset != NULL ? 8 : 0);
    if (cap < NBD_CHUNK_HEADER_LEN + payload)
        return ERR(-ENOSPC);
    chunk_header(buf, flags, type, cookie, (uint32_t)payload);
    be32_put(buf + 20, error);
    be16_put(buf + 24, (uint16_t)msg_len);
    if (msg_len > 0)
        memcpy(buf + 26, msg, msg_len);
    if (offset != NULL)
        be64_put(buf + 26 + msg_len, *offset);
    return (int)(NBD_CHUNK_HEADER_LEN + payload);
}

int
nbd_chunk_error_encode(uint8_t *buf, size_t cap, uint16_t flags, uint64_t cookie, uint32_t error,
                       const char *msg, size_t msg_len)
{
    return chunk_error(buf, cap, flags, NBD_REPLY_TYPE_ERROR, cookie, error, msg, msg_len, NULL);
}

int
nbd_chunk_error_offset_encode(uint8_t *buf, size_t cap, uint16_t flags, uint64_t cookie,
                              uint32_t error, const char *msg, size_t msg_len, uint64_t offset)
{
    return chunk_error(buf, cap, flags, NBD_REPLY_TYPE_ERROR_OFFSET, cookie, error, msg, msg_len,
                       &offset);
}

/* ---- BLOCK_STATUS builder ------------------------------------------------------------------ */

#define BS_FIRST_DESC (NBD_CHUNK_HEADER_LEN + 4) /* descriptors start after the context id */

static size_t
bs_used(const struct nbd_bs_builder *b)
{
    return BS_FIRST_DESC + (size_t)b->n_desc * NBD_BS_DESC_LEN;
}

int
nbd_bs_begin(struct nbd_bs_builder *b, uint8_t *buf, size_t cap, uint64_t cookie,
             uint32_t context_id, uint32_t req_len, bool req_one, uint32_t max_desc)
{
    if (req_len == 0)
        return ERR(-EINVAL);
    if (cap < BS_FIRST_DESC + NBD_BS_DESC_LEN)
        return ERR(-ENOSPC);
    /* The chunk length is a u32 and the finish result an int: bound the descriptors. */
    size_t fit = (cap - BS_FIRST_DESC) / NBD_BS_DESC_LEN;
    const size_t wire_max = ((size_t)INT32_MAX - BS_FIRST_DESC) / NBD_BS_DESC_LEN;
    if (fit > wire_max)
        fit = wire_max;
    if (max_desc == 0 || max_desc > fit)
        max_desc = (uint32_t)fit;
    if (req_one)
        max_desc = 1;
    *b = (struct nbd_bs_builder){ .buf = buf,
                                  .cap = cap,
                                  .cookie = cookie,
                                  .req_len = req_len,
                                  .max_desc = max_desc,
                                  .req_one = req_one };
    be32_put(buf + NBD_CHUNK_HEADER_LEN, context_id);
    return 0;
}

int
nbd_bs_add(struct nbd_bs_builder *b, uint64_t length, uint32_t status)
{
    if (length == 0)
        return ERR(-EINVAL);
    if (b->full)
        return ERR(-ENOSPC);
    ASSERT3U(b->covered, <, b->req_len);
    uint32_t room = b->req_len - b->covered;
    uint32_t len = length < room ? (uint32_t)length : room;

    uint8_t *last = b->buf + bs_used(b) - NBD_BS_DESC_LEN;
    if (b->n_desc > 0 && be32_get(last + 4) == status) {
        /* Same status as the previous extent: extend it (SHOULD use different statuses
         * between consecutive descriptors). Cannot overflow: the sum stays <= req_len. */
        be32_put(last, be32_get(last) + len);
    } else {
        uint8_t *d = b->buf + bs_used(b);
        be32_put(d, len);
        be32_put(d + 4, status);
        b->n_desc++;
    }
    b->covered += len;
    if (b->covered == b->req_len || b->n_desc >= b->max_desc)
        b->full = true;
    return b->full ? 1 : 0;
}

int
nbd_bs_finish(struct nbd_bs_builder *b, uint16_t flags)
{
    if (b->n_desc == 0)
        return ERR(-EINVAL);
    size_t total = bs_used(b);
    ASSERT3U(total, <=, b->cap);
    chunk_header(b->buf, flags, NBD_REPLY_TYPE_BLOCK_STATUS, b->cookie,
                 (uint32_t)(total - NBD_CHUNK_HEADER_LEN));
    return (int)total;
}

/* ---- names for logs ------------------------------------------------------------------------ */

const char *
nbd_cmd_name(uint16_t type)
{
    switch (type) {
    case NBD_CMD_READ:
        return "READ";
    case NBD_CMD_WRITE:
        return "WRITE";
    case NBD_CMD_DISC:
        return "DISC";
    case NBD_CMD_FLUSH:
        return "FLUSH";
    case NBD_CMD_TRIM:
        return "TRIM";
    case NBD_CMD_CACHE:
        return "CACHE";
    case NBD_CMD_WRITE_ZEROES:
        return "WRITE_ZEROES";
    case NBD_CMD_BLOCK_STATUS:
        return "BLOCK_STATUS";
    default:
        return "unknown-command";
    }
}

const char *
nbd_wire_err_name(uint32_t err)
{
    switch (err) {
    case 0:
        return "OK";
    case NBD_EPERM:
        return "EPERM";
    case NBD_EIO:
        return "EIO";
    case NBD_ENOMEM:
        return "ENOMEM";
    case NBD_EINVAL:
        return "EINVAL";
    case NBD_ENOSPC:
        return "ENOSPC";
    case NBD_EOVERFLOW:
        return "EOVERFLOW";
    case NBD_ENOTSUP:
        return "ENOTSUP";
    case NBD_ESHUTDOWN:
        return "ESHUTDOWN";
    default:
        return "unknown-error";
    }
}
