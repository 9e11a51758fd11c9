/* SPDX-License-Identifier: MIT */
/*
 * nbd_opt: the handshake half of the NBD codec — greeting, client flags, option headers, option
 * payload decoders, option reply encoders and metadata context names (see nbd.h for the
 * conventions and the error table).
 *
 * Every decoder walks the payload with a bounded cursor (struct rd): each read checks the bytes
 * left first, so no input can make it read past len, and a length field is compared with the
 * bytes left before it is used, so no arithmetic on wire values can overflow.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "common/endian.h"
#include "common/err.h"
#include "proto/nbd.h"

_Static_assert(NBD_GREETING_LEN == 8 + 8 + 2, "greeting layout");
_Static_assert(NBD_OPT_HEADER_LEN == 8 + 4 + 4, "option header layout");
_Static_assert(NBD_REP_HEADER_LEN == 8 + 4 + 4 + 4, "option reply header layout");
_Static_assert(NBD_EXPORT_NAME_REPLY_LEN == NBD_EXPORT_NAME_REPLY_SHORT_LEN + 124, "zeroes");
_Static_assert(NBD_REP_ERR_TOO_BIG == 0x80000009u, "proto.md: 2^31 + 9");
_Static_assert(NBD_META_MAX_QUERIES * sizeof(struct nbd_str) <= 4096, "nbd_opt stays small");

/* ---- handshake ----------------------------------------------------------------------------- */

int
nbd_greeting_encode(uint8_t *buf, size_t cap)
{
    if (cap < NBD_GREETING_LEN)
        return ERR(-ENOSPC);
    be64_put(buf, NBD_MAGIC_NBDMAGIC);
    be64_put(buf + 8, NBD_MAGIC_IHAVEOPT);
    be16_put(buf + 16, NBD_HFLAGS_SERVER);
    return NBD_GREETING_LEN;
}

int
nbd_client_flags_decode(const uint8_t *buf, size_t len, uint32_t *cflags)
{
    if (len < NBD_CLIENT_FLAGS_LEN)
        return -EAGAIN;
    uint32_t f = be32_get(buf);
    /* proto.md "Client flags": drop on an unknown flag or one the server did not advertise; we
     * advertise both known handshake flags, so only unknown bits can fail. */
    if ((f & ~(uint32_t)NBD_CFLAGS_KNOWN) != 0)
        return ERR(-EPROTO);
    *cflags = f;
    return 0;
}

int
nbd_opt_header_decode(const uint8_t *buf, size_t len, uint32_t max_len, struct nbd_opt_header *hdr)
{
    if (len < NBD_OPT_HEADER_LEN)
        return -EAGAIN;
    if (be64_get(buf) != NBD_MAGIC_IHAVEOPT)
        return ERR(-EPROTO);
    hdr->opt = be32_get(buf + 8);
    hdr->len = be32_get(buf + 12);
    if (hdr->len > max_len)
        return ERR(-E2BIG);
    return 0;
}

int
nbd_opt_header_encode(uint8_t *buf, size_t cap, uint32_t opt, uint32_t len)
{
    if (cap < NBD_OPT_HEADER_LEN)
        return ERR(-ENOSPC);
    be64_put(buf, NBD_MAGIC_IHAVEOPT);
    be32_put(buf + 8, opt);
    be32_put(buf + 12, len);
    return NBD_OPT_HEADER_LEN;
}

/* ---- option payload decoders --------------------------------------------------------------- */

/* A read cursor over [p, p + left). */
struct rd {
    const uint8_t *p;
    size_t left;
};

static int
rd_u16(struct rd *r, uint16_t *v)
{
    if (r->left < 2)
        return -EBADMSG;
    *v = be16_get(r->p);
    r->p += 2;
    r->left -= 2;
    return 0;
}

static int
rd_u32(struct rd *r, uint32_t *v)
{
    if (r->left < 4)
        return -EBADMSG;
    *v = be32_get(r->p);
    r->p += 4;
    r->left -= 4;
    return 0;
}

/* Take n bytes as a string: -EBADMSG if fewer are left or they hold a NUL, -ENAMETOOLONG if
 * n > NBD_MAX_STRING (checked after the bounds, so a short buffer is always "malformed"). */
static int
rd_str(struct rd *r, uint32_t n, struct nbd_str *s)
{
    if (n > r->left)
        return -EBADMSG;
    if (n > NBD_MAX_STRING)
        return -ENAMETOOLONG;
    if (memchr(r->p, 0, n) != NULL)
        return -EBADMSG;
    s->ptr = (const char *)r->p;
    s->len = n;
    r->p += n;
    r->left -= n;
    return 0;
}

int
nbd_opt_export_name_decode(const uint8_t *p, size_t len, struct nbd_str *name)
{
    struct rd r = { p, len };
    if (len > UINT32_MAX)
        return ERR(-ENAMETOOLONG);
    int rc = rd_str(&r, (uint32_t)len, name);
    return rc == 0 ? 0 : ERR(rc);
}

int
nbd_opt_info_decode(const uint8_t *p, size_t len, struct nbd_opt_info *out)
{
    struct rd r = { p, len };
    uint32_t name_len;
    uint16_t count;

    memset(out, 0, sizeof(*out));
    /* proto.md NBD_OPT_INFO: name length MUST be no larger than the data length - 6. */
    if (len < 6)
        return ERR(-EBADMSG);
    if (rd_u32(&r, &name_len) != 0 || name_len > len - 6)
        return ERR(-EBADMSG);
    int rc = rd_str(&r, name_len, &out->name);
    if (rc == -ENAMETOOLONG) {
        /* Check the rest first: a structural error wins over the size limit. */
        r.p += name_len;
        r.left -= name_len;
    } else if (rc != 0) {
        return ERR(rc);
    }
    if (rd_u16(&r, &count) != 0 || r.left != 2 * (size_t)count)
        return ERR(-EBADMSG);
    if (rc != 0) {
        out->name = (struct nbd_str){ (const char *)p, 0 };
        return ERR(rc);
    }
    out->n_info = count;
    for (uint16_t i = 0; i < count; i++) {
        uint16_t t;
        if (rd_u16(&r, &t) != 0)
            return ERR(-EBADMSG); /* unreachable: r.left was checked */
        if (t < 32)
            out->info_mask |= 1u << t;
    }
    return 0;
}

int
nbd_opt_meta_decode(const uint8_t *p, size_t len, struct nbd_opt_meta *out)
{
    struct rd r = { p, len };
    uint32_t name_len, count;
    int rc, limit_rc = 0;

    out->name = (struct nbd_str){ (const char *)p, 0 };
    out->n_queries = 0;
    if (rd_u32(&r, &name_len) != 0)
        return ERR(-EBADMSG);
    rc = rd_str(&r, name_len, &out->name);
    if (rc == -ENAMETOOLONG) {
        /* Keep walking: a structural error later still wins over the size limit. */
        limit_rc = rc;
        r.p += name_len;
        r.left -= name_len;
    } else if (rc != 0) {
        return ERR(rc);
    }
    if (rd_u32(&r, &count) != 0)
        return ERR(-EBADMSG);
    /* Each query needs at least its 4-byte length: a larger count cannot be honest. */
    if (count > r.left / 4)
        return ERR(-EBADMSG);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t qlen;
        struct nbd_str q;
        if (rd_u32(&r, &qlen) != 0)
            return ERR(-EBADMSG);
        rc = rd_str(&r, qlen, &q);
        if (rc == -ENAMETOOLONG) {
            if (limit_rc == 0)
                limit_rc = rc;
            r.p += qlen;
            r.left -= qlen;
            continue;
        }
        if (rc != 0)
            return ERR(rc);
        if (i < NBD_META_MAX_QUERIES)
            out->queries[i] = q;
    }
    if (r.left != 0)
        return ERR(-EBADMSG);
    if (limit_rc != 0)
        return ERR(limit_rc);
    if (count > NBD_META_MAX_QUERIES)
        return ERR(-E2BIG);
    out->n_queries = count;
    return 0;
}

int
nbd_opt_empty_decode(uint32_t opt, size_t len)
{
    switch (opt) {
    case NBD_OPT_ABORT:
        return 0; /* proto.md: the server SHOULD ignore data sent with NBD_OPT_ABORT */
    case NBD_OPT_LIST:
    case NBD_OPT_STARTTLS:
    case NBD_OPT_STRUCTURED_REPLY:
        return len == 0 ? 0 : ERR(-EBADMSG);
    default:
        return ERR(-EINVAL);
    }
}

int
nbd_opt_decode(uint32_t opt, const uint8_t *p, size_t len, struct nbd_opt *out)
{
    out->opt = opt;
    switch (opt) {
    case NBD_OPT_EXPORT_NAME:
        return nbd_opt_export_name_decode(p, len, &out->u.export_name);
    case NBD_OPT_ABORT:
    case NBD_OPT_LIST:
    case NBD_OPT_STARTTLS:
    case NBD_OPT_STRUCTURED_REPLY:
        return nbd_opt_empty_decode(opt, len);
    case NBD_OPT_INFO:
    case NBD_OPT_GO:
        return nbd_opt_info_decode(p, len, &out->u.info);
    case NBD_OPT_LIST_META_CONTEXT:
    case NBD_OPT_SET_META_CONTEXT:
        return nbd_opt_meta_decode(p, len, &out->u.meta);
    default:
        return -ENOTSUP; /* unknown, withdrawn PEEK_EXPORT, or EXTENDED_HEADERS */
    }
}

uint32_t
nbd_opt_rep_for_error(int rc)
{
    switch (rc) {
    case -EBADMSG:
        return NBD_REP_ERR_INVALID;
    case -ENAMETOOLONG:
    case -E2BIG:
        return NBD_REP_ERR_TOO_BIG;
    case -ENOTSUP:
        return NBD_REP_ERR_UNSUP;
    case -EPROTO:
    case -EAGAIN:
        return 0;
    default:
        return NBD_REP_ERR_INVALID;
    }
}

/* ---- option replies ------------------------------------------------------------------------ */

/* Write the 20-byte header; the caller has checked cap. */
static void
rep_header(uint8_t *buf, uint32_t opt, uint32_t type, uint32_t len)
{
    be64_put(buf, NBD_MAGIC_OPT_REPLY);
    be32_put(buf + 8, opt);
    be32_put(buf + 12, type);
    be32_put(buf + 16, len);
}

/* Check that a reply with payload_len bytes fits both the wire (u32 length, int return) and
 * cap. Returns the total length or a negative errno. */
static int
rep_size(size_t cap, size_t payload_len)
{
    if (payload_len > (size_t)INT32_MAX - NBD_REP_HEADER_LEN)
        return ERR(-EOVERFLOW);
    size_t total = NBD_REP_HEADER_LEN + payload_len;
    if (cap < total)
        return ERR(-ENOSPC);
    return (int)total;
}

static void
put_bytes(uint8_t *dst, const char *src, size_t n)
{
    if (n > 0)
        memcpy(dst, src, n);
}

int
nbd_rep_header_encode(uint8_t *buf, size_t cap, uint32_t opt, uint32_t type, uint32_t len)
{
    if (cap < NBD_REP_HEADER_LEN)
        return ERR(-ENOSPC);
    rep_header(buf, opt, type, len);
    return NBD_REP_HEADER_LEN;
}

int
nbd_rep_ack_encode(uint8_t *buf, size_t cap, uint32_t opt)
{
    return nbd_rep_header_encode(buf, cap, opt, NBD_REP_ACK, 0);
}

int
nbd_rep_server_encode(uint8_t *buf, size_t cap, uint32_t opt, const char *name, size_t name_len,
                      const char *desc, size_t desc_len)
{
    if (name_len > NBD_MAX_STRING || desc_len > NBD_MAX_STRING)
        return ERR(-EOVERFLOW);
    int total = rep_size(cap, 4 + name_len + desc_len);
    if (total < 0)
        return total;
    rep_header(buf, opt, NBD_REP_SERVER, (uint32_t)(4 + name_len + desc_len));
    be32_put(buf + 20, (uint32_t)name_len);
    put_bytes(buf + 24, name, name_len);
    put_bytes(buf + 24 + name_len, desc, desc_len);
    return total;
}

int
nbd_rep_info_export_encode(uint8_t *buf, size_t cap, uint32_t opt, uint64_t size, uint16_t tflags)
{
    if ((tflags & NBD_FLAG_HAS_FLAGS) == 0)
        return ERR(-EINVAL);
    int total = rep_size(cap, 12);
    if (total < 0)
        return total;
    rep_header(buf, opt, NBD_REP_INFO, 12);
    be16_put(buf + 20, NBD_INFO_EXPORT);
    be64_put(buf + 22, size);
    be16_put(buf + 30, tflags);
    return total;
}

static int
rep_info_string(uint8_t *buf, size_t cap, uint32_t opt, uint16_t info, const char *s, size_t len)
{
    if (len > NBD_MAX_STRING)
        return ERR(-EOVERFLOW);
    int total = rep_size(cap, 2 + len);
    if (total < 0)
        return total;
    rep_header(buf, opt, NBD_REP_INFO, (uint32_t)(2 + len));
    be16_put(buf + 20, info);
    put_bytes(buf + 22, s, len);
    return total;
}

int
nbd_rep_info_name_encode(uint8_t *buf, size_t cap, uint32_t opt, const char *name, size_t len)
{
    return rep_info_string(buf, cap, opt, NBD_INFO_NAME, name, len);
}

int
nbd_rep_info_description_encode(uint8_t *buf, size_t cap, uint32_t opt, const char *desc,
                                size_t len)
{
    return rep_info_string(buf, cap, opt, NBD_INFO_DESCRIPTION, desc, len);
}

static bool
is_pow2(uint32_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

int
nbd_rep_info_block_size_encode(uint8_t *buf, size_t cap, uint32_t opt, uint32_t min_block,
                               uint32_t pref_block, uint32_t max_block)
{
    /* proto.md "Block size constraints". */
    uint32_t pref_floor = min_block > 512 ? min_block : 512;
    if (!is_pow2(min_block) || min_block > 65536)
        return ERR(-EINVAL);
    if (!is_pow2(pref_block) || pref_block < pref_floor)
        return ERR(-EINVAL);
    if (max_block != UINT32_MAX && max_block % min_block != 0)
        return ERR(-EINVAL);
    if (max_block == 0)
        return ERR(-EINVAL);
    int total = rep_size(cap, 14);
    if (total < 0)
        return total;
    rep_header(buf, opt, NBD_REP_INFO, 14);
    be16_put(buf + 20, NBD_INFO_BLOCK_SIZE);
    be32_put(buf + 22, min_block);
    be32_put(buf + 26, pref_block);
    be32_put(buf + 30, max_block);
    return total;
}

int
nbd_rep_meta_context_encode(uint8_t *buf, size_t cap, uint32_t opt, uint32_t id, const char *name,
                            size_t len)
{
    if (len > NBD_MAX_STRING)
        return ERR(-EOVERFLOW);
    int total = rep_size(cap, 4 + len);
    if (total < 0)
        return total;
    rep_header(buf, opt, NBD_REP_META_CONTEXT, (uint32_t)(4 + len));
    be32_put(buf + 20, id);
    put_bytes(buf + 24, name, len);
    return total;
}

int
nbd_rep_error_encode(uint8_t *buf, size_t cap, uint32_t opt, uint32_t type, const char *msg,
                     size_t msg_len)
{
    if ((type & NBD_REP_FLAG_ERROR) == 0)
        return ERR(-EINVAL);
    if (msg_len > NBD_MAX_STRING)
        return ERR(-EOVERFLOW);
    int total = rep_size(cap, msg_len);
    if (total < 0)
        return total;
    rep_header(buf, opt, type, (uint32_t)msg_len);
    put_bytes(buf + 20, msg, msg_len);
    return total;
}

int
nbd_export_name_reply_encode(uint8_t *buf, size_t cap, uint64_t size, uint16_t tflags,
                             bool no_zeroes)
{
    size_t total = no_zeroes ? NBD_EXPORT_NAME_REPLY_SHORT_LEN : NBD_EXPORT_NAME_REPLY_LEN;
    if ((tflags & NBD_FLAG_HAS_FLAGS) == 0)
        return ERR(-EINVAL);
    if (cap < total)
        return ERR(-ENOSPC);
    be64_put(buf, size);
    be16_put(buf + 8, tflags);
    if (!no_zeroes)
        memset(buf + NBD_EXPORT_NAME_REPLY_SHORT_LEN, 0, 124);
    return (int)total;
}

/* ---- metadata context names ---------------------------------------------------------------- */

static bool
str_is(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(s, lit, n) == 0;
}

enum nbd_meta_kind
nbd_meta_classify(const char *q, size_t len, struct nbd_str *leaf)
{
    struct nbd_str dummy;
    if (leaf == NULL)
        leaf = &dummy;
    *leaf = (struct nbd_str){ q, 0 };
    if (len == 0 || len > NBD_MAX_STRING || memchr(q, 0, len) != NULL)
        return NBD_META_INVALID;
    const char *colon = memchr(q, ':', len);
    if (colon == NULL || colon == q)
        return NBD_META_INVALID;
    size_t ns_len = (size_t)(colon - q);
    /* proto.md: the namespace is printable non-whitespace (UTF-8 bytes >= 0x80 allowed). */
    for (size_t i = 0; i < ns_len; i++) {
        unsigned char c = (unsigned char)q[i];
        if (c <= 0x20 || c == 0x7f)
            return NBD_META_INVALID;
    }
    const char *l = colon + 1;
    size_t l_len = len - ns_len - 1;
    *leaf = (struct nbd_str){ l, (uint32_t)l_len };

    if (str_is(q, ns_len, "base")) {
        if (l_len == 0)
            return NBD_META_BASE_ALL;
        if (str_is(l, l_len, "allocation"))
            return NBD_META_BASE_ALLOCATION;
        return NBD_META_BASE_OTHER;
    }
    if (str_is(q, ns_len, "qemu")) {
        static const char dirty[] = "dirty-bitmap:";
        const size_t dlen = sizeof(dirty) - 1;
        if (l_len == 0)
            return NBD_META_QEMU_ALL;
        if (str_is(l, l_len, "allocation-depth"))
            return NBD_META_QEMU_ALLOCATION_DEPTH;
        if (l_len >= dlen && memcmp(l, dirty, dlen) == 0) {
            *leaf = (struct nbd_str){ l + dlen, (uint32_t)(l_len - dlen) };
            return l_len == dlen ? NBD_META_QEMU_DIRTY_ALL : NBD_META_QEMU_DIRTY_BITMAP;
        }
        return NBD_META_QEMU_OTHER;
    }
    return NBD_META_OTHER_NS;
}

/* ---- names for logs ------------------------------------------------------------------------ */

const char *
nbd_opt_name(uint32_t opt)
{
    switch (opt) {
    case NBD_OPT_EXPORT_NAME:
        return "EXPORT_NAME";
    case NBD_OPT_ABORT:
        return "ABORT";
    case NBD_OPT_LIST:
        return "LIST";
    case 4:
        return "PEEK_EXPORT";
    case NBD_OPT_STARTTLS:
        return "STARTTLS";
    case NBD_OPT_INFO:
        return "INFO";
    case NBD_OPT_GO:
        return "GO";
    case NBD_OPT_STRUCTURED_REPLY:
        return "STRUCTURED_REPLY";
    case NBD_OPT_LIST_META_CONTEXT:
        return "LIST_META_CONTEXT";
    case NBD_OPT_SET_META_CONTEXT:
        return "SET_META_CONTEXT";
    case NBD_OPT_EXTENDED_HEADERS:
        return "EXTENDED_HEADERS";
    default:
        return "unknown-option";
    }
}

const char *
nbd_rep_name(uint32_t type)
{
    switch (type) {
    case NBD_REP_ACK:
        return "ACK";
    case NBD_REP_SERVER:
        return "SERVER";
    case NBD_REP_INFO:
        return "INFO";
    case NBD_REP_META_CONTEXT:
        return "META_CONTEXT";
    case NBD_REP_ERR_UNSUP:
        return "ERR_UNSUP";
    case NBD_REP_ERR_POLICY:
        return "ERR_POLICY";
    case NBD_REP_ERR_INVALID:
        return "ERR_INVALID";
    case NBD_REP_ERR_PLATFORM:
        return "ERR_PLATFORM";
    case NBD_REP_ERR_TLS_REQD:
        return "ERR_TLS_REQD";
    case NBD_REP_ERR_UNKNOWN:
        return "ERR_UNKNOWN";
    case NBD_REP_ERR_SHUTDOWN:
        return "ERR_SHUTDOWN";
    case NBD_REP_ERR_BLOCK_SIZE_REQD:
        return "ERR_BLOCK_SIZE_REQD";
    case NBD_REP_ERR_TOO_BIG:
        return "ERR_TOO_BIG";
    default:
        return (type & NBD_REP_FLAG_ERROR) ? "unknown-error-reply" : "unknown-reply";
    }
}
