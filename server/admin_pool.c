/* SPDX-License-Identifier: MIT */
/*
 * admin_pool: the pool verbs of the admin API — list, status, create, import, export, add, and
 * the redundancy verbs scrub, offline, online, replace, clear. Scrubs and resilvers run on the
 * pool's scan thread (srv.h); the verbs that start one return at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/dsl.h"
#include "core/pool.h"
#include "core/vdev.h"
#include "server/admin.h"
#include "server/srv.h"

static json_t *
jnum(uint64_t v)
{
    return json_integer((json_int_t)v);
}

/* guids as decimal strings, as zpool status -j has them: they use all 64 bits. */
static json_t *
jguid(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    return json_string(buf);
}

static const char *
pool_state(const struct pool_stats *st)
{
    if (st->suspended)
        return "SUSPENDED";
    return vdev_health_name((enum vdev_health)st->health);
}

static const char *
vdev_type_name(uint8_t type)
{
    switch (type) {
    case VDEV_TYPE_MIRROR:
        return "mirror";
    case VDEV_TYPE_RAIDZ:
        return "raidz";
    default:
        return "disk";
    }
}

/* One vdev of the tree; allocated is given by the caller (the core counts it per top-level). */
static json_t *
vdev_json(const struct pool_vdev_stats *vs, uint64_t allocated, bool suspended)
{
    json_t *v = json_object();
    json_object_set_new(v, "name", json_string(vs->path));
    json_object_set_new(v, "type", json_string(vdev_type_name(vs->type)));
    json_object_set_new(v, "nparity", json_integer(vs->nparity));
    json_object_set_new(v, "state",
                        json_string(suspended && vs->health == VDEV_ONLINE
                                        ? "FAULTED"
                                        : vdev_health_name((enum vdev_health)vs->health)));
    json_object_set_new(v, "guid", jguid(vs->guid));
    json_object_set_new(v, "size", jnum(vs->size));
    json_object_set_new(v, "allocated", jnum(allocated));
    json_object_set_new(v, "read_errors", jnum(vs->read_errors));
    json_object_set_new(v, "write_errors", jnum(vs->write_errors));
    json_object_set_new(v, "checksum_errors", jnum(vs->cksum_errors));
    json_object_set_new(v, "repaired", jnum(vs->repaired_bytes));
    return v;
}

/* The top-level vdevs, each with its children (mirror, raidz). */
static json_t *
vdevs_json(struct pool *p, bool suspended)
{
    json_t *vdevs = json_array();
    for (uint32_t i = 0;; i++) {
        struct pool_vdev_stats vs;
        if (pool_get_vdev(p, i, &vs) != 0)
            break;
        json_t *v = vdev_json(&vs, vs.allocated, suspended);
        if (vs.type == VDEV_TYPE_MIRROR || vs.type == VDEV_TYPE_RAIDZ) {
            json_t *children = json_array();
            /* A leaf's share of its top-level's allocation: all of it on a mirror, about
             * 1/n of it on a raidz (every stripe spreads over the children). */
            uint64_t share = vs.type == VDEV_TYPE_MIRROR || vs.nchildren == 0
                                 ? vs.allocated
                                 : vs.allocated / vs.nchildren;
            for (uint32_t c = 0;; c++) {
                struct pool_vdev_stats cs;
                if (pool_get_vdev_child(p, i, c, &cs) != 0)
                    break;
                json_array_append_new(children, vdev_json(&cs, share, suspended));
            }
            json_object_set_new(v, "children", children);
        }
        json_array_append_new(vdevs, v);
    }
    return vdevs;
}

static const char *
scan_state_name(int state)
{
    switch (state) {
    case POOL_SCAN_RUNNING:
        return "scanning";
    case POOL_SCAN_FINISHED:
        return "finished";
    case POOL_SCAN_CANCELED:
        return "canceled";
    case POOL_SCAN_FAILED:
        return "failed";
    default:
        return "none";
    }
}

/*
 * The running or last scan. A scan the pool's thread has queued but not begun shows as scanning
 * from now, so a client polling for the end never sees the previous scan's "finished".
 */
static json_t *
scan_json(struct srv_pool *sp, const struct pool_stats *st)
{
    struct pool_scan_stats sc;
    pool_get_scan(sp->pool, &sc);
    int queued;
    uint64_t now = (uint64_t)time(NULL);
    if (srv_pool_scan_busy(sp, &queued) && sc.state != POOL_SCAN_RUNNING) {
        memset(&sc, 0, sizeof(sc));
        sc.state = POOL_SCAN_RUNNING;
        sc.kind = queued;
        sc.start_time = now;
        sc.to_examine = st->allocated;
    }
    json_t *o = json_object();
    json_object_set_new(o, "function",
                        json_string(sc.state == POOL_SCAN_NONE      ? "none"
                                    : sc.kind == POOL_SCAN_RESILVER ? "resilver"
                                                                    : "scrub"));
    json_object_set_new(o, "state", json_string(scan_state_name(sc.state)));
    json_object_set_new(o, "start_time", jnum(sc.start_time));
    json_object_set_new(o, "end_time", jnum(sc.end_time));
    json_object_set_new(o, "to_examine", jnum(sc.to_examine));
    json_object_set_new(o, "examined", jnum(sc.examined));
    json_object_set_new(o, "blocks", jnum(sc.blocks));
    json_object_set_new(o, "repaired", jnum(sc.repaired_bytes));
    json_object_set_new(o, "errors", jnum(sc.errors));
    if (sc.state == POOL_SCAN_RUNNING) {
        uint64_t elapsed = now > sc.start_time ? now - sc.start_time : 0;
        uint64_t rate = sc.examined / (elapsed > 0 ? elapsed : 1);
        uint64_t left = sc.to_examine > sc.examined ? sc.to_examine - sc.examined : 0;
        json_object_set_new(o, "rate", jnum(rate));
        json_object_set_new(o, "eta", jnum(rate > 0 ? left / rate : 0));
    }
    return o;
}

static json_t *
pool_json(struct srv_pool *sp, bool with_vdevs)
{
    struct pool_stats st;
    pool_get_stats(sp->pool, &st);
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(sp->name));
    json_object_set_new(o, "guid", jguid(st.guid));
    json_object_set_new(o, "state", json_string(pool_state(&st)));
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
    json_object_set_new(o, "vdevs", vdevs_json(sp->pool, st.suspended));
    json_object_set_new(o, "scan", scan_json(sp, &st));
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

/* args.vdevs: a layout in zpool's words (absolute paths and keywords) -> borrowed strings. */
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
        const char *w = (*out)[i];
        if (w == NULL || (w[0] != '/' && !pool_layout_is_keyword(w))) {
            free(*out);
            return err_msg_set(em, -EINVAL,
                               "vdevs must be absolute paths or layout keywords "
                               "(mirror, raidz, raidz1, raidz2, raidz3)%s%s%s",
                               w ? ": '" : "", w ? w : "", w ? "'" : "");
        }
    }
    return 0;
}

/* The optional "direct-io" argument: a [pool] direct-io value, default writes. */
static int
direct_io_arg(json_t *args, enum vdev_direct *out, struct err_msg *em)
{
    json_t *v = json_object_get(args, "direct-io");
    enum config_direct_io d = CONFIG_DIRECT_IO_WRITES;
    if (v != NULL && config_parse_direct_io(json_string_value(v), &d) != 0)
        return err_msg_set(em, -EINVAL, "direct-io must be writes, off or on");
    *out = srv_vdev_direct(d);
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
    struct pool_opts po = { 0 };
    int rc = direct_io_arg(args, &po.direct_io, em);
    if (rc != 0)
        return rc;
    rc = vdev_args(args, &paths, &n, em);
    if (rc != 0)
        return rc;
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
    struct pool_import_opts io = { .readonly = json_is_true(json_object_get(args, "readonly")) };
    int rc = direct_io_arg(args, &io.tuning.direct_io, em);
    if (rc != 0)
        return rc;
    rc = vdev_args(args, &paths, &n, em);
    if (rc != 0)
        return rc;
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
    rc = pool_add(sp->pool, paths, n, em); /* a layout: "d", "mirror c d", ... */
    srv_pool_unpin(s, sp);
    free(paths);
    *result = json_null();
    return rc;
}

/* ---- redundancy: scrub, offline, online, replace, clear -------------------------------------- */

/* args.name -> the pinned pool; args.<key> -> a device (absolute path or decimal guid). */
static struct srv_pool *
pin_pool_dev(struct srv *s, json_t *args, const char *key, const char **dev, struct err_msg *em,
             int *rc)
{
    const char *name = json_string_value(json_object_get(args, "name"));
    *rc = 0;
    if (name == NULL || name[0] == 0) {
        *rc = err_msg_set(em, -EINVAL, "missing argument 'name'");
        return NULL;
    }
    if (key != NULL) {
        *dev = json_string_value(json_object_get(args, key));
        if (*dev == NULL || (*dev)[0] == 0) {
            *rc = err_msg_set(em, -EINVAL, "missing argument '%s' (a device path or guid)", key);
            return NULL;
        }
    }
    struct srv_pool *sp = srv_pool_pin(s, name, em);
    if (sp == NULL)
        *rc = -ENOENT;
    return sp;
}

int
admin_pool_scrub(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    int rc;
    struct srv_pool *sp = pin_pool_dev(s, args, NULL, NULL, em, &rc);
    if (sp == NULL)
        return rc;
    if (json_is_true(json_object_get(args, "stop")))
        rc = srv_pool_scan_cancel(sp, em);
    else if (json_is_true(json_object_get(args, "pause")))
        rc = srv_pool_scan_pause(sp, em);
    else
        rc = srv_pool_scan(sp, POOL_SCAN_SCRUB, em);
    srv_pool_unpin(s, sp);
    *result = json_null();
    return rc;
}

/* After a device came back or was replaced: resilver it in the background. */
static int
start_resilver(struct srv_pool *sp, const char *what, json_t **result, struct err_msg *em)
{
    int rc = srv_pool_scan(sp, POOL_SCAN_RESILVER, em);
    if (rc != 0) {
        char why[sizeof(em->text)];
        snprintf(why, sizeof(why), "%s", em->text);
        err_msg_set(em, rc, "%s, but its resilver could not start: %s", what, why);
    }
    json_t *o = json_object();
    json_object_set_new(o, "resilver", json_boolean(rc == 0));
    *result = o;
    return rc;
}

/* offline, online, detach: one change to args.device; then a resilver when `resilver` says why. */
static int
device_verb(struct srv *s, json_t *args, json_t **result, struct err_msg *em,
            int (*change)(struct pool *, const char *, struct err_msg *), const char *resilver)
{
    const char *dev;
    int rc;
    struct srv_pool *sp = pin_pool_dev(s, args, "device", &dev, em, &rc);
    if (sp == NULL)
        return rc;
    rc = change(sp->pool, dev, em);
    if (rc == 0 && resilver != NULL)
        rc = start_resilver(sp, resilver, result, em);
    else
        *result = json_null();
    srv_pool_unpin(s, sp);
    return rc;
}

int
admin_pool_offline(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    return device_verb(s, args, result, em, pool_vdev_offline, NULL);
}

int
admin_pool_online(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    return device_verb(s, args, result, em, pool_vdev_online, "the device is online");
}

int
admin_pool_detach(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    return device_verb(s, args, result, em, pool_vdev_detach, NULL);
}

/* replace and attach: a device joins (args.new) next to args.device; a resilver fills it. */
static int
new_device_verb(struct srv *s, json_t *args, json_t **result, struct err_msg *em,
                int (*change)(struct pool *, const char *, const char *, struct err_msg *),
                const char *why)
{
    const char *dev, *nw = json_string_value(json_object_get(args, "new"));
    if (nw == NULL || nw[0] != '/')
        return err_msg_set(em, -EINVAL, "argument 'new' must be an absolute path");
    int rc;
    struct srv_pool *sp = pin_pool_dev(s, args, "device", &dev, em, &rc);
    if (sp == NULL)
        return rc;
    rc = change(sp->pool, dev, nw, em);
    if (rc == 0)
        rc = start_resilver(sp, why, result, em);
    else
        *result = json_null();
    srv_pool_unpin(s, sp);
    return rc;
}

int
admin_pool_replace(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    return new_device_verb(s, args, result, em, pool_vdev_replace, "the device was replaced");
}

int
admin_pool_attach(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    return new_device_verb(s, args, result, em, pool_vdev_attach, "a device was attached");
}

int
admin_pool_clear(struct srv *s, json_t *args, json_t **result, struct err_msg *em)
{
    const char *dev = json_string_value(json_object_get(args, "device"));
    int rc;
    struct srv_pool *sp = pin_pool_dev(s, args, NULL, NULL, em, &rc);
    if (sp == NULL)
        return rc;
    rc = pool_clear(sp->pool, dev != NULL && dev[0] != 0 ? dev : NULL, em);
    srv_pool_unpin(s, sp);
    *result = json_null();
    return rc;
}
