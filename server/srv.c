/* SPDX-License-Identifier: MIT */
/*
 * srv: the table of imported pools (see srv.h).
 */
#include "server/srv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

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
        free(sp);
    }
    return rc;
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
    rc = pool_export(sp->pool);
    if (rc != 0)
        err_msg_set(em, rc, "pool '%s' was closed, but its final commit failed: %s", name,
                    err_str(rc));
    for (size_t i = 0; i < sp->nvdevs; i++)
        free(sp->vdevs[i]);
    free(sp->vdevs);
    free(sp);
    return rc;
}
