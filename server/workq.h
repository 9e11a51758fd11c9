/* SPDX-License-Identifier: MIT */
/*
 * workq: the daemon's worker threads. The event loop never blocks on the pool: every core call
 * (reads, writes, flushes, admin operations that wait for a commit) runs as a job on a worker,
 * and its completion runs back on the loop thread, where sockets are touched.
 *
 * A job is embedded in the caller's own request structure (no allocation per job): `fn` runs on
 * a worker, then `done` runs on the loop thread; the job memory must stay valid until `done`
 * has run. Jobs of one queue run in any order and concurrently.
 */
#ifndef LCPFS_SERVER_WORKQ_H
#define LCPFS_SERVER_WORKQ_H

#include <stdbool.h>

struct event_base;
struct workq;

struct workq_job {
    void (*fn)(struct workq_job *job);   /* worker thread */
    void (*done)(struct workq_job *job); /* loop thread */
    struct workq_job *next;              /* owned by the queue while queued */
};

/* Starts nthreads workers, named `name` (at most 15 characters), whose completions are
 * delivered on base (created with pthread support: evthread_use_pthreads before
 * event_base_new). Returns NULL on failure. */
struct workq *workq_new(struct event_base *base, unsigned nthreads, const char *name);
/* Queues job (fn and done set). Never fails: the queue is a list through the jobs. */
void workq_submit(struct workq *wq, struct workq_job *job);
/* Number of jobs queued or running whose done has not run yet (any thread). */
unsigned workq_pending(const struct workq *wq);
/* Stops the workers after the queued jobs ran and runs the remaining completions. NULL ok. */
void workq_free(struct workq *wq);

#endif
