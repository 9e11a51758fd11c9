/* SPDX-License-Identifier: MIT */
/*
 * admin_verbs: the admin API's verbs — one JSON request in, one JSON result (or an error with
 * errno and message) out — mapped onto the pool and dataset layers. Runs on a worker thread
 * (verbs block until their txg is durable). The wire format is in admin.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"
#include "core/dsl.h"
#include "core/pool.h"
#include "server/admin.h"
#include "server/srv.h"

/* ---- argument helpers ------------------------------------------------------------------------ */

static const char *
arg_str(json_t *args, const char *key)
{
    json_t *v = json_object_get(args, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool
arg_bool(json_t *args, const char *key)
{
    json_t *v = json_object_get(args, key);
    return json_is_true(v);
}

static int
need_str(json_t *args, const char *key, const char **out, struct err_msg *em)
{
    *out = arg_str(args, key);
    if (*out == NULL || **out == 0)
        return err_msg_set(em, -EINVAL, "missing argument '%s'", key);
    return 0;
}

/* {"k": "v", ...} -> props array (strings borrowed from the JSON). Caller frees *out. */
static int
arg_props(json_t *args, struct dsl_prop_set **out, size_t *n, struct err_msg *em)
{
    json_t *obj = json_object_get(args, "props");
    *out = NULL;
    *n = 0;
    if (obj == NULL || json_is_null(obj))
        return 0;
    if (!json_is_object(obj))
        return err_msg_set(em, -EINVAL, "'props' must be an object of name: value");
    size_t cnt = json_object_size(obj);
    struct dsl_prop_set *ps = calloc(cnt ? cnt : 1, sizeof(*ps));
    if (ps == NULL)
        return -ENOMEM;
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        if (!json_is_string(val)) {
            free(ps);
            return err_msg_set(em, -EINVAL, "property '%s': value must be a string", key);
        }
        ps[*n].name = key;
        ps[*n].value = json_string_value(val);
        (*n)++;
    }
    *out = ps;
    return 0;
}

/* Pins the pool of dataset `name` for the verb; errors say which pool is missing. */
#define WITH_POOL(s, name, sp, em)                         \
    struct srv_pool *sp = srv_pool_pin((s), (name), (em)); \
    if (sp == NULL)                                        \
        return -ENOENT;

/* ---- datasets -------------------------------------------------------------------------------- */

static const char *
kind_name(enum dsl_kind k)
{
    switch (k) {
    case DSL_KIND_FS:
        return "filesystem";
    case DSL_KIND_VOL:
        return "volume";
    case DSL_KIND_SNAP:
        return "snapshot";
    default:
        return "bookmark";
    }
}

static json_t *
info_json(const struct dsl_info *in)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(in->name));
    json_object_set_new(o, "type", json_string(kind_name(in->kind)));
    json_object_set_new(o, "guid", json_integer((json_int_t)in->guid));
    json_object_set_new(o, "createtxg", json_integer((json_int_t)in->create_txg));
    json_object_set_new(o, "creation", json_integer((json_int_t)in->create_time));
    json_object_set_new(o, "used", json_integer((json_int_t)in->used));
    json_object_set_new(o, "available", json_integer((json_int_t)in->available));
    json_object_set_new(o, "referenced", json_integer((json_int_t)in->referenced));
    json_object_set_new(o, "written", json_integer((json_int_t)in->written));
    json_object_set_new(o, "usedbydataset", json_integer((json_int_t)in->usedbydataset));
    json_object_set_new(o, "usedbysnapshots", json_integer((json_int_t)in->usedbysnapshots));
    json_object_set_new(o, "usedbychildren", json_integer((json_int_t)in->usedbychildren));
    json_object_set_new(o, "usedbyrefreservation",
                        json_integer((json_int_t)in->usedbyrefreservation));
    json_object_set_new(o, "logicalused", json_integer((json_int_t)in->logicalused));
    json_object_set_new(o, "logicalreferenced", json_integer((json_int_t)in->logicalreferenced));
    json_object_set_new(o, "compressratio", json_integer((json_int_t)in->compressratio));
    if (in->kind == DSL_KIND_VOL) {
        json_object_set_new(o, "volsize", json_integer((json_int_t)in->volsize));
        json_object_set_new(o, "volblocksize", json_integer((json_int_t)in->volblocksize));
    }
    if (in->origin[0] != 0)
        json_object_set_new(o, "origin", json_string(in->origin));
    if (in->kind == DSL_KIND_SNAP) {
        json_object_set_new(o, "userrefs", json_integer((json_int_t)in->userrefs));
        json_object_set_new(o, "clones", json_integer((json_int_t)in->num_clones));
    }
    return o;
}

static int
list_cb(void *arg, const struct dsl_info *in)
{
    return json_array_append_new(arg, info_json(in)) == 0 ? 0 : -ENOMEM;
}

static unsigned
list_types(json_t *args, struct err_msg *em, int *rc)
{
    json_t *t = json_object_get(args, "types");
    unsigned mask = 0;
    size_t i;
    json_t *v;
    *rc = 0;
    if (t == NULL)
        return 0;
    json_array_foreach(t, i, v)
    {
        const char *s = json_string_value(v);
        if (s == NULL)
            continue;
        if (strcmp(s, "filesystem") == 0)
            mask |= DSL_LIST_FS;
        else if (strcmp(s, "volume") == 0)
            mask |= DSL_LIST_VOL;
        else if (strcmp(s, "snapshot") == 0 || strcmp(s, "snap") == 0)
            mask |= DSL_LIST_SNAP;
        else if (strcmp(s, "bookmark") == 0)
            mask |= DSL_LIST_BOOKMARK;
        else if (strcmp(s, "all") == 0)
            mask |= DSL_LIST_ALL_TYPES;
        else
            *rc = err_msg_set(em, -EINVAL,
                              "unknown type '%s' (filesystem, volume, snapshot, "
                              "bookmark, all)",
                              s);
    }
    return mask;
}

static int
verb_list(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    const char *name = arg_str(args, "name");
    int rc;
    unsigned flags = list_types(args, em, &rc);
    if (rc != 0)
        return rc;
    if (arg_bool(args, "recursive"))
        flags |= DSL_LIST_RECURSIVE;
    json_t *arr = json_array();
    if (name != NULL) {
        struct srv_pool *sp = srv_pool_pin(s, name, em);
        if (sp == NULL) {
            json_decref(arr);
            return -ENOENT;
        }
        rc = dsl_list(sp->pool, name, flags, list_cb, arr, em);
        srv_pool_unpin(s, sp);
    } else {
        /* Every pool, recursively. */
        pthread_mutex_lock(&s->pools_lock);
        size_t n = s->npools;
        char names[SRV_MAX_POOLS][POOL_NAME_MAX + 1];
        for (size_t i = 0; i < n; i++)
            snprintf(names[i], sizeof(names[i]), "%s", s->pools[i]->name);
        pthread_mutex_unlock(&s->pools_lock);
        for (size_t i = 0; i < n && rc == 0; i++) {
            struct srv_pool *sp = srv_pool_pin(s, names[i], em);
            if (sp == NULL)
                continue; /* exported meanwhile */
            rc = dsl_list(sp->pool, names[i], flags | DSL_LIST_RECURSIVE, list_cb, arr, em);
            srv_pool_unpin(s, sp);
        }
    }
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    *result = arr;
    return 0;
}

static int
verb_create(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    const char *name;
    int rc = need_str(args, "name", &name, em);
    struct dsl_prop_set *props = NULL;
    size_t n = 0;
    if (rc == 0)
        rc = arg_props(args, &props, &n, em);
    if (rc != 0)
        return rc;
    unsigned flags = (arg_bool(args, "parents") ? DSL_CREATE_PARENTS : 0) |
                     (arg_bool(args, "sparse") ? DSL_CREATE_SPARSE : 0);
    enum dsl_kind kind = arg_bool(args, "volume") ? DSL_KIND_VOL : DSL_KIND_FS;
    struct srv_pool *sp = srv_pool_pin(s, name, em);
    if (sp == NULL) {
        free(props);
        return -ENOENT;
    }
    rc = dsl_create(sp->pool, name, kind, props, n, flags, em);
    srv_pool_unpin(s, sp);
    free(props);
    *result = json_null();
    return rc;
}

static int
verb_destroy(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    const char *name;
    int rc = need_str(args, "name", &name, em);
    if (rc != 0)
        return rc;
    unsigned flags = (arg_bool(args, "recursive") ? DSL_DESTROY_RECURSIVE : 0) |
                     (arg_bool(args, "clones") ? DSL_DESTROY_CLONES | DSL_DESTROY_RECURSIVE : 0);
    rc = admin_export_guard(s, name, arg_bool(args, "force"), em);
    if (rc != 0)
        return rc;
    WITH_POOL(s, name, sp, em);
    rc = dsl_destroy(sp->pool, name, flags, em);
    srv_pool_unpin(s, sp);
    *result = json_null();
    return rc;
}

static int
verb_snapshot(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    json_t *names = json_object_get(args, "names");
    if (!json_is_array(names) || json_array_size(names) == 0)
        return err_msg_set(em, -EINVAL, "missing argument 'names' (an array of ds@snap)");
    size_t n = json_array_size(names);
    const char **v = calloc(n, sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        v[i] = json_string_value(json_array_get(names, i));
        if (v[i] == NULL)
            rc = err_msg_set(em, -EINVAL, "snapshot names must be strings");
    }
    /* All names must be in one pool: one txg. */
    struct srv_pool *sp = rc == 0 ? srv_pool_pin(s, v[0], em) : NULL;
    if (rc == 0 && sp == NULL)
        rc = -ENOENT;
    for (size_t i = 1; rc == 0 && i < n; i++) {
        size_t pl = strlen(sp->name);
        if (strncmp(v[i], sp->name, pl) != 0 || (v[i][pl] != '/' && v[i][pl] != '@'))
            rc = err_msg_set(em, -EXDEV,
                             "'%s' is not in pool '%s': one snapshot request "
                             "covers one pool",
                             v[i], sp->name);
    }
    if (rc == 0)
        rc = dsl_snapshot(sp->pool, v, n, em);
    if (sp != NULL)
        srv_pool_unpin(s, sp);
    free(v);
    *result = json_null();
    return rc;
}

static int
verb_clone(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    const char *snap, *name;
    int rc = need_str(args, "snapshot", &snap, em);
    if (rc == 0)
        rc = need_str(args, "name", &name, em);
    struct dsl_prop_set *props = NULL;
    size_t n = 0;
    if (rc == 0)
        rc = arg_props(args, &props, &n, em);
    if (rc != 0)
        return rc;
    struct srv_pool *sp = srv_pool_pin(s, snap, em);
    if (sp != NULL) {
        rc = dsl_clone(sp->pool, snap, name, props, n, em);
        srv_pool_unpin(s, sp);
    } else {
        rc = -ENOENT;
    }
    free(props);
    *result = json_null();
    return rc;
}

static int
verb_rollback(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    const char *snap;
    int rc = need_str(args, "snapshot", &snap, em);
    if (rc != 0)
        return rc;
    WITH_POOL(s, snap, sp, em);
    rc = dsl_rollback(sp->pool, snap, arg_bool(args, "recursive"), em);
    srv_pool_unpin(s, sp);
    *result = json_null();
    return rc;
}

static int
verb_promote(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    const char *name;
    int rc = need_str(args, "name", &name, em);
    if (rc != 0)
        return rc;
    WITH_POOL(s, name, sp, em);
    rc = dsl_promote(sp->pool, name, em);
    srv_pool_unpin(s, sp);
    *result = json_null();
    return rc;
}

static int
verb_rename(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    const char *from, *to;
    int rc = need_str(args, "from", &from, em);
    if (rc == 0)
        rc = need_str(args, "to", &to, em);
    if (rc == 0)
        rc = admin_export_guard(s, from, arg_bool(args, "force"), em);
    if (rc != 0)
        return rc;
    WITH_POOL(s, from, sp, em);
    rc = dsl_rename(sp->pool, from, to, em);
    srv_pool_unpin(s, sp);
    *result = json_null();
    return rc;
}

static int
verb_hold(struct srv *s, json_t *args, json_t **result, struct err_msg *em, bool release)
{
    const char *snap, *tag;
    int rc = need_str(args, "snapshot", &snap, em);
    if (rc == 0)
        rc = need_str(args, "tag", &tag, em);
    if (rc != 0)
        return rc;
    WITH_POOL(s, snap, sp, em);
    rc = release ? dsl_release(sp->pool, snap, tag, em) : dsl_hold(sp->pool, snap, tag, em);
    srv_pool_unpin(s, sp);
    *result = json_null();
    return rc;
}

static int
holds_cb(void *arg, const char *tag, uint64_t time)
{
    json_t *o = json_object();
    json_object_set_new(o, "tag", json_string(tag));
    json_object_set_new(o, "time", json_integer((json_int_t)time));
    return json_array_append_new(arg, o) == 0 ? 0 : -ENOMEM;
}

static int
verb_holds(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    const char *snap;
    int rc = need_str(args, "snapshot", &snap, em);
    if (rc != 0)
        return rc;
    WITH_POOL(s, snap, sp, em);
    json_t *arr = json_array();
    rc = dsl_holds(sp->pool, snap, holds_cb, arr, em);
    srv_pool_unpin(s, sp);
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    *result = arr;
    return 0;
}

static int
verb_bookmark(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    const char *src, *name;
    int rc = need_str(args, "source", &src, em);
    if (rc == 0)
        rc = need_str(args, "name", &name, em);
    if (rc != 0)
        return rc;
    WITH_POOL(s, src, sp, em);
    rc = dsl_bookmark(sp->pool, src, name, em);
    srv_pool_unpin(s, sp);
    *result = json_null();
    return rc;
}

/* ---- properties ------------------------------------------------------------------------------ */

static json_t *
prop_json(const char *ds, const struct dsl_prop_out *o)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(ds));
    json_object_set_new(j, "property", json_string(o->name));
    json_object_set_new(j, "value", json_string(o->value));
    json_object_set_new(j, "source", json_string(o->source));
    return j;
}

struct get_all_ctx {
    json_t *arr;
    const char *ds;
};

static int
get_all_cb(void *arg, const struct dsl_prop_out *o)
{
    struct get_all_ctx *c = arg;
    return json_array_append_new(c->arr, prop_json(c->ds, o)) == 0 ? 0 : -ENOMEM;
}

static int
verb_get(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    const char *name;
    int rc = need_str(args, "name", &name, em);
    if (rc != 0)
        return rc;
    json_t *props = json_object_get(args, "props");
    bool parsable = arg_bool(args, "parsable");
    WITH_POOL(s, name, sp, em);
    json_t *arr = json_array();
    size_t i;
    json_t *v;
    bool all = !json_is_array(props) || json_array_size(props) == 0;
    json_array_foreach(props, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), "all") == 0)
            all = true;
    }
    if (all) {
        struct get_all_ctx c = { arr, name };
        rc = dsl_get_all(sp->pool, name, parsable, get_all_cb, &c, em);
    } else {
        json_array_foreach(props, i, v)
        {
            const char *prop = json_string_value(v);
            struct dsl_prop_out *o = malloc(sizeof(*o));
            if (o == NULL || prop == NULL) {
                free(o);
                rc = prop ? -ENOMEM : err_msg_set(em, -EINVAL, "property names are strings");
                break;
            }
            rc = dsl_get(sp->pool, name, prop, parsable, o, em);
            if (rc == -ENOENT && strstr(em->text, "not set") != NULL) {
                /* An unset user property shows as "-", like zfs get. */
                memset(o, 0, sizeof(*o));
                snprintf(o->name, sizeof(o->name), "%s", prop);
                snprintf(o->value, sizeof(o->value), "-");
                snprintf(o->source, sizeof(o->source), "-");
                rc = 0;
            }
            if (rc == 0)
                json_array_append_new(arr, prop_json(name, o));
            free(o);
            if (rc != 0)
                break;
        }
    }
    srv_pool_unpin(s, sp);
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    *result = arr;
    return 0;
}

static int
verb_set(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    const char *name;
    int rc = need_str(args, "name", &name, em);
    struct dsl_prop_set *props = NULL;
    size_t n = 0;
    if (rc == 0)
        rc = arg_props(args, &props, &n, em);
    if (rc == 0 && n == 0)
        rc = err_msg_set(em, -EINVAL, "nothing to set");
    if (rc != 0) {
        free(props);
        return rc;
    }
    struct srv_pool *sp = srv_pool_pin(s, name, em);
    if (sp != NULL) {
        rc = dsl_set(sp->pool, name, props, n, em);
        srv_pool_unpin(s, sp);
    } else {
        rc = -ENOENT;
    }
    free(props);
    *result = json_null();
    return rc;
}

static int
verb_inherit(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    const char *name, *prop;
    int rc = need_str(args, "name", &name, em);
    if (rc == 0)
        rc = need_str(args, "prop", &prop, em);
    if (rc != 0)
        return rc;
    WITH_POOL(s, name, sp, em);
    rc = dsl_inherit(sp->pool, name, prop, arg_bool(args, "received"), em);
    srv_pool_unpin(s, sp);
    *result = json_null();
    return rc;
}

/* ---- dispatch -------------------------------------------------------------------------------- */

struct verb {
    const char *name;
    int (*fn)(struct srv *s, json_t *args, json_t **result, struct err_msg *em);
};

static int
verb_hold_add(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    return verb_hold(s, args, result, em, false);
}

static int
verb_hold_release(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    return verb_hold(s, args, result, em, true);
}

static const struct verb verbs[] = {
    { "list", verb_list },
    { "create", verb_create },
    { "destroy", verb_destroy },
    { "snapshot", verb_snapshot },
    { "clone", verb_clone },
    { "rollback", verb_rollback },
    { "promote", verb_promote },
    { "rename", verb_rename },
    { "hold", verb_hold_add },
    { "release", verb_hold_release },
    { "holds", verb_holds },
    { "bookmark", verb_bookmark },
    { "get", verb_get },
    { "set", verb_set },
    { "inherit", verb_inherit },
    { "pool.list", admin_pool_list },
    { "pool.status", admin_pool_status },
    { "pool.create", admin_pool_create },
    { "pool.import", admin_pool_import },
    { "pool.export", admin_pool_export },
    { "pool.add", admin_pool_add },
    { "pool.scrub", admin_pool_scrub },
    { "pool.offline", admin_pool_offline },
    { "pool.online", admin_pool_online },
    { "pool.replace", admin_pool_replace },
    { "pool.clear", admin_pool_clear },
    { "pool.attach", admin_pool_attach },
    { "pool.detach", admin_pool_detach },
    { "exports", admin_exports_list },
};

int
admin_dispatch(struct srv *s, json_t *req, json_t **result, struct err_msg *em)
{
    const char *verb = json_string_value(json_object_get(req, "verb"));
    json_t *args = json_object_get(req, "args");
    if (verb == NULL)
        return err_msg_set(em, -EINVAL, "request has no 'verb'");
    if (args == NULL)
        args = json_object(); /* leaked into req below so it is freed with it */
    if (json_object_get(req, "args") == NULL)
        json_object_set_new(req, "args", args);
    if (!json_is_object(args))
        return err_msg_set(em, -EINVAL, "'args' must be an object");
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strcmp(verbs[i].name, verb) == 0) {
            *result = NULL;
            int rc = verbs[i].fn(s, args, result, em);
            if (rc != 0 && em->text[0] == 0)
                err_msg_set(em, rc, "%s", err_str(rc));
            return rc;
        }
    return err_msg_set(em, -ENOSYS, "unknown verb '%s'", verb);
}
