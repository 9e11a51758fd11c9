/* SPDX-License-Identifier: MIT */
/*
 * stress: what the parts of lcpfs-stress share — the report records, the deterministic data, the
 * model of one object set (stress_model.c), the checker that compares a model with an object set,
 * and the child's context (child_fail/child_send in lcpfs_stress.c, the object workload in
 * stress_obj.c, the dataset workload in stress_ds.c). lcpfs_stress.c has the theory of operation.
 *
 * Not thread-safe (the child and the parent are single-threaded above the engine).
 */
#ifndef LCPFS_TESTS_STRESS_H
#define LCPFS_TESTS_STRESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/objset.h"
#include "core/pool.h"

#define POOL_NAME "stress"
#define MAX_OBJS  16     /* live objects at most in one object set (the root's limit) */
#define OBJ_MAX   MiB(2) /* object size limit of the root dataset; scratch buffers are this big */

/* ---- deterministic data (stress_model.c) ---------------------------------------------------- */

uint64_t mix64(uint64_t x);
uint64_t rnd(uint64_t *s);
/* Uniform in [lo, hi]. */
uint64_t rnd_range(uint64_t *s, uint64_t lo, uint64_t hi);
/* The bytes a write of data seed `seed` puts at [off, off+len): a pure function of both. */
void data_fill(uint8_t *dst, uint64_t off, size_t len, uint64_t seed);

/* ---- records --------------------------------------------------------------------------------- */

enum rec_type {
    REC_READY = 1, /* child imported the pool; txg = its synced txg */
    REC_CREATE,    /* obj created in head ds; len = block size, attr = properties */
    REC_WRITE,     /* [off, off+len) written with data seed `seed` */
    REC_PUNCH,     /* [off, off+len) punched */
    REC_TRUNCATE,  /* size set to off */
    REC_DESTROY,   /* obj destroyed */
    REC_PROPS,     /* properties set to attr */
    REC_SYNCED,    /* pool_sync() returned: txg is durable */
    /* Namespace operations (stress_ds.c), each sent twice: DSOP_INTENT, then DSOP_DONE. */
    REC_DS_CREATE,       /* filesystem ds created */
    REC_DS_SNAPSHOT,     /* one call: snapshot sid+i of the i-th head in mask (ascending) */
    REC_DS_DESTROY,      /* head ds destroyed (DSOP_RECURSIVE, DSOP_CLONES) */
    REC_DS_DESTROY_SNAP, /* snapshot sid destroyed (DSOP_CLONES) */
    REC_DS_CLONE,        /* head ds created as a clone of snapshot sid */
    REC_DS_ROLLBACK,     /* sid's head rolled back to sid (DSOP_LATER: newer ones destroyed) */
    REC_DS_PROMOTE,      /* clone ds promoted */
    REC_DS_HOLD,         /* hold DSOP_TAG(attr) put on snapshot sid */
    REC_DS_RELEASE,      /* hold DSOP_TAG(attr) released */
    REC_TYPES
};
#define REC_IS_NS(t) ((t) >= REC_DS_CREATE && (t) < REC_TYPES)

/* Namespace ops: flags in rec.attr. */
enum {
    DSOP_INTENT = 1u << 0,    /* sent before the call: the op may or may not happen */
    DSOP_DONE = 1u << 1,      /* sent after it returned 0: it is durable as of rec.txg */
    DSOP_RECURSIVE = 1u << 2, /* destroy -r */
    DSOP_CLONES = 1u << 3,    /* destroy -R */
    DSOP_LATER = 1u << 4,     /* rollback -r */
    DSOP_TAG1 = 1u << 5,      /* hold tag "t1" rather than "t0" */
};
#define DSOP_TAG(a) (((a)&DSOP_TAG1) ? 1u : 0u)

/* One report from the child; written with a single write(2) (invariant 3). */
struct rec {
    uint32_t type; /* enum rec_type */
    uint32_t
        attr; /* data ops: checksum | compress << 8 | level << 16 | copies << 24; else DSOP_* */
    uint64_t obj;
    uint64_t off;
    uint64_t len;
    uint64_t seed; /* data seed of a write */
    uint64_t txg;  /* data ops: txg of the op's tx; SYNCED/READY/DONE: a synced txg; INTENT: 0 */
    uint64_t opno; /* op number within the round */
    uint64_t sid;  /* namespace ops: snapshot id (the first one of REC_DS_SNAPSHOT) */
    uint32_t ds;   /* head slot of the op (0 = the root dataset) */
    uint32_t mask; /* REC_DS_SNAPSHOT: bit per head slot snapshotted */
};
_Static_assert(sizeof(struct rec) <= PIPE_BUF, "records must be written atomically");

const char *rec_name(uint32_t type);

#define ATTR(ck, comp, lvl, copies) \
    ((uint32_t)(ck) | (uint32_t)(comp) << 8 | (uint32_t)(lvl) << 16 | (uint32_t)(copies) << 24)
#define ATTR_CK(a)     ((uint8_t)(a))
#define ATTR_COMP(a)   ((uint8_t)((a) >> 8))
#define ATTR_LEVEL(a)  ((uint8_t)((a) >> 16))
#define ATTR_COPIES(a) ((uint8_t)((a) >> 24))

/* ---- the model of one object set (stress_model.c) -------------------------------------------- */

struct mobj {
    bool live;
    uint64_t id;
    uint32_t blocksize;
    uint32_t attr; /* ATTR() of the properties */
    uint64_t gen;  /* creation txg */
    uint64_t size;
    uint8_t *data; /* obj_max bytes once used; zero past size (invariant 4) */
};

struct model {
    struct mobj objs[MAX_OBJS];
    unsigned nlive;
    unsigned max_objs; /* <= MAX_OBJS */
    uint64_t obj_max;  /* object size limit, <= OBJ_MAX */
};

/* An empty model with these limits (no allocation). */
void model_init(struct model *m, unsigned max_objs, uint64_t obj_max);
/* Frees the contents; the limits stay. */
void model_reset(struct model *m);
struct mobj *model_find(struct model *m, uint64_t id);
/* dst (reset or initialised) becomes a deep copy of src. 0 or -ENOMEM. */
int model_copy(struct model *dst, const struct model *src);
/*
 * Applies one object operation record. Returns 0, or -EINVAL with the reason in why when the
 * record does not fit the model (an id created twice, an op on an object that does not exist).
 */
int model_apply(struct model *m, const struct rec *r, char *why, size_t whylen);
/* Content hash: every object's id, type, block size, properties, creation txg, size and bytes. */
uint64_t model_hash(const struct model *m);
/* The same hash of what object set os holds now; buf is OBJ_MAX scratch. 0 or an engine error. */
int objset_hash(struct objset *os, uint8_t *buf, uint64_t *out);

/* ---- checking a model against the pool (stress_model.c) -------------------------------------- */

struct checker {
    void (*fail)(void *arg, const char *msg);
    /* Optional triage: ops of this round on object obj of head ds touching byte `at`. */
    void (*explain)(void *arg, unsigned ds, uint64_t obj, uint64_t at);
    void *arg;
    bool quiet;     /* only count failures (deciding an in-flight op) */
    unsigned nfail; /* failures so far */
    uint8_t *buf;   /* OBJ_MAX scratch */
};

void check_fail(struct checker *ck, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Compares every object of model m (head slot ds, called `what` in messages) with object set os:
 * type, block size, properties, creation txg, size and the whole blocks; and the set of object
 * ids (nothing lost, nothing from the future).
 */
void model_compare(struct checker *ck, struct objset *os, const struct model *m, const char *what,
                   unsigned ds);

/* ---- the child ------------------------------------------------------------------------------- */

struct dsmodel;
struct dataset;

struct child {
    struct pool *pool;
    struct objset *os;  /* the root dataset's object set */
    struct dsmodel *dm; /* the parent's model, copied by fork; kept in step with the ops */
    int fd;             /* pipe to the parent */
    uint64_t rng;
    uint64_t seed;
    uint64_t opno;
    unsigned round;
    uint8_t *buf; /* OBJ_MAX scratch */
};

int child_fail(const struct child *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int child_send(const struct child *c, const struct rec *r);
/*
 * stress_obj.c: one random object step (create, write, punch, truncate, destroy, props, sync or a
 * checked read) on head slot ds: the root (h NULL, os the root object set) or a dataset opened as
 * h.
 */
int child_obj_step(struct child *c, unsigned ds, struct dataset *h, struct objset *os);
/* Reads a random range of object o of os and compares it with the model. */
int child_check_read(struct child *c, struct objset *os, const struct mobj *o, uint64_t obj_max,
                     const char *what);

#endif
