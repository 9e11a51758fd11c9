/* SPDX-License-Identifier: MIT */
/*
 * log: process-wide logging to stderr (journald-friendly: one line per message, no colours).
 *
 * Libraries report, callers log: core/ and proto/ return codes and log only the unusual that no
 * caller could see (a self-healed checksum error, an uberblock skipped at import). Messages follow
 * git style: lowercase, no trailing period, action first, subject in single quotes, then cause.
 * Thread-safe: each message is one write(2).
 */
#ifndef LCPFS_COMMON_LOG_H
#define LCPFS_COMMON_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Messages above this level are dropped. Default LOG_LEVEL_INFO; LCPFS_LOG=debug|info|warn|err. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Optional prefix put before each line (e.g. the program name). Borrowed; must outlive logging. */
void log_set_prefix(const char *prefix);
/* Sends messages to syslog(3) (ident = the prefix) instead of stderr. */
void log_use_syslog(bool on);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)  log_msg(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                               \
    do {                                                             \
        if (__builtin_expect(log_get_level() >= LOG_LEVEL_DEBUG, 0)) \
            log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);                   \
    } while (0)

#endif
