/* SPDX-License-Identifier: MIT */
/*
 * stress_model: deterministic data, the model of one object set (the root dataset, a dataset
 * head or a snapshot), its content hash, and the comparison of a model with an object set.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "tests/stress/stress.h"

/* ---- deterministic data ---------------------------------------------------------------------- */

uint64_t
mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t
rnd(uint64_t *s)
{
    *s = mix64(*s);
    return *s;
}

uint64_t
rnd_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
    return lo + rnd(s) % (hi - lo + 1);
}

enum data_kind { DATA_ZERO, DATA_TEXT, DATA_RANDOM, DATA_SPARSE, DATA_KINDS };

/*
 * The kind comes from the seed: zeros (holes), 64-byte runs of letters (compressible), random
 * (incompressible), or one byte per 4 KiB (compresses to embedded block pointers).
 */
void
data_fill(uint8_t *dst, uint64_t off, size_t len, uint64_t seed)
{
    switch (seed % DATA_KINDS) {
    case DATA_ZERO:
        memset(dst, 0, len);
        break;
    case DATA_TEXT:
        for (size_t i = 0; i < len; i++)
            dst[i] = (uint8_t)('a' + mix64(seed ^ ((off + i) / 64)) % 26);
        break;
    case DATA_RANDOM:
        for (size_t i = 0; i < len; i++) {
            uint64_t pos = off + i;
            dst[i] = (uint8_t)(mix64(seed ^ (pos / 8)) >> (pos % 8 * 8));
        }
        break;
    default:
        for (size_t i = 0; i < len; i++)
            dst[i] = (off + i) % 4096 == 0 ? (uint8_t)(seed | 1) : 0;
        break;
    }
}

const char *
rec_name(uint32_t type)
{
    static const char *const names[REC_TYPES] = {
        "?",           "ready", "create",   "write",    "punch",    "truncate",
        "destroy",     "props", "synced",   "dscreate", "snapshot", "dsdestroy",
        "snapdestroy", "clone", "rollback", "promote",  "hold",     "release",
    };
    return type < REC_TYPES ? names[type] : "?";
}

/* ---- the model ------------------------------------------------------------------------------- */

void
model_init(struct model *m, unsigned max_objs, uint64_t obj_max)
{
    VERIFY(max_objs <= MAX_OBJS && obj_max <= OBJ_MAX);
    *m = (struct model){ .max_objs = max_objs, .obj_max = obj_max };
}

void
model_reset(struct model *m)
{
    for (unsigned i = 0; i < MAX_OBJS; i++) {
        free(m->objs[i].data);
        m->objs[i] = (struct mobj){ 0 };
    }
    m->nlive = 0;
}

struct mobj *
model_find(struct model *m, uint64_t id)
{
    for (unsigned i = 0; i < m->max_objs; i++)
        if (m->objs[i].live && m->objs[i].id == id)
            return &m->objs[i];
    return NULL;
}

int
model_copy(struct model *dst, const struct model *src)
{
    model_reset(dst);
    dst->max_objs = src->max_objs;
    dst->obj_max = src->obj_max;
    for (unsigned i = 0; i < src->max_objs; i++) {
        const struct mobj *o = &src->objs[i];
        if (!o->live)
            continue;
        uint8_t *data = malloc(src->obj_max);
        if (data == NULL) {
            model_reset(dst);
            return -ENOMEM;
        }
        memcpy(data, o->data, src->obj_max);
        dst->objs[i] = *o;
        dst->objs[i].data = data;
    }
    dst->nlive = src->nlive;
    return 0;
}

int
model_apply(struct model *m, const struct rec *r, char *why, size_t whylen)
{
    struct mobj *o = model_find(m, r->obj);
    if (r->type == REC_CREATE) {
        if (o != NULL) {
            snprintf(why, whylen, "object %llu created while it exists",
                     (unsigned long long)r->obj);
            return -EINVAL;
        }
        for (unsigned i = 0; i < m->max_objs && o == NULL; i++)
            if (!m->objs[i].live)
                o = &m->objs[i];
        if (o == NULL) {
            snprintf(why, whylen, "more than %u objects", m->max_objs);
            return -EINVAL;
        }
        if (o->data == NULL && (o->data = calloc(1, m->obj_max)) == NULL) {
            snprintf(why, whylen, "out of memory");
            return -ENOMEM;
        }
        *o = (struct mobj){ .live = true,
                            .id = r->obj,
                            .blocksize = (uint32_t)r->len,
                            .attr = r->attr,
                            .gen = r->txg,
                            .data = o->data };
        m->nlive++;
        return 0;
    }
    if (o == NULL) {
        snprintf(why, whylen, "op %llu on object %llu which does not exist",
                 (unsigned long long)r->opno, (unsigned long long)r->obj);
        return -EINVAL;
    }
    if ((r->type == REC_WRITE && (r->off > m->obj_max || r->len > m->obj_max - r->off)) ||
        (r->type == REC_TRUNCATE && r->off > m->obj_max)) {
        snprintf(why, whylen, "op %llu beyond the object size limit", (unsigned long long)r->opno);
        return -EINVAL;
    }
    switch (r->type) {
    case REC_WRITE:
        data_fill(o->data + r->off, r->off, r->len, r->seed);
        if (r->off + r->len > o->size)
            o->size = r->off + r->len;
        break;
    case REC_PUNCH:
        if (r->off < o->size)
            memset(o->data + r->off, 0, (r->len < o->size - r->off ? r->len : o->size - r->off));
        break;
    case REC_TRUNCATE:
        if (r->off < o->size)
            memset(o->data + r->off, 0, o->size - r->off);
        o->size = r->off;
        break;
    case REC_DESTROY:
        /* The buffer goes back to the slot zeroed (invariant 4); free it to keep copies small. */
        free(o->data);
        *o = (struct mobj){ 0 };
        m->nlive--;
        break;
    case REC_PROPS:
        o->attr = r->attr;
        break;
    default:
        snprintf(why, whylen, "unknown record type %u", r->type);
        return -EINVAL;
    }
    return 0;
}

/* ---- content hash ---------------------------------------------------------------------------- */

#define HASH_SEED 0x736e617073686f74ull /* "snapshot" */

static uint64_t
hash_word(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

/* Hashes len bytes (a multiple of 8 except at the very end of an object's data). */
static uint64_t
hash_bytes(uint64_t h, const uint8_t *p, size_t len)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = hash_word(h, w);
    }
    if (i < len) {
        uint64_t w = 0;
        memcpy(&w, p + i, len - i);
        h = hash_word(h, w);
    }
    return h;
}

static uint64_t
hash_header(uint64_t h, uint64_t id, uint8_t type, uint32_t blocksize, uint32_t attr, uint64_t gen,
            uint64_t size)
{
    h = hash_word(h, id);
    h = hash_word(h, type);
    h = hash_word(h, blocksize);
    h = hash_word(h, attr);
    h = hash_word(h, gen);
    return hash_word(h, size);
}

uint64_t
model_hash(const struct model *m)
{
    const struct mobj *sorted[MAX_OBJS];
    unsigned n = 0;
    for (unsigned i = 0; i < m->max_objs; i++) {
        if (!m->objs[i].live)
            continue;
        unsigned j = n++;
        for (; j > 0 && sorted[j - 1]->id > m->objs[i].id; j--)
            sorted[j] = sorted[j - 1];
        sorted[j] = &m->objs[i];
    }
    uint64_t h = HASH_SEED;
    for (unsigned i = 0; i < n; i++) {
        const struct mobj *o = sorted[i];
        h = hash_header(h, o->id, OT_PLAIN, o->blocksize, o->attr, o->gen, o->size);
        h = mix64(hash_bytes(h, o->data, o->size));
    }
    return mix64(h ^ n);
}

int
objset_hash(struct objset *os, uint8_t *buf, uint64_t *out)
{
    uint64_t h = HASH_SEED, n = 0, id = 0;
    int rc;
    while ((rc = obj_next(os, id, &id)) == 0) {
        struct obj_info info;
        if ((rc = obj_stat(os, id, &info)) != 0)
            return rc;
        uint32_t attr = ATTR(info.checksum, info.compress, info.compress_level, info.copies);
        h = hash_header(h, id, info.type, info.blocksize, attr, info.gen, info.size);
        for (uint64_t off = 0; off < info.size; off += OBJ_MAX) {
            size_t len = (size_t)(info.size - off < OBJ_MAX ? info.size - off : OBJ_MAX);
            if ((rc = obj_read(os, id, off, len, buf)) != 0)
                return rc;
            h = hash_bytes(h, buf, len);
        }
        h = mix64(h);
        n++;
        id++;
    }
    if (rc != -ENOENT)
        return rc;
    *out = mix64(h ^ n);
    return 0;
}

/* ---- comparing with the pool ------------------------------------------------------------------
 */

void
check_fail(struct checker *ck, const char *fmt, ...)
{
    ck->nfail++;
    if (ck->quiet)
        return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ck->fail(ck->arg, msg);
}

/* Compares one model object (limit obj_max) with the object set. */
static void
compare_obj(struct checker *ck, struct objset *os, const struct mobj *o, uint64_t obj_max,
            const char *what, unsigned ds)
{
    unsigned long long id = o->id;
    struct obj_info info;
    int rc = obj_stat(os, o->id, &info);
    if (rc != 0) {
        check_fail(ck, "%s object %llu (created txg %llu): obj_stat: %s", what, id,
                   (unsigned long long)o->gen, err_str(rc));
        return;
    }
    uint32_t attr = ATTR(info.checksum, info.compress, info.compress_level, info.copies);
    if (info.type != OT_PLAIN || info.blocksize != o->blocksize || attr != o->attr ||
        info.gen != o->gen)
        check_fail(ck,
                   "%s object %llu: type %u blocksize %u props %#x gen %llu, expected %u %u %#x "
                   "%llu",
                   what, id, info.type, info.blocksize, attr, (unsigned long long)info.gen,
                   OT_PLAIN, o->blocksize, o->attr, (unsigned long long)o->gen);
    if (info.size != o->size)
        check_fail(ck, "%s object %llu: size %llu, expected %llu", what, id,
                   (unsigned long long)info.size, (unsigned long long)o->size);
    if (ck->quiet && ck->nfail > 0)
        return;
    /* Whole blocks: bytes past the size must read as zeros too (invariant 4). obj_max is a
     * multiple of every block size, so the last block ends within the model's buffer. */
    uint64_t len = (o->size + o->blocksize - 1) / o->blocksize * o->blocksize;
    if (len > obj_max)
        len = obj_max;
    rc = obj_read(os, o->id, 0, len, ck->buf);
    if (rc != 0) {
        check_fail(ck, "%s object %llu: obj_read [0, %llu): %s", what, id, (unsigned long long)len,
                   err_str(rc));
        return;
    }
    if (memcmp(ck->buf, o->data, len) == 0)
        return;
    uint64_t first = UINT64_MAX, last = 0, nbad = 0;
    for (uint64_t b = 0; b < len; b++) {
        if (ck->buf[b] != o->data[b]) {
            first = first == UINT64_MAX ? b : first;
            last = b;
            nbad++;
        }
    }
    check_fail(ck,
               "%s object %llu (blocksize %u, size %llu): %llu bytes differ in [%llu, %llu]; "
               "first reads %#x, expected %#x",
               what, id, o->blocksize, (unsigned long long)o->size, (unsigned long long)nbad,
               (unsigned long long)first, (unsigned long long)last, ck->buf[first], o->data[first]);
    if (!ck->quiet && ck->explain != NULL)
        ck->explain(ck->arg, ds, o->id, first);
}

static bool
model_has(const struct model *m, uint64_t id)
{
    for (unsigned i = 0; i < m->max_objs; i++)
        if (m->objs[i].live && m->objs[i].id == id)
            return true;
    return false;
}

void
model_compare(struct checker *ck, struct objset *os, const struct model *m, const char *what,
              unsigned ds)
{
    for (unsigned i = 0; i < m->max_objs; i++) {
        if (m->objs[i].live)
            compare_obj(ck, os, &m->objs[i], m->obj_max, what, ds);
        if (ck->quiet && ck->nfail > 0)
            return;
    }
    uint64_t id = 0, seen = 0;
    int rc;
    while ((rc = obj_next(os, id, &id)) == 0) {
        if (!model_has(m, id))
            check_fail(ck, "%s object %llu exists but the model has no such object", what,
                       (unsigned long long)id);
        seen++;
        id++;
    }
    if (rc != -ENOENT)
        check_fail(ck, "%s obj_next after %llu: %s", what, (unsigned long long)id, err_str(rc));
    else if (seen != m->nlive)
        check_fail(ck, "%s has %llu objects, model %u", what, (unsigned long long)seen, m->nlive);
}
