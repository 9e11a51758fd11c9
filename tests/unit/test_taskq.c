/* SPDX-License-Identifier: MIT */
/*
 * taskq: every index of every batch runs exactly once, with that batch's own function and
 * argument, across many small back-to-back batches (the pattern that exposed a late-waking
 * worker running a finished batch's function on the next batch's indices).
 */
#include <pthread.h>
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
    struct taskq *tq = taskq_new(3, "test");
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
    struct taskq *tq = taskq_new(1, "test");
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

struct owned_batch {
    struct batch b;
    pthread_t caller;
    atomic_uint on_caller;
};

static void
hit_elsewhere(void *arg, size_t i)
{
    struct owned_batch *o = arg;
    if (pthread_equal(pthread_self(), o->caller))
        atomic_fetch_add(&o->on_caller, 1);
    hit(&o->b, i);
}

/* A batch of n through taskq_run on tq: every index ran once when it returns. */
static void
run_and_check(struct taskq *tq, size_t n)
{
    struct batch b;
    memset(&b, 0, sizeof(b));
    b.n = n;
    taskq_run(tq, b.n, hit, &b);
    for (size_t i = 0; i < b.n; i++)
        cr_assert_eq(atomic_load(&b.hits[i]), 1);
}

Test(taskq, started_batches_run_on_the_workers_while_the_caller_goes_on)
{
    struct taskq *tq = taskq_new(2, "test-io"), *cpu = taskq_new(2, "test-cpu");
    cr_assert_not_null(tq);
    cr_assert_not_null(cpu);
    taskq_wait(tq); /* nothing started: returns at once */
    for (unsigned it = 0; it < 50000; it++) {
        struct owned_batch o; /* on the stack, as zio_issue_start's callers keep theirs */
        memset(&o, 0, sizeof(o));
        o.b.n = 1 + it % 16;
        o.caller = pthread_self();
        taskq_start(tq, o.b.n, hit_elsewhere, &o);
        /* Meanwhile the caller may use another taskq, as the sync thread prepares the next
         * part of a txg on the pool's CPU taskq while this one writes. */
        if (it % 3 == 0)
            run_and_check(cpu, 9);
        taskq_wait(tq);
        cr_assert_eq(atomic_load(&o.on_caller), 0, "batch %u ran on the caller", it);
        for (size_t i = 0; i < o.b.n; i++)
            cr_assert_eq(atomic_load(&o.b.hits[i]), 1, "batch %u index %zu ran %u times", it, i,
                         atomic_load(&o.b.hits[i]));
        /* A taskq_run right after: both kinds of batch share the workers. */
        if (it % 5 == 0)
            run_and_check(tq, 4);
    }
    taskq_wait(tq); /* again: nothing in flight */
    taskq_free(tq);
    taskq_free(cpu);
}
