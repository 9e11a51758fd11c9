/* SPDX-License-Identifier: MIT */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <syslog.h>

static enum log_level current_level = LOG_LEVEL_INFO;
static bool level_from_env_done;
static const char *line_prefix;

static void
level_from_env(void)
{
    if (level_from_env_done)
        return;
    level_from_env_done = true;
    const char *env = getenv("LCPFS_LOG");
    if (env == NULL)
        return;
    if (strcmp(env, "debug") == 0)
        current_level = LOG_LEVEL_DEBUG;
    else if (strcmp(env, "info") == 0)
        current_level = LOG_LEVEL_INFO;
    else if (strcmp(env, "warn") == 0)
        current_level = LOG_LEVEL_WARN;
    else if (strcmp(env, "err") == 0)
        current_level = LOG_LEVEL_ERR;
}

void
log_set_level(enum log_level level)
{
    level_from_env_done = true;
    current_level = level;
}

enum log_level
log_get_level(void)
{
    level_from_env();
    return current_level;
}

void
log_set_prefix(const char *prefix)
{
    line_prefix = prefix;
}

static bool use_syslog;

void
log_use_syslog(bool on)
{
    if (on && !use_syslog)
        openlog(line_prefix ? line_prefix : "lcpfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    else if (!on && use_syslog)
        closelog();
    use_syslog = on;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *const names[] = { "error", "warning", "info", "debug" };
    if (level > log_get_level())
        return;
    if (use_syslog) {
        static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
        va_list ap;
        va_start(ap, fmt);
        vsyslog(prio[level], fmt, ap);
        va_end(ap);
        return;
    }
    char line[1024];
    int n = snprintf(line, sizeof(line), "%s%s%s: ", line_prefix ? line_prefix : "",
                     line_prefix ? ": " : "", names[level]);
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

/* Assertion failure reporting lives here so common/ has a single small object for it. */
#include "common/assert.h"

void
assert_fail(const char *expr, const char *file, int line, const char *func)
{
    log_msg(LOG_LEVEL_ERR, "assertion failed: %s at %s:%d in %s()", expr, file, line, func);
    abort();
}

void
assert3_fail(const char *expr, unsigned long long a, unsigned long long b, const char *file,
             int line, const char *func)
{
    log_msg(LOG_LEVEL_ERR, "assertion failed: %s (0x%llx vs 0x%llx) at %s:%d in %s()", expr, a, b,
            file, line, func);
    abort();
}
