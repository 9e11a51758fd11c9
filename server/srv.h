/* SPDX-License-Identifier: MIT */
/*
 * srv: the daemon's shared state — the event loop, the worker queue, the imported pools and the
 * NBD export table — and the functions other server files use to reach them.
 *
 * Threads: the loop thread owns sockets and sessions; workers run core calls (workq.h). The pool
 * table is shared by both and guarded by srv->pools_lock; a pool in use by a session or an admin
 * job is pinned by its `users` count, so `pool export` can refuse (or wait) instead of pulling
 * it away.
 */
#ifndef LCPFS_SERVER_SRV_H
#define LCPFS_SERVER_SRV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "core/pool.h"

#define SRV_MAX_POOLS 64

struct event_base;
struct workq;
struct lcpfs_config;

struct srv_pool {
    char name[POOL_NAME_MAX + 1];
    struct pool *pool;
    char **vdevs; /* device paths, for status and re-import */
    size_t nvdevs;
    unsigned users; /* pins (srv->pools_lock) */
};

struct srv {
    struct event_base *base;
    struct workq *wq;
    struct lcpfs_config *cfg;
    pthread_mutex_t pools_lock;
    struct srv_pool *pools[SRV_MAX_POOLS];
    size_t npools;
    bool stopping; /* loop thread */
    /* NBD sessions per volume (exports.h), any thread under users_lock */
    pthread_mutex_t users_lock;
    struct export_user *users;
};

/* Finds the pool holding dataset `name` ("pool" or "pool/..."), pins it and returns it; NULL
 * with -ENOENT in em if no such pool is imported. Release with srv_pool_unpin. */
struct srv_pool *srv_pool_pin(struct srv *s, const char *name, struct err_msg *em);
void srv_pool_unpin(struct srv *s, struct srv_pool *sp);
/* Adds an imported/created pool to the table (takes p). -EEXIST, -ENOSPC (table full). */
int srv_pool_add(struct srv *s, struct pool *p, const char *const *vdevs, size_t nvdevs);
/* Removes and exports pool `name`: -EBUSY while pinned (unless the caller holds the only pins it
 * accounts for in `own_pins`), -ENOENT. */
int srv_pool_remove(struct srv *s, const char *name, unsigned own_pins, struct err_msg *em);

#endif
