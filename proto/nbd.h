/* SPDX-License-Identifier: MIT */
/*
 * nbd: a pure codec for the NBD protocol, server side first (NetworkBlockDevice/nbd doc/proto.md):
 * the fixed newstyle handshake, option haggling (EXPORT_NAME, ABORT, LIST, STARTTLS, INFO, GO,
 * STRUCTURED_REPLY, LIST/SET_META_CONTEXT), the transmission request, simple replies, structured
 * reply chunks (NONE, OFFSET_DATA, OFFSET_HOLE, BLOCK_STATUS, ERROR, ERROR_OFFSET) and metadata
 * context names. Extended headers (OPT_EXTENDED_HEADERS) are known but not supported.
 *
 * No sockets, no I/O, no allocation, no global state: every function works on caller-owned byte
 * buffers, so the codec is thread-safe and every decoder is a one-call fuzz target.
 *
 * Conventions (they hold for every function below unless its comment says otherwise)
 *  - Wire integers are big-endian.
 *  - Decoders take (buf, len) and never read outside it, nor allocate.
 *      * Fixed-size headers: -EAGAIN when len is shorter than the header (read more bytes);
 *        bytes after the header are ignored.
 *      * Option payload decoders take exactly the option payload (len == the header's length)
 *        and reject any disagreement between inner lengths and len, including trailing bytes.
 *  - Decoded strings are borrowed: a struct nbd_str points into the caller's buffer, stays valid
 *    as long as that buffer does, and is NOT NUL-terminated. Decoders reject strings containing
 *    NUL (proto.md "Conventions": strings MUST NOT contain NUL) and longer than NBD_MAX_STRING.
 *  - Encoders take (buf, cap), write ONE complete wire message and return its length in bytes
 *    (> 0). Errors: -ENOSPC if cap is too small; -EOVERFLOW if a value does not fit its wire
 *    field or a spec limit (a string longer than NBD_MAX_STRING); -EINVAL if an argument breaks
 *    a spec MUST (an error chunk with error 0, a zero-length hole, ...). On error nothing is
 *    written. String arguments are (ptr, len); ptr may be NULL when len is 0.
 *
 * How the server drives it (the state machine itself lives in server/):
 *   1. write nbd_greeting_encode(); read NBD_CLIENT_FLAGS_LEN bytes; nbd_client_flags_decode()
 *      (-EPROTO: hard disconnect, proto.md "Client flags").
 *   2. option loop: read NBD_OPT_HEADER_LEN bytes; nbd_opt_header_decode(max) (see the table);
 *      read hdr.len payload bytes; nbd_opt_decode(); on error reply nbd_opt_rep_for_error(rc)
 *      with nbd_rep_error_encode(). Success replies: nbd_rep_*_encode(). EXPORT_NAME ends with
 *      nbd_export_name_reply_encode() (no error reply exists: a failure is a hard disconnect).
 *   3. transmission: read NBD_REQUEST_LEN bytes; nbd_request_decode(); read
 *      nbd_request_payload_len() bytes (WRITE only) even if the request will be refused, to stay
 *      in sync; err = nbd_request_check(); reply with nbd_simple_reply_encode() or chunks.
 *
 * Option decoder errors and the reply the server should send:
 *   rc              decoder                    meaning                        reply
 *   -EAGAIN         fixed headers              buffer shorter than header     read more bytes
 *   -EPROTO         client flags, opt header   unknown client flag, bad magic hard disconnect
 *   -E2BIG          nbd_opt_header_decode      option length > caller max     read and discard
 *                                                                             hdr.len bytes, then
 *                                                                             NBD_REP_ERR_TOO_BIG
 *                                                                             (or hard disconnect
 *                                                                             if unwilling to)
 *   -EBADMSG        payload decoders           malformed payload              NBD_REP_ERR_INVALID
 *   -ENAMETOOLONG   payload decoders           a string > NBD_MAX_STRING      NBD_REP_ERR_TOO_BIG
 *   -E2BIG          nbd_opt_meta_decode        > NBD_META_MAX_QUERIES queries NBD_REP_ERR_TOO_BIG
 *   -ENOTSUP        nbd_opt_decode             option unknown/unsupported     NBD_REP_ERR_UNSUP
 * For NBD_OPT_EXPORT_NAME every failure means hard disconnect (the option has no error reply).
 * nbd_opt_rep_for_error() implements the right-hand column.
 */
#ifndef LCPFS_PROTO_NBD_H
#define LCPFS_PROTO_NBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- magics and fixed sizes --------------------------------------------------------------- */

#define NBD_MAGIC_NBDMAGIC     0x4e42444d41474943ULL /* "NBDMAGIC", first 8 greeting bytes */
#define NBD_MAGIC_IHAVEOPT     0x49484156454f5054ULL /* "IHAVEOPT", greeting and every option */
#define NBD_MAGIC_OPT_REPLY    0x0003e889045565a9ULL /* option reply header */
#define NBD_MAGIC_REQUEST      0x25609513u           /* transmission request */
#define NBD_MAGIC_SIMPLE_REPLY 0x67446698u           /* simple reply */
#define NBD_MAGIC_STRUCT_REPLY 0x668e33efu           /* structured reply chunk */

#define NBD_GREETING_LEN                18u  /* NBDMAGIC, IHAVEOPT, u16 handshake flags */
#define NBD_CLIENT_FLAGS_LEN            4u   /* u32 client flags */
#define NBD_OPT_HEADER_LEN              16u  /* IHAVEOPT, u32 option, u32 length */
#define NBD_REP_HEADER_LEN              20u  /* magic, u32 option, u32 type, u32 length */
#define NBD_EXPORT_NAME_REPLY_LEN       134u /* u64 size, u16 flags, 124 zero bytes */
#define NBD_EXPORT_NAME_REPLY_SHORT_LEN 10u  /* the same when NO_ZEROES was negotiated */
#define NBD_REQUEST_LEN                 28u /* magic, u16 flags, u16 type, u64 cookie, u64 off, u32 len */
#define NBD_SIMPLE_REPLY_LEN            16u /* magic, u32 error, u64 cookie */
#define NBD_CHUNK_HEADER_LEN            20u /* magic, u16 flags, u16 type, u64 cookie, u32 length */
#define NBD_BS_DESC_LEN                 8u  /* block status descriptor: u32 length, u32 status */

#define NBD_MAX_STRING       4096u      /* proto.md: strings MUST be no longer than 4096 bytes */
#define NBD_META_MAX_QUERIES 128u       /* queries one LIST/SET_META_CONTEXT may carry (TOO_BIG) */
#define NBD_DF_MIN_LEN       65536u     /* proto.md: DF reads up to 64 KiB MUST be supported */
#define NBD_DOS_SAFE_LEN     (1u << 25) /* proto.md: a payload below 32 MiB is never a DoS */

/* ---- handshake flags (u16, server) and client flags (u32) ---------------------------------- */

#define NBD_FLAG_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_NO_ZEROES      (1u << 1)
#define NBD_HFLAGS_SERVER       (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES) /* we send */

#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES      (1u << 1)
#define NBD_CFLAGS_KNOWN          (NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)

/* ---- option codes -------------------------------------------------------------------------- */

#define NBD_OPT_EXPORT_NAME       1u
#define NBD_OPT_ABORT             2u
#define NBD_OPT_LIST              3u
/* 4 was NBD_OPT_PEEK_EXPORT (withdrawn) */
#define NBD_OPT_STARTTLS          5u
#define NBD_OPT_INFO              6u
#define NBD_OPT_GO                7u
#define NBD_OPT_STRUCTURED_REPLY  8u
#define NBD_OPT_LIST_META_CONTEXT 9u
#define NBD_OPT_SET_META_CONTEXT  10u
#define NBD_OPT_EXTENDED_HEADERS  11u /* known, not supported: nbd_opt_decode gives -ENOTSUP */

/* ---- option reply types -------------------------------------------------------------------- */

#define NBD_REP_ACK                 1u
#define NBD_REP_SERVER              2u
#define NBD_REP_INFO                3u
#define NBD_REP_META_CONTEXT        4u
#define NBD_REP_FLAG_ERROR          (1u << 31)
#define NBD_REP_ERR_UNSUP           (NBD_REP_FLAG_ERROR | 1u)
#define NBD_REP_ERR_POLICY          (NBD_REP_FLAG_ERROR | 2u)
#define NBD_REP_ERR_INVALID         (NBD_REP_FLAG_ERROR | 3u)
#define NBD_REP_ERR_PLATFORM        (NBD_REP_FLAG_ERROR | 4u)
#define NBD_REP_ERR_TLS_REQD        (NBD_REP_FLAG_ERROR | 5u)
#define NBD_REP_ERR_UNKNOWN         (NBD_REP_FLAG_ERROR | 6u)
#define NBD_REP_ERR_SHUTDOWN        (NBD_REP_FLAG_ERROR | 7u)
#define NBD_REP_ERR_BLOCK_SIZE_REQD (NBD_REP_FLAG_ERROR | 8u)
#define NBD_REP_ERR_TOO_BIG         (NBD_REP_FLAG_ERROR | 9u)

/* ---- NBD_REP_INFO information types -------------------------------------------------------- */

#define NBD_INFO_EXPORT      0u
#define NBD_INFO_NAME        1u
#define NBD_INFO_DESCRIPTION 2u
#define NBD_INFO_BLOCK_SIZE  3u

/* ---- transmission flags (u16, sent with the export size) ----------------------------------- */

#define NBD_FLAG_HAS_FLAGS         (1u << 0)
#define NBD_FLAG_READ_ONLY         (1u << 1)
#define NBD_FLAG_SEND_FLUSH        (1u << 2)
#define NBD_FLAG_SEND_FUA          (1u << 3)
#define NBD_FLAG_ROTATIONAL        (1u << 4)
#define NBD_FLAG_SEND_TRIM         (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF           (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN    (1u << 8)
#define NBD_FLAG_SEND_RESIZE       (1u << 9) /* experimental; never advertised by us */
#define NBD_FLAG_SEND_CACHE        (1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO    (1u << 11)

/* ---- commands and command flags ------------------------------------------------------------ */

#define NBD_CMD_READ         0u
#define NBD_CMD_WRITE        1u
#define NBD_CMD_DISC         2u
#define NBD_CMD_FLUSH        3u
#define NBD_CMD_TRIM         4u
#define NBD_CMD_CACHE        5u
#define NBD_CMD_WRITE_ZEROES 6u
#define NBD_CMD_BLOCK_STATUS 7u

#define NBD_CMD_FLAG_FUA       (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE   (1u << 1)
#define NBD_CMD_FLAG_DF        (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE   (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO (1u << 4)

/* ---- structured replies -------------------------------------------------------------------- */

#define NBD_REPLY_FLAG_DONE (1u << 0)

#define NBD_REPLY_TYPE_NONE         0u
#define NBD_REPLY_TYPE_OFFSET_DATA  1u
#define NBD_REPLY_TYPE_OFFSET_HOLE  2u
#define NBD_REPLY_TYPE_BLOCK_STATUS 5u
#define NBD_REPLY_TYPE_ERROR        ((1u << 15) | 1u)
#define NBD_REPLY_TYPE_ERROR_OFFSET ((1u << 15) | 2u)

/* Block status flags: base:allocation, and qemu:dirty-bitmap:<name> (qemu docs/interop/nbd). */
#define NBD_STATE_HOLE  (1u << 0)
#define NBD_STATE_ZERO  (1u << 1)
#define NBD_STATE_DIRTY (1u << 0)

/* ---- wire error numbers (the only values allowed in a reply's error field) ------------------ */

#define NBD_EPERM     1u
#define NBD_EIO       5u
#define NBD_ENOMEM    12u
#define NBD_EINVAL    22u
#define NBD_ENOSPC    28u
#define NBD_EOVERFLOW 75u
#define NBD_ENOTSUP   95u
#define NBD_ESHUTDOWN 108u

/* ---- common types -------------------------------------------------------------------------- */

/* A borrowed, non-NUL-terminated string inside a caller buffer. ptr is never NULL after a
 * successful decode (it points at the position even when len is 0). */
struct nbd_str {
    const char *ptr;
    uint32_t len; /* bytes, <= NBD_MAX_STRING */
};

/* ---- handshake ----------------------------------------------------------------------------- */

/* Server greeting: NBDMAGIC, IHAVEOPT, handshake flags NBD_HFLAGS_SERVER. Returns 18. */
int nbd_greeting_encode(uint8_t *buf, size_t cap);

/* Client flags (4 bytes). 0 with *cflags set; -EAGAIN if len < 4; -EPROTO if a bit outside
 * NBD_CFLAGS_KNOWN is set (proto.md: the server MUST drop the connection). A client without
 * NBD_FLAG_C_FIXED_NEWSTYLE is accepted (the server MAY honour fixed newstyle anyway). */
int nbd_client_flags_decode(const uint8_t *buf, size_t len, uint32_t *cflags);

struct nbd_opt_header {
    uint32_t opt; /* NBD_OPT_* (or any value: unknown options get NBD_REP_ERR_UNSUP) */
    uint32_t len; /* payload bytes that follow the header */
};

/* Option header (16 bytes). 0; -EAGAIN if len < 16; -EPROTO if the magic is not IHAVEOPT (hard
 * disconnect); -E2BIG if hdr->len > max_len — *hdr is filled in so the server can skip the
 * payload and reply NBD_REP_ERR_TOO_BIG, or drop the connection (EXPORT_NAME: drop). */
int nbd_opt_header_decode(const uint8_t *buf, size_t len, uint32_t max_len,
                          struct nbd_opt_header *hdr);

/* Client side, for tests and tools: an option header. Returns 16. */
int nbd_opt_header_encode(uint8_t *buf, size_t cap, uint32_t opt, uint32_t len);

/* ---- option payloads ----------------------------------------------------------------------- */

/* NBD_OPT_INFO / NBD_OPT_GO request: u32 name length, name, u16 count, count x u16 info type. */
struct nbd_opt_info {
    struct nbd_str name; /* "" selects the default export */
    uint16_t n_info;     /* information requests sent (duplicates counted) */
    uint32_t info_mask;  /* bit t set when info type t (< 32) was requested; types >= 32 are
                          * ignored, as proto.md requires for unknown requests */
};

/* NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT request: u32 name length, name, u32 query
 * count, count x (u32 length, query). */
struct nbd_opt_meta {
    struct nbd_str name;
    uint32_t n_queries; /* <= NBD_META_MAX_QUERIES; 0 = LIST: everything, SET: select none */
    struct nbd_str queries[NBD_META_MAX_QUERIES];
};

/* A decoded option payload; which member is valid depends on opt. */
struct nbd_opt {
    uint32_t opt;
    union {
        struct nbd_str export_name; /* NBD_OPT_EXPORT_NAME */
        struct nbd_opt_info info;   /* NBD_OPT_INFO, NBD_OPT_GO */
        struct nbd_opt_meta meta;   /* NBD_OPT_LIST_META_CONTEXT, NBD_OPT_SET_META_CONTEXT */
    } u;                            /* nothing for ABORT, LIST, STARTTLS, STRUCTURED_REPLY */
};

/* NBD_OPT_EXPORT_NAME: the whole payload is the name. 0; -ENAMETOOLONG (> 4096); -EBADMSG (NUL). */
int nbd_opt_export_name_decode(const uint8_t *p, size_t len, struct nbd_str *name);

/* NBD_OPT_INFO / NBD_OPT_GO. 0; -EBADMSG if len < 6, the name length exceeds len - 6, the name
 * holds a NUL, or 2 * count != the bytes left after the count (no trailing bytes allowed);
 * -ENAMETOOLONG if the name is longer than 4096. */
int nbd_opt_info_decode(const uint8_t *p, size_t len, struct nbd_opt_info *out);

/* NBD_OPT_LIST/SET_META_CONTEXT. The whole payload is walked first, so a structural error wins
 * over a size limit. 0; -EBADMSG if any length runs past len, the count cannot fit in the bytes
 * left (each query needs >= 4), a string holds a NUL, or bytes trail the last query;
 * -ENAMETOOLONG if the export name or a query is longer than 4096; -E2BIG if the count exceeds
 * NBD_META_MAX_QUERIES (out->n_queries is then 0). */
int nbd_opt_meta_decode(const uint8_t *p, size_t len, struct nbd_opt_meta *out);

/* Options without data. LIST, STARTTLS, STRUCTURED_REPLY: 0 if len == 0, else -EBADMSG
 * (proto.md: the server SHOULD reject data with NBD_REP_ERR_INVALID). ABORT: always 0 — proto.md
 * says the server SHOULD ignore data sent with NBD_OPT_ABORT rather than reject it. Any other
 * opt: -EINVAL (programming error). */
int nbd_opt_empty_decode(uint32_t opt, size_t len);

/* Dispatch on opt to the decoders above and fill out (out->opt = opt). Unknown options, and
 * NBD_OPT_EXTENDED_HEADERS and the withdrawn PEEK_EXPORT (4): -ENOTSUP (reply UNSUP). */
int nbd_opt_decode(uint32_t opt, const uint8_t *p, size_t len, struct nbd_opt *out);

/* The option reply type for a decoder error (the table at the top of this file): -EBADMSG ->
 * NBD_REP_ERR_INVALID, -ENAMETOOLONG and -E2BIG -> NBD_REP_ERR_TOO_BIG, -ENOTSUP ->
 * NBD_REP_ERR_UNSUP, -EPROTO and -EAGAIN -> 0 (no reply: disconnect / read more), anything else
 * -> NBD_REP_ERR_INVALID. */
uint32_t nbd_opt_rep_for_error(int rc);

/* ---- option replies (each call writes header + payload) ------------------------------------ */

/* Header only (20 bytes), for a payload the caller writes itself. Returns 20. */
int nbd_rep_header_encode(uint8_t *buf, size_t cap, uint32_t opt, uint32_t type, uint32_t len);

/* NBD_REP_ACK, no data. Returns 20. */
int nbd_rep_ack_encode(uint8_t *buf, size_t cap, uint32_t opt);

/* NBD_REP_SERVER (answer to LIST): u32 name length, name, description (may be empty). */
int nbd_rep_server_encode(uint8_t *buf, size_t cap, uint32_t opt, const char *name, size_t name_len,
                          const char *desc, size_t desc_len);

/* NBD_REP_INFO + NBD_INFO_EXPORT: u16 type, u64 size, u16 transmission flags (length 12). The
 * flags must include NBD_FLAG_HAS_FLAGS (-EINVAL otherwise). Returns 32. */
int nbd_rep_info_export_encode(uint8_t *buf, size_t cap, uint32_t opt, uint64_t size,
                               uint16_t tflags);

/* NBD_REP_INFO + NBD_INFO_NAME / NBD_INFO_DESCRIPTION: u16 type, string. */
int nbd_rep_info_name_encode(uint8_t *buf, size_t cap, uint32_t opt, const char *name, size_t len);
int nbd_rep_info_description_encode(uint8_t *buf, size_t cap, uint32_t opt, const char *desc,
                                    size_t len);

/* NBD_REP_INFO + NBD_INFO_BLOCK_SIZE: u16 type, u32 minimum, u32 preferred, u32 maximum (length
 * 14). -EINVAL unless (proto.md "Block size constraints") min is a power of two <= 64 KiB,
 * preferred is a power of two >= max(min, 512), and max is a multiple of min or 0xffffffff.
 * Returns 34. */
int nbd_rep_info_block_size_encode(uint8_t *buf, size_t cap, uint32_t opt, uint32_t min_block,
                                   uint32_t pref_block, uint32_t max_block);

/* NBD_REP_META_CONTEXT: u32 context id (LIST: SHOULD be 0), name. */
int nbd_rep_meta_context_encode(uint8_t *buf, size_t cap, uint32_t opt, uint32_t id,
                                const char *name, size_t len);

/* An error reply (type must have NBD_REP_FLAG_ERROR set, else -EINVAL) with an optional
 * human-readable message (msg_len may be 0). */
int nbd_rep_error_encode(uint8_t *buf, size_t cap, uint32_t opt, uint32_t type, const char *msg,
                         size_t msg_len);

/* The reply that ends NBD_OPT_EXPORT_NAME: u64 size, u16 transmission flags, then 124 zero
 * bytes unless the client set NBD_FLAG_C_NO_ZEROES. Returns 134 or 10. */
int nbd_export_name_reply_encode(uint8_t *buf, size_t cap, uint64_t size, uint16_t tflags,
                                 bool no_zeroes);

/* ---- metadata context names ---------------------------------------------------------------- */

#define NBD_META_BASE_ALLOCATION_NAME "base:allocation"
#define NBD_META_QEMU_DIRTY_PREFIX    "qemu:dirty-bitmap:"
#define NBD_META_QEMU_DEPTH_NAME      "qemu:allocation-depth"

/*
 * What a query (or context name) means. proto.md "Metadata querying": a name is
 * "namespace:leaf"; the namespace is non-empty printable non-whitespace without ':'.
 * Server use, LIST_META_CONTEXT / SET_META_CONTEXT:
 *   INVALID                 MAY reply NBD_REP_ERR_INVALID (or ignore)
 *   OTHER_NS, BASE_OTHER,   MUST ignore (no match)
 *   QEMU_OTHER
 *   BASE_ALL ("base:")      LIST: every base: context;              SET: MUST ignore
 *   BASE_ALLOCATION         base:allocation
 *   QEMU_ALL ("qemu:")      LIST: every qemu: context we offer;     SET: ignore
 *   QEMU_DIRTY_ALL          LIST: every qemu:dirty-bitmap:<name>;   SET: ignore
 *   QEMU_DIRTY_BITMAP       qemu:dirty-bitmap:<leaf> (leaf = bitmap name, non-empty)
 *   QEMU_ALLOCATION_DEPTH   qemu:allocation-depth
 */
enum nbd_meta_kind {
    NBD_META_INVALID = 0,
    NBD_META_OTHER_NS,
    NBD_META_BASE_ALL,
    NBD_META_BASE_ALLOCATION,
    NBD_META_BASE_OTHER,
    NBD_META_QEMU_ALL,
    NBD_META_QEMU_DIRTY_ALL,
    NBD_META_QEMU_DIRTY_BITMAP,
    NBD_META_QEMU_ALLOCATION_DEPTH,
    NBD_META_QEMU_OTHER,
};

/* Classify q[0..len). leaf (may be NULL) receives the text after "namespace:" — for
 * QEMU_DIRTY_BITMAP the bitmap name — or {q, 0} for INVALID. Rejects (INVALID) len > 4096, NUL
 * bytes, a missing colon and a bad namespace. */
enum nbd_meta_kind nbd_meta_classify(const char *q, size_t len, struct nbd_str *leaf);

/* ---- transmission: requests ---------------------------------------------------------------- */

struct nbd_request {
    uint16_t flags;  /* NBD_CMD_FLAG_* */
    uint16_t type;   /* NBD_CMD_* (unvalidated) */
    uint64_t cookie; /* opaque, echoed in every reply ("handle" in older spec text) */
    uint64_t offset; /* bytes */
    uint32_t length; /* bytes */
};

/* 28-byte request header. 0; -EAGAIN if len < 28; -EPROTO if the magic is wrong (hard
 * disconnect: the stream cannot be resynchronised). Flags, type and ranges are NOT checked here:
 * see nbd_request_check. */
int nbd_request_decode(const uint8_t *buf, size_t len, struct nbd_request *req);

/* Client side, for tests and tools. Returns 28. */
int nbd_request_encode(uint8_t *buf, size_t cap, const struct nbd_request *req);

/* Bytes of payload that follow the header on the wire: req->length for NBD_CMD_WRITE, else 0.
 * The server must consume them even when it refuses the request (or hard-disconnect when the
 * length is beyond what it is willing to read; never below NBD_DOS_SAFE_LEN per proto.md). */
uint32_t nbd_request_payload_len(const struct nbd_request *req);

/* What the server negotiated for this connection's export. */
struct nbd_export_facts {
    uint64_t size;      /* export size in bytes, as sent in INFO_EXPORT / EXPORT_NAME reply */
    uint16_t tflags;    /* transmission flags as sent (READ_ONLY, SEND_* are honoured) */
    bool structured;    /* NBD_OPT_STRUCTURED_REPLY was acknowledged */
    uint32_t n_meta;    /* contexts selected by the last SET_META_CONTEXT for this export */
    uint32_t min_block; /* alignment ENFORCED on offset/length: the advertised minimum if the
                         * client asked for NBD_INFO_BLOCK_SIZE in GO, else 1 (proto.md: do not
                         * refuse unaligned I/O from clients that never learned the size);
                         * 0 counts as 1; must be a power of two */
    uint32_t max_block; /* maximum length for READ/WRITE/CACHE; 0 = no limit (0xffffffff) */
};

/*
 * Validate a request against the export. Returns 0, or the NBD_E* wire error to reply with
 * (the server then must not execute the request). Pure: no side effects. Checks, in order:
 *  1. unknown command type                                         -> NBD_EINVAL
 *     NBD_CMD_DISC is always 0 (there is no reply; the server disconnects).
 *  2. a flag not documented for the command (FUA: any command; DF: READ; NO_HOLE, FAST_ZERO:
 *     WRITE_ZEROES; REQ_ONE: BLOCK_STATUS; bits >= 5 never), FUA without SEND_FUA, DF without
 *     SEND_DF or without structured replies, FAST_ZERO without SEND_FAST_ZERO -> NBD_EINVAL
 *  3. WRITE, TRIM, WRITE_ZEROES on a READ_ONLY export              -> NBD_EPERM
 *  4. FLUSH without SEND_FLUSH, TRIM without SEND_TRIM, WRITE_ZEROES without
 *     SEND_WRITE_ZEROES, BLOCK_STATUS without structured replies or with n_meta == 0
 *                                                                  -> NBD_EINVAL
 *     (CACHE is accepted without SEND_CACHE: proto.md notes clients that send it anyway.)
 *  5. FLUSH with a nonzero offset or length; BLOCK_STATUS with length 0 (no valid reply: a
 *     descriptor must be nonzero and, with REQ_ONE, not longer than the request) -> NBD_EINVAL
 *  6. offset or length not a multiple of min_block                 -> NBD_EINVAL
 *  7. length > max_block for READ, WRITE, CACHE -> NBD_EINVAL (proto.md "Block size
 *     constraints": EINVAL, not EOVERFLOW). TRIM, WRITE_ZEROES and BLOCK_STATUS carry no data
 *     and are accepted at any length (clients send whole-disk zero requests).
 *  8. READ with DF whose data cannot fit one OFFSET_DATA chunk (length > 0xffffffff - 8)
 *                                                                  -> NBD_EOVERFLOW
 *     (the only EOVERFLOW proto.md allows)
 *  9. offset + length beyond size (no wrap-around): WRITE, WRITE_ZEROES -> NBD_ENOSPC;
 *     READ, TRIM, CACHE, BLOCK_STATUS -> NBD_EINVAL (proto.md "Error values")
 * Zero-length READ/WRITE/TRIM/CACHE/WRITE_ZEROES pass (proto.md: unspecified, do not
 * disconnect).
 */
uint32_t nbd_request_check(const struct nbd_request *req, const struct nbd_export_facts *ex);

/* Map 0 or a host errno (negative, or positive) to a wire error: 0 -> 0; EPERM, EACCES, EROFS ->
 * EPERM; EIO, ECKSUM, ECORRUPT, EDEGRADED -> EIO; ENOMEM -> ENOMEM; ENOSPC, EDQUOT, EFBIG ->
 * ENOSPC (proto.md); EOVERFLOW -> EOVERFLOW; ENOTSUP/EOPNOTSUPP -> ENOTSUP; ESHUTDOWN ->
 * ESHUTDOWN; EINVAL and everything else -> EINVAL (clients treat unknown values as EINVAL). */
uint32_t nbd_errno_to_wire(int err);

/* ---- transmission: replies ----------------------------------------------------------------- */

/* Simple reply: magic, error, cookie (READ data, if any, follows). Returns 16. */
int nbd_simple_reply_encode(uint8_t *buf, size_t cap, uint32_t error, uint64_t cookie);

/* Generic structured chunk header: magic, flags, type, cookie, payload length. Returns 20. */
int nbd_chunk_header_encode(uint8_t *buf, size_t cap, uint16_t flags, uint16_t type,
                            uint64_t cookie, uint32_t length);

/* NBD_REPLY_TYPE_NONE with NBD_REPLY_FLAG_DONE (the spec requires DONE). Returns 20. */
int nbd_chunk_none_encode(uint8_t *buf, size_t cap, uint64_t cookie);

/* OFFSET_DATA header + u64 offset; the caller sends data_len data bytes right after. data_len 0
 * -> -EINVAL (length MUST be >= 9); data_len > 0xffffffff - 8 -> -EOVERFLOW. Returns 28. */
int nbd_chunk_offset_data_encode(uint8_t *buf, size_t cap, uint16_t flags, uint64_t cookie,
                                 uint64_t offset, uint32_t data_len);

/* OFFSET_HOLE: u64 offset, u32 hole size (nonzero, else -EINVAL). Returns 32. */
int nbd_chunk_offset_hole_encode(uint8_t *buf, size_t cap, uint16_t flags, uint64_t cookie,
                                 uint64_t offset, uint32_t hole_len);

/* ERROR: u32 error (nonzero, else -EINVAL), u16 message length, message. Returns 26 + msg_len. */
int nbd_chunk_error_encode(uint8_t *buf, size_t cap, uint16_t flags, uint64_t cookie,
                           uint32_t error, const char *msg, size_t msg_len);

/* ERROR_OFFSET: as ERROR, then u64 offset. Returns 34 + msg_len. */
int nbd_chunk_error_offset_encode(uint8_t *buf, size_t cap, uint16_t flags, uint64_t cookie,
                                  uint32_t error, const char *msg, size_t msg_len, uint64_t offset);

/*
 * Incremental BLOCK_STATUS chunk builder (one chunk per metadata context):
 *
 *     struct nbd_bs_builder b;
 *     rc = nbd_bs_begin(&b, buf, cap, req.cookie, ctx_id, req.length,
 *                       req.flags & NBD_CMD_FLAG_REQ_ONE, 0);
 *     for (each extent from req.offset on) if ((rc = nbd_bs_add(&b, len, status)) != 0) break;
 *     n = nbd_bs_finish(&b, last_context ? NBD_REPLY_FLAG_DONE : 0);   // bytes to send
 *
 * The builder keeps the chunk valid by construction: descriptors are clamped to the part of the
 * request not yet covered (so their sum never exceeds the request length and REQ_ONE's single
 * descriptor never exceeds it either), a new extent with the same status as the previous one is
 * merged into it, and it stops (nbd_bs_add returns 1) once the request is covered, REQ_ONE has
 * its descriptor, max_desc descriptors exist, or the buffer has no room for another one.
 * Extents are consecutive: the caller reports them in order from the request offset.
 */
struct nbd_bs_builder {
    uint8_t *buf; /* chunk header at buf[0..20), context id, then descriptors */
    size_t cap;
    uint64_t cookie;
    uint32_t req_len; /* request length: descriptors never cover more */
    uint32_t covered; /* sum of descriptor lengths so far (<= req_len) */
    uint32_t n_desc;
    uint32_t max_desc; /* descriptor cap (>= 1) */
    bool req_one;
    bool full; /* nbd_bs_add returned 1: no more extents accepted */
};

/* Start a chunk. max_desc 0 means "as many as fit in cap". -ENOSPC if cap cannot hold the header,
 * the context id and one descriptor (32 bytes); -EINVAL if req_len is 0. */
int nbd_bs_begin(struct nbd_bs_builder *b, uint8_t *buf, size_t cap, uint64_t cookie,
                 uint32_t context_id, uint32_t req_len, bool req_one, uint32_t max_desc);

/* Report the next extent: length bytes (any size; clamped as described) with status flags.
 * 0 = recorded, more welcome; 1 = recorded and the chunk is complete; -EINVAL if length is 0;
 * -ENOSPC if called after the builder reported 1 (nothing recorded). */
int nbd_bs_add(struct nbd_bs_builder *b, uint64_t length, uint32_t status);

/* Write the chunk header (type BLOCK_STATUS, given flags) and return the chunk's total length
 * (20 + 4 + 8 * n_desc). -EINVAL if no descriptor was added (proto.md: at least one). */
int nbd_bs_finish(struct nbd_bs_builder *b, uint16_t flags);

/* ---- names for logs (never NULL; "?" style text for unknown values) ------------------------ */

const char *nbd_opt_name(uint32_t opt);
const char *nbd_rep_name(uint32_t type);
const char *nbd_cmd_name(uint16_t type);
const char *nbd_wire_err_name(uint32_t err);

#endif
