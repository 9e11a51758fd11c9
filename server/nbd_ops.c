/* SPDX-License-Identifier: MIT */
/*
 * nbd_ops: the work behind NBD options and commands, on worker threads (nbd_session.h
 * invariant 1): resolve exports, open volumes, negotiate metadata contexts, and execute reads,
 * writes, flushes, trims, zeroes and block-status queries. Each job leaves its reply bytes (or a
 * wire error) for the loop thread to send.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "core/dsl.h"
#include "core/objset.h"
#include "core/zvol.h"
#include "server/nbd_session.h"
#include "server/srv.h"

#define BS_MAX_DESC 8192u /* descriptors per block-status chunk */

uint8_t *
rbuf_reserve(struct rbuf *b, size_t n)
{
    if (b->err != 0)
        return NULL;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (np == NULL) {
            b->err = -ENOMEM;
            return NULL;
        }
        b->p = np;
        b->cap = cap;
    }
    return b->p + b->len;
}

void
rbuf_commit(struct rbuf *b, size_t n)
{
    b->len += n;
}

/* Appends one encoded message: enc is called with (buf, cap) and returns its length. */
#define RBUF_PUT(b, maxlen, call)                    \
    do {                                             \
        uint8_t *buf_ = rbuf_reserve((b), (maxlen)); \
        if (buf_ != NULL) {                          \
            size_t cap = (maxlen);                   \
            uint8_t *buf = buf_;                     \
            int n_ = (call);                         \
            if (n_ > 0)                              \
                rbuf_commit((b), (size_t)n_);        \
            else                                     \
                (b)->err = n_ < 0 ? n_ : -EINVAL;    \
        }                                            \
    } while (0)

static void
rep_error(struct rbuf *b, uint32_t opt, uint32_t type, const char *msg)
{
    size_t len = strlen(msg);
    RBUF_PUT(b, NBD_REP_HEADER_LEN + len, nbd_rep_error_encode(buf, cap, opt, type, msg, len));
}

static void
rep_ack(struct rbuf *b, uint32_t opt)
{
    RBUF_PUT(b, NBD_REP_HEADER_LEN, nbd_rep_ack_encode(buf, cap, opt));
}

uint16_t
nbd_tflags(const struct nbd_session *s, bool readonly)
{
    uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
                 NBD_FLAG_CAN_MULTI_CONN | NBD_FLAG_SEND_CACHE;
    if (readonly)
        f |= NBD_FLAG_READ_ONLY;
    else
        f |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO;
    if (s->structured)
        f |= NBD_FLAG_SEND_DF;
    return f;
}

/* ---- options ------------------------------------------------------------------------------- */

static int
list_one(void *arg, const struct export_info *e)
{
    struct rbuf *b = arg;
    size_t nl = strlen(e->name), dl = strlen(e->description);
    RBUF_PUT(b, NBD_REP_HEADER_LEN + 4 + nl + dl,
             nbd_rep_server_encode(buf, cap, NBD_OPT_LIST, e->name, nl, e->description, dl));
    return b->err;
}

/* Opens the export for GO/INFO/EXPORT_NAME. Fills s->ex; with keep, also s->zv and s->sp. */
static int
open_export(struct nbd_session *s, const struct nbd_str *name, bool keep, uint64_t *size,
            uint32_t *blksz, struct err_msg *em)
{
    char nm[DSL_NAME_MAX + 1];
    if (name->len > DSL_NAME_MAX)
        return err_msg_set(em, -ENOENT, "export name too long");
    memcpy(nm, name->ptr, name->len);
    nm[name->len] = 0;
    struct export_info ex;
    int rc = exports_resolve(s->srv, nm, &ex, em);
    if (rc != 0)
        return rc;
    if (ex.tls == CONFIG_TLS_REQUIRE && !s->tls_active)
        return err_msg_set(em, -EACCES, "export '%s' requires TLS", nm);
    struct srv_pool *sp = srv_pool_pin(s->srv, ex.volume, em);
    if (sp == NULL)
        return -ENOENT;
    struct zvol *zv = NULL;
    rc = zvol_open(sp->pool, ex.volume, &zv, em);
    if (rc != 0) {
        srv_pool_unpin(s->srv, sp);
        return rc;
    }
    *size = zvol_size(zv);
    *blksz = zvol_blocksize(zv);
    if (zvol_readonly(zv))
        ex.readonly = true;
    s->ex = ex;
    if (keep) {
        s->zv = zv;
        s->sp = sp;
    } else {
        zvol_close(zv);
        srv_pool_unpin(s->srv, sp);
    }
    return 0;
}

static void
opt_info_go(struct nbd_session *s, const struct nbd_opt *o, struct rbuf *b)
{
    bool go = o->opt == NBD_OPT_GO;
    struct err_msg em = { 0 };
    uint64_t size;
    uint32_t blksz;
    int rc = open_export(s, &o->u.info.name, go, &size, &blksz, &em);
    if (rc != 0) {
        rep_error(b, o->opt, rc == -EACCES ? NBD_REP_ERR_TLS_REQD : NBD_REP_ERR_UNKNOWN, em.text);
        return;
    }
    uint16_t tflags = nbd_tflags(s, s->ex.readonly);
    RBUF_PUT(b, 32, nbd_rep_info_export_encode(buf, cap, o->opt, size, tflags));
    uint32_t mask = o->u.info.info_mask;
    if (mask & (1u << NBD_INFO_NAME)) {
        size_t l = strlen(s->ex.name);
        RBUF_PUT(b, NBD_REP_HEADER_LEN + 2 + l,
                 nbd_rep_info_name_encode(buf, cap, o->opt, s->ex.name, l));
    }
    if ((mask & (1u << NBD_INFO_DESCRIPTION)) && s->ex.description[0] != 0) {
        size_t l = strlen(s->ex.description);
        RBUF_PUT(b, NBD_REP_HEADER_LEN + 2 + l,
                 nbd_rep_info_description_encode(buf, cap, o->opt, s->ex.description, l));
    }
    /* Any alignment works (read-modify-write), the volume block size is best. */
    RBUF_PUT(b, 34,
             nbd_rep_info_block_size_encode(buf, cap, o->opt, 1, blksz, NBD_SRV_MAX_PAYLOAD));
    rep_ack(b, o->opt);
    if (!go)
        return;
    s->facts = (struct nbd_export_facts){ .size = size,
                                          .tflags = tflags,
                                          .structured = s->structured,
                                          .min_block = 1,
                                          .max_block = NBD_SRV_MAX_PAYLOAD };
    /* Contexts count only when they were set for the export now chosen. */
    char nm[DSL_NAME_MAX + 1];
    snprintf(nm, sizeof(nm), "%.*s", (int)o->u.info.name.len, o->u.info.name.ptr);
    if (!s->meta_set || strcmp(nm, s->meta_export) != 0)
        s->nmeta = 0;
    s->facts.n_meta = s->nmeta;
    s->opt_outcome = OPT_ENTER_TX;
}

static void
opt_export_name(struct nbd_session *s, const struct nbd_opt *o, struct rbuf *b)
{
    struct err_msg em = { 0 };
    uint64_t size;
    uint32_t blksz;
    if (open_export(s, &o->u.export_name, true, &size, &blksz, &em) != 0) {
        log_info("nbd %s: export refused: %s", s->peer, em.text);
        s->opt_outcome = OPT_CLOSE; /* EXPORT_NAME has no error reply */
        return;
    }
    uint16_t tflags = nbd_tflags(s, s->ex.readonly);
    RBUF_PUT(b, NBD_EXPORT_NAME_REPLY_LEN,
             nbd_export_name_reply_encode(buf, cap, size, tflags, s->no_zeroes));
    s->facts = (struct nbd_export_facts){ .size = size,
                                          .tflags = tflags,
                                          .structured = s->structured,
                                          .min_block = 1,
                                          .max_block = NBD_SRV_MAX_PAYLOAD,
                                          .n_meta = 0 };
    s->nmeta = 0;
    s->opt_outcome = OPT_ENTER_TX;
}

struct meta_reply {
    struct nbd_session *s;
    struct rbuf *b;
    uint32_t opt;
    bool set;
    char head[DSL_NAME_MAX + 1]; /* the volume (without @snap) */
};

static void
meta_add(struct meta_reply *mr, const char *name, bool dirty, const char *since)
{
    struct nbd_session *s = mr->s;
    uint32_t id = 0;
    if (mr->set) {
        for (uint32_t i = 0; i < s->nmeta; i++)
            if (strcmp(s->meta[i].name, name) == 0)
                return; /* asked twice */
        if (s->nmeta == NBD_SRV_MAX_META)
            return;
        struct meta_ctx *m = &s->meta[s->nmeta++];
        m->id = id = s->nmeta;
        m->dirty = dirty;
        snprintf(m->since, sizeof(m->since), "%s", since ? since : "");
        snprintf(m->name, sizeof(m->name), "%s", name);
    }
    size_t l = strlen(name);
    RBUF_PUT(mr->b, NBD_REP_HEADER_LEN + 4 + l,
             nbd_rep_meta_context_encode(buf, cap, mr->opt, id, name, l));
}

static int
meta_snap(void *arg, const struct dsl_info *in)
{
    struct meta_reply *mr = arg;
    const char *at = strchr(in->name, '@');
    if (at == NULL)
        return 0;
    char ctx[DSL_NAME_MAX + 32];
    snprintf(ctx, sizeof(ctx), NBD_META_QEMU_DIRTY_PREFIX "%s", at + 1);
    meta_add(mr, ctx, true, in->name);
    return 0;
}

/* qemu:dirty-bitmap:<leaf>: a snapshot (or bookmark) of the volume named leaf. */
static void
meta_dirty_one(struct meta_reply *mr, struct pool *p, const struct nbd_str *leaf)
{
    char since[DSL_NAME_MAX + 1], ctx[DSL_NAME_MAX + 32];
    const char seps[] = { '@', '#' };
    if (leaf->len + strlen(mr->head) + 1 > DSL_NAME_MAX)
        return; /* no such snapshot can exist */
    int leaflen = (int)leaf->len;
    for (int i = 0; i < 2; i++) {
        size_t hl = strlen(mr->head);
        memcpy(since, mr->head, hl);
        since[hl] = seps[i];
        memcpy(since + hl + 1, leaf->ptr, (size_t)leaflen);
        since[hl + 1 + (size_t)leaflen] = 0;
        struct dsl_info in;
        struct err_msg em = { 0 };
        if (dsl_stat(p, since, &in, &em) == 0) {
            snprintf(ctx, sizeof(ctx), NBD_META_QEMU_DIRTY_PREFIX "%s", since + hl + 1);
            meta_add(mr, ctx, true, since);
            return;
        }
    }
}

static void
opt_meta(struct nbd_session *s, const struct nbd_opt *o, struct rbuf *b)
{
    const struct nbd_opt_meta *m = &o->u.meta;
    bool set = o->opt == NBD_OPT_SET_META_CONTEXT;
    if (!s->structured) {
        rep_error(b, o->opt, NBD_REP_ERR_INVALID, "negotiate structured replies first");
        return;
    }
    struct err_msg em = { 0 };
    uint64_t size;
    uint32_t blksz;
    if (open_export(s, &m->name, false, &size, &blksz, &em) != 0) {
        rep_error(b, o->opt, NBD_REP_ERR_UNKNOWN, em.text);
        return;
    }
    struct meta_reply mr = { .s = s, .b = b, .opt = o->opt, .set = set };
    snprintf(mr.head, sizeof(mr.head), "%.*s", (int)strcspn(s->ex.volume, "@"), s->ex.volume);
    if (set) {
        s->nmeta = 0;
        s->meta_set = true;
        snprintf(s->meta_export, sizeof(s->meta_export), "%.*s", (int)m->name.len, m->name.ptr);
    }
    struct srv_pool *sp = srv_pool_pin(s->srv, mr.head, &em);
    if (sp == NULL) {
        rep_error(b, o->opt, NBD_REP_ERR_UNKNOWN, em.text);
        return;
    }
    if (m->n_queries == 0 && !set) {
        meta_add(&mr, NBD_META_BASE_ALLOCATION_NAME, false, NULL);
        dsl_list(sp->pool, mr.head, DSL_LIST_RECURSIVE | DSL_LIST_SNAP, meta_snap, &mr, &em);
    }
    for (uint32_t i = 0; i < m->n_queries; i++) {
        struct nbd_str leaf;
        switch (nbd_meta_classify(m->queries[i].ptr, m->queries[i].len, &leaf)) {
        case NBD_META_BASE_ALLOCATION:
            meta_add(&mr, NBD_META_BASE_ALLOCATION_NAME, false, NULL);
            break;
        case NBD_META_BASE_ALL:
            if (!set)
                meta_add(&mr, NBD_META_BASE_ALLOCATION_NAME, false, NULL);
            break;
        case NBD_META_QEMU_DIRTY_BITMAP:
            meta_dirty_one(&mr, sp->pool, &leaf);
            break;
        case NBD_META_QEMU_ALL:
        case NBD_META_QEMU_DIRTY_ALL:
            if (!set)
                dsl_list(sp->pool, mr.head, DSL_LIST_RECURSIVE | DSL_LIST_SNAP, meta_snap, &mr,
                         &em);
            break;
        default:
            break; /* other namespaces and unknown contexts: no match */
        }
    }
    srv_pool_unpin(s->srv, sp);
    rep_ack(b, o->opt);
}

void
nbd_opt_work(struct workq_job *job)
{
    struct nbd_session *s =
        (struct nbd_session *)((char *)job - offsetof(struct nbd_session, opt_job));
    struct rbuf *b = &s->opt_reply;
    struct nbd_opt o;
    uint32_t opt = s->oh.opt;
    s->opt_outcome = OPT_NEXT;
    int rc = nbd_opt_decode(opt, s->opt_data, s->oh.len, &o);
    if (rc != 0) {
        if (opt == NBD_OPT_EXPORT_NAME) {
            s->opt_outcome = OPT_CLOSE;
            return;
        }
        rep_error(b, opt, nbd_opt_rep_for_error(rc),
                  rc == -ENOTSUP ? "option not supported" : "malformed option");
        return;
    }
    switch (opt) {
    case NBD_OPT_LIST:
        exports_list(s->srv, list_one, b);
        rep_ack(b, opt);
        break;
    case NBD_OPT_STRUCTURED_REPLY:
        if (s->structured) {
            rep_error(b, opt, NBD_REP_ERR_INVALID, "structured replies already negotiated");
        } else {
            s->structured = true;
            rep_ack(b, opt);
        }
        break;
    case NBD_OPT_INFO:
    case NBD_OPT_GO:
        opt_info_go(s, &o, b);
        break;
    case NBD_OPT_EXPORT_NAME:
        opt_export_name(s, &o, b);
        break;
    case NBD_OPT_LIST_META_CONTEXT:
    case NBD_OPT_SET_META_CONTEXT:
        opt_meta(s, &o, b);
        break;
    default:
        rep_error(b, opt, NBD_REP_ERR_UNSUP, "option not supported");
    }
}

/* ---- transmission -------------------------------------------------------------------------- */

struct bs_ctx {
    struct nbd_bs_builder *b;
    uint64_t cursor, end;
    bool full;
};

static int
bs_alloc_cb(void *arg, uint64_t off, uint64_t len, bool is_data)
{
    (void)off;
    struct bs_ctx *c = arg;
    int rc = nbd_bs_add(c->b, len, is_data ? 0 : NBD_STATE_HOLE | NBD_STATE_ZERO);
    if (rc != 0) {
        c->full = true;
        return 1; /* stop the walk */
    }
    return 0;
}

static int
bs_dirty_cb(void *arg, uint64_t off, uint64_t len)
{
    struct bs_ctx *c = arg;
    uint64_t end = off + len;
    if (c->full || end <= c->cursor)
        return c->full ? 1 : 0;
    if (off >= c->end)
        return 1;
    if (off > c->cursor && nbd_bs_add(c->b, off - c->cursor, 0) != 0) {
        c->full = true;
        return 1;
    }
    uint64_t from = off > c->cursor ? off : c->cursor;
    uint64_t to = end < c->end ? end : c->end;
    c->cursor = to;
    if (nbd_bs_add(c->b, to - from, NBD_STATE_DIRTY) != 0) {
        c->full = true;
        return 1;
    }
    return 0;
}

static uint32_t
block_status(struct nbd_req *q)
{
    struct nbd_session *s = q->s;
    const struct nbd_request *r = &q->r;
    for (uint32_t i = 0; i < s->nmeta; i++) {
        size_t cap = NBD_CHUNK_HEADER_LEN + 4 + (size_t)NBD_BS_DESC_LEN * BS_MAX_DESC;
        uint8_t *buf = rbuf_reserve(&q->reply, cap);
        if (buf == NULL)
            return NBD_ENOMEM;
        struct nbd_bs_builder b;
        int rc = nbd_bs_begin(&b, buf, cap, r->cookie, s->meta[i].id, r->length,
                              (r->flags & NBD_CMD_FLAG_REQ_ONE) != 0, BS_MAX_DESC);
        struct bs_ctx c = { .b = &b, .cursor = r->offset, .end = r->offset + r->length };
        struct err_msg em = { 0 };
        if (rc == 0 && !s->meta[i].dirty) {
            rc = zvol_extents(s->zv, r->offset, r->length, bs_alloc_cb, &c);
        } else if (rc == 0) {
            rc = zvol_changed(s->zv, s->meta[i].since, bs_dirty_cb, &c, &em);
            if (rc == 0 && !c.full && c.cursor < c.end)
                nbd_bs_add(&b, c.end - c.cursor, 0);
        }
        if (rc < 0)
            return nbd_errno_to_wire(rc);
        int n = nbd_bs_finish(&b, i + 1 == s->nmeta ? NBD_REPLY_FLAG_DONE : 0);
        if (n < 0)
            return NBD_EIO;
        rbuf_commit(&q->reply, (size_t)n);
    }
    return 0;
}

void
nbd_req_work(struct workq_job *job)
{
    struct nbd_req *q = (struct nbd_req *)job;
    struct nbd_session *s = q->s;
    const struct nbd_request *r = &q->r;
    unsigned fua = (r->flags & NBD_CMD_FLAG_FUA) ? ZVOL_FUA : 0;
    int rc = 0;
    switch (r->type) {
    case NBD_CMD_READ: {
        size_t max = r->length / zvol_blocksize(s->zv) + 2;
        q->pieces = calloc(1, sizeof(*q->pieces) + max * sizeof(q->pieces->p[0]));
        rc = q->pieces
                 ? zvol_read_pieces(s->zv, r->offset, r->length, q->pieces->p, max, &q->pieces->n)
                 : -ENOMEM;
        if (rc != 0) {
            free(q->pieces);
            q->pieces = NULL;
        }
        break;
    }
    case NBD_CMD_WRITE:
        rc = nbd_payload_write(&q->pl, s->zv, r->offset, fua);
        break;
    case NBD_CMD_FLUSH:
        rc = zvol_flush(s->zv);
        break;
    case NBD_CMD_TRIM:
        rc = zvol_trim(s->zv, r->offset, r->length, fua);
        break;
    case NBD_CMD_WRITE_ZEROES:
        /* Zeroing is punching here, always fast (FAST_ZERO holds); NO_HOLE cannot allocate
         * zeroes in this pool (all-zero blocks are holes; refreservation keeps the space). */
        rc = zvol_write_zeroes(s->zv, r->offset, r->length, fua);
        break;
    case NBD_CMD_CACHE: {
        /* Advisory prefetch: read through the cache, result ignored. */
        uint8_t *tmp = malloc(r->length ? r->length : 1);
        if (tmp != NULL)
            (void)zvol_read(s->zv, r->offset, r->length, tmp);
        free(tmp);
        break;
    }
    case NBD_CMD_BLOCK_STATUS:
        q->werr = block_status(q);
        return;
    default:
        rc = -EINVAL;
    }
    if (rc != 0 && rc != -ENOSPC && rc != -EDQUOT)
        log_warn("nbd %s: %s at %llu+%u on '%s': %s", s->peer, nbd_cmd_name(r->type),
                 (unsigned long long)r->offset, r->length, s->ex.volume, err_str(rc));
    q->werr = nbd_errno_to_wire(rc);
}
