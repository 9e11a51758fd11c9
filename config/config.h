/* SPDX-License-Identifier: MIT */
/*
 * config: the lcpfsd configuration — an INI file read with inih, `-o section.key=value`
 * command-line overrides, the embedded default, validation with messages a person can act on,
 * and a dump in INI form (`lcpfsd --print-config`). Pure: reading the config file is the only
 * I/O (plus getcwd to anchor a relative data-dir); nothing is created, opened or checked on disk.
 *
 * ---- The file -------------------------------------------------------------------------------
 *
 *   [server]             data-dir, admin-socket, log, log-level
 *   [nbd]                listen (list), unix, tls, tls-cert, tls-key, tls-ca, tls-verify-peer,
 *                        tls-psk-file, default-export
 *   [pool NAME]          vdevs (list), create-size, default-volume, default-volume-size
 *   [nbd-export NAME]    volume, readonly, description, tls
 *
 * config/lcpfsd.conf documents every key; it is the embedded default written out, and loading it
 * gives a config equal to config_load(NULL) (a unit test holds this). Dialect (inih): `key = value`
 * (`key: value` too); `;` or `#` starts a comment at the start of a line, and ` ;` (whitespace
 * then `;`) starts one inside a line; values are literal (no quotes); an indented line continues
 * the list key above it; a line holds at most CONFIG_LINE_MAX characters.
 *
 * Value types: booleans are strictly on/off, yes/no, true/false, 1/0 (any case); sizes are an
 * integer with an optional suffix K, M, G or T (powers of 1024, any case); addresses are
 * `IPv4[:port]`, `[IPv6][:port]` or `hostname[:port]`, port 1..65535, default 10809. Lists
 * (listen, vdevs) take words separated by spaces or commas.
 *
 * ---- Layers: embedded default, then the file, then -o overrides ------------------------------
 *
 * 1. Every key of [server] and [nbd] has a default (the embedded default); the file and the
 *    overrides change only the keys they set.
 * 2. The embedded default also holds pool `tank` (vdev tank.vdev, create-size 16G, default volume
 *    vol0 of 4G) and export `vol0`. A file with no [pool] and no [nbd-export] section keeps them;
 *    a file with at least one such section drops both (and the default-export they came with):
 *    the file then says which pools and exports exist. Overrides never drop a section; they edit
 *    one or create it (`-o pool.big.vdevs=/dev/sdb`).
 * 3. Keys of [pool] and [nbd-export] sections not set anywhere take the per-key values in
 *    struct config_pool / config_export below (documented in lcpfsd.conf too).
 * 4. Scalar keys: the later layer wins; inside the file a second assignment is an error; among
 *    overrides the last one wins. List keys: `key = v` replaces the list inherited from the
 *    previous layer the first time that layer sets it and appends after that; `key += v` always
 *    appends; `key =` (empty) empties the list. So `-o nbd.listen+=[::1]` adds a listener to the
 *    file's, and `-o nbd.listen=A -o nbd.listen=B` replaces them with A and B.
 * 5. After all layers: data-dir, when relative, is made absolute against the current directory;
 *    every other relative path (admin-socket, unix, tls-*, vdevs) is joined to data-dir. Paths
 *    are normalised lexically ("//" and "/./" collapse, no trailing "/"; ".." is kept).
 *
 * Overrides are `section.key=value` or `section.key+=value`, where section is `server`, `nbd`,
 * `pool.NAME` or `nbd-export.NAME` (NAME may contain dots: the key is after the last one).
 *
 * vdevs: for now each word is a device path and the pool stripes over them. Words that are group
 * keywords (mirror, raidz, raidz1-3, spare, log, cache; see config_vdev_is_keyword) are kept
 * verbatim in order and not resolved, so `vdevs = mirror a b mirror c d` survives a load and a
 * dump; giving them meaning (or refusing them) is the pool layer's business.
 *
 * ---- Errors -------------------------------------------------------------------------------
 *
 * Every problem is reported, not just the first (up to CONFIG_MAX_ERRORS, then a count), each as
 * one line: `FILE:LINE: message` for the file, `-o section.key=value: message` for an override,
 * `built-in default section.key: message` for a default that became invalid (a socket path made
 * too long by a long data-dir). Validation covers syntax, unknown sections and keys (with the
 * closest known key suggested), duplicates, every value, and the cross-key rules: an export's
 * volume is `POOL/NAME[@SNAP]` in a configured pool, a snapshot export is read-only, TLS modes
 * have their credentials, socket paths fit a sockaddr_un, no vdev path is used twice, and so on.
 *
 * Thread-safety: none needed; a config is built once and then only read (share it freely).
 */
#ifndef LCPFS_CONFIG_CONFIG_H
#define LCPFS_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/log.h"

#define CONFIG_DEFAULT_PORT     10809
#define CONFIG_MAX_ERRORS       32
#define CONFIG_LINE_MAX         198 /* characters in one config line (inih's 200-byte buffer) */
#define CONFIG_VALUE_MAX        170 /* bytes in a path or other single value, after resolving */
#define CONFIG_SOCKET_PATH_MAX  107 /* sizeof(sockaddr_un.sun_path) - 1 */
#define CONFIG_VDEV_MIN_SIZE    (64ull << 20) /* = VDEV_MIN_SIZE (core/ondisk.h) */
#define CONFIG_POOL_MAX_VDEVS   63            /* = POOL_MAX_TOP_VDEVS - 1 (core/pool_impl.h) */
#define CONFIG_VOLBLOCKSIZE     (16u << 10)   /* default volblocksize; volume sizes are multiples */
#define CONFIG_POOL_NAME_MAX    63            /* = POOL_NAME_MAX (core/ondisk.h) */
#define CONFIG_DATASET_NAME_MAX 255           /* = DSL_NAME_MAX (core/dsl_record.h) */

enum config_tls {
    CONFIG_TLS_OFF,    /* plaintext only; STARTTLS refused */
    CONFIG_TLS_ON,     /* STARTTLS offered, plaintext allowed */
    CONFIG_TLS_REQUIRE /* everything but STARTTLS/ABORT refused until TLS (FORCEDTLS) */
};

enum config_log { CONFIG_LOG_STDERR, CONFIG_LOG_SYSLOG };

/* [pool] direct-io: which vdev I/O bypasses the page cache (enum vdev_direct in core). */
enum config_direct_io {
    CONFIG_DIRECT_IO_WRITES, /* the default: writes direct, reads buffered (read-ahead) */
    CONFIG_DIRECT_IO_OFF,    /* everything through the page cache */
    CONFIG_DIRECT_IO_ON      /* reads and writes direct: the pool's cache is the only one */
};

/* A TCP listen address. */
struct config_addr {
    char *host;    /* IPv4 dotted quad, IPv6 without brackets, or a hostname; owned */
    uint16_t port; /* 1..65535 */
    int family;    /* AF_INET, AF_INET6, or AF_UNSPEC for a hostname (resolve at bind time) */
};

struct config_pool {
    char *name;                      /* owned; [A-Za-z0-9_.:-], 1..CONFIG_POOL_NAME_MAX bytes */
    char **vdevs;                    /* owned words in order: resolved paths and group keywords */
    size_t nvdevs;                   /* >= 1 after a successful load */
    uint64_t create_size;            /* bytes; missing vdev files are created sparse at this size
                                        (0 = never create: a missing vdev is an error). Unset: 0 */
    char *default_volume;            /* volume (name inside the pool, e.g. "vol0") created when
                                        missing; NULL = none. Unset: NULL */
    uint64_t default_volume_size;    /* bytes, a multiple of CONFIG_VOLBLOCKSIZE; set iff
                                        default_volume is. Unset: 0 */
    enum config_direct_io direct_io; /* unset: writes */
};

struct config_export {
    char *name;          /* owned; the NBD export name, non-blank printable, no spaces */
    char *volume;        /* owned; full name POOL/VOL or POOL/VOL@SNAP; never NULL after load */
    bool readonly;       /* unset: no (yes, and forced, for a snapshot) */
    char *description;   /* NBD_INFO_DESCRIPTION; NULL = none. Unset: NULL */
    bool tls_set;        /* false: follow [nbd] tls (see config_export_tls) */
    enum config_tls tls; /* when tls_set: require = only served over TLS */
};

struct lcpfs_config {
    struct {
        char *data_dir;      /* absolute, normalised; never NULL after load */
        char *admin_socket;  /* absolute; NULL = no admin socket */
        enum config_log log; /* where log lines go */
        enum log_level log_level;
    } server;
    struct {
        struct config_addr *listen; /* TCP listeners, in order; may be empty */
        size_t nlisten;
        char *unix_socket;    /* absolute; NULL = no unix socket */
        enum config_tls tls;  /* server-wide STARTTLS policy */
        char *tls_cert;       /* X.509 server certificate (PEM); NULL = none */
        char *tls_key;        /* its private key; set iff tls_cert is */
        char *tls_ca;         /* CA bundle verifying client certificates; NULL = none */
        bool tls_verify_peer; /* require a client certificate signed by tls_ca */
        char *tls_psk_file;   /* `user:hexkey` lines (psktool format); NULL = none */
        char *default_export; /* export served to clients asking for ""; NULL = none */
    } nbd;
    struct config_pool *pools; /* in declaration order; names distinct */
    size_t npools;
    struct config_export *exports; /* in declaration order; names distinct */
    size_t nexports;
};

/* Messages from one load: each owned, one line, no trailing newline. */
struct config_errors {
    char *msg[CONFIG_MAX_ERRORS];
    size_t n;       /* messages kept */
    size_t dropped; /* further errors found but not kept */
};

/*
 * Builds the configuration: the embedded default, then the file at path (NULL = none), then
 * overrides[0..n) in order (`section.key=value` / `section.key+=value`), then resolution and
 * validation (see the top of this file). On success returns 0 and fills *cfg (release with
 * config_free). On failure *cfg is left zeroed and the return is -EINVAL (the config is wrong:
 * every problem is in errs), -ENOENT/-EACCES/... (the file cannot be read; one message says so)
 * or -ENOMEM. errs may be NULL; when not, it is reset first and must be released with
 * config_errors_free whatever the outcome.
 */
int config_load(struct lcpfs_config *cfg, const char *path, const char *const *overrides, size_t n,
                struct config_errors *errs);

/*
 * The embedded default alone: config_load(cfg, NULL, NULL, 0, NULL). 0, -ENOMEM, or -EINVAL when
 * the current directory is so deep that a default socket path no longer fits a sockaddr_un.
 */
int config_defaults(struct lcpfs_config *cfg);

/* Frees everything cfg owns and zeroes it. NULL ok; a zeroed config ok. */
void config_free(struct lcpfs_config *cfg);

/*
 * Prints cfg as an INI file: every key of every section, paths resolved, sizes with the largest
 * exact suffix, long lists wrapped on continuation lines. Loading the output gives a config equal
 * to cfg (config_equal). Returns 0, -ENOMEM or -EIO (a write failed).
 */
int config_dump(const struct lcpfs_config *cfg, FILE *out);

/* True when a and b hold the same settings (names, values and order of lists and sections). */
bool config_equal(const struct lcpfs_config *a, const struct lcpfs_config *b);

void config_errors_free(struct config_errors *errs);
/* Writes each message on its own line, then "N more errors not shown" if some were dropped. */
void config_errors_print(const struct config_errors *errs, FILE *out);

/* ---- lookups for the daemon ---------------------------------------------------------------- */

/* The pool or export of that name, or NULL. Borrowed from cfg. */
const struct config_pool *config_find_pool(const struct lcpfs_config *cfg, const char *name);
const struct config_export *config_find_export(const struct lcpfs_config *cfg, const char *name);
/* The export's effective TLS policy: its own tls when set, else [nbd] tls. */
enum config_tls config_export_tls(const struct lcpfs_config *cfg, const struct config_export *e);
/* True for a vdev group keyword (mirror, raidz, raidz1, raidz2, raidz3, spare, log, cache). */
bool config_vdev_is_keyword(const char *word);

/* ---- value parsers (the same rules the file uses; also handy for CLI flags) ---------------- */

/* on/off, yes/no, true/false, 1/0, any case. 0 or -EINVAL. */
int config_parse_bool(const char *s, bool *out);
/* Decimal integer with an optional K/M/G/T suffix (powers of 1024, any case). 0, -EINVAL, or
 * -ERANGE (does not fit 64 bits). */
int config_parse_size(const char *s, uint64_t *out);
/*
 * `host[:port]`: IPv4, [IPv6] (brackets required; a %zone suffix is allowed) or an RFC 1123
 * hostname; port 1..65535, default default_port. Returns 0 and fills *out (free out->host), or
 * -EINVAL with the reason in why (if why != NULL), or -ENOMEM.
 */
int config_parse_addr(const char *s, uint16_t default_port, struct config_addr *out, char *why,
                      size_t whylen);
/* Formats a size with the largest suffix that divides it exactly ("16G", "1536M", "4097"). */
void config_format_size(uint64_t bytes, char *buf, size_t len);
/* Formats an address as config_parse_addr reads it back ("[::1]:10809"). */
void config_format_addr(const struct config_addr *a, char *buf, size_t len);

const char *config_tls_name(enum config_tls t);
const char *config_log_name(enum config_log l);
const char *config_direct_io_name(enum config_direct_io d);
/* writes, off or on, any case (the [pool] direct-io values). 0 or -EINVAL. */
int config_parse_direct_io(const char *s, enum config_direct_io *out);
const char *config_log_level_name(enum log_level l);

#endif
