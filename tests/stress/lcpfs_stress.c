/* SPDX-License-Identifier: MIT */
/*
 * lcpfs-stress: crash-consistency stress of the pool engine (our ztest).
 *
 * Theory of operation
 * -------------------
 * The parent creates a pool of file vdevs, exports it and then runs rounds:
 *
 *   fork ──► child: import, send READY, random object workload ──► SIGKILL (or clean exit)
 *                       │ one record per operation, sent before its tx_commit
 *                       ▼
 *   parent: read records ──► reap ──► verify_pool ──► import ──► replay ──► compare ──► export
 *
 * The child reports every operation over a pipe as a fixed-size record {type, object, offset,
 * length, data seed, txg of its tx, op number} after the operation succeeded and before
 * tx_commit, and a SYNCED record with the txg pool_sync() returned. Written data is a pure
 * function of (data seed, byte offset), so a record is enough to redo a write.
 *
 * The parent keeps a model of the pool as of the last verified state: per object its id,
 * properties, creation txg, size and contents (a flat buffer). After the child is reaped it runs
 * the offline verifier (0 violations), imports the pool, and checks that the imported txg is at
 * least every txg acknowledged as durable (nothing lost), that import did not rewind, then applies
 * exactly the reported operations with txg <= imported txg, in report order, and compares every
 * object — size, properties, creation txg, full contents — and the set of object ids with the
 * pool (nothing from the future, nothing lost). The model then is the pool's state.
 *
 * Invariants the checks rely on:
 *   1. A txg commits only after every tx assigned to it has committed (core/txg.c invariant 2),
 *      and each record is in the pipe before its tx commits, so every operation of a committed
 *      txg was reported.
 *   2. The child is single-threaded above the engine, so reported txgs never decrease and the
 *      operations with txg <= T are a prefix of the report order.
 *   3. Pipe writes of at most PIPE_BUF bytes are atomic: a killed child never leaves half a
 *      record.
 *   4. Model buffers are zero past the object's size, so whole-buffer comparisons also check the
 *      tail of the last block.
 *   5. The parent never has the pool open while a child lives (it forks with no engine threads,
 *      imports only after waitpid), and every path after fork kills and reaps the child.
 *
 * A failed round (any violation) is reported and the pool is recreated from scratch so later
 * rounds start from a known state; with --keep the failing device files are kept as
 * DIR/stress-devN.fail-rR for lcpfs-check.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <getopt.h>
#include <poll.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "core/objset.h"
#include "core/pool.h"
#include "core/verify.h"

#define MAX_OBJS     16     /* live objects at most */
#define OBJ_MAX      MiB(2) /* object size limit; model buffers are this big */
#define MAX_DEVS     8
#define HANG_MS      30000 /* a child that neither finishes nor gets ready this long is hung */
#define CHILD_MAX_MS 20000 /* a child stops its batch after this long */
#define POOL_NAME    "stress"

/* ---- deterministic data ---------------------------------------------------------------------- */

static uint64_t
mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t
rnd(uint64_t *s)
{
    *s = mix64(*s);
    return *s;
}

/* Uniform in [lo, hi]. */
static uint64_t
rnd_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
    return lo + rnd(s) % (hi - lo + 1);
}

enum data_kind { DATA_ZERO, DATA_TEXT, DATA_RANDOM, DATA_SPARSE, DATA_KINDS };

/*
 * Fills dst with the bytes a write of data seed `seed` puts at [off, off+len). The kind comes
 * from the seed: zeros (holes), 64-byte runs of letters (compressible), random (incompressible),
 * or one byte per 4 KiB (compresses to embedded block pointers).
 */
static void
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

/* ---- records --------------------------------------------------------------------------------- */

enum rec_type {
    REC_READY = 1, /* child imported the pool; txg = its synced txg */
    REC_CREATE,    /* obj created; len = block size, attr = properties */
    REC_WRITE,     /* [off, off+len) written with data seed `seed` */
    REC_PUNCH,     /* [off, off+len) punched */
    REC_TRUNCATE,  /* size set to off */
    REC_DESTROY,   /* obj destroyed */
    REC_PROPS,     /* properties set to attr */
    REC_SYNCED,    /* pool_sync() returned: txg is durable */
};

/* One report from the child; written with a single write(2) (invariant 3). */
struct rec {
    uint32_t type; /* enum rec_type */
    uint32_t attr; /* checksum | compress << 8 | level << 16 | copies << 24 */
    uint64_t obj;
    uint64_t off;
    uint64_t len;
    uint64_t seed; /* data seed of a write */
    uint64_t txg;  /* txg of the op's tx; REC_SYNCED/READY: the synced txg */
    uint64_t opno; /* op number within the round */
};
_Static_assert(sizeof(struct rec) <= PIPE_BUF, "records must be written atomically");

static const char *const rec_names[] = { "?",        "ready",   "create", "write", "punch",
                                         "truncate", "destroy", "props",  "synced" };

#define ATTR(ck, comp, lvl, copies) \
    ((uint32_t)(ck) | (uint32_t)(comp) << 8 | (uint32_t)(lvl) << 16 | (uint32_t)(copies) << 24)
#define ATTR_CK(a)     ((uint8_t)(a))
#define ATTR_COMP(a)   ((uint8_t)((a) >> 8))
#define ATTR_LEVEL(a)  ((uint8_t)((a) >> 16))
#define ATTR_COPIES(a) ((uint8_t)((a) >> 24))

/* ---- model ----------------------------------------------------------------------------------- */

struct mobj {
    bool live;
    uint64_t id;
    uint32_t blocksize;
    uint32_t attr; /* ATTR() of the properties */
    uint64_t gen;  /* creation txg */
    uint64_t size;
    uint8_t *data; /* OBJ_MAX bytes once used; zero past size (invariant 4) */
};

struct model {
    struct mobj objs[MAX_OBJS];
    unsigned nlive;
};

static struct mobj *
model_find(struct model *m, uint64_t id)
{
    for (unsigned i = 0; i < MAX_OBJS; i++)
        if (m->objs[i].live && m->objs[i].id == id)
            return &m->objs[i];
    return NULL;
}

static void
model_reset(struct model *m)
{
    for (unsigned i = 0; i < MAX_OBJS; i++) {
        free(m->objs[i].data);
        m->objs[i] = (struct mobj){ 0 };
    }
    m->nlive = 0;
}

/*
 * Applies one operation record. Returns 0, or -EINVAL with the reason in why when the record
 * does not fit the model (an id created twice, an op on an object that does not exist).
 */
static int
model_apply(struct model *m, const struct rec *r, char *why, size_t whylen)
{
    struct mobj *o = model_find(m, r->obj);
    if (r->type == REC_CREATE) {
        if (o != NULL) {
            snprintf(why, whylen, "object %llu created while it exists",
                     (unsigned long long)r->obj);
            return -EINVAL;
        }
        for (unsigned i = 0; i < MAX_OBJS && o == NULL; i++)
            if (!m->objs[i].live)
                o = &m->objs[i];
        if (o == NULL) {
            snprintf(why, whylen, "more than %d objects", MAX_OBJS);
            return -EINVAL;
        }
        if (o->data == NULL && (o->data = calloc(1, OBJ_MAX)) == NULL) {
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
        memset(o->data, 0, o->size);
        o->live = false;
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

/* ---- the child: a random workload that reports every operation ------------------------------- */

struct child {
    struct pool *pool;
    struct objset *os;
    struct model *m; /* the parent's model, copied by fork; kept in step with the ops */
    int fd;          /* pipe to the parent */
    uint64_t rng;
    uint64_t seed;
    uint64_t opno;
    unsigned round;
    uint8_t *buf; /* OBJ_MAX scratch */
};

static int child_fail(const struct child *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
child_fail(const struct child *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "FAIL round %u seed %llu: child: %s\n", c->round, (unsigned long long)c->seed,
            msg);
    return -1;
}

static int
child_send(const struct child *c, const struct rec *r)
{
    ssize_t n = write(c->fd, r, sizeof(*r));
    if (n != (ssize_t)sizeof(*r))
        return child_fail(c, "cannot report to the parent: %s", strerror(errno));
    return 0;
}

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

/* Runs one operation in its own tx: do it, report it, commit (invariant 1), update the model. */
static int
child_op(struct child *c, struct rec *r)
{
    struct tx tx;
    int rc = tx_assign(c->pool, r->type == REC_WRITE ? r->len : 0, &tx);
    if (rc != 0)
        return child_fail(c, "tx_assign: %s", err_str(rc));
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
        rc = obj_create(c->os, &tx, &o, &r->obj);
        break;
    }
    case REC_WRITE:
        data_fill(c->buf, r->off, r->len, r->seed);
        rc = obj_write(c->os, &tx, r->obj, r->off, r->len, c->buf);
        break;
    case REC_PUNCH:
        rc = obj_punch(c->os, &tx, r->obj, r->off, r->len);
        break;
    case REC_TRUNCATE:
        rc = obj_truncate(c->os, &tx, r->obj, r->off);
        break;
    case REC_DESTROY:
        rc = obj_destroy(c->os, &tx, r->obj);
        break;
    case REC_PROPS:
        rc = obj_set_props(c->os, &tx, r->obj, ATTR_CK(r->attr), ATTR_COMP(r->attr),
                           ATTR_LEVEL(r->attr), ATTR_COPIES(r->attr));
        break;
    default:
        BUG("unknown op");
    }
    if (rc != 0) {
        tx_commit(&tx);
        return child_fail(c, "op %llu: %s object %llu: %s", (unsigned long long)r->opno,
                          rec_names[r->type], (unsigned long long)r->obj, err_str(rc));
    }
    rc = child_send(c, r);
    tx_commit(&tx);
    if (rc != 0)
        return rc;
    char why[160];
    if (model_apply(c->m, r, why, sizeof(why)) != 0)
        return child_fail(c, "op %llu: %s", (unsigned long long)r->opno, why);
    return 0;
}

/* Reads a random range of a live object and compares it with the model (reads see everything). */
static int
child_check_read(struct child *c, const struct mobj *o)
{
    uint64_t off = rnd(&c->rng) % OBJ_MAX;
    size_t len = (size_t)rnd_range(&c->rng, 1, OBJ_MAX - off < KiB(256) ? OBJ_MAX - off : KiB(256));
    int rc = obj_read(c->os, o->id, off, len, c->buf);
    if (rc != 0)
        return child_fail(c, "obj_read object %llu [%llu, +%zu): %s", (unsigned long long)o->id,
                          (unsigned long long)off, len, err_str(rc));
    if (memcmp(c->buf, o->data + off, len) != 0) {
        size_t i = 0;
        while (c->buf[i] == o->data[off + i])
            i++;
        return child_fail(c, "object %llu reads %#x at %llu, expected %#x (after op %llu)",
                          (unsigned long long)o->id, c->buf[i], (unsigned long long)(off + i),
                          o->data[off + i], (unsigned long long)c->opno);
    }
    struct obj_info info = { 0 };
    rc = obj_stat(c->os, o->id, &info);
    if (rc != 0 || info.size != o->size)
        return child_fail(c, "obj_stat object %llu: rc %d size %llu, expected %llu",
                          (unsigned long long)o->id, rc, (unsigned long long)info.size,
                          (unsigned long long)o->size);
    return 0;
}

/* Picks and runs one random step of the workload. */
static int
child_step(struct child *c)
{
    struct model *m = c->m;
    struct mobj *live[MAX_OBJS];
    unsigned n = 0;
    for (unsigned i = 0; i < MAX_OBJS; i++)
        if (m->objs[i].live)
            live[n++] = &m->objs[i];
    unsigned pick = (unsigned)(rnd(&c->rng) % 100);
    if (n == 0 || (pick < 6 && n < MAX_OBJS)) {
        struct rec r = { .type = REC_CREATE,
                         .len = 512u << rnd(&c->rng) % 9,
                         .attr = child_random_attr(c) };
        return child_op(c, &r);
    }
    struct mobj *o = live[rnd(&c->rng) % n];
    struct rec r = { .obj = o->id };
    if (pick < 55) {
        unsigned l = (unsigned)(rnd(&c->rng) % 20);
        uint64_t maxlen = l < 14 ? KiB(16) : l < 19 ? KiB(128) : KiB(512);
        r.type = REC_WRITE;
        r.len = rnd_range(&c->rng, 1, maxlen);
        if (rnd(&c->rng) % 3 == 0) { /* whole blocks: no read-modify-write */
            r.len = (r.len + o->blocksize - 1) / o->blocksize * o->blocksize;
            if (r.len > OBJ_MAX)
                r.len = OBJ_MAX;
            r.off = rnd(&c->rng) % ((OBJ_MAX - r.len) / o->blocksize + 1) * o->blocksize;
        } else if (o->size > 0 && rnd(&c->rng) % 2 == 0) { /* overwrite */
            r.off = rnd(&c->rng) % o->size;
            if (r.len > OBJ_MAX - r.off)
                r.len = OBJ_MAX - r.off;
        } else {
            r.off = rnd(&c->rng) % (OBJ_MAX - r.len + 1);
        }
        r.seed = mix64(c->seed ^ mix64(c->opno));
        return child_op(c, &r);
    }
    if (pick < 63) {
        r.type = REC_PUNCH;
        r.off = rnd(&c->rng) % (o->size + KiB(64));
        r.len = rnd(&c->rng) % 8 == 0 ? UINT64_MAX - r.off : rnd_range(&c->rng, 1, KiB(512));
        return child_op(c, &r);
    }
    if (pick < 69) {
        r.type = REC_TRUNCATE;
        unsigned t = (unsigned)(rnd(&c->rng) % 8);
        r.off = t == 0 ? 0 : t < 5 ? rnd(&c->rng) % (o->size + 1) : rnd(&c->rng) % (OBJ_MAX + 1);
        return child_op(c, &r);
    }
    if (pick < 74 && n > 1) {
        r.type = REC_DESTROY;
        return child_op(c, &r);
    }
    if (pick < 78) {
        r.type = REC_PROPS;
        r.attr = child_random_attr(c);
        return child_op(c, &r);
    }
    if (pick < 83) {
        uint64_t txg = 0;
        int rc = pool_sync(c->pool, &txg);
        if (rc != 0)
            return child_fail(c, "pool_sync: %s", err_str(rc));
        struct rec s = { .type = REC_SYNCED, .txg = txg, .opno = c->opno };
        return child_send(c, &s);
    }
    return child_check_read(c, o);
}

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * The child's life: import, READY, nops steps (or until killed), then a clean exit by export
 * (everything durable, reported as SYNCED) or by close (uncommitted changes dropped). Returns the
 * exit status.
 */
static int
child_main(struct model *m, const char *const *paths, size_t ndevs, int fd, unsigned round,
           uint64_t seed, unsigned nops)
{
    struct child c = { .m = m, .fd = fd, .rng = mix64(seed), .seed = seed, .round = round };
    if (log_get_level() > LOG_LEVEL_WARN)
        log_set_level(LOG_LEVEL_WARN); /* anything on the child's stderr fails the round */
    c.buf = malloc(OBJ_MAX);
    if (c.buf == NULL) {
        child_fail(&c, "out of memory");
        return 2;
    }
    struct pool_import_opts io = {
        .tuning = { .txg_timeout_ms = rnd_range(&c.rng, 5, 200),
                    .dirty_max_bytes = MiB(16),
                    .arc_max_bytes = (size_t)MiB(rnd_range(&c.rng, 1, 16)),
                    .journal_checkpoint_bytes = KiB(rnd_range(&c.rng, 16, 1024)) }
    };
    struct err_msg em = { 0 };
    int rc = pool_import(paths, ndevs, &io, &c.pool, &em);
    if (rc != 0) {
        child_fail(&c, "pool_import: %s", em.text);
        free(c.buf);
        return 2;
    }
    c.os = pool_root_objset(c.pool);
    struct pool_stats st;
    pool_get_stats(c.pool, &st);
    struct rec ready = { .type = REC_READY, .txg = st.synced_txg };
    rc = child_send(&c, &ready);
    uint64_t stop = now_ms() + CHILD_MAX_MS;
    for (unsigned i = 0; rc == 0 && i < nops && now_ms() < stop; i++)
        rc = child_step(&c);
    if (rc == 0 && rnd(&c.rng) % 2 == 0) {
        uint64_t txg = 0;
        rc = pool_sync(c.pool, &txg);
        struct rec s = { .type = REC_SYNCED, .txg = txg, .opno = c.opno };
        if (rc == 0)
            rc = child_send(&c, &s);
        else
            child_fail(&c, "pool_sync: %s", err_str(rc));
        int erc = pool_export(c.pool);
        if (rc == 0 && erc != 0)
            rc = child_fail(&c, "pool_export: %s", err_str(erc));
    } else {
        pool_close(c.pool);
    }
    free(c.buf);
    return rc == 0 ? 0 : 2;
}

/* ---- the parent ------------------------------------------------------------------------------ */

enum round_mode {
    MODE_KILL,       /* SIGKILL a random delay after READY */
    MODE_KILL_EARLY, /* SIGKILL a random delay after fork, often during import */
    MODE_FINISH,     /* a short batch; the child exits by itself */
};

struct stress {
    /* options */
    const char *dir;
    uint64_t seconds, seed, max_kills, dev_mib;
    unsigned ndevs;
    bool verbose, keep;

    char paths[MAX_DEVS][PATH_MAX];
    const char *pathv[MAX_DEVS];
    struct model model; /* the pool as of the last verified state */
    uint64_t durable;   /* newest txg acknowledged durable */
    struct rec *recs;   /* this round's operation records, in report order */
    size_t nrecs, cap;
    uint64_t child_acked; /* newest SYNCED txg of this round */
    uint64_t ready_txg;   /* txg the child imported; 0 = no READY */
    uint64_t imported;    /* txg the parent imported after the round */
    size_t applied;       /* records replayed into the model (txg <= imported) */
    uint64_t vblocks;     /* blocks the verifier walked */
    uint64_t rng;         /* the parent's own choices (delays, modes) */
    uint8_t *buf;         /* OBJ_MAX read buffer */
    unsigned round, kills, clean, passed, failed;
    bool round_failed;
};

static void fail(struct stress *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports one failure of the current round. */
static void
fail(struct stress *st, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    printf("FAIL round %u seed %llu: %s\n", st->round, (unsigned long long)(st->seed ^ st->round),
           msg);
    fflush(stdout);
    st->round_failed = true;
}

static void
verify_msg(void *arg, const char *msg)
{
    fail(arg, "verify: %s", msg);
}

/* Creates a fresh pool (removing old device files) and exports it; the model starts empty. */
static int
stress_create_pool(struct stress *st)
{
    for (unsigned i = 0; i < st->ndevs; i++)
        unlink(st->paths[i]);
    struct pool_opts o = { .create_files = true,
                           .create_size = MiB(st->dev_mib),
                           .txg_timeout_ms = 60000,
                           .arc_max_bytes = MiB(8) };
    struct pool *p = NULL;
    struct err_msg em = { 0 };
    int rc = pool_create(POOL_NAME, st->pathv, st->ndevs, &o, &p, &em);
    if (rc != 0) {
        fprintf(stderr, "lcpfs-stress: cannot create pool in '%s': %s\n", st->dir, em.text);
        return rc;
    }
    rc = pool_sync(p, &st->durable);
    int erc = pool_export(p);
    if (rc == 0)
        rc = erc;
    if (rc != 0)
        fprintf(stderr, "lcpfs-stress: cannot export new pool: %s\n", err_str(rc));
    model_reset(&st->model);
    return rc;
}

/* Takes one record from the child. Returns true for READY. */
static bool
stress_take(struct stress *st, const struct rec *r)
{
    if (r->type == REC_READY) {
        st->ready_txg = r->txg;
        if (r->txg < st->durable)
            fail(st, "child imported txg %llu, older than durable txg %llu",
                 (unsigned long long)r->txg, (unsigned long long)st->durable);
        return true;
    }
    if (r->type == REC_SYNCED) {
        if (r->txg > st->child_acked)
            st->child_acked = r->txg;
        return false;
    }
    if (st->nrecs > 0 && r->txg < st->recs[st->nrecs - 1].txg) /* invariant 2 */
        fail(st, "op %llu has txg %llu, older than the previous op's %llu",
             (unsigned long long)r->opno, (unsigned long long)r->txg,
             (unsigned long long)st->recs[st->nrecs - 1].txg);
    if (st->nrecs == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 4096;
        struct rec *n = realloc(st->recs, cap * sizeof(*n));
        VERIFY(n != NULL);
        st->recs = n;
        st->cap = cap;
    }
    st->recs[st->nrecs++] = *r;
    return false;
}

/* Parses whole records out of buf[0..*have); keeps a partial one. Returns true on READY. */
static bool
stress_parse(struct stress *st, uint8_t *buf, size_t *have)
{
    bool ready = false;
    size_t used = 0;
    for (; *have - used >= sizeof(struct rec); used += sizeof(struct rec)) {
        struct rec r;
        memcpy(&r, buf + used, sizeof(r));
        ready |= stress_take(st, &r);
    }
    memmove(buf, buf + used, *have - used);
    *have -= used;
    return ready;
}

/*
 * Reads the child's records and its stderr until both reach EOF, SIGKILLing the child at its
 * deadline, then reaps it. Whatever the child writes to stderr (a sanitizer report, a failed
 * assertion, an engine warning) is copied to ours and fails the round: a SIGKILL landing while a
 * sanitizer symbolizes its report must not hide it. The kill is harmless when the child already
 * exited: it stays a zombie (its pid cannot be reused) until waitpid. Returns the wait status;
 * *killed says whether SIGKILL was sent, *hung whether the hang guard sent it.
 */
static int
stress_collect(struct stress *st, pid_t pid, const int fds[2], enum round_mode mode,
               uint64_t delay_ms, bool *killed, bool *hung)
{
    uint8_t buf[64 * sizeof(struct rec)];
    size_t have = 0;
    bool stderr_seen = false;
    uint64_t kill_at = now_ms() + (mode == MODE_KILL_EARLY ? delay_ms : HANG_MS);
    bool guard = mode != MODE_KILL_EARLY; /* kill_at is the hang guard, not a planned kill */
    struct pollfd pfd[2] = { { .fd = fds[0], .events = POLLIN },
                             { .fd = fds[1], .events = POLLIN } };
    *killed = *hung = false;
    while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
        int timeout = -1;
        if (!*killed) {
            uint64_t t = now_ms();
            timeout = kill_at > t ? (int)(kill_at - t) : 0;
        }
        int n = poll(pfd, 2, timeout); /* negative fds are skipped */
        if (n < 0 && errno != EINTR) {
            fail(st, "poll: %s", strerror(errno));
            break;
        }
        if (n > 0 && pfd[0].revents != 0) {
            ssize_t got = read(pfd[0].fd, buf + have, sizeof(buf) - have);
            if (got <= 0 && !(got < 0 && errno == EINTR))
                pfd[0].fd = -1; /* EOF: every write end closed, the child is gone */
            have += got > 0 ? (size_t)got : 0;
            if (stress_parse(st, buf, &have) && mode == MODE_KILL) {
                kill_at = now_ms() + delay_ms;
                guard = false;
            }
        }
        if (n > 0 && pfd[1].revents != 0) {
            char text[4096];
            ssize_t got = read(pfd[1].fd, text, sizeof(text));
            if (got <= 0 && !(got < 0 && errno == EINTR))
                pfd[1].fd = -1;
            if (got > 0) {
                fwrite(text, 1, (size_t)got, stderr);
                stderr_seen = true;
            }
        }
        if (!*killed && now_ms() >= kill_at) {
            *hung = guard;
            if (kill(pid, SIGKILL) != 0)
                fail(st, "kill child %d: %s", (int)pid, strerror(errno));
            *killed = true;
        }
    }
    if (!*killed) { /* the error path above: never leave the child running */
        kill(pid, SIGKILL);
        *killed = true;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        VERIFY(errno == EINTR);
    if (have != 0)
        fail(st, "torn record (%zu bytes) at the end of the report", have);
    if (stderr_seen)
        fail(st, "child wrote to stderr (copied above)");
    return status;
}

/* For triage: prints this round's ops on object id that touch byte `at`, applied or not. */
static void
stress_explain(const struct stress *st, uint64_t id, uint64_t at, uint64_t imported)
{
    for (size_t i = 0; i < st->nrecs; i++) {
        const struct rec *r = &st->recs[i];
        bool covers = r->type == REC_CREATE || r->type == REC_DESTROY || r->type == REC_TRUNCATE ||
                      (at >= r->off && at - r->off < r->len && r->type != REC_PROPS);
        if (r->obj != id || !covers)
            continue;
        printf("  op %llu txg %llu%s: %s off %llu len %llu seed %#llx\n",
               (unsigned long long)r->opno, (unsigned long long)r->txg,
               r->txg <= imported ? "" : " (not committed)", rec_names[r->type],
               (unsigned long long)r->off, (unsigned long long)r->len, (unsigned long long)r->seed);
    }
}

/* Compares every model object, and the set of object ids, with the imported pool. */
static void
stress_compare(struct stress *st, struct objset *os, uint64_t imported)
{
    for (unsigned i = 0; i < MAX_OBJS; i++) {
        const struct mobj *o = &st->model.objs[i];
        if (!o->live)
            continue;
        unsigned long long id = o->id;
        struct obj_info info;
        int rc = obj_stat(os, o->id, &info);
        if (rc != 0) {
            fail(st, "object %llu (created txg %llu): obj_stat: %s", id, (unsigned long long)o->gen,
                 err_str(rc));
            continue;
        }
        uint32_t attr = ATTR(info.checksum, info.compress, info.compress_level, info.copies);
        if (info.type != OT_PLAIN || info.blocksize != o->blocksize || attr != o->attr ||
            info.gen != o->gen)
            fail(st,
                 "object %llu: type %u blocksize %u props %#x gen %llu, expected %u %u %#x %llu",
                 id, info.type, info.blocksize, attr, (unsigned long long)info.gen, OT_PLAIN,
                 o->blocksize, o->attr, (unsigned long long)o->gen);
        if (info.size != o->size)
            fail(st, "object %llu: size %llu, expected %llu", id, (unsigned long long)info.size,
                 (unsigned long long)o->size);
        /* Whole blocks: bytes past the size must read as zeros too (invariant 4). */
        uint64_t len = (o->size + o->blocksize - 1) / o->blocksize * o->blocksize;
        rc = obj_read(os, o->id, 0, len, st->buf);
        if (rc != 0) {
            fail(st, "object %llu: obj_read [0, %llu): %s", id, (unsigned long long)len,
                 err_str(rc));
            continue;
        }
        if (memcmp(st->buf, o->data, len) == 0)
            continue;
        uint64_t first = UINT64_MAX, last = 0, nbad = 0;
        for (uint64_t b = 0; b < len; b++) {
            if (st->buf[b] != o->data[b]) {
                first = first == UINT64_MAX ? b : first;
                last = b;
                nbad++;
            }
        }
        fail(st,
             "object %llu (blocksize %u, size %llu): %llu bytes differ in [%llu, %llu]; "
             "first reads %#x, expected %#x",
             id, o->blocksize, (unsigned long long)o->size, (unsigned long long)nbad,
             (unsigned long long)first, (unsigned long long)last, st->buf[first], o->data[first]);
        stress_explain(st, o->id, first, imported);
    }
    uint64_t id = 0, seen = 0;
    int rc;
    while ((rc = obj_next(os, id, &id)) == 0) {
        if (model_find(&st->model, id) == NULL)
            fail(st, "object %llu exists but the model has no such object", (unsigned long long)id);
        seen++;
        id++;
    }
    if (rc != -ENOENT)
        fail(st, "obj_next after %llu: %s", (unsigned long long)id, err_str(rc));
    else if (seen != st->model.nlive)
        fail(st, "pool has %llu objects, model %u", (unsigned long long)seen, st->model.nlive);
}

/*
 * The post-crash checks: verifier, import, nothing lost, no rewind, replay of the committed
 * prefix, comparison. Leaves the pool exported or closed.
 */
static void
stress_check(struct stress *st)
{
    struct verify_report rep;
    struct verify_opts vo = { 0 };
    struct err_msg em = { 0 };
    int vrc = verify_pool(st->pathv, st->ndevs, &vo, &rep, verify_msg, st, &em);
    st->vblocks = vrc == 0 ? rep.blocks : 0;
    if (vrc != 0)
        fail(st, "verify_pool cannot import: %s", em.text[0] ? em.text : err_str(vrc));
    else if (rep.errors != 0)
        fail(st,
             "verifier: %llu errors (checksum %llu, io %llu, structure %llu, birth %llu, fill "
             "%llu; leaked %llu B, overlap %llu B, free-but-reachable %llu B)",
             (unsigned long long)rep.errors, (unsigned long long)rep.cksum_errors,
             (unsigned long long)rep.io_errors, (unsigned long long)rep.structure_errors,
             (unsigned long long)rep.birth_errors, (unsigned long long)rep.fill_errors,
             (unsigned long long)rep.leaked_bytes, (unsigned long long)rep.overlap_bytes,
             (unsigned long long)rep.free_but_reachable_bytes);

    struct pool_import_opts io = { .tuning = { .txg_timeout_ms = 60000, .arc_max_bytes = MiB(8) } };
    struct pool *p = NULL;
    memset(&em, 0, sizeof(em));
    int rc = pool_import(st->pathv, st->ndevs, &io, &p, &em);
    if (rc != 0) {
        fail(st, "pool_import: %s", em.text[0] ? em.text : err_str(rc));
        return;
    }
    struct pool_stats ps;
    pool_get_stats(p, &ps);
    uint64_t txg = ps.synced_txg;
    st->imported = txg;
    uint64_t acked = st->durable > st->child_acked ? st->durable : st->child_acked;
    if (txg < acked)
        fail(st, "imported txg %llu, but txg %llu was acknowledged durable (lost commits)",
             (unsigned long long)txg, (unsigned long long)acked);
    /* A SIGKILL tears no write, so the newest uberblock must load: any rewind is a bug. */
    if (ps.open_txg != txg + 1)
        fail(st, "import rewound to txg %llu (newest uberblock is txg %llu)",
             (unsigned long long)txg, (unsigned long long)(ps.open_txg - 1));
    if (vrc == 0 && rep.txg != txg)
        fail(st, "verifier checked txg %llu, import chose txg %llu", (unsigned long long)rep.txg,
             (unsigned long long)txg);
    if (ps.cksum_errors || ps.read_errors)
        fail(st, "import saw %llu checksum and %llu read errors",
             (unsigned long long)ps.cksum_errors, (unsigned long long)ps.read_errors);

    size_t n = 0;
    for (; n < st->nrecs && st->recs[n].txg <= txg; n++) {
        char why[160];
        if (model_apply(&st->model, &st->recs[n], why, sizeof(why)) != 0) {
            fail(st, "replaying op %llu (txg %llu): %s", (unsigned long long)st->recs[n].opno,
                 (unsigned long long)st->recs[n].txg, why);
            break;
        }
    }
    st->applied = n;
    stress_compare(st, pool_root_objset(p), txg);

    /* Leave the pool exported or merely closed: the child sees both kinds of import. */
    if (rnd(&st->rng) % 2 == 0) {
        rc = pool_sync(p, &st->durable);
        int erc = pool_export(p);
        if (rc != 0 || erc != 0)
            fail(st, "parent pool_sync/pool_export: %s", err_str(rc ? rc : erc));
    } else {
        st->durable = txg;
        pool_close(p);
    }
}

/* Keeps the device files of a failed round aside (with --keep) and starts a fresh pool. */
static int
stress_recover(struct stress *st)
{
    if (st->keep) {
        for (unsigned i = 0; i < st->ndevs; i++) {
            char to[PATH_MAX + 32];
            snprintf(to, sizeof(to), "%s.fail-r%u", st->paths[i], st->round);
            if (rename(st->paths[i], to) == 0)
                printf("kept failed pool device %s\n", to);
        }
    }
    return stress_create_pool(st);
}

/* Runs one round: fork the child, collect, reap, check. Returns -1 on a setup error. */
static int
stress_round(struct stress *st)
{
    uint64_t child_seed = st->seed ^ st->round;
    unsigned r = (unsigned)(rnd(&st->rng) % 16);
    enum round_mode mode = r == 0 ? MODE_KILL_EARLY : r <= 2 ? MODE_FINISH : MODE_KILL;
    uint64_t delay_ms =
        mode == MODE_KILL_EARLY ? rnd_range(&st->rng, 1, 150) : rnd_range(&st->rng, 50, 400);
    unsigned nops = mode == MODE_FINISH ? (unsigned)rnd_range(&st->rng, 10, 300) : UINT_MAX;
    st->round_failed = false;
    st->nrecs = 0;
    st->child_acked = 0;
    st->ready_txg = st->imported = st->vblocks = 0;
    st->applied = 0;

    int rec_pipe[2], err_pipe[2];
    if (pipe2(rec_pipe, O_CLOEXEC) != 0) {
        perror("lcpfs-stress: pipe");
        return -1;
    }
    if (pipe2(err_pipe, O_CLOEXEC) != 0) {
        perror("lcpfs-stress: pipe");
        close(rec_pipe[0]);
        close(rec_pipe[1]);
        return -1;
    }
    fflush(NULL); /* the child exits through exit(): no stdio buffer may be flushed twice */
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Die with the parent, whatever kills it (checked again: it may already be gone). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(3);
        close(rec_pipe[0]);
        close(err_pipe[0]);
        if (dup2(err_pipe[1], STDERR_FILENO) < 0)
            _exit(3);
        close(err_pipe[1]);
        exit(
            child_main(&st->model, st->pathv, st->ndevs, rec_pipe[1], st->round, child_seed, nops));
    }
    close(rec_pipe[1]);
    close(err_pipe[1]);
    if (pid < 0) {
        perror("lcpfs-stress: fork");
        close(rec_pipe[0]);
        close(err_pipe[0]);
        return -1;
    }
    uint64_t start = now_ms();
    bool killed, hung;
    const int fds[2] = { rec_pipe[0], err_pipe[0] };
    int status = stress_collect(st, pid, fds, mode, delay_ms, &killed, &hung);
    close(rec_pipe[0]);
    close(err_pipe[0]);
    uint64_t child_ms = now_ms() - start;

    const char *how;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && killed && !hung) {
        st->kills++;
        how = "killed";
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        st->clean++;
        how = "exited";
    } else {
        how = "failed";
        if (hung)
            fail(st, "child hung (no progress for %d ms)", HANG_MS);
        else if (WIFSIGNALED(status))
            fail(st, "child died of signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
        else
            fail(st, "child exited with status %d", WEXITSTATUS(status));
    }

    stress_check(st);
    if (st->verbose)
        printf("round %u seed %llu: child %s after %llu ms (%s, delay %llu ms), %zu ops, "
               "imported txg %llu, %zu ops applied, %u objects, %llu blocks verified, %s\n",
               st->round, (unsigned long long)child_seed, how, (unsigned long long)child_ms,
               mode == MODE_KILL         ? "kill"
               : mode == MODE_KILL_EARLY ? "early kill"
                                         : "finish",
               (unsigned long long)delay_ms, st->nrecs, (unsigned long long)st->imported,
               st->applied, st->model.nlive, (unsigned long long)st->vblocks,
               st->round_failed ? "FAILED" : "ok");
    if (st->round_failed) {
        st->failed++;
        return stress_recover(st);
    }
    st->passed++;
    return 0;
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: lcpfs-stress --dir DIR --seconds N --seed S [--kills K] [--devices D]\n"
               "                    [--dev-size MiB] [--keep] [--verbose]\n"
               "  Crash-consistency stress: a child runs a random object workload on a pool of\n"
               "  D file vdevs in DIR and is SIGKILLed at random; after each kill the pool is\n"
               "  verified and compared with a model of every reported operation.\n"
               "  Runs N seconds, or until K kills when --kills is given.\n");
}

static int
parse_args(struct stress *st, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "dir", required_argument, NULL, 'd' },     { "seconds", required_argument, NULL, 't' },
        { "seed", required_argument, NULL, 's' },    { "kills", required_argument, NULL, 'k' },
        { "devices", required_argument, NULL, 'n' }, { "dev-size", required_argument, NULL, 'z' },
        { "keep", no_argument, NULL, 'K' },          { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },          { NULL, 0, NULL, 0 },
    };
    bool have_seconds = false, have_seed = false;
    int c;
    while ((c = getopt_long(argc, argv, "d:t:s:k:n:z:Kvh", longopts, NULL)) != -1) {
        char *end = NULL;
        uint64_t v = 0;
        if (optarg != NULL) {
            errno = 0;
            v = strtoull(optarg, &end, 0);
            if (c != 'd' && (errno != 0 || end == optarg || *end != '\0')) {
                fprintf(stderr, "lcpfs-stress: bad number '%s'\n", optarg);
                return -1;
            }
        }
        switch (c) {
        case 'd':
            st->dir = optarg;
            break;
        case 't':
            st->seconds = v;
            have_seconds = true;
            break;
        case 's':
            st->seed = v;
            have_seed = true;
            break;
        case 'k':
            st->max_kills = v;
            break;
        case 'n':
            st->ndevs = (unsigned)v;
            break;
        case 'z':
            st->dev_mib = v;
            break;
        case 'K':
            st->keep = true;
            break;
        case 'v':
            st->verbose = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (st->dir == NULL || !have_seconds || !have_seed || optind != argc) {
        usage(stderr);
        return -1;
    }
    if (st->ndevs < 1 || st->ndevs > MAX_DEVS || st->dev_mib < VDEV_MIN_SIZE >> 20 ||
        st->dev_mib > 1u << 20) {
        fprintf(stderr, "lcpfs-stress: need 1..%d devices of at least %llu MiB\n", MAX_DEVS,
                (unsigned long long)(VDEV_MIN_SIZE >> 20));
        return -1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct stress st = { .ndevs = 2, .dev_mib = 128 };
    log_set_prefix("lcpfs-stress");
    if (parse_args(&st, argc, argv) != 0)
        return 2;
    if (getenv("LCPFS_LOG") == NULL)
        log_set_level(LOG_LEVEL_WARN); /* every import logs at info */
    if (mkdir(st.dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "lcpfs-stress: cannot create '%s': %s\n", st.dir, strerror(errno));
        return 2;
    }
    for (unsigned i = 0; i < st.ndevs; i++) {
        snprintf(st.paths[i], sizeof(st.paths[i]), "%s/stress-dev%u", st.dir, i);
        st.pathv[i] = st.paths[i];
    }
    st.rng = mix64(st.seed ^ 0x5354524553530000ull);
    st.buf = malloc(OBJ_MAX);
    if (st.buf == NULL || stress_create_pool(&st) != 0)
        return 2;
    printf("lcpfs-stress: seed %llu, %u device(s) of %llu MiB in %s, %llu s%s\n",
           (unsigned long long)st.seed, st.ndevs, (unsigned long long)st.dev_mib, st.dir,
           (unsigned long long)st.seconds, st.max_kills ? "" : " (no kill limit)");
    uint64_t end = now_ms() + st.seconds * 1000;
    int rc = 0;
    while (rc == 0 && now_ms() < end && (st.max_kills == 0 || st.kills < st.max_kills)) {
        rc = stress_round(&st);
        st.round++;
    }
    if (rc != 0)
        printf("lcpfs-stress: stopped after round %u: setup error\n", st.round - 1);
    printf("rounds: %u (%u clean exits)\n", st.round, st.clean);
    printf("kills: %u\n", st.kills);
    printf("failures: %u\n", st.failed);
    printf("stress: %u passed, %u failed\n", st.passed, st.failed);
    if (!st.keep) {
        for (unsigned i = 0; i < st.ndevs; i++)
            unlink(st.paths[i]);
        rmdir(st.dir); /* only if it is empty now */
    }
    model_reset(&st.model);
    free(st.recs);
    free(st.buf);
    return rc == 0 && st.failed == 0 && st.kills > 0 ? 0 : 1;
}
