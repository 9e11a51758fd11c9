/* SPDX-License-Identifier: MIT */
/*
 * exports: export name resolution and the session registry (see exports.h).
 */
#include "server/exports.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "core/dsl.h"
#include "server/admin.h"
#include "server/srv.h"

static bool
is_on(struct pool *p, const char *volume)
{
    struct dsl_prop_out o;
    struct err_msg em = { 0 };
    return dsl_get(p, volume, EXPORT_USER_PROP, false, &o, &em) == 0 && strcmp(o.value, "on") == 0;
}

/* Fills out from the volume's own facts (kind, readonly property). */
static int
check_volume(struct srv *s, struct export_info *out, struct err_msg *em)
{
    struct srv_pool *sp = srv_pool_pin(s, out->volume, em);
    if (sp == NULL)
        return -ENOENT;
    struct dsl_info in;
    int rc = dsl_stat(sp->pool, out->volume, &in, em);
    if (rc == 0 && in.kind != DSL_KIND_VOL && in.kind != DSL_KIND_SNAP)
        rc = err_msg_set(em, -ENOENT, "'%s' is not a volume", out->volume);
    if (rc == 0 && in.kind == DSL_KIND_SNAP) {
        out->readonly = true;
        char head[DSL_NAME_MAX + 1];
        snprintf(head, sizeof(head), "%.*s", (int)strcspn(out->volume, "@"), out->volume);
        struct dsl_info hi;
        if (dsl_stat(sp->pool, head, &hi, em) != 0 || hi.kind != DSL_KIND_VOL)
            rc = err_msg_set(em, -ENOENT, "'%s' is not a volume snapshot", out->volume);
    }
    if (rc == 0) {
        struct dsl_prop_out o;
        if (dsl_get(sp->pool, out->volume, "readonly", false, &o, em) == 0 &&
            strcmp(o.value, "on") == 0)
            out->readonly = true;
    }
    srv_pool_unpin(s, sp);
    return rc;
}

int
exports_resolve(struct srv *s, const char *name, struct export_info *out, struct err_msg *em)
{
    const struct lcpfs_config *cfg = s->cfg;
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", name);
    out->tls = cfg->nbd.tls;
    const char *lookup = name;
    if (*name == 0) {
        if (cfg->nbd.default_export == NULL)
            return err_msg_set(em, -ENOENT, "no default export is configured");
        lookup = cfg->nbd.default_export;
    }
    const struct config_export *e = config_find_export(cfg, lookup);
    const char *at = strchr(lookup, '@');
    if (e == NULL && at != NULL) {
        char base[DSL_NAME_MAX + 1];
        snprintf(base, sizeof(base), "%.*s", (int)(at - lookup), lookup);
        const struct config_export *be = config_find_export(cfg, base);
        if (be != NULL && strchr(be->volume, '@') == NULL) {
            snprintf(out->volume, sizeof(out->volume), "%s%s", be->volume, at);
            out->readonly = true;
            out->tls = config_export_tls(cfg, be);
            snprintf(out->description, sizeof(out->description), "snapshot %s of %s", at + 1,
                     be->volume);
            return check_volume(s, out, em);
        }
    }
    if (e != NULL) {
        snprintf(out->volume, sizeof(out->volume), "%s", e->volume);
        out->readonly = e->readonly;
        out->tls = config_export_tls(cfg, e);
        if (e->description != NULL)
            snprintf(out->description, sizeof(out->description), "%s", e->description);
        return check_volume(s, out, em);
    }
    /* A volume exported by its property. */
    if (strchr(lookup, '/') == NULL)
        return err_msg_set(em, -ENOENT, "no export named '%s'", name);
    snprintf(out->volume, sizeof(out->volume), "%s", lookup);
    char head[DSL_NAME_MAX + 1];
    snprintf(head, sizeof(head), "%.*s", (int)strcspn(lookup, "@"), lookup);
    struct srv_pool *sp = srv_pool_pin(s, head, em);
    if (sp == NULL)
        return err_msg_set(em, -ENOENT, "no export named '%s'", name);
    bool on = is_on(sp->pool, head);
    srv_pool_unpin(s, sp);
    if (!on)
        return err_msg_set(em, -ENOENT, "no export named '%s'", name);
    return check_volume(s, out, em);
}

struct list_ctx {
    struct srv *s;
    struct pool *p;
    exports_fn fn;
    void *arg;
    int rc;
};

static int
list_volume(void *arg, const struct dsl_info *in)
{
    struct list_ctx *lc = arg;
    if (in->kind != DSL_KIND_VOL || !is_on(lc->p, in->name))
        return 0;
    struct export_info e = { .tls = lc->s->cfg->nbd.tls };
    snprintf(e.name, sizeof(e.name), "%s", in->name);
    snprintf(e.volume, sizeof(e.volume), "%s", in->name);
    struct dsl_prop_out o;
    struct err_msg em = { 0 };
    e.readonly =
        dsl_get(lc->p, in->name, "readonly", false, &o, &em) == 0 && strcmp(o.value, "on") == 0;
    return lc->fn(lc->arg, &e);
}

int
exports_list(struct srv *s, exports_fn fn, void *arg)
{
    const struct lcpfs_config *cfg = s->cfg;
    int rc = 0;
    for (size_t i = 0; i < cfg->nexports && rc == 0; i++) {
        const struct config_export *ce = &cfg->exports[i];
        struct export_info e = { .readonly = ce->readonly, .tls = config_export_tls(cfg, ce) };
        snprintf(e.name, sizeof(e.name), "%s", ce->name);
        snprintf(e.volume, sizeof(e.volume), "%s", ce->volume);
        if (ce->description != NULL)
            snprintf(e.description, sizeof(e.description), "%s", ce->description);
        rc = fn(arg, &e);
    }
    pthread_mutex_lock(&s->pools_lock);
    size_t n = s->npools;
    char names[SRV_MAX_POOLS][POOL_NAME_MAX + 1];
    for (size_t i = 0; i < n; i++)
        snprintf(names[i], sizeof(names[i]), "%s", s->pools[i]->name);
    pthread_mutex_unlock(&s->pools_lock);
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct err_msg em = { 0 };
        struct srv_pool *sp = srv_pool_pin(s, names[i], &em);
        if (sp == NULL)
            continue;
        struct list_ctx lc = { s, sp->pool, fn, arg, 0 };
        rc = dsl_list(sp->pool, names[i], DSL_LIST_RECURSIVE | DSL_LIST_VOL, list_volume, &lc, &em);
        srv_pool_unpin(s, sp);
    }
    return rc;
}

/* ---- registry ------------------------------------------------------------------------------ */

void
exports_register(struct srv *s, struct export_user *u)
{
    pthread_mutex_lock(&s->users_lock);
    u->prev = NULL;
    u->next = s->users;
    if (s->users)
        s->users->prev = u;
    s->users = u;
    pthread_mutex_unlock(&s->users_lock);
}

void
exports_unregister(struct srv *s, struct export_user *u)
{
    pthread_mutex_lock(&s->users_lock);
    if (u->prev)
        u->prev->next = u->next;
    else if (s->users == u)
        s->users = u->next;
    if (u->next)
        u->next->prev = u->prev;
    u->prev = u->next = NULL;
    pthread_mutex_unlock(&s->users_lock);
}

/* name covers volume: equal, or volume is below it (name/..., name@...). */
static bool
covers(const char *name, const char *volume)
{
    size_t n = strlen(name);
    return strncmp(name, volume, n) == 0 &&
           (volume[n] == 0 || volume[n] == '/' || volume[n] == '@');
}

unsigned
exports_users(struct srv *s, const char *name)
{
    unsigned n = 0;
    pthread_mutex_lock(&s->users_lock);
    for (struct export_user *u = s->users; u != NULL; u = u->next)
        n += covers(name, u->volume);
    pthread_mutex_unlock(&s->users_lock);
    return n;
}

struct kick_arg {
    struct srv *s;
    struct event_base *base; /* the loop this pass runs on: it kicks that loop's users */
    char name[DSL_NAME_MAX + 1];
};

/* Loop thread: disconnect every session under the name. */
static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct kick_arg *ka = arg;
    struct srv *s = ka->s;
    for (;;) {
        struct export_user *victim = NULL;
        pthread_mutex_lock(&s->users_lock);
        for (struct export_user *u = s->users; u != NULL && victim == NULL; u = u->next)
            if (!u->kicked && u->base == ka->base && covers(ka->name, u->volume))
                victim = u;
        if (victim != NULL)
            victim->kicked = true;
        pthread_mutex_unlock(&s->users_lock);
        if (victim == NULL)
            break;
        victim->kick(victim); /* its own loop: the session cannot vanish meanwhile */
    }
    free(ka);
}

int
exports_kick(struct srv *s, const char *name, unsigned timeout_ms)
{
    /* A session is touched only on its own loop: one pass per loop. */
    for (unsigned i = 0; i < s->nloops; i++) {
        struct kick_arg *ka = calloc(1, sizeof(*ka));
        if (ka == NULL)
            return -ENOMEM;
        ka->s = s;
        ka->base = s->loops[i].base;
        snprintf(ka->name, sizeof(ka->name), "%s", name);
        if (event_base_once(ka->base, -1, EV_TIMEOUT, kick_cb, ka, &(struct timeval){ 0, 0 }) !=
            0) {
            free(ka);
            return -ENOMEM;
        }
    }
    for (unsigned waited = 0; waited <= timeout_ms; waited += 10) {
        if (exports_users(s, name) == 0)
            return 0;
        nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
    }
    return -EBUSY;
}

/* ---- admin --------------------------------------------------------------------------------- */

struct json_list {
    struct srv *s;
    json_t *arr;
};

static int
export_json(void *arg, const struct export_info *e)
{
    struct json_list *jl = arg;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(e->name));
    json_object_set_new(o, "volume", json_string(e->volume));
    json_object_set_new(o, "readonly", json_boolean(e->readonly));
    json_object_set_new(o, "description", json_string(e->description));
    json_object_set_new(o, "tls", json_string(config_tls_name(e->tls)));
    json_object_set_new(o, "clients", json_integer(exports_users(jl->s, e->volume)));
    return json_array_append_new(jl->arr, o) == 0 ? 0 : -ENOMEM;
}

int
admin_exports_list(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    (void)args;
    (void)em;
    struct json_list jl = { s, json_array() };
    int rc = exports_list(s, export_json, &jl);
    if (rc != 0) {
        json_decref(jl.arr);
        return rc;
    }
    *result = jl.arr;
    return 0;
}

int
admin_export_guard(struct srv *s, const char *name, bool force, struct err_msg *em)
{
    /* A configured export pins its volume: the config says it must exist. */
    const struct lcpfs_config *cfg = s->cfg;
    for (size_t i = 0; i < cfg->nexports; i++)
        if (covers(name, cfg->exports[i].volume) && !force)
            return err_msg_set(em, -EBUSY,
                               "'%s' is exported as '%s' by the configuration; use -f to force",
                               cfg->exports[i].volume, cfg->exports[i].name);
    unsigned n = exports_users(s, name);
    if (n == 0)
        return 0;
    if (!force)
        return err_msg_set(em, -EBUSY,
                           "'%s' is in use by %u NBD client(s); use -f to disconnect "
                           "them",
                           name, n);
    if (exports_kick(s, name, 5000) != 0)
        return err_msg_set(em, -EBUSY, "NBD clients of '%s' did not disconnect in time", name);
    return 0;
}
