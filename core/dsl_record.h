/* SPDX-License-Identifier: MIT */
/*
 * dsl_record: the on-disk records of the dataset layer and their codecs. Pure: no I/O.
 *
 * Every filesystem, volume, snapshot and bookmark is one MOS object of type OT_DSL_DATASET
 * holding two records (docs/FORMAT.md "Datasets"):
 *   the hot record   its bonus (DSL_RECORD_SIZE bytes, struct dsl_phys): root block pointer,
 *                    links (parent, previous/next snapshot, origin), deadlist, space counters;
 *                    rewritten by the sync thread whenever the dataset changes;
 *   the cold record  its data (struct dsl_cold): the name component, the stored properties and
 *                    the user holds; rewritten whole when one of them changes (rename, set,
 *                    hold), which is rare.
 * Names live in the records, not in directory maps: import reads every record and rebuilds the
 * namespace in memory (core/dsl.c), so a rename or destroy is one record change, atomic with
 * its txg.
 *
 * Decoders validate every field a reader would trust and return -ECORRUPT (never assert): the
 * bytes come from disk.
 */
#ifndef LCPFS_CORE_DSL_RECORD_H
#define LCPFS_CORE_DSL_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bp.h"

#define DSL_RECORD_SIZE   320u        /* == DNODE_BONUS_MAX(1) */
#define DSL_COLD_MAGIC    0x5344434cu /* "LCDS" */
#define DSL_COLD_VERSION  1u
#define DSL_COMPONENT_MAX 255u /* bytes in one name component */
#define DSL_NAME_MAX      255u /* bytes in a full name (pool/a/b@snap), like ZFS */
#define DSL_PROPS_MAX     4096u
#define DSL_HOLDS_MAX     4096u
#define DSL_TAG_MAX       255u

/* Record kinds (stored). */
enum dsl_kind { DSL_KIND_FS = 1, DSL_KIND_VOL = 2, DSL_KIND_SNAP = 3, DSL_KIND_BOOKMARK = 4 };

/*
 * Hot record, DSL_RECORD_SIZE bytes, little-endian:
 *   0   blkptr (128)  root of the object set (heads and snapshots; a hole for bookmarks)
 *   128 u64 creation txg (bookmarks: the bookmarked snapshot's txg)
 *   136 u64 guid (bookmarks: the snapshot's guid)
 *   144 u32 kind (enum dsl_kind)
 *   148 u32 flags, 0
 *   152 u64 parent: heads -> parent head (0 for the pool's root dataset); snapshots and
 *           bookmarks -> the head they belong to
 *   160 u64 previous snapshot (heads: newest snapshot, or the origin for a clone without
 *           snapshots; snapshots: the one before, or the origin); 0 = none
 *   168 u64 previous snapshot txg (0 = none): the birth-time rule's boundary
 *   176 u64 next snapshot (snapshots; 0 = the head is next)
 *   184 u64 origin snapshot (clone heads; 0 otherwise)
 *   192 u64 deadlist array object, 200 u64 deadlist summary object (heads and snapshots)
 *   208 u64 referenced allocated bytes, 216 physical bytes, 224 logical bytes
 *   232 u64 unique bytes (heads: allocated bytes born after the previous snapshot)
 *   240 u64 creation time (seconds since the epoch)
 *   248 u64 number of clones (snapshots)
 *   256 ... reserved (encryption key object, receive state), 0
 */
struct dsl_phys {
    struct blkptr root;
    uint64_t create_txg, guid;
    uint32_t kind, flags;
    uint64_t parent_obj, prev_snap_obj, prev_snap_txg, next_snap_obj, origin_obj;
    uint64_t dl_bps_obj, dl_summary_obj;
    uint64_t ref_asize, ref_psize, ref_lsize, unique_asize;
    uint64_t create_time, num_clones;
};

void dsl_phys_encode(const struct dsl_phys *ph, uint8_t out[static DSL_RECORD_SIZE]);
/* Returns 0 or -ECORRUPT (bad kind, flags, non-zero reserved bytes, bad root BP for the kind). */
int dsl_phys_decode(const uint8_t in[static DSL_RECORD_SIZE], struct dsl_phys *ph);

/* One stored property entry: key is a property name, or name$recvd / name$inherit. */
struct dsl_propent {
    char *key;
    bool is_num;
    uint64_t num;
    char *str; /* !is_num */
};

struct dsl_holdent {
    char *tag;
    uint64_t time;
};

/*
 * Cold record, the object's data, little-endian, exactly the encoded length:
 *   u32 magic DSL_COLD_MAGIC, u16 version, u16 name length n (1..DSL_COMPONENT_MAX), name[n]
 *   u32 nprops (<= DSL_PROPS_MAX), then each: u16 key length, key, u8 kind (0 number, 1 string),
 *       u64 number | u16 length + bytes (<= 8191)
 *   u32 nholds (<= DSL_HOLDS_MAX), then each: u16 tag length (1..DSL_TAG_MAX), tag, u64 time
 * Strings hold no NUL bytes.
 */
struct dsl_cold {
    char *name;
    struct dsl_propent *props;
    size_t nprops;
    struct dsl_holdent *holds;
    size_t nholds;
};

/* Encodes into a new buffer (*out, *len; caller frees). -ENOMEM, -EINVAL (a field too long). */
int dsl_cold_encode(const struct dsl_cold *c, uint8_t **out, size_t *len);
/* Decodes into c (owns new strings; free with dsl_cold_release). -ECORRUPT, -ENOMEM. */
int dsl_cold_decode(const uint8_t *in, size_t len, struct dsl_cold *c);
void dsl_cold_release(struct dsl_cold *c);

/* true for a valid name component: 1..DSL_COMPONENT_MAX bytes of [A-Za-z0-9_.:-], not "."/"..". */
bool dsl_component_valid(const char *s, size_t len);

#endif
