/* SPDX-License-Identifier: MIT */
/*
 * verify: the offline pool verifier behind lcpfs-check (our zdb) and lcpfs-stress.
 *
 * Imports the pool read-only at the selected uberblock and walks every block reachable from it
 * (MOS, space journal and checkpoint, dataset records, every object set and object). It checks:
 *   1. integrity: every block reads back and its checksum verifies; every DVA lies inside its
 *      vdev; indirect blocks have the shape their dnode says;
 *   2. allocation exactness: the allocated set replayed from checkpoint + journal equals the
 *      union of reachable DVAs — no leaks, no overlaps between blocks, nothing reachable is free;
 *   3. birth monotonicity: child birth <= parent birth <= uberblock txg;
 *   4. fill counts: an indirect's fill equals the sum of its children's; dnode used bytes equal the
 *      allocated size of the object's blocks.
 * Each violation is reported through the message callback naming the object set, object, level
 * and block id, and counted in the report.
 */
#ifndef LCPFS_CORE_VERIFY_H
#define LCPFS_CORE_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct verify_opts {
    uint64_t rewind_txg; /* 0 = newest valid uberblock */
};

struct verify_report {
    uint64_t txg;              /* uberblock txg that was verified */
    uint64_t objsets, objects; /* visited */
    uint64_t blocks;           /* reachable non-hole blocks (all levels) */
    uint64_t embedded, holes;
    uint64_t lsize_bytes;     /* logical bytes of reachable blocks */
    uint64_t asize_bytes;     /* allocated bytes of reachable blocks (all copies) */
    uint64_t allocated_bytes; /* allocated bytes according to the space maps */
    uint64_t errors;          /* total violations; 0 = clean */
    uint64_t cksum_errors, io_errors, structure_errors, birth_errors, fill_errors;
    uint64_t accounting_errors; /* dataset space records that disagree with the blocks */
    uint64_t damaged_pieces;    /* devices with recoverable damage (mirror sides, columns) */
    uint64_t leaked_bytes, overlap_bytes, free_but_reachable_bytes;
};

typedef void (*verify_msg_fn)(void *arg, const char *msg);

/*
 * Verifies the pool on paths[0..n). Returns 0 when the pool imported and was walked (violations,
 * if any, are in report->errors), or a negative errno when it could not be imported (em says
 * why). msg (may be NULL) receives one line per violation.
 */
int verify_pool(const char *const *paths, size_t n, const struct verify_opts *opts,
                struct verify_report *report, verify_msg_fn msg, void *arg, struct err_msg *em);

#endif
