/* SPDX-License-Identifier: MIT */
/*
 * props: the dataset property table. Pure: no I/O, no pool access, no allocation, no global
 * mutable state; thread-safe. Governing text: /work/shared/design/pool-format.md §12 and §6.
 *
 * The module owns
 *   - one static table of native properties (name, value type, unit, default, inheritable,
 *     read-only statistic, create-only, which dataset kinds it applies to, accepted values);
 *   - parsing, validation and formatting of values (ZFS-style sizes, index names, ratios);
 *   - the rules for user properties (`module:name`);
 *   - resolution of a property for a dataset from the stored values of the dataset and its
 *     ancestors, which the caller passes in (struct props_chain), with the ZFS sources
 *     local / received / inherited from X / default / none;
 *   - the transitions set / inherit / inherit -S / receive on one dataset's stored state
 *     (props_stored_apply), so every caller stores the same thing.
 * It does not own storage: the dataset layer keeps values in its map, keyed by property name
 * (names never contain '$', so `name$recvd` / `name$inherit` keys cannot collide).
 *
 * Values. NUMBER and INDEX properties hold a uint64_t (sizes in bytes); STRING properties and
 * every user property hold a NUL-terminated string. The numbers of INDEX values below are
 * stored on disk: never renumber them. Property ids (enum prop_id) are in memory only.
 */
#ifndef LCPFS_CORE_PROPS_H
#define LCPFS_CORE_PROPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Native properties, in `get all` display order: read-only statistics first. */
enum prop_id {
    PROP_TYPE,              /* filesystem | volume | snapshot (from the chain, never stored) */
    PROP_CREATION,          /* seconds since the epoch */
    PROP_USED,              /* bytes, §6: usedbydataset + usedbysnapshots + usedbychildren + .. */
    PROP_AVAILABLE,         /* bytes */
    PROP_REFERENCED,        /* bytes */
    PROP_COMPRESSRATIO,     /* ratio x 100 (153 = 1.53x) */
    PROP_REFCOMPRESSRATIO,  /* ratio x 100 */
    PROP_LOGICALUSED,       /* bytes before compression */
    PROP_LOGICALREFERENCED, /* bytes before compression */
    PROP_USEDBYSNAPSHOTS,   /* bytes */
    PROP_USEDBYDATASET,     /* bytes */
    PROP_USEDBYCHILDREN,    /* bytes */
    PROP_USEDBYREFRESERVATION, /* bytes */
    PROP_WRITTEN,              /* bytes */
    PROP_CREATETXG,            /* txg number */
    PROP_GUID,                 /* 64-bit identity */
    PROP_ORIGIN,               /* string: origin snapshot of a clone */
    PROP_VOLSIZE,              /* bytes; volumes; a multiple of volblocksize */
    PROP_VOLBLOCKSIZE,         /* bytes; create-only; power of two 512..128K, default 16K */
    PROP_RECORDSIZE,           /* bytes; power of two 512..1M, default 128K; inheritable */
    PROP_QUOTA,                /* bytes, 0 = none; limits used */
    PROP_REFQUOTA,             /* bytes, 0 = none; limits referenced */
    PROP_RESERVATION,          /* bytes, 0 = none; guarantees used */
    PROP_REFRESERVATION,       /* bytes, 0 = none, PROPS_REFRESERV_AUTO (volumes, set time only) */
    PROP_COMPRESSION,          /* PROPS_COMPRESS(alg, level), enum compress_alg; inheritable */
    PROP_CHECKSUM,             /* enum cksum_alg; inheritable */
    PROP_COPIES,               /* 1..3; inheritable */
    PROP_DEDUP,                /* enum cksum_alg: CKSUM_OFF or CKSUM_SHA256; stored only */
    PROP_SYNC,                 /* enum prop_sync; inheritable */
    PROP_LOGBIAS,              /* enum prop_logbias; inheritable */
    PROP_PRIMARYCACHE,         /* enum prop_cache; inheritable */
    PROP_ATIME,                /* PROP_OFF / PROP_ON; inheritable */
    PROP_READONLY,             /* PROP_OFF / PROP_ON; inheritable */
    PROP_SNAPDIR,              /* enum prop_snapdir; inheritable */
    PROP_SHARENFS,             /* string ("off" or NFS export options); inheritable */
    PROP_ENCRYPTION,           /* PROP_OFF, the only value for now; create-only */
    PROP_COUNT
};

/* Dataset kinds; also the bits of prop_desc.applies and the value of the `type` property. */
enum {
    PROP_FS = 1u << 0,
    PROP_VOL = 1u << 1,
    PROP_SNAP = 1u << 2,
    PROP_ALL_KINDS = PROP_FS | PROP_VOL | PROP_SNAP
};

/* INDEX values (stored on disk). */
enum { PROP_OFF = 0, PROP_ON = 1 };
enum prop_sync { PROP_SYNC_STANDARD = 0, PROP_SYNC_ALWAYS = 1, PROP_SYNC_DISABLED = 2 };
enum prop_logbias { PROP_LOGBIAS_LATENCY = 0, PROP_LOGBIAS_THROUGHPUT = 1 };
enum prop_cache { PROP_CACHE_ALL = 0, PROP_CACHE_NONE = 1, PROP_CACHE_METADATA = 2 };
enum prop_snapdir { PROP_SNAPDIR_HIDDEN = 0, PROP_SNAPDIR_VISIBLE = 1 };

/* compression = enum compress_alg in bits 0..7, zstd level in bits 8..15 (0 for off/lz4). */
#define PROPS_COMPRESS(alg, level) ((uint64_t)(alg) | ((uint64_t)(level) << 8))
#define PROPS_COMPRESS_ALG(v)      ((unsigned)((v)&0xff))
#define PROPS_COMPRESS_LEVEL(v)    ((int)(((v) >> 8) & 0xff))

/*
 * refreservation=auto (volumes only) parses to this marker. The dataset layer replaces it with
 * the thick-provisioning size (volsize + metadata) before storing, as ZFS does, so a stored
 * refreservation is never AUTO (props_check_stored rejects it). Creating a volume that is not
 * sparse sets refreservation=auto; that rule, too, belongs to the dataset layer.
 */
#define PROPS_REFRESERV_AUTO UINT64_MAX

#define PROPS_NAME_MAX  255u  /* bytes in a property name, NUL excluded */
#define PROPS_VALUE_MAX 8191u /* bytes in a string value, NUL excluded */

enum prop_valtype {
    PROP_VAL_NUMBER, /* uint64_t, see enum prop_unit */
    PROP_VAL_INDEX,  /* uint64_t chosen from a table of names */
    PROP_VAL_STRING  /* NUL-terminated string */
};

enum prop_unit {
    PROP_UNIT_COUNT, /* plain integer: 3, 1234 */
    PROP_UNIT_BYTES, /* ZFS sizes: "16K", "1.50G"; parsable: exact bytes */
    PROP_UNIT_RATIO, /* ratio x 100: "1.53x"; parsable: "1.53" */
    PROP_UNIT_TIME   /* seconds since the epoch: "2025-03-01 12:00:00 UTC"; parsable: seconds */
};

/* One accepted name of an INDEX property. */
struct prop_index {
    const char *name;
    uint64_t value;
    bool alias; /* accepted when parsing, never printed ("on" for compression means lz4) */
};

/* Number flags (prop_desc.flags). */
enum {
    PROP_F_NONE_IS_ZERO = 1u << 0, /* "none" parses to 0, 0 prints "none" (quota, reservation) */
    PROP_F_AUTO = 1u << 1,         /* "auto" parses to PROPS_REFRESERV_AUTO on volumes */
    PROP_F_POW2 = 1u << 2          /* value must be a power of two */
};

struct prop_desc {
    const char *name;
    enum prop_id id;
    enum prop_valtype type;
    enum prop_unit unit;     /* NUMBER only */
    uint64_t default_num;    /* NUMBER / INDEX: value with source default */
    const char *default_str; /* STRING: value with source default; NULL = none */
    bool inheritable;        /* a dataset without a value takes its ancestors' */
    bool readonly;           /* a statistic: never set, value supplied by the caller */
    bool create_only;        /* settable only when the dataset is created */
    unsigned applies;        /* PROP_FS | PROP_VOL | PROP_SNAP */
    unsigned flags;          /* PROP_F_* */
    uint64_t min, max;       /* NUMBER, settable: accepted range (0 also ok with NONE_IS_ZERO) */
    const struct prop_index *index; /* INDEX: terminated by a NULL name */
    const char *hint;               /* accepted values, for messages ("standard | always | ..") */
};

/* The descriptor of id (static storage); NULL if id is out of range. */
const struct prop_desc *props_desc(enum prop_id id);
/* Looks up a native property by name. Returns 0, or -EINVAL if name is not native. */
int props_from_name(const char *name, enum prop_id *out);
/* The name of a native property; NULL if id is out of range. */
const char *props_name(enum prop_id id);
/* true when the property exists for datasets of kind (one of PROP_FS/PROP_VOL/PROP_SNAP). */
bool props_applies(enum prop_id id, unsigned kind);
/*
 * true for a valid user property name: 1..PROPS_NAME_MAX bytes of [a-z0-9-_.:] containing at
 * least one ':' (`com.example:backup`). User properties are strings, always inheritable, apply
 * to every kind, have no default and are never read-only.
 */
bool props_is_user_name(const char *name);

/*
 * Parses text as a value of NUMBER or INDEX property id, checking only that it is well formed
 * and in the table's range (no read-only, create-only or per-kind rules: see props_validate_set).
 * Accepts everything props_format prints in parsable form, the human forms of sizes, ratios,
 * "none" and index names (not the human form of times), plus:
 *   sizes: "512", "4K", "16k", "1.5G", "1T", "8KB", "8KiB", "100B" (suffixes B K M G T P E,
 *          any case, powers of 1024; a fraction is rounded down to whole bytes and needs a
 *          suffix); "none" for PROP_F_NONE_IS_ZERO; "auto" for PROP_F_AUTO;
 *   ratios: "1.53x" or "1.53"; times and counts: decimal integers.
 * Human sizes are rounded to three digits, so they parse back only approximately (and "16.0E",
 * printed for values near 2^64, does not fit). *out is written only on success.
 * Returns 0, or -EINVAL with a message in err (err may be NULL; always NUL-terminated).
 */
int props_parse(enum prop_id id, const char *text, uint64_t *out, char *err, size_t errlen);

/*
 * Formats value of NUMBER or INDEX property id into buf. Human form (parsable = false): "16K",
 * "1.50G", "512B", "none", "lz4", "zstd-7", "on", "1.53x", "2025-03-01 12:00:00 UTC". Parsable
 * form (`get -p`): exact bytes, raw numbers, "1.53" for ratios, index names unchanged, "0" for
 * none. PROPS_REFRESERV_AUTO prints "auto" in both forms.
 * Returns 0, -EINVAL (string property, or value not representable: an INDEX value not in the
 * table), or -EOVERFLOW when buf is too small (buf then holds a truncated string if len > 0).
 */
int props_format(enum prop_id id, uint64_t value, bool parsable, char *buf, size_t len);

/*
 * Validates `set name=value` on a dataset of kind (exactly one of PROP_FS, PROP_VOL, PROP_SNAP;
 * anything else is a caller bug and fails a VERIFY), at creation (at_create) or later. name is
 * native or user. On success returns 0 and, for NUMBER and INDEX properties, stores the value in
 * *parsed (may be NULL); STRING and user values are stored as the text itself; err is set to "".
 * Errors, each with a human message in err (may be NULL): -EINVAL  unknown property, invalid user
 * property name, value malformed or out of range, property does not apply to kind, string too long
 *   -EROFS   read-only statistic, or create-only property after creation
 * Does not check cross-property rules: see props_validate_volsize.
 */
int props_validate_set(const char *name, const char *value, unsigned kind, bool at_create,
                       uint64_t *parsed, char *err, size_t errlen);
/*
 * Validates `inherit [-S] name` on a dataset of kind. revert_received is -S (go back to the
 * received value). Non-inheritable native properties can only be reverted with -S (clear them
 * with `set name=none`); read-only and create-only ones never. Returns 0, -EINVAL or -EROFS.
 */
int props_validate_inherit(const char *name, unsigned kind, bool revert_received, char *err,
                           size_t errlen);
/* volsize must be a non-zero multiple of volblocksize. Returns 0 or -EINVAL with a message. */
int props_validate_volsize(uint64_t volsize, uint64_t volblocksize, char *err, size_t errlen);

/* ---- stored values and resolution --------------------------------------------------------- */

/* One value: num for NUMBER/INDEX, str for STRING/user (borrowed, see the owner). */
struct prop_val {
    uint64_t num;
    const char *str;
};

/*
 * What one dataset stores for one property (the dataset layer's `name`, `name$recvd` and
 * `name$inherit` entries):
 *   local            set on this dataset by `set`
 *   received         set by `receive`; kept when a local value overrides it
 *   inherit_override `inherit` was run while a received value existed: the received value is
 *                    ignored (the property is inherited) until `inherit -S`, `set` or the
 *                    received value is cleared
 */
struct props_stored {
    bool has_local, has_received, inherit_override;
    struct prop_val local, received;
};

enum props_op {
    PROPS_OP_SET,       /* set: local = v, inherit_override cleared */
    PROPS_OP_INHERIT,   /* inherit: local cleared; override set iff a received value exists */
    PROPS_OP_REVERT,    /* inherit -S: local and override cleared (received applies again) */
    PROPS_OP_RECV_SET,  /* receive: received = v; local and override kept */
    PROPS_OP_RECV_CLEAR /* receive dropped the property: received and override cleared */
};

/* Applies op to st; v is used by SET and RECV_SET (borrowed: strings are copied by pointer). */
void props_stored_apply(struct props_stored *st, enum props_op op, const struct prop_val *v);
/*
 * Checks a value loaded from disk for native property id: INDEX values in the table, numbers
 * in range (and never PROPS_REFRESERV_AUTO), strings non-NULL and at most PROPS_VALUE_MAX
 * bytes. Returns 0 or -ECORRUPT. props_resolve returns stored values as they are.
 */
int props_check_stored(enum prop_id id, const struct prop_val *v);

/*
 * Fills *out (it arrives zeroed) with what the dataset stores for property name.
 * Strings must stay valid until the caller is done with the resolution result.
 * For read-only statistics the caller reports the current value as a local value (has_local);
 * no value means "not available" ("-" in `get`). Returns 0 or a negative errno.
 */
typedef int (*props_lookup_fn)(void *arg, const char *name, struct props_stored *out);

struct props_ds {
    const char *name; /* full dataset name ("tank/a", "tank/a@s"), borrowed */
    unsigned kind;    /* PROP_FS, PROP_VOL or PROP_SNAP */
    props_lookup_fn lookup;
    void *arg;
};

/*
 * A dataset and the datasets it inherits from, nearest first: ds[0] is the dataset resolved,
 * ds[1] its parent (for a snapshot: its filesystem or volume), ..., ds[len-1] the pool's root.
 */
struct props_chain {
    const struct props_ds *ds;
    size_t len; /* >= 1 */
};

enum prop_source {
    PROP_SRC_NONE,     /* read-only statistic ("-" in the SOURCE column) */
    PROP_SRC_DEFAULT,  /* nobody set it: the table's default */
    PROP_SRC_LOCAL,    /* set on the dataset itself */
    PROP_SRC_RECEIVED, /* received on the dataset itself */
    PROP_SRC_INHERITED /* local or received value of ancestor `inherited_from` */
};

struct prop_value {
    struct prop_val val; /* str borrowed from a lookup or static (defaults) */
    enum prop_source source;
    const char *inherited_from; /* PROP_SRC_INHERITED: the ancestor's name (borrowed) */
};

/*
 * Resolves property name (native or user) for chain->ds[0], ZFS rules:
 *   read-only statistic: ds[0]'s reported value, source NONE (`type`: ds[0].kind, no lookup);
 *   otherwise, at ds[0]: local value (LOCAL), else received value unless inherit_override
 *   (RECEIVED); then, for inheritable properties only, the same test at ds[1], ds[2], ...
 *   (INHERITED from that dataset's name); then the default (DEFAULT).
 * User properties are inheritable and have no default.
 * Returns 0; -EINVAL for an unknown name; -ENOENT when the property does not apply to
 * ds[0].kind, a statistic has no value, or a user property is set nowhere; or the error of a
 * lookup. Values are borrowed as described at props_lookup_fn.
 */
int props_resolve(const char *name, const struct props_chain *chain, struct prop_value *out);

/*
 * The SOURCE column: "-", "default", "local", "received", "inherited from tank/a".
 * Returns 0 or -EOVERFLOW (truncated).
 */
int props_source_format(const struct prop_value *v, char *buf, size_t len);

#endif
