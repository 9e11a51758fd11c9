/* SPDX-License-Identifier: MIT */
/*
 * ondisk: every on-disk constant and structure size of the LCPFS pool format, version 1.
 *
 * All integers are little-endian and are encoded and decoded field by field (bp.c, label.c,
 * dnode.c); no C struct is ever cast over a disk buffer. docs/FORMAT.md is the prose version of
 * this header; keep the two in step. Offsets in the tables below are byte offsets.
 *
 * Leaf device layout (size rounded down to LABEL_SIZE):
 *
 *   0       256K     512K               4M                         size-512K  size-256K  size
 *   | L0     | L1     | reserved (boot)  | allocatable space         | L2        | L3        |
 *
 * DVA offsets are relative to VDEV_DATA_START (the allocatable area of the top-level vdev).
 */
#ifndef LCPFS_CORE_ONDISK_H
#define LCPFS_CORE_ONDISK_H

#include <stdint.h>

#define LCPFS_FORMAT_VERSION   1ULL
#define LCPFS_SOFTWARE_VERSION 1ULL

#define KiB(x) ((uint64_t)(x) << 10)
#define MiB(x) ((uint64_t)(x) << 20)
#define GiB(x) ((uint64_t)(x) << 30)

#define SECTOR_SHIFT 9
#define SECTOR_SIZE  512u

/* ---- labels --------------------------------------------------------------------------------- */
#define LABEL_SIZE        KiB(256)
#define LABEL_COUNT       4
#define LABEL_CONFIG_OFF  KiB(8)   /* config record inside a label */
#define LABEL_CONFIG_SIZE KiB(120) /* room for the record, trailer included */
#define LABEL_RING_OFF    KiB(128) /* uberblock ring inside a label */
#define UB_SLOT_SIZE      4096u
#define UB_SLOTS          32u /* LABEL_RING_SIZE / UB_SLOT_SIZE */
#define VDEV_DATA_START   MiB(4)
#define VDEV_MIN_SIZE     MiB(64)

/*
 * Embedded checksum trailer (last 40 bytes of a config record region or uberblock slot):
 *   +0  u64 magic TRAILER_MAGIC
 *   +8  32 bytes SHA-256 over (region bytes before the trailer || u64le absolute device offset)
 * Mixing in the offset makes a region copied to the wrong place fail verification.
 */
#define TRAILER_MAGIC 0x4c43505452415a4cULL /* "LZARTPCL" */
#define TRAILER_SIZE  40u

/*
 * Uberblock (one ring slot, UB_SLOT_SIZE bytes; slot for txg T = T % UB_SLOTS):
 *   0   u64 magic UB_MAGIC
 *   8   u64 format version
 *   16  u64 txg
 *   24  u64 guid_sum          sum of all leaf guids (missing device detection)
 *   32  u64 timestamp         seconds since the epoch
 *   40  u64 software version
 *   48  blkptr (128)          root of the MOS object set
 *   176 u64 config_txg        txg of the newest config record
 *   184 u64 checkpoint_txg    reserved (pool checkpoints), 0
 *   192 u64 reflow_offset     reserved (RAID-Z expansion progress), 0
 *   200 u64 pool_guid
 *   208 ...                   zero
 *   UB_SLOT_SIZE-40 trailer
 */
#define UB_MAGIC      0x4c43504642554245ULL /* "EBUBFPCL" */
#define UB_OFF_ROOTBP 48

/*
 * Config record (in each label at LABEL_CONFIG_OFF; at most LABEL_CONFIG_SIZE bytes with trailer):
 *   0   u64 magic CONFIG_MAGIC
 *   8   u32 format version
 *   12  u32 record length in bytes (header + entries), trailer excluded
 *   16  u64 pool_guid
 *   24  u64 config txg
 *   32  u32 pool state (enum pool_state_ondisk)
 *   36  u32 number of vdev entries
 *   40  u64 this leaf's guid
 *   48  u64 guid_sum
 *   56  u64 creation time (seconds)
 *   64  char[64] pool name, NUL-padded
 *   128 ...  vdev entries, CONFIG_VDEV_ENTRY_SIZE each, in pre-order (parent before child)
 * The trailer sits at LABEL_CONFIG_SIZE - TRAILER_SIZE inside the region (fixed place).
 *
 * Vdev entry (CONFIG_VDEV_ENTRY_SIZE bytes):
 *   0   u64 guid
 *   8   u32 parent index (CONFIG_NO_PARENT for the root)
 *   12  u32 id (index among its parent's children; top-level vdev id for top-levels)
 *   16  u8  type (enum vdev_type_ondisk)
 *   17  u8  nparity (raidz)
 *   18  u8  ashift
 *   19  u8  state hint (enum vdev_state_ondisk)
 *   20  u32 number of children
 *   24  u64 allocatable size in bytes (top-level), leaf physical size (leaf)
 *   32  u32 metaslab shift (top-level)
 *   36  u32 reserved
 *   40  u64 expansion txg     reserved for RAID-Z expansion ("width by txg"), 0
 *   48  u64 expansion width   reserved, 0
 *   56  u64 missed since: leaves, the oldest txg whose writes the device may lack (it was
 *           offline or replaced); reads avoid it for blocks born since, resilver clears it; 0
 *   64  char[192] path hint, NUL-padded
 */
#define CONFIG_MAGIC           0x4c43504643464731ULL /* "1GFCFPCL" */
#define CONFIG_HEADER_SIZE     128u
#define CONFIG_VDEV_ENTRY_SIZE 256u
#define CONFIG_NO_PARENT       0xffffffffu
#define CONFIG_MAX_VDEVS \
    ((LABEL_CONFIG_SIZE - TRAILER_SIZE - CONFIG_HEADER_SIZE) / CONFIG_VDEV_ENTRY_SIZE)
#define POOL_NAME_MAX 63u
#define VDEV_PATH_MAX 191u

enum pool_state_ondisk { POOL_STATE_ACTIVE = 0, POOL_STATE_EXPORTED = 1, POOL_STATE_DESTROYED = 2 };
enum vdev_type_ondisk {
    VDEV_TYPE_ROOT = 1,
    VDEV_TYPE_LEAF = 2, /* a file or block device */
    VDEV_TYPE_MIRROR = 3,
    VDEV_TYPE_RAIDZ = 4,
};
enum vdev_state_ondisk { VDEV_STATE_ONLINE = 0, VDEV_STATE_OFFLINE = 1, VDEV_STATE_REMOVED = 2 };

/* ---- block pointers ------------------------------------------------------------------------ */
/*
 * Block pointer, BP_SIZE bytes:
 *   0   dva[0]  { u32 vdev, u32 asize in sectors (0 = unused), u64 offset in bytes }
 *   16  dva[1]
 *   32  dva[2]  (encrypted blocks: salt and IV here, as in ZFS; not used in format 1)
 *   48  u32 lsize   logical bytes
 *   52  u32 psize   physical bytes (after compression), <= lsize
 *   56  u8  compression (enum compress_alg)
 *   57  u8  checksum (enum cksum_alg)
 *   58  u8  type (enum obj_type)
 *   59  u8  level (0 = data, >0 indirect)
 *   60  u8  flags (BP_FLAG_*)
 *   61  u8  compression level (zstd)
 *   62  u16 reserved, 0
 *   64  u64 birth txg (logical): txg this reference was written; for holes, when the hole was made
 *   72  u64 physical birth txg: 0 = same as birth (dedup and clone hits differ)
 *   80  u64 fill: non-hole L0 blocks below (dnode blocks: allocated dnodes)
 *   88  u64 reserved (dedup), 0
 *   96  32 bytes checksum of the physical data (encrypted: 16 bytes checksum + 16 bytes MAC)
 *
 * Embedded BP (flags & BP_FLAG_EMBEDDED): the payload (psize <= BP_EMBED_MAX bytes, after
 * compression) lives in bytes [0,48) and [80,128); no DVA, no checksum (the parent's covers it),
 * fill is 1 by definition. Only level-0 blocks are embedded (an indirect's fill must be stored).
 * Hole: not embedded and dva[0].asize == 0. An all-zero BP is a hole born at txg 0.
 */
#define BP_SIZE      128u
#define BP_NDVAS     3
#define BP_EMBED_MAX 96u
#define BP_CKSUM_LEN 32u

enum bp_flags {
    BP_FLAG_EMBEDDED = 1u << 0,
    BP_FLAG_ENCRYPTED = 1u << 1, /* reserved: encryption issue */
    BP_FLAG_DEDUP = 1u << 2,     /* reserved: dedup issue */
    BP_FLAG_GANG = 1u << 3,      /* reserved: never set in format 1 */
};
#define BP_FLAGS_KNOWN (BP_FLAG_EMBEDDED)

/* Largest logical block: the allocator and asize field (32-bit sectors) allow far more. */
#define BLOCK_MAX_SHIFT 20
#define BLOCK_MAX_SIZE  (1u << BLOCK_MAX_SHIFT)
#define BLOCK_MIN_SHIFT 9

/* ---- object types -------------------------------------------------------------------------- */
enum obj_type {
    OT_NONE = 0,
    OT_OBJSET = 1,           /* an object set root block */
    OT_DNODE = 2,            /* blocks of the meta-dnode: arrays of dnodes */
    OT_POOL_DIRECTORY = 3,   /* MOS object 1 */
    OT_SPACE_JOURNAL = 4,    /* allocation journal (appended every txg) */
    OT_SPACE_CHECKPOINT = 5, /* full allocated-extent list as of a txg */
    OT_DSL_DATASET = 6,      /* dataset, snapshot or bookmark records (core/dsl_record.h) */
    OT_PLAIN = 7,            /* uninterpreted user data (tests, stress) */
    OT_MAP = 8,              /* generic CoW B+tree nodes */
    OT_ZVOL = 9,             /* zvol data */
    OT_DEADLIST = 10,        /* a deadlist's block pointer array (core/deadlist.h) */
    OT_TYPE_COUNT
};

/* ---- dnodes -------------------------------------------------------------------------------- */
/*
 * Dnode, DNODE_SIZE bytes:
 *   0   u8  type (enum obj_type; OT_NONE = free slot)
 *   1   u8  nlevels (1 = blkptrs address data blocks)
 *   2   u8  nblkptr (1..3)
 *   3   u8  indblkshift (log2 of indirect block size)
 *   4   u8  checksum (enum cksum_alg) for this object's blocks
 *   5   u8  compression (enum compress_alg)
 *   6   u8  compression level
 *   7   u8  copies (1..3)
 *   8   u32 datablksz (bytes, power of two, 512 .. BLOCK_MAX_SIZE)
 *   12  u16 bonuslen
 *   14  u8  bonustype
 *   15  u8  flags, 0
 *   16  u64 maxblkid + 1 ("nblocks": blocks ever addressed; 0 = empty)
 *   24  u64 used bytes (allocated size of all blocks of this object)
 *   32  u64 size in bytes (logical length)
 *   40  u64 generation (txg the object was created)
 *   48  16 bytes reserved, 0
 *   64  blkptr[nblkptr]
 *   64 + 128*nblkptr  bonus (DNODE_SIZE - 64 - 128*nblkptr bytes: 320 with one blkptr)
 */
#define DNODE_SIZE               512u
#define DNODE_CORE_SIZE          64u
#define DNODE_SHIFT              9
#define DNODE_BLOCK_SHIFT        14 /* meta-dnode data blocks: 16 KiB = 32 dnodes */
#define DNODES_PER_BLOCK         (1u << (DNODE_BLOCK_SHIFT - DNODE_SHIFT))
#define DNODE_MAX_BLKPTR         3
#define DNODE_BONUS_MAX(nblkptr) (DNODE_SIZE - DNODE_CORE_SIZE - BP_SIZE * (nblkptr))
#define INDIRECT_SHIFT_DEFAULT   17 /* 128 KiB indirect blocks = 1024 blkptrs */
#define INDIRECT_SHIFT_MIN       12
#define INDIRECT_SHIFT_MAX       17

/* ---- object sets --------------------------------------------------------------------------- */
/*
 * Object set root block, OBJSET_PHYS_SIZE bytes (written like any block, type OT_OBJSET):
 *   0    dnode (512)       the meta-dnode: its data is the array of dnodes; object n = slot n
 *   512  u32 objset type   (enum objset_type)
 *   516  u32 flags, 0
 *   520  64 bytes          reserved: intent-log header
 *   584  64 bytes          reserved: portable and local MACs (encryption)
 *   648  ...               zero
 */
#define OBJSET_PHYS_SIZE 1024u
enum objset_type { OBJSET_TYPE_MOS = 1, OBJSET_TYPE_FS = 2, OBJSET_TYPE_ZVOL = 3 };

/* ---- MOS ----------------------------------------------------------------------------------- */
/*
 * MOS object 1 is the pool directory, one data block of POOL_DIR_SIZE bytes:
 *   0   u64 magic POOL_DIR_MAGIC
 *   8   u64 version
 *   16  u64 space journal object (current; 0 = none)
 *   24  u64 space checkpoint object (0 = none)
 *   32  u64 checkpoint txg (allocation state it captures: end of this txg)
 *   40  u64 root dataset object (OT_DSL_DATASET; every other record is found by type)
 *   48  u64 pool creation txg
 *   56  u64 x 14 scan state (scrub.c): state, kind, min_birth, max_txg, start_time, end_time,
 *           to_examine, examined, blocks, repaired_bytes, errors, bookmark dataset, bookmark
 *           object, bookmark block id (the last data block scanned)
 *   168 ... reserved for later objects (dataset directory map, error log, DDT), 0
 */
#define POOL_DIR_SCAN_OFF 56u
#define POOL_DIR_OBJ      1
#define POOL_DIR_SIZE     512u
#define POOL_DIR_MAGIC    0x4c43504644495231ULL /* "1RIDFPCL" */

/*
 * Space journal and checkpoint records, 16 bytes each, packed into the object's data:
 *   word0 bits 63..62  kind (enum space_rec_kind)
 *         bits 61..40  top-level vdev id (22 bits)
 *         bits 39..0   length in sectors (40 bits)
 *   word1              offset in bytes (ALLOC/FREE) or txg (TXG marker)
 * A journal is a sequence of TXG markers each followed by that txg's ALLOC/FREE records, in the
 * order they happened. A checkpoint is one TXG marker and then ALLOC records of every allocated
 * extent, sorted by (vdev, offset).
 */
#define SPACE_REC_SIZE 16u
enum space_rec_kind { SPACE_REC_ALLOC = 0, SPACE_REC_FREE = 1, SPACE_REC_TXG = 2 };

/* Dataset records (OT_DSL_DATASET objects): core/dsl_record.h and docs/FORMAT.md. */

#endif
