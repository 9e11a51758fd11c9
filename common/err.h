/* SPDX-License-Identifier: MIT */
/*
 * err: the project's error model.
 *
 * Fallible functions return 0 (or a non-negative count) on success and a negative errno on
 * failure. Standard errno values are used where they fit; the few project-specific conditions
 * live in a reserved range above 4096 so they can never collide with errno. err_str() names both.
 *
 * ERR(e) marks the place an error originates. It evaluates to e; when error tracing is on
 * (err_trace_enabled, set by `-D err` or LCPFS_ERR_TRACE=1) it logs file:line:function once.
 * Propagating code returns rc unchanged.
 */
#ifndef LCPFS_COMMON_ERR_H
#define LCPFS_COMMON_ERR_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

enum lcpfs_err {
    LCPFS_ERR_BASE = 4096,
    ECKSUM = 4097,   /* a block failed checksum verification on every copy */
    ECORRUPT = 4098, /* a structure read from disk is internally inconsistent */
    EVERSION = 4099, /* on-disk format version this build does not understand */
    EDEGRADED = 4100 /* pool lacks a device it needs */
};

/* Human-readable text for a negative or positive errno or project code; never NULL. */
const char *err_str(int err);

extern bool err_trace_enabled;
int err_trace(int err, const char *file, int line, const char *func);

#define ERR(e) (err_trace_enabled ? err_trace((e), __FILE__, __LINE__, __func__) : (e))

/*
 * A caller-owned error message for boundaries a person reads (import, config, admin API).
 * Never built on the data path.
 */
struct err_msg {
    int code;
    char text[256];
};

/* Formats into em (if em != NULL) and returns code (a negative errno). */
int err_msg_set(struct err_msg *em, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
