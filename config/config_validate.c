/* SPDX-License-Identifier: MIT */
/*
 * config_validate: what runs after every layer is in — paths resolved against data-dir, then the
 * rules that involve more than one value. Each error is reported where the key involved was last
 * set (its file line or override), or at the section header when a key is missing.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "config/config.h"
#include "config/config_impl.h"

#define NO_ELEM SIZE_MAX

/*
 * Reports at the origin of element elem of list key (NO_ELEM: of the key), else of the section
 * when key is NULL or was never set.
 */
static void __attribute__((format(printf, 6, 7)))
fail_at(struct parse *ps, enum sec_type sec, const char *name, const char *key, size_t elem,
        const char *fmt, ...)
{
    char body[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    const struct seen *s = key ? config_seen_find(ps, sec, name, key) : NULL;
    const struct origin *at = s ? &s->at : NULL;
    if (s != NULL && elem != NO_ELEM && elem < s->nelem)
        at = &s->elem[elem];
    if (at == NULL) {
        s = config_seen_find(ps, sec, name, NULL);
        at = s ? &s->at : NULL;
    }
    struct origin none = { .layer = LAYER_DEFAULT };
    char what[CONFIG_VALUE_MAX + 64];
    snprintf(what, sizeof(what), "%s%s%s%s%s", config_sec_name(sec), name ? "." : "",
             name ? name : "", key ? "." : "", key ? key : "");
    config_err(ps, at ? at : &none, what, "%s", body);
}

#define fail(ps, sec, name, key, ...) fail_at(ps, sec, name, key, NO_ELEM, __VA_ARGS__)

/* True when the last value given for key was invalid (already reported). */
static bool
was_bad(struct parse *ps, enum sec_type sec, const char *name, const char *key)
{
    const struct seen *s = config_seen_find(ps, sec, name, key);
    return s != NULL && s->bad;
}

/*
 * Lexical normalisation: "//" -> "/", "/./" -> "/", no trailing "/" (except the root); ".." is
 * kept because resolving it needs the file system (symlinks). Returns a new string or NULL.
 */
static char *
normalize(const char *in)
{
    size_t n = strlen(in);
    char *out = malloc(n + 2);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    const char *p = in;
    if (*p == '/')
        out[o++] = '/';
    while (*p) {
        while (*p == '/')
            p++;
        size_t c = strcspn(p, "/");
        if (c == 0)
            break;
        if (!(c == 1 && p[0] == '.')) {
            if (o > 0 && out[o - 1] != '/')
                out[o++] = '/';
            memcpy(out + o, p, c);
            o += c;
        }
        p += c;
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = '\0';
    return out;
}

/* *p becomes dir/(*p) normalised, or *p normalised if absolute. NULL stays NULL. */
static int
resolve(const char *dir, char **p)
{
    if (*p == NULL)
        return 0;
    char *joined = NULL;
    if ((*p)[0] == '/')
        joined = strdup(*p);
    else if (asprintf(&joined, "%s/%s", dir, *p) < 0)
        joined = NULL;
    char *norm = joined ? normalize(joined) : NULL;
    free(joined);
    if (norm == NULL)
        return -ENOMEM;
    free(*p);
    *p = norm;
    return 0;
}

static void
check_len(struct parse *ps, enum sec_type sec, const char *name, const char *key, const char *v,
          size_t max, const char *what)
{
    if (v != NULL && strlen(v) > max)
        fail(ps, sec, name, key, "%s '%s' is too long (%zu bytes, at most %zu)", what, v, strlen(v),
             max);
}

static int
resolve_paths(struct parse *ps)
{
    struct lcpfs_config *cfg = ps->cfg;
    char **dd = &cfg->server.data_dir;
    if (*dd == NULL)
        return -ENOMEM; /* the embedded default sets it; only a failed strdup leaves it NULL */
    if ((*dd)[0] != '/') {
        char *cwd = getcwd(NULL, 0);
        if (cwd == NULL) {
            int e = errno;
            if (e == ENOMEM)
                return -ENOMEM;
            fail(ps, SEC_SERVER, NULL, "data-dir",
                 "cannot make data-dir '%s' absolute: current directory: %s", *dd, err_str(e));
            return 0;
        }
        int rc = resolve(cwd, dd);
        free(cwd);
        if (rc != 0)
            return rc;
    } else {
        int rc = resolve("/", dd);
        if (rc != 0)
            return rc;
    }
    const char *dir = *dd;
    int rc = 0;
    rc = rc ? rc : resolve(dir, &cfg->server.admin_socket);
    rc = rc ? rc : resolve(dir, &cfg->nbd.unix_socket);
    rc = rc ? rc : resolve(dir, &cfg->nbd.tls_cert);
    rc = rc ? rc : resolve(dir, &cfg->nbd.tls_key);
    rc = rc ? rc : resolve(dir, &cfg->nbd.tls_ca);
    rc = rc ? rc : resolve(dir, &cfg->nbd.tls_psk_file);
    for (size_t i = 0; rc == 0 && i < cfg->npools; i++) {
        struct config_pool *p = &cfg->pools[i];
        for (size_t j = 0; rc == 0 && j < p->nvdevs; j++)
            if (!config_vdev_is_keyword(p->vdevs[j]))
                rc = resolve(dir, &p->vdevs[j]);
    }
    if (rc != 0)
        return rc;

    check_len(ps, SEC_SERVER, NULL, "data-dir", dir, CONFIG_VALUE_MAX, "data-dir");
    check_len(ps, SEC_SERVER, NULL, "admin-socket", cfg->server.admin_socket,
              CONFIG_SOCKET_PATH_MAX, "socket path");
    check_len(ps, SEC_NBD, NULL, "unix", cfg->nbd.unix_socket, CONFIG_SOCKET_PATH_MAX,
              "socket path");
    check_len(ps, SEC_NBD, NULL, "tls-cert", cfg->nbd.tls_cert, CONFIG_VALUE_MAX, "path");
    check_len(ps, SEC_NBD, NULL, "tls-key", cfg->nbd.tls_key, CONFIG_VALUE_MAX, "path");
    check_len(ps, SEC_NBD, NULL, "tls-ca", cfg->nbd.tls_ca, CONFIG_VALUE_MAX, "path");
    check_len(ps, SEC_NBD, NULL, "tls-psk-file", cfg->nbd.tls_psk_file, CONFIG_VALUE_MAX, "path");
    for (size_t i = 0; i < cfg->npools; i++) {
        struct config_pool *p = &cfg->pools[i];
        for (size_t j = 0; j < p->nvdevs; j++) {
            if (strpbrk(p->vdevs[j], " \t,") != NULL)
                fail_at(ps, SEC_POOL, p->name, "vdevs", j,
                        "vdev path '%s' contains a space or a comma, which separate list words",
                        p->vdevs[j]);
            if (strlen(p->vdevs[j]) > CONFIG_VALUE_MAX)
                fail_at(ps, SEC_POOL, p->name, "vdevs", j,
                        "vdev path '%s' is too long (%zu bytes, at most %d)", p->vdevs[j],
                        strlen(p->vdevs[j]), CONFIG_VALUE_MAX);
        }
    }
    return 0;
}

static void
check_nbd(struct parse *ps)
{
    struct lcpfs_config *cfg = ps->cfg;
    for (size_t i = 0; i < cfg->nbd.nlisten; i++) {
        for (size_t j = 0; j < i; j++) {
            const struct config_addr *a = &cfg->nbd.listen[i], *b = &cfg->nbd.listen[j];
            if (a->port == b->port && strcmp(a->host, b->host) == 0) {
                char buf[300];
                config_format_addr(a, buf, sizeof(buf));
                fail_at(ps, SEC_NBD, NULL, "listen", i, "address '%s' is listed twice", buf);
                break;
            }
        }
    }
    if (cfg->nbd.unix_socket != NULL && cfg->server.admin_socket != NULL &&
        strcmp(cfg->nbd.unix_socket, cfg->server.admin_socket) == 0)
        fail(ps, SEC_NBD, NULL, "unix", "unix socket '%s' is also the admin-socket",
             cfg->nbd.unix_socket);
    bool cert = cfg->nbd.tls_cert != NULL, key = cfg->nbd.tls_key != NULL;
    if (cert && !key)
        fail(ps, SEC_NBD, NULL, "tls-cert", "tls-cert needs tls-key");
    if (key && !cert)
        fail(ps, SEC_NBD, NULL, "tls-key", "tls-key needs tls-cert");
    if (cfg->nbd.tls != CONFIG_TLS_OFF && !cert && !key && cfg->nbd.tls_psk_file == NULL)
        fail(ps, SEC_NBD, NULL, "tls", "tls = %s needs tls-cert and tls-key, or tls-psk-file",
             config_tls_name(cfg->nbd.tls));
    if (cfg->nbd.tls_verify_peer && cfg->nbd.tls_ca == NULL)
        fail(ps, SEC_NBD, NULL, "tls-verify-peer",
             "tls-verify-peer needs tls-ca (the CA that signs client certificates)");
    else if (cfg->nbd.tls_verify_peer && !cert)
        fail(ps, SEC_NBD, NULL, "tls-verify-peer",
             "tls-verify-peer needs tls-cert and tls-key (client certificates are X.509)");
    const char *de = cfg->nbd.default_export;
    if (de != NULL && config_find_export(cfg, de) == NULL)
        fail(ps, SEC_NBD, NULL, "default-export", "default-export '%s' has no [nbd-export %s]", de,
             de);
}

static void
check_pools(struct parse *ps)
{
    struct lcpfs_config *cfg = ps->cfg;
    for (size_t i = 0; i < cfg->npools; i++) {
        struct config_pool *p = &cfg->pools[i];
        size_t npaths = 0;
        if (p->nvdevs == 0)
            fail(ps, SEC_POOL, p->name, "vdevs", "pool '%s' has no vdevs", p->name);
        for (size_t j = 0; j < p->nvdevs; j++) {
            if (config_vdev_is_keyword(p->vdevs[j]))
                continue;
            npaths++;
            /* Each path against every earlier one, in this pool and the ones before. */
            bool dup = false;
            for (size_t pi = 0; pi <= i && !dup; pi++) {
                const struct config_pool *q = &cfg->pools[pi];
                size_t end = pi == i ? j : q->nvdevs;
                for (size_t k = 0; k < end && !dup; k++) {
                    if (strcmp(q->vdevs[k], p->vdevs[j]) != 0)
                        continue;
                    dup = true;
                    if (pi == i)
                        fail_at(ps, SEC_POOL, p->name, "vdevs", j, "vdev '%s' is listed twice",
                                p->vdevs[j]);
                    else
                        fail_at(ps, SEC_POOL, p->name, "vdevs", j, "vdev '%s' is also in pool '%s'",
                                p->vdevs[j], q->name);
                }
            }
        }
        if (npaths > CONFIG_POOL_MAX_VDEVS)
            fail(ps, SEC_POOL, p->name, "vdevs", "pool '%s' has %zu vdevs (at most %d)", p->name,
                 npaths, CONFIG_POOL_MAX_VDEVS);
        char a[32], b[32];
        if (p->create_size != 0 && p->create_size < CONFIG_VDEV_MIN_SIZE) {
            config_format_size(p->create_size, a, sizeof(a));
            config_format_size(CONFIG_VDEV_MIN_SIZE, b, sizeof(b));
            fail(ps, SEC_POOL, p->name, "create-size",
                 "create-size %s is below the %s a vdev needs (0 = never create)", a, b);
        }
        bool size_bad = was_bad(ps, SEC_POOL, p->name, "default-volume-size");
        bool vol_bad = was_bad(ps, SEC_POOL, p->name, "default-volume");
        if (p->default_volume != NULL && p->default_volume_size == 0 && !size_bad)
            fail(ps, SEC_POOL, p->name, "default-volume",
                 "default-volume '%s' needs "
                 "default-volume-size",
                 p->default_volume);
        if (p->default_volume == NULL && p->default_volume_size != 0 && !vol_bad)
            fail(ps, SEC_POOL, p->name, "default-volume-size",
                 "default-volume-size has no effect without default-volume");
        if (p->default_volume_size % CONFIG_VOLBLOCKSIZE != 0) {
            config_format_size(p->default_volume_size, a, sizeof(a));
            config_format_size(CONFIG_VOLBLOCKSIZE, b, sizeof(b));
            fail(ps, SEC_POOL, p->name, "default-volume-size",
                 "default-volume-size %s is not a multiple of the %s volume block size", a, b);
        }
        if (p->default_volume != NULL &&
            strlen(p->name) + 1 + strlen(p->default_volume) > CONFIG_DATASET_NAME_MAX)
            fail(ps, SEC_POOL, p->name, "default-volume",
                 "volume name '%s/%s' is longer than %d bytes", p->name, p->default_volume,
                 CONFIG_DATASET_NAME_MAX);
    }
}

static void
check_exports(struct parse *ps)
{
    struct lcpfs_config *cfg = ps->cfg;
    for (size_t i = 0; i < cfg->nexports; i++) {
        struct config_export *e = &cfg->exports[i];
        if (e->volume == NULL) {
            if (!was_bad(ps, SEC_EXPORT, e->name, "volume"))
                fail(ps, SEC_EXPORT, e->name, NULL, "[nbd-export %s] has no volume", e->name);
        } else {
            size_t plen = strcspn(e->volume, "/");
            char pool[CONFIG_POOL_NAME_MAX + 1];
            snprintf(pool, sizeof(pool), "%.*s", (int)plen, e->volume);
            if (config_find_pool(cfg, pool) == NULL)
                fail(ps, SEC_EXPORT, e->name, "volume",
                     "volume '%s' is in pool '%s', which has no [pool %s] section", e->volume, pool,
                     pool);
            if (strchr(e->volume, '@') != NULL) {
                const struct seen *ro = config_seen_find(ps, SEC_EXPORT, e->name, "readonly");
                if (ro != NULL && !ro->bad && !e->readonly)
                    fail(ps, SEC_EXPORT, e->name, "readonly",
                         "export of snapshot '%s' cannot be writable (readonly = yes)", e->volume);
                e->readonly = true;
            }
        }
        if (e->tls_set && e->tls != CONFIG_TLS_OFF && cfg->nbd.tls == CONFIG_TLS_OFF)
            fail(ps, SEC_EXPORT, e->name, "tls", "tls = %s needs [nbd] tls = on or require",
                 config_tls_name(e->tls));
        else if (e->tls_set && e->tls < cfg->nbd.tls)
            fail(ps, SEC_EXPORT, e->name, "tls", "tls = %s is weaker than [nbd] tls = %s",
                 config_tls_name(e->tls), config_tls_name(cfg->nbd.tls));
    }
}

int
config_validate(struct parse *ps)
{
    int rc = resolve_paths(ps);
    if (rc != 0)
        return rc;
    check_nbd(ps);
    check_pools(ps);
    check_exports(ps);
    return 0;
}
