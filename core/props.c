/* SPDX-License-Identifier: MIT */
/*
 * props: the dataset property table, value parsing/formatting and inheritance resolution.
 *
 * Theory of operation
 * -------------------
 * Everything is driven by one constant table, prop_table[], indexed by enum prop_id. A row says
 * what a property's values look like (type, unit, accepted range or names), what its default is,
 * whether it is inherited, whether it is a read-only statistic, whether it may be set only at
 * creation, and which dataset kinds have it. Parsing, validation, formatting and resolution
 * read the row; no property is special-cased in code except `type` (its value is the kind the
 * caller already passes in the chain) and refreservation=auto (volumes only).
 *
 * Resolution (props_resolve) is the ZFS walk: for the dataset and then, if the property is
 * inheritable, each ancestor nearest first, a local value wins, else a received value unless an
 * `inherit` override hides it; the first dataset with a value decides; else the default. The
 * module never stores anything: the caller's lookup callback reports what each dataset stores
 * (struct props_stored), and props_stored_apply defines how set / inherit / inherit -S / receive
 * change that state.
 *
 * Invariants
 *   1. prop_table[i].id == i and every id has a row with a name (checked by the unit tests).
 *   2. Every INDEX value has exactly one non-alias name, so formatting is a function.
 *   3. props_parse accepts every string props_format prints in parsable form, and gives back
 *      the value formatted (round trip; the human form of sizes is rounded).
 *   4. A stored state never has inherit_override without a received value.
 *   5. No function here allocates, does I/O or touches global mutable state.
 */
#include "core/props.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "core/cksum.h"
#include "core/compress.h"

#define KIB ((uint64_t)1 << 10)
#define MIB ((uint64_t)1 << 20)

/* ---- index tables ------------------------------------------------------------------------- */

static const struct prop_index idx_onoff[] = {
    { "off", PROP_OFF, false },
    { "on", PROP_ON, false },
    { NULL, 0, false },
};

static const struct prop_index idx_type[] = {
    { "filesystem", PROP_FS, false },
    { "volume", PROP_VOL, false },
    { "snapshot", PROP_SNAP, false },
    { NULL, 0, false },
};

_Static_assert(ZSTD_LEVEL_MAX == 19, "idx_compression lists zstd-1..zstd-19");
_Static_assert(ZSTD_LEVEL_DEFAULT == 3, "idx_compression prints zstd-3 as \"zstd\"");
#define ZSTD_ROW(n)                                                             \
    {                                                                           \
        "zstd-" #n, PROPS_COMPRESS(COMPRESS_ZSTD, n), (n) == ZSTD_LEVEL_DEFAULT \
    }

/* Same names and meaning as compress_from_name()/compress_name(); the tests cross-check. */
static const struct prop_index idx_compression[] = {
    { "off", PROPS_COMPRESS(COMPRESS_OFF, 0), false },
    { "on", PROPS_COMPRESS(COMPRESS_LZ4, 0), true },
    { "lz4", PROPS_COMPRESS(COMPRESS_LZ4, 0), false },
    { "zstd", PROPS_COMPRESS(COMPRESS_ZSTD, ZSTD_LEVEL_DEFAULT), false },
    ZSTD_ROW(1),
    ZSTD_ROW(2),
    ZSTD_ROW(3),
    ZSTD_ROW(4),
    ZSTD_ROW(5),
    ZSTD_ROW(6),
    ZSTD_ROW(7),
    ZSTD_ROW(8),
    ZSTD_ROW(9),
    ZSTD_ROW(10),
    ZSTD_ROW(11),
    ZSTD_ROW(12),
    ZSTD_ROW(13),
    ZSTD_ROW(14),
    ZSTD_ROW(15),
    ZSTD_ROW(16),
    ZSTD_ROW(17),
    ZSTD_ROW(18),
    ZSTD_ROW(19),
    { NULL, 0, false },
};

/* Same names and meaning as cksum_from_name()/cksum_name(). */
static const struct prop_index idx_checksum[] = {
    { "off", CKSUM_OFF, false },         { "on", CKSUM_XXH3, true },
    { "xxh3", CKSUM_XXH3, false },       { "sha256", CKSUM_SHA256, false },
    { "blake2b", CKSUM_BLAKE2B, false }, { NULL, 0, false },
};

static const struct prop_index idx_dedup[] = {
    { "off", CKSUM_OFF, false },
    { "on", CKSUM_SHA256, true },
    { "sha256", CKSUM_SHA256, false },
    { NULL, 0, false },
};

static const struct prop_index idx_sync[] = {
    { "standard", PROP_SYNC_STANDARD, false },
    { "always", PROP_SYNC_ALWAYS, false },
    { "disabled", PROP_SYNC_DISABLED, false },
    { NULL, 0, false },
};

static const struct prop_index idx_logbias[] = {
    { "latency", PROP_LOGBIAS_LATENCY, false },
    { "throughput", PROP_LOGBIAS_THROUGHPUT, false },
    { NULL, 0, false },
};

static const struct prop_index idx_cache[] = {
    { "all", PROP_CACHE_ALL, false },
    { "none", PROP_CACHE_NONE, false },
    { "metadata", PROP_CACHE_METADATA, false },
    { NULL, 0, false },
};

static const struct prop_index idx_snapdir[] = {
    { "hidden", PROP_SNAPDIR_HIDDEN, false },
    { "visible", PROP_SNAPDIR_VISIBLE, false },
    { NULL, 0, false },
};

static const struct prop_index idx_encryption[] = {
    { "off", PROP_OFF, false },
    { NULL, 0, false },
};

/* ---- the table ---------------------------------------------------------------------------- */

#define FSVOL (PROP_FS | PROP_VOL)

/* Row attributes. */
#define A_INH    1u /* inheritable */
#define A_RO     2u /* read-only statistic */
#define A_CREATE 4u /* create-only */

#define ROW(id_, name_, type_, unit_, dflt_, dstr_, attrs_, applies_, flags_, min_, max_, idx_, \
            hint_)                                                                              \
    [id_] = { .name = (name_),                                                                  \
              .id = (id_),                                                                      \
              .type = (type_),                                                                  \
              .unit = (unit_),                                                                  \
              .default_num = (dflt_),                                                           \
              .default_str = (dstr_),                                                           \
              .inheritable = ((attrs_)&A_INH) != 0,                                             \
              .readonly = ((attrs_)&A_RO) != 0,                                                 \
              .create_only = ((attrs_)&A_CREATE) != 0,                                          \
              .applies = (applies_),                                                            \
              .flags = (flags_),                                                                \
              .min = (min_),                                                                    \
              .max = (max_),                                                                    \
              .index = (idx_),                                                                  \
              .hint = (hint_) }
/* A read-only statistic held in a number. */
#define STAT(id_, name_, unit_, applies_) \
    ROW(id_, name_, PROP_VAL_NUMBER, unit_, 0, NULL, A_RO, applies_, 0, 0, UINT64_MAX, NULL, NULL)
/* A settable size. */
#define SIZE(id_, name_, dflt_, attrs_, applies_, flags_, min_, max_, hint_)                       \
    ROW(id_, name_, PROP_VAL_NUMBER, PROP_UNIT_BYTES, dflt_, NULL, attrs_, applies_, flags_, min_, \
        max_, NULL, hint_)
/* A settable INDEX property. */
#define INDEXED(id_, name_, idx_, dflt_, attrs_, applies_, hint_)                                  \
    ROW(id_, name_, PROP_VAL_INDEX, PROP_UNIT_COUNT, dflt_, NULL, attrs_, applies_, 0, 0, 0, idx_, \
        hint_)

static const struct prop_desc prop_table[PROP_COUNT] = {
    ROW(PROP_TYPE, "type", PROP_VAL_INDEX, PROP_UNIT_COUNT, 0, NULL, A_RO, PROP_ALL_KINDS, 0, 0, 0,
        idx_type, NULL),
    STAT(PROP_CREATION, "creation", PROP_UNIT_TIME, PROP_ALL_KINDS),
    STAT(PROP_USED, "used", PROP_UNIT_BYTES, PROP_ALL_KINDS),
    STAT(PROP_AVAILABLE, "available", PROP_UNIT_BYTES, FSVOL),
    STAT(PROP_REFERENCED, "referenced", PROP_UNIT_BYTES, PROP_ALL_KINDS),
    STAT(PROP_COMPRESSRATIO, "compressratio", PROP_UNIT_RATIO, PROP_ALL_KINDS),
    STAT(PROP_REFCOMPRESSRATIO, "refcompressratio", PROP_UNIT_RATIO, PROP_ALL_KINDS),
    STAT(PROP_LOGICALUSED, "logicalused", PROP_UNIT_BYTES, FSVOL),
    STAT(PROP_LOGICALREFERENCED, "logicalreferenced", PROP_UNIT_BYTES, PROP_ALL_KINDS),
    STAT(PROP_USEDBYSNAPSHOTS, "usedbysnapshots", PROP_UNIT_BYTES, FSVOL),
    STAT(PROP_USEDBYDATASET, "usedbydataset", PROP_UNIT_BYTES, FSVOL),
    STAT(PROP_USEDBYCHILDREN, "usedbychildren", PROP_UNIT_BYTES, FSVOL),
    STAT(PROP_USEDBYREFRESERVATION, "usedbyrefreservation", PROP_UNIT_BYTES, FSVOL),
    STAT(PROP_WRITTEN, "written", PROP_UNIT_BYTES, PROP_ALL_KINDS),
    STAT(PROP_CREATETXG, "createtxg", PROP_UNIT_COUNT, PROP_ALL_KINDS),
    STAT(PROP_GUID, "guid", PROP_UNIT_COUNT, PROP_ALL_KINDS),
    ROW(PROP_ORIGIN, "origin", PROP_VAL_STRING, PROP_UNIT_COUNT, 0, NULL, A_RO, FSVOL, 0, 0, 0,
        NULL, NULL),
    SIZE(PROP_VOLSIZE, "volsize", 0, 0, PROP_VOL, 0, 1, UINT64_MAX,
         "a size such as 10G (a multiple of volblocksize)"),
    SIZE(PROP_VOLBLOCKSIZE, "volblocksize", 16 * KIB, A_CREATE, PROP_VOL, PROP_F_POW2, 512,
         128 * KIB, "a power of two from 512 to 128K"),
    SIZE(PROP_RECORDSIZE, "recordsize", 128 * KIB, A_INH, PROP_FS, PROP_F_POW2, 512, 1 * MIB,
         "a power of two from 512 to 1M"),
    SIZE(PROP_QUOTA, "quota", 0, 0, PROP_FS, PROP_F_NONE_IS_ZERO, 0, UINT64_MAX,
         "a size such as 10G, or none"),
    SIZE(PROP_REFQUOTA, "refquota", 0, 0, PROP_FS, PROP_F_NONE_IS_ZERO, 0, UINT64_MAX,
         "a size such as 10G, or none"),
    SIZE(PROP_RESERVATION, "reservation", 0, 0, FSVOL, PROP_F_NONE_IS_ZERO, 0, UINT64_MAX,
         "a size such as 10G, or none"),
    SIZE(PROP_REFRESERVATION, "refreservation", 0, 0, FSVOL, PROP_F_NONE_IS_ZERO | PROP_F_AUTO, 0,
         PROPS_REFRESERV_AUTO - 1, "a size such as 10G, none, or auto (volumes)"),
    INDEXED(PROP_COMPRESSION, "compression", idx_compression, PROPS_COMPRESS(COMPRESS_LZ4, 0),
            A_INH, FSVOL, "off | on | lz4 | zstd | zstd-1 .. zstd-19"),
    INDEXED(PROP_CHECKSUM, "checksum", idx_checksum, CKSUM_XXH3, A_INH, FSVOL,
            "off | on | xxh3 | sha256 | blake2b"),
    ROW(PROP_COPIES, "copies", PROP_VAL_NUMBER, PROP_UNIT_COUNT, 1, NULL, A_INH, FSVOL, 0, 1, 3,
        NULL, "1, 2 or 3"),
    INDEXED(PROP_DEDUP, "dedup", idx_dedup, CKSUM_OFF, A_INH, FSVOL, "off | on | sha256"),
    INDEXED(PROP_SYNC, "sync", idx_sync, PROP_SYNC_STANDARD, A_INH, FSVOL,
            "standard | always | disabled"),
    INDEXED(PROP_LOGBIAS, "logbias", idx_logbias, PROP_LOGBIAS_LATENCY, A_INH, FSVOL,
            "latency | throughput"),
    INDEXED(PROP_PRIMARYCACHE, "primarycache", idx_cache, PROP_CACHE_ALL, A_INH, FSVOL,
            "all | none | metadata"),
    INDEXED(PROP_ATIME, "atime", idx_onoff, PROP_ON, A_INH, PROP_FS, "on | off"),
    INDEXED(PROP_READONLY, "readonly", idx_onoff, PROP_OFF, A_INH, FSVOL, "on | off"),
    INDEXED(PROP_SNAPDIR, "snapdir", idx_snapdir, PROP_SNAPDIR_HIDDEN, A_INH, PROP_FS,
            "hidden | visible"),
    ROW(PROP_SHARENFS, "sharenfs", PROP_VAL_STRING, PROP_UNIT_COUNT, 0, "off", A_INH, PROP_FS, 0, 0,
        0, NULL, "off, on, or NFS export options"),
    INDEXED(PROP_ENCRYPTION, "encryption", idx_encryption, PROP_OFF, A_CREATE, FSVOL,
            "off (encryption is not supported yet)"),
};

/* ---- small helpers ------------------------------------------------------------------------ */

/* Formats a message into err (if any) and returns code. */
__attribute__((format(printf, 4, 5))) static int
fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* snprintf into buf; 0 or -EOVERFLOW when it did not fit. */
__attribute__((format(printf, 3, 4))) static int
put(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len)
        return ERR(-EOVERFLOW);
    return 0;
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char
lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool
is_kind(unsigned kind)
{
    return kind == PROP_FS || kind == PROP_VOL || kind == PROP_SNAP;
}

static const char *
kind_plural(unsigned kind)
{
    return kind == PROP_VOL ? "volumes" : kind == PROP_SNAP ? "snapshots" : "filesystems";
}

/* Parses a run of decimal digits at *p (advancing it) into *out. -EINVAL if none, -ERANGE. */
static int
parse_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;

    if (!is_digit(*s))
        return -EINVAL;
    for (; is_digit(*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return 0;
}

/*
 * "<digits>[.<digits>][B|K|M|G|T|P|E[B|iB]]", suffixes in any case, powers of 1024. A fraction
 * is kept to 6 digits and the result rounded down; a fraction needs a unit above bytes.
 * Returns 0, -EINVAL (malformed) or -ERANGE (does not fit in 64 bits).
 */
static int
parse_size(const char *s, uint64_t *out)
{
    uint64_t ip, frac = 0, fden = 1;
    bool has_frac = false;
    int rc = parse_u64(&s, &ip);
    if (rc != 0)
        return rc;
    if (*s == '.') {
        s++;
        if (!is_digit(*s))
            return -EINVAL;
        has_frac = true;
        for (; is_digit(*s); s++) {
            if (fden < 1000000) {
                frac = frac * 10 + (uint64_t)(*s - '0');
                fden *= 10;
            }
        }
    }
    unsigned shift = 0;
    if (*s != '\0') {
        const char *units = "bkmgtpe";
        const char *u = strchr(units, lower(*s));
        if (u == NULL)
            return -EINVAL;
        shift = 10 * (unsigned)(u - units);
        s++;
        if (shift > 0) {
            if (lower(s[0]) == 'b')
                s++;
            else if (lower(s[0]) == 'i' && lower(s[1]) == 'b')
                s += 2;
        }
        if (*s != '\0')
            return -EINVAL;
    }
    if (has_frac && shift == 0)
        return -EINVAL;
    if (shift > 0 && ip > (UINT64_MAX >> shift))
        return -ERANGE;
    uint64_t v = ip << shift;
    if (has_frac) {
        /* floor(frac * 2^shift / fden) without overflow: frac < fden <= 10^6. */
        uint64_t mult = (uint64_t)1 << shift;
        uint64_t add = frac * (mult / fden) + frac * (mult % fden) / fden;
        if (v > UINT64_MAX - add)
            return -ERANGE;
        v += add;
    }
    *out = v;
    return 0;
}

/* "<digits>[.<d>[<d>]][x]" -> ratio x 100. */
static int
parse_ratio(const char *s, uint64_t *out)
{
    uint64_t ip, frac = 0;
    int rc = parse_u64(&s, &ip);
    if (rc != 0)
        return rc;
    if (*s == '.') {
        s++;
        if (!is_digit(s[0]))
            return -EINVAL;
        frac = (uint64_t)(s[0] - '0') * 10;
        s++;
        if (is_digit(s[0])) {
            frac += (uint64_t)(s[0] - '0');
            s++;
        }
    }
    if (*s == 'x')
        s++;
    if (*s != '\0')
        return -EINVAL;
    if (ip > (UINT64_MAX - frac) / 100)
        return -ERANGE;
    *out = ip * 100 + frac;
    return 0;
}

/* The zfs_nicenum form: "512B", "16K", "1.50G", "15.5G", "155G". */
static int
format_size(uint64_t n, char *buf, size_t len)
{
    static const char units[] = "BKMGTPE";
    unsigned idx = 0;
    for (uint64_t v = n; v >= 1024 && idx < 6; v /= 1024)
        idx++;
    uint64_t div = (uint64_t)1 << (10 * idx);
    if (n % div == 0)
        return put(buf, len, "%llu%c", (unsigned long long)(n / div), units[idx]);
    double val = (double)n / (double)div;
    char tmp[32];
    for (int prec = 2; prec >= 0; prec--) {
        int w = snprintf(tmp, sizeof(tmp), "%.*f%c", prec, val, units[idx]);
        if (w > 0 && w <= 5)
            break;
    }
    return put(buf, len, "%s", tmp);
}

/* Days since 1970-01-01 -> civil date (H. Hinnant's algorithm, proleptic Gregorian). */
static void
civil_from_days(uint64_t z, uint64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    uint64_t era = z / 146097;
    uint64_t doe = z - era * 146097;
    uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    uint64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2 ? 1 : 0);
}

static int
format_time(uint64_t t, char *buf, size_t len)
{
    uint64_t y;
    unsigned mo, d;
    civil_from_days(t / 86400, &y, &mo, &d);
    unsigned sec = (unsigned)(t % 86400);
    return put(buf, len, "%04llu-%02u-%02u %02u:%02u:%02u UTC", (unsigned long long)y, mo, d,
               sec / 3600, sec / 60 % 60, sec % 60);
}

static const struct prop_index *
index_by_value(const struct prop_index *idx, uint64_t v)
{
    for (; idx->name != NULL; idx++) {
        if (!idx->alias && idx->value == v)
            return idx;
    }
    return NULL;
}

/* v within the row's settable range (0 with NONE_IS_ZERO, AUTO with F_AUTO not included). */
static bool
in_range(const struct prop_desc *d, uint64_t v)
{
    if (v == 0 && (d->flags & PROP_F_NONE_IS_ZERO))
        return true;
    if (v < d->min || v > d->max)
        return false;
    return !(d->flags & PROP_F_POW2) || (v & (v - 1)) == 0;
}

static int
range_error(const struct prop_desc *d, char *err, size_t errlen)
{
    char lo[32], hi[32];
    if (d->unit == PROP_UNIT_BYTES) {
        format_size(d->min, lo, sizeof(lo));
        format_size(d->max, hi, sizeof(hi));
    } else {
        snprintf(lo, sizeof(lo), "%llu", (unsigned long long)d->min);
        snprintf(hi, sizeof(hi), "%llu", (unsigned long long)d->max);
    }
    if (d->flags & PROP_F_POW2)
        return fail(err, errlen, ERR(-EINVAL), "%s must be a power of two between %s and %s",
                    d->name, lo, hi);
    if (d->min == 1 && d->max == UINT64_MAX)
        return fail(err, errlen, ERR(-EINVAL), "%s must be greater than zero", d->name);
    return fail(err, errlen, ERR(-EINVAL), "%s must be between %s and %s", d->name, lo, hi);
}

/* ---- table access ------------------------------------------------------------------------- */

const struct prop_desc *
props_desc(enum prop_id id)
{
    if ((unsigned)id >= PROP_COUNT)
        return NULL;
    return &prop_table[id];
}

const char *
props_name(enum prop_id id)
{
    const struct prop_desc *d = props_desc(id);
    return d != NULL ? d->name : NULL;
}

int
props_from_name(const char *name, enum prop_id *out)
{
    if (name == NULL)
        return ERR(-EINVAL);
    for (unsigned i = 0; i < PROP_COUNT; i++) {
        if (strcmp(prop_table[i].name, name) == 0) {
            *out = (enum prop_id)i;
            return 0;
        }
    }
    return -EINVAL; /* not an error origin: callers try user names next */
}

bool
props_applies(enum prop_id id, unsigned kind)
{
    const struct prop_desc *d = props_desc(id);
    return d != NULL && is_kind(kind) && (d->applies & kind) != 0;
}

bool
props_is_user_name(const char *name)
{
    if (name == NULL)
        return false;
    bool colon = false;
    size_t n = 0;
    for (const char *p = name; *p != '\0'; p++, n++) {
        char c = *p;
        if (n >= PROPS_NAME_MAX)
            return false;
        if (c == ':')
            colon = true;
        else if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c == '_' || c == '.'))
            return false;
    }
    return colon;
}

/* ---- parse and format --------------------------------------------------------------------- */

int
props_parse(enum prop_id id, const char *text, uint64_t *out, char *err, size_t errlen)
{
    const struct prop_desc *d = props_desc(id);
    if (d == NULL || d->type == PROP_VAL_STRING)
        return fail(err, errlen, ERR(-EINVAL), "not a numeric or index property");
    if (text == NULL)
        return fail(err, errlen, ERR(-EINVAL), "no value given for %s", d->name);

    if (d->type == PROP_VAL_INDEX) {
        for (const struct prop_index *i = d->index; i->name != NULL; i++) {
            if (strcmp(i->name, text) == 0) {
                *out = i->value;
                return 0;
            }
        }
        if (d->hint == NULL)
            return fail(err, errlen, ERR(-EINVAL), "'%.64s' is not a valid value for %s", text,
                        d->name);
        return fail(err, errlen, ERR(-EINVAL), "'%.64s' is not a valid value for %s (use %s)", text,
                    d->name, d->hint);
    }

    uint64_t v = 0;
    int rc;
    const char *what = "number";
    if ((d->flags & PROP_F_NONE_IS_ZERO) && strcmp(text, "none") == 0) {
        *out = 0;
        return 0;
    }
    if ((d->flags & PROP_F_AUTO) && strcmp(text, "auto") == 0) {
        *out = PROPS_REFRESERV_AUTO;
        return 0;
    }
    switch (d->unit) {
    case PROP_UNIT_BYTES:
        what = "size";
        rc = parse_size(text, &v);
        break;
    case PROP_UNIT_RATIO:
        what = "ratio";
        rc = parse_ratio(text, &v);
        break;
    case PROP_UNIT_COUNT:
    case PROP_UNIT_TIME:
    default: {
        const char *p = text;
        rc = parse_u64(&p, &v);
        if (rc == 0 && *p != '\0')
            rc = -EINVAL;
        break;
    }
    }
    if (rc == -ERANGE)
        return fail(err, errlen, ERR(-EINVAL), "'%.64s' is too large for %s", text, d->name);
    if (rc != 0) {
        if (d->hint == NULL)
            return fail(err, errlen, ERR(-EINVAL), "'%.64s' is not a valid %s for %s", text, what,
                        d->name);
        return fail(err, errlen, ERR(-EINVAL), "'%.64s' is not a valid %s for %s (use %s)", text,
                    what, d->name, d->hint);
    }
    if (!d->readonly && !in_range(d, v))
        return range_error(d, err, errlen);
    *out = v;
    return 0;
}

int
props_format(enum prop_id id, uint64_t value, bool parsable, char *buf, size_t len)
{
    const struct prop_desc *d = props_desc(id);
    if (buf == NULL || len == 0)
        return ERR(-EOVERFLOW);
    buf[0] = '\0';
    if (d == NULL || d->type == PROP_VAL_STRING)
        return ERR(-EINVAL);

    if (d->type == PROP_VAL_INDEX) {
        const struct prop_index *i = index_by_value(d->index, value);
        if (i == NULL)
            return ERR(-EINVAL);
        return put(buf, len, "%s", i->name);
    }
    if ((d->flags & PROP_F_AUTO) && value == PROPS_REFRESERV_AUTO)
        return put(buf, len, "auto");
    if ((d->flags & PROP_F_NONE_IS_ZERO) && value == 0 && !parsable)
        return put(buf, len, "none");
    switch (d->unit) {
    case PROP_UNIT_BYTES:
        if (!parsable)
            return format_size(value, buf, len);
        break;
    case PROP_UNIT_RATIO:
        return put(buf, len, "%llu.%02llu%s", (unsigned long long)(value / 100),
                   (unsigned long long)(value % 100), parsable ? "" : "x");
    case PROP_UNIT_TIME:
        if (!parsable)
            return format_time(value, buf, len);
        break;
    case PROP_UNIT_COUNT:
    default:
        break;
    }
    return put(buf, len, "%llu", (unsigned long long)value);
}

/* ---- set / inherit rules ------------------------------------------------------------------ */

/* Resolves name to a row (*d) or a user property (*d = NULL). */
static int
lookup_name(const char *name, const struct prop_desc **d, char *err, size_t errlen)
{
    enum prop_id id;
    if (name == NULL)
        return fail(err, errlen, ERR(-EINVAL), "no property name given");
    if (props_from_name(name, &id) == 0) {
        *d = &prop_table[id];
        return 0;
    }
    *d = NULL;
    if (props_is_user_name(name))
        return 0;
    if (strchr(name, ':') != NULL)
        return fail(err, errlen, ERR(-EINVAL),
                    "'%.64s' is not a valid user property name (use lowercase letters, digits, "
                    "'-', '_', '.' and ':', at most %u bytes)",
                    name, PROPS_NAME_MAX);
    return fail(err, errlen, ERR(-EINVAL), "'%.64s' is not a valid property", name);
}

/* The rules shared by set and inherit: exists, not read-only, applies to kind. */
static int
check_settable(const struct prop_desc *d, unsigned kind, char *err, size_t errlen)
{
    if (d->readonly)
        return fail(err, errlen, ERR(-EROFS), "'%s' is a read-only property", d->name);
    if (!(d->applies & kind))
        return fail(err, errlen, ERR(-EINVAL), "'%s' does not apply to %s", d->name,
                    kind_plural(kind));
    return 0;
}

int
props_validate_set(const char *name, const char *value, unsigned kind, bool at_create,
                   uint64_t *parsed, char *err, size_t errlen)
{
    const struct prop_desc *d;
    VERIFY(is_kind(kind));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    int rc = lookup_name(name, &d, err, errlen);
    if (rc != 0)
        return rc;
    if (value == NULL)
        return fail(err, errlen, ERR(-EINVAL), "no value given for '%.64s'", name);
    if (d != NULL) {
        rc = check_settable(d, kind, err, errlen);
        if (rc != 0)
            return rc;
        if (d->create_only && !at_create)
            return fail(err, errlen, ERR(-EROFS), "%s can only be set at creation", d->name);
    }
    if (d == NULL || d->type == PROP_VAL_STRING) {
        if (strnlen(value, PROPS_VALUE_MAX + 1) > PROPS_VALUE_MAX)
            return fail(err, errlen, ERR(-EINVAL), "value of '%.64s' is longer than %u bytes", name,
                        PROPS_VALUE_MAX);
        return 0;
    }

    uint64_t v;
    rc = props_parse(d->id, value, &v, err, errlen);
    if (rc != 0)
        return rc;
    if ((d->flags & PROP_F_AUTO) && v == PROPS_REFRESERV_AUTO && kind != PROP_VOL)
        return fail(err, errlen, ERR(-EINVAL), "%s=auto applies to volumes only", d->name);
    if (parsed != NULL)
        *parsed = v;
    return 0;
}

int
props_validate_inherit(const char *name, unsigned kind, bool revert_received, char *err,
                       size_t errlen)
{
    const struct prop_desc *d;
    VERIFY(is_kind(kind));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    int rc = lookup_name(name, &d, err, errlen);
    if (rc != 0 || d == NULL)
        return rc;
    rc = check_settable(d, kind, err, errlen);
    if (rc != 0)
        return rc;
    if (d->create_only)
        return fail(err, errlen, ERR(-EROFS), "%s is fixed at creation and cannot be inherited",
                    d->name);
    if (!d->inheritable && !revert_received) {
        if (d->flags & PROP_F_NONE_IS_ZERO)
            return fail(err, errlen, ERR(-EINVAL),
                        "'%s' cannot be inherited (use 'set %s=none' to clear it)", d->name,
                        d->name);
        return fail(err, errlen, ERR(-EINVAL), "'%s' cannot be inherited", d->name);
    }
    return 0;
}

int
props_validate_volsize(uint64_t volsize, uint64_t volblocksize, char *err, size_t errlen)
{
    char a[32], b[32];
    if (volsize == 0)
        return fail(err, errlen, ERR(-EINVAL), "volsize must be greater than zero");
    if (volblocksize == 0 || volsize % volblocksize != 0) {
        format_size(volsize, a, sizeof(a));
        format_size(volblocksize, b, sizeof(b));
        return fail(err, errlen, ERR(-EINVAL),
                    "volsize (%s) must be a multiple of volblocksize (%s)", a, b);
    }
    return 0;
}

/* ---- stored state and resolution ---------------------------------------------------------- */

void
props_stored_apply(struct props_stored *st, enum props_op op, const struct prop_val *v)
{
    static const struct prop_val zero;
    ASSERT(st != NULL);
    IMPLY(op == PROPS_OP_SET || op == PROPS_OP_RECV_SET, v != NULL);
    switch (op) {
    case PROPS_OP_SET:
        st->has_local = true;
        st->local = *v;
        st->inherit_override = false;
        break;
    case PROPS_OP_INHERIT:
        st->has_local = false;
        st->local = zero;
        st->inherit_override = st->has_received;
        break;
    case PROPS_OP_REVERT:
        st->has_local = false;
        st->local = zero;
        st->inherit_override = false;
        break;
    case PROPS_OP_RECV_SET:
        st->has_received = true;
        st->received = *v;
        break;
    case PROPS_OP_RECV_CLEAR:
        st->has_received = false;
        st->received = zero;
        st->inherit_override = false;
        break;
    default:
        BUG("unknown props_op");
    }
    IMPLY(st->inherit_override, st->has_received);
}

int
props_check_stored(enum prop_id id, const struct prop_val *v)
{
    const struct prop_desc *d = props_desc(id);
    if (d == NULL || v == NULL)
        return ERR(-EINVAL);
    switch (d->type) {
    case PROP_VAL_STRING:
        if (v->str == NULL || strnlen(v->str, PROPS_VALUE_MAX + 1) > PROPS_VALUE_MAX)
            return ERR(-ECORRUPT);
        return 0;
    case PROP_VAL_INDEX:
        for (const struct prop_index *i = d->index; i->name != NULL; i++) {
            if (i->value == v->num)
                return 0;
        }
        return ERR(-ECORRUPT);
    case PROP_VAL_NUMBER:
    default:
        if (!d->readonly && !in_range(d, v->num))
            return ERR(-ECORRUPT);
        return 0;
    }
}

/* The effective value stored on one dataset, if any (local, else received unless overridden). */
static bool
stored_effective(const struct props_stored *st, struct prop_val *out, bool *received)
{
    if (st->has_local) {
        *out = st->local;
        *received = false;
        return true;
    }
    if (st->has_received && !st->inherit_override) {
        *out = st->received;
        *received = true;
        return true;
    }
    return false;
}

int
props_resolve(const char *name, const struct props_chain *chain, struct prop_value *out)
{
    const struct prop_desc *d;
    VERIFY(chain != NULL && chain->ds != NULL && chain->len >= 1 && out != NULL);
    const struct props_ds *self = &chain->ds[0];
    ASSERT(is_kind(self->kind));
    memset(out, 0, sizeof(*out));

    int rc = lookup_name(name, &d, NULL, 0);
    if (rc != 0)
        return rc;
    if (d != NULL && !(d->applies & self->kind))
        return -ENOENT;

    if (d != NULL && d->readonly) {
        out->source = PROP_SRC_NONE;
        if (d->id == PROP_TYPE) {
            out->val.num = self->kind;
            return 0;
        }
        struct props_stored st = { 0 };
        rc = self->lookup(self->arg, name, &st);
        if (rc != 0)
            return rc;
        if (!st.has_local)
            return -ENOENT;
        out->val = st.local;
        return 0;
    }

    bool inheritable = d == NULL || d->inheritable;
    for (size_t i = 0; i < chain->len; i++) {
        if (i > 0 && !inheritable)
            break;
        const struct props_ds *ds = &chain->ds[i];
        struct props_stored st = { 0 };
        bool received;
        rc = ds->lookup(ds->arg, name, &st);
        if (rc != 0)
            return rc;
        if (!stored_effective(&st, &out->val, &received))
            continue;
        if (i == 0) {
            out->source = received ? PROP_SRC_RECEIVED : PROP_SRC_LOCAL;
        } else {
            out->source = PROP_SRC_INHERITED;
            out->inherited_from = ds->name;
        }
        return 0;
    }
    if (d == NULL)
        return -ENOENT;
    out->source = PROP_SRC_DEFAULT;
    out->val.num = d->default_num;
    out->val.str = d->default_str;
    return 0;
}

int
props_source_format(const struct prop_value *v, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return ERR(-EOVERFLOW);
    switch (v->source) {
    case PROP_SRC_DEFAULT:
        return put(buf, len, "default");
    case PROP_SRC_LOCAL:
        return put(buf, len, "local");
    case PROP_SRC_RECEIVED:
        return put(buf, len, "received");
    case PROP_SRC_INHERITED:
        return put(buf, len, "inherited from %s",
                   v->inherited_from != NULL ? v->inherited_from : "?");
    case PROP_SRC_NONE:
    default:
        return put(buf, len, "-");
    }
}
