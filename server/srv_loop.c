/* SPDX-License-Identifier: MIT */
/*
 * srv_loop: the daemon's event loops and their workers (see struct srv_loop in srv.h).
 *
 * Theory of operation. One loop cannot use more than one core, and serving a socket is mostly
 * the kernel's copy of its bytes: with every session on one loop, four clients reading at once
 * were served by one core while the others idled. So the main loop (signals, admin socket,
 * listeners) is joined by nloops - 1 more, each on its own thread with its own workers, and
 * each new session is handed to the next loop in turn, where it lives until it is freed.
 *
 * Invariants:
 *   1. Everything of a session (its bufferevent, timers, jobs' completions) runs on its loop's
 *      thread; other threads reach it only through event_base_once on that loop.
 *   2. An extra loop runs until srv_loops_halt ends it: it does not exit when it has no
 *      events (EVLOOP_NO_EXIT_ON_EMPTY).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include <event2/event.h>

#include "common/log.h"
#include "server/srv.h"
#include "server/workq.h"

static void *
loop_main(void *arg)
{
    struct srv_loop *l = arg;
    event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void
loop_free(struct srv_loop *l)
{
    workq_free(l->wq);
    if (l->base != NULL)
        event_base_free(l->base);
    l->wq = NULL;
    l->base = NULL;
}

int
srv_loops_start(struct srv *s, unsigned nloops, unsigned nthreads)
{
    if (nloops < 1)
        nloops = 1;
    if (nloops > SRV_MAX_LOOPS)
        nloops = SRV_MAX_LOOPS;
    s->nloops = 0;
    for (unsigned i = 0; i < nloops; i++) {
        struct srv_loop *l = &s->loops[i];
        l->base = event_base_new();
        char name[16];
        snprintf(name, sizeof(name), "work%u", i);
        l->wq = l->base != NULL ? workq_new(l->base, nthreads, name) : NULL;
        if (l->wq == NULL || (i > 0 && pthread_create(&l->thread, NULL, loop_main, l) != 0)) {
            loop_free(l);
            srv_loops_free(s);
            return -ENOMEM;
        }
        l->thread_running = i > 0;
        if (i > 0) {
            snprintf(name, sizeof(name), "loop%u", i);
            (void)pthread_setname_np(l->thread, name);
        }
        s->nloops++;
    }
    s->base = s->loops[0].base;
    s->wq = s->loops[0].wq;
    return 0;
}

struct srv_loop *
srv_pick_loop(struct srv *s)
{
    unsigned i = __atomic_fetch_add(&s->next_loop, 1, __ATOMIC_RELAXED);
    return &s->loops[i % s->nloops];
}

void
srv_loops_halt(struct srv *s)
{
    for (unsigned i = 1; i < s->nloops; i++) {
        if (s->loops[i].thread_running) {
            /* loopexit, not loopbreak: a break sent before the loop started would be lost */
            event_base_loopexit(s->loops[i].base, NULL);
            pthread_join(s->loops[i].thread, NULL);
            s->loops[i].thread_running = false;
        }
    }
}

void
srv_loops_free(struct srv *s)
{
    srv_loops_halt(s);
    for (unsigned i = 0; i < s->nloops; i++)
        loop_free(&s->loops[i]);
    s->nloops = 0;
    s->base = NULL;
    s->wq = NULL;
}
