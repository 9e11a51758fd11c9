/* SPDX-License-Identifier: MIT */
/*
 * taskq: workers claim indices of the current batch with an atomic counter; the caller waits
 * until every index has run and every worker that joined the batch has left it.
 * taskq_start publishes a batch the same way but leaves it to the workers alone; taskq_wait is
 * the caller's half of taskq_run.
 * Invariant: between batches no worker touches fn, arg or the index counter (active == 0);
 * a worker joins a batch only while it is unfinished (finished < n), under the lock.
 */
#include "core/taskq.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/assert.h"

struct taskq {
    pthread_mutex_t lock;
    pthread_cond_t work_cv, done_cv;
    pthread_t *threads;
    unsigned nthreads;
    /* current batch, under lock */
    uint64_t generation;
    taskq_fn fn;
    void *arg;
    size_t n;
    atomic_size_t next;
    size_t finished;
    unsigned active; /* workers inside the current batch */
    bool started;    /* a taskq_start batch not yet taskq_wait'ed */
    bool stopping;
};

static void
drain(struct taskq *tq, taskq_fn fn, void *arg, size_t n)
{
    size_t done = 0;
    for (;;) {
        size_t i = atomic_fetch_add(&tq->next, 1);
        if (i >= n)
            break;
        fn(arg, i);
        done++;
    }
    pthread_mutex_lock(&tq->lock);
    tq->finished += done;
    pthread_cond_broadcast(&tq->done_cv);
    pthread_mutex_unlock(&tq->lock);
}

static void *
worker(void *p)
{
    struct taskq *tq = p;
    uint64_t seen = 0;
    pthread_mutex_lock(&tq->lock);
    for (;;) {
        while (!tq->stopping && tq->generation == seen)
            pthread_cond_wait(&tq->work_cv, &tq->lock);
        if (tq->stopping)
            break;
        seen = tq->generation;
        /* Woken late: the caller already finished this batch alone and may be about to start
         * the next one, whose arguments we must not pair with this batch's function. */
        if (tq->finished >= tq->n)
            continue;
        taskq_fn fn = tq->fn;
        void *arg = tq->arg;
        size_t n = tq->n;
        tq->active++;
        pthread_mutex_unlock(&tq->lock);
        drain(tq, fn, arg, n);
        pthread_mutex_lock(&tq->lock);
        tq->active--;
        pthread_cond_broadcast(&tq->done_cv);
    }
    pthread_mutex_unlock(&tq->lock);
    return NULL;
}

struct taskq *
taskq_new(unsigned nthreads, const char *name)
{
    if (nthreads == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = cpus > 1 ? (unsigned)(cpus - 1) : 1;
    }
    struct taskq *tq = calloc(1, sizeof(*tq));
    if (tq == NULL)
        return NULL;
    tq->threads = calloc(nthreads, sizeof(pthread_t));
    if (tq->threads == NULL) {
        free(tq);
        return NULL;
    }
    pthread_mutex_init(&tq->lock, NULL);
    pthread_cond_init(&tq->work_cv, NULL);
    pthread_cond_init(&tq->done_cv, NULL);
    for (unsigned i = 0; i < nthreads; i++) {
        if (pthread_create(&tq->threads[i], NULL, worker, tq) != 0)
            break;
        (void)pthread_setname_np(tq->threads[i], name); /* a name only: failure is harmless */
        tq->nthreads++;
    }
    return tq;
}

void
taskq_free(struct taskq *tq)
{
    if (tq == NULL)
        return;
    pthread_mutex_lock(&tq->lock);
    tq->stopping = true;
    pthread_cond_broadcast(&tq->work_cv);
    pthread_mutex_unlock(&tq->lock);
    for (unsigned i = 0; i < tq->nthreads; i++)
        pthread_join(tq->threads[i], NULL);
    pthread_mutex_destroy(&tq->lock);
    pthread_cond_destroy(&tq->work_cv);
    pthread_cond_destroy(&tq->done_cv);
    free(tq->threads);
    free(tq);
}

/* Publishes a batch to the workers (lock held). */
static void
publish(struct taskq *tq, size_t n, taskq_fn fn, void *arg)
{
    while (tq->active > 0) /* invariant: nobody is inside the previous batch */
        pthread_cond_wait(&tq->done_cv, &tq->lock);
    tq->fn = fn;
    tq->arg = arg;
    tq->n = n;
    tq->finished = 0;
    atomic_store(&tq->next, 0);
    tq->generation++;
    pthread_cond_broadcast(&tq->work_cv);
}

static void
wait_batch(struct taskq *tq, size_t n)
{
    pthread_mutex_lock(&tq->lock);
    while (tq->finished < n || tq->active > 0)
        pthread_cond_wait(&tq->done_cv, &tq->lock);
    pthread_mutex_unlock(&tq->lock);
}

void
taskq_run(struct taskq *tq, size_t n, taskq_fn fn, void *arg)
{
    if (n == 0)
        return;
    if (n == 1 || tq == NULL || tq->nthreads == 0) {
        for (size_t i = 0; i < n; i++)
            fn(arg, i);
        return;
    }
    pthread_mutex_lock(&tq->lock);
    VERIFY(!tq->started);
    publish(tq, n, fn, arg);
    pthread_mutex_unlock(&tq->lock);
    drain(tq, fn, arg, n);
    wait_batch(tq, n);
}

void
taskq_start(struct taskq *tq, size_t n, taskq_fn fn, void *arg)
{
    if (n == 0)
        return;
    if (tq == NULL || tq->nthreads == 0) {
        for (size_t i = 0; i < n; i++)
            fn(arg, i);
        return;
    }
    pthread_mutex_lock(&tq->lock);
    VERIFY(!tq->started);
    tq->started = true;
    publish(tq, n, fn, arg);
    pthread_mutex_unlock(&tq->lock);
}

void
taskq_wait(struct taskq *tq)
{
    if (tq == NULL || tq->nthreads == 0)
        return;
    pthread_mutex_lock(&tq->lock);
    bool started = tq->started;
    size_t n = tq->n;
    tq->started = false;
    pthread_mutex_unlock(&tq->lock);
    if (started)
        wait_batch(tq, n);
}
