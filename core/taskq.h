/* SPDX-License-Identifier: MIT */
/*
 * taskq: a fixed pool of worker threads running "parallel for" batches.
 *
 * The sync thread uses it to compress, checksum, allocate and write a txg's data blocks on every
 * core (data-path principle: heavy work at txg sync, spread over the cores). A batch is
 * taskq_run(): fn(arg, i) for i in [0, n), returning when all have finished; the calling thread
 * works too. taskq_start/taskq_wait split a batch in two, leaving it to the workers while the
 * caller does something else (the device writes of one part of a txg while the next part is
 * compressed). One batch at a time per taskq: each has one user thread.
 */
#ifndef LCPFS_CORE_TASKQ_H
#define LCPFS_CORE_TASKQ_H

#include <stddef.h>

struct taskq;

typedef void (*taskq_fn)(void *arg, size_t i);

/* Starts nthreads workers (0 = one per online CPU, minus the caller), named `name` (at most 15
 * characters, as top -H and perf show them). NULL on failure. */
struct taskq *taskq_new(unsigned nthreads, const char *name);
void taskq_free(struct taskq *tq); /* NULL ok; joins the workers */
/* Runs fn(arg, i) for every i < n across the workers and the caller; waits for all. */
void taskq_run(struct taskq *tq, size_t n, taskq_fn fn, void *arg);
/* Starts fn(arg, i) for every i < n on the workers only (inline when there are none) and
 * returns; taskq_wait waits for it. No other batch may start in between. */
void taskq_start(struct taskq *tq, size_t n, taskq_fn fn, void *arg);
void taskq_wait(struct taskq *tq); /* no-op when nothing was started */

#endif
