/* SPDX-License-Identifier: MIT */
/*
 * config_impl: what the config module's files share — the key table, the parse state with the
 * origin of every section and key (for `file:line:` messages and duplicate detection), and the
 * name and path helpers. Not for use outside config/.
 */
#ifndef LCPFS_CONFIG_CONFIG_IMPL_H
#define LCPFS_CONFIG_CONFIG_IMPL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

enum sec_type { SEC_NONE, SEC_SERVER, SEC_NBD, SEC_POOL, SEC_EXPORT };

/* The layers of config.h "Layers", in the order they apply. */
enum layer { LAYER_DEFAULT, LAYER_FILE, LAYER_OVERRIDE };

/* Where a section or key was set: a line of the embedded default or the file, or an override. */
struct origin {
    enum layer layer;
    int line;   /* LAYER_DEFAULT, LAYER_FILE */
    size_t ovr; /* LAYER_OVERRIDE: index into the overrides */
};

enum val_type {
    VT_DATADIR,  /* path, must not be empty */
    VT_PATH,     /* path; empty = NULL */
    VT_TEXT,     /* free text; empty = NULL */
    VT_EXPNAME,  /* an export name; empty = NULL */
    VT_BOOL,     /* strict boolean */
    VT_SIZE,     /* size with suffix */
    VT_TLS,      /* off|on|require */
    VT_TLS_OPT,  /* off|on|require, empty = follow [nbd] (sets config_export.tls_set) */
    VT_LOG,      /* stderr|syslog */
    VT_DIRECTIO, /* writes|off|on */
    VT_LOGLEVEL, /* err|warn|info|debug */
    VT_ADDRS,    /* list of host:port */
    VT_WORDS,    /* list of words */
    VT_RELVOL,   /* a dataset name inside a pool (a/b); empty = NULL */
    VT_VOLUME    /* POOL/NAME[@SNAP], must not be empty */
};

struct key_def {
    enum sec_type sec;
    const char *name;
    enum val_type type;
    size_t off;   /* of the field in lcpfs_config, config_pool or config_export */
    size_t off_n; /* lists: of the count */
};

/* The known keys, grouped by section in documentation order; ends with a NULL name. */
extern const struct key_def config_keys[];

/* One section or key the layers have set. */
struct seen {
    enum sec_type sec;
    char *name;      /* pool or export name, NULL for [server]/[nbd]; owned */
    const char *key; /* from config_keys; NULL = the section itself */
    struct origin at;
    bool list_set; /* a list key was assigned (`=`) in layer at.layer */
    bool bad;      /* the last value given was invalid (reported; suppresses "missing" errors) */
    struct origin *elem; /* lists: where each element came from; owned */
    size_t nelem;
};

struct parse {
    struct lcpfs_config *cfg;
    struct config_errors *errs; /* may be NULL */
    size_t nerr;                /* errors found (kept or not) */
    bool nomem;
    const char *path;       /* the file, for messages */
    const char *const *ovr; /* the overrides, for messages */
    struct origin at;       /* the line or override being read */
    /* The file's current section (LAYER_DEFAULT and LAYER_FILE). */
    enum sec_type sec;
    char *sec_name;                 /* owned; NULL for [server]/[nbd] */
    bool sec_ignore;                /* a bad section header: its keys are skipped silently */
    const struct key_def *last_key; /* the key a continuation line continues; NULL = skip */
    bool dropped_defaults;          /* the file named a pool or export (Layers rule 2) */
    struct seen *seen;
    size_t nseen, capseen;
};

/* Records "PREFIX: message" (prefix from at; what names the key for built-in defaults). */
void config_err(struct parse *ps, const struct origin *at, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The last record of that section (key NULL) or key, or NULL. */
struct seen *config_seen_find(struct parse *ps, enum sec_type sec, const char *name,
                              const char *key);

enum config_op { OP_SET, OP_APPEND };

/* Stores one error message (takes it; NULL = out of memory) and counts it. */
void config_errs_push(struct parse *ps, char *msg);
/* The record of (sec, name, key), created if missing; NULL only when memory runs out. */
struct seen *config_seen_get(struct parse *ps, enum sec_type sec, const char *name,
                             const char *key);
/* The struct a section fills (the config itself for [server]/[nbd]), created if missing. */
void *config_section_base(struct parse *ps, enum sec_type sec, const char *name);
enum sec_type config_sec_lookup(const char *s, size_t len);
const struct key_def *config_key_lookup(enum sec_type sec, const char *name);
/* Checks a section type and name (dotted: override spelling); false = reported. */
bool config_section_check(struct parse *ps, const char *type, size_t typelen, const char *name,
                          bool dotted);
/* Reports an unknown key, suggesting the closest one or the section it belongs in. */
void config_unknown_key(struct parse *ps, enum sec_type sec, const char *secname, const char *key);
/* A "[text]" header of the file or the embedded default. 0 or -ENOMEM. */
int config_begin_section(struct parse *ps, const char *text, size_t len);
/* A `name = value` line (name as inih split it; a trailing '+' means +=). 0 or -ENOMEM. */
int config_file_key(struct parse *ps, const char *rawname, const char *value);
/* An indented line continuing the key above it. 0 or -ENOMEM. */
int config_file_continuation(struct parse *ps, const char *value);
/* Applies a value to (sec, name).key under the layer rules. 0 or -ENOMEM (errors go to ps). */
int config_apply_key(struct parse *ps, enum sec_type sec, const char *secname,
                     const struct key_def *k, const char *value, enum config_op op);

/* Section names as written in a header. */
const char *config_sec_name(enum sec_type sec);

/* ---- names (config_values.c) ---------------------------------------------------------------- */

/* A dataset name component: 1..255 of [A-Za-z0-9_.:-], not "." or "..". */
bool config_component_ok(const char *s, size_t len);
/* Pool name: one component of at most CONFIG_POOL_NAME_MAX bytes. */
bool config_pool_name_ok(const char *s);
/* Export name: 1..CONFIG_VALUE_MAX printable non-space bytes other than '[' ']' (UTF-8 ok). */
bool config_export_name_ok(const char *s);
/* Dataset path "a/b/c" (components). */
bool config_dataset_path_ok(const char *s);
/* Full volume "POOL/a[/b][@snap]"; on failure why says what is wrong. */
bool config_volume_name_ok(const char *s, char *why, size_t whylen);
/* True when s starts with ';' or contains whitespace then ';': written as `key = s` in a file,
 * that would start a comment. */
bool config_has_comment_start(const char *s);

/* ---- validation (config_validate.c) ------------------------------------------------------- */

/* Resolves paths and checks the cross-key rules. Errors go to ps; returns -ENOMEM or 0. */
int config_validate(struct parse *ps);

/* Levenshtein distance, ASCII case-insensitive (for "did you mean"). */
size_t config_edit_distance(const char *a, const char *b);

#endif
