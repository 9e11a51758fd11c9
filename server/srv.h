/* SPDX-License-Identifier: MIT */
/*
 * srv: the daemon's shared state — the event loop, the worker queue, the imported pools and the
 * NBD export table — and the functions other server files use to reach them.
 *
 * Threads: the loop threads (srv_loop.c) own sockets and sessions, each session one loop;
 * workers run core calls (workq.h). The pool table is shared by both and guarded by
 * srv->pools_lock; a pool in use by a session or an admin job is pinned by its `users` count,
 * so `pool export` can refuse (or wait) instead of pulling it away.
 */
#ifndef LCPFS_SERVER_SRV_H
#define LCPFS_SERVER_SRV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "config/config.h"
#include "core/pool.h"

#define SRV_MAX_POOLS 64

struct event_base;
struct workq;
struct lcpfs_config;

/*
 * Background scans: pool_scrub and pool_resilver block for minutes, so the admin verbs run them
 * on one thread per pool (srv_pool_scan). The thread runs the queued scan, then whatever was
 * queued meanwhile (a resilver asked for while one runs), and ends. Removing the pool stops it:
 * nothing new is queued, the running scan is canceled, and the thread is joined before
 * pool_export.
 */
struct srv_pool {
    char name[POOL_NAME_MAX + 1];
    struct pool *pool;
    char **vdevs; /* device paths, for status and re-import */
    size_t nvdevs;
    unsigned users; /* pins (srv->pools_lock) */
    /* the scan thread, under scan_lock */
    pthread_mutex_t scan_lock;
    pthread_t scan_tid;
    bool scan_started; /* scan_tid is a thread not yet joined */
    bool scan_running; /* the thread has not finished its loop */
    bool scan_stop;    /* the pool is going away: queue nothing more */
    int scan_cur;      /* enum pool_scan_kind the thread runs now, or -1 */
    int scan_next;     /* enum pool_scan_kind queued for the thread, or -1 */
    unsigned scan_gen; /* scans the thread has begun */
};

/*
 * An event loop and the workers whose completions it runs. NBD sessions are spread over the
 * loops (a session lives on one loop for its whole life), so the socket copies of several
 * clients run on several cores. loops[0] is the main loop (base and wq below): signals, the
 * admin socket and the listeners, on the main thread; the others run on threads of their own.
 */
#define SRV_MAX_LOOPS 8
struct srv_loop {
    struct event_base *base;
    struct workq *wq;
    pthread_t thread; /* loops 1..: the thread running it */
    bool thread_running;
};

struct srv {
    struct event_base *base; /* = loops[0].base */
    struct workq *wq;        /* = loops[0].wq */
    struct srv_loop loops[SRV_MAX_LOOPS];
    unsigned nloops;
    unsigned next_loop; /* round robin of new sessions */
    struct lcpfs_config *cfg;
    pthread_mutex_t pools_lock;
    struct srv_pool *pools[SRV_MAX_POOLS];
    size_t npools;
    bool stopping; /* loop thread */
    /* NBD sessions per volume (exports.h), any thread under users_lock */
    pthread_mutex_t users_lock;
    struct export_user *users;
};

/* The pool layer's direct-I/O mode for a [pool] direct-io value. */
enum vdev_direct srv_vdev_direct(enum config_direct_io d);

/* Creates the main loop and nloops - 1 more (1 .. SRV_MAX_LOOPS), each with nthreads workers,
 * and starts the extra loops' threads. 0 or -ENOMEM; on failure nothing is left running. */
int srv_loops_start(struct srv *s, unsigned nloops, unsigned nthreads);
/* The loop for a new session (round robin). */
struct srv_loop *srv_pick_loop(struct srv *s);
/* Ends the extra loops and joins their threads (after the main loop returned). */
void srv_loops_halt(struct srv *s);
/* Halts, then frees every loop and its workers (running the completions still due). */
void srv_loops_free(struct srv *s);

/* Finds the pool holding dataset `name` ("pool" or "pool/..."), pins it and returns it; NULL
 * with -ENOENT in em if no such pool is imported. Release with srv_pool_unpin. */
struct srv_pool *srv_pool_pin(struct srv *s, const char *name, struct err_msg *em);
void srv_pool_unpin(struct srv *s, struct srv_pool *sp);
/* Adds an imported/created pool to the table (takes p). -EEXIST, -ENOSPC (table full). */
int srv_pool_add(struct srv *s, struct pool *p, const char *const *vdevs, size_t nvdevs);
/* Removes and exports pool `name`: -EBUSY while pinned (unless the caller holds the only pins it
 * accounts for in `own_pins`), -ENOENT. */
int srv_pool_remove(struct srv *s, const char *name, unsigned own_pins, struct err_msg *em);

/*
 * Starts a scrub or resilver (enum pool_scan_kind) of a pinned pool in the background and returns
 * at once. A scrub while a scan runs: -EBUSY. A resilver while a scan runs cancels that scan
 * (waiting briefly until it has stopped) and resilvers from the start, as zpool restarts a
 * resilver when another device comes back: a walk that began before a device was usable must
 * not be the one that declares it resilvered. -EROFS on a read-only import, -ESHUTDOWN when the
 * pool is being exported.
 */
int srv_pool_scan(struct srv_pool *sp, int kind, struct err_msg *em);
/*
 * Cancels the running (or queued) scrub and waits, briefly, until it has stopped. -ENOENT when
 * no scrub runs, -EBUSY when a resilver runs (it cannot be canceled).
 */
int srv_pool_scan_cancel(struct srv_pool *sp, struct err_msg *em);
/* Pauses the running scrub where it is (`pool scrub` resumes it). -ENOENT if none runs. */
int srv_pool_scan_pause(struct srv_pool *sp, struct err_msg *em);
/* Whether the pool's scan thread is running or has a scan queued. */
bool srv_pool_scan_busy(struct srv_pool *sp, int *kind);

#endif
