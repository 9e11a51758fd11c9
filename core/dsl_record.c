/* SPDX-License-Identifier: MIT */
/*
 * dsl_record: encoding and validation of the dataset layer's records (see dsl_record.h).
 */
#include "core/dsl_record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/endian.h"
#include "common/err.h"
#include "core/props.h"

_Static_assert(DSL_RECORD_SIZE == DNODE_SIZE - DNODE_CORE_SIZE - BP_SIZE, "record fills bonus");

#define OFF_TXG      128
#define OFF_RESERVED 256

void
dsl_phys_encode(const struct dsl_phys *ph, uint8_t out[static DSL_RECORD_SIZE])
{
    memset(out, 0, DSL_RECORD_SIZE);
    bp_encode(&ph->root, out);
    uint8_t *q = out + OFF_TXG;
    le64_put(q + 0, ph->create_txg);
    le64_put(q + 8, ph->guid);
    le32_put(q + 16, ph->kind);
    le32_put(q + 20, ph->flags);
    const uint64_t w[] = { ph->parent_obj, ph->prev_snap_obj, ph->prev_snap_txg,  ph->next_snap_obj,
                           ph->origin_obj, ph->dl_bps_obj,    ph->dl_summary_obj, ph->ref_asize,
                           ph->ref_psize,  ph->ref_lsize,     ph->unique_asize,   ph->create_time,
                           ph->num_clones };
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
        le64_put(q + 24 + 8 * i, w[i]);
}

int
dsl_phys_decode(const uint8_t in[static DSL_RECORD_SIZE], struct dsl_phys *ph)
{
    memset(ph, 0, sizeof(*ph));
    int rc = bp_decode(in, &ph->root);
    if (rc != 0)
        return rc;
    const uint8_t *q = in + OFF_TXG;
    ph->create_txg = le64_get(q + 0);
    ph->guid = le64_get(q + 8);
    ph->kind = le32_get(q + 16);
    ph->flags = le32_get(q + 20);
    uint64_t *w[] = { &ph->parent_obj, &ph->prev_snap_obj, &ph->prev_snap_txg,  &ph->next_snap_obj,
                      &ph->origin_obj, &ph->dl_bps_obj,    &ph->dl_summary_obj, &ph->ref_asize,
                      &ph->ref_psize,  &ph->ref_lsize,     &ph->unique_asize,   &ph->create_time,
                      &ph->num_clones };
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
        *w[i] = le64_get(q + 24 + 8 * i);
    for (size_t i = OFF_RESERVED; i < DSL_RECORD_SIZE; i++)
        if (in[i] != 0)
            return ERR(-ECORRUPT);
    if (ph->kind < DSL_KIND_FS || ph->kind > DSL_KIND_BOOKMARK || ph->flags != 0)
        return ERR(-ECORRUPT);
    bool head = ph->kind == DSL_KIND_FS || ph->kind == DSL_KIND_VOL;
    if (ph->kind == DSL_KIND_BOOKMARK) {
        if (!bp_is_hole(&ph->root) || ph->dl_bps_obj != 0 || ph->parent_obj == 0)
            return ERR(-ECORRUPT);
    } else {
        /* An empty object set's root compresses into an embedded BP: allowed. */
        if (ph->root.type != OT_OBJSET || ph->root.lsize != OBJSET_PHYS_SIZE || ph->root.level != 0)
            return ERR(-ECORRUPT);
        if (ph->dl_bps_obj == 0 || ph->dl_summary_obj == 0 || ph->dl_bps_obj == ph->dl_summary_obj)
            return ERR(-ECORRUPT);
        if (!head && (ph->parent_obj == 0 || bp_is_hole(&ph->root)))
            return ERR(-ECORRUPT);
    }
    if ((ph->prev_snap_obj == 0) != (ph->prev_snap_txg == 0))
        return ERR(-ECORRUPT);
    if (ph->kind == DSL_KIND_SNAP && ph->prev_snap_txg >= ph->create_txg)
        return ERR(-ECORRUPT); /* a snapshot's predecessor is older */
    if (!head && ph->origin_obj != 0)
        return ERR(-ECORRUPT);
    if (ph->ref_psize > ph->ref_lsize + ph->ref_asize)
        return ERR(-ECORRUPT);
    return 0;
}

bool
dsl_component_valid(const char *s, size_t len)
{
    if (len == 0 || len > DSL_COMPONENT_MAX)
        return false;
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* ---- cold record ------------------------------------------------------------------------------
 */

struct wbuf {
    uint8_t *p;
    size_t len, cap;
    int err;
};

static void
wb_need(struct wbuf *b, size_t n)
{
    if (b->err != 0 || b->len + n <= b->cap)
        return;
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *np = realloc(b->p, cap);
    if (np == NULL) {
        b->err = -ENOMEM;
        return;
    }
    b->p = np;
    b->cap = cap;
}

static void
wb_bytes(struct wbuf *b, const void *src, size_t n)
{
    wb_need(b, n);
    if (b->err == 0) {
        memcpy(b->p + b->len, src, n);
        b->len += n;
    }
}

static void
wb_u16(struct wbuf *b, uint16_t v)
{
    uint8_t t[2];
    le16_put(t, v);
    wb_bytes(b, t, 2);
}

static void
wb_u32(struct wbuf *b, uint32_t v)
{
    uint8_t t[4];
    le32_put(t, v);
    wb_bytes(b, t, 4);
}

static void
wb_u64(struct wbuf *b, uint64_t v)
{
    uint8_t t[8];
    le64_put(t, v);
    wb_bytes(b, t, 8);
}

static void
wb_str16(struct wbuf *b, const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        b->err = b->err ? b->err : -EINVAL;
        return;
    }
    wb_u16(b, (uint16_t)n);
    wb_bytes(b, s, n);
}

int
dsl_cold_encode(const struct dsl_cold *c, uint8_t **out, size_t *len)
{
    struct wbuf b = { 0 };
    size_t n = strlen(c->name);
    if (!dsl_component_valid(c->name, n) || c->nprops > DSL_PROPS_MAX || c->nholds > DSL_HOLDS_MAX)
        return -EINVAL;
    wb_u32(&b, DSL_COLD_MAGIC);
    wb_u16(&b, DSL_COLD_VERSION);
    wb_u16(&b, (uint16_t)n);
    wb_bytes(&b, c->name, n);
    wb_u32(&b, (uint32_t)c->nprops);
    for (size_t i = 0; i < c->nprops; i++) {
        const struct dsl_propent *e = &c->props[i];
        wb_str16(&b, e->key, PROPS_NAME_MAX + 16);
        wb_bytes(&b, &(uint8_t){ e->is_num ? 0 : 1 }, 1);
        if (e->is_num)
            wb_u64(&b, e->num);
        else
            wb_str16(&b, e->str, PROPS_VALUE_MAX);
    }
    wb_u32(&b, (uint32_t)c->nholds);
    for (size_t i = 0; i < c->nholds; i++) {
        wb_str16(&b, c->holds[i].tag, DSL_TAG_MAX);
        wb_u64(&b, c->holds[i].time);
    }
    if (b.err != 0) {
        free(b.p);
        return b.err;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

struct rbuf {
    const uint8_t *p;
    size_t len, off;
    int err;
};

static const uint8_t *
rb_take(struct rbuf *b, size_t n)
{
    if (b->err != 0 || b->len - b->off < n) {
        b->err = -ECORRUPT;
        return NULL;
    }
    const uint8_t *q = b->p + b->off;
    b->off += n;
    return q;
}

static uint64_t
rb_uint(struct rbuf *b, size_t n)
{
    const uint8_t *q = rb_take(b, n);
    if (q == NULL)
        return 0;
    return n == 2 ? le16_get(q) : n == 4 ? le32_get(q) : le64_get(q);
}

/* A new NUL-terminated copy of a u16-length string of at most max bytes, no NULs. */
static char *
rb_str16(struct rbuf *b, size_t min, size_t max)
{
    size_t n = (size_t)rb_uint(b, 2);
    if (b->err == 0 && (n < min || n > max))
        b->err = -ECORRUPT;
    const uint8_t *q = rb_take(b, n);
    if (q == NULL)
        return NULL;
    if (memchr(q, 0, n) != NULL) {
        b->err = -ECORRUPT;
        return NULL;
    }
    char *s = malloc(n + 1);
    if (s == NULL) {
        b->err = -ENOMEM;
        return NULL;
    }
    memcpy(s, q, n);
    s[n] = 0;
    return s;
}

void
dsl_cold_release(struct dsl_cold *c)
{
    free(c->name);
    for (size_t i = 0; i < c->nprops; i++) {
        free(c->props[i].key);
        free(c->props[i].str);
    }
    free(c->props);
    for (size_t i = 0; i < c->nholds; i++)
        free(c->holds[i].tag);
    free(c->holds);
    memset(c, 0, sizeof(*c));
}

int
dsl_cold_decode(const uint8_t *in, size_t len, struct dsl_cold *c)
{
    memset(c, 0, sizeof(*c));
    struct rbuf b = { .p = in, .len = len };
    if (rb_uint(&b, 4) != DSL_COLD_MAGIC || rb_uint(&b, 2) != DSL_COLD_VERSION)
        return ERR(-ECORRUPT);
    size_t n = (size_t)rb_uint(&b, 2);
    const uint8_t *name = rb_take(&b, n);
    if (name == NULL || !dsl_component_valid((const char *)name, n))
        return ERR(-ECORRUPT);
    c->name = strndup((const char *)name, n);
    if (c->name == NULL)
        return -ENOMEM;
    uint64_t np = rb_uint(&b, 4);
    if (b.err == 0 && np > DSL_PROPS_MAX)
        b.err = -ECORRUPT;
    if (b.err == 0 && np > 0 && (c->props = calloc(np, sizeof(*c->props))) == NULL)
        b.err = -ENOMEM;
    for (uint64_t i = 0; i < np && b.err == 0; i++) {
        struct dsl_propent *e = &c->props[c->nprops++];
        e->key = rb_str16(&b, 1, PROPS_NAME_MAX + 16);
        const uint8_t *kind = rb_take(&b, 1);
        if (kind == NULL)
            break;
        if (*kind == 0) {
            e->is_num = true;
            e->num = rb_uint(&b, 8);
        } else if (*kind == 1) {
            e->str = rb_str16(&b, 0, PROPS_VALUE_MAX);
        } else {
            b.err = -ECORRUPT;
        }
    }
    uint64_t nh = rb_uint(&b, 4);
    if (b.err == 0 && nh > DSL_HOLDS_MAX)
        b.err = -ECORRUPT;
    if (b.err == 0 && nh > 0 && (c->holds = calloc(nh, sizeof(*c->holds))) == NULL)
        b.err = -ENOMEM;
    for (uint64_t i = 0; i < nh && b.err == 0; i++) {
        struct dsl_holdent *h = &c->holds[c->nholds++];
        h->tag = rb_str16(&b, 1, DSL_TAG_MAX);
        h->time = rb_uint(&b, 8);
    }
    if (b.err == 0 && b.off != len)
        b.err = -ECORRUPT;
    if (b.err != 0) {
        dsl_cold_release(c);
        return b.err == -ENOMEM ? -ENOMEM : ERR(-ECORRUPT);
    }
    return 0;
}
