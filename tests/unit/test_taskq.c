/* SPDX-License-Identifier: MIT */
/*
 * taskq: every index of every batch runs exactly once, with that batch's own function and
 * argument, across many small back-to-back batches (the pattern that exposed a late-waking
 * worker running a finished batch's function on the next batch's indices).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/taskq.h"

struct batch {
    atomic_uint hits[16];
    size_t n;
    unsigned id;
};

static void
hit(void *arg, size_t i)
{
    struct batch *b = arg;
    if (i >= b->n) { /* a worker thread: report and abort, Criterion marks the test crashed */
        fprintf(stderr, "index %zu of a batch of %zu ran with the wrong argument\n", i, b->n);
        abort();
    }
    atomic_fetch_add(&b->hits[i], 1);
}

Test(taskq, every_index_of_every_batch_runs_once_with_its_own_argument)
{
    struct taskq *tq = taskq_new(3);
    cr_assert_not_null(tq);
    for (unsigned it = 0; it < 200000; it++) {
        struct batch b; /* on the stack: a stale worker would touch a dead batch */
        memset(&b, 0, sizeof(b));
        b.n = 2 + it % 7;
        b.id = it;
        taskq_run(tq, b.n, hit, &b);
        for (size_t i = 0; i < b.n; i++)
            cr_assert_eq(atomic_load(&b.hits[i]), 1, "batch %u index %zu ran %u times", it, i,
                         atomic_load(&b.hits[i]));
    }
    taskq_free(tq);
}

Test(taskq, single_and_empty_batches_run_inline)
{
    struct taskq *tq = taskq_new(1);
    struct batch b;
    memset(&b, 0, sizeof(b));
    b.n = 1;
    taskq_run(tq, 0, hit, &b);
    cr_assert_eq(atomic_load(&b.hits[0]), 0);
    taskq_run(tq, 1, hit, &b);
    cr_assert_eq(atomic_load(&b.hits[0]), 1);
    taskq_free(tq);
    taskq_free(NULL);
}
