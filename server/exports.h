/* SPDX-License-Identifier: MIT */
/*
 * exports: which NBD export names exist and what they serve, and the registry of open NBD
 * sessions per volume (so an admin destroy or export can refuse, or force them off).
 *
 * An export name resolves, in order, to:
 *   1. a configured [nbd-export NAME] (its volume, readonly flag, description, TLS policy);
 *   2. "NAME@SNAP" for a configured export NAME: that volume's snapshot SNAP, read-only;
 *   3. "" : [nbd] default-export, when set;
 *   4. a full volume name "pool/vol" (or "pool/vol@snap") whose user property `nbd:export` is
 *      `on` (so `lcpfs create -V 4G -o nbd:export=on tank/vm1` is immediately served);
 * anything else is unknown. Snapshots are always read-only.
 */
#ifndef LCPFS_SERVER_EXPORTS_H
#define LCPFS_SERVER_EXPORTS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "config/config.h"
#include "core/dsl_record.h"

struct srv;

#define EXPORT_USER_PROP "nbd:export"

struct export_info {
    char name[DSL_NAME_MAX + 1];   /* as the client asked */
    char volume[DSL_NAME_MAX + 1]; /* dataset served: pool/vol or pool/vol@snap */
    char description[256];
    bool readonly;
    enum config_tls tls;
};

/* Resolves an export name (worker thread: may read dataset properties). -ENOENT. */
int exports_resolve(struct srv *s, const char *name, struct export_info *out, struct err_msg *em);
/* Calls fn for every export a LIST shows (configured and nbd:export=on volumes). */
typedef int (*exports_fn)(void *arg, const struct export_info *e);
int exports_list(struct srv *s, exports_fn fn, void *arg);

/* ---- session registry (any thread) ------------------------------------------------------- */

/* Called by sessions when they start/stop serving a volume. kick is run on the session's loop to
 * disconnect the session when an admin operation forces it off. */
struct export_user {
    char volume[DSL_NAME_MAX + 1];
    void (*kick)(struct export_user *u); /* on the user's loop */
    struct event_base *base;             /* that loop */
    struct export_user *prev, *next;
    bool kicked;
};
void exports_register(struct srv *s, struct export_user *u);
void exports_unregister(struct srv *s, struct export_user *u);
/* Number of sessions serving `name` or a dataset below it (name/..., name@...). */
unsigned exports_users(struct srv *s, const char *name);
/* Kicks those sessions (from any thread) and waits up to timeout_ms for them to go. 0 or
 * -EBUSY if some are still there. */
int exports_kick(struct srv *s, const char *name, unsigned timeout_ms);

#endif
