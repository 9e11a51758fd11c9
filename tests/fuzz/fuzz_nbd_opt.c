/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the NBD handshake decoders (proto/nbd.h). Input: a 4-byte big-endian
 * option code, then the option payload. The payload is copied into a heap buffer of exactly its
 * size, so ASan catches a read one byte past it. The raw input is also fed to the client-flags
 * and option-header decoders.
 *
 * Properties (any violation aborts):
 *  - decoders return only their documented codes, and every error maps to a reply type
 *    (or to "no reply" only for -EPROTO/-EAGAIN);
 *  - borrowed strings lie inside the payload and hold no NUL;
 *  - the payload formats are canonical, so a decoded INFO/GO or META_CONTEXT re-encodes to the
 *    input byte for byte (EXPORT_NAME: the name is the payload);
 *  - every decoded query classifies, and a classified leaf lies inside its query;
 *  - reply encoders fed the decoded strings produce exactly the documented lengths.
 */
#include <errno.h>
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

static void
check_str(const struct nbd_str *s, const uint8_t *p, size_t len)
{
    CHECK(s->ptr != NULL);
    CHECK((const uint8_t *)s->ptr >= p && (const uint8_t *)s->ptr + s->len <= p + len);
    CHECK(s->len <= NBD_MAX_STRING);
    CHECK(s->len == 0 || memchr(s->ptr, 0, s->len) == NULL);
}

static size_t
put_str(uint8_t *out, const struct nbd_str *s)
{
    be32_put(out, s->len);
    if (s->len > 0)
        memcpy(out + 4, s->ptr, s->len);
    return 4 + (size_t)s->len;
}

static void
check_meta(const struct nbd_opt_meta *m, const uint8_t *p, size_t len)
{
    check_str(&m->name, p, len);
    CHECK(m->n_queries <= NBD_META_MAX_QUERIES);
    uint8_t *again = malloc(len > 0 ? len : 1);
    CHECK(again != NULL);
    size_t o = put_str(again, &m->name);
    be32_put(again + o, m->n_queries);
    o += 4;
    for (uint32_t i = 0; i < m->n_queries; i++) {
        const struct nbd_str *q = &m->queries[i];
        check_str(q, p, len);
        CHECK(o + 4 + q->len <= len);
        o += put_str(again + o, q);
        struct nbd_str leaf;
        enum nbd_meta_kind k = nbd_meta_classify(q->ptr, q->len, &leaf);
        CHECK(k <= NBD_META_QEMU_OTHER);
        CHECK(leaf.ptr >= q->ptr && leaf.ptr + leaf.len <= q->ptr + q->len);
        if (k == NBD_META_QEMU_DIRTY_BITMAP)
            CHECK(leaf.len > 0);
        static uint8_t rep[NBD_REP_HEADER_LEN + 4 + NBD_MAX_STRING];
        CHECK(nbd_rep_meta_context_encode(rep, sizeof(rep), NBD_OPT_LIST_META_CONTEXT, 0, q->ptr,
                                          q->len) == (int)(24 + q->len));
        CHECK(be32_get(rep + 16) == 4 + q->len);
    }
    CHECK(o == len);
    CHECK(memcmp(again, p, len) == 0);
    free(again);
}

static void
check_info(const struct nbd_opt_info *in, const uint8_t *p, size_t len)
{
    check_str(&in->name, p, len);
    CHECK(6 + (size_t)in->name.len + 2 * (size_t)in->n_info == len);
    CHECK(be32_get(p) == in->name.len);
    CHECK((const uint8_t *)in->name.ptr == p + 4);
    uint32_t mask = 0;
    const uint8_t *list = p + 6 + in->name.len;
    CHECK(((list[-2] << 8) | list[-1]) == in->n_info);
    for (uint16_t i = 0; i < in->n_info; i++) {
        uint16_t t = (uint16_t)((list[2 * i] << 8) | list[2 * i + 1]);
        if (t < 32)
            mask |= 1u << t;
    }
    CHECK(mask == in->info_mask);
    static uint8_t rep[NBD_REP_HEADER_LEN + 2 + NBD_MAX_STRING];
    CHECK(nbd_rep_info_name_encode(rep, sizeof(rep), NBD_OPT_GO, in->name.ptr, in->name.len) ==
          (int)(22 + in->name.len));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t cflags;
    int rc = nbd_client_flags_decode(data, size, &cflags);
    CHECK(rc == 0 || rc == -EAGAIN || rc == -EPROTO);
    struct nbd_opt_header h;
    rc = nbd_opt_header_decode(data, size, size > 20 ? (uint32_t)data[20] << 8 : 4096, &h);
    CHECK(rc == 0 || rc == -EAGAIN || rc == -EPROTO || rc == -E2BIG);

    if (size < 4)
        return 0;
    uint32_t opt = be32_get(data);
    size_t len = size - 4;
    uint8_t *p = malloc(len > 0 ? len : 1);
    CHECK(p != NULL);
    memcpy(p, data + 4, len);

    static struct nbd_opt o;
    rc = nbd_opt_decode(opt, p, len, &o);
    CHECK(rc == 0 || rc == -EBADMSG || rc == -ENAMETOOLONG || rc == -E2BIG || rc == -ENOTSUP);
    CHECK(o.opt == opt);
    if (rc != 0) {
        uint32_t rep = nbd_opt_rep_for_error(rc);
        CHECK((rep & NBD_REP_FLAG_ERROR) != 0);
        uint8_t buf[64];
        CHECK(nbd_rep_error_encode(buf, sizeof(buf), opt, rep, "x", 1) == 21);
    } else {
        switch (opt) {
        case NBD_OPT_EXPORT_NAME:
            check_str(&o.u.export_name, p, len);
            CHECK(o.u.export_name.len == len && (const uint8_t *)o.u.export_name.ptr == p);
            break;
        case NBD_OPT_INFO:
        case NBD_OPT_GO:
            check_info(&o.u.info, p, len);
            break;
        case NBD_OPT_LIST_META_CONTEXT:
        case NBD_OPT_SET_META_CONTEXT:
            check_meta(&o.u.meta, p, len);
            break;
        case NBD_OPT_ABORT:
            break;
        case NBD_OPT_LIST:
        case NBD_OPT_STARTTLS:
        case NBD_OPT_STRUCTURED_REPLY:
            CHECK(len == 0);
            break;
        default:
            abort(); /* any other option must have been refused */
        }
    }

    /* The whole payload as a context name, too. */
    struct nbd_str leaf;
    enum nbd_meta_kind k = nbd_meta_classify((const char *)p, len, &leaf);
    CHECK(k <= NBD_META_QEMU_OTHER);
    CHECK((const uint8_t *)leaf.ptr >= p && (const uint8_t *)leaf.ptr + leaf.len <= p + len);
    free(p);
    return 0;
}
