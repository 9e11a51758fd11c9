/* SPDX-License-Identifier: MIT */
/*
 * stress_ds: the dataset part of lcpfs-stress — a model of the pool's namespace (heads in fixed
 * name slots, snapshots with their contents and a content hash recorded at creation, clone
 * origins, holds), the child's random dataset operations, and the parent's comparison of the
 * model with an imported pool. lcpfs_stress.c has the theory of operation.
 */
#ifndef LCPFS_TESTS_STRESS_DS_H
#define LCPFS_TESTS_STRESS_DS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tests/stress/stress.h"

#define DS_HEADS      8  /* head slots; slot 0 is the root dataset, the others have fixed names */
#define DS_SNAPS      16 /* live snapshots at most */
#define DS_ROOT_SNAPS 2  /* of which of the root dataset (each pins up to 32 MiB of old data) */
#define DS_MAX_OBJS   4  /* objects per dataset head other than the root */
#define DS_OBJ_MAX    KiB(256)

struct mhead {
    bool live;
    uint64_t origin; /* sid of the origin snapshot (clones); 0 = none */
    struct model m;  /* contents */
};

struct msnap {
    bool live;
    unsigned head;  /* slot of the head it belongs to (promote moves snapshots) */
    uint64_t sid;   /* unique and increasing with creation: orders a head's snapshots */
    unsigned holds; /* bit per hold tag */
    bool hashed;    /* hash was recorded (the parent's model records it, the child's not) */
    uint64_t hash;  /* model_hash() of the contents at creation; must never change */
    struct model m; /* contents; empty for snapshots of the root dataset (only the hash) */
};

struct dsmodel {
    struct mhead heads[DS_HEADS];
    struct msnap snaps[DS_SNAPS];
    bool hashing; /* record content hashes of new snapshots */
};

/* A model of a new pool: only the root dataset, empty. */
void dsm_init(struct dsmodel *dm, bool hashing);
/* Frees everything; dm is a new pool's model again. */
void dsm_reset(struct dsmodel *dm);
/* dst (initialised) becomes a deep copy of src. 0 or -ENOMEM. */
int dsm_copy(struct dsmodel *dst, const struct dsmodel *src);
/* Number of live heads (the root included) and snapshots. */
unsigned dsm_nheads(const struct dsmodel *dm);
unsigned dsm_nsnaps(const struct dsmodel *dm);

/*
 * Applies one record: an object op to its head's model, or a namespace op (after checking that
 * the engine must accept it). Returns 0, or a negative errno with the reason in why.
 */
int dsm_apply(struct dsmodel *dm, const struct rec *r, char *why, size_t whylen);

/* Describes record r (a namespace op) by the names it acts on, as of model dm. */
void dsm_describe(const struct dsmodel *dm, const struct rec *r, char *buf, size_t len);

/* The child: one random dataset step (object ops in a dataset, a namespace op, a read check). */
int ds_child_step(struct child *c);

/*
 * Compares the namespace with the model: exactly the model's datasets and snapshots exist,
 * snapshots listed in creation order, origins, clone counts and holds, every head's contents;
 * with deep also every snapshot's contents against the hash recorded at its creation.
 */
void dsm_check(struct checker *ck, struct pool *p, const struct dsmodel *dm, bool deep);

#endif
