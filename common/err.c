/* SPDX-License-Identifier: MIT */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

bool err_trace_enabled = false;

/* LCPFS_ERR_TRACE=1 in the environment turns tracing on for any program linking this. */
__attribute__((constructor)) static void
err_trace_from_env(void)
{
    const char *env = getenv("LCPFS_ERR_TRACE");
    if (env != NULL && *env != 0 && strcmp(env, "0") != 0)
        err_trace_enabled = true;
}

const char *
err_str(int err)
{
    if (err < 0)
        err = -err;
    switch (err) {
    case ECKSUM:
        return "checksum mismatch";
    case ECORRUPT:
        return "on-disk structure corrupt";
    case EVERSION:
        return "unsupported on-disk format version";
    case EDEGRADED:
        return "pool is missing a required device";
    default:
        return strerror(err);
    }
}

int
err_trace(int err, const char *file, int line, const char *func)
{
    log_info("error %d (%s) raised at %s:%d in %s()", err, err_str(err), file, line, func);
    return err;
}

int
err_msg_set(struct err_msg *em, int code, const char *fmt, ...)
{
    if (em != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(em->text, sizeof(em->text), fmt, ap);
        va_end(ap);
        em->code = code;
    }
    return code;
}
