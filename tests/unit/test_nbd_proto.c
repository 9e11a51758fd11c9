/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of proto/nbd.h: every encoder byte for byte against buffers written by hand from
 * the layouts in NetworkBlockDevice/nbd doc/proto.md, every decoder on valid and hostile input
 * (truncation at every length, inner lengths larger than the payload, oversized strings, zero
 * and huge counts, unknown options and flags), the request validator rule by rule, and the
 * BLOCK_STATUS builder against a byte-map oracle.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "common/err.h"
#include "proto/nbd.h"

/* ---- helpers ------------------------------------------------------------------------------ */

#define CANARY 0xAA

static void
fill_canary(uint8_t *buf, size_t n)
{
    memset(buf, CANARY, n);
}

static void
assert_untouched(const uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(buf[i], CANARY, "byte %zu written on an error path", i);
}

static void
assert_bytes(const uint8_t *got, const uint8_t *exp, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(got[i], exp[i], "byte %zu: got 0x%02x want 0x%02x", i, got[i], exp[i]);
}

/* The 8 bytes of the option reply magic 0x3e889045565a9. */
#define REP_MAGIC 0x00, 0x03, 0xe8, 0x89, 0x04, 0x55, 0x65, 0xa9
#define IHAVEOPT  'I', 'H', 'A', 'V', 'E', 'O', 'P', 'T'
#define SR_MAGIC  0x66, 0x8e, 0x33, 0xef
#define COOKIE    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08
static const uint64_t cookie = 0x0102030405060708ULL;

static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* ---- handshake ---------------------------------------------------------------------------- */

Test(nbd_proto, greeting_is_nbdmagic_ihaveopt_and_fixed_newstyle_no_zeroes)
{
    static const uint8_t exp[] = { 'N', 'B', 'D', 'M', 'A', 'G', 'I', 'C', IHAVEOPT, 0x00, 0x03 };
    uint8_t buf[32];
    cr_assert_eq(nbd_greeting_encode(buf, sizeof(buf)), 18);
    assert_bytes(buf, exp, sizeof(exp));
    fill_canary(buf, sizeof(buf));
    cr_assert_eq(nbd_greeting_encode(buf, 17), -ENOSPC);
    assert_untouched(buf, sizeof(buf));
}

Test(nbd_proto, client_flags_accept_known_bits_and_reject_others)
{
    uint8_t b[4] = { 0, 0, 0, 3 };
    uint32_t f = 99;
    cr_assert_eq(nbd_client_flags_decode(b, 4, &f), 0);
    cr_assert_eq(f, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    b[3] = 0;
    cr_assert_eq(nbd_client_flags_decode(b, 4, &f), 0);
    cr_assert_eq(f, 0);
    b[3] = 4;
    cr_assert_eq(nbd_client_flags_decode(b, 4, &f), -EPROTO);
    const uint8_t high[4] = { 0x80, 0, 0, 1 };
    cr_assert_eq(nbd_client_flags_decode(high, 4, &f), -EPROTO);
    cr_assert_eq(nbd_client_flags_decode(b, 3, &f), -EAGAIN);
    cr_assert_eq(nbd_client_flags_decode(b, 0, &f), -EAGAIN);
}

Test(nbd_proto, option_header_decodes_and_bounds_length)
{
    const uint8_t b[] = { IHAVEOPT, 0, 0, 0, 7, 0, 0, 0x10, 0x00 };
    struct nbd_opt_header h;
    cr_assert_eq(nbd_opt_header_decode(b, sizeof(b), 4096, &h), 0);
    cr_assert_eq(h.opt, NBD_OPT_GO);
    cr_assert_eq(h.len, 4096);
    cr_assert_eq(nbd_opt_header_decode(b, sizeof(b), 4095, &h), -E2BIG);
    cr_assert_eq(h.opt, NBD_OPT_GO, "header filled in even when too big");
    cr_assert_eq(h.len, 4096);
    for (size_t n = 0; n < sizeof(b); n++)
        cr_assert_eq(nbd_opt_header_decode(b, n, 4096, &h), -EAGAIN, "len %zu", n);
    uint8_t bad[sizeof(b)];
    memcpy(bad, b, sizeof(b));
    bad[7] = 'U';
    cr_assert_eq(nbd_opt_header_decode(bad, sizeof(bad), 4096, &h), -EPROTO);
}

Test(nbd_proto, option_header_encode_round_trips)
{
    const uint8_t exp[] = { IHAVEOPT, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 5 };
    uint8_t buf[16];
    cr_assert_eq(nbd_opt_header_encode(buf, sizeof(buf), 0xdeadbeef, 5), 16);
    assert_bytes(buf, exp, 16);
    struct nbd_opt_header h;
    cr_assert_eq(nbd_opt_header_decode(buf, 16, UINT32_MAX, &h), 0);
    cr_assert_eq(h.opt, 0xdeadbeef);
    cr_assert_eq(h.len, 5);
    cr_assert_eq(nbd_opt_header_encode(buf, 15, 1, 0), -ENOSPC);
}

/* ---- EXPORT_NAME -------------------------------------------------------------------------- */

Test(nbd_proto, export_name_is_the_whole_payload)
{
    const uint8_t b[] = { 'v', 'o', 'l', '/', '1' };
    struct nbd_str s;
    cr_assert_eq(nbd_opt_export_name_decode(b, sizeof(b), &s), 0);
    cr_assert_eq(s.len, 5);
    cr_assert_eq(memcmp(s.ptr, "vol/1", 5), 0);
    cr_assert_eq((const void *)s.ptr, (const void *)b, "borrowed, not copied");
    cr_assert_eq(nbd_opt_export_name_decode(b, 0, &s), 0);
    cr_assert_eq(s.len, 0);
}

Test(nbd_proto, export_name_rejects_nul_and_names_over_4096)
{
    static uint8_t big[NBD_MAX_STRING + 1];
    memset(big, 'x', sizeof(big));
    struct nbd_str s;
    cr_assert_eq(nbd_opt_export_name_decode(big, NBD_MAX_STRING, &s), 0);
    cr_assert_eq(s.len, NBD_MAX_STRING);
    cr_assert_eq(nbd_opt_export_name_decode(big, NBD_MAX_STRING + 1, &s), -ENAMETOOLONG);
    const uint8_t nul[] = { 'a', 0, 'b' };
    cr_assert_eq(nbd_opt_export_name_decode(nul, sizeof(nul), &s), -EBADMSG);
}

/* ---- INFO / GO ---------------------------------------------------------------------------- */

static const uint8_t info_disk[] = { 0, 0, 0, 4, 'd', 'i', 's', 'k', 0, 2, 0, 3, 0, 1 };

Test(nbd_proto, info_decodes_name_and_requests)
{
    struct nbd_opt_info in;
    cr_assert_eq(nbd_opt_info_decode(info_disk, sizeof(info_disk), &in), 0);
    cr_assert_eq(in.name.len, 4);
    cr_assert_eq(memcmp(in.name.ptr, "disk", 4), 0);
    cr_assert_eq(in.n_info, 2);
    cr_assert_eq(in.info_mask, (1u << NBD_INFO_BLOCK_SIZE) | (1u << NBD_INFO_NAME));
}

Test(nbd_proto, info_accepts_default_export_with_no_requests)
{
    const uint8_t b[] = { 0, 0, 0, 0, 0, 0 };
    struct nbd_opt_info in;
    cr_assert_eq(nbd_opt_info_decode(b, sizeof(b), &in), 0);
    cr_assert_eq(in.name.len, 0);
    cr_assert_not_null(in.name.ptr);
    cr_assert_eq(in.n_info, 0);
    cr_assert_eq(in.info_mask, 0);
}

Test(nbd_proto, info_ignores_unknown_info_types_but_counts_them)
{
    const uint8_t b[] = { 0, 0, 0, 0, 0, 3, 0, 40, 0xff, 0xff, 0, 0 };
    struct nbd_opt_info in;
    cr_assert_eq(nbd_opt_info_decode(b, sizeof(b), &in), 0);
    cr_assert_eq(in.n_info, 3);
    cr_assert_eq(in.info_mask, 1u << NBD_INFO_EXPORT);
}

Test(nbd_proto, info_rejects_every_truncation)
{
    struct nbd_opt_info in;
    for (size_t n = 0; n < sizeof(info_disk); n++)
        cr_assert_eq(nbd_opt_info_decode(info_disk, n, &in), -EBADMSG, "len %zu", n);
}

Test(nbd_proto, info_rejects_lengths_that_disagree_with_the_payload)
{
    struct nbd_opt_info in;
    /* name length larger than the payload allows (len - 6) */
    const uint8_t long_name[] = { 0, 0, 0, 5, 'd', 'i', 's', 'k', 0, 0 };
    cr_assert_eq(nbd_opt_info_decode(long_name, sizeof(long_name), &in), -EBADMSG);
    const uint8_t huge_name[] = { 0xff, 0xff, 0xff, 0xff, 'd', 'i', 's', 'k', 0, 0 };
    cr_assert_eq(nbd_opt_info_decode(huge_name, sizeof(huge_name), &in), -EBADMSG);
    /* count says 3, two entries present */
    const uint8_t short_list[] = { 0, 0, 0, 0, 0, 3, 0, 1, 0, 2 };
    cr_assert_eq(nbd_opt_info_decode(short_list, sizeof(short_list), &in), -EBADMSG);
    /* count 0xffff, nothing follows */
    const uint8_t huge_count[] = { 0, 0, 0, 0, 0xff, 0xff };
    cr_assert_eq(nbd_opt_info_decode(huge_count, sizeof(huge_count), &in), -EBADMSG);
    /* a trailing byte after the list */
    const uint8_t trailing[] = { 0, 0, 0, 0, 0, 1, 0, 1, 0 };
    cr_assert_eq(nbd_opt_info_decode(trailing, sizeof(trailing), &in), -EBADMSG);
    const uint8_t trailing0[] = { 0, 0, 0, 0, 0, 0, 7 };
    cr_assert_eq(nbd_opt_info_decode(trailing0, sizeof(trailing0), &in), -EBADMSG);
    /* a NUL inside the name */
    const uint8_t nul[] = { 0, 0, 0, 2, 'a', 0, 0, 0 };
    cr_assert_eq(nbd_opt_info_decode(nul, sizeof(nul), &in), -EBADMSG);
}

static size_t
build_info(uint8_t *b, uint32_t name_len, uint16_t count, uint16_t real_count)
{
    size_t o = 0;
    b[o++] = (uint8_t)(name_len >> 24);
    b[o++] = (uint8_t)(name_len >> 16);
    b[o++] = (uint8_t)(name_len >> 8);
    b[o++] = (uint8_t)name_len;
    memset(b + o, 'n', name_len);
    o += name_len;
    b[o++] = (uint8_t)(count >> 8);
    b[o++] = (uint8_t)count;
    for (uint16_t i = 0; i < real_count; i++) {
        b[o++] = 0;
        b[o++] = (uint8_t)(i % 4);
    }
    return o;
}

Test(nbd_proto, info_name_over_4096_is_too_big_unless_malformed)
{
    static uint8_t b[NBD_MAX_STRING + 64];
    struct nbd_opt_info in;
    size_t n = build_info(b, NBD_MAX_STRING, 2, 2);
    cr_assert_eq(nbd_opt_info_decode(b, n, &in), 0);
    n = build_info(b, NBD_MAX_STRING + 1, 2, 2);
    cr_assert_eq(nbd_opt_info_decode(b, n, &in), -ENAMETOOLONG);
    n = build_info(b, NBD_MAX_STRING + 1, 3, 2);
    cr_assert_eq(nbd_opt_info_decode(b, n, &in), -EBADMSG, "structure is checked first");
}

/* ---- LIST/SET_META_CONTEXT ---------------------------------------------------------------- */

static const uint8_t meta_two[] = {
    0,   0,   0,   4,   'd', 'i', 's', 'k', // export name
    0,   0,   0,   2,                       // two queries
    0,   0,   0,   15,  'b', 'a', 's', 'e', ':', 'a', 'l', 'l', 'o', 'c',
    'a', 't', 'i', 'o', 'n', 0,   0,   0,   5,   'q', 'e', 'm', 'u', ':',
};

Test(nbd_proto, meta_decodes_name_and_queries)
{
    struct nbd_opt_meta m;
    cr_assert_eq(nbd_opt_meta_decode(meta_two, sizeof(meta_two), &m), 0);
    cr_assert_eq(m.name.len, 4);
    cr_assert_eq(memcmp(m.name.ptr, "disk", 4), 0);
    cr_assert_eq(m.n_queries, 2);
    cr_assert_eq(m.queries[0].len, 15);
    cr_assert_eq(memcmp(m.queries[0].ptr, "base:allocation", 15), 0);
    cr_assert_eq(m.queries[1].len, 5);
    cr_assert_eq(memcmp(m.queries[1].ptr, "qemu:", 5), 0);
}

Test(nbd_proto, meta_accepts_zero_queries)
{
    const uint8_t b[] = { 0, 0, 0, 0, 0, 0, 0, 0 };
    struct nbd_opt_meta m;
    cr_assert_eq(nbd_opt_meta_decode(b, sizeof(b), &m), 0);
    cr_assert_eq(m.name.len, 0);
    cr_assert_eq(m.n_queries, 0);
}

Test(nbd_proto, meta_rejects_every_truncation)
{
    struct nbd_opt_meta m;
    for (size_t n = 0; n < sizeof(meta_two); n++)
        cr_assert_eq(nbd_opt_meta_decode(meta_two, n, &m), -EBADMSG, "len %zu", n);
}

Test(nbd_proto, meta_rejects_lengths_past_the_payload_and_trailing_bytes)
{
    struct nbd_opt_meta m;
    const uint8_t name_past[] = { 0, 0, 0, 9, 'd', 'i', 's', 'k', 0, 0, 0, 0 };
    cr_assert_eq(nbd_opt_meta_decode(name_past, sizeof(name_past), &m), -EBADMSG);
    const uint8_t name_huge[] = { 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0 };
    cr_assert_eq(nbd_opt_meta_decode(name_huge, sizeof(name_huge), &m), -EBADMSG);
    const uint8_t query_past[] = { 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 6, 'b', 'a', 's', 'e', ':' };
    cr_assert_eq(nbd_opt_meta_decode(query_past, sizeof(query_past), &m), -EBADMSG);
    const uint8_t query_huge[] = { 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfc, 'a', ':' };
    cr_assert_eq(nbd_opt_meta_decode(query_huge, sizeof(query_huge), &m), -EBADMSG);
    const uint8_t trailing[] = { 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 'a', ':', 'z' };
    cr_assert_eq(nbd_opt_meta_decode(trailing, sizeof(trailing), &m), -EBADMSG);
    const uint8_t nul_query[] = { 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 'a', 0 };
    cr_assert_eq(nbd_opt_meta_decode(nul_query, sizeof(nul_query), &m), -EBADMSG);
}

Test(nbd_proto, meta_rejects_a_count_the_payload_cannot_hold)
{
    struct nbd_opt_meta m;
    const uint8_t huge[] = { 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0 };
    cr_assert_eq(nbd_opt_meta_decode(huge, sizeof(huge), &m), -EBADMSG);
    const uint8_t two_one[] = { 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0 };
    cr_assert_eq(nbd_opt_meta_decode(two_one, sizeof(two_one), &m), -EBADMSG);
}

static size_t
build_meta(uint8_t *b, uint32_t n_queries, uint32_t qlen)
{
    size_t o = 0;
    memset(b, 0, 8);
    o = 4; /* empty export name */
    b[o++] = (uint8_t)(n_queries >> 24);
    b[o++] = (uint8_t)(n_queries >> 16);
    b[o++] = (uint8_t)(n_queries >> 8);
    b[o++] = (uint8_t)n_queries;
    for (uint32_t i = 0; i < n_queries; i++) {
        b[o++] = (uint8_t)(qlen >> 24);
        b[o++] = (uint8_t)(qlen >> 16);
        b[o++] = (uint8_t)(qlen >> 8);
        b[o++] = (uint8_t)qlen;
        memset(b + o, 'q', qlen);
        if (qlen > 0) {
            b[o] = 'x';
            b[o + qlen - 1] = ':';
        }
        o += qlen;
    }
    return o;
}

Test(nbd_proto, meta_bounds_the_number_of_queries)
{
    static uint8_t b[8 + (NBD_META_MAX_QUERIES + 1) * 8];
    struct nbd_opt_meta m;
    size_t n = build_meta(b, NBD_META_MAX_QUERIES, 2);
    cr_assert_eq(nbd_opt_meta_decode(b, n, &m), 0);
    cr_assert_eq(m.n_queries, NBD_META_MAX_QUERIES);
    n = build_meta(b, NBD_META_MAX_QUERIES + 1, 2);
    cr_assert_eq(nbd_opt_meta_decode(b, n, &m), -E2BIG);
    cr_assert_eq(m.n_queries, 0);
    n = build_meta(b, NBD_META_MAX_QUERIES + 1, 0);
    cr_assert_eq(nbd_opt_meta_decode(b, n, &m), -E2BIG, "empty queries still count");
}

Test(nbd_proto, meta_query_over_4096_is_too_big_unless_malformed)
{
    static uint8_t b[2 * (NBD_MAX_STRING + 16)];
    struct nbd_opt_meta m;
    size_t n = build_meta(b, 1, NBD_MAX_STRING);
    cr_assert_eq(nbd_opt_meta_decode(b, n, &m), 0);
    cr_assert_eq(m.queries[0].len, NBD_MAX_STRING);
    n = build_meta(b, 1, NBD_MAX_STRING + 1);
    cr_assert_eq(nbd_opt_meta_decode(b, n, &m), -ENAMETOOLONG);
    cr_assert_eq(nbd_opt_meta_decode(b, n - 1, &m), -EBADMSG, "truncation wins");
    b[n] = 'z';
    cr_assert_eq(nbd_opt_meta_decode(b, n + 1, &m), -EBADMSG, "trailing byte wins");
}

/* ---- options without data, dispatch, reply mapping ----------------------------------------- */

Test(nbd_proto, empty_options_reject_data_except_abort)
{
    const uint32_t must_be_empty[] = { NBD_OPT_LIST, NBD_OPT_STARTTLS, NBD_OPT_STRUCTURED_REPLY };
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(nbd_opt_empty_decode(must_be_empty[i], 0), 0);
        cr_assert_eq(nbd_opt_empty_decode(must_be_empty[i], 1), -EBADMSG);
        cr_assert_eq(nbd_opt_empty_decode(must_be_empty[i], UINT32_MAX), -EBADMSG);
    }
    cr_assert_eq(nbd_opt_empty_decode(NBD_OPT_ABORT, 0), 0);
    cr_assert_eq(nbd_opt_empty_decode(NBD_OPT_ABORT, 17), 0, "proto.md: SHOULD ignore data");
    cr_assert_eq(nbd_opt_empty_decode(NBD_OPT_GO, 0), -EINVAL);
}

Test(nbd_proto, dispatch_decodes_known_options_and_refuses_unknown_ones)
{
    struct nbd_opt o;
    cr_assert_eq(nbd_opt_decode(NBD_OPT_GO, info_disk, sizeof(info_disk), &o), 0);
    cr_assert_eq(o.opt, NBD_OPT_GO);
    cr_assert_eq(o.u.info.name.len, 4);
    cr_assert_eq(nbd_opt_decode(NBD_OPT_INFO, info_disk, sizeof(info_disk), &o), 0);
    cr_assert_eq(nbd_opt_decode(NBD_OPT_SET_META_CONTEXT, meta_two, sizeof(meta_two), &o), 0);
    cr_assert_eq(o.u.meta.n_queries, 2);
    cr_assert_eq(nbd_opt_decode(NBD_OPT_LIST_META_CONTEXT, meta_two, 5, &o), -EBADMSG);
    cr_assert_eq(nbd_opt_decode(NBD_OPT_EXPORT_NAME, (const uint8_t *)"ab", 2, &o), 0);
    cr_assert_eq(o.u.export_name.len, 2);
    cr_assert_eq(nbd_opt_decode(NBD_OPT_LIST, NULL, 0, &o), 0);
    cr_assert_eq(nbd_opt_decode(NBD_OPT_STRUCTURED_REPLY, info_disk, 1, &o), -EBADMSG);
    cr_assert_eq(nbd_opt_decode(NBD_OPT_EXTENDED_HEADERS, NULL, 0, &o), -ENOTSUP);
    cr_assert_eq(nbd_opt_decode(4, NULL, 0, &o), -ENOTSUP);
    cr_assert_eq(nbd_opt_decode(0, NULL, 0, &o), -ENOTSUP);
    cr_assert_eq(nbd_opt_decode(0xdeadbeef, info_disk, sizeof(info_disk), &o), -ENOTSUP);
}

Test(nbd_proto, decoder_errors_map_to_option_replies)
{
    cr_assert_eq(nbd_opt_rep_for_error(-EBADMSG), NBD_REP_ERR_INVALID);
    cr_assert_eq(nbd_opt_rep_for_error(-ENAMETOOLONG), NBD_REP_ERR_TOO_BIG);
    cr_assert_eq(nbd_opt_rep_for_error(-E2BIG), NBD_REP_ERR_TOO_BIG);
    cr_assert_eq(nbd_opt_rep_for_error(-ENOTSUP), NBD_REP_ERR_UNSUP);
    cr_assert_eq(nbd_opt_rep_for_error(-EPROTO), 0);
    cr_assert_eq(nbd_opt_rep_for_error(-EAGAIN), 0);
    cr_assert_eq(nbd_opt_rep_for_error(-EINVAL), NBD_REP_ERR_INVALID);
}

/* ---- option replies ----------------------------------------------------------------------- */

Test(nbd_proto, rep_ack_bytes)
{
    const uint8_t exp[] = { REP_MAGIC, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0 };
    uint8_t buf[64];
    cr_assert_eq(nbd_rep_ack_encode(buf, sizeof(buf), NBD_OPT_GO), 20);
    assert_bytes(buf, exp, sizeof(exp));
    fill_canary(buf, sizeof(buf));
    cr_assert_eq(nbd_rep_ack_encode(buf, 19, NBD_OPT_GO), -ENOSPC);
    assert_untouched(buf, sizeof(buf));
}

Test(nbd_proto, rep_header_bytes)
{
    const uint8_t exp[] = { REP_MAGIC, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 1, 0 };
    uint8_t buf[20];
    cr_assert_eq(nbd_rep_header_encode(buf, sizeof(buf), NBD_OPT_LIST, NBD_REP_SERVER, 256), 20);
    assert_bytes(buf, exp, sizeof(exp));
}

Test(nbd_proto, rep_server_bytes)
{
    const uint8_t exp[] = {
        REP_MAGIC, 0,   0,   0,   3,   0,   0,   0,
        2,         0,   0,   0,   12,                 // header: LIST, SERVER, length 12
        0,         0,   0,   4,   'v', 'o', 'l', '1', // name
        'a',       ' ', 'v', 'm',                     // description
    };
    uint8_t buf[64];
    cr_assert_eq(nbd_rep_server_encode(buf, sizeof(buf), NBD_OPT_LIST, "vol1", 4, "a vm", 4),
                 (int)sizeof(exp));
    assert_bytes(buf, exp, sizeof(exp));
    /* no description */
    const uint8_t exp2[] = { REP_MAGIC, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 0 };
    cr_assert_eq(nbd_rep_server_encode(buf, sizeof(buf), NBD_OPT_LIST, NULL, 0, NULL, 0), 24);
    assert_bytes(buf, exp2, sizeof(exp2));
    fill_canary(buf, sizeof(buf));
    cr_assert_eq(nbd_rep_server_encode(buf, 31, NBD_OPT_LIST, "vol1", 4, "a vm", 4), -ENOSPC);
    assert_untouched(buf, sizeof(buf));
}

Test(nbd_proto, rep_info_export_bytes)
{
    const uint8_t exp[] = {
        REP_MAGIC, 0,    0, 0, 6, 0, 0, 0, 3, 0, 0, 0, 12, // header: INFO, REP_INFO, length 12
        0,         0,                                      // NBD_INFO_EXPORT
        0,         0,    0, 1, 0, 0, 0, 0,                 // size 2^32
        0x0d,      0xed,                                   // transmission flags
    };
    uint8_t buf[64];
    const uint16_t tf = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
                        NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN |
                        NBD_FLAG_SEND_CACHE | NBD_FLAG_SEND_FAST_ZERO;
    cr_assert_eq(tf, 0x0d6d);
    cr_assert_eq(nbd_rep_info_export_encode(buf, sizeof(buf), NBD_OPT_INFO, 1ULL << 32,
                                            tf | NBD_FLAG_SEND_DF),
                 32);
    assert_bytes(buf, exp, sizeof(exp));
    cr_assert_eq(nbd_rep_info_export_encode(buf, sizeof(buf), NBD_OPT_INFO, 1, 0), -EINVAL);
    cr_assert_eq(nbd_rep_info_export_encode(buf, 31, NBD_OPT_INFO, 1, 1), -ENOSPC);
}

Test(nbd_proto, rep_info_name_and_description_bytes)
{
    const uint8_t exp_n[] = { REP_MAGIC, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0, 5, 0, 1, 'z', 'v', 'l' };
    const uint8_t exp_d[] = { REP_MAGIC, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0, 4, 0, 2, 'h', 'i' };
    const uint8_t exp_e[] = { REP_MAGIC, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0, 2, 0, 1 };
    uint8_t buf[64];
    cr_assert_eq(nbd_rep_info_name_encode(buf, sizeof(buf), NBD_OPT_GO, "zvl", 3), 25);
    assert_bytes(buf, exp_n, sizeof(exp_n));
    cr_assert_eq(nbd_rep_info_description_encode(buf, sizeof(buf), NBD_OPT_GO, "hi", 2), 24);
    assert_bytes(buf, exp_d, sizeof(exp_d));
    cr_assert_eq(nbd_rep_info_name_encode(buf, sizeof(buf), NBD_OPT_GO, NULL, 0), 22);
    assert_bytes(buf, exp_e, sizeof(exp_e));
    static char big[NBD_MAX_STRING + 1];
    static uint8_t out[NBD_MAX_STRING + 64];
    memset(big, 'a', sizeof(big));
    cr_assert_eq(nbd_rep_info_name_encode(out, sizeof(out), NBD_OPT_GO, big, NBD_MAX_STRING),
                 (int)(22 + NBD_MAX_STRING));
    cr_assert_eq(nbd_rep_info_name_encode(out, sizeof(out), NBD_OPT_GO, big, NBD_MAX_STRING + 1),
                 -EOVERFLOW);
    cr_assert_eq(nbd_rep_info_description_encode(buf, 23, NBD_OPT_GO, "hi", 2), -ENOSPC);
}

Test(nbd_proto, rep_info_block_size_bytes_and_constraints)
{
    const uint8_t exp[] = {
        REP_MAGIC, 0, 0,    0, 7, 0, 0, 0, 3, 0, 0, 0, 14, // header: GO, REP_INFO, length 14
        0,         3,                                      // NBD_INFO_BLOCK_SIZE
        0,         0, 0x02, 0,                             // minimum 512
        0,         0, 0x10, 0,                             // preferred 4096
        0x02,      0, 0,    0,                             // maximum 32 MiB
    };
    uint8_t buf[64];
    cr_assert_eq(nbd_rep_info_block_size_encode(buf, sizeof(buf), NBD_OPT_GO, 512, 4096, 32u << 20),
                 34);
    assert_bytes(buf, exp, sizeof(exp));
    cr_assert_eq(nbd_rep_info_block_size_encode(buf, sizeof(buf), 7, 1, 512, UINT32_MAX), 34);
    cr_assert_eq(nbd_rep_info_block_size_encode(buf, sizeof(buf), 7, 65536, 65536, 1u << 20), 34);
    /* min not a power of two / above 64 KiB / zero */
    cr_assert_eq(nbd_rep_info_block_size_encode(buf, sizeof(buf), 7, 3, 4096, 1u << 20), -EINVAL);
    cr_assert_eq(nbd_rep_info_block_size_encode(buf, sizeof(buf), 7, 1u << 17, 1u << 17, 1u << 20),
                 -EINVAL);
    cr_assert_eq(nbd_rep_info_block_size_encode(buf, sizeof(buf), 7, 0, 4096, 4096), -EINVAL);
    /* preferred below 512 or below min, or not a power of two */
    cr_assert_eq(nbd_rep_info_block_size_encode(buf, sizeof(buf), 7, 1, 256, 4096), -EINVAL);
    cr_assert_eq(nbd_rep_info_block_size_encode(buf, sizeof(buf), 7, 4096, 2048, 8192), -EINVAL);
    cr_assert_eq(nbd_rep_info_block_size_encode(buf, sizeof(buf), 7, 512, 3000, 8192), -EINVAL);
    /* maximum not a multiple of min (0xffffffff allowed) / zero */
    cr_assert_eq(nbd_rep_info_block_size_encode(buf, sizeof(buf), 7, 512, 4096, 4097), -EINVAL);
    cr_assert_eq(nbd_rep_info_block_size_encode(buf, sizeof(buf), 7, 512, 4096, 0), -EINVAL);
    cr_assert_eq(nbd_rep_info_block_size_encode(buf, sizeof(buf), 7, 512, 4096, UINT32_MAX), 34);
    cr_assert_eq(nbd_rep_info_block_size_encode(buf, 33, 7, 512, 4096, 4096), -ENOSPC);
}

Test(nbd_proto, rep_meta_context_bytes)
{
    const uint8_t exp[] = {
        REP_MAGIC,
        0,
        0,
        0,
        10,
        0,
        0,
        0,
        4,
        0,
        0,
        0,
        19, // header: SET_META,
            // META_CONTEXT, 19
        0,
        0,
        0,
        1, // context id
        'b',
        'a',
        's',
        'e',
        ':',
        'a',
        'l',
        'l',
        'o',
        'c',
        'a',
        't',
        'i',
        'o',
        'n',
    };
    uint8_t buf[64];
    cr_assert_eq(nbd_rep_meta_context_encode(buf, sizeof(buf), NBD_OPT_SET_META_CONTEXT, 1,
                                             NBD_META_BASE_ALLOCATION_NAME, 15),
                 39);
    assert_bytes(buf, exp, sizeof(exp));
    cr_assert_eq(nbd_rep_meta_context_encode(buf, 38, 10, 1, "base:allocation", 15), -ENOSPC);
}

Test(nbd_proto, rep_error_bytes_with_and_without_message)
{
    const uint8_t exp_m[] = { REP_MAGIC, 0, 0, 0, 7, 0x80, 0, 0, 6, 0, 0, 0, 2, 'n', 'o' };
    const uint8_t exp_0[] = { REP_MAGIC, 0, 0, 0, 9, 0x80, 0, 0, 3, 0, 0, 0, 0 };
    uint8_t buf[64];
    cr_assert_eq(nbd_rep_error_encode(buf, sizeof(buf), NBD_OPT_GO, NBD_REP_ERR_UNKNOWN, "no", 2),
                 22);
    assert_bytes(buf, exp_m, sizeof(exp_m));
    cr_assert_eq(nbd_rep_error_encode(buf, sizeof(buf), NBD_OPT_LIST_META_CONTEXT,
                                      NBD_REP_ERR_INVALID, NULL, 0),
                 20);
    assert_bytes(buf, exp_0, sizeof(exp_0));
    cr_assert_eq(nbd_rep_error_encode(buf, sizeof(buf), NBD_OPT_GO, NBD_REP_ACK, NULL, 0), -EINVAL);
    static char big[NBD_MAX_STRING + 1];
    static uint8_t out[NBD_MAX_STRING + 64];
    cr_assert_eq(
        nbd_rep_error_encode(out, sizeof(out), 7, NBD_REP_ERR_POLICY, big, NBD_MAX_STRING + 1),
        -EOVERFLOW);
    fill_canary(buf, sizeof(buf));
    cr_assert_eq(nbd_rep_error_encode(buf, 21, NBD_OPT_GO, NBD_REP_ERR_UNKNOWN, "no", 2), -ENOSPC);
    assert_untouched(buf, sizeof(buf));
}

Test(nbd_proto, export_name_reply_pads_124_zeroes_unless_no_zeroes)
{
    uint8_t buf[160];
    fill_canary(buf, sizeof(buf));
    const uint8_t head[] = { 0, 0, 0, 0, 0x40, 0, 0, 0, 0x01, 0x03 };
    const uint16_t tf = NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY | 0x100;
    cr_assert_eq(nbd_export_name_reply_encode(buf, sizeof(buf), 1ULL << 30, tf, false), 134);
    assert_bytes(buf, head, sizeof(head));
    for (size_t i = 10; i < 134; i++)
        cr_assert_eq(buf[i], 0, "padding byte %zu", i);
    cr_assert_eq(buf[134], CANARY);
    fill_canary(buf, sizeof(buf));
    cr_assert_eq(nbd_export_name_reply_encode(buf, sizeof(buf), 1ULL << 30, tf, true), 10);
    assert_bytes(buf, head, sizeof(head));
    cr_assert_eq(buf[10], CANARY);
    cr_assert_eq(nbd_export_name_reply_encode(buf, 133, 1, 1, false), -ENOSPC);
    cr_assert_eq(nbd_export_name_reply_encode(buf, 9, 1, 1, true), -ENOSPC);
    cr_assert_eq(nbd_export_name_reply_encode(buf, sizeof(buf), 1, 0, true), -EINVAL);
}

/* ---- metadata context names ---------------------------------------------------------------- */

Test(nbd_proto, meta_classify_table)
{
    static const struct {
        const char *q;
        enum nbd_meta_kind kind;
        const char *leaf;
    } cases[] = {
        { "base:allocation", NBD_META_BASE_ALLOCATION, "allocation" },
        { "base:", NBD_META_BASE_ALL, "" },
        { "base:other", NBD_META_BASE_OTHER, "other" },
        { "base:allocation2", NBD_META_BASE_OTHER, "allocation2" },
        { "qemu:", NBD_META_QEMU_ALL, "" },
        { "qemu:dirty-bitmap:", NBD_META_QEMU_DIRTY_ALL, "" },
        { "qemu:dirty-bitmap:snap-1", NBD_META_QEMU_DIRTY_BITMAP, "snap-1" },
        { "qemu:dirty-bitmap:a:b", NBD_META_QEMU_DIRTY_BITMAP, "a:b" },
        { "qemu:dirty-bitmap", NBD_META_QEMU_OTHER, "dirty-bitmap" },
        { "qemu:allocation-depth", NBD_META_QEMU_ALLOCATION_DEPTH, "allocation-depth" },
        { "qemu:x", NBD_META_QEMU_OTHER, "x" },
        { "x-lcpfs:foo", NBD_META_OTHER_NS, "foo" },
        { "nbd-server:", NBD_META_OTHER_NS, "" },
        { "BASE:allocation", NBD_META_OTHER_NS, "allocation" },
        { "", NBD_META_INVALID, "" },
        { "base", NBD_META_INVALID, "" },
        { ":allocation", NBD_META_INVALID, "" },
        { "ba se:allocation", NBD_META_INVALID, "" },
        { "base\t:x", NBD_META_INVALID, "" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nbd_str leaf;
        enum nbd_meta_kind k = nbd_meta_classify(cases[i].q, strlen(cases[i].q), &leaf);
        cr_assert_eq(k, cases[i].kind, "'%s': kind %d want %d", cases[i].q, k, cases[i].kind);
        cr_assert_eq(leaf.len, strlen(cases[i].leaf), "'%s' leaf length", cases[i].q);
        cr_assert_eq(memcmp(leaf.ptr, cases[i].leaf, leaf.len), 0, "'%s' leaf", cases[i].q);
    }
    cr_assert_eq(nbd_meta_classify("base:allocation", 15, NULL), NBD_META_BASE_ALLOCATION);
    cr_assert_eq(nbd_meta_classify("base:allocation", 14, NULL), NBD_META_BASE_OTHER);
    cr_assert_eq(nbd_meta_classify("base:\0x", 7, NULL), NBD_META_INVALID);
    static char big[NBD_MAX_STRING + 1];
    memset(big, 'a', sizeof(big));
    memcpy(big, "qemu:dirty-bitmap:", 18);
    cr_assert_eq(nbd_meta_classify(big, NBD_MAX_STRING, NULL), NBD_META_QEMU_DIRTY_BITMAP);
    cr_assert_eq(nbd_meta_classify(big, NBD_MAX_STRING + 1, NULL), NBD_META_INVALID);
}

/* ---- requests ----------------------------------------------------------------------------- */

Test(nbd_proto, request_decodes_every_field)
{
    const uint8_t b[] = {
        0x25,   0x60, 0x95, 0x13,                // magic
        0x00,   0x11,                            // FUA | FAST_ZERO
        0x00,   0x06,                            // WRITE_ZEROES
        COOKIE,                                  // cookie
        0,      0,    0,    1,    0, 0, 0x10, 0, // offset 2^32 + 4096
        0,      0x20, 0,    0,                   // length 2 MiB
    };
    cr_assert_eq(sizeof(b), 28);
    struct nbd_request r;
    cr_assert_eq(nbd_request_decode(b, sizeof(b), &r), 0);
    cr_assert_eq(r.flags, NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_FAST_ZERO);
    cr_assert_eq(r.type, NBD_CMD_WRITE_ZEROES);
    cr_assert_eq(r.cookie, cookie);
    cr_assert_eq(r.offset, 0x0000000100001000ULL);
    cr_assert_eq(r.length, 0x200000);
    uint8_t again[28];
    cr_assert_eq(nbd_request_encode(again, sizeof(again), &r), 28);
    assert_bytes(again, b, 28);
    for (size_t n = 0; n < 28; n++)
        cr_assert_eq(nbd_request_decode(b, n, &r), -EAGAIN, "len %zu", n);
    uint8_t bad[28];
    memcpy(bad, b, 28);
    bad[3] = 0x14; /* 0x25609514: reserved, not a request */
    cr_assert_eq(nbd_request_decode(bad, 28, &r), -EPROTO);
    cr_assert_eq(nbd_request_encode(again, 27, &r), -ENOSPC);
}

Test(nbd_proto, only_write_carries_a_payload)
{
    for (uint16_t t = 0; t < 16; t++) {
        struct nbd_request r = { .type = t, .length = 4096 };
        cr_assert_eq(nbd_request_payload_len(&r), t == NBD_CMD_WRITE ? 4096u : 0u);
    }
}

#define MiB(x) ((uint64_t)(x) << 20)

static const uint16_t all_tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
                                   NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
                                   NBD_FLAG_SEND_DF | NBD_FLAG_CAN_MULTI_CONN |
                                   NBD_FLAG_SEND_CACHE | NBD_FLAG_SEND_FAST_ZERO;

static struct nbd_export_facts
facts(void)
{
    return (struct nbd_export_facts){ .size = MiB(64),
                                      .tflags = all_tflags,
                                      .structured = true,
                                      .n_meta = 1,
                                      .min_block = 512,
                                      .max_block = (uint32_t)MiB(32) };
}

static uint32_t
chk(uint16_t type, uint16_t flags, uint64_t off, uint32_t len, struct nbd_export_facts ex)
{
    struct nbd_request r = {
        .flags = flags, .type = type, .cookie = 1, .offset = off, .length = len
    };
    return nbd_request_check(&r, &ex);
}

Test(nbd_proto, check_accepts_ordinary_requests)
{
    struct nbd_export_facts ex = facts();
    cr_assert_eq(chk(NBD_CMD_READ, 0, 0, 4096, ex), 0);
    cr_assert_eq(chk(NBD_CMD_READ, NBD_CMD_FLAG_FUA, 0, 4096, ex), 0, "FUA valid on any cmd");
    cr_assert_eq(chk(NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 65536, ex), 0);
    cr_assert_eq(chk(NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, MiB(63), (uint32_t)MiB(1), ex), 0);
    cr_assert_eq(chk(NBD_CMD_FLUSH, 0, 0, 0, ex), 0);
    cr_assert_eq(chk(NBD_CMD_TRIM, NBD_CMD_FLAG_FUA, 0, (uint32_t)MiB(64), ex), 0);
    cr_assert_eq(chk(NBD_CMD_CACHE, 0, 512, 512, ex), 0);
    cr_assert_eq(chk(NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FUA, 0, 512, ex), 0);
    cr_assert_eq(chk(NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_FAST_ZERO, 0, 512, ex), 0);
    cr_assert_eq(chk(NBD_CMD_BLOCK_STATUS, 0, 0, 4096, ex), 0);
    cr_assert_eq(chk(NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, 0, 4096, ex), 0);
    cr_assert_eq(chk(NBD_CMD_DISC, 0xffff, 12345, 1, ex), 0, "DISC has no reply");
}

Test(nbd_proto, check_rejects_unknown_commands_and_flags)
{
    struct nbd_export_facts ex = facts();
    cr_assert_eq(chk(8, 0, 0, 512, ex), NBD_EINVAL, "RESIZE is not supported");
    cr_assert_eq(chk(0xffff, 0, 0, 512, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_READ, 1u << 5, 0, 512, ex), NBD_EINVAL, "PAYLOAD_LEN");
    cr_assert_eq(chk(NBD_CMD_READ, 0x8000, 0, 512, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_CACHE, NBD_CMD_FLAG_NO_HOLE, 0, 512, ex), NBD_EINVAL);
}

Test(nbd_proto, check_rejects_flags_on_the_wrong_command)
{
    struct nbd_export_facts ex = facts();
    const uint16_t not_read[] = { NBD_CMD_WRITE, NBD_CMD_TRIM, NBD_CMD_WRITE_ZEROES,
                                  NBD_CMD_BLOCK_STATUS, NBD_CMD_CACHE };
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(chk(not_read[i], NBD_CMD_FLAG_DF, 0, 512, ex), NBD_EINVAL, "DF on %s",
                     nbd_cmd_name(not_read[i]));
    const uint16_t not_bs[] = { NBD_CMD_READ, NBD_CMD_WRITE, NBD_CMD_TRIM, NBD_CMD_WRITE_ZEROES };
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(chk(not_bs[i], NBD_CMD_FLAG_REQ_ONE, 0, 512, ex), NBD_EINVAL, "REQ_ONE");
    const uint16_t not_wz[] = { NBD_CMD_READ, NBD_CMD_WRITE, NBD_CMD_TRIM, NBD_CMD_BLOCK_STATUS };
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(chk(not_wz[i], NBD_CMD_FLAG_FAST_ZERO, 0, 512, ex), NBD_EINVAL, "FAST_ZERO");
        cr_assert_eq(chk(not_wz[i], NBD_CMD_FLAG_NO_HOLE, 0, 512, ex), NBD_EINVAL, "NO_HOLE");
    }
    cr_assert_eq(chk(NBD_CMD_FLUSH, NBD_CMD_FLAG_NO_HOLE, 0, 0, ex), NBD_EINVAL);
}

Test(nbd_proto, check_rejects_flags_not_negotiated)
{
    struct nbd_export_facts ex = facts();
    ex.tflags &= (uint16_t)~NBD_FLAG_SEND_FUA;
    cr_assert_eq(chk(NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 0, 512, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_WRITE, 0, 0, 512, ex), 0);
    ex = facts();
    ex.tflags &= (uint16_t)~NBD_FLAG_SEND_DF;
    cr_assert_eq(chk(NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 512, ex), NBD_EINVAL);
    ex = facts();
    ex.structured = false; /* DF without structured replies, even if SEND_DF was (wrongly) set */
    cr_assert_eq(chk(NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 512, ex), NBD_EINVAL);
    ex = facts();
    ex.tflags &= (uint16_t)~NBD_FLAG_SEND_FAST_ZERO;
    cr_assert_eq(chk(NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_FAST_ZERO, 0, 512, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_WRITE_ZEROES, 0, 0, 512, ex), 0);
}

Test(nbd_proto, check_refuses_writes_on_read_only_exports_with_eperm)
{
    struct nbd_export_facts ex = facts();
    ex.tflags |= NBD_FLAG_READ_ONLY;
    cr_assert_eq(chk(NBD_CMD_WRITE, 0, 0, 512, ex), NBD_EPERM);
    cr_assert_eq(chk(NBD_CMD_TRIM, 0, 0, 512, ex), NBD_EPERM);
    cr_assert_eq(chk(NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE, 0, 512, ex), NBD_EPERM);
    ex.tflags &= (uint16_t) ~(NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES);
    cr_assert_eq(chk(NBD_CMD_TRIM, 0, 0, 512, ex), NBD_EPERM, "EPERM wins over not exposed");
    cr_assert_eq(chk(NBD_CMD_WRITE, 0, MiB(64), 512, ex), NBD_EPERM, "EPERM wins over ENOSPC");
    cr_assert_eq(chk(NBD_CMD_READ, 0, 0, 512, ex), 0);
    cr_assert_eq(chk(NBD_CMD_FLUSH, 0, 0, 0, ex), 0);
    cr_assert_eq(chk(NBD_CMD_BLOCK_STATUS, 0, 0, 512, ex), 0);
    cr_assert_eq(chk(NBD_CMD_CACHE, 0, 0, 512, ex), 0);
}

Test(nbd_proto, check_rejects_commands_the_export_did_not_expose)
{
    struct nbd_export_facts ex = facts();
    ex.tflags = NBD_FLAG_HAS_FLAGS;
    cr_assert_eq(chk(NBD_CMD_FLUSH, 0, 0, 0, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_TRIM, 0, 0, 512, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_WRITE_ZEROES, 0, 0, 512, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_CACHE, 0, 0, 512, ex), 0, "CACHE tolerated without SEND_CACHE");
    cr_assert_eq(chk(NBD_CMD_READ, 0, 0, 512, ex), 0);
    cr_assert_eq(chk(NBD_CMD_WRITE, 0, 0, 512, ex), 0);
}

Test(nbd_proto, check_block_status_needs_structured_replies_and_a_context)
{
    struct nbd_export_facts ex = facts();
    ex.n_meta = 0;
    cr_assert_eq(chk(NBD_CMD_BLOCK_STATUS, 0, 0, 512, ex), NBD_EINVAL);
    ex = facts();
    ex.structured = false;
    cr_assert_eq(chk(NBD_CMD_BLOCK_STATUS, 0, 0, 512, ex), NBD_EINVAL);
    ex = facts();
    cr_assert_eq(chk(NBD_CMD_BLOCK_STATUS, 0, 0, 0, ex), NBD_EINVAL, "length 0");
    cr_assert_eq(chk(NBD_CMD_BLOCK_STATUS, 0, 0, (uint32_t)MiB(64), ex), 0, "not bound by max");
    cr_assert_eq(chk(NBD_CMD_BLOCK_STATUS, 0, MiB(64) - 512, 1024, ex), NBD_EINVAL);
}

Test(nbd_proto, check_flush_reserved_fields_must_be_zero)
{
    struct nbd_export_facts ex = facts();
    cr_assert_eq(chk(NBD_CMD_FLUSH, 0, 512, 0, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_FLUSH, 0, 0, 512, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_FLUSH, NBD_CMD_FLAG_FUA, 0, 0, ex), 0);
}

Test(nbd_proto, check_enforces_alignment_only_when_asked)
{
    struct nbd_export_facts ex = facts();
    cr_assert_eq(chk(NBD_CMD_READ, 0, 1, 512, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_READ, 0, 512, 100, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_WRITE, 0, 4, 4, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_TRIM, 0, 0, 513, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_BLOCK_STATUS, 0, 256, 512, ex), NBD_EINVAL);
    ex.min_block = 1;
    cr_assert_eq(chk(NBD_CMD_READ, 0, 1, 511, ex), 0);
    ex.min_block = 0;
    cr_assert_eq(chk(NBD_CMD_WRITE, 0, 3, 7, ex), 0);
}

Test(nbd_proto, check_enforces_the_maximum_with_einval_where_the_spec_applies_it)
{
    struct nbd_export_facts ex = facts();
    const uint32_t over = (uint32_t)MiB(32) + 512;
    cr_assert_eq(chk(NBD_CMD_READ, 0, 0, (uint32_t)MiB(32), ex), 0);
    cr_assert_eq(chk(NBD_CMD_READ, 0, 0, over, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, over, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_WRITE, 0, 0, over, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_CACHE, 0, 0, over, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_WRITE_ZEROES, 0, 0, over, ex), 0); /* our policy: any length */
    cr_assert_eq(chk(NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_FAST_ZERO, 0, over, ex), 0);
    cr_assert_eq(chk(NBD_CMD_TRIM, 0, 0, over, ex), 0);
    cr_assert_eq(chk(NBD_CMD_BLOCK_STATUS, 0, 0, over, ex), 0);
    ex.max_block = 0; /* no limit */
    cr_assert_eq(chk(NBD_CMD_READ, 0, 0, (uint32_t)MiB(64), ex), 0);
}

Test(nbd_proto, check_df_read_that_cannot_fit_one_chunk_is_eoverflow)
{
    struct nbd_export_facts ex = facts();
    ex.size = 1ULL << 40;
    ex.min_block = 1;
    ex.max_block = 0;
    cr_assert_eq(chk(NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, UINT32_MAX - 8, ex), 0);
    cr_assert_eq(chk(NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, UINT32_MAX - 7, ex), NBD_EOVERFLOW);
    cr_assert_eq(chk(NBD_CMD_READ, 0, 0, UINT32_MAX, ex), 0, "without DF it may be split");
}

Test(nbd_proto, check_range_past_the_end_is_enospc_for_writes_and_einval_otherwise)
{
    struct nbd_export_facts ex = facts();
    const uint64_t end = MiB(64);
    cr_assert_eq(chk(NBD_CMD_READ, 0, end - 512, 512, ex), 0);
    cr_assert_eq(chk(NBD_CMD_READ, 0, end - 512, 1024, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_WRITE, 0, end - 512, 1024, ex), NBD_ENOSPC);
    cr_assert_eq(chk(NBD_CMD_WRITE_ZEROES, 0, end, 512, ex), NBD_ENOSPC);
    cr_assert_eq(chk(NBD_CMD_TRIM, 0, end, 512, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_CACHE, 0, end, 512, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_READ, 0, end, 0, ex), 0, "zero length at the end");
    cr_assert_eq(chk(NBD_CMD_READ, 0, end + 512, 0, ex), NBD_EINVAL);
    /* offset + length wraps around 2^64 */
    const uint64_t wrap = UINT64_MAX - 511;
    cr_assert_eq(chk(NBD_CMD_READ, 0, wrap, 1024, ex), NBD_EINVAL);
    cr_assert_eq(chk(NBD_CMD_WRITE, 0, wrap, 1024, ex), NBD_ENOSPC);
    ex.size = UINT64_MAX - 511; /* huge export, request ends exactly at its end */
    cr_assert_eq(chk(NBD_CMD_READ, 0, UINT64_MAX - 1023, 512, ex), 0);
}

Test(nbd_proto, check_zero_length_io_is_accepted)
{
    struct nbd_export_facts ex = facts();
    cr_assert_eq(chk(NBD_CMD_READ, 0, 0, 0, ex), 0);
    cr_assert_eq(chk(NBD_CMD_WRITE, 0, 0, 0, ex), 0);
    cr_assert_eq(chk(NBD_CMD_TRIM, 0, 0, 0, ex), 0);
    cr_assert_eq(chk(NBD_CMD_WRITE_ZEROES, 0, 0, 0, ex), 0);
}

Test(nbd_proto, host_errno_maps_to_wire_errors)
{
    static const struct {
        int in;
        uint32_t out;
    } cases[] = {
        { 0, 0 },
        { -EPERM, NBD_EPERM },
        { -EACCES, NBD_EPERM },
        { -EROFS, NBD_EPERM },
        { -EIO, NBD_EIO },
        { -ECKSUM, NBD_EIO },
        { -ECORRUPT, NBD_EIO },
        { -EDEGRADED, NBD_EIO },
        { -ENOMEM, NBD_ENOMEM },
        { -EINVAL, NBD_EINVAL },
        { -ENOSPC, NBD_ENOSPC },
        { -EDQUOT, NBD_ENOSPC },
        { -EFBIG, NBD_ENOSPC },
        { -EOVERFLOW, NBD_EOVERFLOW },
        { -ENOTSUP, NBD_ENOTSUP },
        { -EOPNOTSUPP, NBD_ENOTSUP },
        { -ESHUTDOWN, NBD_ESHUTDOWN },
        { -ENOENT, NBD_EINVAL },
        { -EBUSY, NBD_EINVAL },
        { -EVERSION, NBD_EINVAL },
        { -999999, NBD_EINVAL },
        { EROFS, NBD_EPERM },
        { ENOSPC, NBD_ENOSPC },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert_eq(nbd_errno_to_wire(cases[i].in), cases[i].out, "errno %d", cases[i].in);
    cr_assert_eq(NBD_EPERM, 1);
    cr_assert_eq(NBD_EIO, 5);
    cr_assert_eq(NBD_ENOMEM, 12);
    cr_assert_eq(NBD_EINVAL, 22);
    cr_assert_eq(NBD_ENOSPC, 28);
    cr_assert_eq(NBD_EOVERFLOW, 75);
    cr_assert_eq(NBD_ENOTSUP, 95);
    cr_assert_eq(NBD_ESHUTDOWN, 108);
}

/* ---- replies ------------------------------------------------------------------------------ */

Test(nbd_proto, simple_reply_bytes)
{
    const uint8_t exp[] = { 0x67, 0x44, 0x66, 0x98, 0, 0, 0, 28, COOKIE };
    uint8_t buf[16];
    cr_assert_eq(nbd_simple_reply_encode(buf, sizeof(buf), NBD_ENOSPC, cookie), 16);
    assert_bytes(buf, exp, 16);
    cr_assert_eq(nbd_simple_reply_encode(buf, 15, 0, cookie), -ENOSPC);
}

Test(nbd_proto, chunk_header_and_none_bytes)
{
    const uint8_t exp[] = { SR_MAGIC, 0, 0, 0, 5, COOKIE, 0, 0, 1, 0 };
    const uint8_t none[] = { SR_MAGIC, 0, 1, 0, 0, COOKIE, 0, 0, 0, 0 };
    uint8_t buf[20];
    cr_assert_eq(
        nbd_chunk_header_encode(buf, sizeof(buf), 0, NBD_REPLY_TYPE_BLOCK_STATUS, cookie, 256), 20);
    assert_bytes(buf, exp, 20);
    cr_assert_eq(nbd_chunk_none_encode(buf, sizeof(buf), cookie), 20);
    assert_bytes(buf, none, 20);
    cr_assert_eq(nbd_chunk_none_encode(buf, 19, cookie), -ENOSPC);
    cr_assert_eq(nbd_chunk_header_encode(buf, 19, 0, 0, cookie, 0), -ENOSPC);
}

Test(nbd_proto, offset_data_header_bytes)
{
    const uint8_t exp[] = {
        SR_MAGIC, 0, 1, 0, 1, COOKIE, 0,    0, 0x10, 0x08, // DONE, OFFSET_DATA, length 4096 + 8
        0,        0, 0, 0, 0, 0,      0x20, 0,             // offset 8192
    };
    uint8_t buf[64];
    cr_assert_eq(
        nbd_chunk_offset_data_encode(buf, sizeof(buf), NBD_REPLY_FLAG_DONE, cookie, 8192, 4096),
        28);
    assert_bytes(buf, exp, sizeof(exp));
    cr_assert_eq(nbd_chunk_offset_data_encode(buf, sizeof(buf), 0, cookie, 0, 0), -EINVAL);
    cr_assert_eq(nbd_chunk_offset_data_encode(buf, sizeof(buf), 0, cookie, 0, UINT32_MAX - 7),
                 -EOVERFLOW);
    cr_assert_eq(nbd_chunk_offset_data_encode(buf, sizeof(buf), 0, cookie, 0, UINT32_MAX - 8), 28);
    cr_assert_eq(buf[16] == 0xff && buf[17] == 0xff && buf[18] == 0xff && buf[19] == 0xff, 1);
    cr_assert_eq(nbd_chunk_offset_data_encode(buf, 27, 0, cookie, 0, 1), -ENOSPC);
}

Test(nbd_proto, offset_hole_bytes)
{
    const uint8_t exp[] = {
        SR_MAGIC, 0,    0, 0, 2, COOKIE, 0, 0, 0, 12, // OFFSET_HOLE, length 12
        0,        0,    0, 0, 0, 0x10,   0, 0,        // offset 1 MiB
        0,        0x01, 0, 0,                         // hole size 64 KiB
    };
    uint8_t buf[64];
    cr_assert_eq(nbd_chunk_offset_hole_encode(buf, sizeof(buf), 0, cookie, 1ULL << 20, 65536), 32);
    assert_bytes(buf, exp, sizeof(exp));
    cr_assert_eq(nbd_chunk_offset_hole_encode(buf, sizeof(buf), 0, cookie, 0, 0), -EINVAL);
    cr_assert_eq(nbd_chunk_offset_hole_encode(buf, 31, 0, cookie, 0, 1), -ENOSPC);
}

Test(nbd_proto, error_chunks_bytes)
{
    const uint8_t exp[] = {
        SR_MAGIC, 0, 1,   0x80, 1, COOKIE, 0, 0, 0, 8, // DONE, ERROR, length 8
        0,        0, 0,   5,                           // EIO
        0,        2, 'i', 'o',                         // message
    };
    const uint8_t exp0[] = { SR_MAGIC, 0, 1, 0x80, 1, COOKIE, 0, 0, 0, 6, 0, 0, 0, 22, 0, 0 };
    const uint8_t expo[] = {
        SR_MAGIC, 0, 0,   0x80, 2,   COOKIE, 0,    0, 0, 17, // ERROR_OFFSET, length 17
        0,        0, 0,   5,                                 // EIO
        0,        3, 'b', 'a',  'd',                         // message
        0,        0, 0,   0,    0,   0,      0x02, 0,        // offset 512
    };
    uint8_t buf[64];
    cr_assert_eq(
        nbd_chunk_error_encode(buf, sizeof(buf), NBD_REPLY_FLAG_DONE, cookie, NBD_EIO, "io", 2),
        28);
    assert_bytes(buf, exp, sizeof(exp));
    cr_assert_eq(
        nbd_chunk_error_encode(buf, sizeof(buf), NBD_REPLY_FLAG_DONE, cookie, NBD_EINVAL, NULL, 0),
        26);
    assert_bytes(buf, exp0, sizeof(exp0));
    cr_assert_eq(nbd_chunk_error_offset_encode(buf, sizeof(buf), 0, cookie, NBD_EIO, "bad", 3, 512),
                 37);
    assert_bytes(buf, expo, sizeof(expo));
    cr_assert_eq(nbd_chunk_error_encode(buf, sizeof(buf), 0, cookie, 0, NULL, 0), -EINVAL);
    cr_assert_eq(nbd_chunk_error_offset_encode(buf, sizeof(buf), 0, cookie, 0, NULL, 0, 0),
                 -EINVAL);
    static char big[NBD_MAX_STRING + 1];
    static uint8_t out[NBD_MAX_STRING + 64];
    cr_assert_eq(nbd_chunk_error_encode(out, sizeof(out), 0, cookie, NBD_EIO, big, NBD_MAX_STRING),
                 (int)(26 + NBD_MAX_STRING));
    cr_assert_eq(
        nbd_chunk_error_encode(out, sizeof(out), 0, cookie, NBD_EIO, big, NBD_MAX_STRING + 1),
        -EOVERFLOW);
    fill_canary(buf, sizeof(buf));
    cr_assert_eq(nbd_chunk_error_encode(buf, 27, 0, cookie, NBD_EIO, "io", 2), -ENOSPC);
    cr_assert_eq(nbd_chunk_error_offset_encode(buf, 36, 0, cookie, NBD_EIO, "bad", 3, 0), -ENOSPC);
    assert_untouched(buf, sizeof(buf));
}

/* ---- BLOCK_STATUS builder ----------------------------------------------------------------- */

Test(nbd_proto, block_status_chunk_bytes)
{
    const uint8_t exp[] = {
        SR_MAGIC, 0, 1,    0, 5, COOKIE, 0, 0, 0, 28, // DONE, BLOCK_STATUS, length 4 + 3 * 8
        0,        0, 0,    1,                         // context id
        0,        0, 0x04, 0, 0, 0,      0, 0,        // 1024 data
        0,        0, 0x08, 0, 0, 0,      0, 3,        // 2048 hole + zero (two extents merged)
        0,        0, 0x04, 0, 0, 0,      0, 0,        // 1024 data (clamped to the request)
    };
    uint8_t buf[256];
    struct nbd_bs_builder b;
    cr_assert_eq(nbd_bs_begin(&b, buf, sizeof(buf), cookie, 1, 4096, false, 0), 0);
    cr_assert_eq(nbd_bs_add(&b, 1024, 0), 0);
    cr_assert_eq(nbd_bs_add(&b, 1024, NBD_STATE_HOLE | NBD_STATE_ZERO), 0);
    cr_assert_eq(nbd_bs_add(&b, 1024, NBD_STATE_HOLE | NBD_STATE_ZERO), 0, "merged");
    cr_assert_eq(nbd_bs_add(&b, 1ULL << 40, 0), 1, "covers the rest, clamped");
    cr_assert_eq(nbd_bs_add(&b, 512, 0), -ENOSPC);
    cr_assert_eq(nbd_bs_finish(&b, NBD_REPLY_FLAG_DONE), (int)sizeof(exp));
    assert_bytes(buf, exp, sizeof(exp));
}

Test(nbd_proto, block_status_req_one_gives_one_descriptor_within_the_request)
{
    const uint8_t exp[] = {
        SR_MAGIC, 0, 0,    0, 5, COOKIE, 0, 0, 0, 12, // BLOCK_STATUS, length 12
        0,        0, 0,    2,                         // context id
        0,        0, 0x10, 0, 0, 0,      0, 1,        // 4096 dirty (clamped to the request)
    };
    uint8_t buf[256];
    struct nbd_bs_builder b;
    cr_assert_eq(nbd_bs_begin(&b, buf, sizeof(buf), cookie, 2, 4096, true, 0), 0);
    cr_assert_eq(nbd_bs_add(&b, UINT64_MAX, NBD_STATE_DIRTY), 1);
    cr_assert_eq(nbd_bs_add(&b, 512, NBD_STATE_DIRTY), -ENOSPC, "no merge after REQ_ONE");
    cr_assert_eq(nbd_bs_finish(&b, 0), 32);
    assert_bytes(buf, exp, sizeof(exp));
    /* a short first extent still ends the chunk */
    cr_assert_eq(nbd_bs_begin(&b, buf, sizeof(buf), cookie, 2, 4096, true, 0), 0);
    cr_assert_eq(nbd_bs_add(&b, 512, 0), 1);
    cr_assert_eq(nbd_bs_finish(&b, 0), 32);
    cr_assert_eq(buf[26], 0x02); /* 512 */
}

Test(nbd_proto, block_status_caps_descriptors_by_count_and_buffer)
{
    uint8_t buf[256];
    struct nbd_bs_builder b;
    cr_assert_eq(nbd_bs_begin(&b, buf, sizeof(buf), cookie, 1, 1u << 20, false, 2), 0);
    cr_assert_eq(nbd_bs_add(&b, 512, 0), 0);
    cr_assert_eq(nbd_bs_add(&b, 512, 1), 1);
    cr_assert_eq(nbd_bs_add(&b, 512, 0), -ENOSPC);
    cr_assert_eq(nbd_bs_finish(&b, 0), 24 + 16);
    /* cap for exactly two descriptors */
    cr_assert_eq(nbd_bs_begin(&b, buf, 24 + 16 + 7, cookie, 1, 1u << 20, false, 0), 0);
    cr_assert_eq(nbd_bs_add(&b, 512, 0), 0);
    cr_assert_eq(nbd_bs_add(&b, 512, 0), 0, "a merge takes no room");
    cr_assert_eq(nbd_bs_add(&b, 512, 1), 1);
    cr_assert_eq(nbd_bs_finish(&b, 0), 40);
    cr_assert_eq(buf[26], 0x04, "first descriptor 1024 bytes");
}

Test(nbd_proto, block_status_rejects_misuse)
{
    uint8_t buf[64];
    struct nbd_bs_builder b;
    cr_assert_eq(nbd_bs_begin(&b, buf, 31, cookie, 1, 4096, false, 0), -ENOSPC);
    cr_assert_eq(nbd_bs_begin(&b, buf, sizeof(buf), cookie, 1, 0, false, 0), -EINVAL);
    cr_assert_eq(nbd_bs_begin(&b, buf, 32, cookie, 1, 4096, false, 0), 0);
    cr_assert_eq(nbd_bs_finish(&b, 0), -EINVAL, "no descriptor");
    cr_assert_eq(nbd_bs_add(&b, 0, 0), -EINVAL);
    cr_assert_eq(nbd_bs_add(&b, 512, 0), 1, "one descriptor fills a 32-byte buffer");
    cr_assert_eq(nbd_bs_finish(&b, 0), 32);
}

/* Random extents against a byte-map oracle: the chunk must describe consecutive nonzero extents
 * from the start, cover no more than the request, never repeat a status between neighbours,
 * respect the caps, and agree with the model on every covered byte. */
Test(nbd_proto, block_status_builder_matches_oracle)
{
    uint64_t seed = 0x5eed0b5u;
    printf("block_status oracle seed 0x%llx\n", (unsigned long long)seed);
    static uint8_t buf[24 + 64 * 8];
    static uint8_t model[8192];
    for (int iter = 0; iter < 2000; iter++) {
        uint32_t req_len = 1 + (uint32_t)(rnd(&seed) % sizeof(model));
        bool req_one = rnd(&seed) % 4 == 0;
        uint32_t max_desc = (uint32_t)(rnd(&seed) % 8);
        size_t cap = 32 + (size_t)(rnd(&seed) % (sizeof(buf) - 31));
        struct nbd_bs_builder b;
        cr_assert_eq(nbd_bs_begin(&b, buf, cap, cookie, 7, req_len, req_one, max_desc), 0);
        uint32_t pos = 0;
        int rc;
        do {
            uint64_t len = 1 + rnd(&seed) % 1500;
            uint8_t st = (uint8_t)(rnd(&seed) % 3);
            for (uint64_t i = pos; i < pos + len && i < sizeof(model); i++)
                model[i] = st;
            pos += (uint32_t)len;
            rc = nbd_bs_add(&b, len, st);
            cr_assert(rc == 0 || rc == 1, "iter %d: rc %d", iter, rc);
        } while (rc == 0);
        int n = nbd_bs_finish(&b, NBD_REPLY_FLAG_DONE);
        cr_assert_gt(n, 24);
        cr_assert_leq((size_t)n, cap);
        uint32_t ndesc = (uint32_t)(n - 24) / 8;
        cr_assert_eq((uint32_t)(n - 24) % 8, 0);
        if (req_one)
            cr_assert_eq(ndesc, 1);
        if (max_desc != 0)
            cr_assert_leq(ndesc, max_desc);
        cr_assert_eq(buf[16] << 24 | buf[17] << 16 | buf[18] << 8 | buf[19], n - 20);
        uint64_t off = 0;
        uint32_t prev = UINT32_MAX;
        for (uint32_t d = 0; d < ndesc; d++) {
            const uint8_t *p = buf + 24 + 8 * d;
            uint32_t dl = (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
            uint32_t ds = (uint32_t)p[4] << 24 | p[5] << 16 | p[6] << 8 | p[7];
            cr_assert_gt(dl, 0);
            cr_assert_neq(ds, prev, "iter %d: neighbours share a status", iter);
            for (uint64_t i = off; i < off + dl; i++)
                cr_assert_eq(model[i], ds, "iter %d byte %llu", iter, (unsigned long long)i);
            off += dl;
            prev = ds;
        }
        cr_assert_leq(off, req_len);
        /* Stopped without hitting a cap: the request must be covered. */
        bool capped = req_one || (max_desc != 0 && ndesc >= max_desc) || ndesc >= (cap - 24) / 8;
        if (!capped)
            cr_assert_eq(off, req_len, "iter %d: uncapped chunk covers the request", iter);
        if (req_one)
            cr_assert_leq(off, req_len);
    }
}

/* ---- names -------------------------------------------------------------------------------- */

Test(nbd_proto, names_for_logs)
{
    cr_assert_str_eq(nbd_opt_name(NBD_OPT_GO), "GO");
    cr_assert_str_eq(nbd_opt_name(NBD_OPT_SET_META_CONTEXT), "SET_META_CONTEXT");
    cr_assert_str_eq(nbd_opt_name(77), "unknown-option");
    cr_assert_str_eq(nbd_rep_name(NBD_REP_ERR_TOO_BIG), "ERR_TOO_BIG");
    cr_assert_str_eq(nbd_rep_name(NBD_REP_FLAG_ERROR | 77), "unknown-error-reply");
    cr_assert_str_eq(nbd_cmd_name(NBD_CMD_BLOCK_STATUS), "BLOCK_STATUS");
    cr_assert_str_eq(nbd_cmd_name(99), "unknown-command");
    cr_assert_str_eq(nbd_wire_err_name(NBD_ESHUTDOWN), "ESHUTDOWN");
    cr_assert_str_eq(nbd_wire_err_name(3), "unknown-error");
}
