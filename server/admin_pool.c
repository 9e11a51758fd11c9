/* SPDX-License-Identifier: MIT */
/*
 * admin_pool: the pool verbs of the admin API — list, status, create, import, export, add.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/dsl.h"
#include "core/pool.h"
#include "server/admin.h"
#include "server/srv.h"

static json_t *
jnum(uint64_t v)
{
    return json_integer((json_int_t)v);
}

static const char *
health(const struct pool_stats *st)
{
    if (st->suspended)
        return "SUSPENDED";
    return "ONLINE";
}

static json_t *
pool_json(struct srv_pool *sp, bool with_vdevs)
{
    struct pool_stats st;
    pool_get_stats(sp->pool, &st);
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(sp->name));
    json_object_set_new(o, "guid", jnum(st.guid));
    json_object_set_new(o, "state", json_string(health(&st)));
    json_object_set_new(o, "size", jnum(st.size));
    json_object_set_new(o, "allocated", jnum(st.allocated));
    json_object_set_new(o, "free", jnum(st.free));
    json_object_set_new(o, "freeing", jnum(st.deferred));
    json_object_set_new(o, "fragmentation", jnum(st.fragmentation));
    json_object_set_new(o, "readonly", json_boolean(st.readonly));
    json_object_set_new(o, "txg", jnum(st.synced_txg));
    json_object_set_new(o, "read_errors", jnum(st.read_errors));
    json_object_set_new(o, "write_errors", jnum(st.write_errors));
    json_object_set_new(o, "checksum_errors", jnum(st.cksum_errors));
    if (!with_vdevs)
        return o;
    json_t *vdevs = json_array();
    for (uint32_t i = 0;; i++) {
        struct pool_vdev_stats vs;
        if (pool_get_vdev(sp->pool, i, &vs) != 0)
            break;
        json_t *v = json_object();
        json_object_set_new(v, "name", json_string(vs.path));
        json_object_set_new(v, "type", json_string("disk"));
        json_object_set_new(v, "state", json_string(st.suspended ? "FAULTED" : "ONLINE"));
        json_object_set_new(v, "guid", jnum(vs.guid));
        json_object_set_new(v, "size", jnum(vs.size));
        json_object_set_new(v, "allocated", jnum(vs.allocated));
        json_object_set_new(v, "read_errors", jnum(vs.read_errors));
        json_object_set_new(v, "write_errors", jnum(vs.write_errors));
        json_object_set_new(v, "checksum_errors", jnum(vs.cksum_errors));
        json_array_append_new(vdevs, v);
    }
    json_object_set_new(o, "vdevs", vdevs);
    return o;
}

struct err_ctx {
    struct pool *p;
    json_t *arr;
};

/* One permanent error: where it is (dataset name when known, object, level, block). */
static void
add_error(void *arg, const struct pool_error_info *e)
{
    struct err_ctx *c = arg;
    char ds[DSL_NAME_MAX + 1];
    json_t *o = json_object();
    if (e->ds_obj == 0)
        snprintf(ds, sizeof(ds), "<metadata>");
    else if (dsl_name_of_record(c->p, e->ds_obj, ds, sizeof(ds)) != 0)
        snprintf(ds, sizeof(ds), "<dataset record %llu>", (unsigned long long)e->ds_obj);
    json_object_set_new(o, "dataset", json_string(ds));
    json_object_set_new(o, "object", jnum(e->obj));
    json_object_set_new(o, "level", json_integer(e->level));
    json_object_set_new(o, "block", jnum(e->blkid));
    json_object_set_new(o, "error", json_string(err_str(e->err)));
    json_array_append_new(c->arr, o);
}

/* The pools named by args.name (one) or all of them, pinned; caller unpins. */
static int
pin_pools(struct srv *s, json_t *args, struct srv_pool **out, size_t *n, struct err_msg *em)
{
    const char *name = json_string_value(json_object_get(args, "name"));
    *n = 0;
    if (name != NULL) {
        out[0] = srv_pool_pin(s, name, em);
        if (out[0] == NULL)
            return -ENOENT;
        *n = 1;
        return 0;
    }
    pthread_mutex_lock(&s->pools_lock);
    for (size_t i = 0; i < s->npools; i++) {
        s->pools[i]->users++;
        out[(*n)++] = s->pools[i];
    }
    pthread_mutex_unlock(&s->pools_lock);
    return 0;
}

static int
pool_report(struct srv *s, json_t *args, json_t **result, struct err_msg *em, bool status)
{
    struct srv_pool *sps[SRV_MAX_POOLS];
    size_t n;
    int rc = pin_pools(s, args, sps, &n, em);
    if (rc != 0)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = pool_json(sps[i], status);
        if (status) {
            struct err_ctx c = { sps[i]->pool, json_array() };
            uint64_t total = pool_get_errors(sps[i]->pool, add_error, &c);
            json_object_set_new(o, "data_errors", jnum(total));
            json_object_set_new(o, "errors", c.arr);
        }
        json_array_append_new(arr, o);
        srv_pool_unpin(s, sps[i]);
    }
    *result = arr;
    return 0;
}

int
admin_pool_list(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    return pool_report(s, args, result, em, false);
}

int
admin_pool_status(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    return pool_report(s, args, result, em, true);
}

/* args.vdevs: array of paths -> borrowed strings. */
static int
vdev_args(json_t *args, const char ***out, size_t *n, struct err_msg *em)
{
    json_t *v = json_object_get(args, "vdevs");
    if (!json_is_array(v) || json_array_size(v) == 0)
        return err_msg_set(em, -EINVAL, "missing argument 'vdevs' (device or file paths)");
    *n = json_array_size(v);
    *out = calloc(*n, sizeof(char *));
    if (*out == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < *n; i++) {
        (*out)[i] = json_string_value(json_array_get(v, i));
        if ((*out)[i] == NULL || (*out)[i][0] != '/') {
            free(*out);
            return err_msg_set(em, -EINVAL, "vdev paths must be absolute");
        }
    }
    return 0;
}

int
admin_pool_create(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    const char *name = json_string_value(json_object_get(args, "name"));
    if (name == NULL)
        return err_msg_set(em, -EINVAL, "missing argument 'name'");
    const char **paths;
    size_t n;
    int rc = vdev_args(args, &paths, &n, em);
    if (rc != 0)
        return rc;
    struct pool_opts po = { 0 };
    json_t *size = json_object_get(args, "size");
    if (json_is_integer(size) && json_integer_value(size) > 0) {
        po.create_files = true;
        po.create_size = (uint64_t)json_integer_value(size);
    }
    struct pool *p = NULL;
    rc = pool_create(name, paths, n, &po, &p, em);
    if (rc == 0 && (rc = srv_pool_add(s, p, paths, n)) != 0) {
        err_msg_set(em, rc, "pool '%s' was created but cannot be served: %s", name, err_str(rc));
        pool_export(p);
    }
    free(paths);
    *result = json_null();
    return rc;
}

int
admin_pool_import(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    const char **paths;
    size_t n;
    int rc = vdev_args(args, &paths, &n, em);
    if (rc != 0)
        return rc;
    struct pool_import_opts io = { .readonly = json_is_true(json_object_get(args, "readonly")) };
    struct pool *p = NULL;
    rc = pool_import(paths, n, &io, &p, em);
    if (rc == 0 && (rc = srv_pool_add(s, p, paths, n)) != 0) {
        err_msg_set(em, rc, "a pool named '%s' is already imported", pool_name(p));
        pool_close(p);
    }
    if (rc == 0)
        *result = json_string(pool_name(p));
    free(paths);
    return rc;
}

int
admin_pool_export(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    const char *name = json_string_value(json_object_get(args, "name"));
    if (name == NULL)
        return err_msg_set(em, -EINVAL, "missing argument 'name'");
    int rc = admin_export_guard(s, name, json_is_true(json_object_get(args, "force")), em);
    if (rc == 0)
        rc = srv_pool_remove(s, name, 0, em);
    *result = json_null();
    return rc;
}

int
admin_pool_add(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    const char *name = json_string_value(json_object_get(args, "name"));
    const char **paths;
    size_t n;
    if (name == NULL)
        return err_msg_set(em, -EINVAL, "missing argument 'name'");
    int rc = vdev_args(args, &paths, &n, em);
    if (rc != 0)
        return rc;
    struct srv_pool *sp = srv_pool_pin(s, name, em);
    if (sp == NULL) {
        free(paths);
        return -ENOENT;
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = pool_add_vdev(sp->pool, paths[i], em);
    srv_pool_unpin(s, sp);
    free(paths);
    *result = json_null();
    return rc;
}
