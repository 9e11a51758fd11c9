/* SPDX-License-Identifier: MIT */
/*
 * stress_obj: the child's object workload, the same on the root dataset and on every dataset
 * head: create, write (whole blocks, overwrites, appends), punch, truncate, destroy, property
 * changes, pool_sync and checked reads. Each op is reported before its tx commits
 * (lcpfs_stress.c, invariant 1) and then applied to the child's copy of the model.
 */
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "core/dsl.h"
#include "core/objset.h"
#include "tests/stress/stress.h"
#include "tests/stress/stress_ds.h"

static uint32_t
child_random_attr(struct child *c)
{
    static const uint8_t cks[] = { CKSUM_XXH3, CKSUM_SHA256, CKSUM_BLAKE2B, CKSUM_OFF };
    static const uint8_t comps[] = { COMPRESS_OFF, COMPRESS_LZ4, COMPRESS_ZSTD };
    uint8_t ck = cks[rnd(&c->rng) % 4], comp = comps[rnd(&c->rng) % 3];
    uint8_t level = comp == COMPRESS_ZSTD ? (uint8_t)rnd_range(&c->rng, 1, 9) : 0;
    unsigned r = (unsigned)(rnd(&c->rng) % 16);
    uint8_t copies = r == 0 ? 3 : r < 3 ? 2 : 1;
    return ATTR(ck, comp, level, copies);
}

/*
 * Runs one object operation of head slot r->ds in its own tx (through ds_tx_assign when h is a
 * dataset handle): do it, report it, commit (invariant 1), update the model.
 */
static int
child_op(struct child *c, struct rec *r, struct dataset *h, struct objset *os)
{
    struct tx tx;
    uint64_t bytes = r->type == REC_WRITE ? r->len : 0;
    int rc = h != NULL ? ds_tx_assign(h, bytes, &tx) : tx_assign(c->pool, bytes, &tx);
    if (rc != 0)
        return child_fail(c, "head %u: tx_assign: %s", r->ds, err_str(rc));
    r->txg = tx.txg;
    r->opno = c->opno++;
    switch (r->type) {
    case REC_CREATE: {
        struct obj_create_opts o = { .type = OT_PLAIN,
                                     .blocksize = (uint32_t)r->len,
                                     .checksum = ATTR_CK(r->attr),
                                     .compress = ATTR_COMP(r->attr),
                                     .compress_level = ATTR_LEVEL(r->attr),
                                     .copies = ATTR_COPIES(r->attr) };
        rc = obj_create(os, &tx, &o, &r->obj);
        break;
    }
    case REC_WRITE:
        data_fill(c->buf, r->off, r->len, r->seed);
        rc = obj_write(os, &tx, r->obj, r->off, r->len, c->buf);
        break;
    case REC_PUNCH:
        rc = obj_punch(os, &tx, r->obj, r->off, r->len);
        break;
    case REC_TRUNCATE:
        rc = obj_truncate(os, &tx, r->obj, r->off);
        break;
    case REC_DESTROY:
        rc = obj_destroy(os, &tx, r->obj);
        break;
    case REC_PROPS:
        rc = obj_set_props(os, &tx, r->obj, ATTR_CK(r->attr), ATTR_COMP(r->attr),
                           ATTR_LEVEL(r->attr), ATTR_COPIES(r->attr));
        break;
    default:
        BUG("unknown op");
    }
    if (rc != 0) {
        tx_commit(&tx);
        return child_fail(c, "op %llu: %s object %llu of head %u: %s", (unsigned long long)r->opno,
                          rec_name(r->type), (unsigned long long)r->obj, r->ds, err_str(rc));
    }
    rc = child_send(c, r);
    tx_commit(&tx);
    if (rc != 0)
        return rc;
    char why[700];
    if (dsm_apply(c->dm, r, why, sizeof(why)) != 0)
        return child_fail(c, "op %llu: %s", (unsigned long long)r->opno, why);
    return 0;
}

int
child_check_read(struct child *c, struct objset *os, const struct mobj *o, uint64_t obj_max,
                 const char *what)
{
    uint64_t off = rnd(&c->rng) % obj_max;
    size_t len = (size_t)rnd_range(&c->rng, 1, obj_max - off < KiB(256) ? obj_max - off : KiB(256));
    int rc = obj_read(os, o->id, off, len, c->buf);
    if (rc != 0)
        return child_fail(c, "%s: obj_read object %llu [%llu, +%zu): %s", what,
                          (unsigned long long)o->id, (unsigned long long)off, len, err_str(rc));
    if (memcmp(c->buf, o->data + off, len) != 0) {
        size_t i = 0;
        while (c->buf[i] == o->data[off + i])
            i++;
        return child_fail(c, "%s: object %llu reads %#x at %llu, expected %#x (after op %llu)",
                          what, (unsigned long long)o->id, c->buf[i], (unsigned long long)(off + i),
                          o->data[off + i], (unsigned long long)c->opno);
    }
    struct obj_info info = { 0 };
    rc = obj_stat(os, o->id, &info);
    if (rc != 0 || info.size != o->size)
        return child_fail(c, "%s: obj_stat object %llu: rc %d size %llu, expected %llu", what,
                          (unsigned long long)o->id, rc, (unsigned long long)info.size,
                          (unsigned long long)o->size);
    return 0;
}

int
child_obj_step(struct child *c, unsigned ds, struct dataset *h, struct objset *os)
{
    struct model *m = &c->dm->heads[ds].m;
    uint64_t obj_max = m->obj_max;
    struct mobj *live[MAX_OBJS];
    unsigned n = 0;
    for (unsigned i = 0; i < m->max_objs; i++)
        if (m->objs[i].live)
            live[n++] = &m->objs[i];
    unsigned pick = (unsigned)(rnd(&c->rng) % 100);
    if (n == 0 || (pick < 6 && n < m->max_objs)) {
        struct rec r = { .type = REC_CREATE,
                         .len = 512u << rnd(&c->rng) % 9,
                         .attr = child_random_attr(c),
                         .ds = ds };
        return child_op(c, &r, h, os);
    }
    struct mobj *o = live[rnd(&c->rng) % n];
    struct rec r = { .obj = o->id, .ds = ds };
    if (pick < 55) {
        unsigned l = (unsigned)(rnd(&c->rng) % 20);
        uint64_t maxlen = l < 14 ? KiB(16) : l < 19 ? KiB(128) : KiB(512);
        r.type = REC_WRITE;
        r.len = rnd_range(&c->rng, 1, maxlen < obj_max ? maxlen : obj_max);
        if (rnd(&c->rng) % 3 == 0) { /* whole blocks: no read-modify-write */
            r.len = (r.len + o->blocksize - 1) / o->blocksize * o->blocksize;
            if (r.len > obj_max)
                r.len = obj_max;
            r.off = rnd(&c->rng) % ((obj_max - r.len) / o->blocksize + 1) * o->blocksize;
        } else if (o->size > 0 && rnd(&c->rng) % 2 == 0) { /* overwrite */
            r.off = rnd(&c->rng) % o->size;
            if (r.len > obj_max - r.off)
                r.len = obj_max - r.off;
        } else {
            r.off = rnd(&c->rng) % (obj_max - r.len + 1);
        }
        r.seed = mix64(c->seed ^ mix64(c->opno));
        return child_op(c, &r, h, os);
    }
    if (pick < 63) {
        r.type = REC_PUNCH;
        r.off = rnd(&c->rng) % (o->size + KiB(64));
        r.len = rnd(&c->rng) % 8 == 0 ? UINT64_MAX - r.off : rnd_range(&c->rng, 1, KiB(512));
        return child_op(c, &r, h, os);
    }
    if (pick < 69) {
        r.type = REC_TRUNCATE;
        unsigned t = (unsigned)(rnd(&c->rng) % 8);
        r.off = t == 0 ? 0 : t < 5 ? rnd(&c->rng) % (o->size + 1) : rnd(&c->rng) % (obj_max + 1);
        return child_op(c, &r, h, os);
    }
    if (pick < 74 && n > 1) {
        r.type = REC_DESTROY;
        return child_op(c, &r, h, os);
    }
    if (pick < 78) {
        r.type = REC_PROPS;
        r.attr = child_random_attr(c);
        return child_op(c, &r, h, os);
    }
    if (pick < 83) {
        uint64_t txg = 0;
        int rc = pool_sync(c->pool, &txg);
        if (rc != 0)
            return child_fail(c, "pool_sync: %s", err_str(rc));
        struct rec s = { .type = REC_SYNCED, .txg = txg, .opno = c->opno };
        return child_send(c, &s);
    }
    char what[64];
    snprintf(what, sizeof(what), "head %u", ds);
    return child_check_read(c, os, o, obj_max, what);
}
