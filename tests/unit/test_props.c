/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for core/props: the table's consistency, parse/format round trips for every
 * property, set/inherit validation with its messages, user property names, the stored-state
 * transitions, and an oracle for inheritance: random trees of datasets under random set /
 * inherit / inherit -S / receive operations, where props_resolve must equal a model that replays
 * each dataset's event log and walks parent pointers.
 *
 * Oracle seeds: set LCPFS_TEST_SEED to replay one; every oracle run logs its seed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "common/err.h"
#include "core/cksum.h"
#include "core/compress.h"
#include "core/props.h"

#define KIB ((uint64_t)1 << 10)
#define MIB ((uint64_t)1 << 20)
#define GIB ((uint64_t)1 << 30)
#define TIB ((uint64_t)1 << 40)

static uint64_t
rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t
test_seed(uint64_t dflt)
{
    const char *env = getenv("LCPFS_TEST_SEED");
    return env != NULL ? strtoull(env, NULL, 0) : dflt;
}

static enum prop_id
id_of(const char *name)
{
    enum prop_id id;
    cr_assert_eq(props_from_name(name, &id), 0, "no property '%s'", name);
    return id;
}

/* ---- the table ------------------------------------------------------------------------------ */

Test(props, table_has_one_consistent_row_per_property)
{
    for (unsigned i = 0; i < PROP_COUNT; i++) {
        const struct prop_desc *d = props_desc((enum prop_id)i);
        cr_assert(d != NULL && d->name != NULL, "row %u missing", i);
        cr_assert_eq((unsigned)d->id, i, "%s: id %u at row %u", d->name, (unsigned)d->id, i);
        cr_assert_str_eq(props_name((enum prop_id)i), d->name);
        cr_assert_eq(id_of(d->name), (enum prop_id)i);
        cr_assert(!props_is_user_name(d->name), "%s looks like a user property", d->name);
        cr_assert(strchr(d->name, '$') == NULL);
        cr_assert(d->applies != 0 && (d->applies & ~(unsigned)PROP_ALL_KINDS) == 0, "%s", d->name);
        for (unsigned j = 0; j < i; j++)
            cr_assert_str_neq(props_desc((enum prop_id)j)->name, d->name);
        if (d->readonly) {
            cr_assert(!d->inheritable && !d->create_only && d->hint == NULL, "%s", d->name);
        } else {
            cr_assert(d->hint != NULL, "%s: settable without a hint", d->name);
            cr_assert(!(d->applies & PROP_SNAP), "%s: native settable on snapshots", d->name);
            if (d->type != PROP_VAL_STRING && d->id != PROP_VOLSIZE) {
                struct prop_val v = { .num = d->default_num };
                cr_assert_eq(props_check_stored(d->id, &v), 0, "%s: bad default", d->name);
            }
        }
        if (d->type == PROP_VAL_INDEX) {
            cr_assert(d->index != NULL, "%s", d->name);
            /* Invariant 2: every value has exactly one printed name. */
            for (const struct prop_index *a = d->index; a->name != NULL; a++) {
                unsigned printed = 0;
                for (const struct prop_index *b = d->index; b->name != NULL; b++)
                    printed += b->value == a->value && !b->alias;
                cr_assert_eq(printed, 1, "%s: value of '%s' printed %u ways", d->name, a->name,
                             printed);
            }
        }
        cr_assert(d->create_only ? !d->inheritable : true, "%s", d->name);
    }
    cr_assert_null(props_desc(PROP_COUNT));
    cr_assert_null(props_name((enum prop_id) - 1));
    enum prop_id id;
    cr_assert_eq(props_from_name("nosuchprop", &id), -EINVAL);
    cr_assert_eq(props_from_name(NULL, &id), -EINVAL);
}

Test(props, issue_property_list_is_present_with_the_right_rules)
{
    static const struct {
        const char *names;
        bool ro, inh, create_only;
        unsigned applies;
    } groups[] = {
        { "compression checksum copies readonly sync logbias primarycache dedup", false, true,
          false, PROP_FS | PROP_VOL },
        { "recordsize atime snapdir sharenfs", false, true, false, PROP_FS },
        { "volblocksize", false, false, true, PROP_VOL },
        { "encryption", false, false, true, PROP_FS | PROP_VOL },
        { "volsize", false, false, false, PROP_VOL },
        { "quota refquota", false, false, false, PROP_FS },
        { "reservation refreservation", false, false, false, PROP_FS | PROP_VOL },
        { "type creation used referenced compressratio refcompressratio logicalreferenced "
          "written createtxg guid",
          true, false, false, PROP_ALL_KINDS },
        { "available logicalused usedbysnapshots usedbydataset usedbychildren "
          "usedbyrefreservation origin",
          true, false, false, PROP_FS | PROP_VOL },
    };
    unsigned seen = 0;
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
        char names[256], *save = NULL;
        snprintf(names, sizeof(names), "%s", groups[i].names);
        for (char *n = strtok_r(names, " ", &save); n != NULL; n = strtok_r(NULL, " ", &save)) {
            const struct prop_desc *d = props_desc(id_of(n));
            cr_assert(d->readonly == groups[i].ro && d->inheritable == groups[i].inh &&
                          d->create_only == groups[i].create_only &&
                          d->applies == groups[i].applies,
                      "%s: rules differ", n);
            for (unsigned k = PROP_FS; k <= PROP_SNAP; k <<= 1)
                cr_assert_eq(props_applies(d->id, k), (groups[i].applies & k) != 0, "%s", n);
            seen++;
        }
    }
    cr_assert_eq(seen, PROP_COUNT, "every property is listed exactly once");
    cr_assert(!props_applies(PROP_USED, 0) && !props_applies(PROP_USED, PROP_FS | PROP_VOL));
}

/* ---- parse / format ------------------------------------------------------------------------- */

struct fmt_case {
    const char *prop, *in;
    uint64_t value;
    const char *human, *parsable;
};

static const struct fmt_case fmt_cases[] = {
    { "type", "volume", PROP_VOL, "volume", "volume" },
    { "type", "snapshot", PROP_SNAP, "snapshot", "snapshot" },
    { "creation", "0", 0, "1970-01-01 00:00:00 UTC", "0" },
    { "creation", "951782400", 951782400, "2000-02-29 00:00:00 UTC", "951782400" },
    { "creation", "1700000000", 1700000000, "2023-11-14 22:13:20 UTC", "1700000000" },
    { "used", "0", 0, "0B", "0" },
    { "used", "1.5G", 3 * GIB / 2, "1.50G", "1610612736" },
    { "available", "15.5G", 31 * GIB / 2, "15.5G", "16642998272" },
    { "referenced", "155G", 155 * GIB, "155G", "166429982720" },
    { "compressratio", "1.53x", 153, "1.53x", "1.53" },
    { "compressratio", "2", 200, "2.00x", "2.00" },
    { "refcompressratio", "1.5", 150, "1.50x", "1.50" },
    { "logicalused", "1023", 1023, "1023B", "1023" },
    { "logicalreferenced", "1M", MIB, "1M", "1048576" },
    { "usedbysnapshots", "1048575", MIB - 1, "1024K", "1048575" },
    { "usedbydataset", "4KiB", 4 * KIB, "4K", "4096" },
    { "usedbychildren", "1t", TIB, "1T", "1099511627776" },
    { "usedbyrefreservation", "2P", 2ull << 50, "2P", "2251799813685248" },
    { "written", "15E", 15ull << 60, "15E", "17293822569102704640" },
    { "createtxg", "12345", 12345, "12345", "12345" },
    { "guid", "18446744073709551615", UINT64_MAX, "18446744073709551615", "18446744073709551615" },
    { "volsize", "10G", 10 * GIB, "10G", "10737418240" },
    { "volblocksize", "512", 512, "512B", "512" },
    { "volblocksize", "16k", 16 * KIB, "16K", "16384" },
    { "volblocksize", "128K", 128 * KIB, "128K", "131072" },
    { "recordsize", "1M", MIB, "1M", "1048576" },
    { "recordsize", "8KB", 8 * KIB, "8K", "8192" },
    { "quota", "none", 0, "none", "0" },
    { "quota", "0", 0, "none", "0" },
    { "quota", "1.1K", 1126, "1.10K", "1126" },
    { "refquota", "100B", 100, "100B", "100" },
    { "reservation", "1T", TIB, "1T", "1099511627776" },
    { "refreservation", "auto", PROPS_REFRESERV_AUTO, "auto", "auto" },
    { "refreservation", "none", 0, "none", "0" },
    { "compression", "on", PROPS_COMPRESS(COMPRESS_LZ4, 0), "lz4", "lz4" },
    { "compression", "off", PROPS_COMPRESS(COMPRESS_OFF, 0), "off", "off" },
    { "compression", "zstd", PROPS_COMPRESS(COMPRESS_ZSTD, 3), "zstd", "zstd" },
    { "compression", "zstd-3", PROPS_COMPRESS(COMPRESS_ZSTD, 3), "zstd", "zstd" },
    { "compression", "zstd-19", PROPS_COMPRESS(COMPRESS_ZSTD, 19), "zstd-19", "zstd-19" },
    { "checksum", "on", CKSUM_XXH3, "xxh3", "xxh3" },
    { "checksum", "blake2b", CKSUM_BLAKE2B, "blake2b", "blake2b" },
    { "copies", "3", 3, "3", "3" },
    { "dedup", "on", CKSUM_SHA256, "sha256", "sha256" },
    { "dedup", "off", CKSUM_OFF, "off", "off" },
    { "sync", "disabled", PROP_SYNC_DISABLED, "disabled", "disabled" },
    { "logbias", "throughput", PROP_LOGBIAS_THROUGHPUT, "throughput", "throughput" },
    { "primarycache", "metadata", PROP_CACHE_METADATA, "metadata", "metadata" },
    { "atime", "off", PROP_OFF, "off", "off" },
    { "readonly", "on", PROP_ON, "on", "on" },
    { "snapdir", "visible", PROP_SNAPDIR_VISIBLE, "visible", "visible" },
    { "encryption", "off", PROP_OFF, "off", "off" },
};

Test(props, parse_and_format_known_values_of_every_kind)
{
    bool seen[PROP_COUNT] = { false };
    for (size_t i = 0; i < sizeof(fmt_cases) / sizeof(fmt_cases[0]); i++) {
        const struct fmt_case *c = &fmt_cases[i];
        enum prop_id id = id_of(c->prop);
        uint64_t v = 0;
        char err[256], buf[64];
        cr_assert_eq(props_parse(id, c->in, &v, err, sizeof(err)), 0, "%s=%s: %s", c->prop, c->in,
                     err);
        cr_assert_eq(v, c->value, "%s=%s parsed %llu", c->prop, c->in, (unsigned long long)v);
        cr_assert_eq(props_format(id, v, false, buf, sizeof(buf)), 0);
        cr_assert_str_eq(buf, c->human, "%s=%s", c->prop, c->in);
        cr_assert_eq(props_format(id, v, true, buf, sizeof(buf)), 0);
        cr_assert_str_eq(buf, c->parsable, "%s=%s", c->prop, c->in);
        seen[id] = true;
    }
    /* Every numeric or index property has at least one case. */
    for (unsigned i = 0; i < PROP_COUNT; i++) {
        if (props_desc((enum prop_id)i)->type != PROP_VAL_STRING)
            cr_assert(seen[i], "no format case for %s", props_name((enum prop_id)i));
    }
}

/* Random values (within each settable range) survive parsable and, approximately, human form. */
Test(props, every_property_round_trips_through_parse_and_format)
{
    uint64_t seed = test_seed(0x5eed);
    cr_log_info("props round trip: seed %llu", (unsigned long long)seed);
    uint64_t s = seed;
    for (unsigned i = 0; i < PROP_COUNT; i++) {
        const struct prop_desc *d = props_desc((enum prop_id)i);
        char buf[64], err[256];
        uint64_t back;
        if (d->type == PROP_VAL_STRING)
            continue;
        if (d->type == PROP_VAL_INDEX) {
            for (const struct prop_index *x = d->index; x->name != NULL; x++) {
                cr_assert_eq(props_parse(d->id, x->name, &back, err, sizeof(err)), 0);
                cr_assert_eq(back, x->value);
                cr_assert_eq(props_format(d->id, back, false, buf, sizeof(buf)), 0);
                cr_assert_eq(props_parse(d->id, buf, &back, err, sizeof(err)), 0);
                cr_assert_eq(back, x->value, "%s: %s -> %s", d->name, x->name, buf);
            }
            cr_assert_eq(props_format(d->id, 0xdead, false, buf, sizeof(buf)), -EINVAL);
            continue;
        }
        for (unsigned n = 0; n < 2000; n++) {
            uint64_t v = rnd(&s) >> (rnd(&s) % 64);
            if (!d->readonly) {
                if (d->flags & PROP_F_POW2) {
                    unsigned shifts = 0;
                    while ((d->min << shifts) < d->max)
                        shifts++;
                    v = d->min << (v % (shifts + 1));
                }
                if (v < d->min || v > d->max)
                    v = d->min + v % (d->max - d->min + 1);
            }
            if (d->unit == PROP_UNIT_RATIO && v > UINT64_MAX / 2)
                v /= 2;
            if (v != PROPS_REFRESERV_AUTO || (d->flags & PROP_F_AUTO)) {
                cr_assert_eq(props_format(d->id, v, true, buf, sizeof(buf)), 0);
                cr_assert_eq(props_parse(d->id, buf, &back, err, sizeof(err)), 0, "%s %s: %s",
                             d->name, buf, err);
                cr_assert_eq(back, v, "seed %llu: %s parsable %s", (unsigned long long)seed,
                             d->name, buf);
            }
            if (d->unit == PROP_UNIT_TIME || v > (1ull << 62))
                continue;
            cr_assert_eq(props_format(d->id, v, false, buf, sizeof(buf)), 0);
            cr_assert_eq(props_parse(d->id, buf, &back, err, sizeof(err)), 0, "%s", buf);
            if (d->unit == PROP_UNIT_BYTES) /* three significant digits */
                cr_assert(back <= v + v / 100 + 1 && back + v / 100 + 1 >= v,
                          "seed %llu: %s %llu -> %s -> %llu", (unsigned long long)seed, d->name,
                          (unsigned long long)v, buf, (unsigned long long)back);
            else
                cr_assert_eq(back, v, "%s %s", d->name, buf);
        }
    }
}

Test(props, malformed_and_out_of_range_values_are_rejected_with_messages)
{
    static const struct {
        const char *prop, *in, *msg;
    } bad[] = {
        { "quota", "abc", "'abc' is not a valid size for quota" },
        { "quota", "", "'' is not a valid size for quota" },
        { "quota", "-1", "not a valid size" },
        { "quota", " 1K", "not a valid size" },
        { "quota", "1 K", "not a valid size" },
        { "quota", "1KK", "not a valid size" },
        { "quota", "1.K", "not a valid size" },
        { "quota", ".5K", "not a valid size" },
        { "quota", "1.5", "not a valid size" },
        { "quota", "1X", "not a valid size" },
        { "quota", "16E", "'16E' is too large for quota" },
        { "quota", "99999999999999999999", "too large" },
        { "refquota", "auto", "not a valid size for refquota" },
        { "recordsize", "3000", "recordsize must be a power of two between 512B and 1M" },
        { "recordsize", "2M", "recordsize must be a power of two between 512B and 1M" },
        { "recordsize", "256", "power of two" },
        { "volblocksize", "256K", "volblocksize must be a power of two between 512B and 128K" },
        { "volsize", "0", "volsize must be greater than zero" },
        { "copies", "4", "copies must be between 1 and 3" },
        { "copies", "0", "copies must be between 1 and 3" },
        { "copies", "1K", "'1K' is not a valid number for copies (use 1, 2 or 3)" },
        { "compression", "gzip", "'gzip' is not a valid value for compression (use off" },
        { "compression", "zstd-20", "not a valid value" },
        { "compression", "zstd-0", "not a valid value" },
        { "compression", "LZ4", "not a valid value" },
        { "checksum", "fletcher4", "'fletcher4' is not a valid value for checksum" },
        { "sync", "sometimes", "(use standard | always | disabled)" },
        { "atime", "yes", "(use on | off)" },
        { "encryption", "on", "not supported yet" },
        { "compressratio", "1.234", "not a valid ratio" },
        { "createtxg", "1.5", "not a valid number" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        uint64_t v = 77;
        int rc = props_parse(id_of(bad[i].prop), bad[i].in, &v, err, sizeof(err));
        cr_assert_eq(rc, -EINVAL, "%s=%s accepted", bad[i].prop, bad[i].in);
        cr_assert_eq(v, 77, "output written on failure");
        cr_assert(strstr(err, bad[i].msg) != NULL, "%s=%s: got \"%s\", want \"%s\"", bad[i].prop,
                  bad[i].in, err, bad[i].msg);
    }
    uint64_t v;
    cr_assert_eq(props_parse(PROP_SHARENFS, "on", &v, NULL, 0), -EINVAL);
    cr_assert_eq(props_parse(PROP_COUNT, "1", &v, NULL, 0), -EINVAL);
}

Test(props, compression_and_checksum_names_agree_with_the_engine)
{
    const struct prop_desc *c = props_desc(PROP_COMPRESSION);
    for (const struct prop_index *x = c->index; x->name != NULL; x++) {
        enum compress_alg alg;
        int level;
        char buf[32];
        cr_assert_eq(compress_from_name(x->name, &alg, &level), 0, "%s", x->name);
        cr_assert_eq(PROPS_COMPRESS_ALG(x->value), (unsigned)alg, "%s", x->name);
        cr_assert_eq(PROPS_COMPRESS_LEVEL(x->value), alg == COMPRESS_ZSTD ? level : 0);
        cr_assert(compress_is_valid(PROPS_COMPRESS_ALG(x->value)));
        if (!x->alias)
            cr_assert_str_eq(compress_name(alg, level, buf, sizeof(buf)), x->name);
    }
    const struct prop_desc *k = props_desc(PROP_CHECKSUM);
    for (const struct prop_index *x = k->index; x->name != NULL; x++) {
        enum cksum_alg alg;
        cr_assert_eq(cksum_from_name(x->name, &alg), 0, "%s", x->name);
        cr_assert_eq(x->value, (uint64_t)alg);
        if (!x->alias)
            cr_assert_str_eq(cksum_name(alg), x->name);
    }
    /* Every engine algorithm is reachable from the property. */
    for (unsigned a = CKSUM_OFF; a < CKSUM_ALG_COUNT; a++) {
        char buf[32];
        cr_assert_eq(props_format(PROP_CHECKSUM, a, false, buf, sizeof(buf)), 0);
    }
    for (int lvl = 1; lvl <= ZSTD_LEVEL_MAX; lvl++) {
        char buf[32];
        cr_assert_eq(props_format(PROP_COMPRESSION, PROPS_COMPRESS(COMPRESS_ZSTD, lvl), false, buf,
                                  sizeof(buf)),
                     0);
    }
}

Test(props, format_reports_small_buffers_and_string_properties)
{
    char buf[8];
    cr_assert_eq(props_format(PROP_USED, 1536 * MIB, false, buf, 5), -EOVERFLOW);
    cr_assert_eq(props_format(PROP_USED, 1536 * MIB, false, buf, 6), 0);
    cr_assert_str_eq(buf, "1.50G");
    cr_assert_eq(props_format(PROP_GUID, UINT64_MAX, true, buf, sizeof(buf)), -EOVERFLOW);
    cr_assert_eq(strlen(buf), sizeof(buf) - 1);
    cr_assert_eq(props_format(PROP_SHARENFS, 0, false, buf, sizeof(buf)), -EINVAL);
    cr_assert_eq(props_format(PROP_ORIGIN, 0, false, buf, sizeof(buf)), -EINVAL);
    cr_assert_eq(props_format(PROP_COUNT, 0, false, buf, sizeof(buf)), -EINVAL);
    cr_assert_eq(props_format(PROP_USED, 0, false, buf, 0), -EOVERFLOW);
}

/* ---- set / inherit validation --------------------------------------------------------------- */

struct set_case {
    const char *name, *value;
    unsigned kind;
    bool at_create;
    int rc;
    const char *msg; /* substring of the message, or NULL */
};

static const struct set_case set_cases[] = {
    { "compression", "zstd-7", PROP_FS, false, 0, NULL },
    { "compression", "lz4", PROP_VOL, false, 0, NULL },
    { "compression", "lz4", PROP_SNAP, false, -EINVAL,
      "'compression' does not apply to snapshots" },
    { "recordsize", "128K", PROP_FS, false, 0, NULL },
    { "recordsize", "128K", PROP_VOL, false, -EINVAL, "'recordsize' does not apply to volumes" },
    { "volblocksize", "8K", PROP_VOL, true, 0, NULL },
    { "volblocksize", "8K", PROP_VOL, false, -EROFS, "volblocksize can only be set at creation" },
    { "volblocksize", "8K", PROP_FS, true, -EINVAL, "does not apply to filesystems" },
    { "volblocksize", "3K", PROP_VOL, true, -EINVAL, "power of two" },
    { "encryption", "off", PROP_FS, true, 0, NULL },
    { "encryption", "off", PROP_FS, false, -EROFS, "encryption can only be set at creation" },
    { "volsize", "1G", PROP_VOL, false, 0, NULL },
    { "volsize", "1G", PROP_FS, true, -EINVAL, "does not apply to filesystems" },
    { "used", "1G", PROP_FS, false, -EROFS, "'used' is a read-only property" },
    { "type", "volume", PROP_FS, true, -EROFS, "'type' is a read-only property" },
    { "origin", "tank/a@s", PROP_FS, false, -EROFS, "read-only" },
    { "compressratio", "2.00x", PROP_FS, false, -EROFS, "read-only" },
    { "quota", "abc", PROP_FS, false, -EINVAL, "'abc' is not a valid size for quota" },
    { "quota", "none", PROP_FS, false, 0, NULL },
    { "quota", "10G", PROP_VOL, false, -EINVAL, "'quota' does not apply to volumes" },
    { "reservation", "10G", PROP_VOL, false, 0, NULL },
    { "refreservation", "auto", PROP_VOL, false, 0, NULL },
    { "refreservation", "auto", PROP_FS, false, -EINVAL, "refreservation=auto applies to volumes" },
    { "refreservation", "none", PROP_FS, false, 0, NULL },
    { "sharenfs", "rw=@10.0.0.0/8,no_root_squash", PROP_FS, false, 0, NULL },
    { "sharenfs", "on", PROP_VOL, false, -EINVAL, "does not apply to volumes" },
    { "atime", "off", PROP_VOL, false, -EINVAL, "'atime' does not apply to volumes" },
    { "nbd:export", "yes", PROP_VOL, false, 0, NULL },
    { "com.example:backup-policy_v1.2", "daily", PROP_SNAP, false, 0, NULL },
    { "com.example:backup", "", PROP_FS, false, 0, NULL },
    { "Com.example:backup", "x", PROP_FS, false, -EINVAL, "not a valid user property name" },
    { "com example:x", "x", PROP_FS, false, -EINVAL, "not a valid user property name" },
    { "nosuchprop", "1", PROP_FS, false, -EINVAL, "'nosuchprop' is not a valid property" },
    { "", "1", PROP_FS, false, -EINVAL, "'' is not a valid property" },
    { "copies", NULL, PROP_FS, false, -EINVAL, "no value given" },
    { NULL, "1", PROP_FS, false, -EINVAL, "no property name given" },
};

Test(props, set_validation_follows_kind_create_and_readonly_rules)
{
    for (size_t i = 0; i < sizeof(set_cases) / sizeof(set_cases[0]); i++) {
        const struct set_case *c = &set_cases[i];
        char err[256] = "junk";
        uint64_t v = 0;
        int rc = props_validate_set(c->name, c->value, c->kind, c->at_create, &v, err, sizeof(err));
        cr_assert_eq(rc, c->rc, "case %zu %s=%s: rc %d (%s)", i, c->name ? c->name : "(null)",
                     c->value ? c->value : "(null)", rc, err);
        if (c->msg != NULL)
            cr_assert(strstr(err, c->msg) != NULL, "case %zu: got \"%s\", want \"%s\"", i, err,
                      c->msg);
        else
            cr_assert_str_eq(err, "", "case %zu: message on success", i);
    }
    uint64_t v = 0;
    cr_assert_eq(props_validate_set("refreservation", "auto", PROP_VOL, true, &v, NULL, 0), 0);
    cr_assert_eq(v, PROPS_REFRESERV_AUTO);
    cr_assert_eq(props_validate_set("compression", "on", PROP_FS, false, &v, NULL, 0), 0);
    cr_assert_eq(v, PROPS_COMPRESS(COMPRESS_LZ4, 0));
    cr_assert_eq(props_validate_set("copies", "2", PROP_FS, false, NULL, NULL, 0), 0);
}

Test(props, string_values_are_limited_to_8191_bytes)
{
    static char big[PROPS_VALUE_MAX + 2];
    char err[256];
    memset(big, 'v', PROPS_VALUE_MAX);
    big[PROPS_VALUE_MAX] = '\0';
    cr_assert_eq(props_validate_set("org:x", big, PROP_FS, false, NULL, err, sizeof(err)), 0);
    cr_assert_eq(props_validate_set("sharenfs", big, PROP_FS, false, NULL, err, sizeof(err)), 0);
    big[PROPS_VALUE_MAX] = 'v';
    big[PROPS_VALUE_MAX + 1] = '\0';
    cr_assert_eq(props_validate_set("org:x", big, PROP_FS, false, NULL, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "value of 'org:x' is longer than 8191 bytes") != NULL, "%s", err);
    cr_assert_eq(props_validate_set("sharenfs", big, PROP_FS, false, NULL, err, sizeof(err)),
                 -EINVAL);
    struct prop_val sv = { .str = big };
    cr_assert_eq(props_check_stored(PROP_SHARENFS, &sv), -ECORRUPT);
}

Test(props, user_property_names_follow_the_zfs_rules)
{
    static const char *const good[] = { "a:b",        ":",           "com.example:backup",
                                        "nbd:export", "x-y_z.1:2:3", "9:9" };
    static const char *const badn[] = { "",      "abc",  "A:b",   "a:B", "a b:c",
                                        "a:b/c", "a$:b", "a:b=c", "é:x", "a:\t" };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_assert(props_is_user_name(good[i]), "%s rejected", good[i]);
    for (size_t i = 0; i < sizeof(badn) / sizeof(badn[0]); i++)
        cr_assert(!props_is_user_name(badn[i]), "%s accepted", badn[i]);
    cr_assert(!props_is_user_name(NULL));
    char name[PROPS_NAME_MAX + 2];
    memset(name, 'a', sizeof(name));
    name[0] = ':';
    name[PROPS_NAME_MAX] = '\0';
    cr_assert(props_is_user_name(name), "255 bytes rejected");
    name[PROPS_NAME_MAX] = 'a';
    name[PROPS_NAME_MAX + 1] = '\0';
    cr_assert(!props_is_user_name(name), "256 bytes accepted");
}

Test(props, inherit_validation_rules)
{
    static const struct {
        const char *name;
        unsigned kind;
        bool revert;
        int rc;
        const char *msg;
    } cases[] = {
        { "compression", PROP_FS, false, 0, NULL },
        { "recordsize", PROP_FS, false, 0, NULL },
        { "com.example:x", PROP_SNAP, false, 0, NULL },
        { "quota", PROP_FS, false, -EINVAL,
          "'quota' cannot be inherited (use 'set quota=none' to clear it)" },
        { "quota", PROP_FS, true, 0, NULL },
        { "volsize", PROP_VOL, false, -EINVAL, "'volsize' cannot be inherited" },
        { "volblocksize", PROP_VOL, true, -EROFS, "volblocksize is fixed at creation" },
        { "used", PROP_FS, false, -EROFS, "'used' is a read-only property" },
        { "atime", PROP_VOL, false, -EINVAL, "'atime' does not apply to volumes" },
        { "copies", PROP_SNAP, false, -EINVAL, "does not apply to snapshots" },
        { "bogus", PROP_FS, false, -EINVAL, "'bogus' is not a valid property" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        int rc =
            props_validate_inherit(cases[i].name, cases[i].kind, cases[i].revert, err, sizeof(err));
        cr_assert_eq(rc, cases[i].rc, "%s: rc %d (%s)", cases[i].name, rc, err);
        if (cases[i].msg != NULL)
            cr_assert(strstr(err, cases[i].msg) != NULL, "%s: got \"%s\"", cases[i].name, err);
    }
}

Test(props, volsize_must_be_a_nonzero_multiple_of_volblocksize)
{
    char err[256];
    cr_assert_eq(props_validate_volsize(GIB, 16 * KIB, err, sizeof(err)), 0);
    cr_assert_eq(props_validate_volsize(0, 16 * KIB, err, sizeof(err)), -EINVAL);
    cr_assert_eq(props_validate_volsize(GIB + 512, 16 * KIB, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "must be a multiple of volblocksize (16K)") != NULL, "%s", err);
    cr_assert_eq(props_validate_volsize(GIB, 0, NULL, 0), -EINVAL);
}

/* ---- stored state --------------------------------------------------------------------------- */

Test(props, stored_state_transitions_match_zfs)
{
    struct props_stored st = { 0 };
    struct prop_val a = { .num = 1 }, r = { .num = 2 };
    props_stored_apply(&st, PROPS_OP_INHERIT, NULL); /* nothing received: no override */
    cr_assert(!st.has_local && !st.inherit_override);
    props_stored_apply(&st, PROPS_OP_RECV_SET, &r);
    props_stored_apply(&st, PROPS_OP_SET, &a);
    cr_assert(st.has_local && st.local.num == 1 && st.has_received && st.received.num == 2);
    props_stored_apply(&st, PROPS_OP_INHERIT, NULL);
    cr_assert(!st.has_local && st.has_received && st.inherit_override);
    props_stored_apply(&st, PROPS_OP_RECV_SET, &a); /* a new receive keeps the override */
    cr_assert(st.inherit_override && st.received.num == 1);
    props_stored_apply(&st, PROPS_OP_REVERT, NULL);
    cr_assert(!st.has_local && st.has_received && !st.inherit_override);
    props_stored_apply(&st, PROPS_OP_INHERIT, NULL);
    props_stored_apply(&st, PROPS_OP_RECV_CLEAR, NULL);
    cr_assert(!st.has_received && !st.inherit_override);
    props_stored_apply(&st, PROPS_OP_RECV_SET, &r);
    props_stored_apply(&st, PROPS_OP_INHERIT, NULL);
    props_stored_apply(&st, PROPS_OP_SET, &a);
    cr_assert(st.has_local && !st.inherit_override);
}

Test(props, stored_values_are_checked_not_asserted)
{
    struct prop_val v = { 0 };
    v.num = 3;
    cr_assert_eq(props_check_stored(PROP_SYNC, &v), -ECORRUPT);
    v.num = PROP_SYNC_DISABLED;
    cr_assert_eq(props_check_stored(PROP_SYNC, &v), 0);
    v.num = PROPS_REFRESERV_AUTO;
    cr_assert_eq(props_check_stored(PROP_REFRESERVATION, &v), -ECORRUPT);
    v.num = 3 * KIB;
    cr_assert_eq(props_check_stored(PROP_RECORDSIZE, &v), -ECORRUPT);
    v.num = 0;
    cr_assert_eq(props_check_stored(PROP_QUOTA, &v), 0);
    cr_assert_eq(props_check_stored(PROP_COPIES, &v), -ECORRUPT);
    cr_assert_eq(props_check_stored(PROP_VOLSIZE, &v), -ECORRUPT);
    v.num = PROPS_COMPRESS(COMPRESS_ZSTD, 20);
    cr_assert_eq(props_check_stored(PROP_COMPRESSION, &v), -ECORRUPT);
    v.num = PROPS_COMPRESS(COMPRESS_LZ4, 0); /* the alias's value is fine */
    cr_assert_eq(props_check_stored(PROP_COMPRESSION, &v), 0);
    v.num = UINT64_MAX;
    cr_assert_eq(props_check_stored(PROP_USED, &v), 0);
    cr_assert_eq(props_check_stored(PROP_SHARENFS, &v), -ECORRUPT); /* str NULL */
    v.str = "off";
    cr_assert_eq(props_check_stored(PROP_SHARENFS, &v), 0);
    cr_assert_eq(props_check_stored(PROP_COUNT, &v), -EINVAL);
}

/* ---- resolution ----------------------------------------------------------------------------- */

/* A tiny fixed store: up to 8 (name, stored) entries per dataset. */
struct fixed_ds {
    const char *names[8];
    struct props_stored st[8];
    unsigned n;
    int fail; /* lookups return this when non-zero */
};

static int
fixed_lookup(void *arg, const char *name, struct props_stored *out)
{
    struct fixed_ds *f = arg;
    if (f->fail != 0)
        return f->fail;
    for (unsigned i = 0; i < f->n; i++) {
        if (strcmp(f->names[i], name) == 0)
            *out = f->st[i];
    }
    return 0;
}

static void
fixed_add(struct fixed_ds *f, const char *name, enum props_op op, uint64_t num, const char *str)
{
    unsigned i = 0;
    while (i < f->n && strcmp(f->names[i], name) != 0)
        i++;
    if (i == f->n) {
        cr_assert_lt(f->n, 8);
        f->names[f->n++] = name;
    }
    struct prop_val v = { .num = num, .str = str };
    props_stored_apply(&f->st[i], op, &v);
}

Test(props, resolve_reports_every_source)
{
    struct fixed_ds root = { 0 }, mid = { 0 }, leaf = { 0 };
    struct props_ds ds[3] = {
        { "tank/a/b", PROP_FS, fixed_lookup, &leaf },
        { "tank/a", PROP_FS, fixed_lookup, &mid },
        { "tank", PROP_FS, fixed_lookup, &root },
    };
    struct props_chain chain = { ds, 3 };
    struct prop_value out;
    char src[64];

    fixed_add(&root, "compression", PROPS_OP_SET, PROPS_COMPRESS(COMPRESS_ZSTD, 5), NULL);
    fixed_add(&mid, "compression", PROPS_OP_RECV_SET, PROPS_COMPRESS(COMPRESS_OFF, 0), NULL);
    fixed_add(&root, "quota", PROPS_OP_SET, GIB, NULL);
    fixed_add(&leaf, "used", PROPS_OP_SET, 4 * KIB, NULL);
    fixed_add(&root, "org:tag", PROPS_OP_SET, 0, "gold");
    fixed_add(&leaf, "copies", PROPS_OP_RECV_SET, 2, NULL);

    cr_assert_eq(props_resolve("compression", &chain, &out), 0);
    cr_assert_eq(out.source, PROP_SRC_INHERITED);
    cr_assert_eq(out.val.num, PROPS_COMPRESS(COMPRESS_OFF, 0));
    cr_assert_str_eq(out.inherited_from, "tank/a");
    cr_assert_eq(props_source_format(&out, src, sizeof(src)), 0);
    cr_assert_str_eq(src, "inherited from tank/a");

    fixed_add(&mid, "compression", PROPS_OP_INHERIT, 0, NULL); /* hides mid's received value */
    cr_assert_eq(props_resolve("compression", &chain, &out), 0);
    cr_assert_eq(out.val.num, PROPS_COMPRESS(COMPRESS_ZSTD, 5));
    cr_assert_str_eq(out.inherited_from, "tank");

    cr_assert_eq(props_resolve("quota", &chain, &out), 0); /* not inheritable */
    cr_assert_eq(out.source, PROP_SRC_DEFAULT);
    cr_assert_eq(out.val.num, 0);
    props_source_format(&out, src, sizeof(src));
    cr_assert_str_eq(src, "default");

    cr_assert_eq(props_resolve("copies", &chain, &out), 0);
    cr_assert(out.source == PROP_SRC_RECEIVED && out.val.num == 2);
    props_source_format(&out, src, sizeof(src));
    cr_assert_str_eq(src, "received");
    fixed_add(&leaf, "copies", PROPS_OP_SET, 3, NULL); /* local beats received */
    cr_assert_eq(props_resolve("copies", &chain, &out), 0);
    cr_assert(out.source == PROP_SRC_LOCAL && out.val.num == 3);
    props_source_format(&out, src, sizeof(src));
    cr_assert_str_eq(src, "local");

    cr_assert_eq(props_resolve("used", &chain, &out), 0);
    cr_assert(out.source == PROP_SRC_NONE && out.val.num == 4 * KIB);
    props_source_format(&out, src, sizeof(src));
    cr_assert_str_eq(src, "-");
    cr_assert_eq(props_resolve("referenced", &chain, &out), -ENOENT); /* no value reported */
    cr_assert_eq(props_resolve("type", &chain, &out), 0);
    cr_assert(out.source == PROP_SRC_NONE && out.val.num == PROP_FS);

    cr_assert_eq(props_resolve("sharenfs", &chain, &out), 0);
    cr_assert(out.source == PROP_SRC_DEFAULT && strcmp(out.val.str, "off") == 0);
    cr_assert_eq(props_resolve("org:tag", &chain, &out), 0);
    cr_assert_str_eq(out.val.str, "gold");
    cr_assert_eq(props_resolve("org:other", &chain, &out), -ENOENT);
    cr_assert_eq(props_resolve("volsize", &chain, &out), -ENOENT); /* not for filesystems */
    cr_assert_eq(props_resolve("Bad:name", &chain, &out), -EINVAL);
    cr_assert_eq(props_resolve("nosuch", &chain, &out), -EINVAL);

    root.fail = -EIO; /* lookup errors propagate */
    cr_assert_eq(props_resolve("org:tag", &chain, &out), -EIO);
    cr_assert_eq(props_resolve("quota", &chain, &out), 0); /* never looks at ancestors */
    cr_assert_eq(props_source_format(&out, src, 4), -EOVERFLOW);
}

/* ---- oracle --------------------------------------------------------------------------------- */

/*
 * The model's own description of the properties the oracle uses (not read from the table):
 * what applies where, what is inherited, and sample values to set. A sample is valid (ok 1),
 * invalid (ok 0) or valid on volumes only (ok 2); string properties store the text itself.
 */
struct sample {
    const char *text;
    uint64_t num;
    int ok;
};
#define SAMPLES(...) ((const struct sample[]){ __VA_ARGS__, { NULL, 0, 0 } })
#define STRINGS      SAMPLES({ "off", 0, 1 }, { "rw=@10.0.0.0/8", 0, 1 }, { "", 0, 1 }, { "x y", 0, 1 })
#define SIZES(mib_ok_, big_)                                                                      \
    SAMPLES({ "256", 256, 0 }, { "512", 512, 1 }, { "16K", 16 * KIB, 1 }, { "64k", 64 * KIB, 1 }, \
            { big_, 128 * KIB, 1 }, { "1M", MIB, mib_ok_ }, { "2M", 2 * MIB, 0 })

static const struct mprop {
    const char *name;
    bool inh, ro, create_only, user, is_str;
    unsigned applies;
    uint64_t dflt;
    const char *dflt_str;
    const struct sample *samples;
} mprops[] = {
    { "compression", true, false, false, false, false, PROP_FS | PROP_VOL, 2, NULL,
      SAMPLES({ "off", 1, 1 }, { "on", 2, 1 }, { "lz4", 2, 1 }, { "zstd", 3 | 3 << 8, 1 },
              { "zstd-7", 3 | 7 << 8, 1 }, { "zstd-19", 3 | 19 << 8, 1 }, { "gzip", 0, 0 }) },
    { "checksum", true, false, false, false, false, PROP_FS | PROP_VOL, CKSUM_XXH3, NULL,
      SAMPLES({ "off", 1, 1 }, { "on", 2, 1 }, { "xxh3", 2, 1 }, { "sha256", 3, 1 },
              { "blake2b", 4, 1 }, { "fletcher4", 0, 0 }) },
    { "recordsize", true, false, false, false, false, PROP_FS, 128 * KIB, NULL, SIZES(1, "128K") },
    { "copies", true, false, false, false, false, PROP_FS | PROP_VOL, 1, NULL,
      SAMPLES({ "0", 0, 0 }, { "1", 1, 1 }, { "2", 2, 1 }, { "3", 3, 1 }, { "4", 4, 0 }) },
    { "quota", false, false, false, false, false, PROP_FS, 0, NULL,
      SAMPLES({ "none", 0, 1 }, { "1M", MIB, 1 }, { "10G", 10 * GIB, 1 },
              { "1.5T", 3 * TIB / 2, 1 }, { "abc", 0, 0 }) },
    { "refreservation", false, false, false, false, false, PROP_FS | PROP_VOL, 0, NULL,
      SAMPLES({ "none", 0, 1 }, { "auto", PROPS_REFRESERV_AUTO, 2 }, { "1M", MIB, 1 },
              { "10G", 10 * GIB, 1 }) },
    { "volblocksize", false, false, true, false, false, PROP_VOL, 16 * KIB, NULL,
      SIZES(0, "131072") },
    { "sharenfs", true, false, false, false, true, PROP_FS, 0, "off", STRINGS },
    { "readonly", true, false, false, false, false, PROP_FS | PROP_VOL, 0, NULL,
      SAMPLES({ "off", 0, 1 }, { "on", 1, 1 }, { "true", 0, 0 }) },
    { "atime", true, false, false, false, false, PROP_FS, 1, NULL,
      SAMPLES({ "off", 0, 1 }, { "on", 1, 1 }) },
    { "sync", true, false, false, false, false, PROP_FS | PROP_VOL, 0, NULL,
      SAMPLES({ "standard", 0, 1 }, { "always", 1, 1 }, { "disabled", 2, 1 }, { "maybe", 0, 0 }) },
    { "encryption", false, false, true, false, false, PROP_FS | PROP_VOL, 0, NULL,
      SAMPLES({ "off", 0, 1 }, { "aes-256-gcm", 0, 0 }) },
    { "com.example:a", true, false, false, true, true, PROP_ALL_KINDS, 0, NULL, STRINGS },
    { "org:b", true, false, false, true, true, PROP_ALL_KINDS, 0, NULL, STRINGS },
    { "used", false, true, false, false, false, PROP_ALL_KINDS, 0, NULL, SAMPLES({ "1", 1, 1 }) },
    { "available", false, true, false, false, false, PROP_FS | PROP_VOL, 0, NULL,
      SAMPLES({ "1", 1, 1 }) },
};
#define NPROPS (sizeof(mprops) / sizeof(mprops[0]))

static const struct sample *
pick_sample(const struct mprop *p, uint64_t *s)
{
    unsigned n = 0;
    while (p->samples[n].text != NULL)
        n++;
    return &p->samples[rnd(s) % n];
}

#define MAX_DS     16
#define MAX_EVENTS 48

struct mevent {
    enum props_op op;
    struct prop_val v;
};

struct mds {
    char name[96];
    unsigned kind;
    int parent; /* -1 for the root */
    unsigned depth;
    bool has_stat[NPROPS];
    uint64_t stat[NPROPS];
    struct props_stored real[NPROPS];      /* what the "dataset layer" stores */
    struct mevent log[NPROPS][MAX_EVENTS]; /* what the model remembers */
    unsigned nlog[NPROPS];
};

static struct mds oracle_ds[MAX_DS];
static unsigned long cov_src[PROP_SRC_INHERITED + 1], cov_hidden; /* what the oracle reached */

static int
oracle_lookup(void *arg, const char *name, struct props_stored *out)
{
    struct mds *d = arg;
    for (unsigned p = 0; p < NPROPS; p++) {
        if (strcmp(mprops[p].name, name) != 0)
            continue;
        if (mprops[p].ro) {
            out->has_local = d->has_stat[p];
            out->local.num = d->stat[p];
        } else {
            *out = d->real[p];
        }
        return 0;
    }
    cr_assert_fail("lookup of unexpected property %s", name);
    return -EINVAL;
}

/* The model's effective value on one dataset, by replaying its event log. */
static bool
model_effective(const struct mds *d, unsigned p, struct prop_val *v, bool *received)
{
    int last_local = -1, last_recv = -1, last_inherit = -1;
    for (unsigned i = 0; i < d->nlog[p]; i++) {
        enum props_op op = d->log[p][i].op;
        if (op == PROPS_OP_SET || op == PROPS_OP_INHERIT || op == PROPS_OP_REVERT)
            last_local = (int)i;
        else
            last_recv = (int)i;
        if (op == PROPS_OP_INHERIT)
            last_inherit = (int)i;
    }
    if (last_local >= 0 && d->log[p][last_local].op == PROPS_OP_SET) {
        *v = d->log[p][last_local].v;
        *received = false;
        return true;
    }
    if (last_recv < 0 || d->log[p][last_recv].op != PROPS_OP_RECV_SET)
        return false;
    /* Hidden by an `inherit` done while a received value existed and not undone since. */
    if (last_inherit >= 0 && last_inherit == last_local) {
        bool had_recv = false, cleared_after = false;
        for (int i = 0; i < last_inherit; i++)
            had_recv = d->log[p][i].op == PROPS_OP_RECV_SET     ? true
                       : d->log[p][i].op == PROPS_OP_RECV_CLEAR ? false
                                                                : had_recv;
        for (unsigned i = (unsigned)last_inherit; i < d->nlog[p]; i++)
            cleared_after |= d->log[p][i].op == PROPS_OP_RECV_CLEAR;
        if (had_recv && !cleared_after) {
            cov_hidden++;
            return false;
        }
    }
    *v = d->log[p][last_recv].v;
    *received = true;
    return true;
}

static int
model_resolve(int ds, unsigned p, struct prop_value *out)
{
    const struct mprop *mp = &mprops[p];
    const struct mds *d = &oracle_ds[ds];
    memset(out, 0, sizeof(*out));
    if (!(mp->applies & d->kind))
        return -ENOENT;
    if (mp->ro) {
        if (!d->has_stat[p])
            return -ENOENT;
        out->val.num = d->stat[p];
        return 0;
    }
    for (int cur = ds; cur >= 0; cur = oracle_ds[cur].parent) {
        bool received;
        if (cur != ds && !mp->inh)
            break;
        if (!model_effective(&oracle_ds[cur], p, &out->val, &received))
            continue;
        out->source = cur != ds  ? PROP_SRC_INHERITED
                      : received ? PROP_SRC_RECEIVED
                                 : PROP_SRC_LOCAL;
        out->inherited_from = cur != ds ? oracle_ds[cur].name : NULL;
        return 0;
    }
    if (mp->user)
        return -ENOENT;
    out->source = PROP_SRC_DEFAULT;
    out->val.num = mp->dflt;
    out->val.str = mp->dflt_str;
    return 0;
}

static void
oracle_check_all(unsigned nds, uint64_t seed, unsigned step)
{
    for (unsigned i = 0; i < nds; i++) {
        struct props_ds chain_ds[8];
        size_t len = 0;
        for (int cur = (int)i; cur >= 0; cur = oracle_ds[cur].parent) {
            cr_assert_lt(len, 8);
            chain_ds[len++] = (struct props_ds){ oracle_ds[cur].name, oracle_ds[cur].kind,
                                                 oracle_lookup, &oracle_ds[cur] };
        }
        struct props_chain chain = { chain_ds, len };
        for (unsigned p = 0; p < NPROPS; p++) {
            struct prop_value got, want;
            int rc = props_resolve(mprops[p].name, &chain, &got);
            int wrc = model_resolve((int)i, p, &want);
            const char *ctx = oracle_ds[i].name;
            cr_assert_eq(rc, wrc, "seed %llu step %u: %s %s rc %d, model %d",
                         (unsigned long long)seed, step, ctx, mprops[p].name, rc, wrc);
            if (rc != 0)
                continue;
            cov_src[want.source]++;
            cr_assert_eq(got.source, want.source, "seed %llu step %u: %s %s source %d, model %d",
                         (unsigned long long)seed, step, ctx, mprops[p].name, got.source,
                         want.source);
            if (mprops[p].is_str)
                cr_assert(got.val.str != NULL && strcmp(got.val.str, want.val.str) == 0,
                          "seed %llu step %u: %s %s string differs", (unsigned long long)seed, step,
                          ctx, mprops[p].name);
            else
                cr_assert_eq(got.val.num, want.val.num,
                             "seed %llu step %u: %s %s = %llu, model %llu",
                             (unsigned long long)seed, step, ctx, mprops[p].name,
                             (unsigned long long)got.val.num, (unsigned long long)want.val.num);
            if (want.source == PROP_SRC_INHERITED)
                cr_assert_str_eq(got.inherited_from, want.inherited_from, "seed %llu step %u",
                                 (unsigned long long)seed, step);
        }
    }
}

/* Validates and, if allowed, applies op to dataset ds property p on both sides. */
static void
oracle_op(unsigned ds, unsigned p, enum props_op op, bool at_create, uint64_t *s, uint64_t seed)
{
    struct mds *d = &oracle_ds[ds];
    const struct mprop *mp = &mprops[p];
    const struct sample *g = pick_sample(mp, s);
    bool valid = g->ok == 1 || (g->ok == 2 && d->kind == PROP_VOL);
    bool settable = !mp->ro && (mp->applies & d->kind) && (!mp->create_only || at_create);
    int rc = 0;
    uint64_t parsed = 0;
    char err[256];

    switch (op) {
    case PROPS_OP_SET:
        rc = props_validate_set(mp->name, g->text, d->kind, at_create, &parsed, err, sizeof(err));
        cr_assert_eq(rc == 0, settable && valid, "seed %llu: set %s=%s on %s: rc %d (%s)",
                     (unsigned long long)seed, mp->name, g->text, d->name, rc, err);
        if (rc == 0 && !mp->is_str)
            cr_assert_eq(parsed, g->num, "seed %llu: %s=%s parsed %llu", (unsigned long long)seed,
                         mp->name, g->text, (unsigned long long)parsed);
        break;
    case PROPS_OP_INHERIT:
    case PROPS_OP_REVERT: {
        bool revert = op == PROPS_OP_REVERT;
        rc = props_validate_inherit(mp->name, d->kind, revert, err, sizeof(err));
        bool ok = !mp->ro && (mp->applies & d->kind) && !mp->create_only && (mp->inh || revert);
        cr_assert_eq(rc == 0, ok, "seed %llu: inherit%s %s on %s: rc %d (%s)",
                     (unsigned long long)seed, revert ? " -S" : "", mp->name, d->name, rc, err);
        break;
    }
    case PROPS_OP_RECV_SET: /* a stream carries only values valid for the kind */
        if (!settable || !valid)
            return;
        break;
    case PROPS_OP_RECV_CLEAR:
    default:
        if (mp->ro)
            return;
        break;
    }
    if (rc != 0 || d->nlog[p] == MAX_EVENTS)
        return;
    struct prop_val v = { .num = mp->is_str ? 0 : g->num, .str = mp->is_str ? g->text : NULL };
    props_stored_apply(&d->real[p], op, &v);
    d->log[p][d->nlog[p]++] = (struct mevent){ op, v };
}

static unsigned
oracle_create(unsigned n, uint64_t *s, uint64_t seed)
{
    struct mds *d = &oracle_ds[n];
    memset(d, 0, sizeof(*d));
    if (n == 0) {
        d->parent = -1;
        d->kind = PROP_FS;
        snprintf(d->name, sizeof(d->name), "tank");
    } else {
        /* Parent: a filesystem (volumes and snapshots have no children) of depth < 4. */
        unsigned par;
        do
            par = (unsigned)(rnd(s) % n);
        while (oracle_ds[par].kind != PROP_FS || oracle_ds[par].depth >= 4);
        unsigned r = (unsigned)(rnd(s) % 8);
        char pname[sizeof(d->name)];
        memcpy(pname, oracle_ds[par].name, sizeof(pname));
        d->parent = (int)par;
        d->depth = oracle_ds[par].depth + 1;
        if (r < 5) {
            d->kind = PROP_FS;
            snprintf(d->name, sizeof(d->name), "%.60s/d%u", pname, n);
        } else if (r < 7) {
            d->kind = PROP_VOL;
            snprintf(d->name, sizeof(d->name), "%.60s/v%u", pname, n);
        } else {
            d->kind = PROP_SNAP; /* a snapshot inherits from its filesystem */
            snprintf(d->name, sizeof(d->name), "%.60s@s%u", pname, n);
        }
    }
    for (unsigned p = 0; p < NPROPS; p++) {
        d->has_stat[p] = mprops[p].ro && rnd(s) % 4 != 0;
        d->stat[p] = rnd(s) >> 20;
        if (!mprops[p].ro && rnd(s) % 5 == 0)
            oracle_op(n, p, PROPS_OP_SET, true, s, seed); /* create -o name=value */
    }
    return n + 1;
}

static void
run_oracle(uint64_t seed, unsigned nops)
{
    cr_log_info("props oracle: %u ops, seed %llu", nops, (unsigned long long)seed);
    uint64_t s = seed;
    unsigned nds = oracle_create(0, &s, seed);
    while (nds < 4)
        nds = oracle_create(nds, &s, seed);
    oracle_check_all(nds, seed, 0);
    /* Most operations hit a few hot properties, so per-dataset histories get long. */
    unsigned hot[3];
    for (unsigned i = 0; i < 3; i++)
        hot[i] = (unsigned)(rnd(&s) % NPROPS);
    for (unsigned step = 1; step <= nops; step++) {
        unsigned r = (unsigned)(rnd(&s) % 100);
        if (r < 5 && nds < MAX_DS) {
            nds = oracle_create(nds, &s, seed);
        } else {
            static const enum props_op ops[] = { PROPS_OP_SET,       PROPS_OP_SET,
                                                 PROPS_OP_SET,       PROPS_OP_INHERIT,
                                                 PROPS_OP_INHERIT,   PROPS_OP_REVERT,
                                                 PROPS_OP_RECV_SET,  PROPS_OP_RECV_SET,
                                                 PROPS_OP_RECV_CLEAR };
            unsigned ds = (unsigned)(rnd(&s) % nds);
            unsigned p = (unsigned)(rnd(&s) % 4 != 0 ? hot[rnd(&s) % 3] : rnd(&s) % NPROPS);
            enum props_op op = ops[rnd(&s) % (sizeof(ops) / sizeof(ops[0]))];
            oracle_op(ds, p, op, false, &s, seed);
        }
        oracle_check_all(nds, seed, step);
    }
}

Test(props, oracle_resolve_matches_brute_force_over_random_trees)
{
    /* The model's rules are written independently; issue_property_list_... pins the table. */
    const char *env = getenv("LCPFS_TEST_SEED");
    if (env != NULL) {
        run_oracle(strtoull(env, NULL, 0), 600);
        return;
    }
    for (uint64_t seed = 1; seed <= 40; seed++)
        run_oracle(seed * 0x9e3779b97f4a7c15ull, 300);
    cr_log_info("props oracle: sources none %lu default %lu local %lu received %lu inherited %lu, "
                "received hidden by inherit %lu",
                cov_src[PROP_SRC_NONE], cov_src[PROP_SRC_DEFAULT], cov_src[PROP_SRC_LOCAL],
                cov_src[PROP_SRC_RECEIVED], cov_src[PROP_SRC_INHERITED], cov_hidden);
    for (unsigned i = 0; i <= PROP_SRC_INHERITED; i++)
        cr_assert_gt(cov_src[i], 0, "source %u never reached", i);
    cr_assert_gt(cov_hidden, 0, "inherit over a received value never reached");
}
