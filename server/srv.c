/* SPDX-License-Identifier: MIT */
/*
 * srv: the table of imported pools (see srv.h).
 */
#include "server/srv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

enum vdev_direct
srv_vdev_direct(enum config_direct_io d)
{
    return d == CONFIG_DIRECT_IO_OFF  ? VDEV_DIRECT_OFF
           : d == CONFIG_DIRECT_IO_ON ? VDEV_DIRECT_ALL
                                      : VDEV_DIRECT_WRITES;
}

static struct srv_pool *
find_locked(struct srv *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->npools; i++)
        if (strlen(s->pools[i]->name) == len && memcmp(s->pools[i]->name, name, len) == 0)
            return s->pools[i];
    return NULL;
}

struct srv_pool *
srv_pool_pin(struct srv *s, const char *name, struct err_msg *em)
{
    size_t len = strcspn(name, "/@#");
    pthread_mutex_lock(&s->pools_lock);
    struct srv_pool *sp = find_locked(s, name, len);
    if (sp != NULL)
        sp->users++;
    pthread_mutex_unlock(&s->pools_lock);
    if (sp == NULL)
        err_msg_set(em, -ENOENT, "no pool named '%.*s' is imported", (int)len, name);
    return sp;
}

void
srv_pool_unpin(struct srv *s, struct srv_pool *sp)
{
    pthread_mutex_lock(&s->pools_lock);
    sp->users--;
    pthread_mutex_unlock(&s->pools_lock);
}

int
srv_pool_add(struct srv *s, struct pool *p, const char *const *vdevs, size_t nvdevs)
{
    struct srv_pool *sp = calloc(1, sizeof(*sp));
    if (sp == NULL)
        return -ENOMEM;
    snprintf(sp->name, sizeof(sp->name), "%s", pool_name(p));
    sp->pool = p;
    pthread_mutex_init(&sp->scan_lock, NULL);
    sp->scan_cur = -1;
    sp->scan_next = -1;
    sp->vdevs = calloc(nvdevs ? nvdevs : 1, sizeof(char *));
    for (size_t i = 0; sp->vdevs != NULL && i < nvdevs; i++)
        if ((sp->vdevs[sp->nvdevs++] = strdup(vdevs[i])) == NULL)
            break;
    int rc = 0;
    pthread_mutex_lock(&s->pools_lock);
    if (find_locked(s, sp->name, strlen(sp->name)) != NULL)
        rc = -EEXIST;
    else if (s->npools == SRV_MAX_POOLS)
        rc = -ENOSPC;
    else
        s->pools[s->npools++] = sp;
    pthread_mutex_unlock(&s->pools_lock);
    if (rc != 0) {
        for (size_t i = 0; i < sp->nvdevs; i++)
            free(sp->vdevs[i]);
        free(sp->vdevs);
        pthread_mutex_destroy(&sp->scan_lock);
        free(sp);
        return rc;
    }
    /* Like zpool import: a scan the last export or crash interrupted goes on, and devices that
     * came back having missed writes are resilvered. */
    struct pool_scan_stats sc;
    pool_get_scan(p, &sc);
    struct err_msg em = { 0 };
    int kind = -1;
    if (sc.state == POOL_SCAN_PAUSED && sc.interrupted)
        kind = sc.kind;
    else if (pool_needs_resilver(p))
        kind = POOL_SCAN_RESILVER;
    if (kind >= 0 && srv_pool_scan(sp, kind, &em) != 0)
        log_warn("pool '%s': %s", sp->name, em.text);
    return 0;
}

/* ---- background scans ------------------------------------------------------------------------ */

static const char *
scan_name(int kind)
{
    return kind == POOL_SCAN_RESILVER ? "resilver" : "scrub";
}

static void
nap_ms(long ms)
{
    struct timespec ts = { 0, ms * 1000000L };
    nanosleep(&ts, NULL);
}

/* The scan thread: runs what is queued until nothing is (srv.h). */
static void *
scan_main(void *arg)
{
    struct srv_pool *sp = arg;
    pthread_mutex_lock(&sp->scan_lock);
    while (!sp->scan_stop && sp->scan_next >= 0) {
        int kind = sp->scan_next;
        sp->scan_next = -1;
        sp->scan_cur = kind;
        sp->scan_gen++;
        pthread_mutex_unlock(&sp->scan_lock);
        struct err_msg em = { 0 };
        int rc =
            kind == POOL_SCAN_RESILVER ? pool_resilver(sp->pool, &em) : pool_scrub(sp->pool, &em);
        /* The core logs start, end, cancel and failure of a scan it ran; not a refusal. */
        if (rc == -EBUSY || rc == -EROFS)
            log_warn("pool '%s': %s not started: %s", sp->name, scan_name(kind),
                     em.text[0] ? em.text : err_str(rc));
        pthread_mutex_lock(&sp->scan_lock);
        sp->scan_cur = -1;
    }
    sp->scan_running = false;
    pthread_mutex_unlock(&sp->scan_lock);
    return NULL;
}

/*
 * Sends `request` (pool_scrub_cancel, _pause or _interrupt) to the scan the thread runs now and
 * repeats it until the thread has left that scan (scan_lock held; released while napping). One
 * call is not enough: a request reaches a running scan only, and the thread may be between two
 * scans. `kind` -1 matches any scan. With `until_exit` it waits for the thread to leave its loop
 * (shutdown); otherwise it gives up after 10 s.
 */
static void
request_until_left(struct srv_pool *sp, void (*request)(struct pool *), int kind, bool until_exit)
{
    unsigned gen = sp->scan_gen;
    for (int i = 0; until_exit || i < 2000; i++) {
        bool in_it = until_exit ? sp->scan_running
                                : sp->scan_cur >= 0 && (kind < 0 || sp->scan_cur == kind) &&
                                      sp->scan_gen == gen;
        if (!in_it)
            break;
        request(sp->pool);
        pthread_mutex_unlock(&sp->scan_lock);
        nap_ms(5);
        pthread_mutex_lock(&sp->scan_lock);
    }
}

int
srv_pool_scan(struct srv_pool *sp, int kind, struct err_msg *em)
{
    struct pool_stats st;
    pool_get_stats(sp->pool, &st);
    if (st.readonly)
        return err_msg_set(em, -EROFS, "pool '%s' is imported read-only", sp->name);
    int rc = 0;
    pthread_mutex_lock(&sp->scan_lock);
    if (sp->scan_stop) {
        rc = err_msg_set(em, -ESHUTDOWN, "pool '%s' is being exported", sp->name);
    } else if (sp->scan_running) {
        int busy = sp->scan_cur >= 0 ? sp->scan_cur : sp->scan_next;
        if (kind == POOL_SCAN_SCRUB) {
            rc = err_msg_set(em, -EBUSY, "pool '%s' is already being %s", sp->name,
                             busy == POOL_SCAN_RESILVER ? "resilvered" : "scrubbed");
        } else {
            /* Restart: cancel the running scan; the thread then runs the queued resilver. */
            sp->scan_next = POOL_SCAN_RESILVER;
            if (sp->scan_cur >= 0)
                log_info("pool '%s': restarting with a resilver: the %s in progress began "
                         "before this device change",
                         sp->name, scan_name(sp->scan_cur));
            request_until_left(sp, pool_scrub_cancel, -1, false);
        }
    } else {
        if (sp->scan_started) /* the last thread has left its loop: reap it */
            pthread_join(sp->scan_tid, NULL);
        sp->scan_started = false;
        sp->scan_next = kind;
        sp->scan_running = true;
        int e = pthread_create(&sp->scan_tid, NULL, scan_main, sp);
        if (e == 0)
            (void)pthread_setname_np(sp->scan_tid, "scan");
        if (e != 0) {
            sp->scan_running = false;
            sp->scan_next = -1;
            rc = err_msg_set(em, -e, "cannot start a thread for the %s of pool '%s': %s",
                             scan_name(kind), sp->name, strerror(e));
        } else {
            sp->scan_started = true;
        }
    }
    pthread_mutex_unlock(&sp->scan_lock);
    return rc;
}

int
srv_pool_scan_cancel(struct srv_pool *sp, struct err_msg *em)
{
    int rc = 0;
    pthread_mutex_lock(&sp->scan_lock);
    if (sp->scan_next == POOL_SCAN_SCRUB)
        sp->scan_next = -1;
    else if (sp->scan_cur == POOL_SCAN_RESILVER || sp->scan_next == POOL_SCAN_RESILVER)
        rc = err_msg_set(em, -EBUSY,
                         "pool '%s' is being resilvered; a resilver cannot be "
                         "canceled",
                         sp->name);
    else if (sp->scan_cur != POOL_SCAN_SCRUB) {
        struct pool_scan_stats sc;
        pool_get_scan(sp->pool, &sc);
        if (sc.state == POOL_SCAN_PAUSED && sc.kind == POOL_SCAN_SCRUB)
            pool_scrub_cancel(sp->pool); /* a paused scrub: forget it */
        else
            rc = err_msg_set(em, -ENOENT, "there is no active scrub on pool '%s'", sp->name);
    }
    if (rc == 0)
        request_until_left(sp, pool_scrub_cancel, POOL_SCAN_SCRUB, false);
    pthread_mutex_unlock(&sp->scan_lock);
    if (rc == 0)
        log_info("pool '%s': scrub canceled by the administrator", sp->name);
    return rc;
}

int
srv_pool_scan_pause(struct srv_pool *sp, struct err_msg *em)
{
    int rc = 0;
    pthread_mutex_lock(&sp->scan_lock);
    if (sp->scan_next == POOL_SCAN_SCRUB)
        sp->scan_next = -1;
    else if (sp->scan_cur != POOL_SCAN_SCRUB)
        rc = err_msg_set(em, -ENOENT, "there is no scrub running on pool '%s'", sp->name);
    if (rc == 0)
        request_until_left(sp, pool_scrub_pause, POOL_SCAN_SCRUB, false);
    pthread_mutex_unlock(&sp->scan_lock);
    if (rc == 0)
        log_info("pool '%s': scrub paused by the administrator", sp->name);
    return rc;
}

bool
srv_pool_scan_busy(struct srv_pool *sp, int *kind)
{
    pthread_mutex_lock(&sp->scan_lock);
    bool busy = sp->scan_cur >= 0 || sp->scan_next >= 0;
    *kind = sp->scan_cur >= 0 ? sp->scan_cur : sp->scan_next;
    pthread_mutex_unlock(&sp->scan_lock);
    return busy;
}

/* Interrupts the scan of a pool being removed and joins its thread (before pool_export). */
static void
scan_shutdown(struct srv_pool *sp)
{
    pthread_mutex_lock(&sp->scan_lock);
    sp->scan_stop = true;
    sp->scan_next = -1;
    if (sp->scan_running && sp->scan_cur >= 0)
        log_info("pool '%s': stopping the %s to export the pool", sp->name,
                 scan_name(sp->scan_cur));
    /* Interrupted, not canceled: the next import resumes it. */
    request_until_left(sp, pool_scrub_interrupt, -1, true);
    bool join = sp->scan_started;
    sp->scan_started = false;
    pthread_mutex_unlock(&sp->scan_lock);
    if (join)
        pthread_join(sp->scan_tid, NULL);
}

int
srv_pool_remove(struct srv *s, const char *name, unsigned own_pins, struct err_msg *em)
{
    pthread_mutex_lock(&s->pools_lock);
    struct srv_pool *sp = find_locked(s, name, strlen(name));
    int rc = 0;
    if (sp == NULL)
        rc = err_msg_set(em, -ENOENT, "no pool named '%s' is imported", name);
    else if (sp->users > own_pins)
        rc = err_msg_set(em, -EBUSY, "pool '%s' is in use (%u users)", name, sp->users - own_pins);
    if (rc == 0) {
        for (size_t i = 0; i < s->npools; i++)
            if (s->pools[i] == sp) {
                s->pools[i] = s->pools[--s->npools];
                break;
            }
    }
    pthread_mutex_unlock(&s->pools_lock);
    if (rc != 0)
        return rc;
    scan_shutdown(sp);
    rc = pool_export(sp->pool);
    if (rc != 0)
        err_msg_set(em, rc, "pool '%s' was closed, but its final commit failed: %s", name,
                    err_str(rc));
    for (size_t i = 0; i < sp->nvdevs; i++)
        free(sp->vdevs[i]);
    free(sp->vdevs);
    pthread_mutex_destroy(&sp->scan_lock);
    free(sp);
    return rc;
}
