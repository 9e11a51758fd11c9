/* SPDX-License-Identifier: MIT */
/*
 * workq: worker threads with completions on the event loop (see workq.h).
 *
 * Two lists under one mutex: `queue` (FIFO, workers pop) and `finished` (workers push, the loop
 * takes the whole list when its wake-up event fires). A worker that finishes a job activates
 * the wake-up event only when `finished` was empty, so a burst costs one loop wake-up.
 */
#include "server/workq.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/log.h"

struct workq {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    struct workq_job *queue_head, *queue_tail;
    struct workq_job *finished;
    struct event *wake;
    pthread_t *threads;
    unsigned nthreads;
    unsigned pending; /* changed on the loop thread; read from any (atomic) */
    bool stopping;
};

static void *
worker_main(void *arg)
{
    struct workq *wq = arg;
    pthread_mutex_lock(&wq->lock);
    for (;;) {
        while (wq->queue_head == NULL && !wq->stopping)
            pthread_cond_wait(&wq->cv, &wq->lock);
        struct workq_job *job = wq->queue_head;
        if (job == NULL)
            break; /* stopping and drained */
        wq->queue_head = job->next;
        if (wq->queue_head == NULL)
            wq->queue_tail = NULL;
        pthread_mutex_unlock(&wq->lock);

        job->fn(job);

        pthread_mutex_lock(&wq->lock);
        bool was_empty = wq->finished == NULL;
        job->next = wq->finished;
        wq->finished = job;
        if (was_empty)
            event_active(wq->wake, EV_READ, 0);
    }
    pthread_mutex_unlock(&wq->lock);
    return NULL;
}

/* Runs the completions of finished jobs in the order they finished. */
static void
run_finished(struct workq *wq)
{
    pthread_mutex_lock(&wq->lock);
    struct workq_job *list = wq->finished;
    wq->finished = NULL;
    pthread_mutex_unlock(&wq->lock);
    struct workq_job *rev = NULL;
    while (list != NULL) {
        struct workq_job *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev != NULL) {
        struct workq_job *next = rev->next;
        __atomic_sub_fetch(&wq->pending, 1, __ATOMIC_RELAXED);
        rev->done(rev);
        rev = next;
    }
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run_finished(arg);
}

struct workq *
workq_new(struct event_base *base, unsigned nthreads, const char *name)
{
    struct workq *wq = calloc(1, sizeof(*wq));
    if (wq == NULL)
        return NULL;
    pthread_mutex_init(&wq->lock, NULL);
    pthread_cond_init(&wq->cv, NULL);
    wq->wake = event_new(base, -1, 0, on_wake, wq);
    wq->threads = calloc(nthreads, sizeof(*wq->threads));
    if (wq->wake == NULL || wq->threads == NULL)
        goto fail;
    for (; wq->nthreads < nthreads; wq->nthreads++) {
        int rc = pthread_create(&wq->threads[wq->nthreads], NULL, worker_main, wq);
        if (rc != 0) {
            log_err("cannot start worker thread: %s", strerror(rc));
            goto fail;
        }
        (void)pthread_setname_np(wq->threads[wq->nthreads], name);
    }
    return wq;
fail:
    workq_free(wq);
    return NULL;
}

void
workq_submit(struct workq *wq, struct workq_job *job)
{
    job->next = NULL;
    __atomic_add_fetch(&wq->pending, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&wq->lock);
    if (wq->queue_tail != NULL)
        wq->queue_tail->next = job;
    else
        wq->queue_head = job;
    wq->queue_tail = job;
    pthread_cond_signal(&wq->cv);
    pthread_mutex_unlock(&wq->lock);
}

unsigned
workq_pending(const struct workq *wq)
{
    return __atomic_load_n(&wq->pending, __ATOMIC_RELAXED);
}

void
workq_free(struct workq *wq)
{
    if (wq == NULL)
        return;
    pthread_mutex_lock(&wq->lock);
    wq->stopping = true;
    pthread_cond_broadcast(&wq->cv);
    pthread_mutex_unlock(&wq->lock);
    for (unsigned i = 0; i < wq->nthreads; i++)
        pthread_join(wq->threads[i], NULL);
    run_finished(wq);
    if (wq->wake != NULL)
        event_free(wq->wake);
    free(wq->threads);
    pthread_mutex_destroy(&wq->lock);
    pthread_cond_destroy(&wq->cv);
    free(wq);
}
